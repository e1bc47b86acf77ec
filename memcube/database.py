"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale path)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from memos.errors import StorageRefusedError

from . import changes

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
# SQLite checkpoints on its own past this many WAL pages: only a safety net, since the
# background checkpointer keeps the log short without making a writer wait for it.
WAL_AUTOCHECKPOINT_PAGES = 20_000

# Errors that mean the storage itself refuses to write, not that the statement is wrong.
_SQLITE_REFUSALS = {
    8: "the database is read-only",
    10: "disk I/O error",
    13: "the disk is full",
    14: "the database file cannot be opened",
}
_POSTGRES_REFUSALS = {
    "25006": "the database is read-only",
    "53100": "the disk is full",
    "53200": "the server is out of memory",
    "58030": "disk I/O error",
}


_PROBE = text(
    "INSERT INTO namespaces (name, created_at, revision) VALUES ('.probe', CURRENT_TIMESTAMP, 0)"
)


def refusal_reason(exc: BaseException) -> str | None:
    """Why the storage refused a write, when ``exc`` says it did; None for other errors."""
    if not isinstance(exc, DBAPIError):
        return None
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_REFUSALS.get(code & 0xFF)
    return _POSTGRES_REFUSALS.get(getattr(exc.orig, "sqlstate", None) or "")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database file in the background, after
    writes, so that no committing caller pays for a checkpoint."""

    def __init__(self, engine: Engine, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._written = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def note_write(self) -> None:
        self._written.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            if self._written.is_set():
                self._written.clear()
                self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # a busy or closed database; the next pass or SQLite retries
            log.debug("WAL checkpoint skipped", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._written.is_set():
            self.checkpoint()


class Database:
    """An engine plus a session factory; ``unit_of_work`` is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._checkpointer = (
            WalCheckpointer(self.engine) if self.engine.dialect.name == "sqlite" else None
        )
        # PostgreSQL's triggers number every change replicas follow (migration 0008)
        self.feeds_changes = self.engine.dialect.name == "postgresql"
        self.write_refusal: str | None = None  # why the last write failed, until one succeeds
        self.refused_at = 0.0  # time.monotonic() of that refusal

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises. A
        write the storage refuses raises ``StorageRefusedError`` (the caller may retry)."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            self.write_refusal, self.refused_at = reason, time.monotonic()
            log.warning("storage refused a write: %s (%s)", reason, exc.orig)
            raise StorageRefusedError(
                f"storage refuses writes: {reason}; reads still work, retry later"
            ) from exc
        self.write_refusal = None
        if self._checkpointer is not None:
            self._checkpointer.note_write()
        if self.feeds_changes and changes.marking():
            with self._sessions() as session:
                changes.note_write(session)

    def refusing_writes(self, recent_s: float) -> str | None:
        """Why the storage refuses writes, or None. Once a write was refused, a probe
        write decides; a probe is small and a full disk may still take it, so a refusal
        younger than ``recent_s`` stands whatever the probe says."""
        if self.write_refusal is None:
            return None
        reason, at = self.write_refusal, self.refused_at
        probe = self.probe_write()
        if probe is not None:
            return probe
        if time.monotonic() - at < recent_s:
            self.write_refusal, self.refused_at = reason, at
            return reason
        return None

    def probe_write(self) -> str | None:
        """Try a write and roll it back: None when the storage takes writes, else why not.
        The row is a namespace no caller can name, so it never meets a real one."""
        try:
            with self.engine.connect() as conn:
                probe = conn.begin()
                try:
                    conn.execute(_PROBE)
                finally:
                    probe.rollback()
        except DBAPIError as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            self.write_refusal, self.refused_at = reason, time.monotonic()
            return reason
        self.write_refusal = None
        return None

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
