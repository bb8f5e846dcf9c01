"""The dispatch runtime without Asterisk: the real services (dispatch, rooms, meeting control) on a real
database, a stub AMI that records the actions, and the AMI events Asterisk 22 sends for each outcome (as
seen on the real PBX: an unregistered terminal fails the Originate with no channel; a 603 hangs the
channel up with cause 21 before the OriginateResponse)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db import store as directory
from huiyan.db.errors import Conflict
from huiyan.db.models import LegStatus
from huiyan.db.numbering import ExtensionPlan
from huiyan.dispatch import store
from huiyan.dispatch.model import DispatchEnded, LegFinished, RetryPolicy
from huiyan.dispatch.service import DispatchEvent, DispatchService
from huiyan.pbx.ami import AmiActionError, AmiResponse
from huiyan.pbx.events import parse_event
from huiyan.rooms.control import RoomControl
from huiyan.rooms.service import RoomService
from huiyan.rooms.store import DbRoomStore

S = LegStatus
ROOMS = ExtensionPlan.from_pattern("_6XXX")
INTERNAL = ExtensionPlan.from_pattern("_8XXXX")
CALL_INFO = "PJSIP_HEADER(add,Call-Info)"


class StubAmi:
    """Records actions; `errors` maps an action name to Asterisk's error message."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []
        self.errors: dict[str, str] = {}

    async def action(self, name: str, **fields: Any) -> AmiResponse:
        self.actions.append((name, fields))
        if name in self.errors:
            resp = AmiResponse("pbx1", name, {"Response": "Error", "Message": self.errors[name]})
            raise AmiActionError(f"{name} failed on node pbx1: {self.errors[name]}", resp)
        return AmiResponse("pbx1", name, {"Response": "Success"})

    def sent(self, name: str) -> list[dict[str, Any]]:
        return [f for n, f in self.actions if n == name]


def ev(name: str, **fields: str) -> Any:
    return parse_event("pbx1", {"Event": name, **fields})


class Pbx:
    """The dispatch runtime wired as `huiyan up` wires it, minus Asterisk."""

    def __init__(self, sessions: sessionmaker[Session], tmp: Path) -> None:
        self.sessions = sessions
        self.tmp = tmp
        self.bus = EventBus()
        self.events: list[Any] = []
        self.bus.on(self.events.append)
        self.ami = StubAmi()
        self.db = store.DbDispatchStore(sessions, room_plan=ROOMS, internal=INTERNAL)
        with sessions() as s:
            org = directory.create_organisation(s, name="测试市司法局", code="T1", level="city")
            self.devices = [directory.create_device(s, serial=f"T-{i}", organisation_id=org.id,
                                                    display_name=f"终端{i}") for i in range(5)]
            self.commander = directory.create_user(s, username="duty", password="duty-password-1", role="supervisor")
            s.commit()

    async def start(self, grace: float = 0.3) -> DispatchService:
        self.rooms = RoomService("pbx1", DbRoomStore(self.sessions), self.bus)
        await self.rooms.start()
        self.control = RoomControl(self.rooms, self.ami, Settings(data_dir=self.tmp), recordings_dir=self.tmp / "rec")
        self.svc = DispatchService("pbx1", self.db, self.bus, self.rooms, public_host="hy.example",
                                   failure_grace=grace)
        self.svc.attach(self.control, self.ami)
        await self.svc.start()
        self.bus.on(self.rooms.on_event)
        self.bus.on(self.svc.on_event)
        return self.svc

    async def stop(self) -> None:
        await self.svc.stop()
        await self.rooms.stop()

    def group(self, n: int) -> int:
        with self.sessions() as s:
            g = store.create_group(s, name=f"组{time.monotonic_ns()}", kind="custom",
                                   device_ids=[d.id for d in self.devices[:n]])
            s.commit()
            return g.id

    def originates(self) -> list[dict[str, Any]]:
        return self.ami.sent("Originate")

    def statuses(self, leg_id: int) -> list[str]:
        out: list[str] = []
        for e in self.events:
            if isinstance(e, DispatchEvent) and e.kind == "leg" and e.data["id"] == leg_id \
                    and (not out or out[-1] != e.data["status"]):
                out.append(e.data["status"])
        return out


