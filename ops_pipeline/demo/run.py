"""Run the demo: build the world, run every ledger pipeline once, print what a user wants to see."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ops_pipeline import analytics
from ops_pipeline.demo.disbursements import run_disbursements
from ops_pipeline.demo.fundout import run_fundout
from ops_pipeline.demo.giftcards import run_giftcards
from ops_pipeline.demo.jobs import run_jobs
from ops_pipeline.demo.pipeline import run_pipeline
from ops_pipeline.demo.recon import run_recon
from ops_pipeline.demo.tickets import run_tickets
from ops_pipeline.demo.world import build_world
from ops_pipeline.exports import write_csv
from ops_pipeline.ledger import adjustments, holds, ingest, merchants
from ops_pipeline.money import exponent
from ops_pipeline.reports.build import build_day, build_month
from ops_pipeline.workspace import Workspace


def run_demo(ws: Workspace, operations: int, merchants: int, seed: int, echo: Callable[[str], None]) -> None:
    started = time.perf_counter()
    ws.init()
    home = ws.settings.home
    start = (datetime.now(UTC) - timedelta(days=31)).date().replace(day=1)
    echo(f"Building a sample world in {home / 'demo'}: {merchants} merchants, ~{operations:,} operations ...")
    world = build_world(home / "demo", operations, merchants, seed, start)
    loaded = merchants_module_load(ws, world.merchants_file)
    echo(f"  merchant context: {loaded} shops (3 more arrive late)")

    totals = {"rows": 0, "ingested": 0, "duplicates": 0, "quarantined": 0, "entries": 0}
    echo(f"Ingesting {len(world.days) - 1} days of confirmed (CO) and reconciled (RO) operations ...")
    for _day, co, ro in world.days[:-1]:
        for path, kind in ((co, "confirmed"), (ro, "reconciled")):
            r = ingest.ingest_file(ws, path, kind)
            for k in totals:
                totals[k] += getattr(r, k if k != "quarantined" else "newly_quarantined")
    echo(
        f"  {totals['rows']:,} rows -> {totals['ingested']:,} operations ingested as "
        f"{totals['entries']:,} log "
        f"entries, {totals['duplicates']:,} duplicates, {totals['quarantined']:,} quarantined"
    )

    # The same file again: nothing changes (idempotent ingest).
    again = ingest.ingest_file(ws, world.days[0][1], "confirmed")
    echo(f"  re-ingesting {world.days[0][1].name}: {again.ingested} ingested, {again.duplicates} duplicates")

    merchants_module_load(ws, world.late_merchants_file)
    results = ingest.reprocess(ws, actor="demo")
    echo(
        f"Late merchant context loaded; reprocess: {sum(r.ingested for r in results)} quarantined operations "
        f"now in the ledger"
    )

    _ops_actions(ws, world.days[-1][0], echo)

    run_jobs(ws, echo)
    run_fundout(ws, echo)
    run_tickets(ws, echo)

    last_day, co, ro = world.days[-1]
    for path, kind in ((co, "confirmed"), (ro, "reconciled")):
        target = ws.settings.landing_dir / kind / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    echo(f"Files of {last_day} dropped in {ws.settings.landing_dir}/; the ledger pipeline runs in Dagster:")
    run_pipeline(ws, echo)
    today = run_recon(ws, [day for day, _, _ in world.days], echo)
    run_disbursements(ws, echo)
    run_giftcards(ws, echo)
    _finance_reports(ws, today, world.days[0][0], echo)
    _summary(ws, echo)
    reports = _reports(ws)
    echo("")
    echo(f"Reports written to {reports}")
    echo(f"Under `make dev`, files dropped in {ws.settings.landing_dir}/<kind>/ are ingested by a sensor.")
    echo("Next:")
    echo("  make dev                      # Dagster UI on :3000; REST API and ops console on :8000")
    echo('  .venv/bin/ops-pipeline sql "SELECT * FROM merchant_balances ORDER BY available DESC LIMIT 5"')
    echo("  .venv/bin/ops-pipeline ledger balance MER-0001")
    echo("  .venv/bin/ops-pipeline jobs list")
    echo(f"Demo finished in {time.perf_counter() - started:.1f}s.")


def _finance_reports(ws: Workspace, today: date, month: date, echo) -> None:
    """The day's finance report and the world's month report (HTML and XLSX)."""
    day, monthly = build_day(ws, today), build_month(ws, month)
    echo(f"Finance reports: {', '.join(str(p) for p in (*day.files, *monthly.files))}")
    echo(f"  {day.period}: {day.breaks:,} open breaks; {monthly.period}: {monthly.balances} balances, "
         f"{monthly.untied} not tying to the ledger")


def merchants_module_load(ws: Workspace, path) -> int:
    return merchants.load(ws, path, actor="demo").loaded


def _ops_actions(ws: Workspace, last_day: date, echo) -> None:
    """What ops do by hand: hold part of a balance, correct one with an adjustment. (Amounts from the days
    before `last_day`, which a re-run of the demo has also loaded: the same hold again.)"""
    con = analytics.connect(ws)
    top = con.sql("""
        SELECT merchant_id, currency, sum(amount_minor) FROM balance_operations
        WHERE source = 'RO' AND operation_date < $last
        GROUP BY ALL ORDER BY sum(amount_minor) DESC LIMIT 2
    """, params={"last": last_day}).fetchall()
    (m1, c1, settled_by_ro), (m2, c2, _) = top
    hold = holds.place_hold(  # a fifth of what settled: the same amount when the demo runs again
        ws,
        m1,
        c1,
        int(settled_by_ro) // 5,
        actor="demo",
        hold_id=f"demo-hold-{m1}",
        expires_at=datetime.now(UTC) + timedelta(days=2),
        reason="risk review",
    )
    adjustments.adjust(ws, m2, c2, -500, "TICKET-1042", actor="demo", entry_id=f"demo-adj-{m2}")
    echo(
        f"Ops: held {hold.to_dict()['amount']} {c1} of {m1} for a risk review; adjusted {m2} by -500 minor "
        f"units ({c2}) for ticket TICKET-1042"
    )


def _summary(ws: Workspace, echo) -> None:
    con = analytics.connect(ws)
    echo("")
    echo("Largest available balances per currency (merchant_balances view):")
    rows = con.sql("""
        SELECT merchant_id, currency, confirmed_balance, settled_balance, held, available
        FROM merchant_balances
        QUALIFY row_number() OVER (PARTITION BY currency ORDER BY available DESC) <= 2
        ORDER BY currency, available DESC
    """)
    _print(echo, rows.columns, [[*r[:2], *(_exact(v, r[1]) for v in r[2:])] for r in rows.fetchall()])
    echo("")
    echo("Quarantine (ledger_quarantine view):")
    rows = con.sql("""
        SELECT reason_code, status, count(*) AS rows FROM ledger_quarantine GROUP BY ALL ORDER BY ALL
    """)
    _print(echo, rows.columns, rows.fetchall())


def _exact(value: Decimal, currency: str) -> Decimal:
    """A view's DECIMAL(38,4) shown with the currency's own decimals (exact: they are zeros)."""
    return value.quantize(Decimal(1).scaleb(-exponent(currency)))


def _print(echo, columns, rows) -> None:
    cells = [[str(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    echo("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        echo("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _reports(ws: Workspace):
    folder = ws.settings.reports_dir / date.today().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    con = analytics.connect(ws)
    for name, query in (
        ("merchant_balances", "SELECT * FROM merchant_balances ORDER BY merchant_id, currency"),
        ("monthly_turnover", "SELECT * FROM monthly_turnover ORDER BY ALL"),
        (
            "quarantine",
            "SELECT reason_code, reason, file_name, row_number, status FROM ledger_quarantine ORDER BY ALL",
        ),
    ):
        rel = con.sql(query)
        write_csv(folder / f"{name}.csv", rel.columns, rel.fetchall())  # spreadsheet-safe
    return folder
