"""Security at rest: OPS_HOME and every folder under it 0700, the SQLite file (with its -wal and -shm),
the secrets and every other file we create 0600, whatever the user's umask."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import op, write_merchants, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def modes(root: Path) -> dict[str, str]:
    """Every folder and file under `root` (and `root` itself) with its permission bits in octal."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_everything_the_cli_creates_under_a_fresh_ops_home_is_private(tmp_path):
    home = tmp_path / "new" / "home"  # its parent is missing too
    env = {**os.environ, "OPS_HOME": str(home)}
    env.pop("OPS_DATABASE_URL", None)

    def run(*args):
        done = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: os.umask(0o022))  # a typical, permissive umask
        assert done.returncode == 0, done.stderr

    run("init")
    run("token", "--role", "ops", "--sub", "alice")
    run("merchants", "load", write_merchants(tmp_path / "m.csv"))
    run("ledger", "ingest", write_ops(tmp_path / "co.csv", [op("o1", "10.00")]), "--kind", "confirmed")
    found = modes(tmp_path / "new")
    assert {"home/ops.db", "home/secrets/jwt_secret", "home/landing/confirmed", "home/lake"} <= set(found)
    assert any(name.startswith("home/lake/") and name.endswith(".parquet") for name in found)
    folders = {n: m for n, m in found.items() if (tmp_path / "new" / n).is_dir()}
    files = {n: m for n, m in found.items() if n not in folders}
    assert {n: m for n, m in folders.items() if m != "0o700"} == {}
    assert {n: m for n, m in files.items() if m != "0o600"} == {}


def test_a_workspace_made_in_process_keeps_its_db_secrets_and_locks_private(tmp_path):
    """The API and Dagster build workspaces without the CLI's umask: what we create is private anyway."""
    previous = os.umask(0o022)
    try:
        home = tmp_path / "home"
        ws = Workspace(make_settings(home))
        ws.init()
        with ws.engine.begin() as conn:  # a write leaves the -wal and -shm files while connected
            conn.execute(text("UPDATE balance_cache_state SET applied_version = applied_version"))
            found = modes(home)
            assert {n: found[n] for n in ("ops.db", "ops.db-wal", "ops.db-shm")} == {
                "ops.db": "0o600", "ops.db-wal": "0o600", "ops.db-shm": "0o600"}
        with ws.lock("ledger"):
            pass
        settings = Settings.from_env({"OPS_HOME": str(home)})
        assert settings.jwt_secret and settings.encryption_key
        found = modes(home)
        ws.close()
    finally:
        os.umask(previous)
    assert {n: found[n] for n in (".", "landing", "landing/confirmed", "landing/reconciled", "locks", "secrets")} \
        == dict.fromkeys((".", "landing", "landing/confirmed", "landing/reconciled", "locks", "secrets"), "0o700")
    assert {n: found[n] for n in ("locks/ledger.lock", "secrets/jwt_secret", "secrets/encryption_key")} == \
        dict.fromkeys(("locks/ledger.lock", "secrets/jwt_secret", "secrets/encryption_key"), "0o600")
    assert not [n for n in found if n.startswith("secrets/") and n.endswith(".tmp")]


def test_an_existing_ops_home_keeps_its_mode(tmp_path):
    """Only what we create is tightened: pointing OPS_HOME at an existing folder never chmods it."""
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    ws = Workspace(make_settings(home))
    ws.init()
    ws.close()
    assert oct(stat.S_IMODE(home.stat().st_mode)) == "0o755"
    assert oct(stat.S_IMODE((home / "ops.db").stat().st_mode)) == "0o600"
