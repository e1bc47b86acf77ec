"""Python clients of the MemOS service: ``MemOSClient`` (blocking) and
``AsyncMemOSClient`` (asyncio), the same verbs over one core, and the ``@memory``
decorator that gives any agent function memory."""

from .asynchronous import AsyncMemOSClient
from .core import RetryPolicy
from .decorator import memory
from .errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    MemOSClientError,
    MemOSConnectionError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    UnavailableError,
    ValidationError,
)
from .models import CachedAnswer, ChatAnswer, Erasure, Memory, Page, SearchResult, Version
from .sync import MemOSClient

__all__ = [
    "APIError",
    "AsyncMemOSClient",
    "AuthenticationError",
    "CachedAnswer",
    "ChatAnswer",
    "ConflictError",
    "Erasure",
    "MemOSClient",
    "MemOSClientError",
    "MemOSConnectionError",
    "Memory",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "RateLimitError",
    "RetryPolicy",
    "SearchResult",
    "UnavailableError",
    "ValidationError",
    "Version",
    "memory",
]
