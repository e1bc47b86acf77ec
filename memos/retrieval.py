"""The three ways a search finds memories (``MemOS.search``'s ``mode``):

- ``vector``: the nearest neighbours of the query's embedding.
- ``hybrid``: those fused by reciprocal rank with the database's full-text matches, so
  that exact tokens an embedding blurs (ENG-42 against ENG-24, a port, an email) count.
- ``graph``: the hybrid results and the entities the query names as seeds of a walk
  along the graph (graph/expansion.py); what it reaches is ranked by similarity, by how
  well the facts a memory asserts fit the query (the predicate's similarity to the
  query, on an entity the query names or one a fact away), by walk mass and by
  importance; memories whose facts no longer hold at the time asked about are left out
  unless asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from memos.memcube.database import Database
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import utcnow
from memos.memcube.repository import CubeRepository

from .embeddings import Embedder
from .graph import GraphMemory
from .index_registry import IndexRegistry
from .records import SearchHit, memory_of
from .vector_index import Neighbour

EXACT_SEARCH_LIMIT = 4_096  # filters matching at most this many memories are searched exactly
RRF_K = 60  # reciprocal rank fusion's damping of the top ranks (Cormack et al., 2009)
MIN_POOL = 30  # candidates each ranking contributes, at least
WALK_CANDIDATES = 64  # memories the graph walk adds to the seeds, at most
MAX_PREDICATE_VECTORS = 10_000


class SearchMode(enum.StrEnum):
    VECTOR = "vector"
    HYBRID = "hybrid"
    GRAPH = "graph"


@dataclass(frozen=True)
class GraphWeights:
    """How graph mode ranks what it found: a weighted sum of these, each at most 1."""

    similarity: float = 0.5  # the memory's cosine similarity to the query
    fact: float = 1.0  # how well the best fact it asserts fits the query (_fact_relevance)
    walk: float = 0.2  # its walk mass relative to the best one's
    importance: float = 0.05


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking):
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (k + rank + 1)
    return fused


class Retriever:
    def __init__(
        self, db: Database, indexes: IndexRegistry, graph: GraphMemory, embedder: Embedder
    ) -> None:
        self._db = db
        self._indexes = indexes
        self._graph = graph
        self._embedder = embedder
        self._predicate_names: dict[str, np.ndarray] = {}
        # (namespace, predicate) -> (memories sampled, their normalised mean vector)
        self._predicate_centroids: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
        self.weights = GraphWeights()

    def vector(
        self, vector: np.ndarray, namespace: str, top_k: int, min_score: float | None,
        filters: MemoryFilter,
    ) -> list[SearchHit]:  # fmt: skip
        index = self._indexes.get(namespace)
        now = utcnow()
        with self._db.reader() as session:
            repo = CubeRepository(session)
            # A filter on fields may leave few candidates: search those exactly. A time
            # (as_of) keeps most memories: the index's ranking, filtered, finds them.
            if not replace(filters, valid_at=None).is_empty:
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
        nearest = self._nearest(vector, namespace, _pool(top_k), filters)
        matched = self._lexical(query, namespace, _pool(top_k), filters)
        fused = reciprocal_rank_fusion([[n.id for n in nearest], [i for i, _ in matched]])
        ranked = sorted(fused, key=lambda i: (-fused[i], i))
        similar = {n.id: n.score for n in nearest}
        if min_score is not None:
            similar = self._similarities(namespace, vector, ranked, similar)
            ranked = [i for i in ranked if similar[i] >= min_score]
        rows = self._served_rows(namespace, ranked, filters, top_k)
        served = [i for i in ranked if i in rows][:top_k]
        similar = self._similarities(namespace, vector, served, similar)
        return [SearchHit(memory_of(rows[i]), fused[i], similar[i]) for i in served]

    def _lexical(
        self, query: str, namespace: str, pool: int, filters: MemoryFilter
    ) -> list[tuple[str, float]]:
        with self._db.reader() as session:
            return CubeRepository(session).lexical(namespace, query, filters, utcnow(), pool)

    def graph(
        self, query: str, vector: np.ndarray, namespace: str, top_k: int,
        min_score: float | None, filters: MemoryFilter, world: datetime | None,
        include_superseded: bool,
    ) -> list[SearchHit]:  # fmt: skip
        now = utcnow()
        # The seeds: the vector ranking, and the entities the query names (explore links
        # them), which find the exact tokens a full-text match would, for less.
        nearest = self._nearest(vector, namespace, _pool(top_k), filters)
        seeds = reciprocal_rank_fusion([[n.id for n in nearest]])
        similar = {n.id: n.score for n in nearest}
        seen = self._graph.explore(
            namespace, query, seeds, world or now, now, WALK_CANDIDATES, include_superseded
        )
        ids = sorted(set(seen.reached) - (set() if include_superseded else seen.superseded))
        similar = self._similarities(namespace, vector, ids, similar)
        relevance = self._fact_relevance(namespace, vector, seen.facts)
        w = self.weights
        best_walk = max((seen.reached[i] for i in ids), default=0.0) or 1.0
        partial = {
            i: w.similarity * similar[i] + w.fact * relevance.get(i, 0.0)
            + w.walk * seen.reached[i] / best_walk
            for i in ids if min_score is None or similar[i] >= min_score
        }  # fmt: skip
        ranked = sorted(partial, key=lambda i: (-partial[i], i))
        # Rows only for the best: importance adds at most w.importance, so a memory more
        # than that behind the top_k-th served one cannot overtake it.
        rows: dict[str, Any] = {}
        with self._db.reader() as session:
            repo = CubeRepository(session)
            for start in range(0, len(ranked), 2 * top_k):
                chunk = ranked[start : start + 2 * top_k]
                rows.update(repo.live_by_ids(namespace, chunk, filters, now))
                served = [i for i in ranked[: start + len(chunk)] if i in rows]
                if len(served) >= top_k and (
                    start + len(chunk) >= len(ranked)
                    or partial[ranked[start + len(chunk)]] + w.importance
                    <= partial[served[top_k - 1]]
                ):
                    break
        scores = {i: partial[i] + w.importance * rows[i].importance for i in rows}
        best = sorted(scores, key=lambda i: (-scores[i], i))[:top_k]
        return [SearchHit(memory_of(rows[i]), scores[i], similar[i]) for i in best]

    def _served_rows(
        self, namespace: str, ranked: list[str], filters: MemoryFilter, top_k: int
    ) -> dict[str, Any]:
        """The rows of the first ``top_k`` of ``ranked`` that are served and match the
        filters, read a few more than needed at a time."""
        rows: dict[str, Any] = {}
        now = utcnow()
        with self._db.reader() as session:
            repo = CubeRepository(session)
            step = top_k + 2  # most are served: a few spare for those that are not
            for start in range(0, len(ranked), step):
                rows.update(repo.live_by_ids(namespace, ranked[start : start + step], filters,
                                             now))  # fmt: skip
                if len(rows) >= top_k:
                    break
        return rows

    def _fact_relevance(
        self, namespace: str, vector: np.ndarray, facts: dict[str, list[tuple[str, float]]]
    ) -> dict[str, float]:
        """Per memory, how well the best fact it asserts fits the query: its predicate's
        fit (below), times the focus of its subject or object."""
        predicates = sorted({p for held in facts.values() for p, _ in held})
        raw = self._predicate_fit(namespace, vector, predicates)
        # Scaled between the worst- and the best-fitting predicate said of the entities in
        # focus: what sets the fact asked about apart is how much better its predicate fits.
        focused = [raw[p] for held in facts.values() for p, focus in held if focus > 0]
        low, high = (min(focused), max(focused)) if focused else (0.0, 0.0)
        fit = {p: min(max((r - low) / (high - low), 0.0), 1.0) if high > low else 1.0
               for p, r in raw.items()}  # fmt: skip
        return {
            memory_id: max((fit[p] * focus for p, focus in held), default=0.0)
            for memory_id, held in facts.items()
        }

    def _predicate_fit(
        self, namespace: str, vector: np.ndarray, predicates: list[str]
    ) -> dict[str, float]:
        """How close the query is to each predicate: to its name, plus to the centroid of
        memories that assert it (how this namespace puts it in words: "picked up ENG-42"
        says assignee better than the word does)."""
        missing = [p for p in predicates if p not in self._predicate_names]
        if missing:
            if len(self._predicate_names) + len(missing) > MAX_PREDICATE_VECTORS:
                self._predicate_names.clear()
                self._predicate_centroids.clear()
            embedded = self._embedder.embed([p.replace("_", " ") for p in missing])
            self._predicate_names.update(zip(missing, embedded, strict=True))
        index = self._indexes.get(namespace)
        samples = self._graph.stated_by(namespace, predicates)
        fit = {}
        for predicate in predicates:
            ids = [i for i in samples[predicate] if i in index]
            key = (namespace, predicate)
            cached = self._predicate_centroids.get(key)
            if ids and (cached is None or cached[0] != len(ids)):
                centroid = index.vectors_of(ids).mean(axis=0)
                centroid /= np.linalg.norm(centroid) or 1.0
                cached = self._predicate_centroids[key] = (len(ids), centroid)
            fit[predicate] = float(self._predicate_names[predicate] @ vector)
            if cached is not None:
                fit[predicate] += float(cached[1] @ vector)
        return fit

    # ------------------------------------------------------------------------------------

    def _nearest(
        self, vector: np.ndarray, namespace: str, pool: int, filters: MemoryFilter
    ) -> list[Neighbour]:
        """The vector ranking's candidates: with no filter but a time, straight from the
        index (the caller reads the rows of those it keeps, with the filters; the index
        gives twice as many when a time will drop some)."""
        if replace(filters, valid_at=None).is_empty:
            wanted = pool if filters.valid_at is None else 2 * pool
            return self._indexes.get(namespace).search(vector, wanted)
        hits = self.vector(vector, namespace, pool, None, filters)
        return [Neighbour(h.memory.id, h.score) for h in hits]

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


def _pool(top_k: int) -> int:
    """How many candidates each ranking contributes."""
    return max(3 * top_k, MIN_POOL)


def _hits(
    repo: CubeRepository, namespace: str, found: list[Neighbour], filters: MemoryFilter,
    now: datetime, top_k: int, min_score: float | None,
) -> list[SearchHit]:  # fmt: skip
    if min_score is not None:
        found = [n for n in found if n.score >= min_score]
    rows = repo.live_by_ids(namespace, [n.id for n in found], filters, now)
    hits = [SearchHit(memory_of(rows[n.id]), n.score, n.score) for n in found if n.id in rows]
    return hits[:top_k]
