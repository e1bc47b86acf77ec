"""A LangGraph graph whose long-term memory is MemOS (``MemOSStore``): a node recalls
what the store holds for the user, asks the service's own model (its OpenAI-compatible
endpoint) with those memories, and stores the exchange.

    MEMOS_URL=http://127.0.0.1:8000 MEMOS_API_KEY=$(cat var/bootstrap-key) \
        python examples/langgraph_store.py
"""

from __future__ import annotations

import os
import uuid
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from openai import OpenAI

from memos.client import MemOSClient
from memos.integrations.langgraph import MemOSStore

URL = os.environ.get("MEMOS_URL", "http://127.0.0.1:8000")
KEY = os.environ["MEMOS_API_KEY"]


class State(TypedDict):
    user: str
    question: str
    answer: str


def answer(state: State, *, store: BaseStore) -> dict[str, str]:
    namespace = ("memories", state["user"])
    recalled = store.search(namespace, query=state["question"], limit=3)
    notes = "\n".join(f"- {item.value['text']}" for item in recalled)
    llm = OpenAI(base_url=f"{URL}/v1", api_key=KEY)
    reply = llm.chat.completions.create(
        model="SmolLM2-135M-Instruct",
        messages=[
            {"role": "system", "content": f"What you remember:\n{notes}"},
            {"role": "user", "content": state["question"]},
        ],
        max_tokens=24,
        temperature=0,
    )
    text = reply.choices[0].message.content or ""
    store.put(namespace, str(uuid.uuid4()), {"text": f"Q: {state['question']} A: {text}"})
    return {"answer": text}


def main() -> None:
    with MemOSClient(base_url=URL, api_key=KEY) as client:
        store = MemOSStore(client, owner_levels={"user_id": 1})
        store.put(("memories", "ana"), "parking", {"text": "Ana parks in spot C-17."})
        builder = StateGraph(State)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        builder.add_edge("answer", END)
        graph = builder.compile(store=store)
        result = graph.invoke({"user": "ana", "question": "Where do I park?", "answer": ""})
        print("answer:", result["answer"])
        kept = store.search(("memories", "ana"), limit=10)
        print(f"the store holds {len(kept)} items for ana")


if __name__ == "__main__":
    main()
