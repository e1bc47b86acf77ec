"""Strict reading of request input, before Litestar converts it.

Litestar converts bodies and query strings leniently (``"5"`` becomes 5, ``0`` becomes
false, a number becomes a date-time). The API promises a 422 for a value of the wrong
type, so every request is first read the strict way against its handler's own types:
the body as JSON into the ``data`` type, each query value as what its parameter
declares, and unknown query parameters are refused. Nesting is bounded before anything
recurses over it. No string may hold a NUL character: PostgreSQL's text cannot store one,
so it is refused here, on every backend alike.
"""

from __future__ import annotations

import json
import re
import types
from datetime import datetime
from typing import Any, Union, get_args, get_origin

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, SerializationException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg
from litestar.typing import FieldDefinition

from memos.validation import OUT_OF_RANGE, in_utc_range, nesting_depth

MAX_JSON_DEPTH = 32  # the deepest body any route takes is metadata's 16 levels inside a batch
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_NOT_QUERY = frozenset({"data", "request", "state", "headers", "cookies", "query", "scope"})


async def strict_input(request: Request) -> None:
    """Raise a 422 naming the field when the request's body or query does not hold the
    types its handler declares; otherwise let Litestar convert it as usual (from the
    JSON decoded here, which the request keeps: the body is decoded once)."""
    handler = request.route_handler
    _check_query(request, handler)
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    if not (await request.body()).strip():
        raise _invalid("body", "a JSON body is required", "body")
    try:
        value = await request.json()
    except RecursionError:  # msgspec gives up near Python's recursion limit
        raise _too_deep() from None
    except SerializationException as exc:
        raise ClientException(f"the body is not valid JSON: {exc}") from None
    _check_body(value, data.annotation)


def _invalid(key: str, message: str, source: str) -> ValidationException:
    return ValidationException(
        detail=f"{key}: {message}", extra=[{"key": key, "message": message, "source": source}]
    )


def _too_deep() -> ValidationException:
    return _invalid("body", f"JSON nests deeper than {MAX_JSON_DEPTH} levels", "body")


def _check_body(value: Any, annotation: Any) -> None:
    if nesting_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise _too_deep()
    where = _nul_at(value, "")
    if where is not None:
        raise _invalid(where or "body", _NUL_MESSAGE, "body")
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        message, found, where = str(exc).rpartition(" - at `")
        if not found:  # about the body itself, e.g. an unknown top-level field
            message, where = str(exc), ""
        key = where.rstrip("`").removeprefix("$").lstrip(".") or "body"
        raise _invalid(key, message, "body") from None


def _check_query(request: Request, handler: HTTPRouteHandler) -> None:
    fields = _query_fields(handler, set(request.path_params))
    for name, values in request.query_params.dict().items():
        field = fields.get(name)
        if field is None:
            known = ", ".join(sorted(fields)) or "none"
            raise _invalid(name, f"unknown query parameter (this route takes: {known})", "query")
        kind = _scalar_type(field.annotation)
        if len(values) > 1 and get_origin(_without_none(field.annotation)) is not list:
            raise _invalid(name, "given more than once", "query")
        for raw in values:
            _check_query_value(name, raw, kind)


def _query_fields(handler: HTTPRouteHandler, path_params: set[str]) -> dict[str, FieldDefinition]:
    dependencies = set(handler.resolve_dependencies())
    fields: dict[str, FieldDefinition] = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in _NOT_QUERY or name in dependencies or name in path_params:
            continue
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and (kwarg.header or kwarg.cookie):
            continue
        alias = kwarg.query if isinstance(kwarg, ParameterKwarg) and kwarg.query else name
        fields[alias] = field
    return fields


_NUL_MESSAGE = "must not contain a NUL character (\\u0000)"


def _nul_at(value: Any, path: str) -> str | None:
    """Where in a decoded JSON value a string (or an object's key) holds a NUL."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return inner
            found = _nul_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _check_query_value(name: str, raw: str, kind: Any) -> None:
    if "\x00" in raw:
        raise _invalid(name, _NUL_MESSAGE, "query")
    if kind is str:
        return
    if kind is bool:
        ok = raw in ("true", "false")
        expected = "true or false"
    elif kind is int:
        ok = _INTEGER.fullmatch(raw) is not None
        expected = "a whole number in decimal digits"
    elif kind is datetime:
        try:
            moment = msgspec.json.decode(json.dumps(raw), type=datetime, strict=True)
        except msgspec.ValidationError:
            moment = None
        if moment is not None and not in_utc_range(moment):
            raise _invalid(name, f"{raw!r} {OUT_OF_RANGE}", "query")
        ok = moment is not None
        expected = "an RFC 3339 date-time with a time zone (e.g. 2026-03-01T09:00:00Z)"
    else:
        return
    if not ok:
        raise _invalid(name, f"must be {expected}, got {raw!r}", "query")


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _scalar_type(annotation: Any) -> Any:
    """The type of one value of a query parameter: ``int`` for ``int | None`` or
    ``list[int]``, the annotation itself otherwise."""
    annotation = _without_none(annotation)
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation
