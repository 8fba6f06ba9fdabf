"""A principal's portal export (CSV or XLSX) parsed with its mapping into the Delta table `portal_vouchers`.

The export id is the SHA-256 of the file: loading the same file again (API, CLI or landing folder) adds
nothing. Lines that do not parse go to `portal_quarantine` with every reason, each naming the field, the
column and the value; the others load. The export date is given, or the first YYYY-MM-DD in the file name,
or today (OPS_TIMEZONE).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from ops_pipeline import audit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.giftcards import records
from ops_pipeline.giftcards.portal_mapping import MAPPINGS, PortalMapping, mapping
from ops_pipeline.lake.tables import PORTAL_QUARANTINE, PORTAL_VOUCHERS
from ops_pipeline.money import exponent
from ops_pipeline.workspace import Workspace

MAX_ROWS = 10_000_000
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class ExportLoad:
    export_id: str
    principal_id: str
    export_date: date
    file_name: str
    vouchers: int  # lines loaded now
    quarantined: int  # lines quarantined now
    already_loaded: bool


def read_rows(data: bytes, m: PortalMapping) -> pl.DataFrame:
    """The file's lines as text columns under their headers, plus `_row` (the line or sheet row number)."""
    if m.format == "xlsx":
        frame = _read_xlsx(data, m)
    else:
        try:
            frame = pl.read_csv(io.BytesIO(data), separator=m.delimiter, infer_schema=False,
                                truncate_ragged_lines=False, encoding="utf8-lossy")
        except pl.exceptions.PolarsError as exc:
            raise InvalidInput(f"file: not a CSV file with separator {m.delimiter!r}: {exc}") from None
    if frame.height > MAX_ROWS:
        raise InvalidInput(f"file: {frame.height} lines, at most {MAX_ROWS}")
    return frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias("_row"))


def _read_xlsx(data: bytes, m: PortalMapping) -> pl.DataFrame:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors on a bad file
        raise InvalidInput(f"file: not an XLSX workbook ({type(exc).__name__})") from None
    try:
        if m.sheet is not None and m.sheet not in book.sheetnames:
            raise InvalidInput(f"sheet: {m.sheet!r} is not a sheet of the workbook ({book.sheetnames})")
        rows = (book[m.sheet] if m.sheet else book.worksheets[0]).iter_rows(values_only=True)
        header = [str(v).strip() if v is not None else "" for v in next(rows, ())]
        cells = [[_cell_text(v, m) for v in row] for row in rows]
    finally:
        book.close()
    width = len(header)
    cells = [(row + [None] * width)[:width] for row in cells]
    return pl.DataFrame(cells, schema={h or f"_blank{i}": pl.String for i, h in enumerate(header)},
                        orient="row")


def _cell_text(value: Any, m: PortalMapping) -> str | None:
    """A cell as the text a CSV export would hold: dates in the mapping's format, numbers with its decimal
    separator (exactly: openpyxl's float repr is the shortest that round-trips)."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.strftime(m.date_format)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(Decimal(repr(value)), "f").replace(".", m.decimal_separator)
    return str(value)


def parse(data: bytes, m: PortalMapping, tz) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(vouchers, quarantined) of an export: vouchers with voucher_id, face_value_minor, currency, status,
    expiry_date, redeemed_at, row_number, `repeats`; quarantined lines with row_number, raw (JSON), reason."""
    frame = read_rows(data, m)
    wanted = {k: v for k, v in m.columns.model_dump().items() if v is not None}
    missing = sorted(c for c in wanted.values() if c not in frame.columns)
    if missing:
        raise InvalidInput(f"file: columns {missing} of the mapping of {m.principal_id} are not in the "
                           f"export (it has {[c for c in frame.columns if c != '_row']})")
    col = {field: pl.col(name).str.strip_chars() for field, name in wanted.items()}
    exp = exponent(m.currency)
    other = "," if m.decimal_separator == "." else "."
    amount = col["face_value"].str.replace_all(f"[ {re.escape(other)}]", "").str.replace(
        re.escape(m.decimal_separator), ".", literal=False)
    shape = amount.str.extract(rf"^(\d+)(?:\.(\d{{0,{exp}}}))?0*$", 1)
    frac = amount.str.extract(rf"^\d+\.(\d{{0,{exp}}})0*$", 1).fill_null("").str.pad_end(exp, "0")
    minor = shape.cast(pl.Int64, strict=False) * 10**exp + (frac.cast(pl.Int64, strict=False) if exp else 0)
    statuses = m.status_map()
    status = col["status"].str.to_lowercase().replace_strict(statuses, default=None, return_dtype=pl.String)
    expiry = col["expiry"].str.strptime(pl.Date, m.date_format, strict=False)
    redeemed = (col["redeemed_at"].str.strptime(pl.Datetime("us"), m.date_format, strict=False)
                .dt.replace_time_zone(str(tz)).dt.convert_time_zone("UTC")
                if "redeemed_at" in col else pl.lit(None, pl.Datetime("us", "UTC")))

    def problem(bad: pl.Expr, field: str, what: str) -> pl.Expr:
        name = wanted[field]
        return pl.when(bad).then(pl.format(f"{field}: {{}} (column '{name}'){what}",
                                           pl.format("'{}'", col[field].fill_null(""))))

    empty = {f: col[f].fill_null("") == "" for f in wanted}
    reasons = pl.concat_list(
        pl.when(empty["voucher_id"]).then(pl.lit(f"voucher_id: empty (column '{wanted['voucher_id']}')")),
        problem(~empty["face_value"] & minor.is_null(), "face_value",
                f" is not an amount with at most {exp} decimals, decimal separator '{m.decimal_separator}'"),
        pl.when(empty["face_value"]).then(pl.lit(f"face_value: empty (column '{wanted['face_value']}')")),
        problem(status.is_null(), "status", f" is not one of the mapped statuses {sorted(statuses)}"),
        problem(expiry.is_null(), "expiry", f" does not match the date format {m.date_format}"),
        *([problem(~empty["redeemed_at"] & redeemed.is_null(), "redeemed_at",
                   f" does not match the date format {m.date_format}")] if "redeemed_at" in col else []),
    ).list.drop_nulls().list.join("; ")
    checked = frame.with_columns(reasons.alias("_reason"), col["voucher_id"].alias("_voucher"),
                                 minor.alias("_minor"), status.alias("_status"), expiry.alias("_expiry"),
                                 redeemed.alias("_redeemed"))
    good = checked.filter(pl.col("_reason") == "").select(
        pl.col("_voucher").alias("voucher_id"), pl.col("_minor").alias("face_value_minor"),
        pl.lit(m.currency).alias("currency"), pl.col("_status").alias("status"),
        pl.col("_expiry").alias("expiry_date"), pl.col("_redeemed").alias("redeemed_at"),
        pl.col("_row").alias("row_number"))
    good = good.with_columns(**repeats(good))
    raw = [c for c in frame.columns if c != "_row"]
    bad = checked.filter(pl.col("_reason") != "").select(
        pl.col("_row").alias("row_number"), pl.struct(raw).struct.json_encode().alias("raw"),
        pl.col("_reason").alias("reason"))
    return good, bad


