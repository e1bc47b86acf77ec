"""Semantic cache benchmark on human-labeled paraphrases: Quora Question Pairs
(benchmarks/data/qqp-pairs.jsonl.gz; its README gives origin and terms).

Protocol: cache question ``a``, ask question ``b``; a hit on a pair labeled duplicate is
useful, a hit on one labeled not-duplicate is a false positive. The pairs are shuffled
and split in half: everything is tuned on the train half and measured on the test half.

- Global (GPTCache-style): one cosine threshold for every query.
- Ours: the cache's pair scorer (small neural networks over the embeddings' element-wise
  agreement and lexical signals, cache/pair_scorer.py) trained on the train half, and a
  threshold per category, tuned on the train half for the most useful hits within the
  false-positive budget (the scorer learns on 70 % of the train half, the thresholds
  are set on the other 30 %). Categories: topic clusters (k-means over the train queries'
  vectors), each given to the cache as the exemplar queries nearest its centre, so the
  cache's own nearest-centroid classifier assigns them.
Compared at equal realized false-positive rate on the test half (2 %): ours along the
budgets it was tuned for, the global one along its thresholds.

Then what a lookup costs: latency without embedding at 10k and 100k entries (and 1M in
the full run), memory per entry, the miss path (embed + lookup), a store, a call to our
vLLM backend, and the break-even hit rate they imply.

Usage: python benchmarks/cache_bench.py [--quick] [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cache_adaptive import simulate
from cache_quality import Curve, apply, rates, thresholds_for_budget, tuned_curve
from common import ROOT, print_table, write_json

DATA = Path(__file__).resolve().parent / "data" / "qqp-pairs.jsonl.gz"
VECTORS_DIR = ROOT / "var" / "bench-vectors"
BUDGET = 0.02
FIT_SHARE = 0.7  # of the train half, for the scorer; the rest sets the thresholds
RELAXED_BUDGET = 0.03  # the thresholds load may relax to: the 3 % false-positive ceiling
# How far load may stretch a TTL (max_ttl_s / ttl_s). Each is simulated; the headline is
# the largest: QQP's questions ("how do I learn Python?") have answers that stay right
# for hours, so 40 minutes instead of 5 under overload serves nothing stale.
TTL_STRETCHES = (2.0, 4.0, 8.0)
HEADLINE_STRETCH = 8.0
TOPICS = 8
EXEMPLARS_PER_TOPIC = 32


def load_pairs(limit: int | None, seed: int = 0) -> list[dict[str, Any]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as lines:
        pairs = [json.loads(line) for line in lines]
    random.Random(seed).shuffle(pairs)
    return pairs[:limit] if limit else pairs


def embed_pairs(embedder: Any, pairs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' vectors, computed once per data size and model and kept under var/."""
    path = VECTORS_DIR / f"qqp-{len(pairs)}-{embedder.model_id.replace('/', '_')}.npz"
    if path.exists():
        with np.load(path) as saved:
            return saved["a"], saved["b"]
    texts = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    vectors = []
    from tqdm import tqdm

    for start in tqdm(range(0, len(texts), 256), desc="embedding QQP", unit="batch"):
        vectors.append(embedder.embed(texts[start : start + 256]))
    every = np.vstack(vectors)
    a, b = every[: len(pairs)], every[len(pairs) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, a=a, b=b)
    return a, b


def topic_exemplars(train_a: np.ndarray, texts: list[str], rng: np.random.Generator) -> dict:
    """k-means (cosine) over the train queries; per topic, the queries nearest its centre."""
    centres = train_a[rng.choice(len(train_a), TOPICS, replace=False)]
    for _ in range(25):
        assignment = np.argmax(train_a @ centres.T, axis=1)
        for k in range(TOPICS):
            members = train_a[assignment == k]
            if len(members):
                centre = members.mean(axis=0)
                centres[k] = centre / np.linalg.norm(centre)
    scores = train_a @ centres.T
    assignment = np.argmax(scores, axis=1)
    exemplars = {}
    for k in range(TOPICS):
        members = np.nonzero(assignment == k)[0]
        nearest = members[np.argsort(-scores[members, k])[:EXEMPLARS_PER_TOPIC]]
        exemplars[f"topic-{k}"] = [texts[i] for i in nearest]
    return exemplars


