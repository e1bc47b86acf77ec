"""The semantic cache on SQLite and PostgreSQL with the real embedder: namespaces never
share answers, expiry and quotas hold, answers built on a memory go when it changes,
a restart keeps every entry, load moves thresholds within bounds, and bad input gets
a precise error."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from memos.cache import CachePolicy, CategoryPolicy, LoadBounds, PolicyError, SemanticCache
from memos.core import MemOS
from memos.errors import InvalidInputError, NotFoundError, TooLargeError

QUESTION = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"
MEMORY_ID = "0192f0c4-5b6e-7a8b-9c0d-1e2f3a4b5c6d"  # an id in the form the store writes
OTHER = "What time does the museum open on Sundays?"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def similarity(memos: MemOS, a: str, b: str) -> float:
    va, vb = memos.embedder.embed([a, b])
    return float(np.dot(va, vb))


def cache_of(memos: MemOS, policy: CachePolicy, clock: Clock | None = None) -> SemanticCache:
    return SemanticCache(memos.db, memos.embedder, policy, clock or Clock()).open()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_hit_on_a_paraphrase_miss_on_another_question(memos: MemOS, ns: str) -> None:
    stored = memos.cache.store(ns, QUESTION, "Use the 'Forgot password' link.", model="m1")
    hit = memos.cache.lookup(ns, PARAPHRASE)
    assert hit.hit and hit.answer.id == stored.id and hit.answer.response.startswith("Use")
    assert hit.similarity >= hit.threshold == 0.95 and hit.category == "general"
    miss = memos.cache.lookup(ns, OTHER)
    assert not miss.hit and miss.answer is None and miss.similarity < 0.5
    stats = memos.cache.stats.snapshot(ns)
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_rate"] == 0.5
    assert memos.cache.get(ns, stored.id).hits == 1


def test_identical_queries_in_two_namespaces_never_hit_across(
    memos: MemOS, ns: str, other_ns: str
) -> None:
    memos.cache.store(ns, QUESTION, "answer for ns")
    assert not memos.cache.lookup(other_ns, QUESTION).hit
    memos.cache.store(other_ns, QUESTION, "answer for other")
    assert memos.cache.lookup(ns, QUESTION).answer.response == "answer for ns"
    assert memos.cache.lookup(other_ns, QUESTION).answer.response == "answer for other"
    with pytest.raises(NotFoundError):  # nor by id
        memos.cache.get(other_ns, memos.cache.lookup(ns, QUESTION).answer.id)


def test_expired_entries_are_never_served_and_get_reaped(
    memos: MemOS, ns: str, clock: Clock
) -> None:
    cache = cache_of(memos, CachePolicy({"general": CategoryPolicy("general", ttl_s=60)}), clock)
    short = cache.store(ns, QUESTION, "short-lived", ttl_s=5)
    cache.store(ns, OTHER, "policy ttl")
    clock.now += 6
    assert not cache.lookup(ns, QUESTION).hit
    assert cache.lookup(ns, OTHER).hit
    clock.now += 60
    assert not cache.lookup(ns, OTHER).hit
    assert cache.expire_due() >= 2
    with pytest.raises(NotFoundError):
        cache.get(ns, short.id)
    assert cache.stats.snapshot(ns)["categories"]["general"]["expirations"] == 2


@pytest.mark.parametrize("eviction", ["lru", "lfu"])
def test_quota_evicts_by_the_categorys_rule(
    memos: MemOS, ns: str, clock: Clock, eviction: str
) -> None:
    policy = CachePolicy({"faq": CategoryPolicy("faq", max_entries=3, eviction=eviction)})
    cache = cache_of(memos, policy, clock)
    questions = [f"Where is office number {n} located?" for n in range(3)]
    ids = []
    for question in questions:
        clock.now += 1
        ids.append(cache.store(ns, question, f"answer {question}").id)
    for _ in range(2):  # the oldest entry is the most used one, and used last
        clock.now += 1
        assert cache.lookup(ns, questions[0]).hit
    clock.now += 1
    assert cache.lookup(ns, questions[1]).hit
    clock.now += 1
    fourth = cache.store(ns, "Which floor is the cafeteria on?", "the fifth")
    # lru gives up the least recently used (office 2); lfu the least used (office 2, 0 hits)
    assert fourth.evicted == [ids[2]]
    clock.now += 1
    fifth = cache.store(ns, "Who cleans the kitchen?", "the rota")
    # lru: office 0 was used before office 1 and the cafeteria; lfu: the cafeteria was
    # never used (LFU's known weakness: a new entry goes before old popular ones)
    assert fifth.evicted == ([ids[0]] if eviction == "lru" else [fourth.id])
    assert cache.sizes(ns)["faq"] == 3
    assert cache.stats.snapshot(ns)["evictions"] == 2


def test_answers_built_on_a_memory_go_when_it_is_updated_or_deleted(memos: MemOS, ns: str) -> None:
    fact = memos.add("The VPN gateway is vpn.example.com.", namespace=ns).memory
    other = memos.add("The wiki lives at wiki.example.com.", namespace=ns).memory
    on_fact = memos.cache.store(ns, "What is the VPN address?", "vpn.example.com",
                                memory_ids=[fact.id])  # fmt: skip
    on_other = memos.cache.store(ns, "Where is the wiki?", "wiki.example.com",
                                 memory_ids=[other.id])  # fmt: skip
    memos.update(fact.id, namespace=ns, text="The VPN gateway is vpn2.example.com.")
    assert not memos.cache.lookup(ns, "What is the VPN address?").hit
    with pytest.raises(NotFoundError):
        memos.cache.get(ns, on_fact.id)
    assert memos.cache.lookup(ns, "Where is the wiki?").hit  # untouched
    memos.delete(other.id, namespace=ns)
    assert not memos.cache.lookup(ns, "Where is the wiki?").hit
    with pytest.raises(NotFoundError):
        memos.cache.get(ns, on_other.id)


def test_a_restart_keeps_every_entry(memos: MemOS, ns: str) -> None:
    stored = memos.cache.store(ns, QUESTION, "kept", memory_ids=[MEMORY_ID])
    again = SemanticCache(memos.db, memos.embedder, memos.cache.policy).open()
    found = again.lookup(ns, PARAPHRASE)
    assert found.hit and found.answer.id == stored.id and found.answer.memory_ids == [MEMORY_ID]


def test_invalidation_by_entry_category_and_namespace(memos: MemOS, ns: str) -> None:
    policy = CachePolicy({"a": CategoryPolicy("a"), "b": CategoryPolicy("b")})
    cache = cache_of(memos, policy)
    first = cache.store(ns, QUESTION, "x", category="a")
    cache.store(ns, OTHER, "y", category="a")
    cache.store(ns, "Is parking free for visitors?", "z", category="b")
    cache.invalidate_entry(ns, first.id)
    assert not cache.lookup(ns, QUESTION, "a").hit and cache.lookup(ns, OTHER, "a").hit
    with pytest.raises(NotFoundError):
        cache.invalidate_entry(ns, first.id)
    assert cache.invalidate_category(ns, "a") == 1
    assert not cache.lookup(ns, OTHER, "a").hit
    assert cache.lookup(ns, "Is parking free for visitors?", "b").hit
    assert cache.invalidate_namespace(ns) == 1
    assert cache.sizes(ns) == {"a": 0, "b": 0}


def test_category_from_the_nearest_exemplars(memos: MemOS, ns: str) -> None:
    account = CategoryPolicy("account", exemplars=("reset my password", "change my email"))
    travel = CategoryPolicy("travel", exemplars=("flight times to Paris", "book a hotel room"))
    policy = CachePolicy({"account": account, "travel": travel}, default_category="account")
    cache = cache_of(memos, policy)
    assert cache.store(ns, QUESTION, "link").category == "account"
    assert cache.store(ns, "When does the last train to Lyon leave?", "22:10").category == "travel"
    assert cache.lookup(ns, PARAPHRASE).category == "account"
    assert cache.effective_policy()["classifier"] == "nearest exemplar centroid"


def test_load_relaxes_the_threshold_within_bounds_and_back(
    memos: MemOS, ns: str, clock: Clock
) -> None:
    sim = similarity(memos, QUESTION, PARAPHRASE)
    category = CategoryPolicy("general", threshold=min(1.0, sim + 0.01),
                              min_threshold=sim - 0.01, ttl_s=60, max_ttl_s=600)  # fmt: skip
    cache = cache_of(memos, CachePolicy({"general": category}, load=LoadBounds(2, 8)), clock)
    stored = cache.store(ns, QUESTION, "link")
    assert stored.expires_at.timestamp() == pytest.approx(clock.now + 600)  # the outer bound
    assert not cache.lookup(ns, PARAPHRASE).hit  # normal load: too far
    for _ in range(30):
        cache.observe_load(20)  # the backend is overloaded
    assert cache.load.pressure == pytest.approx(1.0)
    under = cache.lookup(ns, PARAPHRASE)
    assert under.hit and under.threshold == pytest.approx(sim - 0.01)
    assert cache.effective_policy()["categories"]["general"]["effective_ttl_s"] == 600
    clock.now += 120  # past the 60 s TTL, within the 600 s it may stretch to
    assert cache.lookup(ns, QUESTION).hit
    for _ in range(30):
        cache.observe_load(0)
    assert cache.load.pressure == 0.0
    stale = cache.lookup(ns, QUESTION)  # at normal load the entry is too old to serve
    assert not stale.hit and stale.similarity is None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c, ns: c.lookup(ns, "   "), InvalidInputError, "query must be a non-empty"),
        (lambda c, ns: c.lookup(ns, "x", "nope"), InvalidInputError, "unknown cache category"),
        (lambda c, ns: c.store(ns, "q", "a", ttl_s=-1), InvalidInputError, "ttl_s must be"),
        (lambda c, ns: c.store(ns, "q", ""), InvalidInputError, "response must be"),
        (lambda c, ns: c.store(ns, "q", "a" * 70_000), TooLargeError, "the limit is 65536"),
        (lambda c, ns: c.store(ns, "q" * 5_000, "a"), TooLargeError, "the limit is 4096"),
        (lambda c, ns: c.store(ns, "q", "a", memory_ids="m1"), InvalidInputError, "a list"),
        (lambda c, ns: c.store(ns, "q", "a", memory_ids=[7]), InvalidInputError, "not a memory"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    memos: MemOS, ns: str, call, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(memos.cache, ns)
    assert memos.cache.invalidate_namespace(ns) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threshold": 1.5}, "threshold must be in (0, 1]"),
        ({"ttl_s": -1}, "ttl_s must be"),
        ({"eviction": "fifo"}, "eviction must be one of"),
        ({"max_entries": 0}, "max_entries must be at least 1"),
        ({"threshold": 0.9, "min_threshold": 0.95}, "min_threshold must be in"),
        ({"ttl_s": 60, "max_ttl_s": 30}, "max_ttl_s must be in"),
        ({"treshold": 0.9}, "unexpected keyword argument 'treshold'"),
    ],
)
def test_bad_policies_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace("]", r"\]")):
        CachePolicy.from_mapping({"categories": {"faq": fields}})


def test_policy_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "memos.toml"
    config.write_text(
        '[cache]\ndefault_category = "faq"\n[cache.load]\nnormal = 1\noverload = 5\n'
        "[cache.categories.faq]\nthreshold = 0.9\nttl_s = 120\nmax_entries = 50\n"
        'eviction = "lfu"\nmin_threshold = 0.85\nexemplars = ["what is", "how do"]\n'
        "[cache.categories.code]\nthreshold = 0.97\n"
    )
    policy = CachePolicy.from_file(config)
    assert policy.default_category == "faq" and policy.load.overload == 5
    faq = policy.category("faq")
    assert (faq.threshold, faq.ttl_s, faq.max_entries, faq.eviction) == (0.9, 120, 50, "lfu")
    assert faq.exemplars == ("what is", "how do") and policy.category("code").threshold == 0.97
    config.write_text("[cache\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        CachePolicy.from_file(config)
    with pytest.raises(PolicyError, match="not found"):
        CachePolicy.from_file(tmp_path / "missing.toml")


def test_the_documented_example_config_is_a_valid_policy() -> None:
    example = Path(__file__).resolve().parent.parent / "docs" / "cache.example.toml"
    policy = CachePolicy.from_file(example)
    assert set(policy.categories) == {"general", "account"}
    assert policy.category("account").eviction == "lfu"


@pytest.fixture(scope="module")
def qqp_sample(embedder) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """800 labeled Quora question pairs (benchmarks/data) and their vectors."""
    import gzip
    import json

    data = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "qqp-pairs.jsonl.gz"
    with gzip.open(data, "rt", encoding="utf-8") as lines:
        pairs = [json.loads(next(lines)) for _ in range(800)]
    return pairs, embedder.embed([p["a"] for p in pairs]), embedder.embed([p["b"] for p in pairs])


def test_pair_scorer_learns_duplicates_and_round_trips(qqp_sample, embedder, tmp_path) -> None:
    from memos.cache.pair_features import pair_features
    from memos.cache.pair_scorer import PairScorer, ScorerError

    pairs, a, b = qqp_sample
    labels = np.array([p["duplicate"] for p in pairs])
    x = pair_features([p["b"] for p in pairs], b, [p["a"] for p in pairs], a)
    scorer = PairScorer.fit(x[:600], labels[:600], embedder.model_id, embedder.dim)
    held_out = scorer.probabilities(x[600:])
    dup, other = held_out[labels[600:]], held_out[~labels[600:]]
    # ranks held-out duplicates above look-alikes far better than chance (AUC)
    auc = (dup[:, None] > other[None, :]).mean()
    assert auc > 0.75
    path = tmp_path / "scorer.npz"
    scorer.save(path)
    again = PairScorer.load(path, embedder.model_id, embedder.dim)
    assert np.allclose(again.probabilities(x[600:]), held_out)
    with pytest.raises(ScorerError, match="trained on"):
        PairScorer.load(path, "another/model", embedder.dim)
    with pytest.raises(ScorerError, match="cannot read"):
        PairScorer.load(tmp_path / "missing.npz", embedder.model_id, embedder.dim)


def test_a_cache_with_a_scorer_thresholds_its_probability(
    memos: MemOS, ns: str, qqp_sample, tmp_path: Path
) -> None:
    from memos.cache.pair_features import pair_features
    from memos.cache.pair_scorer import PairScorer

    pairs, a, b = qqp_sample
    labels = np.array([p["duplicate"] for p in pairs])
    x = pair_features([p["b"] for p in pairs], b, [p["a"] for p in pairs], a)
    PairScorer.fit(x, labels, memos.embedder.model_id, memos.embedder.dim).save(
        tmp_path / "scorer.npz"
    )
    config = tmp_path / "memos.toml"
    config.write_text('[cache]\nscorer = "scorer.npz"\n[cache.categories.general]\n'
                      "threshold = 0.5\n")  # fmt: skip
    cache = cache_of(memos, CachePolicy.from_file(config))
    cache.store(ns, QUESTION, "Use the reset link.")
    hit = cache.lookup(ns, PARAPHRASE)
    assert hit.hit and 0.5 <= hit.score <= 1 and hit.score != hit.similarity
    assert not cache.lookup(ns, OTHER).hit
    assert cache.effective_policy()["score"] == "pair scorer probability"
