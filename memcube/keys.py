"""API keys: random secrets shown once, stored as SHA-256 digests, scoped to a namespace."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from memos.errors import NotFoundError

from .ids import new_id
from .models import ApiKey, utcnow
from .repository import CubeRepository

KEY_PREFIX = "mk_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    namespace: str
    prefix: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.namespace, row.prefix, row.label, row.created_at, row.revoked_at)


def create_key(session: Session, namespace: str, label: str | None = None) -> tuple[KeyInfo, str]:
    """Returns the key's record and its secret, which is not stored and cannot be shown again."""
    CubeRepository(session).ensure_namespace(namespace)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id(),
        namespace=namespace,
        prefix=secret[:10],
        key_hash=digest(secret),
        label=label,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _info(row), secret


def list_keys(session: Session, namespace: str | None = None) -> list[KeyInfo]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if namespace is not None:
        stmt = stmt.where(ApiKey.namespace == namespace)
    return [_info(row) for row in session.scalars(stmt)]


def find_key(session: Session, key_id: str) -> KeyInfo | None:
    row = session.get(ApiKey, key_id) if isinstance(key_id, str) else None
    return None if row is None else _info(row)


def revoke_key(session: Session, key_id: str) -> KeyInfo:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return _info(row)


def namespace_for(session: Session, secret: str) -> str | None:
    """The namespace an active key opens, or None for an unknown or revoked key."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))
    if row is None or row.revoked_at is not None:
        return None
    return row.namespace
