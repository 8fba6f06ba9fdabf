"""Gift-card commissions and invoices in Dagster on a real instance: the daily `commission_lines` partitions
and the monthly `giftcard_invoices` with their checks, materialized twice with the same result; the daily
payment job matches a credit."""

from datetime import date

import dagster as dg

import definitions
from assets.giftcards.assets import (
    COMMISSION_LINES,
    EVERY_SALE,
    GIFTCARD_INVOICES,
    TIED,
    commission_lines_asset,
)
from assets.giftcards.assets import giftcard_invoices as invoices_asset
from assets.giftcards.jobs import invoice_payments_job
from assets.partitions import DAILY, MONTHLY
from ops_pipeline.giftcards import invoice_files, invoices
from resources.ops import OpsResource
from tests.gcfin_samples import credit, sell
from tests.giftcard_samples import seed


def test_definitions_hold_the_giftcard_assets_checks_and_schedule():
    specs = {s.key: s for s in definitions.defs.resolve_all_asset_specs() if s.group_name == "giftcards"}
    assert set(specs) == {COMMISSION_LINES, GIFTCARD_INVOICES}
    assert (
        specs[COMMISSION_LINES].partitions_def == DAILY and specs[GIFTCARD_INVOICES].partitions_def == MONTHLY
    )
    graph = definitions.defs.resolve_asset_graph()
    assert {(k.asset_key, k.name) for k in graph.asset_check_keys if k.asset_key in specs} == {
        (COMMISSION_LINES, EVERY_SALE),
        (GIFTCARD_INVOICES, TIED),
    }
    assert definitions.defs.resolve_schedule_def("invoice_payments_schedule").cron_schedule == "0 7 * * *"


def test_days_then_month_twice_and_payments(ws):
    seed(ws)
    for day, faces in ((date(2026, 11, 2), [50000, 100000]), (date(2026, 11, 3), [100000])):
        sell(ws, day, "D-GIFTLY", "GC-ORION-FESTIVE", faces)
    ops = OpsResource(ops_home=str(ws.settings.home), database_url=ws.settings.database_url)
    with dg.instance_for_test() as instance:
        for _ in range(2):
            for day in ("2026-11-02", "2026-11-03"):
                result = dg.materialize(
                    [commission_lines_asset], instance=instance, resources={"ops": ops}, partition_key=day
                )
                assert result.success
                assert all(c.passed for c in result.get_asset_check_evaluations())
            month = dg.materialize(
                [invoices_asset], instance=instance, resources={"ops": ops}, partition_key="2026-11-01"
            )
            [tied] = month.get_asset_check_evaluations()
            assert tied.passed and tied.check_name == TIED
        [meta] = [e.materialization.metadata for e in month.get_asset_materialization_events()]
        assert (meta["dagster/row_count"].value, meta["issued"].value, meta["files_written"].value) == (
            1,
            0,
            0,
        )
        [inv] = invoices.list_invoices(ws, month=date(2026, 11, 1))
        assert (inv.number, inv.sales, inv.total_minor) == ("INV-2026-000001", 3, 7500)  # 3% of 2500.00
        assert all(p.exists() for p in invoice_files.paths(ws, inv).values())
        credit(ws, "st-9", [(7500, f"/ROC/{inv.number}", date(2026, 12, 3))])
        assert invoice_payments_job.execute_in_process(instance=instance, resources={"ops": ops}).success
    assert invoices.get(ws, inv.number).status == "paid"
