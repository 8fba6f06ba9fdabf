"""The CLI's shape: commands load lazily from the `COMMANDS` table, `--help` imports none of the heavy
stack, shared options live in one module, and every setting the code reads is in the README."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ops_pipeline.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
CLI_DIR = ROOT / "ops_pipeline" / "cli"
HEAVY = {"dagster", "fastapi", "uvicorn", "polars", "pandera", "sqlalchemy", "alembic", "duckdb", "deltalake",
         "pyarrow", "httpx"}


def imported_by(home: Path, *args: str) -> set[str]:
    """Top-level packages in sys.modules after `ops-pipeline ARGS` ran (exit code 0) in a fresh process."""
    script = (
        "import json, sys\n"
        f"sys.argv = ['ops-pipeline', *{list(args)!r}]\n"
        "from ops_pipeline.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    env = {**os.environ, "OPS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("OPS_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module_and_nothing_heavy(tmp_path):
    loaded = imported_by(tmp_path / "home", "--help")
    assert loaded & HEAVY == set()
    assert not (tmp_path / "home").exists()  # --help never touches the disk


def test_sql_imports_neither_dagster_nor_the_api_stack(tmp_path):
    imported_by(tmp_path / "home", "init")  # a deploy migrates once; `sql` then only reads
    loaded = imported_by(tmp_path / "home", "sql", "select 1")
    assert "duckdb" in loaded
    assert loaded & {"dagster", "fastapi", "uvicorn", "polars", "pandera", "alembic", "httpx"} == set()


def test_the_commands_table_matches_the_command_modules():
    modules = {module for module, _ in COMMANDS.values()}
    for module in sorted(modules):
        importlib.import_module(f"ops_pipeline.cli.{module}")
    assert set(cli.commands) == set(COMMANDS)
    for name, (module, summary) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback.__module__ == f"ops_pipeline.cli.{module}", name
        assert command.get_short_help_str(limit=10_000) == summary, name
    assert {p.stem for p in CLI_DIR.glob("*.py")} - modules == {"__init__", "options", "output"}


def test_help_lists_every_command_with_its_summary():
    from click.testing import CliRunner

    out = CliRunner().invoke(cli, ["--help"], terminal_width=80).output
    listed = out.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == sorted(COMMANDS)
    assert "\n  sql            DuckDB SQL over the lake views; without QUERY, an" in out


def test_shared_options_are_defined_once():
    defining = sorted(
        p.name for p in CLI_DIR.glob("*.py")
        if re.search(r'"--format"|"--actor"|def parse_time', p.read_text())
    )
    assert defining == ["options.py"]


def test_every_setting_the_code_reads_is_in_the_readme_settings_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    sources = [*ROOT.glob("*.py"), *ROOT.glob("*.yaml"),
               *(p for d in ("ops_pipeline", "assets", "sensors", "resources", "tests", "benchmarks")
                 for p in (ROOT / d).rglob("*.py"))]
    names = {m for p in sources for m in re.findall(r"\b((?:OPS|DAGSTER)_[A-Z0-9_]*[A-Z0-9])\b", p.read_text())}
    names -= {"DAGSTER_PG"}  # the prefix, as in `DAGSTER_PG_*`
    assert "OPS_WALLET_THRESHOLDS" in names
    assert sorted(n for n in names if f"`{n}`" not in table) == []
