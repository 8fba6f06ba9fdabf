"""`ops-pipeline tickets create|list|show|assign|resolve|scan`, `agents ...` and `groups ...`.

A group is given by its id or its name.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, parse_time
from ops_pipeline.cli.output import emit, progress
from ops_pipeline.tickets import agents, files, groups, model, sources
from ops_pipeline.tickets import tickets as service
from ops_pipeline.tickets.files import resolve_group

TICKET_COLUMNS = ["id", "group_id", "agent_id", "status", "priority", "source", "reference", "user_id",
                  "created_at"]
AGENT_COLUMNS = ["agent_id", "name", "email", "group_ids", "active_status", "tickets_assigned_today",
                 "tickets_resolved_today", "total_tickets_assigned", "total_tickets_resolved"]
GROUP_COLUMNS = ["group_id", "name", "active_status", "created_at"]

def _table(rows: list[dict], columns: list[str], fmt: str) -> None:
    emit(columns, ([r[c] for c in columns] for r in rows), fmt)


# -- groups --------------------------------------------------------------------------------------------


@cli.group("groups")
def groups_group() -> None:
    """Teams tickets are routed to (KYC, Risk, ...)."""


@groups_group.command("create")
@click.argument("name")
@click.option("--inactive", is_flag=True, help="Takes no tickets until activated.")
@ACTOR
@pass_ctx
def groups_create(ctx: Context, name: str, inactive: bool, actor: str) -> None:
    """Create a group."""
    ctx.ws.init()
    made = groups.create_group(ctx.ws, actor, name, not inactive)
    click.echo(f"group {made['group_id']}: {made['name']}")


@groups_group.command("list")
@FORMAT
@pass_ctx
def groups_list(ctx: Context, fmt: str) -> None:
    """Every group."""
    _table(groups.list_groups(ctx.ws), GROUP_COLUMNS, fmt)


@groups_group.command("delete")
@click.argument("group")
@click.option("--move-to", help="The group that takes its open tickets.")
@ACTOR
@pass_ctx
def groups_delete(ctx: Context, group: str, move_to: str | None, actor: str) -> None:
    """Delete a group (refused while it has open tickets, unless --move-to)."""
    target = resolve_group(ctx.ws, move_to) if move_to else None
    done = groups.delete_group(ctx.ws, actor, resolve_group(ctx.ws, group), target)
    click.echo(f"group {done['group_id']}: deleted; {done['moved_tickets']} open tickets moved")


# -- agents --------------------------------------------------------------------------------------------


@cli.group("agents")
def agents_group() -> None:
    """The people tickets are assigned to."""


@agents_group.command("create")
@click.argument("agent_id")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--group", "group_values", multiple=True, required=True, help="Group id or name; repeatable.")
@click.option("--inactive", is_flag=True, help="Not available yet.")
@ACTOR
@pass_ctx
def agents_create(ctx: Context, agent_id, name, email, group_values, inactive, actor) -> None:
    """Add an agent to groups; an active one takes the tickets waiting there."""
    ctx.ws.init()
    ids = [resolve_group(ctx.ws, g) for g in group_values]
    made = agents.create_agent(ctx.ws, actor, agent_id, name, email, ids, not inactive)
    click.echo(f"agent {made['agent_id']}: groups {made['group_ids']}, "
               f"{made['tickets_assigned_today']} tickets assigned today")


@agents_group.command("list")
@click.option("--group", "group_value", help="Group id or name.")
@FORMAT
@pass_ctx
def agents_list(ctx: Context, group_value: str | None, fmt: str) -> None:
    """Agents with their counters (today in OPS_TIMEZONE)."""
    found = agents.list_agents(ctx.ws, resolve_group(ctx.ws, group_value) if group_value else None)
    _table(found, AGENT_COLUMNS, fmt)


@agents_group.command("update")
@click.argument("agent_id")
@click.option("--active/--inactive", default=None, help="Available or not (moves its open tickets).")
@click.option("--group", "group_values", multiple=True, help="Replaces its groups; repeatable.")
@click.option("--name")
@click.option("--email")
@ACTOR
@pass_ctx
def agents_update(ctx: Context, agent_id, active, group_values, name, email, actor) -> None:
    """Change availability, groups, name or email."""
    changes = {"active_status": active, "name": name, "email": email,
               "group_ids": [resolve_group(ctx.ws, g) for g in group_values] or None}
    done = agents.update_agent(ctx.ws, actor, agent_id, {k: v for k, v in changes.items() if v is not None})
    click.echo(f"agent {done['agent_id']}: {'active' if done['active_status'] else 'inactive'}, "
               f"groups {done['group_ids']}")


@agents_group.command("delete")
@click.argument("agent_id")
@ACTOR
@pass_ctx
def agents_delete(ctx: Context, agent_id: str, actor: str) -> None:
    """Delete an agent; its open tickets go to the other agents of their groups."""
    done = agents.delete_agent(ctx.ws, actor, agent_id)
    click.echo(f"agent {done['agent_id']}: deleted; {done['reassigned_tickets']} open tickets reassigned")


# -- tickets -------------------------------------------------------------------------------------------


@cli.group("tickets")
def tickets_group() -> None:
    """Work for people, assigned fairly to the available agents of a group."""


@tickets_group.command("create")
@click.option("--group", "group_value", help="Group id or name.")
@click.option("--user", "user_id", help="The user the ticket is about.")
@click.option("--priority", type=int, default=model.PRIORITY_DEFAULT, show_default=True,
              help="1 (most urgent) to 5.")
@click.option("--description")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Many tickets: CSV or JSON lines with group, user_id, priority, source, reference.")
@ACTOR
@pass_ctx
def tickets_create(ctx: Context, group_value, user_id, priority, description, file, actor) -> None:
    """Create one ticket, or every ticket of --file (in batches); each assigned at once."""
    ctx.ws.init()
    if file is None:
        if not group_value:
            raise click.UsageError("give --group (or --file)")
        made = service.create_ticket(ctx.ws, actor, group_id=resolve_group(ctx.ws, group_value),
                                     user_id=user_id, priority=priority, description=description)
        click.echo(f"ticket {made['id']}: " + (f"assigned to {made['agent_id']}" if made["agent_id"]
                                               else "waiting for an available agent"))
        return
    batch = files.read_tickets(ctx.ws, file)
    chunks = [batch[i : i + model.MAX_BATCH] for i in range(0, len(batch), model.MAX_BATCH)]
    by_agent: Counter[str] = Counter()
    with progress(chunks, "creating tickets") as bar:
        for chunk in bar:
            made = service.create_tickets(ctx.ws, actor, chunk)
            by_agent.update(m["agent_id"] or "(waiting)" for m in made)
    click.echo(f"created {len(batch)} tickets: " + ", ".join(f"{a} {n}" for a, n in sorted(by_agent.items())))


@tickets_group.command("list")
@click.option("--agent", "agent_id")
@click.option("--group", "group_value", help="Group id or name.")
@click.option("--status", type=click.Choice(model.STATUSES))
@click.option("--priority", type=int)
@click.option("--source", type=click.Choice(model.SOURCES))
@click.option("--reference")
@click.option("--created-from", help="ISO 8601; local to OPS_TIMEZONE without an offset.")
@click.option("--created-to")
@click.option("--after-id", type=int, help="Cursor: the last id of the previous page.")
@click.option("--limit", default=50, show_default=True)
@FORMAT
@pass_ctx
def tickets_list(ctx: Context, agent_id, group_value, status, priority, source, reference, created_from,
                 created_to, after_id, limit, fmt) -> None:
    """Tickets, newest first."""
    tz = ctx.ws.settings.tz
    filters = service.Filters(
        agent_id, resolve_group(ctx.ws, group_value) if group_value else None, status, priority, source,
        reference,
        parse_time(created_from, tz) if created_from else None,
        parse_time(created_to, tz) if created_to else None,
    )
    page = service.list_tickets(ctx.ws, filters, after_id, limit)
    _table(page.tickets, TICKET_COLUMNS, fmt)
    if page.next_after_id and fmt == "table":
        click.echo(f"(more: --after-id {page.next_after_id})", err=True)


@tickets_group.command("show")
@click.argument("ticket_id", type=int)
@pass_ctx
def tickets_show(ctx: Context, ticket_id: int) -> None:
    """One ticket as JSON."""
    click.echo(json.dumps(service.get_ticket(ctx.ws, ticket_id), indent=2))


@tickets_group.command("assign")
@click.argument("ticket_ids", type=int, nargs=-1, required=True)
@click.option("--agent", "agent_id", required=True, help="An available agent of the tickets' group.")
@ACTOR
@pass_ctx
def tickets_assign(ctx: Context, ticket_ids, agent_id, actor) -> None:
    """Give tickets to a named agent."""
    for t in service.update_tickets(ctx.ws, actor, ticket_ids, {"agent_id": agent_id}):
        click.echo(f"ticket {t['id']}: assigned to {t['agent_id']}")


@tickets_group.command("resolve")
@click.argument("ticket_ids", type=int, nargs=-1, required=True)
@ACTOR
@pass_ctx
def tickets_resolve(ctx: Context, ticket_ids, actor) -> None:
    """Mark tickets resolved."""
    for t in service.update_tickets(ctx.ws, actor, ticket_ids, {"status": model.RESOLVED}):
        click.echo(f"ticket {t['id']}: resolved")


@tickets_group.command("scan")
@pass_ctx
def tickets_scan(ctx: Context) -> None:
    """Open tickets for failed jobs and manual jobs that have none, resolve those of manual jobs done
    (what the Dagster sensor does)."""
    ctx.ws.init()
    failed = sources.open_tickets_for_failed_jobs(ctx.ws)
    manual = sources.open_tickets_for_manual_jobs(ctx.ws)
    done = sources.resolve_tickets_of_finished_manual_jobs(ctx.ws)
    click.echo(f"opened {len(failed.opened)} tickets for failed jobs, {len(manual)} for manual jobs; "
               f"resolved {len(done)} of manual jobs done")
