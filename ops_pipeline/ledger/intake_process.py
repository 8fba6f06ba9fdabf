"""The live intake's committer in a process of its own, for the API: `Intake` (the group committer) runs in a
child process, started on the first request, and the API process only answers HTTP.

Why: in one process the event loop and the committer thread share one GIL. With the committer busy, every
turn of the event loop waited for it, so a group commit cost about twice its own time and balance reads
tens of milliseconds (docs/BENCHMARKS.md, issue 14). Apart, each has a core.

Requests go over a pipe as (id, rows, actor); the child answers (id, PostResult) once they are committed, or
(id, error). Accepted still means in the Delta log: the child answers only after the commit. If the API
process dies, the child sees the pipe close, finishes the commit in hand (its requests were not answered:
their retries are duplicates) and exits; if the child dies, the waiting requests fail and the next request
starts a new one.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import threading
from concurrent.futures import Future
from itertools import count
from multiprocessing.connection import Connection

from ops_pipeline.ledger.intake import Intake, check_request
from ops_pipeline.settings import Settings


class IntakeProcess:
    """`submit` / `close` like `Intake`, with the committer in a child process (spawned: the deltalake
    runtime does not survive a fork)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()  # one sender at a time; guards the child's start and `_waiting`
        self._ids = count()
        self._waiting: dict[int, Future] = {}
        self._conn: Connection | None = None
        self._child: multiprocessing.process.BaseProcess | None = None

    def submit(self, rows: list[dict], actor: str) -> Future:
        """Queue operations: a future of their PostResult, set once the child has committed them."""
        check_request(rows)
        future: Future = Future()
        with self._lock:
            self._start()
            request_id = next(self._ids)
            self._waiting[request_id] = future
            try:
                self._conn.send((request_id, rows, actor))
            except OSError as exc:  # the child is gone: this request fails, the next starts a new one
                self._waiting.pop(request_id)
                self._conn = None
                future.set_exception(exc)
        return future

    def close(self) -> None:
        """Let the child commit what it was given, then stop it."""
        with self._lock:
            conn, child = self._conn, self._child
            self._conn = None
        if conn is not None:
            conn.close()  # the child's receive ends: it drains its queue and exits
            child.join(60)

    def _start(self) -> None:
        if self._conn is not None:
            return
        spawn = multiprocessing.get_context("spawn")
        # one pipe each way: closing the requests' end is what tells the child to stop, and no thread of ours
        # is blocked reading that end (a read in progress would keep it open)
        requests_in, requests_out = spawn.Pipe(duplex=False)
        answers_in, answers_out = spawn.Pipe(duplex=False)
        self._child = spawn.Process(target=serve, args=(self.settings, requests_in, answers_out),
                                    name="ledger-intake", daemon=True)
        self._child.start()
        requests_in.close()
        answers_out.close()
        self._conn = requests_out
        threading.Thread(target=self._receive, args=(answers_in, requests_out), name="ledger-intake-answers",
                         daemon=True).start()

    def _receive(self, answers: Connection, requests: Connection) -> None:
        """Hand each answer to its waiting request; when the child is gone, fail those still waiting."""
        try:
            while True:
                request_id, ok, value = answers.recv()
                with self._lock:
                    future = self._waiting.pop(request_id)
                future.set_result(value) if ok else future.set_exception(value)
        except (EOFError, OSError):
            answers.close()
            with self._lock:
                waiting, self._waiting = self._waiting, {}
                if self._conn is requests:
                    self._conn = None
            for future in waiting.values():
                future.set_exception(ConnectionError("the ledger intake process stopped"))


def serve(settings: Settings, requests: Connection, answers: Connection) -> None:
    """The child: a workspace and its `Intake`, fed from `requests` until it closes. Ctrl-C or SIGTERM to the
    process group does not stop it mid-commit: it stops when the API process closes the pipe or dies."""
    from ops_pipeline.workspace import Workspace

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    ws = Workspace(settings)
    intake = Intake(ws)
    send = threading.Lock()

    def answer(request_id: int, future: Future) -> None:
        error = future.exception()
        message = (request_id, error is None, future.result() if error is None else _picklable(error))
        with send:
            answers.send(message)

    try:
        while True:
            try:
                request_id, rows, actor = requests.recv()
            except (EOFError, OSError):
                break
            intake.submit(rows, actor).add_done_callback(lambda f, i=request_id: answer(i, f))
    finally:
        intake.close()  # commits and answers what it was given
        answers.close()
        ws.close()


def _picklable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