@pytest_asyncio.fixture(loop_scope="function")
async def pbx(db_sessions: sessionmaker[Session], tmp_path: Path) -> Any:
    p = Pbx(db_sessions, tmp_path)
    await p.start()
    yield p
    await p.stop()


async def until(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def test_one_click_dials_every_terminal_and_follows_each_leg(pbx: Pbx) -> None:
    svc = pbx.svc
    policy = RetryPolicy(retries=1, interval_s=0.05, on=frozenset({S.UNREACHABLE}), ring_seconds=20)
    d = await svc.dispatch(pbx.group(5), commander_user_id=pbx.commander.id, policy=policy)
    legs = sorted(d.legs.values(), key=lambda x: x.id)
    answers, gone, declines, busy, odd = legs
    sent = pbx.originates()
    assert len(sent) == 5 and {o["ChannelId"] for o in sent} == {leg.channel_id for leg in legs}
    for o, leg in zip(sent, legs, strict=True):
        assert o["Channel"] == f"PJSIP/{leg.party.target}" and o["Exten"] == d.room_number and o["Timeout"] == "20000"
        assert o["Variable"][CALL_INFO] == "<sip:hy.example>;answer-after=0"
    assert {leg.status for leg in legs} == {S.CALLING}
    assert pbx.rooms.spec(d.room_id).kind.value == "dispatch"  # the room was loaded before anyone answered
    started = [e for e in pbx.events if isinstance(e, DispatchEvent) and e.kind == "started"]
    assert started and started[0].data["legs"] == 5

    # answers: rings, answers, joins the room (whose recording starts with the meeting)
    a = answers.channel_id
    pbx.bus.publish(ev("Newchannel", Uniqueid=a, Channel="PJSIP/x-1", ChannelState="0", ChannelStateDesc="Down"))
    pbx.bus.publish(ev("Newstate", Uniqueid=a, Channel="PJSIP/x-1", ChannelState="5", ChannelStateDesc="Ringing"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=a, Response="Success", Reason="4", Channel="PJSIP/x-1"))
    pbx.bus.publish(ev("ConfbridgeStart", Conference=d.room_number, BridgeUniqueid="br"))
    pbx.bus.publish(ev("ConfbridgeJoin", Conference=d.room_number, Uniqueid=a, Channel="PJSIP/x-1",
                       BridgeUniqueid="br", Admin="No", Muted="No", CallerIDNum="6001", CallerIDName="x"))
    assert pbx.statuses(answers.id) == ["calling", "ringing", "answered", "joined"]
    # never registered: no channel at all; retried once after the interval with a new channel id
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=gone.channel_id, Response="Failure", Reason="0",
                       Channel=f"PJSIP/{gone.party.target}"))
    assert gone.status == S.UNREACHABLE and gone.retry_at is not None and not gone.final
    first_channel = gone.channel_id
    await until(lambda: len(pbx.originates()) == 6)
    assert gone.channel_id != first_channel and gone.status == S.CALLING and gone.attempts == 2
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=first_channel, Response="Failure", Reason="0"))  # stale: ignored
    assert gone.status == S.CALLING
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=gone.channel_id, Response="Failure", Reason="0"))
    assert (gone.status, gone.final, gone.retries) == (S.UNREACHABLE, True, 1)
    # 603: the channel hangs up with cause 21 before the OriginateResponse
    pbx.bus.publish(ev("Newchannel", Uniqueid=declines.channel_id, Channel="PJSIP/y-2", ChannelState="0"))
    pbx.bus.publish(ev("Hangup", Uniqueid=declines.channel_id, Channel="PJSIP/y-2", Cause="21"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=declines.channel_id, Response="Failure", Reason="0"))
    assert declines.status == S.DECLINED and declines.final and declines.reason == "cause 21"
    # the OriginateResponse first: it waits (briefly) for the Hangup that says why
    pbx.bus.publish(ev("Newchannel", Uniqueid=busy.channel_id, Channel="PJSIP/z-3", ChannelState="0"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=busy.channel_id, Response="Failure", Reason="0"))
    assert busy.status == S.CALLING
    pbx.bus.publish(ev("Hangup", Uniqueid=busy.channel_id, Channel="PJSIP/z-3", Cause="17"))
    assert busy.status == S.BUSY and busy.final
    # ... and a failure whose Hangup never comes is a plain failure after the grace time
    pbx.bus.publish(ev("Newchannel", Uniqueid=odd.channel_id, Channel="PJSIP/w-4", ChannelState="0"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=odd.channel_id, Response="Failure", Reason="0"))
    await until(lambda: odd.status == S.FAILED)
    await asyncio.sleep(0.2)
    assert len(pbx.originates()) == 6  # nothing but the unreachable one was retried

    view = await svc.view(d.id)
    assert view["counts"] == {"busy": 1, "declined": 1, "failed": 1, "joined": 1, "unreachable": 1}
    assert view["room"]["live"] and view["room"]["participants"] == 1 and len(view["room"]["pin"]) == 6
    assert pbx.ami.sent("ConfbridgeStartRecord"), "the dispatch room records from its start"
    # what the database says is what the runtime says
    await svc._drain()
    stored = pbx.db.load(d.id)
    assert {i: (x.status, x.attempts) for i, x in stored.legs.items()} == {
        i: (x.status, x.attempts) for i, x in d.legs.items()}


