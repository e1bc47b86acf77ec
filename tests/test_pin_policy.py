"""The pin table's bookkeeping (cap, eviction order, expiry) and the TTL rule, on plain
data: block objects with ids and a clock the test moves."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import pytest

from memos.llm.pin_hint import ENDS_KEY, PROGRAM_KEY, TTL_KEY, InvalidPinHintError, PinHint
from memos.llm.pin_table import PinTable
from memos.llm.programs import ProgramHintError, ProgramRegistry, UnknownProgramError
from memos.llm.tool_durations import ToolDurationPredictor
from memos.llm.ttl_policy import CacheState, TtlPolicy


@dataclass
class FakeBlock:
    block_id: int


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def blocks(start: int, n: int) -> list[FakeBlock]:
    return [FakeBlock(i) for i in range(start, start + n)]


@pytest.fixture
def table() -> tuple[PinTable, list[list[FakeBlock]], Clock]:
    released: list[list[FakeBlock]] = []
    clock = Clock()
    return PinTable(10, released.append, clock), released, clock


def test_cap_trims_the_pin_expected_back_last_and_keeps_prefixes(table) -> None:
    pins, released, _ = table
    assert pins.pin("a", blocks(0, 4), ttl_s=10)
    assert pins.pin("b", blocks(10, 4), ttl_s=50)
    assert pins.pin("c", blocks(20, 4), ttl_s=20)  # b (back at 50 s) gives up its tail
    assert pins.get("b").blocks == blocks(10, 2)
    assert released == [[FakeBlock(13)], [FakeBlock(12)]]  # the last block goes first
    assert pins.held_blocks == 10 and pins.stats.trimmed == 1
    assert not pins.pin("d", blocks(30, 4), ttl_s=60)  # back last and no room: refused
    assert pins.stats.refused == 1 and released[-1] == blocks(30, 4)
    assert pins.pin("e", blocks(40, 3), ttl_s=30)  # b goes; e keeps the prefix that fits
    assert "b" not in pins and pins.stats.evicted == 1
    assert pins.get("e").blocks == blocks(40, 2) and released[-1] == [FakeBlock(42)]
    assert pins.held_blocks == 10 and pins.stats.trimmed == 2


def test_cap_gives_up_the_latest_program_first(table) -> None:
    pins, _, _ = table
    assert pins.pin("early", blocks(0, 6), ttl_s=50, rank=0)
    assert pins.pin("late", blocks(10, 4), ttl_s=5, rank=3)
    assert pins.pin("middle", blocks(20, 4), ttl_s=60, rank=1)  # evicts "late", not "early"
    assert "late" not in pins and "early" in pins and "middle" in pins
    assert not pins.pin("last", blocks(30, 4), ttl_s=1, rank=9)  # refused: it goes last


def test_shared_blocks_count_once_under_the_cap(table) -> None:
    pins, _, _ = table
    prefix = blocks(0, 6)
    assert pins.pin("a", prefix + blocks(10, 2), ttl_s=5)
    assert pins.pin("b", prefix + blocks(20, 2), ttl_s=5)  # 10 distinct blocks
    assert pins.held_blocks == 10


def test_expiry_take_and_keep(table) -> None:
    pins, released, clock = table
    pins.pin("a", blocks(0, 2), ttl_s=1)
    pins.pin("b", blocks(5, 2), ttl_s=1)
    pins.pin("c", blocks(8, 2), ttl_s=9)
    clock.now = 2
    assert pins.expire(keep={"b"}) == 1  # b's next turn is waiting: kept past its TTL
    assert "a" not in pins and "b" in pins
    assert pins.take("b") and not pins.take("b")
    assert pins.give_up_block(exclude={"c"}) is False
    pins.release_all()
    assert pins.held_blocks == 0 and sum(len(r) for r in released) == 6
    assert pins.stats.expired == 1 and pins.stats.taken == 1


def test_ttl_policy_pins_fast_tools_and_not_slow_ones_under_pressure() -> None:
    predictor = ToolDurationPredictor()
    rng = random.Random(0)
    for _ in range(200):
        predictor.observe("grep", rng.lognormvariate(-1.0, 0.5))  # ~0.4 s
        predictor.observe("build", rng.lognormvariate(4.0, 0.5))  # ~55 s
    policy = TtlPolicy(predictor)
    full, idle = CacheState(usage=1.0), CacheState(usage=0.0)
    fast = policy.ttl("grep", turn=1, cache=full)
    assert predictor.quantile("grep", 0.5) < fast < 3.0
    assert policy.ttl("build", turn=1, cache=full) == 0.0
    assert policy.ttl("build", turn=1, cache=idle) > 30  # an idle cache may hold it
    assert policy.ttl("never-seen", turn=0) == policy.cold_ttl_s
    assert policy.ttl(None, turn=3) == 0.0


def test_the_hold_horizon_decides_whether_a_mid_length_tool_is_worth_pinning() -> None:
    predictor = ToolDurationPredictor()
    rng = random.Random(1)
    for _ in range(200):
        predictor.observe("run_tests", rng.lognormvariate(1.8, 0.7))  # ~6 s
    busy = CacheState(usage=0.9)
    cheap = TtlPolicy(predictor, hold_horizon_s=120.0)  # holding is cheap
    assert cheap.ttl("run_tests", turn=1, cache=busy) > predictor.quantile("run_tests", 0.9)
    dear = TtlPolicy(predictor, hold_horizon_s=3.0)  # six seconds of holding cost more
    assert dear.ttl("run_tests", turn=1, cache=busy) == 0.0


def test_a_cheap_copy_back_turns_device_pins_off_under_pressure() -> None:
    predictor = ToolDurationPredictor()
    rng = random.Random(2)
    for _ in range(200):
        predictor.observe("grep", rng.lognormvariate(-1.0, 0.5))  # ~0.4 s
    policy = TtlPolicy(predictor)
    prefill_only = CacheState(usage=0.9, miss_cost=1.0)
    host_copy = CacheState(usage=0.9, miss_cost=0.01)  # milliseconds against seconds
    assert policy.ttl("grep", turn=1, cache=prefill_only) > 0
    assert policy.ttl("grep", turn=1, cache=host_copy) == 0.0
    # An idle cache costs nothing to hold, so even a cheap miss is worth avoiding.
    assert policy.ttl("grep", turn=1, cache=CacheState(usage=0.0, miss_cost=0.01)) > 0
    assert policy.ttl("unseen", turn=0, cache=host_copy) < policy.cold_ttl_s
    # The oracle's rule is the same, with the duration known.
    assert policy.known_ttl(0.4, turn=1, cache=prefill_only) == pytest.approx(0.9)
    assert policy.known_ttl(0.4, turn=1, cache=host_copy) == 0.0
    assert policy.known_ttl(40.0, turn=1, cache=prefill_only) == 0.0  # holding costs more
    for bad in ({"usage": 1.5}, {"miss_cost": -0.1}):
        with pytest.raises(ValueError, match="between 0 and 1"):
            CacheState(**bad)


def test_return_rate_counts_programs_that_left_for_a_tool() -> None:
    registry = ProgramRegistry()
    assert registry.policy.return_rate(0) == 1.0  # assumed until seen
    registry.begin_turn("a", 0, "grep", ttl_s=0.0)  # not pinned: still left for a tool
    registry.begin_turn("b", 0, "grep")
    registry.begin_turn("a", 1, None)
    assert registry.policy.return_rate(0) == pytest.approx(2 / 3)  # one of two came back
    registry.begin_turn("b", 1, None)
    assert registry.policy.return_rate(0) == 1.0


def test_finished_programs_job_times_fill_a_histogram() -> None:
    registry = ProgramRegistry()
    assert registry.job_times.count == 0
    ticket = registry.begin_turn("a", 0, "grep")
    registry.end_turn(ticket, 10, 0, 2)
    assert registry.get("a").seconds is None  # still running: its tool comes next
    registry.end_turn(registry.begin_turn("a", 1, None), 20, 10, 2)
    seconds = registry.get("a").seconds
    assert seconds is not None and 0 <= seconds < 1
    times = registry.job_times
    assert times.count == 1 and times.total_s == pytest.approx(seconds)
    assert times.cumulative()[0] == ("1.0", 1) and times.cumulative()[-1] == ("+Inf", 1)
    times.observe(45.0)
    assert dict(times.cumulative())["30.0"] == 1 and dict(times.cumulative())["60.0"] == 2


def test_registry_orders_programs_and_checks_turns() -> None:
    registry = ProgramRegistry()
    first = registry.begin_turn("p1", 0, "grep")
    second = registry.begin_turn("p2", None, "grep")
    assert first.priority < second.priority  # program-level first come, first served
    assert registry.begin_turn("p1", 1, None).priority == first.priority
    with pytest.raises(ProgramHintError, match="at turn 2, got turn 5"):
        registry.begin_turn("p1", 5, None)
    with pytest.raises(UnknownProgramError, match="first turn must be turn 0"):
        registry.begin_turn("p9", 2, None)
    with pytest.raises(ProgramHintError, match="next_tool"):
        registry.begin_turn("p3", 0, "")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({PROGRAM_KEY: "p", TTL_KEY: -1}, "between 0 and"),
        ({PROGRAM_KEY: "p", TTL_KEY: "soon"}, "number of seconds"),
        ({PROGRAM_KEY: "p", TTL_KEY: True}, "number of seconds"),
        ({PROGRAM_KEY: "", TTL_KEY: 5}, "non-empty"),
        ({PROGRAM_KEY: 7, TTL_KEY: 5}, "non-empty"),
        ({PROGRAM_KEY: "p"}, "needs both"),
        ({TTL_KEY: 5}, "needs both"),
        (["p", 5], "are an object"),
        ({PROGRAM_KEY: "p", TTL_KEY: float("inf")}, "number of seconds"),
        ({PROGRAM_KEY: "p", TTL_KEY: 0, ENDS_KEY: 2}, "must be 0 or 1"),
        ({PROGRAM_KEY: "p", TTL_KEY: 0, ENDS_KEY: True}, "must be 0 or 1"),
        ({PROGRAM_KEY: "p", TTL_KEY: 0, ENDS_KEY: "yes"}, "must be 0 or 1"),
    ],
)
def test_bad_pin_hints_are_rejected_with_the_reason(raw, message: str) -> None:
    with pytest.raises(InvalidPinHintError, match=message):
        PinHint.parse(raw)


def test_requests_without_a_hint_carry_none() -> None:
    assert PinHint.parse(None) is None and PinHint.parse({"other": 1}) is None
    assert PinHint.parse(PinHint("p", 3).as_extra_args()) == PinHint("p", 3.0)
    last = PinHint("p", 0, ends=True)
    assert last.as_extra_args()[ENDS_KEY] == 1 and PinHint.parse(last.as_extra_args()) == last


def test_only_a_last_turn_nobody_asked_to_pin_ends_its_program() -> None:
    registry = ProgramRegistry()
    assert not registry.begin_turn("a", 0, "search").hint.ends
    assert registry.begin_turn("a", 1, None).hint.ends
    # a caller who pins a turn with no next tool means to come back
    assert not registry.begin_turn("b", 0, None, ttl_s=5.0).hint.ends


def test_giving_way_spares_programs_ranked_before_a_claimant(table) -> None:
    pins, _, _ = table
    assert pins.pin("first", blocks(0, 3), ttl_s=50, rank=0)
    assert pins.pin("third", blocks(10, 3), ttl_s=10, rank=2)
    assert not pins.give_up_block(ranked_after=2)  # nothing ranked after the third program
    assert pins.give_up_block(exclude={"third"}, ranked_after=-1)
    assert [b.block_id for b in pins.get("first").blocks] == [0, 1]
    assert len(pins.get("third").blocks) == 3
    while pins.give_up_block(ranked_after=1):
        pass
    assert "third" not in pins and len(pins.get("first").blocks) == 2


def test_giving_way_takes_one_block_from_the_end_of_the_latest_program(table) -> None:
    pins, released, _ = table
    assert pins.pin("early", blocks(0, 4), ttl_s=5, rank=0)
    assert pins.pin("late", blocks(10, 4), ttl_s=5, rank=1, tail_tokens=(7, 8))
    assert pins.get("late").tail_tokens == (7, 8)
    assert pins.give_up_block() and released[-1] == [FakeBlock(13)]
    assert [b.block_id for b in pins.get("late").blocks] == [10, 11, 12]
    assert pins.get("late").tail_tokens == ()  # the partly written block went first
    for _ in range(3):
        assert pins.give_up_block()
    assert "late" not in pins and pins.held_blocks == 4  # the early program's context is whole
    assert pins.stats.gave_way == 4 and pins.stats.evicted == 1


def test_a_tools_duration_is_the_gap_between_turns() -> None:
    registry = ProgramRegistry()
    ticket = registry.begin_turn("a", 0, "grep")
    registry.begin_turn("b", 0, "grep")  # b's turn 0 never ends: nothing to measure from
    registry.end_turn(ticket, 10, 0, 2)
    time.sleep(0.3)
    registry.begin_turn("a", 1, None)
    registry.begin_turn("b", 1, None)
    [seconds] = registry.predictor.samples("grep")
    assert 0.3 <= seconds < 1.0
    assert registry.get("a").tool_seconds == {"grep": seconds}


def test_a_reported_tool_duration_wins_and_teaches_the_ttl() -> None:
    registry = ProgramRegistry()
    assert registry.policy.ttl("run_tests", 1) == 2.0  # cold: no duration seen yet
    for n in range(6):
        registry.end_turn(registry.begin_turn(f"p{n}", 0, "run_tests"), 10, 0, 2)
        registry.begin_turn(f"p{n}", 1, None, tool_seconds=2.2)
    assert registry.predictor.samples("run_tests") == [2.2] * 6  # not the ~0 s gaps
    assert registry.policy.ttl("run_tests", 1) > 2.2  # held past the tool's duration


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), 1e9, True, "3"])
def test_bad_tool_seconds_are_refused(bad) -> None:
    registry = ProgramRegistry()
    registry.end_turn(registry.begin_turn("a", 0, "grep"), 10, 0, 2)
    with pytest.raises(ProgramHintError, match="tool_seconds"):
        registry.begin_turn("a", 1, None, tool_seconds=bad)
    assert registry.predictor.samples("grep") == []


def test_tool_seconds_needs_a_tool_call_before_it() -> None:
    registry = ProgramRegistry()
    with pytest.raises(ProgramHintError, match="follows a tool call"):
        registry.begin_turn("a", 0, "grep", tool_seconds=1.0)


def test_a_namespaces_tool_is_predicted_from_its_own_calls_after_three() -> None:
    predictor = ToolDurationPredictor()
    for seconds in (10.0, 11.0, 12.0, 13.0):
        predictor.observe("build", seconds, "slow-team")
    predictor.observe("build", 1.0, "fast-team")
    # fast-team has one call: predicted from everyone's five
    assert predictor.samples("build", "fast-team") == [1.0, 10.0, 11.0, 12.0, 13.0]
    assert predictor.samples("build", "slow-team") == [10.0, 11.0, 12.0, 13.0]
    for _ in range(2):
        predictor.observe("build", 1.0, "fast-team")
    assert predictor.samples("build", "fast-team") == [1.0, 1.0, 1.0]  # its own now
    fast = predictor.tools("fast-team")
    assert fast == {"build": {"calls": 3, "predicted_from": "namespace", "samples": 3,
                              "p50_s": 1.0, "p90_s": 1.0}}  # fmt: skip
    assert predictor.tools("nobody") == {}  # other namespaces' tools stay theirs


def test_the_ttl_follows_the_namespaces_own_durations() -> None:
    registry = ProgramRegistry()
    for n in range(4):
        registry.end_turn(registry.begin_turn(f"s{n}", 0, "ci", namespace="slow"), 1, 0, 1)
        registry.begin_turn(f"s{n}", 1, None, tool_seconds=20.0, namespace="slow")
        registry.end_turn(registry.begin_turn(f"f{n}", 0, "ci", namespace="fast"), 1, 0, 1)
        registry.begin_turn(f"f{n}", 1, None, tool_seconds=1.0, namespace="fast")
    assert registry.policy.ttl("ci", 1, namespace="fast") < 2.0
    assert registry.policy.ttl("ci", 1, namespace="slow") > 20.0
