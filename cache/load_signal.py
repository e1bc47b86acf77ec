"""The backend's load as the cache sees it: an exponentially smoothed queue depth, and
the pressure (0 normal, 1 overloaded) that moves thresholds and TTLs."""

from __future__ import annotations

import math
import threading

from .policy import LoadBounds

SMOOTHING = 0.3  # weight of the newest observation


class LoadSignal:
    def __init__(self, bounds: LoadBounds, smoothing: float = SMOOTHING) -> None:
        self.bounds = bounds
        self.smoothing = smoothing
        self.value = 0.0
        self._lock = threading.Lock()

    def observe(self, load: float) -> None:
        if isinstance(load, bool) or not isinstance(load, int | float) or not math.isfinite(load):
            raise ValueError(f"a load must be a finite number, got {load!r}")
        with self._lock:
            self.value += self.smoothing * (max(0.0, float(load)) - self.value)

    @property
    def pressure(self) -> float:
        return self.bounds.pressure(self.value)
