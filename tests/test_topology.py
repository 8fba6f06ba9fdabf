"""The production topology on one machine, without Docker: every process of deploy/compose/docker-compose.yml
started on 127.0.0.1 with the settings that file gives it, and a day's work through them.

PostgreSQL (a database for ops-pipeline, another for Dagster), the lake on an S3-compatible server (moto),
the partner sandbox, the Dagster code server (`dagster api grpc`), webserver and daemon (QueuedRunCoordinator),
`ops-pipeline api --workers 2` and two job-queue workers, each process with an OPS_HOME of its own: they
share nothing but the servers and the settings. Landing files go in through the ingest sensor, jobs through
the API, a fund-out slot through the webserver's GraphQL; then every job ran once, every payout posted
once, and the ledger replays to its cache. Fails (never skips) when PostgreSQL is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from assets.fundout.jobs import SLOT_TAG
from ops_pipeline import analytics
from ops_pipeline.auth import mint_token
from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.demo.jobs import ORDER
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.ledger import balances
from ops_pipeline.money import exponent
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace
from tests.conftest import PG_ADMIN_URL
from tests.factories import op, write_merchants, write_ops
from tests.s3server import s3_server
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose"
BIN = Path(sys.executable).parent

# The settings of each kind of process; docker-compose.yml gives the same (test_compose_matches_the_topology).
WORKSPACE_SETTINGS = ("OPS_HOME", "OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_S3_ENDPOINT_URL", "OPS_S3_REGION",
           "OPS_S3_ACCESS_KEY_ID", "OPS_S3_SECRET_ACCESS_KEY", "OPS_S3_ALLOW_HTTP", "OPS_PARTNER_URL",
           "OPS_BANK_URL", "OPS_JWT_SECRET", "OPS_ENCRYPTION_KEY")
INSTANCE_SETTINGS = ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
               "DAGSTER_PG_DB")
GRPC_SETTINGS = ("DAGSTER_GRPC_HOST", "DAGSTER_GRPC_PORT")
# Each service: its command (then its address options) and its settings.
SERVICES = {
    "migrate": (["ops-pipeline", "init"], WORKSPACE_SETTINGS),
    "partner-sim": (["uvicorn", "ops_pipeline.partners.app:create_app", "--factory"], ()),
    "code-server": (["dagster", "api", "grpc", "--module-name", "definitions"], WORKSPACE_SETTINGS + INSTANCE_SETTINGS),
    "webserver": (["dagster-webserver"], INSTANCE_SETTINGS + GRPC_SETTINGS),
    "daemon": (["dagster-daemon", "run"], INSTANCE_SETTINGS + GRPC_SETTINGS),
    "api": (["ops-pipeline", "api"], WORKSPACE_SETTINGS),
    "worker": (["ops-pipeline", "jobs", "worker"], WORKSPACE_SETTINGS),
}
API_WORKERS = 2
LOCATION = {"repositoryLocationName": "ops_pipeline", "repositoryName": "__repository__"}
WAIT = 60.0  # seconds, for any one step

# Landing files: one confirmed and one reconciled file of the same operations.
OPERATIONS = [op("c1", "10.00"), op("c2", "1000", merchant="M2"), op("c3", "1.234", merchant="M3"),
              op("c4", "7.00", merchant="M4")]
# Available after both (fees taken: see test_s3_lake), in minor units; fund-out keeps 1 (major) of each.
AVAILABLE = {("M1", "EUR"): 941, ("M2", "JPY"): 965, ("M3", "BHD"): 1214, ("M4", "EUR"): 700}
MINIMUM = "1"
PAYOUTS = {key: minor - 10 ** exponent(key[1]) for key, minor in AVAILABLE.items()}
WORLDS = (1, 2)  # two sets of partner jobs, 6 each
JOB_NAMES = [name for name in ORDER if name != "manual"]
ENDED = {"Completed", "Failed", "Rejected", "Cancelled", "Expired"}


class Topology:
    """Processes in sessions of their own, each logging to a file; `stop` ends every process group."""

    def __init__(self, logs: Path, settings: dict[str, str]):
        self.logs, self.settings, self.procs = logs, settings, {}
        logs.mkdir()
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("OPS_", "DAGSTER_", "AWS_", "OTEL_", "PROMETHEUS_"))}
        self.base = {**inherited, "PYTHONPATH": str(ROOT)}

    def env(self, service: str, home: Path | None) -> dict[str, str]:
        """The service's settings; OPS_HOME is `home`, a folder of each process's own."""
        settings = {**self.settings, "OPS_HOME": str(home)}
        return {**self.base, **{k: settings[k] for k in SERVICES[service][1]}}

    def argv(self, command: list[str], *args: str) -> list[str]:
        return [str(BIN / command[0]), *command[1:], *args]

    def start(self, name: str, service: str, *args: str, home: Path | None = None, cwd: Path = ROOT
              ) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                self.argv(SERVICES[service][0], *args), env=self.env(service, home), cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self.procs[name]

    def run(self, service: str, home: Path, command: list[str] | None = None) -> None:
        """A one-shot service (or another command with its settings) to its end; exit code 0 expected."""
        argv = self.argv(command or SERVICES[service][0])
        done = subprocess.run(argv, env=self.env(service, home), cwd=ROOT,
                              capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, f"{argv}: {done.stderr}"

    def tails(self, lines: int = 25) -> str:
        return "".join(f"\n--- {p.name} ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                       for p in sorted(self.logs.glob("*.log")))

    def until(self, what: str, check, timeout: float = WAIT):
        """`check()`'s first true value; fails with every log's tail if a process stops or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            stopped = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            assert not stopped, f"{what}: processes stopped {stopped}{self.tails()}"
            try:
                found = check()
            except (httpx.TransportError, ConnectionError):
                found = None
            if found:
                return found
            assert time.monotonic() < deadline, f"{what}: not within {timeout} s{self.tails()}"
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            signal_group(proc, signal.SIGKILL)  # what is left of the group (uvicorn's resource tracker, ...)
            proc.wait()


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> list[str]:
    """Command lines of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture
def databases():
    """Two fresh PostgreSQL databases, ops-pipeline's and Dagster's (both have a `jobs` table); dropped after."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {kind: f"topo_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("ops", "dagster")}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server is a failure, not a skip
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}")
    try:
        yield names
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def world(n: int) -> dict[str, dict]:
    """The example attributes of each partner job type, for principal, program and distributor number n."""
    names = {"P-CAFE-01": f"P-CAFE-{n:02d}", "GC-ORION-FESTIVE": f"GC-ORION-{n:02d}",
             "D-GIFTLY": f"D-GIFTLY-{n:02d}", "UTR2026112100001": f"UTR20261121{n:05d}", "beanthere": f"cafe{n}"}
    found = {}
    for name in JOB_NAMES:
        example = json.dumps(JOB_TYPES[name].example)
        for old, new in names.items():
            example = example.replace(old, new)
        found[name] = json.loads(example)
    return found


