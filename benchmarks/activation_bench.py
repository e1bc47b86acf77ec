"""Activation memory: time to first token of memory-backed answers, over the REST API.

Each user has ~2k tokens of memories, rendered as one block (an activation memory made
through ``POST /v1/activations``). Users ask in turn, with an unrelated request between
any two questions (as in service), and there are more users than the KV cache holds at
once. Every question is the same request in all three configurations — a streamed
``/v1/chat/completions`` with ``memory: {user_id}``, whose prompt starts with the
user's block — served by a fresh ``memos serve`` each:

- cold: vLLM with no prefix cache (every block prefilled);
- prefix cache alone: vLLM's prefix cache, no pins, no host tier;
- activated: the service's defaults — the block pinned under the activation share of
  the cache and copied to the host tier.

TTFT is the time from sending the request to its first streamed event. Then a
memory-augmented answer check, on the activated server: questions whose answer is in
one stored memory, asked with and without ``memory``; an answer counts when it holds
the fact's key token.

    python benchmarks/activation_bench.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_rest import _wait_for_chat, engine_figures
from common import ROOT, print_table, write_json

from memos.serve_process import ServeProcess

KV_BLOCKS = 48  # 6,144 tokens: two users' blocks and a question, not more
MAX_MODEL_LEN = 4096
CONFIGS = {
    "cold": {"MEMOS_LLM_PREFIX_CACHING": "0", "MEMOS_LLM_PINNING": "0",
             "MEMOS_HOST_KV_BLOCKS": "0"},
    "prefix cache alone": {"MEMOS_LLM_PINNING": "0", "MEMOS_HOST_KV_BLOCKS": "0"},
    "activated": {"MEMOS_PIN_CAP": "0.3", "MEMOS_ACTIVATION_CAP": "0.6"},
}  # fmt: skip
CITIES = ["Lima", "Oslo", "Pune", "Cork", "Kobe", "Riga", "Nice", "Bonn", "Perth", "Quito"]
THINGS = ["parcel", "invoice", "ticket", "badge", "report", "laptop", "crate", "permit"]
# (attribute, question, how a value is made) for the answer check
FACTS = [
    ("locker code", "What is my locker code?", lambda r: str(r.randrange(1000, 9999))),
    ("parking spot", "Which parking spot is mine?", lambda r: f"C-{r.randrange(10, 99)}"),
    ("wifi password", "What is my wifi password?", lambda r: f"{r.choice(['mango', 'tulip', 'cobalt', 'walnut'])}{r.randrange(10, 99)}"),  # noqa: E501
    ("badge number", "What is my badge number?", lambda r: str(r.randrange(10000, 99999))),
    ("desk", "Which desk do I sit at?", lambda r: f"D{r.randrange(100, 999)}"),
    ("bike lock code", "What is my bike lock code?", lambda r: str(r.randrange(100, 999))),
    ("dentist", "Who is my dentist?", lambda r: f"Dr. {r.choice(['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Ferreira'])}"),  # noqa: E501
    ("flight", "Which flight am I on?", lambda r: f"{r.choice(['BA', 'LH', 'KL', 'AF'])}{r.randrange(100, 999)}"),  # noqa: E501
    ("room", "Which room is my meeting in?", lambda r: f"room {r.randrange(200, 899)}"),
    ("cat's name", "What is my cat called?", lambda r: r.choice(["Biscuit", "Pepper", "Miso", "Juniper", "Tofu"])),  # noqa: E501
]


def user_memories(user: int, count: int) -> list[str]:
    return [
        f"Note {i} for user {user}: the {THINGS[(i + user) % 8]} {i * 37 + user} left "
        f"{CITIES[(i * 3 + user) % 10]} on day {i + 1} with {i % 5 + 2} boxes."
        for i in range(count)
    ]


def server_env(work: Path, model_dir: Path, users: int, config: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    policy = work / "memos.toml"
    policy.write_text("[scheduler]\nactivation_max_memories = 256\n"
                      "activation_max_chars = 16000\n")  # fmt: skip
    env.update(
        MEMOS_DATA_DIR=str(work / "data"),
        MEMOS_MODEL_DIR=str(model_dir),
        MEMOS_LLM="embedded",
        MEMOS_LLM_KV_BLOCKS=str(KV_BLOCKS),
        MEMOS_LLM_MAX_MODEL_LEN=str(MAX_MODEL_LEN),
        MEMOS_HOST_KV_BLOCKS=str(users * 18 + 16),
        MEMOS_CONFIG=str(policy),
        VLLM_LOGGING_LEVEL=os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
    )
    env.update(config)
    return env


def ttft(http: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds to the first streamed event, and the last event (its usage and memory)."""
    started = time.perf_counter()
    first = None
    last: dict[str, Any] = {}
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"chat failed: {response.read().decode()[:500]}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if first is None:
                first = time.perf_counter() - started
            last = json.loads(line[6:])
    assert first is not None
    return first, last


def unrelated(http: httpx.Client, n: int) -> None:
    """An unrelated ~1.4k-token request, as other users' traffic."""
    text = " ".join(
        f"Log line {n}-{i}: worker {i % 7} finished job {i * 13 + n}." for i in range(110)
    )
    response = http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": text + " Summarise."}],
        "max_tokens": 4, "temperature": 0, "cache": False,
    })  # fmt: skip
    response.raise_for_status()


