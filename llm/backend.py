"""What the chat service needs from a language model backend, and the two it has:
the embedded engine (agents/embedded.py) and a separate ``vllm serve`` (agents/remote.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .pin_hint import PinHint
from .ttl_policy import CacheState


@dataclass(frozen=True)
class AdapterRef:
    """A LoRA adapter a request is served with: vLLM's name and id for it, and its folder."""

    name: str
    id: int
    path: str


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    program: Any = None  # a chat.ProgramTurn when the request belongs to an agent program
    adapter: AdapterRef | None = None  # a parametric memory's adapter to apply
    # the last message is the assistant's reply so far, to be continued (a fleet moves a
    # request this way to another server when its own fails mid-reply)
    continues: bool = False


@dataclass
class ChatChunk:
    """Text produced since the last chunk; the last chunk carries the totals."""

    text: str
    finished: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    program: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None  # whether the semantic cache answered, when asked
    memory: dict[str, Any] | None = None  # the memories a memory-augmented answer used


class ChatBackend(Protocol):
    model_name: str

    @property
    def ready(self) -> bool: ...

    @property
    def state(self) -> str:
        """``ready``, ``loading``, ``restarting`` (after a failure) or ``stopped``."""
        ...

    def start(self) -> None:
        """Load or connect; may take tens of seconds."""

    def close(self) -> None: ...

    def stream(
        self, request: ChatRequest, hint: PinHint | None, priority: int
    ) -> AsyncIterator[ChatChunk]:
        """Raises InvalidInputError for input the model cannot take, UnavailableError when
        the model is not there."""
        ...

    def cache_state(self) -> CacheState:
        """The KV cache's use and what bringing a context back costs (the TTL policy's
        input; ``UNKNOWN_CACHE`` when the backend cannot tell)."""
        ...

    def stats(self) -> dict[str, float]: ...

    async def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """The tokens of ``messages`` as the model's chat template renders them (no
        generation prompt): the prefix every conversation starting with them shares."""
        ...

    def kv_block_size(self) -> int | None:
        """Tokens a KV cache block holds (what a cached prefix is counted in), None when
        the backend cannot tell."""
        ...

    def prefix_held(self, prefix_id: str) -> dict[str, int]:
        """What keeps a shared prefix (``pinned_blocks``, ``host_blocks``); empty when
        the backend cannot tell."""
        ...

    def servers(self) -> list[dict[str, object]]:
        """The model servers behind the backend (URL, state, load); empty when it runs
        in this process."""
        ...
