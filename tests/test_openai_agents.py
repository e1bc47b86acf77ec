"""MemOSSession (the OpenAI Agents SDK's Session) on the live service: items in order,
limit, pop, clear, sessions apart. The agent end to end: tests/test_examples.py."""

from __future__ import annotations

import asyncio
import time

from memos.client import AsyncMemOSClient
from memos.integrations.openai_agents import MemOSSession
from tests.test_client import service  # noqa: F401  (the live service fixture)


def test_the_session_keeps_items_in_order(service: tuple[str, str]) -> None:  # noqa: F811
    url, key = service
    sid = f"s{time.monotonic_ns()}"

    async def scenario() -> None:
        async with AsyncMemOSClient(base_url=url, api_key=key) as client:
            session = MemOSSession(sid, client, user_id="ana")
            other = MemOSSession(f"{sid}-other", client, user_id="ana")
            assert await session.get_items() == []
            await session.add_items(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
            )
            await session.add_items([{"role": "user", "content": "hi"}])  # repeats are kept
            await other.add_items([{"role": "user", "content": "elsewhere"}])
            items = await session.get_items()
            assert [i["content"] for i in items] == ["hi", "hello", "hi"]
            assert [i["content"] for i in await session.get_items(limit=2)] == ["hello", "hi"]
            assert (await session.pop_item()) == {"role": "user", "content": "hi"}
            assert len(await session.get_items()) == 2
            await session.clear_session()
            assert await session.get_items() == [] and await session.pop_item() is None
            assert [i["content"] for i in await other.get_items()] == ["elsewhere"]

    asyncio.run(scenario())


def test_the_memory_tools_as_the_sdk_invokes_them(service: tuple[str, str]) -> None:  # noqa: F811
    import json

    from agents.tool_context import ToolContext

    from memos.integrations.openai_agents import memory_tools

    url, key = service
    who = f"t{time.monotonic_ns()}"

    async def scenario() -> None:
        async with AsyncMemOSClient(base_url=url, api_key=key) as client:
            search, add = memory_tools(client, user_id=who)
            assert (search.name, add.name) == ("search_memories", "add_memory")
            assert search.params_json_schema["required"] == ["query"]

            async def invoke(tool, arguments: dict) -> str:
                raw = json.dumps(arguments)
                context = ToolContext(
                    None, tool_name=tool.name, tool_call_id="c1", tool_arguments=raw
                )
                return await tool.on_invoke_tool(context, raw)

            assert (await invoke(add, {"text": "My desk is D412."})).startswith("remembered")
            assert await invoke(search, {"query": "where is my desk?"}) == "- My desk is D412."

    asyncio.run(scenario())
