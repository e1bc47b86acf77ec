"""A host-memory tier under the pins: the KV blocks of each program's context are copied
to host memory as its turns compute them, so a context whose pin gave way (or was never
made) is copied back when the program's next turn comes, instead of prefilled again.

Plug it in as a vLLM KV connector (no vLLM file is changed):

    LLM(..., kv_transfer_config={
        "kv_connector": "HostTierConnector", "kv_role": "kv_both",
        "kv_connector_module_path": "memos.llm.host_tier",
        "kv_connector_extra_config": {"capacity_blocks": 512}})

(``"capacity_blocks": "auto"`` takes up to a quarter of the memory free at start.)

vLLM makes two instances. The scheduler's decides, step by step, which blocks to copy
out after the forward pass (full blocks a turn with a pin hint has just computed), which
to copy in before it (blocks of the program's context that the device prefix cache no
longer has), and which contexts to forget (the least recently used, when the tier is
full; a turn whose tokens part from its program's saved context cuts it there). The
worker's holds the host copies, does the copying and reports how long a block's copy
takes, so that the TTL policy can weigh a device pin against copying the context back
(``miss_cost``). A context is matched block by block against the new turn's tokens, so
a copy is only ever used for the tokens it was computed from. A context no turn has
touched for ``idle_ttl_s`` is forgotten: a program that never returns leaks nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil
import torch
from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorBase_V1,
    KVConnectorMetadata,
    KVConnectorRole,
    KVConnectorWorkerMetadata,
)

from .pin_hint import request_hint

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.forward_context import ForwardContext
    from vllm.v1.core.kv_cache_manager import KVCacheBlocks
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.kv_cache_interface import KVCacheConfig
    from vllm.v1.outputs import KVConnectorOutput
    from vllm.v1.request import Request

DEFAULT_CAPACITY_BLOCKS = 512
AUTO_MEMORY_SHARE = 0.25  # "auto": this share of the memory free when the engine starts
DEFAULT_IDLE_TTL_S = 600.0
MAX_LOST_TRACKED = 4096  # programs whose contexts the capacity forced out, remembered
BlockCopy = tuple[str, int, int]  # program id, block's place in its context, KV block id


@dataclass
class HostTierMetadata(KVConnectorMetadata):
    """One step's work for the worker: forget, then copy in, run the model, copy out."""

    forget: list[tuple[str, int]] = field(default_factory=list)  # keep only the first n
    load: list[BlockCopy] = field(default_factory=list)
    save: list[BlockCopy] = field(default_factory=list)


@dataclass
class CopyTimes(KVConnectorWorkerMetadata):
    """What the worker's copies took in one step: blocks copied in or out, seconds."""

    blocks: int = 0
    seconds: float = 0.0

    def aggregate(self, other: KVConnectorWorkerMetadata) -> KVConnectorWorkerMetadata:
        assert isinstance(other, CopyTimes)
        return CopyTimes(self.blocks + other.blocks, self.seconds + other.seconds)


