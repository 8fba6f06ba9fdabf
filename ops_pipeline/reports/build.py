"""Build, list and find the finance reports: `OPS_HOME/reports/daily/YYYY-MM-DD.{html,xlsx}` and
`OPS_HOME/reports/monthly/YYYY-MM.{html,xlsx}`, each replaced atomically (written aside, then renamed)."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.ledger.queries import parse_month
from ops_pipeline.reports import html, queries, sections, xlsx
from ops_pipeline.reports.model import FORMATS, KINDS, Built, Report, ReportFile
from ops_pipeline.workspace import Workspace

CHART_DAYS = 30
PERIODS = {"daily": re.compile(r"^\d{4}-\d{2}-\d{2}$"), "monthly": re.compile(r"^\d{4}-\d{2}$")}


def parse_date(value: str) -> date:
    try:
        if PERIODS["daily"].match(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidInput(f"date: {value!r} is not an ISO date (YYYY-MM-DD)")


def day_report(ws: Workspace, day: date) -> Report:
    """The numbers of business date `day` (the chart: the 30 days up to it)."""
    with queries.connect(ws, day) as con:
        breaks, total = queries.open_breaks(con, day)
        return Report("daily", day.isoformat(), day, day, queries.summary(con, day, day),
                      queries.per_day(con, day - timedelta(days=CHART_DAYS - 1), day),
                      aging=queries.aging(con, day), breaks=breaks, breaks_total=total,
                      differences=queries.differences(con, day, day),
                      sections=sections.collect(ws, "daily", day, day))


def month_report(ws: Workspace, month: date) -> Report:
    """The numbers of the business dates of `month`, and its balances by merchant (bounds in OPS_TIMEZONE)."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = following - timedelta(days=1)
    start, end = (datetime.combine(d, time(), ws.settings.tz).astimezone(UTC) for d in (month, following))
    with queries.connect(ws, last) as con:
        moved, types = queries.movements(con, start, end)
        return Report("monthly", month.strftime("%Y-%m"), month, last, queries.summary(con, month, last),
                      queries.per_day(con, month, last), differences=queries.differences(con, month, last),
                      movements=moved, movement_types=types,
                      sections=sections.collect(ws, "monthly", month, last))


def build_day(ws: Workspace, day: date | str) -> Built:
    return _write(ws, day_report(ws, parse_date(day) if isinstance(day, str) else day))


def build_month(ws: Workspace, month: date | str) -> Built:
    first = parse_month(month) if isinstance(month, str) else month.replace(day=1)
    return _write(ws, month_report(ws, first))


def _write(ws: Workspace, report: Report) -> Built:
    folder = ws.settings.reports_dir / report.kind
    folder.mkdir(parents=True, exist_ok=True)
    paths = tuple(folder / f"{report.period}.{fmt}" for fmt in FORMATS)
    for path in paths:
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            if path.suffix == ".html":
                temp.write_text(html.render(report), encoding="utf-8")
            else:
                xlsx.write(report, temp)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    return Built(report.kind, report.period, paths, tuple(report.summary), report.breaks_total,
                 len(report.movements), sum(not m.ties for m in report.movements), datetime.now(UTC))


def list_reports(ws: Workspace) -> list[ReportFile]:
    """Every report file: daily, then monthly, each newest period first."""
    found = []
    for kind in KINDS:
        folder = ws.settings.reports_dir / kind
        for path in folder.glob("*.*") if folder.is_dir() else ():
            period, _, fmt = path.name.partition(".")
            if fmt in FORMATS and PERIODS[kind].match(period):
                stat = path.stat()
                found.append(ReportFile(kind, period, fmt, stat.st_size,
                                        datetime.fromtimestamp(stat.st_mtime, UTC), path))
    found.sort(key=lambda f: (f.period, f.format), reverse=True)
    return sorted(found, key=lambda f: KINDS.index(f.kind))


def report_file(ws: Workspace, kind: str, period: str, fmt: str) -> Path:
    """The path of one report, its parts checked (no path leaves the reports folder); NotFound if unbuilt."""
    if kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not PERIODS[kind].match(period):
        raise InvalidInput(f"period: {period!r} is not {'YYYY-MM-DD' if kind == 'daily' else 'YYYY-MM'}")
    if fmt not in FORMATS:
        raise InvalidInput(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    path = ws.settings.reports_dir / kind / f"{period}.{fmt}"
    if not path.is_file():
        raise NotFound(f"report: {kind}/{period}.{fmt} has not been built")
    return path