def quality(pairs: list[dict[str, Any]], a: np.ndarray, b: np.ndarray, embedder: Any,
            scorer_path: Path) -> dict[str, Any]:  # fmt: skip
    from memos.cache import CachePolicy, CategoryPolicy
    from memos.cache.classifier import CentroidClassifier
    from memos.cache.pair_features import pair_features
    from memos.cache.pair_scorer import PairScorer

    rng = np.random.default_rng(0)
    labels = np.array([p["duplicate"] for p in pairs], dtype=bool)
    half = len(pairs) // 2
    train, test = slice(0, half), slice(half, len(pairs))
    # The scorer learns on part of the train half; the thresholds are set on the rest,
    # pairs it has not seen (on its own training pairs it is over-confident).
    fit_part, tune_part = slice(0, int(half * FIT_SHARE)), slice(int(half * FIT_SHARE), half)
    cosine = (a * b).sum(axis=1)

    started = time.perf_counter()
    features = pair_features([p["b"] for p in pairs], b, [p["a"] for p in pairs], a)
    scorer = PairScorer.fit(features[fit_part], labels[fit_part], embedder.model_id,
                            embedder.dim)  # fmt: skip
    scorer.save(scorer_path)
    scores = scorer.probabilities(features)
    train_s = time.perf_counter() - started

    exemplars = topic_exemplars(a[train], [p["a"] for p in pairs[:half]], rng)
    policy = CachePolicy({name: CategoryPolicy(name, exemplars=tuple(texts))
                          for name, texts in exemplars.items()})  # fmt: skip
    vectors = {name: embedder.embed(list(c.exemplars)) for name, c in policy.categories.items()}
    classifier = CentroidClassifier(vectors, policy.default_category)
    categories = np.array([classifier.classify(v) for v in b])  # the asking query's category

    global_curve = Curve.of(cosine[test], labels[test])
    global_threshold = Curve.of(cosine[train], labels[train]).threshold_for(BUDGET)
    global_point = rates(cosine[test] >= global_threshold, labels[test])

    split_train = (scores[tune_part], labels[tune_part], categories[tune_part])
    split_test = (scores[test], labels[test], categories[test])
    tuned = thresholds_for_budget(*split_train, BUDGET)
    ours_point = rates(apply(scores[test], categories[test], tuned), labels[test])
    budgets = np.concatenate([np.linspace(0.002, 0.05, 25), [BUDGET]])
    ours_fpr, ours_useful = tuned_curve(split_train, split_test, budgets)
    ours_at = float(np.interp(BUDGET, ours_fpr, ours_useful))
    global_at = global_curve.useful_at(BUDGET)

    relaxed = thresholds_for_budget(*split_train, RELAXED_BUDGET)
    static = simulate(scores[test], labels[test], categories[test], tuned, None)
    adaptive = {
        stretch: simulate(scores[test], labels[test], categories[test], tuned, relaxed, stretch)
        for stretch in TTL_STRETCHES
    }

    per_category = {}
    hits = apply(scores[test], categories[test], tuned)
    for name in policy.categories:
        mine = categories[test] == name
        per_category[name] = {
            "queries": int(mine.sum()),
            "threshold": tuned.get(name),
            **rates(hits[mine], labels[test][mine]),
            "curve": _pr_curve(scores[test][mine], labels[test][mine]),
        }
    return {
        "pairs": len(pairs), "train_pairs": half, "test_pairs": len(pairs) - half,
        "scorer_train_s": train_s,
        "global": {"threshold": global_threshold, **global_point,
                   "useful_at_budget": global_at,
                   "curve": {"fpr": global_curve.fpr[::50].tolist(),
                             "useful": global_curve.useful[::50].tolist()}},
        "ours": {"thresholds": tuned, **ours_point, "useful_at_budget": ours_at,
                 "curve": {"fpr": ours_fpr.tolist(), "useful": ours_useful.tolist()}},
        "ratio_at_budget": ours_at / global_at if global_at else float("nan"),
        "adaptive": {
            "static": static.__dict__, "relaxed_thresholds": relaxed,
            "headline_stretch": HEADLINE_STRETCH,
            "by_ttl_stretch": {
                str(stretch): {
                    **outcome.__dict__,
                    "call_cut_pct": 100 * (1 - outcome.backend_calls / static.backend_calls),
                    "overload_call_cut_pct":
                        100 * (1 - outcome.overload_calls / static.overload_calls),
                } for stretch, outcome in adaptive.items()
            },
        },
        "per_category": per_category,
        "global_pr": _pr_curve(cosine[test], labels[test]),
        "ours_pr": _pr_curve(scores[test], labels[test]),
    }  # fmt: skip


