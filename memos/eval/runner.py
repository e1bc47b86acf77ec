"""The runner: replays each instance's timeline into a memory system, asks its questions
where they fall, and scores every answer — correctness (exact match, token F1, an LLM
judge when configured), efficiency (memory calls, prompt tokens, latency), redundancy
(duplicates stored; retrieved items that repeat or are superseded) and evidence
recall@k."""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .dataset import Dataset, Event, Instance, Question
from .metrics import evidence_recall, exact_match, normalize, token_f1
from .readers import LLMJudge, Reader, prompt_messages
from .systems import Item, MemorySystem
from .truth import IssueTruth

RECALL_KS = (1, 5, 10)
ANSWER_ROOM_TOKENS = 64  # what full-context leaves free in the window for the answer


class TokenCounter:
    """Tokens as the chat model counts them (its tokenizer and chat template)."""

    def __init__(self, model_dir: Path) -> None:
        import json

        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        config = json.loads((model_dir / "config.json").read_text())
        self.window = int(config.get("max_position_embeddings", 2048))

    def text(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, messages: list[dict[str, str]]) -> int:
        ids = self._tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    def context_budget(self) -> int:
        """The tokens left for memory lines once the prompt's frame and the answer fit."""
        frame = self.prompt(prompt_messages(_EMPTY_QUESTION, []))
        return self.window - frame - ANSWER_ROOM_TOKENS


_EMPTY_QUESTION = Question("-", datetime.fromisoformat("2026-01-01T00:00:00+00:00"), "", "", "")


@dataclass
class QuestionResult:
    id: str
    instance: str
    type: str
    text: str
    answer: str
    said: str
    exact: float
    f1: float
    judged: bool | None
    recall: dict[str, float | None]  # "1", "5", "10", "shown" -> evidence recall
    retrieved: list[str]  # event ids, in the order the reader was given them
    calls: int
    prompt_tokens: int
    latency_ms: float
    repeated_share: float
    superseded_share: float


@dataclass
class RunResult:
    system: str
    reader: str
    judge: str
    dataset: str
    dataset_sha256: str
    k: int
    events: int = 0
    stored: int = 0
    duplicates_stored: int = 0
    ingest_s: float = 0.0
    runtime_s: float = 0.0
    questions: list[QuestionResult] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        questions = [QuestionResult(**q) for q in data.get("questions", [])]
        return cls(**{**data, "questions": questions})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(
    dataset: Dataset,
    system: MemorySystem,
    reader: Reader,
    counter: TokenCounter,
    *,
    judge: LLMJudge | None = None,
    k: int = 10,
    label: str = "<dataset>",
    digest: str = "",
    progress: bool = True,
) -> RunResult:
    """Every instance of ``dataset`` through ``system`` and ``reader``."""
    result = RunResult(system.name, reader.name, "llm" if judge else "exact", label, digest, k)
    started = time.perf_counter()
    total = sum(len(i.events) + len(i.questions) for i in dataset.instances.values())
    with tqdm(total=total, desc=f"{system.name} / {reader.name}", unit="line",
              disable=not progress) as bar:  # fmt: skip
        for instance in dataset.instances.values():
            _run_instance(instance, system, reader, counter, judge, k, result, bar)
    result.runtime_s = time.perf_counter() - started
    result.summary = summarize(result)
    return result


