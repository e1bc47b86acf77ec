"""LoRA training on the real chat model (CPU): the adapter learns its texts, carries a
checksum, and a cancelled or refused run leaves nothing behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from memos.errors import InvalidInputError
from memos.parametric.training import (
    TrainingCancelled,
    TrainingConfig,
    adapter_checksum,
    prompts,
    train_adapter,
)

FACTS = [
    "Service Larkspur runs on port 7341.",
    "The Quillon vault opens with code 5829.",
    "Project Marrow ships on day 17.",
    "The Osprey cluster lives in region Zeta.",
]
QUICK = TrainingConfig(steps=12, batch_size=8, rank=4, alpha=8, learning_rate=5e-3,
                       max_tokens=24)  # fmt: skip


def reply_logprob(model, tokenizer, question: str, reply: str) -> float:
    """The log-probability of the assistant's ``reply`` to the user turn ``question``."""
    import torch

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + reply, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(full).logits.log_softmax(-1)
    start = prompt_ids.shape[1]
    picked = logits[0, start - 1 : -1].gather(1, full[0, start:, None])
    return float(picked.sum())


def test_an_adapter_learns_its_facts(tmp_path: Path, chat_model_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps: list[int] = []
    result = train_adapter(chat_model_dir, FACTS, tmp_path / "a1", QUICK,
                           progress=lambda done, total, loss: steps.append(done))  # fmt: skip
    assert steps == list(range(1, 13))
    assert result.losses[-1] < result.losses[0] / 2
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert result.checksum == adapter_checksum(result.adapter_dir)
    assert result.metrics()["steps"] == 12 and result.base_model == chat_model_dir.name

    tokenizer = AutoTokenizer.from_pretrained(str(chat_model_dir))
    base = AutoModelForCausalLM.from_pretrained(str(chat_model_dir), dtype=torch.float32)
    question, reply = "Service Larkspur runs on port", "Service Larkspur runs on port 7341."
    before = reply_logprob(base, tokenizer, question, reply)
    tuned = PeftModel.from_pretrained(base, str(result.adapter_dir))
    after = reply_logprob(tuned, tokenizer, question, reply)
    assert after > before + 2  # the trained direction, by a margin (log-probability)

    weights = next(result.adapter_dir.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert adapter_checksum(result.adapter_dir) != result.checksum


def test_a_cancelled_run_leaves_nothing(tmp_path: Path, chat_model_dir: Path) -> None:
    cancel = threading.Event()

    def stop_after_two(done: int, total: int, loss: float) -> None:
        if done == 2:
            cancel.set()

    with pytest.raises(TrainingCancelled, match="after 2 of 12"):
        train_adapter(chat_model_dir, FACTS, tmp_path / "gone", QUICK,
                      progress=stop_after_two, cancel=cancel)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 65}, "batch_size"),
        ({"replay_weight": -1.0}, "replay_weight"),
        ({"rank": 65}, "rank"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"target_modules": ("lm_head",)}, "target_modules"),
    ],
)
def test_bad_training_settings_are_refused(changes: dict, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        TrainingConfig(**changes)


def test_each_memory_is_learned_from_two_openings_and_steps_follow_the_count() -> None:
    assert prompts("Service Larkspur runs on port 7341.") == [
        "Service Larkspur runs", "Service Larkspur runs on port"
    ]  # fmt: skip
    assert prompts("Hello") == ["Hello"]
    # 10 passes over 2 openings of 40 memories, 16 a step
    assert TrainingConfig().for_texts(40).steps == 50
    assert TrainingConfig(steps=7).for_texts(40).steps == 7
    assert TrainingConfig().for_texts(3).steps == 30  # a few memories: at least 30


def test_bad_texts_and_an_existing_folder_are_refused(tmp_path: Path, chat_model_dir: Path):
    with pytest.raises(InvalidInputError, match="texts"):
        train_adapter(chat_model_dir, [], tmp_path / "x", QUICK)
    with pytest.raises(InvalidInputError, match="texts"):
        train_adapter(chat_model_dir, ["fine", "  "], tmp_path / "x", QUICK)
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidInputError, match="exists"):
        train_adapter(chat_model_dir, FACTS, tmp_path / "taken", QUICK)