def repeats(lines: pl.DataFrame) -> dict[str, pl.Expr]:
    """`repeats_row` (the row of the voucher's first line when this line lists it again, else null) and
    `times_listed` of an export's parsed lines."""
    first = pl.col("row_number").min().over("voucher_id")
    return {"repeats_row": pl.when(pl.col("row_number") != first).then(first),
            "times_listed": pl.len().over("voucher_id").cast(pl.Int64)}


def export_date_of(file_name: str, tz) -> date:
    """The date a file's name gives (YYYY-MM-DD anywhere in it), else today in `tz`; a name with an
    impossible date is refused rather than dated today."""
    found = _DATE_IN_NAME.search(file_name)
    if not found:
        return datetime.now(tz).date()
    try:
        return date.fromisoformat(found.group(1))
    except ValueError:
        raise InvalidInput(f"file: {file_name!r} names {found.group(1)!r}, which is not a date") from None


def _loaded(ws: Workspace, table: str, export_id: str) -> bool:
    if ws.lake.open(table) is None:
        return False
    with ws.lake.connect(table) as con:
        return con.execute(f"SELECT count(*) FROM lake_{table} WHERE export_id = ?",
                           [export_id]).fetchall()[0][0] > 0


def load_export(ws: Workspace, principal_id: str, data: bytes, file_name: str, actor: str,
                export_date: date | None = None) -> ExportLoad:
    """Parse an export with the principal's mapping and append its vouchers and quarantined lines, audited.

    Each table is written only if it lacks this export, so a crash between the two commits is finished by
    loading the file again, and a file loaded before adds nothing."""
    m = mapping(records.get(ws, MAPPINGS, principal_id))
    tz = ws.settings.tz
    good, bad = parse(data, m, tz)
    if good.is_empty() and bad.is_empty():
        raise InvalidInput(f"file: {file_name!r} holds no voucher lines")
    export_id = hashlib.sha256(data).hexdigest()
    day = export_date or export_date_of(file_name, tz)
    now = datetime.now(UTC)
    same = {"export_id": export_id, "principal_id": principal_id, "export_date": day,
            "file_name": file_name, "loaded_at": now}
    added = {}
    with ws.lock(PORTAL_VOUCHERS.name):
        for table, rows in ((PORTAL_QUARANTINE.name, bad), (PORTAL_VOUCHERS.name, good)):
            if rows.is_empty() or _loaded(ws, table, export_id):
                continue
            rows = rows.with_columns(**{k: pl.lit(v) for k, v in same.items()})
            ws.lake.commit(ws.lake.stage(table, [rows]))
            added[table] = rows.height
        if added:
            with ws.engine.begin() as conn:
                audit.record(conn, actor=actor, entity_type="gc_portal_export", entity_id=export_id,
                             action="load", after={"principal_id": principal_id, "file_name": file_name,
                                                   "export_date": day.isoformat(), "vouchers": good.height,
                                                   "quarantined": bad.height})
    return ExportLoad(export_id, principal_id, day, file_name, added.get(PORTAL_VOUCHERS.name, 0),
                      added.get(PORTAL_QUARANTINE.name, 0), already_loaded=not added)


def quarantined(ws: Workspace, principal_id: str | None = None, export_date: date | None = None
                ) -> list[dict[str, Any]]:
    """Quarantined lines (principal, date, row, reason, raw), in load and row order."""
    if ws.lake.open(PORTAL_QUARANTINE.name) is None:
        return []
    with ws.lake.connect(PORTAL_QUARANTINE.name) as con:
        found = con.execute(
            "SELECT principal_id, export_date, file_name, row_number, reason, raw "
            "FROM lake_portal_quarantine WHERE ($1::VARCHAR IS NULL OR principal_id = $1) "
            "AND ($2::DATE IS NULL OR export_date = $2) "
            "ORDER BY loaded_at, export_id, row_number", [principal_id, export_date])
        names = [d[0] for d in found.description]
        return [dict(zip(names, r, strict=True)) for r in found.fetchall()]
