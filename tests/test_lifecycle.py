"""TTL expiry, namespace isolation, and the index after a restart."""

from __future__ import annotations

import time

import pytest

from memos.core import MemOS
from memos.embeddings import Embedder
from memos.errors import NotFoundError
from memos.memcube.filters import MemoryFilter
from memos.records import NewMemory


def test_expired_memories_are_never_served(memos: MemOS, ns: str) -> None:
    short = memos.add("The door code is 4711 today.", namespace=ns, ttl_s=0.5).memory
    keep = memos.add("The door code rotates daily.", namespace=ns).memory
    assert short.expires_at is not None
    assert {h.memory.id for h in memos.search("door code", namespace=ns)} == {short.id, keep.id}
    time.sleep(0.6)
    # Served state is decided at read time, before any expiry job has run.
    assert [h.memory.id for h in memos.search("door code", namespace=ns)] == [keep.id]
    assert [m.id for m in memos.list(namespace=ns).items] == [keep.id]
    with pytest.raises(NotFoundError, match="expired"):
        memos.get(short.id, namespace=ns)
    # The job then records the expiry with provenance and drops the vector.
    assert memos.expire_due() >= 1
    last = memos.history(short.id, namespace=ns)[-1]
    assert (last.operation, last.source, last.state) == ("expire", "scheduler", "expired")
    assert short.id not in memos.indexes.get(ns)


def test_expired_content_can_be_added_again(memos: MemOS, ns: str) -> None:
    first = memos.add("Standup moved to 10:00.", namespace=ns, ttl_s=0.3).memory
    time.sleep(0.4)
    again = memos.add("Standup moved to 10:00.", namespace=ns)
    assert again.created and again.memory.id != first.id


def test_update_can_set_and_clear_ttl(memos: MemOS, ns: str) -> None:
    m = memos.add("ephemeral", namespace=ns).memory
    assert memos.update(m.id, namespace=ns, ttl_s=60).expires_at is not None
    assert memos.update(m.id, namespace=ns, ttl_s=None).expires_at is None


def test_namespaces_are_isolated(memos: MemOS, ns: str, other_ns: str) -> None:
    mine = memos.add("Our launch date is March 3.", namespace=ns, user_id="u").memory
    theirs = memos.add("Our launch date is March 3.", namespace=other_ns, user_id="u").memory
    assert mine.id != theirs.id  # identical content, separate tenants
    assert [h.memory.id for h in memos.search("launch date", namespace=ns)] == [mine.id]
    assert [m.id for m in memos.list(namespace=other_ns).items] == [theirs.id]
    for call in (
        lambda: memos.get(theirs.id, namespace=ns),
        lambda: memos.history(theirs.id, namespace=ns),
        lambda: memos.update(theirs.id, namespace=ns, text="hijack"),
        lambda: memos.delete(theirs.id, namespace=ns),
        lambda: memos.rollback(theirs.id, 1, namespace=ns),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert memos.get(theirs.id, namespace=other_ns).text == "Our launch date is March 3."


def _restart(memos: MemOS, embedder: Embedder) -> MemOS:
    memos.close()
    return MemOS(memos.settings, embedder=embedder).open()


def test_index_after_restart_answers_as_before(memos: MemOS, ns: str, embedder: Embedder) -> None:
    memos.add_batch([NewMemory(f"note {i} about topic {i % 5}") for i in range(50)], namespace=ns)
    gone = memos.search("note 7 about topic 2", namespace=ns, top_k=1)[0].memory.id
    memos.delete(gone, namespace=ns)
    before = [(h.memory.id, round(h.score, 5)) for h in memos.search("topic 3", namespace=ns)]
    restarted = _restart(memos, embedder)
    try:
        assert (restarted.settings.index_dir / f"{ns}.json").exists()
        after = [
            (h.memory.id, round(h.score, 5)) for h in restarted.search("topic 3", namespace=ns)
        ]
        assert after == before
        assert gone not in restarted.indexes.get(ns)
    finally:
        restarted.close()


def test_stale_snapshot_is_rebuilt_from_stored_embeddings(
    memos: MemOS, ns: str, embedder: Embedder
) -> None:
    memos.add_batch([NewMemory(f"entry {i}") for i in range(20)], namespace=ns)
    memos.indexes.save_changed()
    index_dir = memos.settings.index_dir
    old = {p.name: p.read_bytes() for p in index_dir.glob(f"{ns}*")}
    # A write the old snapshot has not seen, as after a crash before the next snapshot.
    late = memos.add("a late memory about volcanoes", namespace=ns).memory
    memos.close()
    for path in index_dir.glob(f"{ns}*"):
        path.unlink()
    for name, data in old.items():
        (index_dir / name).write_bytes(data)
    restarted = MemOS(memos.settings, embedder=embedder).open()
    try:
        assert restarted.indexes.get(ns).revision == memos.indexes.get(ns).revision
        assert restarted.search("volcanoes", namespace=ns, top_k=1)[0].memory.id == late.id
        assert len(restarted.indexes.get(ns)) == 21
    finally:
        restarted.close()


def test_missing_snapshot_is_rebuilt(memos: MemOS, ns: str, embedder: Embedder) -> None:
    m = memos.add("the only memory", namespace=ns, user_id="x").memory
    memos.indexes.save_changed()
    for path in memos.settings.index_dir.glob(f"{ns}*"):
        path.unlink()
    restarted = _restart(memos, embedder)
    try:
        hits = restarted.search("only", namespace=ns, filters=MemoryFilter(user_id="x"))
        assert [h.memory.id for h in hits] == [m.id]
    finally:
        restarted.close()
