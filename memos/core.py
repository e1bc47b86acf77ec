"""The MemOS facade: the few verbs a user needs (add, search, get, update, delete,
history, rollback), over the MemCube store and the per-namespace vector index."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import text

from memos.cache import CachePolicy, SemanticCache
from memos.memcube import changes
from memos.memcube.database import Database
from memos.memcube.filters import MemoryFilter
from memos.memcube.identity import identity_key, identity_of
from memos.memcube.ids import is_id, new_id
from memos.memcube.models import (
    INDEXED_STATES,
    KEPT_STATES,
    CubeVersion,
    Kind,
    MemCube,
    Operation,
    State,
    is_served,
    utcnow,
)
from memos.memcube.repository import CubeRepository

from . import lifecycle
from . import validation as check
from .api_keys import ApiKeys
from .config import Settings
from .embedding_batcher import EmbeddingBatcher
from .embeddings import Embedder, load_embedder
from .errors import (
    STORAGE_RETRY_AFTER_S,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageRefusedError,
    TooLargeError,
)
from .graph import GraphMemory
from .graph.llm_extract import ExtractionQueue
from .graph.policy import GraphPolicy
from .graph.service import FactInput, MemoryRef, NewNode, check_fact
from .graph.tasks import TaskBoard
from .index_registry import IndexRegistry
from .leases import Leases, process_id
from .provenance import SDK, Origin, content_hash, version_row
from .records import (
    AddResult,
    Memory,
    NewMemory,
    Page,
    PriorVersions,
    SearchHit,
    VersionRecord,
    memory_of,
    version_record_of,
)
from .replication import ChangeFollower
from .retrieval import Retriever, SearchMode
from .tool_history import ToolHistory
from .vector_index import VectorIndex, encode_vector

if TYPE_CHECKING:
    from .erasure import ErasureReport

log = logging.getLogger(__name__)

DEFAULT_SEARCH_MODE = SearchMode.GRAPH.value
MAX_PAGE = 1_000
MAX_FACTS_PER_MEMORY = 64


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class MemOS:
    """One memory store: a database, an embedder and the vector indexes built over them."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.db = Database(self.settings.database_url)
        # single texts (queries) that concurrent requests embed share model runs
        self.embedder = EmbeddingBatcher(
            embedder or load_embedder(self.settings.model_dir, self.settings.embedder)
        )
        self.indexes = IndexRegistry(
            self.db,
            self.settings.index_dir,
            self.embedder.model_id,
            self.embedder.dim,
            self.settings.search_ef,
            exact=self.settings.search_mode == "exact",
        )
        self.keys = ApiKeys(self.db)
        self.tool_history = ToolHistory(self.db)
        # this process among the replicas: the holder of the background work it leases
        self.leases = Leases(self.db, process_id())
        # each namespace's graph loads at open(), or on first use
        self.graph = GraphMemory(self.db, GraphPolicy.from_file(self.settings.config_path))
        # the chat model's fact extraction, when configured; the app runs its worker
        self.extraction = ExtractionQueue(self.graph) if self.graph.policy.llm_extract else None
        self.tasks = TaskBoard(self.db)
        self.retrieval = Retriever(self.db, self.indexes, self.graph, self.embedder)
        self.cache = SemanticCache(
            self.db, self.embedder, CachePolicy.from_file(self.settings.config_path)
        )
        # on PostgreSQL, other processes may write too: follow the change feed once open
        self.follower = (
            ChangeFollower(self, self.settings.replica_poll_s, self.settings.replica_listen)
            if self.db.feeds_changes
            else None
        )
        self._opened = False

    def open(self) -> MemOS:
        """Load (or rebuild) every namespace's index, its graph, and the cache's index, now
        rather than on first use; on PostgreSQL, then follow the changes other processes
        make."""
        if self._opened:
            return self
        if self.follower is not None:
            self.follower.mark_start()
        self.indexes.open_all()
        self.graph.open_all()
        self.cache.open()
        if self.follower is not None:
            self.follower.start()
        self._opened = True
        return self

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.indexes.save_changed()
        self.db.dispose()

    def prune_changes(self) -> int:
        """Drop the change feed's rows older than ``change_retention_s``; returns how many."""
        if not self.db.feeds_changes:
            return 0
        before = utcnow() - timedelta(seconds=self.settings.change_retention_s)
        with self.db.unit_of_work() as session:
            return changes.prune(session, before)

    def storage_refusal(self) -> str | None:
        """Why the database refuses writes now, or None when it takes them. Raises when
        it does not answer at all."""
        with self.db.reader() as session:
            session.execute(text("SELECT 1"))
        return self.db.refusing_writes(STORAGE_RETRY_AFTER_S)

    def __enter__(self) -> MemOS:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # add ------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        namespace: str = "default",
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        category: str | None = None,
        tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        importance: float = 0.5,
        ttl_s: float | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        facts: Sequence[FactInput] = (),
        dedupe: bool = True,
        origin: Origin = SDK,
    ) -> AddResult:
        """Add one memory; see ``add_batch``."""
        item = NewMemory(
            text=text, user_id=user_id, agent_id=agent_id, session_id=session_id,
            category=category, tags=tags if isinstance(tags, str) else tuple(tags),
            metadata=metadata or {}, importance=importance, ttl_s=ttl_s,
            valid_from=valid_from, valid_to=valid_to,
            facts=facts if isinstance(facts, FactInput) else tuple(facts),
        )  # fmt: skip
        return self.add_batch([item], namespace=namespace, dedupe=dedupe, origin=origin)[0]

    def add_batch(
        self,
        items: Sequence[NewMemory],
        *,
        namespace: str = "default",
        dedupe: bool | Sequence[bool] = True,
        origin: Origin = SDK,
        ids: Sequence[str | None] | None = None,
        vectors: Sequence[np.ndarray | None] | None = None,
        histories: Sequence[PriorVersions | None] | None = None,
    ) -> list[AddResult]:
        """Add many memories in one transaction: all are stored, or none is. Each new
        memory joins the graph: linked to the entities its text mentions and to the
        stored memories most like it, with the facts it asserts. An item whose twin is
        stored (the same text, owner, session, category and tag set) is not stored
        again (nor are its facts), unless its ``dedupe`` is false (one flag for
        all, or one per item): then it is a record, stored each time, and never merged.

        For imports: ``ids`` keeps given ids (one already in use is a conflict) and
        ``vectors`` supplies embeddings already computed by this embedder's model, and
        ``histories`` the versions a memory had before (it is stored as their next).
        """
        check.namespace(namespace)
        if len(items) > self.settings.max_batch_items:
            raise TooLargeError(
                f"a batch holds at most {self.settings.max_batch_items} items, got {len(items)}"
            )
        for name, given in (("ids", ids), ("vectors", vectors), ("histories", histories)):
            if given is not None and len(given) != len(items):
                raise InvalidInputError(f"{name} must have one entry per item")
        for given_id in ids or ():
            if given_id is not None and not is_id(given_id):
                raise InvalidInputError(f"id {given_id!r} is not a memory id (a UUID)")
        items = [
            self.check_new(item, f"items[{i}]." if len(items) > 1 else "")
            for i, item in enumerate(items)
        ]
        kind = Kind.PLAINTEXT.value
        hashes = [content_hash(kind, item.text) for item in items]
        deduped = _per_item(dedupe, len(items))

        existing = self._duplicates(namespace, items, hashes, deduped)
        # Identical items inside one batch are stored once (records, each time).
        first_of: dict[tuple, int] = {}
        to_store: list[int] = []
        for i, item in enumerate(items):
            if not deduped[i] or (
                i not in existing and first_of.setdefault(_dedupe_key(item, hashes[i]), i) == i
            ):
                to_store.append(i)
        embedded = self._embeddings(
            [items[i] for i in to_store], [vectors[i] for i in to_store] if vectors else None
        )

        with self.indexes.lock(namespace), self.graph.lock:
            index = self.indexes.get(namespace)
            self.graph.graph(namespace)  # loaded before the unit of work begins
            with self.db.unit_of_work() as session:
                repo = CubeRepository(session)
                repo.ensure_namespace(namespace)
                now = utcnow()
                # re-check under the lock: a concurrent add may have won
                existing.update(self._duplicates(namespace, items, hashes, deduped, repo))
                if ids is not None:
                    wanted = [ids[i] for i in to_store if ids[i] is not None]
                    taken = repo.existing_ids(wanted)
                    if taken:
                        raise ConflictError(f"memory id {sorted(taken)[0]!r} already exists")
                stored: dict[int, SimpleNamespace] = {}
                rows: list[int] = []
                for row, i in enumerate(to_store):
                    if i in existing:
                        continue
                    cube_id = (ids[i] if ids is not None else None) or new_id()
                    stored[i] = self.new_cube_row(
                        cube_id, namespace, items[i], hashes[i], embedded[row], now,
                        mergeable=deduped[i],
                    )  # fmt: skip
                    rows.append(row)
                versions: list[dict[str, Any]] = []
                for i, cube in stored.items():
                    prior = histories[i] if histories is not None else None
                    if prior is None:
                        versions.append(version_row(cube, Operation.CREATE, origin, now))
                        continue
                    cube.version = len(prior.rows) + 1
                    versions += [{**row, "cube_id": cube.id} for row in prior.rows]
                    versions.append(version_row(cube, Operation.IMPORT, origin, now,
                                                prior.derived_from))  # fmt: skip
                repo.insert_new([vars(cube) for cube in stored.values()], versions)
                revision = repo.bump_revision(namespace) if stored else None
                existing_cubes = {i: repo.get(namespace, cid) for i, cid in existing.items()}
                related = self.related(index, embedded[rows])
                nodes = [
                    NewNode(cube.id, cube.version, items[i].text, items[i].valid_from,
                            items[i].facts, near)
                    for (i, cube), near in zip(stored.items(), related, strict=True)
                ]  # fmt: skip
                link = self.graph.ingest(session, namespace, nodes, now)
            link()
            if stored:
                index.upsert([c.id for c in stored.values()], embedded[rows])
                index.revision = revision or index.revision
        if self.extraction is not None:
            for i, cube in stored.items():
                self.extraction.submit(namespace, MemoryRef(cube.id, cube.version), items[i].text)

        results: list[AddResult] = []
        for i, item in enumerate(items):
            if i in stored:
                results.append(AddResult(memory_of(stored[i]), True))
            elif i in existing_cubes and existing_cubes[i] is not None:
                results.append(AddResult(memory_of(existing_cubes[i]), False))
            else:
                twin = stored[first_of[_dedupe_key(item, hashes[i])]]
                results.append(AddResult(memory_of(twin), False))
        return results

    def related(
        self, index: VectorIndex, vectors: np.ndarray, itself: str | None = None
    ) -> list[tuple[tuple[str, float], ...]]:
        """Per vector, the stored memories (other than ``itself``) at least
        ``related_min_score`` similar to it, at most ``related_k`` (the links A-MEM makes
        as notes are added)."""
        k, floor = self.graph.policy.related_k, self.graph.policy.related_min_score
        if k == 0 or len(index) == 0:
            return [()] * len(vectors)
        found = [index.search(vector, k + (itself is not None)) for vector in vectors]
        return [
            tuple((n.id, n.score) for n in near if n.score >= floor and n.id != itself)[:k]
            for near in found
        ]

    def _embeddings(
        self, items: Sequence[NewMemory], given: Sequence[np.ndarray | None] | None
    ) -> np.ndarray:
        out = np.zeros((len(items), self.embedder.dim), dtype=np.float32)
        missing = [i for i in range(len(items)) if given is None or given[i] is None]
        if given is not None:
            for i in set(range(len(items))) - set(missing):
                out[i] = given[i]
        if missing:
            out[missing] = self.embedder.embed([items[i].text for i in missing])
        return out

    def check_new(self, item: NewMemory, where: str = "") -> NewMemory:
        """``item`` with its fields validated and normalized; raises on bad input."""
        if not isinstance(item, NewMemory):
            raise InvalidInputError(f"{where or 'item'} must be a NewMemory")
        valid_from = check.aware_datetime(item.valid_from, f"{where}valid_from")
        valid_to = check.aware_datetime(item.valid_to, f"{where}valid_to")
        facts = self._checked_facts(item.facts, f"{where}facts")
        if valid_from is None:  # a memory stating facts is true from when the first was
            valid_from = min((f.valid_from for f in facts if f.valid_from), default=None)
        if valid_from and valid_to and valid_from >= valid_to:
            raise InvalidInputError(f"{where}valid_from must be earlier than valid_to")
        return NewMemory(
            text=check.text(item.text, self.settings.max_text_chars, f"{where}text"),
            user_id=check.identifier(item.user_id, f"{where}user_id"),
            agent_id=check.identifier(item.agent_id, f"{where}agent_id"),
            session_id=check.identifier(item.session_id, f"{where}session_id"),
            category=check.identifier(item.category, f"{where}category"),
            tags=check.tags(item.tags),
            metadata=check.metadata(item.metadata),
            importance=check.importance(item.importance),
            ttl_s=check.ttl(item.ttl_s),
            valid_from=valid_from,
            valid_to=valid_to,
            facts=facts,
        )

    @staticmethod
    def _checked_facts(facts: Any, where: str) -> tuple[FactInput, ...]:
        if not isinstance(facts, tuple | list):
            raise InvalidInputError(f"{where} must be a list of facts")
        if len(facts) > MAX_FACTS_PER_MEMORY:
            raise InvalidInputError(f"{where} holds at most {MAX_FACTS_PER_MEMORY} facts")
        return tuple(check_fact(f, f"{where}[{i}].") for i, f in enumerate(facts))

    def _duplicates(
        self,
        namespace: str,
        items: Sequence[NewMemory],
        hashes: Sequence[str],
        deduped: Sequence[bool],
        repo: CubeRepository | None = None,
    ) -> dict[int, str]:
        """Positions of the items to dedupe whose twin is stored: the same text, owner,
        session, category and tag set, and not a record."""
        wanted = [hashes[i] for i in range(len(items)) if deduped[i]]
        if not wanted:
            return {}
        if repo is None:
            with self.db.reader() as session:
                return self._duplicates(
                    namespace, items, hashes, deduped, CubeRepository(session)
                )
        twins = {
            identity_of(c): c.id
            for c in repo.live_with_hashes(namespace, wanted, utcnow())
            if c.mergeable
        }
        found = {
            i: twins.get(_dedupe_key(item, hashes[i]))
            for i, item in enumerate(items) if deduped[i]
        }  # fmt: skip
        return {i: cube_id for i, cube_id in found.items() if cube_id is not None}

    def new_cube_row(
        self, cube_id: str, namespace: str, item: NewMemory, digest: str,
        vector: np.ndarray | None, now: datetime, kind: Kind = Kind.PLAINTEXT,
        mergeable: bool = True,
    ) -> SimpleNamespace:  # fmt: skip
        """The column values of a new cube (inserted in bulk: no ORM object per row); a
        cube without ``vector`` is not searched by meaning."""
        return SimpleNamespace(
            id=cube_id,
            namespace=namespace,
            user_id=item.user_id,
            agent_id=item.agent_id,
            session_id=item.session_id,
            kind=kind.value,
            payload=item.text,
            category=item.category,
            tags=list(item.tags),
            meta=item.metadata,
            importance=item.importance,
            embedding=encode_vector(vector) if vector is not None else None,
            embedding_model=self.embedder.model_id if vector is not None else None,
            content_hash=digest,
            valid_from=item.valid_from,
            valid_to=item.valid_to,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=item.ttl_s) if item.ttl_s else None,
            deleted_at=None,
            purged_at=None,
            state=State.GENERATED.value,
            access_count=0,
            last_accessed_at=None,
            version=1,
            mergeable=mergeable,
        )

    # read -----------------------------------------------------------------------

    def get(self, memory_id: str, *, namespace: str = "default") -> Memory:
        """A memory (served, archived or merged into another); counts the access. Deleted or
        expired memories are not found."""
        check.namespace(namespace)
        now = utcnow()
        with self.db.reader() as session:
            repo = CubeRepository(session)
            memory = memory_of(self._live(repo, namespace, memory_id, now, states=KEPT_STATES))
        try:
            with self.db.unit_of_work() as session:
                CubeRepository(session).count_access(memory_id, now)
        except StorageRefusedError:
            return memory  # reads go on while the storage refuses writes, uncounted
        return replace(memory, access_count=memory.access_count + 1, last_accessed_at=now)

    def list(
        self,
        *,
        namespace: str = "default",
        filters: MemoryFilter | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Served memories, newest first; pass ``next_cursor`` back for the next page."""
        check.namespace(namespace)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
        if cursor is not None and not is_id(cursor):
            raise InvalidInputError("cursor is not one this service handed out (next_cursor)")
        with self.db.reader() as session:
            cubes = CubeRepository(session).page(
                namespace, filters or MemoryFilter(), utcnow(), limit + 1, cursor
            )
        more = len(cubes) > limit
        cubes = cubes[:limit]
        return Page([memory_of(c) for c in cubes], cubes[-1].id if more else None)

    def search(
        self,
        query: str,
        *,
        namespace: str = "default",
        top_k: int = 10,
        min_score: float | None = None,
        filters: MemoryFilter | None = None,
        mode: str = DEFAULT_SEARCH_MODE,
        as_of: datetime | None = None,
        include_superseded: bool = False,
        after: int | None = None,
    ) -> list[SearchHit]:
        """The served memories that best answer ``query``, best first, found by ``mode``
        (vector, hybrid or graph: retrieval.py). ``as_of`` keeps the memories true in
        the world at that time (and, in graph mode, whose facts held then);
        ``min_score`` bounds the cosine similarity. ``after`` (a change number a write
        returned) makes a replica first apply every change up to it."""
        check.namespace(namespace)
        check.text(query, self.settings.max_text_chars, "query")
        top_k = check.top_k(top_k, self.settings.max_top_k)
        min_score = check.min_score(min_score)
        if mode not in {m.value for m in SearchMode}:
            modes = ", ".join(m.value for m in SearchMode)
            raise InvalidInputError(f"mode must be one of {modes}, got {mode!r}")
        if not isinstance(include_superseded, bool):
            raise InvalidInputError("include_superseded must be true or false")
        flt = filters or MemoryFilter()
        if not isinstance(flt, MemoryFilter):
            raise InvalidInputError("filters must be a MemoryFilter")
        if State.MERGED.value in flt.states:
            raise InvalidInputError(
                "filter states: merged memories are not searched (list them, or search the "
                "memory they were merged into)"
            )
        as_of = check.aware_datetime(as_of, "as_of")
        if as_of is not None:
            flt = replace(flt, valid_at=as_of)
        self.wait_for_change(after)
        vector = self.embedder.embed([query])[0]
        if mode == SearchMode.VECTOR:
            return self.retrieval.vector(vector, namespace, top_k, min_score, flt)
        if mode == SearchMode.HYBRID:
            return self.retrieval.hybrid(query, vector, namespace, top_k, min_score, flt)
        return self.retrieval.graph(
            query, vector, namespace, top_k, min_score, flt, as_of, include_superseded
        )

    def wait_for_change(self, after: int | None, field: str = "consistency.after") -> None:
        """Return once this process reflects every change up to ``after`` (at once in one
        process, which made them all); a replica waits a few seconds at most."""
        if after is None:
            return
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInputError(f"{field} must be a change number (0 or more), got {after!r}")
        if self.follower is not None and self._opened:
            self.follower.wait_for(after)

    def verify_index(self, namespace: str = "default") -> dict[str, int]:
        """How this process's index of ``namespace`` differs from the database (see
        IndexRegistry.verify); all zero when it holds exactly what is stored."""
        check.namespace(namespace)
        return self.indexes.verify(namespace)

    def history(self, memory_id: str, *, namespace: str = "default") -> list[VersionRecord]:
        """Every version, oldest first, deleted memories included."""
        check.namespace(namespace)
        with self.db.reader() as session:
            repo = CubeRepository(session)
            if repo.get(namespace, memory_id) is None:
                raise NotFoundError(f"memory {memory_id!r} not found")
            versions = repo.versions(memory_id)
        return [
            version_record_of(v, versions[n + 1].recorded_at if n + 1 < len(versions) else None)
            for n, v in enumerate(versions)
        ]

    # change ---------------------------------------------------------------------

    def update(
        self,
        memory_id: str,
        *,
        namespace: str = "default",
        text: str = UNSET,
        category: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        metadata: dict[str, Any] = UNSET,
        importance: float = UNSET,
        ttl_s: float | None = UNSET,
        valid_to: datetime | None = UNSET,
        origin: Origin = SDK,
    ) -> Memory:
        """Write a new version with the given fields changed; unchanged input writes nothing."""
        check.namespace(namespace)
        changes: dict[str, Any] = {}
        if text is not UNSET:
            changes["payload"] = check.text(text, self.settings.max_text_chars)
        if category is not UNSET:
            changes["category"] = check.identifier(category, "category")
        if tags is not UNSET:
            changes["tags"] = list(check.tags(tags))
        if metadata is not UNSET:
            changes["meta"] = check.metadata(metadata)
        if importance is not UNSET:
            changes["importance"] = check.importance(importance)
        if valid_to is not UNSET:
            changes["valid_to"] = check.aware_datetime(valid_to, "valid_to")
        ttl = check.ttl(ttl_s) if ttl_s is not UNSET else UNSET
        vector = self.embedder.embed([changes["payload"]])[0] if "payload" in changes else None

        with self.indexes.lock(namespace), self.graph.lock:
            index = self.indexes.get(namespace)
            self.graph.graph(namespace)
            relink = _nothing
            with self.db.unit_of_work() as session:
                repo = CubeRepository(session)
                now = utcnow()
                cube = self._live(repo, namespace, memory_id, now, for_update=True)
                _check_plaintext(cube)
                if ttl is not UNSET:
                    changes["expires_at"] = now + timedelta(seconds=ttl) if ttl else None
                changed = {k: v for k, v in changes.items() if getattr(cube, k) != v}
                if not changed:
                    return memory_of(cube)
                for key, value in changed.items():
                    setattr(cube, key, value)
                if "tags" in changed:
                    repo.set_tags(cube.id, cube.tags)
                if "payload" in changed:
                    cube.content_hash = content_hash(cube.kind, cube.payload or "")
                    cube.embedding = encode_vector(vector)
                    cube.embedding_model = self.embedder.model_id
                cube.version += 1
                cube.updated_at = now
                repo.add_version(CubeVersion(**version_row(cube, Operation.UPDATE, origin, now)))
                revision = repo.bump_revision(namespace)
                result = memory_of(cube)
                uncache = self.cache.invalidate_memories(session, namespace, [memory_id])
                if "payload" in changed:  # its links follow its text
                    near = self.related(index, vector[None, :], itself=memory_id)[0]
                    node = NewNode(memory_id, cube.version, cube.payload, related=near)
                    relink = self.graph.relink(session, namespace, node, now)
            uncache()
            relink()
            if "payload" in changed:
                index.upsert([memory_id], vector[None, :])
            index.revision = revision
        return result

    def delete(
        self, memory_id: str, *, namespace: str = "default", erase: bool = False,
        origin: Origin = SDK,
    ) -> ErasureReport | None:  # fmt: skip
        """Tombstone a memory (it stays in history and can be rolled back). ``erase``
        removes its content for good instead, with everything made from any of its
        versions (``memos.erasure``; the service's ``Kernel.erase`` also lets go of what
        the engine holds of them), and says what it touched."""
        check.namespace(namespace)
        if erase:
            from .erasure import erase_memory  # the kinds made from memories, on demand

            return erase_memory(self, namespace, memory_id, origin).report
        with self.indexes.lock(namespace):
            index = self.indexes.get(namespace)
            with self.db.unit_of_work() as session:
                repo = CubeRepository(session)
                now = utcnow()
                cube = self._live(repo, namespace, memory_id, now, for_update=True)
                _check_plaintext(cube)
                lifecycle.tombstone(repo, cube, now, origin)
                revision = repo.bump_revision(namespace)
                uncache = self.cache.invalidate_memories(session, namespace, [memory_id])
                retire = self.graph.retire_memory(session, namespace, memory_id, now)
            uncache()
            retire()
            index.remove([memory_id])
            index.revision = revision
        return None

    def rollback(
        self, memory_id: str, version: int, *, namespace: str = "default",
        origin: Origin = SDK,
    ) -> Memory:  # fmt: skip
        """Write a new version whose content equals ``version``'s.

        Content is text, category, tags, metadata, importance and validity; a deleted or
        expired memory comes back to life with no expiry, a served one keeps its expiry.
        """
        check.namespace(namespace)
        check.version(version)
        with self.db.reader() as session:
            repo = CubeRepository(session)
            cube = repo.get(namespace, memory_id)
            if cube is None:
                raise NotFoundError(f"memory {memory_id!r} not found")
            _check_plaintext(cube)
            if cube.purged_at is not None:
                raise ConflictError(f"memory {memory_id!r} was erased")
            if cube.state == State.MERGED.value:
                into = [d["id"] for d in repo.version(memory_id, cube.version).derived_from]
                raise ConflictError(
                    f"memory {memory_id!r} is merged into {', '.join(map(repr, into))}: "
                    f"unmerge that (POST /v1/memories/{{id}}/unmerge) to serve it again"
                )
            target = repo.version(memory_id, version)
        if target is None:
            raise NotFoundError(f"memory {memory_id!r} has no version {version}")
        if target.payload is None:
            raise ConflictError(f"version {version} of memory {memory_id!r} was erased")
        vector = self.embedder.embed([target.payload])[0]

        with self.indexes.lock(namespace), self.graph.lock:
            index = self.indexes.get(namespace)
            self.graph.graph(namespace)
            with self.db.unit_of_work() as session:
                repo = CubeRepository(session)
                now = utcnow()
                cube = repo.get(namespace, memory_id, for_update=True)
                if cube is None or cube.purged_at is not None:
                    raise ConflictError(f"memory {memory_id!r} was erased")
                revived = not is_served(cube.state, cube.expires_at, now)
                cube.payload = target.payload
                cube.category = target.category
                cube.tags = list(target.tags)
                cube.meta = dict(target.meta)
                cube.importance = target.importance
                cube.valid_from, cube.valid_to = target.valid_from, target.valid_to
                cube.content_hash = content_hash(cube.kind, target.payload)
                cube.embedding = encode_vector(vector)
                cube.embedding_model = self.embedder.model_id
                if revived:
                    cube.state, cube.expires_at, cube.deleted_at = State.ACTIVATED.value, None, None
                cube.version += 1
                cube.updated_at = now
                repo.set_tags(cube.id, cube.tags)
                derived = [{"id": memory_id, "version": version}]
                repo.add_version(
                    CubeVersion(**version_row(cube, Operation.ROLLBACK, origin, now, derived))
                )
                revision = repo.bump_revision(namespace)
                result = memory_of(cube)
                uncache = self.cache.invalidate_memories(session, namespace, [memory_id])
                # a deletion undone brings back the facts the deletion retired
                restore = (
                    self.graph.restore_memory(session, namespace, memory_id, cube.version, now)
                    if revived
                    else _nothing
                )
                near = self.related(index, vector[None, :], itself=memory_id)[0]
                node = NewNode(memory_id, cube.version, target.payload, related=near)
                relink = self.graph.relink(session, namespace, node, now)
            uncache()
            restore()
            relink()
            index.upsert([memory_id], vector[None, :])
            index.revision = revision
        return result

    # lifecycle jobs -------------------------------------------------------------

    def expire_due(self, batch: int = 1_000, namespace: str | None = None) -> int:
        """Move memories whose TTL has passed to ``expired``, with provenance; returns how many."""
        return lifecycle.expire_due(self, batch, namespace)

    def purge_deleted(self, older_than_s: float | None = None, batch: int = 1_000) -> int:
        """Erase the content of memories deleted at least ``older_than_s`` seconds ago
        (default: the configured grace period); returns how many."""
        age = self.settings.purge_after_s if older_than_s is None else older_than_s
        return lifecycle.purge_deleted(self, age, batch)

    @staticmethod
    def _live(
        repo: CubeRepository,
        namespace: str,
        memory_id: str,
        now: datetime,
        for_update: bool = False,
        states: tuple[str, ...] = INDEXED_STATES,
    ) -> MemCube:
        """The memory, if it is in one of ``states`` and not past its TTL (by default those
        a write may change: served or archived)."""
        cube = (
            repo.get(namespace, memory_id, for_update=for_update)
            if isinstance(memory_id, str)
            else None
        )
        if cube is None:
            raise NotFoundError(f"memory {memory_id!r} not found")
        if not is_served(cube.state, cube.expires_at, now, states):
            state = State.EXPIRED.value if cube.state in states else cube.state
            raise NotFoundError(f"memory {memory_id!r} is {state}")
        return cube


def _check_plaintext(cube: MemCube) -> None:
    """The memory verbs change plaintext memories; the other kinds have their own."""
    if cube.kind == Kind.ACTIVATION.value:
        raise ConflictError(
            f"memory {cube.id!r} is an activation memory: change it through /v1/activations"
        )
    if cube.kind != Kind.PLAINTEXT.value:
        raise ConflictError(f"memory {cube.id!r} is a {cube.kind} memory, not plaintext")


def _dedupe_key(item: NewMemory, digest: str) -> tuple:
    """What makes two memories one added twice (``memcube/identity.py``)."""
    return identity_key(digest, item.user_id, item.agent_id, item.session_id, item.category,
                        item.tags)  # fmt: skip


def _per_item(dedupe: bool | Sequence[bool], count: int) -> list[bool]:
    if isinstance(dedupe, bool):
        return [dedupe] * count
    if len(dedupe) != count or not all(isinstance(d, bool) for d in dedupe):
        raise InvalidInputError("dedupe must be a boolean, or one boolean per item")
    return list(dedupe)


def _nothing() -> int:
    return 0
