"""Bearer API keys: each request's key names the one namespace (tenant) it may touch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from litestar import Request

from memos.core import MemOS
from memos.errors import UnauthorizedError
from memos.memcube import keys

CACHE_TTL_S = 5.0  # a revoked key stops working within this many seconds


@dataclass(frozen=True)
class Tenant:
    namespace: str
    key_prefix: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_prefix}"


class KeyResolver:
    """Looks keys up by digest; remembers answers briefly to keep the database off the hot path."""

    def __init__(self, memos: MemOS) -> None:
        self._memos = memos
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def namespace_for(self, secret: str) -> str | None:
        digest = keys.digest(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[1] < CACHE_TTL_S:
            return hit[0]
        with self._memos.db.reader() as session:
            namespace = keys.namespace_for(session, secret)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (namespace, now)
        return namespace


def provide_tenant(request: Request) -> Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <key>'")
    resolver: KeyResolver = request.app.state.key_resolver
    namespace = resolver.namespace_for(secret.strip())
    if namespace is None:
        raise UnauthorizedError("unknown or revoked API key")
    return Tenant(namespace, secret.strip()[:10])
