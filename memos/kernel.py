"""The kernel's services over one memory store and (optionally) one chat model: the
MemScheduler, activation memory, parametric memory and memory-augmented chat. The
server builds one and routes to it; the services share the store, the model and the
scheduler's policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from .activation import ActivationMemory
from .composition import Compositions
from .erasure import ErasureReport, erase_memory
from .idempotency import IdempotencyKeys
from .memory_chat import MemoryChat
from .parametric.service import ParametricMemory
from .provenance import Origin
from .scheduler import MemScheduler, SchedulerPolicy

if TYPE_CHECKING:
    from memos.llm.chat import ChatService

    from .core import MemOS


class Kernel:
    def __init__(self, memos: MemOS, chat: ChatService | None = None) -> None:
        self.memos = memos
        self.chat = chat
        settings = memos.settings
        self.policy = SchedulerPolicy.from_file(
            settings.config_path, float(settings.maintenance_interval_s)
        )
        self.activations = ActivationMemory(memos, chat, self.policy)
        self.idempotency = IdempotencyKeys(memos.db)
        self.parametric = ParametricMemory(
            memos, getattr(chat.backend, "unload_adapter", None) if chat is not None else None
        )
        self.compositions = Compositions(memos)
        self.scheduler = MemScheduler(
            memos, self.policy, self.activations, self._upkeep(),
            run_min_interval_s=settings.scheduler_run_min_interval_s,
            local_upkeep=self._local_upkeep(),
        )  # fmt: skip
        self.memory_chat = (
            MemoryChat(
                memos, chat, self.activations, self.scheduler.note_used, self.parametric,
                self.compositions,
            )
            if chat is not None
            else None
        )  # fmt: skip
        self._snapshot_at = time.monotonic()

    async def erase(self, namespace: str, memory_id: str, origin: Origin) -> ErasureReport:
        """Erase a memory and what was made from it (``memos.erasure``), then let go of
        what the engine holds of them: the activation blocks' KV, the adapters."""
        erased = await anyio.to_thread.run_sync(
            erase_memory, self.memos, namespace, memory_id, origin
        )
        for activation in erased.activations:
            await self.activations.release(activation)
        for adapter in erased.adapters:
            await anyio.to_thread.run_sync(self.parametric.let_go, adapter)
        return erased.report

    def save_tool_durations(self) -> None:
        """Keep the tool durations chat learned (the TTL policy's input) across restarts."""
        if self.chat is not None:
            self.memos.tool_history.save_from(self.chat.registry.predictor)

    def _upkeep(self) -> list[tuple[str, Callable[[], Any]]]:
        """The service's upkeep: one replica runs it (the scheduler pass's lease holder)."""
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("idempotency_keys", self.idempotency.forget_expired),
        ]
        if self.memos.db.feeds_changes:
            jobs.append(("change_feed", self.memos.prune_changes))
        return jobs

    def _local_upkeep(self) -> list[tuple[str, Callable[[], Any]]]:
        """This process's own upkeep: every replica runs it."""
        jobs: list[tuple[str, Callable[[], Any]]] = [("snapshots", self._snapshot_when_due)]
        if self.chat is not None:
            jobs.insert(0, ("tool_durations", self.save_tool_durations))
        return jobs

    def _snapshot_when_due(self) -> int:
        """Snapshot the changed indexes once ``snapshot_interval_s`` has passed."""
        if time.monotonic() - self._snapshot_at < self.memos.settings.snapshot_interval_s:
            return 0
        self._snapshot_at = time.monotonic()
        return self.memos.indexes.save_changed()
