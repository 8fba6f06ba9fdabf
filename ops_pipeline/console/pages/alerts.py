"""Alerts: what the outbox sent or holds for ops, with delivery attempts; new ones arrive without a reload
through `/console/alerts/stream` (Server-Sent Events), which every page's badge listens to.

Readable by every console role (ops, finance, analysts): the alerts are about jobs (which analysts read)
and fund-out batches (which finance reads). There is no REST route for them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import cache
from typing import Annotated

import anyio
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from ops_pipeline.console.web import PREFIX, Viewer, page_router, render, run_domain, templates, url
from ops_pipeline.errors import InvalidInput
from ops_pipeline.notify import queries
from ops_pipeline.notify.queries import Alert

router = page_router()
POLL_SECONDS = 1.0
STREAM_SECONDS = 25.0  # the stream ends by itself (the browser reconnects): a shutdown never waits on it
Cursor = Annotated[str, Query(max_length=20)]


def _cursor(name: str, value: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise InvalidInput(f"{name}: {value[:20]!r} is not an alert id")
    return int(value)


@router.get("/alerts")
async def alerts_page(
    request: Request, session: Viewer,
    status: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    before: Cursor = "",
) -> HTMLResponse:
    ws = request.app.state.ws
    cursor = _cursor("before", before)
    page = await run_domain(request, queries.alerts, ws, status or None, kind or None, cursor)
    more = page.next_before
    next_url = url("/alerts", status=status, kind=kind, before=more) if more else None
    # live rows go on top of the first page only: after the newest alert it shows, or (filtered or empty)
    # after the outbox's newest row, so that older alerts the filter left out do not stream in
    last = ""
    if cursor is None:
        unfiltered = page.alerts and not (status or kind)
        last = page.alerts[0].id if unfiltered else await run_domain(request, queries.newest_id, ws)
    return render(request, "alerts/list.html", page=page, kind=kind, chosen=status, kinds=queries.KINDS,
                  statuses=queries.STATUSES, next_url=next_url, last=last)


@cache
def _rows():
    return templates.env.get_template("alerts/rows.html").make_module({"prefix": PREFIX})


def row_html(alert: Alert) -> str:
    """The alert's table row, from the macro the page's table uses."""
    return str(_rows().row(alert, fresh=True))


@router.get("/alerts/stream")
async def stream(request: Request, session: Viewer, after: Cursor = "") -> StreamingResponse:
    """`event: alert` with `{"id", "html"}` for each ops alert after `after` (or the `Last-Event-ID` the
    browser sends when it reconnects; neither: from the newest at connect), polled every second."""
    start = _cursor("Last-Event-ID", request.headers.get("last-event-id", ""))
    start = _cursor("after", after) if start is None else start
    if start is None:
        start = await run_domain(request, queries.newest_id, request.app.state.ws)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(request, start), media_type="text/event-stream", headers=headers)


async def _events(request: Request, after: int) -> AsyncIterator[str]:
    ws = request.app.state.ws
    yield f"retry: 1000\nid: {after}\n\n"  # a reconnect resumes here even when nothing came
    deadline = time.monotonic() + STREAM_SECONDS
    while time.monotonic() < deadline and not await request.is_disconnected():
        found, after = await run_domain(request, queries.alerts_after, ws, after)
        for alert in found:
            data = json.dumps({"id": alert.id, "html": row_html(alert)})
            yield f"id: {alert.id}\nevent: alert\ndata: {data}\n\n"
        await anyio.sleep(POLL_SECONDS)
