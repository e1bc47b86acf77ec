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


def test_every_memory_verb_round_trips(client: MemOSClient) -> None:
    who = user()
    added = client.add(
        "Alice prefers window seats.",
        user_id=who,
        tags=["travel"],
        metadata={"from": "test"},
        importance=0.8,
    )
    assert added.created and added.text == "Alice prefers window seats." and added.user_id == who
    again = client.add("Alice prefers window seats.", user_id=who)
    assert again.created is False and again.id == added.id
    ids = client.add_batch(
        ["Bob likes aisle seats.", {"text": "Carol flies on Fridays."}], user_id=who
    )
    assert len(ids) == 2
    hits = client.search("who likes the window?", user_id=who, top_k=2, mode="vector")
    assert hits[0].id == added.id and hits[0].score > 0 and hits[0].text == added.text
    assert client.get(added.id).tags == ("travel",)
    listed = list(client.list(user_id=who, page_size=1))  # walks three pages
    assert {m.id for m in listed} == {added.id, *ids}
    changed = client.update(added.id, text="Alice prefers aisle seats now.")
    assert changed.version == 2
    history = client.history(added.id)
    assert [v.operation for v in history] == ["create", "update"]
    assert history[0].source == "sdk"  # the client's adds are the SDK's
    assert client.rollback(added.id, 1).text == "Alice prefers window seats."
    client.delete(ids[0])
    with pytest.raises(NotFoundError, match="deleted"):
        client.get(ids[0])


def test_cache_graph_and_scheduler_verbs(client: MemOSClient) -> None:
    entry = client.cache_store("What is the capital of France?", "Paris.")
    found = client.cache_lookup("What's the capital of France?")
    assert found.hit and found.entry_id == entry and found.response == "Paris."
    client.cache_invalidate(entry)
    assert not client.cache_lookup("What's the capital of France?").hit
    name = f"Svc{time.monotonic_ns()}"
    client.add_fact(name, "owner", object="Alice", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    client.add_fact(name, "owner", object="Bob", valid_from=datetime(2026, 3, 1, tzinfo=UTC))
    assert client.entity_state(name)["facts"]["owner"]["object"] == "Bob"
    then = client.entity_state(name, as_of=datetime(2026, 2, 1, tzinfo=UTC))
    assert then["facts"]["owner"]["object"] == "Alice"
    assert [f["object"] for f in client.entity_timeline(name)["facts"]] == ["Alice", "Bob"]
    assert client.run_scheduler()["failed"] == {}


def test_errors_are_typed_and_carry_the_servers_message(client: MemOSClient) -> None:
    with pytest.raises(ValidationError) as caught:
        client.search("x", top_k=0)
    assert caught.value.status == 422 and "top_k" in caught.value.detail
    assert caught.value.errors and caught.value.errors[0]["key"] == "top_k"
    with pytest.raises(NotFoundError, match="not found"):
        client.get("01a2b3c4-0000-7000-8000-000000000000")
    with pytest.raises(TypeError, match="unexpected keyword"):
        client.add_batch(["x"], colour="red")


def test_the_async_client_does_the_same(service: tuple[str, str]) -> None:
    url, key = service
    who = user()

    async def scenario() -> None:
        async with AsyncMemOSClient(base_url=url, api_key=key) as c:
            added = await c.add("Dana runs the payments service.", user_id=who)
            ids = await c.add_batch(["Eve runs billing.", "Finn runs search."], user_id=who)
            hits = await c.search("who runs payments?", user_id=who, top_k=1)
            assert hits[0].id == added.id
            assert (await c.get(added.id)).text == added.text
            assert {m.id async for m in c.list(user_id=who, page_size=2)} == {added.id, *ids}
            assert (await c.update(added.id, importance=0.9)).importance == 0.9
            assert len(await c.history(added.id)) == 2
            assert (await c.rollback(added.id, 1)).version == 3
            await c.delete(added.id)
            with pytest.raises(NotFoundError):
                await c.get(added.id)
            entry = await c.cache_store("Ping?", "Pong.")
            assert (await c.cache_lookup("Ping?")).entry_id == entry
            assert "moved" in await c.run_scheduler()

    asyncio.run(scenario())


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


def test_the_chat_verb_answers_from_memory(
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
