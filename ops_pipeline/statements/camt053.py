"""ISO 20022 camt.053 (bank to customer statement) XML, read with the standard library.

Any `urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx` version is accepted: the fields read here kept their
names. A document declaring a DOCTYPE or an entity is refused before it is parsed (no entity expansion,
no external resources). Errors name the element path, e.g. `Stmt[1]/Ntry[2]/Amt`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from xml.parsers import expat

from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_minor
from ops_pipeline.statements import Entry

_NAMESPACE = re.compile(r"^\{(urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d{2})\}Document$")
_NTRY = re.compile(rb"<(?:[\w.-]+:)?Ntry[\s>].*?</(?:[\w.-]+:)?Ntry\s*>", re.DOTALL)
_DIRECTIONS = {("DBIT", False): "D", ("CRDT", False): "C", ("CRDT", True): "RD", ("DBIT", True): "RC"}


def _refuse_declarations(data: bytes) -> None:
    """Scan with expat, refusing a DOCTYPE or ENTITY declaration; a syntax error names its line."""
    scanner = expat.ParserCreate()

    def refuse(*_args: object) -> None:
        raise InvalidInput(f"line {scanner.CurrentLineNumber}: DOCTYPE and ENTITY declarations are refused")

    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    try:
        scanner.Parse(data, True)
    except expat.ExpatError as exc:
        problem = expat.ErrorString(exc.code)
        raise InvalidInput(f"line {exc.lineno}: not well-formed XML ({problem})") from None


class _Reader:
    """Finds children in the document's namespace and names their paths in errors."""

    def __init__(self, ns: str):
        self.ns = ns

    def all(self, node: ET.Element, name: str) -> list[ET.Element]:
        return node.findall(f"{{{self.ns}}}{name}")

    def flat(self, node: ET.Element) -> dict[str, ET.Element]:
        """`node`'s children in the namespace by local name (the first of each name)."""
        cut, ns, children = len(self.ns) + 2, f"{{{self.ns}}}", {}
        for child in node:
            if child.tag.startswith(ns):
                children.setdefault(child.tag[cut:], child)
        return children

    def opt(self, node: ET.Element | dict[str, ET.Element], path: str) -> str | None:
        """The stripped text at `path` under `node` (an element, or its `flat` children); None if empty."""
        steps = path.split("/")
        found = node.get(steps.pop(0)) if isinstance(node, dict) else node
        for step in steps:
            found = found.find(f"{{{self.ns}}}{step}") if found is not None else None
        return found.text.strip() if found is not None and found.text and found.text.strip() else None

    def need(self, node: ET.Element | dict[str, ET.Element], path: str, where: str) -> str:
        text = self.opt(node, path)
        if text is None:
            raise InvalidInput(f"{where}/{path}: is missing")
        return text

    def date(self, node: ET.Element | dict[str, ET.Element], paths: tuple[str, ...], where: str) -> date:
        """The first of `paths` present (a date, or the date of a date-time); naming the first if none."""
        path = next((p for p in paths if self.opt(node, p) is not None), paths[0])
        text = self.need(node, path, where)
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise InvalidInput(f"{where}/{path}: {text!r} is not a date") from None


def parse(data: bytes) -> list[Entry]:
    """Every entry (Ntry) of every statement (Stmt) in a camt.053 document, in document order."""
    _refuse_declarations(data)
    root = ET.fromstring(data)
    match = _NAMESPACE.match(root.tag)
    if match is None:
        raise InvalidInput(f"Document: root element {root.tag!r} is not a camt.053 Document")
    r = _Reader(match.group(1))
    entries = []
    for report in r.all(root, "BkToCstmrStmt"):
        for s, stmt in enumerate(r.all(report, "Stmt"), 1):
            where = f"Document/BkToCstmrStmt/Stmt[{s}]"
            ref = r.need(stmt, "Id", where)
            account = r.opt(stmt, "Acct/Id/IBAN") or r.need(stmt, "Acct/Id/Othr/Id", where)
            entries += [(ntry, f"{where}/Ntry[{n}]", ref, account)
                        for n, ntry in enumerate(r.all(stmt, "Ntry"), 1)]
    raws = _raw(data, [e[0] for e in entries], sum(1 for _ in root.iter(f"{{{r.ns}}}Ntry")))
    return [_entry(r, *entry, raw) for entry, raw in zip(entries, raws, strict=True)]


def _raw(data: bytes, entries: list[ET.Element], in_document: int) -> list[str]:
    """Each entry's `Ntry` text: sliced from the file when a plain scan finds exactly the document's entries
    (fast), else serialised from the tree."""
    found = _NTRY.findall(data) if len(entries) == in_document else []
    if len(found) == len(entries):
        try:
            return [f.decode("utf-8") for f in found]
        except UnicodeDecodeError:
            pass
    return [ET.tostring(ntry, encoding="unicode") for ntry in entries]


def _entry(r: _Reader, element: ET.Element, where: str, ref: str, account: str, raw: str) -> Entry:
    ntry = r.flat(element)
    amt = ntry.get("Amt")
    if amt is None:
        raise InvalidInput(f"{where}/Amt: is missing")
    currency = amt.get("Ccy")
    if not currency:
        raise InvalidInput(f"{where}/Amt@Ccy: is missing")
    try:
        minor = to_minor(amt.text or "", currency, field=f"{where}/Amt")
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("currency:", f"{where}/Amt@Ccy:", 1)) from None
    mark = r.need(ntry, "CdtDbtInd", where)
    reversal = (r.opt(ntry, "RvslInd") or "false").lower()
    if mark not in ("DBIT", "CRDT"):
        raise InvalidInput(f"{where}/CdtDbtInd: {mark!r} is not DBIT or CRDT")
    if reversal not in ("true", "false"):
        raise InvalidInput(f"{where}/RvslInd: {reversal!r} is not true or false")
    booked = r.date(ntry, ("BookgDt/Dt", "BookgDt/DtTm"), where)
    value = r.date(ntry, ("ValDt/Dt", "ValDt/DtTm"), where) if "ValDt" in ntry else booked
    tx = "NtryDtls/TxDtls/"
    return Entry(
        statement_ref=ref,
        account=account,
        entry_date=booked,
        value_date=value,
        amount_minor=minor,
        currency=currency,
        direction=_DIRECTIONS[(mark, reversal == "true")],
        customer_reference=r.opt(ntry, tx + "Refs/EndToEndId"),
        bank_reference=r.opt(ntry, "AcctSvcrRef"),
        entry_reference=r.opt(ntry, "NtryRef"),
        details=r.opt(ntry, tx + "RmtInf/Ustrd") or r.opt(ntry, "AddtlNtryInf"),
        raw=raw,
    )
