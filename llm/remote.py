"""The chat backend on a separate ``vllm serve`` (the scale path), over its OpenAI API.

Start the server with the pinning scheduler so that the hints this backend sends act:

    vllm serve MODEL --scheduler-cls memos.llm.scheduler.PinningScheduler \\
        --scheduling-policy priority --enable-prompt-tokens-details

The pin hint goes in ``vllm_xargs`` (it reaches the scheduler as
``SamplingParams.extra_args``) and the program's arrival rank in ``priority``.

Parametric memories are served when the server loads adapters at run time (start it
with ``--enable-lora --max-lora-rank N`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``;
its files must be readable there, at the path this service keeps them): an adapter is
loaded under the name ``memos-<cube id>`` the first time a request needs it, and
unloaded when its memory is deleted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from memos.errors import InvalidInputError, UnavailableError

from .backend import AdapterRef, ChatChunk, ChatRequest
from .pin_hint import PinHint
from .ttl_policy import UNKNOWN_CACHE, CacheState


class RemoteBackend:
    def __init__(self, base_url: str, model_name: str, timeout_s: float = 600) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self._timeout = timeout_s
        self._ready = False
        self._adapters: dict[int, str] = {}  # loaded on the server: adapter id -> its name
        self._adapters_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def state(self) -> str:
        return "ready" if self._ready else "loading"

    def start(self) -> None:
        """Check that the server answers and serves the model."""
        try:
            models = httpx.get(f"{self.base_url}/v1/models", timeout=10).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UnavailableError(f"no vLLM server at {self.base_url}: {exc}") from exc
        served = [m.get("id") for m in models.get("data", [])]
        if self.model_name not in served:
            raise UnavailableError(f"{self.base_url} serves {served}, not {self.model_name!r}")
        self._ready = True

    def close(self) -> None:
        self._ready = False

    def cache_state(self) -> CacheState:
        return UNKNOWN_CACHE  # the TTL policy assumes a full cache and no host tier

    def stats(self) -> dict[str, float]:
        return {}

    async def count_tokens(self, messages: list[dict[str, str]]) -> int:
        body = {"model": self.model_name, "messages": messages, "add_generation_prompt": False}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as client:
            try:
                response = await client.post("/tokenize", json=body)
            except httpx.HTTPError as exc:
                raise UnavailableError(f"the vLLM server at {self.base_url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return int(response.json()["count"])

    def kv_block_size(self) -> int | None:
        return None  # the server's; a block then ends mid-way, which costs a part-block

    def prefix_held(self, prefix_id: str) -> dict[str, int]:
        return {}  # the server's scheduler keeps it; /metrics there shows the totals

    def servers(self) -> list[dict[str, object]]:
        return [{"url": self.base_url, "state": "up" if self._ready else "down"}]

    async def stream(
        self, request: ChatRequest, hint: PinHint | None, priority: int
    ) -> AsyncIterator[ChatChunk]:
        model = self.model_name
        if request.adapter is not None:
            model = await self._load_adapter(request.adapter)
        body: dict[str, Any] = {
            "model": model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
            "priority": priority,
        }
        if request.stop:
            body["stop"] = request.stop
        if request.seed is not None:
            body["seed"] = request.seed
        if request.continues:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if hint is not None:
            body["vllm_xargs"] = hint.as_extra_args()
        finish_reason = None
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout) as client:
            try:
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise _error(response)
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        event = json.loads(line[len("data: ") :])
                        for choice in event.get("choices") or []:
                            finish_reason = choice.get("finish_reason") or finish_reason
                            text = (choice.get("delta") or {}).get("content") or ""
                            if text:
                                yield ChatChunk(text)
                        usage = event.get("usage")
                        if usage:
                            details = usage.get("prompt_tokens_details") or {}
                            yield ChatChunk(
                                "", True, finish_reason or "stop", usage["prompt_tokens"],
                                usage["completion_tokens"], details.get("cached_tokens") or 0,
                            )  # fmt: skip
            except httpx.HTTPError as exc:
                raise UnavailableError(f"the vLLM server at {self.base_url} failed: {exc}") from exc


    async def _load_adapter(self, adapter: AdapterRef) -> str:
        """The served name of ``adapter``, loading it on the server the first time."""
        with self._adapters_lock:
            name = self._adapters.get(adapter.id)
        if name is not None:
            return name
        # The cube's id names it: unique for good, so a name the server already holds
        # (loaded before this process started) is these same files.
        name = f"memos-{Path(adapter.path).name}"
        body = {"lora_name": name, "lora_path": adapter.path}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=120) as client:
            try:
                response = await client.post("/v1/load_lora_adapter", json=body)
            except httpx.HTTPError as exc:
                raise UnavailableError(f"the vLLM server at {self.base_url} failed: {exc}") from exc
        if response.status_code in (404, 405) and not _is_vllm_error(response):
            raise UnavailableError(
                f"the vLLM server at {self.base_url} does not load adapters at run time: start "
                "it with --enable-lora --max-lora-rank N and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
            )
        if response.status_code >= 400 and "already" not in response.text:
            raise UnavailableError(
                f"the vLLM server at {self.base_url} could not load adapter {adapter.name!r}: "
                f"{_detail(response)}"
            )
        with self._adapters_lock:
            self._adapters[adapter.id] = name
        return name

    def unload_adapter(self, adapter_id: int) -> bool:
        """Unload an adapter this backend loaded; False when it had loaded none."""
        with self._adapters_lock:
            name = self._adapters.pop(adapter_id, None)
        if name is None:
            return False
        try:
            response = httpx.post(f"{self.base_url}/v1/unload_lora_adapter",
                                  json={"lora_name": name}, timeout=60)  # fmt: skip
        except httpx.HTTPError:
            return False  # the server is gone, and the adapter with it
        return response.status_code < 400


def _detail(response: httpx.Response) -> str:
    try:
        found = response.json()
    except ValueError:
        return response.text[:500]
    error = found.get("error") if isinstance(found, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or response.text[:500])


def _is_vllm_error(response: httpx.Response) -> bool:
    """An error vLLM's handlers wrote (``{"error": ...}``), not a route that is absent."""
    try:
        found = response.json()
    except ValueError:
        return False
    return isinstance(found, dict) and "error" in found


def _error(response: httpx.Response) -> Exception:
    detail = _detail(response)
    if response.status_code in (400, 422):
        return InvalidInputError(f"the model rejected the request: {detail}")
    return UnavailableError(f"the vLLM server answered {response.status_code}: {detail}")
