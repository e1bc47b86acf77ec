"""Train a LoRA adapter (peft) on the chat model from memories' text, on the CPU.

The adapter learns to say each memory in chat: from a user turn that starts the memory
(its first half, and all of it but its last word), the assistant turn that says the
whole memory and ends its turn, rendered with the model's own chat template. The loss
counts the assistant turn only. So that the rest of what the model knows stays as it
was, each step also holds the adapted model to the base model's next-token
distribution on text the base model wrote itself (a KL term on "replay" text made at
the start from a few neutral openings): no corpus has to be shipped.

Training checks ``cancel`` between steps; a cancelled or failed run leaves no files
behind: the adapter is written to a scratch folder beside ``out_dir`` and moved into
place only when it is complete.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from memos.config import DEFAULT_LORA_MODULES, LORA_MODULES
from memos.errors import InvalidInputError

MAX_STEPS = 2_000
MAX_RANK = 64
MAX_TEXTS = 5_000
MAX_TOKENS = 512
MAX_BATCH = 64
MAX_EPOCHS = 100
TARGET_MODULES = LORA_MODULES
# Openings the base model continues to make its replay text (neutral, no memory's topic).
REPLAY_OPENINGS = (
    "The history of the old town", "In the morning, the farmers", "Water matters because",
    "The new library building", "Scientists who study the ocean", "A simple recipe for soup",
    "The train left the station", "Good sleep depends on",
)  # fmt: skip
REPLAY_TOKENS = 40  # each opening is continued by this many tokens
REPLAY_BATCH = 4  # replay texts a step
MIN_AUTO_STEPS = 30  # a few memories still get enough steps to learn them


class TrainingCancelled(Exception):
    """The run was cancelled between two steps; nothing was kept."""


@dataclass(frozen=True)
class TrainingConfig:
    steps: int | None = None  # None: enough for ``epochs`` passes over the examples
    epochs: int = 10
    batch_size: int = 16
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 5e-3
    max_tokens: int = 64  # each memory is cut to this many tokens
    target_modules: tuple[str, ...] = DEFAULT_LORA_MODULES
    replay_weight: float = 1.0  # of the KL term that keeps the base model's behaviour
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise InvalidInputError(f"steps must be 1..{MAX_STEPS}, got {self.steps}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise InvalidInputError(f"epochs must be 1..{MAX_EPOCHS}, got {self.epochs}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise InvalidInputError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}")
        if not (math.isfinite(self.replay_weight) and 0 <= self.replay_weight <= 100):
            raise InvalidInputError(f"replay_weight must be 0..100, got {self.replay_weight}")
        if not 1 <= self.rank <= MAX_RANK:
            raise InvalidInputError(f"rank must be 1..{MAX_RANK}, got {self.rank}")
        if not 1 <= self.alpha <= 4 * MAX_RANK:
            raise InvalidInputError(f"alpha must be 1..{4 * MAX_RANK}, got {self.alpha}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 0.1):
            raise InvalidInputError(f"learning_rate must be in (0, 0.1], got {self.learning_rate}")
        if not 8 <= self.max_tokens <= MAX_TOKENS:
            raise InvalidInputError(f"max_tokens must be 8..{MAX_TOKENS}, got {self.max_tokens}")
        if not self.target_modules or not set(self.target_modules) <= set(TARGET_MODULES):
            raise InvalidInputError(f"target_modules must be among {', '.join(TARGET_MODULES)}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "target_modules": list(self.target_modules)}

    def for_texts(self, count: int) -> TrainingConfig:
        """This configuration with its steps set, when none was given: ``epochs`` passes
        over the examples ``count`` memories make (at least ``MIN_AUTO_STEPS``)."""
        if self.steps is not None:
            return self
        passes = math.ceil(self.epochs * count * PROMPTS_PER_TEXT / self.batch_size)
        return replace(self, steps=min(MAX_STEPS, max(MIN_AUTO_STEPS, passes)))


@dataclass
class TrainingResult:
    adapter_dir: Path
    checksum: str
    base_model: str
    config: TrainingConfig
    texts: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # per step

    def metrics(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "steps": len(self.losses),
            "seconds": round(self.seconds, 3),
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
        }


Progress = Callable[[int, int, float], None]  # step done, steps, loss
PROMPTS_PER_TEXT = 2  # the user turns that lead to each memory (see ``prompts``)


def prompts(text: str) -> list[str]:
    """The user turns a memory is learned from: its first half, and all of it but its
    last word (one turn for a memory of one or two words: its first word, or itself)."""
    words = text.split()
    cuts = sorted({max(1, len(words) // 2), max(1, len(words) - 1)})
    return [" ".join(words[:cut]) for cut in cuts]


def train_adapter(
    model_dir: Path,
    texts: Sequence[str],
    out_dir: Path,
    config: TrainingConfig | None = None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> TrainingResult:
    """Train an adapter on ``texts`` and write it to ``out_dir`` (which must not exist)."""
    config = config or TrainingConfig()
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InvalidInputError("texts must be a non-empty list of non-empty strings")
    if len(texts) > MAX_TEXTS:
        raise InvalidInputError(f"at most {MAX_TEXTS} texts a run, got {len(texts)}")
    if out_dir.exists():
        raise InvalidInputError(f"{out_dir} exists already")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config.for_texts(len(texts))
    assert config.steps is not None
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    examples = _ChatExamples(tokenizer, [t.strip() for t in texts], config.max_tokens)
    replay = _Replay(model, tokenizer) if config.replay_weight > 0 else None
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    order = torch.Generator().manual_seed(config.seed)
    model.train()
    losses: list[float] = []
    for step in range(config.steps):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled(f"cancelled after {step} of {config.steps} steps")
        loss = examples.loss(model, examples.batch(config.batch_size, order))
        total = loss if replay is None else loss + config.replay_weight * replay.kl(model, step)
        total.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, config.steps, losses[-1])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(str(scratch))
        scratch.rename(out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return TrainingResult(
        adapter_dir=out_dir,
        checksum=adapter_checksum(out_dir),
        base_model=model_dir.name,
        config=config,
        texts=len(texts),
        seconds=time.perf_counter() - started,
        losses=losses,
    )


class _ChatExamples:
    """Every (user turn, memory) pair as token ids and labels: the chat template's
    rendering of the user turn and the assistant's header (no loss), then the memory and
    the end of the turn (the loss)."""

    def __init__(self, tokenizer: Any, texts: list[str], max_tokens: int) -> None:
        import torch

        end = tokenizer.eos_token or ""
        rows: list[tuple[list[int], list[int]]] = []
        for text in texts:
            reply = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
            reply += tokenizer(end, add_special_tokens=False)["input_ids"]
            for prompt in prompts(text):
                rendered = tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True,
                    tokenize=False,
                )  # fmt: skip
                head = tokenizer(rendered, add_special_tokens=False)["input_ids"]
                rows.append((head + reply, [-100] * len(head) + reply))
        width = max(len(ids) for ids, _ in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
        self.labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
        self.mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
        self._queue: list[int] = []

    def batch(self, size: int, order: Any) -> list[int]:
        """The next ``size`` examples of a shuffled pass (a new pass when one ends)."""
        import torch

        while len(self._queue) < size:
            self._queue += torch.randperm(len(self.ids), generator=order).tolist()
        picked, self._queue = self._queue[:size], self._queue[size:]
        return picked

    def loss(self, model: Any, picked: list[int]) -> Any:
        """Cross-entropy over the assistant turns; the vocabulary projection runs only
        where there is a label (most positions are the prompt)."""
        import torch

        width = int(self.mask[picked].sum(1).max())
        ids, mask = self.ids[picked, :width], self.mask[picked, :width]
        labels = self.labels[picked, :width][:, 1:]
        causal = model.get_base_model()
        hidden = causal.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        scored = labels != -100
        logits = causal.lm_head(hidden[scored])
        return torch.nn.functional.cross_entropy(logits, labels[scored])


class _Replay:
    """Text the base model wrote, and its next-token distribution on it; ``kl`` is how
    far the adapted model has moved from that distribution."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        import torch

        tokenizer.padding_side = "left"
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        openings = tokenizer(list(REPLAY_OPENINGS), return_tensors="pt", padding=True)
        model.eval()
        with torch.no_grad(), model.disable_adapter():
            written = model.generate(
                **openings, max_new_tokens=REPLAY_TOKENS, do_sample=False, pad_token_id=pad,
                repetition_penalty=1.3,
            )  # fmt: skip
            self.ids = written
            self.mask = (written != pad).long()
            self.mask[:, : openings["attention_mask"].shape[1]] = openings["attention_mask"]
            logits = model(input_ids=self.ids, attention_mask=self.mask).logits
            self.base = torch.log_softmax(logits, dim=-1)
        model.train()

    def kl(self, model: Any, step: int) -> Any:
        import torch

        rows = [(step * REPLAY_BATCH + i) % len(self.ids) for i in range(REPLAY_BATCH)]
        mask = self.mask[rows] == 1
        logits = model(input_ids=self.ids[rows], attention_mask=self.mask[rows]).logits
        return torch.nn.functional.kl_div(
            torch.log_softmax(logits, dim=-1)[mask], self.base[rows][mask],
            log_target=True, reduction="batchmean",
        )  # fmt: skip


def adapter_checksum(adapter_dir: Path) -> str:
    """SHA-256 over the adapter's files (their names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in adapter_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(adapter_dir).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
