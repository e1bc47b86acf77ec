"""Bearer API keys: each request's key names the one namespace (tenant) it may touch.

``require_key`` guards every controller built on ``TenantController``; the health
checks and the OpenAPI document are the only routes without it (``/metrics`` has a
guard of its own). The guard runs before the body is read, so a request without a
valid key learns nothing but 401."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from memos.core import MemOS
from memos.errors import UnauthorizedError
from memos.memcube.models import Source
from memos.provenance import Origin


@dataclass(frozen=True)
class Tenant:
    namespace: str
    key_prefix: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_prefix}"

    def origin(self, source: str | None = None) -> Origin:
        """The provenance of a change this key asks for (source: the API, unless the
        client names another)."""
        return Origin(source or Source.API.value, self.actor)


def bearer_secret(connection: ASGIConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <key>'")
    return secret.strip()


def require_key(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    secret = bearer_secret(connection)
    memos: MemOS = connection.app.state.memos
    namespace = memos.keys.namespace_for(secret)
    if namespace is None:
        raise UnauthorizedError("unknown or revoked API key")
    connection.state.tenant = Tenant(namespace, secret[:10])


def require_metrics_token(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """``/metrics`` is open unless ``MEMOS_METRICS_TOKEN`` is set; then it takes that token
    (and no API key: a scraper is not a tenant)."""
    token: str | None = connection.app.state.metrics_token
    if token and not hmac.compare_digest(bearer_secret(connection).encode(), token.encode()):
        raise UnauthorizedError("wrong metrics token")


def provide_tenant(request: Request) -> Tenant:
    return request.state.tenant


class TenantController(Controller):
    """A controller whose every route needs an API key."""

    guards = [require_key]
