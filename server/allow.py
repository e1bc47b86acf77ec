"""OPTIONS answers list every method its path serves.

Litestar builds a path's OPTIONS handler when the path's first handler is registered
and keeps it when later handlers join the path, so its ``Allow`` header can miss
methods (``/v1/cache`` answered ``DELETE, OPTIONS`` without ``POST``). This middleware
sets ``Allow`` from the app's final table of paths and methods."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def allow_header_fix(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        methods = scope["app"].route_handler_method_map.get(next(iter(handler.paths), ""), {})

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and methods:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(sorted(methods)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_allow)

    return middleware
