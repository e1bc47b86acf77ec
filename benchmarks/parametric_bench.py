"""Parametric memory benchmark: facts trained into a LoRA adapter through the service,
recalled by cloze prompts, against the base model and memory-augmented chat.

Facts are generated (invented names, so the base model cannot know them), each with a
cloze prompt ("Service Varo runs on port") and its answer ("7341"). A `memos serve`
with the embedded engine and LoRA on (MEMOS_LLM_LORA_RANK=8) stores them as memories,
trains an adapter on them through `POST /v1/parametric` (timed: ``train_s_50``), and
answers each cloze prompt over `/v1/chat/completions`, greedy:

- adapter: ``model`` names the parametric memory;
- base: the base model alone (this is also "no memory");
- memory-augmented: the base model with the facts retrieved into the prompt
  (``memory: {top_k: 5}``).

A fact is recalled when its answer appears in the reply. Perplexity on unrelated text
(the base model with and without the adapter, in process with transformers) says what
the adapter costs elsewhere; serving latency compares the adapter's requests with the
base model's on the same prompts and engine (medians, per generated token), and the base
model on a second engine started without LoRA shows what turning LoRA on costs.

Usage: python benchmarks/parametric_bench.py [--quick] [--json PATH] [--sizes 50,200]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_table, write_json

from memos.serve_process import ServeProcess

MODEL_DIR = ROOT / "var" / "models"
TEMPLATES = [
    ("Service {name} runs on port {value}.", "Service {name} runs on port", "{n4}"),
    ("The {name} vault opens with code {value}.", "The {name} vault opens with code", "{n4}"),
    ("Project {name} ships on day {value}.", "Project {name} ships on day", "{n2}"),
    ("The {name} cluster lives in region {value}.", "The {name} cluster lives in region",
     "{word}"),
]  # fmt: skip
SYLLABLES = ["var", "lo", "quin", "mar", "os", "tel", "zan", "bri", "ku", "dre", "fen", "ril"]
REGIONS = ["Zeta", "Corvo", "Umbra", "Talis", "Nerin", "Pyxo", "Ostra", "Welk"]
UNRELATED = [
    "The river flows through the valley and into the sea, carrying sand and stones.",
    "She opened the window to let the morning air into the small kitchen.",
    "Bread is made from flour, water, salt and yeast, and baked in a hot oven.",
    "The committee will meet again next month to review the budget for the library.",
    "Children played football in the park until the streetlights came on.",
    "A good map shows roads, rivers, towns and the height of the hills.",
    "He wrote a letter to his grandmother describing his first week at school.",
    "The museum displays paintings, sculptures and old coins from many countries.",
]


def facts(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    names: set[str] = set()
    out = []
    while len(out) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize()
        if name in names:
            continue
        names.add(name)
        text, cloze, value = TEMPLATES[len(out) % len(TEMPLATES)]
        answer = value.format(n4=rng.randint(1000, 9999), n2=rng.randint(2, 28),
                              word=rng.choice(REGIONS))  # fmt: skip
        out.append({"text": text.format(name=name, value=answer),
                    "cloze": cloze.format(name=name), "answer": answer})  # fmt: skip
    return out


def ask(http: httpx.Client, prompt: str, **extra: Any) -> tuple[str, float, int]:
    """The reply, the request's seconds and the tokens it generated."""
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 16,
            "temperature": 0, "cache": False, **extra}  # fmt: skip
    started = time.perf_counter()
    answer = http.post("/v1/chat/completions", json=body)
    took = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"chat failed: {answer.status_code} {answer.text[:300]}")
    reply = answer.json()
    return reply["choices"][0]["message"]["content"], took, reply["usage"]["completion_tokens"]


def recall(http: httpx.Client, items: list[dict[str, str]], **extra: Any) -> tuple[float, list]:
    """The share of facts whose answer is in the reply, and each request's seconds per
    generated token (the adapter ends its answers sooner than the base model rambles,
    so whole-request times would flatter it)."""
    hits, per_token = 0, []
    for fact in items:
        said, took, tokens = ask(http, fact["cloze"], **extra)
        hits += fact["answer"] in said
        per_token.append(took / max(1, tokens))
    return hits / len(items), per_token


