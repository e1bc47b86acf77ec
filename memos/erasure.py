"""Erasure that follows provenance: erasing a memory erases, in the same unit of work,
what was made from any of its versions, as its provenance (``derived_from``) records it.

- a memory fused from it (a merge, ``/fuse``) or copied from it is erased as well; the
  other sources of a merge come back as they were before it (served again);
- an activation memory whose block holds it is erased (its KV cache is the engine's to
  drop: ``Erased.activations``);
- a parametric memory trained on it is no longer served: its adapter's files go (the
  engine unloads it: ``Erased.adapters``) and ``retrain`` trains it again without it;
- a composition holding any of those loses them in a new version (deleted when none is
  left);
- cached answers that used any of them are invalidated.

Each erased memory keeps only its tombstone in history. Provenance across namespaces
(a migration's copies in another namespace) is that namespace's own: not followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memos import lifecycle
from memos.activation.service import Activation, ActivationMemory
from memos.composition import drop_members
from memos.errors import ConflictError, NotFoundError
from memos.memcube.models import Kind, MemCube, Operation, State, utcnow
from memos.memcube.repository import CubeRepository
from memos.parametric.service import Parametric, retire
from memos.provenance import Origin
from memos.scheduler.merge import Restored, restore_sources

if TYPE_CHECKING:
    from memos.core import MemOS

# relations under which an entry of derived_from does not mean "made from": the source's
# own pointers to what it became, and an unmerge's pointers back
NOT_MADE_FROM = frozenset({"merged_into", "moved_to", "unmerged_from", "unmerged_into"})


@dataclass(frozen=True)
class ErasureReport:
    erased: list[str]  # memories whose content is gone: the one asked for, what was made
    # from it (fused and copied memories, activation blocks)
    rebuilt: list[str]  # memories written again without them (compositions, merge sources)
    retired_adapters: list[str]  # parametric memories no longer served: retrain them


@dataclass
class Erased:
    """What an erasure did, and the engine state its caller must let go of."""

    report: ErasureReport
    activations: list[Activation] = field(default_factory=list)  # KV blocks to drop
    adapters: list[Parametric] = field(default_factory=list)  # adapters to unload


def erase_memory(memos: MemOS, namespace: str, memory_id: str, origin: Origin) -> Erased:
    """Erase ``memory_id`` (served, archived, merged or deleted, not yet erased) and what
    was made from it, in one unit of work; see the module's docstring."""
    with memos.indexes.lock(namespace), memos.graph.lock:
        index = memos.indexes.get(namespace)
        memos.graph.graph(namespace)
        with memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            now = utcnow()
            target = repo.get(namespace, memory_id, for_update=True)
            if target is None or target.purged_at is not None:
                raise NotFoundError(f"memory {memory_id!r} not found")
            if target.kind != Kind.PLAINTEXT.value:
                raise ConflictError(
                    f"memory {memory_id!r} is a {target.kind} memory: erase what it was made "
                    "from, or delete it through its own routes"
                )
            work = _Work(memos, session, namespace, origin, now, index)
            work.erase(target)
            work.follow(memory_id)
            revision = repo.bump_revision(namespace)
            uncache = memos.cache.invalidate_memories(
                session, namespace, [*work.erased, *work.dropped]
            )
        uncache()
        for apply in work.after_commit:
            apply()
        index.remove(work.erased)
        for restored in work.restored:
            restored.apply(index)
        index.revision = revision
    report = ErasureReport(work.erased, work.rebuilt, [p.name for p in work.adapters])
    return Erased(report, work.activations, work.adapters)


class _Work:
    """One erasure's unit of work: what it erased, rebuilt and retired so far."""

    def __init__(
        self, memos: MemOS, session: Any, namespace: str, origin: Origin, now: Any, index: Any
    ) -> None:
        self.memos, self.session, self.namespace = memos, session, namespace
        self.repo = CubeRepository(session)
        self.origin, self.now, self.index = origin, now, index
        self.erased: list[str] = []
        self.dropped: list[str] = []  # adapters retired
        self.rebuilt: list[str] = []
        self.activations: list[Activation] = []
        self.adapters: list[Parametric] = []
        self.restored: list[Restored] = []
        self.after_commit: list[Callable[[], Any]] = []

    def follow(self, memory_id: str) -> None:
        """Everything made from ``memory_id``, and from that, transitively."""
        frontier, seen = [memory_id], {memory_id}
        while frontier:
            made = self._made_from(frontier)
            frontier = []
            for cube_id in made:
                if cube_id in seen:
                    continue
                seen.add(cube_id)
                cube = self.repo.get(self.namespace, cube_id, for_update=True)
                if cube is None or cube.purged_at is not None:
                    continue
                if self._handle(cube, made[cube_id]):
                    frontier.append(cube_id)

    def _handle(self, cube: MemCube, sources: set[str]) -> bool:
        """Erase, retire or rebuild one memory made from ``sources``; whether what was
        made from it must be followed too."""
        if cube.kind == Kind.COMPOSITION.value:
            if drop_members(self.repo, cube, {*self.erased, *self.dropped}, self.origin,
                            self.now):  # fmt: skip
                self.rebuilt.append(cube.id)
            return False
        if cube.kind == Kind.PARAMETRIC.value:
            if cube.state in (State.DELETED.value, State.EXPIRED.value):
                return False
            data_dir = self.memos.settings.data_dir
            self.adapters.append(retire(self.session, cube, data_dir, sorted(sources),
                                        self.origin, self.now))  # fmt: skip
            self.dropped.append(cube.id)
            return True
        if cube.kind == Kind.ACTIVATION.value:
            self.activations.append(ActivationMemory.of_cube(self.session, cube))
        first = self.repo.version(cube.id, 1)
        if first is not None and first.operation == Operation.FUSE.value:
            others = [d["id"] for d in first.derived_from if d["id"] not in sources]
            restored = restore_sources(self.memos, self.session, cube, others, self.origin,
                                       self.now, self.index, strict=False)  # fmt: skip
            self.restored.append(restored)
            self.rebuilt += [c.id for c in restored.cubes]
        self.erase(cube)
        return True

    def erase(self, cube: MemCube) -> None:
        if cube.state not in (State.DELETED.value, State.EXPIRED.value):
            lifecycle.tombstone(self.repo, cube, self.now, self.origin)
        lifecycle.erase(self.repo, cube, self.now, self.origin)
        self.after_commit.append(
            self.memos.graph.retire_memory(self.session, self.namespace, cube.id, self.now)
        )
        self.erased.append(cube.id)

    def _made_from(self, source_ids: list[str]) -> dict[str, set[str]]:
        """Memories of the namespace with a version made from one of ``source_ids``:
        each with those of them it was made from."""
        wanted = set(source_ids)
        made: dict[str, set[str]] = {}
        for cube_id, derived in self.repo.derived_from_any(self.namespace, source_ids):
            for entry in derived:
                if (
                    isinstance(entry, dict) and entry.get("id") in wanted
                    and entry.get("id") != cube_id
                    and entry.get("relation") not in NOT_MADE_FROM
                    and entry.get("namespace", self.namespace) == self.namespace
                ):  # fmt: skip
                    made.setdefault(cube_id, set()).add(entry["id"])
        return made
