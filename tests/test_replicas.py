"""Replicas on one PostgreSQL follow its change feed: what one writes, the other finds
(at once with ``after``, soon without), updates, deletes, cache entries, graph facts
and key revocations included; a restarted replica catches up from its snapshot; a lost
NOTIFY is covered by polling; a feed pruned past a replica makes it load everything."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.errors import InvalidInputError
from memos.memcube import changes
from memos.memcube.models import utcnow
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE, api_key

POLL_S = 0.2


def replica(url: str, data_dir: Path, embedder: Embedder, **settings) -> MemOS:
    settings = {"replica_poll_s": POLL_S, **settings}
    store = MemOS(Settings(data_dir=data_dir, database_url=url, **settings), embedder=embedder)
    return store.open()


@pytest.fixture
def pair(postgres_url: str, tmp_path: Path, embedder: Embedder) -> Iterator[tuple[MemOS, MemOS]]:
    a = replica(postgres_url, tmp_path / "a", embedder)
    b = replica(postgres_url, tmp_path / "b", embedder)
    yield a, b
    b.close()
    a.close()


def written(write: Callable[[], object]) -> int:
    """The change number a write made, as the API's MemOS-Seq header gives it."""
    with changes.marking_writes() as mark:
        write()
    assert mark.seq > 0
    return mark.seq


def found(store: MemOS, ns: str, query: str, after: int | None = None) -> list[str]:
    return [hit.memory.text for hit in store.search(query, namespace=ns, top_k=5,
                                                    mode="vector", after=after)]  # fmt: skip


