"""An OpenAI Agents SDK agent whose conversation and long-term memory live in MemOS.

The model is the service's own (its OpenAI-compatible /v1/chat/completions), so the
example needs nothing but a running `memos serve` (`make run`) and its key:

    MEMOS_URL=http://127.0.0.1:8000 MEMOS_API_KEY=$(cat var/bootstrap-key) \
        python examples/openai_agents_session.py
"""

from __future__ import annotations

import asyncio
import os

from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI

from memos.client import AsyncMemOSClient
from memos.integrations.openai_agents import MemOSSession, memory_tools


async def main() -> None:
    url = os.environ.get("MEMOS_URL", "http://127.0.0.1:8000")
    key = os.environ["MEMOS_API_KEY"]
    set_tracing_disabled(True)  # no traces leave the machine
    async with AsyncMemOSClient(base_url=url, api_key=key) as client:
        await client.add("My parking spot is C-17.", user_id="ana")
        model = OpenAIChatCompletionsModel(
            model="SmolLM2-135M-Instruct",
            openai_client=AsyncOpenAI(base_url=f"{url}/v1", api_key=key),
        )
        agent = Agent(
            name="helper",
            instructions="Answer in one short sentence.",
            model=model,
            tools=memory_tools(client, user_id="ana"),
        )
        session = MemOSSession("example-chat", client, user_id="ana")
        await session.clear_session()
        result = await Runner.run(agent, "Where do I park?", session=session, max_turns=2)
        print("answer:", result.final_output)
        items = await session.get_items()
        print(f"the session holds {len(items)} items:", [i.get("role") for i in items])


if __name__ == "__main__":
    asyncio.run(main())
