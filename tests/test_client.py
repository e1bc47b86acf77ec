"""The Python clients against a live `memos serve`: both clients, every verb; retries
through a faulty network in front of the service (a lost answer, a 503 with
Retry-After) with a retried add stored once; typed exceptions with the server's
message; and the @memory decorator on sync, async and generator functions with the
service up and down."""

from __future__ import annotations

import asyncio
import http.server
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from memos.client import (
    AsyncMemOSClient,
    MemOSClient,
    MemOSConnectionError,
    NotFoundError,
    RetryPolicy,
    ValidationError,
    memory,
)
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real `memos serve` (embedded defaults, no chat model): its URL and key."""
    work = tmp_path_factory.mktemp("client-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off")
    with ServeProcess(work, env) as server:
        yield server.url, (work / "var" / "bootstrap-key").read_text().strip()


@pytest.fixture
def client(service: tuple[str, str]) -> Iterator[MemOSClient]:
    url, key = service
    with MemOSClient(base_url=url, api_key=key) as c:
        yield c


def user() -> str:
    return f"u{time.monotonic_ns()}"


class Driver:
    """One client of either kind, its verbs run the same way: ``do(client.add(...))``."""

    def __init__(self, kind: str, url: str, key: str) -> None:
        self.loop = asyncio.new_event_loop() if kind == "async" else None
        cls = AsyncMemOSClient if kind == "async" else MemOSClient
        self.client = cls(base_url=url, api_key=key)

    def __call__(self, value: Any) -> Any:
        return self.loop.run_until_complete(value) if self.loop is not None else value

    def all(self, items: Any) -> list[Any]:
        if self.loop is None:
            return list(items)

        async def collect() -> list[Any]:
            return [item async for item in items]

        return self.loop.run_until_complete(collect())

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.client.close())
            self.loop.close()
        else:
            self.client.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_verb_of_both_clients(service: tuple[str, str], kind: str) -> None:
    do = Driver(kind, *service)
    c, who = do.client, user()
    try:
        added = do(
            c.add(
                "Alice prefers window seats.",
                user_id=who,
                tags=["travel"],
                metadata={"from": "test"},
                importance=0.8,
            )
        )
        assert added.created and added.text == "Alice prefers window seats."
        again = do(c.add("Alice prefers window seats.", user_id=who, tags=["travel"]))
        assert again.created is False and again.id == added.id
        ids = do(
            c.add_batch(
                ["Bob likes aisle seats.", {"text": "Carol flies on Fridays."}], user_id=who
            )
        )
        assert len(ids) == 2
        hits = do(c.search("who likes the window?", user_id=who, top_k=2, mode="vector"))
        assert hits[0].id == added.id and hits[0].score > 0 and hits[0].text == added.text
        assert do(c.get(added.id)).tags == ("travel",)
        listed = do.all(c.list(user_id=who, page_size=1))  # walks three pages
        assert {m.id for m in listed} == {added.id, *ids}
        assert len(do(c.page(user_id=who, limit=2)).items) == 2
        assert do(c.update(added.id, text="Alice prefers aisle seats now.")).version == 2
        history = do(c.history(added.id))
        assert [v.operation for v in history] == ["create", "update"]
        assert history[0].source == "sdk"  # the client's adds are the SDK's
        assert do(c.rollback(added.id, 1)).text == "Alice prefers window seats."
        do(c.delete(ids[0]))
        with pytest.raises(NotFoundError, match="deleted"):
            do(c.get(ids[0]))

        question = f"What is the capital of France ({kind})?"
        entry = do(c.cache_store(question, "Paris."))
        found = do(c.cache_lookup(question))
        assert found.hit and found.entry_id == entry and found.response == "Paris."
        do(c.cache_invalidate(entry))
        assert not do(c.cache_lookup(question)).hit
        do(c.cache_store(question, "Paris."))
        assert do(c.cache_invalidate_category("general")) >= 1
        do(c.cache_store(question, "Paris."))
        assert do(c.cache_clear()) >= 1
        assert do(c.cache_stats())["hits"] >= 1

        name = f"Svc{time.monotonic_ns()}"
        assert do(c.entity(name, type="service"))["name"] == name
        do(c.add_fact(name, "owner", object="Alice", valid_from=datetime(2026, 1, 1, tzinfo=UTC)))
        do(c.add_fact(name, "owner", object="Bob", valid_from=datetime(2026, 3, 1, tzinfo=UTC)))
        assert do(c.entity_state(name))["facts"]["owner"]["object"] == "Bob"
        then = do(c.entity_state(name, as_of=datetime(2026, 2, 1, tzinfo=UTC)))
        assert then["facts"]["owner"]["object"] == "Alice"
        assert [f["object"] for f in do(c.entity_timeline(name))["facts"]] == ["Alice", "Bob"]
        near = do(c.neighbours(name, types=["owner"]))
        assert "Bob" in {n.get("name") for n in near["nodes"]}
        assert do(c.path(name, "Bob"))["found"] is True
        assert do(c.subgraph([name]))["nodes"]
        assert do(c.run_scheduler())["failed"] == {}
    finally:
        do.close()


def test_errors_are_typed_and_carry_the_servers_message(client: MemOSClient) -> None:
    with pytest.raises(ValidationError) as caught:
        client.search("x", top_k=0)
    assert caught.value.status == 422 and "top_k" in caught.value.detail
    assert caught.value.errors and caught.value.errors[0]["key"] == "top_k"
    with pytest.raises(NotFoundError, match="not found"):
        client.get("01a2b3c4-0000-7000-8000-000000000000")
    with pytest.raises(TypeError, match="unexpected keyword"):
        client.add_batch(["x"], colour="red")


# a faulty network in front of the service --------------------------------------------


class FaultyProxy:
    """Forwards requests to the service, but first plays its script: ``"lose"`` forwards
    the request and drops the connection instead of answering (the write happened, the
    client never hears), ``"busy"`` answers 503 with ``Retry-After: 1``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: list[str] = []
        self.seen = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy.seen += 1
                act = proxy.script.pop(0) if proxy.script else "pass"
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if act == "busy":
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                if act == "lose":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def proxy(service: tuple[str, str]) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(service[0])
    yield faulty
    faulty.close()


