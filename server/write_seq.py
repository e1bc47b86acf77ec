"""Writes answer with the change number they made (``MemOS-Seq``), on PostgreSQL: a
client that passes it back as ``consistency.after`` reads its own writes on any replica.

The header is set only when a request committed a change the feed records (memcube/
changes.py); on SQLite (one process) there is none, and no wait is ever needed."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from memos.memcube.changes import marking_writes

SEQ_HEADER = "MemOS-Seq"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def write_seq_header(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await app(scope, receive, send)
            return
        with marking_writes() as mark:

            async def send_with_seq(message: Message) -> None:
                if message["type"] == "http.response.start" and mark.seq:
                    headers = [*message.get("headers", []),
                               (SEQ_HEADER.lower().encode(), str(mark.seq).encode())]  # fmt: skip
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_with_seq)

    return middleware
