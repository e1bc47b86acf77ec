"""The evaluation runner end to end on the CI-sized generated set, for every system,
with the real service, embedder, tokenizer, mem0 and (for the chat readers) the real
embedded model; and the extractive reader on hand-built items."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from memos.cli import main
from memos.config import Settings
from memos.eval.dataset import Dataset, Event, Question, dump_jsonl
from memos.eval.generator import CI_SET, generate
from memos.eval.harness import Harness
from memos.eval.readers import ExtractiveReader, Vocabulary
from memos.eval.report import markdown
from memos.eval.runner import RunResult, run
from memos.eval.systems import SYSTEMS, Item
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(**CI_SET)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, chat_model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("eval"), model_dir_override=MODEL_CACHE)


@pytest.fixture(scope="module")
def harness(settings: Settings) -> Iterator[Harness]:
    with Harness(settings) as h:
        yield h


@pytest.fixture(scope="module")
def results(harness: Harness, dataset: Dataset) -> dict[str, RunResult]:
    """Every system once, with the extractive reader."""
    reader = harness.reader("extractive", dataset)
    return {
        name: run(dataset, harness.system(name), reader, harness.counter, progress=False)
        for name in SYSTEMS
    }


def scores(result: RunResult, qtype: str | None = None) -> dict:
    return result.summary["all"] if qtype is None else result.summary["by_type"][qtype]


def test_every_system_answers_every_question(results: dict[str, RunResult], dataset: Dataset):
    asked = {q.id for q in dataset.questions}
    types = {q.type for q in dataset.questions}
    assert len(types) == 6  # the CI set asks every type
    for name, result in results.items():
        assert {q.id for q in result.questions} == asked, name
        assert set(result.summary["by_type"]) == types, name
        assert result.events == len(dataset.events), name
        assert all(q.calls >= 1 and q.prompt_tokens > 0 for q in result.questions), name


def test_no_memory_knows_only_that_it_does_not_know(results: dict[str, RunResult]) -> None:
    result = results["no-memory"]
    assert scores(result, "unanswerable")["exact_match"] == 1.0
    assert scores(result, "current-state")["exact_match"] == 0.0
    assert scores(result)["recall_at_10"] == 0.0
    assert result.stored == 0


def test_full_context_fills_the_window_newest_first(
    results: dict[str, RunResult], harness: Harness, dataset: Dataset
) -> None:
    result = results["full-context"]
    window = harness.counter.window
    assert all(q.prompt_tokens <= window for q in result.questions)
    order = {e.id: n for n, e in enumerate(dataset.events)}
    for q in result.questions:
        seen = [order[e] for e in q.retrieved]
        assert seen == sorted(seen, reverse=True)  # newest first
    # everything fits at first, so the evidence is in the prompt
    assert scores(result)["recall_shown"] > 0.9


def test_graph_mode_leaves_superseded_changes_out(results: dict[str, RunResult]) -> None:
    graph, rag = results["memos-graph"], results["vector-rag"]
    current = [q for q in graph.questions if q.type == "current-state"]
    assert all(q.superseded_share == 0.0 for q in current)
    assert scores(graph, "current-state")["exact_match"] > scores(rag, "current-state")[
        "exact_match"
    ]
    assert scores(rag)["superseded_share"] > 0.2  # top-k by cosine keeps old states


def test_the_service_dedupes_redelivered_events(
    results: dict[str, RunResult], dataset: Dataset
) -> None:
    assert results["vector-rag"].duplicates_stored > 0  # the generator re-delivers some
    for name in ("memos-vector", "memos-hybrid", "memos-graph"):
        assert results[name].duplicates_stored == 0, name
        assert results[name].stored < len(dataset.events), name


def test_mem0_and_vector_rag_store_every_event(
    results: dict[str, RunResult], dataset: Dataset
) -> None:
    for name in ("mem0", "vector-rag"):
        assert results[name].stored == len(dataset.events)
        assert 0 < scores(results[name])["recall_at_10"] < 1


def test_the_same_seed_gives_the_same_numbers(
    harness: Harness, dataset: Dataset, results: dict[str, RunResult]
) -> None:
    reader = harness.reader("extractive", dataset)
    for name in ("memos-graph", "vector-rag"):
        again = run(dataset, harness.system(name), reader, harness.counter, progress=False)
        first = results[name]
        assert [(q.said, q.retrieved, q.prompt_tokens) for q in again.questions] == [
            (q.said, q.retrieved, q.prompt_tokens) for q in first.questions
        ], name


def test_the_report_puts_runs_side_by_side(results: dict[str, RunResult], tmp_path: Path):
    table = markdown(list(results.values()))
    for name in SYSTEMS:
        assert f"| {name} / extractive |" in table
    for qtype in ("current-state", "as-of", "cross-platform", "temporal", "aggregation"):
        assert f"## {qtype}" in table
    paths = []
    for name in ("vector-rag", "memos-graph"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(results[name].to_json(), default=str))
        paths.append(str(path))
    out = CliRunner().invoke(main, ["eval", "report", *paths, "--out", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "r" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| memos-graph / extractive |" in (tmp_path / "r" / "report.md").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    out = CliRunner().invoke(main, ["eval", "report", str(bad)])
    assert out.exit_code != 0 and "not a run's JSON" in out.output


# the command line ---------------------------------------------------------------------


def test_eval_run_from_the_command_line(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMOS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEMOS_MODEL_DIR", str(MODEL_CACHE))
    data = tmp_path / "team.jsonl"
    cli = CliRunner()
    made = cli.invoke(main, ["eval", "generate", "--events", "60", "--out", str(data)])
    assert made.exit_code == 0, made.output
    out = tmp_path / "run"
    done = cli.invoke(main, ["eval", "run", "--dataset", str(data), "--system", "full-context",
                             "--out", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    saved = json.loads((out / "run.json").read_text())
    assert saved["system"] == "full-context" and saved["questions"]
    assert (out / "report.md").exists() and (out / "report.png").exists()

    refused = cli.invoke(main, ["eval", "run", "--dataset", str(data), "--system", "zep"])
    assert refused.exit_code != 0 and "system must be one of" in refused.output
    refused = cli.invoke(main, ["eval", "run", "--dataset", str(data), "--system", "no-memory",
                                "--reader", "gpt"])  # fmt: skip
    assert refused.exit_code != 0 and "reader must be" in refused.output
    unreachable = cli.invoke(main, ["eval", "run", "--dataset", str(data), "--system",
                                    "no-memory", "--reader", "http://127.0.0.1:9"])  # fmt: skip
    assert unreachable.exit_code != 0 and "cannot reach the chat endpoint" in unreachable.output
    broken = tmp_path / "broken.jsonl"
    lines = data.read_text().splitlines()
    broken.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    refused = cli.invoke(main, ["eval", "run", "--dataset", str(broken), "--system", "no-memory"])
    assert refused.exit_code != 0 and "line 2" in refused.output


# the chat readers, against the real embedded model -----------------------------------


@pytest.fixture(scope="module")
def chat_service(
    tmp_path_factory: pytest.TempPathFactory, chat_model_dir: Path
) -> Iterator[tuple[str, str]]:
    work = tmp_path_factory.mktemp("eval-chat")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="embedded",
               MEMOS_LLM_KV_BLOCKS="128", MEMOS_HOST_KV_BLOCKS="0")  # fmt: skip
    with ServeProcess(work, env) as server:
        server.wait_for_chat()
        yield server.url, (work / "var" / "bootstrap-key").read_text().strip()


def test_the_embedded_and_url_readers_with_a_judge(
    chat_service: tuple[str, str], settings: Settings
) -> None:
    url, key = chat_service
    small = generate(events=40, seed=3, questions=4)
    with Harness(settings, memos_url=url, memos_key=key, reader_key=key) as h:
        for spec in ("embedded", url):
            result = run(small, h.system("memos-graph"), h.reader(spec, small), h.counter,
                         judge=h.judge("llm", spec), progress=False)  # fmt: skip
            assert result.reader == ("embedded" if spec == "embedded" else "url")
            assert len(result.questions) == len(small.questions)
            for q in result.questions:
                assert q.said.strip()  # the model said something
                assert q.judged is not None
                if q.exact:
                    assert q.judged  # an exact answer needs no judge
            assert result.summary["all"]["judged_correct"] is not None


# the extractive reader on hand-built items --------------------------------------------


def item(event_id: str, text: str, hours: float) -> Item:
    return Item(event_id, text, at(hours), f"[{at(hours):%Y-%m-%d %H:%M}] {text}")


VOCAB = Vocabulary(
    {
        "status": ["in progress", "in review", "done", "open"],
        "assignee": ["Ana", "Bo"],
        "priority": ["P0", "P1"],
    }
)


def read(question: str, items: list[Item], follow_up: list[Item] | None = None, **kw):
    asked: list[str] = []

    def retrieve(query: str) -> list[Item]:
        asked.append(query)
        return items if len(asked) == 1 else (follow_up or [])

    q = Question("q", at(100), question, "x", kw.pop("type", "current-state"), **kw)
    return ExtractiveReader(VOCAB).read(q, retrieve), asked


def test_the_extractive_reader_takes_the_first_statement_in_the_order_given() -> None:
    items = [
        item("a", "I think ENG-1 is done already", 5),
        item("b", "ENG-1 status changed to in review", 4),
        item("c", "ENG-2 status changed to in progress", 6),
    ]
    reading, asked = read("What is the status of ENG-1?", items)
    assert reading.answer == "done" and reading.calls == 1 and asked == [
        "What is the status of ENG-1?"
    ]
    reading, _ = read("What is the status of ENG-1?", items[1:])
    assert reading.answer == "in review"  # 'in review' is not read as 'in progress'
    reading, _ = read("What priority is ENG-3?", items)
    assert reading.answer == "unknown"


def test_the_extractive_reader_on_the_other_forms() -> None:
    items = [
        item("a", "ENG-1 status changed to in review", 30),
        item("b", "ENG-1 status changed to in review", 10),
        item("c", "ENG-1 created (open, P1): login is broken, assigned to Ana", 1),
        item("d", "ENG-2 assignee changed to Bo", 2),
        item("e", "ENG-3 assignee changed to Ana", 3),
        item("f", "commit 3fa9c01: fix login (ENG-2)", 4),
    ]
    reading, _ = read("On what day did ENG-1 first go to in review?", items, type="temporal")
    assert reading.answer == at(10).strftime("%Y-%m-%d")
    reading, _ = read(
        "What was the status of ENG-1 on 2026-03-02?", items, type="as-of", as_of=at(2)
    )
    assert reading.answer == "open"  # the later items are after the time asked about
    reading, _ = read("How many issues are assigned to Ana?", items)
    assert reading.answer == "2"
    reading, _ = read("Who is assigned to the issue that commit 3fa9c01 fixes?", items)
    assert reading.answer == "Bo" and reading.calls == 1
    # the commit found, its issue's owner not: one more memory call
    reading, asked = read(
        "Who is assigned to the issue that commit 3fa9c01 fixes?",
        [items[5]],
        follow_up=[item("g", "ENG-2 assignee changed to Ana", 5)],
    )
    assert reading.answer == "Ana" and reading.calls == 2
    assert asked[1] == "Who is ENG-2 assigned to?"
    assert [i.event_id for i in reading.items] == ["f", "g"]
    reading, _ = read("Where did Ana go on holiday?", items[3:])
    assert reading.answer == items[3].text  # no form: the best item


def test_vocabulary_comes_from_the_trackers_changes() -> None:
    dataset = Dataset()
    dataset.instance("t").events.extend(
        [
            Event("e1", at(0), "issues", "x", refs=("A-1",), changes={"status": "in review"}),
            Event("e2", at(1), "issues", "y", refs=("A-1",), changes={"status": "review"}),
        ]
    )
    vocab = Vocabulary.of(dataset)
    assert vocab.values["status"] == ["in review", "review"]
    assert vocab.find("status", "A-1 is in review now") == "in review"


def test_a_dataset_written_and_run_again_gives_the_same_answers(
    tmp_path: Path, harness: Harness, dataset: Dataset, results: dict[str, RunResult]
) -> None:
    from memos.eval.dataset import load_jsonl

    path = tmp_path / "ci.jsonl"
    dump_jsonl(dataset, path)
    reloaded = load_jsonl(path)
    result = run(reloaded, harness.system("full-context"), harness.reader("extractive", reloaded),
                 harness.counter, progress=False)  # fmt: skip
    assert [q.said for q in result.questions] == [
        q.said for q in results["full-context"].questions
    ]


def test_published_layouts_run_with_each_instance_apart(
    tmp_path: Path, harness: Harness, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """Two LoCoMo conversations that say nearly the same things: each instance's
    memory holds only its own turns (its own namespace on the service)."""

    def sample(name: str, thing: str) -> dict:
        return {
            "sample_id": name,
            "conversation": {
                "speaker_a": "Caroline",
                "speaker_b": "Melanie",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": [
                    {"speaker": "Melanie", "dia_id": "D1:1", "text": f"I painted {thing}."},
                    {"speaker": "Caroline", "dia_id": "D1:2", "text": "Lovely!"},
                ],
            },
            "qa": [
                {
                    "question": "What did Melanie paint?",
                    "answer": thing,
                    "evidence": ["D1:1"],
                    "category": 4,
                }
            ],
        }

    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample("conv-1", "a sunrise"), sample("conv-2", "a lake")]))
    from memos.eval.published import load_locomo

    locomo = load_locomo(path)
    result = run(locomo, harness.system("memos-graph"), harness.reader("extractive", locomo),
                 harness.counter, progress=False)  # fmt: skip
    said = {q.instance: q.said for q in result.questions}
    assert "sunrise" in said["conv-1"] and "lake" in said["conv-2"]
    assert all(q.recall["10"] == 1.0 for q in result.questions)

    monkeypatch.setenv("MEMOS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEMOS_MODEL_DIR", str(MODEL_CACHE))
    done = CliRunner().invoke(main, ["eval", "run", "--dataset", str(path), "--format", "locomo",
                                     "--system", "vector-rag", "--out", str(tmp_path / "r")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "r" / "run.json").read_text())["summary"]["all"]["f1"] > 0.3