def test_a_lost_answer_is_retried_and_the_add_stored_once(
    proxy: FaultyProxy, service: tuple[str, str]
) -> None:
    who = user()
    retry = RetryPolicy(max_retries=3, backoff_s=0.05)
    with MemOSClient(base_url=proxy.url, api_key=service[1], retry=retry) as c:
        proxy.script = ["lose"]
        added = c.add("The deploy freeze starts Friday.", user_id=who, dedupe=False)
        assert proxy.seen == 2  # sent, answer lost, sent again with the same key
        assert [m.id for m in c.list(user_id=who)] == [added.id]  # stored once
        proxy.script = ["lose"]
        ids = c.add_batch(["one", "two"], user_id=who, dedupe=False)
        assert len(list(c.list(user_id=who))) == 3 and len(ids) == 2


def test_503_is_retried_after_what_retry_after_says(
    proxy: FaultyProxy, service: tuple[str, str]
) -> None:
    with MemOSClient(base_url=proxy.url, api_key=service[1]) as c:
        proxy.script = ["busy", "busy"]
        began = time.monotonic()
        assert c.search("anything", top_k=1) is not None
        assert time.monotonic() - began >= 2.0 and proxy.seen == 3
        proxy.script = ["busy"] * 5
        with pytest.raises(Exception, match="503"):
            MemOSClient(
                base_url=proxy.url, api_key=service[1], retry=RetryPolicy(max_retries=1)
            ).search("x")


# the decorator ----------------------------------------------------------------------


