"""CLI start-up of issue 9 ("Speed"): `ops-pipeline --help` and `ops-pipeline sql "select 1"`.

Each command runs N times as a fresh process (hyperfine-like: warm-up runs first, then the commands in
turn, so background load hits them alike); the median wall time is the figure. Target: <= 0.5 s each.
The floor, measured the same way beside them, is `python -c pass`. Each command also runs once under
`python -X importtime` to list the heavy packages it imports. `sql` runs against a fresh `ops-pipeline
init` workspace.

    flock /tmp/ops-bench.lock .venv/bin/python -m benchmarks.bench_cli_startup
    .venv/bin/python -m benchmarks.bench_cli_startup --runs 5      # quick

Writes `benchmarks/results/cli_startup.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cli_startup.json"
HOME = ROOT / "benchmarks" / ".data" / "cli_startup"
TARGET_SECONDS = 0.5
HEAVY = ("dagster", "fastapi", "uvicorn", "polars", "pandera", "sqlalchemy", "alembic", "duckdb", "pyarrow",
         "deltalake", "httpx", "cryptography")
CLI = [sys.executable, "-c", "from ops_pipeline.cli import main; main()"]  # the console script's body
COMMANDS = {
    "floor: python -c pass": [sys.executable, "-c", "pass"],
    "ops-pipeline --help": [*CLI, "--help"],
    'ops-pipeline sql "select 1"': [*CLI, "sql", "select 1"],
}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def heavy_imports(command: list[str], env: dict[str, str]) -> list[str]:
    """The HEAVY packages a command imports (from one `-X importtime` run)."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True,
                          text=True, check=True)
    names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    return sorted(names & set(HEAVY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    shutil.rmtree(HOME, ignore_errors=True)
    env = {**os.environ, "OPS_HOME": str(HOME), "PYTHONPATH": str(ROOT)}
    env.pop("OPS_DATABASE_URL", None)
    env.pop("OPS_LAKE_URI", None)
    subprocess.run([*CLI, "init"], env=env, check=True, stdout=subprocess.DEVNULL)

    load_before = os.getloadavg()[0]
    for _ in range(args.warmup):
        for command in COMMANDS.values():
            timed(command, env)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            samples[name].append(timed(command, env))

    results = {}
    for name, times in samples.items():
        times.sort()
        results[name] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(times[0], 3),
            "p90_s": round(times[int(0.9 * (len(times) - 1))], 3),
            "max_s": round(times[-1], 3),
            "heavy_imports": heavy_imports(COMMANDS[name], env),
        }
        if not name.startswith("floor"):
            results[name]["meets_target"] = results[name]["median_s"] <= TARGET_SECONDS
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "runs": args.runs,
        "warmup": args.warmup,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "target_s": TARGET_SECONDS,
        "commands": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    load = f"{report['load_average_before']} -> {report['load_average_after']}"
    print(f"{args.runs} runs each, load average {load}")
    for name, r in results.items():
        verdict = "" if "meets_target" not in r else ("  ok" if r["meets_target"] else "  OVER TARGET")
        print(f"{name:30} median {r['median_s']:.3f} s  (min {r['min_s']:.3f}, p90 {r['p90_s']:.3f}){verdict}"
              f"  heavy imports: {', '.join(r['heavy_imports']) or '-'}")
    shutil.rmtree(HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
