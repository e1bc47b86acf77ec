"""Evaluation benchmark: every system on the generated MEMTRACK-style set, side by side.

The set is `memos eval generate`'s (1,000 events and about 95 questions by default;
``--quick``: the CI-sized set of 300 events and 50 questions, every question type).
Every system runs through the same runner as `memos eval run`, with the extractive
reader (deterministic, no LLM): memos in each search mode over its REST API (a
`memos serve` the harness starts, SQLite, ONNX embedder), vector-rag, full-context,
no-memory and mem0. Then the best memos mode runs once more with the embedded model as
the reader (SmolLM2-135M-Instruct on vLLM, CPU).

Summary (the issue's names): the best memos mode's evidence recall@10
(``recall_at_10_best``; the best by that figure), its current-state exact match minus
vector-rag's and mem0's in points, its prompt tokens per question as a share of
full-context's, and the slowest system's run time on the set (``runtime_s_1k``:
ingest and questions, the service's start not counted; with ``--quick`` it is the
CI-sized set's).

Usage: python benchmarks/eval_bench.py [--quick] [--json PATH] [--events N] [--skip-embedded]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_table, write_json

from memos.config import Settings
from memos.eval import report
from memos.eval.dataset import dump_jsonl
from memos.eval.generator import CI_SET, generate
from memos.eval.harness import Harness
from memos.eval.runner import RunResult, run, sha256_of
from memos.eval.systems import MEMOS_MODES, SYSTEMS

MODEL_DIR = ROOT / "var" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI-sized set")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-embedded", action="store_true", help="extractive reader only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "eval",
                        help="where the report (Markdown, PNG) and each run's JSON go")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    sizes = CI_SET if args.quick else {"events": args.events, "questions": None}
    dataset = generate(seed=args.seed, **sizes)
    work = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    path = work / f"team-{len(dataset.events)}.jsonl"
    dump_jsonl(dataset, path)
    digest = sha256_of(path)
    print(f"{path.name}: {len(dataset.events)} events, {len(dataset.questions)} questions")

    settings = Settings(data_dir=work / "data", model_dir_override=MODEL_DIR)
    runs: dict[str, RunResult] = {}
    with Harness(settings) as harness:
        extractive = harness.reader("extractive", dataset)
        harness.counter  # noqa: B018 - load the tokenizer before any run is timed
        for name in SYSTEMS:
            runs[name] = run(dataset, harness.system(name), extractive, harness.counter,
                             label=path.name, digest=digest)  # fmt: skip
        best = max(MEMOS_MODES, key=lambda m: runs[f"memos-{m}"].summary["all"]["recall_at_10"])
        embedded_run = None
        if not args.skip_embedded:
            started = time.perf_counter()
            system = harness.system(f"memos-{best}", needs_chat=True)
            reader = harness.reader("embedded", dataset)
            print(f"embedded model up in {time.perf_counter() - started:.0f} s")
            embedded_run = run(dataset, system, reader, harness.counter,
                               label=path.name, digest=digest)  # fmt: skip

    shown = list(runs.values()) + ([embedded_run] if embedded_run else [])
    title = f"{path.name} (seed {args.seed})"
    written = report.write(shown, args.out, title)
    for result in shown:
        (args.out / f"{result.system}-{result.reader}.json").write_text(
            _json(result.to_json())
        )
    print(report.markdown(shown))

    def cs(name: str) -> float:
        return runs[name].summary["by_type"]["current-state"]["exact_match"]

    top = runs[f"memos-{best}"].summary["all"]
    full = runs["full-context"].summary["all"]
    summary = {
        "recall_at_10_best": top["recall_at_10"],
        "current_state_gain_vs_rag_points": 100 * (cs(f"memos-{best}") - cs("vector-rag")),
        "current_state_gain_vs_mem0_points": 100 * (cs(f"memos-{best}") - cs("mem0")),
        "prompt_token_share_vs_full_context": top["prompt_tokens_per_question"]
        / full["prompt_tokens_per_question"],
        "runtime_s_1k": max(r.runtime_s for r in runs.values()),
    }
    print_table(
        f"Targets (best memos mode: {best})",
        ["figure", "measured", "target"],
        [
            ["recall_at_10_best", summary["recall_at_10_best"], ">= 0.90"],
            ["current_state_gain_vs_rag_points", summary["current_state_gain_vs_rag_points"],
             ">= 25"],
            ["current_state_gain_vs_mem0_points", summary["current_state_gain_vs_mem0_points"],
             ">= 25"],
            ["prompt_token_share_vs_full_context",
             summary["prompt_token_share_vs_full_context"], "<= 0.10"],
            ["runtime_s_1k (slowest system)", summary["runtime_s_1k"], "<= 600"],
        ],
    )  # fmt: skip
    details: dict[str, Any] = {
        "dataset": {
            "events": len(dataset.events),
            "questions": len(dataset.questions),
            "seed": args.seed,
            "sha256": digest,
        },
        "best_memos_mode": best,
        "runs": {f"{r.system}/{r.reader}": r.summary for r in shown},
        "report": written,
    }
    write_json(args.json, summary, details)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=1, default=str)


if __name__ == "__main__":
    main()
