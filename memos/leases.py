"""Leases: which process (replica) does a piece of background work. A lease is a row
naming its holder and until when it holds; the holder renews it while it works, and a
lease not renewed in time lapses, so another process takes the work over when its
holder dies. Taking a lease is one conditional write, so two processes never both
hold one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from memos.memcube.database import Database
from memos.memcube.ids import new_id
from memos.memcube.models import Lease, utcnow


def process_id() -> str:
    """A new holder identity (one per process that opens the store)."""
    return new_id()


class Leases:
    def __init__(self, db: Database, holder: str) -> None:
        self.db = db
        self.holder = holder

    def hold(self, name: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl_s``; whether this process holds it
        (False while another process's lease on it holds)."""
        now = utcnow()
        until = now + timedelta(seconds=ttl_s)
        with self.db.unit_of_work() as session:
            taken = session.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.owner == self.holder, Lease.until < now))
                .values(owner=self.holder, until=until)
            )
            if taken.rowcount:
                return True
        try:
            with self.db.unit_of_work() as session:
                session.add(Lease(name=name, owner=self.holder, until=until))
        except IntegrityError:
            return False  # another process holds it
        return True

    def release(self, name: str) -> None:
        with self.db.unit_of_work() as session:
            session.execute(delete(Lease).where(Lease.name == name, Lease.owner == self.holder))
