"""The gift-card records the analyst views `programs`, `distributors` and `program_assignments`
(sql/views/programs_distributors.sql) read, as Arrow tables named `db_gc_<table>`, copied into DuckDB by
`analytics.connect(ws, operational=True)` (other callers get them empty). Sensitive values (UPI VPAs, bank
accounts, contacts) arrive masked, as every view of the records shows them; amounts and percentages are
exact decimal text, which the SQL casts to DECIMAL.

Light on imports (no model, no job types), as `ops-pipeline sql` loads it: a stored sealed value
(`{"enc", "masked"}`) is replaced by its masked form wherever it is."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Table, select

from ops_pipeline.crypto import is_sealed
from ops_pipeline.db.schema import gc_assignments, gc_parties, gc_programs

_TEXT_LIST = pa.list_(pa.string())


def _program(p: dict[str, Any]) -> dict[str, Any]:
    pricing = p["pricing"]
    return {**{k: p[k] for k in ("program_id", "name", "currency", "status", "restriction_state",
                                 "principal_ids", "validity_days", "version", "updated_by", "updated_at")},
            "denominations": pricing["denominations"], "min_value": pricing["min_value"],
            "max_value": pricing["max_value"], "issuance_fee_percent": pricing["issuance_fee_percent"],
            "commission_rules": json.dumps(p["commission_rules"])}


def _party(p: dict[str, Any]) -> dict[str, Any]:
    bank, contact = p.get("bank_account"), p.get("contact")
    return {"party_id": p["party_id"], "kind": p["kind"], "name": p["name"], "status": p["status"],
            "wallet_account_id": p["wallet_account_id"], "wallet_currency": p["wallet_currency"],
            "bank_account": bank and f"{bank['account_holder']} {bank['account_number']} {bank['ifsc']}",
            "contact": contact and f"{contact['name']} {contact['email']} {contact['phone']}",
            "version": p["version"], "updated_at": p["updated_at"]}


def _assignment(a: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k) for k in ("id", "party_id", "program_id", "starts_on", "ends_on", "status",
                                  "commission_percent", "discount_percent", "agreement_reference")}


def _schema(names: str, types: dict[str, pa.DataType]) -> pa.Schema:
    """Columns named in `names` (space separated), strings unless `types` says otherwise."""
    return pa.schema([(n, types.get(n, pa.string())) for n in names.split()])


SCHEMAS = {
    "db_gc_programs": (gc_programs, _program, _schema(
        "program_id name currency status restriction_state principal_ids denominations min_value max_value "
        "issuance_fee_percent validity_days commission_rules version updated_by updated_at",
        {"principal_ids": _TEXT_LIST, "denominations": _TEXT_LIST, "validity_days": pa.int64(),
         "version": pa.int64()})),
    "db_gc_parties": (gc_parties, _party, _schema(
        "party_id kind name status wallet_account_id wallet_currency bank_account contact version updated_at",
        {"version": pa.int64()})),
    "db_gc_assignments": (gc_assignments, _assignment, _schema(
        "id party_id program_id starts_on ends_on status commission_percent discount_percent "
        "agreement_reference", {"id": pa.int64()})),
}


def _masked(value: Any) -> Any:
    if is_sealed(value):
        return value["masked"]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    """The table's rows in key order: the details (masked) and the columns beside them, dates as text."""
    out = []
    for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
        values = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row._mapping.items()}
        out.append({**_masked(values.pop("details")), **values})
    return out


def analyst_tables(conn: Connection | None) -> dict[str, pa.Table]:
    """The Arrow tables `db_gc_programs`, `db_gc_parties`, `db_gc_assignments`; with no connection, empty
    tables of the same columns."""
    out = {}
    for name, (table, shape, schema) in SCHEMAS.items():
        rows = [shape(r) for r in _rows(conn, table)] if conn is not None else []
        out[name] = pa.Table.from_pylist(rows, schema=schema)
    return out
