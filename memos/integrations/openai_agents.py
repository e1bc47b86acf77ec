"""The OpenAI Agents SDK (``openai-agents``, imported as ``agents``) on the MemOS service:
``MemOSSession`` keeps a conversation's items as memories of one session, and
``memory_tools`` gives an Agent tools to search and add long-term memories.

    session = MemOSSession("chat-42", client, user_id="ana")
    agent = Agent(name="helper", tools=memory_tools(client, user_id="ana"), model=...)
    await Runner.run(agent, "Where do I park?", session=session)
"""

from __future__ import annotations

import json
import time
from typing import Any

from agents import FunctionTool, function_tool
from agents.memory.session import SessionABC

from memos.client import AsyncMemOSClient, Memory

SESSION_TAG = "oa-session"
PAGE = 1_000


class MemOSSession(SessionABC):
    """A conversation's items, oldest first, as memories of ``session_id`` (and the
    user and agent given); what a run adds is kept, and searchable, like any memory."""

    def __init__(
        self,
        session_id: str,
        client: AsyncMemOSClient,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.client = client
        self.owner = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    async def get_items(self, limit: int | None = None) -> list[Any]:
        stored = await self._stored()
        items = [m.metadata["openai_agents"]["item"] for m in stored]
        return items if limit is None else items[-limit:] if limit > 0 else []

    async def add_items(self, items: list[Any]) -> None:
        if not items:
            return
        first = time.time_ns()
        rows = [
            {
                "text": _text(item),
                "tags": [SESSION_TAG],
                "metadata": {"openai_agents": {"item": item, "seq": first + i}},
            }
            for i, item in enumerate(items)
        ]
        await self.client.add_batch(rows, dedupe=False, **self.owner)  # type: ignore[misc]

    async def pop_item(self) -> Any | None:
        stored = await self._stored()
        if not stored:
            return None
        await self.client.delete(stored[-1].id)  # type: ignore[misc]
        return stored[-1].metadata["openai_agents"]["item"]

    async def clear_session(self) -> None:
        for memory in await self._stored():
            await self.client.delete(memory.id)  # type: ignore[misc]

    async def _stored(self) -> list[Memory]:
        found = [
            m
            async for m in self.client.list(page_size=PAGE, tags=[SESSION_TAG], **self.owner)
            if "openai_agents" in m.metadata
        ]
        return sorted(found, key=lambda m: m.metadata["openai_agents"]["seq"])


def memory_tools(
    client: AsyncMemOSClient,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    top_k: int = 5,
) -> list[FunctionTool]:
    """``search_memories`` and ``add_memory`` for an Agent, on this user's memories."""
    owner = {"user_id": user_id, "agent_id": agent_id}

    @function_tool
    async def search_memories(query: str) -> str:
        """Search long-term memory for what is known about a question.

        Args:
            query: what to look for.
        """
        hits = await client.search(query, top_k=top_k, **owner)  # type: ignore[misc]
        return "\n".join(f"- {h.text}" for h in hits) or "(nothing remembered about that)"

    @function_tool
    async def add_memory(text: str) -> str:
        """Remember a fact for later.

        Args:
            text: the fact, one short sentence.
        """
        added = await client.add(text, **owner)  # type: ignore[misc]
        return f"remembered ({added.id})"

    return [search_memories, add_memory]


def _text(item: Any) -> str:
    """What an item says, as text: a message's content, else the item as JSON."""
    if isinstance(item, dict):
        content = item.get("content")
        if isinstance(content, str) and content.strip():
            return content
        if isinstance(content, list):
            parts = [p.get("text", "") for p in content if isinstance(p, dict)]
            joined = "".join(parts).strip()
            if joined:
                return joined
    return json.dumps(item, sort_keys=True, default=str)[:32_000]
