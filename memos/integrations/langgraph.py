"""A LangGraph ``BaseStore`` backed by the MemOS service.

Each item (a namespace tuple, a key and a JSON value) is one memory of the client's
namespace: its text is the value's ``text`` (or ``content``, else the value as JSON), so
``search(prefix, query=...)`` ranks items by meaning; the value, namespace and key ride in
the memory's metadata, and tags find them (one tag per namespace prefix, one for the
item). A ``put`` on an existing key writes a new version of its memory; ``put(...,
None)`` deletes it. ``owner_levels`` maps namespace levels to owner fields, e.g.
``{"user_id": 1}`` stores ``("memories", "alice")`` items as Alice's memories.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from memos.client import Memory, MemOSClient

ITEM_TAG = "lg"  # on every item this store keeps
PAGE = 1_000


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def _prefix_tag(namespace: tuple[str, ...]) -> str:
    return "lgns:" + _digest(*namespace)


def _item_tag(namespace: tuple[str, ...], key: str) -> str:
    return "lgk:" + _digest(*namespace, "\x00", key)


class MemOSStore(BaseStore):
    def __init__(self, client: MemOSClient, *, owner_levels: Mapping[str, int] | None = None):
        self.client = client
        self.owner_levels = dict(owner_levels or {})
        unknown = set(self.owner_levels) - {"user_id", "agent_id", "session_id"}
        if unknown:
            raise ValueError(f"owner_levels maps user_id, agent_id or session_id, not {unknown}")

    # BaseStore -------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op.namespace, op.key))
            elif isinstance(op, PutOp):
                self._put(op.namespace, op.key, op.value)
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._namespaces(op))
            else:
                raise TypeError(f"unknown store operation {type(op).__name__}")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    # ----------------------------------------------------------------------------------

    def _find(self, namespace: tuple[str, ...], key: str) -> Memory | None:
        page = self.client.page(limit=1, tags=[_item_tag(namespace, key)])
        return page.items[0] if page.items else None

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        memory = self._find(namespace, key)
        return _item(memory) if memory is not None else None

    def _put(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any] | None) -> None:
        existing = self._find(namespace, key)
        if value is None:
            if existing is not None:
                self.client.delete(existing.id)
            return
        text = _text(value)
        meta = {"langgraph": {"namespace": list(namespace), "key": key, "value": dict(value)}}
        if existing is not None:
            self.client.update(existing.id, text=text, metadata=meta)
            return
        tags = [ITEM_TAG, _item_tag(namespace, key)]
        tags += [_prefix_tag(namespace[:n]) for n in range(1, len(namespace) + 1)]
        owner = {f: namespace[i] for f, i in self.owner_levels.items() if i < len(namespace)}
        self.client.add(text, tags=tags, metadata=meta, dedupe=False, **owner)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        tags = [_prefix_tag(op.namespace_prefix)] if op.namespace_prefix else [ITEM_TAG]
        wanted = op.offset + op.limit
        found: list[SearchItem] = []
        if op.query:
            hits = self.client.search(
                op.query, top_k=min(1_000, max(wanted * 4, 10)), filters={"tags": tags}
            )
            found = [_item(h.memory, h.score) for h in hits]
        else:
            found = [_item(m) for m in self._all(tags, wanted if not op.filter else None)]
        if op.filter:
            found = [i for i in found if all(i.value.get(k) == v for k, v in op.filter.items())]
        return found[op.offset : wanted]

    def _namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        seen: dict[tuple[str, ...], None] = {}
        for memory in self._all([ITEM_TAG], None):
            namespace = tuple(memory.metadata["langgraph"]["namespace"])
            if all(
                _matches(namespace, c.match_type, tuple(c.path)) for c in op.match_conditions or ()
            ):
                seen[namespace[: op.max_depth] if op.max_depth else namespace] = None
        return sorted(seen)[op.offset : op.offset + op.limit]

    def _all(self, tags: list[str], at_most: int | None) -> list[Memory]:
        out: list[Memory] = []
        for memory in self.client.list(tags=tags, page_size=PAGE):
            if "langgraph" in memory.metadata:
                out.append(memory)
            if at_most is not None and len(out) >= at_most:
                break
        return out


def _text(value: Mapping[str, Any]) -> str:
    for field in ("text", "content", "memory"):
        if isinstance(value.get(field), str) and value[field].strip():
            return value[field]
    return json.dumps(value, sort_keys=True, default=str)


def _item(memory: Memory, score: float | None = None) -> SearchItem:
    stored = memory.metadata["langgraph"]
    created = memory.created_at or datetime.now(UTC)
    return SearchItem(
        tuple(stored["namespace"]),
        stored["key"],
        stored["value"],
        created,
        memory.updated_at or created,
        score,
    )


def _matches(namespace: tuple[str, ...], match_type: str, path: tuple[str, ...]) -> bool:
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if match_type == "prefix" else namespace[-len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))
