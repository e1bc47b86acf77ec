"""Reliability benchmark: the long versions of the suite's reliability checks, counted.

- kill -9 during batch ingest and updates against `memos serve`, on SQLite and on
  PostgreSQL: acknowledged writes lost, batches stored in part, restarts whose index
  held another count than the database;
- schemathesis over the server's own OpenAPI document (every phase, every check but
  "valid data accepted"): cases generated, 5xx answers, other failures;
- one tenant probing another's memories and cached answers by id and by content;
- an erase that must leave nothing behind (search, history, activation, cached answer,
  served adapter, composition, chat, export): the places that still show the text;
- one namespace's training job while another has 20 queued: how long it waits, against
  how long one job takes;
- the chat engine failing under load (a step that raises, injected the way a sampling
  value the service failed to check would raise it): time until it serves again
  against its start time, and what other tenants' requests got meanwhile, over HTTP.

    python benchmarks/reliability_bench.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import print_table, write_json
from benchmarks.forgetting import erase_leaks, job_wait
from benchmarks.reliability import (
    PostgresSchema,
    cli_key,
    crash_cycles,
    fuzz_api,
    probe_isolation,
)
from memos.serve_process import ServeProcess, free_port

POSTGRES_URL = os.environ.get(
    "MEMOS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MODEL_DIR = Path(__file__).resolve().parent.parent / "var" / "models"  # as `make run` has it


def _env(database_url: str | None = None, llm: str = "off") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_DIR), MEMOS_LLM=llm)
    if database_url:
        env["MEMOS_DATABASE_URL"] = database_url
    return env


def run_crashes(cycles: int, seed: int) -> dict[str, dict]:
    results = {}
    for backend in ("sqlite", "postgres"):
        with tempfile.TemporaryDirectory() as work:
            began = time.perf_counter()
            if backend == "postgres":
                with PostgresSchema(POSTGRES_URL) as url:
                    report = crash_cycles(Path(work), _env(url), cycles, seed=seed)
            else:
                report = crash_cycles(Path(work), _env(), cycles, seed=seed)
        results[backend] = {
            "kill_cycles": report.cycles,
            "acknowledged_writes": report.acknowledged_writes,
            "lost_writes": report.lost_writes,
            "half_written_batches": report.half_written_batches,
            "index_mismatches": report.index_mismatches,
            "seconds": round(time.perf_counter() - began, 1),
            "problems": report.problems[:20],
        }
        print(f"  {backend}: {results[backend]}", flush=True)
    return results


def run_fuzz_and_isolation(max_examples: int, seeds: list[int], rounds: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as work, ServeProcess(Path(work), _env()) as server:
        key = (Path(work) / "var" / "bootstrap-key").read_text().strip()
        fuzz = []
        for seed in seeds:
            began = time.perf_counter()
            report = fuzz_api(server.url, key, max_examples, seed=seed)
            fuzz.append(
                {
                    "seed": seed,
                    "cases": report.cases,
                    "server_errors": report.server_errors,
                    "failures": report.failures,
                    "returncode": report.returncode,
                    "seconds": round(time.perf_counter() - began, 1),
                    "tail": report.output[-1500:] if report.failures else "",
                }
            )
            print(
                f"  fuzz seed {seed}: {fuzz[-1]['cases']} cases, "
                f"{fuzz[-1]['server_errors']} 5xx, {fuzz[-1]['failures']} failures",
                flush=True,
            )
        prober = cli_key(Path(work), _env(), "prober")
        isolation = probe_isolation(server.url, key, prober, rounds)
    return {
        "fuzz": {"runs": fuzz},
        "isolation": {
            "attempts": isolation.attempts,
            "cross_namespace_reads": isolation.cross_namespace_reads,
            "problems": isolation.problems[:20],
        },
    }


# --- forgetting and fair shares (issue 30) ------------------------------------------------


def run_forgetting(queued: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        env = {**_env(llm="embedded"), "MEMOS_JOBS_PER_NAMESPACE": str(queued + 5)}
        with ServeProcess(Path(work), env) as server:
            server.wait_for_chat()
            key = (Path(work) / "var" / "bootstrap-key").read_text().strip()
            erasure = erase_leaks(server.url, key, Path(work), env)
            print(f"  erase: {erasure}", flush=True)
            light = cli_key(Path(work), env, "light")
            fairness = job_wait(server.url, key, light, queued)
            print(f"  fair shares: {fairness}", flush=True)
    return {
        "erasure": {"checks": erasure.checks, "leaks": erasure.leaks,
                    "erased": erasure.erased, "retired_adapters": erasure.retired_adapters,
                    "problems": erasure.problems},
        "fairness": {"queued_by_other": fairness.queued_by_other,
                     "one_job_s": fairness.one_job_s, "wait_s": fairness.wait_s},
    }  # fmt: skip


# --- engine failure under load ----------------------------------------------------------


class ChatLoad(threading.Thread):
    """One tenant's steady chat requests over HTTP; counts what each got."""

    def __init__(self, base: str, key: str) -> None:
        super().__init__(name="chat-load", daemon=True)
        self.base, self.key = base, key
        self.stopping = threading.Event()
        self.outcomes: list[tuple[float, int]] = []  # (finished at, status; 0 = cut off)

    def run(self) -> None:
        body = {
            "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 24,
            "cache": False,
        }
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=300) as http:
            while not self.stopping.is_set():
                try:
                    status = http.post("/v1/chat/completions", json=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.outcomes.append((time.monotonic(), status))
                if status == 503:
                    time.sleep(0.5)


def run_engine_failures(failures: int) -> dict:
    """The service in this process (so the engine can be failed from outside, as no
    request can fail it any more), driven over HTTP by uvicorn."""
    import uvicorn

    from memos.config import Settings
    from memos.core import MemOS
    from memos.llm.chat import build_chat_service
    from memos.memcube import keys
    from memos.migrate import upgrade
    from memos.server.app import create_app

    with tempfile.TemporaryDirectory() as work:
        settings = Settings(
            data_dir=Path(work), model_dir_override=MODEL_DIR, llm="embedded", llm_kv_blocks=64
        )
        upgrade(settings.database_url)
        memos = MemOS(settings)
        chat = build_chat_service(settings)
        assert chat is not None
        with memos.db.unit_of_work() as session:
            attacker = keys.create_key(session, "attacker")[1]
            other = keys.create_key(session, "bystander")[1]
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(memos, chat=chat), port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while not server.started or chat.state != "ready":
            assert time.monotonic() < deadline, "the service or its engine did not start"
            time.sleep(0.5)
        engine = chat.backend.engine
        refused = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {attacker}"},
            json={"messages": [{"role": "user", "content": "x"}], "seed": 2**64},
        ).status_code
        load = ChatLoad(base, other)
        load.start()
        rounds = []
        for _ in range(failures):
            time.sleep(3)
            failed_at = time.monotonic()
            asyncio.run(_fail(engine))
            while not engine.running:
                time.sleep(0.1)
            recovered_s = time.monotonic() - failed_at
            time.sleep(5)  # the bystander's requests after the recovery
            after = [s for t, s in load.outcomes if t > failed_at + recovered_s + 0.5]
            rounds.append(
                {
                    "recovered_s": round(recovered_s, 1),
                    "start_s": round(engine.started_s, 1),
                    "served_after": sum(s == 200 for s in after),
                    "failed_after": sum(s != 200 for s in after),
                }
            )
            print(f"  engine failure: {rounds[-1]}", flush=True)
        load.stopping.set()
        load.join(timeout=300)
        server.should_exit = True
        chat.backend.close()
        memos.close()
    statuses = [s for _, s in load.outcomes]
    return {
        "seed_2_64_status": refused,
        "rounds": rounds,
        "engine_recoveries": sum(
            r["recovered_s"] <= max(60.0, 2 * r["start_s"])
            and r["served_after"] > 0
            and r["failed_after"] == 0
            for r in rounds
        ),
        "bystander": {str(code): statuses.count(code) for code in sorted(set(statuses))},
    }


