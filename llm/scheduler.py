"""vLLM's v1 scheduler with program pins: a finished turn's KV blocks outlive the
request until the program's next turn is scheduled or the pin's time to live ends.

Plug it in without touching vLLM's files:

    LLM(..., scheduler_cls="memos.llm.scheduler.PinningScheduler")
    vllm serve MODEL --scheduler-cls memos.llm.scheduler.PinningScheduler

(``AsyncPinningScheduler`` when async scheduling is on.) A turn asks for a pin with
``SamplingParams(extra_args=PinHint(program_id, ttl_s).as_extra_args())``. The share of
the KV cache pins may hold comes from ``MEMOS_PIN_CAP`` (default 0.5), read in the
engine process. Pins are a bet on the program coming back; they give their blocks up
to work with a surer claim: a running request that would otherwise be preempted, the
turn of a program that arrived earlier, or a step in which nothing could run.

Shared prefixes (activation memory; a hint with ``prefix_tokens``) are kept in a table
of their own, under ``MEMOS_ACTIVATION_CAP`` (default 0.25): every request carrying the
prefix's id reuses the blocks and refreshes the pin, none takes it. They give way after
programs' pins, least recently used first.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from vllm.v1.core.kv_cache_utils import KVCacheBlock
from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request, RequestStatus

from .pin_hint import PinHint, request_hint
from .pin_table import Pin, PinTable

log = logging.getLogger(__name__)

DEFAULT_PIN_CAP = 0.5
PIN_CAP_ENV = "MEMOS_PIN_CAP"
DEFAULT_SHARED_CAP = 0.25
SHARED_CAP_ENV = "MEMOS_ACTIVATION_CAP"
RETURNING_PRIORITY = -(2**31)  # vLLM's priority policy runs the lowest value first
_PINNABLE = (RequestStatus.FINISHED_STOPPED, RequestStatus.FINISHED_LENGTH_CAPPED)


def pin_cap_from_env(name: str = PIN_CAP_ENV, default: float = DEFAULT_PIN_CAP) -> float:
    raw = os.environ.get(name, "")
    try:
        cap = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a fraction, got {raw!r}") from None
    if not 0.0 <= cap <= 0.95:
        raise ValueError(f"{name} must be between 0 and 0.95, got {cap}")
    return cap


class _Pinning:
    """The pinning behaviour, mixed into either of vLLM's schedulers."""

    pins: PinTable

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        total = self.kv_cache_manager.block_pool.num_gpu_blocks
        self.pin_cap = pin_cap_from_env()
        self.pins = PinTable(int(total * self.pin_cap), self._return_blocks)
        self.shared_cap = pin_cap_from_env(SHARED_CAP_ENV, DEFAULT_SHARED_CAP)
        if self.pin_cap + self.shared_cap > 0.95:
            raise ValueError(
                f"{PIN_CAP_ENV} and {SHARED_CAP_ENV} together may hold at most 0.95 of the "
                f"cache, got {self.pin_cap} + {self.shared_cap}"
            )
        self.shared = PinTable(
            int(total * self.shared_cap), self._return_blocks,
            give_up_order=lambda pin: pin.least_recent_first,
        )  # fmt: skip
        self._ranks: dict[str, int] = {}  # request id -> the priority its caller gave
        self._allocate_slots = self.kv_cache_manager.allocate_slots
        self.kv_cache_manager.allocate_slots = self._allocate_or_give_way
        log.info(
            "pinning scheduler: pins may hold %d and shared prefixes %d of %d KV blocks",
            self.pins.capacity_blocks, self.shared.capacity_blocks, total,
        )  # fmt: skip

    def add_request(self, request: Request) -> None:
        hint = request_hint(request)
        if hint is not None:
            self._ranks[request.request_id] = request.priority
        if hint is not None and not hint.shared and hint.program_id in self.pins:
            # The program is back while its context is pinned: run it before anything
            # else waiting, so that the pin is used rather than held.
            request.priority = RETURNING_PRIORITY
        super().add_request(request)

    def schedule(self, *args: Any, **kwargs: Any) -> SchedulerOutput:
        if len(self.pins):
            self.pins.expire(keep=self._waiting_programs())
        if len(self.shared):
            self.shared.expire()
        output = super().schedule(*args, **kwargs)
        for new in output.scheduled_new_reqs:
            request = self.requests.get(new.req_id)
            hint = request_hint(request) if request is not None else None
            if hint is not None and not hint.shared:
                # Scheduling touched the blocks it found cached, so the new turn
                # holds its own references to the pinned prefix by now.
                self.pins.take(hint.program_id)
        if output.total_num_scheduled_tokens == 0 and self.waiting and self._any_pins():
            self._make_room()
        return output

    def _any_pins(self) -> bool:
        return bool(len(self.pins) or len(self.shared))

    def _give_up_block(self, keep: set[str], rank: int | None = None) -> bool:
        """One block from a program's pin (see ``PinTable.give_up_block``), else from the
        least recently used shared prefix (a cache: any claim outranks it)."""
        return self.pins.give_up_block(exclude=keep, ranked_after=rank) or (
            self.shared.give_up_block(exclude=keep)
        )

    def _allocate_or_give_way(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        """vLLM's ``allocate_slots``, with pins giving up blocks before a request that
        has a claim on them goes without: a running request (vLLM would preempt one,
        losing computed work for certain, where a pin is a bet) or the turn of a program
        that came first (program-level FCFS), if what those pins alone hold would let it
        in. The request's own pin stays: its blocks are the prefix this allocation
        reuses."""
        blocks = self._allocate_slots(request, *args, **kwargs)
        if blocks is not None or not self._any_pins():
            return blocks
        needed, own = self._blocks_needed(request)
        keep = {own.program_id} if own is not None else set()
        rank = None
        if request.status != RequestStatus.RUNNING:
            rank = self._ranks.get(request.request_id, request.priority)
            # Giving blocks up only ever adds free ones, so one check will do.
            pins = [*self.pins.candidates(keep, rank), *self.shared.candidates(keep)]
            only_pinned = {b.block_id for pin in pins for b in pin.blocks if b.ref_cnt == 1}
            if self._num_free_blocks() + len(only_pinned) < needed:
                return None  # giving way would lose pins and still not let it in
        while blocks is None and self._give_up_block(keep, rank):
            blocks = self._allocate_slots(request, *args, **kwargs)
        return blocks

    def _blocks_needed(self, request: Request) -> tuple[int, Pin | None]:
        """An upper bound on the blocks ``request`` must allocate (its whole context and
        a token, less its program's pinned prefix; other prefix hits only lower it),
        and that pin."""
        hint = request_hint(request)
        own = None
        if hint is not None:
            own = (self.shared if hint.shared else self.pins).get(hint.program_id)
        needed = -(-(request.num_tokens + 1) // self.block_size)
        if own is None:
            return needed, own
        # A pinned partial block is copied before the turn writes into it.
        return needed - len(own.blocks) + (1 if own.tail_tokens else 0), own

    def _num_free_blocks(self) -> int:
        return self.kv_cache_manager.block_pool.get_num_free_blocks()

    def _waiting_programs(self) -> set[str]:
        """Programs whose next turn has arrived: their pins outlive the TTL until it runs."""
        programs = set()
        for request in self.waiting:
            hint = request_hint(request)
            if hint is not None:
                programs.add(hint.program_id)
        return programs

    def _make_room(self) -> None:
        """Nothing could run this step while pins hold blocks the first waiting request
        needs: pins give up blocks (see ``PinTable.give_up_block``) until it fits (it is
        scheduled on the next step). Pins never stall work that is ready to run."""
        needed, own = self._blocks_needed(self.waiting.peek_request())
        keep = {own.program_id} if own is not None else set()
        while self._num_free_blocks() < needed and self._give_up_block(keep):
            pass

    def _free_request_blocks(self, request: Request) -> None:
        rank = self._ranks.pop(request.request_id, request.priority)
        hint = request_hint(request)
        if hint is not None and hint.shared:
            self._keep_shared_prefix(request, hint)
            return
        if hint is None or hint.ttl_s <= 0 or request.status not in _PINNABLE:
            super()._free_request_blocks(request)
            return
        blocks = self.kv_cache_manager.pop_blocks_for_free(request)
        # The prefix cache finds full blocks by hash; the partly written block after
        # them is kept with its tokens, for _get_local_prefix_cache_hit to match.
        reusable = [b for b in blocks if b.block_hash is not None and not b.is_null]
        written = min(request.num_computed_tokens, request.num_tokens - 1)
        start = len(reusable) * self.block_size
        tail: list[int] = []
        if start < written < start + self.block_size and len(blocks) > len(reusable):
            reusable.append(blocks[len(reusable)])
            tail = list(request.all_token_ids[start:written])
        kept = {id(b) for b in reusable}
        self._return_blocks([b for b in blocks if id(b) not in kept])
        self.pins.pin(hint.program_id, reusable, hint.ttl_s, rank, tail)

    def _keep_shared_prefix(self, request: Request, hint: PinHint) -> None:
        """Pin the full blocks of the request's first ``prefix_tokens`` tokens under the
        prefix's id (refreshing the pin another request made); a TTL of 0 drops it."""
        if hint.ttl_s <= 0 or request.status not in _PINNABLE:
            if hint.ttl_s <= 0:
                self.shared.release(hint.program_id)
            super()._free_request_blocks(request)
            return
        blocks = self.kv_cache_manager.pop_blocks_for_free(request)
        full = min(hint.prefix_tokens, request.num_computed_tokens) // self.block_size
        prefix = [b for b in blocks[:full] if b.block_hash is not None and not b.is_null]
        kept = {id(b) for b in prefix}
        self._return_blocks([b for b in blocks if id(b) not in kept])
        self.shared.pin(hint.program_id, prefix, hint.ttl_s)

    def _get_local_prefix_cache_hit(self, request: Request) -> Any:
        """vLLM's prefix-cache lookup, extended into the program's pinned partial block
        when the prompt carries the tokens it holds: the next turn then recomputes none
        of the last context (vLLM copies the block before writing into it), where full
        blocks alone would make it recompute up to a block's worth."""
        hit = super()._get_local_prefix_cache_hit(request)
        blocks, num_local = hit[0], hit[1]
        hint = request_hint(request)
        pin = self.pins.get(hint.program_id) if hint is not None and not hint.shared else None
        if (
            pin is None
            or not pin.tail_tokens
            or len(blocks.blocks) != 1  # one KV cache group: a full-attention model
            or not self.kv_cache_manager.prefix_cache_lookup_enabled(request)
        ):
            return hit
        full = pin.blocks[:-1]
        found = list(blocks.blocks[0])
        if num_local != len(full) * self.block_size or (full and found[-1] is not full[-1]):
            return hit  # the hit is not exactly this pin's full blocks
        start = num_local
        n = min(len(pin.tail_tokens), request.num_tokens - 1 - start)
        if n <= 0 or list(request.all_token_ids[start : start + n]) != list(pin.tail_tokens[:n]):
            return hit
        extended = self.kv_cache_manager.create_kv_cache_blocks(([*found, pin.blocks[-1]],))
        return (extended, start + n, *hit[2:])

    def _return_blocks(self, blocks: list[KVCacheBlock]) -> None:
        """Give blocks back to the pool, tail first, after any step that may still
        write them has run."""
        if not blocks:
            return
        if self.defer_block_free:
            self.deferred_frees.append((self.sched_step_seq, list(blocks)))
        else:
            self.kv_cache_manager.block_pool.free_blocks(reversed(blocks))

    def reset_prefix_cache(self, *args: Any, **kwargs: Any) -> bool:
        self.pins.release_all()
        self.shared.release_all()
        self._drain_deferred_frees()
        return super().reset_prefix_cache(*args, **kwargs)

    def shutdown(self) -> None:
        self.pins.release_all()
        self.shared.release_all()
        super().shutdown()

    def pin_stats(self) -> dict[str, float]:
        return {
            **self.pins.stats.as_dict(),
            "capacity_blocks": self.pins.capacity_blocks,
            "total_blocks": self.kv_cache_manager.block_pool.num_gpu_blocks,
            **{f"shared_{k}": v for k, v in self.shared.stats.as_dict().items()},
            "shared_capacity_blocks": self.shared.capacity_blocks,
        }

    def shared_blocks(self, prefix_id: str) -> int:
        """The blocks a shared prefix holds pinned now (0 when it holds none)."""
        pin = self.shared.get(prefix_id)
        return len(pin.blocks) if pin is not None else 0


class PinningScheduler(_Pinning, Scheduler):
    pass


class AsyncPinningScheduler(_Pinning, AsyncScheduler):
    pass
