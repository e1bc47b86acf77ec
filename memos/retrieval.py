"""The three ways a search finds memories (``MemOS.search``'s ``mode``):

- ``vector``: the nearest neighbours of the query's embedding.
- ``hybrid``: those fused by reciprocal rank with the database's full-text matches, so
  that exact tokens an embedding blurs (ENG-42 against ENG-24, a port, an email) count.
- ``graph``: the hybrid results as seeds of a walk along the graph (expansion.py), the
  memories it reaches re-ranked by similarity, walk mass and importance; memories whose
  facts no longer hold at the time asked about are left out unless asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from memos.memcube.database import Database
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import utcnow
from memos.memcube.repository import CubeRepository

from .graph import GraphMemory
from .index_registry import IndexRegistry
from .records import SearchHit, memory_of
from .vector_index import Neighbour

EXACT_SEARCH_LIMIT = 4_096  # filters matching at most this many memories are searched exactly
RRF_K = 60  # reciprocal rank fusion's damping of the top ranks (Cormack et al., 2009)
MIN_POOL = 30  # candidates each ranking contributes, at least


class SearchMode(enum.StrEnum):
    VECTOR = "vector"
    HYBRID = "hybrid"
    GRAPH = "graph"


@dataclass(frozen=True)
class GraphWeights:
    """How graph mode ranks what it found: a weighted sum of these, each in [0, 1]."""

    similarity: float = 0.6  # cosine similarity to the query
    walk: float = 0.3  # the memory's walk mass relative to the best one's
    importance: float = 0.1


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking):
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (k + rank + 1)
    return fused


class Retriever:
    def __init__(self, db: Database, indexes: IndexRegistry, graph: GraphMemory) -> None:
        self._db = db
        self._indexes = indexes
        self._graph = graph
        self.weights = GraphWeights()

    def vector(
        self, vector: np.ndarray, namespace: str, top_k: int, min_score: float | None,
        filters: MemoryFilter,
    ) -> list[SearchHit]:  # fmt: skip
        index = self._indexes.get(namespace)
        now = utcnow()
        with self._db.reader() as session:
            repo = CubeRepository(session)
            if not filters.is_empty:
                candidates = repo.matching_ids(namespace, filters, now, EXACT_SEARCH_LIMIT + 1)
                if len(candidates) <= EXACT_SEARCH_LIMIT:
                    found = index.exact_search(vector, candidates, top_k)
                    return _hits(repo, namespace, found, filters, now, top_k, min_score)
            k = top_k
            while True:
                found = index.search(vector, k)
                hits = _hits(repo, namespace, found, filters, now, top_k, min_score)
                exhausted = len(found) < k or (
                    min_score is not None and found[-1].score < min_score
                )
                if len(hits) >= top_k or exhausted:
                    return hits
                k *= 4

    def hybrid(
        self, query: str, vector: np.ndarray, namespace: str, top_k: int,
        min_score: float | None, filters: MemoryFilter,
    ) -> list[SearchHit]:  # fmt: skip
        fused, similar = self._fused(query, vector, namespace, max(3 * top_k, MIN_POOL), filters)
        ranked = sorted(fused, key=lambda i: (-fused[i], i))
        similar = self._similarities(namespace, vector, ranked, similar)
        with self._db.reader() as session:
            rows = CubeRepository(session).live_by_ids(namespace, ranked, filters, utcnow())
        if min_score is not None:
            ranked = [i for i in ranked if similar[i] >= min_score]
        served = [i for i in ranked if i in rows][:top_k]
        return [SearchHit(memory_of(rows[i]), fused[i], similar[i]) for i in served]

    def graph(
        self, query: str, vector: np.ndarray, namespace: str, top_k: int,
        min_score: float | None, filters: MemoryFilter, world: datetime | None,
        include_superseded: bool,
    ) -> list[SearchHit]:  # fmt: skip
        now = utcnow()
        world = world or now
        fused, similar = self._fused(query, vector, namespace, max(3 * top_k, MIN_POOL), filters)
        reached = self._graph.spread(namespace, fused, world, now)
        candidates = set(fused) | set(reached)
        if not include_superseded:
            candidates -= self._graph.superseded(namespace, sorted(candidates), world, now)
        ids = sorted(candidates)
        similar = self._similarities(namespace, vector, ids, similar)
        with self._db.reader() as session:
            rows = CubeRepository(session).live_by_ids(namespace, ids, filters, now)
        best_walk = max((reached.get(i, 0.0) for i in ids), default=0.0) or 1.0
        w = self.weights
        scores = {
            i: w.similarity * similar[i] + w.walk * reached.get(i, 0.0) / best_walk
            + w.importance * rows[i].importance
            for i in ids if i in rows
        }  # fmt: skip
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        if min_score is not None:
            ranked = [i for i in ranked if similar[i] >= min_score]
        return [SearchHit(memory_of(rows[i]), scores[i], similar[i]) for i in ranked[:top_k]]

    # ------------------------------------------------------------------------------------

    def _fused(
        self, query: str, vector: np.ndarray, namespace: str, pool: int, filters: MemoryFilter
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The vector and lexical rankings of ``pool`` candidates each, fused; and the
        similarities the vector ranking knows."""
        nearest = self.vector(vector, namespace, pool, None, filters)
        with self._db.reader() as session:
            matched = CubeRepository(session).lexical(namespace, query, filters, utcnow(), pool)
        fused = reciprocal_rank_fusion([[h.memory.id for h in nearest], [i for i, _ in matched]])
        return fused, {h.memory.id: h.score for h in nearest}

    def _similarities(
        self, namespace: str, vector: np.ndarray, ids: list[str], known: dict[str, float]
    ) -> dict[str, float]:
        missing = [i for i in ids if i not in known and i in self._indexes.get(namespace)]
        out = dict(known)
        if missing:
            scores = self._indexes.get(namespace).vectors_of(missing) @ vector
            out.update(zip(missing, (float(s) for s in scores), strict=True))
        for i in ids:
            out.setdefault(i, 0.0)
        return out


def _hits(
    repo: CubeRepository, namespace: str, found: list[Neighbour], filters: MemoryFilter,
    now: datetime, top_k: int, min_score: float | None,
) -> list[SearchHit]:  # fmt: skip
    if min_score is not None:
        found = [n for n in found if n.score >= min_score]
    rows = repo.live_by_ids(namespace, [n.id for n in found], filters, now)
    hits = [SearchHit(memory_of(rows[n.id]), n.score, n.score) for n in found if n.id in rows]
    return hits[:top_k]
