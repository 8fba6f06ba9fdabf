"""Every request body checked once, before any route reads it, whatever the route:

- larger than `MAX_BODY_BYTES` -> 413 (from `Content-Length` before reading, else while reading);
- not empty and not JSON (`Content-Type` missing, `text/plain`, ...) -> 415: every route takes JSON;
- JSON nested deeper than `MAX_DEPTH` -> 400: CPython's json parser raises RecursionError on deep input.

A pure ASGI middleware inside the correlation one, so its errors carry the correlation id.
"""

from __future__ import annotations

import re
from itertools import accumulate

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_pipeline.api.errors import error_response

MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 bulk tickets with long descriptions fit
MAX_DEPTH = 32  # arrays and objects inside each other; job attributes nest 3 deep
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets inside strings do not nest
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class TooLarge(Exception):
    pass


def too_deep(body: bytes) -> bool:
    """Whether arrays and objects nest deeper than MAX_DEPTH in a JSON text (valid or not)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return False
    return max(accumulate(_STEP[b] for b in brackets)) > MAX_DEPTH


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            body = await _read(request, receive)
        except TooLarge:
            await _refuse(request, send, 413, "CONTENT_TOO_LARGE",
                          f"body: larger than {MAX_BODY_BYTES} bytes")
            return
        if body is None:  # the client left
            return
        if body and not is_json(request.headers.get("content-type")):
            shown = request.headers.get("content-type", "none")[:60]
            await _refuse(request, send, 415, "UNSUPPORTED_MEDIA_TYPE",
                          f"Content-Type: {shown!r} is not application/json")
            return
        if too_deep(body):
            await _refuse(request, send, 400, "VALIDATION_ERROR",
                          f"body: arrays and objects nest deeper than {MAX_DEPTH} levels")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read(request: Request, receive: Receive) -> bytes | None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise TooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _refuse(request: Request, send: Send, status: int, code: str, message: str) -> None:
    response = error_response(request, status, code, message)
    await response(request.scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
