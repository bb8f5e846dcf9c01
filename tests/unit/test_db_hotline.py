"""The hotline's tables and their rules: queue settings, voice menus, members, skills, agent state, log, calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.acd import model as acd
from huiyan.db import hotline, make_config, make_engine, store, upgrade
from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import (
    AgentSkill,
    AgentState,
    AgentStatus,
    CallOutcome,
    JoinEmptyPolicy,
    QueueLogEntry,
    QueueMember,
    QueueStrategy,
)
from huiyan.db.seed import seed_demo

T0 = datetime(2024, 6, 1, 8, 0, 0, tzinfo=UTC)
HOTLINE_TABLES = {"queues", "menu_options", "agent_skills", "queue_members", "agent_statuses", "queue_log",
                  "hotline_calls"}  # fmt: skip


def _agent(db: Session, name: str = "agent1", role: str = "agent") -> int:
    return store.create_user(db, username=name, password="password1", role=role).id


# ---- schema -----------------------------------------------------------------------------------


def test_revision_0002_adds_the_hotline_tables_and_goes_back_cleanly(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        insp = sa.inspect(engine)
        assert set(insp.get_table_names()) >= HOTLINE_TABLES
        assert {i["name"] for i in insp.get_indexes("queue_log")} == {
            "ix_queue_log_at", "ix_queue_log_queue_id_at", "ix_queue_log_agent_user_id_at", "ix_queue_log_call_id",
        }  # fmt: skip
        uniques = [u["column_names"] for u in insp.get_unique_constraints("menu_options")]
        assert uniques == [["service_number", "digit"]]
        command.downgrade(make_config(url), "0001")
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version", "organisations", "users", "devices"}
    finally:
        engine.dispose()


def test_enums_carry_the_distributors_values() -> None:
    # The runtime builds acd.QueueConfig / agent states straight from these columns.
    assert [s.value for s in QueueStrategy] == [s.value for s in acd.Strategy]
    assert [s.value for s in AgentState] == [s.value for s in acd.AgentState]


# ---- queues -----------------------------------------------------------------------------------


def test_a_queue_needs_only_a_name(db: Session) -> None:
    q = hotline.create_queue(db, name="法律咨询")
    db.commit()
    assert (q.strategy, q.ring_timeout_s, q.wrapup_s, q.max_wait_s, q.overflow_queue_id) == (
        QueueStrategy.LONGEST_IDLE, 20, 10, None, None,
    )  # fmt: skip
    assert (q.join_empty, q.sl_threshold_s, q.sl_target, q.autopause_after, q.relax_steps) == (
        JoinEmptyPolicy.JOIN, 20, 0.8, 3, [],
    )  # fmt: skip
    assert (q.announce_every_s, q.active, q.created_at.tzinfo) == (30, True, UTC)
    assert hotline.find_queue(db, "法律咨询") is q


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"ring_timeout_s": 0}, "ring_timeout_s must be a whole number 1..600"),
        ({"wrapup_s": -1}, "wrapup_s"),
        ({"max_wait_s": 0}, "max_wait_s"),
        ({"sl_threshold_s": 0}, "sl_threshold_s"),
        ({"sl_target": 0}, "0 < sl_target <= 1"),
        ({"sl_target": 1.5}, "0 < sl_target <= 1"),
        ({"autopause_after": -1}, "autopause_after"),
        ({"announce_every_s": 1.5}, "announce_every_s"),
        ({"strategy": "random"}, "strategy 'random' is not one of longest-idle, fewest-calls"),
        ({"join_empty": "never"}, "join_empty 'never' is not one of join, refuse_no_agents, refuse_none_available"),
        ({"relax_steps": [[60, 1], [30, 2]]}, "must be sorted"),
        ({"relax_steps": [[30, 2], [60, 1]]}, "must be sorted"),
        ({"relax_steps": [[0, 1]]}, "after_seconds"),
        ({"relax_steps": [[30, 0]]}, "level_delta"),
        ({"relax_steps": [[30]]}, "not an [after_seconds, level_delta] pair"),
        ({"overflow_queue_id": 999, "max_wait_s": 60}, "overflow queue 999 does not exist"),
        ({"organisation_id": 999}, "organisation 999 does not exist"),
        ({"name": "a\nb"}, "queue name"),
    ],
)
def test_queue_settings_are_checked(db: Session, settings: dict[str, Any], reason: str) -> None:
    with pytest.raises(Invalid) as err:
        hotline.create_queue(db, **{"name": "法律咨询", **settings})
    assert reason in str(err.value)


def test_overflow_rules(db: Session) -> None:
    main = hotline.create_queue(db, name="法律咨询")
    with pytest.raises(Invalid, match="needs max_wait_s"):
        hotline.create_queue(db, name="长春市法律咨询", overflow_queue_id=main.id)
    city = hotline.create_queue(db, name="长春市法律咨询", overflow_queue_id=main.id, max_wait_s=90)
    with pytest.raises(Invalid, match="cannot overflow to itself"):
        hotline.update_queue(db, main.id, {"overflow_queue_id": main.id, "max_wait_s": 60})
    with pytest.raises(Invalid, match="needs max_wait_s"):
        hotline.update_queue(db, city.id, {"max_wait_s": None})
    assert hotline.update_queue(db, city.id, {"max_wait_s": None, "overflow_queue_id": None}).max_wait_s is None


def test_queue_names_are_unique_and_updates_are_checked_as_a_whole(db: Session) -> None:
    hotline.create_queue(db, name="法律咨询")
    aid = hotline.create_queue(db, name="法律援助", relax_steps=[(30, 1), (60, 2)])
    with pytest.raises(Conflict, match="法律咨询 already exists"):
        hotline.create_queue(db, name="法律咨询")
    with pytest.raises(Conflict, match="already exists"):
        hotline.update_queue(db, aid.id, {"name": "法律咨询"})
    with pytest.raises(Invalid, match="cannot change colour"):
        hotline.update_queue(db, aid.id, {"colour": "red"})
    updated = hotline.update_queue(db, aid.id, {"name": "法律援助", "strategy": "fewest-calls", "sl_target": 0.9})
    assert (updated.strategy, updated.sl_target) == (QueueStrategy.FEWEST_CALLS, 0.9)
    assert updated.relax_steps == [[30, 1], [60, 2]]
    with pytest.raises(NotFound, match="queue 999 not found"):
        hotline.update_queue(db, 999, {"active": False})


def test_queue_list_filters(db: Session) -> None:
    org = store.create_organisation(db, name="长春市司法局", code="220100", level="city")
    hotline.create_queue(db, name="法律咨询", name_en="Legal consultation")
    hotline.create_queue(db, name="长春市法律咨询", organisation_id=org.id)
    hotline.create_queue(db, name="调解受理", active=False)
    names = lambda **kw: [q.name for q in hotline.list_queues(db, **kw)[0]]  # noqa: E731
    assert names() == ["法律咨询", "长春市法律咨询", "调解受理"]
    assert names(q="法律咨询") == ["法律咨询", "长春市法律咨询"]
    assert names(q="legal") == ["法律咨询"]
    assert names(organisation_id=org.id) == ["长春市法律咨询"]
    assert names(active=False) == ["调解受理"]
    assert hotline.list_queues(db, limit=1, offset=1) == ([hotline.find_queue(db, "长春市法律咨询")], 3)


def test_a_queue_in_use_is_deactivated_not_deleted(db: Session) -> None:
    main = hotline.create_queue(db, name="法律咨询")
    city = hotline.create_queue(db, name="长春市法律咨询", max_wait_s=60, overflow_queue_id=main.id)
    option = hotline.create_menu_option(db, service_number="12348", digit="1", queue_id=city.id, label_zh="法律咨询")
    with pytest.raises(Conflict, match="1 queues overflow to it"):
        hotline.delete_queue(db, main.id)
    with pytest.raises(Conflict, match="1 menu options route to it"):
        hotline.delete_queue(db, city.id)
    hotline.delete_menu_option(db, option.id)
    hotline.upsert_hotline_call(db, "1717000000.1", node="pbx1", queue_id=city.id)
    with pytest.raises(Conflict, match=r"\(it has call history\); set active=false instead"):
        hotline.delete_queue(db, city.id)
    spare = hotline.create_queue(db, name="调解受理")
    hotline.add_queue_member(db, spare.id, _agent(db))
    hotline.delete_queue(db, spare.id)
    assert db.scalar(select(func.count()).select_from(QueueMember)) == 0  # members go with their queue


# ---- voice menus ------------------------------------------------------------------------------


def test_menu_options_one_per_digit(db: Session) -> None:
    consult = hotline.create_queue(db, name="法律咨询")
    aid = hotline.create_queue(db, name="法律援助")
    two = hotline.create_menu_option(
        db, service_number="12348", digit="2", queue_id=aid.id, label_zh="法律援助", required_skills={"legal_aid": 1}
    )
    one = hotline.create_menu_option(
        db, service_number="12348", digit="1", queue_id=consult.id, label_zh="法律咨询",
        required_skills={"consultation": 3, "lang_zh": 5}, priority=1, prompt="menu",
    )  # fmt: skip
    hotline.create_menu_option(db, service_number="1234801", digit="1", queue_id=consult.id, label_zh="法律咨询")
    menu = hotline.menu_for(db, "12348")
    assert list(menu) == ["1", "2"] and menu["1"] is one and menu["2"] is two
    assert menu["1"].required_skills == {"consultation": 3, "lang_zh": 5}
    assert hotline.menu_for(db, "99999") == {}
    with pytest.raises(Conflict, match=f"digit 2 of 12348 is already menu option {two.id}"):
        hotline.create_menu_option(db, service_number="12348", digit="2", queue_id=consult.id, label_zh="x")
    with pytest.raises(Conflict, match="digit 1 of 12348"):
        hotline.update_menu_option(db, two.id, {"digit": "1"})
    assert hotline.update_menu_option(db, two.id, {"digit": "2", "priority": 5}).priority == 5
    assert [o.digit for o in hotline.list_menu_options(db, service_number="1234801")[0]] == ["1"]
    assert hotline.list_menu_options(db, queue_id=consult.id)[1] == 2


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"digit": "0"}, "digit '0' is not allowed"),
        ({"digit": "12"}, "digit"),
        ({"service_number": "12"}, "service_number"),
        ({"queue_id": 999}, "queue 999 does not exist"),
        ({"required_skills": {"consultation": 11}}, "level of consultation must be a whole number 1..10"),
        ({"required_skills": {"Bad Skill": 1}}, "skill name 'Bad Skill'"),
        ({"priority": -1}, "priority"),
        ({"label_zh": ""}, "label_zh"),
        ({"prompt": "../etc/passwd"}, "prompt"),
    ],
)
def test_menu_options_are_checked(db: Session, fields: dict[str, Any], reason: str) -> None:
    queue = hotline.create_queue(db, name="法律咨询")
    body = {"service_number": "12348", "digit": "1", "queue_id": queue.id, "label_zh": "法律咨询", **fields}
    with pytest.raises(Invalid) as err:
        hotline.create_menu_option(db, **body)
    assert reason in str(err.value)


# ---- members and skills -----------------------------------------------------------------------


def test_only_agents_and_supervisors_join_queues(db: Session) -> None:
    queue = hotline.create_queue(db, name="法律咨询")
    agent, sup, lawyer = _agent(db), _agent(db, "sup", "supervisor"), _agent(db, "lawyer", "lawyer")
    hotline.add_queue_member(db, queue.id, agent)
    hotline.add_queue_member(db, queue.id, sup, penalty=1)
    with pytest.raises(Invalid, match="lawyer is a lawyer: only agents and supervisors"):
        hotline.add_queue_member(db, queue.id, lawyer)
    with pytest.raises(Conflict, match="agent1 is already a member of queue 法律咨询"):
        hotline.add_queue_member(db, queue.id, agent)
    with pytest.raises(Invalid, match="user 999 does not exist"):
        hotline.add_queue_member(db, queue.id, 999)
    with pytest.raises(NotFound, match="queue 999 not found"):
        hotline.add_queue_member(db, 999, agent)
    with pytest.raises(Invalid, match="penalty"):
        hotline.update_queue_member(db, queue.id, agent, penalty=-1)
    assert hotline.update_queue_member(db, queue.id, agent, penalty=2).penalty == 2
    assert [(m.user_id, m.penalty) for m in hotline.queue_members(db, queue.id)] == [(agent, 2), (sup, 1)]
    hotline.remove_queue_member(db, queue.id, agent)
    with pytest.raises(NotFound, match=f"user {agent} is not a member of queue {queue.id}"):
        hotline.remove_queue_member(db, queue.id, agent)
    assert [m.user_id for m in hotline.all_queue_members(db)] == [sup]


def test_skills_are_replaced_as_a_set(db: Session) -> None:
    agent = _agent(db)
    assert hotline.agent_skills(db, agent) == {}
    hotline.set_agent_skills(db, agent, {"lang_zh": 10, "consultation": 5, "mediation": 3})
    assert hotline.set_agent_skills(db, agent, {"consultation": 8, "lang_ko": 6}) == {"consultation": 8, "lang_ko": 6}
    db.commit()
    assert hotline.agent_skills(db, agent) == {"consultation": 8, "lang_ko": 6}
    hotline.set_agent_skill(db, agent, "lang_zh", 10)
    hotline.remove_agent_skill(db, agent, "lang_ko")
    assert hotline.all_agent_skills(db) == {agent: {"consultation": 8, "lang_zh": 10}}
    with pytest.raises(NotFound):
        hotline.remove_agent_skill(db, agent, "lang_ko")
    for bad in ({"consultation": 0}, {"consultation": 11}, {"consultation": True}, {"Lang-ZH": 5}):
        with pytest.raises(Invalid):
            hotline.set_agent_skills(db, agent, bad)
    with pytest.raises(NotFound, match="user 999 not found"):
        hotline.set_agent_skills(db, 999, {})
    assert hotline.set_agent_skills(db, agent, {}) == {}
    assert hotline.agent_skills(db, agent) == {}


def test_deleting_a_user_takes_their_skills_memberships_and_state(db: Session) -> None:
    queue = hotline.create_queue(db, name="法律咨询")
    agent = _agent(db)
    hotline.add_queue_member(db, queue.id, agent)
    hotline.set_agent_skills(db, agent, {"consultation": 5})
    hotline.upsert_agent_status(db, agent, state="available", logged_in_queues=[queue.id])
    db.commit()
    store.delete_user(db, agent)
    db.commit()
    for model in (QueueMember, AgentSkill, AgentStatus):
        assert db.scalar(select(func.count()).select_from(model)) == 0, model


# ---- agent state ------------------------------------------------------------------------------


def test_agent_state_survives_a_restart(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions() as db:
        agent = _agent(db)
        status = hotline.upsert_agent_status(db, agent, state="available", since=T0, logged_in_queues=[3, 1, 3])
        assert status.logged_in_queues == [1, 3]
        hotline.upsert_agent_status(db, agent, state=AgentState.PAUSED, reason="午休", since=T0 + timedelta(hours=4))
        db.commit()
    with db_sessions() as db:  # a new controller reads what the old one wrote
        statuses = hotline.agent_statuses(db)
        assert list(statuses) == [agent]
        s = statuses[agent]
        assert (s.state, s.reason, s.since, s.logged_in_queues) == ("paused", "午休", T0 + timedelta(hours=4), [1, 3])
        assert s.updated_at.tzinfo == UTC
        assert hotline.upsert_agent_status(db, agent, state="logged_out", logged_in_queues=[]).reason is None
        with pytest.raises(Invalid, match="agent state 'lunch' is not one of"):
            hotline.upsert_agent_status(db, agent, state="lunch")
        with pytest.raises(Invalid, match="time zone"):
            hotline.upsert_agent_status(db, agent, state="available", since=datetime(2024, 6, 1))
        with pytest.raises(NotFound):
            hotline.upsert_agent_status(db, 999, state="available")


# ---- queue log --------------------------------------------------------------------------------


def _log(at: datetime, event: str, **kw: Any) -> dict[str, Any]:
    return {"at": at, "node": "pbx1", "call_id": kw.pop("call_id", "1717000000.1"), "event": event, **kw}


def test_queue_log_is_appended_in_bulk_and_queried_by_time_queue_agent_event(db: Session) -> None:
    at = T0 + timedelta(microseconds=123_456)
    n = hotline.append_queue_log(db, [
        _log(at, "enqueue", queue_id=1, data={"caller": "13800000000", "menu": "法律咨询"}),
        _log(at + timedelta(seconds=5), "offer", queue_id=1, agent_user_id=7),
        _log(at + timedelta(seconds=9), "connect", queue_id=1, agent_user_id=7, data={"wait": 9.1}),
        _log(at + timedelta(seconds=1), "enqueue", queue_id=2, call_id="1717000000.2"),
        _log(at + timedelta(minutes=5), "pause", agent_user_id=7, call_id="", data={"reason": "午休"}),
    ])  # fmt: skip
    db.commit()
    assert n == 5
    page, total = hotline.query_queue_log(db)
    assert total == 5
    assert [e.event for e in page] == ["enqueue", "enqueue", "offer", "connect", "pause"]  # time order
    assert page[0].at == T0.replace(microsecond=123_000)  # kept to the millisecond
    assert page[0].data == {"caller": "13800000000", "menu": "法律咨询"} and page[2].data == {}

    def events(**kw: Any) -> list[str]:
        return [e.event.value for e in hotline.query_queue_log(db, **kw)[0]]

    assert events(queue_id=1) == ["enqueue", "offer", "connect"]
    assert events(agent_user_id=7, event="pause") == ["pause"]
    assert events(call_id="1717000000.2") == ["enqueue"]
    assert events(since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=10)) == ["offer", "connect"]
    assert events(offset=1, limit=2) == ["enqueue", "offer"]
    assert [e.event for e in hotline.iter_queue_log(db, queue_id=1, batch=2)] == ["enqueue", "offer", "connect"]
    with pytest.raises(Invalid, match="time zone"):
        hotline.query_queue_log(db, since=datetime(2024, 6, 1))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"event": "hangup"}, "queue log event 'hangup' is not one of"),
        ({"at": datetime(2024, 6, 1)}, "time zone"),
        ({"node": ""}, "node"),
        ({"queue_id": "1"}, "queue_id must be an id"),
        ({"data": [1, 2]}, "data must be a mapping"),
        ({"colour": "red"}, "unknown queue log field(s) colour"),
    ],
)
def test_a_bad_log_line_refuses_the_whole_batch(db: Session, bad: dict[str, Any], reason: str) -> None:
    with pytest.raises(Invalid) as err:
        hotline.append_queue_log(db, [_log(T0, "enqueue"), {**_log(T0, "offer"), **bad}])
    assert reason in str(err.value)
    assert db.scalar(select(func.count()).select_from(QueueLogEntry)) == 0
    assert hotline.append_queue_log(db, []) == 0


# ---- hotline calls ----------------------------------------------------------------------------


def test_hotline_calls_are_upserted_as_they_progress(db: Session) -> None:
    with pytest.raises(Invalid, match="needs the node"):
        hotline.upsert_hotline_call(db, "1717000000.1", caller_number="13800000000")
    call = hotline.upsert_hotline_call(
        db, "1717000000.1", node="pbx1", linkedid="1717000000.1", caller_number="13800000000",
        caller_name="张" * 150, service_number="12348", menu_digit="1", queue_id=1, enqueued_at=T0,
    )  # fmt: skip
    assert call.outcome == CallOutcome.WAITING and len(call.caller_name or "") == 100  # cut, not refused
    hotline.upsert_hotline_call(db, "1717000000.1", outcome="ringing", offered_count=1)
    hotline.upsert_hotline_call(
        db, "1717000000.1", outcome="answered", answered_at=T0 + timedelta(seconds=12), agent_user_id=7, wait_s=12
    )
    db.commit()
    call = hotline.get_hotline_call(db, "1717000000.1")
    assert (call.node, call.outcome, call.offered_count, call.wait_s, call.answered_at) == (
        "pbx1", "answered", 1, 12.0, T0 + timedelta(seconds=12),
    )  # fmt: skip
    for fields, reason in [
        ({"outcome": "lost"}, "outcome 'lost' is not one of"),
        ({"answered_at": datetime(2024, 6, 1)}, "time zone"),
        ({"menu_digit": "12"}, "menu digit"),
        ({"wait_s": -1}, "wait_s"),
        ({"priority": None}, "priority of a hotline call may not be null"),
        ({"agent": 7}, "cannot set agent"),
    ]:
        with pytest.raises(Invalid, match=reason):
            hotline.upsert_hotline_call(db, "1717000000.1", **fields)
    with pytest.raises(Invalid, match="call id"):
        hotline.upsert_hotline_call(db, "not a uniqueid!", node="pbx1")
    with pytest.raises(NotFound, match=r"hotline call 1\.2 not found"):
        hotline.get_hotline_call(db, "1.2")


def test_hotline_calls_list_newest_first_with_filters(db: Session) -> None:
    for i, (queue_id, outcome, number) in enumerate([(1, "completed", "13800000001"), (2, "abandoned", "043188880000"),
                                                      (1, "answered", "13800000002")]):  # fmt: skip
        call = hotline.upsert_hotline_call(db, f"1717000000.{i}", node="pbx1", queue_id=queue_id, outcome=outcome,
                                           caller_number=number, service_number="12348")  # fmt: skip
        call.created_at = T0 + timedelta(minutes=i)
    db.commit()

    def ids(**kw: Any) -> list[str]:
        return [c.id for c in hotline.list_hotline_calls(db, **kw)[0]]

    assert ids() == ["1717000000.2", "1717000000.1", "1717000000.0"]
    assert ids(queue_id=1) == ["1717000000.2", "1717000000.0"]
    assert ids(outcome="abandoned") == ["1717000000.1"]
    assert ids(caller_number="138") == ["1717000000.2", "1717000000.0"]
    assert ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)) == ["1717000000.1"]
    assert ids(service_number="1234801") == []
    assert hotline.list_hotline_calls(db, limit=1)[1] == 3


# ---- seed -------------------------------------------------------------------------------------


def test_seed_builds_the_hotline_once_and_keeps_edits(db: Session) -> None:
    seed_demo(db)
    menu = hotline.menu_for(db, "12348")
    assert {d: (o.queue.name, o.required_skills) for d, o in menu.items()} == {
        "1": ("法律咨询", {"consultation": 1}),
        "2": ("法律援助", {"legal_aid": 1}),
        "3": ("调解受理", {"mediation": 1}),
    }
    assert hotline.menu_for(db, "1234801")["1"].queue.name == "长春市法律咨询"
    strategies = {q.name: q.strategy for q in hotline.list_queues(db)[0]}
    assert strategies == {"法律咨询": "skills", "法律援助": "longest-idle", "调解受理": "round-robin",
                          "长春市法律咨询": "skills", "延边州法律咨询": "skills"}  # fmt: skip
    skills = hotline.all_agent_skills(db)
    agents = {u.username: u.id for u in store.list_users(db, limit=500)[0]}
    assert all(skills[agents[name]]["lang_zh"] == 10 for name in ("agent1", "agent2", "supervisor"))
    assert [name for name, uid in agents.items() if "lang_ko" in skills.get(uid, {})] == ["agent2"]
    yanbian = hotline.find_queue(db, "延边州法律咨询")
    assert yanbian is not None and [m.user.username for m in yanbian.members] == ["agent2"]
    for q in hotline.list_queues(db)[0]:  # the distributor accepts every seeded queue as it is
        acd.QueueConfig(id=str(q.id), strategy=q.strategy.value, max_wait=q.max_wait_s,
                        overflow_to=str(q.overflow_queue_id) if q.overflow_queue_id else None,
                        relaxation=tuple(tuple(s) for s in q.relax_steps))  # type: ignore[arg-type]  # fmt: skip

    counts = {m: db.scalar(select(func.count()).select_from(m)) for m in (AgentSkill, QueueMember)}
    hotline.set_agent_skill(db, agents["agent1"], "consultation", 2)  # an admin's edit
    db.commit()
    assert seed_demo(db)["queues"] == 0
    assert {m: db.scalar(select(func.count()).select_from(m)) for m in (AgentSkill, QueueMember)} == counts
    assert hotline.agent_skills(db, agents["agent1"])["consultation"] == 2
