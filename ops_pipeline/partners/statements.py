"""The simulated bank's statement of its payout accounts, as SWIFT MT940 or ISO 20022 camt.053 text.

One statement per currency, balances opening at zero. Entries: every payout paid, a debit (`D`); a payout
that came back, a reversal (`RD`, MT940 `:86:/RTRN/<reason>`, camt `RvslInd`); a charge the bank took, a
debit no payout explains. The payer's reference (our payout id) is the end-to-end reference (MT940
`:86:/EREF/`, camt `EndToEndId`), the bank's payout id the bank's reference (MT940 `//` of `:61:`, camt
`AcctSvcrRef`). `account` names the statement's account (a G2P sponsor account, or `PRINCIPAL_TRANSFERS`
whose debits are transfers to gift-card principals, the obligation id their reference) instead of the
payout ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from ops_pipeline.money import to_major

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
PRINCIPAL_TRANSFERS = "SIMBANK-PRINCIPAL-TRANSFERS"  # the account transfers to gift-card principals leave


def account_of(currency: str) -> str:
    return f"SIMBANK-PAYOUTS-{currency}"


@dataclass(frozen=True)
class Line:
    """One statement entry: `D` a debit, `RD` the reversal of one, `C` a credit (money received)."""

    reference: str
    bank_reference: str
    amount_minor: int
    currency: str
    mark: str
    text: str


def _by_currency(lines: list[Line]) -> dict[str, list[Line]]:
    grouped = defaultdict(list)
    for line in sorted(lines, key=lambda ln: (ln.bank_reference, ln.mark)):
        grouped[line.currency].append(line)
    return dict(sorted(grouped.items()))


def _swift(minor: int, currency: str) -> str:
    text = str(to_major(minor, currency))
    return text.replace(".", ",") if "." in text else f"{text},"


def _net(items: list[Line]) -> int:
    """Debits minus reversals and credits: the closing debit balance."""
    return sum(-ln.amount_minor if ln.mark in ("RD", "C") else ln.amount_minor for ln in items)


def mt940(lines: list[Line], booked: date, account: str | None = None) -> str:
    ymd, md = booked.strftime("%y%m%d"), booked.strftime("%m%d")
    out = []
    for n, (currency, items) in enumerate(_by_currency(lines).items(), 1):
        net = _net(items)
        out += [f":20:SIM{booked:%Y%m%d}{n:03d}", f":25:{account or account_of(currency)}",
                f":28C:{n:05d}/001", f":60F:C{ymd}{currency}{_swift(0, currency)}"]
        for ln in items:
            amount = _swift(ln.amount_minor, currency)
            out += [f":61:{ymd}{md}{ln.mark}{amount}NTRFNONREF//{ln.bank_reference}",
                    f":86:/EREF/{ln.reference}/{'RTRN' if ln.mark == 'RD' else 'REMI'}/{ln.text}"]
        out.append(f":62F:{'D' if net >= 0 else 'C'}{ymd}{currency}{_swift(abs(net), currency)}")
    return "\n".join(out) + "\n"


def camt053(lines: list[Line], booked: date, account: str | None = None) -> str:
    day = booked.isoformat()
    stmts = []
    for n, (currency, items) in enumerate(_by_currency(lines).items(), 1):
        entries = "".join(
            f"<Ntry><NtryRef>{n}-{i}</NtryRef>"
            f"<Amt Ccy=\"{currency}\">{to_major(ln.amount_minor, currency)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if ln.mark == 'RD' else 'DBIT'}</CdtDbtInd>"
            f"{'<RvslInd>true</RvslInd>' if ln.mark == 'RD' else ''}"
            f"<Sts>BOOK</Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
            f"<ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>{escape(ln.bank_reference)}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(ln.reference)}</EndToEndId></Refs>"
            f"<RmtInf><Ustrd>{escape(ln.text)}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
            for i, ln in enumerate(items, 1)
        )
        stmts.append(f"<Stmt><Id>SIM{booked:%Y%m%d}{n:03d}</Id><CreDtTm>{day}T00:00:00</CreDtTm>"
                     f"<Acct><Id><Othr><Id>{escape(account or account_of(currency))}</Id></Othr></Id>"
                     f"<Ccy>{currency}</Ccy></Acct>"
                     f"{entries}</Stmt>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT_NS}"><BkToCstmrStmt>'
            f"<GrpHdr><MsgId>SIM{booked:%Y%m%d}</MsgId><CreDtTm>{day}T00:00:00</CreDtTm></GrpHdr>"
            f"{''.join(stmts)}</BkToCstmrStmt></Document>\n")


RENDERERS = {"mt940": mt940, "camt053": camt053}
