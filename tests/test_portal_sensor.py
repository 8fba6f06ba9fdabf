"""The portal landing sensor against a real Dagster instance: it loads each export dropped in
`landing/portals/<principal>/`, archives it, and requests one portal reconciliation run per new export (run key
= the file's SHA-256, partition = its date); a file of a principal without a mapping is archived as rejected.
The requested partition then materializes `portal_recon` with its checks."""

import hashlib
import time
from datetime import datetime

import dagster as dg

from assets.recon.assets import PORTAL_RECON, RECON_ASSETS
from ops_pipeline.giftcards.portal_landing import SETTLE_SECONDS
from resources.ops import OpsResource
from sensors.portals import portal_landing_sensor
from tests.portal_samples import PRINCIPAL, export_csv, seed_portal


def tick(ops, instance):
    with dg.build_sensor_context(instance=instance, resources={"ops": ops}) as context:
        return portal_landing_sensor(context)


def test_the_sensor_loads_exports_once_and_requests_their_date(sqlite_ws):
    ws = sqlite_ws
    dates = seed_portal(ws)
    day = datetime.now(ws.settings.tz).date()
    data = export_csv(ws, dates)
    landing = ws.settings.landing_dir / "portals"
    (landing / PRINCIPAL).mkdir(parents=True)
    (landing / "MALL-ORION").mkdir()
    (landing / PRINCIPAL / f"cafe-{day}.csv").write_bytes(data)
    (landing / "MALL-ORION" / f"mall-{day}.csv").write_bytes(data)
    ops = OpsResource(ops_home=str(ws.home))
    time.sleep(SETTLE_SECONDS + 0.05)
    with dg.instance_for_test() as instance:
        result = tick(ops, instance)
        [request] = result.run_requests
        assert (request.run_key, request.partition_key) == (hashlib.sha256(data).hexdigest(), day.isoformat())
        assert request.tags["ops/principal"] == PRINCIPAL
        archive = ws.settings.landing_dir / "archive" / "portals"
        assert (archive / PRINCIPAL / f"cafe-{day}.csv").read_bytes() == data
        assert (archive / "MALL-ORION" / "rejected" / f"mall-{day}.csv.error.txt").read_text() == (
            "principal_id: no portal_mapping 'MALL-ORION'\n")
        assert not list((landing / PRINCIPAL).iterdir())

        (landing / PRINCIPAL / "same-again.csv").write_bytes(data)  # the same file again: nothing new
        time.sleep(SETTLE_SECONDS + 0.05)
        again = tick(ops, instance)
        assert isinstance(again, dg.SkipReason) and "1 loaded before" in again.skip_message

        done = dg.materialize(RECON_ASSETS, selection=[PORTAL_RECON], instance=instance,
                              resources={"ops": ops}, partition_key=day.isoformat())
    assert done.success
    meta = done.asset_materializations_for_node("portal_recon")[0].metadata
    assert meta["counts"].value["matched_with_difference"] == 3 and meta["dagster/row_count"].value == 7
    assert all(c.passed for c in done.get_asset_check_evaluations())


def test_the_daily_schedule_creates_the_job_of_a_date_once(sqlite_ws):
    from assets.recon.portal import daily_reconciliation_job, daily_reconciliation_schedule
    from ops_pipeline.jobqueue import service

    ops = OpsResource(ops_home=str(sqlite_ws.home))
    config = {"ops": {"create_daily_reconciliation": {"config": {"business_date": "2026-12-05"}}}}
    ids = [daily_reconciliation_job.execute_in_process(run_config=config, resources={"ops": ops})
           .output_for_node("create_daily_reconciliation") for _ in range(2)]
    assert ids[0] == ids[1]
    job = service.get_job(sqlite_ws, ids[0])
    assert (job.type, job.attributes, job.created_by) == (
        "daily_reconciliation", {"business_date": "2026-12-05", "principal_id": None},
        "dagster:daily_reconciliation_schedule")
    assert daily_reconciliation_schedule.cron_schedule == "30 6 * * *"
