"""Delivery channels: email over SMTP (`OPS_SMTP_URL`) and JSON webhooks over HTTP (`OPS_WEBHOOK_URL`).

`OPS_SMTP_URL` is `smtp://[user:password@]host[:port][?starttls=true]` or `smtps://...` (TLS from the
start). Webhooks carry `X-Ops-Event`, `X-Ops-Delivery` (the outbox id, for the receiver's dedupe) and,
with `OPS_WEBHOOK_SECRET`, `X-Ops-Signature: sha256=<HMAC of the body>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from ops_pipeline.errors import InvalidInput
from ops_pipeline.observability import tracing
from ops_pipeline.settings import Settings

TIMEOUT = 10.0


class Mailer:
    """One SMTP session for a dispatch round, opened on the first mail."""

    def __init__(self, settings: Settings):
        url = urlsplit(settings.smtp_url or "")
        if url.scheme not in ("smtp", "smtps") or not url.hostname:
            raise InvalidInput(f"OPS_SMTP_URL: {settings.smtp_url!r} is not smtp://host:port or smtps://...")
        self.url, self.sender = url, settings.smtp_from
        self.starttls = parse_qs(url.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self._session: smtplib.SMTP | None = None

    @property
    def target(self) -> str:
        return f"{self.url.hostname}:{self.url.port or 25}"

    def _open(self) -> smtplib.SMTP:
        if self._session is None:
            kind = smtplib.SMTP_SSL if self.url.scheme == "smtps" else smtplib.SMTP
            session = kind(
                self.url.hostname, self.url.port or (465 if kind is smtplib.SMTP_SSL else 25), timeout=TIMEOUT
            )
            if self.starttls:
                session.starttls()
            if self.url.username:
                session.login(unquote(self.url.username), unquote(self.url.password or ""))
            self._session = session
        return self._session

    def send(self, recipient: str, subject: str, payload: dict[str, Any], outbox_id: int) -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, recipient, subject
        message["X-Ops-Delivery"] = str(outbox_id)
        message.set_content("\n".join([subject, "", *(f"{k}: {v}" for k, v in payload.items())]) + "\n")
        try:
            self._open().send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise
        return f"250 accepted by {self.target}"

    def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._session.quit()
            self._session = None


class Webhook:
    def __init__(self, settings: Settings):
        self.url, self.secret = settings.webhook_url, settings.webhook_secret
        # No URL path on its spans: a webhook's path can be its secret.
        transport = tracing.traced_transport(httpx.HTTPTransport(), "webhook", path=False)
        self.client = httpx.Client(timeout=TIMEOUT, headers={"User-Agent": "ops-pipeline"},
                                   transport=transport)

    @property
    def target(self) -> str:
        return self.url or ""

    def send(self, event: str, payload: dict[str, Any], outbox_id: int, created_at: str) -> str:
        body = json.dumps(
            {"id": outbox_id, "event": event, "createdAt": created_at, "data": payload}, separators=(",", ":")
        ).encode()
        headers = {"Content-Type": "application/json", "X-Ops-Event": event, "X-Ops-Delivery": str(outbox_id)}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Ops-Signature"] = f"sha256={digest}"
        response = self.client.post(self.url, content=body, headers=headers)
        if response.status_code >= 300:
            raise httpx.HTTPStatusError(
                f"HTTP {response.status_code}", request=response.request, response=response
            )
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self.client.close()
