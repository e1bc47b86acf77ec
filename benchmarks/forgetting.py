"""The reliability benchmark's checks of issue 30 over a live `memos serve`: what an
erase leaves behind (the erased text anywhere a user could find it), and how long one
namespace's training job waits while another namespace has many queued."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SECRET = "The vault code for Larkspur is 7301-ZETA."
QUESTION = "What is the vault code for Larkspur?"
NEEDLE = "7301"
FACTS = [SECRET, "Larkspur runs on port 7341.", "The Quillon vault opens on Fridays."]
TRAIN = {"steps": 8, "rank": 4, "alpha": 8, "learning_rate": 5e-3, "max_tokens": 24,
         "replay_weight": 0, "batch_size": 2}  # fmt: skip


@dataclass
class ErasureReport:
    checks: int = 0
    leaks: int = 0
    erased: int = 0  # memories the erase named
    retired_adapters: int = 0
    problems: list[str] = field(default_factory=list)


def erase_leaks(base: str, key: str, workdir: Path, env: dict[str, str]) -> ErasureReport:
    """A secret stored, trained into an adapter, fused with another memory, held (as
    the fused memory) in an activation block and the engine's KV, used by a cached
    answer and composed; then erased. Every place a user could read it again is checked:
    a leak is each one that still shows it."""
    report = ErasureReport()
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300)

    def check(where: str, leaked: bool) -> None:
        report.checks += 1
        if leaked:
            report.leaks += 1
            report.problems.append(where)

    with http:
        ids = http.post("/v1/memories/batch", json={"items": [
            {"text": t, "user_id": "ana"} for t in FACTS]}).json()["ids"]  # fmt: skip
        job = http.post("/v1/parametric", json={"name": "vault", "memory_ids": ids,
                                                **TRAIN}).json()  # fmt: skip
        while http.get(f"/v1/jobs/{job['id']}").json()["state"] in ("queued", "running"):
            time.sleep(0.5)
        fused = http.post("/v1/memories/fuse", json={"memory_ids": [ids[0], ids[2]]}).json()
        secret_id = ids[0]
        block = http.post("/v1/activations", json={"user_id": "ana",
                                                    "memory_ids": [fused["id"], ids[1]]}).json()
        ask = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 16,
               "temperature": 0, "memory": {"user_id": "ana"}}  # fmt: skip
        http.post("/v1/chat/completions", json=ask)  # answered, and cached
        http.put("/v1/compositions/vault", json={"memory_ids": [fused["id"], ids[1]]})

        erased = http.delete(f"/v1/memories/{secret_id}", params={"erase": "true"}).json()
        report.erased = len(erased.get("erased", []))
        report.retired_adapters = len(erased.get("retired_adapters", []))

        for mode in ("vector", "hybrid", "graph"):
            hits = http.post("/v1/memories/search", json={"query": QUESTION, "mode": mode,
                                                          "top_k": 50}).json()["results"]
            check(f"search {mode}", any(NEEDLE in (h["text"] or "") for h in hits))
        listed = http.get("/v1/memories", params={"limit": 1000, "state": [
            "generated", "activated", "archived", "merged"]}).json()["items"]  # fmt: skip
        check("list", any(NEEDLE in (m["text"] or "") for m in listed))
        for memory_id in (secret_id, fused["id"], block.get("id", secret_id)):
            history = http.get(f"/v1/memories/{memory_id}/history").json().get("versions", [])
            check(f"history {memory_id}", any(NEEDLE in (v["text"] or "") for v in history))
        got = http.get(f"/v1/activations/{block.get('id')}")
        check("activation", got.status_code == 200 and NEEDLE in got.text)
        lookup = http.post("/v1/cache/lookup", json={"query": QUESTION}).json()
        check("cached answer", lookup.get("hit") is True)
        adapter = http.get("/v1/parametric/vault")
        check("adapter served", adapter.status_code == 200)
        composed = http.get("/v1/compositions/vault").json()
        check("composition", any(m["id"] in (secret_id, fused["id"])
                                 for m in composed.get("members", [])))  # fmt: skip
        answer = http.post("/v1/chat/completions", json=ask).json()
        used = answer.get("memory", {}).get("used", [])
        text = answer["choices"][0]["message"]["content"]
        check("chat answer", NEEDLE in text or secret_id in used or fused["id"] in used)
    namespace = "default"
    exported = subprocess.run(
        [str(Path(sys.executable).with_name("memos")), "export", "--namespace", namespace],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    check("export", NEEDLE in exported)
    return report


@dataclass
class FairnessReport:
    queued_by_other: int
    one_job_s: float  # how long one of those jobs took, queued to finished, alone
    wait_s: float  # from queued to started, for the namespace with one job


def job_wait(base: str, heavy_key: str, light_key: str, queued: int) -> FairnessReport:
    """Namespace A queues ``queued`` jobs, then B one: how long B's waits to start."""
    heavy = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {heavy_key}"},
                         timeout=300)  # fmt: skip
    light = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {light_key}"},
                         timeout=300)  # fmt: skip
    with heavy, light:
        mine = heavy.post("/v1/memories/batch", json={"items": [{"text": t} for t in FACTS]})
        theirs = light.post("/v1/memories/batch", json={"items": [{"text": t} for t in FACTS]})
        jobs = [
            heavy.post("/v1/parametric", json={"name": f"heavy-{n}",
                                               "memory_ids": mine.json()["ids"], **TRAIN}).json()
            for n in range(queued)
        ]  # fmt: skip
        while heavy.get(f"/v1/jobs/{jobs[0]['id']}").json()["state"] == "queued":
            time.sleep(0.1)
        one = light.post("/v1/parametric", json={"name": "light",
                                                 "memory_ids": theirs.json()["ids"],
                                                 **TRAIN}).json()  # fmt: skip
        while light.get(f"/v1/jobs/{one['id']}").json()["state"] == "queued":
            time.sleep(0.1)
        started = light.get(f"/v1/jobs/{one['id']}").json()
        for job in jobs:
            heavy.post(f"/v1/jobs/{job['id']}/cancel")
        while light.get(f"/v1/jobs/{one['id']}").json()["state"] == "running":
            time.sleep(0.2)
        first = heavy.get(f"/v1/jobs/{jobs[0]['id']}").json()
    return FairnessReport(queued, _seconds(first["created_at"], first["finished_at"]),
                          _seconds(started["created_at"], started["started_at"]))


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return round((parse(end) - parse(start)).total_seconds(), 2)
