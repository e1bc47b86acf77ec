"""The MemScheduler: memories moved through their lifecycle and between kinds."""

from .policy import SchedulerPolicy
from .worker import MemScheduler, PassReport

__all__ = ["MemScheduler", "PassReport", "SchedulerPolicy"]
