"""``MemOSClient``: the verbs (core.py) over a blocking httpx client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .core import Call, RetryPolicy, Verbs, read_answer
from .errors import MemOSConnectionError
from .models import Memory

T = TypeVar("T")


class MemOSClient(Verbs):
    """``MemOSClient(base_url="http://127.0.0.1:8000", api_key="mk_...")``; use it as a
    context manager, or ``close()`` it."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s), api_key, retry
        )
        self._http: httpx.Client

    def list(self, *, page_size: int = 100, **filters: Any) -> Iterator[Memory]:
        """Every memory matching ``filters``, newest first, a page at a time."""
        cursor = None
        while True:
            page = self.page(limit=page_size, cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MemOSClient:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
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
            time.sleep(wait)
            attempt += 1
