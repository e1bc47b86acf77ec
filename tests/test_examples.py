"""Each example in examples/ runs as its docs say, against a live `memos serve` with the
embedded model (every framework's LLM is the service's OpenAI-compatible endpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE, ROOT


@pytest.fixture(scope="module")
def chat_service(
    tmp_path_factory: pytest.TempPathFactory, chat_model_dir: Path
) -> Iterator[tuple[str, str]]:
    """A live service with the embedded model, once it answers."""
    work = tmp_path_factory.mktemp("examples-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(
        MEMOS_MODEL_DIR=str(MODEL_CACHE),
        MEMOS_LLM="embedded",
        MEMOS_LLM_KV_BLOCKS="32",
        MEMOS_HOST_KV_BLOCKS="0",
    )
    with ServeProcess(work, env) as server:
        server.wait_for_chat()
        yield server.url, (work / "var" / "bootstrap-key").read_text().strip()


def run_example(name: str, service: tuple[str, str]) -> str:
    url, key = service
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env={**os.environ, "MEMOS_URL": url, "MEMOS_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_openai_agents_example(chat_service: tuple[str, str]) -> None:
    out = run_example("openai_agents_session.py", chat_service)
    assert "answer:" in out
    assert "the session holds 2 items: ['user', 'assistant']" in out, out


def test_langgraph_example(chat_service: tuple[str, str]) -> None:
    out = run_example("langgraph_store.py", chat_service)
    assert "answer:" in out and "the store holds 2 items for ana" in out, out


def test_smolagents_example(chat_service: tuple[str, str]) -> None:
    out = run_example("smolagents_memory.py", chat_service)
    stored = [line for line in out.splitlines() if "steps stored" in line]
    assert stored and not stored[0].startswith("0 "), out
    assert "'Step 1" in stored[0], out
