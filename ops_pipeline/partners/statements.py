"""The simulated bank's statement of the payouts it paid, as SWIFT MT940 or ISO 20022 camt.053 text.

One statement per currency, every payout a debit entry booked on `booked`: the payer's reference (our payout
id) as end-to-end reference (MT940 `:86:/EREF/`, camt `EndToEndId`), the bank's payout id as the bank's
reference (MT940 `//` of `:61:`, camt `AcctSvcrRef`). Balances open at zero.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from ops_pipeline.money import to_major

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def account_of(currency: str) -> str:
    return f"SIMBANK-PAYOUTS-{currency}"


def _by_currency(payouts: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    grouped = defaultdict(list)
    for reference, payout in sorted(payouts.items(), key=lambda kv: kv[1]["payout_id"]):
        grouped[payout["currency"]].append((reference, payout))
    return dict(sorted(grouped.items()))


def _swift(minor: int, currency: str) -> str:
    text = str(to_major(minor, currency))
    return text.replace(".", ",") if "." in text else f"{text},"


def mt940(payouts: dict[str, dict[str, Any]], booked: date) -> str:
    ymd, md = booked.strftime("%y%m%d"), booked.strftime("%m%d")
    lines = []
    for n, (currency, items) in enumerate(_by_currency(payouts).items(), 1):
        total = sum(p["amount_minor"] for _, p in items)
        lines += [f":20:SIM{booked:%Y%m%d}{n:03d}", f":25:{account_of(currency)}", f":28C:{n:05d}/001",
                  f":60F:C{ymd}{currency}{_swift(0, currency)}"]
        for reference, p in items:
            lines += [f":61:{ymd}{md}D{_swift(p['amount_minor'], currency)}NTRFNONREF//{p['payout_id']}",
                      f":86:/EREF/{reference}/REMI/payout to {p['business_id']}"]
        lines.append(f":62F:D{ymd}{currency}{_swift(total, currency)}")
    return "\n".join(lines) + "\n"


def camt053(payouts: dict[str, dict[str, Any]], booked: date) -> str:
    day = booked.isoformat()
    stmts = []
    for n, (currency, items) in enumerate(_by_currency(payouts).items(), 1):
        entries = "".join(
            f"<Ntry><NtryRef>{n}-{i}</NtryRef>"
            f"<Amt Ccy=\"{currency}\">{to_major(p['amount_minor'], currency)}</Amt>"
            f"<CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
            f"<ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>{escape(p['payout_id'])}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(reference)}</EndToEndId></Refs>"
            f"<RmtInf><Ustrd>payout to {escape(p['business_id'])}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
            for i, (reference, p) in enumerate(items, 1)
        )
        stmts.append(f"<Stmt><Id>SIM{booked:%Y%m%d}{n:03d}</Id><CreDtTm>{day}T00:00:00</CreDtTm>"
                     f"<Acct><Id><Othr><Id>{account_of(currency)}</Id></Othr></Id><Ccy>{currency}</Ccy></Acct>"
                     f"{entries}</Stmt>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT_NS}"><BkToCstmrStmt>'
            f"<GrpHdr><MsgId>SIM{booked:%Y%m%d}</MsgId><CreDtTm>{day}T00:00:00</CreDtTm></GrpHdr>"
            f"{''.join(stmts)}</BkToCstmrStmt></Document>\n")


RENDERERS = {"mt940": mt940, "camt053": camt053}
