"""An issued invoice or credit note as files for people, under `OPS_HOME/invoices/YYYY-MM/`: HTML
(self-contained), PDF (fpdf2, core font, cells written one by one) and XLSX (the lines per program, and per
day and program). A document never changes, so a file that exists is kept: writing a month again writes
only what is missing. Each file is written to a temporary name, then renamed."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import polars as pl
import xlsxwriter
from fpdf import FPDF
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from ops_pipeline.db.schema import gc_parties
from ops_pipeline.giftcards import commission_lines, invoices
from ops_pipeline.giftcards.invoices import Invoice
from ops_pipeline.money import exponent
from ops_pipeline.reports.html import major
from ops_pipeline.workspace import Workspace

KINDS = ("html", "pdf", "xlsx")
TITLES = {"invoice": "Invoice", "credit_note": "Credit note"}
_COLUMNS = ("Program", "Vouchers sold", "Face value", "Discount given", "Commission", "Tier adjustment")
_AMOUNTS = ("face_value_minor", "discount_minor", "commission_minor", "adjustment_minor")
_env = Environment(
    loader=PackageLoader("ops_pipeline.giftcards", "templates"), autoescape=select_autoescape()
)
_env.filters["major"] = major


def folder(ws: Workspace, month: date) -> Path:
    return ws.home / "invoices" / f"{month:%Y-%m}"


def paths(ws: Workspace, invoice: Invoice) -> dict[str, Path]:
    return {kind: folder(ws, invoice.month) / f"{invoice.number}.{kind}" for kind in KINDS}


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def html(invoice: Invoice, party_name: str) -> str:
    return _env.get_template("invoice.html").render(
        i=invoice, title=TITLES[invoice.kind], party_name=party_name
    )


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def pdf(invoice: Invoice, party_name: str, path: Path) -> None:
    doc = FPDF(format="A4")
    doc.set_compression(False)  # a few small pages: zlib costs more time than it saves bytes
    doc.add_page()
    doc.set_font("Helvetica", "B", 14)
    doc.cell(0, 8, f"{TITLES[invoice.kind]} {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    meta = [
        ("Bill to", f"{party_name} ({invoice.party_id})"),
        ("Period", f"{invoice.month:%Y-%m}"),
        ("Issued on", str(invoice.issued_on)),
    ]
    if invoice.kind == "invoice":
        meta += [("Due on", str(invoice.due_on)), ("Pay with reference", invoice.number)]
    if invoice.corrects:
        meta.append(("Corrects", f"{invoice.corrects}: {invoice.reason}"))
    for label, value in meta:
        doc.cell(40, 5, label)
        doc.cell(0, 5, _latin(value), new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    widths = (50, 24, 30, 28, 28, 30)
    doc.set_font("Helvetica", "B", 8)
    for width, title in zip(widths, _COLUMNS, strict=True):
        doc.cell(width, 6, title, border="B", align="L" if title == "Program" else "R")
    doc.ln()
    doc.set_font("Helvetica", size=8)
    for line in invoice.lines:
        values = [
            _latin(line["program_id"]),
            f"{line['sales']:,}",
            *(major(line[k], invoice.currency) for k in _AMOUNTS),
        ]
        for width, value, n in zip(widths, values, range(6), strict=True):
            doc.cell(width, 5, value, align="L" if n == 0 else "R")
        doc.ln()
    doc.set_font("Helvetica", "B", 9)
    doc.cell(sum(widths[:-1]), 7, f"Total due ({invoice.currency})", border="T")
    doc.cell(widths[-1], 7, major(invoice.total_minor, invoice.currency), border="T", align="R")
    doc.output(str(path))


def xlsx(invoice: Invoice, days: pl.DataFrame, path: Path) -> None:
    """Sheet Invoice: the lines per program and the total; sheet Days: the sales of each day."""
    book = xlsxwriter.Workbook(str(path), {"in_memory": True})
    bold = book.add_format({"bold": True})
    decimals = exponent(invoice.currency)
    money = book.add_format({"num_format": "#,##0" + ("." + "0" * decimals if decimals else "")})
    scale = 10**decimals
    sheet = book.add_worksheet("Invoice")
    sheet.write_row(
        0,
        0,
        [TITLES[invoice.kind], invoice.number, invoice.party_id, f"{invoice.month:%Y-%m}", invoice.currency],
        bold,
    )
    sheet.write_row(2, 0, _COLUMNS, bold)
    row = 3
    for line in invoice.lines:
        sheet.write_string(row, 0, line["program_id"])
        sheet.write_number(row, 1, line["sales"])
        for col, key in enumerate(_AMOUNTS, start=2):
            sheet.write_number(row, col, line[key] / scale, money)
        row += 1
    sheet.write_string(row, 0, "Total due", bold)
    sheet.write_number(row, 5, invoice.total_minor / scale, money)
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 5, 16)
    sheet = book.add_worksheet("Days")
    sheet.write_row(0, 0, ("Date", *_COLUMNS[1:5]), bold)
    for n, (day, sales, *amounts) in enumerate(days.iter_rows(), start=1):
        sheet.write_string(n, 0, day.isoformat())
        sheet.write_number(n, 1, sales)
        for col, value in enumerate(amounts, start=2):
            sheet.write_number(n, col, value / scale, money)
    book.close()


Job = tuple[dict[str, Path], Invoice, str, pl.DataFrame]
PARALLEL_FROM = 64  # documents: below, one process; from there, one per core (spawned: ~1 s to start)


def _write_missing(jobs: list[Job]) -> int:
    for files, invoice, party_name, days in jobs:
        files["html"].parent.mkdir(parents=True, exist_ok=True)
        writers = {
            "html": lambda p, i=invoice, n=party_name: p.write_text(html(i, n), encoding="utf-8"),
            "pdf": lambda p, i=invoice, n=party_name: pdf(i, n, p),
            "xlsx": lambda p, i=invoice, d=days: xlsx(i, d, p),
        }
        for kind, path in files.items():
            if not path.exists():
                _atomic(path, writers[kind])
    return len(jobs)


def write_month(ws: Workspace, month: date) -> int:
    """Write the missing files of the month's invoices and credit notes; how many documents lacked some.
    Many documents are written by one spawned process per core (the files are CPU-bound Python)."""
    docs = [
        i
        for i in invoices.list_invoices(ws, month=month, limit=1_000_000)
        if not all(p.exists() for p in paths(ws, i).values())
    ]
    if not docs:
        return 0
    with ws.read_engine.connect() as conn:
        names = dict(
            conn.execute(
                select(gc_parties.c.party_id, gc_parties.c.name).where(
                    gc_parties.c.party_id.in_({i.party_id for i in docs})
                )
            ).all()
        )
    days = commission_lines.month_lines(
        ws,
        month,
        "party_id, currency, sale_date, count(*) AS sales, sum(face_value_minor)::BIGINT, "
        "sum(discount_minor)::BIGINT, sum(commission_minor)::BIGINT",
        grouped=True,
    ).sort("party_id", "currency", "sale_date")
    by_party = days.partition_by("party_id", "currency", as_dict=True, include_key=False)
    empty = days.drop("party_id", "currency").clear()
    jobs = [
        (
            paths(ws, i),
            i,
            names.get(i.party_id, i.party_id),
            by_party.get((i.party_id, i.currency), empty) if i.kind == "invoice" else empty,
        )
        for i in docs
    ]
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_FROM or workers < 2:
        return _write_missing(jobs)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_write_missing, [jobs[n::workers] for n in range(workers)]))
