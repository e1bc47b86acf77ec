"""The `memos` command: keys, db upgrade, export and import, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MODEL_CACHE

MEMOS = str(Path(sys.executable).with_name("memos"))


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "MEMOS_DATA_DIR": str(tmp_path / "data"),
        "MEMOS_DATABASE_URL": database_url,
        "MEMOS_MODEL_DIR": str(MODEL_CACHE),
    }


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([MEMOS, *args], env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_keys_create_list_revoke(env: dict[str, str], ns: str) -> None:
    created = run(env, "keys", "create", "--namespace", ns, "--label", "ci")
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("mk_") and " " not in secret
    listed = run(env, "keys", "list", "--namespace", ns).stdout
    assert ns in listed and "active" in listed and secret not in listed
    key_id = listed.split()[0]
    run(env, "keys", "revoke", key_id)
    assert "revoked" in run(env, "keys", "list", "--namespace", ns).stdout
    missing = run(env, "keys", "revoke", "no-such-key", ok=False)
    assert missing.returncode != 0 and "not found" in missing.stderr
    bad = run(env, "keys", "create", "--namespace", "bad name!", ok=False)
    assert bad.returncode != 0 and "namespace" in bad.stderr


def test_db_upgrade_is_idempotent(env: dict[str, str]) -> None:
    assert "up to date" in run(env, "db", "upgrade").stdout
    assert "up to date" in run(env, "db", "upgrade").stdout


def test_export_then_import_into_another_namespace(
    env: dict[str, str], ns: str, other_ns: str, tmp_path: Path, embedder
) -> None:
    from memos.config import Settings
    from memos.core import MemOS
    from memos.records import NewMemory

    settings = Settings(
        data_dir=Path(env["MEMOS_DATA_DIR"]), database_url=env["MEMOS_DATABASE_URL"]
    )
    with MemOS(settings, embedder=embedder) as memos:
        added = memos.add_batch(
            [NewMemory(f"exported fact {i}", user_id="u", tags=("t",)) for i in range(30)],
            namespace=ns,
        )
        memos.delete(added[0].memory.id, namespace=ns)  # deleted memories are not exported
        edited = added[7].memory.id
        memos.update(edited, namespace=ns, text="exported fact 7, corrected")

    dump = tmp_path / "dump.jsonl"
    exported = run(env, "export", "--namespace", ns, "--out", str(dump))
    assert "exported 29 memories" in exported.stderr
    records = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(records) == 29 and all(r["embedding"] for r in records)
    (record,) = [r for r in records if r["id"] == edited]
    assert record["version"] == 2 and record["namespace"] == ns
    assert [(v["version"], v["operation"], v["text"]) for v in record["versions"]] == [
        (1, "create", "exported fact 7"), (2, "update", "exported fact 7, corrected")
    ]  # fmt: skip

    # Importing into the same database keeps ids, so those already present are skipped.
    assert "imported 0, skipped 29" in run(env, "import", "--namespace", ns, str(dump)).stdout
    # A copy without ids imports into another namespace and reuses the stored embeddings.
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text("".join(json.dumps({**r, "id": None}) + "\n" for r in records))
    assert (
        "imported 29, skipped 0" in run(env, "import", "--namespace", other_ns, str(fresh)).stdout
    )
    with MemOS(settings, embedder=embedder) as memos:
        hits = memos.search("exported fact 7, corrected", namespace=other_ns, top_k=1)
        assert hits[0].memory.text == "exported fact 7, corrected"
        assert hits[0].memory.version == 3
        versions = memos.history(hits[0].memory.id, namespace=other_ns)
        # the exported versions keep their provenance; the import adds its own
        assert [(v.operation, v.source, v.text) for v in versions] == [
            ("create", "sdk", "exported fact 7"),
            ("update", "sdk", "exported fact 7, corrected"),
            ("import", "import", "exported fact 7, corrected"),
        ]
        assert versions[0].recorded_at.isoformat() == record["versions"][0]["recorded_at"]
        # the copy was stripped of its id; the import records where it came from
        assert list(versions[-1].derived_from) == [
            {"namespace": ns, "version": 2, "relation": "imported_from"}
        ]


def test_import_rejects_a_bad_file_and_stores_nothing(
    env: dict[str, str], ns: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    good = "".join(json.dumps({"text": f"fine {i}"}) + "\n" for i in range(300))
    bad.write_text(good + "{not json}\n")
    done = run(env, "import", "--namespace", ns, str(bad), ok=False)
    assert done.returncode != 0 and "line 301" in done.stderr
    bad.write_text(good + json.dumps({"text": "x", "tags": "not-a-list"}) + "\n")
    done = run(env, "import", "--namespace", ns, str(bad), ok=False)
    assert done.returncode != 0 and "record 301" in done.stderr and "tags" in done.stderr
    version = {"version": 1, "text": "x", "category": None, "tags": [], "metadata": {},
               "importance": 0.5, "state": "generated", "content_hash": None,
               "embedding_model": None, "source": "api", "actor": None,
               "operation": "create", "derived_from": [], "valid_from": None,
               "valid_to": None, "expires_at": None,
               "recorded_at": "2026-01-02T03:04:05+00:00"}  # fmt: skip
    for wrong, says in (
        ({"version": 2}, "versions[0].version must be 1"),
        ({"operation": "teleport"}, "versions[0].operation"),
        ({"recorded_at": "yesterday"}, "versions[0].recorded_at"),
        ({"text": "y"}, "the record's text"),
    ):
        record = {"text": "x", "versions": [{**version, **wrong}]}
        bad.write_text(good + json.dumps(record) + "\n")
        done = run(env, "import", "--namespace", ns, str(bad), ok=False)
        assert done.returncode != 0 and "record 301" in done.stderr, done.stderr
        assert says in done.stderr, done.stderr
    engine = create_engine(env["MEMOS_DATABASE_URL"])
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM memcubes WHERE namespace = :ns"), {"ns": ns}
        ).scalar()
    engine.dispose()
    assert count == 0


def test_the_host_tier_is_sized_automatically_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memos.config import Settings

    monkeypatch.setenv("MEMOS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MEMOS_HOST_KV_BLOCKS", raising=False)
    assert Settings.from_env().host_kv_blocks == "auto"
    monkeypatch.setenv("MEMOS_HOST_KV_BLOCKS", "0")
    assert Settings.from_env().host_kv_blocks == 0
    monkeypatch.setenv("MEMOS_HOST_KV_BLOCKS", "lots")
    with pytest.raises(ValueError, match='MEMOS_HOST_KV_BLOCKS must be "auto" or a whole'):
        Settings.from_env()
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="MEMOS_HOST_KV_BLOCKS"):
            Settings(data_dir=tmp_path, host_kv_blocks=bad)


@pytest.mark.parametrize(("env", "message"), [
    ({"MEMOS_LLM": "remote", "MEMOS_LLM_URL": "http://a:8000,gpu2:8000"},
     "MEMOS_LLM_URL: 'gpu2:8000' is not an http"),
    ({"MEMOS_LLM_ROUTING": "random"}, "MEMOS_LLM_ROUTING must be affinity or round_robin"),
    ({"MEMOS_LLM_MAX_IN_FLIGHT": "0"}, "MEMOS_LLM_MAX_IN_FLIGHT must be from 1"),
    ({"MEMOS_REPLICA_POLL_S": "0"}, "MEMOS_REPLICA_POLL_S must be from 0.01"),
    ({"MEMOS_REPLICA_POLL_S": "soon"}, "MEMOS_REPLICA_POLL_S must be a number"),
    ({"MEMOS_REPLICA_LISTEN": "maybe"}, "MEMOS_REPLICA_LISTEN must be true or false"),
    ({"MEMOS_CHANGE_RETENTION_S": "5"}, "MEMOS_CHANGE_RETENTION_S must be at least 60"),
])  # fmt: skip
def test_scale_out_settings_are_checked(
    env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memos.config import Settings

    monkeypatch.setenv("MEMOS_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_a_list_of_llm_urls_is_a_fleet(tmp_path: Path) -> None:
    from memos.config import Settings
    from memos.llm.chat import build_chat_service
    from memos.llm.fleet import FleetBackend
    from memos.llm.remote import RemoteBackend

    one = Settings(data_dir=tmp_path, llm="remote", llm_url="http://a:8000/")
    assert one.llm_urls == ["http://a:8000"]
    chat = build_chat_service(one)
    assert chat is not None and isinstance(chat.backend, RemoteBackend)
    two = Settings(data_dir=tmp_path, llm="remote", llm_url=" http://a:8000, http://b:8000 ",
                   llm_routing="round_robin", llm_max_in_flight=3)  # fmt: skip
    chat = build_chat_service(two)
    assert chat is not None and isinstance(chat.backend, FleetBackend)
    assert [s["url"] for s in chat.servers()] == ["http://a:8000", "http://b:8000"]
    assert chat.backend.routing == "round_robin" and chat.backend.max_in_flight == 3
    assert chat.state == "loading" and [s["state"] for s in chat.servers()] == ["down", "down"]


def test_a_fleet_with_no_server_up_says_so(tmp_path: Path) -> None:
    from memos.errors import UnavailableError
    from memos.llm.fleet import FleetBackend

    fleet = FleetBackend(["http://127.0.0.1:9", "http://127.0.0.1:19"], "m", probe_s=60)
    try:
        with pytest.raises(UnavailableError, match="no vLLM server of the fleet answers"):
            fleet.start()
        assert fleet.state == "restarting"
        with pytest.raises(UnavailableError, match="no vLLM server of the fleet is up"):
            fleet.route("p")
    finally:
        fleet.close()