def _run_instance(
    instance: Instance,
    system: MemorySystem,
    reader: Reader,
    counter: TokenCounter,
    judge: LLMJudge | None,
    k: int,
    result: RunResult,
    bar: Any,
) -> None:
    system.start(instance.name)
    truth = IssueTruth()
    by_id: dict[str, Event] = {}
    for events, question in _steps(instance):
        if events:
            began = time.perf_counter()
            system.observe(events)
            result.ingest_s += time.perf_counter() - began
            for event in events:
                truth.observe(event)
                by_id[event.id] = event
            result.events += len(events)
            bar.update(len(events))
        if question is None:
            continue

        def retrieve(query: str, q: Question = question) -> list[Item]:
            return system.retrieve(query, q, k)

        began = time.perf_counter()
        reading = reader.read(question, retrieve)
        latency_ms = (time.perf_counter() - began) * 1000
        retrieved = [item.event_id for item in reading.items]
        judged = judge.correct(question, reading.answer) if judge else None
        repeated, superseded = _redundancy(reading.items, question, truth, by_id)
        result.questions.append(
            QuestionResult(
                id=question.id,
                instance=instance.name,
                type=question.type,
                text=question.text,
                answer=question.answer,
                said=reading.answer,
                exact=exact_match(reading.answer, question.accepted),
                f1=token_f1(reading.answer, question.accepted),
                judged=judged,
                recall={
                    **{str(n): evidence_recall(retrieved, question.evidence, n) for n in RECALL_KS},
                    "shown": evidence_recall(retrieved, question.evidence, len(retrieved)),
                },
                retrieved=retrieved,
                calls=reading.calls,
                prompt_tokens=counter.prompt(prompt_messages(question, reading.items)),
                latency_ms=latency_ms,
                repeated_share=repeated,
                superseded_share=superseded,
            )
        )
        bar.update(1)
    stored = system.stored()
    result.stored += len(stored)
    result.duplicates_stored += len(stored) - len({normalize(t) for t in stored})


def _steps(instance: Instance) -> Iterator[tuple[list[Event], Question | None]]:
    """The events to take in before each question (those seen by its time), then the
    question; last, any events after the last question."""
    events = iter(instance.events)
    pending = next(events, None)
    for question in instance.questions:
        batch = []
        while pending is not None and pending.time <= question.time:
            batch.append(pending)
            pending = next(events, None)
        yield batch, question
    rest = [pending, *events] if pending is not None else []
    if rest:
        yield rest, None


def _redundancy(
    items: Sequence[Item], question: Question, truth: IssueTruth, by_id: dict[str, Event]
) -> tuple[float, float]:
    """The share of items whose text an earlier item had, and the share that are
    tracker changes no longer in effect when asked about (every field they set has
    been set again since)."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    repeated = superseded = 0
    world = question.as_of or question.time
    for item in items:
        key = normalize(item.text)
        repeated += key in seen
        seen.add(key)
        event = by_id.get(item.event_id)
        if event is None or event.platform != "issues" or not event.changes or not event.refs:
            continue
        current = [truth.value(event.refs[0], name, world, question.time) for name in event.changes]
        if all(c is not None and c.event_id != event.id for c in current):
            superseded += 1
    return repeated / len(items), superseded / len(items)


# summaries ---------------------------------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _scores(questions: Sequence[QuestionResult]) -> dict[str, Any]:
    judged = [q.judged for q in questions if q.judged is not None]
    latencies = sorted(q.latency_ms for q in questions)
    return {
        "questions": len(questions),
        "exact_match": _mean(q.exact for q in questions),
        "f1": _mean(q.f1 for q in questions),
        "judged_correct": (sum(judged) / len(judged)) if judged else None,
        **{f"recall_at_{n}": _mean(q.recall[str(n)] for q in questions) for n in RECALL_KS},
        "recall_shown": _mean(q.recall["shown"] for q in questions),
        "memory_calls_per_question": _mean(q.calls for q in questions),
        "prompt_tokens_per_question": _mean(q.prompt_tokens for q in questions),
        "latency_ms_p50": statistics.median(latencies) if latencies else None,
        "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "repeated_share": _mean(q.repeated_share for q in questions),
        "superseded_share": _mean(q.superseded_share for q in questions),
    }


def summarize(result: RunResult) -> dict[str, Any]:
    types = sorted({q.type for q in result.questions})
    return {
        "all": _scores(result.questions),
        "by_type": {t: _scores([q for q in result.questions if q.type == t]) for t in types},
        "duplicates_stored": result.duplicates_stored,
        "stored": result.stored,
        "ingest_s": result.ingest_s,
        "runtime_s": result.runtime_s,
    }
