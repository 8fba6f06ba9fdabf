"""Reconciliation over REST on SQLite and PostgreSQL: breaks with filters and cursor, money as minor units and
decimal strings, resolving (ops only, 400 naming the field, 404 unknown break), runs with counts."""

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.recon import settlement
from tests.test_api_jobs import error
from tests.test_recon_settlement import D, world  # noqa: F401 (fixture)
from tests.test_tickets_api import call, ok


@pytest.fixture
def client(world):  # noqa: F811
    settlement.run(world, D, actor="test")
    with TestClient(create_app(world.settings)) as c:
        c.ws = world
        yield c


def test_breaks_filters_cursor_and_money(client):
    every = ok(call(client, "GET", "/recon/breaks", role="analyst"))
    assert every["nextCursor"] is None and len(every["breaks"]) == 6
    c3 = next(b for b in every["breaks"] if b["internalIds"] == ["c3"])
    assert {k: c3[k] for k in ("recon", "businessDate", "status", "externalIds", "currency", "internalAmountMinor",
                               "externalAmountMinor", "amountDifferenceMinor", "internalAmount", "externalAmount",
                               "amountDifference")} == {
        "recon": "settlement", "businessDate": "2026-11-01", "status": "matched_with_difference",
        "externalIds": ["c3"], "currency": "EUR", "internalAmountMinor": 2000, "externalAmountMinor": 1950,
        "amountDifferenceMinor": 50, "internalAmount": "20.00", "externalAmount": "19.50",
        "amountDifference": "0.50"}
    assert len(c3["breakId"]) == 16 and c3["firstSeenAt"]
    pages, cursor = [], None
    while True:
        page = ok(call(client, "GET", "/recon/breaks", role="finance", limit=4, **({"cursor": cursor} if cursor
                                                                                      else {})))
        pages.append([b["breakId"] for b in page["breaks"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [4, 2] and [i for p in pages for i in p] == [b["breakId"] for b in every["breaks"]]
    internal = ok(call(client, "GET", "/recon/breaks", status="unmatched_internal", recon="settlement",
                       date="2026-11-01"))
    assert sorted(b["internalIds"][0] for b in internal["breaks"]) == ["c4", "c5", "c6"]
    assert ok(call(client, "GET", "/recon/breaks", olderThan=100000))["breaks"] == []
    assert ok(call(client, "GET", "/recon/breaks", date="2026-10-31"))["breaks"] == []
    error(call(client, "GET", "/recon/breaks", status="open"), 400, "VALIDATION_ERROR", "status: 'open'")
    error(call(client, "GET", "/recon/breaks", recon="nope"), 400, "VALIDATION_ERROR", "recon: 'nope'")
    error(call(client, "GET", "/recon/breaks", cursor="junk"), 400, "VALIDATION_ERROR", "cursor: 'junk'")
    error(call(client, "GET", "/recon/breaks", cursor=""), 400, "VALIDATION_ERROR", "cursor: ''")
    for day in ("0", "2026-13-01", "20261101"):
        error(call(client, "GET", "/recon/breaks", date=day), 400, "VALIDATION_ERROR", f"date: {day!r}")
    assert call(client, "GET", "/recon/breaks", role="merchant", sub="M1").status_code == 403


def test_resolve_roles_errors_and_effect(client):
    found = {(b["status"], (b["internalIds"] + b["externalIds"])[0]): b["breakId"]
             for b in ok(call(client, "GET", "/recon/breaks"))["breaks"]}
    c5, r9 = found[("unmatched_internal", "c5")], found[("unmatched_external", "r9")]
    body = {"action": "match", "note": "same payment, other id", "withBreakId": r9}
    assert call(client, "POST", f"/recon/breaks/{c5}/resolve", body, role="finance").status_code == 403
    error(call(client, "POST", f"/recon/breaks/{c5}/resolve", {**body, "action": "ignore"}), 400,
          "VALIDATION_ERROR", "action: 'ignore'")
    url = f"/recon/breaks/{c5}/resolve"
    error(call(client, "POST", url, {"action": "match"}), 422, "INVALID_BODY", "note: Field required")
    error(call(client, "POST", url, {**body, "extra": 1}), 422, "INVALID_BODY", "extra")
    error(call(client, "POST", "/recon/breaks/0000000000000000/resolve", body), 404, "NOT_FOUND",
          "break '0000000000000000'")
    made = ok(call(client, "POST", f"/recon/breaks/{c5}/resolve", body, sub="asha"))
    assert (made["breakId"], made["action"]) == (c5, "match") and made["decisionId"] >= 1
    c4 = found[("unmatched_internal", "c4")]
    ok(call(client, "POST", f"/recon/breaks/{c4}/resolve", {"action": "writeOff", "note": "refunded"}))
    rows = settlement.run(client.ws, D, actor="test").rows
    manual = sorted((r.internal_ids, r.external_ids, r.decided_by) for r in rows if r.status == "manual")
    assert manual == [(("c4",), (), "lead"), (("c5",), ("r9",), "asha")]
    left = {b["breakId"] for b in ok(call(client, "GET", "/recon/breaks"))["breaks"]}
    assert left == set(found.values()) - {c4, c5, r9}  # the others keep their ids


def test_runs(client):
    settlement.run(client.ws, D, actor="test")
    listed = ok(call(client, "GET", "/recon/runs", role="analyst", recon="settlement"))["runs"]
    assert [(r["businessDate"], r["latest"], r["rows"]) for r in listed] == [
        ("2026-11-01", True, 9), ("2026-11-01", False, 9)]
    assert listed[0]["counts"] == {"matched": 3, "matched_with_difference": 1, "unmatched_internal": 3,
                                   "unmatched_external": 2, "manual": 0}
    latest = ok(call(client, "GET", "/recon/runs", latest="true", date="2026-11-01"))["runs"]
    assert [r["runId"] for r in latest] == [listed[0]["runId"]]
    assert ok(call(client, "GET", "/recon/runs", recon="payouts"))["runs"] == []
    error(call(client, "GET", "/recon/runs", limit=0), 400, "VALIDATION_ERROR", "limit")
