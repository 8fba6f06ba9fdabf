"""Every request body checked once, before any route reads it, whatever the route:

- larger than `MAX_BODY_BYTES` (a sponsor account statement to the G2P Bridge: `MAX_UPLOAD_BYTES`) -> 413
  (from `Content-Length` before reading, else while reading);
- not empty and not JSON (`Content-Type` missing, `text/plain`, ...) -> 415: every route takes JSON, but the
  console's, which take urlencoded forms (`console.web.read_form` checks those), and the statement uploads,
  which take multipart/form-data;
- JSON nested deeper than `MAX_DEPTH` -> 400: CPython's json parser raises RecursionError on deep input;
- a NUL character in the path, a query parameter or a JSON string -> 400 naming where: PostgreSQL cannot
  store it in text (psycopg raises ValueError), and no field of ours takes it.

A pure ASGI middleware inside the correlation one, so its errors carry the correlation id.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_pipeline.api.errors import error_response

MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 bulk tickets with long descriptions fit
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # `upload_mt940`: an MT940 of 1,000,000 disbursements is ~112 MB
_BIG_UPLOADS = ("/g2p-bridge/upload_mt940",)
MAX_DEPTH = 32  # arrays and objects inside each other; job attributes nest 3 deep
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets inside strings do not nest
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # \u0000 not itself escaped (\\u0000 is text)


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
        limit = MAX_UPLOAD_BYTES if scope["path"] in _BIG_UPLOADS and _form(request) else MAX_BODY_BYTES
        try:
            body = await _read(request, receive, limit)
        except TooLarge:
            await _refuse(request, send, 413, "CONTENT_TOO_LARGE", f"body: larger than {limit} bytes")
            return
        if body is None:  # the client left
            return
        problem = _problem(request, body)
        if problem is not None:
            await _refuse(request, send, *problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _problem(request: Request, body: bytes) -> tuple[int, str, str] | None:
    """(status, code, message) of the first thing wrong with the request's body, path or query; or None."""
    if body and not is_json(request.headers.get("content-type")) and not _form(request):
        shown = request.headers.get("content-type", "none")[:60]
        return 415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type: {shown!r} is not application/json"
    if too_deep(body):
        return 400, "VALIDATION_ERROR", f"body: arrays and objects nest deeper than {MAX_DEPTH} levels"
    where = nul_at(request, body)
    if where is not None:
        return 400, "VALIDATION_ERROR", f"{where}: contains a NUL character (U+0000), which no field takes"
    return None


UPLOADS = "/api/giftcards/portal-exports/"  # principal portal exports (api.giftcards_portal)


def _form(request: Request) -> bool:
    """The console's urlencoded forms, and the file uploads (`POST /api/statements`, the G2P Bridge's
    `POST /g2p-bridge/upload_mt940`, the portal exports)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        path = request.scope["path"]
        return path in ("/api/statements", "/g2p-bridge/upload_mt940") or path.startswith(UPLOADS)
    return media == "application/x-www-form-urlencoded" and request.scope["path"].startswith("/console/")


def nul_at(request: Request, body: bytes) -> str | None:
    """Where a NUL character is: 'path', a query parameter's name, a JSON field ('tickets[0].userId')."""
    if "\x00" in request.scope["path"]:
        return "path"
    for key, value in request.query_params.multi_items():
        if "\x00" in key + value:
            return key.replace("\x00", "\\u0000")
    # a substring scan first: the regex alone costs ~5 ms on a batch of 1,000 operations
    if b"\\u0000" not in body or not _NUL_ESCAPE.search(body):
        return None
    try:
        return _nul_in(json.loads(body), "") or "body"
    except ValueError:
        return "body"


def _nul_in(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        inner = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        if isinstance(key, str) and "\x00" in key:
            return inner.replace("\x00", "\\u0000")
        found = _nul_in(item, inner)
        if found is not None:
            return found
    return None


async def _read(request: Request, receive: Receive, limit: int) -> bytes | None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _refuse(request: Request, send: Send, status: int, code: str, message: str) -> None:
    response = error_response(request, status, code, message)
    await response(request.scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
