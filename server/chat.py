"""/v1/chat/completions (OpenAI's shape, streaming or not) and /v1/programs.

Program fields come in the body (``program_id``, ``turn``, ``next_tool``,
``pin_ttl_s``; the openai client sends them with ``extra_body``) or as headers
(``X-Program-Id``, ``X-Program-Turn``, ``X-Next-Tool``). Fields OpenAI defines that
this backend does not use are accepted and ignored, as OpenAI-compatible servers do.

A plain question (one user message, nothing else, no program) goes through the
semantic cache: answered from it on a hit, stored in it after the model answers; the
response's ``cache`` field says which (``"cache": false`` in the request opts out,
``cache_category`` names the category). ``memory`` answers from the caller's memories
and reports the ones used (``memory.used``). The kernel decides all of it
(memos/memory_chat.py); this module only translates HTTP.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import anyio
import msgspec
from litestar import Request, get, post
from litestar.response import Stream
from msgspec import Meta

from memos.cache import MAX_NAME_CHARS
from memos.core import DEFAULT_SEARCH_MODE
from memos.errors import InvalidInputError, MemOSError, NotFoundError
from memos.kernel import Kernel
from memos.llm.chat import (
    MAX_MESSAGES,
    MAX_SEED,
    MAX_STOP,
    MAX_STOP_CHARS,
    MAX_TOKENS,
    ChatChunk,
    ChatRequest,
    ChatService,
    ProgramTurn,
    created_now,
)
from memos.llm.pin_hint import MAX_PROGRAM_ID_CHARS
from memos.llm.pin_hint import MAX_TTL_S as MAX_PIN_TTL_S
from memos.llm.programs import MAX_TOOL_NAME_CHARS, MAX_TOOL_SECONDS, MAX_TURN
from memos.memory_chat import DEFAULT_MEMORY_TOP_K, MAX_MEMORY_TOP_K, ChatOptions, MemoryUse

from .auth import Tenant, TenantController
from .problems import problems, status_of
from .schemas import Name, Strict

StopText = Annotated[str, Meta(min_length=1, max_length=MAX_STOP_CHARS)]
_TURN_HEADER = re.compile(r"[0-9]{1,9}")
_SECONDS_HEADER = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")


class TextPart(msgspec.Struct, kw_only=True):
    type: Literal["text"]
    text: str


class MessageIn(msgspec.Struct, kw_only=True):
    role: str
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        """The content as one string: text parts are joined as OpenAI's servers do."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class MemorySpec(Strict):
    user_id: Name | None = None
    agent_id: Name | None = None
    session_id: Name | None = None
    top_k: Annotated[int, Meta(ge=1, le=MAX_MEMORY_TOP_K)] = DEFAULT_MEMORY_TOP_K
    mode: Literal["vector", "hybrid", "graph"] = DEFAULT_SEARCH_MODE
    min_score: Annotated[float, Meta(ge=-1, le=1)] | None = None
    store: bool = False  # keep the exchange as a memory (provenance: chat, the model)
    # a parametric memory whose adapter answers, with the memories this spec retrieves
    parametric: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    # a composition (/v1/compositions) whose memories answer, instead of a search
    compose: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] | None = None

    def to_use(self) -> MemoryUse:
        fields = msgspec.structs.asdict(self)
        fields.pop("parametric")
        return MemoryUse(**fields)


class ChatCompletionIn(msgspec.Struct, kw_only=True):
    messages: Annotated[list[MessageIn], Meta(min_length=1, max_length=MAX_MESSAGES)]
    model: Annotated[str, Meta(max_length=MAX_NAME_CHARS)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] = 0.7
    top_p: Annotated[float, Meta(gt=0, le=1)] = 1.0
    n: Annotated[int, Meta(ge=1, le=1)] = 1  # one choice a request
    stream: bool = False
    stop: StopText | Annotated[list[StopText], Meta(max_length=MAX_STOP)] | None = None
    seed: Annotated[int, Meta(ge=0, le=MAX_SEED)] | None = None
    program_id: Annotated[str, Meta(min_length=1, max_length=MAX_PROGRAM_ID_CHARS)] | None = None
    turn: Annotated[int, Meta(ge=0, le=MAX_TURN)] | None = None
    next_tool: Annotated[str, Meta(min_length=1, max_length=MAX_TOOL_NAME_CHARS)] | None = None
    pin_ttl_s: Annotated[float, Meta(ge=0, le=MAX_PIN_TTL_S)] | None = None
    tool_seconds: Annotated[float, Meta(ge=0, le=MAX_TOOL_SECONDS)] | None = None
    cache: bool = True
    cache_category: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)] | None = None
    memory: MemorySpec | None = None  # answer from the caller's memories (memory_chat.py)


