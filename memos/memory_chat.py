"""Chat completions as the kernel runs them: the semantic cache in front of the model,
the user's memories put before the conversation, and the exchange kept as a memory.

For a request with ``memory``: the memories that best answer the last user message
(within the user, agent and session named) go in one system message before the
conversation, rendered canonically (activation/render.py); when the user or agent has
an activation memory, its block comes first, unchanged, so the engine reuses its KV
cache, and the memories retrieved that it lacks follow it. The answer reports the ids
it was given (``memory.used``); with ``store`` the exchange is saved as a memory whose
provenance is chat and the model.

A plain question (one user message, no program) goes through the semantic cache, and
only an answer given exactly the same memories is served from it: a memory-augmented
answer serves nobody whose memories differ, nor a request without memory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from memos import validation as check
from memos.activation import Activation, ActivationMemory
from memos.activation.render import BlockMemory, extend_block, render_block
from memos.cache import Lookup
from memos.errors import InvalidInputError, UnavailableError
from memos.llm.backend import AdapterRef, ChatChunk, ChatRequest
from memos.llm.pin_hint import PinHint
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import Source, utcnow
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin
from memos.records import SearchHit
from memos.retrieval import SearchMode

if TYPE_CHECKING:
    from memos.composition import ComposedContext, Compositions
    from memos.core import MemOS
    from memos.llm.chat import ChatService
    from memos.parametric.service import ParametricMemory

log = logging.getLogger(__name__)

MAX_MEMORY_TOP_K = 50
DEFAULT_MEMORY_TOP_K = 5


@dataclass(frozen=True)
class MemoryUse:
    """Which memories a request answers from, and whether its exchange is kept."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    top_k: int = DEFAULT_MEMORY_TOP_K
    mode: str = SearchMode.GRAPH.value
    min_score: float | None = None
    store: bool = False
    compose: str | None = None  # a composition's memories instead of a search

    def checked(self) -> MemoryUse:
        if self.compose is not None and not (
            isinstance(self.compose, str) and check.NAMESPACE_PATTERN.match(self.compose)
        ):
            raise InvalidInputError(f"memory.compose is not a composition name: {self.compose!r}")
        if not isinstance(self.store, bool):
            raise InvalidInputError("memory.store must be true or false")
        if self.mode not in {m.value for m in SearchMode}:
            modes = ", ".join(m.value for m in SearchMode)
            raise InvalidInputError(f"memory.mode must be one of {modes}, got {self.mode!r}")
        return replace(
            self,
            user_id=check.identifier(self.user_id, "memory.user_id"),
            agent_id=check.identifier(self.agent_id, "memory.agent_id"),
            session_id=check.identifier(self.session_id, "memory.session_id"),
            top_k=check.top_k(self.top_k, MAX_MEMORY_TOP_K, "memory.top_k"),
            min_score=check.min_score(self.min_score, "memory.min_score"),
        )


@dataclass(frozen=True)
class ChatOptions:
    memory: MemoryUse | None = None
    cache: bool = True  # a plain question may be answered from (and kept in) the cache
    cache_category: str | None = None
    model: str | None = None  # the name the answer is reported (and stored) under
    adapter: str | None = None  # a parametric memory whose adapter answers


@dataclass
class _Context:
    """What a request is answered with: its messages, the memories given, the hint."""

    request: ChatRequest
    used: list[str]
    activation: Activation | None = None
    prefix: PinHint | None = None
    composed: dict[str, Any] | None = None  # the composition answered from, as reported


