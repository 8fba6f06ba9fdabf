"""SWIFT MT940 statements, parsed with the `mt-940` package; errors name the line and the tag or field.

A file may hold several statements, each starting at `:20:`. Entries are the `:61:` statement lines with
the `:86:` information that follows them; the currency is that of the statement's opening balance.
The customer reference is the `:86:` end-to-end reference (`/EREF/...`) when there is one, else the `:61:`
customer reference (`NONREF`: none); the bank reference is the `:61:` one after `//`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import mt940

from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_minor
from ops_pipeline.statements import Entry

logging.getLogger("mt940").setLevel(logging.CRITICAL)  # it logs every failed match; we raise instead
_TAG = re.compile(r"^:(?P<tag>\d{2}[A-Z]?|NS):", re.MULTILINE)
_EREF = re.compile(r"(?:^|/)EREF/([^/]+)")
# the head of a :61: line, field by field, for an error that names the field at fault
_LINE_61 = (
    ("value date", re.compile(r"\d{6}")),
    ("entry date", re.compile(r"(\d{4})?")),
    ("debit/credit mark", re.compile(r"R?[DC]")),
    ("funds code", re.compile(r"[A-Z]?")),
    ("amount", re.compile(r"\d{1,12},\d{0,3}(?![\d,])")),
)
# all the fields at once, each atomic (no backtracking into a field), so it accepts what the loop accepts
_LINE_61_HEAD = re.compile("".join(f"(?>{p.pattern})" for _, p in _LINE_61))


@dataclass(frozen=True)
class _Tag:
    tag: str
    line: int
    start: int  # offset of the tag in the text
    value: str


def _tags(text: str) -> list[_Tag]:
    matches = list(_TAG.finditer(text))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    tags, line, counted = [], 1, 0
    for m, end in zip(matches, ends, strict=True):
        line += text.count("\n", counted, m.start())  # counted so far: linear in the text, not quadratic
        counted = m.start()
        tags.append(_Tag(m["tag"], line, m.start(), text[m.end():end].strip()))
    return tags


def _check_61(tag: _Tag) -> None:
    if _LINE_61_HEAD.match(tag.value):
        return
    pos = 0
    for field, pattern in _LINE_61:
        match = pattern.match(tag.value, pos)
        if match is None:
            raise InvalidInput(f"line {tag.line}: :61: {field}: {tag.value[pos:pos + 16]!r} is not valid")
        pos = match.end()


def _parse_block(text: str, tags: list[_Tag]) -> mt940.models.Transactions:
    """Parse one statement; on failure find the first tag whose inclusion breaks it (binary search)."""
    try:
        return mt940.parse(text)
    except Exception:  # the package raises RuntimeError, ValueError, decimal errors...
        pass
    good, bad = 0, len(tags)  # the first `good` tags parse; all `bad` do not
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            mt940.parse(text[: tags[mid].start])
            good = mid
        except Exception:
            bad = mid
    tag = tags[bad - 1]
    raise InvalidInput(f"line {tag.line}: :{tag.tag}: {tag.value.splitlines()[0][:40]!r} is not valid")


def parse(text: str) -> list[Entry]:
    """Every entry of every statement in an MT940 text, in file order."""
    entries: list[Entry] = []
    tags = _tags(text)
    if not any(t.tag == "20" for t in tags):
        raise InvalidInput("line 1: :20: no statement found (an MT940 statement starts with :20:)")
    starts = [i for i, t in enumerate(tags) if t.tag == "20"]
    for first, end in zip(starts, [*starts[1:], len(tags)], strict=True):
        block = tags[first:end]
        for tag in block:
            if tag.tag == "61":
                _check_61(tag)
        offset = block[0].start
        stop = tags[end].start if end < len(tags) else len(text)
        local = [_Tag(t.tag, t.line, t.start - offset, t.value) for t in block]
        parsed = _parse_block(text[offset:stop], local)
        entries += _entries(parsed, block)
    return entries


def _ref(value: str | None) -> str | None:
    return None if not value or value.upper() == "NONREF" else value


def _eref(info: _Tag | None) -> str | None:
    """The end-to-end reference of a structured `:86:` (`/EREF/...`): it may exceed 16 characters."""
    match = info and _EREF.search(info.value.replace("\n", ""))
    return match.group(1) if match else None


def _entries(parsed: mt940.models.Transactions, block: list[_Tag]) -> list[Entry]:
    lines = [(t, nxt if nxt and nxt.tag == "86" else None)
             for t, nxt in zip(block, [*block[1:], None], strict=True) if t.tag == "61"]
    head = parsed.data
    account = head.get("account_identification")
    if not account:
        raise InvalidInput(f"line {block[0].line}: :25: the statement names no account")
    out = []
    for tx, (tag, info) in zip(parsed, lines, strict=True):
        data = tx.data
        currency = data.get("currency")
        if not currency:
            raise InvalidInput(f"line {tag.line}: :60F: no opening balance gives the currency")
        try:
            minor = to_minor(abs(data["amount"].amount), currency)
        except InvalidInput as exc:
            raise InvalidInput(f"line {tag.line}: :61: {exc}") from None
        value_date = data["date"]
        out.append(Entry(
            statement_ref=head.get("transaction_reference") or "",
            account=account,
            entry_date=data.get("entry_date") or value_date,
            value_date=value_date,
            amount_minor=minor,
            currency=currency,
            direction=data["status"].upper(),
            customer_reference=_eref(info) or _ref(data.get("customer_reference")),
            bank_reference=data.get("bank_reference") or None,
            entry_reference=None,
            details=data.get("transaction_details") or None,
            raw=f":61:{tag.value}" + (f"\n:86:{info.value}" if info else ""),
        ))
    return out
