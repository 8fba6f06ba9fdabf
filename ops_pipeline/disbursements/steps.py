"""The pipeline's steps and their states; each envelope and each batch gets one state row per step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PENDING, PROCESSING, PROCESSED, ERROR = "PENDING", "PROCESSING", "PROCESSED", "ERROR"

# Once per envelope: when it is complete and its schedule date has come.
ENVELOPE_STEPS = ("funds_check", "funds_block")
# Once per batch (one create_disbursements call). In-kind steps (geo resolution, warehouse and agency
# allocation) will be more names here, rows not columns.
BATCH_STEPS = ("fa_resolution", "disburse", "notify")


@dataclass(frozen=True)
class StepState:
    step: str
    status: str
    attempts: int
    latest_error: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None


def initial_rows(key: str, owner_id: str, steps: tuple[str, ...], now: datetime) -> list[dict]:
    return [
        {
            key: owner_id,
            "step": step,
            "status": PENDING,
            "attempts": 0,
            "latest_error": None,
            "lease_until": None,
            "created_at": now,
            "updated_at": now,
            "processed_at": None,
        }
        for step in steps
    ]


def state(row) -> StepState:
    return StepState(
        row.step,
        row.status,
        row.attempts,
        row.latest_error,
        row.lease_until,
        row.created_at,
        row.updated_at,
        row.processed_at,
    )
