"""One typed settings object, read from the environment."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

N = TypeVar("N", int, float)


def _env_number(name: str, default: N) -> N:
    """The variable parsed as the default's type (int or float), or the default when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    kind = type(default)
    try:
        return kind(raw)
    except ValueError as exc:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {raw!r}") from exc


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false (1 or 0), got {raw!r}")


def _host_kv_blocks(raw: str) -> int | Literal["auto"]:
    if raw.strip().lower() in ("", "auto"):
        return "auto"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f'MEMOS_HOST_KV_BLOCKS must be "auto" or a whole number, got {raw!r}'
        ) from None


# Candidates HNSW keeps while searching: recall@10 ~0.995 on 100k MiniLM vectors
# (100 gives ~0.989 and saves ~0.5 ms a query).
DEFAULT_SEARCH_EF = 200
MAX_TOP_K = 1_000


LORA_RANKS = (0, 8, 16, 32, 64)  # 0: no adapters; else vLLM's max_lora_rank
# The layers an adapter may change. The engine wraps only those it is told to serve
# (vLLM's lora_target_modules): each wrapped layer costs every step of an adapted
# request, and the packed q/k/v layer costs three (docs/design.md, parametric memory).
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_LORA_MODULES = ("o_proj",)


@dataclass(frozen=True)
class Settings:
    """Where data lives and the limits the service enforces.

    Every field has an embedded default so that the service runs on one machine
    with no configuration: SQLite and the index snapshots under ``data_dir``.
    """

    data_dir: Path = field(default_factory=lambda: Path("var"))
    database_url: str = ""
    model_dir_override: Path | None = None
    embedder: str = "auto"  # auto | onnx | torch
    max_text_chars: int = 32_768
    max_batch_items: int = 1_000
    max_top_k: int = MAX_TOP_K
    search_ef: int = DEFAULT_SEARCH_EF
    search_mode: str = "hnsw"  # hnsw | exact (brute force over a dense copy: recall 1.0)
    max_request_bytes: int = 16 * 1024 * 1024
    snapshot_interval_s: int = 60
    maintenance_interval_s: int = 30
    purge_after_s: int = 0
    llm: str = "auto"  # auto (embedded when vLLM is installed) | embedded | remote | off
    llm_url: str = ""  # remote: the base URL of a `vllm serve`, or of several, comma-separated
    # remote fleet: where an agent program's turns go (back to the server of its previous
    # turn, or round robin) and how many requests a server may run before its programs
    # go elsewhere
    llm_routing: str = "affinity"
    llm_max_in_flight: int = 8
    llm_model: str = "SmolLM2-135M-Instruct"  # remote: the model name it serves
    llm_kv_blocks: int = 0  # 0: the KV cache vLLM sizes itself (VLLM_CPU_KVCACHE_SPACE)
    llm_max_model_len: int = 2048  # the embedded model's context, in tokens
    # vLLM as shipped, for baselines: no prefix cache, or no pinning scheduler
    llm_prefix_caching: bool = True
    llm_pinning: bool = True
    llm_lora_rank: int = 0  # serve parametric memories' adapters up to this rank; 0: none
    llm_lora_modules: tuple[str, ...] = DEFAULT_LORA_MODULES  # the layers adapters change
    pin_cap: float = 0.5  # share of the KV cache program pins may hold
    activation_cap: float = 0.25  # share activation memories' pinned prefixes may hold
    # host-memory tier under the pins, in KV blocks; 0: none; "auto": up to a quarter of
    # the memory free when the engine starts
    host_kv_blocks: int | Literal["auto"] = "auto"
    config_path: Path | None = None  # a TOML file; its [cache] table is the cache policy
    metrics_token: str = ""  # when set, /metrics asks for it as a bearer token
    admin_key: str = ""  # when set, opens any namespace as a migration's target
    # replicas on PostgreSQL (memos/replication.py): how often a replica polls the change
    # feed besides being woken by NOTIFY (or instead, without replica_listen), and how
    # long the feed keeps a change (a replica cut off for longer loads everything again)
    replica_poll_s: float = 1.0
    replica_listen: bool = True
    change_retention_s: int = 3_600
    # fair shares of background work: training jobs a namespace may have queued or
    # running at once, the most tokens one job may train on (steps x batch_size x
    # max_tokens), and how soon a namespace may start another scheduler pass over REST
    jobs_per_namespace: int = 8
    max_job_tokens: int = 8_000_000
    scheduler_run_min_interval_s: float = 1.0
    # replicas: a training job's lease (renewed by its holder every third of it; another
    # replica takes over a job whose lease lapsed)
    job_lease_s: float = 30.0

    def __post_init__(self) -> None:
        for name, low in (("jobs_per_namespace", 1), ("max_job_tokens", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"MEMOS_{name.upper()} must be a whole number of at least {low}")
        if not 1 <= self.job_lease_s <= 3_600:
            raise ValueError("MEMOS_JOB_LEASE_S must be from 1 to 3600 seconds")
        if not 0 <= self.scheduler_run_min_interval_s <= 3_600:
            raise ValueError("MEMOS_SCHEDULER_RUN_MIN_INTERVAL_S must be from 0 to 3600 seconds")
        if self.search_ef < 10:
            raise ValueError(f"MEMOS_SEARCH_EF must be at least 10, got {self.search_ef}")
        if self.search_mode not in ("hnsw", "exact"):
            raise ValueError(f"MEMOS_SEARCH_MODE must be hnsw or exact, got {self.search_mode!r}")
        if self.llm not in ("auto", "embedded", "remote", "off"):
            raise ValueError(f"MEMOS_LLM must be auto, embedded, remote or off, got {self.llm!r}")
        if self.llm == "remote" and not self.llm_url:
            raise ValueError("MEMOS_LLM=remote needs MEMOS_LLM_URL (a `vllm serve` base URL)")
        for url in self.llm_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"MEMOS_LLM_URL: {url!r} is not an http:// or https:// URL")
        if self.llm_routing not in ("affinity", "round_robin"):
            raise ValueError(
                f"MEMOS_LLM_ROUTING must be affinity or round_robin, got {self.llm_routing!r}"
            )
        if not 1 <= self.llm_max_in_flight <= 1024:
            raise ValueError(
                f"MEMOS_LLM_MAX_IN_FLIGHT must be from 1 to 1024, got {self.llm_max_in_flight}"
            )
        if not 256 <= self.llm_max_model_len <= 8192:
            raise ValueError(
                "MEMOS_LLM_MAX_MODEL_LEN must be from 256 to 8192 (the model's context), "
                f"got {self.llm_max_model_len}"
            )
        if self.llm_lora_rank not in LORA_RANKS:
            raise ValueError(
                f"MEMOS_LLM_LORA_RANK must be one of {', '.join(map(str, LORA_RANKS))}, "
                f"got {self.llm_lora_rank}"
            )
        if not self.llm_lora_modules or not set(self.llm_lora_modules) <= set(LORA_MODULES):
            raise ValueError(
                f"MEMOS_LLM_LORA_MODULES must be a comma-separated list among "
                f"{', '.join(LORA_MODULES)}, got {','.join(self.llm_lora_modules)!r}"
            )
        if not 0 <= self.pin_cap <= 0.95:
            raise ValueError(f"MEMOS_PIN_CAP must be between 0 and 0.95, got {self.pin_cap}")
        if not 0 <= self.activation_cap <= 0.95 - self.pin_cap:
            raise ValueError(
                "MEMOS_ACTIVATION_CAP must be between 0 and 0.95 less MEMOS_PIN_CAP, "
                f"got {self.activation_cap}"
            )
        blocks = self.host_kv_blocks
        if blocks != "auto" and (isinstance(blocks, bool) or not isinstance(blocks, int)
                                 or blocks < 0):  # fmt: skip
            raise ValueError(f'MEMOS_HOST_KV_BLOCKS must be "auto" or 0 or more, got {blocks!r}')
        if not 0.01 <= self.replica_poll_s <= 60:
            raise ValueError(
                f"MEMOS_REPLICA_POLL_S must be from 0.01 to 60 seconds, got {self.replica_poll_s}"
            )
        if self.change_retention_s < 60:
            raise ValueError(
                f"MEMOS_CHANGE_RETENTION_S must be at least 60, got {self.change_retention_s}"
            )
        if not self.database_url:
            sqlite_path = (self.data_dir / "memos.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{sqlite_path}")

    @property
    def llm_urls(self) -> list[str]:
        """The `vllm serve` servers MEMOS_LLM_URL names (a fleet when more than one)."""
        return [url.strip().rstrip("/") for url in self.llm_url.split(",") if url.strip()]

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def model_dir(self) -> Path:
        """Where the exported embedding model is kept (one export serves many data dirs)."""
        return self.model_dir_override or self.data_dir / "models"

    @property
    def chat_model_dir(self) -> Path:
        return self.model_dir / "SmolLM2-135M-Instruct"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_dir=Path(os.environ.get("MEMOS_DATA_DIR", "var")),
            database_url=os.environ.get("MEMOS_DATABASE_URL", ""),
            model_dir_override=Path(os.environ["MEMOS_MODEL_DIR"])
            if os.environ.get("MEMOS_MODEL_DIR")
            else None,
            embedder=os.environ.get("MEMOS_EMBEDDER", "auto"),
            max_text_chars=_env_number("MEMOS_MAX_TEXT_CHARS", 32_768),
            max_batch_items=_env_number("MEMOS_MAX_BATCH_ITEMS", 1_000),
            max_request_bytes=_env_number("MEMOS_MAX_REQUEST_BYTES", 16 * 1024 * 1024),
            search_ef=_env_number("MEMOS_SEARCH_EF", DEFAULT_SEARCH_EF),
            search_mode=os.environ.get("MEMOS_SEARCH_MODE", "hnsw"),
            snapshot_interval_s=_env_number("MEMOS_SNAPSHOT_INTERVAL_S", 60),
            maintenance_interval_s=_env_number("MEMOS_MAINTENANCE_INTERVAL_S", 30),
            purge_after_s=_env_number("MEMOS_PURGE_AFTER_S", 0),
            llm=os.environ.get("MEMOS_LLM", "auto"),
            llm_url=os.environ.get("MEMOS_LLM_URL", ""),
            llm_routing=os.environ.get("MEMOS_LLM_ROUTING", "affinity"),
            llm_max_in_flight=_env_number("MEMOS_LLM_MAX_IN_FLIGHT", 8),
            llm_model=os.environ.get("MEMOS_LLM_MODEL", "SmolLM2-135M-Instruct"),
            llm_kv_blocks=_env_number("MEMOS_LLM_KV_BLOCKS", 0),
            llm_max_model_len=_env_number("MEMOS_LLM_MAX_MODEL_LEN", 2048),
            llm_prefix_caching=_env_flag("MEMOS_LLM_PREFIX_CACHING", True),
            llm_pinning=_env_flag("MEMOS_LLM_PINNING", True),
            llm_lora_rank=_env_number("MEMOS_LLM_LORA_RANK", 0),
            llm_lora_modules=tuple(
                m.strip()
                for m in os.environ.get("MEMOS_LLM_LORA_MODULES", ",".join(DEFAULT_LORA_MODULES))
                .split(",")
                if m.strip()
            ),
            pin_cap=_env_number("MEMOS_PIN_CAP", 0.5),
            activation_cap=_env_number("MEMOS_ACTIVATION_CAP", 0.25),
            host_kv_blocks=_host_kv_blocks(os.environ.get("MEMOS_HOST_KV_BLOCKS", "auto")),
            config_path=Path(config) if (config := os.environ.get("MEMOS_CONFIG")) else None,
            metrics_token=os.environ.get("MEMOS_METRICS_TOKEN", ""),
            admin_key=os.environ.get("MEMOS_ADMIN_KEY", ""),
            replica_poll_s=_env_number("MEMOS_REPLICA_POLL_S", 1.0),
            replica_listen=_env_flag("MEMOS_REPLICA_LISTEN", True),
            change_retention_s=_env_number("MEMOS_CHANGE_RETENTION_S", 3_600),
            jobs_per_namespace=_env_number("MEMOS_JOBS_PER_NAMESPACE", 8),
            max_job_tokens=_env_number("MEMOS_MAX_JOB_TOKENS", 8_000_000),
            scheduler_run_min_interval_s=_env_number("MEMOS_SCHEDULER_RUN_MIN_INTERVAL_S", 1.0),
            job_lease_s=_env_number("MEMOS_JOB_LEASE_S", 30.0),
        )


def config_table(path: Path, name: str, error: type[Exception] = ValueError) -> dict[str, Any]:
    """The ``[name]`` table of the TOML config file at ``path`` (empty when it has none);
    a missing or malformed file raises ``error``."""
    try:
        with path.open("rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise error(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"config file {path} is not valid TOML: {exc}") from None
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise error(f"config file {path}: {name} must be a table ([{name}])")
    return table
