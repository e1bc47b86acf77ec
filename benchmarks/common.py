"""Shared helpers of the benchmark scripts: data, percentiles, tables, JSON output."""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
QQP_PATH = ROOT.parent / "shared" / "data" / "qqp-pairs.jsonl.gz"
CACHE_DIR = ROOT / "var" / "bench-cache"


def cached_vectors(embedder: Any, texts: list[str], prefix: str = "vectors") -> np.ndarray:
    """Embeddings of ``texts`` by ``embedder``, computed once and kept under var/."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{prefix}-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = 2_048
    for start in tqdm(range(0, len(texts), step), desc="embedding (cached)", unit="chunk",
                      mininterval=5.0):  # fmt: skip
        vectors[start : start + step] = embedder.embed(texts[start : start + step])
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def qqp_questions(path: Path, limit: int) -> list[str]:
    """Unique questions of Quora Question Pairs in file order: real, short, user-written text."""
    if not path.exists():
        sys.exit(f"data set not found: {path} (pass --data PATH)")
    seen: dict[str, None] = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            pair = json.loads(line)
            for text in (pair["a"], pair["b"]):
                text = text.strip()
                if text and text not in seen:
                    seen[text] = None
                    if len(seen) == limit:
                        return list(seen)
    return list(seen)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
    }


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [
        f"\n{title}",
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def write_json(path: Path | None, summary: dict[str, Any], details: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "summary": summary,
        "details": details,
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "node": platform.node()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {path}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
