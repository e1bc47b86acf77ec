"""Versions are append-only, every one carries provenance; rollback writes a new version."""

from __future__ import annotations

import pytest

from memos.core import MemOS, Origin
from memos.errors import ConflictError, InvalidInputError, NotFoundError


def test_history_records_provenance_of_every_change(memos: MemOS, ns: str) -> None:
    m = memos.add("v1 text", namespace=ns, origin=Origin("agent", "planner")).memory
    memos.update(m.id, namespace=ns, text="v2 text", origin=Origin("tool", "crm-sync"))
    memos.update(m.id, namespace=ns, tags=["x"], origin=Origin("api", "key:abc"))
    history = memos.history(m.id, namespace=ns)
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.operation for v in history] == ["create", "update", "update"]
    assert [(v.source, v.actor) for v in history] == [
        ("agent", "planner"), ("tool", "crm-sync"), ("api", "key:abc"),
    ]  # fmt: skip
    assert [v.text for v in history] == ["v1 text", "v2 text", "v2 text"]
    assert history[0].content_hash != history[1].content_hash
    assert history[1].content_hash == history[2].content_hash
    assert all(v.embedding_model == memos.embedder.model_id for v in history)
    assert history[0].superseded_at == history[1].recorded_at
    assert history[-1].superseded_at is None


def test_rollback_writes_a_new_version_equal_to_the_old(memos: MemOS, ns: str) -> None:
    m = memos.add("Office is in Berlin.", namespace=ns, category="org", tags=["a"]).memory
    memos.update(m.id, namespace=ns, text="Office is in Lisbon.", category="moved", tags=["b"])
    rolled = memos.rollback(m.id, 1, namespace=ns, origin=Origin("sdk", "admin"))
    assert rolled.version == 3
    assert (rolled.text, rolled.category, rolled.tags) == ("Office is in Berlin.", "org", ("a",))
    last = memos.history(m.id, namespace=ns)[-1]
    assert last.operation == "rollback" and last.actor == "admin"
    assert last.derived_from == ({"id": m.id, "version": 1},)
    assert last.content_hash == memos.history(m.id, namespace=ns)[0].content_hash
    assert memos.search("where is the office", namespace=ns, top_k=1)[0].memory.text == (
        "Office is in Berlin."
    )


def test_rollback_revives_a_deleted_memory(memos: MemOS, ns: str) -> None:
    m = memos.add("Project codename is Falcon.", namespace=ns).memory
    memos.delete(m.id, namespace=ns)
    revived = memos.rollback(m.id, 1, namespace=ns)
    assert revived.state == "activated"
    assert memos.get(m.id, namespace=ns).text == "Project codename is Falcon."
    assert memos.search("codename", namespace=ns, top_k=1)[0].memory.id == m.id


def test_rollback_errors(memos: MemOS, ns: str) -> None:
    m = memos.add("secret", namespace=ns).memory
    with pytest.raises(NotFoundError, match="no version 9"):
        memos.rollback(m.id, 9, namespace=ns)
    with pytest.raises(InvalidInputError, match="version"):
        memos.rollback(m.id, 0, namespace=ns)
    with pytest.raises(NotFoundError):
        memos.rollback("missing", 1, namespace=ns)
    memos.delete(m.id, namespace=ns, erase=True)
    with pytest.raises(ConflictError, match="erased"):
        memos.rollback(m.id, 1, namespace=ns)