def test_the_decorator_hands_memories_in_and_stores_the_exchange(client: MemOSClient) -> None:
    who = user()
    client.add("My locker code is 4821.", user_id=who)
    seen: list[list[str]] = []

    @memory(client, user_id=who, top_k=1)
    def answer(question: str, memories: list | None = None) -> str:
        seen.append([m.text for m in memories or []])
        return "It is 4821."

    assert answer("What is my locker code?") == "It is 4821."
    assert seen == [["My locker code is 4821."]]
    stored = [m.text for m in client.list(user_id=who)]
    assert "User: What is my locker code?\nAssistant: It is 4821." in stored

    @memory(client, user_id=who, top_k=1, store=False)
    def chat(messages: list[dict]) -> str:
        seen.append([m["content"] for m in messages])
        return "ok"

    chat([{"role": "user", "content": "What is my locker code?"}])
    assert seen[-1][0].startswith("What you remember") and "4821" in seen[-1][0]

    @memory(client, user_id=who, agent_id="streamer")
    def stream(question: str):
        yield "The code "
        yield "is 4821."

    assert "".join(stream("Tell me the locker code")) == "The code is 4821."
    streamed = client.search(
        "Tell me the locker code",
        user_id=who,
        top_k=5,
        mode="vector",
        filters={"agent_id": "streamer"},
    )
    assert streamed[0].text == "User: Tell me the locker code\nAssistant: The code is 4821."


def test_the_decorator_on_async_functions_and_generators(service: tuple[str, str]) -> None:
    url, key = service
    who = user()

    async def scenario() -> None:
        async with AsyncMemOSClient(base_url=url, api_key=key) as c:
            await c.add("My parking spot is C-17.", user_id=who)

            @memory(c, user_id=who, top_k=1)
            async def answer(question: str, memories: list | None = None) -> str:
                return f"Spot: {memories[0].text if memories else '?'}"

            assert await answer("Where do I park?") == "Spot: My parking spot is C-17."

            @memory(c, user_id=who)
            async def stream(question: str):
                for part in ("C-", "17"):
                    yield part

            assert [p async for p in stream("Which spot again?")] == ["C-", "17"]
            texts = {m.text async for m in c.list(user_id=who)}
            assert "User: Which spot again?\nAssistant: C-17" in texts
            assert "User: Where do I park?\nAssistant: Spot: My parking spot is C-17." in texts

    asyncio.run(scenario())


def test_with_the_service_down_the_function_runs_unless_strict(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = MemOSClient(
        base_url="http://127.0.0.1:9", api_key="mk_x", retry=RetryPolicy(max_retries=0)
    )

    @memory(down, user_id="u")
    def answer(question: str, memories: list | None = None) -> str:
        return f"{len(memories or [])} memories"

    with caplog.at_level(logging.WARNING):
        assert answer("anything?") == "0 memories"
    assert "going on without it" in caplog.text

    @memory(down, user_id="u", strict=True)
    def strict(question: str) -> str:
        return "never"

    with pytest.raises(MemOSConnectionError):
        strict("anything?")

    async_down = AsyncMemOSClient(
        base_url="http://127.0.0.1:9", api_key="mk_x", retry=RetryPolicy(max_retries=0)
    )

    @memory(async_down, user_id="u")
    async def later(question: str) -> str:
        return "ran"

    assert asyncio.run(later("anything?")) == "ran"
    with pytest.raises(TypeError, match="AsyncMemOSClient"):
        memory(async_down)(lambda q: q)


def test_the_chat_and_activation_verbs(
    sqlite_url: str, tmp_path: Path, embedder, engine
) -> None:
    """chat() against the real engine, through the in-process app (an httpx client)."""
    from litestar.testing import TestClient

    from memos.config import Settings
    from memos.core import MemOS
    from memos.llm.chat import ChatService
    from memos.llm.embedded import EmbeddedBackend
    from memos.server.app import create_app
    from tests.conftest import api_key

    with MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder) as store:
        app = create_app(store, background_jobs=False, chat=ChatService(EmbeddedBackend(engine)))
        with TestClient(app) as http:
            c = MemOSClient(base_url=str(http.base_url), api_key=api_key(store, "chat"), http=http)
            added = c.add("My locker code is 4821.", user_id="alice")
            reply = c.chat(
                [{"role": "user", "content": "What is my locker code?"}],
                memory={"user_id": "alice", "top_k": 1},
                max_tokens=16,
                temperature=0,
            )
            assert reply.memory_used == [added.id] and reply.text
            made = c.activate(user_id="alice", memory_ids=[added.id])
            assert made["memory_ids"] == [added.id] and made["prefix_tokens"] > 0
            assert [a["id"] for a in c.activations()] == [made["id"]]
            c.deactivate(made["id"])
            assert c.activations() == []
