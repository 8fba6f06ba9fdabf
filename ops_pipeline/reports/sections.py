"""Sections other domains add to the finance reports. A provider takes the workspace and the report's first
and last business dates and returns its sections; adding a section to a report adds one line here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ops_pipeline.giftcards import finance_report as giftcards_finance
from ops_pipeline.recon import portal_report
from ops_pipeline.reports.model import Section
from ops_pipeline.workspace import Workspace

Provider = Callable[[Workspace, date, date], list[Section]]

PROVIDERS: dict[str, list[Provider]] = {
    "daily": [portal_report.sections, giftcards_finance.section],
    "monthly": [giftcards_finance.section],
}


def collect(ws: Workspace, kind: str, first: date, last: date) -> list[Section]:
    """Every provider's sections for a report of `kind` over first..last, in the order above."""
    return [section for provider in PROVIDERS[kind] for section in provider(ws, first, last)]
