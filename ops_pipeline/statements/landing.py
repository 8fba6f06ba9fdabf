"""Statement files dropped in `OPS_HOME/landing/statements/`: loaded in order of arrival, then archived.

A loaded file moves to `landing/archive/statements/`; a refused one to `landing/archive/statements/rejected/`
next to a `<name>.error.txt` with the reason, so it never blocks the files after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger.landing import archive, waiting
from ops_pipeline.settings import Settings
from ops_pipeline.statements.intake import LoadResult, load_statement
from ops_pipeline.workspace import Workspace

KIND = "statements"
REJECTED = f"{KIND}/rejected"


@dataclass(frozen=True)
class LandingOutcome:
    path: Path
    archived_as: Path
    result: LoadResult | None = None
    error: str | None = None


def landing_dir(settings: Settings) -> Path:
    return settings.landing_dir / KIND


def waiting_files(settings: Settings) -> list[Path]:
    """Files waiting in the folder (no dot-names), oldest arrival (inode change time) first."""
    found = waiting(landing_dir(settings))
    return [path for path, _ in sorted(found, key=lambda f: (f[1].st_ctime_ns, f[0].name))]


def load_landing(ws: Workspace, actor: str) -> list[LandingOutcome]:
    """Load every waiting statement file and archive it; a refused file is archived as rejected."""
    outcomes = []
    for path in waiting_files(ws.settings):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        try:
            result = load_statement(ws, data, path.name, actor)
        except InvalidInput as exc:
            target = archive(ws.settings, path, REJECTED)
            target.with_name(f"{target.name}.error.txt").write_text(f"{exc}\n")
            outcomes.append(LandingOutcome(path, target, error=str(exc)))
            continue
        outcomes.append(LandingOutcome(path, archive(ws.settings, path, KIND), result=result))
    return outcomes
