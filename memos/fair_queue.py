"""Background work run one item at a time, namespaces taking turns: each namespace's
items wait in its own line, and the worker takes the first of the next namespace's line
in rotation, so one namespace with many items never makes another wait behind all of
them."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

log = logging.getLogger(__name__)

Work = Callable[[], None]


class FairQueue:
    """Items of work per namespace, run round-robin across namespaces on one thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lines: OrderedDict[str, deque[Work]] = OrderedDict()
        # the line an item was last taken from: it rejoins the rotation at the next turn,
        # behind any namespace that queued in between
        self._served: tuple[str, deque[Work]] | None = None
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, namespace: str, work: Work) -> None:
        with self._ready:
            if self._served is not None and self._served[0] == namespace:
                self._served[1].append(work)
            else:
                self._lines.setdefault(namespace, deque()).append(work)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def waiting(self, namespace: str) -> int:
        with self._ready:
            served = self._served
            held = len(served[1]) if served is not None and served[0] == namespace else 0
            return held + len(self._lines.get(namespace, ()))

    def close(self) -> None:
        """Run what is queued (callers cancel it first, if they want it short), then stop
        the thread; a later ``submit`` starts a new one."""
        with self._ready:
            self._closing = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join()
        with self._ready:
            self._closing = False

    def _next(self) -> Work | None:
        """The next namespace's first item (that namespace goes to the back of the
        rotation), waiting for one; None once closing and empty."""
        with self._ready:
            if self._served is not None:
                namespace, line = self._served
                self._served = None
                if line:
                    self._lines[namespace] = line
            while not self._lines:
                if self._closing:
                    self._thread = None
                    return None
                self._ready.wait()
            namespace, line = self._lines.popitem(last=False)
            work = line.popleft()
            self._served = (namespace, line)
            return work

    def _serve(self) -> None:
        while (work := self._next()) is not None:
            try:
                work()
            except Exception:
                log.exception("%s: a work item failed", self.name)
