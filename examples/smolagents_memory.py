"""A smolagents agent with MemOS memory tools, on the service's own model, whose every
step is stored as a memory by ``step_recorder``.

    MEMOS_URL=http://127.0.0.1:8000 MEMOS_API_KEY=$(cat var/bootstrap-key) \
        python examples/smolagents_memory.py
"""

from __future__ import annotations

import os

from smolagents import CodeAgent, OpenAIServerModel

from memos.client import MemOSClient
from memos.integrations.smolagents import AddMemoryTool, SearchMemoriesTool, step_recorder

URL = os.environ.get("MEMOS_URL", "http://127.0.0.1:8000")
KEY = os.environ["MEMOS_API_KEY"]


def main() -> None:
    with MemOSClient(base_url=URL, api_key=KEY) as client:
        client.add("The staging cluster is called Tern.", user_id="ana")
        model = OpenAIServerModel(
            model_id="SmolLM2-135M-Instruct",
            api_base=f"{URL}/v1",
            api_key=KEY,
            max_tokens=64,
            temperature=0,
        )
        agent = CodeAgent(
            tools=[SearchMemoriesTool(client, user_id="ana"), AddMemoryTool(client, user_id="ana")],
            model=model,
            max_steps=2,
            step_callbacks=[step_recorder(client, agent_id="smol-example")],
            verbosity_level=0,
        )
        # A 135M model rarely writes working code: the run may end without an answer.
        # Each step is stored either way.
        try:
            print("answer:", agent.run("What is the staging cluster called?"))
        except Exception as exc:
            print("the agent stopped:", type(exc).__name__)
        steps = list(client.list(agent_id="smol-example"))
        print(f"{len(steps)} steps stored; the first: {steps[-1].text[:80]!r}")


if __name__ == "__main__":
    main()
