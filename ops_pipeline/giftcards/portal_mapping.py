"""How a principal's portal export reads: one mapping per principal (a versioned, audited gift-card record,
`records.Kind`): the file format (csv | xlsx), the column holding each field, the portal's status values
mapped to ours, the date format and the decimal separator of amounts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import Connection

from ops_pipeline.db.schema import gc_portal_mappings
from ops_pipeline.giftcards.kinds import PRINCIPALS
from ops_pipeline.giftcards.model import VOUCHER_STATUSES
from ops_pipeline.giftcards.records import Kind, require
from ops_pipeline.jobqueue.jobtypes.fields import Currency, Id, Strict

Column = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DateFormat = Annotated[str, StringConstraints(pattern=r"%", min_length=2, max_length=40)]


class PortalColumns(Strict):
    """The export's column (header) for each field; `redeemed_at` may be absent from the file."""

    voucher_id: Column
    face_value: Column
    status: Column
    expiry: Column
    redeemed_at: Column | None = None


class PortalMapping(Strict):
    """One principal's export format. `statuses` maps the portal's values (compared case-insensitively) to
    ours; our own status names are understood without mapping. `date_format` is strftime-style."""

    principal_id: Id
    format: Literal["csv", "xlsx"] = "csv"
    columns: PortalColumns
    statuses: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)],
                   Literal[VOUCHER_STATUSES]] = Field(default_factory=dict, max_length=100)
    date_format: DateFormat = "%Y-%m-%d"
    decimal_separator: Literal[".", ","] = "."
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","
    currency: Currency = "INR"
    sheet: Column | None = Field(None, description="XLSX: the sheet to read (default: the first)")

    @field_validator("statuses")
    @classmethod
    def _distinct(cls, statuses: dict[str, str]) -> dict[str, str]:
        lowered = [k.strip().lower() for k in statuses]
        if len(set(lowered)) != len(lowered):
            raise ValueError("statuses lists a portal value twice (values compare case-insensitively)")
        return statuses

    def status_map(self) -> dict[str, str]:
        """Portal value (lower case) to our status."""
        mapped = {k.strip().lower(): v for k, v in self.statuses.items()}
        return {**{s: s for s in VOUCHER_STATUSES}, **mapped}


def _check(conn: Connection, m: PortalMapping) -> None:
    require(conn, PRINCIPALS, m.principal_id, "principal_id")


MAPPINGS = Kind("portal_mapping", gc_portal_mappings, "principal_id", PortalMapping,
                lambda m: {"format": m.format}, _check)


def mapping(stored: dict[str, Any]) -> PortalMapping:
    """The model of a stored mapping (as `records.get` shows it)."""
    return PortalMapping.model_validate({k: stored[k] for k in PortalMapping.model_fields if k in stored})
