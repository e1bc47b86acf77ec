"""The checks that stay in the suite (issue 14), short versions of
`benchmarks/reliability_bench.py`: kill -9 during writes on SQLite and PostgreSQL, the
schema fuzzer over the server's own OpenAPI, and properties of tenant isolation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from benchmarks.reliability import (
    PostgresSchema,
    cli_key,
    crash_cycles,
    fuzz_api,
    probe_isolation,
)
from memos.core import MemOS
from memos.serve_process import ServeProcess
from memos.server.app import create_app
from tests.conftest import MODEL_CACHE, POSTGRES_URL, api_key

CI_CRASH_CYCLES = 3
LONG_CRASH_CYCLES = 20  # `pytest -m long`; the benchmark runs as many


def _serve_env(database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off")
    if database_url:
        env["MEMOS_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    with PostgresSchema(POSTGRES_URL) as url:
        yield url


def _crash(tmp_path: Path, database_url: str | None, cycles: int, seed: int) -> None:
    report = crash_cycles(tmp_path, _serve_env(database_url), cycles=cycles, seed=seed)
    assert report.cycles == cycles
    assert report.acknowledged_writes >= cycles, "the writer never got a write in"
    assert report.problems == []
    assert (report.lost_writes, report.half_written_batches, report.index_mismatches) == (0, 0, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_during_writes_loses_nothing_acknowledged(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("fresh_postgres") if backend == "postgres" else None
    _crash(tmp_path, url, CI_CRASH_CYCLES, seed=14)


@pytest.mark.long
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_many_cycles(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("fresh_postgres") if backend == "postgres" else None
    _crash(tmp_path, url, LONG_CRASH_CYCLES, seed=114)


def test_the_schema_fuzzer_finds_no_5xx_and_no_nonconforming_answer(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, _serve_env()) as server:
        key = (tmp_path / "var" / "bootstrap-key").read_text().strip()
        report = fuzz_api(server.url, key, max_examples=8, seed=14)
    assert report.cases >= 300, report.output[-3000:]
    assert (report.server_errors, report.failures) == (0, 0), report.output[-6000:]
    assert report.returncode == 0, report.output[-3000:]


def test_a_tenant_probing_another_over_http_sees_nothing(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, _serve_env()) as server:
        owner = (tmp_path / "var" / "bootstrap-key").read_text().strip()
        prober = cli_key(tmp_path, _serve_env(), "prober")
        report = probe_isolation(server.url, owner, prober, rounds=3)
    assert report.attempts == 75 and report.cross_namespace_reads == 0, report.problems


# --- properties of isolation, in process -------------------------------------------------

texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=80
).filter(str.strip)
names = st.text("abcdefghij0123456789-_", min_size=1, max_size=12)


@pytest.fixture
def two_tenants(memos: MemOS) -> Iterator[tuple[TestClient, TestClient]]:
    app = create_app(memos, background_jobs=False)
    with TestClient(app) as owner, TestClient(app) as prober:
        owner.headers["Authorization"] = f"Bearer {api_key(memos, f'a{uuid.uuid4().hex[:12]}')}"
        prober.headers["Authorization"] = f"Bearer {api_key(memos, f'b{uuid.uuid4().hex[:12]}')}"
        yield owner, prober


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=texts,
    user=names,
    tags=st.lists(names, max_size=3, unique=True),
    query=texts,
    probe_user=st.one_of(st.none(), names),
    probe_tag=st.one_of(st.none(), names),
)
def test_one_namespace_never_sees_another(
    two_tenants: tuple[TestClient, TestClient],
    text: str,
    user: str,
    tags: list[str],
    query: str,
    probe_user: str | None,
    probe_tag: str | None,
) -> None:
    owner, prober = two_tenants
    memory = owner.post(
        "/v1/memories", json={"text": text, "user_id": user, "tags": tags, "dedupe": False}
    )
    assert memory.status_code == 201, memory.text
    entry = owner.post("/v1/cache", json={"query": text[:200], "response": "owner's answer"})
    assert entry.status_code == 201, entry.text
    mid, eid = memory.json()["id"], entry.json()["id"]
    task = owner.post("/v1/tasks", json={"title": text[:200], "memory_ids": [mid]}).json()
    composed = owner.put(f"/v1/compositions/c-{user}", json={"memory_ids": [mid]})
    assert composed.status_code in (200, 201), composed.text

    filters = {
        k: v
        for k, v in (("user_id", probe_user), ("tags", [probe_tag] if probe_tag else None))
        if v
    }
    for probe in (
        prober.get(f"/v1/memories/{mid}"),
        prober.get(f"/v1/memories/{mid}/history"),
        prober.patch(f"/v1/memories/{mid}", json={"text": "taken"}),
        prober.post(f"/v1/memories/{mid}/rollback", json={"version": 1}),
        prober.delete(f"/v1/memories/{mid}"),
        prober.get(f"/v1/cache/entries/{eid}"),
        prober.delete(f"/v1/cache/entries/{eid}"),
        prober.delete(f"/v1/memories/{mid}", params={"erase": "true"}),
        prober.post(f"/v1/memories/{mid}/unmerge"),
        prober.get(f"/v1/tasks/{task['id']}"),
        prober.get(f"/v1/tasks/{task['id']}/context"),
        prober.patch(f"/v1/tasks/{task['id']}", json={"status": "done"}),
        prober.get(f"/v1/compositions/c-{user}"),
        prober.delete(f"/v1/compositions/c-{user}"),
    ):
        assert probe.status_code == 404, probe.text
    for query_text in (query, text):
        found = prober.post(
            "/v1/memories/search", json={"query": query_text, "top_k": 100, "filters": filters}
        )
        assert found.status_code == 200 and found.json()["results"] == []
    listed = prober.get("/v1/memories", params={"user_id": user})
    assert listed.status_code == 200 and listed.json()["items"] == []
    lookup = prober.post("/v1/cache/lookup", json={"query": text[:200]})
    assert lookup.status_code == 200 and lookup.json()["hit"] is False
    assert owner.get(f"/v1/memories/{mid}").json()["version"] == 1  # untouched
    assert owner.get(f"/v1/tasks/{task['id']}").json()["status"] == "todo"
    assert prober.get("/v1/tasks").json()["items"] == []
