"""Past one machine (issue 21): API replicas on one PostgreSQL, searches under load, and a
fleet of `vllm serve` servers, each measured over the service's REST API as users run it.

- **replicas**: two `memos serve` on one PostgreSQL; writes on one, searches on the other.
  Lag is what a client sees: from a write's answer on replica A until a search on
  replica B finds it (with NOTIFY; then with polling only, the fallback's bound). Then
  read-your-writes with ``consistency.after``, and a soak of adds, updates and deletes
  on both replicas after which every replica's index must equal the database.
- **load**: searches per second at p99 <= 100 ms from 32 concurrent keep-alive clients
  (a raw-socket load generator on loopback, open loop at a fixed rate, latency counted
  from each request's scheduled time), stepping the rate up until p99 passes 100 ms:
  one replica on SQLite, one and two replicas on PostgreSQL.
- **fleet**: two `vllm serve` (our scheduler class and host tier) behind one service;
  the agent workload of agent_jct_bench over REST with affinity routing and with round
  robin (re-prefilled tokens, JCT), then with one server killed mid-run.

    python benchmarks/scale_bench.py [--quick] [--json PATH] [--parts replicas,load,fleet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_jct_bench import make_plan, workload
from agent_rest import _program
from common import ROOT, percentiles, print_table, write_json

from memos.config import Settings
from memos.core import MemOS
from memos.memcube import keys
from memos.migrate import scratch_schema
from memos.serve_process import ServeProcess

POSTGRES_URL = os.environ.get(
    "MEMOS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MODEL_DIR = ROOT / "var" / "models"
P99_BOUND_MS = 100.0
CLIENTS = 32
NAMESPACE = "default"


@dataclass(frozen=True)
class Plan:
    lag_writes: int
    polling_writes: int
    ryw_writes: int
    soak_s: float
    soak_threads: int
    load_memories: int
    load_step_s: float
    load_rates: tuple[int, ...]
    fleet_runs: int  # runs of each routing (the VM's noise is as large as the effect)


def plan(quick: bool) -> Plan:
    rates = (50, 100, 150, 175, 200, 225, 250, 300, 350, 400)
    if quick:
        return Plan(100, 20, 100, 20.0, 4, 2_000, 8.0, rates, 1)
    return Plan(500, 60, 500, 60.0, 4, 10_000, 20.0, rates, 3)


# the service ------------------------------------------------------------------------------


def postgres_schema() -> AbstractContextManager[str]:
    """A database URL on a schema of its own, migrated, dropped afterwards."""
    return scratch_schema(POSTGRES_URL, "scale_bench")


def serve_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_DATA_DIR=str(data_dir), MEMOS_MODEL_DIR=str(MODEL_DIR), MEMOS_LLM="off")
    if database_url is not None:
        env["MEMOS_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def new_key(database_url: str, work: Path) -> str:
    settings = Settings(data_dir=work / "keys", database_url=database_url,
                        model_dir_override=MODEL_DIR)  # fmt: skip
    with MemOS(settings) as store, store.db.unit_of_work() as session:
        return keys.create_key(session, NAMESPACE)[1]


class Api:
    """One keep-alive client of one replica."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60)  # fmt: skip

    def add(self, text_: str) -> tuple[str, int]:
        answer = self.http.post("/v1/memories", json={"text": text_})
        answer.raise_for_status()
        return answer.json()["id"], int(answer.headers.get("MemOS-Seq", 0))

    def update(self, memory_id: str, text_: str) -> int:
        answer = self.http.patch(f"/v1/memories/{memory_id}", json={"text": text_})
        answer.raise_for_status()
        return int(answer.headers.get("MemOS-Seq", 0))

    def delete(self, memory_id: str) -> None:
        self.http.delete(f"/v1/memories/{memory_id}").raise_for_status()

    def search(self, query: str, top_k: int = 1, after: int | None = None) -> list[dict]:
        body: dict[str, Any] = {"query": query, "top_k": top_k, "mode": "vector"}
        if after is not None:
            body["consistency"] = {"after": after}
        answer = self.http.post("/v1/memories/search", json=body)
        answer.raise_for_status()
        return answer.json()["results"]

    def close(self) -> None:
        self.http.close()


