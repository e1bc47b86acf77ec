"""Task memory over REST, on SQLite and PostgreSQL: a tree (parent) and a dependency DAG
(depends_on); a task's context is the path from its root, its dependencies' outcomes
(dependencies first) and the memories attached; cycles and unknown ids get a precise
4xx and change nothing; another namespace sees none of it."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import TestClient


def task(client: TestClient, **body) -> dict:
    r = client.post("/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def release(client: TestClient) -> dict[str, dict]:
    """Ship 2.0: build, then test (after build), then deploy (after test)."""
    note = client.post("/v1/memories", json={"text": "Deploys go out from the ops laptop."})
    root = task(client, title="Ship 2.0", owner="dana")
    build = task(client, title="Build artifacts", parent_id=root["id"], status="done",
                 outcome="artifacts at s3://builds/2.0")  # fmt: skip
    test = task(client, title="Run the test suite", parent_id=root["id"],
                depends_on=[build["id"]], status="done", outcome="all green")  # fmt: skip
    deploy = task(client, title="Deploy", parent_id=root["id"], depends_on=[test["id"]],
                  memory_ids=[note.json()["id"]])  # fmt: skip
    step = task(client, title="Flip the load balancer", parent_id=deploy["id"])
    return {"root": root, "build": build, "test": test, "deploy": deploy, "step": step,
            "note": note.json()}  # fmt: skip


def test_a_tasks_context_is_its_path_dependencies_and_memories(
    client: TestClient, release: dict[str, dict]
) -> None:
    r = client.get(f"/v1/tasks/{release['step']['id']}/context")
    assert r.status_code == 200, r.text
    assert [t["title"] for t in r.json()["path"]] == ["Ship 2.0", "Deploy"]
    assert r.json()["dependencies"] == []
    deploy = client.get(f"/v1/tasks/{release['deploy']['id']}/context").json()
    assert [(t["title"], t["outcome"]) for t in deploy["dependencies"]] == [
        ("Build artifacts", "artifacts at s3://builds/2.0"), ("Run the test suite", "all green")]
    assert [m["id"] for m in deploy["memories"]] == [release["note"]["id"]]
    children = client.get("/v1/tasks", params={"parent_id": release["root"]["id"]}).json()
    assert [t["title"] for t in children["items"]] == [
        "Build artifacts", "Run the test suite", "Deploy"]
    todo = client.get("/v1/tasks", params={"status": "todo"}).json()["items"]
    assert {t["title"] for t in todo} == {"Ship 2.0", "Deploy", "Flip the load balancer"}


def test_updates_change_only_what_is_given(client: TestClient, release: dict[str, dict]) -> None:
    deploy = release["deploy"]
    r = client.patch(f"/v1/tasks/{deploy['id']}", json={"status": "done", "outcome": "live"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["outcome"], body["depends_on"]) == (
        "done", "live", [release["test"]["id"]])
    cleared = client.patch(f"/v1/tasks/{deploy['id']}", json={"outcome": None}).json()
    assert cleared["outcome"] is None and cleared["status"] == "done"


def test_cycles_are_refused_naming_them(client: TestClient, release: dict[str, dict]) -> None:
    build, deploy = release["build"], release["deploy"]
    r = client.patch(f"/v1/tasks/{build['id']}", json={"depends_on": [deploy["id"]]})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "depends_on would make a cycle" in detail
    assert all(release[n]["id"] in detail for n in ("build", "test", "deploy"))
    r = client.patch(f"/v1/tasks/{release['root']['id']}",
                     json={"parent_id": release["step"]["id"]})  # fmt: skip
    assert r.status_code == 422 and "parent_id would make a cycle" in r.json()["detail"]
    r = client.patch(f"/v1/tasks/{build['id']}", json={"depends_on": [build["id"]]})
    assert r.status_code == 422 and "cycle" in r.json()["detail"]
    unchanged = client.get(f"/v1/tasks/{build['id']}").json()
    assert unchanged["depends_on"] == [] and unchanged["parent_id"] == release["root"]["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x", "status": "doing"}, "status"),
        ({"title": "x", "parent_id": str(uuid.uuid4())}, "parent_id"),
        ({"title": "x", "depends_on": [str(uuid.uuid4())]}, "depends_on[0]"),
        ({"title": "x", "depends_on": ["nope"]}, "depends_on"),
        ({"title": "x", "memory_ids": [str(uuid.uuid4())]}, "memory_ids[0]"),
        ({"title": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_tasks_get_a_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/v1/tasks", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert client.get("/v1/tasks").json()["items"] == []


def test_unknown_tasks_and_deleting_what_others_need(
    client: TestClient, release: dict[str, dict]
) -> None:
    missing = str(uuid.uuid4())
    for method, path in (("get", f"/v1/tasks/{missing}"), ("get", f"/v1/tasks/{missing}/context"),
                         ("delete", f"/v1/tasks/{missing}")):  # fmt: skip
        r = getattr(client, method)(path)
        assert r.status_code == 404 and missing in r.json()["detail"], path
    assert client.get("/v1/tasks/not-an-id").status_code in (400, 404, 422)
    r = client.delete(f"/v1/tasks/{release['test']['id']}")
    assert r.status_code == 409 and release["deploy"]["id"] in r.json()["detail"]
    assert client.delete(f"/v1/tasks/{release['step']['id']}").status_code == 204
    assert client.get(f"/v1/tasks/{release['step']['id']}").status_code == 404


def test_tasks_stay_in_their_namespace(
    client: TestClient, other_client: TestClient, release: dict[str, dict]
) -> None:
    assert other_client.get("/v1/tasks").json()["items"] == []
    r = other_client.get(f"/v1/tasks/{release['deploy']['id']}/context")
    assert r.status_code == 404
    r = other_client.post("/v1/tasks", json={"title": "mine", "parent_id": release["root"]["id"]})
    assert r.status_code == 422 and "parent_id" in r.json()["detail"]
    r = other_client.post("/v1/tasks", json={"title": "mine",
                                             "memory_ids": [release["note"]["id"]]})  # fmt: skip
    assert r.status_code == 422 and "memory_ids[0]" in r.json()["detail"]
