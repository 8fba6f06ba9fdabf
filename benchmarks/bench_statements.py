"""Bank statement intake speed (issue 11): a 200,000-entry statement loads at >= 50% of the parser's rate.

For MT940 and camt.053, one statement file of `--entries` debit entries (the bank simulator's exporter,
`ops_pipeline.partners.statements`), then in the same run, alternating, `--repeat` times each:
- the floor: the parser alone (MT940: the `mt-940` package's `mt940.parse` of the text; camt.053: the
  standard library's `ElementTree.fromstring` of the bytes, which our camt.053 parser builds on);
- ours: `statements.intake.load_statement` into a new workspace (detect, parse, check, one Delta commit,
  the audit record).
The figure is entries/s of the best run of each; the target is ours >= 50% of the floor's.

    .venv/bin/python -m benchmarks.bench_statements                    # full size
    .venv/bin/python -m benchmarks.bench_statements --entries 20000    # quick

Writes `benchmarks/results/statements.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "statements.json"
TARGET = 0.5
CURRENCIES = ("EUR", "USD", "GBP", "JPY")


def statement(fmt: str, entries: int) -> bytes:
    """A statement of `entries` payouts paid by the simulated bank (four currencies, one statement each)."""
    from ops_pipeline.partners.statements import RENDERERS

    payouts = {f"po-{n:08d}": {"payout_id": f"SIM-{n:08d}", "amount_minor": 100 + n * 37 % 5_000_000,
                               "currency": CURRENCIES[n % len(CURRENCIES)], "business_id": f"M{n % 3000:05d}"}
               for n in range(entries)}
    return RENDERERS[fmt](payouts, date(2026, 12, 1)).encode()


def parse_alone(fmt: str, data: bytes) -> None:
    if fmt == "mt940":
        import mt940

        mt940.parse(data.decode())
    else:
        ET.fromstring(data)


def load(data: bytes, fmt: str) -> tuple[int, float]:
    """(entries, seconds) of `load_statement` into a new workspace (its creation not timed)."""
    from ops_pipeline.settings import Settings
    from ops_pipeline.statements.intake import load_statement
    from ops_pipeline.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-statements-") as home:
        ws = Workspace(Settings.from_env({"OPS_HOME": home}))
        ws.init()
        started = time.perf_counter()
        result = load_statement(ws, data, f"bench.{fmt}", actor="bench")
        seconds = time.perf_counter() - started
        ws.close()
        return result.entries, seconds


def timed_parse(fmt: str, data: bytes) -> float:
    started = time.perf_counter()
    parse_alone(fmt, data)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    cfg = p.parse_args(argv)
    started = datetime.now(UTC)
    formats = {}
    for fmt in ("mt940", "camt053"):
        data = statement(fmt, cfg.entries)
        assert load(data, fmt)[0] == cfg.entries  # warm-up
        parser, ours = [], []
        for _ in range(cfg.repeat):
            parser.append(timed_parse(fmt, data))
            ours.append(load(data, fmt)[1])
        floor, best = cfg.entries / min(parser), cfg.entries / min(ours)
        formats[fmt] = {"file_bytes": len(data), "parser_s": [round(s, 3) for s in parser],
                        "load_s": [round(s, 3) for s in ours], "parser_entries_per_s": round(floor),
                        "load_entries_per_s": round(best), "ratio": round(best / floor, 3),
                        "target_ratio": TARGET, "met": best / floor >= TARGET}
    out = {"benchmark": "statements", "started_at": started.isoformat(), "entries": cfg.entries,
           "repeat": cfg.repeat, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                             "platform": platform.platform()}, "formats": formats}
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'format':<10}{'entries':>9}{'parser/s':>12}{'load/s':>12}{'ratio':>8}  target >= {TARGET}")
    for fmt, f in formats.items():
        print(f"{fmt:<10}{cfg.entries:>9}{f['parser_entries_per_s']:>12}{f['load_entries_per_s']:>12}"
              f"{f['ratio']:>8.2f}  {'met' if f['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
