"""Call distributor scenarios: each strategy, ring-all, priorities, skills and relaxation, auto-pause,
overflow, join-empty, service level, positions and estimates, and the error contract."""

from __future__ import annotations

import pytest

from huiyan.acd import (
    AgentAutoPaused,
    AgentConfig,
    AgentPausePending,
    AgentState,
    AgentStateChanged,
    CallAbandoned,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRefused,
    CallRelaxed,
    CallState,
    CallTimedOut,
    CallTransferred,
    Distributor,
    EnqueueResult,
    Happening,
    InvalidArgument,
    InvalidTransition,
    JoinEmpty,
    Membership,
    Offer,
    OfferCancelled,
    OfferResult,
    OfferTimedOut,
    QueueConfig,
    Strategy,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
    WrapUpEnded,
)


def make(*queues: QueueConfig, agents: dict[str, dict[str, int]] | None = None) -> Distributor:
    acd = Distributor()
    for q in queues:
        acd.configure_queue(q)
    for agent_id, skills in (agents or {}).items():
        acd.configure_agent(AgentConfig(agent_id, skills))
    return acd


def offered(offers: list[Offer]) -> list[tuple[str, tuple[str, ...]]]:
    return [(o.call_id, o.agent_ids) for o in offers]


def serve(acd: Distributor, call_id: str, agent_id: str, start: float, end: float) -> None:
    """Answer an offer at ``start`` and hang up at ``end``."""
    acd.answered(call_id, agent_id, start)
    acd.call_ended(call_id, end)


# -- strategies -----------------------------------------------------------------------------------------


def test_longest_idle_picks_the_agent_idle_longest() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}, "c": {}})
    acd.login("b", ["q"], 0)
    acd.login("a", ["q"], 1)
    acd.login("c", ["q"], 2)
    acd.enqueue("x", "q", 3)
    assert offered(acd.next_offers(3)) == [("x", ("b",))]
    serve(acd, "x", "b", 4, 5)  # b's last call ended at 5: now idle shortest
    acd.enqueue("y", "q", 6)
    acd.enqueue("z", "q", 6)
    acd.enqueue("w", "q", 6)
    assert offered(acd.next_offers(6)) == [("y", ("a",)), ("z", ("c",)), ("w", ("b",))]


