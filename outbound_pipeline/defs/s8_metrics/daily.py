"""Daily metrics history: one partition per day, each holding every breakdown as of that day's end.

A past day, re-materialised, gives the same rows (everything is counted as of the day's end), so
rates over time and campaign comparisons are queries over `metrics_daily`, never overwrites. Today's
partition is refreshed every hour by the schedule and after every touch run by the sensor; at the
turn of the day the schedule closes yesterday's.
"""


import warnings
from datetime import date, datetime, time, timedelta

import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import CAMPAIGN_METRICS_READS, CAMPAIGN_METRICS_UNPARTITIONED, GROUP, every_partition
from outbound_pipeline.engine.report import load_campaign, metrics_markdown
from outbound_pipeline.store.metrics import refresh_daily_metrics

DAILY_START = "2025-01-01"
# end_offset=1: today is a partition too, counted up to the run's moment until the day is over.
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, end_offset=1)
MAX_PICTURED = 5  # campaigns drawn in one materialisation's metadata: a few charts, not a page of them


# A range of days (a backfill, the demo's history) runs as one run; `backfill_policy` is marked beta, so its notice is
# kept out of every command's output.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    SINGLE_RUN = dg.BackfillPolicy.single_run()
    _daily_asset = dg.asset(partitions_def=daily_partitions, group_name=GROUP, pool="duckdb", backfill_policy=SINGLE_RUN,
                            deps=[*every_partition(*CAMPAIGN_METRICS_READS, "recipient_steps"), *CAMPAIGN_METRICS_UNPARTITIONED],
                            kinds={"duckdb"})


@_daily_asset
def metrics_daily(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Every campaign's metrics per touch, channel and variant, as of the end of each day of the run's partitions
    (one day, or a range in one run: a backfill, the demo); the pictures are of the last day."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    now = clock.now()
    with warehouse.connect() as con:
        rows = 0
        for day in days:
            frame = refresh_daily_metrics(con, day, now)
            rows += len(frame)
        campaigns = sorted(set(frame["campaign_id"]))[:MAX_PICTURED] if not frame.empty else []
        pictures = [metrics_markdown(load_campaign(con, campaign, min(now, _end_of(days[-1])))) for campaign in campaigns]
    return dg.MaterializeResult(metadata={
        "day": days[-1].isoformat(), "days": len(days), "rows": rows,
        "campaigns": len(set(frame["campaign_id"])) if not frame.empty else 0,
        "pictures": dg.MetadataValue.md("\n\n".join(pictures) or "_no campaign sent anything by this day_"),
    })


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time())


metrics_daily_job = dg.define_asset_job("metrics_daily_job", selection=["metrics_daily"], partitions_def=daily_partitions,
                                        description="Count one day's metrics history.")


@dg.schedule(job=metrics_daily_job, cron_schedule="5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def metrics_daily_schedule(context: dg.ScheduleEvaluationContext):
    """Every hour, today's partition; in the first hour of a day, yesterday's too, now that it is complete."""
    today = context.scheduled_execution_time.date()
    stamp = f"{context.scheduled_execution_time:%Y%m%d%H}"
    yield dg.RunRequest(run_key=f"metrics_daily:{today}:{stamp}", partition_key=today.isoformat())
    if context.scheduled_execution_time.hour == 0:
        yesterday = today - timedelta(days=1)
        yield dg.RunRequest(run_key=f"metrics_daily:{yesterday}:final", partition_key=yesterday.isoformat())


@dg.asset_sensor(asset_key=dg.AssetKey("sends"), job=metrics_daily_job, default_status=dg.DefaultSensorStatus.RUNNING)
def metrics_after_touch_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """After every touch run (it materialises `sends`), today's metrics partition: the day's figures include its messages."""
    today = date.fromtimestamp(asset_event.timestamp).isoformat()
    return dg.RunRequest(run_key=f"metrics_daily:{today}:after:{asset_event.run_id}", partition_key=today)
