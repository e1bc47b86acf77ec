"""Agent programs driven the way users drive them: over HTTP against a real `memos
serve`, with the host tier off so that device pins decide. The service learns a tool's
duration from the gaps between a program's turns, a duration the client reports wins,
bad values get a 422 naming the field, and what it learned survives a restart."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE, TEST_KV_BLOCKS

COLD_TTL_S = 2.0  # the policy's TTL for a tool it has seen fewer than 3 calls of
TOOL_S = 2.0


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    # a small KV cache, as the suite's own engine has: the suite's memory peaks here
    env.update(MEMOS_DATA_DIR=str(data_dir), MEMOS_MODEL_DIR=str(MODEL_CACHE),
               MEMOS_LLM="embedded", MEMOS_HOST_KV_BLOCKS="0",
               MEMOS_LLM_KV_BLOCKS=str(TEST_KV_BLOCKS))  # fmt: skip
    return env


def _serve(workdir: Path) -> tuple[ServeProcess, httpx.Client]:
    server = ServeProcess(workdir, _env(workdir / "data")).__enter__()
    key = (workdir / "data" / "bootstrap-key").read_text().strip()
    http = httpx.Client(base_url=server.url, timeout=120,
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    server.wait_for_chat()
    return server, http


def _turn(
    http: httpx.Client, program: str, turn: int, tool: str | None,
    headers: dict[str, str] | None = None, **fields: object,
) -> dict:  # fmt: skip
    body = {"messages": [{"role": "user", "content": f"{program} step {turn}"}],
            "max_tokens": 2, "program_id": program, "turn": turn, **fields}  # fmt: skip
    if tool is not None:
        body["next_tool"] = tool
    r = http.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["program"]


def _expect_422(http: httpx.Client, field: str, body: dict, headers: dict | None = None) -> None:
    r = http.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"], r.json()


def test_tool_durations_learned_over_rest_set_the_pin_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    tool, told = f"run_tests_{uuid.uuid4().hex[:6]}", f"deploy_{uuid.uuid4().hex[:6]}"
    server, http = _serve(tmp_path)
    try:
        # Cold: the tool has never run, so its first turns get the policy's default.
        assert _turn(http, "p0", 0, tool)["pin_ttl_s"] == COLD_TTL_S
        for n in range(3):
            program = f"p{n}"
            if n:
                assert _turn(http, program, 0, tool)["pin_ttl_s"] == COLD_TTL_S
            time.sleep(TOOL_S)  # the tool runs; the client never says how long it took
            _turn(http, program, 1, None)
        learned = http.get("/v1/tools").json()["tools"][tool]
        assert learned["calls"] == 3 and TOOL_S <= learned["p50_s"] < TOOL_S + 1.0
        # Warm: the next turn that calls the tool is pinned for about its duration.
        ttl = _turn(http, "p3", 0, tool)["pin_ttl_s"]
        assert ttl != COLD_TTL_S and learned["p50_s"] <= ttl <= 1.2 * learned["p90_s"]

        # A duration the client reports wins over the gap it leaves.
        _turn(http, "q0", 0, told)
        _turn(http, "q0", 1, None, tool_seconds=40.0)
        _turn(http, "q1", 0, told)
        _turn(http, "q1", 1, None, headers={"X-Tool-Seconds": "40"})
        reported = http.get("/v1/tools").json()["tools"][told]
        assert reported["calls"] == 2 and reported["p50_s"] == 40.0

        # Bad values never reach the predictor: a 422 naming the field.
        _turn(http, "r0", 0, told)
        body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
                "program_id": "r0", "turn": 1}  # fmt: skip
        for bad in (-1.0, 86_401.0, 1e308):
            _expect_422(http, "tool_seconds", {**body, "tool_seconds": bad})
        for bad in ("NaN", "inf", "-3", "soon"):
            _expect_422(http, "X-Tool-Seconds", body, {"X-Tool-Seconds": bad})
        assert http.get("/v1/tools").json()["tools"][told]["calls"] == 2
    finally:
        http.close()
        server.stop()  # a clean stop saves what the service learned

    server, http = _serve(tmp_path)
    try:
        tools = http.get("/v1/tools").json()["tools"]
        assert tools[tool]["calls"] == 3 and tools[told]["calls"] == 2
        assert tools[tool]["p50_s"] == pytest.approx(learned["p50_s"], abs=0.5)
        assert _turn(http, "s0", 0, tool)["pin_ttl_s"] != COLD_TTL_S
    finally:
        http.close()
        server.stop()
