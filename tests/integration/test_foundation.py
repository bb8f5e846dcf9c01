"""The foundation against a real Asterisk: start-up, health, a citizen call, the caller-class boundary,
and a device created through the API that registers and is called without restarting Asterisk."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Running
from tests.integration.sipp import Sipp

pytestmark = pytest.mark.integration


def _admin_token(h: Running) -> str:
    from huiyan.db.seed import ensure_admin

    with h.ctl.session_factory() as s:
        ensure_admin(s, "itadmin", "it-admin-password")
        s.commit()
    r = httpx.post(f"{h.api}/api/auth/login", json={"username": "itadmin", "password": "it-admin-password"})
    r.raise_for_status()
    return r.json()["access_token"]


def test_asterisk_log_has_no_error(huiyan: Running) -> None:
    # Checked on the log as it was right after start-up: later tests provoke errors on purpose
    # (e.g. calling an agent whose endpoint does not exist).
    errors = huiyan.errors_at_start
    assert errors == [], "\n".join(errors)
    # and it really is our rendered config that is loaded
    out = huiyan.ctl.pbx.rx("pjsip show transports")
    assert f"127.0.0.1:{huiyan.settings.sip_port}" in out


def test_healthz_reports_four_parts_healthy(huiyan: Running) -> None:
    r = httpx.get(f"{huiyan.api}/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    for part in ("asterisk", "ami", "fastagi", "database"):
        assert body["checks"][part]["ok"] is True, body if "checks" in body else body
    assert body["ok"] is True


def test_citizen_call_reaches_fastagi_plays_prompt_and_is_hung_up(huiyan: Running, tmp_path: Path) -> None:
    from huiyan.pbx.events import AmiEvent, Hangup, Newchannel

    before = huiyan.ctl.agi.sessions_served
    res = Sipp("uac_service.xml", huiyan.sip_target, service="19999", workdir=tmp_path, timeout=30).run()
    assert res.ok, res.stderr + res.errors
    assert huiyan.ctl.agi.sessions_served == before + 1
    new = huiyan.wait_event(lambda e: isinstance(e, Newchannel) and e.fields.get("Exten") == "19999")
    uid = new.uniqueid
    huiyan.wait_event(lambda e: isinstance(e, Hangup) and e.uniqueid == uid)
    # AGI exec events prove both prompts were streamed on that very channel...
    played = huiyan.find_events(
        lambda e: isinstance(e, AmiEvent) and e.name == "AGIExecEnd" and e.uniqueid == uid
        and "STREAM FILE" in e.fields.get("Command", "")
    )
    assert [e.fields["Command"].split('"')[1].rsplit("/", 1)[-1] for e in played] == ["welcome", "goodbye"]
    assert all(e.fields.get("ResultCode") == "200" for e in played)
    # ...and played to the end: the call lasted at least as long as the two recordings.
    sounds = huiyan.settings.data_dir / "sounds" / "zh" / "huiyan"
    length = sum(_wav_seconds(sounds / f"{n}.wav") for n in ("welcome", "goodbye"))
    start = huiyan.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "AGIExecStart" and e.uniqueid == uid)[0]
    lasted = huiyan.arrived[id(played[-1])] - huiyan.arrived[id(start)]
    assert lasted >= 0.9 * length, (lasted, length)


def _wav_seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


@pytest.mark.parametrize("number", ["80001", "90431888888", "913800138000", "075512345678", "13800138000",
                                    "6001", "1234", "123480", "112"])
def test_citizen_class_cannot_dial_out_of_the_public_services(huiyan: Running, tmp_path: Path, number: str) -> None:
    from huiyan.pbx.events import Newchannel

    res = Sipp("uac_refused.xml", huiyan.sip_target, service=number, workdir=tmp_path, timeout=15).run()
    assert res.ok, f"{number}: not refused\n{res.stderr}{res.errors}"
    assert not huiyan.find_events(lambda e: isinstance(e, Newchannel) and e.fields.get("Exten") == number
                                  and e.fields.get("ChannelState") == "6")


def _create_device(h: Running, kind: str) -> dict:
    auth = {"Authorization": f"Bearer {_admin_token(h)}"}
    orgs = httpx.get(f"{h.api}/api/organisations", headers=auth).json()
    org_id = orgs["items"][0]["id"] if orgs.get("items") else httpx.post(
        f"{h.api}/api/organisations", headers=auth,
        json={"name": "吉林省司法厅", "code": "jl", "level": "province"}).json()["id"]
    r = httpx.post(f"{h.api}/api/devices", headers=auth, json={
        "serial": f"IT-{kind}-{time.monotonic_ns()}", "model": "ME40", "kind": kind, "organisation_id": org_id,
        "department": "hotline", "display_name": f"集成测试 {kind}",
    })
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("number", ["80001", "913800138000", "6001", "075512345678"])
def test_authenticated_kiosk_is_citizen_class_too(huiyan: Running, tmp_path: Path, number: str) -> None:
    """A bureau kiosk has an account (so it is identified and challenged), but it is a citizen device."""
    kiosk = _create_device(huiyan, "kiosk")
    ext = kiosk["extension"]
    deadline = time.monotonic() + 5
    while f" {ext}/{ext} " not in huiyan.ctl.pbx.rx("pjsip show endpoints") and time.monotonic() < deadline:
        time.sleep(0.1)
    res = Sipp("uac_auth_refused.xml", huiyan.sip_target, service=number, workdir=tmp_path, timeout=15,
               user=ext, password=kiosk["sip_password"], extra=("-key", "caller", ext)).run()
    assert res.ok, f"{number}: not refused\n{res.stderr}{res.errors}"
    log = huiyan.ctl.pbx.messages_log.read_text()
    assert f"to extension '{number}' rejected because extension not found in context 'from-citizen'" in log


def test_device_from_api_registers_and_is_called_without_restart(huiyan: Running, tmp_path: Path) -> None:
    pid = huiyan.ctl.pbx.pid()
    t0 = time.monotonic()
    dev = _create_device(huiyan, "terminal")
    ext, password = dev["extension"], dev["sip_password"]

    reg = Sipp("register.xml", huiyan.sip_target, service=ext, workdir=tmp_path, user=ext, password=password,
               timeout=10)
    res = reg.run()
    registered_after = time.monotonic() - t0
    assert res.ok, res.stderr + res.errors
    assert registered_after < 5.0, f"device registered only {registered_after:.1f}s after its creation"
    assert f"{ext}/sip:{ext}@127.0.0.1:{reg.port}" in huiyan.ctl.pbx.rx("pjsip show contacts")

    # Now that the endpoint is known to be loaded: a wrong password is challenged again, never registered.
    bad_sipp = Sipp("register_rejected.xml", huiyan.sip_target, service=ext, workdir=tmp_path,
                    user=ext, password=password + "x", timeout=10)
    bad = bad_sipp.run()
    assert bad.ok, bad.stderr + bad.errors
    assert f"{ext}/sip:{ext}@127.0.0.1:{bad_sipp.port}" not in huiyan.ctl.pbx.rx("pjsip show contacts")

    # The same port now answers calls, as the terminal would (-aa answers Asterisk's OPTIONS qualify).
    uas = Sipp("uas_answer.xml", huiyan.sip_target, service=ext, workdir=tmp_path, port=reg.port,
               timeout=30, extra=("-aa",)).start()
    try:
        time.sleep(0.3)  # let SIPp bind its port
        resp = huiyan.call(huiyan.ctl.ami.action(
            "Originate", Channel=f"PJSIP/{ext}", Application="Wait", Data="1", Timeout="10000",
            CallerID="huiyan <19999>", timeout=20))
        assert resp.success
        res = uas.wait()
        assert res.ok, res.stderr + res.errors
    finally:
        uas.kill()
    assert huiyan.ctl.pbx.pid() == pid, "Asterisk was restarted"


def test_caller_is_held_while_fastagi_is_down_and_served_when_it_returns(huiyan: Running, tmp_path: Path) -> None:
    """The controller's FastAGI is gone when the call arrives: the caller hears 'please wait' and music,
    the dialplan retries every few seconds, and the call is served as soon as FastAGI is back."""
    from huiyan.agi.server import FastAgiServer
    from huiyan.pbx.events import AmiEvent

    s = huiyan.settings
    huiyan.call(huiyan.ctl.agi.stop())
    assert not huiyan.ctl.agi.listening
    caller = Sipp("uac_service.xml", huiyan.sip_target, service="19999", workdir=tmp_path, timeout=40).start()
    try:
        time.sleep(7)  # at least one failed attempt and one music interval
        assert caller.proc is not None and caller.proc.poll() is None, "the caller was dropped"
        fresh = FastAgiServer(dict(huiyan.ctl.agi.routes), s.agi_host, s.agi_port, node_name=huiyan.ctl.node.name,
                              sounds_dir=s.data_dir / "sounds")
        huiyan.call(fresh.start())
        huiyan.ctl.agi = fresh
        res = caller.wait()
        assert res.ok, res.stderr + res.errors
    finally:
        caller.kill()
    assert fresh.sessions_served == 1
    starts = huiyan.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "VarSet"
                                and e.fields.get("Variable") == "HUIYAN_TRIES")
    assert starts, "the dialplan never counted a retry"
    assert max(int(e.fields.get("Value") or 0) for e in starts) >= 1
