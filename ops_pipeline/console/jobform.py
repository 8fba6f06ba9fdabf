"""The create-a-job form, generated from a job type's JSON Schema (the one `GET /api/job/types` serves).

How schema parts become inputs (each named by its dotted path, e.g. `bank_account.ifsc`):
- strings: a text input (`format: date` a date input); an `enum`: a select;
- integers and numbers: a text input, converted by the type's model; decimal amounts (number or decimal
  string) are kept as the exact string typed, never a float;
- booleans: a select (not set / yes / no);
- nested objects: a fieldset of their fields; an optional one left at its defaults is left out;
- arrays of strings or numbers: a textarea, one item per line (blank lines ignored);
- anything else (arrays of objects, unions): a textarea of JSON.
Optional values (`anyOf` with null) are optional inputs. Empty inputs are left out, so the model's defaults
and its "is required" apply. The job's own fields are `priority`, `expires_at` (UTC), `idempotency_key` and
`depends_on` (job ids separated by commas or spaces); no type has attributes of those names.

`attributes(fields, form)` builds the attributes (and errors of its own, e.g. bad JSON), and `field_errors`
maps the domain's InvalidInput message (`attributes.bank_account.ifsc: ...; dependsOn: ...`) onto the
inputs, so each error is shown next to its field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JOB_FIELDS = ("priority", "expires_at", "idempotency_key", "depends_on")
_ERROR_PATH = r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*|\[\d+\])*"
_PROBLEMS = re.compile(rf"; (?={_ERROR_PATH}: )")
_PROBLEM = re.compile(rf"({_ERROR_PATH}): (.*)", re.S)
_DOMAIN_NAMES = {"dependsOn": "depends_on"}


@dataclass(frozen=True)
class Field:
    name: str  # the input's name: the dotted path of the attribute
    label: str
    kind: str  # text, decimal, integer, number, date, enum, boolean, group, lines or json
    required: bool
    help: str = ""
    default: str = ""
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    sensitive: bool = False
    children: tuple[Field, ...] = ()

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def form_fields(schema: dict[str, Any]) -> tuple[Field, ...]:
    """The inputs for a type's attributes schema, in the schema's order."""
    return _properties(schema, schema, "")


def _properties(schema: dict[str, Any], root: dict[str, Any], prefix: str) -> tuple[Field, ...]:
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    return tuple(_field(f"{prefix}{name}", prop, root, name in required) for name, prop in properties.items())


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return root["$defs"][ref.rsplit("/", 1)[-1]] if ref else schema


def _field(name: str, prop: dict[str, Any], root: dict[str, Any], required: bool) -> Field:
    s = _resolve(prop, root)
    options = [_resolve(o, root) for o in s.get("anyOf", ())]
    if any(o.get("type") == "null" for o in options):
        required = False
        options = [o for o in options if o.get("type") != "null"]
        if len(options) == 1:  # `X | None`: the input of X
            s = {**options[0], **{k: v for k, v in s.items() if k != "anyOf"}}
            options = [_resolve(o, root) for o in s.get("anyOf", ())]
    kind = _kind(s, options, root)
    default = s.get("default")
    return Field(
        name=name,
        label=s.get("title") or name.rsplit(".", 1)[-1],
        kind=kind,
        required=required,
        help=s.get("description", ""),
        default="" if default is None or isinstance(default, dict | list) else _text(default),
        choices=tuple(s.get("enum", ())),
        max_length=s.get("maxLength"),
        sensitive="x-sensitive" in s,
        children=_properties(s, root, f"{name}.") if kind == "group" else (),
    )


def _kind(s: dict[str, Any], options: list[dict[str, Any]], root: dict[str, Any]) -> str:
    if options:
        return "decimal" if {o.get("type") for o in options} == {"number", "string"} else "json"
    if "enum" in s:
        return "enum"
    kind = s.get("type")
    if kind == "object" and "properties" in s:
        return "group"
    if kind == "array":
        items = _resolve(s.get("items", {}), root)
        item_kind = _kind(items, [_resolve(o, root) for o in items.get("anyOf", ())], root)
        return "lines" if item_kind in ("text", "decimal", "integer", "number") else "json"
    if kind == "string":
        return "date" if s.get("format") == "date" else "text"
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(kind, "json")


# -- reading a posted form -----------------------------------------------------------------------------


def attributes(fields: tuple[Field, ...], form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The attributes a posted form gives, and errors of the form's own (JSON that does not parse)."""
    errors: dict[str, str] = {}
    return _collect(fields, form, errors), errors


