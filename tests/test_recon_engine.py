"""Reconciliation engine: rules, exclusivity, cardinalities, decisions, runs in the lake, integer money."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date

import polars as pl
import pytest

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.recon import store
from ops_pipeline.recon.engine import Decision, match
from ops_pipeline.recon.rules import Criteria, Recon, Rule
from ops_pipeline.recon.service import run

DAY = date(2026, 12, 1)


def records(*rows: tuple) -> pl.DataFrame:
    """Rows of (id, amount, currency, ref, day-of-month)."""
    return pl.DataFrame(
        [{"id": i, "amount": a, "currency": c, "ref": r, "day": date(2026, 12, d)} for i, a, c, r, d in rows],
        schema={"id": pl.String, "amount": pl.Int64, "currency": pl.String, "ref": pl.String, "day": pl.Date},
    )


def one_rule(**criteria) -> Recon:
    return Recon("psp", (Rule("r1", Criteria(**criteria)),))


def by_status(rows) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for r in rows:
        found.setdefault(r.status, []).append((r.internal_ids, r.external_ids))
    return found


def assert_totals(rows, internal: pl.DataFrame, external: pl.DataFrame) -> None:
    """Every id in exactly one row per side, and the rows' amounts add up to the inputs' to the minor unit."""
    for side, frame, amount in (("internal_ids", internal, "internal_amount_minor"),
                                ("external_ids", external, "external_amount_minor")):
        ids = [i for r in rows for i in getattr(r, side)]
        assert Counter(ids) == Counter(frame["id"].to_list())
        assert sum(getattr(r, amount) for r in rows) == frame["amount"].sum()
    assert sum(r.amount_difference_minor for r in rows) == internal["amount"].sum() - external["amount"].sum()


def test_equal_fields_one_to_one():
    internal = records(("i1", 1000, "EUR", "A", 1), ("i2", 2000, "EUR", "B", 1))
    external = records(("e1", 2000, "EUR", "B", 1), ("e2", 1000, "EUR", "A", 1), ("e3", 500, "EUR", "C", 1))
    rows = match(internal, external, one_rule(equal=("ref",)), DAY)
    assert by_status(rows) == {"matched": [(("i1",), ("e2",)), (("i2",), ("e1",))],
                               "unmatched_external": [((), ("e3",))]}
    assert {r.rule_id for r in rows if r.status == "matched"} == {"r1"}
    assert rows[-1].reason == "no match under rules: r1" and rows[-1].amount_difference_minor == -500
    assert_totals(rows, internal, external)


def test_tolerance_gives_matched_with_difference_and_the_exact_difference():
    internal = records(("i1", 1003, "EUR", "A", 1), ("i2", 2000, "EUR", "B", 1))
    external = records(("e1", 1000, "EUR", "A", 1), ("e2", 1990, "EUR", "B", 1))
    rows = match(internal, external, one_rule(equal=("ref",), amount_tolerance_minor=3), DAY)
    [with_difference] = [r for r in rows if r.status == "matched_with_difference"]
    assert (with_difference.internal_ids, with_difference.external_ids) == (("i1",), ("e1",))
    assert with_difference.amount_difference_minor == 3
    assert with_difference.reason == "rule r1: internal - external = 3 minor units"
    assert by_status(rows)["unmatched_internal"] == [(("i2",), ())]  # 10 apart, beyond 3
    assert_totals(rows, internal, external)


def test_date_window():
    internal = records(("i1", 100, "EUR", "A", 1), ("i2", 100, "EUR", "B", 1))
    external = records(("e1", 100, "EUR", "A", 3), ("e2", 100, "EUR", "B", 4))
    rows = match(internal, external, one_rule(equal=("ref",), date_field="day", date_window_days=2), DAY)
    assert by_status(rows) == {"matched": [(("i1",), ("e1",))], "unmatched_internal": [(("i2",), ())],
                               "unmatched_external": [((), ("e2",))]}
    timestamps = external.with_columns(pl.col("day").cast(pl.Datetime("us", "UTC")))  # compared by day
    assert match(internal, timestamps, one_rule(equal=("ref",), date_field="day", date_window_days=2), DAY) == rows


def test_normalised_reference():
    internal = records(("i1", 100, "EUR", " ab-0012 3", 1), ("i2", 100, "EUR", "000", 1))
    external = records(("e1", 100, "EUR", "AB00123", 1), ("e2", 100, "EUR", "0-0", 1))
    rows = match(internal, external, one_rule(references=("ref",)), DAY)
    # "000" normalises to nothing: never a match, even against another empty reference
    assert by_status(rows) == {"matched": [(("i1",), ("e1",))], "unmatched_internal": [(("i2",), ())],
                               "unmatched_external": [((), ("e2",))]}


def test_exclusive_two_internals_compete_for_one_external():
    internal = records(("i2", 1001, "EUR", "A", 1), ("i1", 1000, "EUR", "A", 1))
    external = records(("e1", 1000, "EUR", "A", 1))
    recon = Recon("psp", (Rule("r1", Criteria(equal=("ref",), amount_tolerance_minor=5)),
                          Rule("r2", Criteria(amount_tolerance_minor=5))))
    rows = match(internal, external, recon, DAY)
    assert by_status(rows) == {"matched": [(("i1",), ("e1",))], "unmatched_internal": [(("i2",), ())]}
    assert_totals(rows, internal, external)


def test_ties_break_deterministically_and_each_side_is_used_once():
    internal = records(("i1", 100, "EUR", "A", 1), ("i2", 100, "EUR", "A", 1), ("i3", 100, "EUR", "A", 1))
    external = records(("e2", 100, "EUR", "A", 1), ("e1", 100, "EUR", "A", 1))
    rows = match(internal, external, one_rule(equal=("ref",)), DAY)
    assert by_status(rows) == {"matched": [(("i1",), ("e1",)), (("i2",), ("e2",))],
                               "unmatched_internal": [(("i3",), ())]}
    assert_totals(rows, internal, external)


def test_one_to_many_and_many_to_one_sums():
    payouts = records(("p1", 3000, "EUR", "B1", 1), ("p2", 999, "EUR", "B2", 1))
    lines = records(("l1", 1000, "EUR", "b-1", 1), ("l2", 2000, "EUR", "B1", 2), ("l3", 500, "EUR", "B2", 1),
                    ("l4", 500, "EUR", "B2", 1))
    one_to_many = Recon("bank", (Rule("sum", Criteria(references=("ref",), amount_tolerance_minor=1,
                                                      date_field="day", date_window_days=1),
                                      "1:N", ("ref",)),))
    rows = match(payouts, lines, one_to_many, DAY)
    assert by_status(rows) == {"matched": [(("p1",), ("l1", "l2"))],
                               "matched_with_difference": [(("p2",), ("l3", "l4"))]}
    assert [r.amount_difference_minor for r in rows] == [0, -1]
    assert_totals(rows, payouts, lines)

    many_to_one = Recon("bank", (Rule("sum", Criteria(references=("ref",)), "N:1", ("ref",)),))
    rows = match(lines, payouts, many_to_one, DAY)
    assert by_status(rows) == {"matched": [(("l1", "l2"), ("p1",))], "unmatched_internal": [(("l3",), ()), (("l4",), ())],
                               "unmatched_external": [((), ("p2",))]}
    assert_totals(rows, lines, payouts)


def test_currency_never_crosses():
    internal = records(("i1", 100, "EUR", "A", 1))
    external = records(("e1", 100, "USD", "A", 1))
    recon = Recon("fx", (Rule("loose", Criteria(amount_tolerance_minor=10**9)),
                         Rule("sum", Criteria(), "1:N", ("ref",))))
    rows = match(internal, external, recon, DAY)
    assert by_status(rows) == {"unmatched_internal": [(("i1",), ())], "unmatched_external": [((), ("e1",))]}
    with pytest.raises(InvalidInput, match=r"records in currencies \['EUR', 'USD'\]"):
        match(internal, external, recon, DAY, [Decision("match", ("i1",), ("e1",), "same", "ann")])


def test_decisions_force_forbid_and_write_off_in_the_engine():
    internal = records(("i1", 100, "EUR", "A", 1), ("i2", 100, "EUR", "B", 1), ("i3", 70, "EUR", "C", 1))
    external = records(("e1", 100, "EUR", "A", 1), ("e2", 90, "EUR", "X", 1))
    decided = [Decision("unmatch", ("i1",), ("e1",), "not the same payment", "ann"),
               Decision("match", ("i2",), ("e2",), "bank truncated the reference", "bob"),
               Decision("write_off", ("i3",), (), "fee absorbed", "ann")]
    rows = match(internal, external, one_rule(equal=("ref",)), DAY, decided)
    manual = [(r.internal_ids, r.external_ids, r.reason, r.decided_by, r.note, r.amount_difference_minor)
              for r in rows if r.status == "manual"]
    assert manual == [(("i2",), ("e2",), "manual match", "bob", "bank truncated the reference", 10),
                      (("i3",), (), "write-off", "ann", "fee absorbed", 70)]
    assert [(r.status, r.reason) for r in rows if r.status.startswith("unmatched")] == [
        ("unmatched_internal", "manually unmatched"), ("unmatched_external", "manually unmatched")]
    assert_totals(rows, internal, external)
    # a later match of the same pair lifts the unmatch
    rows = match(internal, external, one_rule(equal=("ref",)), DAY,
                 [*decided, Decision("match", ("i1",), ("e1",), "it was the same after all", "ann")])
    assert ("manual", ("i1",), ("e1",)) in [(r.status, r.internal_ids, r.external_ids) for r in rows]


def test_totals_invariant_on_random_records():
    """Many competing records, several rules and cardinalities: still each id once, sums exact."""
    rnd = random.Random(11)
    def side(prefix: str, n: int) -> pl.DataFrame:
        return records(*[(f"{prefix}{k}", rnd.randint(1, 60), rnd.choice(["EUR", "USD"]), rnd.choice("ABCD"),
                          rnd.randint(1, 5)) for k in range(n)])
    internal, external = side("i", 300), side("e", 400)
    recon = Recon("mix", (Rule("exact", Criteria(equal=("ref",), date_field="day")),
                          Rule("near", Criteria(references=("ref",), amount_tolerance_minor=2,
                                                date_field="day", date_window_days=1)),
                          Rule("split", Criteria(equal=("ref",), amount_tolerance_minor=3), "1:N", ("ref", "day")),
                          Rule("merge", Criteria(amount_tolerance_minor=3), "N:1", ("day", "ref"))))
    rows = match(internal, external, recon, DAY, [Decision("write_off", ("i0",), (), "test", "ann")])
    assert_totals(rows, internal, external)
    assert {r.status for r in rows} == {"matched", "matched_with_difference", "unmatched_internal",
                                        "unmatched_external", "manual"}
    assert {r.rule_id for r in rows} == {None, "exact", "near", "split", "merge"}
    assert any(len(r.external_ids) > 1 for r in rows if r.rule_id == "split")
    assert any(len(r.internal_ids) > 1 for r in rows if r.rule_id == "merge")
    assert all(abs(r.amount_difference_minor) <= 3 for r in rows if r.status.startswith("matched"))
    assert rows == match(internal.reverse(), external.sample(fraction=1.0, shuffle=True, seed=3), recon, DAY,
                         [Decision("write_off", ("i0",), (), "test", "ann")])  # order of input is moot


@pytest.mark.parametrize("column", [pl.Float64, pl.Decimal(12, 2), pl.String])
def test_non_integer_amounts_are_refused(column):
    internal = records(("i1", 100, "EUR", "A", 1)).with_columns(pl.col("amount").cast(column))
    with pytest.raises(InvalidInput, match=re.escape(f"internal records: column 'amount' is {column}; amounts must be integers in minor units")):
        match(internal, records(), one_rule(), DAY)


def test_bad_records_and_rules_are_refused():
    with pytest.raises(InvalidInput, match=r"external records lack columns \['ref'\]"):
        match(records(), records().drop("ref"), one_rule(equal=("ref",)), DAY)
    with pytest.raises(InvalidInput, match="internal records: date column 'ref' is String, not a date"):
        match(records(), records(), one_rule(date_field="ref"), DAY)
    with pytest.raises(InvalidInput, match=r"internal records: duplicate ids \['i1'\]"):
        match(records(("i1", 1, "EUR", "A", 1), ("i1", 2, "EUR", "A", 1)), records(), one_rule(), DAY)
    with pytest.raises(InvalidInput, match=r"amount_tolerance_minor must be an integer >= 0, got 0\.5"):
        Criteria(amount_tolerance_minor=0.5)
    with pytest.raises(InvalidInput, match=r"fields \['day'\] must be in group_by \('ref',\)"):
        Rule("g", Criteria(equal=("day",)), "1:N", ("ref",))
    with pytest.raises(InvalidInput, match="cardinality must be one of"):
        Rule("g", Criteria(), "N:N")


BANK = Recon("bank", (Rule("ref", Criteria(equal=("ref",), amount_tolerance_minor=5)),))
INTERNAL = records(("i1", 1000, "EUR", "A", 1), ("i2", 2002, "EUR", "B", 1), ("i3", 300, "EUR", "C", 1))
EXTERNAL = records(("e1", 1000, "EUR", "A", 1), ("e2", 2000, "EUR", "B", 1), ("e3", 310, "EUR", "D", 1))


def test_run_writes_supersedes_and_keeps_manual_decisions(ws):
    first = run(ws, BANK, DAY, INTERNAL, EXTERNAL.to_arrow(), actor="scheduler")
    assert first.counts == {"matched": 1, "matched_with_difference": 1, "unmatched_internal": 1,
                            "unmatched_external": 1, "manual": 0}
    assert first.amounts["matched_with_difference"] == {"internal_minor": 2002, "external_minor": 2000,
                                                        "difference_minor": 2}
    assert [(r.internal_ids, r.external_ids) for r in first.matched] == [(("i1",), ("e1",)), (("i2",), ("e2",))]
    assert store.latest_results(ws, "bank", DAY) == list(first.rows)

    store.decide(ws, "bank", DAY, "match", ["i3"], ["e3"], "same transfer, reference typo", "ann")
    store.decide(ws, "bank", DAY, "unmatch", ["i2"], ["e2"], "two different fees", "bob")
    with pytest.raises(NotFound, match=r"external ids \['e9'\] are not in the results of bank on 2026-12-01"):
        store.decide(ws, "bank", DAY, "write_off", [], ["e9"], "unknown", "ann")
    with pytest.raises(InvalidInput, match="note is required"):
        store.decide(ws, "bank", DAY, "write_off", ["i1"], [], " ", "ann")

    second = run(ws, BANK, DAY, INTERNAL, EXTERNAL, actor="scheduler")
    assert second.run_id > first.run_id and second.lake_version == first.lake_version + 1
    assert by_status(second.rows) == {"manual": [(("i3",), ("e3",))], "matched": [(("i1",), ("e1",))],
                                      "unmatched_internal": [(("i2",), ())], "unmatched_external": [((), ("e2",))]}
    assert store.latest_results(ws, "bank", DAY) == list(second.rows)

    third = run(ws, BANK, DAY, INTERNAL, EXTERNAL, actor="scheduler")  # a re-run keeps the decisions
    assert store.latest_results(ws, "bank", DAY) == list(third.rows)
    assert by_status(third.rows) == by_status(second.rows)
    assert_totals(third.rows, INTERNAL, EXTERNAL)
    assert store.latest_results(ws, "bank", date(2026, 12, 2)) == []
    con = analytics.connect(ws)  # what `ops-pipeline sql` shows: the latest run; every run in the lake table
    assert con.sql("SELECT count(*), any_value(run_id) FROM recon_results").fetchall() == [(4, third.run_id)]
    assert con.sql("SELECT count(DISTINCT run_id), count(*) FROM lake_recon_results").fetchall() == [(3, 12)]
    con.close()

    from ops_pipeline.audit import history
    with ws.engine.connect() as conn:
        [entry] = history(conn, "recon_decision", "1")
        assert [entry["actor"], entry["action"], entry["reason"], entry["after"]["internal_ids"]] == [
            "ann", "match", "same transfer, reference typo", ["i3"]]
        assert history(conn, "recon_run", third.run_id)[0]["after"]["counts"]["manual"] == 1


def test_dry_run_writes_nothing(ws):
    before = ws.lake.latest_version("recon_results")
    summary = run(ws, BANK, DAY, INTERNAL, EXTERNAL, actor="ann", dry_run=True)
    assert (summary.run_id, summary.counts["matched"]) == (None, 1)
    assert ws.lake.latest_version("recon_results") == before
    assert store.latest_results(ws, "bank", DAY) == []


def greedy_reference(internal: pl.DataFrame, external: pl.DataFrame, tolerance: int, window: int,
                     forbidden: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sequential greedy matching in rank order (gap, days, internal id, external id), one pair at a time."""
    candidates = sorted(
        (abs(i["amount"] - e["amount"]), abs((i["day"] - e["day"]).days), i["id"], e["id"])
        for i in internal.iter_rows(named=True) for e in external.iter_rows(named=True)
        if (i["currency"], i["ref"]) == (e["currency"], e["ref"]) and abs(i["amount"] - e["amount"]) <= tolerance
        and abs((i["day"] - e["day"]).days) <= window and (i["id"], e["id"]) not in forbidden)
    used_i, used_e, chosen = set(), set(), []
    for _, _, i, e in candidates:
        if i not in used_i and e not in used_e:
            used_i.add(i)
            used_e.add(e)
            chosen.append((i, e))
    return chosen


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_pick_equals_sequential_greedy(seed):
    rng = random.Random(seed)

    def side(prefix: str, n: int) -> pl.DataFrame:  # few refs, amounts and days: many ties and conflicts
        return records(*[(f"{prefix}{k:03}", rng.randint(1, 6) * 10 + rng.randint(0, 3), rng.choice("EU"),
                          rng.choice("ABC"), rng.randint(1, 4)) for k in range(n)])

    internal, external = side("i", rng.randint(1, 60)), side("e", rng.randint(1, 60))
    pairs = [(i, e) for i in internal["id"] for e in external["id"]]
    forbidden = set(rng.sample(pairs, min(len(pairs), 40)))
    decisions = [Decision("unmatch", (i,), (e,), "no", "ann") for i, e in sorted(forbidden)]
    recon = one_rule(equal=("ref",), amount_tolerance_minor=12, date_field="day", date_window_days=1)
    rows = match(internal, external, recon, DAY, decisions)
    picked = [(r.internal_ids[0], r.external_ids[0]) for r in rows if r.rule_id == "r1"]
    assert picked == greedy_reference(internal, external, 12, 1, forbidden)
    assert_totals(rows, internal, external)
