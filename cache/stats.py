"""Counters of the semantic cache, per namespace and category, since the service started."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LATENCY_WINDOW = 10_000  # recent lookups whose latency the percentiles cover


@dataclass
class CategoryCounters:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    lookup_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def as_dict(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        latencies = np.asarray(self.lookup_ms, dtype=np.float64)
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / lookups if lookups else 0.0,
            "stores": self.stores,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "invalidations": self.invalidations,
            "lookup_p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
            "lookup_p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        }


class CacheStats:
    def __init__(self) -> None:
        self._counters: defaultdict[tuple[str, str], CategoryCounters] = defaultdict(
            CategoryCounters
        )
        self._lock = threading.Lock()

    def lookup(self, namespace: str, category: str, hit: bool, ms: float) -> None:
        with self._lock:
            counters = self._counters[namespace, category]
            if hit:
                counters.hits += 1
            else:
                counters.misses += 1
            counters.lookup_ms.append(ms)

    def count(self, namespace: str, category: str, what: str, n: int = 1) -> None:
        """Add ``n`` to one of stores, evictions, expirations, invalidations."""
        if n:
            with self._lock:
                counters = self._counters[namespace, category]
                setattr(counters, what, getattr(counters, what) + n)

    def snapshot(self, namespace: str | None = None) -> dict[str, Any]:
        """One namespace's counters by category (every namespace's when None)."""
        with self._lock:
            chosen = [
                (category, c) for (ns, category), c in self._counters.items()
                if namespace is None or ns == namespace
            ]  # fmt: skip
            merged: dict[str, CategoryCounters] = {}
            for category, c in chosen:
                into = merged.setdefault(category, CategoryCounters())
                for name in ("hits", "misses", "stores", "evictions", "expirations",
                             "invalidations"):  # fmt: skip
                    setattr(into, name, getattr(into, name) + getattr(c, name))
                into.lookup_ms.extend(c.lookup_ms)
            per_category = {name: c.as_dict() for name, c in merged.items()}
            hits = sum(c.hits for c in merged.values())
            misses = sum(c.misses for c in merged.values())
            every = [ms for c in merged.values() for ms in c.lookup_ms]
        latencies = np.asarray(every, dtype=np.float64)
        return {
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "evictions": sum(c["evictions"] for c in per_category.values()),
            "lookup_p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
            "lookup_p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
            "categories": per_category,
        }
