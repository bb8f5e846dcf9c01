"""The dispatch's pure decisions: classifying a failed dial, a leg's state machine, retries, a dispatch's end."""

from __future__ import annotations

import pytest

from huiyan.dispatch.model import (
    DispatchEnded,
    DispatchState,
    Leg,
    LegFinished,
    LegKind,
    LegNotFound,
    LegStatus,
    Party,
    RetryPolicy,
    auto_answer_variables,
    classify_failure,
)

S = LegStatus
POLICY = RetryPolicy(retries=2, interval_s=5, on=frozenset({S.UNREACHABLE}))


def _leg(leg_id: int = 1, target: str = "80001") -> Leg:
    return Leg(id=leg_id, dispatch_id=7, party=Party(LegKind.DEVICE, target, "长春市司法局 指挥中心", device_id=3,
                                                      organisation_id=2, auto_answer=True))


@pytest.mark.parametrize(("reason", "cause", "created", "rang", "expected"), [
    (0, None, False, False, S.UNREACHABLE),  # no contact registered: Asterisk never made a channel
    (0, 21, True, False, S.DECLINED),  # 603 Decline
    (0, 21, True, True, S.DECLINED),  # rang, then the user pressed "reject"
    (0, 17, True, False, S.BUSY),  # 486
    (5, None, True, True, S.BUSY),
    (3, 16, True, True, S.NO_ANSWER),  # rang until our ring timeout
    (0, 19, True, True, S.NO_ANSWER),  # 480 after ringing
    (0, 19, True, False, S.UNREACHABLE),  # 480 without ringing: unavailable
    (0, 18, True, False, S.UNREACHABLE),  # 408: registered but gone
    (0, 34, True, False, S.UNREACHABLE),  # 503
    (8, None, True, False, S.UNREACHABLE),  # congestion
    (0, 16, True, True, S.DECLINED),  # hung up on us while ringing
    (0, 127, True, False, S.FAILED),  # anything else
])
def test_a_failed_dial_is_classified_from_what_asterisk_reported(reason: int, cause: int | None, created: bool,
                                                                 rang: bool, expected: LegStatus) -> None:
    assert classify_failure(reason, cause, channel_created=created, rang=rang) == expected


def test_a_leg_that_answers_goes_calling_ringing_answered_joined_left() -> None:
    leg = _leg()
    assert leg.status == S.PENDING and not leg.final
    assert leg.dialling("ch-1", 10.0) and (leg.status, leg.attempts, leg.channel_id) == (S.CALLING, 1, "ch-1")
    assert leg.created() is False  # nothing a dispatcher needs to see
    assert leg.ringing(11.0) and leg.status == S.RINGING
    assert not leg.ringing(11.5)  # a second 180 changes nothing
    assert leg.answered(12.0) and leg.status == S.ANSWERED and leg.answered_at == 12.0
    assert leg.joined(15.0) and leg.status == S.JOINED and leg.joined_at == 15.0
    assert not leg.answered(16.0)  # a late or repeated event does not move it back
    assert leg.left(20.0) and leg.status == S.LEFT and leg.final and leg.ended_at == 20.0
    assert not leg.hung_up(16, 21.0)  # its Hangup after the ConfbridgeLeave
    assert leg.view()["retries"] == 0 and leg.view()["final"] is True


def test_hanging_up_after_the_answer_is_leaving_and_before_it_tells_the_cause() -> None:
    leg = _leg()
    leg.dialling("ch-1", 1.0)
    assert not leg.hung_up(21, 2.0)  # cause noted; the OriginateResponse decides
    assert leg.failed(0, POLICY, 2.1) and leg.status == S.DECLINED and leg.final
    assert leg.reason == "cause 21" and leg.retry_at is None  # declined is never retried
    other = _leg(2)
    other.dialling("ch-2", 1.0)
    other.answered(2.0)
    assert other.hung_up(16, 3.0) and other.status == S.LEFT  # answered, hung up during the joining prompt


