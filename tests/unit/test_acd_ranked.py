"""RankedSet, the order-statistics set behind callers' positions: checked against a plain sorted list."""

from __future__ import annotations

from bisect import bisect_left, insort

from hypothesis import given, settings
from hypothesis import strategies as st

from huiyan.acd import ranked as ranked_module
from huiyan.acd.ranked import RankedSet

ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "pop", "rank"]), st.integers(0, 3000)), max_size=2500
)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from([1, 3, 512]))
def test_matches_a_sorted_list(script: list[tuple[str, int]], load: int) -> None:
    saved, ranked_module._LOAD = ranked_module._LOAD, load  # small blocks: splits and empty blocks happen
    try:
        check(script)
    finally:
        ranked_module._LOAD = saved


def check(script: list[tuple[str, int]]) -> None:
    ranked = RankedSet()
    plain: list[int] = []
    for op, key in script:
        if op == "add" and key not in plain:
            ranked.add(key)
            insort(plain, key)
        elif op == "remove" and plain:
            victim = plain[key % len(plain)]
            ranked.remove(victim)
            plain.remove(victim)
        elif op == "pop" and plain:
            assert ranked.pop_first() == plain.pop(0)
        assert ranked.rank(key) == bisect_left(plain, key)
        assert len(ranked) == len(plain)
        if plain:
            assert ranked.first() == plain[0]
    assert list(ranked) == plain


def test_many_blocks_and_mostly_appends() -> None:
    ranked = RankedSet()
    for k in range(0, 20000, 2):
        ranked.add(k)
    for k in range(1, 4000, 2):  # inserts in the middle split blocks
        ranked.add(k)
    assert ranked.rank(4001) == 4001
    assert ranked.rank(10**9) == len(ranked) == 12000
    for _ in range(5000):
        ranked.pop_first()
    assert ranked.first() == 6000  # 0..3999 (4000 keys) then the evens 4000..5998 (1000) are gone
    assert ranked.rank(19998) == len(ranked) - 1
