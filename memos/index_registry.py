"""The vector indexes of all namespaces: loaded from snapshots, rebuilt when stale."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from memos.memcube import changes
from memos.memcube.database import Database
from memos.memcube.models import INDEXED_STATES, utcnow
from memos.memcube.repository import CubeRepository

from .vector_index import VectorIndex, decode_vector

log = logging.getLogger(__name__)
PROGRESS_FROM = 20_000
RECONCILE_BATCH = 1_000


class IndexRegistry:
    """Owns one VectorIndex per namespace and the per-namespace write lock.

    Writers hold ``lock(namespace)`` across their transaction and the index update,
    so an index's ``revision`` always names exactly the committed writes it holds.

    A replica (``follow``) also takes the changes other processes make, from the
    database's change feed (``apply``). Its snapshots are labelled with the feed's
    position instead: a loaded snapshot applies the changes made since, and one older
    than the feed's horizon is rebuilt.
    """

    def __init__(
        self,
        db: Database,
        directory: Path,
        model_id: str,
        dim: int,
        ef_search: int,
        exact: bool = False,
    ) -> None:
        self._db = db
        self._ef_search = ef_search
        self._exact = exact
        self._directory = directory
        self._model_id = model_id
        self._dim = dim
        self._indexes: dict[str, VectorIndex] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._saved: dict[str, tuple[int, int]] = {}  # (revision, generation) saved
        self._guard = threading.Lock()
        self._applied: Callable[[], int] | None = None

    def follow(self, applied: Callable[[], int]) -> None:
        """Be a replica: ``applied()`` is the feed position every change up to which
        this process has applied (memos/replication.py)."""
        self._applied = applied

    def lock(self, namespace: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(namespace, threading.RLock())

    def get(self, namespace: str) -> VectorIndex:
        index = self._indexes.get(namespace)
        if index is not None:
            return index
        with self.lock(namespace):
            index = self._indexes.get(namespace)
            if index is None:
                index = self._open(namespace)
                self._indexes[namespace] = index
            return index

    def open_all(self) -> None:
        with self._db.reader() as session:
            names = CubeRepository(session).namespace_names()
        for name in names:
            self.get(name)

    def _open(self, namespace: str) -> VectorIndex:
        with self._db.reader() as session:
            revision = CubeRepository(session).revision(namespace)
            horizon = changes.pruned_through(session)
        snapshot = VectorIndex.load(
            self._directory, namespace, self._model_id, self._dim, self._ef_search, self._exact
        )
        if self._applied is not None:
            if snapshot is not None and snapshot.seq is not None and snapshot.seq >= horizon:
                with self._db.reader() as session:
                    since = changes.row_ids_after(session, namespace, "memory", snapshot.seq)
                self._reconcile(snapshot, namespace, since)
                snapshot.revision = revision
                self._saved[namespace] = (snapshot.revision, snapshot.generation)
                return snapshot
        elif snapshot is not None and snapshot.revision == revision:
            self._saved[namespace] = (revision, snapshot.generation)
            return snapshot
        if snapshot is not None:
            log.info("index snapshot of %r is stale; rebuilding", namespace)
        return self._rebuild(namespace)

    def _rebuild(self, namespace: str) -> VectorIndex:
        index = VectorIndex(self._dim, self._model_id, self._ef_search, self._exact)
        with self._db.reader() as session:
            repo = CubeRepository(session)
            index.revision = repo.revision(namespace)
            total = repo.count_live(namespace, utcnow(), INDEXED_STATES)
            with tqdm(
                total=total,
                desc=f"indexing {namespace}",
                unit="mem",
                disable=total < PROGRESS_FROM,
            ) as progress:
                for batch in repo.indexed_embeddings(namespace, utcnow()):
                    ids = [memory_id for memory_id, _ in batch]
                    vectors = np.stack([decode_vector(blob, self._dim) for _, blob in batch])
                    index.upsert(ids, vectors)
                    progress.update(len(ids))
        return index

    def apply(self, namespace: str, memory_ids: Sequence[str]) -> None:
        """Bring the namespace's index in line with the database for these memories (a
        change made elsewhere). An index not loaded is left alone: it loads as it is."""
        with self.lock(namespace):
            index = self._indexes.get(namespace)
            if index is not None:
                self._reconcile(index, namespace, memory_ids)

    def _reconcile(self, index: VectorIndex, namespace: str, memory_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(memory_ids))
        for start in range(0, len(ids), RECONCILE_BATCH):
            chunk = ids[start : start + RECONCILE_BATCH]
            with self._db.reader() as session:
                repo = CubeRepository(session)
                found = repo.indexed_embeddings_of(namespace, chunk, utcnow())
                index.revision = repo.revision(namespace)
            index.remove([memory_id for memory_id in chunk if memory_id not in found])
            if found:
                vectors = np.stack([decode_vector(blob, self._dim) for blob in found.values()])
                index.upsert(list(found), vectors)

    def verify(self, namespace: str) -> dict[str, int]:
        """How the namespace's index differs from the database: memories it lacks, ones
        it holds that are not indexed, and ones whose vector is not the stored one."""
        with self.lock(namespace):
            index = self.get(namespace)
            missing = stale = 0
            seen: set[str] = set()
            with self._db.reader() as session:
                for batch in CubeRepository(session).indexed_embeddings(namespace, utcnow()):
                    present = [memory_id for memory_id, _ in batch if memory_id in index]
                    missing += len(batch) - len(present)
                    seen.update(present)
                    if not present:
                        continue
                    blobs = [blob for memory_id, blob in batch if memory_id in index]
                    stored = np.stack([decode_vector(blob, self._dim) for blob in blobs])
                    held = index.vectors_of(present)
                    norms = np.linalg.norm(stored, axis=1, keepdims=True)
                    stale += int((np.abs(held - stored / norms).max(axis=1) > 1e-4).sum())
            return {"vectors": len(index), "missing": missing,
                    "extra": len(index) - len(seen), "stale": stale}  # fmt: skip

    def forget_loaded(self) -> None:
        """Drop every index held in memory: each is built again on its next use."""
        with self._guard:
            namespaces = list(self._indexes)
        for namespace in namespaces:
            with self.lock(namespace):
                self._indexes.pop(namespace, None)
                self._saved.pop(namespace, None)

    def sizes(self) -> dict[str, int]:
        return {namespace: len(index) for namespace, index in self._indexes.items()}

    def save_changed(self) -> int:
        """Snapshot every index changed since its last snapshot; returns how many."""
        saved = 0
        for namespace, index in list(self._indexes.items()):
            with self.lock(namespace):
                if self._saved.get(namespace) == (index.revision, index.generation):
                    continue
                if self._applied is not None:
                    index.seq = self._applied()
                index.save(self._directory, namespace)
                self._saved[namespace] = (index.revision, index.generation)
                saved += 1
        return saved