class ToolOut(msgspec.Struct):
    calls: int
    predicted_from: Literal["namespace", "prior"]
    samples: int
    p50_s: float
    p90_s: float
    pin_ttl_s: float


class ToolsOut(msgspec.Struct):
    tools: dict[str, ToolOut]


def _header_turn(raw: str) -> int:
    """``X-Program-Turn`` as a whole number written in ASCII digits, nothing else."""
    if not _TURN_HEADER.fullmatch(raw) or int(raw) > MAX_TURN:
        raise InvalidInputError(
            f"X-Program-Turn must be a whole number from 0 to {MAX_TURN}, got {raw!r}"
        )
    return int(raw)


def _header_seconds(raw: str) -> float:
    """``X-Tool-Seconds`` as a plain decimal number of seconds, nothing else."""
    if not _SECONDS_HEADER.fullmatch(raw) or float(raw) > MAX_TOOL_SECONDS:
        raise InvalidInputError(
            f"X-Tool-Seconds must be a number of seconds from 0 to {MAX_TOOL_SECONDS:g}, "
            f"got {raw[:40]!r}"
        )
    return float(raw)


PROGRAMS_PATH = "/v1/programs/"


def _program_id_in_path(request: Request) -> str:
    """The program id as the client escaped it, decoded once. The router sees the path
    decoded already (an escaped "/" splits it) and decodes a path parameter again (an
    id holding "%2F" loses it), so the id is read from the raw path instead."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").partition("?")[0]
    return unquote(
        path.removeprefix(request.scope.get("root_path", "")).removeprefix(PROGRAMS_PATH)
    )


def _program(data: ChatCompletionIn, request: Request) -> ProgramTurn | None:
    headers = request.headers
    program_id = data.program_id or headers.get("x-program-id")
    turn = data.turn
    if turn is None and "x-program-turn" in headers:
        turn = _header_turn(headers["x-program-turn"])
    next_tool = data.next_tool or headers.get("x-next-tool")
    tool_seconds = data.tool_seconds
    if tool_seconds is None and "x-tool-seconds" in headers:
        tool_seconds = _header_seconds(headers["x-tool-seconds"])
    if program_id is None:
        if any(v is not None for v in (turn, next_tool, data.pin_ttl_s, tool_seconds)):
            raise InvalidInputError("turn, next_tool, pin_ttl_s and tool_seconds need a program_id")
        return None
    return ProgramTurn(program_id, turn, next_tool, data.pin_ttl_s, tool_seconds)


def _chat_request(data: ChatCompletionIn, request: Request) -> ChatRequest:
    stop = [data.stop] if isinstance(data.stop, str) else list(data.stop or [])
    return ChatRequest(
        messages=[{"role": m.role, "content": m.text()} for m in data.messages],
        max_tokens=next(
            (n for n in (data.max_completion_tokens, data.max_tokens) if n is not None), 256
        ),
        temperature=data.temperature,
        top_p=data.top_p,
        stop=stop,
        seed=data.seed,
        program=_program(data, request),
    )


async def _adapter_named(data: ChatCompletionIn, tenant: Tenant, kernel: Kernel) -> str | None:
    """The parametric memory a request names: ``memory.parametric``, or a ``model`` that
    is one of the namespace's parametric memories. Any other model than the one served
    is not found (the base model never answers under another's name)."""
    if data.memory is not None and data.memory.parametric is not None:
        return data.memory.parametric
    assert kernel.memory_chat is not None
    served = kernel.memory_chat.chat.model_name
    if data.model is None or data.model == served:
        return None
    named = await anyio.to_thread.run_sync(kernel.parametric.exists, tenant.namespace, data.model)
    if not named:
        raise NotFoundError(
            f"model {data.model!r} not found: this service serves {served!r} and the "
            "namespace's parametric memories (GET /v1/parametric)"
        )
    return data.model


def _usage(chunk: ChatChunk) -> dict[str, Any]:
    return {
        "prompt_tokens": chunk.prompt_tokens,
        "completion_tokens": chunk.completion_tokens,
        "total_tokens": chunk.prompt_tokens + chunk.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": chunk.cached_tokens},
    }


class ChatController(TenantController):
    tags = ["chat"]

    @post(
        "/v1/chat/completions",
        status_code=200,
        summary="Chat completion (OpenAI shape)",
        responses=problems(404, 409),
    )
    async def complete(
        self, data: ChatCompletionIn, request: Request, tenant: Tenant, kernel: Kernel
    ) -> Any:
        assert kernel.memory_chat is not None  # the route is mounted only with a model
        chat_request = _chat_request(data, request)
        options = ChatOptions(
            memory=data.memory.to_use() if data.memory is not None else None,
            cache=data.cache,
            cache_category=data.cache_category,
            model=data.model,
            adapter=await _adapter_named(data, tenant, kernel),
        )
        model = data.model or kernel.memory_chat.chat.model_name
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if data.stream:
            chunks = kernel.memory_chat.stream(chat_request, tenant.namespace, options)
            first = await anext(chunks)  # errors before the first token are still a 4xx
            return Stream(_sse(first, chunks, completion_id, model),
                          media_type="text/event-stream")  # fmt: skip
        result = await kernel.memory_chat.complete(chat_request, tenant.namespace, options)
        return _body(result, completion_id, model)

    @get(
        PROGRAMS_PATH + "{program_id:path}",
        summary="An agent program's turns and cache reuse",
        responses=problems(404),
    )
    async def program(
        self, program_id: str, request: Request, tenant: Tenant, chat: ChatService
    ) -> dict[str, Any]:
        return chat.program(tenant.namespace, _program_id_in_path(request))

    @get("/v1/tools", summary="How long the namespace's tools take", responses=problems())
    async def tools(self, tenant: Tenant, chat: ChatService) -> ToolsOut:
        """Per tool this namespace's programs have called: its calls, the window that
        predicts it (the namespace's own after 3 calls, else every namespace's), that
        window's p50 and p90, and the pin TTL a turn calling it would get now."""
        tools = chat.tools(tenant.namespace)
        return ToolsOut({name: ToolOut(**tool) for name, tool in sorted(tools.items())})


def _body(result: ChatChunk, completion_id: str, model: str) -> dict[str, Any]:
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.finish_reason,
        }],
        "usage": _usage(result),
    }  # fmt: skip
    if result.program is not None:
        body["program"] = result.program
    if result.cache is not None:
        body["cache"] = result.cache
    if result.memory is not None:
        body["memory"] = result.memory
    return body


