"""Gauges of state, read from the operational database when `/metrics` is scraped: one reading however many
processes serve the API or work the queue. A few indexed aggregate queries on one read-only connection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select

from ops_pipeline.db.engine import is_postgres
from ops_pipeline.db.schema import fundout_batches, fundout_payouts, jobs, outbox, tickets
from ops_pipeline.workspace import Workspace


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


class StateCollector(Collector):
    """The workspace's state as gauges (`ops_*` families without `_total`)."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        with self.ws.read_engine.connect() as conn:
            yield from self._jobs(conn, now)
            yield from self._fundout(conn)
            yield from self._tickets(conn)
            yield from self._outbox(conn, now)
            if is_postgres(self.ws.engine):
                yield self._lock_waits(conn)

    @staticmethod
    def _jobs(conn, now: datetime) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("ops_jobqueue_jobs", "Live jobs (not archived), by state and type.",
                                  labels=["state", "type"])
        for state, type_, n in conn.execute(
            select(jobs.c.state, jobs.c.type, func.count()).group_by(jobs.c.state, jobs.c.type)
        ):
            depth.add_metric([state, type_], n)
        yield depth
        oldest = GaugeMetricFamily("ops_jobqueue_oldest_waiting_seconds",
                                   "Age of the oldest job waiting to be claimed (Created, due), by type.",
                                   labels=["type"])
        for type_, since in conn.execute(
            select(jobs.c.type, func.min(jobs.c.created_at))
            .where(jobs.c.state == "Created", jobs.c.waiting == 0, jobs.c.run_at <= now)
            .group_by(jobs.c.type)
        ):
            oldest.add_metric([type_], _age(now, since))
        yield oldest

    @staticmethod
    def _fundout(conn) -> Iterator[GaugeMetricFamily]:
        payouts = GaugeMetricFamily("ops_fundout_payout_records", "Payout rows, by status.",
                                    labels=["status"])
        for status, n in conn.execute(
            select(fundout_payouts.c.status, func.count()).group_by(fundout_payouts.c.status)
        ):
            payouts.add_metric([status], n)
        yield payouts
        batches = GaugeMetricFamily("ops_fundout_batches", "Fund-out batches by status (missed: never paid).",
                                    labels=["status"])
        for status, n in conn.execute(
            select(fundout_batches.c.status, func.count()).group_by(fundout_batches.c.status)
        ):
            batches.add_metric([status], n)
        yield batches
        last = conn.execute(
            select(fundout_batches.c.summary, fundout_batches.c.finished_at)
            .where(fundout_batches.c.status == "done").order_by(fundout_batches.c.slot.desc()).limit(1)
        ).first()
        ratio = GaugeMetricFamily("ops_fundout_last_batch_failure_ratio",
                                  "Failed payouts over payouts sent, in the latest finished batch.")
        finished = GaugeMetricFamily("ops_fundout_last_batch_timestamp_seconds",
                                     "When the latest finished batch ended (Unix time).")
        if last is not None:
            failed, paid = int(last.summary.get("failed", 0)), int(last.summary.get("paid", 0))
            ratio.add_metric([], failed / (failed + paid) if failed + paid else 0.0)
            finished.add_metric([], last.finished_at.timestamp() if last.finished_at else 0.0)
        yield ratio
        yield finished

    @staticmethod
    def _tickets(conn) -> Iterator[GaugeMetricFamily]:
        open_ = GaugeMetricFamily("ops_tickets_open", "Open tickets, by group.", labels=["group"])
        waiting = GaugeMetricFamily("ops_tickets_waiting_unassigned", "Open tickets with no agent, by group.",
                                    labels=["group"])
        for group, n, unassigned in conn.execute(
            select(tickets.c.group_id, func.count(), func.count().filter(tickets.c.agent_id.is_(None)))
            .where(tickets.c.status == "open").group_by(tickets.c.group_id)
        ):
            open_.add_metric([str(group)], n)
            waiting.add_metric([str(group)], unassigned)
        yield open_
        yield waiting

    @staticmethod
    def _outbox(conn, now: datetime) -> Iterator[GaugeMetricFamily]:
        backlog = GaugeMetricFamily("ops_outbox_backlog", "Notifications not yet delivered, by channel.",
                                    labels=["channel"])
        dead = GaugeMetricFamily("ops_outbox_dead", "Notifications given up on, by channel.",
                                 labels=["channel"])
        oldest = GaugeMetricFamily("ops_outbox_oldest_pending_seconds", "Age of the oldest undelivered one.")
        pending = and_(outbox.c.status == "pending")
        for channel, n in conn.execute(
            select(outbox.c.channel, func.count()).where(pending).group_by(outbox.c.channel)
        ):
            backlog.add_metric([channel], n)
        for channel, n in conn.execute(
            select(outbox.c.channel, func.count()).where(outbox.c.status == "dead").group_by(outbox.c.channel)
        ):
            dead.add_metric([channel], n)
        since = conn.execute(select(func.min(outbox.c.created_at)).where(pending)).scalar()
        oldest.add_metric([], _age(now, since))
        yield backlog
        yield dead
        yield oldest

    @staticmethod
    def _lock_waits(conn) -> GaugeMetricFamily:
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar_one()
        g = GaugeMetricFamily("ops_db_sessions_waiting_on_locks",
                              "PostgreSQL sessions of this database waiting on a lock now.")
        g.add_metric([], waiting)
        return g
