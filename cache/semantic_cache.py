"""The category-aware semantic cache: answers to earlier queries, served again to queries
that mean the same, under a policy of its own for each category.

Entries live in the service's database (a restart loses nothing); their query vectors
and what a lookup needs live in memory, one HNSW index per (namespace, category), so a
miss never touches storage. A hit reads its answer by primary key and re-checks it
there, so an entry deleted or expired a moment ago is never served. Never across
namespaces: each namespace has indexes of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session
from tqdm import tqdm

from memos.errors import InvalidInputError, NotFoundError, TooLargeError
from memos.memcube.database import Database
from memos.memcube.ids import is_id, new_id
from memos.memcube.repository import CubeRepository

from .classifier import CentroidClassifier
from .entry_index import Candidate, CategoryIndex, EntryMeta
from .load_signal import LoadSignal
from .models import CacheEntry
from .pair_scorer import PairScorer
from .policy import MAX_TTL_S, CachePolicy, CategoryPolicy
from .repository import CacheRepository
from .stats import CacheStats

log = logging.getLogger(__name__)

MAX_MEMORY_IDS = 256
MAX_NAME_CHARS = 128  # a category's or a model's name
PROGRESS_FROM = 20_000


class Embedder(Protocol):  # what the cache needs of memos.embeddings.Embedder
    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class CachedAnswer:
    id: str
    query: str
    response: str
    model: str | None
    category: str
    memory_ids: list[str]
    created_at: datetime
    expires_at: datetime
    hits: int


@dataclass(frozen=True)
class Lookup:
    hit: bool
    category: str
    threshold: float  # the score a hit needed, after load adjusted it
    score: float | None  # of the best live candidate: the pair scorer's, else cosine
    similarity: float | None  # that candidate's cosine similarity
    answer: CachedAnswer | None = None


@dataclass(frozen=True)
class Stored:
    id: str
    category: str
    expires_at: datetime
    evicted: list[str] = field(default_factory=list)


class SemanticCache:
    def __init__(
        self, db: Database, embedder: Embedder, policy: CachePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.db = db
        self.embedder = embedder
        self.policy = policy or CachePolicy()
        self.scorer = (
            PairScorer.load(self.policy.scorer, embedder.model_id, embedder.dim)
            if self.policy.scorer is not None
            else None
        )
        self.clock = clock
        self.stats = CacheStats()
        self.load = LoadSignal(self.policy.load)
        self._indexes: dict[tuple[str, str], CategoryIndex] = {}
        self._guard = threading.Lock()
        self._classifier: CentroidClassifier | None = None
        self._opened = False

    # start -------------------------------------------------------------------------

    def open(self) -> SemanticCache:
        """Build the classifier from the exemplars and the indexes from stored entries."""
        if self._opened:
            return self
        exemplars = {
            name: self.embedder.embed(list(category.exemplars)) if category.exemplars else []
            for name, category in self.policy.categories.items()
        }
        self._classifier = CentroidClassifier(exemplars, self.policy.default_category)
        now = self._now()
        with self.db.reader() as session:
            repo = CacheRepository(session)
            total = repo.count_live(now)
            with tqdm(total=total, desc="loading the semantic cache", unit="entry",
                      disable=total < PROGRESS_FROM) as progress:  # fmt: skip
                for rows in repo.live_rows(now):
                    for row in rows:
                        entry_id, namespace, category, query, blob, created, expires = row[:7]
                        from_policy, hits, used = row[7:]
                        if category not in self.policy.categories:
                            continue  # a category the policy no longer has: never served
                        vector = np.frombuffer(blob, dtype=np.float32, count=self.embedder.dim)
                        meta = EntryMeta(query, _epoch(created), _epoch(expires), from_policy,
                                         hits, _epoch(used))  # fmt: skip
                        self._index(namespace, category).add(entry_id, vector, meta)
                    progress.update(len(rows))
        self._opened = True
        return self

    # lookup --------------------------------------------------------------------------

    def lookup(
        self, namespace: str, query: str, category: str | None = None,
        memory_ids: Sequence[str] | None = None,
    ) -> Lookup:  # fmt: skip
        """The cached answer to ``query``, if one is close enough. Given ``memory_ids``
        (the memories a memory-augmented answer is given), only an answer given exactly
        those memories is served: the same question over other memories is another."""
        query = self._check_query(query)
        self._check_category(category)
        if memory_ids is not None:
            memory_ids = _check_memory_ids(memory_ids)
        vector = self.embedder.embed([query])[0]
        return self.lookup_vector(namespace, vector, category, query, memory_ids)

    def lookup_vector(
        self, namespace: str, vector: np.ndarray, category: str | None = None,
        query: str | None = None, memory_ids: Sequence[str] | None = None,
    ) -> Lookup:  # fmt: skip
        """A lookup by an embedding already computed (and the query's text, which a
        pair scorer needs)."""
        started = time.perf_counter()
        policy = self._category_of(vector, category)
        threshold, ttl = policy.under_load(self.load.pressure)
        index = self._indexes.get((namespace, policy.name))
        now = self.clock()
        candidates = index.nearest_live(vector, now, ttl) if index is not None else []
        best, score = self._best(candidates, vector, query)
        answer = None
        if best is not None and score >= threshold:
            answer = self._read_hit(namespace, best.entry_id, memory_ids)
            if answer is not None:
                index.touch(best.entry_id, now)  # type: ignore[union-attr]
        ms = 1000 * (time.perf_counter() - started)
        self.stats.lookup(namespace, policy.name, answer is not None, ms)
        return Lookup(
            answer is not None, policy.name, threshold, score if best else None,
            best.similarity if best else None, answer,
        )  # fmt: skip

    def _best(
        self, candidates: list[Candidate], vector: np.ndarray, query: str | None
    ) -> tuple[Candidate | None, float]:
        """The candidate most likely to ask the same, and its score."""
        if not candidates:
            return None, 0.0
        if self.scorer is None:
            return candidates[0], candidates[0].similarity
        if query is None:
            raise InvalidInputError("a cache with a pair scorer needs the query's text")
        scores = self.scorer.score(
            [query] * len(candidates), np.repeat(vector.reshape(1, -1), len(candidates), 0),
            [c.query for c in candidates], np.stack([c.vector for c in candidates]),
        )  # fmt: skip
        i = int(np.argmax(scores))
        return candidates[i], float(scores[i])

    def _read_hit(
        self, namespace: str, entry_id: str, memory_ids: Sequence[str] | None = None
    ) -> CachedAnswer | None:
        with self.db.unit_of_work() as session:
            repo = CacheRepository(session)
            if memory_ids is not None:
                entry = repo.get(namespace, entry_id)
                if entry is None or set(entry.memory_ids or ()) != set(memory_ids):
                    return None  # an answer given other memories
            entry = repo.hit(namespace, entry_id, self._now())
            return _answer(entry) if entry is not None else None

    # store ---------------------------------------------------------------------------

    def store(
        self, namespace: str, query: str, response: str, *, category: str | None = None,
        model: str | None = None, memory_ids: Sequence[str] = (), ttl_s: float | None = None,
        vector: np.ndarray | None = None,
    ) -> Stored:  # fmt: skip
        """Cache ``response`` as the answer to ``query``; when the category is full, its
        least recently (lru) or least often (lfu) used entries make room. Without
        ``ttl_s``, the category's TTL decides how long it is served — longer under load,
        up to the category's ``max_ttl_s`` (the ``expires_at`` returned)."""
        query = self._check_query(query)
        self._check_category(category)
        if not isinstance(response, str) or not response.strip():
            raise InvalidInputError("response must be a non-empty string")
        if len(response) > self.policy.max_response_chars:
            raise TooLargeError(
                f"response has {len(response)} characters; the limit is "
                f"{self.policy.max_response_chars}"
            )
        memory_ids = _check_memory_ids(memory_ids)
        if model is not None and not (isinstance(model, str) and 0 < len(model) <= MAX_NAME_CHARS):
            raise InvalidInputError(f"model must be a name of 1 to {MAX_NAME_CHARS} characters")
        if ttl_s is not None and (
            isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float)
            or not 0 < ttl_s <= MAX_TTL_S
        ):  # fmt: skip
            raise InvalidInputError(f"ttl_s must be in (0, {MAX_TTL_S:g}] seconds, got {ttl_s!r}")
        if vector is None:
            vector = self.embedder.embed([query])[0]
        policy = self._category_of(vector, category)
        now = self.clock()
        longest = policy.max_ttl_s if policy.max_ttl_s is not None else policy.ttl_s
        expires = now + (ttl_s if ttl_s is not None else longest)
        index = self._index(namespace, policy.name)
        with index.lock:
            victims = index.victims(len(index) + 1 - policy.max_entries, policy.eviction)
            entry = CacheEntry(
                id=new_id(), namespace=namespace, category=policy.name, query=query,
                embedding=np.asarray(vector, np.float32).tobytes(),
                embedding_model=self.embedder.model_id, response=response, model=model,
                memory_ids=memory_ids, created_at=_datetime(now), expires_at=_datetime(expires),
                ttl_from_policy=ttl_s is None, hits=0,
            )  # fmt: skip
            with self.db.unit_of_work() as session:
                CubeRepository(session).ensure_namespace(namespace)
                repo = CacheRepository(session)
                repo.delete_ids(victims)
                repo.insert(entry)
            index.remove(victims)
            meta = EntryMeta(query, now, expires, ttl_s is None, 0, now)
            index.add(entry.id, np.asarray(vector, np.float32), meta)
        self.stats.count(namespace, policy.name, "stores")
        self.stats.count(namespace, policy.name, "evictions", len(victims))
        return Stored(entry.id, policy.name, entry.expires_at, victims)

    # invalidation ------------------------------------------------------------------------

    def get(self, namespace: str, entry_id: str) -> CachedAnswer:
        with self.db.reader() as session:
            entry = CacheRepository(session).get(namespace, entry_id)
        if entry is None:
            raise NotFoundError(f"cache entry {entry_id!r} not found")
        return _answer(entry)

    def invalidate_entry(self, namespace: str, entry_id: str) -> None:
        with self.db.unit_of_work() as session:
            repo = CacheRepository(session)
            entry = repo.get(namespace, entry_id)
            if entry is None:
                raise NotFoundError(f"cache entry {entry_id!r} not found")
            repo.delete_ids([entry_id])
            category = entry.category
        self._forget([(entry_id, namespace, category)], "invalidations")

    def invalidate_category(self, namespace: str, category: str) -> int:
        """Drop a category's entries; an unknown category is not found (it names a
        resource here, not a value to check)."""
        try:
            self._check_category(category)
        except InvalidInputError as exc:
            raise NotFoundError(exc.detail) from None
        return self._invalidate_where(namespace, category)

    def invalidate_namespace(self, namespace: str) -> int:
        return self._invalidate_where(namespace, None)

    def _invalidate_where(self, namespace: str, category: str | None) -> int:
        with self.db.unit_of_work() as session:
            repo = CacheRepository(session)
            rows = repo.ids_where(namespace, category)
            repo.delete_ids(entry_id for entry_id, _, _ in rows)
        self._forget(rows, "invalidations")
        return len(rows)

    def invalidate_memories(
        self, session: Session, namespace: str, memory_ids: Iterable[str]
    ) -> Callable[[], int]:
        """Within the caller's transaction that changes these memories, delete the
        answers that used them. Returns what to call once that transaction committed,
        to drop the entries from memory too (lookups re-check storage meanwhile)."""
        repo = CacheRepository(session)
        rows = repo.ids_using(namespace, memory_ids)
        repo.delete_ids(entry_id for entry_id, _ in rows)

        def after_commit() -> int:
            self._forget([(e, namespace, c) for e, c in rows], "invalidations")
            return len(rows)

        return after_commit

    def expire_due(self, batch: int = 1_000) -> int:
        """Delete entries past their time to live (maintenance); returns how many."""
        with self.db.unit_of_work() as session:
            repo = CacheRepository(session)
            rows = repo.expired(self._now(), batch)
            repo.delete_ids(entry_id for entry_id, _, _ in rows)
        self._forget(rows, "expirations")
        return len(rows)

    def _forget(self, rows: Iterable[tuple[str, str, str]], counter: str) -> None:
        by_index: dict[tuple[str, str], list[str]] = {}
        for entry_id, namespace, category in rows:
            by_index.setdefault((namespace, category), []).append(entry_id)
        for (namespace, category), ids in by_index.items():
            index = self._indexes.get((namespace, category))
            if index is not None:
                index.remove(ids)
            self.stats.count(namespace, category, counter, len(ids))

    # replicas ----------------------------------------------------------------------------

    def apply(self, entry_ids: Sequence[str]) -> None:
        """Bring the indexes in line with the database for these entries (stored or
        dropped elsewhere)."""
        now = self._now()
        with self.db.reader() as session:
            rows = CacheRepository(session).by_ids(entry_ids)
        live = {row.id for row in rows if row.expires_at > now}
        gone = [entry_id for entry_id in entry_ids if entry_id not in live]
        for index in list(self._indexes.values()):
            index.remove(gone)
        for row in rows:
            if row.id not in live or row.category not in self.policy.categories:
                continue
            vector = np.frombuffer(row.embedding, dtype=np.float32, count=self.embedder.dim)
            used = row.last_hit_at or row.created_at
            meta = EntryMeta(row.query, _epoch(row.created_at), _epoch(row.expires_at),
                             row.ttl_from_policy, row.hits, _epoch(used))  # fmt: skip
            self._index(row.namespace, row.category).add(row.id, vector, meta)

    def forget_loaded(self) -> None:
        """Build the indexes again from the stored entries."""
        with self._guard:
            self._indexes.clear()
            self._opened = False
        self.open()

    # policy and state ----------------------------------------------------------------

    def observe_load(self, load: float) -> None:
        """The backend's load now (requests waiting on the model)."""
        self.load.observe(load)

    def effective_policy(self) -> dict[str, Any]:
        pressure = self.load.pressure
        categories = {}
        for name, category in self.policy.categories.items():
            threshold, ttl = category.under_load(pressure)
            categories[name] = {**category.as_dict(), "effective_threshold": threshold,
                                "effective_ttl_s": ttl}  # fmt: skip
        return {
            "default_category": self.policy.default_category,
            "score": "pair scorer probability" if self.scorer is not None else "cosine",
            "classifier": "nearest exemplar centroid"
            if self._classifier is not None and self._classifier.trained
            else "none (the caller's category, else the default)",
            "load": {
                "normal": self.policy.load.normal,
                "overload": self.policy.load.overload,
                "current": self.load.value,
                "pressure": pressure,
            },
            "categories": categories,
        }

    def sizes(self, namespace: str | None = None) -> dict[str, int]:
        """Entries held in memory per category, of one namespace or of all together."""
        sizes: dict[str, int] = {}
        for (ns, category), index in list(self._indexes.items()):
            if namespace is None or ns == namespace:
                sizes[category] = sizes.get(category, 0) + len(index)
        return sizes

    # helpers -------------------------------------------------------------------------

    def _index(self, namespace: str, category: str) -> CategoryIndex:
        key = (namespace, category)
        index = self._indexes.get(key)
        if index is None:
            with self._guard:
                index = self._indexes.setdefault(
                    key, CategoryIndex(self.embedder.dim, self.embedder.model_id)
                )
        return index

    def _category_of(self, vector: np.ndarray, category: str | None) -> CategoryPolicy:
        if category is not None:
            return self.policy.category(category)
        if self._classifier is None:
            return self.policy.category(self.policy.default_category)
        return self.policy.category(self._classifier.classify(vector))

    def _check_category(self, category: str | None) -> None:
        if category is not None:
            if not isinstance(category, str):
                raise InvalidInputError(f"category must be a string, got {category!r}")
            self.policy.category(category)

    def _check_query(self, query: Any) -> str:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        if len(query) > self.policy.max_query_chars:
            raise TooLargeError(
                f"query has {len(query)} characters; the limit is {self.policy.max_query_chars}"
            )
        return query.strip()

    def _now(self) -> datetime:
        return _datetime(self.clock())


def _check_memory_ids(memory_ids: Any) -> list[str]:
    if isinstance(memory_ids, str) or not isinstance(memory_ids, Sequence):
        raise InvalidInputError("memory_ids must be a list of memory ids")
    if len(memory_ids) > MAX_MEMORY_IDS:
        raise InvalidInputError(f"memory_ids may hold at most {MAX_MEMORY_IDS} ids")
    for memory_id in memory_ids:
        if not is_id(memory_id):
            raise InvalidInputError(f"memory_ids: {str(memory_id)[:40]!r} is not a memory id")
    return list(dict.fromkeys(memory_ids))


def _answer(entry: CacheEntry) -> CachedAnswer:
    return CachedAnswer(
        entry.id, entry.query, entry.response, entry.model, entry.category,
        list(entry.memory_ids), entry.created_at, entry.expires_at, entry.hits,
    )  # fmt: skip


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):  # SQLite hands back text for an expression like COALESCE
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
