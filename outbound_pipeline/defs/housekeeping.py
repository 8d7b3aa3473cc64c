"""DuckLake housekeeping on a schedule: small-file compaction and snapshot expiry (`store/housekeeping.py`).

The schedule runs nightly when the store is a DuckLake; on the DuckDB file it starts stopped and the
job does nothing. Retention of snapshots (time travel) is `OUTBOUND_LAKE_KEEP_SNAPSHOTS_DAYS`, default 7.
"""

import os
from datetime import timedelta

import dagster as dg

from outbound_pipeline import settings
from outbound_pipeline.defs.resources import Warehouse
from outbound_pipeline.store import backend, housekeeping


@dg.op
def lake_housekeeping(context: dg.OpExecutionContext, warehouse: Warehouse) -> None:
    """Merge adjacent small files, expire old snapshots, delete files no snapshot references."""
    keep = timedelta(days=float(os.environ.get("OUTBOUND_LAKE_KEEP_SNAPSHOTS_DAYS", "7")))
    with warehouse.connect() as con:
        done = housekeeping.tidy(con, keep)
    if done is None:
        context.log.info("the store is the DuckDB file: no housekeeping to do")
        return
    context.log.info(f"data files {done.data_files_before} -> {done.data_files_after}, "
                     f"snapshots {done.snapshots_before} -> {done.snapshots_after}")


@dg.job(description="DuckLake compaction and snapshot expiry.")
def lake_housekeeping_job() -> None:
    lake_housekeeping()


def _on_lake() -> bool:
    return backend.store_url(settings.duckdb_path()).startswith("ducklake:")


lake_housekeeping_schedule = dg.ScheduleDefinition(
    job=lake_housekeeping_job, cron_schedule="30 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING if _on_lake() else dg.DefaultScheduleStatus.STOPPED,
)
