"""Writes a client may retry: with an ``Idempotency-Key`` header, the first answer is
kept and a retry with the same key gets it again (``Idempotent-Replayed: true``)
instead of a second write (memos/idempotency.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response
from litestar.params import Parameter

from memos.idempotency import Answer
from memos.kernel import Kernel

from .auth import Tenant

IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="Send the same key when retrying: the write happens once",
    ),
]


async def once(
    request: Request, tenant: Tenant, kernel: Kernel, key: str | None,
    write: Callable[[], Response[Any]],
) -> Response[Any]:  # fmt: skip
    """``write()`` (in a worker thread), or the answer it gave for ``key`` before."""
    if key is None:
        return await anyio.to_thread.run_sync(write)
    keys = kernel.idempotency
    keys.check(key)
    fingerprint = keys.fingerprint(f"{request.method} {request.url.path}", await request.body())
    kept = await anyio.to_thread.run_sync(keys.replay, tenant.namespace, key, fingerprint)
    if kept is not None:
        return Response(kept.body.encode(), status_code=kept.status, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})  # fmt: skip
    response = await anyio.to_thread.run_sync(write)
    body = msgspec.json.encode(response.content).decode()
    answer = Answer(response.status_code, body)
    await anyio.to_thread.run_sync(keys.keep, tenant.namespace, key, fingerprint, answer)
    return response
