"""/v1/chat/completions (OpenAI's shape, streaming or not) and /v1/programs.

Program fields come in the body (``program_id``, ``turn``, ``next_tool``,
``pin_ttl_s``; the openai client sends them with ``extra_body``) or as headers
(``X-Program-Id``, ``X-Program-Turn``, ``X-Next-Tool``). Fields OpenAI defines that
this backend does not use are accepted and ignored, as OpenAI-compatible servers do.

A plain question (one user message, nothing else, no program) goes through the
semantic cache: answered from it on a hit, stored in it after the model answers; the
response's ``cache`` field says which (``"cache": false`` in the request opts out,
``cache_category`` names the category).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, get, post
from litestar.response import Stream

from memos.agents.chat import ChatChunk, ChatRequest, ChatService, ProgramTurn, created_now
from memos.cache import Lookup
from memos.core import MemOS
from memos.errors import InvalidInputError

from .auth import Tenant


class MessageIn(msgspec.Struct, kw_only=True):
    role: str
    content: str | None = None


class ChatCompletionIn(msgspec.Struct, kw_only=True):
    messages: list[MessageIn]
    model: str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = None
    program_id: str | None = None
    turn: int | None = None
    next_tool: str | None = None
    pin_ttl_s: float | None = None
    cache: bool = True
    cache_category: str | None = None


def _program(data: ChatCompletionIn, request: Request) -> ProgramTurn | None:
    headers = request.headers
    program_id = data.program_id or headers.get("x-program-id")
    turn: Any = data.turn
    if turn is None and "x-program-turn" in headers:
        raw = headers["x-program-turn"]
        if not raw.isdigit():
            raise InvalidInputError(f"X-Program-Turn must be a whole number, got {raw!r}")
        turn = int(raw)
    next_tool = data.next_tool or headers.get("x-next-tool")
    if program_id is None:
        if turn is not None or next_tool is not None or data.pin_ttl_s is not None:
            raise InvalidInputError("turn, next_tool and pin_ttl_s need a program_id")
        return None
    return ProgramTurn(program_id, turn, next_tool, data.pin_ttl_s)


def _chat_request(data: ChatCompletionIn, request: Request) -> ChatRequest:
    if data.n != 1:
        raise InvalidInputError(f"only n = 1 is supported, got {data.n}")
    stop = [data.stop] if isinstance(data.stop, str) else list(data.stop or [])
    return ChatRequest(
        messages=[{"role": m.role, "content": m.content or ""} for m in data.messages],
        max_tokens=next(
            (n for n in (data.max_completion_tokens, data.max_tokens) if n is not None), 256
        ),
        temperature=data.temperature,
        top_p=data.top_p,
        stop=stop,
        seed=data.seed,
        program=_program(data, request),
    )


def _cacheable_query(
    data: ChatCompletionIn, chat_request: ChatRequest, max_chars: int
) -> str | None:
    """The question to look up, for a request that is one plain question the cache can
    hold (a longer one goes to the model alone)."""
    messages = chat_request.messages
    if not data.cache or chat_request.program is not None or len(messages) != 1:
        return None
    question = messages[0]["content"]
    if messages[0]["role"] != "user" or not question.strip() or len(question) > max_chars:
        return None
    return question


def _cache_field(found: Lookup) -> dict[str, Any]:
    field: dict[str, Any] = {"hit": found.hit, "category": found.category}
    if found.answer is not None:
        field.update(entry_id=found.answer.id, similarity=found.similarity)
    return field


def _usage(chunk: ChatChunk) -> dict[str, Any]:
    return {
        "prompt_tokens": chunk.prompt_tokens,
        "completion_tokens": chunk.completion_tokens,
        "total_tokens": chunk.prompt_tokens + chunk.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": chunk.cached_tokens},
    }


class ChatController(Controller):
    tags = ["chat"]

    @post("/v1/chat/completions", status_code=200, summary="Chat completion (OpenAI shape)")
    async def complete(
        self, data: ChatCompletionIn, request: Request, tenant: Tenant, chat: ChatService,
        memos: MemOS,
    ) -> Any:  # fmt: skip
        chat_request = _chat_request(data, request)
        model = data.model or chat.model_name
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        namespace = tenant.namespace
        query = _cacheable_query(data, chat_request, memos.cache.policy.max_query_chars)
        found: Lookup | None = None
        if query is not None:
            memos.cache.observe_load(chat.in_flight)
            found = await anyio.to_thread.run_sync(
                memos.cache.lookup, namespace, query, data.cache_category
            )
            if found.answer is not None:
                cached = ChatChunk(found.answer.response, finished=True, finish_reason="stop")
                cached.cache = _cache_field(found)
                if data.stream:
                    return Stream(_sse(cached, _nothing(), completion_id, model),
                                  media_type="text/event-stream")  # fmt: skip
                return _body(cached, completion_id, model)

        def remember(text: str, finish_reason: str | None) -> None:
            if query is None or found is None or finish_reason != "stop" or not text.strip():
                return
            memos.cache.store(namespace, query, text, category=found.category, model=model)

        if data.stream:
            chunks = chat.stream(chat_request, namespace)
            first = await anext(chunks)  # errors before the first token are still a 4xx
            if found is not None:
                first.cache = _cache_field(found)
            return Stream(_sse(first, chunks, completion_id, model, remember),
                          media_type="text/event-stream")  # fmt: skip
        result = await chat.complete(chat_request, namespace)
        if found is not None:
            result.cache = _cache_field(found)
            await anyio.to_thread.run_sync(remember, result.text, result.finish_reason)
        return _body(result, completion_id, model)

    @get("/v1/programs/{program_id:str}", summary="An agent program's turns and cache reuse")
    async def program(self, program_id: str, tenant: Tenant, chat: ChatService) -> dict[str, Any]:
        return chat.program(tenant.namespace, program_id)


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
    return body


async def _nothing() -> AsyncIterator[ChatChunk]:
    return
    yield


async def _sse(
    first: ChatChunk, rest: AsyncIterator[ChatChunk], completion_id: str, model: str,
    on_done: Callable[[str, str | None], None] | None = None,
) -> AsyncIterator[bytes]:  # fmt: skip
    created = created_now()
    cache_field = first.cache
    text: list[str] = []

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
        return f"data: {json.dumps(body)}\n\n".encode()

    last = first
    text.append(first.text)
    yield event(first, True)
    async for chunk in rest:
        text.append(chunk.text)
        last = chunk
        yield event(chunk, False)
    yield b"data: [DONE]\n\n"
    if on_done is not None and last.finished:
        await anyio.to_thread.run_sync(on_done, "".join(text), last.finish_reason)
