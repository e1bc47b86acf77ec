"""The MemScheduler's rules: each moves memories one step along their lifecycle (or
between kinds) and says how many it moved. A rule works on one namespace when given
one, on every namespace otherwise.

- ``expire``: memories and cached answers past their TTL are expired.
- ``purge``: tombstones past the grace period lose their content for good.
- ``activate``: generated or archived memories used in an answer, or read often since
  they last changed, become activated.
- ``archive``: served memories neither read nor changed for ``archive_after_s`` leave
  default search (a search naming ``archived`` still finds them).
- ``merge`` (opt-in by category or source): served memories that are the same record
  but for their wording (one owner, session, category, tag set and metadata) and say
  nearly the same are fused into one, derived from each; the sources become merged.
  Records (added with dedupe off) are never merged; ``unmerge`` undoes a merge.
- ``activation``: an owner's hot (activated) memories become an activation memory kept
  in the engine's KV cache; it is rebuilt when its sources change and demoted when cold.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from memos.activation import Activation, ActivationMemory
from memos.activation.service import SELECTED_HOT
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import LIVE_STATES, MemCube, Operation, State, utcnow
from memos.memcube.repository import CubeRepository

from .merge import duplicate_groups, fuse_duplicates
from .policy import SchedulerPolicy
from .transitions import move, rule_origin

if TYPE_CHECKING:
    from memos.core import MemOS

log = logging.getLogger(__name__)

BATCH = 1_000  # memories a rule looks at in one pass, at most
MERGE_BATCH = 200
ACTIVATION_WARM_PER_PASS = 8  # blocks (re)computed in one pass, at most


@dataclass
class UsedMemories:
    """The memories answers used since the activate rule last ran, per namespace."""

    _ids: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, namespace: str, ids: list[str]) -> None:
        with self._lock:
            self._ids.setdefault(namespace, set()).update(ids)

    def take(self, namespace: str | None) -> dict[str, list[str]]:
        with self._lock:
            names = list(self._ids) if namespace is None else [namespace]
            return {ns: sorted(self._ids.pop(ns, ())) for ns in names if ns in self._ids}


def _by_namespace(cubes: list[MemCube]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cube in cubes:
        out.setdefault(cube.namespace, []).append(cube.id)
    return out


class ExpireRule:
    name = "expire"

    def __init__(self, memos: MemOS) -> None:
        self.memos = memos

    def run(self, namespace: str | None) -> int:
        expired = self.memos.expire_due(namespace=namespace)
        return expired + (self.memos.cache.expire_due() if namespace is None else 0)


class PurgeRule:
    name = "purge"

    def __init__(self, memos: MemOS) -> None:
        self.memos = memos

    def run(self, namespace: str | None) -> int:
        return self.memos.purge_deleted() if namespace is None else 0  # a service-wide job


SOURCES = (State.GENERATED.value, State.ARCHIVED.value)  # what activate moves from


class ActivateRule:
    name = "activate"

    def __init__(self, memos: MemOS, policy: SchedulerPolicy, used: UsedMemories) -> None:
        self.memos, self.policy, self.used = memos, policy, used

    def run(self, namespace: str | None) -> int:
        return self.run_used(namespace) + self._run_accessed(namespace)

    def run_used(self, namespace: str | None) -> int:
        """The memories answers on this process used (each process notes its own)."""
        moved = 0
        for ns, ids in self.used.take(namespace).items():
            origin = rule_origin(self.name, "used_in_answer")
            moved += len(move(self.memos, ns, ids, SOURCES, State.ACTIVATED.value,
                              Operation.ACTIVATE, origin))  # fmt: skip
        return moved

    def _run_accessed(self, namespace: str | None) -> int:
        now = utcnow()
        read_since = now - timedelta(seconds=self.policy.hot_window_s)
        with self.memos.db.reader() as session:
            due = CubeRepository(session).due_to_activate(
                namespace, now, self.policy.activate_after_accesses, read_since, BATCH
            )
        moved = 0
        for ns, ids in _by_namespace(due).items():
            origin = rule_origin(self.name, "accessed_often")
            moved += len(move(self.memos, ns, ids, SOURCES, State.ACTIVATED.value,
                              Operation.ACTIVATE, origin))  # fmt: skip
        return moved


class ArchiveRule:
    name = "archive"

    def __init__(self, memos: MemOS, policy: SchedulerPolicy) -> None:
        self.memos, self.policy = memos, policy

    def run(self, namespace: str | None) -> int:
        now = utcnow()
        cold_before = now - timedelta(seconds=self.policy.archive_after_s)
        with self.memos.db.reader() as session:
            due = CubeRepository(session).due_to_archive(namespace, now, cold_before, BATCH)
        moved = 0
        for ns, ids in _by_namespace(due).items():
            moved += len(move(self.memos, ns, ids, LIVE_STATES, State.ARCHIVED.value,
                              Operation.ARCHIVE, rule_origin(self.name, "cold")))  # fmt: skip
        return moved


class MergeRule:
    """Looks at the memories changed since its last pass (all of them on the first)."""

    name = "merge"

    def __init__(self, memos: MemOS, policy: SchedulerPolicy) -> None:
        self.memos, self.policy = memos, policy
        self._after: dict[str | None, tuple[datetime, str]] = {}

    def run(self, namespace: str | None) -> int:
        if not (self.policy.merge_categories or self.policy.merge_sources):
            return 0  # the rule is opt-in
        with self.memos.db.reader() as session:
            changed = CubeRepository(session).changed_since(
                namespace, utcnow(), self._after.get(namespace), MERGE_BATCH
            )
        if not changed:
            return 0
        self._after[namespace] = (changed[-1].updated_at, changed[-1].id)
        fused = 0
        for ns in sorted({c.namespace for c in changed}):
            cubes = [c for c in changed if c.namespace == ns]
            for group in duplicate_groups(self.memos, ns, cubes, self.policy):
                if fuse_duplicates(self.memos, ns, group, rule_origin(self.name, "near_duplicate")):
                    fused += len(group)
        return fused


class ActivationRule:
    """Demotes cold activations, rebuilds stale ones and promotes hot owners; the blocks
    it writes are warmed in the engine. Needs a ready language model."""

    name = "activation"

    def __init__(self, memos: MemOS, policy: SchedulerPolicy, activations: ActivationMemory):
        self.memos, self.policy, self.activations = memos, policy, activations

    async def run(self, namespace: str | None) -> int:
        chat = self.activations.chat
        if chat is None or not chat.ready:
            return 0
        changed = 0
        now = utcnow()
        cold_before = now - timedelta(seconds=self.policy.activation_cold_after_s)
        live = await anyio.to_thread.run_sync(self.activations.served, namespace)
        warm = []
        for activation in live:
            memory = activation.memory
            last_used = memory.last_accessed_at or memory.updated_at
            if last_used < cold_before:
                demoted = await anyio.to_thread.run_sync(
                    self.activations.demote, memory.namespace, memory.id,
                    rule_origin(self.name, "cold"),
                )  # fmt: skip
                if demoted:
                    await self.activations.release(activation)
                    changed += 1
                continue
            wanted = await anyio.to_thread.run_sync(self.activations.stale, activation)
            if wanted is None:
                continue
            if await anyio.to_thread.run_sync(
                self.activations.rebuild, activation, wanted, rule_origin(self.name, "rebuild")
            ):
                warm.append((memory.namespace, memory.id))
            else:
                await self.activations.release(activation)
            changed += 1
        owners = {(a.memory.namespace, a.memory.user_id, a.memory.agent_id) for a in live}
        with self.memos.db.reader() as session:
            hot = CubeRepository(session).hot_scopes(
                namespace, now, now - timedelta(seconds=self.policy.hot_window_s),
                self.policy.activation_min_memories,
            )  # fmt: skip
        for ns, user_id, agent_id in hot:
            if (ns, user_id, agent_id) in owners or (user_id is None and agent_id is None):
                continue
            activation, _ = await anyio.to_thread.run_sync(self._promote, ns, user_id, agent_id)
            warm.append((ns, activation.id))
            changed += 1
        for ns, activation_id in warm[:ACTIVATION_WARM_PER_PASS]:
            activation = await anyio.to_thread.run_sync(self.activations.get, ns, activation_id)
            await self.activations.warm(activation)
        return changed

    def _promote(
        self, namespace: str, user_id: str | None, agent_id: str | None
    ) -> tuple[Activation, bool]:
        hot = MemoryFilter(states=(State.ACTIVATED.value,))
        return self.activations.build(
            namespace, user_id=user_id, agent_id=agent_id, filters=hot,
            origin=rule_origin(self.name, "hot"), selection=SELECTED_HOT,
        )  # fmt: skip
