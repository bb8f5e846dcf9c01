"""Agents and supervisors acting on live hotline calls through the REST API, against a real Asterisk:
invite a lawyer (three-way call), blind and attended transfer, listen/whisper/barge, live statistics on
the event WebSocket, and clear 4xx answers for unknown agents and calls."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Running
from tests.integration.test_hotline import Hotline, Phone, _ok, hotline  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def _token(h: Running) -> dict[str, str]:
    from huiyan.db.seed import ensure_admin

    with h.ctl.session_factory() as s:
        ensure_admin(s, "ctladmin", "ctl-admin-password")
        s.commit()
    r = httpx.post(f"{h.api}/api/auth/login", json={"username": "ctladmin", "password": "ctl-admin-password"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _extra_phone(hl: Hotline, role: str = "lawyer") -> Phone:
    """A registered phone of a user who is not in the queue (a lawyer, a supervisor, another agent)."""
    from huiyan.db import store

    from tests.integration.sipp import Sipp, free_port

    with hl.h.ctl.session_factory() as s:
        u = store.create_user(s, username=f"{role}{time.monotonic_ns()}", password="extra-password-1", role=role,
                              display_name=role)
        s.commit()
        p = Phone(u.id, u.extension, u.sip_password, free_port())
    hl.h.call(hl.h.ctl.apply_directory())
    res = Sipp("register.xml", hl.h.sip_target, service=p.extension, workdir=hl.tmp, user=p.extension,
               password=p.password, port=p.port, timeout=10).run()
    _ok(res)
    return p


def _connected_call(hl: Hotline, agent: Phone, *, hangup_after_ms: int = 20000):  # type: ignore[no-untyped-def]
    hl.phone(agent, answer_after_ms=200)
    caller = hl.caller(digits="1", hangup_after_ms=hangup_after_ms, timeout=60)
    svc = hl.h.ctl.hotline
    call_id = hl.wait_for(lambda: next((c for c, w in svc.waiters.items() if w.answered_by == agent.agent_id), None))
    return caller, call_id


def _bridge_names(h: Running, call_id: str) -> set[str]:
    ch = h.ctl.tracker.channels.get(call_id)
    if ch is None or ch.bridge_id is None:
        return set()
    return {c.name for c in h.ctl.tracker.channels_in_bridge(ch.bridge_id)}


def _talks_to(h: Running, call_id: str, extension: str) -> bool:
    """Is the caller's bridge joined to `extension`'s channel, directly or via a Local channel pair?"""
    t = h.ctl.tracker
    for name in _bridge_names(h, call_id):
        if name.startswith(f"PJSIP/{extension}-"):
            return True
        if name.startswith("Local/") and name.endswith(";1"):
            other_half = t.channel_by_name(name[:-1] + "2")
            if other_half and other_half.bridge_id and any(
                    c.name.startswith(f"PJSIP/{extension}-") for c in t.channels_in_bridge(other_half.bridge_id)):
                return True
    return False


def _bridge_if(h: Running, call_id: str, pred) -> set[str] | None:  # type: ignore[no-untyped-def]
    names = _bridge_names(h, call_id)
    return names if pred(names) else None


def test_invite_a_lawyer_makes_a_three_way_call_without_dropping_the_caller(hotline, huiyan: Running) -> None:  # type: ignore[no-untyped-def]
    hl = hotline()
    agent = hl.add_agent()
    hl.start()
    lawyer = _extra_phone(hl, "lawyer")
    hl.phone(lawyer, answer_after_ms=200)
    caller, call_id = _connected_call(hl, agent, hangup_after_ms=14000)
    auth = _token(huiyan)
    r = httpx.post(f"{huiyan.api}/api/hotline/calls/{call_id}/parties", headers=auth,
                   json={"target": lawyer.extension})
    assert r.status_code == 202, r.text
    names = hl.wait_for(lambda: _bridge_if(huiyan, call_id, lambda n: len(n) == 3), timeout=10)
    assert any(n.startswith(f"PJSIP/{lawyer.extension}-") for n in names)
    assert any(n.startswith(f"PJSIP/{agent.extension}-") for n in names)
    parties = httpx.get(f"{huiyan.api}/api/hotline/calls/{call_id}/parties", headers=auth).json()["parties"]
    lawyer_channel = next(p for p in parties if p.startswith(f"PJSIP/{lawyer.extension}-"))
    # the agent removes the lawyer again: back to two, the caller still there
    r = httpx.delete(f"{huiyan.api}/api/hotline/calls/{call_id}/parties/{lawyer_channel}", headers=auth)
    assert r.status_code == 204, r.text
    hl.wait_for(lambda: len(_bridge_names(huiyan, call_id)) == 2, timeout=10)
    assert caller.proc is not None and caller.proc.poll() is None, "the caller was dropped"
    _ok(caller.wait())  # the caller hangs up on their own, after the three-way part


@pytest.mark.parametrize("mode,options", [("listen", "qdE"), ("whisper", "qwdE"), ("barge", "qBdE")])
def test_supervisor_listen_whisper_barge(hotline, huiyan: Running, mode: str, options: str) -> None:  # type: ignore[no-untyped-def]
    from huiyan.pbx.events import AmiEvent

    hl = hotline()
    agent = hl.add_agent()
    hl.start()
    sup = _extra_phone(hl, "supervisor")
    hl.phone(sup, answer_after_ms=100)
    caller, call_id = _connected_call(hl, agent, hangup_after_ms=10000)
    r = httpx.post(f"{huiyan.api}/api/hotline/calls/{call_id}/spy", headers=_token(huiyan),
                   json={"mode": mode, "extension": sup.extension})
    assert r.status_code == 202, r.text
    start = huiyan.wait_event(lambda e: isinstance(e, AmiEvent) and e.name == "ChanSpyStart"
                              and e.fields.get("SpyeeChannel", "").startswith(f"PJSIP/{agent.extension}-")
                              and e.fields.get("SpyerChannel", "").startswith(f"PJSIP/{sup.extension}-"),
                              timeout=10)
    spy_channel = start.fields["SpyerChannel"]
    rows = huiyan.call(huiyan.ctl.ami.action_list("CoreShowChannels"))
    spy_row = next(r for r in rows if r.get("Channel") == spy_channel)
    assert spy_row["Application"] == "ChanSpy"
    assert spy_row["ApplicationData"].endswith(f",{options}")
    # switch to barge without redialling: the same spy channel stays up
    r = httpx.post(f"{huiyan.api}/api/hotline/spy/switch", headers=_token(huiyan),
                   json={"channel": spy_channel, "mode": "barge"})
    assert r.status_code == 204, r.text
    time.sleep(0.5)
    assert any(r.get("Channel") == spy_channel for r in huiyan.call(huiyan.ctl.ami.action_list("CoreShowChannels")))
    _ok(caller.wait())
    huiyan.wait_event(lambda e: isinstance(e, AmiEvent) and e.name == "ChanSpyStop"
                      and e.fields.get("SpyerChannel") == spy_channel, timeout=10)


def test_blind_transfer_to_another_agent_frees_the_first(hotline, huiyan: Running) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(wrapup=0)
    first = hl.add_agent()
    hl.start()
    other = _extra_phone(hl, "agent")
    hl.phone(other, answer_after_ms=200)
    caller, call_id = _connected_call(hl, first, hangup_after_ms=12000)
    r = httpx.post(f"{huiyan.api}/api/hotline/calls/{call_id}/transfer", headers=_token(huiyan),
                   json={"kind": "blind", "target": other.extension})
    assert r.status_code == 200, r.text
    names = hl.wait_for(lambda: _bridge_if(huiyan, call_id, lambda n: any(
        x.startswith(f"PJSIP/{other.extension}-") for x in n)), timeout=10)
    assert not any(x.startswith(f"PJSIP/{first.extension}-") for x in names)
    hl.wait_for(lambda: huiyan.ctl.hotline.acd.agent(first.agent_id).state.value == "available", timeout=5)
    assert "transfer" in [e for e, _ in hl.log(call_id)]
    _ok(caller.wait())


def test_blind_transfer_to_a_queue_puts_the_caller_back_in_line(hotline, huiyan: Running) -> None:  # type: ignore[no-untyped-def]
    from huiyan.db.models import HotlineCall

    hl = hotline(wrapup=30)  # the first agent stays in wrap-up: nobody takes the call back at once
    first = hl.add_agent()
    hl.start()
    caller, call_id = _connected_call(hl, first, hangup_after_ms=9000)
    r = httpx.post(f"{huiyan.api}/api/hotline/calls/{call_id}/transfer", headers=_token(huiyan),
                   json={"kind": "blind", "target": f"queue:{hl.queue_id}"})
    assert r.status_code == 200, r.text
    # Back in the queue (a new enqueue after the transfer), waiting with music, not dropped.
    hl.wait_for(lambda: [e for e, _ in hl.log(call_id)].count("enqueue") == 2, timeout=10)
    svc = huiyan.ctl.hotline
    waiter = svc.waiters.get(call_id)
    assert waiter is not None and waiter.queue_id == str(hl.queue_id) and waiter.answered_by is None
    time.sleep(2)
    assert caller.proc is not None and caller.proc.poll() is None, "the caller was dropped by the transfer"
    assert not _bridge_names(huiyan, call_id) or not any(
        n.startswith(f"PJSIP/{first.extension}-") for n in _bridge_names(huiyan, call_id))
    # the call's row keeps the menu key the caller pressed the first time
    with huiyan.ctl.session_factory() as s:
        row = s.get(HotlineCall, call_id)
        assert row is not None and row.menu_digit == "1"
    _ok(caller.wait())


def test_attended_transfer_connects_caller_and_target(hotline, huiyan: Running) -> None:  # type: ignore[no-untyped-def]
    from huiyan.pbx.events import AmiEvent

    hl = hotline(wrapup=0)
    first = hl.add_agent()
    hl.start()
    other = _extra_phone(hl, "agent")
    hl.phone(other, answer_after_ms=200)
    caller, call_id = _connected_call(hl, first, hangup_after_ms=15000)
    r = httpx.post(f"{huiyan.api}/api/hotline/calls/{call_id}/transfer", headers=_token(huiyan),
                   json={"kind": "attended", "target": other.extension})
    assert r.status_code == 200, r.text
    # the consultation leg is up when the target's channel is in a bridge of its own with the agent
    hl.wait_for(lambda: any(c.name.startswith(f"PJSIP/{other.extension}-") and c.bridge_id
                            for c in huiyan.ctl.tracker.channels.values()), timeout=10)
    # the agent hangs up: that completes the transfer
    # (during the consultation the agent's channel sits in a new bridge with the target)
    agent_chan = next(c.name for c in huiyan.ctl.tracker.channels.values()
                      if c.name.startswith(f"PJSIP/{first.extension}-"))
    huiyan.call(huiyan.ctl.ami.action("Hangup", Channel=agent_chan))
    done = huiyan.wait_event(lambda e: isinstance(e, AmiEvent) and e.name == "AttendedTransfer", timeout=10)
    assert done.fields.get("Result") == "Success", done.fields
    # The caller now talks to the target: directly, or through the transfer's Local channel pair (it
    # does not optimise away while the caller's recording hook is on the channel).
    hl.wait_for(lambda: _talks_to(huiyan, call_id, other.extension), timeout=10)
    hl.wait_for(lambda: huiyan.ctl.hotline.acd.agent(first.agent_id).state.value == "available", timeout=5)
    _ok(caller.wait())


def test_live_statistics_reach_the_websocket_within_two_seconds(hotline, huiyan: Running) -> None:  # type: ignore[no-untyped-def]
    import websockets

    hl = hotline()
    hl.add_agent()
    hl.start()
    for p in hl.phones:
        huiyan.ctl.hotline.pause(p.agent_id, "培训")
    token = _token(huiyan)["Authorization"].split()[1]
    url = f"ws://{huiyan.settings.api_host}:{huiyan.settings.api_port}/api/events?token={token}"
    qid = str(hl.queue_id)

    async def watch() -> float:
        async with websockets.connect(url) as ws:
            caller = hl.caller(digits="1", hangup_after_ms=5000)
            try:
                queued_at = None
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg.get("type") == "HotlineEvent" and msg.get("kind") == "CallQueued" \
                            and msg.get("data", {}).get("queue_id") == qid:
                        queued_at = time.monotonic()
                    if queued_at and msg.get("type") == "HotlineStats":
                        q = msg["stats"]["queues"].get(qid, {})
                        if q.get("waiting") == 1:
                            return time.monotonic() - queued_at
                raise AssertionError("no statistics with the waiting call arrived")
            finally:
                caller.kill()

    lag = asyncio.run(watch())
    assert lag < 2.0, f"statistics arrived {lag:.2f}s after the call queued"


def test_unknown_agents_and_calls_get_404_with_a_reason(huiyan: Running) -> None:
    auth = _token(huiyan)
    for method, path, body in [
        ("post", "/api/agents/987654/login", {}),
        ("post", "/api/agents/987654/pause", {"reason": "休息"}),
        ("post", "/api/hotline/calls/no-such-call/hangup", None),
        ("post", "/api/hotline/calls/no-such-call/transfer", {"target": "80001"}),
        ("post", "/api/hotline/calls/no-such-call/parties", {"target": "80001"}),
        ("post", "/api/hotline/calls/no-such-call/spy", {"mode": "listen", "extension": "80001"}),
    ]:
        r = getattr(httpx, method)(f"{huiyan.api}{path}", headers=auth, **({"json": body} if body is not None else {}))
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["detail"], path
    r = httpx.post(f"{huiyan.api}/api/agents/1/pause", headers=auth, json={"reason": ""})
    assert r.status_code == 422
