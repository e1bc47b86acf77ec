"""The vector indexes of all namespaces: loaded from snapshots, rebuilt when stale."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from tqdm import tqdm

from memos.memcube.database import Database
from memos.memcube.models import INDEXED_STATES, utcnow
from memos.memcube.repository import CubeRepository

from .vector_index import VectorIndex, decode_vector

log = logging.getLogger(__name__)
PROGRESS_FROM = 20_000


class IndexRegistry:
    """Owns one VectorIndex per namespace and the per-namespace write lock.

    Writers hold ``lock(namespace)`` across their transaction and the index update,
    so an index's ``revision`` always names exactly the committed writes it holds.
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
        self._saved: dict[str, int] = {}
        self._guard = threading.Lock()

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
        snapshot = VectorIndex.load(
            self._directory, namespace, self._model_id, self._dim, self._ef_search, self._exact
        )
        if snapshot is not None and snapshot.revision == revision:
            self._saved[namespace] = revision
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

    def sizes(self) -> dict[str, int]:
        return {namespace: len(index) for namespace, index in self._indexes.items()}

    def save_changed(self) -> int:
        """Snapshot every index changed since its last snapshot; returns how many."""
        saved = 0
        for namespace, index in list(self._indexes.items()):
            with self.lock(namespace):
                if self._saved.get(namespace) == index.revision:
                    continue
                index.save(self._directory, namespace)
                self._saved[namespace] = index.revision
                saved += 1
        return saved