async def _nothing() -> AsyncIterator[ChatChunk]:
    return
    yield


async def _sse(
    first: ChatChunk, rest: AsyncIterator[ChatChunk], completion_id: str, model: str
) -> AsyncIterator[bytes]:
    created = created_now()
    cache_field = first.cache
    memory_field = first.memory

    def event(chunk: ChatChunk, role: bool) -> bytes:
        delta: dict[str, Any] = {"content": chunk.text}
        if role:
            delta["role"] = "assistant"
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta,
                         "finish_reason": chunk.finish_reason if chunk.finished else None}],
        }  # fmt: skip
        if chunk.finished:
            body["usage"] = _usage(chunk)
            if chunk.program is not None:
                body["program"] = chunk.program
            if cache_field is not None:
                body["cache"] = cache_field
            memory = chunk.memory or memory_field
            if memory is not None:
                body["memory"] = memory
        return f"data: {json.dumps(body)}\n\n".encode()

    yield event(first, True)
    try:
        async for chunk in rest:
            yield event(chunk, False)
    except MemOSError as exc:  # the status line is sent: the stream ends with the error
        yield _error_event(exc)
        return
    yield b"data: [DONE]\n\n"


def _error_event(exc: MemOSError) -> bytes:
    """The error as OpenAI's servers stream one, which its clients raise."""
    error: dict[str, Any] = {"message": exc.detail, "type": type(exc).__name__,
                             "code": status_of(exc)}  # fmt: skip
    if retry_after := getattr(exc, "retry_after_s", None):
        error["retry_after_s"] = retry_after
    return f"data: {json.dumps({'error': error})}\n\n".encode()
