"""Files of the gift-card records (marketing materials, artworks) stored under OPS_HOME/giftcards/files."""

from __future__ import annotations

import hashlib
import re

from ops_pipeline.errors import InvalidInput
from ops_pipeline.workspace import Workspace

MAX_BYTES = 20 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def store(ws: Workspace, owner_id: str, name: str, content: bytes) -> str:
    """Keep `content` as a file of record `owner_id`; the path (relative to OPS_HOME) a `Material` names.
    The same content under the same name is stored once."""
    if len(content) > MAX_BYTES:
        raise InvalidInput(f"file: {name!r} is {len(content)} bytes, at most {MAX_BYTES} are kept")
    safe_name = _SAFE.sub("_", name).strip("._") or "file"
    safe_owner = _SAFE.sub("_", owner_id).strip("._") or "record"
    digest = hashlib.sha256(content).hexdigest()[:16]
    relative = f"giftcards/files/{safe_owner}/{digest}-{safe_name[:120]}"
    path = ws.home / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(content)
    return relative
