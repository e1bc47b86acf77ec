"""The cache's in-memory side: per (namespace, category), an HNSW index of the entries'
query vectors and what a lookup or an eviction needs to know about each entry
(freshness, hits, last use). A miss is answered from here alone, never from storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from memos.vector_index import VectorIndex

LOOKUP_EF = 64  # HNSW candidates per lookup: a cache asks for one neighbour, not ten
LOOKUP_K = 4  # neighbours looked at, so that an expired nearest one does not hide a live one


@dataclass
class EntryMeta:
    query: str  # kept here so that a pair scorer can judge a candidate without storage
    created: float  # epoch seconds
    expires_at: float  # epoch seconds: never served after
    ttl_from_policy: bool  # the category's TTL (which load stretches) decides freshness
    hits: int
    last_used: float  # epoch seconds: created, or last hit

    def live(self, now: float, policy_ttl_s: float) -> bool:
        fresh = not self.ttl_from_policy or now < self.created + policy_ttl_s
        return fresh and now < self.expires_at


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    query: str
    similarity: float
    vector: np.ndarray


class CategoryIndex:
    def __init__(self, dim: int, model_id: str) -> None:
        self.vectors = VectorIndex(dim, model_id, ef_search=LOOKUP_EF)
        self.meta: dict[str, EntryMeta] = {}
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.meta)

    def add(self, entry_id: str, vector: np.ndarray, meta: EntryMeta) -> None:
        with self.lock:
            self.vectors.upsert([entry_id], vector.reshape(1, -1))
            self.meta[entry_id] = meta

    def remove(self, entry_ids: list[str]) -> None:
        with self.lock:
            self.vectors.remove(entry_ids)
            for entry_id in entry_ids:
                self.meta.pop(entry_id, None)

    def nearest_live(self, vector: np.ndarray, now: float, ttl_s: float) -> list[Candidate]:
        """The entries nearest to ``vector`` that are live at the category's TTL now,
        most similar first."""
        with self.lock:
            live = [
                (n, meta) for n in self.vectors.search(vector, LOOKUP_K)
                if (meta := self.meta.get(n.id)) is not None and meta.live(now, ttl_s)
            ]  # fmt: skip
            if not live:
                return []
            vectors = self.vectors.vectors_of([n.id for n, _ in live])
        return [
            Candidate(n.id, meta.query, n.score, row)
            for (n, meta), row in zip(live, vectors, strict=True)
        ]

    def touch(self, entry_id: str, now: float) -> None:
        with self.lock:
            meta = self.meta.get(entry_id)
            if meta is not None:
                meta.hits += 1
                meta.last_used = now

    def victims(self, count: int, eviction: str) -> list[str]:
        """The ``count`` entries to give up first: least recently used (lru) or least
        often used, then least recently (lfu)."""
        if count <= 0:
            return []
        with self.lock:
            if eviction == "lfu":
                order = sorted(self.meta.items(), key=lambda kv: (kv[1].hits, kv[1].last_used))
            else:
                order = sorted(self.meta.items(), key=lambda kv: kv[1].last_used)
        return [entry_id for entry_id, _ in order[:count]]
