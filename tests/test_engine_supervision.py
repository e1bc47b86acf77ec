"""A request that makes the engine fail fails alone with a 503, the engine comes back
by itself within about its start time, and every later request is served."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from litestar.testing import TestClient

from memos.llm.chat import ChatService
from memos.llm.embedded import EmbeddedBackend
from memos.llm.engine import Engine, EngineFailedError
from memos.server.app import create_app
from tests.conftest import api_key

PROMPT = {"prompt_token_ids": list(range(200, 260))}


async def _reply(engine: Engine, seed: int, max_tokens: int = 8) -> str | BaseException:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=seed)
    try:
        return (await engine.generate(PROMPT, params)).outputs[0].text
    except Exception as exc:
        return exc


async def _replies(engine: Engine, seeds: range) -> list[str | BaseException]:
    together = asyncio.gather(*(_reply(engine, seed=s) for s in seeds))
    return await asyncio.wait_for(together, timeout=120)


def _wait_until_serving(engine: Engine) -> float:
    began = time.monotonic()
    deadline = began + max(120.0, 4 * (engine.started_s or 30.0))
    while not engine.running:
        assert time.monotonic() < deadline, f"the engine is still {engine.state}"
        time.sleep(0.2)
    return time.monotonic() - began


async def _fail_beside(engine: Engine) -> tuple[str | BaseException, str | BaseException]:
    """A long request in flight, then one whose seed the sampler cannot take (the
    service refuses it with a 422; here it goes to the engine directly, as a bug in a
    check would let it)."""
    innocent = asyncio.create_task(_reply(engine, seed=1, max_tokens=256))
    await asyncio.sleep(0.5)
    culprit = await _reply(engine, seed=2**64)
    return await innocent, culprit


def test_a_failing_step_fails_its_requests_with_a_503_and_the_engine_restarts(
    engine: Engine,
) -> None:
    restarts = engine.restarts
    innocent, culprit = asyncio.run(_fail_beside(engine))
    # neither gets the culprit's error (a ValueError would read as the caller's 422)
    assert isinstance(culprit, EngineFailedError) and "restarting" in str(culprit)
    assert isinstance(innocent, EngineFailedError)
    assert engine.state == "restarting"
    back_in = _wait_until_serving(engine)
    assert back_in < max(60.0, 2 * (engine.started_s or 30.0))
    assert engine.restarts == restarts + 1
    replies = asyncio.run(_replies(engine, seeds=range(3)))
    assert all(isinstance(r, str) and r for r in replies), replies


@pytest.fixture
def chat_client(sqlite_url: str, tmp_path, embedder, engine, ns: str):
    from memos.config import Settings
    from memos.core import MemOS

    memos = MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder)
    app = create_app(memos, background_jobs=False, chat=ChatService(EmbeddedBackend(engine)))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {api_key(memos, ns)}"
        yield client
    memos.close()


def test_over_http_the_seed_is_refused_and_a_restart_answers_503(
    chat_client: TestClient, engine: Engine
) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "cache": False}
    restarts = engine.restarts
    r = chat_client.post("/v1/chat/completions", json={**body, "seed": 2**64})
    assert r.status_code == 422 and "seed" in r.json()["detail"]
    assert engine.restarts == restarts and engine.running  # never reached the engine

    asyncio.run(_reply(engine, seed=2**64))  # fail the engine from outside the service
    r = chat_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1 and "restarting" in r.json()["detail"]
    assert chat_client.get("/readyz").json() == {"status": "ready", "chat": "restarting"}
    _wait_until_serving(engine)
    assert chat_client.get("/readyz").json() == {"status": "ready", "chat": "ready"}
    r = chat_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    metrics = chat_client.get("/metrics").text
    assert f"memos_kv_engine_restarts {float(engine.restarts)}" in metrics


def test_an_engine_that_never_started_says_failed(tmp_path) -> None:
    from memos.llm.engine import EngineSettings, EngineUnavailableError

    engine = Engine(EngineSettings(tmp_path / "no-model"))
    assert engine.state == "loading"
    with pytest.raises(EngineUnavailableError, match="memos models prepare"):
        engine.start()
    assert engine.state == "failed" and not engine.running
    assert "no model" in (engine.start_error or "")


@pytest.fixture
def chat_server(sqlite_url: str, tmp_path, embedder, engine, ns: str):
    """The app on a real HTTP server (the test client buffers a stream whole)."""
    import threading

    import uvicorn

    from memos.config import Settings
    from memos.core import MemOS
    from memos.serve_process import free_port

    memos = MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder)
    app = create_app(memos, background_jobs=False, chat=ChatService(EmbeddedBackend(engine)))
    server = uvicorn.Server(uvicorn.Config(app, port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}", api_key(memos, ns)
    server.should_exit = True
    thread.join(timeout=30)
    memos.close()


def test_a_stream_cut_by_a_failure_ends_with_an_error_event(chat_server, engine: Engine) -> None:
    import httpx

    base, key = chat_server
    body = {
        "messages": [{"role": "user", "content": "Tell a long story about a river."}],
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
        "cache": False,
    }
    with httpx.stream(
        "POST",
        f"{base}/v1/chat/completions",
        json=body,
        timeout=120,
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert '"role": "assistant"' in first
        asyncio.run(_reply(engine, seed=2**64))  # the engine fails mid-stream
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest and rest[-1] != "data: [DONE]"
    error = json.loads(rest[-1].removeprefix("data: "))["error"]
    assert error["code"] == 503 and "restarting" in error["message"]
    _wait_until_serving(engine)