async def test_drop_add_and_end_everything(pbx: Pbx) -> None:
    svc = pbx.svc
    policy = RetryPolicy(retries=3, interval_s=2.0, on=frozenset({S.UNREACHABLE}))
    d = await svc.dispatch(pbx.group(4), commander_user_id=pbx.commander.id, policy=policy, auto_answer=False)
    assert all(CALL_INFO not in o["Variable"] for o in pbx.originates())  # no auto-answer asked for
    joined, ringing, waiting, early = sorted(d.legs.values(), key=lambda x: x.id)
    pbx.bus.publish(ev("ConfbridgeStart", Conference=d.room_number, BridgeUniqueid="br"))
    pbx.bus.publish(ev("ConfbridgeJoin", Conference=d.room_number, Uniqueid=joined.channel_id, Channel="PJSIP/a-1",
                       BridgeUniqueid="br", Admin="No", Muted="No"))
    pbx.bus.publish(ev("Newstate", Uniqueid=ringing.channel_id, ChannelStateDesc="Ringing", Channel="PJSIP/b-2"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=waiting.channel_id, Response="Failure", Reason="0"))
    assert (joined.status, ringing.status, waiting.status) == (S.JOINED, S.RINGING, S.UNREACHABLE)

    # drop the joined one: its channel is hung up
    left = await svc.drop(d.id, joined.id)
    assert left.status == S.DROPPED and pbx.ami.sent("Hangup")[-1] == {"Channel": joined.channel_id, "Cause": 16}
    with pytest.raises(LegFinished):
        await svc.drop(d.id, joined.id)
    # drop one whose Originate is still under way: when its call shows up anyway, it is hung up
    await svc.drop(d.id, early.id)
    hangups = len(pbx.ami.sent("Hangup"))
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=early.channel_id, Response="Success", Reason="4"))
    await until(lambda: len(pbx.ami.sent("Hangup")) == hangups + 1)
    assert pbx.ami.sent("Hangup")[-1]["Channel"] == early.channel_id and early.status == S.DROPPED

    # add a party by extension: no auto-answer unless asked; once only while it is being called
    added = await svc.add_party(d.id, target="80777", name="值班员")
    assert added.status == S.CALLING and pbx.originates()[-1]["Channel"] == "PJSIP/80777"
    assert CALL_INFO not in pbx.originates()[-1]["Variable"]
    with pytest.raises(Conflict, match="already in dispatch"):
        await svc.add_party(d.id, target="80777")
    assert pbx.rooms.invitations[added.channel_id].role.value == "participant"
    # the commander calling themselves in chairs the room
    me = await svc.add_party(d.id, user_id=pbx.commander.id)
    assert me.party.kind.value == "user" and pbx.originates()[-1]["Channel"] == f"PJSIP/{pbx.commander.extension}"
    assert pbx.rooms.invitations[me.channel_id].role.value == "moderator"
    # Asterisk refuses an Originate: the leg fails with the reason (not retried: only unreachable is)
    pbx.ami.errors["Originate"] = "Originate failed"
    refused = await svc.add_party(d.id, device_id=pbx.devices[4].id)
    assert refused.status == S.FAILED and "Originate failed" in refused.reason and refused.final
    del pbx.ami.errors["Originate"]

    # the room records; ending stops the recording, ends the meeting, hangs up what still rings, and
    # cancels the pending retry
    await until(lambda: pbx.rooms.state(d.room_number).recording is not None)
    retry_at = waiting.retry_at
    assert retry_at is not None and waiting.status == S.UNREACHABLE, "the retry came before the end: too slow"
    ended = await svc.end(d.id)
    assert ended.status.value == "ended"
    assert {x.id: x.status for x in ended.legs.values()} == {
        joined.id: S.DROPPED, ringing.id: S.CANCELLED, waiting.id: S.CANCELLED, early.id: S.DROPPED,
        added.id: S.CANCELLED, me.id: S.CANCELLED, refused.id: S.FAILED}
    assert pbx.ami.sent("ConfbridgeStopRecord") and pbx.ami.sent("ConfbridgeKick")[-1]["Channel"] == "all"
    assert {h["Channel"] for h in pbx.ami.sent("Hangup")} >= {ringing.channel_id, added.channel_id}
    calls = len(pbx.originates())
    await asyncio.sleep(max(0.0, retry_at - time.time()) + 0.3)
    assert len(pbx.originates()) == calls, "a retry was dialled after the end"
    hangups = len(pbx.ami.sent("Hangup"))  # a call answered just as the dispatch ended is hung up too
    pbx.bus.publish(ev("OriginateResponse", Uniqueid=added.channel_id, Response="Success", Reason="4"))
    await until(lambda: len(pbx.ami.sent("Hangup")) == hangups + 1)
    assert added.status == S.CANCELLED
    assert not pbx.rooms.spec(d.room_id).active  # nobody rejoins the emergency room
    with pytest.raises(DispatchEnded):
        await svc.end(d.id)
    with pytest.raises(DispatchEnded):
        await svc.add_party(d.id, target="80778")
    assert [e.kind for e in pbx.events if isinstance(e, DispatchEvent)][-1] == "ended"
    stored = pbx.db.load(d.id)
    assert stored.status.value == "ended" and stored.counts() == ended.counts()


