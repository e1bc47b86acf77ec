"""The cache's in-memory side: per (namespace, category), an HNSW index of the entries'
query vectors and what a lookup or an eviction needs to know about each entry
(expiry, hits, last use). A miss is answered from here alone, never from storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from memos.vector_index import VectorIndex

LOOKUP_EF = 64  # HNSW candidates per lookup: a cache asks for one neighbour, not ten
LOOKUP_K = 4  # neighbours looked at, so that an expired nearest one does not hide a live one


@dataclass
class EntryMeta:
    expires_at: float  # epoch seconds
    hits: int
    last_used: float  # epoch seconds: created, or last hit


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    similarity: float


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

    def nearest_live(self, vector: np.ndarray, now: float) -> Candidate | None:
        """The most similar entry that has not expired."""
        with self.lock:
            for neighbour in self.vectors.search(vector, LOOKUP_K):
                meta = self.meta.get(neighbour.id)
                if meta is not None and meta.expires_at > now:
                    return Candidate(neighbour.id, neighbour.score)
        return None

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

    def expired(self, now: float) -> list[str]:
        with self.lock:
            return [entry_id for entry_id, meta in self.meta.items() if meta.expires_at <= now]
