"""How long each tool takes, learned online from the calls the runtime times."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass, field

WINDOW = 512  # recent calls kept per tool: tools drift, old timings stop mattering


@dataclass
class _History:
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    ordered: list[float] = field(default_factory=list)
    calls: int = 0


class ToolDurationPredictor:
    """Per tool name, the empirical distribution of its recent durations."""

    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._tools: dict[str, _History] = {}
        self._lock = threading.Lock()

    def observe(self, tool: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative, got {seconds}")
        with self._lock:
            history = self._tools.setdefault(tool, _History(deque(maxlen=self._window)))
            if len(history.recent) == self._window:
                dropped = history.recent[0]
                del history.ordered[bisect.bisect_left(history.ordered, dropped)]
            history.recent.append(seconds)
            bisect.insort(history.ordered, seconds)
            history.calls += 1

    def samples(self, tool: str) -> list[float]:
        """The tool's recent durations, shortest first."""
        with self._lock:
            history = self._tools.get(tool)
            return list(history.ordered) if history else []

    def quantile(self, tool: str, q: float) -> float | None:
        ordered = self.samples(tool)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        with self._lock:
            for tool, history in self._tools.items():
                ordered = history.ordered
                out[tool] = {
                    "calls": history.calls,
                    "p50_s": ordered[len(ordered) // 2],
                    "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
                }
        return out
