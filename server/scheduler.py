"""/v1/scheduler: run a MemScheduler pass over the caller's namespace now, and see the
rules and the caller's last pass (service-wide counters are on /metrics)."""

from __future__ import annotations

import msgspec
from litestar import get, post

from memos.kernel import Kernel

from .auth import Tenant, TenantController
from .problems import problems


class PassOut(msgspec.Struct):
    moved: dict[str, int]  # per rule that ran: memories it moved
    failed: dict[str, str]  # per rule that failed: why (the others still ran)


class SchedulerOut(msgspec.Struct):
    interval_s: float
    rules: list[str]
    # the caller's own: the last pass its namespace asked for (service-wide counters and
    # errors are /metrics', not a tenant's)
    last_pass: PassOut | None


class SchedulerController(TenantController):
    path = "/v1/scheduler"
    tags = ["scheduler"]

    @post("/run", status_code=200, summary="Run the rules now", responses=problems(429))
    async def run(self, tenant: Tenant, kernel: Kernel) -> PassOut:
        """One pass of every configured rule over the caller's namespace (the service-wide
        upkeep, such as purges and snapshots, keeps its own schedule). A pass the
        namespace asked for that is still running answers this call too; a namespace may
        start one every ``MEMOS_SCHEDULER_RUN_MIN_INTERVAL_S`` (1 s; 429 sooner)."""
        report = await kernel.scheduler.run_asked(tenant.namespace)
        return PassOut(report.moved, report.failed)

    @get("/", summary="The scheduler's rules and the caller's last pass", responses=problems())
    async def status(self, tenant: Tenant, kernel: Kernel) -> SchedulerOut:
        scheduler = kernel.scheduler
        last = scheduler.last_asked.get(tenant.namespace)
        return SchedulerOut(
            scheduler.policy.interval_s, [r.name for r in scheduler.rules],
            PassOut(last.moved, last.failed) if last is not None else None,
        )  # fmt: skip
