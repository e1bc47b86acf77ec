"""The MemScheduler on SQLite and PostgreSQL: each lifecycle transition is a version
whose provenance names the scheduler and the rule; archived memories leave default
search and come back with ``states``; near-duplicates fuse into one memory derived from
each; a failing rule does not stop the others; a pass over REST touches only the
caller's namespace."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from memos.activation import ActivationMemory
from memos.core import MemOS
from memos.errors import InvalidInputError
from memos.memcube.filters import MemoryFilter
from memos.scheduler import MemScheduler, SchedulerPolicy


def scheduler(memos: MemOS, **policy: object) -> MemScheduler:
    chosen = SchedulerPolicy(**policy)  # type: ignore[arg-type]
    return MemScheduler(memos, chosen, ActivationMemory(memos, None, chosen))


def run(sched: MemScheduler, namespace: str | None = None):
    return asyncio.run(sched.run_pass(namespace))


def last_version(memos: MemOS, memory_id: str, ns: str):
    return memos.history(memory_id, namespace=ns)[-1]


def test_a_memory_used_in_an_answer_is_activated(memos: MemOS, ns: str) -> None:
    used = memos.add("The deploy key rotates every Friday.", namespace=ns).memory
    idle = memos.add("The office plant needs water.", namespace=ns).memory
    sched = scheduler(memos)
    sched.note_used(ns, [used.id])
    report = run(sched, ns)
    assert report.moved["activate"] == 1 and not report.failed
    assert memos.get(used.id, namespace=ns).state == "activated"
    assert memos.get(idle.id, namespace=ns).state == "generated"
    version = last_version(memos, used.id, ns)
    assert (version.source, version.actor, version.operation) == (
        "scheduler", "activate.used_in_answer", "activate",
    )  # fmt: skip


def test_a_memory_read_often_is_activated(memos: MemOS, ns: str) -> None:
    memory = memos.add("Billing runs at 02:00 UTC.", namespace=ns).memory
    sched = scheduler(memos, activate_after_accesses=3)
    for _ in range(2):
        memos.get(memory.id, namespace=ns)
    run(sched, ns)
    assert last_version(memos, memory.id, ns).operation == "create"  # two reads: not yet
    memos.get(memory.id, namespace=ns)
    run(sched, ns)
    version = last_version(memos, memory.id, ns)
    assert (version.state, version.actor) == ("activated", "activate.accessed_often")


def test_cold_memories_are_archived_and_found_again_with_states(memos: MemOS, ns: str) -> None:
    cold = memos.add("The staging database lives in eu-west-3.", namespace=ns).memory
    time.sleep(0.05)
    sched = scheduler(memos, archive_after_s=0.02, activate_after_accesses=100)
    report = run(sched, ns)
    assert report.moved["archive"] == 1
    version = last_version(memos, cold.id, ns)
    assert (version.state, version.source, version.actor, version.operation) == (
        "archived", "scheduler", "archive.cold", "archive",
    )  # fmt: skip
    query = "where is the staging database?"
    assert memos.search(query, namespace=ns, mode="vector") == []
    assert memos.list(namespace=ns).items == []
    for mode in ("vector", "hybrid", "graph"):
        hits = memos.search(query, namespace=ns, mode=mode,
                            filters=MemoryFilter(states=("archived",)))  # fmt: skip
        assert [h.memory.id for h in hits] == [cold.id], mode
    listed = memos.list(namespace=ns, filters=MemoryFilter(states=("generated", "archived")))
    assert [m.id for m in listed.items] == [cold.id]
    assert memos.get(cold.id, namespace=ns).state == "archived"  # read by id, as it is
    # read since it was archived, often enough: it comes back, activated
    sched = scheduler(memos, activate_after_accesses=1, archive_after_s=3600)
    memos.get(cold.id, namespace=ns)
    run(sched, ns)
    assert memos.search(query, namespace=ns, mode="vector")[0].memory.id == cold.id
    assert last_version(memos, cold.id, ns).actor == "activate.accessed_often"


def test_near_duplicates_are_merged_into_one_derived_from_each(memos: MemOS, ns: str) -> None:
    first = memos.add("Alice's favourite colour is teal.", namespace=ns, user_id="alice",
                      tags=["prefs", "colour"]).memory  # fmt: skip
    second = memos.add("Alice's favourite colour is teal!", namespace=ns, user_id="alice",
                       tags=["colour", "prefs"], importance=0.9).memory  # fmt: skip
    bobs = memos.add("Alice's favourite colour is teal.", namespace=ns, user_id="bob").memory
    other = memos.add("Alice works on the payments team.", namespace=ns, user_id="alice").memory
    # the rule is opt-in: by default nothing is merged
    assert run(scheduler(memos, merge_min_similarity=0.95), ns).moved["merge"] == 0
    report = run(scheduler(memos, merge_min_similarity=0.95, merge_sources=("sdk",)), ns)
    assert report.moved["merge"] == 2 and not report.failed
    for source in (first, second):
        got = memos.get(source.id, namespace=ns)
        assert got.state == "merged"
        version = last_version(memos, source.id, ns)
        assert (version.source, version.actor, version.operation) == (
            "scheduler", "merge.near_duplicate", "merge",
        )  # fmt: skip
        [into] = version.derived_from
    assert into["relation"] == "merged_into"
    fused = memos.get(into["id"], namespace=ns)
    assert fused.text == second.text  # the newest wording
    assert fused.tags == ("prefs", "colour") and fused.importance == 0.9
    assert fused.user_id == "alice" and fused.state == "generated"
    created = memos.history(fused.id, namespace=ns)[0]
    assert created.operation == "fuse" and created.source == "scheduler"
    assert sorted(created.derived_from, key=lambda d: d["id"]) == sorted(
        [{"id": first.id, "version": 1}, {"id": second.id, "version": 1}], key=lambda d: d["id"]
    )
    hits = memos.search("what colour does Alice like?", namespace=ns, mode="vector", top_k=10)
    found = {h.memory.id for h in hits}
    assert fused.id in found and bobs.id in found and other.id in found  # another user's stays
    assert not found & {first.id, second.id}
    merged = memos.list(namespace=ns, filters=MemoryFilter(states=("merged",)))
    assert {m.id for m in merged.items} == {first.id, second.id}
    neighbours = memos.graph.graph(ns).graph
    assert neighbours.has_edge(f"memory:{fused.id}", f"memory:{first.id}")
    with pytest.raises(InvalidInputError, match="merged"):
        memos.search("colour", namespace=ns, filters=MemoryFilter(states=("merged",)))


def test_expiry_is_a_scheduler_transition(memos: MemOS, ns: str) -> None:
    memory = memos.add("A one-time code: 551 902.", namespace=ns, ttl_s=0.01).memory
    time.sleep(0.05)
    assert run(scheduler(memos), ns).moved["expire"] == 1
    version = last_version(memos, memory.id, ns)
    assert (version.state, version.source, version.operation) == ("expired", "scheduler",
                                                                  "expire")  # fmt: skip


def test_a_failing_rule_does_not_stop_the_others(
    memos: MemOS, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = memos.add("The VPN config is in the wiki.", namespace=ns).memory
    sched = scheduler(memos)
    merge = next(r for r in sched.rules if r.name == "merge")

    def broken(namespace: str | None) -> int:
        raise RuntimeError("the index is on fire")

    monkeypatch.setattr(merge, "run", broken)
    sched.note_used(ns, [memory.id])
    report = run(sched, ns)
    assert report.failed == {"merge": "RuntimeError: the index is on fire"}
    assert report.moved["activate"] == 1 and "activation" in report.moved
    assert sched.counters["merge"].failures == 1
    assert memos.get(memory.id, namespace=ns).state == "activated"
    monkeypatch.undo()
    assert not run(sched, ns).failed  # tried again on the next pass


def test_a_pass_over_rest_touches_only_the_callers_namespace(
    memos: MemOS, client: TestClient, other_client: TestClient, ns: str, other_ns: str,
) -> None:  # fmt: skip
    mine = client.post("/v1/memories", json={"text": "Expense reports go to Dana."}).json()
    theirs = other_client.post("/v1/memories", json={"text": "Expense reports go to Eve."}).json()
    kernel = client.app.state.kernel
    kernel.scheduler.note_used(ns, [mine["id"]])
    kernel.scheduler.note_used(other_ns, [theirs["id"]])
    response = client.post("/v1/scheduler/run")
    assert response.status_code == 200, response.text
    assert response.json()["moved"]["activate"] == 1
    assert client.get(f"/v1/memories/{mine['id']}").json()["state"] == "activated"
    assert other_client.get(f"/v1/memories/{theirs['id']}").json()["state"] == "generated"
    status = client.get("/v1/scheduler").json()
    assert status["rules"] == ["expire", "purge", "activate", "archive", "merge", "activation"]
    assert status["last_pass"]["moved"]["activate"] == 1 and "counters" not in status
    assert other_client.get("/v1/scheduler").json()["last_pass"] is None  # its own only
    metrics = client.get("/metrics").text
    assert 'memos_scheduler_rule_moved_total{rule="activate"}' in metrics


def test_archived_memories_over_rest(memos: MemOS, client: TestClient, ns: str) -> None:
    made = client.post("/v1/memories", json={"text": "Old runbook: restart the queue."}).json()
    time.sleep(0.05)
    asyncio.run(scheduler(memos, archive_after_s=0.02).run_pass(ns))
    search = {"query": "how do I restart the queue", "mode": "hybrid"}
    assert client.post("/v1/memories/search", json=search).json()["results"] == []
    found = client.post("/v1/memories/search",
                        json={**search, "filters": {"states": ["archived"]}}).json()  # fmt: skip
    assert [r["id"] for r in found["results"]] == [made["id"]]
    listed = client.get("/v1/memories", params={"state": "archived"}).json()["items"]
    assert [m["state"] for m in listed] == ["archived"]
    bad = client.post("/v1/memories/search", json={**search, "filters": {"states": ["gone"]}})
    assert bad.status_code == 422 and "states" in bad.text


def test_the_policy_comes_from_the_toml_config(tmp_path: Path) -> None:
    config = tmp_path / "memos.toml"
    config.write_text('[scheduler]\ninterval_s = 5\nrules = ["expire", "archive"]\n'
                      "archive_after_s = 600\n")  # fmt: skip
    policy = SchedulerPolicy.from_file(config, interval_s=30)
    assert (policy.interval_s, policy.rules, policy.archive_after_s) == (
        5, ("expire", "archive"), 600,
    )  # fmt: skip
    assert SchedulerPolicy.from_file(None, interval_s=12).interval_s == 12
    for bad, match in (
        ("rules = ['expire', 'nap']", "rules"),
        ("archive_after_s = -1", "archive_after_s"),
        ("merge_min_similarity = 2", "merge_min_similarity"),
        ("merge_sources = ['robots']", "merge_sources"),
        ("merge_categories = 'notes'", "merge_categories"),
        ("activate_after_accesses = 1.5", "activate_after_accesses"),
        ("snooze = 1", "snooze"),
    ):
        config.write_text(f"[scheduler]\n{bad}\n")
        with pytest.raises(InvalidInputError, match=match):
            SchedulerPolicy.from_file(config)
