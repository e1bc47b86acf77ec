"""Train a LoRA adapter (peft) on the chat model from memories' text, on the CPU.

The adapter learns the texts as a language model does (next-token loss over each text,
full batch), so a prompt that starts a trained sentence tends to complete it. Training
checks ``cancel`` between steps; a cancelled or failed run leaves no files behind: the
adapter is written to a scratch folder beside ``out_dir`` and moved into place only
when it is complete.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memos.errors import InvalidInputError

MAX_STEPS = 2_000
MAX_RANK = 64
MAX_TEXTS = 5_000
MAX_TOKENS = 512
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainingCancelled(Exception):
    """The run was cancelled between two steps; nothing was kept."""


@dataclass(frozen=True)
class TrainingConfig:
    steps: int = 60
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 2e-3
    max_tokens: int = 64  # each text is cut to this many tokens
    target_modules: tuple[str, ...] = TARGET_MODULES
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise InvalidInputError(f"steps must be 1..{MAX_STEPS}, got {self.steps}")
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

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    # No end-of-text token is appended: the chat model's is also its end of turn, and
    # an adapter that learned to emit it after its texts answers chat with nothing.
    batch = tokenizer(
        [t.strip() for t in texts],
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=config.max_tokens,
    )
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    model.train()
    losses: list[float] = []
    for step in range(config.steps):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled(f"cancelled after {step} of {config.steps} steps")
        loss = model(**batch, labels=labels).loss
        loss.backward()
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
