"""MemOS: a memory operating system for LLM agents."""

from memos.memcube.filters import MemoryFilter

from .config import Settings
from .core import MemOS, Origin
from .errors import (
    ConflictError,
    InvalidInputError,
    MemOSError,
    NotFoundError,
    TooLargeError,
    UnauthorizedError,
)
from .records import AddResult, Memory, NewMemory, Page, SearchHit, VersionRecord

__all__ = [
    "AddResult",
    "ConflictError",
    "InvalidInputError",
    "MemOS",
    "MemOSError",
    "Memory",
    "MemoryFilter",
    "NewMemory",
    "NotFoundError",
    "Origin",
    "Page",
    "SearchHit",
    "Settings",
    "TooLargeError",
    "UnauthorizedError",
    "VersionRecord",
]