async def test_a_restarted_controller_shows_the_last_state_and_carries_on(pbx: Pbx) -> None:
    policy = RetryPolicy(retries=2, interval_s=0.1, on=frozenset({S.UNREACHABLE}))
    with pbx.sessions() as s:
        row = store.create_dispatch(s, group_id=pbx.group(3), commander_user_id=None, node="pbx1", room_plan=ROOMS,
                                   policy=policy)
        s.commit()
        did = row.id
    state = pbx.db.load(did)
    gone, waiting, pending = sorted(state.legs.values(), key=lambda x: x.id)
    now = time.time()
    gone.dialling("old-1", now - 60)
    gone.joined(now - 50)  # was in the room; the meeting went on without the controller and it left
    waiting.dialling("old-2", now - 10)
    waiting.failed(0, policy, now)  # waiting for its retry when the controller died
    pbx.db.save_legs([gone, waiting])
    pbx.ami.actions.clear()

    await pbx.stop()
    svc = await pbx.start()  # the new controller
    d = svc.dispatches[did]
    assert d.legs[gone.id].status == S.LEFT and "while the controller was away" in d.legs[gone.id].reason
    await until(lambda: len(pbx.originates()) == 2)  # the pending leg at once, the waiting one on its time
    assert {o["Channel"] for o in pbx.originates()} == {f"PJSIP/{waiting.party.target}",
                                                         f"PJSIP/{pending.party.target}"}
    assert d.legs[waiting.id].attempts == 2 and d.legs[pending.id].attempts == 1
    view = await svc.view(did)
    assert view["status"] == "active" and view["counts"] == {"calling": 2, "left": 1}
