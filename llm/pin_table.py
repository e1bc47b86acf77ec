"""Which programs hold KV blocks between their turns, until when, and within what cap.

A pin owns one reference to each of its blocks (the reference the finished turn
held), so the block pool cannot evict them; releasing a pin hands those references
back. The table only does bookkeeping: the scheduler decides when to call it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Block(Protocol):
    block_id: int


@dataclass
class Pin:
    program_id: str
    blocks: list[Block]
    pinned_at: float
    expires_at: float
    rank: int = 0  # the program's place in first-come-first-served order: lower goes first
    # The tokens in the last block when it is only partly written (no prefix-cache hash
    # can find it; the next turn can still reuse it if its prompt carries these tokens).
    tail_tokens: tuple[int, ...] = ()

    @property
    def keep_order(self) -> tuple[float, ...]:
        """Programs' pins with the largest value here are given up first."""
        return (self.rank, self.expires_at)

    @property
    def least_recent_first(self) -> tuple[float, ...]:
        """Shared prefixes' order: the one pinned (refreshed by a use) longest ago first."""
        return (-self.pinned_at,)


@dataclass
class PinStats:
    pinned: int = 0  # pins made
    taken: int = 0  # released because the program's next turn was scheduled
    expired: int = 0  # released at the end of their time to live
    evicted: int = 0  # released early to keep the cap or to make room
    gave_way: int = 0  # blocks released one by one for a request that was short of them
    refused: int = 0  # never made: not one block would fit under the cap
    trimmed: int = 0  # pins that kept only a prefix of their blocks to fit under the cap
    replaced: int = 0  # superseded by a later turn of the same program
    released: int = 0  # dropped because their owner asked
    held_block_seconds: float = 0.0
    peak_blocks: int = 0
    blocks: int = 0  # held now
    programs: int = 0  # holding now

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class PinTable:
    """Pins keyed by program, under a cap on the distinct blocks they hold.

    When a new pin does not fit, pins give up blocks latest program first (under
    program-level FCFS its next turn runs last, so its context is the one re-prefilled
    at the least cost to the others), and among equals the one expected back furthest
    in the future. A pin gives up its context from the end: its first blocks are the
    prefix the next turn can still reuse, so a trimmed pin keeps most of its value per
    block held. The new pin itself keeps the longest prefix that then fits.
    """

    capacity_blocks: int
    release_blocks: Callable[[list[Block]], None]
    clock: Callable[[], float] = time.monotonic
    # pins with the largest value go first when blocks must be given up
    give_up_order: Callable[[Pin], tuple[float, ...]] = lambda pin: pin.keep_order
    stats: PinStats = field(default_factory=PinStats)
    _pins: dict[str, Pin] = field(default_factory=dict)
    _holders: Counter[int] = field(default_factory=Counter)

    def __contains__(self, program_id: str) -> bool:
        return program_id in self._pins

    def __len__(self) -> int:
        return len(self._pins)

    @property
    def held_blocks(self) -> int:
        return len(self._holders)

    def get(self, program_id: str) -> Pin | None:
        return self._pins.get(program_id)

    def pin(
        self, program_id: str, blocks: Sequence[Block], ttl_s: float, rank: int = 0,
        tail_tokens: Sequence[int] = (),
    ) -> bool:  # fmt: skip
        """Hold ``blocks`` (a context's blocks, first to last) for ``ttl_s``; given
        ``tail_tokens``, the last block is partial and holds those tokens. Under the
        cap, pins that come later in the giving-up order lose their tail blocks first,
        then this pin keeps the longest prefix that fits (a prefix is what the prefix
        cache can reuse); what is not kept is released at once. False when nothing is
        kept."""
        blocks = list(blocks)
        now = self.clock()
        if program_id in self._pins:
            self._release(program_id, now)
            self.stats.replaced += 1
        if not blocks or ttl_s <= 0:
            self.release_blocks(blocks)
            return False
        new = Pin(program_id, blocks, now, now + ttl_s, rank)
        # A partly written block saves less recomputation than a full one: it takes
        # only room that is free, never another program's blocks.
        claim = blocks[:-1] if tail_tokens else blocks
        while self.held_blocks + self._new_blocks(claim) > self.capacity_blocks:
            victim = max(self._pins.values(), key=self.give_up_order, default=None)
            if victim is None or self.give_up_order(victim) <= self.give_up_order(new):
                break
            excess = self.held_blocks + self._new_blocks(claim) - self.capacity_blocks
            if self._trim(victim, excess):
                self.stats.trimmed += 1
        kept = self._fitting_prefix(blocks)
        if len(kept) < len(blocks):
            self.release_blocks(blocks[len(kept) :])
        if not kept:
            self.stats.refused += 1
            return False
        if len(kept) < len(blocks):
            self.stats.trimmed += 1
        new.blocks = kept
        if len(kept) == len(blocks):
            new.tail_tokens = tuple(tail_tokens)
        self._pins[program_id] = new
        self._holders.update(b.block_id for b in kept)
        self.stats.pinned += 1
        self._refresh_stats()
        return True

    def take(self, program_id: str) -> bool:
        """The program's next turn now holds its own references: drop the pin's."""
        if program_id not in self._pins:
            return False
        self._release(program_id, self.clock())
        self.stats.taken += 1
        return True

    def release(self, program_id: str) -> bool:
        """Drop the pin (its owner asked): False when there is none."""
        if program_id not in self._pins:
            return False
        self._release(program_id, self.clock())
        self.stats.released += 1
        return True

    def candidates(
        self, exclude: Collection[str] = (), ranked_after: int | None = None
    ) -> list[Pin]:
        """The pins not in ``exclude`` and, given ``ranked_after``, of programs ranked
        after it."""
        return [
            p
            for p in self._pins.values()
            if p.program_id not in exclude and (ranked_after is None or p.rank > ranked_after)
        ]

    def give_up_block(self, exclude: Collection[str] = (), ranked_after: int | None = None) -> bool:
        """Release the last block of the pin that comes first in the giving-up order
        among ``candidates(exclude, ranked_after)`` (the pin goes with its last block).
        One block at a time: a request short of a block or two leaves the rest of the
        context pinned instead of exposing all of it to the next allocations."""
        victims = self.candidates(exclude, ranked_after)
        victim = max(victims, key=self.give_up_order, default=None)
        if victim is None:
            return False
        self._trim(victim, 1)
        self.stats.gave_way += 1
        return True

    def expire(self, keep: Collection[str] = ()) -> int:
        """Release every pin past its time to live, except those of the programs in
        ``keep`` (whose next turn has arrived and waits to run); returns how many."""
        now = self.clock()
        due = [
            p.program_id
            for p in self._pins.values()
            if p.expires_at <= now and p.program_id not in keep
        ]
        for program_id in due:
            self._release(program_id, now)
        self.stats.expired += len(due)
        return len(due)

    def release_all(self) -> None:
        now = self.clock()
        for program_id in list(self._pins):
            self._release(program_id, now)

    def _fitting_prefix(self, blocks: list[Block]) -> list[Block]:
        room = self.capacity_blocks - self.held_blocks
        seen: set[int] = set()
        for i, block in enumerate(blocks):
            if block.block_id not in self._holders and block.block_id not in seen:
                if room == 0:
                    return blocks[:i]
                room -= 1
                seen.add(block.block_id)
        return blocks

    def _trim(self, pin: Pin, excess: int) -> bool:
        """Release up to ``excess`` distinct blocks from the end of ``pin``; a pin left
        with no block is evicted. True when the pin is still there."""
        now = self.clock()
        held_before = self.held_blocks
        while pin.blocks and held_before - self.held_blocks < excess:
            self._let_go(pin, [pin.blocks.pop()], now)
            pin.tail_tokens = ()  # the partial block, if any, was the last
        if not pin.blocks:
            del self._pins[pin.program_id]
            self.stats.evicted += 1
        self._refresh_stats()
        return bool(pin.blocks)

    def _new_blocks(self, blocks: list[Block]) -> int:
        return len({b.block_id for b in blocks if b.block_id not in self._holders})

    def _release(self, program_id: str, now: float) -> None:
        pin = self._pins.pop(program_id)
        self._let_go(pin, pin.blocks, now)
        self._refresh_stats()

    def _let_go(self, pin: Pin, blocks: list[Block], now: float) -> None:
        """Hand back ``pin``'s reference to each of ``blocks`` (the caller has taken them
        out of the pin)."""
        self._holders.subtract(b.block_id for b in blocks)
        self._holders += Counter()  # drop ids no pin holds any more
        self.stats.held_block_seconds += len(blocks) * (now - pin.pinned_at)
        self.release_blocks(blocks)

    def _refresh_stats(self) -> None:
        self.stats.blocks = self.held_blocks
        self.stats.programs = len(self._pins)
        self.stats.peak_blocks = max(self.stats.peak_blocks, self.stats.blocks)
