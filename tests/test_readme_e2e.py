"""`memos serve` as `make run` starts it, driven by the README's own curl examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE, ROOT


@contextmanager
def serving(workdir: Path, llm: str = "off") -> Iterator[str]:
    """A real `memos serve` with the embedded defaults, run from ``workdir`` (the chat
    engine off unless asked for: it costs half a minute per start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env["MEMOS_MODEL_DIR"] = str(MODEL_CACHE)
    env["MEMOS_LLM"] = llm
    with ServeProcess(workdir, env) as server:
        yield server.url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serving(tmp_path) as base:
        yield base, tmp_path


def _readme_example(name: str = "readme-example") -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        rf"<!-- {name}:start -->\s*```sh\n(.*?)```\s*<!-- {name}:end -->", readme, re.S
    )
    assert block, f"README lost its {name} block"
    return block.group(1)


def _run_readme_example(name: str, base: str, workdir: Path, timeout: int = 120) -> list[str]:
    """Run a README curl block against ``base``; each command's answer on its own line."""
    script = _readme_example(name).replace("http://127.0.0.1:8000", base)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("\ncurl ", "\necho; curl ")],
        cwd=workdir, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_readme_examples_answer_as_shown(server: tuple[str, Path]) -> None:
    lines = _run_readme_example("readme-example", *server)
    added, batch, search, listed, patched, history, rolled, deleted, gone = lines
    assert json.loads(added)["created"] is True and json.loads(added)["version"] == 1
    assert json.loads(batch)["created"] == [True, True]
    results = json.loads(search)["results"]
    assert results[0]["text"] == "Alice prefers window seats on long flights"
    assert all(r["user_id"] == "alice" for r in results) and len(results) == 2
    assert [m["text"] for m in json.loads(listed)["items"]] == [
        "Alice prefers window seats on long flights"
    ]
    assert json.loads(patched)["version"] == 2
    assert [v["version"] for v in json.loads(history)["versions"]] == [1, 2]
    assert json.loads(rolled)["version"] == 3
    assert "window seats" in json.loads(rolled)["text"]
    assert deleted == "204"
    problem = json.loads(gone)
    assert problem["status"] == 404 and "deleted" in problem["detail"]


def test_readme_cache_example_answers_as_shown(server: tuple[str, Path]) -> None:
    lines = _run_readme_example("readme-cache-example", *server)
    stored, hit, miss, stats = (json.loads(line) for line in lines)
    assert stored["category"] == "general" and stored["evicted"] == []
    assert hit["hit"] is True and hit["entry"]["id"] == stored["id"]
    assert hit["entry"]["response"] == "Use the reset link."
    assert miss["hit"] is False and miss["entry"] is None
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 0.5)


def test_readme_graph_example_answers_as_shown(server: tuple[str, Path]) -> None:
    lines = _run_readme_example("readme-graph-example", *server)
    alice, bob, now, february, timeline = (json.loads(line) for line in lines)
    assert (alice["subject"], alice["object"], alice["valid_to"]) == ("Larkspur", "Alice", None)
    assert bob["object"] == "Bob"
    assert now["entity"]["name"] == "Larkspur" and now["facts"]["owner"]["object"] == "Bob"
    owner_then = february["facts"]["owner"]
    assert owner_then["object"] == "Alice" and owner_then["valid_to"] == "2026-03-01T00:00:00Z"
    first, second = timeline["facts"]
    assert first["object"] == "Alice" and first["superseded_by"] == bob["id"]
    assert second["object"] == "Bob" and second["valid_to"] is None


def test_restart_keeps_memories_index_and_key(tmp_path: Path) -> None:
    with serving(tmp_path) as base:
        key = (tmp_path / "var" / "bootstrap-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{base}/v1/memories", json={"text": "kept across restarts"}, headers=headers
        )
        assert r.status_code == 201
        memory_id = r.json()["id"]
    assert list((tmp_path / "var" / "index").glob("default.*.hnsw")), "no snapshot at shutdown"
    with serving(tmp_path) as base:
        assert (tmp_path / "var" / "bootstrap-key").read_text().strip() == key
        hits = httpx.post(
            f"{base}/v1/memories/search", json={"query": "restarts"}, headers=headers
        ).json()["results"]
        assert [h["id"] for h in hits] == [memory_id]
        assert "memos_index_vectors 1.0" in httpx.get(f"{base}/metrics").text


