"""The report as one self-contained HTML file: CSS inline, charts as SVG data: URIs, nothing fetched."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from ops_pipeline.money import to_major
from ops_pipeline.reports import charts
from ops_pipeline.reports.model import Report

LABELS = {"psp_fee": "fee", "chargeback_reversal": "chargeback reversal", "dispute_fee": "dispute fee",
          "fee_adjustment": "fee adjustment", "rolling_reserve": "rolling reserve",
          "reserve_release": "reserve release", "reserve_expiry": "reserve expiry"}


def major(minor: int, currency: str) -> str:
    """Minor units as exact major units with the currency's decimals: 123456, 'EUR' -> '1,234.56'."""
    return f"{to_major(int(minor), currency):,}"


def cell(value) -> tuple[str, str]:
    """A section cell as (text, CSS class): amounts (minor, currency) and numbers right-aligned."""
    if isinstance(value, tuple):
        return major(*value), "num"
    if isinstance(value, int):
        return f"{value:,}", "num"
    return ("" if value is None else str(value)), ""


_env = Environment(loader=PackageLoader("ops_pipeline.reports", "templates"), autoescape=select_autoescape(),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["major"] = major
_env.filters["cell"] = cell


def render(report: Report) -> str:
    figures = {"days": charts.data_uri(charts.bars("Matched vs unmatched per business date",
                                                   *charts.day_series(report.days)))}
    if report.kind == "daily":
        figures["aging"] = charts.data_uri(charts.bars("Open COs by age (days), count per currency",
                                                       *charts.aging_series(report.aging)))
    return _env.get_template("report.html").render(r=report, figures=figures, labels=LABELS,
                                                   untied=sum(not m.ties for m in report.movements))
