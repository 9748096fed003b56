"""Request body size limit: a pure ASGI middleware that answers 413 before reading past the limit.

A declared Content-Length over the limit is refused before any of the body is read. A chunked body (or one
whose length is not declared) is counted as the application reads it; the message that crosses the limit
is never handed on, and the client gets the same 413. Routes under `upload_path_prefix` (spreadsheet
imports) have the larger `max_upload_bytes`.

The 413 does not say `Connection: close`: uvicorn then reads and discards the rest of the body (nothing is
kept in memory) and the client, which usually sends its whole body before it reads, gets the 413. Closing
at once made the client's kernel see a reset instead, now and then (httpx: ReadError).
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from youthlink.config import Settings


class BodyTooLarge(Exception):
    """Raised from `receive` when the body crosses the limit; caught by BodySizeLimit."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_bytes = settings.max_request_bytes
        self.upload_prefix = settings.upload_path_prefix.rstrip("/")
        self.max_upload_bytes = settings.max_upload_bytes

    def limit_for(self, path: str) -> int:
        prefix = self.upload_prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return self.max_upload_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if response_started:  # nothing left to say: the server closes the connection
                raise
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length; the body is counted anyway
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps({"code": "PAYLOAD_TOO_LARGE",
                         "message": f"请求体过大，上限 {limit} 字节 (request body too large)"})
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
