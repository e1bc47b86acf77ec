"""A parametric memory served in chat by the real service: `memos serve` with the
embedded engine and LoRA on, an adapter trained through the API and named as the model;
a corrupted adapter is refused; a deleted one is gone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memos.config import Settings
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE
from tests.test_readme_e2e import _run_readme_example

FACTS = [
    "Service Larkspur runs on port 7341.",
    "The Quillon vault opens with code 5829.",
    "Project Marrow ships on day 17.",
]
QUESTION = "What port does Service Larkspur run on?"


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, chat_model_dir: Path
) -> Iterator[tuple[httpx.Client, Path]]:
    work = tmp_path_factory.mktemp("parametric-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="embedded", MEMOS_LLM_KV_BLOCKS="32",
               MEMOS_HOST_KV_BLOCKS="0", MEMOS_LLM_LORA_RANK="8")  # fmt: skip
    with ServeProcess(work, env) as server:
        server.wait_for_chat()
        key = (work / "var" / "bootstrap-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
            yield client, work / "var"


def ask(client: httpx.Client, model: str, question: str = QUESTION) -> str:
    answer = client.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": question}],
        "max_tokens": 12, "temperature": 0})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["choices"][0]["message"]["content"]


def train(client: httpx.Client, name: str, steps: int = 60, **extra) -> dict:
    ids = client.post("/v1/memories/batch", json={"items": [{"text": t} for t in FACTS]})
    started = client.post("/v1/parametric", json={
        "name": name, "memory_ids": ids.json()["ids"], "steps": steps, "rank": 8, "alpha": 16,
        "learning_rate": 5e-3, "max_tokens": 24, **extra})  # fmt: skip
    assert started.status_code == 202, started.text
    while True:
        job = client.get(f"/v1/jobs/{started.json()['id']}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", job
            return client.get(f"/v1/parametric/{name}").json()
        time.sleep(0.5)


def test_an_adapter_answers_in_the_trained_direction_and_goes_when_deleted(
    service: tuple[httpx.Client, Path],
) -> None:
    client, data_dir = service
    found = train(client, "facts")  # the replay term keeps it answering the question asked
    base = ask(client, "SmolLM2-135M-Instruct")
    tuned = ask(client, "facts")
    assert "7341" in tuned and "7341" not in base, (base, tuned)
    # the same adapter named through the memory spec, with retrieval as it says
    answer = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12,
        "temperature": 0, "memory": {"parametric": "facts", "top_k": 1}})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["memory"]["used"], answer.text
    missing = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": QUESTION}],
        "memory": {"parametric": "nothing"}})  # fmt: skip
    assert missing.status_code == 404 and "no parametric memory named" in missing.text

    compose_all_three_kinds(client, found)

    folder = data_dir / "adapters" / "default" / found["id"]
    assert client.delete("/v1/parametric/facts").status_code == 204
    assert not folder.exists()
    # a deleted adapter's name is no model: not answered by the base model under it
    gone = client.post("/v1/chat/completions", json={
        "model": "facts", "messages": [{"role": "user", "content": QUESTION}]})  # fmt: skip
    assert gone.status_code == 404 and "'facts'" in gone.json()["detail"]


def compose_all_three_kinds(client: httpx.Client, parametric: dict) -> None:
    """A composition of a plaintext memory, an activation and the adapter answers as one
    context: the plaintext in the prompt, the activation's block first, the adapter on."""
    note = client.post("/v1/memories", json={"text": "Larkspur's owner is Dana Ruiz."}).json()
    held = client.post("/v1/memories", json={"text": "Dana Ruiz works from Lisbon.",
                                             "user_id": "dana"}).json()  # fmt: skip
    activation = client.post("/v1/activations", json={"user_id": "dana",
                                                      "memory_ids": [held["id"]]})  # fmt: skip
    assert activation.status_code == 201, activation.text
    members = [note["id"], activation.json()["id"], parametric["id"]]
    made = client.put("/v1/compositions/larkspur", json={"memory_ids": members})
    assert made.status_code == 201, made.text
    assert [m["kind"] for m in made.json()["members"]] == ["plaintext", "activation",
                                                           "parametric"]  # fmt: skip
    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12,
            "temperature": 0, "cache": False, "memory": {"compose": "larkspur"}}  # fmt: skip
    answers = [client.post("/v1/chat/completions", json=body) for _ in range(2)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    reply = answers[0].json()
    assert "7341" in reply["choices"][0]["message"]["content"], reply  # the adapter's fact
    assert reply["memory"]["composition"] == {"name": "larkspur", "version": 1,
                                              "parametric": "facts"}  # fmt: skip
    assert reply["memory"]["activation"] == activation.json()["id"]
    assert reply["memory"]["used"] == [held["id"], note["id"]]
    # the adapter's KV differs from the base model's: the block is cached per adapter,
    # so the second request reuses what the first computed
    assert answers[1].json()["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    # naming another adapter beside the composition's is ambiguous
    other = client.post("/v1/chat/completions", json={**body, "model": "other-adapter",
                                                      "memory": {"compose": "larkspur",
                                                                 "parametric": "other"}})  # fmt: skip
    assert other.status_code == 422 and "name one" in other.text, other.text
    # a member deleted since makes the composition refuse to serve
    assert client.delete(f"/v1/memories/{note['id']}").status_code == 204
    gone = client.post("/v1/chat/completions", json=body)
    assert gone.status_code == 409 and "no longer served" in gone.text, gone.text
    assert client.delete("/v1/compositions/larkspur").status_code == 204


def test_readme_cube_example_answers_as_shown(service: tuple[httpx.Client, Path]) -> None:
    client, data_dir = service
    lines = _run_readme_example("readme-cube-example", str(client.base_url), data_dir.parent,
                                timeout=600)  # fmt: skip
    found, chat, history, composed, composed_chat, deleted = lines
    found = json.loads(found)
    assert found["name"] == "ops-facts" and len(found["derived_from"]) == 3
    assert len(found["checksum"]) == 64 and found["base_model"] == "SmolLM2-135M-Instruct"
    assert "7341" in json.loads(chat)["choices"][0]["message"]["content"], chat
    versions = json.loads(history)["versions"]
    assert [v["operation"] for v in versions] == ["create", "migrate"]
    assert versions[-1]["derived_from"][0]["relation"] == "moved_from"
    composed = json.loads(composed)
    assert [m["kind"] for m in composed["members"]] == ["plaintext", "parametric"]
    answer = json.loads(composed_chat)
    assert answer["memory"]["composition"] == {"name": "ops", "version": 1,
                                               "parametric": "ops-facts"}  # fmt: skip
    assert answer["memory"]["used"] == [composed["members"][0]["id"]]
    assert deleted == "204"
    assert client.get("/v1/parametric/ops-facts").status_code == 404


def test_an_adapter_whose_files_changed_is_not_served(service: tuple[httpx.Client, Path]):
    client, data_dir = service
    found = train(client, "tampered", steps=4, replay_weight=0)
    weights = next((data_dir / "adapters" / "default" / found["id"]).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    answer = client.post("/v1/chat/completions", json={
        "model": "tampered", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert answer.status_code == 409 and "checksum" in answer.text
    assert client.delete("/v1/parametric/tampered").status_code == 204


def test_an_adapter_of_layers_the_engine_does_not_serve_is_refused(
    service: tuple[httpx.Client, Path],
) -> None:
    client, _ = service
    train(client, "attention-q", steps=2, replay_weight=0, target_modules=["q_proj"])
    answer = client.post("/v1/chat/completions", json={
        "model": "attention-q", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert answer.status_code == 409, answer.text
    assert "changes q_proj" in answer.text and "MEMOS_LLM_LORA_MODULES" in answer.text
    assert client.delete("/v1/parametric/attention-q").status_code == 204


def test_the_lora_rank_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="MEMOS_LLM_LORA_RANK"):
        Settings(llm_lora_rank=5)
    with pytest.raises(ValueError, match="MEMOS_LLM_LORA_MODULES"):
        Settings(llm_lora_modules=("lm_head",))
    with pytest.raises(ValueError, match="MEMOS_LLM_LORA_MODULES"):
        Settings(llm_lora_modules=())


def test_a_summary_fuse_by_the_chat_model(service: tuple[httpx.Client, Path]) -> None:
    client, _ = service
    ids = client.post("/v1/memories/batch", json={"items": [
        {"text": "Dara moved the standup to 10:15.", "user_id": "fuse"},
        {"text": "The standup is in room Birch.", "user_id": "fuse"}]}).json()["ids"]  # fmt: skip
    answer = client.post("/v1/memories/fuse", json={"memory_ids": ids, "mode": "summary"})
    assert answer.status_code == 201, answer.text
    fused = answer.json()
    assert fused["text"].strip() and fused["user_id"] == "fuse"
    history = client.get(f"/v1/memories/{fused['id']}/history").json()["versions"]
    assert {d["id"] for d in history[0]["derived_from"]} == set(ids)
    assert all(client.get(f"/v1/memories/{i}").json()["state"] == "merged" for i in ids)
