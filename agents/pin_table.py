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


@dataclass
class PinStats:
    pinned: int = 0  # pins made
    taken: int = 0  # released because the program's next turn was scheduled
    expired: int = 0  # released at the end of their time to live
    evicted: int = 0  # released early to keep the cap
    refused: int = 0  # never made: they would not fit under the cap
    replaced: int = 0  # superseded by a later turn of the same program
    held_block_seconds: float = 0.0
    peak_blocks: int = 0
    blocks: int = 0  # held now
    programs: int = 0  # holding now

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class PinTable:
    """Pins keyed by program, under a cap on the distinct blocks they hold.

    When a new pin does not fit, the pins expected back furthest in the future go
    first (the program whose next step is furthest away loses least by waiting),
    and the new pin itself is refused if it is that one.
    """

    capacity_blocks: int
    release_blocks: Callable[[list[Block]], None]
    clock: Callable[[], float] = time.monotonic
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

    def pin(self, program_id: str, blocks: Sequence[Block], ttl_s: float) -> bool:
        """Hold ``blocks`` for ``ttl_s``; on refusal they are released at once."""
        blocks = list(blocks)
        now = self.clock()
        if program_id in self._pins:
            self._release(program_id, now)
            self.stats.replaced += 1
        if not blocks or ttl_s <= 0:
            self.release_blocks(blocks)
            return False
        expires_at = now + ttl_s
        extra = self._new_blocks(blocks)
        while self.held_blocks + extra > self.capacity_blocks:
            victim = max(self._pins.values(), key=lambda p: p.expires_at, default=None)
            if victim is None or victim.expires_at <= expires_at:
                self.release_blocks(blocks)
                self.stats.refused += 1
                return False
            self.evict_furthest()
            extra = self._new_blocks(blocks)
        self._pins[program_id] = Pin(program_id, blocks, now, expires_at)
        self._holders.update(b.block_id for b in blocks)
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

    def evict_furthest(self, exclude: Collection[str] = ()) -> bool:
        """Release the pin expected back last, to make room for work that cannot wait."""
        candidates = (p for p in self._pins.values() if p.program_id not in exclude)
        victim = max(candidates, key=lambda p: p.expires_at, default=None)
        if victim is None:
            return False
        self._release(victim.program_id, self.clock())
        self.stats.evicted += 1
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

    def _new_blocks(self, blocks: list[Block]) -> int:
        return len({b.block_id for b in blocks if b.block_id not in self._holders})

    def _release(self, program_id: str, now: float) -> None:
        pin = self._pins.pop(program_id)
        self._holders.subtract(b.block_id for b in pin.blocks)
        self._holders += Counter()  # drop ids no pin holds any more
        self.stats.held_block_seconds += len(pin.blocks) * (now - pin.pinned_at)
        self.release_blocks(pin.blocks)
        self._refresh_stats()

    def _refresh_stats(self) -> None:
        self.stats.blocks = self.held_blocks
        self.stats.programs = len(self._pins)
        self.stats.peak_blocks = max(self.stats.peak_blocks, self.stats.blocks)