def _pr_curve(scores: np.ndarray, labels: np.ndarray, points: int = 40) -> dict[str, list]:
    order = np.argsort(-scores, kind="stable")
    duplicate = labels[order].astype(bool)
    tp = np.cumsum(duplicate)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / max(1, int(duplicate.sum()))
    pick = np.unique(np.linspace(0, len(tp) - 1, points).astype(int)) if len(tp) else []
    return {"precision": precision[pick].tolist(), "recall": recall[pick].tolist()}


def speed(quick: bool, b: np.ndarray, a: np.ndarray, pairs: list[dict[str, Any]],
          embedder: Any, scorer_path: Path) -> dict[str, Any]:  # fmt: skip
    from cache_speed import (
        break_even_hit_rate,
        llm_call_ms,
        lookup_latency,
        miss_path,
        store_cost,
    )

    from memos.cache import CachePolicy, CategoryPolicy, SemanticCache
    from memos.memcube.database import Database
    from memos.migrate import upgrade

    rng = np.random.default_rng(1)
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    policy = CachePolicy({"general": CategoryPolicy("general", threshold=1.0)},
                         scorer=scorer_path)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="memos-cache-bench-") as tmp:
        url = f"sqlite:///{tmp}/cache.db"
        upgrade(url)
        db = Database(url)
        cache = SemanticCache(db, embedder, policy).open()
        queries = b[:1_000]
        texts = [p["b"] for p in pairs[:1_000]]
        latency = [lookup_latency(cache, a, queries, texts, n, rng) for n in sizes]
        misses = miss_path(cache, texts[:300])
        store_ms = store_cost(cache, [p["a"] for p in pairs[:200]], a[:200])
        db.dispose()
    model_dir = ROOT / "var" / "models" / "SmolLM2-135M-Instruct"
    llm_ms = llm_call_ms(model_dir, texts[: 5 if quick else 20], max_tokens=64)
    return {
        "latency": latency, **misses, "store_ms": store_ms, "llm_call_ms": llm_ms,
        "break_even_hit_rate": break_even_hit_rate(misses["miss_path_p50_ms"], store_ms, llm_ms),
    }  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    q = result["quality"]
    left.plot(q["global_pr"]["recall"], q["global_pr"]["precision"], "k--",
              label="global cosine (GPTCache-style)")  # fmt: skip
    left.plot(q["ours_pr"]["recall"], q["ours_pr"]["precision"], "b-", lw=2,
              label="pair scorer, all categories")  # fmt: skip
    for name, c in q["per_category"].items():
        left.plot(c["curve"]["recall"], c["curve"]["precision"], lw=0.8, alpha=0.7, label=name)
    left.set(xlabel="recall (duplicates served)", ylabel="precision",
             title="Precision-recall on the QQP test half")  # fmt: skip
    left.legend(fontsize=7)
    right.plot(q["global"]["curve"]["fpr"], q["global"]["curve"]["useful"], "k--",
               label="global cosine threshold")  # fmt: skip
    right.plot(q["ours"]["curve"]["fpr"], q["ours"]["curve"]["useful"], "b-o", ms=3,
               label="per-category thresholds on the pair scorer")  # fmt: skip
    right.axvline(BUDGET, color="grey", lw=0.8)
    right.set(xlim=(0, 0.06), ylim=(0, 0.2), xlabel="false-positive rate (test)",
              ylabel="useful hits / queries (test)",
              title="Useful hits at equal false positives")  # fmt: skip
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a faithful small run")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--plot", type=Path, default=None,
                        help="the precision-recall PNG (default: beside the JSON)")  # fmt: skip
    parser.add_argument("--skip-speed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from memos.embeddings import load_embedder

    embedder = load_embedder(ROOT / "var" / "models", "auto")
    pairs = load_pairs(20_000 if args.quick else None)
    a, b = embed_pairs(embedder, pairs)
    out_dir = args.json.parent if args.json else ROOT / "bench-results"
    scorer_path = out_dir / "qqp-pair-scorer.npz"
    result: dict[str, Any] = {"quality": quality(pairs, a, b, embedder, scorer_path)}
    if not args.skip_speed:
        result["speed"] = speed(args.quick, b[len(b) // 2 :], a, pairs[len(pairs) // 2 :],
                                embedder, scorer_path)  # fmt: skip
    report(args, result)
    plot(result, args.plot or out_dir / ("cache-pr-quick.png" if args.quick else "cache-pr.png"))


def _threshold(value: float | None) -> float | str:
    """A tuned threshold, or "never" when no threshold paid off in the category."""
    return value if value is not None and value < 1e8 else "never"


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    q = result["quality"]
    rows = []
    for name, point in (("global cosine", q["global"]), ("ours", q["ours"])):
        rows.append([name, point["hit_rate"], point["useful_hit_rate"],
                     point["false_positive_rate"], point["precision"],
                     point["useful_at_budget"]])  # fmt: skip
    print_table(
        f"QQP, {q['test_pairs']:,} test pairs (thresholds tuned on {q['train_pairs']:,} for "
        f"FPR <= {BUDGET:.0%})",
        ["decision", "hit rate", "useful-hit rate", "false-positive rate", "precision",
         f"useful at FPR {BUDGET:.0%} (curve)"], rows,
    )  # fmt: skip
    print(f"useful hits at equal {BUDGET:.0%} FPR: ours / global = {q['ratio_at_budget']:.2f}x")
    print_table(
        "Per category (ours, test half)",
        ["category", "queries", "threshold", "hit rate", "useful", "FPR", "precision", "recall"],
        [[n, c["queries"], _threshold(c["threshold"]), c["hit_rate"],
          c["useful_hit_rate"], c["false_positive_rate"], c["precision"], c["recall"]]
         for n, c in q["per_category"].items()],
    )  # fmt: skip
    ad = q["adaptive"]
    runs = [("static", ad["static"])] + [
        (f"adaptive, TTL up to x{float(k):g}", r) for k, r in ad["by_ttl_stretch"].items()
    ]
    print_table(
        "Simulated backend overload (Zipf-popular intents; the query rate doubles in the "
        "middle third)",
        ["policy", "backend calls", "calls in overload", "cut in overload %",
         "useful-hit rate", "FPR", "FPR in overload", "FPR in overload, decided"],
        [[name, r["backend_calls"], r["overload_calls"], r.get("overload_call_cut_pct", 0.0),
          r["useful_hit_rate"], r["false_positive_rate"], r["overload_false_positive_rate"],
          r["overload_decided_false_positive_rate"]] for name, r in runs],
    )  # fmt: skip
    head = ad["by_ttl_stretch"][str(ad["headline_stretch"])]
    print(
        f"adaptive (TTL up to x{ad['headline_stretch']:g}) cuts backend calls by "
        f"{head['overload_call_cut_pct']:.1f} % during the overload "
        f"({head['call_cut_pct']:.1f} % over the whole run, two thirds of it normal)"
    )
    summary: dict[str, Any] = {
        "hit_ratio_vs_global_at_fp2": round(q["ratio_at_budget"], 3),
        "adaptive_call_cut_pct": round(head["overload_call_cut_pct"], 2),
        "adaptive_fp_pct": round(100 * head["overload_false_positive_rate"], 2),
        "adaptive_fp_decided_pct": round(100 * head["overload_decided_false_positive_rate"], 2),
        "adaptive_call_cut_whole_run_pct": round(head["call_cut_pct"], 2),
        "adaptive_ttl_stretch": ad["headline_stretch"],
        "useful_hit_rate_at_fp2": round(q["ours"]["useful_at_budget"], 4),
        "global_useful_hit_rate_at_fp2": round(q["global"]["useful_at_budget"], 4),
    }
    s = result.get("speed")
    if s:
        print_table(
            "Lookup without embedding (misses: the scorer judges the 4 nearest live entries)",
            ["entries", "p50 ms", "p99 ms", "bytes / entry"],
            [[f"{r['entries']:,}", r["lookup_p50_ms"], r["lookup_p99_ms"], r["bytes_per_entry"]]
             for r in s["latency"]],
        )  # fmt: skip
        print(f"miss path (embed + lookup): p50 {s['miss_path_p50_ms']:.1f} ms, p99 "
              f"{s['miss_path_p99_ms']:.1f} ms (embedding alone {s['embed_p50_ms']:.1f} ms); "
              f"store {s['store_ms']:.1f} ms; LLM call {s['llm_call_ms']:.0f} ms; "
              f"break-even hit rate {s['break_even_hit_rate']:.2%}")  # fmt: skip
        at_100k = next(r for r in s["latency"] if r["entries"] == 100_000)
        summary.update(
            lookup_p99_ms_100k=round(at_100k["lookup_p99_ms"], 3),
            miss_path_ms=round(s["miss_path_p50_ms"], 2),
            break_even_hit_rate=round(s["break_even_hit_rate"], 4),
        )
    print("\nsummary:", summary)
    write_json(args.json, summary, result)


if __name__ == "__main__":
    main()
