"""The dispatcher: delivers due outbox rows, retries with backoff, records every attempt.

One dispatcher at a time (a writer lock). Delivery is at least once: a crash after a send and before
its record sends it again, so receivers dedupe on the delivery id (`X-Ops-Delivery`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from ops_pipeline.db.schema import notification_attempts, outbox
from ops_pipeline.notify.channels import Mailer, Webhook
from ops_pipeline.notify.outbox import DEAD, PENDING, SENT, UNSENT
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=30)  # doubles after each failed attempt


@dataclass
class DispatchResult:
    counts: dict[str, int] = field(default_factory=lambda: {SENT: 0, "retrying": 0, DEAD: 0, UNSENT: 0})

    @property
    def handled(self) -> int:
        return sum(self.counts.values())


def dispatch(ws: Workspace, *, limit: int = 1000, now: datetime | None = None) -> DispatchResult:
    """Deliver up to `limit` due rows, oldest first."""
    result = DispatchResult()
    with ws.lock("notify-dispatch"):
        now = now or datetime.now(UTC)
        with ws.engine.connect() as conn:
            due = conn.execute(
                select(outbox)
                .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        channels = _Channels(ws)
        try:
            for row in due:
                result.counts[_deliver(ws, channels, row, now)] += 1
        finally:
            channels.close()
    return result


class _Channels:
    """The configured channels, opened on first use."""

    def __init__(self, ws: Workspace):
        self.settings, self._open = ws.settings, {}

    def get(self, name: str) -> Mailer | Webhook | None:
        configured = {"email": self.settings.smtp_url, "webhook": self.settings.webhook_url}[name]
        if not configured:
            return None
        if name not in self._open:
            self._open[name] = (Mailer if name == "email" else Webhook)(self.settings)
        return self._open[name]

    def close(self) -> None:
        for channel in self._open.values():
            channel.close()


def _deliver(ws: Workspace, channels: _Channels, row, now: datetime) -> str:
    channel = channels.get(row.channel)
    if channel is None:
        setting = "OPS_SMTP_URL" if row.channel == "email" else "OPS_WEBHOOK_URL"
        _finish(ws, row.id, status=UNSENT, last_error=f"{setting} unset: recorded, not sent")
        return UNSENT
    started = time.perf_counter()
    try:
        if row.channel == "email":
            detail = channel.send(row.recipient, row.subject, row.payload, row.id)
        else:
            detail = channel.send(row.event, row.payload, row.id, row.created_at.isoformat())
        ok = True
    except Exception as exc:  # any delivery failure is recorded and retried
        detail, ok = f"{type(exc).__name__}: {exc}"[:1000], False
    attempt = dict(
        outbox_id=row.id,
        at=datetime.now(UTC),
        channel=row.channel,
        target=channel.target,
        ok=ok,
        detail=detail,
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    attempts = row.attempts + 1
    if ok:
        status, values = SENT, dict(sent_at=attempt["at"], last_error=None)
    elif attempts >= MAX_ATTEMPTS:
        status, values = DEAD, dict(last_error=detail)
    else:
        retry_at = now + FIRST_RETRY * 2 ** (attempts - 1)
        status, values = PENDING, dict(last_error=detail, next_attempt_at=retry_at)
    _finish(ws, row.id, status=status, attempts=attempts, attempt=attempt, **values)
    metrics.OUTBOX_DELIVERIES.labels(row.channel, "sent" if ok else "failed").inc()
    return status if status != PENDING else "retrying"


def _finish(ws: Workspace, outbox_id: int, attempt: dict | None = None, **values) -> None:
    with ws.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))
        if attempt:
            conn.execute(insert(notification_attempts).values(**attempt))
