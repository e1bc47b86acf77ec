"""Add, get, update, delete, list, dedupe and validation through the MemOS facade."""

from __future__ import annotations

import pytest

from memos.core import MemOS
from memos.errors import InvalidInputError, NotFoundError, TooLargeError
from memos.records import NewMemory


def test_add_then_get_round_trips_every_field(memos: MemOS, ns: str) -> None:
    added = memos.add(
        "Alice prefers window seats on long flights.",
        namespace=ns, user_id="alice", agent_id="travel-bot", session_id="s1",
        category="preference", tags=["travel", "seating"], metadata={"source": "chat", "n": 3},
        importance=0.8,
    )  # fmt: skip
    assert added.created
    got = memos.get(added.memory.id, namespace=ns)
    assert got.text == "Alice prefers window seats on long flights."
    assert (got.user_id, got.agent_id, got.session_id) == ("alice", "travel-bot", "s1")
    assert got.category == "preference"
    assert got.tags == ("travel", "seating")
    assert got.metadata == {"source": "chat", "n": 3}
    assert got.importance == 0.8
    assert got.version == 1
    assert got.kind == "plaintext"
    assert got.embedding_model == memos.embedder.model_id
    assert got.access_count == 1
    assert got.created_at.tzinfo is not None


def test_identical_content_returns_existing_id_unless_told_otherwise(memos: MemOS, ns: str) -> None:
    first = memos.add("The build server is in rack 12.", namespace=ns, user_id="ops")
    again = memos.add("The build server is in rack 12.", namespace=ns, user_id="ops")
    assert not again.created and again.memory.id == first.memory.id
    other_user = memos.add("The build server is in rack 12.", namespace=ns, user_id="dev")
    assert other_user.created and other_user.memory.id != first.memory.id
    forced = memos.add("The build server is in rack 12.", namespace=ns, user_id="ops", dedupe=False)
    assert forced.created and forced.memory.id != first.memory.id


def test_batch_add_dedupes_within_the_batch_and_against_the_store(memos: MemOS, ns: str) -> None:
    memos.add("already here", namespace=ns)
    results = memos.add_batch(
        [NewMemory("one"), NewMemory("two"), NewMemory("one"), NewMemory("already here")],
        namespace=ns,
    )
    assert [r.created for r in results] == [True, True, False, False]
    assert results[0].memory.id == results[2].memory.id
    assert len(memos.list(namespace=ns).items) == 3


def test_update_writes_a_new_version_and_reembeds(memos: MemOS, ns: str) -> None:
    m = memos.add("The deploy window is Tuesday.", namespace=ns).memory
    updated = memos.update(m.id, namespace=ns, text="The deploy window moved to Thursday.")
    assert updated.version == 2
    assert updated.content_hash != m.content_hash
    hits = memos.search("when is the deploy window", namespace=ns, top_k=1)
    assert hits[0].memory.text == "The deploy window moved to Thursday."
    unchanged = memos.update(m.id, namespace=ns, text="The deploy window moved to Thursday.")
    assert unchanged.version == 2


def test_update_fields_and_clear_category(memos: MemOS, ns: str) -> None:
    m = memos.add("note", namespace=ns, category="misc", tags=["a"]).memory
    updated = memos.update(m.id, namespace=ns, category=None, tags=["b", "c"], importance=0.1)
    assert (updated.category, updated.tags, updated.importance) == (None, ("b", "c"), 0.1)
    assert [x.id for x in memos.list(namespace=ns, filters=_tags("b")).items] == [m.id]
    assert memos.list(namespace=ns, filters=_tags("a")).items == []


def test_delete_tombstones_then_get_is_not_found(memos: MemOS, ns: str) -> None:
    m = memos.add("temporary fact", namespace=ns).memory
    memos.delete(m.id, namespace=ns)
    with pytest.raises(NotFoundError, match="deleted"):
        memos.get(m.id, namespace=ns)
    assert memos.search("temporary fact", namespace=ns) == []
    history = memos.history(m.id, namespace=ns)
    assert [v.operation for v in history] == ["create", "delete"]
    assert history[-1].text == "temporary fact"  # tombstone, not yet purged
    with pytest.raises(NotFoundError):
        memos.delete(m.id, namespace=ns)


