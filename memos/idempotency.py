"""Idempotency keys: a client that retries a write (its answer lost to a timeout or a
dropped connection) sends the same ``Idempotency-Key`` and gets the first answer again
instead of a second write. The first request claims the key (a row, so one wins however
many retries race, on any replica); the others wait for its answer and replay it.
Answers are kept per namespace for ``ttl_s``; the same key with a different request is
refused."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.exc import IntegrityError

from memos.memcube.database import Database
from memos.memcube.models import IdempotentAnswer, utcnow

from .errors import InFlightError, InvalidInputError

IN_FLIGHT = 0  # the status of a claimed key whose write has not answered yet
IN_FLIGHT_WAIT_S = 10.0  # how long a retry waits for the answer in flight, at most
IN_FLIGHT_POLL_S = 0.05
ABANDONED_AFTER_S = 300.0  # a claim in flight this long lost its holder: it is taken over
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

    def claim(self, namespace: str, key: str, fingerprint: str) -> Answer | None:
        """Claim ``key`` for the request ``fingerprint``: None when this caller won it
        (it must then ``keep`` its answer, or ``release`` the key if it fails); the
        answer kept for it when another caller's request finished first (waiting up to
        ``IN_FLIGHT_WAIT_S`` for one in flight). The key sent with another request is a
        422; one still in flight after the wait is a 409 (InFlightError). The claim is
        a row of the database, so one caller wins across threads and replicas."""
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while True:
            if self._insert_claim(namespace, key, fingerprint):
                return None
            with self.db.reader() as session:
                kept = session.get(IdempotentAnswer, (namespace, key))
                if kept is None:
                    continue  # released, or forgotten, in between: claim it again
                if kept.fingerprint != fingerprint:
                    raise InvalidInputError(
                        "Idempotency-Key was already used with a different request"
                    )
                answer = Answer(kept.status, kept.body)
                claimed_at = kept.created_at
            if answer.status != IN_FLIGHT:
                if claimed_at > self._cutoff():
                    return answer
                self._drop(namespace, key, claimed_at)  # too old to replay
            elif claimed_at <= utcnow() - timedelta(seconds=ABANDONED_AFTER_S):
                self._drop(namespace, key, claimed_at)  # its holder died mid-write
            elif time.monotonic() >= deadline:
                raise InFlightError(
                    "a request with this Idempotency-Key is still being answered; retry"
                )
            else:
                time.sleep(IN_FLIGHT_POLL_S)

    def keep(self, namespace: str, key: str, answer: Answer) -> None:
        """Keep the answer to the write a claim won."""
        with self.db.unit_of_work() as session:
            session.execute(
                update(IdempotentAnswer)
                .where(IdempotentAnswer.namespace == namespace, IdempotentAnswer.key == key)
                .values(status=answer.status, body=answer.body, created_at=utcnow())
            )

    def release(self, namespace: str, key: str) -> None:
        """Give up a claim whose write failed: a retry may try again."""
        self._delete(namespace, key, IdempotentAnswer.status == IN_FLIGHT)

    def _insert_claim(self, namespace: str, key: str, fingerprint: str) -> bool:
        try:
            with self.db.unit_of_work() as session:
                session.add(IdempotentAnswer(
                    namespace=namespace, key=key, fingerprint=fingerprint,
                    status=IN_FLIGHT, body="", created_at=utcnow(),
                ))  # fmt: skip
        except IntegrityError:
            return False
        return True

    def _drop(self, namespace: str, key: str, claimed_at: datetime) -> None:
        """Remove the row of ``key`` if it is still the one claimed at ``claimed_at``."""
        self._delete(namespace, key, IdempotentAnswer.created_at == claimed_at)

    def _delete(self, namespace: str, key: str, condition: ColumnElement[bool]) -> None:
        with self.db.unit_of_work() as session:
            session.execute(
                delete(IdempotentAnswer).where(
                    IdempotentAnswer.namespace == namespace, IdempotentAnswer.key == key,
                    condition,
                )
            )  # fmt: skip

    def forget_expired(self) -> int:
        """Drop answers older than the TTL; returns how many."""
        with self.db.unit_of_work() as session:
            done = session.execute(
                delete(IdempotentAnswer).where(
                    IdempotentAnswer.created_at <= self._cutoff(),
                    IdempotentAnswer.status != IN_FLIGHT,
                )
            )
            return int(getattr(done, "rowcount", 0) or 0)

    def _cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.ttl_s)
