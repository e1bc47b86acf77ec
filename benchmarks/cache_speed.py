"""What a cache lookup costs: lookup latency without embedding at growing sizes, memory
per entry, the miss path (embed + lookup), and a call to the LLM it saves."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

NAMESPACE = "bench"
CATEGORY = "general"


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _vectors(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors: the real ones first, then real ones with noise (so the index
    holds a realistic, clustered distribution at any size)."""
    if n <= len(base):
        return base[:n]
    extra = base[rng.integers(0, len(base), n - len(base))]
    extra = extra + rng.normal(0, 0.05, extra.shape).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.vstack([base, extra])


def lookup_latency(
    cache: Any, entries: np.ndarray, queries: np.ndarray, query_texts: list[str], size: int,
    rng: np.random.Generator,
) -> dict[str, float]:  # fmt: skip
    """Fill one category's in-memory index to ``size`` entries and time misses through
    ``SemanticCache.lookup_vector`` (a miss never reads storage, so the entries need not
    be stored for it). Returns p50/p99 ms and bytes of memory per entry."""
    from memos.cache.entry_index import EntryMeta

    index = cache._index(NAMESPACE, CATEGORY)
    index.remove(list(index.meta))
    vectors = _vectors(entries, size, rng)
    before = _rss_bytes()
    far = time.time() + 3600
    chunk = 10_000
    with tqdm(total=size, desc=f"index {size:,}", unit="entry", leave=False) as bar:
        for start in range(0, size, chunk):
            rows = vectors[start : start + chunk]
            ids = [f"e{start + i}" for i in range(len(rows))]
            index.vectors.upsert(ids, rows)
            for entry_id in ids:
                index.meta[entry_id] = EntryMeta("synthetic entry", 0.0, far, False, 0, 0.0)
            bar.update(len(rows))
    per_entry = (_rss_bytes() - before) / size
    # Thresholds above any score: every lookup is a miss, the path the cache must keep cheap.
    timings = []
    for vector, text in zip(queries, query_texts, strict=True):
        started = time.perf_counter()
        cache.lookup_vector(NAMESPACE, vector, CATEGORY, text)
        timings.append(1000 * (time.perf_counter() - started))
    index.remove(list(index.meta))
    return {
        "entries": size,
        "lookup_p50_ms": float(np.percentile(timings, 50)),
        "lookup_p99_ms": float(np.percentile(timings, 99)),
        "bytes_per_entry": per_entry,
    }


def miss_path(cache: Any, texts: list[str]) -> dict[str, float]:
    """Embedding the query, then looking it up: what every miss costs before the LLM."""
    embed_ms, total_ms = [], []
    for text in texts:
        started = time.perf_counter()
        vector = cache.embedder.embed([text])[0]
        embedded = time.perf_counter()
        cache.lookup_vector(NAMESPACE, vector, CATEGORY, text)
        done = time.perf_counter()
        embed_ms.append(1000 * (embedded - started))
        total_ms.append(1000 * (done - started))
    return {
        "embed_p50_ms": float(np.percentile(embed_ms, 50)),
        "miss_path_p50_ms": float(np.percentile(total_ms, 50)),
        "miss_path_p99_ms": float(np.percentile(total_ms, 99)),
    }


def store_cost(cache: Any, texts: list[str], vectors: np.ndarray) -> float:
    """Mean ms to store an answer after a miss (the vector is already computed), in a
    namespace of its own (the latency runs leave a large index of deleted entries)."""
    timings = []
    for text, vector in zip(texts, vectors, strict=True):
        started = time.perf_counter()
        cache.store(f"{NAMESPACE}-store", text, "an answer of a few words",
                    category=CATEGORY, vector=vector)  # fmt: skip
        timings.append(1000 * (time.perf_counter() - started))
    return statistics.mean(timings)


def llm_call_ms(model_dir: Path, questions: list[str], max_tokens: int) -> float:
    """Mean ms of one chat completion on our embedded vLLM engine (the call a hit saves),
    one request at a time after a warm-up."""
    from vllm import SamplingParams

    from memos.llm.engine import Engine, EngineSettings

    engine = Engine(EngineSettings(model_dir, pinning=False)).start()
    try:
        tokenizer = engine.tokenizer
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

        def prompt(question: str) -> str:
            messages = [{"role": "user", "content": question}]
            return tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)  # fmt: skip

        asyncio.run(engine.generate(prompt("Hello"), params))
        timings = []
        for question in questions:
            started = time.perf_counter()
            asyncio.run(engine.generate(prompt(question), params))
            timings.append(1000 * (time.perf_counter() - started))
        return statistics.mean(timings)
    finally:
        engine.close()


def break_even_hit_rate(miss_path_ms: float, store_ms: float, llm_ms: float) -> float:
    """The hit rate at which the cache costs what it saves: every query pays the miss
    path, every miss pays the LLM and a store; without the cache, every query pays the
    LLM. ``miss + (1 - h)(llm + store) = llm``."""
    return (miss_path_ms + store_ms) / (llm_ms + store_ms)
