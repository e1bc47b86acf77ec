"""Reliability scenarios run against a real `memos serve`, as a hostile or unlucky user
meets it: kill -9 in the middle of writes, schema-driven fuzzing, one tenant probing
another's data. The test suite runs short versions; `reliability_bench.py` the long
ones, and reports the counts."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from memos.serve_process import ServeProcess

# --- kill -9 during writes ---------------------------------------------------------------


@dataclass
class Written:
    """What the service acknowledged for one memory, and an update it may have applied
    without acknowledging (in flight when the process died)."""

    version: int
    text: str
    pending: tuple[int, str] | None = None


@dataclass
class Ledger:
    memories: dict[str, Written] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)  # acknowledged tag -> size
    pending_batches: dict[str, int] = field(default_factory=dict)  # sent, not acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class CrashReport:
    cycles: int = 0
    acknowledged_writes: int = 0
    lost_writes: int = 0  # acknowledged, then not readable as acknowledged
    half_written_batches: int = 0
    index_mismatches: int = 0  # restarts whose index held another count than the database
    problems: list[str] = field(default_factory=list)

    def lose(self, problem: str) -> None:
        self.problems.append(problem)


class Writer(threading.Thread):
    """Batch adds and updates, one at a time, until the server dies or ``stop``."""

    def __init__(self, base: str, key: str, ledger: Ledger, rng: random.Random, cycle: int):
        super().__init__(name="crash-writer", daemon=True)
        self.base, self.ledger, self.rng, self.cycle = base, ledger, rng, cycle
        self.headers = {"Authorization": f"Bearer {key}"}
        self.stopping = threading.Event()
        self.acknowledged = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as http:
            step = 0
            while not self.stopping.is_set():
                step += 1
                try:
                    if self.ledger.memories and self.rng.random() < 0.4:
                        self._update(http, step)
                    else:
                        self._add_batch(http, step)
                except httpx.HTTPError:
                    return  # the server is gone

    def _add_batch(self, http: httpx.Client, step: int) -> None:
        tag = f"c{self.cycle}-s{step}"
        size = self.rng.randint(5, 20)
        items = [
            {"text": f"crash test {tag} item {i}: {self._words()}", "session_id": tag}
            for i in range(size)
        ]
        with self.ledger.lock:
            self.ledger.pending_batches[tag] = size
        r = http.post("/v1/memories/batch", json={"items": items})
        r.raise_for_status()
        with self.ledger.lock:
            del self.ledger.pending_batches[tag]
            self.ledger.batches[tag] = size
            for memory_id, item in zip(r.json()["ids"], items, strict=True):
                self.ledger.memories[memory_id] = Written(1, item["text"])
        self.acknowledged += 1

    def _update(self, http: httpx.Client, step: int) -> None:
        with self.ledger.lock:
            memory_id = self.rng.choice(list(self.ledger.memories))
            written = self.ledger.memories[memory_id]
            if written.pending is not None:
                return
            text = f"updated c{self.cycle}-s{step}: {self._words()}"
            written.pending = (written.version + 1, text)
        r = http.patch(f"/v1/memories/{memory_id}", json={"text": text})
        r.raise_for_status()
        with self.ledger.lock:
            written.version, written.text, written.pending = r.json()["version"], text, None
        self.acknowledged += 1

    def _words(self) -> str:
        words = ("alpha", "delta", "kite", "river", "lantern", "copper", "meadow", "signal")
        return " ".join(self.rng.choice(words) for _ in range(8))


def _all_memories(http: httpx.Client) -> dict[str, dict]:
    found: dict[str, dict] = {}
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/memories", params=params).raise_for_status().json()
        found.update((m["id"], m) for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _index_vectors(base: str) -> int:
    metrics = httpx.get(f"{base}/metrics", timeout=30).text
    match = re.search(r"^memos_index_vectors ([0-9.e+]+)$", metrics, re.M)
    return int(float(match.group(1))) if match else -1


def verify(base: str, key: str, ledger: Ledger, report: CrashReport) -> None:
    """Every acknowledged write readable as acknowledged (or with the one update in
    flight at the kill), no batch stored in part, the index as large as the database."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        stored = _all_memories(http)
        with ledger.lock:
            for memory_id, written in ledger.memories.items():
                got = stored.get(memory_id)
                seen = (got["version"], got["text"]) if got else None
                if seen == (written.version, written.text):
                    written.pending = None
                elif written.pending is not None and seen == written.pending:
                    written.version, written.text = written.pending
                    written.pending = None
                else:
                    report.lost_writes += 1
                    report.lose(f"{memory_id}: acknowledged {written.version}, found {seen}")
            by_session: dict[str, list[str]] = {}
            for memory in stored.values():
                by_session.setdefault(memory["session_id"], []).append(memory["id"])
            for tag, size in ledger.batches.items():
                if len(by_session.get(tag, [])) != size:
                    report.half_written_batches += 1
                    report.lose(f"batch {tag}: {len(by_session.get(tag, []))} of {size}")
            for tag, size in ledger.pending_batches.items():
                ids = by_session.get(tag, [])
                if len(ids) not in (0, size):
                    report.half_written_batches += 1
                    report.lose(f"unacknowledged batch {tag}: {len(ids)} of {size}")
                elif ids:  # it landed before the kill: from now on it must stay
                    ledger.batches[tag] = size
                    for memory_id in ids:
                        ledger.memories[memory_id] = Written(1, stored[memory_id]["text"])
            ledger.pending_batches.clear()
    vectors = _index_vectors(base)
    if vectors != len(stored):
        report.index_mismatches += 1
        report.lose(f"index holds {vectors} vectors, the database {len(stored)} memories")