def _collect(fields: tuple[Field, ...], form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind == "group":
            inner = _collect(f.children, form, errors)
            leaves = (c for c in f.walk() if not c.children)
            changed = any(form.get(c.name, "").strip() not in ("", c.default) for c in leaves)
            if f.required or changed:
                out[f.name.rsplit(".", 1)[-1]] = inner
            continue
        raw = form.get(f.name, "").strip()
        if not raw:
            continue
        key = f.name.rsplit(".", 1)[-1]
        if f.kind == "boolean":
            out[key] = raw == "true"
        elif f.kind == "lines":
            out[key] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif f.kind == "json":
            try:
                out[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                errors[f.name] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        else:
            out[key] = raw
    return out


def expires_at(raw: str) -> datetime | None:
    """The form's `expires_at` (a browser's date and time, read as UTC); ValueError naming the value."""
    if not raw.strip():
        return None
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{raw[:40]!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def depends_on(raw: str) -> list[int | str] | None:
    """Job ids separated by commas or spaces; a token that is not a number is passed on for the domain to
    refuse by name."""
    tokens = [t for t in re.split(r"[\s,]+", raw.strip()) if t]
    return [int(t) if t.isdigit() else t for t in tokens] or None


def field_errors(message: str, fields: tuple[Field, ...]) -> dict[str, str]:
    """The domain's message as errors by input name; what names no input goes under `""`."""
    kinds = {f.name: f.kind for top in fields for f in top.walk()} | dict.fromkeys(JOB_FIELDS, "job")
    errors: dict[str, list[str]] = {}
    for part in _PROBLEMS.split(message):
        match = _PROBLEM.fullmatch(part)
        name, prefix = _input_for(match.group(1), kinds) if match else ("", "")
        errors.setdefault(name, []).append(prefix + match.group(2) if match else part)
    return {name: "; ".join(problems) for name, problems in errors.items()}


def _input_for(path: str, kinds: dict[str, str]) -> tuple[str, str]:
    """(input name, problem prefix): `attributes.upi_vpas[1]` -> ('upi_vpas', 'line 2: ')."""
    path = _DOMAIN_NAMES.get(path, path)
    if path.startswith("attributes."):
        path = path.removeprefix("attributes.")
    head, bracket, rest = path.partition("[")
    if head not in kinds:
        return "", f"{path}: "
    if not bracket:
        return head, ""
    index, _, tail = rest.partition("]")
    if kinds[head] == "lines":
        return head, f"line {int(index) + 1}{tail}: "
    return head, f"[{index}]{tail}: "


# -- filling a form ------------------------------------------------------------------------------------


def values_of(fields: tuple[Field, ...], attributes: dict[str, Any] | None = None) -> dict[str, str]:
    """Input values: the schema's defaults, overlaid with `attributes` (e.g. the type's example)."""
    values = {f.name: f.default for top in fields for f in top.walk() if f.default}
    for f in (f for top in fields for f in top.walk() if not f.children):
        value = _lookup(attributes or {}, f.name.split("."))
        if value is not None:
            values[f.name] = _input_value(f, value)
    return values


def _lookup(data: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _input_value(f: Field, value: Any) -> str:
    if f.kind == "lines":
        return "\n".join(_text(v) for v in value)
    if f.kind == "json":
        return json.dumps(value, indent=2)
    return _text(value)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
