"""Landing folders and file ingest: the one path the CLI, Dagster and the demo take to ingest files.

Files dropped in `OPS_HOME/landing/<kind>/` wait there until ingested, then move to
`OPS_HOME/landing/archive/<kind>/`. Writers should write elsewhere (or under a dot-name) and rename in.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ops_pipeline.ledger import KINDS, ingest
from ops_pipeline.ledger.reading import READERS
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class LandingFile:
    path: Path
    kind: str
    size: int
    mtime_ns: int
    ctime_ns: int

    @property
    def run_key(self) -> str:
        """Same file, same content stamp, same key: a repeated sensor tick never launches it twice."""
        return f"{self.kind}:{self.path.name}:{self.mtime_ns}:{self.size}"

    @property
    def arrival(self) -> tuple[int, str, str]:
        """Order of arrival: the inode change time moves on create, write and rename (unlike mtime,
        which `mv` or `cp -p` keep), so a file moved in with an old mtime still comes after the cursor."""
        return (self.ctime_ns, self.kind, self.path.name)


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file: its ingest result, where it was archived, or why it was skipped."""

    path: Path
    kind: str
    result: ingest.IngestResult | None = None
    archived_as: Path | None = None
    skipped: str | None = None


def waiting(folder: Path, suffixes: Collection[str] | None = None) -> list[tuple[Path, os.stat_result]]:
    """Files waiting in `folder` (no dot-names; only `suffixes` when given) with their stat, unsorted."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or (suffixes is not None and path.suffix.lower() not in suffixes):
            continue
        try:
            st = path.stat()
        except FileNotFoundError:  # taken by a run meanwhile
            continue
        if path.is_file():
            found.append((path, st))
    return found


def landing_files(settings: Settings) -> list[LandingFile]:
    """Files waiting in the landing folders (readable types, no dot-names), in order of arrival."""
    files = [LandingFile(path, kind, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
             for kind in KINDS for path, st in waiting(settings.landing_dir / kind, READERS)]
    return sorted(files, key=lambda f: f.arrival)


def archive_dir(settings: Settings, kind: str) -> Path:
    return settings.landing_dir / "archive" / kind


def archive(settings: Settings, path: Path, kind: str) -> Path:
    """Move an ingested file to the archive under its name; `name.1.csv`, `name.2.csv`... if taken."""
    folder = archive_dir(settings, kind)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        target = folder / (path.name if n == 0 else f"{path.stem}.{n}{path.suffix}")
        try:
            os.link(path, target)  # fails if taken: never overwrites
        except FileExistsError:
            n += 1
            continue
        path.unlink()
        return target


def ingest_files(ws: Workspace, files: Iterable[tuple[Path, str]] | None = None) -> list[FileOutcome]:
    """Ingest these (path, kind) files, by default every file waiting in the landing folders, in order.

    A file taken from a landing folder moves to the archive once ingested; one already moved there by an
    earlier run (a repeated run of the same request) is skipped. Ingest itself is idempotent, so a file
    ingested again elsewhere only counts duplicates.
    """
    settings = ws.settings
    if files is None:
        files = [(f.path, f.kind) for f in landing_files(settings)]
    outcomes = []
    for path, kind in files:
        path = Path(path)
        landing = (settings.landing_dir / kind).resolve()
        in_landing = path.resolve().parent == landing
        if in_landing and not path.exists() and (archive_dir(settings, kind) / path.name).exists():
            outcomes.append(FileOutcome(path, kind, skipped="already ingested and archived"))
            continue
        result = ingest.ingest_file(ws, path, kind)
        archived = archive(settings, path, kind) if in_landing else None
        outcomes.append(FileOutcome(path, kind, result=result, archived_as=archived))
    return outcomes