def run_config(
    name: str, model_dir: Path, users: int, rounds: int, memories: int, answer_check: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memos-activation-") as tmp:
        work = Path(tmp)
        env = server_env(work, model_dir, users, CONFIGS[name])
        with ServeProcess(work, env, timeout_s=600) as server:
            key = (work / "data" / "bootstrap-key").read_text().strip()
            http = httpx.Client(base_url=server.url, timeout=600,
                                headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            _wait_for_chat(server.url)
            block_tokens = []
            for user in range(users):
                items = [{"text": t, "user_id": f"user-{user}"}
                         for t in user_memories(user, memories)]  # fmt: skip
                ids = http.post("/v1/memories/batch", json={"items": items}).json()["ids"]
                made = http.post("/v1/activations", json={"user_id": f"user-{user}",
                                                          "memory_ids": ids})  # fmt: skip
                made.raise_for_status()
                block_tokens.append(made.json()["prefix_tokens"])
            samples: list[float] = []
            cached: list[int] = []
            n = 0
            for r in range(rounds):
                for user in range(users):
                    unrelated(http, n)
                    n += 1
                    body = {
                        "messages": [{"role": "user", "content":
                                      f"Which city did note {r * 3 + user} leave from?"}],
                        "max_tokens": 8, "temperature": 0, "cache": False,
                        "memory": {"user_id": f"user-{user}", "top_k": 1},
                    }  # fmt: skip
                    seconds, last = ttft(http, body)
                    samples.append(seconds)
                    cached.append(last["usage"]["prompt_tokens_details"]["cached_tokens"])
            result: dict[str, Any] = {
                "ttft_s": samples,
                "ttft_p50_s": statistics.median(samples),
                "cached_tokens_mean": statistics.fmean(cached),
                "block_tokens_mean": statistics.fmean(block_tokens),
                "engine": engine_figures(server.url),
            }
            if answer_check:
                result["answers"] = answer_check_run(http, answer_check)
            http.close()
    return result


def answer_check_run(http: httpx.Client, questions: int) -> dict[str, Any]:
    """Questions whose answer is in one stored memory, with and without ``memory``."""
    rng = random.Random(17)
    cases = []
    for i in range(questions):
        attribute, question, value_of = FACTS[i % len(FACTS)]
        user = f"person-{i // len(FACTS)}"
        value = value_of(rng)
        http.post("/v1/memories", json={"text": f"My {attribute} is {value}.", "user_id": user})
        cases.append((user, question, value))
    with_memory = without = 0
    rows = []
    for user, question, value in cases:
        base = {"messages": [{"role": "user", "content": question}], "max_tokens": 24,
                "temperature": 0, "cache": False}  # fmt: skip
        plain = http.post("/v1/chat/completions", json=base).json()
        memory = {"user_id": user, "top_k": 3}
        helped = http.post("/v1/chat/completions", json={**base, "memory": memory}).json()
        a, b = plain["choices"][0]["message"]["content"], helped["choices"][0]["message"]["content"]
        without += value in a
        with_memory += value in b
        rows.append({"question": question, "value": value, "without": a, "with": b})
    return {
        "questions": questions,
        "with_memory": with_memory / questions,
        "without_memory": without / questions,
        "examples": rows[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 users, 2 rounds, 20 questions")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--memories", type=int, default=80, help="memories a user (~2k tokens)")
    parser.add_argument("--questions", type=int, default=None, help="answer-check questions")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    users = args.users or (4 if args.quick else 8)
    rounds = args.rounds or (2 if args.quick else 3)
    questions = args.questions or (20 if args.quick else 60)
    if not (args.model_dir / "SmolLM2-135M-Instruct" / "config.json").is_file():
        sys.exit(f"no chat model under {args.model_dir}: run `memos models prepare` first")

    results = {}
    for name in CONFIGS:
        print(f"\n{name}: {users} users x {rounds} rounds ...", flush=True)
        check = questions if name == "activated" else 0
        results[name] = run_config(name, args.model_dir, users, rounds, args.memories, check)

    cold, prefix, active = (results[n]["ttft_p50_s"] for n in CONFIGS)
    print_table(
        f"TTFT of memory-backed answers ({users} users, {rounds} rounds, "
        f"a {results['activated']['block_tokens_mean']:.0f}-token block each, "
        f"KV cache {KV_BLOCKS} blocks of 128 tokens)",
        ["configuration", "TTFT p50 s", "cached tokens (mean)", "vs activated"],
        [[name, r["ttft_p50_s"], r["cached_tokens_mean"], r["ttft_p50_s"] / active]
         for name, r in results.items()],
    )  # fmt: skip
    answers = results["activated"]["answers"]
    gain = 100 * (answers["with_memory"] - answers["without_memory"])
    print_table(
        f"Memory-augmented answers ({answers['questions']} questions, answer in one memory)",
        ["answered", "contains the fact"],
        [["without memory", answers["without_memory"]], ["with memory", answers["with_memory"]]],
    )
    summary = {
        "activation_ttft_ratio": round(cold / active, 2),
        "activation_vs_prefix_ratio": round(prefix / active, 2),
        "mag_answer_gain_points": round(gain, 1),
    }
    print("\nsummary:", summary)
    print("targets: activation_ttft_ratio >= 10, activation_vs_prefix_ratio >= 3, "
          "mag_answer_gain_points >= 40")  # fmt: skip
    write_json(args.json, summary, {"users": users, "rounds": rounds, "configs": results})


if __name__ == "__main__":
    main()
