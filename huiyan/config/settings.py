"""One settings object for the whole process: environment `HUIYAN_*`, then `huiyan.toml`, then defaults."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from huiyan.checkin.settings import CheckinSettings
from huiyan.recordings.settings import RecordingSettings

DEFAULT_SERVICES: dict[str, str] = {
    # number -> FastAGI route. These are the only numbers a citizen or guest may dial.
    "12348": "hotline",
    "12349": "mediation",
    "12340": "checkin",
    "19999": "selftest",
}


class TrunkSettings(BaseModel):
    """The department's legacy SIP conference system (or an SBC in front of its H.323 rooms)."""

    host: str = ""
    port: int = 5060
    username: str = ""
    password: str = ""
    codecs: list[str] = Field(default_factory=lambda: ["ulaw", "alaw", "h264"])


# ---- H.323 (legacy room systems through chan_ooh323) ------------------------------------------------------

# Audio codecs chan_ooh323 offers that ConfBridge can mix (Asterisk has a translator for each).
H323_CODECS = ("ulaw", "alaw", "gsm")
# Why not H.263 (checked with Asterisk 22.10.1's chan_ooh323, see huiyan/rooms/h323.py): the driver
# advertises H.263 with maxBitRate 320*1024, above H.245's limit of 192400, so encoding the capability
# set (or a fast-start proposal) fails with ASN.1 range error -24 and the call has no media at all; it
# also has no video RTP session (its `vrtp` is a placeholder) and always runs in audio-call mode.
_H323_NO_VIDEO = (
    "chan_ooh323 cannot carry video: offering h263 makes every H.323 call fail (its H.263 capability "
    "breaks H.245 encoding), so H.323 rooms join audio-only; allowed codecs: " + ", ".join(H323_CODECS)
)
H323_NAME_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"


def _ip_literal(value: str, what: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        # chan_ooh323 resolves no host names ("Domain name resolution is not yet supported").
        raise ValueError(f"{what} {value!r} must be an IP address (chan_ooh323 does not resolve names)") from None


class H323Peer(BaseModel):
    """A legacy H.323 room system (or the MCU) huiyan talks to directly. Without a gatekeeper chan_ooh323
    accepts calls only from, and places calls only to, the systems listed here."""

    name: str = Field(pattern=H323_NAME_RE)  # also the channel name: OOH323/<name>-N
    host: str  # its IP address
    port: int = Field(1720, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _ip_literal(v, "H.323 peer host")


class H323Settings(BaseModel):
    """H.323 interop through chan_ooh323 (Asterisk's 'extended support' H.323 driver): audio only."""

    enabled: bool = False
    host: str = ""  # listen address; "" = sip_host
    port: int = Field(1720, ge=1, le=65535)
    h323id: str = Field("huiyan", pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
    e164: str = Field("", pattern=r"^[0-9]{0,32}$")  # our E.164 alias; "" = none
    gatekeeper: str = "DISABLE"  # DISABLE, DISCOVER or the gatekeeper's IP address
    faststart: bool = True
    h245tunneling: bool = True
    codecs: list[str] = Field(default_factory=lambda: ["ulaw", "alaw"], min_length=1)
    peers: list[H323Peer] = Field(default_factory=list)

    @field_validator("codecs")
    @classmethod
    def _codecs(cls, v: list[str]) -> list[str]:
        out = [c.strip().lower() for c in v]
        bad = [c for c in out if c not in H323_CODECS]
        if bad:
            raise ValueError(f"codec(s) {', '.join(bad)} not usable over H.323: {_H323_NO_VIDEO}")
        return list(dict.fromkeys(out))

    @field_validator("gatekeeper")
    @classmethod
    def _gatekeeper(cls, v: str) -> str:
        if v.upper() in ("DISABLE", "DISCOVER"):
            return v.upper()
        return _ip_literal(v, "H.323 gatekeeper")

    @field_validator("host")
    @classmethod
    def _listen(cls, v: str) -> str:
        return _ip_literal(v, "H.323 listen address") if v else v

    @field_validator("peers")
    @classmethod
    def _unique(cls, v: list[H323Peer]) -> list[H323Peer]:
        names = [p.name.lower() for p in v]
        if len(set(names)) != len(names) or "general" in names:
            raise ValueError("H.323 peer names must be unique (and not 'general')")
        where = [(p.host, p.port) for p in v]
        if len(set(where)) != len(where):
            raise ValueError("two H.323 peers have the same host and port")
        return v

    @property
    def uses_gatekeeper(self) -> bool:
        return self.gatekeeper != "DISABLE"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUIYAN_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path("var")
    # Where an installed-by-us Asterisk root lives; shared between data dirs so tests reuse it.
    asterisk_root: Path | None = None
    asterisk_binary: str | None = None  # an explicit asterisk binary (version >= 20) wins over everything
    debian_mirror: str | None = None  # default: read from apt's own sources at run time

    node_name: str = "pbx1"
    sip_host: str = "127.0.0.1"  # bind address for SIP UDP/TCP
    public_host: str = "127.0.0.1"  # the host name/IP that SIP URIs and browser links use
    sip_port: int = 5060
    http_port: int = 8088  # Asterisk's own HTTP server: SIP over WebSocket at /ws
    ami_port: int = 5038
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    rtp_start: int = 10000
    rtp_end: int = 20000

    database_url: str | None = None  # default: SQLite in data_dir

    services: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SERVICES))
    internal_extension_pattern: str = "_8XXXX"  # terminals, agents and users dial each other here
    room_pattern: str = "_6XXX"  # conference rooms
    trunk_prefix: str = "9"  # internal classes reach the legacy conference system with 9 + number
    trunk: TrunkSettings = Field(default_factory=TrunkSettings)
    h323: H323Settings = Field(default_factory=H323Settings)  # legacy H.323 rooms (chan_ooh323), off by default
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)  # evidence store (issue 5)
    checkin: CheckinSettings = Field(default_factory=CheckinSettings)  # community-correction check-ins (issue 7)

    token_ttl_seconds: int = 8 * 3600
    # The controller asks AMI only for the events it uses (runtime.CONTROLLER_EVENTS); True = all of them
    # (tests that look at AGI or variable events, debugging).
    ami_all_events: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read at each construction (not import) so HUIYAN_CONFIG can point at another file.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=os.environ.get("HUIYAN_CONFIG", "huiyan.toml"))
        return (init_settings, env_settings, toml)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    # ---- derived paths -------------------------------------------------------------
    @property
    def root_dir(self) -> Path:
        """The Debian root holding our Asterisk, when we installed one."""
        return (self.asterisk_root or (self.data_dir / "asterisk-root")).expanduser().resolve()

    @property
    def pbx_dir(self) -> Path:
        return self.data_dir / "pbx" / self.node_name

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'huiyan.db'}"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "secrets.json"

    def secret(self, name: str) -> str:
        """A generated secret kept in the data directory (AMI password, token key); made on first use."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {}
        if self.secrets_file.exists():
            data = json.loads(self.secrets_file.read_text())
        if name not in data:
            data[name] = secrets.token_urlsafe(24)
            tmp = self.secrets_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            tmp.chmod(0o600)
            tmp.replace(self.secrets_file)
        return str(data[name])


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
