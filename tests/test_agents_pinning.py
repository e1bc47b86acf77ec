"""KV-cache pinning on the real vLLM engine and model: a pinned program's prefix
survives a burst of other requests, pins end at their TTL, the cap holds, and a
program that never returns leaks nothing. Cached-token counts are vLLM's own."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest

from memos.llm.engine import Engine
from memos.llm.pin_hint import PROGRAM_KEY, TTL_KEY, PinHint
from tests.conftest import TEST_KV_BLOCKS, TEST_PIN_CAP, assert_same_reply

BLOCK = 128
CITIES = ["Lisbon", "Oslo", "Quito", "Hanoi", "Accra", "Perth", "Lima", "Riga"]


def long_prompt(seed: str, sentences: int = 45) -> str:
    """About 900 tokens of text no other prompt shares (7-8 KV blocks of the 24)."""
    return " ".join(
        f"Note {seed}-{i}: parcel {i * 7 + len(seed)} left {CITIES[i % 8]} on day {i}."
        for i in range(sentences)
    )


def generate(engine: Engine, prompt: str, hint: PinHint | None = None):
    from vllm import SamplingParams

    params = SamplingParams(
        max_tokens=4, temperature=0.0, extra_args=hint.as_extra_args() if hint else None
    )
    return asyncio.run(engine.generate(prompt, params))


def pins(engine: Engine):
    return engine.scheduler.pins


@pytest.fixture(autouse=True)
def clean_cache(engine: Engine):
    """Each test starts with no pins and an empty prefix cache."""
    engine.call(lambda: engine.scheduler.reset_prefix_cache())
    yield
    engine.call(lambda: engine.scheduler.reset_prefix_cache())


def burst(engine: Engine, n: int = 3) -> None:
    for _ in range(n):
        generate(engine, long_prompt(f"b{uuid.uuid4().hex[:4]}"))


def test_pinned_prefix_survives_a_burst_that_evicts_an_unpinned_one(engine: Engine) -> None:
    pinned_prompt, unpinned_prompt = long_prompt("pinned"), long_prompt("unpinned")
    first = generate(engine, pinned_prompt, PinHint("prog-pinned", 60))
    generate(engine, unpinned_prompt)
    assert "prog-pinned" in pins(engine)
    burst(engine)

    follow = pinned_prompt + first.outputs[0].text + " Tool result: parcel found."
    again = generate(engine, follow, PinHint("prog-pinned", 0))
    full_blocks = len(first.prompt_token_ids) // BLOCK
    assert again.num_cached_tokens >= full_blocks * BLOCK
    assert "prog-pinned" not in pins(engine)  # the next turn took the pin

    control = generate(engine, unpinned_prompt + " Tool result: parcel found.")
    assert control.num_cached_tokens == 0  # evicted by the burst


def test_pin_ends_at_its_ttl_and_an_abandoned_program_leaks_nothing(engine: Engine) -> None:
    total = engine.kv_stats()["total_blocks"]
    free_before = engine.call(
        lambda: engine.scheduler.kv_cache_manager.block_pool.get_num_free_blocks()
    )
    generate(engine, long_prompt("abandoned"), PinHint("prog-abandoned", 1.0))
    held = engine.call(lambda: pins(engine).held_blocks)
    assert held >= 6
    assert engine.kv_stats()["free_blocks"] == free_before - held
    deadline = time.monotonic() + 10
    while "prog-abandoned" in pins(engine) and time.monotonic() < deadline:
        time.sleep(0.1)  # the idle engine releases expired pins on its own
    assert "prog-abandoned" not in pins(engine)
    assert engine.kv_stats()["free_blocks"] == free_before
    assert engine.kv_stats()["pin_expired"] >= 1
    assert free_before == total - 1  # vLLM keeps one null block; every other block is free


def test_the_cap_holds_and_every_program_completes(engine: Engine) -> None:
    cap = int(TEST_KV_BLOCKS * TEST_PIN_CAP)
    before = dict(engine.kv_stats())
    for n in range(4):  # 4 x ~8 blocks would be ~32 pinned blocks: far over the cap
        out = generate(engine, long_prompt(f"cap{n}"), PinHint(f"prog-cap-{n}", 30 + n))
        assert out.finished
        assert engine.call(lambda: pins(engine).held_blocks) <= cap
    stats = engine.kv_stats()
    assert stats["pin_peak_blocks"] <= cap
    # Later pins expire later, so they were refused rather than the earlier evicted.
    assert stats["pin_refused"] > before["pin_refused"]
    burst(engine, 2)  # new work still runs beside the pins
    engine.call(lambda: pins(engine).release_all())
    assert engine.kv_stats()["free_blocks"] == TEST_KV_BLOCKS - 1


def test_malformed_hint_in_extra_args_is_ignored_not_fatal(engine: Engine) -> None:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=2, extra_args={PROGRAM_KEY: "", TTL_KEY: -1})
    out = asyncio.run(engine.generate("Hello", params))
    assert out.finished and len(pins(engine)) == 0


def token_prompt(tokens: int, seed: int) -> dict[str, list[int]]:
    """A prompt of exactly ``tokens`` token ids that no other prompt shares."""
    rng = random.Random(seed)
    return {"prompt_token_ids": [rng.randrange(1000, 40_000) for _ in range(tokens)]}


def test_a_pin_gives_way_before_a_running_request_is_preempted(engine: Engine) -> None:
    from vllm import SamplingParams

    # 11 blocks pinned (10 full, 1 partly written; under the cap of 12) leave 12 of the
    # 23 usable blocks free.
    generate(engine, token_prompt(11 * BLOCK - 4, seed=1), PinHint("prog-big", 60))
    assert engine.call(lambda: pins(engine).held_blocks) == 11
    before = dict(engine.kv_stats())

    # Two requests of 6 blocks each take the rest; their 68th output token needs a 7th
    # block that only the pin can give (vLLM as shipped would preempt one of them). The
    # pin gives one block for each, from its end, and keeps the rest of its context.
    params = SamplingParams(max_tokens=72, temperature=0.0, ignore_eos=True)

    async def both():
        return await asyncio.gather(
            engine.generate(token_prompt(700, seed=2), params),
            engine.generate(token_prompt(700, seed=3), params),
        )

    outs = asyncio.run(both())
    assert all(len(o.outputs[0].token_ids) == 72 for o in outs)
    after = engine.kv_stats()
    assert after["prefill_preempted_requests"] == before["prefill_preempted_requests"]
    assert after["pin_gave_way"] == before["pin_gave_way"] + 2
    assert engine.call(lambda: len(pins(engine).get("prog-big").blocks)) == 9


def test_a_waiting_turn_takes_a_later_programs_pin_only_when_that_lets_it_in(
    engine: Engine,
) -> None:
    from vllm import SamplingParams

    # A later program (rank 5) pins 11 blocks; a running request takes 9 of the other 12.
    pin_params = SamplingParams(
        max_tokens=4, temperature=0.0, extra_args=PinHint("prog-late", 60).as_extra_args()
    )
    asyncio.run(engine.generate(token_prompt(11 * BLOCK - 4, seed=20), pin_params, priority=5))
    assert engine.call(lambda: pins(engine).held_blocks) == 11
    running_params = SamplingParams(max_tokens=100, temperature=0.0, ignore_eos=True)
    waiting_params = SamplingParams(max_tokens=4, temperature=0.0)
    seen: dict[str, bool] = {}

    async def scenario() -> None:
        running = asyncio.create_task(
            engine.generate(token_prompt(1100, seed=21), running_params, priority=0)
        )
        await asyncio.sleep(0.3)
        # An earlier program's turn needs 15 blocks: 3 free + the pin's 11 are not enough.
        waiting = asyncio.create_task(
            engine.generate(token_prompt(1900, seed=22), waiting_params, priority=1)
        )
        await asyncio.sleep(2.5)  # past the running request's prefill: the turn was tried
        seen["pinned while it could not fit"] = engine.call(lambda: "prog-late" in pins(engine))
        seen["running still running"] = not running.done()
        await asyncio.gather(running, waiting)

    before = engine.kv_stats()["pin_gave_way"]
    asyncio.run(scenario())
    assert seen == {"pinned while it could not fit": True, "running still running": True}
    # Once the running request was done, blocks from the end of the pin let the waiting
    # turn in (15 blocks needed, 12 free); the rest of the pin stays.
    given = engine.kv_stats()["pin_gave_way"] - before
    assert given >= 3
    assert engine.call(lambda: pins(engine).held_blocks) == 11 - given


def test_the_next_turn_reuses_the_pinned_partly_written_block(engine: Engine) -> None:
    from vllm import SamplingParams

    def turn(prompt: list[int], hint: PinHint | None):
        params = SamplingParams(
            max_tokens=4, temperature=0.0, ignore_eos=True, logprobs=0,
            extra_args=hint.as_extra_args() if hint else None,
        )  # fmt: skip
        return asyncio.run(engine.generate({"prompt_token_ids": prompt}, params))

    prompt = token_prompt(300, seed=30)["prompt_token_ids"]
    first = turn(prompt, PinHint("prog-tail", 60))
    # 303 tokens written (the last sampled token never went through the model):
    # 2 full blocks and 47 tokens of a third.
    assert engine.call(lambda: len(pins(engine).get("prog-tail").tail_tokens)) == 47
    follow = (
        prompt + list(first.outputs[0].token_ids) + token_prompt(50, seed=31)["prompt_token_ids"]
    )
    again = turn(follow, PinHint("prog-tail", 0))
    assert again.num_cached_tokens == 303  # full blocks alone would give 256
    assert "prog-tail" not in pins(engine)

    engine.call(lambda: engine.scheduler.reset_prefix_cache())
    fresh = turn(follow, None)
    assert fresh.num_cached_tokens == 0
    # The reused block holds the same keys and values a fresh prefill computes.
    assert_same_reply(again, fresh)