def test_longest_idle_counts_from_the_end_of_wrap_up() -> None:
    acd = make(QueueConfig("q", wrapup=10), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.enqueue("y", "q", 1)
    assert offered(acd.next_offers(1)) == [("x", ("a",)), ("y", ("b",))]
    serve(acd, "x", "a", 2, 3)  # a: wrap-up to 13
    serve(acd, "y", "b", 2, 5)  # b: wrap-up to 15
    acd.finish_wrapup("b", 6)  # b idle since 6
    assert acd.agent("b").idle_since == 6
    acd.tick(13)  # a idle since 13
    acd.enqueue("z", "q", 14)
    assert offered(acd.next_offers(14)) == [("z", ("b",))]


def test_fewest_calls_picks_the_agent_with_fewest_answered_calls_from_that_queue() -> None:
    acd = make(QueueConfig("q", strategy="fewest-calls"), QueueConfig("other"), agents={"a": {}, "b": {}})
    acd.login("a", ["q", "other"], 0)
    acd.login("b", ["q"], 0)
    for i in range(3):  # a answers three calls of the other queue
        acd.enqueue(f"o{i}", "other", 1)
        assert offered(acd.next_offers(1)) == [(f"o{i}", ("a",))]
        serve(acd, f"o{i}", "a", 1, 2)
    acd.enqueue("q0", "q", 3)  # tie on q (0 and 0): b has been idle longer
    assert offered(acd.next_offers(3)) == [("q0", ("b",))]
    serve(acd, "q0", "b", 3, 4)
    acd.enqueue("o3", "other", 5)
    assert offered(acd.next_offers(5)) == [("o3", ("a",))]
    serve(acd, "o3", "a", 5, 6)  # now b has been idle longer (since 4, a since 6)...
    acd.enqueue("q1", "q", 7)  # ...but from q, a has 0 calls and b 1 (in total a has 4)
    assert offered(acd.next_offers(7)) == [("q1", ("a",))]


def test_fewest_calls_ties_go_to_the_longest_idle() -> None:
    acd = make(QueueConfig("q", strategy=Strategy.FEWEST_CALLS), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 1)
    acd.enqueue("x", "q", 2)
    assert offered(acd.next_offers(2)) == [("x", ("a",))]
    acd.offer_failed("x", "a", 3)  # no answer: a took no call, but the call prefers someone else now
    assert offered(acd.next_offers(3)) == [("x", ("b",))]
    acd.answered("x", "b", 4)
    acd.enqueue("y", "q", 5)
    assert offered(acd.next_offers(5)) == [("y", ("a",))]  # a: 0 calls, b: 1


def test_round_robin_rotates_through_agents_in_login_order() -> None:
    acd = make(QueueConfig("q", strategy="round-robin"), agents={"a": {}, "b": {}, "c": {}})
    for agent in "abc":
        acd.login(agent, ["q"], 0)
    got = []
    for i in range(6):
        acd.enqueue(f"c{i}", "q", i)
        (o,) = acd.next_offers(i)
        got.append(o.agent_ids[0])
        serve(acd, o.call_id, o.agent_ids[0], i, i)
    assert got == list("abcabc")


def test_round_robin_moves_past_an_agent_who_did_not_answer() -> None:
    acd = make(QueueConfig("q", strategy="round-robin"), agents={"a": {}, "b": {}, "c": {}})
    for agent in "abc":
        acd.login(agent, ["q"], 0)
    acd.enqueue("x", "q", 1)
    assert acd.next_offers(1)[0].agent_ids == ("a",)
    acd.offer_failed("x", "a", 2, OfferResult.BUSY)
    assert acd.next_offers(2)[0].agent_ids == ("b",)
    acd.answered("x", "b", 3)
    acd.enqueue("y", "q", 4)
    assert acd.next_offers(4)[0].agent_ids == ("c",)


def test_ring_all_offers_every_able_agent_and_the_first_answer_wins() -> None:
    acd = make(QueueConfig("q", strategy="ring-all"), agents={"a": {"zh": 5}, "b": {"zh": 5}, "c": {}, "d": {"zh": 9}})
    acd.login("b", ["q"], 0)
    acd.login("a", ["q"], 1)
    acd.login("c", ["q"], 2)
    acd.login("d", ["q"], 3)
    acd.enqueue("x", "q", 4, requires={"zh": 3})
    acd.enqueue("y", "q", 4, requires={"zh": 3})
    offers = acd.next_offers(4)
    assert offered(offers) == [("x", ("b", "a", "d"))]  # c lacks zh; y waits: nobody else is free
    assert acd.agent("a").state is AgentState.OFFERED
    acts = acd.answered("x", "a", 5)
    assert acts == [OfferCancelled("x", "q", ("b", "d"), "answered-elsewhere", 5.0)]
    assert acd.agent("a").state is AgentState.ON_CALL
    assert acd.agent("b").state is AgentState.AVAILABLE
    assert offered(acd.next_offers(5)) == [("y", ("b", "d"))]
    with pytest.raises(InvalidTransition):
        acd.answered("x", "b", 5)


def test_ring_all_rings_only_the_lowest_penalty_level() -> None:
    acd = make(QueueConfig("q", strategy="ring-all"), agents={"a": {}, "b": {}, "c": {}})
    acd.login("a", [Membership("q", penalty=1)], 0)
    acd.login("b", ["q"], 0)
    acd.login("c", ["q"], 0)
    acd.enqueue("x", "q", 1)
    assert offered(acd.next_offers(1)) == [("x", ("b", "c"))]
    acd.enqueue("y", "q", 1)
    assert offered(acd.next_offers(1)) == [("y", ("a",))]


def test_ring_all_keeps_ringing_the_others_when_one_declines() -> None:
    acd = make(QueueConfig("q", strategy="ring-all"), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.next_offers(1)
    acd.offer_failed("x", "a", 2, OfferResult.BUSY)
    assert acd.call("x").agent_ids == ("b",)
    assert acd.call("x").state is CallState.OFFERED
    assert acd.next_offers(2) == []  # a is free but x is still ringing b
    acd.offer_failed("x", "b", 3)
    assert offered(acd.next_offers(3)) == [("x", ("a", "b"))]


def test_skills_prefers_the_most_skilled_able_agent_then_the_longest_idle() -> None:
    acd = make(
        QueueConfig("q", strategy="skills"),
        agents={
            "idle": {"zh": 9},
            "novice": {"zh": 9, "labour": 3},
            "expert": {"zh": 9, "labour": 9},
            "twin": {"zh": 9, "labour": 9},
        },
    )
    acd.login("idle", ["q"], 0)  # idle longest but lacks labour law
    acd.login("novice", ["q"], 1)
    acd.login("expert", ["q"], 2)
    acd.login("twin", ["q"], 3)
    acd.enqueue("x", "q", 4, requires={"zh": 5, "labour": 3})
    acd.enqueue("y", "q", 4, requires={"zh": 5, "labour": 3})
    acd.enqueue("z", "q", 4, requires={"zh": 5, "labour": 3})
    assert offered(acd.next_offers(4)) == [("x", ("expert",)), ("y", ("twin",)), ("z", ("novice",))]
    acd.enqueue("plain", "q", 5, requires={"zh": 1})
    assert offered(acd.next_offers(5)) == [("plain", ("idle",))]


def test_required_skills_are_hard_limits_in_every_strategy() -> None:
    acd = make(QueueConfig("q"), agents={"idle": {"zh": 9}, "skilled": {"zh": 9, "bo": 6}})
    acd.login("idle", ["q"], 0)
    acd.login("skilled", ["q"], 5)
    acd.enqueue("tibetan", "q", 6, requires={"bo": 4})
    assert offered(acd.next_offers(6)) == [("tibetan", ("skilled",))]


def test_relaxation_lets_a_less_skilled_agent_take_the_call_after_the_step() -> None:
    q = QueueConfig("q", strategy="skills", relaxation=((30, 2), (60, 5)))
    acd = make(q, agents={"junior": {"labour": 4}, "other": {"family": 9}})
    acd.login("junior", ["q"], 0)
    acd.login("other", ["q"], 0)
    acd.enqueue("x", "q", 10, requires={"labour": 6})
    assert acd.next_offers(10) == []
    assert acd.next_deadline() == 40.0
    assert acd.tick(39.9) == [] and acd.next_offers(39.9) == []
    assert acd.tick(40) == []  # relaxation is not something the runtime must act on...
    assert CallRelaxed("x", "q", 2, 40.0) in acd.drain_events()  # ...but it is logged
    assert offered(acd.next_offers(40)) == [("x", ("junior",))]
    assert acd.next_deadline() == 55.0  # the ring timeout; the next step (70) is still armed behind it


def test_relaxation_never_drops_a_required_skill() -> None:
    acd = make(QueueConfig("q", relaxation=((1, 9),)), agents={"a": {"zh": 1}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0, requires={"bo": 3, "zh": 10})  # after 1 s: bo >= 1 (not 0) and zh >= 1
    acd.tick(100)
    assert acd.next_offers(100) == []
    acd.configure_agent(AgentConfig("a", {"zh": 1, "bo": 1}))
    assert offered(acd.next_offers(100)) == [("x", ("a",))]


def test_an_agent_freed_at_the_exact_step_time_gets_the_relaxed_call() -> None:
    acd = make(QueueConfig("q", relaxation=((30, 2),)), agents={"junior": {"zh": 4}, "mute": {"bo": 9}})
    acd.enqueue("x", "q", 0, requires={"zh": 6, "bo": 2})
    acd.enqueue("y", "q", 0, requires={"zh": 6})
    acd.tick(30)
    assert acd.next_offers(30) == []  # x relaxed to zh >= 4, bo >= 1 (never 0), but nobody is logged in
    acd.login("mute", ["q"], 30)  # lacks zh altogether
    assert acd.next_offers(30) == []
    acd.login("junior", ["q"], 30)  # the only change: the freed agent looks for its first caller...
    assert offered(acd.next_offers(30)) == [("y", ("junior",))]  # ...not x: no Tibetan at all
    acd.abandon("y", 31)
    acd.configure_agent(AgentConfig("mute", {"zh": 4, "bo": 1}))  # learns to speak
    assert offered(acd.next_offers(31)) == [("x", ("mute",))]


def test_priority_caller_overtakes_earlier_callers() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.enqueue("first", "q", 0)
    acd.enqueue("second", "q", 1)
    assert acd.enqueue("vip", "q", 2, priority=5) == EnqueueResult(True, 1)
    assert acd.position("first") == 2
    acd.login("a", ["q"], 3)
    assert offered(acd.next_offers(3)) == [("vip", ("a",))]


def test_fifo_within_a_priority_across_queues_sharing_an_agent() -> None:
    acd = make(QueueConfig("q1"), QueueConfig("q2"), agents={"a": {}})
    acd.enqueue("early", "q2", 3)
    acd.enqueue("late", "q1", 5, arrived_at=4)
    acd.login("a", ["q1", "q2"], 6)
    assert offered(acd.next_offers(6)) == [("early", ("a",))]


def test_penalty_one_agents_are_offered_calls_only_when_penalty_zero_are_busy() -> None:
    acd = make(QueueConfig("q"), agents={"backup": {}, "main": {}})
    acd.login("backup", [Membership("q", penalty=1)], 0)  # idle longer, but penalty 1
    acd.login("main", ["q"], 5)
    acd.enqueue("x", "q", 6)
    acd.enqueue("y", "q", 6)
    assert offered(acd.next_offers(6)) == [("x", ("main",)), ("y", ("backup",))]


# -- offers, answers, failures ----------------------------------------------------------------------


def test_a_caller_whose_offer_failed_goes_back_ahead_of_later_callers() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.enqueue("y", "q", 2)
    assert offered(acd.next_offers(2)) == [("x", ("a",))]
    assert acd.position("y") == 1
    acd.enqueue("z", "q", 3)
    acd.offer_failed("x", "a", 4)
    assert [acd.position(c) for c in "xyz"] == [1, 2, 3]
    assert acd.call("x").arrived_at == 1.0
    acd.pause("a", 4)
    acd.unpause("a", 5)
    assert offered(acd.next_offers(5)) == [("x", ("a",))]


def test_failed_offer_keeps_the_callers_place_and_prefers_another_agent() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.enqueue("y", "q", 2)
    assert offered(acd.next_offers(2)) == [("x", ("a",))]
    assert acd.position("x") == 0 and acd.position("y") == 1
    acd.login("b", ["q"], 3)
    assert offered(acd.next_offers(3)) == [("y", ("b",))]
    acts = acd.offer_failed("x", "a", 4, OfferResult.NO_ANSWER)
    assert acts == []
    assert acd.position("x") == 1  # back at its original place, not behind later callers
    acd.enqueue("z", "q", 5)
    assert acd.position("z") == 2
    assert offered(acd.next_offers(5)) == [("x", ("a",))]  # only a is free: x gets a again rather than waiting


def test_ring_timeout_is_a_no_answer_and_the_call_tries_the_next_agent() -> None:
    acd = make(QueueConfig("q", ring_timeout=10), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 1)
    acd.enqueue("x", "q", 2)
    (o,) = acd.next_offers(2)
    assert o == Offer("x", ("a",), "q", 12.0)
    assert acd.next_deadline() == 12.0
    assert acd.tick(11.99) == []
    assert acd.tick(12) == [OfferTimedOut("x", "q", ("a",), 12.0)]
    assert acd.agent("a").state is AgentState.AVAILABLE and acd.agent("a").reason == "ring-timeout"
    assert offered(acd.next_offers(12)) == [("x", ("b",))]  # a is idle longer but already missed x


def test_abandon_while_waiting_leaves_the_queue() -> None:
    acd = make(QueueConfig("q"))
    acd.enqueue("x", "q", 0)
    acd.enqueue("y", "q", 1)
    assert acd.abandon("x", 30) == []
    assert acd.position("y") == 1
    assert CallAbandoned("x", "q", 30.0, 1, 30.0) in acd.drain_events()
    with pytest.raises(UnknownCall):
        acd.position("x")


def test_abandon_while_ringing_cancels_the_offer_and_frees_the_agent() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.enqueue("y", "q", 2)
    acd.next_offers(2)
    assert acd.abandon("x", 3) == [OfferCancelled("x", "q", ("a",), "abandoned", 3.0)]
    assert acd.agent("a").state is AgentState.AVAILABLE
    assert offered(acd.next_offers(3)) == [("y", ("a",))]
    assert acd.agent("a").call_id == "y"
    assert acd.next_deadline() == 18.0  # x's ring timer is dead


def test_pause_while_ringing_withdraws_the_offer() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.next_offers(1)
    assert acd.pause("a", 2, "toilet") == [OfferCancelled("x", "q", ("a",), "agent-paused", 2.0)]
    assert acd.agent("a").state is AgentState.PAUSED and acd.agent("a").reason == "toilet"
    assert acd.call("x").state is CallState.WAITING
    acd.login("b", ["q"], 3)
    assert offered(acd.next_offers(3)) == [("x", ("b",))]


def test_logout_while_ringing_withdraws_the_offer_and_logout_on_a_call_is_refused() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.next_offers(1)
    assert acd.logout("a", 2) == [OfferCancelled("x", "q", ("a",), "agent-logged-out", 2.0)]
    acd.login("a", ["q"], 3)
    acd.next_offers(3)
    acd.answered("x", "a", 4)
    with pytest.raises(InvalidTransition, match="on call x"):
        acd.logout("a", 5)


def test_pause_during_a_call_applies_after_wrap_up() -> None:
    acd = make(QueueConfig("q", wrapup=5), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0)
    acd.next_offers(0)
    acd.answered("x", "a", 1)
    acd.pause("a", 2, "lunch")
    assert acd.agent("a").state is AgentState.ON_CALL and acd.agent("a").pause_pending == "lunch"
    acd.call_ended("x", 10)
    assert acd.tick(15) == [WrapUpEnded("a", 15.0)]
    assert acd.agent("a").state is AgentState.PAUSED and acd.agent("a").reason == "lunch"
    events = acd.drain_events()
    assert AgentPausePending("a", "lunch", 2.0) in events


def test_unpause_withdraws_a_pending_pause() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0)
    acd.next_offers(0)
    acd.answered("x", "a", 1)
    acd.pause("a", 2)
    acd.unpause("a", 3)
    acd.call_ended("x", 4)
    assert acd.agent("a").state is AgentState.AVAILABLE
    with pytest.raises(InvalidTransition):
        acd.unpause("a", 5)


def test_wrap_up_blocks_offers_until_it_ends_and_an_agent_override_wins() -> None:
    acd = make(QueueConfig("q", wrapup=30))
    acd.configure_agent(AgentConfig("fast", wrapup=5))
    acd.configure_agent(AgentConfig("slow"))
    acd.login("fast", ["q"], 0)
    acd.login("slow", ["q"], 0)
    acd.enqueue("x", "q", 0)
    acd.enqueue("y", "q", 0)
    acd.next_offers(0)
    serve(acd, "x", "fast", 1, 10)
    serve(acd, "y", "slow", 1, 10)
    assert acd.agent("fast").wrap_until == 15.0 and acd.agent("slow").wrap_until == 40.0
    acd.enqueue("z", "q", 11)
    assert acd.next_offers(11) == []
    assert acd.next_deadline() == 15.0
    assert acd.tick(15) == [WrapUpEnded("fast", 15.0)]
    assert offered(acd.next_offers(15)) == [("z", ("fast",))]
    acd.answered("z", "fast", 16)
    acd.finish_wrapup("slow", 16)
    assert acd.agent("slow").state is AgentState.AVAILABLE
    assert acd.tick(40) == []  # slow's wrap-up timer is dead


def test_transfer_out_counts_as_answered_only_if_it_was() -> None:
    acd = make(QueueConfig("q", wrapup=5), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0)
    acd.enqueue("y", "q", 0)
    acd.next_offers(0)
    acd.answered("x", "a", 1)
    acd.transfer_out("x", 20, target="lawyer-7")
    assert acd.agent("a").state is AgentState.WRAP_UP
    acd.transfer_out("y", 21, target="voicemail")
    s = acd.stats(22).queues["q"]
    assert (s.answered, s.transferred, s.waiting) == (1, 1, 0)
    events = acd.drain_events()
    assert CallTransferred("x", "q", "a", "lawyer-7", True, 20.0) in events
    assert CallTransferred("y", "q", None, "voicemail", False, 21.0) in events


# -- auto-pause, overflow, join-empty -------------------------------------------------------------------


def test_auto_pause_after_n_consecutive_unanswered_offers() -> None:
    acd = make(QueueConfig("q", auto_pause_after=2, ring_timeout=10), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0)
    acd.next_offers(0)
    assert acd.offer_failed("x", "a", 1) == []
    acd.next_offers(1)
    acts = acd.tick(11)
    assert acts == [OfferTimedOut("x", "q", ("a",), 11.0), AgentAutoPaused("a", "q", 2, 11.0)]
    assert acd.agent("a").state is AgentState.PAUSED and acd.agent("a").reason == "auto-pause"
    assert acd.next_offers(11) == []
    acd.unpause("a", 20)  # the count starts again
    acd.next_offers(20)
    assert acd.offer_failed("x", "a", 21) == []
    assert acd.agent("a").state is AgentState.AVAILABLE


def test_an_answer_resets_the_unanswered_count() -> None:
    acd = make(QueueConfig("q", auto_pause_after=2), agents={"a": {}})
    acd.login("a", ["q"], 0)
    for i in range(3):
        acd.enqueue(f"c{i}", "q", i)
        acd.next_offers(i)
        acd.offer_failed(f"c{i}", "a", i)
        acd.next_offers(i)
        serve(acd, f"c{i}", "a", i, i)
    assert acd.agent("a").state is AgentState.AVAILABLE


def test_overflow_after_max_wait_keeps_arrival_order_in_the_next_queue() -> None:
    acd = make(QueueConfig("backup"), QueueConfig("front", max_wait=60, overflow_to="backup"), agents={"b": {}})
    acd.enqueue("old", "front", 0)
    acd.enqueue("local", "backup", 30)
    assert acd.next_deadline() == 60.0
    acts = acd.tick(60)
    assert acts == [CallOverflowed("old", "front", "backup", 60.0, 60.0)]
    assert acd.position("old") == 1 and acd.position("local") == 2
    assert acd.call("old").entered_at == 60.0 and acd.call("old").arrived_at == 0.0
    acd.login("b", ["backup"], 61)
    assert offered(acd.next_offers(61)) == [("old", ("b",))]
    s = acd.stats(61).queues
    assert (s["front"].entered, s["front"].overflowed) == (1, 1)
    assert s["backup"].entered == 2


def test_max_wait_without_overflow_times_the_call_out() -> None:
    acd = make(QueueConfig("q", max_wait=90))
    acd.enqueue("x", "q", 10)
    assert acd.tick(99.9) == []
    assert acd.tick(100) == [CallTimedOut("x", "q", 90.0, 100.0)]
    assert acd.stats(100).queues["q"].timed_out == 1
    with pytest.raises(UnknownCall):
        acd.call("x")


def test_max_wait_reached_while_ringing_lets_the_ring_finish() -> None:
    acd = make(QueueConfig("q", max_wait=30, ring_timeout=15), agents={"a": {}, "b": {}})
    acd.enqueue("x", "q", 0)
    acd.enqueue("y", "q", 0)
    acd.login("a", ["q"], 20)
    acd.login("b", ["q"], 20)
    acd.next_offers(20)
    assert acd.tick(30) == []  # both ringing at max wait
    acd.answered("x", "a", 31)  # answered: stays
    assert acd.offer_failed("y", "b", 32) == [CallTimedOut("y", "q", 32.0, 32.0)]
    assert acd.stats(32).queues["q"].answered == 1


@pytest.mark.parametrize(
    ("policy", "agents_state", "accepted"),
    [
        (JoinEmpty.JOIN, "none", True),
        (JoinEmpty.REFUSE_NO_AGENTS, "none", False),
        (JoinEmpty.REFUSE_NO_AGENTS, "paused", True),
        (JoinEmpty.REFUSE_UNAVAILABLE, "paused", False),
        (JoinEmpty.REFUSE_UNAVAILABLE, "on_call", True),
        (JoinEmpty.REFUSE_UNAVAILABLE, "unskilled", False),
    ],
)
def test_join_empty_policies(policy: JoinEmpty, agents_state: str, accepted: bool) -> None:
    acd = make(QueueConfig("q", join_empty=policy), agents={"a": {"zh": 5}})
    if agents_state != "none":
        acd.login("a", ["q"], 0)
    if agents_state == "paused":
        acd.pause("a", 0, "meeting")
    if agents_state == "on_call":
        acd.enqueue("busy", "q", 0)
        acd.next_offers(0)
        acd.answered("busy", "a", 0)
    requires = {"bo": 1} if agents_state == "unskilled" else {"zh": 3}
    result = acd.enqueue("x", "q", 1, requires=requires)
    assert result.accepted is accepted
    if not accepted:
        assert result.reason == ("no-agents" if policy is JoinEmpty.REFUSE_NO_AGENTS else "unavailable")
        assert CallRefused("x", "q", result.reason, 1.0) in acd.drain_events()
        assert acd.stats(1).queues["q"].refused == 1
        with pytest.raises(UnknownCall):
            acd.call("x")


def test_join_empty_counts_agents_able_after_full_relaxation() -> None:
    acd = make(QueueConfig("q", join_empty="refuse-no-agents", relaxation=((60, 3),)), agents={"a": {"zh": 2}})
    acd.login("a", ["q"], 0)
    assert acd.enqueue("x", "q", 1, requires={"zh": 5}).accepted
    assert not acd.enqueue("y", "q", 1, requires={"zh": 6}).accepted


# -- statistics, positions, estimates -------------------------------------------------------------------


def test_service_level_and_averages_by_hand() -> None:
    acd = make(QueueConfig("q", sl_threshold=20, wrapup=10), agents={"a": {}})
    # answered after 5 s and 30 s; abandoned after 10 s (before the threshold: ignored) and 25 s (counts)
    for call in ("fast", "slow", "quitter", "late-quitter"):
        acd.enqueue(call, "q", 0)
    acd.login("a", ["q"], 5)
    assert offered(acd.next_offers(5)) == [("fast", ("a",))]
    acd.answered("fast", "a", 5)
    acd.abandon("quitter", 10)
    acd.call_ended("fast", 15)  # talk 10 + wrap-up 10 -> handle 20
    acd.abandon("late-quitter", 25)
    acd.tick(25)
    assert offered(acd.next_offers(25)) == [("slow", ("a",))]
    acd.answered("slow", "a", 30)  # waited 30 > 20
    acd.call_ended("slow", 70)  # talk 40
    acd.finish_wrapup("a", 75)  # wrap-up 5 -> handle 45
    s = acd.stats(100).queues["q"]
    assert (s.answered, s.answered_within, s.abandoned, s.abandoned_after) == (2, 1, 2, 1)
    assert s.service_level == pytest.approx(1 / 3)  # 1 within / (2 answered + 1 abandoned after 20 s)
    assert s.average_speed_of_answer == pytest.approx((5 + 30) / 2)
    assert s.average_handle_time == pytest.approx((20 + 45) / 2)
    assert s.sl_target == 0.8
    # occupancy: logged in 5..100 = 95 s; busy 5..25 (20) + 30..75 (45) = 65 s
    agent = acd.stats(100).agents["a"]
    assert agent.occupancy == pytest.approx(65 / 95)
    assert agent.calls_handled == 2 and agent.seconds_in_state == 25.0


def test_service_level_is_none_before_any_counted_call() -> None:
    acd = make(QueueConfig("q"))
    acd.enqueue("x", "q", 0)
    acd.abandon("x", 5)
    s = acd.stats(5).queues["q"]
    assert s.service_level is None and s.average_speed_of_answer is None and s.average_handle_time is None


def test_live_counts_and_longest_wait() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 0)
    acd.pause("b", 0)
    acd.enqueue("x", "q", 10)
    acd.enqueue("y", "q", 20, priority=3)
    acd.enqueue("z", "q", 30)
    acd.next_offers(30)  # y (priority) rings a
    s = acd.stats(50).queues["q"]
    assert (s.waiting, s.ringing, s.agents_logged_in, s.agents_available) == (2, 1, 2, 0)
    assert s.longest_wait == 40.0


def test_position_orders_by_priority_then_arrival_across_requirement_profiles() -> None:
    acd = make(QueueConfig("q"))
    acd.enqueue("a", "q", 0, requires={"zh": 3})
    acd.enqueue("b", "q", 1, requires={"bo": 3})
    acd.enqueue("c", "q", 2, priority=1, requires={"zh": 3})
    acd.enqueue("d", "q", 3)
    acd.enqueue("e", "q", 4, priority=1)
    assert [acd.position(c) for c in "abcde"] == [3, 4, 1, 5, 2]
    acd.abandon("c", 5)
    assert [acd.position(c) for c in "abde"] == [2, 3, 4, 1]


def test_estimated_wait_is_position_times_handle_time_over_serving_agents() -> None:
    acd = make(QueueConfig("q", expected_handle_time=120), agents={"a": {}, "b": {}, "c": {}})
    acd.enqueue("x", "q", 0)
    assert acd.estimated_wait("x", 0) is None  # nobody serving
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 0)
    acd.login("c", ["q"], 0)
    acd.pause("c", 0)
    acd.enqueue("y", "q", 0)
    acd.enqueue("z", "q", 0)
    acd.next_offers(0)  # x -> a, y -> b
    assert acd.estimated_wait("z", 0) == pytest.approx(1 * 120 / 2)  # no history: expected_handle_time
    acd.answered("x", "a", 0)
    acd.answered("y", "b", 0)
    acd.call_ended("x", 60)
    acd.call_ended("y", 100)
    acd.enqueue("w", "q", 100)
    assert acd.position("w") == 2
    assert acd.estimated_wait("w", 100) == pytest.approx(2 * 80 / 2)  # AHT (60 + 100) / 2
    acd.next_offers(100)
    assert acd.estimated_wait("z", 100) == 0.0  # ringing


