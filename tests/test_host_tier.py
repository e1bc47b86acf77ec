"""The host tier under the pins, on the real engine and model: a context whose blocks
left the device cache is copied back for the program's next turn (vLLM's cached-token
counts show it) and gives the same reply as a fresh prefill; only the blocks whose
tokens match are used; the tier keeps to its capacity, forgets contexts left idle, and
prices a miss from the copy and prefill times it measures."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from memos.llm.engine import Engine
from memos.llm.host_tier import capacity_blocks
from memos.llm.pin_hint import PinHint
from memos.llm.prefill_meter import PrefillMeter
from tests.conftest import TEST_HOST_BLOCKS, assert_same_reply

BLOCK = 128


def tokens(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000, 40_000) for _ in range(n)]


def turn(
    engine: Engine, prompt: list[int], program: str | None, max_tokens: int = 4,
    ends: bool = False,
):  # fmt: skip
    from vllm import SamplingParams

    hint = PinHint(program, 0, ends) if program else None  # ttl 0: no pin on the device
    params = SamplingParams(
        max_tokens=max_tokens, temperature=0.0, ignore_eos=True, logprobs=0,
        extra_args=hint.as_extra_args() if hint else None,
    )  # fmt: skip
    return asyncio.run(engine.generate({"prompt_token_ids": prompt}, params))


def burst(engine: Engine, seed: int) -> None:
    """Three unrelated 900-token prompts: together they evict the 23 usable blocks."""
    for i in range(3):
        turn(engine, tokens(900, seed + i), None)


def host(engine: Engine) -> dict[str, float]:
    return {k: v for k, v in engine.kv_stats().items() if k.startswith("host_")}


def copies_held(engine: Engine) -> int:
    """Blocks the worker's half of the tier holds in host memory."""
    return engine.call(engine.host_tier_worker().held_copies)


@pytest.fixture(autouse=True)
def empty_tier(engine: Engine):
    engine.call(lambda: engine.scheduler.reset_prefix_cache(reset_connector=True))
    yield
    engine.call(lambda: engine.scheduler.reset_prefix_cache(reset_connector=True))


def fresh_reply(engine: Engine, prompt: list[int]):
    engine.call(lambda: engine.scheduler.reset_prefix_cache())
    fresh = turn(engine, prompt, None)
    assert fresh.num_cached_tokens == 0
    return fresh


def test_an_evicted_context_comes_back_from_the_host_tier(engine: Engine) -> None:
    prompt = tokens(900, seed=40)
    first = turn(engine, prompt, "prog-host")
    assert host(engine)["host_blocks"] == 7  # 903 tokens written: 7 full blocks
    burst(engine, seed=41)
    loaded_before = host(engine)["host_loaded_tokens"]

    follow = prompt + list(first.outputs[0].token_ids) + tokens(100, seed=42)
    again = turn(engine, follow, "prog-host")
    assert again.num_cached_tokens == 7 * BLOCK
    assert host(engine)["host_loaded_tokens"] > loaded_before  # not the device cache
    assert_same_reply(again, fresh_reply(engine, follow))


def test_only_blocks_whose_tokens_match_are_loaded(engine: Engine) -> None:
    prompt = tokens(900, seed=50)
    turn(engine, prompt, "prog-fork")
    burst(engine, seed=51)
    # The same program comes back with a prompt that parts from the context in block 4.
    forked = prompt[: 3 * BLOCK + 10] + tokens(600, seed=52)
    again = turn(engine, forked, "prog-fork")
    assert again.num_cached_tokens == 3 * BLOCK
    assert_same_reply(again, fresh_reply(engine, forked))


def test_the_host_tier_keeps_to_its_capacity(engine: Engine) -> None:
    prompts = {f"prog-cap-{n}": tokens(900, seed=60 + n) for n in range(5)}
    for program, prompt in prompts.items():  # 5 x 7 blocks: over the 32 the tier holds
        turn(engine, prompt, program)
    stats = host(engine)
    assert stats["host_blocks"] <= TEST_HOST_BLOCKS and stats["host_programs"] == 4
    burst(engine, seed=70)
    # The least recently used context was forgotten; the latest is still there.
    oldest = turn(engine, prompts["prog-cap-0"] + tokens(50, seed=71), "prog-cap-0")
    latest = turn(engine, prompts["prog-cap-4"] + tokens(50, seed=72), "prog-cap-4")
    assert oldest.num_cached_tokens == 0
    assert latest.num_cached_tokens == 7 * BLOCK


