"""The memory tools over MCP: ``memos mcp`` serves add_memory, search_memories,
get_memory, update_memory, delete_memory, list_memories and memory_history to any MCP
client (over stdio, or streamable HTTP). Every tool goes through the REST service with
an API key, so it sees that key's namespace and nothing else: over stdio, the key the
server was started with; over HTTP, the key each client presents
(``Authorization: Bearer``), checked before any MCP message is read (401 otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from memos.client import APIError, AsyncMemOSClient, Memory

ClientFor = Callable[[Context], AsyncMemOSClient]  # the client a tool call goes through
KEY_CHECK_TTL_S = 5.0  # a key found valid is trusted this long (revocation reaches in time)

INSTRUCTIONS = (
    "Long-term memory. Search it before answering questions about the user or past work "
    "(search_memories); add what is worth remembering (add_memory). user_id, agent_id "
    "and session_id keep different people's and agents' memories apart."
)


def _memory(m: Memory) -> dict[str, Any]:
    return {
        "id": m.id,
        "text": m.text,
        "user_id": m.user_id,
        "agent_id": m.agent_id,
        "session_id": m.session_id,
        "metadata": m.metadata,
        "state": m.state,
        "version": m.version,
        "created_at": m.created_at.isoformat() if m.created_at else None,
    }


def build_server(client_for: ClientFor) -> MCPServer:
    """An MCP server whose tools call the service through ``client_for(ctx)``: one
    client for every call (stdio), or the calling client's own (HTTP)."""
    server = MCPServer(name="memos", instructions=INSTRUCTIONS)

    @server.tool()
    async def add_memory(
        ctx: Context,
        text: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Remember ``text`` (for a user, an agent and a session when given). The same text
        already remembered with the same user, agent and session is not stored twice."""
        client = client_for(ctx)
        added = await _call(
            client.add(
                text, user_id=user_id, agent_id=agent_id, session_id=session_id, metadata=metadata
            )
        )
        return {**_memory(added), "created": added.created}

    @server.tool()
    async def search_memories(
        ctx: Context,
        query: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        top_k: int = 5,
    ) -> dict[str, Any]:
        """The memories that best answer ``query``, best first, with their scores."""
        client = client_for(ctx)
        hits = await _call(
            client.search(
                query, user_id=user_id, agent_id=agent_id, session_id=session_id, top_k=top_k
            )
        )
        return {"results": [{**_memory(h.memory), "score": h.score} for h in hits]}

    @server.tool()
    async def get_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        """One memory by id."""
        client = client_for(ctx)
        return _memory(await _call(client.get(memory_id)))

    @server.tool()
    async def update_memory(memory_id: str, text: str, ctx: Context) -> dict[str, Any]:
        """Change a memory's text (a new version; the old one stays in its history)."""
        client = client_for(ctx)
        return _memory(await _call(client.update(memory_id, text=text)))

    @server.tool()
    async def delete_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        """Forget a memory (it stays in history until purged)."""
        client = client_for(ctx)
        await _call(client.delete(memory_id))
        return {"deleted": memory_id}

    @server.tool()
    async def list_memories(
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The newest memories (of a user, an agent, a session when given)."""
        client = client_for(ctx)
        page = await _call(
            client.page(limit=limit, user_id=user_id, agent_id=agent_id, session_id=session_id)
        )
        return {"memories": [_memory(m) for m in page.items], "more": page.next_cursor is not None}

    @server.tool()
    async def memory_history(memory_id: str, ctx: Context) -> dict[str, Any]:
        """Every version of a memory, oldest first, with who changed it and how."""
        client = client_for(ctx)
        versions = await _call(client.history(memory_id))
        return {
            "versions": [
                {
                    "version": v.version,
                    "text": v.text,
                    "state": v.state,
                    "source": v.source,
                    "actor": v.actor,
                    "operation": v.operation,
                    "recorded_at": v.recorded_at.isoformat() if v.recorded_at else None,
                }
                for v in versions
            ]
        }

    return server


async def _call(pending: Any) -> Any:
    """The call's result; an API error becomes the tool's error, with the service's words."""
    try:
        return await pending
    except APIError as exc:
        raise ToolError(exc.detail) from exc


class KeyedClients:
    """Over HTTP: each caller's own client, by the key it presents."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[str, AsyncMemOSClient] = {}

    def __call__(self, ctx: Context) -> AsyncMemOSClient:
        key = bearer_key(ctx.headers or {})
        if key is None:  # the gate lets no such request through
            raise ToolError("an API key is required: Authorization: Bearer <key>")
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = AsyncMemOSClient(base_url=self.url, api_key=key)
        return client


def bearer_key(headers: Any) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, key = value.partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class KeyGate:
    """ASGI middleware in front of the MCP app: an HTTP request without a key the
    service accepts is answered 401 before the MCP server sees it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], url: str) -> None:
        self.app = app
        self.url = url
        self._valid: dict[str, float] = {}  # key -> when it was last found valid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}  # fmt: skip
            key = bearer_key(headers)
            if key is None or not await self._accepts(key):
                await _unauthorized(send, "missing" if key is None else "rejected")
                return
        await self.app(scope, receive, send)

    async def _accepts(self, key: str) -> bool:
        seen = self._valid.get(key)
        if seen is not None and time.monotonic() - seen < KEY_CHECK_TTL_S:
            return True
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            answer = await http.get("/v1/keys", headers={"Authorization": f"Bearer {key}"})
        if answer.status_code != 200:
            self._valid.pop(key, None)
            return False
        self._valid[key] = time.monotonic()
        return True


async def _unauthorized(send: Send, why: str) -> None:
    body = (b'{"error": "an API key of the MemOS service is required: '
            b'Authorization: Bearer <key> (' + why.encode() + b')"}')  # fmt: skip
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
        (b"content-length", str(len(body)).encode()),
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def serve_http(url: str, host: str, port: int) -> None:
    """The tools over streamable HTTP at ``/mcp``, each client with its own key."""
    import uvicorn

    server = build_server(KeyedClients(url))
    app = KeyGate(server.streamable_http_app(host=host), url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