def eventually(check: Callable[[], bool], within_s: float = 5.0) -> float:
    """Seconds until ``check()`` held; fails past ``within_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within_s, "never happened"
        time.sleep(0.01)
    return time.monotonic() - started


def index_matches_database(store: MemOS, ns: str) -> bool:
    return store.verify_index(ns) | {"vectors": 0} == {"vectors": 0, "missing": 0,
                                                        "extra": 0, "stale": 0}  # fmt: skip


def test_a_write_on_one_replica_is_found_on_the_other(pair: tuple[MemOS, MemOS], ns: str):
    a, b = pair
    b.search("warm up", namespace=ns)  # the namespace is loaded on b before a writes
    seq = written(lambda: a.add("The deploy window is Tuesday at 14:00", namespace=ns))
    # read-your-writes: with ``after`` the first search already finds it
    assert found(b, ns, "when is the deploy window", after=seq)[0].startswith("The deploy")

    memory = a.add("Alice owns the billing service", namespace=ns).memory
    eventually(lambda: "Alice owns the billing service" in found(b, ns, "who owns billing"))

    seq = written(lambda: a.update(memory.id, namespace=ns, text="Bob owns the billing service"))
    assert found(b, ns, "who owns billing", after=seq)[0] == "Bob owns the billing service"
    assert "Alice owns the billing service" not in found(b, ns, "who owns billing")

    seq = written(lambda: a.delete(memory.id, namespace=ns))
    assert "Bob owns the billing service" not in found(b, ns, "who owns billing", after=seq)
    assert index_matches_database(b, ns)

    # b writes too, and a follows it
    seq = written(lambda: b.add("The office closes at 18:00 on Fridays", namespace=ns))
    assert found(a, ns, "when does the office close", after=seq)[0].startswith("The office")


def test_cache_graph_and_key_changes_reach_the_other_replica(
    pair: tuple[MemOS, MemOS], ns: str
) -> None:
    a, b = pair
    b.graph.graph(ns)  # loaded before a writes
    seq = written(lambda: a.cache.store(ns, "What is the capital of France?", "Paris."))
    b.follower.wait_for(seq)
    assert b.cache.lookup(ns, "What is the capital of France?").hit

    seq = written(lambda: a.graph.assert_fact(ns, "Alice", "works_on", object="Checkout"))
    b.follower.wait_for(seq)
    assert b.graph.state(ns, "Alice")["works_on"].fact.object is not None
    seq = written(lambda: a.graph.assert_fact(ns, "Alice", "works_on", object="Billing"))
    b.follower.wait_for(seq)
    span = b.graph.state(ns, "Alice")["works_on"]
    assert b.graph.graph(ns).entities[span.fact.object].name == "Billing"

    seq = written(lambda: a.cache.invalidate_namespace(ns))
    b.follower.wait_for(seq)
    assert not b.cache.lookup(ns, "What is the capital of France?").hit

    key = api_key(a, ns)
    assert b.keys.namespace_for(key) == ns  # remembered by b for a few seconds...
    info = next(k for k in a.keys.list(ns) if key.startswith(k.prefix))
    seq = written(lambda: a.keys.revoke(info.id))
    b.follower.wait_for(seq)
    assert b.keys.namespace_for(key) is None  # ...but forgotten as the revocation arrives


def test_a_restarted_replica_catches_up_from_its_snapshot(
    postgres_url: str, tmp_path: Path, embedder: Embedder, ns: str
) -> None:
    a = replica(postgres_url, tmp_path / "a", embedder)
    b = replica(postgres_url, tmp_path / "b", embedder)
    try:
        first = [f"Fact number {i} about the pipeline" for i in range(20)]
        for text_ in first[:10]:
            a.add(text_, namespace=ns)
        b.follower.wait_for(written(lambda: a.add("The pipeline runs nightly", namespace=ns)))
        assert index_matches_database(b, ns)
        b.close()  # its snapshot is labelled with the change it reached
        gone = a.search("Fact number 3", namespace=ns, top_k=1, mode="vector")[0].memory.id
        a.delete(gone, namespace=ns)
        for text_ in first[10:]:  # mid-stream: a keeps writing while b is down
            a.add(text_, namespace=ns)
        b = replica(postgres_url, tmp_path / "b", embedder)
        index = b.indexes.get(ns)
        assert index.seq is not None  # the snapshot was loaded, not rebuilt
        assert index_matches_database(b, ns) and gone not in index
        assert len(index) == 20
    finally:
        b.close()
        a.close()


def test_a_lost_notify_is_covered_by_polling(
    postgres_url: str, tmp_path: Path, embedder: Embedder, ns: str
) -> None:
    a = replica(postgres_url, tmp_path / "a", embedder)
    listening = replica(postgres_url, tmp_path / "b", embedder)
    polling = replica(postgres_url, tmp_path / "c", embedder, replica_listen=False)
    try:
        for store in (listening, polling):
            store.search("warm up", namespace=ns)
        eventually(lambda: listening.follower.listening)
        pid = listening.follower.listen_pid
        admin = create_engine(postgres_url)
        with admin.connect() as conn:  # the LISTEN connection drops, and its NOTIFYs with it
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        a.add("Backups are kept for thirty days", namespace=ns)
        for store in (listening, polling):
            assert eventually(
                lambda s=store: "Backups are kept for thirty days" in found(s, ns, "backups"),
                within_s=POLL_S * 10,
            ) <= POLL_S * 10
        assert not polling.follower.listening
        eventually(lambda: listening.follower.listening and listening.follower.listen_pid != pid)
    finally:
        for store in (polling, listening, a):
            store.close()


def test_a_feed_pruned_past_a_replica_makes_it_load_everything(
    postgres_url: str, tmp_path: Path, embedder: Embedder, ns: str
) -> None:
    a = replica(postgres_url, tmp_path / "a", embedder)
    # polls once a minute and is never woken: it applies only when asked to
    b = replica(postgres_url, tmp_path / "b", embedder, replica_poll_s=60,
                replica_listen=False)  # fmt: skip
    try:
        b.search("warm up", namespace=ns)
        b.follower.catch_up()
        a.add("Release notes go to the #releases channel", namespace=ns)
        assert b.verify_index(ns)["missing"] == 1  # not applied yet: the check sees it
        with a.db.unit_of_work() as session:
            assert changes.prune(session, utcnow() + timedelta(seconds=1)) > 0
        b.follower.catch_up()
        assert b.follower.stats.resyncs == 1
        assert "Release notes go to the #releases channel" in found(b, ns, "release notes")
    finally:
        b.close()
        a.close()


def test_after_is_checked_and_free_on_one_process(memos: MemOS, ns: str) -> None:
    memos.open()
    memos.add("The VPN needs a hardware key", namespace=ns)
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(InvalidInputError, match=r"consistency\.after"):
            memos.search("vpn", namespace=ns, after=bad)
    if memos.follower is None:  # SQLite: one process made every change; nothing to wait for
        assert found(memos, ns, "vpn", after=10**9)
    else:
        with pytest.raises(InvalidInputError, match="ahead of every change"):
            memos.search("vpn", namespace=ns, after=10**12)


def test_two_serving_replicas_read_their_writes_over_http(
    postgres_url: str, tmp_path: Path, embedder: Embedder, ns: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off",
               MEMOS_DATABASE_URL=postgres_url)  # fmt: skip
    with MemOS(Settings(data_dir=tmp_path / "keys", database_url=postgres_url),
               embedder=embedder) as store:  # fmt: skip
        key = api_key(store, ns)
    headers = {"Authorization": f"Bearer {key}"}
    with ServeProcess(tmp_path / "a", env) as one, ServeProcess(tmp_path / "b", env) as two:
        write = httpx.post(f"{one.url}/v1/memories", headers=headers,
                           json={"text": "Standup is at 9:30 in room 4"})  # fmt: skip
        assert write.status_code == 201, write.text
        seq = int(write.headers["MemOS-Seq"])
        search = httpx.post(f"{two.url}/v1/memories/search", headers=headers, json={
            "query": "when is standup", "mode": "vector", "consistency": {"after": seq}})
        assert search.status_code == 200, search.text
        assert search.json()["results"][0]["text"] == "Standup is at 9:30 in room 4"
        bad = httpx.post(f"{two.url}/v1/memories/search", headers=headers,
                         json={"query": "standup", "consistency": {"after": -1}})  # fmt: skip
        assert bad.status_code == 422 and "after" in bad.text
        verified = httpx.get(f"{two.url}/v1/memories/index/verify", headers=headers).json()
        assert verified == {"vectors": 1, "missing": 0, "extra": 0, "stale": 0,
                            "applied_seq": verified["applied_seq"]}  # fmt: skip
        assert verified["applied_seq"] >= seq
        metrics = httpx.get(f"{two.url}/metrics").text
        assert "memos_replica_lag_seconds" in metrics
        assert _applied(metrics) >= seq


def _applied(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith("memos_replica_applied_seq "))
    return float(line.split()[1])


def test_two_replicas_make_a_new_namespace_at_once(
    pair: tuple[MemOS, MemOS], ns: str
) -> None:
    a, b = pair
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    added: list[str] = []

    def first_write(store: MemOS, text_: str) -> None:
        barrier.wait()
        try:
            added.append(store.add(text_, namespace=ns).memory.id)
        except Exception as exc:  # reported below
            errors.append(exc)

    # both name Kestrel, an entity neither replica has seen: each makes it
    texts = ["Kestrel is the new billing service.", "Kestrel runs in region Zeta."]
    writers = [threading.Thread(target=first_write, args=(store, text_))
               for store, text_ in zip(pair, texts, strict=True)]  # fmt: skip
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert errors == []
    with a.db.reader() as session:
        latest = changes.latest_seq(session)
    for store in (a, b):
        store.follower.wait_for(latest)
        graph = store.graph.graph(ns)
        kestrel = graph.find("Kestrel")
        assert kestrel is not None
        # one entity, and both memories mention it (the second write linked to the first's)
        assert sorted(graph.mentioned_by(kestrel.id, 10)) == sorted(added)
        assert index_matches_database(store, ns) and len(store.indexes.get(ns)) == 2


def test_replicas_vectors_are_the_stored_ones(pair: tuple[MemOS, MemOS], ns: str) -> None:
    a, b = pair
    b.search("warm up", namespace=ns)
    seq = written(lambda: a.add("Payments retry three times", namespace=ns))
    b.follower.wait_for(seq)
    memory_id = a.search("payments", namespace=ns, top_k=1)[0].memory.id
    assert np.allclose(a.indexes.get(ns).vectors_of([memory_id]),
                       b.indexes.get(ns).vectors_of([memory_id]))  # fmt: skip
