"""``AsyncMemOSClient``: the same verbs (core.py) over an asyncio httpx client; each verb
returns an awaitable of what ``MemOSClient``'s returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .core import Call, RetryPolicy, Verbs, read_answer
from .errors import MemOSConnectionError
from .models import Memory

T = TypeVar("T")


class AsyncMemOSClient(Verbs):
    """``async with AsyncMemOSClient(base_url=..., api_key=...) as client: await
    client.add(...)``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s),
            api_key,
            retry,
        )
        self._http: httpx.AsyncClient

    async def list(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[Memory]:
        """Every memory matching ``filters``, newest first, a page at a time."""
        cursor = None
        while True:
            page = await self.page(limit=page_size, cursor=cursor, **filters)  # type: ignore[misc]
            for memory in page.items:
                yield memory
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemOSClient:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    def _run(self, call: Call[T]) -> Awaitable[T]:  # type: ignore[override]
        return self._send(call)

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=call.headers
                )
            except httpx.TransportError as exc:
                wait = self.retry.wait_s(call, attempt, None)
                if wait is None:
                    raise MemOSConnectionError(f"{call.method} {call.path}: {exc}") from exc
            else:
                wait = self.retry.wait_s(call, attempt, response)
                if wait is None:
                    return call.read(read_answer(response))
            await asyncio.sleep(wait)
            attempt += 1