def test_erase_removes_text_and_embedding_for_good(memos: MemOS, ns: str) -> None:
    m = memos.add("my passport number is X1234", namespace=ns).memory
    memos.delete(m.id, namespace=ns, erase=True)
    history = memos.history(m.id, namespace=ns)
    assert [(v.operation, v.version) for v in history] == [("purge", 3)]  # the tombstone only
    assert all(v.text is None and v.content_hash is None for v in history)
    with memos.db.reader() as session:
        from memos.memcube.models import MemCube

        cube = session.get(MemCube, m.id)
        assert cube is not None and cube.payload is None and cube.embedding is None


def test_purge_job_erases_tombstones_after_grace(memos: MemOS, ns: str) -> None:
    m = memos.add("to be purged", namespace=ns).memory
    memos.delete(m.id, namespace=ns)
    assert memos.purge_deleted(older_than_s=3600) == 0 or memos.history(m.id, namespace=ns)[-1].text
    assert memos.purge_deleted(older_than_s=0) >= 1
    assert memos.history(m.id, namespace=ns)[0].text is None


def test_unknown_id_is_not_found(memos: MemOS, ns: str) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        memos.get("01900000-0000-7000-8000-000000000000", namespace=ns)
    with pytest.raises(NotFoundError):
        memos.update("nope", namespace=ns, text="x")
    with pytest.raises(NotFoundError):
        memos.history("nope", namespace=ns)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"text": ""}, InvalidInputError, "text must not be empty"),
        ({"text": "   "}, InvalidInputError, "text must not be empty"),
        ({"text": 5}, InvalidInputError, "text must be a string"),
        ({"text": "x" * 40_000}, TooLargeError, "limit is"),
        ({"text": "ok", "importance": 2}, InvalidInputError, "importance"),
        ({"text": "ok", "ttl_s": -1}, InvalidInputError, "ttl_s"),
        ({"text": "ok", "ttl_s": 0}, InvalidInputError, "ttl_s"),
        ({"text": "ok", "tags": "single"}, InvalidInputError, "tags must be a list"),
        ({"text": "ok", "tags": [""]}, InvalidInputError, "tag"),
        ({"text": "ok", "user_id": ""}, InvalidInputError, "user_id"),
        ({"text": "ok", "metadata": {"x": object()}}, InvalidInputError, "JSON"),
        ({"text": "ok", "namespace": "bad name!"}, InvalidInputError, "namespace"),
    ],
)
def test_bad_input_is_rejected_and_stores_nothing(
    memos: MemOS, ns: str, kwargs: dict, error: type[Exception], message: str
) -> None:
    kwargs = {"namespace": ns, **kwargs}
    with pytest.raises(error, match=message):
        memos.add(**kwargs)
    assert memos.list(namespace=ns).items == []


def test_a_bad_item_fails_the_whole_batch(memos: MemOS, ns: str) -> None:
    with pytest.raises(InvalidInputError, match=r"items\[1\]\.text"):
        memos.add_batch([NewMemory("fine"), NewMemory(""), NewMemory("also fine")], namespace=ns)
    assert memos.list(namespace=ns).items == []


def test_batch_over_the_limit_is_too_large(memos: MemOS, ns: str) -> None:
    items = [NewMemory(f"m{i}") for i in range(memos.settings.max_batch_items + 1)]
    with pytest.raises(TooLargeError, match="at most"):
        memos.add_batch(items, namespace=ns)


def test_list_pages_newest_first(memos: MemOS, ns: str) -> None:
    ids = [memos.add(f"fact number {i}", namespace=ns).memory.id for i in range(5)]
    first = memos.list(namespace=ns, limit=2)
    second = memos.list(namespace=ns, limit=2, cursor=first.next_cursor)
    third = memos.list(namespace=ns, limit=2, cursor=second.next_cursor)
    seen = [m.id for page in (first, second, third) for m in page.items]
    assert seen == list(reversed(ids))
    assert third.next_cursor is None
    with pytest.raises(InvalidInputError, match="limit"):
        memos.list(namespace=ns, limit=0)


def _tags(*tags: str):
    from memos.memcube.filters import MemoryFilter

    return MemoryFilter(tags=tags)
