"""Mode (e) of the agent benchmark: vLLM's own streaming-input sessions.

vLLM's ``AsyncLLM.generate`` takes an async generator of ``StreamingInput`` as one
request. After each input's reply the request pauses (``WAITING_FOR_STREAMING_REQ``)
and keeps every KV block it holds; the next input extends it where it stopped. So a
program's whole context stays resident across its tool call: no re-prefill, but also
no time to live and no cap, however long the tool runs and however full the cache is.

Each turn's input is the tokens the conversation grew by (the tool's output in the
chat template), so a session holds as many tokens as the other modes' prompts. The
memory a paused session holds is its context's blocks for the tool's duration (vLLM
frees nothing of a paused request); peak KV usage comes from vLLM's own statistics.
A watchdog ends the run if the engine makes no progress while turns wait on it.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any

STALL_S = 60.0  # no output for this long while turns wait: the sessions are stuck


class _Progress:
    def __init__(self) -> None:
        self.last_output = time.monotonic()
        self.waiting_on_engine = 0


def _peak_kv_logger() -> Any:
    from vllm.v1.metrics.loggers import StatLoggerBase

    class PeakKvUsage(StatLoggerBase):
        peak = 0.0

        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            PeakKvUsage.peak = 0.0

        def record(self, scheduler_stats: Any, iteration_stats: Any, *args: Any,
                   **kwargs: Any) -> None:  # fmt: skip
            if scheduler_stats is not None:
                PeakKvUsage.peak = max(PeakKvUsage.peak, scheduler_stats.kv_cache_usage)

        def log_engine_initialized(self) -> None:
            return None

    return PeakKvUsage


def run_sessions(plan: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer
    from vllm import AsyncEngineArgs, SamplingParams
    from vllm.engine.protocol import StreamingInput
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.async_llm import AsyncLLM

    from memos.llm.engine import EngineSettings
    from memos.llm.prefill_meter import PrefillMeter

    w = plan["workload"]
    settings = EngineSettings(
        model_dir, num_blocks=w["kv_blocks"], pinning=False, program_fcfs=False
    )
    settings.apply_environment()
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"  # AsyncLLM runs its core apart
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    block = 128

    def token_ids(messages: list[dict[str, str]]) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    peak_logger = _peak_kv_logger()
    engine = AsyncLLM.from_engine_args(
        AsyncEngineArgs(**settings.engine_args()), stat_loggers=[PrefillMeter, peak_logger]
    )
    progress = _Progress()
    paused: list[tuple[float, float, int]] = []  # (start, end, blocks held) per tool call

    async def one(program: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(program["arrival_s"])
        started = time.monotonic()
        messages = [{"role": "system", "content": program["system"]},
                    {"role": "user", "content": program["task"]}]  # fmt: skip
        inputs: asyncio.Queue[Any] = asyncio.Queue()

        async def feed() -> Any:
            while (item := await inputs.get()) is not None:
                yield item

        full = token_ids(messages)
        inputs.put_nowait(StreamingInput(TokensPrompt(prompt_token_ids=full)))
        params = SamplingParams(max_tokens=w["output_tokens"], temperature=0.0,
                                output_kind=RequestOutputKind.DELTA)  # fmt: skip
        session_tokens, turn, reply_ids, turns = len(full), 0, [], []
        carried = 0  # prompt tokens the paused session still held computed
        turn_started = time.monotonic()
        progress.waiting_on_engine += 1
        async for out in engine.generate(feed(), params, request_id=program["id"]):
            progress.last_output = time.monotonic()
            completion = out.outputs[0]
            reply_ids.extend(completion.token_ids)
            if completion.finish_reason is None:
                continue
            progress.waiting_on_engine -= 1
            step = program["steps"][turn]
            seconds = time.monotonic() - turn_started
            turn_record = {"prompt_tokens": session_tokens, "cached_tokens": carried,
                           "output_tokens": len(reply_ids), "seconds": seconds,
                           "tool_seconds": 0.0}  # fmt: skip
            turns.append(turn_record)
            if step["tool"] is None:
                inputs.put_nowait(None)  # the session ends; its blocks are freed
                continue
            # The paused request keeps its prompt and every reply token but the last.
            kept = session_tokens + len(reply_ids) - 1
            tool_started = time.monotonic()
            await asyncio.sleep(step["seconds"])
            turn_record["tool_seconds"] = time.monotonic() - tool_started
            paused.append((tool_started, time.monotonic(), math.ceil(kept / block)))
            messages += [
                {"role": "assistant", "content": tokenizer.decode(reply_ids,
                                                                  skip_special_tokens=True)},
                {"role": "user", "content": step["output"]},
            ]  # fmt: skip
            full = token_ids(messages)
            inputs.put_nowait(StreamingInput(TokensPrompt(prompt_token_ids=full[kept:])))
            session_tokens, turn, reply_ids, carried = len(full), turn + 1, [], kept
            turn_started = time.monotonic()
            progress.waiting_on_engine += 1
        return {"id": program["id"], "jct_s": time.monotonic() - started, "turns": turns}

    async def watchdog(tasks: list[asyncio.Task[Any]]) -> None:
        while not all(t.done() for t in tasks):
            await asyncio.sleep(2)
            stuck = time.monotonic() - progress.last_output
            if progress.waiting_on_engine and stuck > STALL_S:
                for task in tasks:
                    task.cancel()
                return

    async def agents() -> list[Any]:
        tasks = [asyncio.create_task(one(p)) for p in plan["programs"]]
        guard = asyncio.create_task(watchdog(tasks))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        guard.cancel()
        return results

    started = time.monotonic()
    results = asyncio.run(agents())
    makespan = time.monotonic() - started
    engine.shutdown()
    finished = [r for r in results if isinstance(r, dict)]
    kv = {f"prefill_{k}": v for k, v in PrefillMeter.totals.items()}
    kv.update(_held(paused))
    kv["peak_kv_usage"] = peak_logger.peak
    failures = sorted({type(r).__name__ for r in results if not isinstance(r, dict)})
    return {"mode": "stream", "programs": finished, "makespan_s": makespan,
            "stalled": len(finished) < len(plan["programs"]), "failures": failures,
            "no_tool_req_per_s": None, "kv": kv}  # fmt: skip


def _held(paused: list[tuple[float, float, int]]) -> dict[str, float]:
    """Block-seconds and the peak number of blocks held by paused sessions."""
    events = sorted([(s, n) for s, _, n in paused] + [(e, -n) for _, e, n in paused])
    now = peak = 0
    for _, change in events:
        now += change
        peak = max(peak, now)
    return {"idle_held_block_seconds": sum((e - s) * n for s, e, n in paused),
            "idle_peak_blocks": peak}  # fmt: skip
