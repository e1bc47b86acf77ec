"""The host tier under the pins, on the real engine and model: a context whose blocks
left the device cache is copied back for the program's next turn (vLLM's cached-token
counts show it) and gives the same reply as a fresh prefill; only the blocks whose
tokens match are used; the tier keeps to its capacity."""

from __future__ import annotations

import asyncio
import random

import pytest

from memos.agents.engine import Engine
from memos.agents.pin_hint import PinHint
from tests.conftest import TEST_HOST_BLOCKS, assert_same_reply

BLOCK = 128


def tokens(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000, 40_000) for _ in range(n)]


def turn(engine: Engine, prompt: list[int], program: str | None, max_tokens: int = 4):
    from vllm import SamplingParams

    hint = PinHint(program, 0) if program else None  # ttl 0: no pin on the device
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
