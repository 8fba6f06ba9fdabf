"""Portal exports dropped in `OPS_HOME/landing/portals/<principal_id>/`: loaded in order of arrival with the
principal's mapping, then archived to `landing/archive/portals/<principal_id>/`; a refused file (no mapping,
unreadable, missing columns) to `.../rejected/` next to a `<name>.error.txt` with the reason."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.giftcards.portal_exports import ExportLoad, load_export
from ops_pipeline.ledger.landing import archive, waiting
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace

KIND = "portals"
SETTLE_SECONDS = 1.0  # a file changed more recently may still be being written: left for the next call


@dataclass(frozen=True)
class LandingOutcome:
    path: Path
    archived_as: Path
    result: ExportLoad | None = None
    error: str | None = None


def waiting_files(settings: Settings) -> list[tuple[str, Path]]:
    """(principal id, file) of every settled file waiting, oldest arrival (inode change time) first."""
    root = settings.landing_dir / KIND
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    settled = time.time_ns() - int(SETTLE_SECONDS * 1e9)
    found = [(folder.name, path, st) for folder in folders for path, st in waiting(folder)
             if st.st_ctime_ns <= settled]
    return [(principal, path) for principal, path, st in sorted(found, key=lambda f: (f[2].st_ctime_ns,
                                                                                       f[1].name))]


def load_landing(ws: Workspace, actor: str) -> list[LandingOutcome]:
    """Load every waiting export and archive it; a refused file is archived as rejected with its reason."""
    outcomes = []
    for principal_id, path in waiting_files(ws.settings):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # taken meanwhile
            continue
        try:
            result = load_export(ws, principal_id, data, path.name, actor)
        except (InvalidInput, NotFound) as exc:
            target = archive(ws.settings, path, f"{KIND}/{principal_id}/rejected")
            target.with_name(f"{target.name}.error.txt").write_text(f"{exc}\n")
            outcomes.append(LandingOutcome(path, target, error=str(exc)))
            continue
        outcomes.append(LandingOutcome(path, archive(ws.settings, path, f"{KIND}/{principal_id}"), result))
    return outcomes
