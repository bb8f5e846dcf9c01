"""Mediation's pure rules: status transitions, outcomes, PINs, case numbers, who sees which case, and which
recording belongs to which session."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from random import Random

import pytest

from huiyan.db.models import Role
from huiyan.db.orgtree import subtree
from huiyan.mediation.model import (
    TRANSITIONS,
    CaseScope,
    CaseStatus,
    InvalidTransition,
    OutcomeRequired,
    assign_recordings,
    check_transition,
    join_info,
    new_pin,
    next_case_number,
)

S = CaseStatus
ALLOWED = {
    (S.OPEN, S.IN_SESSION), (S.OPEN, S.SETTLED), (S.OPEN, S.FAILED), (S.OPEN, S.CLOSED),
    (S.IN_SESSION, S.OPEN), (S.IN_SESSION, S.SETTLED), (S.IN_SESSION, S.FAILED),
    (S.SETTLED, S.CLOSED), (S.FAILED, S.OPEN), (S.FAILED, S.CLOSED),
}


def test_the_transition_table_is_exactly_the_documented_one() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair_is_allowed_or_refused_with_a_reason(current: CaseStatus, target: CaseStatus) -> None:
    if (current, target) in ALLOWED:
        # through a session where the table requires one, with an outcome where one is required
        check_transition(current, target, outcome="双方达成协议", by_session=True)
        return
    with pytest.raises(InvalidTransition) as e:
        check_transition(current, target, outcome="x", by_session=True)
    assert str(e.value) and e.value.status == 409
    if current == target:
        assert "already" in str(e.value)
    elif current == S.CLOSED:
        assert "closed case cannot change" in str(e.value)
    else:
        assert f"from {current.value} to {target.value}" in str(e.value)


def test_sessions_are_the_only_way_in_and_out_of_in_session() -> None:
    with pytest.raises(InvalidTransition, match="starts a session"):
        check_transition(S.OPEN, S.IN_SESSION)
    with pytest.raises(InvalidTransition, match="end the session"):
        check_transition(S.IN_SESSION, S.OPEN)
    check_transition(S.OPEN, S.IN_SESSION, by_session=True)
    check_transition(S.IN_SESSION, S.OPEN, by_session=True)
    # settling during a session is a plain status change (the session goes on)
    check_transition(S.IN_SESSION, S.SETTLED, outcome="退还房费 800 元")


@pytest.mark.parametrize("target", [S.SETTLED, S.FAILED])
@pytest.mark.parametrize("outcome", [None, "", "   "])
def test_settling_or_failing_needs_an_outcome(target: CaseStatus, outcome: str | None) -> None:
    with pytest.raises(OutcomeRequired, match="outcome is required") as e:
        check_transition(S.OPEN, target, outcome=outcome)
    assert e.value.status == 422


def test_a_case_with_a_running_session_cannot_be_closed() -> None:
    with pytest.raises(InvalidTransition, match="still running"):
        check_transition(S.SETTLED, S.CLOSED, session_open=True)
    check_transition(S.SETTLED, S.CLOSED, session_open=False)


def test_pins_are_numeric_of_the_length_asked_with_no_digit_twice_in_a_row() -> None:
    rng = Random(12348)
    pins = [new_pin(rng) for _ in range(2000)]
    assert all(len(p) == 6 and p.isdigit() for p in pins)
    assert all(a != b for p in pins for a, b in zip(p, p[1:], strict=False))
    assert len(set(pins)) > 1990  # random, not a sequence
    assert {p[0] for p in pins} == set("0123456789")
    assert len(new_pin(rng, 8)) == 8
    assert len({new_pin() for _ in range(50)}) > 45  # the default (system) generator is random too


def test_case_numbers_run_per_year() -> None:
    assert next_case_number(2026, []) == "2026-00001"
    assert next_case_number(2026, ["2026-00001", "2026-00007", "2025-00099", "junk"]) == "2026-00008"
    assert next_case_number(2027, ["2026-00008"]) == "2027-00001"


def test_join_info_gives_the_room_the_pin_and_the_links() -> None:
    j = join_info("6003", "135790", "hy.example")
    assert j.view() == {"room_number": "6003", "pin": "135790", "sip_uri": "sip:6003@hy.example",
                        "join_path": "/join/6003?pin=135790"}


def test_scopes() -> None:
    tree = [(1, None), (2, 1), (3, 1), (4, 2), (5, 4), (6, None)]
    assert subtree(2, tree) == {2, 4, 5}
    assert subtree(1, tree) == {1, 2, 3, 4, 5}
    assert subtree(6, tree) == {6}
    admin = CaseScope(1, Role.ADMIN, everything=True)
    sup = CaseScope(2, Role.SUPERVISOR, organisations=subtree(2, tree))
    med = CaseScope(3, Role.MEDIATOR)
    assert admin.sees(None, 99) and admin.sees(6, 99)
    assert sup.sees(5, 99) and not sup.sees(3, 99) and not sup.sees(None, 99) and sup.sees(3, 2)
    assert med.sees(2, 3) and not med.sees(2, 4) and not med.sees(None, 99)
    assert admin.assigns and sup.assigns and not med.assigns


def test_recordings_belong_to_the_latest_session_started_before_them() -> None:
    t0 = datetime(2026, 7, 1, 9, tzinfo=UTC)
    sessions = [(11, t0 + timedelta(hours=2)), (10, t0)]  # any order
    recs = [("early", t0 - timedelta(minutes=1)), ("a", t0 + timedelta(seconds=2)),
            ("b", t0 + timedelta(hours=1)), ("c", t0 + timedelta(hours=2, seconds=1)), ("d", t0 + timedelta(days=3))]
    assert assign_recordings(sessions, recs) == {"early": None, "a": 10, "b": 10, "c": 11, "d": 11}
    assert assign_recordings([], recs[:1]) == {"early": None}
