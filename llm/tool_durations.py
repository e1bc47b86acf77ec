"""How long each tool takes, learned online from the calls the service sees."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

WINDOW = 512  # recent calls kept per tool: tools drift, old timings stop mattering
OWN_AFTER = 3  # a namespace's tool is predicted from its own calls once it has this many
MAX_UNSAVED = 10_000  # calls waiting to be saved, kept while storage refuses them


@dataclass
class _History:
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    ordered: list[float] = field(default_factory=list)
    calls: int = 0


class ToolDurationPredictor:
    """Per tool name, the empirical distribution of its recent durations: one window per
    namespace and tool, and one per tool over every namespace (the prior a namespace's
    tool is predicted from until it has ``own_after`` calls of its own)."""

    def __init__(self, window: int = WINDOW, own_after: int = OWN_AFTER) -> None:
        self._window = window
        self._own_after = own_after
        self._tools: dict[tuple[str | None, str], _History] = {}  # (namespace, tool)
        self._unsaved: list[tuple[str, str, float]] = []  # (namespace, tool, seconds)
        self._lock = threading.Lock()

    def observe(self, tool: str, seconds: float, namespace: str | None = None) -> None:
        """One call; a namespace's calls are also queued to be saved (``take_unsaved``)."""
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative, got {seconds}")
        with self._lock:
            self._record(tool, seconds, namespace)
            if namespace is not None:
                self._unsaved.append((namespace, tool, seconds))
                del self._unsaved[:-MAX_UNSAVED]

    def load(self, calls: Iterable[tuple[str, str, float]]) -> None:
        """Saved (namespace, tool, seconds) calls, oldest first."""
        with self._lock:
            for namespace, tool, seconds in calls:
                self._record(tool, seconds, namespace)

    def take_unsaved(self) -> list[tuple[str, str, float]]:
        with self._lock:
            calls, self._unsaved = self._unsaved, []
        return calls

    def keep_unsaved(self, calls: list[tuple[str, str, float]]) -> None:
        """Give back calls a save could not store, ahead of those observed since."""
        with self._lock:
            self._unsaved[:0] = calls
            del self._unsaved[:-MAX_UNSAVED]

    def _record(self, tool: str, seconds: float, namespace: str | None) -> None:
        keys = [(None, tool)] if namespace is None else [(None, tool), (namespace, tool)]
        for key in keys:
            history = self._tools.setdefault(key, _History(deque(maxlen=self._window)))
            if len(history.recent) == self._window:
                dropped = history.recent[0]
                del history.ordered[bisect.bisect_left(history.ordered, dropped)]
            history.recent.append(seconds)
            bisect.insort(history.ordered, seconds)
            history.calls += 1

    def samples(self, tool: str, namespace: str | None = None) -> list[float]:
        """The tool's recent durations, shortest first: the namespace's own once it has
        enough, else every namespace's."""
        with self._lock:
            return list(self._history(tool, namespace).ordered)

    def quantile(self, tool: str, q: float, namespace: str | None = None) -> float | None:
        ordered = self.samples(tool, namespace)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def tools(self, namespace: str) -> dict[str, dict[str, float | int | str]]:
        """Per tool this namespace has called: its own calls, whose window predicts it
        (``namespace`` or ``prior``), and that window's p50 and p90."""
        out: dict[str, dict[str, float | int | str]] = {}
        with self._lock:
            for (owner, tool), own in self._tools.items():
                if owner != namespace:
                    continue
                history = self._history(tool, namespace)
                ordered = history.ordered
                out[tool] = {
                    "calls": own.calls,
                    "predicted_from": "namespace" if history is own else "prior",
                    "samples": len(ordered),
                    "p50_s": ordered[len(ordered) // 2],
                    "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
                }
        return out

    def _history(self, tool: str, namespace: str | None) -> _History:
        empty = _History()
        own = self._tools.get((namespace, tool), empty) if namespace is not None else empty
        if len(own.ordered) >= self._own_after:
            return own
        return self._tools.get((None, tool), empty)
