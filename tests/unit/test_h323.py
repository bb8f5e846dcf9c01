"""H.323 (chan_ooh323) without Asterisk: the settings and what they refuse, the rendered ooh323.conf and
modules.conf, the `from-h323` dialplan context, and H.323 invitation targets → OOH323 dial strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from huiyan.config.render import HEADER, RenderInput, render_all
from huiyan.config.settings import H323Peer, H323Settings, Settings
from huiyan.db.numbering import ExtensionPlan
from huiyan.dialplan import DialplanInput, render_extensions
from huiyan.rooms.h323 import H323_TARGET_RE, H323AddressError, H323Plan, dial_string, parse, peer_of_channel
from huiyan.rooms.h323 import H323Peer as Peer
from huiyan.rooms.model import BadH323Target, BadTarget, dial_target
from tests.unit.test_dialplan import _contexts, _pattern_matches


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("HUIYAN_"):
            monkeypatch.delenv(k)


MCU = H323Peer(name="ccmcu", host="10.20.0.9")
ROOM2 = H323Peer(name="room2", host="10.20.0.10", port=1721)


def _settings(**h323: object) -> Settings:
    return Settings(data_dir=Path("/srv/huiyan"), h323=H323Settings(**h323))  # type: ignore[arg-type]


def _render(s: Settings, modules: Path | None = None) -> dict[str, str]:
    return render_all(RenderInput(settings=s, modules_dir=modules or Path("/nonexistent/modules"),
                                  asterisk_data_dir=Path("/usr/share/asterisk"), ami_secret="x"))


# ---- settings -------------------------------------------------------------------------------------------


def test_defaults_keep_h323_off() -> None:
    h = Settings().h323
    assert not h.enabled and h.port == 1720 and h.gatekeeper == "DISABLE" and not h.uses_gatekeeper
    assert h.faststart and h.h245tunneling and h.codecs == ["ulaw", "alaw"] and h.peers == []


def test_h323_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIYAN_H323__ENABLED", "true")
    monkeypatch.setenv("HUIYAN_H323__PORT", "11720")
    monkeypatch.setenv("HUIYAN_H323__PEERS", '[{"name": "ccmcu", "host": "10.20.0.9"}]')
    h = Settings().h323
    assert h.enabled and h.port == 11720 and h.peers == [H323Peer(name="ccmcu", host="10.20.0.9", port=1720)]


def test_h263_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="cannot carry video.*H.245"):
        H323Settings(codecs=["ulaw", "h263"])
    with pytest.raises(ValueError, match="g729"):
        H323Settings(codecs=["g729"])  # no translator in Asterisk: ConfBridge could not mix it
    assert H323Settings(codecs=["ALAW", "gsm", "alaw"]).codecs == ["alaw", "gsm"]


@pytest.mark.parametrize(("kw", "reason"), [
    ({"peers": [{"name": "mcu", "host": "mcu.example.cn"}]}, "must be an IP address"),
    ({"peers": [{"name": "a", "host": "10.0.0.1"}, {"name": "A", "host": "10.0.0.2"}]}, "unique"),
    ({"peers": [{"name": "general", "host": "10.0.0.1"}]}, "general"),
    ({"peers": [{"name": "a", "host": "10.0.0.1"}, {"name": "b", "host": "10.0.0.1", "port": 1720}]}, "same host"),
    ({"peers": [{"name": "bad name", "host": "10.0.0.1"}]}, "pattern"),
    ({"peers": [{"name": "a", "host": "10.0.0.1", "port": 70000}]}, "65535"),
    ({"gatekeeper": "gk.example.cn"}, "must be an IP address"),
    ({"e164": "60x"}, "pattern"),
    ({"h323id": "a;b"}, "pattern"),
    ({"host": "any"}, "must be an IP address"),
    ({"codecs": []}, "at least 1"),
])
def test_bad_h323_settings_are_refused(kw: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        H323Settings(**kw)  # type: ignore[arg-type]


def test_gatekeeper_and_addresses_are_normalised() -> None:
    assert H323Settings(gatekeeper="discover").gatekeeper == "DISCOVER"
    h = H323Settings(gatekeeper="10.20.0.1", peers=[{"name": "v6", "host": "[2001:db8::9]"}])  # type: ignore[list-item]
    assert h.uses_gatekeeper and h.peers[0].host == "2001:db8::9"


# ---- rendering ------------------------------------------------------------------------------------------


def test_off_renders_nothing_that_loads_or_routes_h323() -> None:
    files = _render(_settings())
    assert "chan_ooh323" not in files["modules.conf"]
    assert "[general]" not in files["ooh323.conf"] and "off" in files["ooh323.conf"]
    assert "from-h323" not in files["extensions.conf"]


def test_ooh323_conf_when_enabled() -> None:
    s = _settings(enabled=True, port=1720, e164="6000", peers=[MCU, ROOM2])
    text = _render(s)["ooh323.conf"]
    assert text == HEADER + """