async def _fail(engine) -> None:
    from vllm import SamplingParams

    with contextlib.suppress(Exception):
        await engine.generate({"prompt_token_ids": [1, 2, 3]}, SamplingParams(seed=2**64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a faithful small run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cycles = 10 if args.quick else 20  # per backend
    examples, fuzz_seeds = (20, [args.seed]) if args.quick else (70, [args.seed, args.seed + 1])
    rounds = 20 if args.quick else 100
    engine_failures = 1 if args.quick else 3

    from memos.embeddings import load_embedder

    load_embedder(MODEL_DIR, "auto")  # export the ONNX model once, before servers start
    from memos.llm.model import prepare_model

    prepare_model(MODEL_DIR / "SmolLM2-135M-Instruct")

    print(f"kill -9 during writes: {cycles} cycles on each backend", flush=True)
    crashes = run_crashes(cycles, args.seed)
    print(f"schemathesis ({examples} examples an operation) and isolation ({rounds} rounds)")
    fuzz_iso = run_fuzz_and_isolation(examples, fuzz_seeds, rounds)
    print("erasure and fair shares", flush=True)
    forgetting = run_forgetting(queued=20)
    engine = run_engine_failures(engine_failures)

    crash_rows = [
        [
            b,
            r["kill_cycles"],
            r["acknowledged_writes"],
            r["lost_writes"],
            r["half_written_batches"],
            r["index_mismatches"],
            r["seconds"],
        ]
        for b, r in crashes.items()
    ]
    print_table(
        "kill -9 during batch ingest and updates",
        [
            "backend",
            "kill cycles",
            "acknowledged writes",
            "lost",
            "half-written batches",
            "index != database",
            "seconds",
        ],
        crash_rows,
    )
    fuzz = fuzz_iso["fuzz"]["runs"]
    print_table(
        "schemathesis over the OpenAPI document",
        ["seed", "cases", "5xx", "failures", "seconds"],
        [[f["seed"], f["cases"], f["server_errors"], f["failures"], f["seconds"]] for f in fuzz],
    )
    iso = fuzz_iso["isolation"]
    print_table(
        "one tenant probing another",
        ["attempts", "cross-namespace reads"],
        [[iso["attempts"], iso["cross_namespace_reads"]]],
    )
    erasure, fairness = forgetting["erasure"], forgetting["fairness"]
    print_table(
        "an erase, then every place a user could read the text again",
        ["places checked", "still showing it", "memories erased", "adapters retired"],
        [[erasure["checks"], erasure["leaks"], erasure["erased"], erasure["retired_adapters"]]],
    )
    print_table(
        "a namespace's one training job while another has jobs queued",
        ["queued by the other", "one job takes s", "the one waits s", "FIFO would wait s"],
        [[fairness["queued_by_other"], fairness["one_job_s"], fairness["wait_s"],
          round(fairness["queued_by_other"] * fairness["one_job_s"], 1)]],
    )  # fmt: skip
    print_table(
        "engine failures under another tenant's load",
        [
            "failure",
            "back in s",
            "engine start s",
            "bystander served after",
            "bystander failed after",
        ],
        [
            [i + 1, r["recovered_s"], r["start_s"], r["served_after"], r["failed_after"]]
            for i, r in enumerate(engine["rounds"])
        ],
    )
    print(
        f"seed 2**64 over HTTP: {engine['seed_2_64_status']}; bystander's answers "
        f"over the run: {engine['bystander']}"
    )

    summary = {
        "lost_writes": sum(r["lost_writes"] for r in crashes.values()),
        "kill_cycles": sum(r["kill_cycles"] for r in crashes.values()),
        "fuzz_cases": sum(f["cases"] for f in fuzz),
        "fuzz_5xx": sum(f["server_errors"] for f in fuzz),
        "cross_namespace_reads": iso["cross_namespace_reads"],
        "erase_leaks": erasure["leaks"],
        "job_wait_s_other_tenant": fairness["wait_s"],
        "engine_recoveries": engine["engine_recoveries"],
    }
    print("\nsummary:", summary)
    write_json(
        args.json,
        summary,
        {"crashes": crashes, **fuzz_iso, **forgetting, "engine": engine, "quick": args.quick,
         "seed": args.seed},
    )


if __name__ == "__main__":
    main()