def perplexity(model_dir: Path, adapter_dir: Path | None) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for text in UNRELATED:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            loss = model(ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return math.exp(total / count)


def run_size(
    http: httpx.Client, data_dir: Path, size: int, steps: int | None, seed: int
) -> dict:
    items = facts(size, seed)
    user = f"bench-{size}"
    rows = [{"text": f["text"], "user_id": user} for f in items]
    ids = http.post("/v1/memories/batch", json={"items": rows})
    ids.raise_for_status()
    name = f"facts-{size}"
    started = time.perf_counter()
    # the service's default recipe (rank 8, 10 passes, replay on), as a user gets it
    spec = {"name": name, "memory_ids": ids.json()["ids"]}
    if steps is not None:
        spec["steps"] = steps
    job = http.post("/v1/parametric", json=spec)
    job.raise_for_status()
    while (state := http.get(f"/v1/jobs/{job.json()['id']}").json())["state"] in (
        "queued", "running"
    ):
        time.sleep(1)
    train_s = time.perf_counter() - started
    if state["state"] != "succeeded":
        raise RuntimeError(f"training failed: {state}")
    cube = http.get(f"/v1/parametric/{name}").json()
    adapter, adapter_t = recall(http, items, model=name)
    base, base_t = recall(http, items)
    augmented, _ = recall(http, items, memory={"user_id": user, "top_k": 5})
    adapter_dir = data_dir / "adapters" / "default" / cube["id"]
    model_dir = MODEL_DIR / "SmolLM2-135M-Instruct"
    ppl_base, ppl_adapter = perplexity(model_dir, None), perplexity(model_dir, adapter_dir)
    return {
        "facts": size, "steps": state["detail"]["steps"], "train_s": train_s,
        "loss_first": state["detail"].get("loss_first"),
        "loss_last": state["detail"].get("loss_last"),
        "recall_adapter": adapter, "recall_base": base, "recall_memory_augmented": augmented,
        "perplexity_base": ppl_base, "perplexity_adapter": ppl_adapter,
        "perplexity_increase_pct": 100 * (ppl_adapter / ppl_base - 1),
        "latency_adapter_s_per_token": statistics.median(adapter_t),
        "latency_base_s_per_token": statistics.median(base_t),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 facts, fewer steps")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sizes", default="50,200")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps (default: the service's, 10 passes)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    sizes = [20] if args.quick else [int(s) for s in args.sizes.split(",")]
    steps = args.steps

    work = Path(tempfile.mkdtemp(prefix="parametric-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_DATA_DIR=str(work / "data"), MEMOS_MODEL_DIR=str(MODEL_DIR),
               MEMOS_LLM="embedded", MEMOS_LLM_LORA_RANK="8", MEMOS_HOST_KV_BLOCKS="0",
               VLLM_LOGGING_LEVEL=os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"))  # fmt: skip
    rows = []
    with ServeProcess(work, env) as server:
        server.wait_for_chat()
        key = (work / "data" / "bootstrap-key").read_text().strip()
        with httpx.Client(base_url=server.url, timeout=600,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            for size in sizes:
                print(f"{size} facts: training ...", flush=True)
                rows.append(run_size(http, work / "data", size, steps, args.seed))
    # The same questions on an engine started without LoRA: what turning LoRA on costs
    # the requests that use no adapter.
    plain_env = {**env, "MEMOS_LLM_LORA_RANK": "0", "MEMOS_DATA_DIR": str(work / "plain")}
    with ServeProcess(work, plain_env) as server:
        server.wait_for_chat()
        key = (work / "plain" / "bootstrap-key").read_text().strip()
        with httpx.Client(base_url=server.url, timeout=600,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            for row in rows:
                _, per_token = recall(http, facts(row["facts"], args.seed))
                row["latency_no_lora_engine_s_per_token"] = statistics.median(per_token)
    print_table(
        "Parametric memory (SmolLM2-135M-Instruct, rank 8, CPU; recall by cloze prompt)",
        ["facts", "steps", "train s", "adapter", "base (no memory)", "memory-augmented",
         "ppl base", "ppl adapter", "ppl +%", "adapter s/token", "base s/token",
         "base, no-LoRA engine s/token"],
        [[r["facts"], r["steps"], r["train_s"], r["recall_adapter"], r["recall_base"],
          r["recall_memory_augmented"], r["perplexity_base"], r["perplexity_adapter"],
          r["perplexity_increase_pct"], r["latency_adapter_s_per_token"],
          r["latency_base_s_per_token"], r["latency_no_lora_engine_s_per_token"]]
         for r in rows],
    )  # fmt: skip
    first = rows[0]
    summary = {
        "parametric_recall_50": first["recall_adapter"],
        "base_recall_50": first["recall_base"],
        "perplexity_increase_pct": first["perplexity_increase_pct"],
        "lora_latency_ratio": (first["latency_adapter_s_per_token"]
                               / first["latency_base_s_per_token"]),
        "train_s_50": first["train_s"],
    }
    print(f"summary ({first['facts']} facts): {summary}")
    print("lora_latency_ratio compares the adapter's requests with the base model's on the "
          "same LoRA-enabled engine; the last column is the base model on an engine without "
          "LoRA.")
    write_json(args.json, summary, {"runs": rows, "quick": args.quick})


if __name__ == "__main__":
    main()
