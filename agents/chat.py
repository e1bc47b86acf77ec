"""Chat completions on the embedded engine, with agent programs' turns pinned.

The HTTP layer (server/chat.py) turns requests into ``ChatRequest`` and renders
``ChatChunk``s as OpenAI's JSON; everything it checks or decides lives here.
Programs are kept per namespace: two tenants may use the same program id.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from memos.config import Settings
from memos.errors import InvalidInputError, NotFoundError, UnavailableError

from .engine import Engine, EngineSettings, EngineUnavailableError
from .model import MODEL_NAME, prepare_model
from .pin_hint import InvalidPinHintError
from .programs import (
    ProgramHintError,
    ProgramRegistry,
    TurnTicket,
    UnknownProgramError,
    check_hint_fields,
)

log = logging.getLogger(__name__)

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_MESSAGES = 1_000
MAX_CHARS = 200_000


@dataclass(frozen=True)
class ProgramTurn:
    """Where a request sits in an agent program (all optional but the id)."""

    program_id: str
    turn: int | None = None
    next_tool: str | None = None
    pin_ttl_s: float | None = None  # overrides the TTL policy


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    program: ProgramTurn | None = None


@dataclass
class ChatChunk:
    """Text produced since the last chunk; the last chunk carries the totals."""

    text: str
    finished: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    program: dict[str, Any] | None = None


class ChatService:
    def __init__(self, engine: Engine, registry: ProgramRegistry, model_name: str) -> None:
        self.engine = engine
        self.registry = registry
        self.model_name = model_name

    @property
    def ready(self) -> bool:
        return self.engine.running

    async def stream(self, request: ChatRequest, namespace: str) -> AsyncIterator[ChatChunk]:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind

        self._check(request)
        if not self.ready:
            raise UnavailableError("the language model is still loading; retry in a few seconds")
        prompt = self._tokens(request)
        ticket = self._begin(request.program, namespace)
        params = SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop or None,
            seed=request.seed,
            output_kind=RequestOutputKind.DELTA,
            extra_args=ticket.hint.as_extra_args() if ticket else None,
        )
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        prompt_tokens = completion_tokens = 0
        try:
            async for out in self.engine.stream(
                prompt, params, request_id=request_id, priority=ticket.priority if ticket else 0
            ):
                if out.prompt_token_ids:
                    prompt_tokens = len(out.prompt_token_ids)
                completion = out.outputs[0]
                completion_tokens += len(completion.token_ids)
                if not out.finished:
                    yield ChatChunk(completion.text)
                    continue
                cached = out.num_cached_tokens or 0
                if ticket is not None:
                    self.registry.end_turn(ticket, prompt_tokens, cached, completion_tokens)
                yield ChatChunk(
                    completion.text, True, completion.finish_reason or "stop", prompt_tokens,
                    completion_tokens, cached, self._program_info(ticket),
                )  # fmt: skip
        except EngineUnavailableError as exc:
            raise UnavailableError(str(exc)) from exc
        except (ValueError, VLLMClientError) as exc:  # vLLM's own input checks
            raise InvalidInputError(str(exc)) from exc

    async def complete(self, request: ChatRequest, namespace: str) -> ChatChunk:
        """The whole reply as one chunk."""
        parts: list[str] = []
        last = ChatChunk("")
        async for last in self.stream(request, namespace):
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

    def stats(self) -> dict[str, float]:
        return self.engine.kv_stats() if self.ready else {}

    # ------------------------------------------------------------------------------

    def _begin(self, program: ProgramTurn | None, namespace: str) -> TurnTicket | None:
        if program is None:
            return None
        try:
            check_hint_fields(program.program_id, program.turn, program.next_tool,
                              program.pin_ttl_s)  # fmt: skip
            return self.registry.begin_turn(
                _scoped(namespace, program.program_id), program.turn, program.next_tool,
                usage=self._usage(), ttl_s=program.pin_ttl_s,
            )  # fmt: skip
        except UnknownProgramError as exc:
            raise InvalidInputError(str(exc).replace(f"{namespace}:", "", 1)) from None
        except (ProgramHintError, InvalidPinHintError) as exc:
            raise InvalidInputError(str(exc).replace(f"{namespace}:", "", 1)) from None

    def _program_info(self, ticket: TurnTicket | None) -> dict[str, Any] | None:
        if ticket is None:
            return None
        return {"turn": ticket.turn, "pin_ttl_s": ticket.hint.ttl_s}

    def _usage(self) -> float:
        stats = self.engine.kv_stats()
        return 1.0 - stats["free_blocks"] / max(1, stats["total_blocks"])

    def _tokens(self, request: ChatRequest) -> dict[str, list[int]]:
        """The templated conversation as token ids, checked against the context size."""
        tokenizer = self.engine.tokenizer
        text = tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer.encode(text, add_special_tokens=False)
        room = self.engine.settings.max_model_len - request.max_tokens
        if len(ids) > room:
            raise InvalidInputError(
                f"the prompt is {len(ids)} tokens, longer than the {room} the model's context "
                f"of {self.engine.settings.max_model_len} leaves beside max_tokens "
                f"{request.max_tokens}"
            )
        return {"prompt_token_ids": ids}

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
        if not 1 <= request.max_tokens <= 4096:
            raise InvalidInputError(f"max_tokens must be from 1 to 4096, got {request.max_tokens}")
        if not (math.isfinite(request.temperature) and 0 <= request.temperature <= 2):
            raise InvalidInputError(f"temperature must be from 0 to 2, got {request.temperature}")
        if not (math.isfinite(request.top_p) and 0 < request.top_p <= 1):
            raise InvalidInputError(f"top_p must be in (0, 1], got {request.top_p}")


def build_chat_service(settings: Settings) -> ChatService | None:
    """The chat service the settings ask for (its engine not started yet), or None."""
    if settings.llm == "off":
        return None
    if settings.llm == "auto" and importlib.util.find_spec("vllm") is None:
        log.warning("vLLM is not installed: chat completions are off (pip install 'memos-os[llm]')")
        return None
    model_dir = prepare_model(settings.chat_model_dir)
    engine = Engine(
        EngineSettings(model_dir, num_blocks=settings.llm_kv_blocks or None,
                       pin_cap=settings.pin_cap)
    )  # fmt: skip
    return ChatService(engine, ProgramRegistry(), MODEL_NAME)


def _scoped(namespace: str, program_id: str) -> str:
    return f"{namespace}:{program_id}"


def created_now() -> int:
    return int(time.time())
