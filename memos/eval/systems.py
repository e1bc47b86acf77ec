"""The memory systems the runner evaluates, behind one small interface.

Each system sees an instance's events in the order they arrive (``observe``) and is
asked for what it remembers about a question (``retrieve``). Every system stores and
shows the same rendering of an event (``render``: its time, platform, channel, author
and text), so they differ only in what they keep and what they hand back:

- ``memos-vector`` / ``memos-hybrid`` / ``memos-graph``: this service over its REST API,
  one search mode each. Each event is a memory valid from when it happened (a
  re-delivered event is the same memory: the service dedupes it); a tracker change
  also carries its structured change as bi-temporal facts (subject the issue,
  predicate the field), which is what the graph mode reads to leave superseded
  memories out. The search asks what the question's type implies, as an agent would:
  an as-of question passes its world time as ``as_of``, a question about when
  something first happened asks for history (``include_superseded``).
- ``vector-rag``: the same embeddings in a fresh HNSW index, top-k by cosine, nothing
  else (no validity, no facts, no dedupe).
- ``full-context``: the whole timeline seen so far, newest first, cut to the model's
  window.
- ``no-memory``: nothing.
- ``mem0``: mem0 OSS (the ``bench`` extra) with the same embedder and its local Qdrant,
  ``infer=False`` (its LLM-driven updates need a model this machine does not have).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .dataset import Event, Question

MEMOS_MODES = ("vector", "hybrid", "graph")
SYSTEMS = (
    *(f"memos-{mode}" for mode in MEMOS_MODES),
    "vector-rag",
    "full-context",
    "no-memory",
    "mem0",
)
BATCH = 200  # events a memos add carries at most


@dataclass(frozen=True)
class Item:
    """One thing a system remembered: the event it came from and how a reader sees it."""

    event_id: str
    text: str  # the event's own text
    time: datetime  # when it happened
    rendered: str  # the line a reader is shown


def happened(event: Event) -> datetime:
    return event.happened_at or event.time


def render(event: Event) -> str:
    where = event.platform + (f"/{event.channel}" if event.channel else "")
    who = f" {event.author}" if event.author else ""
    return f"[{happened(event):%Y-%m-%d %H:%M}] {where}{who}: {event.text}"


def item_of(event: Event) -> Item:
    return Item(event.id, event.text, happened(event), render(event))


class MemorySystem(ABC):
    """What the runner drives: ``start`` an instance, ``observe`` its events,
    ``retrieve`` for each question; ``stored`` is what the system holds, as stored
    (for the duplicate count)."""

    name: str

    @abstractmethod
    def start(self, instance: str) -> None: ...

    @abstractmethod
    def observe(self, events: Sequence[Event]) -> None: ...

    @abstractmethod
    def retrieve(self, query: str, question: Question, k: int) -> list[Item]: ...

    @abstractmethod
    def stored(self) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - most systems hold nothing to release
        pass


class NoMemory(MemorySystem):
    name = "no-memory"

    def start(self, instance: str) -> None:
        pass

    def observe(self, events: Sequence[Event]) -> None:
        pass

    def retrieve(self, query: str, question: Question, k: int) -> list[Item]:
        return []

    def stored(self) -> list[str]:
        return []


class FullContext(MemorySystem):
    """The timeline so far, newest first, as many events as fit in ``budget_tokens``."""

    name = "full-context"

    def __init__(self, count_tokens: Callable[[str], int], budget_tokens: int) -> None:
        self._count = count_tokens
        self._budget = budget_tokens
        self._items: list[tuple[Item, int]] = []

    def start(self, instance: str) -> None:
        self._items = []

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            item = item_of(event)
            self._items.append((item, self._count(item.rendered) + 1))  # +1: its line break

    def retrieve(self, query: str, question: Question, k: int) -> list[Item]:
        room = self._budget - self._count(query)
        shown = []
        for item, tokens in reversed(self._items):
            if tokens > room:
                break
            room -= tokens
            shown.append(item)
        return shown

    def stored(self) -> list[str]:
        return [item.rendered for item, _ in self._items]


class VectorRag(MemorySystem):
    """Plain top-k by cosine over every event, in a fresh hnswlib index per instance."""

    name = "vector-rag"

    def __init__(self, embed: Callable[[list[str]], Any]) -> None:
        self._embed = embed
        self._items: list[Item] = []
        self._index: Any = None

    def start(self, instance: str) -> None:
        import hnswlib

        self._items = []
        self._index = hnswlib.Index(space="cosine", dim=384)
        self._index.init_index(max_elements=1024, M=16, ef_construction=200)
        self._index.set_ef(200)

    def observe(self, events: Sequence[Event]) -> None:
        if not events:
            return
        items = [item_of(e) for e in events]
        vectors = self._embed([i.rendered for i in items])
        needed = len(self._items) + len(items)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        labels = list(range(len(self._items), needed))
        self._index.add_items(vectors, labels)
        self._items.extend(items)

    def retrieve(self, query: str, question: Question, k: int) -> list[Item]:
        if not self._items:
            return []
        k = min(k, len(self._items))
        labels, _ = self._index.knn_query(self._embed([query]), k=k)
        return [self._items[int(label)] for label in labels[0]]

    def stored(self) -> list[str]:
        return [item.rendered for item in self._items]


class MemOSSystem(MemorySystem):
    """This service, through its Python client (the REST API), in one search mode.

    ``connect(instance)`` gives the client an instance is stored through. The graph is
    a namespace's, so instances (and runs) are kept apart by namespace: the service the
    runner starts gives each its own key and namespace; a service named by URL gives one
    key, whose namespace should be left to the evaluation (instances then differ by
    ``user_id`` only, and share the namespace's graph).
    """

    def __init__(self, connect: Callable[[str], Any], mode: str, run_id: str | None = None) -> None:
        if mode not in MEMOS_MODES:
            raise ValueError(f"memos mode must be one of {', '.join(MEMOS_MODES)}")
        self.name = f"memos-{mode}"
        self._connect = connect
        self._client: Any = None
        self._mode = mode
        self._run = run_id or uuid.uuid4().hex[:8]
        self._user = ""
        self._texts: dict[str, str] = {}  # memory id -> what it holds
        self._items: dict[str, Item] = {}  # event id -> item

    def start(self, instance: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.:-]", "_", instance)[:80]
        self._user = f"eval-{self._run}-{safe}"
        self._client = self._connect(self._user)
        self._texts = {}
        self._items = {}

    def observe(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            rows = [self._row(e) for e in chunk]
            ids = self._client.add_batch(rows, user_id=self._user)
            for memory_id, event in zip(ids, chunk, strict=True):
                item = item_of(event)
                self._texts.setdefault(memory_id, item.rendered)
                self._items[event.id] = item

    def _row(self, event: Event) -> dict[str, Any]:
        row: dict[str, Any] = {
            "text": render(event),
            "valid_from": happened(event),
            "metadata": {"event_id": event.id, "platform": event.platform},
        }
        if event.platform == "issues" and event.refs and event.changes:
            row["facts"] = [
                {
                    "subject": event.refs[0],
                    "predicate": name,
                    "value": str(value),
                    "valid_from": happened(event),
                }
                for name, value in event.changes.items()
            ]
        return row

    def retrieve(self, query: str, question: Question, k: int) -> list[Item]:
        # what an agent asks for when it knows the question is about the past
        as_of = question.as_of if question.type == "as-of" else None
        history = True if question.type == "temporal" else None
        hits = self._client.search(
            query,
            user_id=self._user,
            top_k=k,
            mode=self._mode,
            as_of=as_of,
            include_superseded=history,
        )
        found = []
        for hit in hits:
            item = self._items.get(str(hit.memory.metadata.get("event_id")))
            if item is not None:
                found.append(item)
        return found

    def stored(self) -> list[str]:
        return list(self._texts.values())


class Mem0System(MemorySystem):
    """mem0 OSS as its users run it locally: ``Memory`` with the same MiniLM embedder
    and its local Qdrant, each event added with ``infer=False``."""

    name = "mem0"

    def __init__(self, model_path: Path) -> None:
        self._model_path = model_path
        self._dir = Path(tempfile.mkdtemp(prefix="memos-eval-mem0-"))
        self._memory: Any = None
        self._user = ""
        self._items: dict[str, Item] = {}
        self._texts: list[str] = []

    def start(self, instance: str) -> None:
        import logging
        import os

        os.environ.setdefault("MEM0_TELEMETRY", "False")  # no network here to send it to
        from mem0 import Memory

        logging.getLogger("mem0").setLevel(logging.ERROR)
        self._user = f"eval-{uuid.uuid4().hex[:8]}"
        self._items = {}
        self._texts = []
        if self._memory is None:
            self._memory = Memory.from_config(
                {
                    "embedder": {
                        "provider": "huggingface",
                        "config": {"model": str(self._model_path), "embedding_dims": 384},
                    },
                    "vector_store": {
                        "provider": "qdrant",
                        "config": {
                            "path": str(self._dir / "qdrant"),
                            "collection_name": "eval",
                            "embedding_model_dims": 384,
                            "on_disk": False,
                        },
                    },
                    # infer=False never calls it; mem0 requires one in its configuration
                    "llm": {"provider": "openai", "config": {"api_key": "unused"}},
                    "history_db_path": str(self._dir / "history.db"),
                }
            )

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            item = item_of(event)
            self._memory.add(
                item.rendered, user_id=self._user, metadata={"event_id": event.id}, infer=False
            )
            self._items[event.id] = item
            self._texts.append(item.rendered)

    def retrieve(self, query: str, question: Question, k: int) -> list[Item]:
        hits = self._memory.search(query, filters={"user_id": self._user}, top_k=k, threshold=0.0)[
            "results"
        ]
        found = []
        for hit in hits:
            event_id = (hit.get("metadata") or {}).get("event_id")
            if event_id in self._items:
                found.append(self._items[event_id])
        return found

    def stored(self) -> list[str]:
        return list(self._texts)

    def close(self) -> None:
        if self._memory is not None:
            client = getattr(self._memory.vector_store, "client", None)
            if client is not None and hasattr(client, "close"):
                client.close()
        shutil.rmtree(self._dir, ignore_errors=True)