# -- configuration changes, time, errors ----------------------------------------------------------------


def test_reconfiguring_a_queue_changes_its_strategy_at_once() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}})
    acd.login("a", ["q"], 0)
    acd.login("b", ["q"], 1)
    acd.configure_queue(QueueConfig("q", strategy="ring-all", max_wait=10))
    acd.enqueue("x", "q", 2)
    assert offered(acd.next_offers(2)) == [("x", ("a", "b"))]


def test_reconfiguring_relaxation_rearms_waiting_calls() -> None:
    acd = make(QueueConfig("q"), agents={"a": {"zh": 2}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0, requires={"zh": 4})
    assert acd.next_deadline() is None
    acd.configure_queue(QueueConfig("q", relaxation=((30, 2),)))
    assert acd.next_deadline() == 30.0
    acd.tick(30)
    assert offered(acd.next_offers(30)) == [("x", ("a",))]


def test_reconfiguring_a_logged_in_agents_skills_applies_at_once() -> None:
    acd = make(QueueConfig("q"), agents={"a": {"zh": 2}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 0, requires={"zh": 5})
    assert acd.next_offers(0) == []
    acd.configure_agent(AgentConfig("a", {"zh": 6}))
    assert offered(acd.next_offers(1)) == [("x", ("a",))]


def test_time_never_goes_backwards() -> None:
    acd = make(QueueConfig("q"))
    acd.enqueue("x", "q", 10)
    acd.enqueue("y", "q", 5)  # a late report: taken as 10
    assert acd.call("y").arrived_at == 10.0


def test_every_state_change_is_an_event() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    acd.login("a", ["q"], 0)
    acd.enqueue("x", "q", 1)
    acd.next_offers(1)
    events = acd.drain_events()
    assert [type(e).__name__ for e in events] == ["AgentStateChanged", "CallQueued", "CallOffered", "AgentStateChanged"]
    assert events[0] == AgentStateChanged("a", AgentState.LOGGED_OUT, AgentState.AVAILABLE, "login", 0.0)
    assert events[1] == CallQueued("x", "q", 0, 1, 1.0)
    assert events[2] == CallOffered("x", "q", ("a",), 16.0, 1.0)
    assert acd.drain_events() == []
    assert all(not isinstance(e, Happening) for e in events)


def test_unknown_ids_raise_lookup_errors_with_the_id() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}})
    with pytest.raises(UnknownQueue, match="'nope'"):
        acd.enqueue("x", "nope", 0)
    with pytest.raises(UnknownAgent, match="'ghost'"):
        acd.login("ghost", ["q"], 0)
    with pytest.raises(UnknownQueue):
        acd.login("a", ["q", "nope"], 0)
    assert acd.agent("a").state is AgentState.LOGGED_OUT  # nothing half-done
    with pytest.raises(UnknownCall):
        acd.abandon("x", 0)
    with pytest.raises(UnknownQueue):
        acd.configure_queue(QueueConfig("r", max_wait=5, overflow_to="missing"))


