"""The agent loop: LLM turn, tool call, next turn, with the conversation growing so
that each turn's prompt extends the last one's (and can reuse its KV cache)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import Engine
from .programs import ProgramRegistry

ToolFn = Callable[[str], Awaitable[str] | str]


@dataclass(frozen=True)
class ToolCall:
    """The tool a turn calls next: its name (what durations are learned by) and the
    callable that runs it on the turn's reply."""

    name: str
    run: ToolFn


@dataclass
class ProgramSpec:
    id: str
    messages: list[dict[str, str]]  # the opening conversation
    tools: list[ToolCall | None]  # after turn i, tools[i] runs; None ends the program
    max_tokens: int = 16
    ttl_override: Callable[[int], float] | None = None  # e.g. an oracle that knows the tool


@dataclass
class TurnResult:
    prompt_tokens: int
    cached_tokens: int
    output_tokens: int
    fresh_tokens: int  # prompt tokens no earlier turn computed (the tool output, the template)
    recomputed_tokens: int  # prompt tokens an earlier turn computed that were not cached now
    seconds: float
    tool_seconds: float
    ttl_s: float
    # where the turn's time went, from vLLM's request timestamps (0 when it has none):
    queued_s: float = 0.0  # waiting to be scheduled the first time
    first_token_s: float = 0.0  # first scheduled -> first token: prefill (and preemption)
    decode_s: float = 0.0  # first token -> last token


@dataclass
class ProgramResult:
    id: str
    seconds: float
    turns: list[TurnResult] = field(default_factory=list)
    reply: str = ""


class AgentRuntime:
    def __init__(self, engine: Engine, registry: ProgramRegistry) -> None:
        self.engine = engine
        self.registry = registry

    async def run(self, spec: ProgramSpec) -> ProgramResult:
        from vllm import SamplingParams

        started = time.monotonic()
        messages = list(spec.messages)
        result = ProgramResult(spec.id, 0.0)
        computed_before = 0  # tokens whose KV an earlier turn computed
        tool_seconds: float | None = None  # the last tool's duration, told to the next turn
        for turn, tool in enumerate(spec.tools):
            ttl = spec.ttl_override(turn) if spec.ttl_override and tool else None
            ticket = self.registry.begin_turn(
                spec.id, turn, tool.name if tool else None, self.engine.cache_state(),
                ttl_s=ttl, tool_seconds=tool_seconds,
            )  # fmt: skip
            prompt = self.render(messages)
            params = SamplingParams(
                max_tokens=spec.max_tokens, temperature=0.0, extra_args=ticket.hint.as_extra_args()
            )
            turn_started = time.monotonic()
            out = await self.engine.generate(
                prompt, params, request_id=f"{spec.id}-t{turn}", priority=ticket.priority
            )
            seconds = time.monotonic() - turn_started
            prompt_tokens = len(out.prompt_token_ids or [])
            cached = out.num_cached_tokens or 0
            reply = out.outputs[0].text
            output_tokens = len(out.outputs[0].token_ids)
            self.registry.end_turn(ticket, prompt_tokens, cached, output_tokens)
            known = min(computed_before, prompt_tokens)
            recomputed = max(0, known - cached)
            computed_before = prompt_tokens + output_tokens
            messages.append({"role": "assistant", "content": reply})
            tool_seconds = None
            if tool is not None:
                tool_started = time.monotonic()
                observation = await _call(tool.run, reply)
                tool_seconds = time.monotonic() - tool_started
                messages.append({"role": "user", "content": observation})
            result.turns.append(TurnResult(
                prompt_tokens, cached, output_tokens, prompt_tokens - known, recomputed,
                seconds, tool_seconds or 0.0, ticket.hint.ttl_s, *_phases(out.metrics),
            ))  # fmt: skip
            result.reply = reply
        result.seconds = time.monotonic() - started
        return result

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.engine.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )


def _phases(metrics: Any) -> tuple[float, float, float]:
    """(queued, first token, decode) seconds of a finished request."""
    if metrics is None or not metrics.scheduled_ts:
        return 0.0, 0.0, 0.0
    return (
        max(0.0, metrics.scheduled_ts - metrics.queued_ts),
        max(0.0, metrics.first_token_ts - metrics.scheduled_ts),
        max(0.0, metrics.last_token_ts - metrics.first_token_ts),
    )


async def _call(fn: ToolFn, reply: str) -> str:
    if inspect.iscoroutinefunction(fn):
        return str(await fn(reply))
    value = await asyncio.to_thread(fn, reply)
    if inspect.isawaitable(value):
        value = await value
    return str(value)
