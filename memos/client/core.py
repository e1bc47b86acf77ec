"""The clients' one core: every verb builds a ``Call`` (what to send and how to read the
answer) and hands it to ``_run``, which the sync client runs and the async client
awaits. The retry decision is here too; the two clients only do the I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from .errors import api_error
from .models import CachedAnswer, ChatAnswer, Erasure, Memory, Page, SearchResult, Version

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 503})
SOURCE_HEADER = "X-Memos-Source"  # the provenance source of what the client adds
MEMORY_FIELDS = (
    "user_id",
    "agent_id",
    "session_id",
    "category",
    "tags",
    "metadata",
    "importance",
    "ttl_s",
    "valid_from",
    "valid_to",
    "facts",
)
FILTER_FIELDS = (
    "user_id",
    "agent_id",
    "session_id",
    "category",
    "kind",
    "tags",
    "created_after",
    "created_before",
    "states",
)


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]  # the answer's JSON (None for 204) -> the result
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # safe to send again after a connection broke mid-way (reads, deletes, keyed adds)
    resend_safe: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429, 503 and connection errors, waiting what ``Retry-After`` says or
    backing off exponentially."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def wait_s(
        self, call: Call[Any], attempt: int, response: httpx.Response | None
    ) -> float | None:
        """How long to wait before sending ``call`` again after ``attempt`` (0-based)
        failed with ``response`` (None: the connection failed); None: do not retry."""
        if attempt >= self.max_retries:
            return None
        if response is None:
            if not call.resend_safe:
                return None
        elif response.status_code not in RETRY_STATUSES:
            return None
        told = _retry_after(response) if response is not None else None
        wait = told if told is not None else self.backoff_s * 2**attempt
        return min(wait, self.max_wait_s)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - datetime.now(when.tzinfo).timestamp())


def read_answer(response: httpx.Response) -> Any:
    """The answer's JSON; an error answer raises its typed exception."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise api_error(response.status_code, body, response.text[:500])
    return body


