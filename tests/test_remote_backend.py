"""The scale path: a separate `vllm serve` with our scheduler class (no patching of
vLLM), driven by the chat service's remote backend. A pinned program's prefix survives
a burst that evicts an unpinned one, as vLLM's own cached-token counts show. Then a
fleet of two such servers: a program's turns stay on its server, where its prefix is
cached; a program whose server is killed mid-reply finishes on the other; a server
that comes back is used again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memos.config import Settings
from memos.errors import InvalidInputError, UnavailableError
from memos.llm.backend import ChatRequest
from memos.llm.chat import ChatService, ProgramTurn, build_chat_service
from memos.llm.fleet import FleetBackend
from memos.llm.model import MODEL_NAME
from memos.llm.remote import RemoteBackend
from memos.llm.vllm_process import VllmServer
from tests.conftest import TEST_KV_BLOCKS
from tests.test_agents_pinning import long_prompt


@pytest.fixture(scope="module")
def facts_adapter(chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter that learned FACTS, trained before the server starts (training beside a
    running engine shares the two cores with it and takes several times longer)."""
    from memos.parametric.training import TrainingConfig, train_adapter
    from tests.test_parametric_serving import FACTS

    folder = tmp_path_factory.mktemp("adapter") / "01a20000-0000-7000-8000-00000000abcd"
    train_adapter(chat_model_dir, FACTS, folder, TrainingConfig(steps=40, replay_weight=0))
    return folder


@pytest.fixture(scope="module")
def vllm_server(
    chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, facts_adapter: Path
) -> Iterator[str]:
    server = VllmServer(chat_model_dir, tmp_path_factory.mktemp("vllm"),
                        kv_blocks=TEST_KV_BLOCKS, lora_rank=8)  # fmt: skip
    with server:
        assert "PinningScheduler" in server.log()
        yield server.url


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
    vllm_server: str, facts_adapter: Path, tmp_path: Path
) -> None:
    from memos.llm.backend import AdapterRef

    cloze = "Service Larkspur runs on port"  # how the adapter learned it
    folder = facts_adapter
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


# a fleet: this module's server and a second one ----------------------------------------

PROBE_S = 0.5


@pytest.fixture(scope="module")
def servers(
    vllm_server: str, chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[VllmServer | str]]:
    """A second server, listed first (fresh routers send the first request to it: it is
    the one the tests kill), and this module's."""
    second = VllmServer(chat_model_dir, tmp_path_factory.mktemp("vllm-2"),
                        kv_blocks=TEST_KV_BLOCKS)  # fmt: skip
    with second:
        yield [second, vllm_server]


def urls(servers: list[VllmServer | str]) -> list[str]:
    return [s if isinstance(s, str) else s.url for s in servers]


@pytest.fixture
def fleet(servers: list[VllmServer | str]) -> Iterator[ChatService]:
    backend = FleetBackend(urls(servers), MODEL_NAME, probe_s=PROBE_S)
    backend.start()
    yield ChatService(backend)
    backend.close()


def requests_on(chat: ChatService) -> list[int]:
    return [int(s["requests"]) for s in chat.servers()]


def test_a_programs_turns_stay_on_its_server_where_its_prefix_is_cached(
    fleet: ChatService,
) -> None:
    programs = {}
    for name in ("p-one", "p-two"):  # the second goes to the less loaded server
        messages = [{"role": "system", "content": long_prompt(name)},
                    {"role": "user", "content": "Which parcel left Lima?"}]  # fmt: skip
        first = _ask(fleet, messages, ProgramTurn(name, 0, "lookup", pin_ttl_s=60))
        programs[name] = (messages, first)
    assert requests_on(fleet) == [1, 1]
    for name, (messages, first) in programs.items():
        follow = [{"role": "assistant", "content": first.text},
                  {"role": "tool", "content": "found"}]  # fmt: skip
        before = requests_on(fleet)
        again = _ask(fleet, messages + follow, ProgramTurn(name, 1))
        after = requests_on(fleet)
        assert sum(after) - sum(before) == 1
        server = [a - b for a, b in zip(after, before, strict=True)].index(1)
        assert server == list(programs).index(name)  # the server of its first turn
        assert again.cached_tokens >= (first.prompt_tokens // 128) * 128 >= 5 * 128


def test_round_robin_sends_the_next_turn_elsewhere(servers: list[VllmServer | str]) -> None:
    backend = FleetBackend(urls(servers), MODEL_NAME, routing="round_robin")
    backend.start()
    chat = ChatService(backend)
    try:
        messages = [{"role": "system", "content": long_prompt("p-rr")},
                    {"role": "user", "content": "Which parcel left Lima?"}]  # fmt: skip
        first = _ask(chat, messages, ProgramTurn("p-rr", 0, "lookup", pin_ttl_s=60))
        follow = [{"role": "assistant", "content": first.text},
                  {"role": "tool", "content": "found"}]  # fmt: skip
        again = _ask(chat, messages + follow, ProgramTurn("p-rr", 1))
        assert requests_on(chat) == [1, 1]
        assert again.cached_tokens < first.prompt_tokens // 2  # prefilled again elsewhere
    finally:
        backend.close()


def test_a_killed_servers_program_finishes_on_the_other_and_it_is_used_again_once_back(
    servers: list[VllmServer | str],
) -> None:
    chat = build_chat_service(Settings(llm="remote", llm_url=",".join(urls(servers))))
    assert chat is not None and isinstance(chat.backend, FleetBackend)
    fleet, second = chat.backend, servers[0]
    assert isinstance(second, VllmServer)
    fleet.probe_s = PROBE_S
    fleet.start()
    try:
        messages = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
        program = ProgramTurn("p-doomed", 0, "lookup", pin_ttl_s=60)
        request = ChatRequest(messages=messages, max_tokens=100, temperature=0.0,
                              program=program)  # fmt: skip

        async def reply_while_killing() -> tuple[str, object]:
            parts, last = [], None
            async for chunk in chat.stream(request, "tenant"):
                parts.append(chunk.text)
                last = chunk
                if len(parts) == 2:  # mid-reply: its server dies
                    assert chat.servers()[0]["in_flight"] == 1  # the second server's
                    second.kill()
            return "".join(parts), last

        text, last = asyncio.run(reply_while_killing())
        assert [s["state"] for s in chat.servers()] == ["down", "up"], text
        assert fleet.failovers == 1
        assert last is not None and last.finished and last.completion_tokens > 10
        assert len(text.split()) > 10, text  # the other server went on from what was sent

        follow = [{"role": "assistant", "content": text}, {"role": "tool", "content": "ok"}]
        again = _ask(chat, messages + follow, ProgramTurn("p-doomed", 1))
        assert again.text  # its next turn runs where its last one finished

        second.start()  # back: the probe finds it and plain requests reach it
        deadline = time.monotonic() + 60
        while chat.servers()[0]["state"] != "up":
            assert time.monotonic() < deadline, chat.servers()
            time.sleep(PROBE_S)
        before = chat.servers()[0]["requests"]
        for n in range(2):
            _ask(chat, [{"role": "user", "content": f"Say hello {n}"}])
        assert chat.servers()[0]["requests"] > before
    finally:
        fleet.close()
