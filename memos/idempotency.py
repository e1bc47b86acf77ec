"""Idempotency keys: a client that retries a write (its answer lost to a timeout or a
dropped connection) sends the same ``Idempotency-Key`` and gets the first answer again
instead of a second write. Answers are kept per namespace for ``ttl_s``; the same key
with a different request is refused."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from memos.memcube.database import Database
from memos.memcube.models import IdempotentAnswer, utcnow

from .errors import InvalidInputError

KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as a header carries it
DEFAULT_TTL_S = 24 * 3600.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str  # JSON


class IdempotencyKeys:
    def __init__(self, db: Database, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.db = db
        self.ttl_s = ttl_s

    @staticmethod
    def check(key: str) -> str:
        if not KEY_PATTERN.fullmatch(key):
            raise InvalidInputError(
                "Idempotency-Key must be 1 to 255 visible ASCII characters"
            )
        return key

    @staticmethod
    def fingerprint(route: str, body: bytes) -> str:
        return hashlib.sha256(route.encode() + b"\0" + body).hexdigest()

    def replay(self, namespace: str, key: str, fingerprint: str) -> Answer | None:
        """The answer kept for ``key``, or None when there is none (or it is too old).
        The key sent with another request is an error."""
        with self.db.reader() as session:
            kept = session.get(IdempotentAnswer, (namespace, key))
            if kept is None or kept.created_at <= self._cutoff():
                return None
            if kept.fingerprint != fingerprint:
                raise InvalidInputError(
                    "Idempotency-Key was already used with a different request"
                )
            return Answer(kept.status, kept.body)

    def keep(self, namespace: str, key: str, fingerprint: str, answer: Answer) -> None:
        """Keep the answer to a write that succeeded. When a concurrent retry with the
        same key kept its answer first, that one stays."""
        try:
            with self.db.unit_of_work() as session:
                stale = session.get(IdempotentAnswer, (namespace, key))
                if stale is not None:
                    if stale.created_at > self._cutoff():
                        return
                    session.delete(stale)
                    session.flush()
                session.add(IdempotentAnswer(
                    namespace=namespace, key=key, fingerprint=fingerprint,
                    status=answer.status, body=answer.body, created_at=utcnow(),
                ))  # fmt: skip
        except IntegrityError:
            return  # the concurrent retry's answer was kept first

    def forget_expired(self) -> int:
        """Drop answers older than the TTL; returns how many."""
        with self.db.unit_of_work() as session:
            done = session.execute(
                delete(IdempotentAnswer).where(IdempotentAnswer.created_at <= self._cutoff())
            )
            return int(getattr(done, "rowcount", 0) or 0)

    def _cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.ttl_s)
