"""Every error leaves the API as RFC 9457 problem+json, mapped here and nowhere else."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from memos.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    MemOSError,
    NotFoundError,
    TooLargeError,
    TooManyError,
    UnauthorizedError,
    UnavailableError,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[MemOSError], int] = {
    NotFoundError: 404,
    InvalidInputError: 422,
    ConflictError: 409,
    TooLargeError: 413,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    TooManyError: 429,
    UnavailableError: 503,
}


class FieldError(msgspec.Struct):
    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET


_MEANING = {
    400: "The body is not JSON",
    401: "Missing, malformed, unknown or revoked API key",
    403: "The key does not open a namespace the request names",
    404: "No such resource in the key's namespace",
    409: "Conflicts with the resource's state",
    413: "Body, text or batch larger than the server accepts",
    422: "A field is invalid; `detail` and `errors` name it",
    429: "A bound on the caller's share is reached; `detail` names it; see Retry-After",
    503: "A part the request needs is not available now; see Retry-After",
}
# What any route that needs a key may answer: no or a bad key, a body it cannot read, and
# storage or a model that is not there at the moment.
TENANT_ROUTE_CODES = (400, 401, 413, 422, 503)


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """The problem responses a route documents: those every keyed route may give, and
    ``codes``."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_MEANING[code],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for code in sorted({*TENANT_ROUTE_CODES, *codes})
    }


def problem(
    request: Request,
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: MemOSError) -> int:
    return next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)


def on_domain_error(request: Request, exc: MemOSError) -> Response[dict[str, Any]]:
    status = status_of(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif exc.retry_after_s is not None:
        headers = {"Retry-After": str(exc.retry_after_s)}
    return problem(request, status, exc.detail, headers=headers)


def on_http_error(request: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ValidationException):
        errors = [e for e in (exc.extra or []) if isinstance(e, dict)]
        detail = "; ".join(_describe(e) for e in errors) or exc.detail
        return problem(request, 422, detail, errors=errors)
    status = exc.status_code
    detail = exc.detail or HTTPStatus(status).phrase
    if status == 413:
        detail = "request body is larger than the server accepts"
    return problem(request, status, detail, headers=exc.headers)


def on_unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "internal error; the request changed nothing it could not finish")


def _describe(error: dict[str, Any]) -> str:
    key = error.get("key")
    message = str(error.get("message", "invalid value"))
    return f"{key}: {message}" if key and not message.startswith(f"{key}:") else message


HANDLERS = {
    MemOSError: on_domain_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}

__all__ = ["HANDLERS", "PROBLEM_JSON", "MediaType", "Problem", "problem", "problems", "status_of"]
