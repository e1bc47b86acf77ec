"""``@memory(client, user_id=...)``: memory for any agent function.

Before the call the decorator finds the query in the arguments (the one named by
``query_arg``; else the last user message of a chat-style ``messages`` list; else the
first string argument) and searches the user's memories. It hands them in as the
function's ``memories`` parameter when it has one, else as a system message put before
``messages``. After the call it stores the exchange (the query and the output; a
generator's output joined once it is exhausted) as a memory of that user, agent and
session, with provenance ``sdk``. When the service cannot be reached the function still
runs and a warning is logged, unless ``strict=True``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .asynchronous import AsyncMemOSClient
from .errors import MemOSClientError
from .models import SearchResult
from .sync import MemOSClient

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
HEADER = "What you remember (one memory a line; use it when it helps answer):"


@dataclass(frozen=True)
class _Plan:
    """What one decorated function needs: where its query and memories go."""

    signature: inspect.Signature
    query_arg: str | None
    takes_memories: bool

    def query(self, bound: inspect.BoundArguments) -> str | None:
        args = bound.arguments
        if self.query_arg is not None:
            value = args.get(self.query_arg)
            return value if isinstance(value, str) else None
        messages = args.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    content = message.get("content")
                    return content if isinstance(content, str) else None
        return next((v for k, v in args.items() if k != "memories" and isinstance(v, str)), None)

    def hand_in(self, bound: inspect.BoundArguments, found: list[SearchResult]) -> None:
        if self.takes_memories:
            if "memories" not in bound.arguments:
                bound.arguments["memories"] = found
            return
        messages = bound.arguments.get("messages")
        if isinstance(messages, list) and found:
            lines = "\n".join(f"- {' '.join((r.text or '').split())}" for r in found)
            system = {"role": "system", "content": f"{HEADER}\n{lines}"}
            bound.arguments["messages"] = [system, *messages]


def memory(
    client: MemOSClient | AsyncMemOSClient,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    top_k: int = 5,
    mode: str | None = None,
    query_arg: str | None = None,
    store: bool = True,
    strict: bool = False,
) -> Callable[[F], F]:
    """Give the decorated function (sync or async, a function or a generator) memory;
    see the module's docstring."""
    owner = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        if query_arg is not None and query_arg not in signature.parameters:
            raise TypeError(f"{fn.__qualname__} has no parameter {query_arg!r}")
        plan = _Plan(signature, query_arg, "memories" in signature.parameters)
        is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        if isinstance(client, AsyncMemOSClient) and not is_async:
            raise TypeError("an AsyncMemOSClient serves async functions; use a MemOSClient")
        keeper = _Keeper(client, owner, top_k, mode, store, strict, fn.__qualname__)

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agen(*args: Any, **kwargs: Any) -> Any:
                bound, query = await keeper.before_async(plan, args, kwargs)
                parts: list[Any] = []
                async for item in fn(*bound.args, **bound.kwargs):
                    parts.append(item)
                    yield item
                await keeper.after_async(query, _joined(parts))

            return agen  # type: ignore[return-value]

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def coro(*args: Any, **kwargs: Any) -> Any:
                bound, query = await keeper.before_async(plan, args, kwargs)
                result = await fn(*bound.args, **bound.kwargs)
                await keeper.after_async(query, _joined([result]))
                return result

            return coro  # type: ignore[return-value]

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                bound, query = keeper.before(plan, args, kwargs)
                parts: list[Any] = []
                for item in fn(*bound.args, **bound.kwargs):
                    parts.append(item)
                    yield item
                keeper.after(query, _joined(parts))

            return gen  # type: ignore[return-value]

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound, query = keeper.before(plan, args, kwargs)
            result = fn(*bound.args, **bound.kwargs)
            keeper.after(query, _joined([result]))
            return result

        return call  # type: ignore[return-value]

    return decorate


class _Keeper:
    """The service calls around one decorated function, sync or async."""

    def __init__(
        self,
        client: MemOSClient | AsyncMemOSClient,
        owner: dict[str, str | None],
        top_k: int,
        mode: str | None,
        store: bool,
        strict: bool,
        name: str,
    ) -> None:
        self.client, self.owner, self.top_k, self.mode = client, owner, top_k, mode
        self.store, self.strict, self.name = store, strict, name

    def before(self, plan: _Plan, args: Any, kwargs: Any) -> tuple[Any, str | None]:
        bound = plan.signature.bind_partial(*args, **kwargs)
        query = plan.query(bound)
        found: list[SearchResult] = []
        if query:
            found = self._guard("search", lambda: self.client.search(query, **self._search()))
        plan.hand_in(bound, found or [])
        return bound, query

    async def before_async(self, plan: _Plan, args: Any, kwargs: Any) -> tuple[Any, str | None]:
        if not isinstance(self.client, AsyncMemOSClient):
            return self.before(plan, args, kwargs)
        bound = plan.signature.bind_partial(*args, **kwargs)
        query = plan.query(bound)
        found: list[SearchResult] = []
        if query:
            try:
                found = await self.client.search(query, **self._search())  # type: ignore[misc]
            except MemOSClientError as exc:
                self._failed("search", exc)
        plan.hand_in(bound, found)
        return bound, query

    def after(self, query: str | None, output: str) -> None:
        if self.store and query and output.strip():
            self._guard(
                "store", lambda: self.client.add(self._exchange(query, output), **self._add())
            )

    async def after_async(self, query: str | None, output: str) -> None:
        if not isinstance(self.client, AsyncMemOSClient):
            self.after(query, output)
            return
        if self.store and query and output.strip():
            try:
                await self.client.add(self._exchange(query, output), **self._add())  # type: ignore[misc]
            except MemOSClientError as exc:
                self._failed("store", exc)

    def _search(self) -> dict[str, Any]:
        return {**self.owner, "top_k": self.top_k, "mode": self.mode}

    def _add(self) -> dict[str, Any]:
        return {**self.owner, "metadata": {"function": self.name}}

    @staticmethod
    def _exchange(query: str, output: str) -> str:
        return f"User: {query}\nAssistant: {output}"

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except MemOSClientError as exc:
            self._failed(what, exc)
            return None

    def _failed(self, what: str, exc: MemOSClientError) -> None:
        if self.strict:
            raise exc
        log.warning("memory %s for %s failed; going on without it: %s", what, self.name, exc)


def _joined(parts: list[Any]) -> str:
    return "".join(p if isinstance(p, str) else str(p) for p in parts if p is not None)