def test_an_unreachable_leg_is_retried_n_times_then_stays_unreachable() -> None:
    leg = _leg()
    for attempt in range(1, 4):
        leg.dialling(f"ch-{attempt}", 100.0 * attempt)
        assert leg.status == S.CALLING and leg.retry_at is None
        assert leg.failed(0, POLICY, 100.0 * attempt + 1)
        assert leg.status == S.UNREACHABLE
        if attempt <= 2:
            assert leg.retry_at == 100.0 * attempt + 1 + 5 and not leg.final  # waiting for its next dial
        else:
            assert leg.retry_at is None and leg.final
    assert (leg.attempts, leg.retries) == (3, 2)
    with pytest.raises(LegFinished):
        leg.dialling("ch-4", 500.0)


def test_the_policy_retries_only_what_it_names() -> None:
    busy_too = RetryPolicy(retries=1, interval_s=2, on=frozenset({S.UNREACHABLE, S.BUSY}))
    assert busy_too.next_retry(S.BUSY, 1, 10.0) == 12.0
    assert busy_too.next_retry(S.BUSY, 2, 10.0) is None  # one retry was allowed
    assert busy_too.next_retry(S.NO_ANSWER, 1, 10.0) is None
    assert RetryPolicy(retries=0).next_retry(S.UNREACHABLE, 1, 0.0) is None
    with pytest.raises(ValueError, match="declined"):
        RetryPolicy(on=frozenset({S.DECLINED}))
    with pytest.raises(ValueError):
        RetryPolicy(interval_s=0)
    assert POLICY.view() == {"retries": 2, "retry_interval_s": 5, "retry_on": ["unreachable"], "ring_seconds": 30}


def test_dropping_a_leg_and_what_cannot_be_dropped() -> None:
    leg = _leg()
    leg.dialling("ch-1", 1.0)
    leg.failed(0, POLICY, 2.0)
    assert leg.retry_at is not None
    assert leg.drop(3.0) and leg.status == S.DROPPED and leg.retry_at is None and leg.final  # the retry is off
    with pytest.raises(LegFinished, match="already ended: dropped"):
        leg.drop(4.0)
    assert not leg.joined(5.0)  # a call that still gets through changes nothing (the service hangs it up)


def test_ending_a_dispatch_closes_every_leg() -> None:
    legs = {i: _leg(i, f"8000{i}") for i in range(1, 6)}
    d = DispatchState(id=7, name="全省调度", room_id=3, room_number="6001", policy=POLICY, legs=legs)
    legs[1].dialling("a", 1.0)
    legs[1].answered(2.0)
    legs[1].joined(3.0)  # in the room
    legs[2].dialling("b", 1.0)
    legs[2].ringing(2.0)  # still ringing
    legs[3].dialling("c", 1.0)
    legs[3].failed(0, POLICY, 2.0)  # waiting for a retry
    legs[4].dialling("d", 1.0)
    legs[4].hung_up(21, 2.0)
    legs[4].failed(0, POLICY, 2.0)  # declined: final already
    assert d.calling("80003") is legs[3] and d.calling("80004") is None
    changed = d.end(10.0)
    assert sorted(leg.id for leg in changed) == [1, 2, 3, 5]
    assert {i: leg.status for i, leg in legs.items()} == {
        1: S.LEFT, 2: S.CANCELLED, 3: S.CANCELLED, 4: S.DECLINED, 5: S.CANCELLED}
    assert all(leg.final for leg in legs.values()) and d.ended_at == 10.0
    assert d.counts() == {"cancelled": 3, "declined": 1, "left": 1}
    with pytest.raises(DispatchEnded):
        d.require_active()
    with pytest.raises(LegNotFound):
        d.leg(99)
    view = d.view()
    assert view["status"] == "ended" and [x["id"] for x in view["legs"]] == [1, 2, 3, 4, 5]


def test_auto_answer_is_a_call_info_header_on_the_invite() -> None:
    assert auto_answer_variables("hy.sft.jl.example") == {
        "PJSIP_HEADER(add,Call-Info)": "<sip:hy.sft.jl.example>;answer-after=0"}
