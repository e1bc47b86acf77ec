"""Replicas follow the database: API processes on one PostgreSQL each hold the search
indexes, the cache's index, the graph and the key cache in memory, and keep them in step
by applying the change feed (memcube/changes.py; migration 0008 makes the triggers).

Each change is applied by reading its row as it is now, so applying one twice, or late,
is harmless. A follower is woken by PostgreSQL's NOTIFY and polls as well, so a
notification lost with a dropped connection delays a change by at most ``poll_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import make_url

from memos.memcube import changes
from memos.memcube.changes import ChangeRow

from .errors import InvalidInputError, UnavailableError
from .histogram import SecondsHistogram

if TYPE_CHECKING:
    from .core import MemOS

log = logging.getLogger(__name__)

BATCH = 5_000  # changes read and applied at a time
DEFAULT_WAIT_S = 5.0
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class FollowerStats:
    applied_changes: int = 0
    resyncs: int = 0
    reconnects: int = 0
    # commit-to-applied delay of each applied change
    delays: SecondsHistogram = field(default_factory=lambda: SecondsHistogram(DELAY_BUCKETS))


class ChangeFollower:
    """Applies every change another process commits to this process's in-memory state."""

    def __init__(self, memos: MemOS, poll_s: float, listen: bool = True) -> None:
        self._memos = memos
        self.poll_s = poll_s
        self.listen = listen
        self.applied = 0  # every change up to this one is applied
        self.listening = False
        self.listen_pid: int | None = None  # the LISTEN connection's backend
        self.stats = FollowerStats()
        self._apply_lock = threading.Lock()
        self._applied_changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # start and stop ---------------------------------------------------------------------

    def mark_start(self) -> None:
        """Before the state is loaded: changes after this point are applied on top."""
        with self._memos.db.reader() as session:
            self.applied = changes.latest_seq(session)
        self._memos.indexes.follow(lambda: self.applied)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="change-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # reads that wait ---------------------------------------------------------------------

    def wait_for(self, seq: int, timeout_s: float = DEFAULT_WAIT_S) -> None:
        """Return once every change up to ``seq`` is applied here; raise
        ``UnavailableError`` when that takes longer than ``timeout_s``."""
        if self.applied >= seq:
            return
        with self._memos.db.reader() as session:
            latest = changes.latest_seq(session)
        if seq > latest:
            raise InvalidInputError(  # the service-wide counter is no tenant's to see
                f"consistency.after: {seq} is ahead of every change made; pass a MemOS-Seq a "
                "write answered"
            )
        deadline = time.monotonic() + timeout_s
        while self.applied < seq:
            self.catch_up()
            with self._applied_changed:
                remaining = deadline - time.monotonic()
                if self.applied >= seq:
                    return
                if remaining <= 0:
                    raise UnavailableError(
                        f"this replica has not yet applied change {seq} after "
                        f"{timeout_s:g} s; retry", retry_after_s=1,
                    )  # fmt: skip
                self._applied_changed.wait(min(remaining, 0.05))

    def lag_s(self) -> float:
        """How long the oldest change not applied here has waited (0 when none has)."""
        with self._memos.db.reader() as session:
            oldest = changes.oldest_recorded_after(session, self.applied)
        return 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    # applying ----------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every change committed so far; returns how many were applied."""
        applied = 0
        with self._apply_lock:
            while True:
                with self._memos.db.reader() as session:
                    if changes.pruned_through(session) > self.applied:
                        self._resync()
                        continue
                    batch = changes.changes_after(session, self.applied, BATCH)
                if not batch:
                    return applied
                self._apply(batch)
                now = datetime.now(UTC)
                for change in batch:
                    delay = (now - change.recorded_at).total_seconds()
                    self.stats.delays.observe(max(0.0, delay))
                self.stats.applied_changes += len(batch)
                applied += len(batch)
                with self._applied_changed:
                    self.applied = batch[-1].seq
                    self._applied_changed.notify_all()

    def _apply(self, batch: list[ChangeRow]) -> None:
        rows: dict[tuple[str, str], list[str]] = defaultdict(list)
        for change in batch:
            rows[(change.namespace, change.entity)].append(change.row_id)
        memos = self._memos
        namespaces = {namespace for namespace, _ in rows}
        for namespace in sorted(namespaces):
            if ids := rows.get((namespace, "memory")):
                memos.indexes.apply(namespace, ids)
            graph_rows = [rows.get((namespace, kind), []) for kind in ("entity", "fact", "edge")]
            if any(graph_rows):
                memos.graph.apply(namespace, *graph_rows)
        cache_ids = [i for (_, entity), ids in rows.items() if entity == "cache" for i in ids]
        if cache_ids:
            memos.cache.apply(cache_ids)
        if any(entity == "key" for _, entity in rows):
            memos.keys.forget_remembered()

    def _resync(self) -> None:
        """The feed lost changes not applied here (pruned): load everything again."""
        log.warning("changes after %d were pruned before this replica applied them; "
                    "loading every index again", self.applied)  # fmt: skip
        memos = self._memos
        with memos.db.reader() as session:
            latest = changes.latest_seq(session)
        memos.indexes.forget_loaded()
        memos.graph.forget_loaded()
        memos.cache.forget_loaded()
        memos.keys.forget_remembered()
        self.stats.resyncs += 1
        with self._applied_changed:
            self.applied = latest
            self._applied_changed.notify_all()

    # the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.listen:
                try:
                    self._listen()
                except Exception as exc:
                    self.listening = False
                    if self._stop.is_set():
                        return
                    self.stats.reconnects += 1
                    log.warning("change feed: listening stopped (%s); polling until it is back",
                                exc)  # fmt: skip
            self._poll_once()

    def _poll_once(self) -> None:
        try:
            self.catch_up()
        except Exception:
            log.warning("change feed: catching up failed; retrying", exc_info=True)
        self._stop.wait(self.poll_s)

    def _listen(self) -> None:
        """Catch up whenever a change is announced, and every ``poll_s`` regardless."""
        url = make_url(self._memos.db.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {changes.CHANNEL}")
            self.listen_pid = conn.info.backend_pid
            self.listening = True
            self.catch_up()  # what was committed before the LISTEN took hold
            while not self._stop.is_set():
                for _note in conn.notifies(timeout=self.poll_s, stop_after=1):
                    pass  # one is enough: catching up reads every change
                self.catch_up()