def graphql(url: str, query: str, **variables) -> dict:
    answer = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30).json()
    assert "errors" not in answer, answer
    return answer["data"]


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }"""
RUN = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
REPOSITORY = """query($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) { __typename } }"""


@pytest.mark.slow
@pytest.mark.postgres
def test_production_topology_on_one_machine(tmp_path, databases):
    admin = make_url(PG_ADMIN_URL)
    ops_db = admin.set(database=databases["ops"]).render_as_string(hide_password=False)
    grpc_port, web_port, api_port, sim_port = free_port(), free_port(), free_port(), free_port()
    sim_url, web_url, api_url = (f"http://127.0.0.1:{p}" for p in (sim_port, web_port, api_port))
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_bytes((COMPOSE / "dagster.yaml").read_bytes())
    homes = {name: tmp_path / name for name in ("migrate", "code", "api", "worker1", "worker2", "check")}
    with s3_server() as s3:
        settings = {
            "OPS_DATABASE_URL": ops_db, **s3.env(s3.new_bucket()), "OPS_PARTNER_URL": sim_url,
            "OPS_BANK_URL": sim_url, "OPS_JWT_SECRET": secrets.token_urlsafe(48),
            "OPS_ENCRYPTION_KEY": Fernet.generate_key().decode(), "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_HOST": admin.host, "DAGSTER_PG_PORT": str(admin.port or 5432),
            "DAGSTER_PG_USER": admin.username, "DAGSTER_PG_PASSWORD": admin.password or "",
            "DAGSTER_PG_DB": databases["dagster"], "DAGSTER_GRPC_HOST": "127.0.0.1",
            "DAGSTER_GRPC_PORT": str(grpc_port),
        }
        topology = Topology(tmp_path / "logs", settings)
        try:
            topology.start("partner-sim", "partner-sim", "--host", "127.0.0.1", "--port", str(sim_port))
            topology.run("migrate", homes["migrate"])
            merchants = write_merchants(tmp_path / "merchants.csv")
            topology.run("migrate", homes["migrate"], ["ops-pipeline", "merchants", "load", str(merchants)])
            landing = homes["code"] / "landing"
            for kind, name in (("confirmed", "co.csv"), ("reconciled", "ro.csv")):
                (landing / kind).mkdir(parents=True)
                write_ops(landing / kind / f".{name}", OPERATIONS).rename(landing / kind / name)  # arrives whole
            topology.start("code-server", "code-server", "--host", "127.0.0.1", "--port", str(grpc_port),
                           home=homes["code"])
            api = topology.start("api", "api", "--host", "127.0.0.1", "--port", str(api_port),
                                 "--workers", str(API_WORKERS), home=homes["api"])
            workers = [topology.start(f"worker{i}", "worker", "--threads", "2", "--poll", "0.2",
                                      home=homes[f"worker{i}"]) for i in (1, 2)]
            topology.until("code server listening", lambda: listening(grpc_port))
            topology.start("webserver", "webserver", "--host", "127.0.0.1", "--port", str(web_port),
                           "-w", str(COMPOSE / "workspace.yaml"), cwd=dagster_home)
            topology.start("daemon", "daemon", "-w", str(COMPOSE / "workspace.yaml"), cwd=dagster_home)
            topology.until("partner sandbox up", lambda: httpx.get(f"{sim_url}/healthz").status_code == 200)
            topology.until("API up", lambda: httpx.get(f"{api_url}/healthz").status_code == 200)

            minting = Settings.from_env({"OPS_HOME": str(homes["check"]), **settings})
            people = {who: httpx.Client(base_url=api_url, timeout=30, headers={
                "Authorization": f"Bearer {mint_token(minting, 'ops', who)}"}) for who in ("alice", "bob")}
            alice, bob = people["alice"], people["bob"]

            # Jobs through the API: two chains of the six partner job types, approved by a second person.
            jobs = []
            for n in WORLDS:
                attributes, made = world(n), {}
                topup = attributes["distributor_wallet_topup"]
                deposit = {"reference": topup["bank_reference"], "amount": topup["amount"],
                           "currency": topup["currency"]}
                assert httpx.post(f"{sim_url}/_sim/deposits", json=deposit).status_code == 201
                for name in JOB_NAMES:
                    created = alice.post("/api/job/create", json={
                        "type": name, "attributes": attributes[name],
                        "dependsOn": [made[p] for p in ORDER[name]]})
                    assert created.status_code == 201, created.text
                    made[name] = created.json()["id"]
                approved = bob.post(f"/api/job/{made['principal_onboarding']}/approve")
                assert approved.status_code == 200, approved.text
                jobs += made.values()

            # The landing files, ingested by runs the daemon's sensor requested.
            def ingested():
                found = {}
                for merchant in ("M1", "M2", "M3", "M4"):
                    answer = alice.get(f"/api/balances/{merchant}")
                    if answer.status_code != 200:
                        return None
                    for b in answer.json()["balances"]:
                        found[merchant, b["currency"]] = int(Decimal(b["available"]) * 10 ** exponent(b["currency"]))
                return found if found == AVAILABLE else None

            topology.until("landing files ingested", ingested)
            for merchant, _ in AVAILABLE:
                configured = alice.post(f"/business-profiles/business/{merchant}/autofundout",
                                        json={"freqType": "H", "enabled": True, "minimumBalance": MINIMUM})
                assert configured.status_code == 201, configured.text

            # A fund-out slot through the webserver: queued, dequeued by the daemon, run beside the code server.
            topology.until("code location loaded", lambda: graphql(web_url, REPOSITORY, selector=LOCATION)
                           ["repositoryOrError"]["__typename"] == "Repository")
            slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
            launched = graphql(web_url, LAUNCH, params={
                "selector": {**LOCATION, "jobName": "fundout_batch_job"},
                "runConfigData": {"ops": {"run_fundout_batch": {"config": {"at": slot}}}},
                "executionMetadata": {"tags": [{"key": SLOT_TAG, "value": slot}]},
            })["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            assert launched["run"]["status"] == "QUEUED"

            def finished():
                status = graphql(web_url, RUN, id=run_id)["runOrError"]["status"]
                return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

            assert topology.until("fund-out run finished", finished) == "SUCCESS", topology.tails()

            def ended():
                found = [alice.get(f"/api/job/{i}").json() for i in jobs]
                return found if all(v["state"] in ENDED for v in found) else None

            views = topology.until("jobs ended", ended)
            after = {merchant: alice.get(f"/api/balances/{merchant}").json()["balances"]
                     for merchant, _ in AVAILABLE}
            sandbox = httpx.get(f"{sim_url}/_sim/state").json()
            api_processes = [c for c in children(api.pid) if "spawn_main" in c]
            # Dagster's runs on PostgreSQL (before the code server stops and runs of schedules with it).
            engine = create_engine(admin.set(database=databases["dagster"]))
            with engine.connect() as conn:
                runs = conn.execute(text("SELECT run_id, pipeline_name, status FROM runs")).all()
                enqueued = set(conn.execute(text(
                    "SELECT run_id FROM event_logs WHERE dagster_event_type = 'PIPELINE_ENQUEUED'")).scalars())
            engine.dispose()
        finally:
            topology.stop()

        # Every job ran once: claimed once, by one of the two workers or a Dagster worker run, and completed once.
        assert [v["state"] for v in views] == ["Completed"] * len(jobs), views
        prefixes = (*(f"{socket.gethostname()}-{w.pid}-" for w in workers), "dagster-")
        for v in views:
            moves = Counter(h["toState"] for h in v["history"])
            assert (moves["In Progress"], moves["Completed"]) == (1, 1), v["history"]
            [claim] = [h for h in v["history"] if h["toState"] == "In Progress"]
            assert claim["actor"].startswith(prefixes), claim
        assert sorted(sandbox["principals"]) == [f"P-CAFE-{n:02d}" for n in WORLDS]
        assert sorted(sandbox["distributors"]) == [f"D-GIFTLY-{n:02d}" for n in WORLDS]
        assert sandbox["calls"] and set(sandbox["calls"].values()) == {1}  # no partner or bank action repeated

        # Every payout posted once: at the bank, in the payouts table and as one PAYOUT entry in the ledger.
        paid = {ref: (p["business_id"], p["currency"], p["amount_minor"]) for ref, p in sandbox["payouts"].items()}
        assert sorted(paid.values()) == sorted((b, c, m) for (b, c), m in PAYOUTS.items())
        ws = Workspace(Settings.from_env({"OPS_HOME": str(homes["check"]), **settings}))
        try:
            with ws.engine.connect() as conn:
                rows = conn.execute(select(fundout_payouts)).all()
            assert {r.id: (r.business_id, r.currency, r.amount_minor) for r in rows} == paid  # our id, its reference
            assert {r.status for r in rows} == {"posted"}
            entries = analytics.connect(ws).sql(
                "SELECT falcon_operation_id, count(*) FROM balance_operations WHERE source = 'PAYOUT' GROUP BY 1"
            ).fetchall()
            assert sorted(entries) == sorted((r.id, 1) for r in rows)
            rebuilt = balances.rebuild(ws)
        finally:
            ws.close()
        assert rebuilt.differences == []
        assert {(m, b["currency"]): b["available"] for m, found in after.items() for b in found} == {
            key: str(Decimal(MINIMUM).quantize(Decimal(1).scaleb(-exponent(key[1])))) for key in AVAILABLE}

        # Through Dagster's run queue: both ingest runs and the slot's run enqueued, then done.
        by_job = Counter((r.pipeline_name, r.status) for r in runs)
        assert by_job["ledger_ingest_job", "SUCCESS"] == 2, runs
        assert (run_id, "fundout_batch_job", "SUCCESS") in {tuple(r) for r in runs}
        assert not [r for r in runs if r.status == "FAILURE"], runs
        assert {r.run_id for r in runs} <= enqueued
        assert run_id in (tmp_path / "logs" / "code-server.log").read_text()  # its run worker's output
        assert sorted(p.name for p in (landing / "archive").rglob("*.csv")) == ["co.csv", "ro.csv"]
        assert len(api_processes) == API_WORKERS, api_processes


def test_compose_matches_the_topology():
    """docker-compose.yml runs each service with the command and exactly the settings the test above gives it,
    and the image carries the instance and workspace files the test uses."""
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {*SERVICES, "postgres", "minio", "create-bucket"}
    for name, (command, settings) in SERVICES.items():
        service = services[name]
        assert service["command"][: len(command)] == command, name
        assert sorted(service.get("environment", {})) == sorted(settings), name
    assert services["api"]["command"][-2:] == ["--workers", str(API_WORKERS)]
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    home = services["webserver"]["environment"]["DAGSTER_HOME"]
    assert f"COPY deploy/compose/dagster.yaml {home}/dagster.yaml" in dockerfile
    for name in ("webserver", "daemon"):
        workspace = services[name]["command"][services[name]["command"].index("-w") + 1]
        assert f"COPY deploy/compose/workspace.yaml {workspace}" in dockerfile
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "OPS_LAKE_URI" in services["code-server"]["environment"]
    for volume in services["code-server"]["volumes"]:
        assert volume.split(":")[1].startswith((services["code-server"]["environment"]["OPS_HOME"], home))
    assert "CREATE DATABASE dagster;" in (COMPOSE / "initdb" / "10-dagster.sql").read_text()
    # every value the compose file takes from .env is in env.example
    wanted = set(re.findall(r"\$\{(\w+)", (COMPOSE / "docker-compose.yml").read_text()))
    given = {line.split("=", 1)[0] for line in (COMPOSE / "env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert wanted == given
    assert services["code-server"]["environment"]["DAGSTER_PG_DB"] == "dagster"