class HostTierConnector(KVConnectorBase_V1):
    def __init__(
        self, vllm_config: VllmConfig, role: KVConnectorRole, kv_cache_config: KVCacheConfig
    ) -> None:
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        self.block_size = vllm_config.cache_config.block_size
        extra = self._kv_transfer_config.get_from_extra_config
        self.block_bytes = sum(t.size for t in kv_cache_config.kv_cache_tensors) // max(
            1, kv_cache_config.num_blocks
        )
        self.capacity_blocks = capacity_blocks(
            extra("capacity_blocks", DEFAULT_CAPACITY_BLOCKS), self.block_bytes
        )
        self.idle_ttl_s = float(extra("idle_ttl_s", DEFAULT_IDLE_TTL_S))
        if not self.idle_ttl_s > 0:
            raise ValueError(f"idle_ttl_s must be positive, got {self.idle_ttl_s}")
        # scheduler side: each program's saved tokens (whole blocks), least recent first
        self._contexts: OrderedDict[str, list[int]] = OrderedDict()
        self._touched: dict[str, float] = {}  # program -> when a turn last used its context
        self._lost: OrderedDict[str, None] = OrderedDict()  # forced out by the capacity
        self._requests: dict[str, Request] = {}
        self._planned_loads: dict[str, tuple[int, int]] = {}  # request -> first block, count
        self._step = HostTierMetadata()
        self.loaded_tokens = 0
        self.peak_blocks = 0
        self.returns_found = 0  # a program's turn found its context here ...
        self.returns_lost = 0  # ... or found it forced out
        self.copied_blocks = 0
        self.copy_seconds = 0.0
        # worker side: the model's KV tensors, each program's host copies, copy times
        self._layers: list[torch.Tensor] = []
        self._host: dict[str, list[torch.Tensor]] = {}
        self._copy_times = CopyTimes()

    # scheduler side -----------------------------------------------------------------

    def on_new_request(self, request: Request) -> None:
        hint = request_hint(request)
        if hint is None:
            return  # a request of no program: nothing to save or copy back
        program = hint.program_id
        if not hint.ends:  # a program's last turn is copied back, never saved
            self._requests[request.request_id] = request
        saved = self._contexts.get(program)
        if saved:  # a new turn: keep only the blocks its tokens share with the context
            self.returns_found += 1
            self._touch(program)
            matching = self._matching_blocks(request, saved)
            if matching < len(saved) // self.block_size:
                self._forget(program, keep=matching)
        elif program in self._lost:
            del self._lost[program]
            self.returns_lost += 1

    def get_num_new_matched_tokens(
        self, request: Request, num_computed_tokens: int
    ) -> tuple[int, bool]:
        program = _program(request)
        saved = self._contexts.get(program) if program is not None else None
        if not saved:
            return 0, False
        # The last prompt token is always computed: it gives the next token's logits.
        usable = min(
            self._matching_blocks(request, saved), (request.num_tokens - 1) // self.block_size
        )
        first = num_computed_tokens // self.block_size
        if usable <= first:
            return 0, False
        self._planned_loads[request.request_id] = (first, usable - first)
        return (usable - first) * self.block_size, False

    def update_state_after_alloc(
        self, request: Request, blocks: KVCacheBlocks, num_external_tokens: int
    ) -> None:
        plan = self._planned_loads.pop(request.request_id, None)
        if plan is None or num_external_tokens == 0:
            return
        first, count = plan[0], num_external_tokens // self.block_size  # vLLM may take fewer
        program = _program(request)
        assert program is not None
        block_ids = blocks.get_block_ids()[0]
        self._step.load += [(program, i, block_ids[i]) for i in range(first, first + count)]
        self._touch(program)
        self.loaded_tokens += count * self.block_size

    def build_connector_meta(self, scheduler_output: SchedulerOutput) -> KVConnectorMetadata:
        for request_id, scheduled in scheduler_output.num_scheduled_tokens.items():
            request = self._requests.get(request_id)
            if request is not None:
                self._save_computed_blocks(request, request.num_computed_tokens + scheduled)
        self.forget_idle()
        step, self._step = self._step, HostTierMetadata()
        return step

    def update_connector_output(self, connector_output: KVConnectorOutput) -> None:
        times = connector_output.kv_connector_worker_meta
        if isinstance(times, CopyTimes):
            self.copied_blocks += times.blocks
            self.copy_seconds += times.seconds

    def request_finished(self, request: Request, block_ids: list[int]) -> tuple[bool, None]:
        # The context stays for the program's next turn, pinned or not, unless this turn
        # was its last.
        self._requests.pop(request.request_id, None)
        self._planned_loads.pop(request.request_id, None)
        hint = request_hint(request)
        if hint is not None and hint.ends:
            self._forget(hint.program_id, keep=0)
        return False, None

    def reset_cache(self) -> bool:
        for program in list(self._contexts):
            self._forget(program, keep=0)
        return True

    def tier_stats(self) -> dict[str, float]:
        return {
            "programs": len(self._contexts),
            "blocks": self._held_blocks(),
            "capacity_blocks": self.capacity_blocks,
            "block_bytes": self.block_bytes,
            "loaded_tokens": self.loaded_tokens,
            "peak_blocks": self.peak_blocks,
            "copied_blocks": self.copied_blocks,
            "copy_seconds": self.copy_seconds,
            "returns_found": self.returns_found,
            "returns_lost": self.returns_lost,
        }

    def context_blocks(self, program: str) -> int:
        """The full blocks of ``program``'s context this tier holds copies of."""
        return len(self._contexts.get(program, ())) // self.block_size

    def miss_cost(self, prefill_s_per_token: float | None) -> float:
        """What a returning turn pays for a context it finds only here, as a share of
        prefilling it again: the copy back where the tier kept the context (its measured
        copy time over the measured prefill time), a prefill where the capacity forced
        it out. 1.0 until both times are measured."""
        if not self.copied_blocks or not prefill_s_per_token:
            return 1.0
        copy = (self.copy_seconds / self.copied_blocks) / (prefill_s_per_token * self.block_size)
        kept = (self.returns_found + 1) / (self.returns_found + self.returns_lost + 1)
        return min(1.0, kept * min(1.0, copy) + (1 - kept))

    def _save_computed_blocks(self, request: Request, computed_after_step: int) -> None:
        """Plan copies of the full blocks this step completes for ``request`` (its
        program's saved context was cut to the blocks they share when the turn came; a
        shared prefix's, to the prefix)."""
        hint = request_hint(request)
        assert hint is not None and self._kv_cache_manager is not None
        program = hint.program_id
        saved = self._contexts.setdefault(program, [])
        self._touch(program)
        tokens = request.all_token_ids
        done = len(saved) // self.block_size
        full = min(computed_after_step, len(tokens)) // self.block_size
        if hint.shared:  # a shared prefix: the tokens after it are this request's own
            full = min(full, hint.prefix_tokens // self.block_size)
        if full <= done:
            return
        block_ids = self._kv_cache_manager.get_block_ids(request.request_id)[0]
        self._step.save += [(program, i, block_ids[i]) for i in range(done, full)]
        saved.extend(tokens[done * self.block_size : full * self.block_size])
        self._keep_under_capacity(spare={program} | {c[0] for c in self._step.load})
        self.peak_blocks = max(self.peak_blocks, self._held_blocks())

    def _touch(self, program: str) -> None:
        """A turn used the program's context: it becomes the most recently used."""
        self._contexts.move_to_end(program)
        self._touched[program] = time.monotonic()

    def _held_blocks(self) -> int:
        return sum(len(t) for t in self._contexts.values()) // self.block_size

    def _matching_blocks(self, request: Request, saved: list[int]) -> int:
        tokens, size = request.all_token_ids, self.block_size
        blocks = 0
        while (blocks + 1) * size <= min(len(saved), len(tokens)):
            start = blocks * size
            if list(tokens[start : start + size]) != saved[start : start + size]:
                break
            blocks += 1
        return blocks

    def _forget(self, program: str, keep: int) -> None:
        if program not in self._contexts:
            return
        if keep == 0:
            del self._contexts[program]
            del self._touched[program]
        else:
            del self._contexts[program][keep * self.block_size :]
        self._step.forget.append((program, keep))

    def _keep_under_capacity(self, spare: set[str]) -> None:
        """Forget the least recently used contexts until the tier holds no more than its
        capacity, sparing those this step copies to or from."""
        held = self._held_blocks()
        for program in list(self._contexts):
            if held <= self.capacity_blocks:
                break
            if program in spare:
                continue
            held -= len(self._contexts[program]) // self.block_size
            self._forget(program, keep=0)
            self._lost[program] = None
            if len(self._lost) > MAX_LOST_TRACKED:
                self._lost.popitem(last=False)

    def take_forgets(self) -> list[tuple[str, int]]:
        """The forgets the next step would send the worker, taken for an engine that runs
        no step to hand over itself (``drop_copies``), so that memory is freed on time."""
        forget, self._step.forget = self._step.forget, []
        return forget

    def forget_idle(self) -> None:
        """Forget contexts no turn has used for ``idle_ttl_s`` (least recent first); each
        step does, and the embedded engine between waits when it runs no steps."""
        cutoff = time.monotonic() - self.idle_ttl_s
        for program in list(self._contexts):
            if self._touched[program] > cutoff:
                break
            self._forget(program, keep=0)

    # worker side --------------------------------------------------------------------

    def bind_connector_metadata(self, connector_metadata: KVConnectorMetadata) -> None:
        """A step with nothing to forget or copy (every step that runs only requests of
        no program) binds nothing: vLLM's attention layers then skip this connector's
        per-layer hooks, and the step pays for no host tier."""
        assert isinstance(connector_metadata, HostTierMetadata)
        step = connector_metadata
        if step.forget or step.load or step.save:
            super().bind_connector_metadata(step)

    def register_kv_caches(self, kv_caches: dict[str, torch.Tensor]) -> None:
        self._layers = list(kv_caches.values())
        blocks = self._kv_cache_config.num_blocks
        if any(layer.shape[0] != blocks for layer in self._layers):
            raise NotImplementedError(
                "the host tier copies KV caches laid out block-first (the CPU backend's)"
            )

    def start_load_kv(self, forward_context: ForwardContext, **kwargs: Any) -> None:
        if not self.has_connector_metadata():
            return
        step = self._get_connector_metadata()
        assert isinstance(step, HostTierMetadata)
        self.drop_copies(step.forget)
        began = time.perf_counter()
        for program, index, block_id in step.load:
            copy = self._host[program][index]
            for layer, cache in enumerate(self._layers):
                cache[block_id].copy_(copy[layer])
        self._timed(len(step.load), began)

    def drop_copies(self, forget: list[tuple[str, int]]) -> None:
        """Free the host copies of forgotten contexts (each keeps its first n blocks)."""
        for program, keep in forget:
            if keep == 0:
                self._host.pop(program, None)
            else:
                del self._host.get(program, [])[keep:]

    def held_copies(self) -> int:
        """Blocks this worker holds in host memory."""
        return sum(len(copies) for copies in self._host.values())

    def wait_for_layer_load(self, layer_name: str) -> None:
        return None

    def save_kv_layer(self, layer_name: str, kv_layer: torch.Tensor, attn_metadata: Any,
                      **kwargs: Any) -> None:  # fmt: skip
        return None

    def wait_for_save(self) -> None:
        if not self.has_connector_metadata():
            return
        step = self._get_connector_metadata()
        assert isinstance(step, HostTierMetadata)
        began = time.perf_counter()
        for program, index, block_id in step.save:
            copies = self._host.setdefault(program, [])
            block = torch.stack([cache[block_id] for cache in self._layers])
            if index < len(copies):
                copies[index] = block
            else:
                assert index == len(copies), "blocks are saved in order"
                copies.append(block)
        self._timed(len(step.save), began)

    def build_connector_worker_meta(self) -> KVConnectorWorkerMetadata | None:
        times, self._copy_times = self._copy_times, CopyTimes()
        return times if times.blocks else None

    def _timed(self, blocks: int, began: float) -> None:
        if blocks:
            self._copy_times.blocks += blocks
            self._copy_times.seconds += time.perf_counter() - began


def capacity_blocks(configured: Any, block_bytes: int) -> int:
    """The tier's size in blocks: as configured, or for "auto" a share of the memory free
    now (the tier takes it only as contexts come)."""
    if configured == "auto":
        free = psutil.virtual_memory().available
        return max(1, int(free * AUTO_MEMORY_SHARE) // max(1, block_bytes))
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
        raise ValueError(
            f'capacity_blocks must be a positive whole number or "auto", got {configured!r}'
        )
    return configured


def _program(request: Request) -> str | None:
    hint = request_hint(request)
    return hint.program_id if hint is not None else None
