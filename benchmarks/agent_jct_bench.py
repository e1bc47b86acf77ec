"""Agent job-completion-time benchmark: multi-turn programs with tool calls between
turns, on the embedded vLLM engine with SmolLM2-135M and a KV cache under pressure.

Modes, each on a fresh engine in its own process, all on the same programs, prompts
and tool durations:
  vanilla  vLLM as shipped (FCFS per request, prefix caching on)
  fcfs     + program-level first-come-first-served (vLLM's priority policy, priority =
           the program's arrival rank)
  pin      + TTL pinning over two tiers, as the service ships it: device pins
           (PinningScheduler) over a host tier (HostTierConnector, HOST_TIER_BLOCKS);
           the TTL policy weighs a device pin against copying the context back, at the
           copy and prefill times the engine measures; the tool-duration predictor
           starts empty and learns from the run (in process: AgentRuntime)
  rest     the same, as users run it: the programs post their turns to a real `memos
           serve` (embedded engine, the same KV cache and pin cap, the host tier at its
           default size) over HTTP and sleep each tool's duration between turns without
           reporting it; the service learns durations from the gaps (agent_rest.py)
  pin_warm  (an extra) pin with the predictor pre-filled with 50 calls per tool drawn
           from the workload's distributions: a service that has run before
  oracle   the same, with each tool's real duration known in advance
  pin_device  + TTL pinning on the device alone (no host tier): pins are the only way
           a context outlives its turn, so every miss is a prefill
  stream   vLLM's own streaming-input sessions (AsyncLLM, one request per program fed
           by an async generator of inputs): the whole context stays resident across
           every tool call, with no time to live and no cap (streaming_sessions.py)
  stream_roomy  the same sessions on a KV cache large enough that they never wait for
           memory (ROOMY_BLOCKS): what they take to serve this workload at all
A second workload with no tool calls (single-turn requests) measures what the pinning
scheduler and the host tier cost requests that belong to no program: in each of several
alternations an engine of each kind starts in turn (the order swapped every other time,
so that the VM's drift over the run hits both alike) and runs the same batches; an
alternation's cost is 1 - (pin's median batch rate / vanilla's), and the summary gives
the median over the alternations with their range.

Tool durations: lognormal per tool. Their shapes follow the agent traces the Continuum
paper describes (arXiv 2511.02230: SWE-bench and BFCL tool calls run from well under a
second to tens of seconds, long-tailed); the medians and spreads are our choice, scaled
to this CPU's turn times (1-3 s a turn here), not fitted to those traces. The predictor
starts empty and learns online (pin_warm pre-fills it with 50 calls per tool drawn
from the same distributions).

Usage: python benchmarks/agent_jct_bench.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_table, write_json

MODES = ("vanilla", "fcfs", "pin", "rest", "pin_warm", "oracle", "pin_device", "stream",
         "stream_roomy")  # fmt: skip
PINNING_MODES = ("pin", "pin_warm", "oracle", "pin_device")
HOST_TIER_MODES = ("pin", "pin_warm", "oracle")
HOST_TIER_BLOCKS = 128  # host memory for every program's context: 8 x up to 14 blocks
STREAM_MODES = ("stream", "stream_roomy")
ROOMY_BLOCKS = 256
NO_TOOL_ROUNDS = 2  # batches per engine in the no-tool workload
MODEL_DIR = ROOT / "var" / "models" / "SmolLM2-135M-Instruct"
# name: (median seconds, lognormal sigma)
TOOLS = {"read_file": (0.4, 0.6), "run_bash": (1.5, 0.9), "run_tests": (6.0, 0.7)}
WORDS = [
    "alpha",
    "bravo",
    "cobalt",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "harbor",
    "indigo",
    "jasper",
    "kestrel",
    "lumen",
    "meadow",
    "nickel",
    "onyx",
    "pylon",
    "quartz",
    "raven",
    "sable",
    "tundra",
    "umber",
    "vertex",
    "willow",
    "xenon",
    "yonder",
    "zephyr",
]


@dataclass
class Workload:
    programs: int
    turns: int
    start_tokens: int
    output_tokens: int
    tool_tokens: int
    arrival_gap_s: float
    kv_blocks: int
    pin_cap: float
    no_tool_requests: int
    no_tool_alternations: int
    hold_horizon_s: float | None = None  # the TTL policy's; None: its default
    seed: int = 7


def workload(quick: bool) -> Workload:
    if quick:
        return Workload(6, 4, 700, 16, 150, 1.5, 24, 0.6, 24, 2)
    return Workload(8, 5, 700, 16, 150, 2.0, 24, 0.6, 48, 4)


def _text(rng: random.Random, tokens: int, tag: str) -> str:
    """Roughly ``tokens`` tokens of text unique to ``tag``."""
    words = [f"{tag}"] + [rng.choice(WORDS) + str(rng.randint(0, 99)) for _ in range(tokens // 3)]
    return " ".join(words)


def make_plan(w: Workload) -> dict[str, Any]:
    rng = random.Random(w.seed)
    programs = []
    for p in range(w.programs):
        steps = []
        for turn in range(w.turns):
            last = turn == w.turns - 1
            tool = None if last else rng.choice(list(TOOLS))
            median, sigma = TOOLS[tool] if tool else (0.0, 0.0)
            steps.append({
                "tool": tool,
                "seconds": median * math.exp(rng.gauss(0, sigma)) if tool else 0.0,
                "output": _text(rng, w.tool_tokens, f"[{tool} result {p}.{turn}]") if tool else "",
            })  # fmt: skip
        programs.append({
            "id": f"prog-{p}",
            "arrival_s": p * w.arrival_gap_s,
            "system": _text(rng, w.start_tokens, f"Program {p} briefing."),
            "task": f"Task {p}: summarise what the tools return, one line per step.",
            "steps": steps,
        })  # fmt: skip
    history = {
        tool: [median * math.exp(rng.gauss(0, sigma)) for _ in range(50)]
        for tool, (median, sigma) in TOOLS.items()
    }
    return {"workload": asdict(w), "programs": programs, "history": history}


# one mode, in a child process ---------------------------------------------------------


def start_engine(mode: str, w: Workload) -> Any:
    from memos.llm.engine import Engine, EngineSettings

    return Engine(EngineSettings(
        MODEL_DIR, num_blocks=w.kv_blocks, pinning=mode in PINNING_MODES,
        pin_cap=w.pin_cap, program_fcfs=mode != "vanilla",
        host_tier_blocks=HOST_TIER_BLOCKS if mode in HOST_TIER_MODES else 0,
    )).start()  # fmt: skip


def run_no_tools(mode: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Single-turn requests, no hints: what the scheduler costs with nothing to pin."""
    from vllm import SamplingParams

    w = Workload(**plan["workload"])
    engine = start_engine(mode, w)
    params = SamplingParams(max_tokens=w.output_tokens, temperature=0.0, ignore_eos=True)
    rng = random.Random(1)

    async def batch(prompts: list[str]) -> float:
        started = time.monotonic()
        await asyncio.gather(*(engine.generate(p, params) for p in prompts))
        return len(prompts) / (time.monotonic() - started)

    asyncio.run(batch([_text(rng, 300, f"warm {i}") for i in range(4)]))
    rates = [
        asyncio.run(batch([_text(rng, 300, f"plain {r}.{i}") for i in range(w.no_tool_requests)]))
        for r in range(NO_TOOL_ROUNDS)
    ]
    engine.close()
    return {"mode": mode, "req_per_s": rates}