; Legacy H.323 room systems (without a gatekeeper, the only ones that may call in or be called)
[general]
port=1720
bindaddr=127.0.0.1
h323id=huiyan
e164=6000
callerid=huiyan
gatekeeper=DISABLE
context=from-h323
faststart=yes
h245tunneling=yes
directmedia=no
directrtpsetup=no
disallow=all
allow=ulaw
allow=alaw
dtmfmode=h245alphanumeric
faxdetect=no
t38support=no
logfile=/srv/huiyan/pbx/pbx1/log/h323_log

[ccmcu]
type=friend
ip=10.20.0.9
port=1720
context=from-h323

[room2]
type=friend
ip=10.20.0.10
port=1721
context=from-h323
"""


def test_listen_address_options_and_gatekeeper() -> None:
    s = _settings(enabled=True, host="10.20.0.2", gatekeeper="10.20.0.1", faststart=False, h245tunneling=False,
                  codecs=["alaw"])
    text = _render(s)["ooh323.conf"]
    for line in ("bindaddr=10.20.0.2", "gatekeeper=10.20.0.1", "faststart=no", "h245tunneling=no", "allow=alaw"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert "allow=ulaw" not in text and "e164=" not in text  # no E.164 alias unless given
    # never RFC 2833 (Asterisk 22 then sends no G.711 at all) and never video
    assert "dtmfmode=h245alphanumeric" in text and "h263" not in text
    # without a listen address of its own, H.323 listens where SIP does
    other = Settings(data_dir=Path("/srv/huiyan"), sip_host="0.0.0.0", h323=H323Settings(enabled=True))
    assert "bindaddr=0.0.0.0" in _render(other)["ooh323.conf"]


def test_modules_conf_loads_chan_ooh323_only_when_enabled_and_present(tmp_path: Path) -> None:
    mods = tmp_path / "mods"
    mods.mkdir()
    for m in ("chan_pjsip.so", "chan_ooh323.so"):
        (mods / m).touch()
    loaded = re.findall(r"^load => (\S+)$", _render(_settings(enabled=True), mods)["modules.conf"], re.M)
    assert loaded == ["chan_pjsip.so", "chan_ooh323.so"]
    loaded = re.findall(r"^load => (\S+)$", _render(_settings(enabled=False), mods)["modules.conf"], re.M)
    assert loaded == ["chan_pjsip.so"]
    (mods / "chan_ooh323.so").unlink()  # an Asterisk built without it: nothing to load, no error at start
    assert "chan_ooh323" not in _render(_settings(enabled=True), mods)["modules.conf"]


# ---- the dialplan -------------------------------------------------------------------------------------

D = DialplanInput(agi_url="agi://127.0.0.1:4573", services={"12348": "hotline", "19999": "selftest"},
                  internal_pattern="_8XXXX", room_pattern="_6XXX", trunk_prefix="9", trunk_endpoint="legacy",
                  unavailable_prompt="/srv/huiyan/sounds/zh/huiyan/unavailable", h323=True)


def _answering(text: str, context: str, number: str) -> str | None:
    """The context whose extension answers `number` in `context`, as Asterisk searches it: the context's own
    extensions (an exact name before patterns), then each include in order."""
    ctx = _contexts(text)

    def search(name: str) -> str | None:
        lines = ctx.get(name, [])
        pats = [m.group(1) for ln in lines if (m := re.match(r"^exten => ([^,]+),", ln))]
        if number in pats or any(p.startswith("_") and _pattern_matches(p, number) for p in pats):
            return name
        for ln in lines:
            m = re.match(r"^include => (\S+)", ln)
            if m and (found := search(m.group(1))):
                return found
        return None

    return search(context)


@pytest.mark.parametrize(("number", "answered_by"), [
    ("6001", "huiyan-rooms"),  # rooms: the same room route as the SIP trunk's calls
    ("6999", "huiyan-rooms"),  # (an unknown room hears "unavailable" from the room flow itself)
    ("12348", "huiyan-h323-refuse"),  # public services: not for room systems
    ("80001", "huiyan-h323-refuse"),  # internal extensions
    ("9043188889999", "huiyan-h323-refuse"),  # the SIP trunk
    ("600", "huiyan-h323-refuse"),
    ("60011", "huiyan-h323-refuse"),
    ("s", "huiyan-h323-refuse"),  # no number given (also where Asterisk sends a number nothing matches)
    ("conference", "huiyan-h323-refuse"),  # an H.323-ID instead of a number
    ("*61", "huiyan-h323-refuse"),
    ("h", None),  # no catch-all runs again when the call hangs up
    ("i", None),
])
def test_h323_calls_reach_rooms_only(number: str, answered_by: str | None) -> None:
    assert _answering(render_extensions(D), "from-h323", number) == answered_by


def test_the_refusal_speaks_and_releases_as_unallocated() -> None:
    refuse = _contexts(render_extensions(D))["huiyan-h323-refuse"]
    for pattern in ("_[0-9*#+]!", "_[A-Za-z].", "s"):
        i = refuse.index(f"exten => {pattern},1,NoOp(H.323 call to ${{EXTEN}}: not a room number)")
        assert refuse[i + 1:i + 4] == ["same => n,Progress()",
                                       "same => n,Playback(/srv/huiyan/sounds/zh/huiyan/unavailable,noanswer)",
                                       "same => n,Hangup(1)"]


def test_rooms_set_the_h323_class_and_follow_the_room_plan() -> None:
    import dataclasses

    text = render_extensions(dataclasses.replace(D, room_pattern="_7XXX"))
    assert _answering(text, "from-h323", "7001") == "huiyan-rooms"
    assert _answering(text, "from-h323", "6001") == "huiyan-h323-refuse"
    # huiyan-rooms sets the class from the caller's context, which an include keeps: "h323"
    assert _contexts(text)["huiyan-rooms"][0] == "exten => _7XXX,1,Set(__HUIYAN_CLASS=${CONTEXT:5})"
    assert "from-h323" not in render_extensions(dataclasses.replace(D, h323=False))


# ---- invitation targets ----------------------------------------------------------------------------

PLAN = H323Plan(peers=(Peer("ccmcu", "10.20.0.9"), Peer("room2", "10.20.0.10", 1721), Peer("v6room", "2001:db8::9")))
GK = H323Plan(peers=PLAN.peers, gatekeeper=True)
INTERNAL = ExtensionPlan.from_pattern("_8XXXX")


@pytest.mark.parametrize(("target", "plan", "dial"), [
    ("h323:10.20.0.9", PLAN, "OOH323/ccmcu"),
    ("h323:10.20.0.9:1720", PLAN, "OOH323/ccmcu"),
    (" h323:10.20.0.10:1721 ", PLAN, "OOH323/room2"),
    ("h323:6001@10.20.0.9", PLAN, "OOH323/6001@ccmcu"),  # an alias (conference number) at that system
    ("h323:room.A_1@10.20.0.10:1721", PLAN, "OOH323/room.A_1@room2"),
    ("h323:ccmcu", PLAN, "OOH323/ccmcu"),  # a configured peer by name
    ("h323:CCMCU", PLAN, "OOH323/ccmcu"),
    ("h323:6001@ccmcu", PLAN, "OOH323/6001@ccmcu"),
    ("h323:[2001:db8::9]", PLAN, "OOH323/v6room"),
    ("h323:[2001:db8:0::9]:1720", PLAN, "OOH323/v6room"),
    ("h323:6001@gk", GK, "OOH323/6001"),  # the gatekeeper resolves the alias
    ("h323:hq-room", GK, "OOH323/hq-room"),
    ("H323:10.20.0.9", PLAN, "OOH323/ccmcu"),
])
def test_h323_dial_strings(target: str, plan: H323Plan, dial: str) -> None:
    assert dial_string(target, plan) == dial
    assert dial_target(target, internal=INTERNAL, trunk_endpoint="legacy", trunk_host="10.20.0.5", h323=plan) == dial


@pytest.mark.parametrize(("target", "plan", "reason"), [
    ("h323:10.20.0.9", None, "H.323 is not enabled"),
    ("h323:10.20.0.99", PLAN, "not a configured H.323 room system"),
    ("h323:10.20.0.10", PLAN, "not a configured H.323 room system"),  # room2 listens on 1721
    ("h323:10.20.0.99", GK, "not a configured H.323 room system"),  # an address is never the gatekeeper's
    ("h323:300.1.1.1", PLAN, "not a valid IP address"),
    ("h323:[::zz]", PLAN, "not an H.323 address"),
    ("h323:10.20.0.9:0", PLAN, "out of range"),
    ("h323:10.20.0.9:70000", PLAN, "out of range"),
    ("h323:nosuch", PLAN, "no H.323 room system named 'nosuch' is configured and there is no gatekeeper"),
    ("h323:6001@gk", PLAN, "no H.323 gatekeeper"),
    ("h323:6001@nosuch", GK, "no H.323 room system named"),
    ("h323:ccmcu:1720", PLAN, "a port goes with an IP address"),
    ("h323:", PLAN, "not an H.323 address"),
    ("h323:a/b", PLAN, "not an H.323 address"),  # nothing that would split the dial string
    ("h323:a,b@10.20.0.9", PLAN, "not an H.323 address"),
    ("h323:6001@@10.20.0.9", PLAN, "not an H.323 address"),
])
def test_bad_h323_targets(target: str, plan: H323Plan | None, reason: str) -> None:
    with pytest.raises(H323AddressError, match=re.escape(reason)):
        dial_string(target, plan)
    with pytest.raises(BadH323Target, match=re.escape(reason)) as e:
        dial_target(target, internal=INTERNAL, trunk_endpoint="legacy", h323=plan)
    assert isinstance(e.value, BadTarget) and e.value.status == 422


def test_other_targets_are_untouched_by_h323() -> None:
    assert dial_target("80001", internal=INTERNAL, trunk_endpoint=None, h323=PLAN) == "PJSIP/80001"
    assert dial_target("sip:6001@10.20.0.9", internal=INTERNAL, trunk_endpoint=None,
                       h323=PLAN) == "PJSIP/anonymous/sip:6001@10.20.0.9"


def test_the_schema_pattern_accepts_the_syntax_only() -> None:
    ok = ["h323:10.20.0.9", "h323:10.20.0.9:1720", "h323:6001@10.20.0.9:1720", "h323:ccmcu", "h323:6001@gk",
          "h323:[2001:db8::9]:1720", "h323:300.1.1.1"]  # (a bad address is refused with its reason later)
    bad = ["h323:", "h323:a b", "h323:a/b", "h323:x@y@z", "h323:10.20.0.9:123456", "sip:h323:1", "h323:ccmcu;x"]
    assert all(re.match(H323_TARGET_RE, t) for t in ok)
    assert not any(re.match(H323_TARGET_RE, t) for t in bad)


def test_parse_and_plan_from_settings() -> None:
    a = parse("h323:6001@10.20.0.9")
    assert (a.alias, a.host, a.port, a.ip) == ("6001", "10.20.0.9", 1720, True)
    assert H323Plan.from_settings(H323Settings()) is None  # off
    plan = H323Plan.from_settings(H323Settings(enabled=True, gatekeeper="DISCOVER", peers=[MCU]))
    assert plan == H323Plan(peers=(Peer("ccmcu", "10.20.0.9", 1720),), gatekeeper=True)
    assert peer_of_channel("OOH323/ccmcu-12") == "ccmcu"
    assert peer_of_channel("OOH323/room-a-3") == "room-a"
    assert peer_of_channel("PJSIP/80001-00000001") is None
