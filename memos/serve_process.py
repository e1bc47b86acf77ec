"""Run `memos serve` in a child process and wait until it is ready (for tests and benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``with ServeProcess(workdir, env) as server:`` serves at ``server.url``.

    ``env`` is the child's whole environment (default: this process's).
    ``ready_s`` is the time from launch to the first 200 from /readyz: what a
    restart costs a user. The log is kept in ``workdir``.
    """

    def __init__(
        self, workdir: Path, env: dict[str, str] | None = None, timeout_s: float = 300.0
    ) -> None:
        self.workdir = workdir
        self.env = dict(os.environ) if env is None else env
        self.timeout_s = timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.ready_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        memos = str(Path(sys.executable).with_name("memos"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        started = time.perf_counter()
        self._proc = subprocess.Popen(
            [memos, "serve", "--port", str(self.port)],
            cwd=self.workdir, env=self.env, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    self.ready_s = time.perf_counter() - started
                    return self
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"memos serve did not become ready:\n{self.log_path.read_text()}")

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def wait_for_chat(self, timeout_s: float = 300.0) -> None:
        """Until /readyz says the chat model is ready (the engine loads after the API)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = httpx.get(f"{self.url}/readyz", timeout=5).json().get("chat")
            if state == "ready":
                return
            if time.monotonic() > deadline or (self._proc and self._proc.poll() is not None):
                raise RuntimeError(
                    f"the chat model did not start (state {state!r}):\n"
                    f"{self.log_path.read_text()[-4000:]}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=60)

    def kill(self) -> None:
        """``kill -9``: no shutdown hook runs, nothing is flushed or snapshotted."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=60)
