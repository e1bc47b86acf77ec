"""Chat completions with agent programs' turns pinned, on any chat backend.

The HTTP layer (server/chat.py) turns requests into ``ChatRequest`` and renders
``ChatChunk``s as OpenAI's JSON; the backend (embedded engine or a separate ``vllm
serve``) produces the text. What is checked and decided about programs lives here.
Programs are kept per namespace: two tenants may use the same program id.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from memos.config import Settings
from memos.errors import InvalidInputError, NotFoundError, UnavailableError

from .backend import ChatBackend, ChatChunk, ChatRequest
from .pin_hint import InvalidPinHintError, PinHint
from .programs import (
    ProgramHintError,
    ProgramRegistry,
    TurnTicket,
    UnknownProgramError,
    check_hint_fields,
)
from .ttl_policy import UNKNOWN_CACHE

log = logging.getLogger(__name__)

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_MESSAGES = 1_000
MAX_CHARS = 200_000
MAX_TOKENS = 4_096  # the backend also bounds it by the model's context
MAX_SEED = 2**63 - 1  # the sampler's generator takes a 64-bit seed
MAX_STOP = 4
MAX_STOP_CHARS = 256

__all__ = ["ChatChunk", "ChatRequest", "ChatService", "ProgramTurn", "build_chat_service"]


@dataclass(frozen=True)
class ProgramTurn:
    """Where a request sits in an agent program (all optional but the id)."""

    program_id: str
    turn: int | None = None
    next_tool: str | None = None
    pin_ttl_s: float | None = None  # overrides the TTL policy
    tool_seconds: float | None = None  # how long the last turn's tool took, when known


class ChatService:
    def __init__(self, backend: ChatBackend, registry: ProgramRegistry | None = None) -> None:
        self.backend = backend
        self.registry = registry or ProgramRegistry()
        self.in_flight = 0  # requests on the backend now: the load the cache adapts to

    @property
    def model_name(self) -> str:
        return self.backend.model_name

    @property
    def ready(self) -> bool:
        return self.backend.ready

    @property
    def state(self) -> str:
        return self.backend.state

    async def stream(
        self, request: ChatRequest, namespace: str, prefix: PinHint | None = None
    ) -> AsyncIterator[ChatChunk]:
        """The reply as it is produced. ``prefix`` keeps a shared prefix the prompt starts
        with (an activation memory's block) for a request of no program."""
        self._check(request)
        if not self.ready:
            raise UnavailableError(f"the language model is {self.state}; retry in a few seconds")
        ticket = self._begin(request.program, namespace)
        chunks = self.backend.stream(
            request, ticket.hint if ticket else prefix, ticket.priority if ticket else 0
        )
        self.in_flight += 1
        try:
            async for chunk in chunks:
                if chunk.finished and ticket is not None:
                    self.registry.end_turn(
                        ticket, chunk.prompt_tokens, chunk.cached_tokens, chunk.completion_tokens
                    )
                    chunk.program = {"turn": ticket.turn, "pin_ttl_s": ticket.hint.ttl_s}
                yield chunk
        finally:
            self.in_flight -= 1

    async def complete(
        self, request: ChatRequest, namespace: str, prefix: PinHint | None = None
    ) -> ChatChunk:
        """The whole reply as one chunk."""
        parts: list[str] = []
        last = ChatChunk("")
        async for last in self.stream(request, namespace, prefix):
            parts.append(last.text)
        last.text = "".join(parts)
        return last

    def program(self, namespace: str, program_id: str) -> dict[str, Any]:
        try:
            info = self.registry.get(_scoped(namespace, program_id)).as_dict()
        except UnknownProgramError:
            raise NotFoundError(f"program {program_id!r} not found") from None
        info["id"] = program_id
        return info

    def tools(self, namespace: str) -> dict[str, dict[str, Any]]:
        """The tools this namespace's programs have called: how long they take and the
        TTL a turn 1 that calls one would be given now."""
        cache = self.backend.cache_state() if self.ready else UNKNOWN_CACHE
        tools = self.registry.predictor.tools(namespace)
        for name, tool in tools.items():
            tool["pin_ttl_s"] = self.registry.policy.ttl(name, 1, cache, namespace)
        return tools

    def stats(self) -> dict[str, float]:
        return self.backend.stats()

    def servers(self) -> list[dict[str, object]]:
        return self.backend.servers()

    # ------------------------------------------------------------------------------

    def _begin(self, program: ProgramTurn | None, namespace: str) -> TurnTicket | None:
        if program is None:
            return None
        try:
            check_hint_fields(program.program_id, program.turn, program.next_tool,
                              program.pin_ttl_s)  # fmt: skip
            return self.registry.begin_turn(
                _scoped(namespace, program.program_id), program.turn, program.next_tool,
                cache=self.backend.cache_state(), ttl_s=program.pin_ttl_s,
                tool_seconds=program.tool_seconds, namespace=namespace,
            )  # fmt: skip
        except (UnknownProgramError, ProgramHintError, InvalidPinHintError) as exc:
            raise InvalidInputError(str(exc).replace(f"{namespace}:", "", 1)) from None

    @staticmethod
    def _check(request: ChatRequest) -> None:
        messages = request.messages
        if not messages:
            raise InvalidInputError("messages must hold at least one message")
        if len(messages) > MAX_MESSAGES:
            raise InvalidInputError(f"messages may hold at most {MAX_MESSAGES} messages")
        total = 0
        for i, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise InvalidInputError(
                    f"messages[{i}].role must be one of {sorted(ROLES)}, got {role!r}"
                )
            if not isinstance(content, str):
                raise InvalidInputError(f"messages[{i}].content must be a string")
            total += len(content)
        if total > MAX_CHARS:
            raise InvalidInputError(f"messages hold {total} characters; the limit is {MAX_CHARS}")
        _check_sampling(request)


def _check_sampling(request: ChatRequest) -> None:
    """Every sampling field within what the engine takes: a value outside it must never
    reach the engine, where it could fail a step that other requests share."""
    max_tokens, temperature, top_p, seed = (
        request.max_tokens, request.temperature, request.top_p, request.seed
    )  # fmt: skip
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidInputError(f"max_tokens must be a whole number, got {max_tokens!r}")
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise InvalidInputError(f"max_tokens must be from 1 to {MAX_TOKENS}, got {max_tokens}")
    if not (_is_number(temperature) and 0 <= temperature <= 2):
        raise InvalidInputError(f"temperature must be from 0 to 2, got {temperature!r}")
    if not (_is_number(top_p) and 0 < top_p <= 1):
        raise InvalidInputError(f"top_p must be in (0, 1], got {top_p!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidInputError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if len(request.stop) > MAX_STOP:
        raise InvalidInputError(f"stop may hold at most {MAX_STOP} sequences")
    for i, stop in enumerate(request.stop):
        if not isinstance(stop, str) or not 0 < len(stop) <= MAX_STOP_CHARS:
            raise InvalidInputError(
                f"stop[{i}] must be a string of 1 to {MAX_STOP_CHARS} characters"
            )


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def build_chat_service(settings: Settings) -> ChatService | None:
    """The chat service the settings ask for (its engine not started yet), or None."""
    if settings.llm == "off":
        return None
    if settings.llm == "auto" and importlib.util.find_spec("vllm") is None:
        log.warning("vLLM is not installed: chat completions are off (pip install 'memos-os[llm]')")
        return None
    if settings.llm == "remote":
        from .remote import RemoteBackend

        urls = settings.llm_urls
        if len(urls) == 1:
            return ChatService(RemoteBackend(urls[0], settings.llm_model))
        from .fleet import FleetBackend

        fleet = FleetBackend(urls, settings.llm_model, routing=settings.llm_routing,
                             max_in_flight=settings.llm_max_in_flight)  # fmt: skip
        return ChatService(fleet)
    from .embedded import EmbeddedBackend
    from .engine import Engine, EngineSettings
    from .model import prepare_model

    model_dir = prepare_model(settings.chat_model_dir)
    engine = Engine(
        EngineSettings(
            model_dir,
            max_model_len=settings.llm_max_model_len,
            num_blocks=settings.llm_kv_blocks or None,
            pinning=settings.llm_pinning,
            pin_cap=settings.pin_cap,
            activation_cap=settings.activation_cap,
            prefix_caching=settings.llm_prefix_caching,
            host_tier_blocks=settings.host_kv_blocks,
            lora_max_rank=settings.llm_lora_rank,
            lora_modules=settings.llm_lora_modules,
        )
    )
    return ChatService(EmbeddedBackend(engine))


def _scoped(namespace: str, program_id: str) -> str:
    return f"{namespace}:{program_id}"


def created_now() -> int:
    return int(time.time())