def test_the_bootstrap_key_is_made_once_shown_once_and_stays_revoked(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with serving(tmp_path) as base:
        key = (data / "bootstrap-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{base}/v1/memories", json={"text": "private"},
                          headers=headers).status_code == 201  # fmt: skip
        first_log = next(tmp_path.glob("server-*.log")).read_text()
        assert first_log.count(key) == 1  # shown on the first start only
        keys = httpx.get(f"{base}/v1/keys", headers=headers).json()["keys"]
        assert [k["label"] for k in keys] == ["bootstrap"]
        assert httpx.delete(f"{base}/v1/keys/{keys[0]['id']}", headers=headers).status_code == 204
        assert httpx.get(f"{base}/v1/memories", headers=headers).status_code == 401  # at once
    # the data dir and what the service wrote in it are for the service's user only
    assert data.stat().st_mode & 0o777 == 0o700
    for path in [data / "memos.db", data / "bootstrap-key", *data.glob("index/*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is open to others"
    with serving(tmp_path) as base:
        assert httpx.get(f"{base}/v1/memories", headers=headers).status_code == 401
        logs = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
        assert logs.count(key) == 1 and "bootstrap key was revoked" in logs
        assert (data / "bootstrap-key").read_text().strip() == key  # no new key was made


def test_readme_chat_example_answers_as_shown(tmp_path: Path, chat_model_dir: Path) -> None:
    with serving(tmp_path, llm="embedded") as base:
        deadline = time.monotonic() + 300
        while httpx.get(f"{base}/readyz").json().get("chat") != "ready":
            assert time.monotonic() < deadline, "the chat engine did not start"
            time.sleep(1)
        lines = _run_readme_example("readme-chat-example", base, tmp_path)
        memory_lines = _run_readme_example("readme-memory-chat-example", base, tmp_path)
    added, answer, activation, scheduled = (json.loads(line) for line in memory_lines)
    assert answer["memory"]["used"] and set(answer["memory"]["used"]) <= set(added["ids"])
    assert answer["memory"]["stored"] is None and answer["memory"]["activation"] is None
    assert sorted(activation["memory_ids"]) == sorted(added["ids"])
    assert activation["prefix_tokens"] > 0 and set(activation["engine"]) == {
        "pinned_blocks", "host_blocks",
    }  # fmt: skip
    assert scheduled["failed"] == {} and scheduled["moved"]["activate"] == len(
        answer["memory"]["used"]
    )
    reply, program = [json.loads(line) for line in lines]
    assert reply["choices"][0]["message"]["content"]
    assert reply["program"] == {"turn": 0, "pin_ttl_s": 2.0}  # a tool not seen yet: 2 s
    assert program["id"] == "fix-bug-17" and program["turns"][0]["next_tool"] == "run_tests"


def test_readme_graph_search_example_answers_as_shown(server: tuple[str, Path]) -> None:
    lines = _run_readme_example("readme-graph-search-example", *server)
    added, now, then, path, neighbours = (json.loads(line) for line in lines)
    assert added["created"] == [True, True, True]
    assert {r["text"] for r in now["results"]} == {
        "Quillfeather is run by Dana Reyes now.",
        "Larkspur calls Quillfeather for every login.",
    }
    assert "Alice Moreno runs Quillfeather." in [r["text"] for r in then["results"]]
    assert "Quillfeather is run by Dana Reyes now." not in [r["text"] for r in then["results"]]
    assert path["found"] and [step.get("name") for step in path["chain"][::2]] == [
        "Larkspur",
        "Quillfeather",
        "Dana Reyes",
    ]
    assert [step["predicate"] for step in path["chain"][1::2]] == ["depends_on", "owner"]
    assert {n.get("name") for n in neighbours["nodes"]} == {"Quillfeather", "Dana Reyes"}
    assert [e["predicate"] for e in neighbours["edges"]] == ["owner"]


def test_readme_tasks_example_answers_as_shown(server: tuple[str, Path]) -> None:
    lines = _run_readme_example("readme-tasks-example", *server)
    context, cycle = (json.loads(line) for line in lines)
    assert context["task"]["title"] == "Deploy"
    assert [t["title"] for t in context["path"]] == ["Ship 2.0"]
    assert [(t["title"], t["outcome"]) for t in context["dependencies"]] == [
        ("Build", "artifacts in s3://builds/2.0")
    ]
    assert cycle["status"] == 422 and "depends_on would make a cycle" in cycle["detail"]
