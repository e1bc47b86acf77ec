"""Graph memory benchmark: what each search mode (vector, hybrid, graph) answers about a
timeline whose facts keep changing, and what it costs.

The timeline comes from a seeded generator (graph_timeline.py): people change teams,
issues change status, assignee and priority, services change owner and port and depend
on each other; corrections arrive late, restatements repeat, look-alike names and
chatter surround them. Each change is a memory that asserts its fact (``facts`` on the
memory), valid from when it happened.

The service is the real one (`memos serve`, SQLite, ONNX embedder). Memories go in
through the Python API's ``add_batch`` with embeddings computed once and cached (the
graph ingest runs as on any add), then the last ``rest_ingest`` of them through
``POST /v1/memories/batch``; after a restart every question is asked over REST
(``POST /v1/memories/search``, top 10, one keep-alive client), once per mode. As-of
questions pass ``as_of``; timeline questions pass ``include_superseded``.

Scores: top-1 accuracy (the first memory asserts the fact that holds, or held at
``as_of``), evidence recall@10 (the share of a question's evidence groups with a memory
in the top 10), and search latency per mode. The summary's quality figures are the
worse of the sizes run; its latency ratios are at the largest.

Usage: python benchmarks/graph_bench.py [--quick] [--json PATH] [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm import tqdm as _tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cached_vectors, percentiles, print_table, write_json
from graph_timeline import Question, Timeline, generate
from search_bench import StdlibClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder, load_embedder
from memos.graph.service import FactInput
from memos.memcube import keys
from memos.migrate import upgrade
from memos.records import NewMemory
from memos.serve_process import ServeProcess

NAMESPACE = "bench"
MODES = ("vector", "hybrid", "graph")
MODEL_DIR = ROOT / "var" / "models"
REST_BATCH = 100
PREFILL_BATCH = 1_000


def tqdm(*args: Any, **kwargs: Any) -> _tqdm:
    return _tqdm(*args, mininterval=5.0, **kwargs)


@dataclass
class Plan:
    sizes: list[int]
    questions_per_kind: int
    rest_ingest: int


def plan(quick: bool) -> Plan:
    if quick:
        return Plan([10_000], 40, 1_000)
    return Plan([10_000, 100_000], 100, 5_000)


def prefill(settings: Settings, embedder: Embedder, timeline: Timeline, vectors: np.ndarray,
            count: int) -> list[str]:  # fmt: skip
    ids: list[str] = []
    with MemOS(settings, embedder=embedder) as memos:
        for start in tqdm(range(0, count, PREFILL_BATCH), desc="prefill (Python API)"):
            chunk = timeline.memories[start : min(start + PREFILL_BATCH, count)]
            items = [
                NewMemory(m.text, valid_from=m.valid_from,
                          facts=tuple(_fact_input(f) for f in m.facts))
                for m in chunk
            ]  # fmt: skip
            given = list(vectors[start : start + len(chunk)])
            results = memos.add_batch(items, namespace=NAMESPACE, vectors=given)
            ids += [r.memory.id for r in results]
    return ids


def _fact_input(fact: dict[str, Any]) -> FactInput:
    from datetime import datetime

    return FactInput(fact["subject"], fact["predicate"], fact.get("object"), fact.get("value"),
                     datetime.fromisoformat(fact["valid_from"]))  # fmt: skip


def rest_ingest(url: str, key: str, timeline: Timeline, start: int) -> tuple[list[str], float]:
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    memories = timeline.memories[start:]
    began = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for at in tqdm(range(0, len(memories), REST_BATCH), desc="ingest (REST)", unit="batch"):
            items = [{"text": m.text, "valid_from": m.valid_from.isoformat(), "facts": m.facts}
                     for m in memories[at : at + REST_BATCH]]  # fmt: skip
            r = client.post("/v1/memories/batch", json={"items": items})
            if r.status_code != 201:
                raise RuntimeError(f"batch ingest: {r.status_code} {r.text[:300]}")
            ids += r.json()["ids"]
    return ids, len(memories) / (time.perf_counter() - began)


def ask(client: StdlibClient, q: Question, mode: str) -> dict[str, Any]:
    body: dict[str, Any] = {"query": q.text, "top_k": 10, "mode": mode}
    if q.as_of is not None:
        body["as_of"] = q.as_of.isoformat()
    if q.kind == "timeline":
        body["include_superseded"] = True
    return client.post("/v1/memories/search", body)


def run_size(size: int, p: Plan, workdir: Path, embedder: Embedder) -> dict[str, Any]:
    timeline = generate(size, p.questions_per_kind)
    vectors = cached_vectors(embedder, [m.text for m in timeline.memories], "graph-vectors")
    data_dir = workdir / f"graph-{size}"
    settings = Settings(data_dir=data_dir, model_dir_override=MODEL_DIR)
    env = {**os.environ, "MEMOS_DATA_DIR": str(data_dir), "MEMOS_MODEL_DIR": str(MODEL_DIR),
           "MEMOS_LLM": "off"}  # fmt: skip
    env.pop("MEMOS_DATABASE_URL", None)
    env.pop("MEMOS_CONFIG", None)
    upgrade(settings.database_url)
    with MemOS(settings, embedder=embedder) as memos, memos.db.unit_of_work() as session:
        key = keys.create_key(session, NAMESPACE)[1]

    through_rest = min(p.rest_ingest, size)
    started = time.perf_counter()
    ids = prefill(settings, embedder, timeline, vectors, size - through_rest)
    prefill_per_s = (size - through_rest) / max(time.perf_counter() - started, 1e-9)
    with ServeProcess(data_dir, env) as server:
        rest_ids, rest_per_s = rest_ingest(server.url, key, timeline, size - through_rest)
    ids += rest_ids
    position = {memory_id: i for i, memory_id in enumerate(ids)}

    answers: dict[str, list[list[int]]] = {}
    latencies: dict[str, list[float]] = {}
    with ServeProcess(data_dir, env) as server:
        restart_s = server.ready_s
        client = StdlibClient(server.url, key)
        try:
            for mode in MODES:  # warm-up: loads the graph, the lexical pages, the code paths
                for q in timeline.questions[:10]:
                    ask(client, q, mode)
            for mode in MODES:
                found, took = [], []
                for q in tqdm(timeline.questions, desc=f"questions ({mode})", unit="q"):
                    began = time.perf_counter()
                    body = ask(client, q, mode)
                    took.append((time.perf_counter() - began) * 1000)
                    found.append([position[h["id"]] for h in body["results"]])
                answers[mode], latencies[mode] = found, took
        finally:
            client.close()
        rss_mb = _rss_mb(server)
    return {
        "size": size,
        "questions": len(timeline.questions),
        "prefill_per_s": prefill_per_s,
        "rest_ingest_per_s": rest_per_s,
        "restart_s": restart_s,
        "server_rss_mb": rss_mb,
        "modes": {mode: score(timeline, answers[mode], latencies[mode]) for mode in MODES},
    }


def _rss_mb(server: ServeProcess) -> float | None:
    proc = getattr(server, "_proc", None)
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, AttributeError):
        return None
    return None


def top1_correct(timeline: Timeline, q: Question, found: list[int]) -> bool:
    if not found:
        return False
    memory = timeline.memories[found[0]]
    return memory.key == (q.subject, q.predicate, q.answer) and memory.valid_from == q.true_from


def recall(q: Question, found: list[int]) -> float:
    top = set(found[:10])
    return sum(1 for group in q.evidence if top & set(group)) / len(q.evidence)


def score(timeline: Timeline, found: list[list[int]], took: list[float]) -> dict[str, Any]:
    by_kind: dict[str, list[tuple[Question, list[int]]]] = {}
    for q, f in zip(timeline.questions, found, strict=True):
        by_kind.setdefault(q.kind, []).append((q, f))

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    out: dict[str, Any] = {"latency_ms": percentiles(took)}
    for kind, pairs in by_kind.items():
        out[f"{kind}_recall_at_10"] = mean([recall(q, f) for q, f in pairs])
        if kind in ("current", "as_of"):
            out[f"{kind}_top1"] = mean([float(top1_correct(timeline, q, f)) for q, f in pairs])
    out["recall_at_10"] = mean([recall(q, f) for q, f in zip(timeline.questions, found,
                                                            strict=True)])  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a faithful small run")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--sizes", default=None, help="comma-separated store sizes")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stores here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = plan(args.quick)
    if args.sizes:
        p.sizes = [int(s) for s in args.sizes.split(",")]
    embedder = load_embedder(MODEL_DIR, "auto")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="memos-graph-bench-"))
    results = []
    try:
        for size in p.sizes:
            print(f"\n== {size:,} memories ==", flush=True)
            results.append(run_size(size, p, workdir, embedder))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report(args, p, results)


def report(args: argparse.Namespace, p: Plan, results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        for mode in MODES:
            m = r["modes"][mode]
            rows.append([
                f"{r['size']:,}", mode, m["current_top1"], m["as_of_top1"],
                m["current_recall_at_10"], m["as_of_recall_at_10"],
                m["multihop_recall_at_10"], m["timeline_recall_at_10"], m["recall_at_10"],
                m["latency_ms"]["p50"], m["latency_ms"]["p99"],
            ])  # fmt: skip
    print_table(
        f"Graph memory ({'quick' if args.quick else 'full'}; {p.questions_per_kind} questions "
        "per kind; top 10 over REST)",
        ["memories", "mode", "current top-1", "as-of top-1", "current R@10", "as-of R@10",
         "multi-hop R@10", "timeline R@10", "all R@10", "p50 ms", "p99 ms"],
        rows,
    )  # fmt: skip
    print_table(
        "Ingest and restart",
        ["memories", "prefill /s (Python API)", "REST ingest /s", "restart s", "server RSS MB"],
        [[f"{r['size']:,}", r["prefill_per_s"], r["rest_ingest_per_s"], r["restart_s"],
          r["server_rss_mb"]] for r in results],
    )  # fmt: skip

    # Quality: the worse of the sizes run; latency: at the largest.
    def worst(mode: str, key: str) -> float:
        return min(r["modes"][mode][key] for r in results)

    def gain(mode: str, key: str) -> float:
        return min(100 * (r["modes"][mode][key] - r["modes"]["vector"][key]) for r in results)

    largest = results[-1]["modes"]
    summary = {
        "current_state_acc_graph": worst("graph", "current_top1"),
        "current_state_gain_points": gain("graph", "current_top1"),
        "as_of_acc_graph": worst("graph", "as_of_top1"),
        "multihop_recall_graph": worst("graph", "multihop_recall_at_10"),
        "hybrid_recall_gain_points": gain("hybrid", "recall_at_10"),
        "graph_p50_over_vector": largest["graph"]["latency_ms"]["p50"]
        / largest["vector"]["latency_ms"]["p50"],
        "hybrid_p50_over_vector": largest["hybrid"]["latency_ms"]["p50"]
        / largest["vector"]["latency_ms"]["p50"],
    }
    print_table("Summary", ["name", "value"], [[k, v] for k, v in summary.items()])
    write_json(args.json, summary, {"plan": vars(p), "results": results})


if __name__ == "__main__":
    main()
