"""The report as an XLSX workbook (xlsxwriter): amounts as numbers in major units with each currency's
decimals as the cell format, and native charts over the data sheets."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter

from ops_pipeline.money import exponent, to_major
from ops_pipeline.reports import charts
from ops_pipeline.reports.html import LABELS
from ops_pipeline.reports.model import BreakRow, Report


class _Sheets:
    """Writes rows of mixed cells; an amount is (minor, currency) and becomes a number in major units."""

    def __init__(self, book: xlsxwriter.Workbook):
        self.book = book
        self.bold = book.add_format({"bold": True, "bg_color": "#F3F4F6"})
        self.formats: dict[int, xlsxwriter.format.Format] = {}

    def money_format(self, currency: str):
        exp = exponent(currency)
        if exp not in self.formats:
            decimals = "." + "0" * exp if exp else ""
            self.formats[exp] = self.book.add_format({"num_format": "#,##0" + decimals})
        return self.formats[exp]

    def table(self, name: str, header: list[str], rows) -> xlsxwriter.worksheet.Worksheet:
        sheet = self.book.add_worksheet(name)
        sheet.write_row(0, 0, header, self.bold)
        sheet.freeze_panes(1, 0)
        n = 0
        for n, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if isinstance(value, tuple):  # (minor, currency): the only float conversion, at the cell
                    sheet.write_number(n, c, float(to_major(value[0], value[1])), self.money_format(value[1]))
                else:
                    sheet.write(n, c, value.isoformat() if hasattr(value, "isoformat") else value)
        sheet.set_column(0, len(header) - 1, 14)
        sheet.autofilter(0, 0, max(n, 1), len(header) - 1)
        return sheet

    def chart(self, sheet, anchor: str, title: str, name: str, categories: list[str],
              series: dict[str, list[int]]) -> None:
        """A column chart of `series` over `categories`, its data written to sheet `name` (hidden)."""
        data = self.book.add_worksheet(name)
        data.write_row(0, 0, ["", *series])
        for i, category in enumerate(categories, start=1):
            data.write_row(i, 0, [category, *(values[i - 1] for values in series.values())])
        chart = self.book.add_chart({"type": "column"})
        for n in range(1, len(series) + 1):
            chart.add_series({"name": [name, 0, n], "categories": [name, 1, 0, len(categories), 0],
                              "values": [name, 1, n, len(categories), n]})
        chart.set_title({"name": title})
        chart.set_size({"width": 720, "height": 300})
        sheet.insert_chart(anchor, chart)
        data.hide()


def _detail(b: BreakRow) -> list:
    return [b.break_id, b.recon, b.business_date, b.age_days, b.status, b.currency,
            (b.internal_minor, b.currency), (b.external_minor, b.currency), (b.difference_minor, b.currency),
            b.internal_ids, b.external_ids, b.reason]


DETAIL = ["Break", "Reconciliation", "Business date", "Age (days)", "Status", "Currency", "Internal",
          "External", "Difference", "Internal ids", "External ids", "Reason"]


def write(report: Report, path: Path) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": False})
    w = _Sheets(book)
    summary = w.table("Summary", ["Reconciliation", "Currency", "Status", "Count", "Internal", "External",
                                  "Difference"],
                      ([s.recon, s.currency, s.status, s.count, (s.internal_minor, s.currency),
                        (s.external_minor, s.currency), (s.difference_minor, s.currency)]
                       for s in report.summary))
    w.chart(summary, "I2", "Matched vs unmatched per business date", "ChartDays",
            *charts.day_series(report.days))
    if report.kind == "daily":
        aging = w.table("Aging", ["Age (days)", "Currency", "Count", "Amount"],
                        ([a.bucket, a.currency, a.count, (a.amount_minor, a.currency)] for a in report.aging))
        w.chart(aging, "F2", "Open COs by age (days)", "ChartAging", *charts.aging_series(report.aging))
        w.table("Breaks", DETAIL, map(_detail, report.breaks))
    w.table("Differences", DETAIL, map(_detail, report.differences))
    if report.kind == "monthly":
        types = report.movement_types
        w.table("Balances", ["Merchant", "Currency", "Balance", "Opening", *(LABELS.get(t, t) for t in types),
                             "Closing", "Ledger", "Ties"],
                ([m.merchant_id, m.currency, m.basis, (m.opening_minor, m.currency),
                  *((m.by_type[t], m.currency) for t in types), (m.closing_minor, m.currency),
                  (m.ledger_minor, m.currency), "yes" if m.ties else "NO"] for m in report.movements))
    for section in report.sections:
        w.table(section.key[:31], list(section.header), section.rows)
    book.close()
