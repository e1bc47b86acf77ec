"""`memos mcp` with the real MCP client, over stdio and over streamable HTTP, in front of a
live `memos serve`: the seven memory tools are listed and called, errors come back as
tool errors with the service's words, and each server sees only its key's namespace."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from memos.serve_process import ServeProcess, free_port
from tests.conftest import MODEL_CACHE

TOOLS = {
    "add_memory",
    "search_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "list_memories",
    "memory_history",
}
MEMOS = str(Path(sys.executable).with_name("memos"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A live service, its bootstrap key, and a key of another namespace."""
    work = tmp_path_factory.mktemp("mcp-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off")
    with ServeProcess(work, env) as server:
        key = (work / "var" / "bootstrap-key").read_text().strip()
        made = subprocess.run(
            [MEMOS, "keys", "create", "--namespace", "other"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        yield server.url, key, made.stdout.strip().splitlines()[-1]


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return result.structured_content


async def _use_tools(client: Client) -> dict[str, Any]:
    listed = await client.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    added = _data(
        await client.call_tool(
            "add_memory", {"text": "My badge number is 48213.", "user_id": "ana"}
        )
    )
    assert added["created"] is True and added["user_id"] == "ana"
    found = _data(await client.call_tool("search_memories", {"query": "badge?", "user_id": "ana"}))
    assert found["results"][0]["id"] == added["id"] and found["results"][0]["score"] > 0
    assert _data(await client.call_tool("get_memory", {"memory_id": added["id"]}))["text"] == (
        "My badge number is 48213."
    )
    changed = _data(
        await client.call_tool(
            "update_memory", {"memory_id": added["id"], "text": "My badge is 50000."}
        )
    )
    assert changed["version"] == 2
    history = _data(await client.call_tool("memory_history", {"memory_id": added["id"]}))
    assert [v["operation"] for v in history["versions"]] == ["create", "update"]
    listed_memories = _data(await client.call_tool("list_memories", {"user_id": "ana"}))
    assert [m["id"] for m in listed_memories["memories"]] == [added["id"]]
    assert _data(await client.call_tool("delete_memory", {"memory_id": added["id"]})) == {
        "deleted": added["id"]
    }
    gone = await client.call_tool("get_memory", {"memory_id": added["id"]})
    assert gone.is_error and "deleted" in gone.content[0].text
    return added


def test_the_tools_over_stdio_see_only_their_keys_namespace(
    service: tuple[str, str, str],
) -> None:
    url, key, other_key = service

    def params(secret: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=MEMOS, args=["mcp", "--url", url], env={"MEMOS_API_KEY": secret}
        )

    async def scenario() -> None:
        async with Client(params(key)) as client:
            await _use_tools(client)
            kept = _data(await client.call_tool("add_memory", {"text": "Only in my namespace."}))
        async with Client(params(other_key)) as other:
            theirs = await other.call_tool("get_memory", {"memory_id": kept["id"]})
            assert theirs.is_error and "not found" in theirs.content[0].text
            assert _data(await other.call_tool("list_memories", {}))["memories"] == []

    asyncio.run(scenario())


def test_the_tools_over_streamable_http_take_each_clients_key(
    service: tuple[str, str, str], tmp_path: Path
) -> None:
    url, key, other_key = service
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MEMOS_API_KEY"}  # no key of its own
    log = (tmp_path / "mcp.log").open("w")
    proc = subprocess.Popen(
        [MEMOS, "mcp", "--url", url, "--transport", "http", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "mcp.log").read_text()
                time.sleep(0.2)

        endpoint = f"http://127.0.0.1:{port}/mcp"

        def keyed(secret: str) -> Client:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"})
            return Client(streamable_http_client(endpoint, http_client=http))

        # no key, or one the service does not accept: nothing is read, listed or written
        for headers in ({}, {"Authorization": "Bearer mk_not-a-key"}, {"Authorization": key}):
            refused = httpx.post(endpoint, headers=headers, json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/list"})  # fmt: skip
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"

        async def scenario() -> None:
            async with keyed(key) as client:
                await _use_tools(client)
                kept = _data(await client.call_tool("add_memory", {"text": "Mine only."}))
            async with keyed(other_key) as other:  # another namespace's key sees its own
                theirs = await other.call_tool("get_memory", {"memory_id": kept["id"]})
                assert theirs.is_error and "not found" in theirs.content[0].text
                assert _data(await other.call_tool("list_memories", {}))["memories"] == []

        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
