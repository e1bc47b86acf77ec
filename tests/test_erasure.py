"""Erasure follows provenance, on SQLite and PostgreSQL: erasing a memory erases what was
made from any of its versions (merged and copied memories), in one unit of work; a
merge's other sources come back; compositions lose it in a new version; cached answers
that used it go; its history keeps only the tombstone; nothing it touched is found
again. The engine's part (activation KV, adapters, chat) is in test_memory_chat.py and
test_parametric_api.py."""

from __future__ import annotations

from litestar.testing import TestClient

from memos.composition import Compositions
from memos.core import MemOS
from memos.memcube.filters import MemoryFilter
from memos.provenance import SDK
from memos.relocate import KEEP, MigrationTarget, migrate_memories
from memos.scheduler.merge import fuse

SECRET = "Dana's passport number is K7730021."


def _nowhere(memos: MemOS, ns: str, needle: str) -> None:
    """``needle`` is in no served memory, no version of any memory and no search hit."""
    listed = memos.list(namespace=ns, limit=1000,
                        filters=MemoryFilter(states=("generated", "activated", "archived",
                                                     "merged"))).items  # fmt: skip
    assert all(needle not in (m.text or "") for m in listed)
    with memos.db.reader() as session:
        from memos.memcube.models import CubeVersion, MemCube

        assert all(needle not in (c.payload or "") for c in session.query(MemCube).filter_by(
            namespace=ns))  # fmt: skip
        ids = [c.id for c in session.query(MemCube).filter_by(namespace=ns)]
        versions = session.query(CubeVersion).filter(CubeVersion.cube_id.in_(ids)).all()
        assert all(needle not in (v.payload or "") for v in versions)
    for mode in ("vector", "hybrid", "graph"):
        hits = memos.search("What is Dana's passport number?", namespace=ns, mode=mode)
        assert all(needle not in (h.memory.text or "") for h in hits), mode


def test_erasure_follows_merges_copies_and_compositions(memos: MemOS, ns: str) -> None:
    secret = memos.add(SECRET, namespace=ns, user_id="dana").memory
    twin = memos.add("Dana's passport number is K7730021!", namespace=ns, user_id="dana").memory
    other = memos.add("Dana flies to Oslo on Monday.", namespace=ns, user_id="dana").memory
    fused_id = fuse(memos, ns, [secret.id, twin.id], SDK)  # the newest wording: the twin's
    [copy] = migrate_memories(memos, [other.id], ns, MigrationTarget(ns, "ed", KEEP),
                              move=False, origin=SDK)  # fmt: skip
    compositions = Compositions(memos)
    compositions.put(ns, "dana", [fused_id, other.id], SDK)
    memos.cache.store(ns, "what is dana's passport number?", "K7730021",
                      memory_ids=[fused_id])  # fmt: skip

    report = memos.delete(secret.id, namespace=ns, erase=True)
    assert report is not None
    assert set(report.erased) == {secret.id, fused_id}
    # the merge's other source is served again; the composition lost the fused memory
    assert twin.id in report.rebuilt and memos.get(twin.id, namespace=ns).state == "generated"
    composition = compositions.get(ns, "dana")
    assert [m.id for m in composition.members] == [other.id] and composition.version == 2
    assert composition.id in report.rebuilt and report.retired_adapters == []
    assert memos.cache.lookup(ns, "what is dana's passport number?").hit is False
    for erased in report.erased:
        history = memos.history(erased, namespace=ns)
        assert [(v.operation, v.text) for v in history] == [("purge", None)]
    # the twin still says it (it is another memory, not made from the secret): erase it too
    again = memos.delete(twin.id, namespace=ns, erase=True)
    assert again is not None and again.erased == [twin.id]
    _nowhere(memos, ns, "K7730021")
    # a copy is made from its source: erasing the source erases the copy
    copied = memos.delete(other.id, namespace=ns, erase=True)
    assert copied is not None and set(copied.erased) == {other.id, copy.id}
    assert compositions.list(ns) == []  # no member left: the composition is deleted


def test_erase_over_rest_names_what_it_touched(client: TestClient) -> None:
    ids = client.post("/v1/memories/batch", json={"items": [
        {"text": SECRET, "user_id": "dana"}, {"text": "Dana likes tea.", "user_id": "dana"},
    ]}).json()["ids"]  # fmt: skip
    fused = client.post("/v1/memories/fuse", json={"memory_ids": ids}).json()
    answer = client.delete(f"/v1/memories/{ids[1]}", params={"erase": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"erased": [ids[1], fused["id"]], "rebuilt": [ids[0]],
                             "retired_adapters": []}  # fmt: skip
    assert client.get(f"/v1/memories/{fused['id']}").status_code == 404
    history = client.get(f"/v1/memories/{ids[1]}/history").json()["versions"]
    assert [v["operation"] for v in history] == ["purge"] and history[0]["text"] is None
    assert client.get(f"/v1/memories/{ids[0]}").json()["text"] == SECRET  # back, as it was
    # erased once: a second erase, a rollback and a plain delete find nothing
    assert client.delete(f"/v1/memories/{ids[1]}", params={"erase": "true"}).status_code == 404
    rollback = client.post(f"/v1/memories/{ids[1]}/rollback", json={"version": 1})
    assert rollback.status_code == 409
    assert client.delete(f"/v1/memories/{ids[1]}").status_code == 404
    # a tombstone can still be erased (a privacy request after a delete)
    assert client.delete(f"/v1/memories/{ids[0]}").status_code == 204
    answer = client.delete(f"/v1/memories/{ids[0]}", params={"erase": "true"})
    assert answer.status_code == 200 and answer.json()["erased"] == [ids[0]]
