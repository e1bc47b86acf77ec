"""`memos eval generate | run | report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from memos.config import Settings

from .dataset import Dataset, DatasetError, dump_jsonl, load_jsonl

FORMATS = ("jsonl", "locomo", "longmemeval")


@click.group("eval")
def eval_group() -> None:
    """Measure how well an agent remembers (MEMTRACK-style timelines, LoCoMo, LongMemEval)."""


@eval_group.command("generate")
@click.option("--events", default=1000, show_default=True, type=click.IntRange(20, 100_000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--questions", default=None, type=click.IntRange(1), help="default: events / 10")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def generate_cmd(events: int, seed: int, questions: int | None, out_path: Path) -> None:
    """Write a generated software-team timeline and its questions as JSONL."""
    from .generator import generate

    dataset = generate(events, seed, questions)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dump_jsonl(dataset, out_path)
    click.echo(f"{len(dataset.events)} events, {len(dataset.questions)} questions -> {out_path}")


def load_dataset(path: Path, fmt: str) -> Dataset:
    from .published import load_locomo, load_longmemeval

    try:
        if fmt == "locomo":
            return load_locomo(path)
        if fmt == "longmemeval":
            return load_longmemeval(path)
        return load_jsonl(path)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None


@eval_group.command("run")
@click.option("--dataset", "dataset_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option("--system", required=True, help="memos-vector | memos-hybrid | memos-graph | "
              "vector-rag | full-context | no-memory | mem0")  # fmt: skip
@click.option("--reader", default="extractive", show_default=True,
              help="extractive | embedded | the URL of an OpenAI-compatible server")  # fmt: skip
@click.option("--judge", default="exact", show_default=True, help="exact | llm")
@click.option("--k", "top_k", default=10, show_default=True, type=click.IntRange(1, 100),
              help="items retrieved per memory call")  # fmt: skip
@click.option(
    "--memos-url",
    envvar="MEMOS_URL",
    default="",
    help="a running service to evaluate (default: one started in a scratch dir)",
)
@click.option("--memos-key", envvar="MEMOS_API_KEY", default="")
@click.option("--reader-key", envvar="OPENAI_API_KEY", default="", help="a URL reader's key")
@click.option("--reader-model", default="", help="a URL reader's model name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="default: eval-runs/<dataset>-<system>-<reader>")  # fmt: skip
def run_cmd(
    dataset_path: Path, fmt: str, system: str, reader: str, judge: str, top_k: int,
    memos_url: str, memos_key: str, reader_key: str, reader_model: str, out_dir: Path | None,
) -> None:  # fmt: skip
    """Replay a dataset into one system and score its answers; writes run.json,
    report.md and report.png."""
    from memos.client import MemOSClientError

    from . import report
    from .errors import EvalError
    from .harness import Harness, check_names, needs_chat
    from .runner import run, sha256_of

    try:
        check_names(system, reader, judge)
    except EvalError as exc:
        raise click.ClickException(str(exc)) from None
    if memos_url and not memos_key and system.startswith("memos-"):
        raise click.ClickException("--memos-url needs --memos-key (or MEMOS_API_KEY)")
    dataset = load_dataset(dataset_path, fmt)
    if not dataset.questions:
        raise click.ClickException(f"{dataset_path} holds no questions")
    reader_name = reader if reader in ("extractive", "embedded") else "url"
    out_dir = out_dir or Path("eval-runs") / _slug(f"{dataset_path.stem}-{system}-{reader_name}")
    settings = Settings.from_env()
    try:
        with Harness(settings, memos_url=memos_url, memos_key=memos_key,
                     reader_key=reader_key, reader_model=reader_model) as harness:  # fmt: skip
            chosen = harness.system(system, needs_chat=needs_chat(system, reader, judge))
            result = run(
                dataset,
                chosen,
                harness.reader(reader, dataset),
                harness.counter,
                judge=harness.judge(judge, reader),
                k=top_k,
                label=str(dataset_path),
                digest=sha256_of(dataset_path),
            )
    except (EvalError, MemOSClientError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run.json").write_text(json.dumps(result.to_json(), indent=1, default=str))
    written = report.write([result], out_dir, f"{dataset_path.name}: {system} / {reader_name}")
    click.echo(report.markdown([result]))
    click.echo(f"run -> {out_dir / 'run.json'}; table -> {written['markdown']}; "
               f"plot -> {written['plot']}")  # fmt: skip


@eval_group.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("eval-report"), show_default=True)  # fmt: skip
@click.option("--title", default="", help="a heading for the table and the plot")
def report_cmd(runs: tuple[Path, ...], out_dir: Path, title: str) -> None:
    """Put runs side by side (each RUN is a run.json or the folder holding one)."""
    from . import report
    from .runner import RunResult

    loaded = []
    for path in runs:
        file = path / "run.json" if path.is_dir() else path
        try:
            loaded.append(RunResult.from_json(json.loads(file.read_text())))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise click.ClickException(f"{file}: not a run's JSON ({exc})") from None
    written = report.write(loaded, out_dir, title)
    click.echo(report.markdown(loaded))
    click.echo(f"table -> {written['markdown']}; plot -> {written['plot']}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
