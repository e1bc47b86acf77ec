"""Single texts that concurrent callers embed share model runs, and each caller gets
exactly the vector it would have got alone; a failed run fails each of its callers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memos.embedding_batcher import EmbeddingBatcher
from memos.embeddings import Embedder

QUERIES = [f"when does the {word} rota change for team {n}?"
           for n, word in enumerate(["billing", "deploy", "oncall", "search"] * 16)]  # fmt: skip


def embed_concurrently(batcher: EmbeddingBatcher, threads: int = 16) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}

    def worker(k: int) -> None:
        for i in range(k, len(QUERIES), threads):
            out[i] = batcher.embed([QUERIES[i]])[0]

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out


def test_concurrent_queries_share_runs_and_get_their_own_vectors(embedder: Embedder) -> None:
    batcher = EmbeddingBatcher(embedder, lanes=2)
    alone = np.stack([embedder.embed([q])[0] for q in QUERIES])
    together = embed_concurrently(batcher)
    assert sorted(together) == list(range(len(QUERIES)))
    for i, vector in together.items():
        assert np.allclose(vector, alone[i], atol=1e-5), QUERIES[i]
    assert batcher.texts == len(QUERIES) and batcher.runs < len(QUERIES)  # some shared a run
    # nothing is left waiting or leading
    assert batcher._leading == 0 and batcher._waiting == []
    # several texts at once go straight to the model
    assert np.allclose(batcher.embed(QUERIES[:3]), embedder.embed(QUERIES[:3]), atol=1e-5)


class _Failing:
    model_id, dim = "failing", 4

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        raise RuntimeError("the model failed")


def test_a_failed_run_fails_each_of_its_callers_and_frees_the_lanes() -> None:
    failing = _Failing()
    batcher = EmbeddingBatcher(failing, lanes=1)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            batcher.embed(["x"])
        except RuntimeError as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(errors) == 8 and batcher._leading == 0
    with pytest.raises(RuntimeError, match="the model failed"):
        batcher.embed(["again"])
