"""The BI snapshot asset, and the sensor that publishes one after writing runs without piling them up."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb

from outbound_pipeline.defs.s8_metrics.snapshot import bi_snapshot_after_runs
from outbound_pipeline.store.snapshot import current_database
from tests.store.metrics_fixtures import DAY2, build_campaign

LATER = DAY2 + timedelta(days=3)


def _evaluate(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult):
    context = dg.build_run_status_sensor_context(sensor_name="bi_snapshot_after_runs", dagster_instance=instance,
                                                 dagster_run=result.dagster_run, dagster_event=result.get_run_success_event())
    return bi_snapshot_after_runs(context)


def test_snapshot_asset_publishes_every_table_under_exports(driver, db, workdir):
    with db() as con:
        build_campaign(con)
    result = driver.run(["campaign_metrics", "variant_metrics", "funnel_metrics", "bi_snapshot"], LATER)
    assert result.success
    snapshot = current_database(workdir / "exports")
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("SELECT sent, replied FROM campaign_metrics WHERE touch = 0").fetchall() == [(6, 2)]
        assert con.execute("SELECT count(*) FROM sends").fetchall()[0][0] == 8
    assert (snapshot.parent / "parquet" / "campaign_metrics.parquet").exists()
    metadata = result.asset_materializations_for_node("bi_snapshot")[0].metadata
    assert metadata["tables"].value > 10 and metadata["rows"].value > 0


def test_sensor_asks_for_one_snapshot_after_a_writing_run(driver, instance, db):
    with db() as con:
        build_campaign(con)
    writing = driver.run(["campaign_metrics"], LATER)
    request = _evaluate(instance, writing)
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("bi_snapshot:")
    publishing = driver.run(["bi_snapshot"], LATER)
    assert isinstance(_evaluate(instance, publishing), dg.SkipReason)  # a snapshot run does not ask for another


def test_sensor_skips_while_a_snapshot_is_already_waiting(driver, instance, db):
    with db() as con:
        build_campaign(con)
    writing = driver.run(["campaign_metrics"], LATER)
    from outbound_pipeline.definitions import defs

    job = defs.resolve_job_def("bi_snapshot_job")
    waiting = instance.create_run_for_job(job, run_config={}, status=dg.DagsterRunStatus.NOT_STARTED)  # requested, not begun
    assert waiting.status == dg.DagsterRunStatus.NOT_STARTED
    skip = _evaluate(instance, writing)
    assert isinstance(skip, dg.SkipReason) and "already waiting" in (skip.skip_message or "")
