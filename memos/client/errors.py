"""The exceptions a client raises: one per kind of problem the API answers, each
carrying the server's problem+json (``status``, ``detail``, ``errors``)."""

from __future__ import annotations

from typing import Any


class MemOSClientError(Exception):
    """Anything a MemOS client raises."""


class MemOSConnectionError(MemOSClientError):
    """The service could not be reached (after the retries)."""


class APIError(MemOSClientError):
    """The service answered with an error; ``detail`` is its explanation."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.problem = problem or {}

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The fields the service named (for a 422)."""
        return list(self.problem.get("errors") or [])

    @property
    def retry_after_s(self) -> float | None:
        value = self.problem.get("retry_after_s")
        return float(value) if isinstance(value, int | float) else None


class BadRequestError(APIError):
    """400: the body was not JSON."""


class AuthenticationError(APIError):
    """401: the key is missing, malformed or revoked."""


class NotFoundError(APIError):
    """404: no such memory (or entry, entity, ...) in the key's namespace."""


class ConflictError(APIError):
    """409: the change conflicts with the stored state."""


class PayloadTooLargeError(APIError):
    """413: the request is over a limit."""


class ValidationError(APIError):
    """422: a field is invalid; ``errors`` names it."""


class RateLimitError(APIError):
    """429: too many requests (retried first, honouring Retry-After)."""


class UnavailableError(APIError):
    """503: the storage refuses writes or the model is loading (retried first)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    503: UnavailableError,
}


def api_error(status: int, body: Any, text: str) -> APIError:
    """The exception for an error answer (problem+json when the server sent it)."""
    problem = body if isinstance(body, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or text or f"HTTP {status}")
    return _BY_STATUS.get(status, APIError)(status, detail, problem)
