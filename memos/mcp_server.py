"""The memory tools over MCP: ``memos mcp`` serves add_memory, search_memories,
get_memory, update_memory, delete_memory, list_memories and memory_history to any MCP
client (over stdio, or streamable HTTP). Every tool goes through the REST service with
the key the server was started with, so it sees that key's namespace and nothing else.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from memos.client import APIError, AsyncMemOSClient, Memory

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


def build_server(client: AsyncMemOSClient) -> MCPServer:
    """An MCP server whose tools call the service through ``client``."""
    server = MCPServer(name="memos", instructions=INSTRUCTIONS)

    @server.tool()
    async def add_memory(
        text: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Remember ``text`` (for a user, an agent and a session when given). Identical
        text already remembered for the same user and agent is not stored twice."""
        added = await _call(
            client.add(
                text, user_id=user_id, agent_id=agent_id, session_id=session_id, metadata=metadata
            )
        )
        return {**_memory(added), "created": added.created}

    @server.tool()
    async def search_memories(
        query: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        top_k: int = 5,
    ) -> dict[str, Any]:
        """The memories that best answer ``query``, best first, with their scores."""
        hits = await _call(
            client.search(
                query, user_id=user_id, agent_id=agent_id, session_id=session_id, top_k=top_k
            )
        )
        return {"results": [{**_memory(h.memory), "score": h.score} for h in hits]}

    @server.tool()
    async def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory by id."""
        return _memory(await _call(client.get(memory_id)))

    @server.tool()
    async def update_memory(memory_id: str, text: str) -> dict[str, Any]:
        """Change a memory's text (a new version; the old one stays in its history)."""
        return _memory(await _call(client.update(memory_id, text=text)))

    @server.tool()
    async def delete_memory(memory_id: str) -> dict[str, Any]:
        """Forget a memory (it stays in history until purged)."""
        await _call(client.delete(memory_id))
        return {"deleted": memory_id}

    @server.tool()
    async def list_memories(
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The newest memories (of a user, an agent, a session when given)."""
        page = await _call(
            client.page(limit=limit, user_id=user_id, agent_id=agent_id, session_id=session_id)
        )
        return {"memories": [_memory(m) for m in page.items], "more": page.next_cursor is not None}

    @server.tool()
    async def memory_history(memory_id: str) -> dict[str, Any]:
        """Every version of a memory, oldest first, with who changed it and how."""
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
