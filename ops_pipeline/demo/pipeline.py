"""The demo's last chapter: the ledger pipeline run through Dagster on the workspace's own instance, so the
Dagster UI (`make dev`) opens on every asset materialized with its metadata and every check evaluated."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ops_pipeline.errors import OpsError
from ops_pipeline.workspace import Workspace

PIPELINE_JOB = "ledger_pipeline_job"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}  # the demo prints its own summary


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_pipeline(ws: Workspace, echo: Callable[[str], None]) -> None:
    """Run `ledger_pipeline_job` (what "Materialize all" runs) and print what it materialized and checked."""
    with warnings.catch_warnings():  # Dagster's beta notices are not for the demo's reader
        warnings.simplefilter("ignore")
        import dagster as dg

        import definitions
    from ops_pipeline.cli.dev import install_instance_yaml

    settings = ws.settings
    dagster_home = settings.dagster_home.resolve()
    install_instance_yaml(dagster_home)
    lake = settings.lake_uri if "://" in settings.lake_uri else str(os.path.abspath(settings.lake_uri))
    env = _env(DAGSTER_HOME=str(dagster_home), OPS_HOME=str(settings.home.resolve()), OPS_LAKE_URI=lake,
               OPS_DATABASE_URL=settings.database_url)
    with env, dg.DagsterInstance.from_config(str(dagster_home)) as inst:
        job = definitions.defs.resolve_job_def(PIPELINE_JOB)
        result = job.execute_in_process(instance=inst, tags={"ops/source": "demo"}, raise_on_error=False,
                                        run_config=QUIET)
    if not result.success:
        raise OpsError(f"Dagster run {result.run_id} of {PIPELINE_JOB} failed; see the Dagster UI")
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    log, snap = meta["balance_operations"], meta["balance_snapshot"]
    checks = result.get_asset_check_evaluations()
    echo(f"Dagster run {result.run_id[:8]} of {PIPELINE_JOB} (what \"Materialize all\" runs): "
         f"{len(meta)} assets materialized")
    echo(f"  landing files ingested: {log['operations_ingested'].value:,} operations; the log holds "
         f"{log['dagster/row_count'].value:,} entries at version {log['lake_version'].value}")
    echo(f"  snapshot {snap['snapshot_id'].value}: {snap['balances'].value} balances")
    echo("  checks: " + ", ".join(f"{c.check_name} {'passed' if c.passed else 'FAILED'}"
                                  for c in sorted(checks, key=lambda c: c.check_name)))