class MemoryChat:
    def __init__(
        self, memos: MemOS, chat: ChatService, activations: ActivationMemory,
        on_used: Callable[[str, list[str]], None] | None = None,
        parametric: ParametricMemory | None = None,
        compositions: Compositions | None = None,
    ) -> None:  # fmt: skip
        self.memos = memos
        self.chat = chat
        self.activations = activations
        self.on_used = on_used  # told the memories each answer used (the scheduler)
        self.parametric = parametric
        self.compositions = compositions

    async def stream(
        self, request: ChatRequest, namespace: str, options: ChatOptions
    ) -> AsyncIterator[ChatChunk]:
        """The answer's chunks; the first carries ``cache`` and ``memory`` when asked for.
        Errors found before the model runs are raised at the first chunk."""
        memory = options.memory.checked() if options.memory is not None else None
        composed = await self._composed(namespace, memory)
        adapter = options.adapter
        if composed is not None and composed.parametric_name is not None:
            if adapter is not None and adapter != composed.parametric_name:
                raise InvalidInputError(
                    f"the request names parametric memory {adapter!r} and composition "
                    f"{composed.composition.name!r} holds {composed.parametric_name!r}: "
                    "name one"
                )
            adapter = composed.parametric_name
        if adapter is not None:
            request = replace(request, adapter=await self._adapter(namespace, adapter))
        if composed is not None:
            context = await self._composed_context(request, namespace, composed)
            context.composed = {
                "name": composed.composition.name, "version": composed.composition.version,
                "parametric": composed.parametric_name,
            }  # fmt: skip
        else:
            context = await self._context(request, namespace, memory)
        model = options.model or self.chat.model_name
        query = (
            _cacheable_query(request, options, self.memos.cache.policy.max_query_chars)
            if request.adapter is None  # the cache holds the base model's answers
            else None
        )
        found: Lookup | None = None
        if query is not None:
            self.memos.cache.observe_load(self.chat.in_flight)
            # an answer serves a request given the same memories (a plain one: none)
            lookup = partial(self.memos.cache.lookup, namespace, query, options.cache_category)
            found = await anyio.to_thread.run_sync(lookup, context.used)
            if found.answer is not None:
                cached = ChatChunk(found.answer.response, finished=True, finish_reason="stop")
                cached.cache = _cache_field(found)
                cached.memory = _memory_field(context) if memory is not None else None
                await anyio.to_thread.run_sync(self._note_used, namespace, context)
                yield cached
                return
        parts: list[str] = []
        first = True
        async for chunk in self.chat.stream(context.request, namespace, context.prefix):
            parts.append(chunk.text)
            if chunk.finished:
                stored = await anyio.to_thread.run_sync(
                    self._after, namespace, request, memory, context, found, model,
                    "".join(parts), chunk.finish_reason,
                )  # fmt: skip
                if memory is not None:
                    chunk.memory = {**_memory_field(context), "stored": stored}
            if first:
                first = False
                if found is not None:
                    chunk.cache = _cache_field(found)
                if memory is not None and chunk.memory is None:
                    chunk.memory = _memory_field(context)
            yield chunk

    async def complete(
        self, request: ChatRequest, namespace: str, options: ChatOptions
    ) -> ChatChunk:
        """The whole answer as one chunk."""
        parts: list[str] = []
        head: ChatChunk | None = None
        last = ChatChunk("")
        async for last in self.stream(request, namespace, options):
            head = head or last
            parts.append(last.text)
        last.text = "".join(parts)
        if head is not None:
            last.cache = last.cache or head.cache
            last.memory = last.memory or head.memory
        return last

    # ----------------------------------------------------------------------------------

    async def _adapter(self, namespace: str, name: str) -> AdapterRef:
        if self.parametric is None or not hasattr(self.chat.backend, "unload_adapter"):
            raise UnavailableError("this model backend serves no parametric memories")
        settings = self.memos.settings
        find = partial(self.parametric.adapter, namespace, name, settings.llm_lora_rank,
                       settings.llm_lora_modules)  # fmt: skip
        return await anyio.to_thread.run_sync(find)

    async def _composed(self, namespace: str, memory: MemoryUse | None) -> ComposedContext | None:
        if memory is None or memory.compose is None:
            return None
        if self.compositions is None:
            raise UnavailableError("this service holds no compositions")
        find = partial(self.compositions.context, namespace, memory.compose)
        return await anyio.to_thread.run_sync(find)

    async def _composed_context(
        self, request: ChatRequest, namespace: str, composed: ComposedContext
    ) -> _Context:
        """A composition's memories as the system message: its activation's block first
        (its KV prefix reused), then its plaintext members at their composed versions."""
        texts = [BlockMemory(*member) for member in composed.texts]
        activation = None
        if composed.activation_id is not None:
            get = partial(self.activations.get, namespace, composed.activation_id)
            activation = await anyio.to_thread.run_sync(get)
        return self._with_block(request, texts, activation)

    async def _context(
        self, request: ChatRequest, namespace: str, memory: MemoryUse | None
    ) -> _Context:
        if memory is None:
            return _Context(request, [])
        question = next(
            (m.get("content") for m in reversed(request.messages) if m.get("role") == "user"),
            None,
        )
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("memory needs a user message to find memories for")
        flt = MemoryFilter(user_id=memory.user_id, agent_id=memory.agent_id,
                           session_id=memory.session_id)  # fmt: skip
        # a block holds memories chosen without this question: it stands in for retrieval
        # only when each is one the request could find (its scope; no score to pass)
        owner = memory.user_id is not None or memory.agent_id is not None
        activation = (
            await anyio.to_thread.run_sync(
                self.activations.for_owner, namespace, memory.user_id, memory.agent_id, flt
            )
            if owner and memory.min_score is None
            else None
        )
        search = partial(
            self.memos.search,
            namespace=namespace,
            top_k=memory.top_k,
            min_score=memory.min_score,
            filters=flt,
            mode=memory.mode,
        )
        query = question[: self.memos.settings.max_text_chars]
        hits: list[SearchHit] = await anyio.to_thread.run_sync(search, query)
        found = [_block_memory(h) for h in hits if h.memory.text]
        return self._with_block(request, found, activation)

    def _with_block(
        self, request: ChatRequest, memories: list[BlockMemory], activation: Activation | None
    ) -> _Context:
        """``request`` with the memories as its first, system message: the activation's
        block first and unchanged (its KV prefix is reused) with the memories it lacks
        after it, or the memories' own block."""
        if activation is not None and activation.memory.text:
            held = set(activation.memory_ids)
            extra = [m for m in memories if m.id not in held]
            system = extend_block(activation.prompt_text, extra)
            used = [*activation.memory_ids, *(m.id for m in extra)]
            prefix = self.activations.hint(activation) if request.program is None else None
        elif memories:
            system, used, prefix = render_block(memories), [m.id for m in memories], None
        else:
            return _Context(request, [])
        messages = [{"role": "system", "content": system}, *request.messages]
        return _Context(replace(request, messages=messages), used, activation, prefix)

    def _after(
        self, namespace: str, request: ChatRequest, memory: MemoryUse | None, context: _Context,
        found: Lookup | None, model: str, text: str, finish_reason: str | None,
    ) -> str | None:  # fmt: skip
        """Once the model answered: cache the answer, count the memories' use, keep the
        exchange when asked; returns the stored memory's id."""
        complete = finish_reason == "stop" and bool(text.strip())
        if found is not None and complete:
            query = request.messages[-1]["content"]
            self.memos.cache.store(namespace, query, text, category=found.category, model=model,
                                   memory_ids=context.used)  # fmt: skip
        self._note_used(namespace, context)
        if memory is None or not memory.store or not text.strip():
            return None
        question = next(m["content"] for m in reversed(request.messages) if m["role"] == "user")
        exchange = f"User: {question}\nAssistant: {text}"
        result = self.memos.add(
            exchange[: self.memos.settings.max_text_chars], namespace=namespace,
            user_id=memory.user_id, agent_id=memory.agent_id, session_id=memory.session_id,
            metadata={"model": model}, origin=Origin(Source.CHAT.value, model),
        )  # fmt: skip
        return result.memory.id

    def _note_used(self, namespace: str, context: _Context) -> None:
        if not context.used:
            return
        ids = list(context.used)
        if context.activation is not None:
            ids.append(context.activation.id)
        with self.memos.db.unit_of_work() as session:
            CubeRepository(session).count_access(ids, utcnow())
        if self.on_used is not None:
            self.on_used(namespace, context.used)


def _block_memory(hit: SearchHit) -> BlockMemory:
    m = hit.memory
    return BlockMemory(m.id, m.version, m.text or "", m.created_at)


def _memory_field(context: _Context) -> dict[str, Any]:
    field = {
        "used": list(context.used),
        "activation": context.activation.id if context.activation is not None else None,
    }
    if context.composed is not None:
        field["composition"] = context.composed
    return field


def _cacheable_query(request: ChatRequest, options: ChatOptions, max_chars: int) -> str | None:
    """The question to look up, for a request that is one plain question the cache can
    hold (a longer one goes to the model alone)."""
    messages = request.messages
    if not options.cache or request.program is not None or len(messages) != 1:
        return None
    question = messages[0].get("content")
    if messages[0].get("role") != "user" or not isinstance(question, str):
        return None
    if not question.strip() or len(question) > max_chars:
        return None
    return question


def _cache_field(found: Lookup) -> dict[str, Any]:
    field: dict[str, Any] = {"hit": found.hit, "category": found.category}
    if found.answer is not None:
        field.update(entry_id=found.answer.id, similarity=found.similarity)
    return field
