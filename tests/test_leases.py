"""Background work across replicas, with two `memos serve` on one PostgreSQL: a replica
that starts leaves the other's running job alone; one replica at a time runs the
MemScheduler's passes; when the replica running a job is killed, its lease lapses and
the other takes the job over and finishes it, and takes the passes over too."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.leases import Leases
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE, api_key
from tests.test_parametric_api import FACTS, QUICK

LEASE_S = 2


def passes(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics").text
    return float(re.search(r"^memos_scheduler_passes_total (\S+)$", metrics, re.M).group(1))


def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_one_lease_one_holder(sqlite_url: str, tmp_path: Path, embedder: Embedder) -> None:
    with MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder) as a:
        b = Leases(a.db, "another-process")
        assert a.leases.hold("job-x", 60) and a.leases.hold("job-x", 60)  # renewed
        assert not b.hold("job-x", 60)
        a.leases.release("job-x")
        assert b.hold("job-x", 0.05) and not a.leases.hold("job-x", 60)
        time.sleep(0.1)
        assert a.leases.hold("job-x", 60)  # lapsed: taken over


def test_a_killed_replicas_job_and_passes_are_taken_over(
    postgres_url: str, tmp_path: Path, embedder: Embedder, chat_model_dir: Path, ns: str
) -> None:
    config = tmp_path / "memos.toml"
    config.write_text("[scheduler]\ninterval_s = 0.2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off",
               MEMOS_DATABASE_URL=postgres_url, MEMOS_JOB_LEASE_S=str(LEASE_S),
               MEMOS_CONFIG=str(config))  # fmt: skip
    with MemOS(Settings(data_dir=tmp_path / "keys", database_url=postgres_url),
               embedder=embedder) as store:  # fmt: skip
        headers = {"Authorization": f"Bearer {api_key(store, ns)}"}
    with ServeProcess(tmp_path / "a", env) as one:
        ids = httpx.post(f"{one.url}/v1/memories/batch", headers=headers,
                         json={"items": [{"text": t} for t in FACTS]}).json()["ids"]  # fmt: skip
        job = httpx.post(f"{one.url}/v1/parametric", headers=headers, json={
            "name": "facts", "memory_ids": ids, **{**QUICK, "steps": 60, "batch_size": 2},
        }).json()  # fmt: skip

        def state(url: str) -> dict:
            return httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json()

        until(lambda: state(one.url)["detail"]["steps_done"] > 0, 120, "the job never ran")
        with ServeProcess(tmp_path / "b", env) as two:
            # a replica that starts leaves the other's running job alone
            time.sleep(2 * LEASE_S)
            assert state(two.url)["state"] == "running"
            # one replica runs the scheduler's passes
            before = passes(one.url), passes(two.url)
            time.sleep(1.5)
            grew = [passes(one.url) > before[0], passes(two.url) > before[1]]
            assert grew.count(True) == 1, grew

            assert state(two.url)["detail"]["steps_done"] < 60
            one.kill()  # mid-job: its lease is no longer renewed
            killed_at = datetime.now(UTC).isoformat()
            until(lambda: state(two.url)["state"] == "succeeded", 300,
                  "the job was not taken over and finished")  # fmt: skip
            done = state(two.url)
            assert done["started_at"] > killed_at  # run again, from its start, on two
            made = httpx.get(f"{two.url}/v1/parametric/facts", headers=headers)
            assert made.status_code == 200 and made.json()["id"] == done["result_id"]
            # the passes are taken over once the killed one's lease lapses (5 s)
            start = passes(two.url)
            until(lambda: passes(two.url) > start + 3, 30, "the passes were not taken over")
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        owners = connection.execute(text("SELECT count(DISTINCT owner) FROM jobs")).scalar()
    engine.dispose()
    assert owners == 1  # the job ended with the replica that finished it