def test_the_tier_prices_a_miss_from_the_times_it_measures(engine: Engine) -> None:
    prompt = tokens(900, seed=80)
    first = turn(engine, prompt, "prog-price")
    stats = host(engine)
    assert stats["host_copied_blocks"] >= 7 and stats["host_copy_seconds"] > 0
    copy_share = (stats["host_copy_seconds"] / stats["host_copied_blocks"]) / (
        PrefillMeter.seconds_per_token() * BLOCK
    )
    # On this CPU a block's copy takes milliseconds, its prefill a large part of a second.
    assert copy_share < 0.2
    # A miss costs the copy where the tier kept the context, a prefill where its capacity
    # forced it out (as it did in the capacity test, if that ran before).
    found, lost = stats["host_returns_found"], stats["host_returns_lost"]
    kept = (found + 1) / (found + lost + 1)
    cache = engine.cache_state()
    assert cache.miss_cost == pytest.approx(stats["host_miss_cost"])
    assert cache.miss_cost == pytest.approx(kept * copy_share + (1 - kept), rel=0.05)
    assert cache.miss_cost < 0.5 and 0 <= cache.usage <= 1
    turn(engine, prompt + list(first.outputs[0].token_ids) + tokens(20, seed=81), "prog-price")
    assert host(engine)["host_returns_found"] == found + 1


def test_contexts_left_idle_are_forgotten(engine: Engine) -> None:
    connector = engine.scheduler.connector
    configured = connector.idle_ttl_s
    try:
        engine.call(lambda: setattr(connector, "idle_ttl_s", 0.5))
        turn(engine, tokens(300, seed=90), "prog-idle")
        assert host(engine)["host_programs"] == 1
        time.sleep(0.6)
        turn(engine, tokens(200, seed=91), None)  # any step looks for idle contexts
        assert host(engine)["host_programs"] == 0 and host(engine)["host_blocks"] == 0
        turn(engine, tokens(300, seed=92), "prog-idle-2")
        assert host(engine)["host_programs"] == 1
        assert copies_held(engine) == 2
        time.sleep(1.0)  # no step runs: the idle engine forgets it on time all the same
        assert host(engine)["host_programs"] == 0 and host(engine)["host_blocks"] == 0
        assert copies_held(engine) == 0  # and frees the host memory
    finally:
        engine.call(lambda: setattr(connector, "idle_ttl_s", configured))


def test_a_programs_last_turn_is_copied_back_but_its_context_is_then_freed(
    engine: Engine,
) -> None:
    prompt = tokens(700, seed=95)
    first = turn(engine, prompt, "prog-last", max_tokens=4)
    assert host(engine)["host_programs"] == 1 and copies_held(engine) == 5
    burst(engine, seed=96)  # the context leaves the device cache
    follow = prompt + list(first.outputs[0].token_ids) + tokens(300, seed=97)
    before = host(engine)
    last = turn(engine, follow, "prog-last", ends=True)
    assert last.num_cached_tokens >= 5 * BLOCK
    after = host(engine)
    loaded = (after["host_loaded_tokens"] - before["host_loaded_tokens"]) // BLOCK
    assert loaded >= 1  # the context came back from host memory ...
    # ... and of the turn's 7 full blocks none was saved: every block copied was a load
    assert after["host_copied_blocks"] - before["host_copied_blocks"] == loaded
    assert host(engine)["host_programs"] == 0 and host(engine)["host_blocks"] == 0
    time.sleep(0.5)  # the idle engine hands the forget to the worker
    assert copies_held(engine) == 0


def test_the_tier_size_is_checked_and_auto_takes_a_share_of_free_memory() -> None:
    import psutil

    block = 6 * 1024 * 1024
    auto = capacity_blocks("auto", block)
    assert 0 < auto <= psutil.virtual_memory().total // 4 // block
    assert capacity_blocks(32, block) == 32
    for bad in (0, -3, 2.5, True, "lots"):
        with pytest.raises(ValueError, match="capacity_blocks must be"):
            capacity_blocks(bad, block)
