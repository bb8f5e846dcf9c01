"""One settings object for the whole process: environment `HUIYAN_*`, then `huiyan.toml`, then defaults."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SERVICES: dict[str, str] = {
    # number -> FastAGI route. These are the only numbers a citizen or guest may dial.
    "12348": "hotline",
    "12349": "mediation",
    "12340": "checkin",
    "19999": "selftest",
}


class TrunkSettings(BaseSettings):
    """The department's legacy SIP conference system (or an SBC in front of its H.323 rooms)."""

    host: str = ""
    port: int = 5060
    username: str = ""
    password: str = ""
    codecs: list[str] = Field(default_factory=lambda: ["ulaw", "alaw", "h264"])


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
