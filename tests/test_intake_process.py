"""The intake's committer in its own process: answers come back to the right request, errors keep their
type, and a committer that died is replaced by the next request."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger.intake_process import IntakeProcess
from tests.factories import op


def row(op_id: str, amount: str = "1.00") -> dict:
    return {"kind": "confirmed", **op(op_id, amount)}


def test_answers_reach_their_requests_and_a_dead_committer_is_replaced(ws):
    intake = IntakeProcess(ws.settings)
    try:
        futures = [intake.submit([row(f"a{i}")], "t") for i in range(20)]
        results = [f.result(60) for f in futures]
        assert [r.outcomes[0].falcon_operation_id for r in results] == [f"a{i}" for i in range(20)]
        assert {r.outcomes[0].status for r in results} == {"accepted"}
        with pytest.raises(InvalidInput, match=r"operations\[0\]\.kind: 'x'"):
            intake.submit([{**row("b"), "kind": "x"}], "t")  # refused before it is sent
        first = intake._child
        os.kill(first.pid, signal.SIGKILL)
        first.join(30)
        deadline = time.monotonic() + 30
        while intake._conn is not None:  # the answers' reader sees the pipe close
            assert time.monotonic() < deadline
            time.sleep(0.05)
        again = intake.submit([row("a3"), row("c1")], "t").result(60)
        assert [o.status for o in again.outcomes] == ["duplicate", "accepted"]
        assert intake._child is not first and intake._child.is_alive()
    finally:
        intake.close()
    assert not intake._child.is_alive()
