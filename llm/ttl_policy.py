"""How long to keep a program's KV cache while its tool runs (after Continuum).

Pinning for ``tau`` seconds pays off when the program comes back within ``tau``: its
next turn skips re-prefilling the context. It costs the blocks held meanwhile, which
matter only as far as the cache is under pressure. Both sides scale with the size of
the context, so per block of context the value of a time to live ``tau`` is

    value(tau) = P(T <= tau) * P(return | turn) * miss - usage * E[min(T, tau)] / horizon

where ``T`` is the tool's duration (its recent empirical distribution), ``usage``
the share of the KV cache in use, ``horizon`` the time for which holding a block is
worth as much as recomputing it once, and ``miss`` what a returning turn pays for a
context that was not pinned, as a share of prefilling it again: 1 with the device
cache alone, far less when a host tier (agents/host_tier.py) copies it back. So the
policy chooses per tier: with a copy back in milliseconds against seconds of
prefill, a device pin is rarely worth its blocks and the host tier carries the
context. The policy picks the ``tau`` among the tool's duration quantiles with the
highest value and does not pin when no value is positive. A tool not yet seen gets
a short fixed TTL, as Continuum does, scaled by the miss cost.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from .tool_durations import ToolDurationPredictor

QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
ORACLE_SLACK_S = 0.5  # a known duration still leaves the next turn a moment to arrive


@dataclass(frozen=True)
class CacheState:
    """What the policy weighs a pin against, read from the engine when a turn starts."""

    usage: float = 1.0  # share of the device KV cache in use (1.0 when unknown)
    # what a returning turn pays for a context not pinned, as a share of prefilling it
    # again (1.0 when nothing else keeps it)
    miss_cost: float = 1.0

    def __post_init__(self) -> None:
        for name in ("usage", "miss_cost"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


UNKNOWN_CACHE = CacheState()  # a full cache, and nothing but a prefill brings a context back


@dataclass
class TtlPolicy:
    predictor: ToolDurationPredictor
    cold_ttl_s: float = 2.0
    max_ttl_s: float = 120.0
    min_samples: int = 3
    # Measured (benchmarks/agent_jct_bench.py, full run): 2.2 s — N blocks x one block's
    # prefill time, the break-even if KV memory alone bounded throughput — gave 42.0 s mean
    # job time, 10 s 40.2 s, 30 s 39.4 s (the oracle 38.6 s). On this engine decode
    # steps, not memory, bound throughput most of the time, so holding costs less.
    hold_horizon_s: float = 30.0
    margin: float = 0.1  # a little past the quantile: the next turn takes a moment to arrive
    _turns_left: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    _turns_returned: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ttl(
        self, tool: str | None, turn: int, cache: CacheState = UNKNOWN_CACHE,
        namespace: str | None = None,
    ) -> float:  # fmt: skip
        """Seconds to pin after ``turn`` before ``tool`` runs; 0 means do not pin. The
        tool's durations are ``namespace``'s own once it has enough, else everyone's."""
        if tool is None:
            return 0.0
        durations = self.predictor.samples(tool, namespace)
        if len(durations) < self.min_samples:
            return self.cold_ttl_s * cache.miss_cost
        gain = self.return_rate(turn) * cache.miss_cost
        best_tau, best_value = 0.0, 0.0
        for q in QUANTILES:
            tau = min(durations[min(len(durations) - 1, int(q * len(durations)))]
                      * (1 + self.margin), self.max_ttl_s)  # fmt: skip
            within = sum(1 for d in durations if d <= tau) / len(durations)
            held = sum(min(d, tau) for d in durations) / len(durations)
            value = within * gain - cache.usage * held / self.hold_horizon_s
            if value > best_value:
                best_tau, best_value = tau, value
        return best_tau

    def known_ttl(self, seconds: float, turn: int, cache: CacheState = UNKNOWN_CACHE) -> float:
        """The same rule for a tool whose duration is known in advance (an oracle)."""
        gain = self.return_rate(turn) * cache.miss_cost
        if gain - cache.usage * seconds / self.hold_horizon_s <= 0:
            return 0.0
        return min(seconds + ORACLE_SLACK_S, self.max_ttl_s)

    def return_rate(self, turn: int) -> float:
        """The share of programs that left for a tool after this turn and came back."""
        with self._lock:
            left, returned = self._turns_left[turn], self._turns_returned[turn]
        # starts at 1: programs are assumed to return; a program still at its tool
        # counts as not yet returned
        return min(1.0, (returned + 1) / (left + 1))

    def record_left(self, turn: int) -> None:
        """A program's ``turn`` ended with a tool call."""
        with self._lock:
            self._turns_left[turn] += 1

    def record_returned(self, turn: int) -> None:
        with self._lock:
            self._turns_returned[turn] += 1
