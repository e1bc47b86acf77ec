"""The smolagents tools and step recorder against the live service: the tools are real
smolagents Tools (validated by smolagents, called the way an agent calls them) and the
recorder stores an ActionStep smolagents made."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from smolagents.memory import ActionStep, ToolCall
from smolagents.monitoring import Timing

from memos.client import MemOSClient
from memos.integrations.smolagents import AddMemoryTool, SearchMemoriesTool, step_recorder
from tests.test_client import service  # noqa: F401  (the live service fixture)


@pytest.fixture
def client(service: tuple[str, str]) -> Iterator[MemOSClient]:  # noqa: F811
    url, key = service
    with MemOSClient(base_url=url, api_key=key) as c:
        yield c


def test_the_tools_remember_and_recall(client: MemOSClient) -> None:
    who = f"s{time.monotonic_ns()}"
    add, search = AddMemoryTool(client, user_id=who), SearchMemoriesTool(client, user_id=who)
    assert add(text="The staging cluster is called Tern.").startswith("remembered")
    assert add(text="The staging cluster is called Tern.").startswith("already known")
    assert search(query="what is staging called?") == "- The staging cluster is called Tern."
    other = SearchMemoriesTool(client, user_id=f"{who}-other")
    assert other(query="what is staging called?") == "(nothing remembered about that)"


def test_the_step_recorder_stores_each_steps_outcome(client: MemOSClient) -> None:
    who = f"a{time.monotonic_ns()}"
    record = step_recorder(client, agent_id=who, session_id="run-1")
    step = ActionStep(
        step_number=1,
        timing=Timing(start_time=time.time()),
        tool_calls=[ToolCall(name="search_memories", arguments={"query": "x"}, id="c1")],
        observations="- The staging cluster is called Tern.",
    )
    record(step)
    [stored] = list(client.list(agent_id=who))
    assert stored.text == (
        "Step 1; called search_memories; observed: - The staging cluster is called Tern."
    )
    assert stored.session_id == "run-1" and stored.metadata["tools"] == ["search_memories"]