def _plain(value: Any) -> Any:
    """JSON for ``value``: date-times as ISO 8601, tuples as lists."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("date-times need a time zone (e.g. datetime.now(UTC))")
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _given(**fields: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in fields.items() if v is not None}


def _id(memory_id: str) -> str:
    return quote(str(memory_id), safe="")


class Verbs:
    """The API's verbs, written once; ``_run`` sends a call (see the two clients)."""

    def __init__(self, http: Any, api_key: str, retry: RetryPolicy | None) -> None:
        self.retry = retry or RetryPolicy()
        self._http = http
        self._http.headers["Authorization"] = f"Bearer {api_key}"

    def _run(self, call: Call[T]) -> T:
        raise NotImplementedError

    # memories ------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        category: str | None = None,
        tags: Sequence[str] | None = None,
        importance: float | None = None,
        ttl_s: float | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        facts: Sequence[dict[str, Any]] | None = None,
        dedupe: bool = True,
        idempotency_key: str | None = None,
    ) -> Memory:
        """Store a memory (``.created`` is False when identical content was already
        stored for the same user and agent). Retries send the same Idempotency-Key, so
        the memory is stored once."""
        body = _given(
            text=text,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            category=category,
            tags=tags,
            importance=importance,
            ttl_s=ttl_s,
            valid_from=valid_from,
            valid_to=valid_to,
            facts=facts,
        )
        body["dedupe"] = dedupe
        key = idempotency_key or uuid.uuid4().hex
        return self._run(
            Call(
                "POST",
                "/v1/memories",
                lambda b: Memory.of(b),
                json=body,
                headers={"Idempotency-Key": key, SOURCE_HEADER: "sdk"},
            )
        )

    def add_batch(
        self,
        items: Sequence[str | Mapping[str, Any]],
        *,
        dedupe: bool = True,
        idempotency_key: str | None = None,
        **shared: Any,
    ) -> list[str]:
        """Store many memories in one transaction (all or none); ``shared`` fields
        (``user_id=...``) apply to every item. Returns their ids, in order."""
        unknown = sorted(set(shared) - set(MEMORY_FIELDS))
        if unknown:
            raise TypeError(f"add_batch() got an unexpected keyword argument {unknown[0]!r}")
        rows = [{"text": item} if isinstance(item, str) else dict(item) for item in items]
        body = {"items": [_given(**{**shared, **row}) for row in rows], "dedupe": dedupe}
        key = idempotency_key or uuid.uuid4().hex
        return self._run(
            Call(
                "POST",
                "/v1/memories/batch",
                lambda b: list(b["ids"]),
                json=body,
                headers={"Idempotency-Key": key, SOURCE_HEADER: "sdk"},
            )
        )

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
        mode: str | None = None,
        min_score: float | None = None,
        as_of: datetime | None = None,
        include_superseded: bool | None = None,
    ) -> list[SearchResult]:
        """The memories that best answer ``query``, best first (graph mode leaves out
        memories whose facts no longer hold unless ``include_superseded``)."""
        flt = _given(
            **{
                **(filters or {}),
                **_given(user_id=user_id, agent_id=agent_id, session_id=session_id),
            }
        )
        body = _given(
            query=query,
            top_k=top_k,
            filters=flt or None,
            mode=mode,
            min_score=min_score,
            as_of=as_of,
            include_superseded=include_superseded,
        )
        return self._run(
            Call(
                "POST",
                "/v1/memories/search",
                lambda b: [SearchResult.of(r) for r in b["results"]],
                json=body,
            )
        )

    def get(self, memory_id: str) -> Memory:
        return self._run(Call("GET", f"/v1/memories/{_id(memory_id)}", Memory.of))

    def page(self, *, limit: int = 100, cursor: str | None = None, **filters: Any) -> Page:
        """One page of memories, newest first (``list`` walks them all)."""
        unknown = sorted(set(filters) - set(FILTER_FIELDS))
        if unknown:
            raise TypeError(f"unknown filter {unknown[0]!r}")
        params: dict[str, Any] = {"limit": limit, **_given(cursor=cursor)}
        for name, value in _given(**filters).items():
            key = {"tags": "tag", "states": "state"}.get(name, name)
            params[key] = value
        return self._run(Call("GET", "/v1/memories", _page, params=params))

    def update(self, memory_id: str, **changes: Any) -> Memory:
        """A new version with ``changes`` (text, category, tags, metadata, importance,
        ttl_s, valid_to); a change to None clears the field where the API allows it."""
        body = {k: _plain(v) for k, v in changes.items()}
        return self._run(Call("PATCH", f"/v1/memories/{_id(memory_id)}", Memory.of, json=body))

    def delete(self, memory_id: str, *, erase: bool = False) -> Erasure | None:
        """Tombstone a memory; ``erase``: remove it for good with what was made from it,
        and say what that touched."""
        if erase:
            return self._run(Call("DELETE", f"/v1/memories/{_id(memory_id)}", Erasure.of,
                                  params={"erase": "true"}))  # fmt: skip
        return self._run(Call("DELETE", f"/v1/memories/{_id(memory_id)}", _nothing))

    def history(self, memory_id: str) -> list[Version]:
        return self._run(
            Call(
                "GET",
                f"/v1/memories/{_id(memory_id)}/history",
                lambda b: [Version.of(v) for v in b["versions"]],
            )
        )

    def rollback(self, memory_id: str, version: int) -> Memory:
        return self._run(
            Call(
                "POST",
                f"/v1/memories/{_id(memory_id)}/rollback",
                Memory.of,
                json={"version": version},
            )
        )

    # cache ---------------------------------------------------------------------------

    def cache_lookup(self, query: str, *, category: str | None = None) -> CachedAnswer:
        return self._run(
            Call(
                "POST",
                "/v1/cache/lookup",
                CachedAnswer.of,
                json=_given(query=query, category=category),
            )
        )

    def cache_store(
        self,
        query: str,
        response: str,
        *,
        category: str | None = None,
        memory_ids: Sequence[str] = (),
        ttl_s: float | None = None,
    ) -> str:
        """Cache ``response`` as the answer to ``query``; returns the entry's id."""
        body = _given(query=query, response=response, category=category, ttl_s=ttl_s)
        body["memory_ids"] = list(memory_ids)
        return self._run(Call("POST", "/v1/cache", lambda b: b["id"], json=body, resend_safe=False))

    def cache_invalidate(self, entry_id: str) -> None:
        return self._run(Call("DELETE", f"/v1/cache/entries/{_id(entry_id)}", _nothing))

    def cache_invalidate_category(self, category: str) -> int:
        """Drop a category's cached answers; returns how many."""
        path = f"/v1/cache/categories/{_id(category)}"
        return self._run(Call("DELETE", path, lambda b: b["deleted"]))

    def cache_clear(self) -> int:
        """Drop every cached answer of the key's namespace; returns how many."""
        return self._run(Call("DELETE", "/v1/cache", lambda b: b["deleted"]))

    def cache_stats(self) -> dict[str, Any]:
        return self._run(Call("GET", "/v1/cache/stats", _same))

    # graph ---------------------------------------------------------------------------

    def entity(
        self, name: str, *, type: str | None = None, aliases: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The entity of that name (or alias), made if new."""
        body = _given(name=name, type=type, aliases=list(aliases))
        return self._run(Call("POST", "/v1/graph/entities", _same, json=body))

    def neighbours(
        self,
        entity: str,
        *,
        depth: int = 1,
        types: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        """The nodes within ``depth`` edges of ``entity``, as node-link JSON."""
        params = _given(entity=entity, depth=depth, type=list(types) or None, as_of=as_of)
        return self._run(Call("GET", "/v1/graph/neighbours", _same, params=params))

    def path(
        self,
        source: str,
        target: str,
        *,
        types: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        """A shortest chain of edges between two entities: ``{found, chain}``."""
        params = {"from": source, "to": target, **_given(type=list(types) or None, as_of=as_of)}
        return self._run(Call("GET", "/v1/graph/path", _same, params=params))

    def subgraph(
        self, entities: Sequence[str] = (), *, depth: int = 1, as_of: datetime | None = None
    ) -> dict[str, Any]:
        params = _given(entity=list(entities) or None, depth=depth, as_of=as_of)
        return self._run(Call("GET", "/v1/graph/subgraph", _same, params=params))

    def add_fact(
        self,
        subject: str,
        predicate: str,
        *,
        object: str | None = None,
        value: str | None = None,
        valid_from: datetime | None = None,
        memory_id: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            subject=subject,
            predicate=predicate,
            object=object,
            value=value,
            valid_from=valid_from,
            memory_id=memory_id,
        )
        return self._run(Call("POST", "/v1/graph/facts", _same, json=body, resend_safe=False))

    def entity_state(self, entity: str, *, as_of: datetime | None = None) -> dict[str, Any]:
        """What holds for ``entity`` (now, or at ``as_of``): its facts by predicate."""
        params = _given(entity=entity, as_of=as_of)
        return self._run(Call("GET", "/v1/graph/state", _same, params=params))

    def entity_timeline(self, entity: str, *, predicate: str | None = None) -> dict[str, Any]:
        params = _given(entity=entity, predicate=predicate)
        return self._run(Call("GET", "/v1/graph/timeline", _same, params=params))

    # chat and the scheduler ------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        memory: Mapping[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
        **extra: Any,
    ) -> ChatAnswer:
        """A chat completion; ``memory={"user_id": ...}`` answers from those memories."""
        body = {
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            **_given(memory=memory),
            **extra,
        }
        return self._run(
            Call("POST", "/v1/chat/completions", ChatAnswer.of, json=body, resend_safe=False)
        )

    def activate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        memory_ids: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Keep a user's or agent's memories as an activation memory (the KV cache of
        their rendered block): the chosen ids, or the most read that ``filters`` match."""
        body = _given(
            user_id=user_id,
            agent_id=agent_id,
            memory_ids=list(memory_ids) if memory_ids is not None else None,
            filters=dict(filters) if filters is not None else None,
        )
        if memory_ids is None and filters is None:
            body["filters"] = {}
        return self._run(Call("POST", "/v1/activations", _same, json=body, resend_safe=False))

    def activations(self) -> list[dict[str, Any]]:
        return self._run(Call("GET", "/v1/activations", lambda b: list(b["items"])))

    def deactivate(self, activation_id: str) -> None:
        return self._run(Call("DELETE", f"/v1/activations/{_id(activation_id)}", _nothing))

    def run_scheduler(self) -> dict[str, Any]:
        """One MemScheduler pass over the key's namespace: ``{moved, failed}``."""
        return self._run(Call("POST", "/v1/scheduler/run", _same, resend_safe=False))


def _page(body: Any) -> Page:
    return Page([Memory.of(m) for m in body["items"]], body.get("next_cursor"))


def _same(body: Any) -> Any:
    return body


def _nothing(_body: Any) -> None:
    return None