def crash_cycles(
    workdir: Path,
    env: dict[str, str],
    cycles: int,
    seed: int = 0,
    run_s: tuple[float, float] = (0.5, 2.5),
) -> CrashReport:
    """Start `memos serve`, write, kill -9 at a random moment, restart, check; ``cycles``
    times, then one last restart to check the last cycle's writes."""
    rng = random.Random(seed)
    ledger, report = Ledger(), CrashReport()
    key_file = workdir / "var" / "bootstrap-key"
    for cycle in range(cycles + 1):
        with ServeProcess(workdir, env) as server:
            key = key_file.read_text().strip()
            if cycle:
                verify(server.url, key, ledger, report)
            if cycle == cycles:
                break
            writer = Writer(server.url, key, ledger, rng, cycle)
            writer.start()
            time.sleep(rng.uniform(*run_s))
            server.kill()
            writer.stopping.set()
            writer.join(timeout=60)
            report.acknowledged_writes += writer.acknowledged
            report.cycles += 1
    return report


def cli_key(workdir: Path, env: dict[str, str], namespace: str) -> str:
    """A key made as an operator makes one (`memos keys create`), beside a running server
    whose data dir is ``workdir``'s."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("memos")), "keys", "create", "--namespace", namespace],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


class PostgresSchema:
    """``with PostgresSchema(url) as schema_url``: an empty schema of its own on the
    server at ``url`` (`memos serve` migrates it), dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"memos_run_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        return f"{self.url}?options=-csearch_path%3D{self.name}"

    def __exit__(self, *_exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()


# --- schema-driven fuzzing ---------------------------------------------------------------


@dataclass
class FuzzReport:
    cases: int
    failures: int
    server_errors: int
    returncode: int
    output: str


# Schema-valid input the kernel still refuses (an all-blank text, a category the policy
# does not know) is a 422 by design, so "valid data accepted" is left out; revoking keys
# is left out because the fuzzer would revoke its own.
FUZZ_CHECKS = ("--checks", "all", "--exclude-checks", "positive_data_acceptance")
FUZZ_EXCLUDED = ("--exclude-path-regex", "^/v1/keys/")


def fuzz_api(base: str, key: str, max_examples: int, seed: int | None = None) -> FuzzReport:
    """Schemathesis over the server's own OpenAPI document: every phase, every check."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/schema/openapi.json",
        "-H",
        f"Authorization: Bearer {key}",
        *FUZZ_CHECKS,
        *FUZZ_EXCLUDED,
        "--max-examples",
        str(max_examples),
        "--no-color",
        *(("--seed", str(seed)) if seed is not None else ()),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    output = done.stdout + done.stderr
    return FuzzReport(
        cases=_count(r"(\d+) generated", output),
        failures=_count(r"found (\d+) unique failures?", output),
        server_errors=_count(r"ST101 Server error: (\d+)", output),
        returncode=done.returncode,
        output=output,
    )


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


# --- one tenant probing another ----------------------------------------------------------


@dataclass
class IsolationReport:
    attempts: int = 0
    cross_namespace_reads: int = 0
    problems: list[str] = field(default_factory=list)


def probe_isolation(base: str, owner_key: str, prober_key: str, rounds: int) -> IsolationReport:
    """The owner stores memories and a cached answer; the prober tries every verb on
    them by id and by content. Any answer that shows or changes the owner's data counts."""
    report = IsolationReport()
    owner = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {owner_key}"}, timeout=30
    )
    prober = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {prober_key}"}, timeout=30
    )

    def leaked(what: str, response: httpx.Response, owner_ids: set[str]) -> None:
        report.attempts += 1
        body = response.text
        if response.status_code < 300 and any(i in body for i in owner_ids):
            report.cross_namespace_reads += 1
            report.problems.append(f"{what}: {response.status_code} {body[:200]}")
        elif response.status_code < 300 and what.startswith(
            ("PATCH", "DELETE", "POST rollback", "POST unmerge", "POST entities", "POST retrain")
        ):
            report.cross_namespace_reads += 1
            report.problems.append(f"{what} succeeded on a foreign id")

    with owner, prober:
        for n in range(rounds):
            secret = f"owner secret {n} zircon-{n}"
            memory = owner.post("/v1/memories", json={"text": secret, "user_id": "u"}).json()
            entry = owner.post(
                "/v1/cache", json={"query": f"what is secret {n}?", "response": secret}
            ).json()
            ids = {memory["id"], entry["id"]}
            mid, eid = memory["id"], entry["id"]
            leaked("GET memory", prober.get(f"/v1/memories/{mid}"), ids)
            leaked("GET history", prober.get(f"/v1/memories/{mid}/history"), ids)
            leaked("PATCH memory", prober.patch(f"/v1/memories/{mid}", json={"text": "x"}), ids)
            leaked(
                "POST rollback",
                prober.post(f"/v1/memories/{mid}/rollback", json={"version": 1}),
                ids,
            )
            leaked("DELETE memory", prober.delete(f"/v1/memories/{mid}"), ids)
            leaked(
                "search",
                prober.post("/v1/memories/search", json={"query": secret, "top_k": 50}),
                ids,
            )
            leaked("list", prober.get("/v1/memories", params={"user_id": "u"}), ids)
            lookup = prober.post("/v1/cache/lookup", json={"query": f"what is secret {n}?"})
            leaked("cache lookup", lookup, ids)
            leaked("GET cache entry", prober.get(f"/v1/cache/entries/{eid}"), ids)
            leaked("DELETE cache entry", prober.delete(f"/v1/cache/entries/{eid}"), ids)
            _probe_the_rest(owner, prober, n, mid, leaked)
            still = owner.get(f"/v1/memories/{mid}").json()
            if still.get("text") != secret or still.get("version") != 1:
                report.cross_namespace_reads += 1
                report.problems.append(f"{mid} changed by another namespace: {still}")
    return report


