"""The bank's word on a transfer to a principal (`GET /transfers/{id}`): pending, completed, or failed with
a reason. An answer that cannot be had now (no answer, a 5xx after the client's retries) is None: the
confirmation asks again next time."""

from __future__ import annotations

from typing import Any

import httpx

from ops_pipeline.partners.clients import HttpOptions, bank_client
from ops_pipeline.settings import Settings

OPTIONS = HttpOptions(timeout=10.0, retries=2, backoff=0.2, connections=2)


class TransferStatus:
    """The bank's transfer API (`OPS_BANK_URL`, else the sandbox); close after use."""

    def __init__(self, settings: Settings, options: HttpOptions = OPTIONS):
        self.client = bank_client(settings, options)

    def get(self, transfer_id: str) -> dict[str, Any] | None:
        try:
            response = self.client.get(f"/transfers/{transfer_id}")
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def close(self) -> None:
        self.client.close()
