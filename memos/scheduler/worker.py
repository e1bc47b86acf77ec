"""The MemScheduler: one background worker that runs the lifecycle rules (rules.py) in
turn, every ``interval_s``, and the service's upkeep beside them (the tool durations
chat learned, index snapshots). A rule that fails is logged and counted; the others
still run, and it is tried again the next pass."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from memos.activation import ActivationMemory
from memos.errors import TooManyError

from .policy import SchedulerPolicy
from .rules import (
    ActivateRule,
    ActivationRule,
    ArchiveRule,
    ExpireRule,
    MergeRule,
    PurgeRule,
    UsedMemories,
)

if TYPE_CHECKING:
    from memos.core import MemOS

log = logging.getLogger(__name__)

PASS_LEASE = "scheduler"  # the service-wide pass's lease; "scheduler:<ns>" for asked ones
MIN_PASS_LEASE_S = 5.0  # a pass's lease lasts three intervals, at least this long
ASKED_LEASE_S = 300.0  # an asked pass's lease, released when it ends (a bound if it dies)


class Rule(Protocol):
    name: str

    def run(self, namespace: str | None) -> Any:
        """How many memories it moved (a coroutine for rules that await the engine)."""


@dataclass
class RuleCounters:
    runs: int = 0
    moved: int = 0
    failures: int = 0
    seconds: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True)
class PassReport:
    moved: dict[str, int]  # per rule that ran
    failed: dict[str, str]  # per rule that failed: why


class MemScheduler:
    def __init__(
        self, memos: MemOS, policy: SchedulerPolicy, activations: ActivationMemory,
        upkeep: list[tuple[str, Callable[[], Any]]] | None = None,
        run_min_interval_s: float = 0.0,
        local_upkeep: list[tuple[str, Callable[[], Any]]] | None = None,
    ) -> None:  # fmt: skip
        self.memos = memos
        self.policy = policy
        self.run_min_interval_s = run_min_interval_s  # between passes a namespace asks for
        self.used = UsedMemories()
        every: dict[str, Rule] = {
            "expire": ExpireRule(memos),
            "purge": PurgeRule(memos),
            "activate": ActivateRule(memos, policy, self.used),
            "archive": ArchiveRule(memos, policy),
            "merge": MergeRule(memos, policy),
            "activation": ActivationRule(memos, policy, activations),
        }
        self.rules: list[Rule] = [every[name] for name in policy.rules]
        self._activate = every["activate"]
        self.upkeep = upkeep or []  # service-wide jobs run after the rules: (name, job)
        self.local_upkeep = local_upkeep or []  # this process's own (its index snapshots)
        self.counters = {
            name: RuleCounters() for name in [
                *(r.name for r in self.rules), *(n for n, _ in self.upkeep),
                *(n for n, _ in self.local_upkeep),
            ]
        }  # fmt: skip
        self.passes = 0
        self._lock = asyncio.Lock()
        self._asked: dict[str, asyncio.Future[PassReport]] = {}  # passes callers wait for
        self._asked_at: dict[str, float] = {}
        self.last_asked: dict[str, PassReport] = {}  # each namespace's last asked pass

    async def run_asked(self, namespace: str) -> PassReport:
        """A pass over ``namespace`` that a caller asked for. While one runs, it answers
        every caller that asks (no second pass is queued); a namespace starts one at most
        every ``run_min_interval_s`` (TooManyError after that)."""
        running = self._asked.get(namespace)
        if running is None:
            since = time.monotonic() - self._asked_at.get(namespace, -math.inf)
            if since < self.run_min_interval_s:
                raise TooManyError(
                    f"namespace {namespace!r} started a scheduler pass {since:.2f} s ago; one "
                    f"may start every {self.run_min_interval_s:g} s "
                    "(MEMOS_SCHEDULER_RUN_MIN_INTERVAL_S)",
                    retry_after_s=max(1, math.ceil(self.run_min_interval_s - since)),
                )
            self._asked_at[namespace] = time.monotonic()
            running = asyncio.ensure_future(self._run_leased(namespace))
            self._asked[namespace] = running
            running.add_done_callback(lambda done: self._asked_done(namespace, done))
        return await asyncio.shield(running)

    async def _run_leased(self, namespace: str) -> PassReport:
        """A pass over ``namespace`` that no other replica runs at the same time."""
        name = f"{PASS_LEASE}:{namespace}"
        held = await anyio.to_thread.run_sync(self.memos.leases.hold, name, ASKED_LEASE_S)
        if not held:
            raise TooManyError(
                f"a scheduler pass over namespace {namespace!r} is running on another replica",
                retry_after_s=5,
            )
        try:
            return await self.run_pass(namespace)
        finally:
            await anyio.to_thread.run_sync(self.memos.leases.release, name)

    def _asked_done(self, namespace: str, done: asyncio.Future[PassReport]) -> None:
        self._asked.pop(namespace, None)
        if not done.cancelled() and done.exception() is None:
            self.last_asked[namespace] = done.result()

    def note_used(self, namespace: str, memory_ids: list[str]) -> None:
        """Memories an answer used: the activate rule activates them on its next pass."""
        self.used.add(namespace, memory_ids)

    async def run_pass(self, namespace: str | None = None) -> PassReport:
        """Run every rule once (on one namespace when given; the upkeep only on a
        service-wide pass). Passes do not overlap."""
        async with self._lock:
            moved: dict[str, int] = {}
            failed: dict[str, str] = {}
            for rule in self.rules:
                outcome = await self._run(rule.name, rule.run, namespace)
                _record(rule.name, outcome, moved, failed)
            if namespace is None:
                for name, job in [*self.upkeep, *self.local_upkeep]:
                    _record(name, await self._run(name, job), moved, failed)
            self.passes += 1
            return PassReport(moved, failed)

    async def run_local(self) -> PassReport:
        """What a replica that does not hold the pass's lease still does: activate the
        memories its own answers used, and its own upkeep (its index snapshots)."""
        async with self._lock:
            moved: dict[str, int] = {}
            failed: dict[str, str] = {}
            if self._activate in self.rules:
                _record("activate", await self._run("activate", self._activate.run_used, None),
                        moved, failed)  # fmt: skip
            for name, job in self.local_upkeep:
                _record(name, await self._run(name, job), moved, failed)
            return PassReport(moved, failed)

    async def run_forever(self) -> None:
        """A service-wide pass every ``interval_s``, run by the one replica that holds
        the pass's lease (renewed each pass; taken over when its holder stops)."""
        ttl_s = max(3 * self.policy.interval_s, MIN_PASS_LEASE_S)
        while True:
            await asyncio.sleep(self.policy.interval_s)
            try:
                held = await anyio.to_thread.run_sync(self.memos.leases.hold, PASS_LEASE, ttl_s)
            except Exception:
                log.exception("the scheduler's lease could not be read; this pass is skipped")
                continue
            report = await (self.run_pass() if held else self.run_local())
            if any(report.moved.values()):
                log.info("scheduler pass: %s", report.moved)

    async def _run(self, name: str, job: Callable[..., Any], *args: Any) -> int | BaseException:
        """Run one rule or job (a coroutine function on the loop, any other in a worker
        thread) and count the outcome; a failure is returned, not raised."""
        counters = self.counters[name]
        began = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(job):
                result = await job(*args)
            else:
                result = await anyio.to_thread.run_sync(job, *args)
        except Exception as exc:
            counters.failures += 1
            counters.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("scheduler rule %r failed; the others go on", name)
            return exc
        finally:
            counters.runs += 1
            counters.seconds += time.perf_counter() - began
        moved = int(result or 0)
        counters.moved += moved
        return moved


def _record(name: str, outcome: int | BaseException, moved: dict, failed: dict) -> None:
    if isinstance(outcome, BaseException):
        failed[name] = f"{type(outcome).__name__}: {outcome}"[:500]
    else:
        moved[name] = outcome
