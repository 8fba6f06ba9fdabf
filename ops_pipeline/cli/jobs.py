"""`ops-pipeline jobs create|list|show|approve|reject|cancel|retry|complete|worker|sweep|types`."""

from __future__ import annotations

import json
import signal
import threading

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, json_object, parse_time
from ops_pipeline.cli.output import emit
from ops_pipeline.jobqueue import service

LIST_COLUMNS = ["id", "type", "state", "priority", "created_by", "created_at", "attempts", "last_error"]


def _attributes(value: str) -> dict:
    """JSON text, or @FILE holding JSON."""
    return json_object(value, "attributes")


def _show(job) -> None:
    click.echo(json.dumps(service.public_view(job), indent=2))


@cli.group("jobs")
def jobs_group() -> None:
    """The ops job queue: typed jobs with priority, expiry, approvals, retries and history."""


@jobs_group.command("create")
@click.option("--type", "job_type", required=True, help="Job type; see `jobs types`.")
@click.option("--attributes", default="{}", show_default=True, help="JSON object, or @FILE.")
@click.option("--priority", default="Medium", show_default=True, help="High, Medium or Low.")
@click.option("--expires-at", help="ISO 8601; the job never runs after it.")
@click.option("--idempotency-key", help="A live job with this key is returned instead of a new one.")
@click.option("--depends-on", type=int, multiple=True, help="A job to be Completed first (repeatable).")
@ACTOR
@pass_ctx
def jobs_create(
    ctx: Context, job_type, attributes, priority, expires_at, idempotency_key, depends_on, actor
) -> None:
    """Create a job (validated by its type)."""
    ctx.ws.init()
    expires = parse_time(expires_at, ctx.ws.settings.tz) if expires_at else None
    job, created = service.create_job(
        ctx.ws,
        type=job_type,
        attributes=_attributes(attributes),
        priority=priority,
        expires_at=expires,
        idempotency_key=idempotency_key,
        depends_on=list(depends_on),
        actor=actor,
    )
    after = f" (after job {', '.join(map(str, job.depends_on))})" if job.depends_on else ""
    existing = "" if created else " (existing job with this key)"
    click.echo(f"job {job.id}: {job.type} {job.state}{after}{existing}")


@jobs_group.command("list")
@click.option("--state")
@click.option("--type", "job_type")
@click.option("--priority")
@click.option("--created-by")
@click.option("--after-id", type=int, help="Cursor: the last id of the previous page.")
@click.option("--limit", default=50, show_default=True)
@FORMAT
@pass_ctx
def jobs_list(ctx: Context, state, job_type, priority, created_by, after_id, limit, fmt) -> None:
    """Jobs, newest first (live and archived)."""
    page = service.list_jobs(
        ctx.ws,
        state=state,
        type=job_type,
        priority=priority,
        created_by=created_by,
        after_id=after_id,
        limit=limit,
    )
    views = [service.public_view(j) for j in page.jobs]
    emit(LIST_COLUMNS, ([v[c] for c in LIST_COLUMNS] for v in views), fmt)
    if page.next_after_id and fmt == "table":
        click.echo(f"(more: --after-id {page.next_after_id})", err=True)


@jobs_group.command("show")
@click.argument("job_id", type=int)
@pass_ctx
def jobs_show(ctx: Context, job_id: int) -> None:
    """One job with its attributes (sensitive ones masked), progress and history."""
    _show(service.get_job(ctx.ws, job_id))


@jobs_group.command("types")
@pass_ctx
def jobs_types(ctx: Context) -> None:
    """Every job type with whether it needs approval."""
    emit(["type", "needs_approval"], ((t["type"], t["needs_approval"]) for t in service.job_types_catalog()))


def _person_action(name: str, doc: str, call, reason: bool = False):
    @jobs_group.command(name, help=doc)
    @click.argument("job_id", type=int)
    @ACTOR
    @pass_ctx
    def command(ctx: Context, job_id: int, actor: str, **kw) -> None:
        job = call(ctx.ws, job_id, actor, *kw.values())
        click.echo(f"job {job.id}: {job.state}" + (f" ({job.last_error})" if job.last_error else ""))

    if reason:
        command = click.option("--reason", required=name == "reject", help="Why.")(command)
    return command


_person_action("approve", "Approve a job awaiting approval (not its creator).", service.approve_job)
_person_action("reject", "Reject a job awaiting approval, with a reason.", service.reject_job, reason=True)
_person_action("cancel", "Cancel a job that has not started.", service.cancel_job, reason=True)
_person_action("retry", "Put a Failed job back in the queue.", service.retry_job)
_person_action("complete", "Complete a manual job.", service.complete_manual)


@jobs_group.command("worker")
@click.option("--threads", default=2, show_default=True)
@click.option("--batch", default=1, show_default=True, help="Jobs claimed per round trip.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between claims when idle.")
@click.option("--until-idle", is_flag=True, help="Stop once no job is left to run.")
@click.option("--metrics-port", type=int, help="Serve /metrics on this port (a host without the API).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Interface of --metrics-port.")
@pass_ctx
def jobs_worker(ctx: Context, threads: int, batch: int, poll: float, until_idle: bool,
                metrics_port: int | None, metrics_host: str) -> None:
    """Run a standalone worker pool (no Dagster needed) until Ctrl-C."""
    from ops_pipeline.jobqueue.worker import run_pool
    from ops_pipeline.observability import exposition
    from ops_pipeline.observability.timing import freeze_heap, watch_gc

    ctx.ws.init()
    watch_gc()
    if metrics_port is not None:
        exposition.serve(ctx.ws, metrics_port, metrics_host)
    freeze_heap()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"worker pool: {threads} threads; Ctrl-C stops after the jobs in hand", err=True)
    total = run_pool(ctx.ws, threads, stop, poll, batch=batch, until_idle=until_idle)
    click.echo(
        f"claimed {total.claimed}, completed {total.completed}, retried {total.retried}, "
        f"failed {total.failed}, lost {total.lost}"
    )


@jobs_group.command("sweep")
@pass_ctx
def jobs_sweep(ctx: Context) -> None:
    """Run the expiry sweeper and the rescuer once."""
    done = service.housekeep(ctx.ws)
    click.echo(
        f"rescued {len(done['rescued'])}, failed {len(done['failed'])}, expired {len(done['expired'])}"
    )