def run_child(mode: str, plan: dict[str, Any]) -> dict[str, Any]:
    from memos.llm.programs import ProgramRegistry
    from memos.llm.runtime import AgentRuntime, ProgramSpec, ToolCall

    w = Workload(**plan["workload"])
    pinning = mode in PINNING_MODES
    engine = start_engine(mode, w)
    registry = ProgramRegistry(pinning=pinning)
    if mode == "pin_warm":
        for tool, durations in plan["history"].items():
            for seconds in durations:
                registry.predictor.observe(tool, seconds)
    runtime = AgentRuntime(engine, registry)
    if w.hold_horizon_s is not None:
        registry.policy.hold_horizon_s = w.hold_horizon_s
    hold_horizon_s = registry.policy.hold_horizon_s

    def spec_of(program: dict[str, Any]) -> ProgramSpec:
        def tool_call(step: dict[str, Any]) -> ToolCall | None:
            if step["tool"] is None:
                return None

            async def run(_reply: str) -> str:
                await asyncio.sleep(step["seconds"])
                return step["output"]

            return ToolCall(step["tool"], run)

        steps = program["steps"]

        def oracle(turn: int) -> float:
            return registry.policy.known_ttl(steps[turn]["seconds"], turn, engine.cache_state())

        return ProgramSpec(
            program["id"],
            [{"role": "system", "content": program["system"]},
             {"role": "user", "content": program["task"]}],
            [tool_call(s) for s in steps],
            max_tokens=w.output_tokens,
            ttl_override=oracle if mode == "oracle" else None,
        )  # fmt: skip

    async def one(program: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(program["arrival_s"])
        result = await runtime.run(spec_of(program))
        return {"id": result.id, "jct_s": result.seconds,
                "turns": [asdict(t) for t in result.turns]}  # fmt: skip

    async def agents() -> list[dict[str, Any]]:
        return await asyncio.gather(*(one(p) for p in plan["programs"]))

    started = time.monotonic()
    programs = asyncio.run(agents())
    makespan = time.monotonic() - started
    agent_stats = engine.kv_stats()
    engine.close()
    return {"mode": mode, "programs": programs, "makespan_s": makespan,
            "hold_horizon_s": hold_horizon_s, "kv": agent_stats}  # fmt: skip


# parent ----------------------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> dict[str, float]:
    kv = result["kv"]
    jcts = sorted(p["jct_s"] for p in result["programs"]) or [math.nan]
    turns = [t for p in result["programs"] for t in p["turns"]]
    prompt = sum(t["prompt_tokens"] for t in turns)
    cached = sum(t["cached_tokens"] for t in turns)
    streamed = result["mode"] in STREAM_MODES
    if streamed:
        # A paused session's context is never freed, so only preemption recomputes it.
        recomputed = kv["prefill_preempted_computed_tokens"]
        idle_block_s, idle_peak = kv["idle_held_block_seconds"], kv["idle_peak_blocks"]
    else:
        # Every prompt token the engine computed, preempted requests' included, minus
        # those computed for the first time.
        recomputed = kv["prefill_computed_prompt_tokens"] - sum(t["fresh_tokens"] for t in turns)
        idle_block_s, idle_peak = kv.get("pin_held_block_seconds", 0), kv.get("pin_peak_blocks", 0)
    return {
        "programs_completed": len(result["programs"]),
        "jct_mean_s": sum(jcts) / len(jcts),
        "jct_p90_s": jcts[min(len(jcts) - 1, math.ceil(0.9 * len(jcts)) - 1)],
        "recomputed_tokens": recomputed,
        "preempted_requests": kv["prefill_preempted_requests"],
        "prompt_tokens": prompt,
        "hit_rate": max(0, cached - (recomputed if streamed else 0)) / prompt if prompt else 0.0,
        "makespan_s": result["makespan_s"],
        # KV blocks held for programs whose tool is running (pins, or paused sessions)
        "idle_held_block_seconds": idle_block_s,
        "idle_peak_blocks": idle_peak,
        "pinned": kv.get("pin_pinned", 0),
        "pins_taken": kv.get("pin_taken", 0),
        "pins_expired": kv.get("pin_expired", 0),
        "pins_evicted_or_refused": kv.get("pin_evicted", 0) + kv.get("pin_refused", 0),
        "pin_blocks_given_way": kv.get("pin_gave_way", 0),
        "host_loaded_tokens": kv.get("host_loaded_tokens", 0),
        "host_peak_blocks": kv.get("host_peak_blocks", 0),
        # the TTL policy's price of a context not pinned, as a share of its prefill
        "miss_cost": kv.get("host_miss_cost", 1.0),
        # a turn's mean time in each phase (vLLM's request timestamps; not for sessions)
        **{f"turn_{phase}": _mean(t.get(phase) for t in turns) for phase in PHASES},
    }


PHASES = ("queued_s", "first_token_s", "decode_s", "tool_seconds")
HEADLINE = ("jct_mean_ratio", "jct_p90_ratio", "pin_over_fcfs_ratio", "recompute_reduction",
            "oracle_gap", "device_jct_mean_ratio", "device_jct_p90_ratio",
            "rest_jct_mean_ratio", "rest_jct_p90_ratio", "rest_vs_inprocess_ratio",
            "warm_jct_mean_ratio")  # fmt: skip


def _or_dash(value: float | None) -> float | str:
    return "-" if value is None else value


def _mean(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _no_tool_cost(alternations: list[dict[str, list[float]]]) -> dict[str, float]:
    """The pinning engine's throughput cost with nothing to pin: per alternation, one
    minus the ratio of the two engines' median batch rates; the median and range."""
    rows, costs = [], []
    for i, rates in enumerate(alternations):
        shipped, ours = statistics.median(rates["vanilla"]), statistics.median(rates["pin"])
        costs.append(100 * (1 - ours / shipped))
        rows.append([i + 1, " then ".join(rates), shipped, ours, costs[-1]])
    print_table(
        "No tool calls: requests per second, median batch of each engine",
        ["alternation", "order", "vLLM as shipped", "pinning + host tier", "cost %"],
        rows,
    )
    cost = statistics.median(costs)
    print(f"no-tool cost: median {cost:+.2f} % over {len(costs)} alternations "
          f"(range {min(costs):+.2f} to {max(costs):+.2f} %)")  # fmt: skip
    return {
        "no_tool_throughput_cost_pct": round(cost, 2),
        "no_tool_throughput_cost_pct_min": round(min(costs), 2),
        "no_tool_throughput_cost_pct_max": round(max(costs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a faithful small run")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument("--pin-cap", type=float, default=None, help="share of KV for pins")
    parser.add_argument("--seed", type=int, default=None,
                        help="draws another set of prompts and tool durations")  # fmt: skip
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the comparison on this many workloads (successive seeds); "
                        "the summary gives the median of each figure")  # fmt: skip
    parser.add_argument("--hold-horizon", type=float, default=None,
                        help="the TTL policy's hold horizon, seconds")  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child in STREAM_MODES:
        from streaming_sessions import run_sessions

        plan = json.loads(args.plan.read_text())
        if args.child == "stream_roomy":
            plan["workload"]["kv_blocks"] = ROOMY_BLOCKS
        result = run_sessions(plan, MODEL_DIR)
        result["mode"] = args.child
        args.out.write_text(json.dumps(result))
        return
    if args.child == "rest":
        from agent_rest import run_rest

        result = run_rest(json.loads(args.plan.read_text()), MODEL_DIR.parent)
        result["mode"] = "rest"
        args.out.write_text(json.dumps(result))
        return
    if args.child:
        plan = json.loads(args.plan.read_text())
        if args.child.startswith("notool_"):
            result = run_no_tools(args.child.removeprefix("notool_"), plan)
        else:
            result = run_child(args.child, plan)
        args.out.write_text(json.dumps(result))
        return

    if not (MODEL_DIR / "config.json").is_file():
        sys.exit(f"no model at {MODEL_DIR}: run `memos models prepare` (MEMOS_DATA_DIR=var)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    w = workload(args.quick)
    if args.pin_cap is not None:
        w.pin_cap = args.pin_cap
    if args.hold_horizon is not None:
        w.hold_horizon_s = args.hold_horizon
    if args.seed is not None:
        w.seed = args.seed
    modes = args.modes.split(",")
    runs: list[dict[str, Any]] = []
    # engines with nothing to pin or copy, against vLLM as shipped: per alternation, each
    # engine's batch rates
    no_tool: list[dict[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="memos-jct-") as tmp:

        def child(mode: str, plan: dict[str, Any]) -> dict[str, Any]:
            plan_path, out = Path(tmp) / "plan.json", Path(tmp) / f"{mode}.json"
            plan_path.write_text(json.dumps(plan))
            env = {
                **os.environ,
                "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
            }
            command = [sys.executable, __file__, "--child", mode]
            command += ["--plan", str(plan_path), "--out", str(out)]
            subprocess.run(command, check=True, env=env)
            return json.loads(out.read_text())

        first_seed = w.seed
        for run in range(args.runs):
            w.seed = first_seed + run
            plan = make_plan(w)
            results: dict[str, dict[str, Any]] = {}
            for mode in modes:
                print(f"\n== {mode} (workload seed {w.seed}) ==", flush=True)
                results[mode] = child(mode, plan)
                print(json.dumps(summarize(results[mode])), flush=True)
            runs.append({"seed": w.seed, "results": results, **compare(args, w, results)})
        if "vanilla" in modes and "pin" in modes:
            plan = make_plan(w)
            for i in range(w.no_tool_alternations):
                rates: dict[str, list[float]] = {}
                for mode in ("vanilla", "pin") if i % 2 == 0 else ("pin", "vanilla"):
                    print(f"\n== no tool calls, alternation {i + 1}, {mode} ==", flush=True)
                    rates[mode] = child(f"notool_{mode}", plan)["req_per_s"]
                no_tool.append(rates)
    report(args, w, runs, no_tool)


def compare(
    args: argparse.Namespace, w: Workload, results: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Print one workload's comparison; return its figures per mode and its ratios."""
    rows, figures = [], {m: summarize(r) for m, r in results.items()}
    base = figures.get("vanilla")
    for mode, f in figures.items():
        rows.append([
            mode, f"{f['programs_completed']}/{w.programs}", f["jct_mean_s"], f["jct_p90_s"],
            f["recomputed_tokens"], f["preempted_requests"], f["hit_rate"],
            base["jct_mean_s"] / f["jct_mean_s"] if base else "-",
            base["jct_p90_s"] / f["jct_p90_s"] if base else "-",
            f["idle_held_block_seconds"], f["idle_peak_blocks"],
            f["pinned"], f["pins_taken"], f["pins_expired"], f["pins_evicted_or_refused"],
            f["pin_blocks_given_way"],
        ])  # fmt: skip
    print_table(
        f"Agent programs ({'quick' if args.quick else 'full'}, workload seed {w.seed}): "
        f"{w.programs} programs x {w.turns} turns, {w.start_tokens}-token start, "
        f"{w.output_tokens} output + {w.tool_tokens} tool tokens a turn, KV cache "
        f"{w.kv_blocks} blocks x 128 tokens, pin cap {w.pin_cap:.0%}",
        ["mode", "done", "JCT mean s", "JCT p90 s", "re-prefilled tok", "preempted",
         "prefix hit rate", "mean x", "p90 x", "idle-held blk*s", "idle-held peak blk",
         "pins", "taken", "expired", "evicted/refused", "blocks given way"],
        rows,
    )  # fmt: skip
    print_table(
        "Where a turn's time goes (mean seconds per turn; vLLM's request timestamps)",
        ["mode", "queued", "scheduled -> first token", "decoding", "tool after it"],
        [[mode, *(_or_dash(f[f"turn_{phase}"]) for phase in PHASES)]
         for mode, f in figures.items() if mode not in STREAM_MODES],
    )  # fmt: skip
    ratios: dict[str, float] = {}
    pin, fcfs, oracle = figures.get("pin"), figures.get("fcfs"), figures.get("oracle")
    if base and pin:
        ratios.update(_against_shipped(base, pin))
        ratios["host_peak_blocks"] = pin["host_peak_blocks"]
        ratios["miss_cost"] = pin["miss_cost"]
        ratios["device_pins"] = pin["pinned"]
    rest, warm = figures.get("rest"), figures.get("pin_warm")
    if base and rest:
        ratios.update(_against_shipped(base, rest, prefix="rest_"))
    if pin and rest:
        # (c) as users run it, against (c) in process: 1.0 when HTTP costs nothing
        ratios["rest_vs_inprocess_ratio"] = pin["jct_mean_s"] / rest["jct_mean_s"]
    if base and warm:
        ratios.update(_against_shipped(base, warm, prefix="warm_"))
    device = figures.get("pin_device")
    if base and device:
        ratios.update(_against_shipped(base, device, prefix="device_"))
    if fcfs and device:
        ratios["device_over_fcfs_ratio"] = fcfs["jct_mean_s"] / device["jct_mean_s"]
    if fcfs and pin:
        ratios["pin_over_fcfs_ratio"] = fcfs["jct_mean_s"] / pin["jct_mean_s"]
    if oracle and pin:
        ratios["oracle_gap"] = pin["jct_mean_s"] / oracle["jct_mean_s"]
    stream, roomy = figures.get("stream"), results.get("stream_roomy")
    if roomy and pin:
        ratios["stream_blocks_needed"] = roomy["kv"]["peak_kv_usage"] * ROOMY_BLOCKS
        ratios["pin_over_stream_roomy_jct_ratio"] = (
            figures["stream_roomy"]["jct_mean_s"] / pin["jct_mean_s"]
        )
    if stream and pin:
        ratios["stream_programs_completed"] = stream["programs_completed"]
        ratios["pin_over_stream_jct_ratio"] = stream["jct_mean_s"] / pin["jct_mean_s"]
        ratios["stream_idle_peak_blocks"] = stream["idle_peak_blocks"]
        ratios["pin_idle_peak_blocks"] = pin["idle_peak_blocks"]
        ratios["stream_over_pin_idle_block_seconds"] = stream["idle_held_block_seconds"] / max(
            1e-9, pin["idle_held_block_seconds"]
        )
    return {"figures": figures, "ratios": ratios}


def _against_shipped(
    base: dict[str, float], ours: dict[str, float], prefix: str = ""
) -> dict[str, float]:
    """The issue's three ratios of a mode against vLLM as shipped."""
    return {
        f"{prefix}jct_mean_ratio": base["jct_mean_s"] / ours["jct_mean_s"],
        f"{prefix}jct_p90_ratio": base["jct_p90_s"] / ours["jct_p90_s"],
        f"{prefix}recompute_reduction": base["recomputed_tokens"]
        / max(1, ours["recomputed_tokens"]),
    }


def report(
    args: argparse.Namespace, w: Workload, runs: list[dict[str, Any]],
    no_tool: list[dict[str, list[float]]],
) -> None:  # fmt: skip
    print(
        "\nre-prefilled: prompt tokens the engine computed (vLLM's prefix-cache statistics, "
        "preempted requests included) minus those computed for the first time. idle-held: "
        "KV blocks kept for programs whose tool is running (pins; paused stream sessions)."
    )
    if "pin" in runs[0]["results"]:
        print(f"TTL policy hold horizon: {runs[0]['results']['pin']['hold_horizon_s']:.1f} s")
    # One workload's run is one draw of this VM's noise and of the tool durations: with
    # several, each headline figure is the median of the per-workload figures.
    summary: dict[str, Any] = {}
    spread: list[list[Any]] = []
    for key in runs[0]["ratios"]:
        values = sorted(r["ratios"][key] for r in runs if key in r["ratios"])
        if any(math.isnan(v) for v in values):
            continue  # e.g. no stream session completed: no job time to compare
        summary[key] = round(statistics.median(values), 3)
        spread.append([key, summary[key], values[0], values[-1],
                       " ".join(f"{r['ratios'][key]:.2f}" for r in runs)])  # fmt: skip
        if len(runs) > 1 and key in HEADLINE:
            summary[f"{key}_min"], summary[f"{key}_max"] = round(values[0], 3), round(values[-1], 3)
    if len(runs) > 1 and spread:
        print_table(
            f"Across {len(runs)} workloads (seeds {runs[0]['seed']}-{runs[-1]['seed']}): "
            "median (min-max)",
            ["figure", "median", "min", "max", "per workload"],
            spread,
        )
    if no_tool:
        summary.update(_no_tool_cost(no_tool))
    print("\nsummary:", summary)
    details = {
        "workload": asdict(w),
        "runs": [{"seed": r["seed"], "figures": r["figures"], "ratios": r["ratios"],
                  "modes": r["results"]} for r in runs],
        "no_tool_req_per_s": no_tool,
    }  # fmt: skip
    write_json(args.json, summary, details)


if __name__ == "__main__":
    main()