def _probe_the_rest(
    owner: httpx.Client, prober: httpx.Client, n: int, mid: str,
    leaked: Callable[[str, httpx.Response, set[str]], None],
) -> None:  # fmt: skip
    """The routes added since the first pass: graph, tasks, compositions, merges,
    erasure and retraining, probed by id and by name."""
    entity = f"Zircon Vault {n}"
    fact = owner.post("/v1/graph/facts", json={"subject": entity, "predicate": "code",
                                               "value": f"owner secret {n}"}).json()  # fmt: skip
    task = owner.post("/v1/tasks", json={"title": f"owner task {n}",
                                         "memory_ids": [mid]}).json()  # fmt: skip
    composed = owner.put(f"/v1/compositions/secret-{n}", json={"memory_ids": [mid]}).json()
    ids = {mid, fact["id"], task["id"], composed["id"], f"owner secret {n}"}
    leaked("GET graph state", prober.get("/v1/graph/state", params={"entity": entity}), ids)
    leaked("GET graph timeline", prober.get("/v1/graph/timeline", params={"entity": entity}),
           ids)  # fmt: skip
    leaked("GET subgraph", prober.get("/v1/graph/subgraph"), ids)
    leaked("POST entities merge", prober.post("/v1/graph/entities/merge", json={
        "entity": entity, "into": "Prober"}), ids)  # fmt: skip
    leaked("GET task", prober.get(f"/v1/tasks/{task['id']}"), ids)
    leaked("GET task context", prober.get(f"/v1/tasks/{task['id']}/context"), ids)
    leaked("PATCH task", prober.patch(f"/v1/tasks/{task['id']}", json={"status": "done"}), ids)
    leaked("DELETE task", prober.delete(f"/v1/tasks/{task['id']}"), ids)
    leaked("GET tasks", prober.get("/v1/tasks"), ids)
    leaked("GET composition", prober.get(f"/v1/compositions/secret-{n}"), ids)
    leaked("DELETE composition", prober.delete(f"/v1/compositions/secret-{n}"), ids)
    leaked("POST unmerge", prober.post(f"/v1/memories/{mid}/unmerge"), ids)
    leaked("DELETE erase", prober.delete(f"/v1/memories/{mid}", params={"erase": "true"}), ids)
    leaked("POST retrain", prober.post(f"/v1/parametric/secret-{n}/retrain"), ids)
    leaked("GET scheduler", prober.get("/v1/scheduler"), ids)
    still = owner.get(f"/v1/tasks/{task['id']}").json()
    if still.get("status") != "todo":
        leaked("task changed by another namespace", httpx.Response(200, text=mid), {mid})
    if owner.get(f"/v1/compositions/secret-{n}").status_code != 200:
        leaked("composition deleted by another namespace", httpx.Response(200, text=mid), {mid})
