"""DuckDB over the lake: every Delta table as `lake_<name>`, and the analyst views of `sql/views`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ops_pipeline.lake import TABLES
from ops_pipeline.money import currency_exponents
from ops_pipeline.workspace import Workspace

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def currencies_table() -> pa.Table:
    from decimal import Decimal

    exps = currency_exponents()
    return pa.table(
        {
            "code": list(exps),
            "exponent": list(exps.values()),
            "unit": pa.array([Decimal(1).scaleb(-e) for e in exps.values()], pa.decimal128(38, 4)),
        }
    )


def connect(ws: Workspace, con: duckdb.DuckDBPyConnection | None = None, *,
            operational: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake views; pass `con` to add them to an existing connection.

    `operational`: copy in the operational DB rows the disbursement views read (analysts' entry points:
    `ops-pipeline sql`, the Dagster DuckDB resource); otherwise those views are there but empty, so the
    many internal callers (breaks, runs, aging) never copy a table they do not read."""
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("currencies_arrow", currencies_table())
    con.execute("CREATE OR REPLACE TEMP TABLE currencies AS SELECT * FROM currencies_arrow")
    con.unregister("currencies_arrow")
    for name in TABLES:
        ws.lake.relation(con, name)
    _live_balances(ws, con)
    _operational(ws, con, operational)
    # today in OPS_TIMEZONE, for the views that age things (a caller may replace it with a fixed date)
    con.execute(f"CREATE OR REPLACE TEMP MACRO business_today() AS "
                f"CAST(timezone('{ws.settings.timezone}', now()) AS DATE)")
    for path in sorted((SQL_DIR / "views").glob("*.sql")):
        con.execute(path.read_text())
    return con


def _live_balances(ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
    """What makes `merchant_balances` exact when queried: the log entries after the latest snapshot,
    folded (`balance_changes_since_snapshot`; the whole log before any snapshot), and the holds active now
    from the operational DB (`balance_holds_now`)."""
    from ops_pipeline.ledger import live

    latest = con.sql("SELECT lake_version FROM lake_balance_snapshots "
                     "ORDER BY snapshot_at DESC, snapshot_id DESC LIMIT 1").fetchall()
    if latest:
        _, entries = live.changes_since(ws, latest[0][0])
        con.register("balance_entries_since_snapshot", entries)
        con.execute("CREATE OR REPLACE TEMP VIEW balance_changes_since_snapshot AS "
                    + live.fold_sql("balance_entries_since_snapshot"))
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW balance_changes_since_snapshot AS "
                    + live.fold_sql("lake_balance_operations"))
    with ws.read_engine.connect() as conn:
        con.register("balance_holds_now", live.held_all(conn, datetime.now(UTC)))


def _operational(ws: Workspace, con: duckdb.DuckDBPyConnection, rows: bool) -> None:
    """Operational DB tables some views read (`db_<table>`), copied in as Arrow (empty unless `rows`)."""
    from ops_pipeline.disbursements import views
    from ops_pipeline.giftcards import invoice_views, obligation_views
    from ops_pipeline.giftcards import views as giftcard_views

    providers = (views.analyst_tables, giftcard_views.analyst_tables, obligation_views.analyst_tables,
                 invoice_views.analyst_tables)
    if not rows:
        for name, table in (item for tables in providers for item in tables(None).items()):
            con.register(name, table)
        return
    with ws.read_engine.connect() as conn:
        for name, table in (item for tables in providers for item in tables(conn).items()):
            con.register(name, table)


def view_names() -> list[str]:
    names = []
    for path in sorted((SQL_DIR / "views").glob("*.sql")):
        for line in path.read_text().splitlines():
            if line.upper().startswith("CREATE OR REPLACE VIEW"):
                names.append(line.split()[4])
    return names
