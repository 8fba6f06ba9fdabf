"""Group commit for single ticket creates (the REST API's `POST /api/tickets`).

Each create takes its groups' locks for a few round trips, so creates one by one top out at a few hundred a
second, and fewer while request threads fight over the GIL holding the lock. Here one thread creates what
requests left waiting meanwhile as one batch (`create_tickets`: one transaction, one turn of the lock,
agents picked in memory in arrival order), and answers each request with its own ticket. A batch refused
as a whole (a missing group, a duplicate reference) is retried one item at a time, so each request gets
its own answer or error.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from ops_pipeline.tickets.tickets import NewTicket, create_tickets
from ops_pipeline.workspace import Workspace

log = logging.getLogger(__name__)
MAX_BATCH = 500


class CreateBatcher:
    def __init__(self, ws: Workspace):
        self.ws = ws
        self._queue: queue.SimpleQueue[tuple[str, NewTicket, Future]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ticket-create-batcher", daemon=True)
        self._thread.start()

    def submit(self, actor: str, item: NewTicket) -> Future:
        """Queue a create (validated here, so bad input fails at once); the future holds the ticket."""
        future: Future = Future()
        self._queue.put((actor, item.validated(), future))
        return future

    def _run(self) -> None:
        """Forever: a failure of one turn is logged and the thread goes on (else every create would hang)."""
        while True:
            try:
                self._turn()
            except Exception:
                log.exception("ticket create batch failed")

    def _turn(self) -> None:
        pending = [self._queue.get()]
        while len(pending) < MAX_BATCH:
            try:
                pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        by_actor: dict[str, list[tuple[NewTicket, Future]]] = {}
        for actor, item, future in pending:
            if future.set_running_or_notify_cancel():  # a request cancelled meanwhile creates nothing
                by_actor.setdefault(actor, []).append((item, future))
        for actor, work in by_actor.items():
            self._create(actor, work)

    def _create(self, actor: str, work: list[tuple[NewTicket, Future]]) -> None:
        try:
            made: list[Any] = create_tickets(self.ws, actor, [item for item, _ in work])
        except Exception as exc:
            if len(work) == 1:
                work[0][1].set_exception(exc)
                return
            for one in work:
                self._create(actor, [one])
            return
        for (_, future), ticket in zip(work, made, strict=True):
            future.set_result(ticket)
