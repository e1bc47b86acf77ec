"""API keys as the kernel offers them: create, list and revoke a namespace's keys, and
find the namespace a key opens (remembered briefly, forgotten at once on a revocation
made here)."""

from __future__ import annotations

import threading
import time

from memos.memcube import keys
from memos.memcube.database import Database
from memos.memcube.keys import KeyInfo as KeyInfo

from . import validation as check
from .errors import NotFoundError

# a key revoked by another process stops working within this time (a replica following
# the change feed forgets at once)
RESOLVE_CACHE_S = 5.0
_MAX_REMEMBERED = 10_000
MAX_LABEL_CHARS = 200


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._remembered: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def create(self, namespace: str, label: str | None = None) -> tuple[KeyInfo, str]:
        """The new key's record and its secret, which is shown this once."""
        check.namespace(namespace)
        if label is not None:
            check.text(label, MAX_LABEL_CHARS, "label")
        with self._db.unit_of_work() as session:
            return keys.create_key(session, namespace, label)

    def list(self, namespace: str) -> list[KeyInfo]:
        check.namespace(namespace)
        with self._db.reader() as session:
            return keys.list_keys(session, namespace)

    def revoke(self, key_id: str, namespace: str | None = None) -> KeyInfo:
        """Revoke a key (of ``namespace`` only, when given); it stops opening anything on
        this process at once."""
        with self._db.unit_of_work() as session:
            info = keys.find_key(session, key_id)
            if info is None or (namespace is not None and info.namespace != namespace):
                raise NotFoundError(f"API key {key_id!r} not found")
            info = keys.revoke_key(session, key_id)
        self.forget_remembered()
        return info

    def forget_remembered(self) -> None:
        """Look every key up again (one was revoked elsewhere)."""
        with self._lock:
            self._remembered.clear()

    def namespace_for(self, secret: str) -> str | None:
        """The namespace an active key opens, or None."""
        digest = keys.digest(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._remembered.get(digest)
        if hit is not None and now - hit[1] < RESOLVE_CACHE_S:
            return hit[0]
        with self._db.reader() as session:
            namespace = keys.namespace_for(session, secret)
        with self._lock:
            if len(self._remembered) >= _MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[digest] = (namespace, now)
        return namespace
