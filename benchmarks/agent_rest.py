"""The agent benchmark's programs driven over HTTP against a real `memos serve`, as users
drive them: each program posts its turns to ``/v1/chat/completions`` with its program
fields, sleeps its tool's duration between turns and never reports it, so the service
learns the durations from the gaps between turns, starting with an empty predictor.

The server runs the embedded engine as shipped (pinning scheduler, program-level FCFS,
the host tier at its default size) with the workload's KV cap and pin cap.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from memos.serve_process import ServeProcess

READY_TIMEOUT_S = 600.0
_GAUGE = re.compile(r"^memos_kv_(\w+) ([0-9.eE+-]+|NaN)$", re.MULTILINE)


def server_env(workload: dict[str, Any], data_dir: Path, model_dir: Path) -> dict[str, str]:
    """The environment of a service with embedded defaults but the benchmark's KV cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(
        MEMOS_DATA_DIR=str(data_dir),
        MEMOS_MODEL_DIR=str(model_dir),
        MEMOS_LLM="embedded",
        MEMOS_LLM_KV_BLOCKS=str(workload["kv_blocks"]),
        MEMOS_PIN_CAP=str(workload["pin_cap"]),
        VLLM_LOGGING_LEVEL=os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
    )
    return env


def run_rest(plan: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """Run the plan's programs against a fresh server; the result has the in-process
    modes' shape (per program its job time and turns, the engine's figures)."""
    w = plan["workload"]
    with tempfile.TemporaryDirectory(prefix="memos-jct-rest-") as work:
        data_dir = Path(work) / "data"
        env = server_env(w, data_dir, model_dir)
        with ServeProcess(Path(work), env, timeout_s=READY_TIMEOUT_S) as server:
            key = (data_dir / "bootstrap-key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            _wait_for_chat(server.url)
            started = time.monotonic()
            programs = asyncio.run(_drive(server.url, headers, plan))
            makespan = time.monotonic() - started
            kv = engine_figures(server.url)
            tools = httpx.get(f"{server.url}/v1/tools", headers=headers, timeout=30).json()
    return {"programs": programs, "makespan_s": makespan, "kv": kv, "tools": tools,
            "hold_horizon_s": None}  # fmt: skip


def _wait_for_chat(url: str) -> None:
    """/readyz answers 200 once memories are served; the model may still be loading."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/readyz", timeout=5).json().get("chat")
        if state == "ready":
            return
        if state in ("failed", "off"):
            raise RuntimeError(f"the server's language model is {state}")
        time.sleep(0.5)
    raise RuntimeError("the server's language model did not become ready")


def engine_figures(url: str) -> dict[str, float]:
    """The engine's KV, pin and host-tier figures, as /metrics shows them."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    figures = {name: float(value) for name, value in _GAUGE.findall(text)}
    return {name: int(v) if v.is_integer() else v for name, v in figures.items()}


async def _drive(url: str, headers: dict[str, str], plan: dict[str, Any]) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=len(plan["programs"]) + 4)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(600.0), limits=limits
    ) as http:
        max_tokens = plan["workload"]["output_tokens"]
        return await asyncio.gather(*(_program(http, p, max_tokens) for p in plan["programs"]))


async def _program(http: httpx.AsyncClient, program: dict[str, Any], max_tokens: int) -> dict:
    await asyncio.sleep(program["arrival_s"])
    started = time.monotonic()
    messages = [{"role": "system", "content": program["system"]},
                {"role": "user", "content": program["task"]}]  # fmt: skip
    computed_before = 0  # tokens whose KV an earlier turn computed
    turns = []
    for turn, step in enumerate(program["steps"]):
        body: dict[str, Any] = {
            "messages": messages, "max_tokens": max_tokens, "temperature": 0.0,
            "program_id": program["id"], "turn": turn,
        }  # fmt: skip
        if step["tool"] is not None:
            body["next_tool"] = step["tool"]
        turn_started = time.monotonic()
        response = await http.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"turn {turn} of {program['id']}: {response.text}")
        reply = response.json()
        seconds = time.monotonic() - turn_started
        usage = reply["usage"]
        prompt, output = usage["prompt_tokens"], usage["completion_tokens"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        known = min(computed_before, prompt)
        computed_before = prompt + output
        messages.append({"role": "assistant", "content": reply["choices"][0]["message"]["content"]})
        if step["tool"] is not None:
            await asyncio.sleep(step["seconds"])
            messages.append({"role": "user", "content": step["output"]})
        turns.append({
            "prompt_tokens": prompt, "cached_tokens": cached, "output_tokens": output,
            "fresh_tokens": prompt - known, "recomputed_tokens": max(0, known - cached),
            "seconds": seconds, "tool_seconds": step["seconds"],
            "ttl_s": reply["program"]["pin_ttl_s"],
        })  # fmt: skip
    return {"id": program["id"], "jct_s": time.monotonic() - started, "turns": turns}
