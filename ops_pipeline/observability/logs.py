"""Log lines: one JSON object per line for machines, plain text on a terminal; the ids of the work in hand.

    with bind(job_id=job.id, job_type=job.type):   # every line logged inside carries jobId and jobType
        ...
    add(actor=principal.sub)                       # bound until the enclosing `bind` (the request) ends

Ids live in a context variable, so the core binds them without knowing how lines are written; asyncio
tasks and `anyio.to_thread` (the API's domain calls) carry them along; new threads start with none.
A JSON line has `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, the bound ids in camelCase
(`correlationId`, `actor`, `jobId`, `batchId`...), the `extra` fields of the call, `traceId`/`spanId`
while a span is recorded, and `exc_info` (the traceback, one string).

`OPS_LOG_FORMAT=json|text` (default: text when stderr is a terminal, else JSON) and `OPS_LOG_LEVEL`
(default INFO) apply to ops-pipeline's own loggers; other libraries log WARNING and above. Secrets: lines
never get request bodies, tokens or job attributes from here, and JWT- or Fernet-shaped strings that reach
a message or a traceback anyway are replaced by `[redacted]`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any

from ops_pipeline.observability import tracing

PACKAGE = "ops_pipeline"
FORMATS = ("json", "text")
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("ops_log_context", default=MappingProxyType({}))
# A JWT (three base64url parts, header and payload JSON objects) or a Fernet token (a sealed value).
_SECRET = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*|gAAAAA[\w=-]{40,}")
# SQLAlchemy names a pool's logger after its class: our subclass of QueuePool would log its INFO lines
# ("Pool disposed") as ours. It logs as a library does: WARNING and above.
_LIBRARY_LOGGERS = ("ops_pipeline.observability.timing.TimedQueuePool",)
_NOT_FIELDS = ("color_message", "taskName")  # uvicorn's coloured copy of its message; Python 3.12's task


@cache
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@contextmanager
def bind(**ids: Any) -> Iterator[None]:
    """Bind ids (snake_case names, written in camelCase) to every line logged inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{_camel(k): v for k, v in ids.items()}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def add(**ids: Any) -> None:
    """Bind ids for the rest of the current context: a FastAPI dependency adds the request's actor this way,
    and the `bind` around the request takes it off again."""
    _CONTEXT.set({**_CONTEXT.get(), **{_camel(k): v for k, v in ids.items()}})


def bound() -> dict[str, Any]:
    """The ids bound here, by their written names."""
    return dict(_CONTEXT.get())


def _redact(text: str) -> str:
    return _SECRET.sub("[redacted]", text)


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context() -> Mapping[str, Any]:
    ids = _CONTEXT.get()
    spans = tracing.current_ids()
    return {**ids, **spans} if spans else ids


class TextFormatter(logging.Formatter):
    """`2026-05-04T09:00:00.123Z INFO logger: message  correlationId=... actor=...`, then the traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _context()
        if ids:
            head, newline, trace = line.partition("\n")
            line = head + "  " + " ".join(f"{k}={v}" for k, v in ids.items()) + newline + trace
        return _redact(line)


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict) -> None:
            log_data["timestamp"] = _timestamp(record.created)
            super().add_fields(log_data, record, message_dict)
            log_data.update(_context())

        def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
            for key in ("message", "exc_info", "stack_info"):
                if isinstance(log_data.get(key), str):
                    log_data[key] = _redact(log_data[key])
            return log_data

    return Formatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, *_NOT_FIELDS],
        json_ensure_ascii=False,
    )


def log_format() -> str:
    """`OPS_LOG_FORMAT`, else text on a terminal and JSON otherwise (a service, a pipe, a file)."""
    chosen = (os.environ.get("OPS_LOG_FORMAT") or "").strip().lower()
    if chosen in FORMATS:
        return chosen
    return "text" if sys.stderr.isatty() else "json"


def log_level() -> int:
    """`OPS_LOG_LEVEL` (a name such as DEBUG or WARNING), INFO when unset or unknown."""
    level = logging.getLevelName((os.environ.get("OPS_LOG_LEVEL") or "INFO").strip().upper())
    return level if isinstance(level, int) else logging.INFO


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def handler() -> logging.Handler:
    """A stderr handler in the chosen format (also the factory named in `uvicorn_config`)."""
    made = _Stderr()
    made.setFormatter(_json_formatter() if log_format() == "json" else TextFormatter())
    made.set_name("ops")
    return made


def configure(root: bool = True) -> None:
    """Write log lines to stderr; again, it replaces what it set before. `root=False` (Dagster processes,
    whose own loggers are Dagster's business) takes ops-pipeline's loggers only, and only if nothing in the
    process has configured the root logger with ours already."""
    package = logging.getLogger(PACKAGE)
    target = logging.root if root else package
    if not root and any(h.get_name() == "ops" for h in logging.root.handlers):
        return
    for old in [h for h in target.handlers if h.get_name() == "ops"]:
        target.removeHandler(old)
    target.addHandler(handler())
    if root:
        logging.root.setLevel(logging.WARNING)
    package.setLevel(log_level())
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def uvicorn_config() -> dict[str, Any]:
    """`configure()` as uvicorn's `log_config`: uvicorn applies it in each worker process it starts, and its
    own loggers (`uvicorn.error`) write through our handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"ops": {"()": f"{__name__}.handler"}},
        "root": {"level": "WARNING", "handlers": ["ops"]},
        "loggers": {PACKAGE: {"level": logging.getLevelName(log_level())},
                    **{name: {"level": "WARNING"} for name in _LIBRARY_LOGGERS}},
    }
