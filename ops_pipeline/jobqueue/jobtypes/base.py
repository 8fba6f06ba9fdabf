"""The job type interface: an input model, approval and attempts policy, and an ordered list of actions.

Fields annotated `Sensitive` (UPI VPAs, bank details, contact e-mails and phones, street lines and postal
codes) are sealed when stored: each value becomes `{"enc": <Fernet token>, "masked": "ab***@upi"}`;
`open` restores them in memory for the actions and `masked` gives the view the API and the CLI show.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ops_pipeline.crypto import Cipher, is_sealed
from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue.actions import Action

Path = tuple[str, ...]  # field names, "[]" for every item of a list


@dataclass(frozen=True)
class Sensitive:
    """Marks a string field as secret at rest; `mask` gives the form views may show."""

    kind: str
    mask: Callable[[str], str]

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        schema.update({"writeOnly": True, "x-sensitive": self.kind})
        return schema


def sensitive_paths(model: type[BaseModel]) -> dict[Path, Sensitive]:
    """Every path in `model` (through nested models, lists and optionals) to a `Sensitive` field."""
    found: dict[Path, Sensitive] = {}

    def walk(annotation: Any, path: Path, metadata: tuple | list = ()) -> None:
        for m in metadata:
            if isinstance(m, Sensitive):
                found[path] = m
                return
        origin = get_origin(annotation)
        if origin is Annotated:
            base, *meta = get_args(annotation)
            walk(base, path, meta)
        elif origin in (list, tuple, set, frozenset):
            walk(get_args(annotation)[0], (*path, "[]"))
        elif origin in (Union, types.UnionType):
            for arg in get_args(annotation):
                walk(arg, path)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, info in annotation.model_fields.items():
                walk(info.annotation, (*path, name), info.metadata)

    walk(model, ())
    return found


def _apply(data: Any, path: Path, fn: Callable[[Any], Any]) -> Any:
    if data is None:
        return None
    if not path:
        return fn(data)
    head, rest = path[0], path[1:]
    if head == "[]":
        return [_apply(item, rest, fn) for item in data]
    if head in data:
        return {**data, head: _apply(data[head], rest, fn)}
    return data


def seal_sensitive(data: Any, paths: dict[Path, Sensitive], cipher: Cipher) -> Any:
    """`data` (JSON) with the value at each sensitive path encrypted, with its masked form."""
    for path, marker in paths.items():
        data = _apply(data, path, lambda v, m=marker: cipher.seal(v, m.mask(v)))
    return data


def open_sensitive(data: Any, paths: dict[Path, Sensitive], cipher: Cipher) -> Any:
    """Sealed JSON with the sensitive values decrypted (keep it in memory only)."""
    for path in paths:
        data = _apply(data, path, lambda v: cipher.open(v) if is_sealed(v) else v)
    return data


def mask_sensitive(data: Any, paths: dict[Path, Sensitive]) -> Any:
    """Sealed (or plain) JSON with each sensitive value replaced by its masked form."""
    for path, marker in paths.items():
        data = _apply(data, path, lambda v, m=marker: v["masked"] if is_sealed(v) else m.mask(v))
    return data


def describe(exc: ValidationError, root: str = "attributes") -> str:
    """Pydantic errors as `attributes.upi_vpas[1]: 'x' is not a valid UPI VPA; ...`."""
    problems = []
    for error in exc.errors():
        path = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        problems.append(f"{path}: {_problem(error)}")
    return "; ".join(problems)


def _problem(error: dict[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known attribute"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    message = error["msg"][0].lower() + error["msg"][1:]
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 60):
        return f"{message} (got {value!r})"
    return message


@dataclass(frozen=True)
class JobType:
    name: str
    model: type[BaseModel]
    description: str
    example: dict[str, Any]
    actions: tuple[Action, ...] = ()
    needs_approval: bool = False
    max_attempts: int = 5

    @property
    def automated(self) -> bool:
        """Workers run it; a type without actions (manual) is done by a person."""
        return bool(self.actions)

    @cached_property
    def sensitive(self) -> dict[Path, Sensitive]:
        return sensitive_paths(self.model)

    def validate(self, attributes: Any) -> BaseModel:
        """The attributes as the type's model; InvalidInput naming every field at fault."""
        if not isinstance(attributes, dict):
            raise InvalidInput(f"attributes: must be an object, not {type(attributes).__name__}")
        try:
            return self.model.model_validate(attributes)
        except ValidationError as exc:
            raise InvalidInput(describe(exc)) from None

    def seal(self, attributes: BaseModel, cipher: Cipher) -> dict[str, Any]:
        """The JSON to store: sensitive values encrypted, with their masked forms."""
        return seal_sensitive(attributes.model_dump(mode="json"), self.sensitive, cipher)

    def open(self, stored: dict[str, Any], cipher: Cipher) -> BaseModel:
        """The stored JSON back as the model, sensitive values decrypted (keep it in memory only)."""
        return self.model.model_validate(open_sensitive(stored, self.sensitive, cipher))

    def masked(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored JSON with each sensitive value replaced by its masked form."""
        return mask_sensitive(stored, self.sensitive)

    def describe(self) -> dict[str, Any]:
        """Its catalog entry: identifier, JSON Schema of its attributes, approval, actions."""
        return {
            "type": self.name,
            "description": self.description,
            "needs_approval": self.needs_approval,
            "max_attempts": self.max_attempts,
            "actions": [a.name for a in self.actions],
            "sensitive_fields": [".".join(p).replace(".[]", "[]") for p in self.sensitive],
            "attributes_schema": self.model.model_json_schema(),
            "example": self.example,
        }
