"""Gift-card sales written straight to the Delta table `voucher_events` (as the distribution job's events
would be), for the commission and invoice tests."""

from datetime import UTC, date, datetime, time

import pyarrow as pa

from ops_pipeline.lake.tables import BANK_STATEMENT_ENTRIES, VOUCHER_EVENTS


def sell(
    ws,
    day: date,
    party_id: str,
    program_id: str,
    faces: list[int],
    prices: list[int] | None = None,
    prefix: str = "S",
    hour: int = 9,
) -> None:
    """One sale per face value (minor units, INR) on `day`, a minute apart from `hour`."""
    prices = prices or faces
    at = [datetime.combine(day, time(hour, n % 60), UTC) for n in range(len(faces))]
    ids = [f"{prefix}-{day:%m%d}-{party_id}-{program_id}-{n}" for n in range(len(faces))]
    ws.lake.append(
        VOUCHER_EVENTS.name,
        pa.table(
            {
                "event_id": ids,
                "voucher_id": [f"V{i}" for i in ids],
                "program_id": [program_id] * len(faces),
                "event": ["issued"] * len(faces),
                "from_status": [None] * len(faces),
                "to_status": ["distributed"] * len(faces),
                "currency": ["INR"] * len(faces),
                "face_value_minor": faces,
                "price_paid_minor": prices,
                "holder_id": [party_id] * len(faces),
                "actor": ["job:distribution"] * len(faces),
                "reason": [None] * len(faces),
                "event_at": at,
                "event_date": [day] * len(faces),
            },
            schema=VOUCHER_EVENTS.schema,
        ),
    )


def credit(ws, statement_id: str, entries: list[tuple[int, str, date]], currency: str = "INR") -> None:
    """Credit lines (amount in minor units, reference, value date) of one statement in `bank_statement_entries`."""
    n = len(entries)
    ws.lake.append(
        BANK_STATEMENT_ENTRIES.name,
        pa.table(
            {
                "statement_id": [statement_id] * n,
                "statement_ref": ["ST-1"] * n,
                "format": ["mt940"] * n,
                "account": ["OUR-ACCOUNT"] * n,
                "sequence": list(range(1, n + 1)),
                "entry_date": [e[2] for e in entries],
                "value_date": [e[2] for e in entries],
                "amount_minor": [e[0] for e in entries],
                "currency": [currency] * n,
                "direction": ["C"] * n,
                "customer_reference": [e[1] for e in entries],
                "bank_reference": [None] * n,
                "entry_reference": [None] * n,
                "details": ["Giftly payment"] * n,
                "raw": [":61:..."] * n,
                "file_name": ["st.mt940"] * n,
                "ingest_id": ["i1"] * n,
                "loaded_at": [datetime(2026, 12, 10, tzinfo=UTC)] * n,
            },
            schema=BANK_STATEMENT_ENTRIES.schema,
        ),
    )
