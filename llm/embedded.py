"""The chat backend on the embedded engine: the conversation is templated and tokenized
here, checked against the context size, and streamed from the engine as deltas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from memos.errors import InvalidInputError, UnavailableError

from .backend import ChatChunk, ChatRequest
from .engine import Engine, EngineUnavailableError
from .model import MODEL_NAME
from .pin_hint import PinHint
from .ttl_policy import CacheState


class EmbeddedBackend:
    def __init__(self, engine: Engine, model_name: str = MODEL_NAME) -> None:
        self.engine = engine
        self.model_name = model_name

    @property
    def ready(self) -> bool:
        return self.engine.running

    @property
    def state(self) -> str:
        return self.engine.state

    def start(self) -> None:
        self.engine.start()

    def close(self) -> None:
        self.engine.close()

    def cache_state(self) -> CacheState:
        return self.engine.cache_state()

    def stats(self) -> dict[str, float]:
        return self.engine.kv_stats()

    async def count_tokens(self, messages: list[dict[str, str]]) -> int:
        if not self.ready:
            raise UnavailableError("the language model is still loading; retry in a few seconds")
        text = self.engine.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False
        )
        return len(self.engine.tokenizer.encode(text, add_special_tokens=False))

    def kv_block_size(self) -> int | None:
        return int(self.engine.scheduler.block_size) if self.ready else None

    def prefix_held(self, prefix_id: str) -> dict[str, int]:
        return self.engine.prefix_held(prefix_id)

    def servers(self) -> list[dict[str, object]]:
        return []  # the engine runs in this process

    async def stream(
        self, request: ChatRequest, hint: PinHint | None, priority: int
    ) -> AsyncIterator[ChatChunk]:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind

        if not self.ready:
            raise UnavailableError("the language model is still loading; retry in a few seconds")
        params = SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop or None,
            seed=request.seed,
            output_kind=RequestOutputKind.DELTA,
            extra_args=hint.as_extra_args() if hint else None,
        )
        prompt = self._tokens(request)
        lora = self._lora(request)
        prompt_tokens = completion_tokens = 0
        try:
            async for out in self.engine.stream(
                prompt, params, request_id=f"chat-{uuid.uuid4().hex}", priority=priority,
                lora=lora,
            ):  # fmt: skip
                if out.prompt_token_ids:
                    prompt_tokens = len(out.prompt_token_ids)
                completion = out.outputs[0]
                completion_tokens += len(completion.token_ids)
                if not out.finished:
                    yield ChatChunk(completion.text)
                    continue
                yield ChatChunk(
                    completion.text, True, completion.finish_reason or "stop", prompt_tokens,
                    completion_tokens, out.num_cached_tokens or 0,
                )  # fmt: skip
        except EngineUnavailableError as exc:
            raise UnavailableError(str(exc), retry_after_s=self.engine.retry_after_s) from exc
        except (ValueError, VLLMClientError) as exc:  # vLLM refused this request alone
            raise InvalidInputError(str(exc)) from exc

    def _lora(self, request: ChatRequest) -> Any:
        if request.adapter is None:
            return None
        if self.engine.settings.lora_max_rank == 0:
            raise UnavailableError("this engine serves no adapters (MEMOS_LLM_LORA_RANK is 0)")
        from vllm.lora.request import LoRARequest

        ref = request.adapter
        return LoRARequest(ref.name, ref.id, ref.path)

    def unload_adapter(self, adapter_id: int) -> bool:
        return self.engine.unload_adapter(adapter_id)

    def _tokens(self, request: ChatRequest) -> dict[str, Any]:
        """The templated conversation as token ids, checked against the context size."""
        tokenizer = self.engine.tokenizer
        text = tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer.encode(text, add_special_tokens=False)
        context = self.engine.settings.max_model_len
        if request.max_tokens >= context:
            raise InvalidInputError(
                f"max_tokens must be less than the model's context of {context} tokens, "
                f"got {request.max_tokens}"
            )
        room = context - request.max_tokens
        if len(ids) > room:
            raise InvalidInputError(
                f"the prompt is {len(ids)} tokens; with max_tokens {request.max_tokens}, the "
                f"model's context of {context} tokens leaves room for {room}"
            )
        return {"prompt_token_ids": ids}
