"""What a run needs, set up from names: the systems, the readers, the judge, the
tokenizer, and — when a system or reader is this service and no URL is given — a
`memos serve` of its own in a scratch directory, stopped when the run ends."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from memos.config import Settings

from .dataset import Dataset
from .errors import EvalError
from .readers import ChatEndpoint, ChatReader, ExtractiveReader, LLMJudge, Reader, Vocabulary
from .runner import TokenCounter
from .systems import (
    SYSTEMS,
    FullContext,
    Mem0System,
    MemorySystem,
    MemOSSystem,
    NoMemory,
    VectorRag,
)

READERS = ("extractive", "embedded")
# The service the runner starts is a team's deployment: it knows commit hashes as
# entities (a rule any deployment that stores git history adds), so a commit's memory
# links to its hash and a question naming the hash finds it.
SERVICE_CONFIG = """\
[graph.entity_rules]
commit = '(?<![\\w-])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![\\w-])'
"""
JUDGES = ("exact", "llm")


def check_names(system: str, reader: str, judge: str) -> None:
    if system not in SYSTEMS:
        raise EvalError(f"system must be one of {', '.join(SYSTEMS)}; got {system!r}")
    if reader not in READERS and not reader.startswith(("http://", "https://")):
        raise EvalError(f"reader must be extractive, embedded or an http(s) URL; got {reader!r}")
    if judge not in JUDGES:
        raise EvalError(f"judge must be exact or llm; got {judge!r}")


class Harness:
    """``with Harness(settings) as h:`` then ``h.system(name)``, ``h.reader(...)``.

    ``memos_url``/``memos_key``: a running service to evaluate (default: start one).
    ``reader_key``/``reader_model``: for a URL reader (OpenAI-compatible).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        memos_url: str = "",
        memos_key: str = "",
        reader_key: str = "",
        reader_model: str = "",
    ) -> None:
        self.settings = settings
        self._memos_url = memos_url
        self._memos_key = memos_key
        self._reader_key = reader_key
        self._reader_model = reader_model
        self._stack = ExitStack()
        self._counter: TokenCounter | None = None
        self._started: tuple[str, str] | None = None  # the service started here: url, key
        self._served_chat = False
        self._work = Path()

    def __enter__(self) -> Harness:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stack.close()

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            from memos.llm.model import prepare_model

            self._counter = TokenCounter(prepare_model(self.settings.chat_model_dir))
        return self._counter

    # the service -----------------------------------------------------------------

    def _service(self, chat: bool) -> tuple[str, str]:
        """The MemOS service: the one named, else one started here (with the embedded
        model when ``chat``; asked for chat after a start without it, it starts anew)."""
        if self._memos_url:
            return self._memos_url, self._memos_key
        if self._started is not None and (self._served_chat or not chat):
            return self._started
        from memos.serve_process import ServeProcess

        work = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="memos-eval-")))
        config = work / "memos.toml"
        config.write_text(SERVICE_CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
        env.update(
            MEMOS_CONFIG=str(config),
            MEMOS_DATA_DIR=str(work / "data"),
            MEMOS_MODEL_DIR=str(self.settings.model_dir.resolve()),
            MEMOS_LLM="embedded" if chat else "off",
            MEMOS_LLM_MAX_MODEL_LEN=str(min(8192, self.counter.window)),
            MEMOS_HOST_KV_BLOCKS="0",
            VLLM_LOGGING_LEVEL=os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
        )
        try:
            server = self._stack.enter_context(ServeProcess(work, env))
            if chat:
                server.wait_for_chat(timeout_s=600)
        except RuntimeError as exc:
            raise EvalError(f"the service did not start: {exc}") from None
        self._work = work
        key = (work / "data" / "bootstrap-key").read_text().strip()
        self._started = (server.url, key)
        self._served_chat = chat
        return self._started

    def _connect(self, namespace: str) -> Any:
        """A client for ``namespace``: on the service started here, a new key for it;
        on a service named by URL, the key given."""
        from memos.client import MemOSClient

        url, key = self._service(chat=self._served_chat)
        if not self._memos_url:
            key = self._key_for(namespace)
        return self._stack.enter_context(MemOSClient(base_url=url, api_key=key))

    def _key_for(self, namespace: str) -> str:
        from memos.memcube import keys as api_keys
        from memos.memcube.database import Database

        database = Database(Settings(data_dir=self._work / "data").database_url)
        try:
            with database.unit_of_work() as session:
                _, secret = api_keys.create_key(session, namespace, label="eval")
        finally:
            database.dispose()
        return secret

    # systems, readers, judges ----------------------------------------------------

    def system(self, name: str, *, needs_chat: bool = False) -> MemorySystem:
        if name.startswith("memos-"):
            self._service(chat=needs_chat)
            return MemOSSystem(self._connect, name.removeprefix("memos-"))
        if name == "vector-rag":
            from memos.embeddings import load_embedder

            embedder = load_embedder(self.settings.model_dir, self.settings.embedder)
            return VectorRag(embedder.embed)
        if name == "full-context":
            return FullContext(self.counter.text, self.counter.context_budget())
        if name == "no-memory":
            return NoMemory()
        if name == "mem0":
            from memos.embeddings import bundled_model_path

            os.environ.setdefault("MEM0_TELEMETRY", "False")  # no network to send it to
            try:
                import mem0  # noqa: F401
            except ImportError:
                raise EvalError("mem0 is not installed: pip install 'memos[bench]'") from None
            system = Mem0System(bundled_model_path())
            self._stack.callback(system.close)
            return system
        raise EvalError(f"system must be one of {', '.join(SYSTEMS)}; got {name!r}")

    def endpoint(self, reader: str) -> ChatEndpoint:
        if reader == "embedded":
            url, key = self._service(chat=True)
            endpoint = ChatEndpoint(url, key)
        else:
            endpoint = ChatEndpoint(reader, self._reader_key, self._reader_model)
        self._stack.callback(endpoint.close)
        return endpoint

    def reader(self, spec: str, dataset: Dataset) -> Reader:
        if spec == "extractive":
            return ExtractiveReader(Vocabulary.of(dataset))
        return ChatReader(self.endpoint(spec), "embedded" if spec == "embedded" else "url")

    def judge(self, spec: str, reader: str) -> LLMJudge | None:
        """The LLM judge is the reader's model; behind the extractive reader, the
        embedded one."""
        if spec == "exact":
            return None
        return LLMJudge(self.endpoint("embedded" if reader == "extractive" else reader))


def needs_chat(system: str, reader: str, judge: str) -> bool:
    """Whether the service this run starts must serve the embedded model."""
    chat_reader = reader == "embedded" or (judge == "llm" and reader == "extractive")
    return system.startswith("memos-") and chat_reader

