"""smolagents tools over the MemOS service, and a step callback that stores what each
step of an agent did.

    agent = CodeAgent(tools=[SearchMemoriesTool(client, user_id="ana"),
                             AddMemoryTool(client, user_id="ana")],
                      model=model, step_callbacks=[step_recorder(client, agent_id="coder")])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smolagents import Tool
from smolagents.memory import ActionStep

from memos.client import MemOSClient

MAX_STEP_CHARS = 4_000


class SearchMemoriesTool(Tool):
    name = "search_memories"
    description = (
        "Search long-term memory for what is known about a question; returns the most "
        "relevant memories, one a line."
    )
    inputs = {"query": {"type": "string", "description": "what to look for"}}
    output_type = "string"

    def __init__(
        self,
        client: MemOSClient,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
    ) -> None:
        super().__init__()
        self.client, self.owner, self.top_k = (
            client,
            {"user_id": user_id, "agent_id": agent_id},
            top_k,
        )

    def forward(self, query: str) -> str:
        hits = self.client.search(query, top_k=self.top_k, **self.owner)
        return "\n".join(f"- {h.text}" for h in hits) or "(nothing remembered about that)"


class AddMemoryTool(Tool):
    name = "add_memory"
    description = "Remember a fact for later (one short sentence)."
    inputs = {"text": {"type": "string", "description": "the fact to remember"}}
    output_type = "string"

    def __init__(
        self, client: MemOSClient, *, user_id: str | None = None, agent_id: str | None = None
    ) -> None:
        super().__init__()
        self.client, self.owner = client, {"user_id": user_id, "agent_id": agent_id}

    def forward(self, text: str) -> str:
        added = self.client.add(text, **self.owner)
        return f"remembered ({added.id})" if added.created else f"already known ({added.id})"


def step_recorder(
    client: MemOSClient,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> Callable[..., None]:
    """A step callback that stores each action step's outcome (its tool calls, what it
    observed or returned, its error) as a memory."""

    def record(step: ActionStep, agent: Any = None) -> None:
        calls = [c.name for c in step.tool_calls or []]
        outcome = step.observations or (
            str(step.action_output) if step.action_output is not None else ""
        )
        parts = [f"Step {step.step_number}"]
        if calls:
            parts.append(f"called {', '.join(calls)}")
        if outcome:
            parts.append(f"observed: {outcome.strip()}")
        if step.error is not None:
            parts.append(f"failed: {step.error}")
        client.add(
            "; ".join(parts)[:MAX_STEP_CHARS],
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata={"step": step.step_number, "tools": calls, "error": step.error is not None},
        )

    return record
