"""A store whose storage refuses writes (read-only, or full) answers writes with a 503
and Retry-After, keeps serving reads, says so at /readyz, and loses nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import event

from memos.config import Settings
from memos.core import MemOS
from memos.errors import StorageRefusedError
from memos.migrate import upgrade
from memos.server.app import create_app
from tests.conftest import api_key


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "memos.db"
    upgrade(f"sqlite:///{path}")
    return path


def _seed(url: str, tmp_path: Path, embedder, namespace: str) -> tuple[str, str]:
    """A memory and a key, written while the storage still takes writes."""
    with MemOS(Settings(data_dir=tmp_path / "w", database_url=url), embedder=embedder) as memos:
        memory_id = memos.add("kept while the disk is full", namespace=namespace).memory.id
        return memory_id, api_key(memos, namespace)


@pytest.fixture
def refusing(
    request, sqlite_file: Path, postgres_url: str, tmp_path: Path, embedder, ns: str
) -> Iterator[tuple[TestClient, MemOS, str]]:
    """(client, store, memory id) on storage that refuses writes, one way per param."""
    how = request.param
    url = f"sqlite:///{sqlite_file}" if how != "postgres-read-only" else postgres_url
    memory_id, secret = _seed(url, tmp_path, embedder, ns)
    if how == "sqlite-read-only":
        url = f"sqlite:///file:{sqlite_file}?mode=ro&uri=true"
    elif how == "postgres-read-only":
        url = url + "%20-cdefault_transaction_read_only%3Don"
    memos = MemOS(Settings(data_dir=tmp_path / "r", database_url=url), embedder=embedder)
    if how == "sqlite-full":

        def no_room(dbapi_connection, _record) -> None:  # SQLite's own SQLITE_FULL
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

        event.listen(memos.db.engine, "connect", no_room)
        memos.db.engine.dispose()
    with TestClient(create_app(memos, background_jobs=False)) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        yield client, memos, memory_id
    memos.close()


@pytest.mark.parametrize(
    "refusing", ["sqlite-read-only", "sqlite-full", "postgres-read-only"], indirect=True
)
def test_refused_writes_are_a_503_and_reads_go_on(refusing) -> None:
    client, _, memory_id = refusing
    got = client.get(f"/v1/memories/{memory_id}")
    assert got.status_code == 200 and got.json()["text"] == "kept while the disk is full"
    assert client.post("/v1/memories/search", json={"query": "disk"}).status_code == 200

    r = client.post("/v1/memories", json={"text": "x " * 10_000})
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "30"
    assert "storage refuses writes" in r.json()["detail"]
    patched = client.patch(f"/v1/memories/{memory_id}", json={"text": "changed " * 4000})
    assert patched.status_code == 503, patched.text

    ready = client.get("/readyz")
    assert ready.status_code == 503 and "storage refuses writes" in ready.json()["detail"]
    assert ready.headers["retry-after"] == "30"
    # nothing half-written: the memory is as it was, and only it is there
    assert client.get(f"/v1/memories/{memory_id}").json()["version"] == 1
    assert [m["id"] for m in client.get("/v1/memories").json()["items"]] == [memory_id]


def test_readiness_recovers_when_writes_are_taken_again(
    sqlite_file: Path, tmp_path: Path, embedder, ns: str
) -> None:
    memos = MemOS(
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{sqlite_file}"), embedder=embedder
    )
    try:
        memos.db.write_refusal = "the disk is full"  # as a refused write leaves it
        memos.db.refused_at = time.monotonic()
        assert memos.storage_refusal() == "the disk is full"  # still recent: it stands
        memos.db.refused_at -= 31
        assert memos.storage_refusal() is None  # the probe finds writes taken again
        memos.add("after the disk was freed", namespace=ns)
    finally:
        memos.close()


def test_the_python_api_raises_storage_refused(
    sqlite_file: Path, tmp_path: Path, embedder, ns: str
) -> None:
    _seed(f"sqlite:///{sqlite_file}", tmp_path, embedder, ns)
    url = f"sqlite:///file:{sqlite_file}?mode=ro&uri=true"
    with MemOS(Settings(data_dir=tmp_path / "r", database_url=url), embedder=embedder) as memos:
        with pytest.raises(StorageRefusedError, match="read-only"):
            memos.add("no room", namespace=ns)
        assert memos.storage_refusal() == "the database is read-only"
