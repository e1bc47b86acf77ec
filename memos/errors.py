"""The domain's one error hierarchy; server/ maps each class to an HTTP status once."""

from __future__ import annotations


class MemOSError(Exception):
    """Base of every error the memory core raises on purpose."""

    title = "Memory service error"
    retry_after_s: int | None = None  # when retrying later may succeed: how much later

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(MemOSError):
    title = "Not found"


class InvalidInputError(MemOSError):
    title = "Invalid input"


class ConflictError(MemOSError):
    title = "Conflict"


class InFlightError(ConflictError):
    """The same request is being answered for another caller right now."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class TooLargeError(MemOSError):
    title = "Too large"


class TooManyError(MemOSError):
    """A caller holds all the share of some resource a bound allows it: retry later."""

    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class UnauthorizedError(MemOSError):
    title = "Unauthorized"


class ForbiddenError(MemOSError):
    """The caller's key is valid but does not open what the request touches."""

    title = "Forbidden"


class UnavailableError(MemOSError):
    """A part the request needs is not running (yet): retry later."""

    title = "Service unavailable"

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


STORAGE_RETRY_AFTER_S = 30  # what a refused write tells the caller to wait


class StorageRefusedError(UnavailableError):
    """The database refuses writes (read-only, or out of space); reads still work."""

    def __init__(self, detail: str, retry_after_s: int = STORAGE_RETRY_AFTER_S) -> None:
        super().__init__(detail, retry_after_s)
