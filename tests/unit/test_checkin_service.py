"""The check-in runtime with an injected clock: the scheduler's reminders, openings, closings and misses,
alerts escalated to the office head after the delay (or not, once acknowledged), a roll-call whose dial
fails, and education attendance from the rooms' join/leave events."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.checkin import store
from huiyan.checkin.service import CheckinAlertEvent, CheckinEvent, CheckinService
from huiyan.config.settings import Settings
from huiyan.db import store as directory
from huiyan.db.models import (
    CheckIn,
    CheckinAlert,
    CheckinNotification,
    CheckinWindow,
    Role,
    WindowResult,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.pbx.events import AmiEvent
from huiyan.rooms.service import RoomEvent

CST = timezone(timedelta(hours=8))
PLAN = ExtensionPlan.from_pattern("_8XXXX")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class FakeAmi:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []

    async def action(self, name: str, **fields: Any) -> dict[str, str]:
        self.actions.append((name, fields))
        return {"Response": "Success"}


def _world(s: Session, *, head: bool = True) -> dict[str, int]:
    prov = directory.create_organisation(s, name="省厅", code="220000", level="province")
    office = directory.create_organisation(s, name="城西司法所", code="220101001", level="office", parent_id=prov.id)
    officer = directory.create_user(s, username="officer_a", password="password-123", role=Role.OFFICER,
                                    organisation_id=office.id)
    out = {"office": office.id, "officer": officer.id}
    if head:
        out["head"] = directory.create_user(s, username="office_head", password="password-123",
                                            role=Role.SUPERVISOR, organisation_id=office.id).id
    out["director"] = directory.create_user(s, username="director", password="password-123", role=Role.SUPERVISOR,
                                            organisation_id=prov.id).id
    subj = store.create_subject(s, name="孙某", officer_id=officer.id, organisation_id=office.id,
                                supervision_start=date(2026, 1, 1), supervision_end=date(2027, 1, 1), pin="2468",
                                plan=PLAN, client="80555")
    out["subject"] = subj.id
    s.commit()
    return out


@pytest.fixture
def rig(db_sessions: sessionmaker[Session], tmp_path: Any) -> Any:
    settings = Settings(data_dir=tmp_path / "data")
    settings.checkin.escalate_after_s = 600
    bus = EventBus()
    seen: list[Any] = []
    bus.on(seen.append)
    clock = Clock(datetime(2026, 12, 1, 8, 0, tzinfo=CST))
    svc = CheckinService("pbx1", db_sessions, settings, bus, clock=clock)
    return svc, clock, seen, db_sessions


def _events(seen: list[Any], kind: str) -> list[CheckinEvent]:
    return [e for e in seen if isinstance(e, CheckinEvent) and e.kind == kind]


async def test_daily_window_reminds_opens_closes_missed_and_escalates(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    await svc.start(run_scheduler=False)
    try:
        with sessions() as s:
            ids = _world(s)
            subj = store.get_subject(s, ids["subject"])
            store.add_schedule(s, subj, kind="daily", timezone="Asia/Shanghai", start_time="09:00",
                               end_time="11:30", grace_s=1800, remind_s=900, at=clock.at)
            s.commit()
        await svc.tick()  # 08:00: windows made, nothing due yet
        with sessions() as s:
            windows = list(s.scalars(select(CheckinWindow).order_by(CheckinWindow.opens_at)))
        assert windows and windows[0].opens_at == datetime(2026, 12, 1, 9, tzinfo=CST)
        assert _events(seen, "reminder") == []

        clock.at = datetime(2026, 12, 1, 8, 45, tzinfo=CST)
        await svc.tick()
        [rem] = _events(seen, "reminder")
        assert rem.subject_id == ids["subject"] and rem.data["window_id"] == windows[0].id
        with sessions() as s:
            [n] = s.scalars(select(CheckinNotification).where(CheckinNotification.kind == "reminder"))
            assert n.subject_id == ids["subject"] and n.window_id == windows[0].id
        await svc.tick()
        assert len(_events(seen, "reminder")) == 1  # once per window

        clock.at = datetime(2026, 12, 1, 9, 0, 1, tzinfo=CST)
        await svc.tick()
        assert [e.data["window_id"] for e in _events(seen, "window_opened")] == [windows[0].id]

        clock.at = datetime(2026, 12, 1, 11, 59, tzinfo=CST)  # in the grace period: not missed yet
        await svc.tick()
        assert _events(seen, "window_closed") == []

        clock.at = datetime(2026, 12, 1, 12, 0, 1, tzinfo=CST)
        await svc.tick()
        [closed] = _events(seen, "window_closed")
        assert closed.data["result"] == "missed"
        [raised] = [e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "raised"]
        assert (raised.alert, raised.officer_id, raised.escalated_to_id) == ("missed", ids["officer"], None)
        with sessions() as s:
            row = s.get(CheckIn, closed.checkin_id)
            assert row is not None and row.outcome.value == "missed" and row.kind.value == "window"
            assert s.get(CheckinWindow, windows[0].id).result == WindowResult.MISSED

        clock.at += timedelta(seconds=599)
        await svc.tick()
        assert not [e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "escalated"]
        clock.at += timedelta(seconds=2)
        await svc.tick()
        [esc] = [e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "escalated"]
        assert esc.alert_id == raised.alert_id and esc.escalated_to_id == ids["head"]  # the office's supervisor
        with sessions() as s:
            notes = {n.kind: n.user_id for n in s.scalars(select(CheckinNotification))}
        assert notes["alert"] == ids["officer"] and notes["escalation"] == ids["head"]
        await svc.tick()
        assert len([e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "escalated"]) == 1
    finally:
        await svc.stop()


async def test_an_acknowledged_alert_is_not_escalated_and_a_pass_is_not_missed(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    await svc.start(run_scheduler=False)
    try:
        with sessions() as s:
            ids = _world(s)
            subj = store.get_subject(s, ids["subject"])
            store.add_schedule(s, subj, kind="weekly", days=[2, 3], timezone="Asia/Shanghai",
                               start_time="10:00", end_time="10:30", remind_s=0,
                               at=datetime(2026, 12, 1, 0, 0, tzinfo=CST))  # 2026-12-01 is a Tuesday
            s.commit()
        clock.at = datetime(2026, 12, 1, 10, 10, tzinfo=CST)
        await svc.tick()
        cid, in_window = await svc.begin_phone(ids["subject"], call_id="c1", caller="80555")
        assert in_window
        assert (await svc.complete(cid)).value == "on_time"
        clock.at = datetime(2026, 12, 1, 10, 31, tzinfo=CST)
        await svc.tick()
        assert [e.data["result"] for e in _events(seen, "window_closed")] == ["passed"]
        # Wednesday: missed, acknowledged in time, so never escalated.
        clock.at = datetime(2026, 12, 2, 10, 31, tzinfo=CST)
        await svc.tick()
        assert [e.data["result"] for e in _events(seen, "window_closed")] == ["passed", "missed"]
        with sessions() as s:
            [alert] = s.scalars(select(CheckinAlert))
            store.acknowledge(s, alert.id, ids["officer"], "called him", clock.at)
            s.commit()
        clock.at += timedelta(hours=2)
        await svc.tick()
        assert not [e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "escalated"]
        # Thursday has no window (days 2 and 3 only).
        clock.at = datetime(2026, 12, 3, 23, 0, tzinfo=CST)
        await svc.tick()
        assert len(_events(seen, "window_closed")) == 2
    finally:
        await svc.stop()


async def test_escalation_without_an_office_supervisor_goes_to_the_configured_user_or_up_the_tree(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    with sessions() as s:
        ids = _world(s, head=False)
        subj = store.get_subject(s, ids["subject"])
        a1 = store.raise_alert(s, subj, None, at=clock.at, escalate_after=timedelta(seconds=1), kind="missed")
        s.commit()
        assert store.office_head(s, subj, None).id == ids["director"]  # the nearest supervisor above
        configured = directory.create_user(s, username="duty_head", password="password-123", role=Role.SUPERVISOR)
        s.commit()
        assert store.office_head(s, subj, "duty_head").id == configured.id
        assert a1.id
    svc.settings.checkin.escalate_to = "duty_head"
    clock.at += timedelta(seconds=2)
    await svc.tick()
    [esc] = [e for e in seen if isinstance(e, CheckinAlertEvent) and e.kind == "escalated"]
    assert esc.escalated_to_id == configured.id


async def test_a_phone_call_outside_any_window_is_an_attempt_never_a_pass(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    with sessions() as s:
        ids = _world(s)
    cid, in_window = await svc.begin_phone(ids["subject"], call_id="c9", caller="80555")
    assert not in_window
    with sessions() as s:
        row = s.get(CheckIn, cid)
        assert row is not None and row.outcome.value == "outside_window" and row.window_id is None
        assert list(s.scalars(select(CheckinAlert))) == []
    assert [e.checkin_id for e in _events(seen, "outside_window")] == [cid]


async def test_rollcall_to_an_unreachable_client_is_missed_and_alerted(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    svc.ami = FakeAmi()
    await svc.start(run_scheduler=False)
    try:
        with sessions() as s:
            ids = _world(s)
            scope = store.scope_of(s, ids["officer"], Role.OFFICER)
        view = await svc.start_rollcall(scope, [ids["subject"]], actor_id=ids["officer"], ring_s=10)
        for _ in range(100):
            if svc.ami.actions:
                break
            await asyncio.sleep(0.02)
        [(name, fields)] = svc.ami.actions
        assert name == "Originate" and fields["Channel"] == "PJSIP/80555" and fields["Exten"] == "12340"
        assert fields["Variable"]["HUIYAN_CK_ID"] == str(view["items"][0]["checkin_id"])
        # Asterisk 22 answers an Originate to an endpoint with no contact with Reason 0 and no channel.
        svc.on_event(AmiEvent("pbx1", "OriginateResponse", {"Uniqueid": fields["ChannelId"], "Response": "Failure",
                                                               "Reason": "0"}))
        for _ in range(200):
            if _events(seen, "rollcall_done"):
                break
            await asyncio.sleep(0.02)
        done = (await svc.rollcall_view(view["id"]))
        assert done["status"] == "done" and done["summary"] == {"missed": 1}
        assert "unreachable" in done["items"][0]["reason"]
        [raised] = [e for e in seen if isinstance(e, CheckinAlertEvent)]
        assert (raised.kind, raised.alert) == ("raised", "missed")
        [progress] = _events(seen, "rollcall_progress")
        assert (progress.data["done"], progress.data["total"], progress.data["outcome"]) == (1, 1, "missed")
    finally:
        await svc.stop()


async def test_education_attendance_from_join_and_leave_events(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    with sessions() as s:
        ids = _world(s)
        other = store.create_subject(s, name="周某", officer_id=ids["officer"], organisation_id=ids["office"],
                                     supervision_start=date(2026, 1, 1), supervision_end=date(2027, 1, 1),
                                     pin="1357", plan=PLAN, client="80556")
        scope = store.scope_of(s, ids["officer"], Role.OFFICER)
        t0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
        edu = store.create_education(s, scope, title="法治讲座", organisation_id=ids["office"], starts_at=t0,
                                     ends_at=t0 + timedelta(minutes=60), subject_ids=[ids["subject"], other.id],
                                     min_share=0.8, actor_id=ids["officer"], plan=ExtensionPlan.from_pattern("_6XXX"))
        s.commit()
        room_id, edu_id = edu.room_id, edu.id
        assert edu.room.kind.value == "education" and {i.target for i in edu.room.invitees} == {"80555", "80556"}
    await svc.start(run_scheduler=False)
    try:
        def room(kind: str, minutes: int, **data: Any) -> RoomEvent:
            return RoomEvent("pbx1", room_id, "6001", kind, data, (t0 + timedelta(minutes=minutes)).timestamp())

        svc.on_event(room("joined", 0, id="u1", number="80555", name="孙某"))
        svc.on_event(room("joined", 5, id="u2", number="80556", name="周某"))
        svc.on_event(room("joined", 6, id="t1", number="80001", name="teacher"))  # not an attendee
        svc.on_event(room("left", 25, id="u2"))
        svc.on_event(room("left", 55, id="u1"))
        await svc.drain()
        with sessions() as s:
            rows = {r["number"]: r for r in store.attendance(s, store.get_education(s, edu_id), t0 + timedelta(hours=2))}
        assert rows[store_number(sessions, ids["subject"])] == {**rows[store_number(sessions, ids["subject"])],
                                                                "minutes": 55.0, "present": True}
        assert rows[other.number]["minutes"] == 20.0 and not rows[other.number]["present"]
        assert len(_events(seen, "attended")) == 4  # 2 joins + 2 leaves of attendees; the teacher is not counted
    finally:
        await svc.stop()


def store_number(sessions: sessionmaker[Session], subject_id: int) -> str:
    with sessions() as s:
        return store.get_subject(s, subject_id).number


async def test_a_page_left_unfinished_is_incomplete_and_its_window_missed(rig: Any) -> None:
    svc, clock, seen, sessions = rig
    from huiyan.db.models import CheckinKind

    with sessions() as s:
        ids = _world(s)
        subj = store.get_subject(s, ids["subject"])
        store.add_schedule(s, subj, kind="once", timezone="Asia/Shanghai", opens_at=clock.at,
                           closes_at=clock.at + timedelta(minutes=5), at=clock.at)
        s.commit()
    await svc.tick()
    with sessions() as s:
        w = store.open_window(s, ids["subject"], clock.at + timedelta(seconds=1))
        assert w is not None
        started = store.start_checkin(s, store.get_subject(s, ids["subject"]), CheckinKind.BROWSER, clock.at, window=w)
        s.commit()
        cid = started.id
    clock.at += timedelta(minutes=6)
    await svc.tick()
    [closed] = _events(seen, "window_closed")
    assert closed.data["result"] == "missed"
    with sessions() as s:
        row = s.get(CheckIn, cid)
        assert row is not None and row.outcome.value == "incomplete"
        [alert] = s.scalars(select(CheckinAlert))
        assert alert.kind == "missed" and "1 attempt(s) not completed" in alert.message
