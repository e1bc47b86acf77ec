"""Runs side by side: Markdown tables (overall, then one per question type) and PNG
plots (correctness by question type; evidence recall@10; prompt tokens per question)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dataset import QUESTION_TYPES
from .runner import RunResult


def _label(run: RunResult) -> str:
    return f"{run.system} / {run.reader}" + (" / llm judge" if run.judge == "llm" else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(runs: Sequence[RunResult]) -> str:
    lines = [
        "| system / reader | questions | exact % | F1 % | judged % | recall@10 % | calls/q | "
        "prompt tokens/q | p50 ms | duplicates stored | repeated % | superseded % | run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        s = run.summary["all"]
        lines.append(
            f"| {_label(run)} | {s['questions']} | {_pct(s['exact_match'])} | {_pct(s['f1'])} | "
            f"{_pct(s['judged_correct'])} | "
            f"{_pct(s['recall_at_10'])} | {_num(s['memory_calls_per_question'], 2)} | "
            f"{_num(s['prompt_tokens_per_question'], 0)} | {_num(s['latency_ms_p50'])} | "
            f"{run.summary['duplicates_stored']} | {_pct(s['repeated_share'])} | "
            f"{_pct(s['superseded_share'])} | {_num(run.runtime_s)} |"
        )
    out = ["## All questions", "", *lines]
    types = [t for t in QUESTION_TYPES if any(t in r.summary["by_type"] for r in runs)]
    types += sorted({t for r in runs for t in r.summary["by_type"]} - set(types))
    for qtype in types:
        out += [
            "",
            f"## {qtype}",
            "",
            "| system / reader | questions | exact % | F1 % | judged % | recall@10 % | "
            "prompt tokens/q |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for run in runs:
            s = run.summary["by_type"].get(qtype)
            if s is None:
                continue
            out.append(
                f"| {_label(run)} | {s['questions']} | {_pct(s['exact_match'])} | "
                f"{_pct(s['f1'])} | {_pct(s['judged_correct'])} | {_pct(s['recall_at_10'])} | "
                f"{_num(s['prompt_tokens_per_question'], 0)} |"
            )
    return "\n".join(out) + "\n"


def plot(runs: Sequence[RunResult], path: Path, title: str = "") -> Path:
    """One PNG: correctness per question type, recall@10 and prompt tokens, per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [_label(r) for r in runs]
    types = [t for t in QUESTION_TYPES if any(t in r.summary["by_type"] for r in runs)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [3, 1.2, 1.2]})
    width = 0.8 / max(1, len(runs))
    for n, run in enumerate(runs):
        values = [100 * (run.summary["by_type"].get(t, {}).get("exact_match") or 0) for t in types]
        axes[0].bar([i + n * width for i in range(len(types))], values, width, label=labels[n])
    axes[0].set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(types))], types)
    axes[0].set_ylabel("exact match %")
    axes[0].set_ylim(0, 100)
    axes[0].set_title("Correctness by question type")
    axes[0].legend(fontsize=8)
    colors = [f"C{n}" for n in range(len(runs))]
    positions = list(range(len(runs)))
    recall = [100 * (r.summary["all"]["recall_at_10"] or 0) for r in runs]
    axes[1].bar(positions, recall, color=colors)
    axes[1].set_title("Evidence recall@10 (%)")
    axes[1].set_ylim(0, 100)
    tokens = [r.summary["all"]["prompt_tokens_per_question"] or 0 for r in runs]
    axes[2].bar(positions, tokens, color=colors)
    axes[2].set_yscale("log")
    axes[2].set_ylim(bottom=10)
    axes[2].set_title("Prompt tokens per question (log)")
    for ax in axes[1:]:
        ax.set_xticks(positions, [r.system for r in runs], rotation=35, ha="right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(runs: Sequence[RunResult], directory: Path, title: str = "") -> dict[str, Any]:
    """``report.md`` and ``report.png`` in ``directory`` (the plot needs matplotlib: the
    ``eval`` extra; without it, the plot is named as missing and the table is written)."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "report.md"
    md.write_text((f"# {title}\n\n" if title else "") + markdown(runs))
    try:
        png = str(plot(runs, directory / "report.png", title))
    except ImportError:
        png = "none (pip install 'memos-os[eval]' for plots)"
    return {"markdown": str(md), "plot": png}
