"""The BI snapshot: after every writing run and on the rollup schedule, a read-only copy for BI tools under `data/exports/`.

BI tools read `data/exports/current/outbound.duckdb` (or `current/parquet/*.parquet`), never the live
file, so a dashboard can neither block a run nor fail a read because of one (`store.snapshot`). The
snapshot runs in the `duckdb` pool like every unit of work on the live file; a burst of finished
runs asks for one snapshot, not one each.
"""

import time
from pathlib import Path

import dagster as dg

from outbound_pipeline.defs.resources import Warehouse
from outbound_pipeline.defs.s8_metrics.assets import GROUP
from outbound_pipeline.store.snapshot import publish_snapshot

EXPORTS_DIR = "exports"  # beside the live DuckDB file
DEDUP_SECONDS = 60  # runs finishing within the same minute share one snapshot
PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def export_dir(warehouse: Warehouse) -> Path:
    return Path(warehouse.path).parent / EXPORTS_DIR


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb", "parquet"},
          deps=["campaign_metrics", "variant_metrics", "funnel_metrics", "alerts"])
def bi_snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every table copied into a new snapshot version (DuckDB file plus one Parquet per table), made current atomically."""
    info = publish_snapshot(warehouse.path, export_dir(warehouse))
    return dg.MaterializeResult(metadata={
        "version": info.version, "database": dg.MetadataValue.path(str(info.database)),
        "tables": len(info.row_counts), "rows": sum(info.row_counts.values()),
        "removed_versions": len(info.removed_versions),
    })


bi_snapshot_job = dg.define_asset_job("bi_snapshot_job", selection=["bi_snapshot"], description="Publish the BI snapshot.")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=bi_snapshot_job, default_status=dg.DefaultSensorStatus.RUNNING,
                      minimum_interval_seconds=15)
def bi_snapshot_after_runs(context: dg.RunStatusSensorContext):
    """After any successful run that wrote the warehouse, a snapshot, unless one is already waiting to run."""
    run = context.dagster_run
    published = dg.AssetKey("bi_snapshot") in (run.asset_selection or set()) or "bi_snapshot" in (run.step_keys_to_execute or [])
    if run.job_name == bi_snapshot_job.name or published:
        return dg.SkipReason("that run published the snapshot itself")
    if context.instance.get_runs(filters=dg.RunsFilter(job_name=bi_snapshot_job.name, statuses=PENDING), limit=1):
        return dg.SkipReason("a snapshot is already waiting to run")
    return dg.RunRequest(run_key=f"bi_snapshot:{int(time.time() // DEDUP_SECONDS)}")