def test_invalid_transitions() -> None:
    acd = make(QueueConfig("q"), agents={"a": {}, "b": {}})
    with pytest.raises(InvalidTransition):
        acd.pause("a", 0)
    acd.login("a", ["q"], 0)
    with pytest.raises(InvalidTransition):
        acd.login("a", ["q"], 0)
    with pytest.raises(InvalidTransition):
        acd.finish_wrapup("a", 0)
    acd.enqueue("x", "q", 0)
    with pytest.raises(InvalidTransition):
        acd.enqueue("x", "q", 0)
    with pytest.raises(InvalidTransition):
        acd.answered("x", "a", 0)  # not offered yet
    with pytest.raises(InvalidTransition):
        acd.call_ended("x", 0)
    acd.next_offers(0)
    acd.login("b", ["q"], 0)
    with pytest.raises(InvalidTransition):
        acd.answered("x", "b", 0)  # ringing a, not b
    acd.answered("x", "a", 1)
    with pytest.raises(InvalidTransition):
        acd.abandon("x", 2)
    with pytest.raises(InvalidTransition):
        acd.offer_failed("x", "a", 2)


@pytest.mark.parametrize(
    "build",
    [
        lambda: QueueConfig(""),
        lambda: QueueConfig("q", strategy="random"),
        lambda: QueueConfig("q", ring_timeout=0),
        lambda: QueueConfig("q", wrapup=-1),
        lambda: QueueConfig("q", overflow_to="r"),  # no max_wait
        lambda: QueueConfig("q", max_wait=5, overflow_to="q"),
        lambda: QueueConfig("q", sl_target=80),
        lambda: QueueConfig("q", relaxation=((30, 2), (20, 3))),
        lambda: QueueConfig("q", relaxation=((30, 2), (60, 1))),
        lambda: QueueConfig("q", join_empty="maybe"),
        lambda: QueueConfig("q", auto_pause_after=-1),
        lambda: AgentConfig("a", {"zh": 11}),
        lambda: AgentConfig("a", {"zh": 0}),
        lambda: AgentConfig("a", {"": 3}),
        lambda: Membership("q", penalty=-1),
    ],
)
def test_bad_settings_are_rejected(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument):
        build()


