"""Writes a client may retry: with an ``Idempotency-Key`` header, the first answer is
kept and a retry with the same key gets it again (``Idempotent-Replayed: true``)
instead of a second write (memos/idempotency.py). The header is read here, as the chat
route reads its program headers: every client sends headers a route does not declare,
and only these two mean something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import msgspec
from litestar import Request, Response

from memos.errors import InvalidInputError
from memos.idempotency import Answer
from memos.kernel import Kernel

from .auth import Tenant

SOURCES = ("api", "sdk", "agent", "tool")


def source_of(request: Request) -> str | None:
    """The provenance source the client names in ``X-Memos-Source`` (default: api)."""
    source = request.headers.get("x-memos-source")
    if source is not None and source not in SOURCES:
        raise InvalidInputError(
            f"X-Memos-Source must be one of {', '.join(SOURCES)}, got {source[:40]!r}"
        )
    return source


async def once(
    request: Request, tenant: Tenant, kernel: Kernel, write: Callable[[], Response[Any]]
) -> Response[Any]:  # fmt: skip
    """``write()`` (in a worker thread), or the answer it gave before to the request's
    ``Idempotency-Key``."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await anyio.to_thread.run_sync(write)
    keys = kernel.idempotency
    keys.check(key)
    fingerprint = keys.fingerprint(f"{request.method} {request.url.path}", await request.body())
    kept = await anyio.to_thread.run_sync(keys.claim, tenant.namespace, key, fingerprint)
    if kept is not None:
        return Response(kept.body.encode(), status_code=kept.status, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})  # fmt: skip
    try:
        response = await anyio.to_thread.run_sync(write)
    except BaseException:
        with anyio.CancelScope(shield=True):  # released even when the caller went away
            await anyio.to_thread.run_sync(keys.release, tenant.namespace, key)
        raise
    answer = Answer(response.status_code, msgspec.json.encode(response.content).decode())
    await anyio.to_thread.run_sync(keys.keep, tenant.namespace, key, answer)
    return response
