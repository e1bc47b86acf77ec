"""Shared prefixes (activation memory's engine state) on the real engine: every request
that carries the prefix's hint reuses its pinned blocks and none takes them; the pins
stay within their own share of the cache, give way to running requests under
pressure, come back from the host tier, and go when asked (TTL 0)."""

from __future__ import annotations

import asyncio
import random

import pytest

from memos.llm.engine import Engine
from memos.llm.pin_hint import PinHint
from tests.conftest import TEST_KV_BLOCKS

BLOCK = 128
SHARED_CAP_BLOCKS = int(TEST_KV_BLOCKS * 0.25)  # the default activation cap: 6 blocks


def tokens(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000, 40_000) for _ in range(n)]


def ask(engine: Engine, prompt: list[int], hint: PinHint | None, max_tokens: int = 2):
    from vllm import SamplingParams

    params = SamplingParams(
        max_tokens=max_tokens, temperature=0.0, ignore_eos=True,
        extra_args=hint.as_extra_args() if hint else None,
    )  # fmt: skip
    return asyncio.run(engine.generate({"prompt_token_ids": prompt}, params))


def shared(engine: Engine):
    return engine.scheduler.shared


def held(engine: Engine, prefix_id: str) -> int:
    return engine.call(lambda: engine.scheduler.shared_blocks(prefix_id))


@pytest.fixture(autouse=True)
def clean_cache(engine: Engine):
    engine.call(lambda: engine.scheduler.reset_prefix_cache(reset_connector=True))
    yield
    engine.call(lambda: engine.scheduler.reset_prefix_cache(reset_connector=True))


def test_every_request_with_the_prefix_reuses_it_and_none_takes_it(engine: Engine) -> None:
    block = tokens(3 * BLOCK + 20, seed=1)
    hint = PinHint("act-a", 60, prefix_tokens=len(block))
    ask(engine, block + tokens(5, seed=2), hint)
    assert held(engine, "act-a") == 3  # the full blocks of the prefix, not the tail
    for seed in (3, 4):  # two users' questions after the same block
        out = ask(engine, block + tokens(30, seed=seed), hint)
        assert out.num_cached_tokens >= 3 * BLOCK
        assert held(engine, "act-a") == 3  # still pinned: no request takes a shared pin
    assert engine.call(lambda: len(engine.scheduler.pins)) == 0  # no program pin was made


def test_shared_prefixes_hold_no_more_than_their_share(engine: Engine) -> None:
    capacity = engine.call(lambda: shared(engine).capacity_blocks)
    assert capacity == SHARED_CAP_BLOCKS
    first, second = tokens(4 * BLOCK + 1, seed=10), tokens(4 * BLOCK + 1, seed=11)
    ask(engine, [*first, 7], PinHint("act-old", 60, prefix_tokens=len(first)))
    ask(engine, [*second, 7], PinHint("act-new", 60, prefix_tokens=len(second)))
    assert engine.call(lambda: shared(engine).held_blocks) <= capacity
    # the least recently used prefix gave up its tail blocks; the newer one is whole
    assert held(engine, "act-new") == 4
    assert held(engine, "act-old") == capacity - 4


def test_a_shared_prefix_gives_way_to_running_requests_under_pressure(
    engine: Engine,
) -> None:
    from vllm import SamplingParams

    block = tokens(5 * BLOCK + 3, seed=20)
    ask(engine, [*block, 9], PinHint("act-p", 60, prefix_tokens=len(block)))
    assert held(engine, "act-p") == 5
    before = engine.kv_stats()
    # Three requests of 6 blocks take the 18 blocks left; each one's 68th output token
    # needs a 7th block that only the shared pin can give (else vLLM would preempt).
    params = SamplingParams(max_tokens=72, temperature=0.0, ignore_eos=True)

    async def three():
        return await asyncio.gather(*(
            engine.generate({"prompt_token_ids": tokens(700, seed=21 + i)}, params)
            for i in range(3)
        ))  # fmt: skip

    outs = asyncio.run(three())
    assert all(len(o.outputs[0].token_ids) == 72 for o in outs)
    after = engine.kv_stats()
    assert after["prefill_preempted_requests"] == before["prefill_preempted_requests"]
    assert after["pin_shared_gave_way"] >= before["pin_shared_gave_way"] + 3
    assert held(engine, "act-p") <= 2
    # the host tier kept the whole prefix: the next user of the block copies it back
    loaded = after["host_loaded_tokens"]
    assert engine.prefix_held("act-p")["host_blocks"] == 5
    again = ask(engine, block + tokens(20, seed=25), PinHint("act-p", 60,
                                                              prefix_tokens=len(block)))  # fmt: skip
    assert again.num_cached_tokens >= 5 * BLOCK
    assert engine.kv_stats()["host_loaded_tokens"] > loaded


def test_a_ttl_of_zero_drops_the_shared_prefix(engine: Engine) -> None:
    block = tokens(2 * BLOCK + 5, seed=30)
    ask(engine, [*block, 1], PinHint("act-z", 60, prefix_tokens=len(block)))
    assert held(engine, "act-z") == 2
    ask(engine, [*block, 1], PinHint("act-z", 0, ends=True, prefix_tokens=len(block)))
    assert held(engine, "act-z") == 0
    assert engine.prefix_held("act-z") == {"pinned_blocks": 0, "host_blocks": 0}


def test_a_bad_prefix_length_is_refused() -> None:
    from memos.llm.pin_hint import InvalidPinHintError

    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InvalidPinHintError, match="prefix_tokens"):
            PinHint("act", 10, prefix_tokens=bad)  # type: ignore[arg-type]
    assert PinHint.parse({"memos_program_id": "a", "memos_pin_ttl_s": 5.0,
                          "memos_pin_prefix_tokens": 256.0}).prefix_tokens == 256  # fmt: skip