def test_bad_call_arguments_are_rejected_without_side_effects() -> None:
    acd = make(QueueConfig("q"))
    with pytest.raises(InvalidArgument):
        acd.enqueue("x", "q", 0, requires={"zh": 0})
    with pytest.raises(InvalidArgument):
        acd.enqueue("x", "q", 0, priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        acd.enqueue("x", "q", float("nan"))
    assert acd.stats(0).queues["q"].entered == 0
    acd.enqueue("x", "q", 0)
    with pytest.raises(InvalidArgument):
        acd.offer_failed("x", "a", 0, "maybe")  # type: ignore[arg-type]


def test_events_are_frozen_dataclasses_with_the_usual_constructor() -> None:
    import dataclasses

    e = CallTimedOut("x", "q", 1.0, 2.0)
    assert e.reason == "timeout" and e == CallTimedOut(call_id="x", queue_id="q", waited=1.0, at=2.0)
    assert hash(e) == hash(CallTimedOut("x", "q", 1.0, 2.0))
    assert dataclasses.asdict(dataclasses.replace(e, reason="other"))["reason"] == "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.at = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallTimedOut("x", "q", 1.0)  # type: ignore[call-arg]
    assert Offer("x", ("a",), "q", 1.0) == Offer(call_id="x", agent_ids=("a",), queue_id="q", deadline=1.0)


def test_relaxation_deltas_beyond_the_level_range_behave_like_nine() -> None:
    acd = make(QueueConfig("q", join_empty="refuse-no-agents", relaxation=((10, 40),)), agents={"a": {"zh": 1}})
    acd.login("a", ["q"], 0)
    assert acd.enqueue("x", "q", 0, requires={"zh": 10}).accepted
    assert not acd.enqueue("y", "q", 0, requires={"bo": 10}).accepted
    acd.tick(10)
    assert offered(acd.next_offers(10)) == [("x", ("a",))]


def test_stale_timers_are_dropped_and_live_ones_kept() -> None:
    acd = make(QueueConfig("q", max_wait=3600, relaxation=((1800, 1),)), agents={"a": {}})
    acd.login("a", ["q"], 0)
    for i in range(3000):  # each answered call leaves a max-wait and a relaxation timer behind
        acd.enqueue(f"c{i}", "q", i)
        acd.next_offers(i)
        serve(acd, f"c{i}", "a", i, i)
    acd.enqueue("late", "q", 3000)
    acd.pause("a", 3000)
    assert len(acd._timers) < 4000  # noqa: SLF001 - compacted, not 6,000
    assert acd.next_deadline() == 4800.0  # late's relaxation step survives compaction
    assert acd.tick(6600) == [CallTimedOut("late", "q", 3600.0, 6600.0)]
