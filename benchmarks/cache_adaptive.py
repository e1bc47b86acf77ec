"""The adaptive policy under a simulated backend overload, on the QQP test pairs.

Each pair is one intent. Queries draw intents by Zipf popularity (exponent 1.1, as
request logs of question-answering services show); an intent's first asking is its
question ``a`` (a miss: the backend answers and the answer is cached for the category's
TTL); a later asking repeats ``a`` word for word or, as often, asks ``b`` — a hit
when the intent's entry is still fresh (younger than the category's TTL at that
moment, which load stretches, as in the cache) and the pair's score reaches the
category's threshold (a verbatim repeat always reaches it). Queries arrive as a
Poisson stream whose rate doubles in the middle third of the run; every miss is a call
queued at a backend of fixed capacity, and the backlog is the load the cache observes
(the product's ``LoadSignal`` and ``CategoryPolicy.under_load``). Static: the base
policy throughout. Adaptive: the same base, with ``min_threshold`` the category's
threshold tuned for a 3 % false-positive budget (on the train half) and ``max_ttl_s``
``ttl_stretch`` times the TTL (the benchmark runs several). The false-positive rate
counts hits on ``b`` askings of pairs labeled not-duplicate over those askings; the
"decided" rate over those that found the intent's entry alive (the askings the
threshold judged). Simulated time: no waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memos.cache.load_signal import LoadSignal
from memos.cache.policy import CategoryPolicy, LoadBounds

TTL_S = 300.0
QUERIES_PER_PAIR = 3  # the run asks this many queries per test pair
ZIPF = 1.1
CAPACITY_PER_S = 5.0  # backend calls answered per second
BASE_RATE_PER_S = 6.0  # queries per second outside the overload
OVERLOAD_FACTOR = 2.0
LOAD = LoadBounds(normal=2.0, overload=20.0)


@dataclass(frozen=True)
class Outcome:
    backend_calls: int
    false_positive_rate: float
    useful_hit_rate: float
    overload_calls: int
    overload_false_positive_rate: float
    overload_decided_false_positive_rate: float


def simulate(
    scores: np.ndarray, labels: np.ndarray, categories: np.ndarray,
    base: dict[str, float], relaxed: dict[str, float] | None, ttl_stretch: float = 4.0,
    seed: int = 0,
) -> Outcome:  # fmt: skip
    """``base``/``relaxed``: per-category thresholds (relaxed None: the static policy);
    under load the TTL may stretch to ``ttl_stretch`` times its base."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    policies = {
        name: CategoryPolicy(
            name, threshold=min(1.0, max(1e-6, base[name])), ttl_s=TTL_S,
            min_threshold=None if relaxed is None
            else min(1.0, max(1e-6, min(relaxed[name], base[name]))),
            max_ttl_s=None if relaxed is None else ttl_stretch * TTL_S,
        )
        for name in base
    }  # fmt: skip
    queries = QUERIES_PER_PAIR * n
    popularity = 1.0 / np.arange(1, n + 1) ** ZIPF
    intents = rng.permutation(n)[
        np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(queries))
    ]
    verbatim = rng.random(queries) < 0.5
    overload_from = queries / 3
    overload_to = 2 * queries / 3

    signal = LoadSignal(LOAD)
    backlog = clock = 0.0
    seen = np.zeros(n, dtype=bool)
    stored_at = np.zeros(n)
    calls = overload_calls = false_hits = paraphrases_not_dup = useful_hits = 0
    overload_false_hits = overload_not_dup = overload_not_dup_decided = 0
    for q, i in enumerate(intents):
        overloaded = overload_from <= q < overload_to
        gap = rng.exponential(1 / (BASE_RATE_PER_S * (OVERLOAD_FACTOR if overloaded else 1)))
        clock += gap
        backlog = max(0.0, backlog - CAPACITY_PER_S * gap)
        signal.observe(backlog)
        policy = policies[categories[i]]
        threshold, ttl = policy.under_load(signal.pressure)
        paraphrase = seen[i] and not verbatim[q]
        paraphrases_not_dup += int(paraphrase and not labels[i])
        overload_not_dup += int(overloaded and paraphrase and not labels[i])
        # the cache's rule: fresh for the category's TTL now (which load stretches)
        alive = seen[i] and clock < stored_at[i] + ttl
        overload_not_dup_decided += int(overloaded and alive and paraphrase and not labels[i])
        if alive and (not paraphrase or scores[i] >= threshold):
            useful_hits += int(not paraphrase or labels[i])
            false_hits += int(paraphrase and not labels[i])
            overload_false_hits += int(overloaded and paraphrase and not labels[i])
            continue
        seen[i] = True
        calls += 1
        overload_calls += int(overloaded)
        backlog += 1
        stored_at[i] = clock
    return Outcome(
        calls, false_hits / max(1, paraphrases_not_dup), useful_hits / queries, overload_calls,
        overload_false_hits / max(1, overload_not_dup),
        overload_false_hits / max(1, overload_not_dup_decided),
    )  # fmt: skip