def replica_state(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/readyz", timeout=10).json().get("replica", {})


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return float("nan")


# replicas ---------------------------------------------------------------------------------


def measure_lag(writer: Api, reader: Api, writes: int, tag: str) -> list[float]:
    """Seconds from each write's answer on one replica until a search on the other finds
    it, one write at a time."""
    lags = []
    for i in range(writes):
        text_ = f"{tag} note {i}: the {random.choice(WORDS)} rota changes on day {i}"
        memory_id, _ = writer.add(text_)
        answered = time.perf_counter()
        while not any(hit["id"] == memory_id for hit in reader.search(text_)):
            if time.perf_counter() - answered > 30:
                raise RuntimeError(f"replica never found {memory_id}")
        lags.append(time.perf_counter() - answered)
    return lags


def read_your_writes(writer: Api, reader: Api, writes: int) -> float:
    """The share of writes a search on the other replica, passing ``after``, finds at once."""
    found = 0
    for i in range(writes):
        text_ = f"ryw note {i}: the {random.choice(WORDS)} review moved to room {i}"
        memory_id, seq = writer.add(text_)
        found += any(hit["id"] == memory_id for hit in reader.search(text_, after=seq))
    return found / writes


def soak(apis: list[Api], seconds: float, threads: int) -> dict[str, int]:
    """Adds, updates and deletes from ``threads`` writers spread over the replicas."""
    counts = {"add": 0, "update": 0, "delete": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def writer(n: int) -> None:
        api, mine, rng = apis[n % len(apis)], [], random.Random(n)
        while time.monotonic() < deadline:
            op = rng.random()
            try:
                if op < 0.6 or len(mine) < 5:
                    mine.append(api.add(f"soak {n}.{len(mine)} {rng.choice(WORDS)} "
                                        f"{uuid.uuid4().hex[:8]}")[0])  # fmt: skip
                    kind = "add"
                elif op < 0.8:
                    api.update(rng.choice(mine), f"soak {n} changed {uuid.uuid4().hex[:8]}")
                    kind = "update"
                else:
                    api.delete(mine.pop(rng.randrange(len(mine))))
                    kind = "delete"
            except httpx.HTTPError:
                kind = "errors"
            with lock:
                counts[kind] += 1

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts


def divergence(database_url: str, urls: list[str], apis: list[Api]) -> dict[str, Any]:
    """Per replica, once it has applied every change: memories its index lacks, holds
    but should not, or holds with another vector than the stored one (the replica's own
    check against the database, GET /v1/memories/index/verify)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        latest = conn.execute(text("SELECT coalesce(max(seq), 0) FROM changes")).scalar()
    engine.dispose()
    report: dict[str, Any] = {"latest_seq": latest}
    total = 0
    for n, (url, api) in enumerate(zip(urls, apis, strict=True)):
        deadline = time.monotonic() + 60
        while replica_state(url).get("applied_seq", 0) < latest:
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {n} did not reach change {latest}")
            time.sleep(0.05)
        found = api.http.get("/v1/memories/index/verify").raise_for_status().json()
        report[f"replica_{n}"] = found
        total += found["missing"] + found["extra"] + found["stale"]
    report["divergence"] = total
    return report


def run_replicas(p: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memos-scale-") as tmp, postgres_schema() as url:
        work = Path(tmp)
        key = new_key(url, work)
        with ServeProcess(work / "a", serve_env(work / "a" / "data", url)) as a, \
                ServeProcess(work / "b", serve_env(work / "b" / "data", url)) as b:  # fmt: skip
            one, two = Api(a.url, key), Api(b.url, key)
            two.search("warm up")
            measure_lag(one, two, 10, "warm-up")
            lags = measure_lag(one, two, p.lag_writes, "lag")
            ryw = read_your_writes(one, two, p.ryw_writes)
            with ServeProcess(work / "c", serve_env(
                work / "c" / "data", url, MEMOS_REPLICA_LISTEN="0", MEMOS_REPLICA_POLL_S="1.0",
            )) as c:  # fmt: skip
                polling = Api(c.url, key)
                polling.search("warm up")
                polled = measure_lag(one, polling, p.polling_writes, "polled")
                polling.close()
            counts = soak([one, two], p.soak_s, p.soak_threads)
            diverged = divergence(url, [a.url, b.url], [one, two])
            apply_p99 = _histogram_p99(b.url, "memos_replica_apply_delay_seconds")
            one.close()
            two.close()
    return {
        "lag_s": percentiles(lags), "polling_lag_s": percentiles(polled),
        "read_your_writes": ryw, "soak": counts, "divergence": diverged,
        "apply_delay_p99_bucket_s": apply_p99,
    }  # fmt: skip


def _histogram_p99(url: str, name: str) -> float:
    """The upper bound of the bucket holding the 99th percentile of a histogram."""
    buckets = []
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float(bound), float(line.split()[-1])))
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= 0.99 * total)


# load ---------------------------------------------------------------------------------------


class RawClient:
    """One keep-alive HTTP/1.1 connection over asyncio streams: a prebuilt request, a
    response read by its Content-Length. A load generator this lean leaves the cores to
    the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


def search_request(host: str, port: int, key: str, query: str) -> bytes:
    body = json.dumps({"query": query, "top_k": 10, "mode": "vector"}).encode()
    return (
        f"POST /v1/memories/search HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def offered_load(
    targets: list[tuple[str, int]], requests: list[list[bytes]], rate: float, seconds: float
) -> dict[str, Any]:
    """``rate`` searches a second for ``seconds``, open loop, over ``CLIENTS`` connections
    spread over the targets; each latency runs from the request's scheduled time."""
    clients = [RawClient(*targets[i % len(targets)]) for i in range(CLIENTS)]
    total = int(rate * seconds)
    schedule = asyncio.Queue()
    for n in range(total):
        schedule.put_nowait(n / rate)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def worker(i: int) -> None:
        nonlocal errors
        client, mine = clients[i], requests[i % len(targets)]
        while not schedule.empty():
            at = schedule.get_nowait()
            delay = started + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await client.request(mine[round(at * rate) % len(mine)])
            if status != 200:
                errors += 1
            latencies.append((loop.time() - started - at) * 1000)

    cpu = os.times()
    await asyncio.gather(*(worker(i) for i in range(CLIENTS)))
    elapsed = loop.time() - started
    used = os.times()
    for client in clients:
        if client.writer is not None:
            client.writer.close()
    return {
        "rate": rate, "done_per_s": len(latencies) / elapsed, "errors": errors,
        **{f"{k}_ms": v for k, v in percentiles(latencies).items()},
        "generator_cpu": (used.user - cpu.user + used.system - cpu.system) / elapsed,
    }  # fmt: skip


def process_cpu(pids: list[int]) -> float:
    """Seconds of CPU the processes (and their threads) have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def load_curve(servers: list[ServeProcess], key: str, queries: list[str], p: Plan) -> dict:
    """Rates stepped up until p99 passes the bound; the best rate that kept it. Every
    search asks a question not asked before (no answer can come from a repeat)."""
    targets = [("127.0.0.1", s.port) for s in servers]
    fresh = iter(queries)

    def requests_for(count: int) -> list[list[bytes]]:
        asked = [next(fresh) for _ in range(count)]
        return [[search_request(h, port, key, q) for q in asked] for h, port in targets]

    steps, best = [], 0.0
    asyncio.run(offered_load(targets, requests_for(60), 20, 3.0))  # warm-up
    for rate in p.load_rates:
        pids = [s.pid for s in servers]
        before = process_cpu(pids)
        requests = requests_for(int(rate * p.load_step_s))
        step = asyncio.run(offered_load(targets, requests, rate, p.load_step_s))
        step["server_cpu"] = (process_cpu(pids) - before) / p.load_step_s
        steps.append(step)
        print(f"  {rate}/s: p99 {step['p99_ms']:.1f} ms, done {step['done_per_s']:.0f}/s, "
              f"server CPU {step['server_cpu']:.2f} cores", flush=True)  # fmt: skip
        if step["p99_ms"] > P99_BOUND_MS or step["errors"]:
            break
        best = step["done_per_s"]
    return {"steps": steps, "searches_per_s_at_p99_100ms": best}


def fill(url: str, key: str, texts: list[str]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                      timeout=300) as http:  # fmt: skip
        for start in range(0, len(texts), 200):
            items = [{"text": t} for t in texts[start : start + 200]]
            http.post("/v1/memories/batch", json={"items": items}).raise_for_status()


def run_load(p: Plan, setups: set[str]) -> dict[str, Any]:
    from common import QQP_PATH, qqp_questions

    asked = sum(int(rate * p.load_step_s) for rate in p.load_rates) + 60
    texts = qqp_questions(QQP_PATH, p.load_memories + asked)
    corpus, queries = texts[: p.load_memories], texts[p.load_memories :]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="memos-load-") as tmp:
        work = Path(tmp)
        if "sqlite_1" in setups:
            with ServeProcess(work / "sqlite", serve_env(work / "sqlite" / "data")) as server:
                key = (work / "sqlite" / "data" / "bootstrap-key").read_text().strip()
                fill(server.url, key, corpus)
                print("load, one replica on SQLite", flush=True)
                out["sqlite_1"] = load_curve([server], key, queries, p)
        if not setups & {"postgres_1", "postgres_2"}:
            return out
        with postgres_schema() as url:
            key = new_key(url, work)
            with ServeProcess(work / "pg1", serve_env(work / "pg1" / "data", url)) as one:
                fill(one.url, key, corpus)
                print("load, one replica on PostgreSQL", flush=True)
                out["postgres_1"] = load_curve([one], key, queries, p)
                with ServeProcess(work / "pg2", serve_env(work / "pg2" / "data", url)) as two:
                    print("load, two replicas on PostgreSQL", flush=True)
                    out["postgres_2"] = load_curve([one, two], key, queries, p)
    return out


# fleet --------------------------------------------------------------------------------------


def run_fleet(quick: bool, runs: int) -> dict[str, Any]:
    from memos.llm.model import prepare_model
    from memos.llm.vllm_process import VllmServer

    w = workload(quick)
    plan_ = make_plan(w)
    model_dir = prepare_model(MODEL_DIR / "SmolLM2-135M-Instruct")
    out: dict[str, Any] = {"workload": plan_["workload"]}
    with tempfile.TemporaryDirectory(prefix="memos-fleet-") as tmp:
        work = Path(tmp)
        fleet = [VllmServer(model_dir, work, kv_blocks=w.kv_blocks, host_tier_blocks=64)
                 for _ in range(2)]  # fmt: skip
        try:
            for server in fleet:
                server.start(wait=False)
            for server in fleet:
                server.wait_ready()
            urls = ",".join(s.url for s in fleet)
            for run in range(runs):
                for routing in ("affinity", "round_robin"):
                    print(f"fleet, {routing}, run {run + 1} of {runs}", flush=True)
                    out.setdefault(f"{routing}_runs", []).append(
                        _agents(work / f"{routing}-{run}", urls, routing, plan_)
                    )
                    for server in fleet:  # the next run starts from empty caches
                        server.stop()
                        server.start(wait=False)
                    for server in fleet:
                        server.wait_ready()
            for routing in ("affinity", "round_robin"):
                out[routing] = _median_run(out[f"{routing}_runs"])
            print("fleet, affinity, one server killed mid-run", flush=True)
            out["killed"] = _agents(work / "killed", urls, "affinity", plan_, kill=fleet[0])
        finally:
            for server in fleet:
                server.stop()
    return out


def _agents(work: Path, urls: str, routing: str, plan_: dict, kill: Any = None) -> dict:
    env = serve_env(work / "data", None, MEMOS_LLM="remote", MEMOS_LLM_URL=urls,
                    MEMOS_LLM_ROUTING=routing)  # fmt: skip
    with ServeProcess(work, env) as server:
        server.wait_for_chat()
        key = (work / "data" / "bootstrap-key").read_text().strip()
        results = asyncio.run(_drive(server.url, key, plan_, kill))
        servers = httpx.get(f"{server.url}/readyz", timeout=30).json().get("servers", [])
        failovers = metric(server.url, "memos_kv_fleet_failovers")
    done = [r for r in results if isinstance(r, dict)]
    turns = [t for r in done for t in r["turns"]]
    jcts = [r["jct_s"] for r in done]
    return {
        "programs": len(results), "completed": len(done), "servers": servers,
        "failovers": failovers,
        "errors": [str(r) for r in results if not isinstance(r, dict)],
        "recomputed_tokens": sum(t["recomputed_tokens"] for t in turns),
        "prompt_tokens": sum(t["prompt_tokens"] for t in turns),
        "cached_tokens": sum(t["cached_tokens"] for t in turns),
        "jct_mean_s": statistics.mean(jcts) if jcts else float("nan"),
        "jct_p90_s": sorted(jcts)[max(0, int(0.9 * len(jcts)) - 1)] if jcts else float("nan"),
    }  # fmt: skip


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose re-prefilled tokens are the median (the figure the summary takes)."""
    return sorted(runs, key=lambda r: r["recomputed_tokens"])[len(runs) // 2]


async def _drive(url: str, key: str, plan_: dict, kill: Any) -> list[Any]:
    limits = httpx.Limits(max_connections=len(plan_["programs"]) + 4)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(600.0), limits=limits) as http:  # fmt: skip
        max_tokens = plan_["workload"]["output_tokens"]
        runs = [_program(http, p, max_tokens) for p in plan_["programs"]]
        if kill is not None:
            runs.append(_kill_later(kill, plan_))
        results = await asyncio.gather(*runs, return_exceptions=True)
    return results[: len(plan_["programs"])]


async def _kill_later(server: Any, plan_: dict) -> None:
    """Kill a server once the last program has arrived: every program has turns left."""
    await asyncio.sleep(plan_["programs"][-1]["arrival_s"] + 2.0)
    server.kill()


# report -------------------------------------------------------------------------------------

WORDS = ["billing", "deploy", "oncall", "release", "search", "payments", "auth", "storage"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a faithful small run")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--parts", default="replicas,load,fleet",
                        help="comma-separated: replicas, load, fleet")  # fmt: skip
    parser.add_argument("--setups", default="sqlite_1,postgres_1,postgres_2",
                        help="load: among sqlite_1, postgres_1, postgres_2")  # fmt: skip
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    p = plan(args.quick)
    details: dict[str, Any] = {"plan": p.__dict__, "quick": args.quick}
    summary: dict[str, Any] = {}
    if "replicas" in parts:
        details["replicas"] = r = run_replicas(p)
        summary["replica_lag_p99_s"] = r["lag_s"]["p99"]
        summary["replica_divergence"] = r["divergence"]["divergence"]
        print_table("Replicas on one PostgreSQL (writes on A, searches on B)",
                    ["measure", "p50 s", "p99 s", "other"], [
            ["lag, NOTIFY", r["lag_s"]["p50"], r["lag_s"]["p99"], f"{p.lag_writes} writes"],
            ["lag, polling only (1 s)", r["polling_lag_s"]["p50"], r["polling_lag_s"]["p99"],
             f"{p.polling_writes} writes"],
            ["read-your-writes with after", "-", "-", f"{r['read_your_writes']:.3f} found"],
            ["soak", "-", "-", f"{r['soak']} -> divergence {r['divergence']['divergence']}"],
        ])  # fmt: skip
    if "load" in parts:
        details["load"] = load = run_load(p, set(args.setups.split(",")))
        if "sqlite_1" in load:
            summary["searches_per_s_at_p99_100ms"] = load["sqlite_1"]["searches_per_s_at_p99_100ms"]
        rows = []
        for name, curve in load.items():
            last_ok = [s for s in curve["steps"] if s["p99_ms"] <= P99_BOUND_MS and not s["errors"]]
            at = last_ok[-1] if last_ok else curve["steps"][0]
            rows.append([name, curve["searches_per_s_at_p99_100ms"], at["p50_ms"], at["p99_ms"],
                         at["server_cpu"], at["generator_cpu"]])  # fmt: skip
        print_table(f"Searches/s at p99 <= {P99_BOUND_MS:g} ms, {CLIENTS} keep-alive clients",
                    ["setup", "searches/s", "p50 ms", "p99 ms", "server cores",
                     "generator cores"], rows)  # fmt: skip
    if "fleet" in parts:
        details["fleet"] = f = run_fleet(args.quick, p.fleet_runs)
        aff, rr, killed = f["affinity"], f["round_robin"], f["killed"]
        summary["fleet_recompute_reduction"] = (
            rr["recomputed_tokens"] / max(1, aff["recomputed_tokens"])
        )
        summary["fleet_completed_after_kill"] = killed["completed"] / killed["programs"]
        print_table("Fleet of two vllm serve, agent workload over REST",
                    ["routing", "programs done", "re-prefilled tokens", "cached tokens",
                     "JCT mean s", "JCT p90 s", "failovers"], [
            [name, f"{x['completed']}/{x['programs']}", x["recomputed_tokens"],
             x["cached_tokens"], x["jct_mean_s"], x["jct_p90_s"], x["failovers"]]
            for name, x in (("affinity", aff), ("round robin", rr),
                            ("affinity, one killed", killed))
        ])  # fmt: skip
    print(json.dumps(summary, indent=2))
    write_json(args.json, summary, details)


if __name__ == "__main__":
    main()
