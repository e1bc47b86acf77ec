"""Facts the chat model finds in a memory's text: only facts grounded in the text are
kept (parse_facts), and the real embedded model's are asserted with the memory's version
as provenance, or not at all once the memory is gone."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.graph.llm_extract import ExtractionQueue, Pending, parse_facts
from memos.graph.service import FactInput, MemoryRef
from memos.llm.chat import ChatRequest, ChatService
from memos.llm.embedded import EmbeddedBackend
from memos.server.app import create_app
from tests.conftest import api_key

NOTE = "Bob Chen took over Larkspur; it listens on port 8443 since Monday."


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"subject": "Larkspur", "predicate": "owner", "object": "Bob Chen"}',
         [FactInput("Larkspur", "owner", object="Bob Chen")]),
        ('Sure! {"subject": "Larkspur", "predicate": "Listens On Port", "value": 8443} ok',
         [FactInput("Larkspur", "listens_on_port", value="8443")]),
        ('{"subject": "Quillfeather", "predicate": "owner", "object": "Bob Chen"}', []),
        ('{"subject": "Larkspur", "predicate": "owner", "object": "Dana"}', []),
        ('{"subject": "Larkspur", "predicate": "is", "object": "larkspur"}', []),
        ('{"subject": "Larkspur", "predicate": "owner"}', []),
        ('{"subject": "Larkspur", "predicate": "x", "object": "Bob Chen", "value": "8443"}', []),
        ('{"subject": "Larkspur", "predicate": "!!", "value": "8443"}', []),
        ("NONE", []),
        ('{"subject": "Larkspur", "predicate": "owner", "object": "Bob Chen"', []),
        ('["Larkspur", "owner", "Bob Chen"]', []),
    ],
)  # fmt: skip
def test_only_facts_the_text_grounds_are_kept(reply: str, expected: list[FactInput]) -> None:
    assert parse_facts(reply, NOTE) == expected


def test_a_reply_yields_each_fact_once_and_at_most_eight() -> None:
    line = '{"subject": "Larkspur", "predicate": "p%d", "value": "8443"}'
    reply = "\n".join([line % 0, line % 0, *(line % i for i in range(1, 20))])
    facts = parse_facts(reply, NOTE)
    assert len(facts) == 8 and len({f.predicate for f in facts}) == 8


def test_the_embedded_model_extracts_grounded_facts_with_provenance(
    memos: MemOS, ns: str, engine
) -> None:
    chat = ChatService(EmbeddedBackend(engine))

    async def complete(messages: list[dict[str, str]]) -> str:
        request = ChatRequest(messages, max_tokens=200, temperature=0.0, seed=0)
        return (await chat.complete(request, "extract")).text

    note = "Dana Reyes moved to the Payments team on Monday."
    memory = memos.add(note, namespace=ns).memory
    queue = ExtractionQueue(memos.graph)
    item = Pending(ns, MemoryRef(memory.id, memory.version), note)
    asserted = asyncio.run(queue.process(item, complete))
    assert asserted >= 1  # greedy decoding: the same reply every run
    graph = memos.graph.graph(ns)
    facts = graph.facts_of_memory(memory.id)
    assert len(facts) == asserted
    for fact in facts:
        assert (fact.memory_id, fact.memory_version) == (memory.id, memory.version)
        said = [graph.entities[fact.subject].name,
                graph.entities[fact.object].name if fact.object else fact.value]  # fmt: skip
        assert all(part.casefold() in note.casefold() for part in said)

    memos.update(memory.id, namespace=ns, text="Dana Reyes stays on the Search team.")
    assert asyncio.run(queue.process(item, complete)) == 0  # version 1 no longer holds
    memos.delete(memory.id, namespace=ns)
    later = Pending(ns, MemoryRef(memory.id, 2), note)
    assert asyncio.run(queue.process(later, complete)) == 0
    assert len(graph.facts_of_memory(memory.id)) == asserted


def test_the_service_extracts_from_new_memories_when_configured(
    settings: Settings, embedder, engine, ns: str, tmp_path: Path
) -> None:
    config = tmp_path / "memos.toml"
    config.write_text("[graph]\nllm_extract = true\n")
    store = MemOS(replace(settings, config_path=config), embedder=embedder)
    try:
        assert store.extraction is not None
        app = create_app(store, background_jobs=False, chat=ChatService(EmbeddedBackend(engine)))
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {api_key(store, ns)}"
            r = client.post("/v1/memories", json={"text": "Dana Reyes moved to the Payments "
                                                          "team on Monday."})  # fmt: skip
            memory_id = r.json()["id"]
            deadline = time.monotonic() + 120
            while store.extraction.extracted == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            facts = store.graph.graph(ns).facts_of_memory(memory_id)
            assert store.extraction.extracted == len(facts) >= 1
    finally:
        store.close()


def test_the_extractor_is_off_by_default(memos: MemOS) -> None:
    assert memos.extraction is None
