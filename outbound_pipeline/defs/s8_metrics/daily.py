"""Daily metrics history: one partition per day, each holding every breakdown as of that day's end.

A past day, re-materialised, gives the same rows (everything is counted as of the day's end), so
rates over time and campaign comparisons are queries over `metrics_daily`, never overwrites. Today's
partition is refreshed every hour by the schedule and after every touch run by the sensor; at the
turn of the day the schedule closes yesterday's.
"""


from datetime import date, datetime, time, timedelta

import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import CAMPAIGN_METRICS_READS, GROUP, every_partition
from outbound_pipeline.engine.report import load_campaign, metrics_markdown
from outbound_pipeline.store.metrics import refresh_daily_metrics

DAILY_START = "2025-01-01"
# end_offset=1: today is a partition too, counted up to the run's moment until the day is over.
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, end_offset=1)
MAX_PICTURED = 5  # campaigns drawn in one materialisation's metadata: a few charts, not a page of them


@dg.asset(partitions_def=daily_partitions, group_name=GROUP, pool="duckdb",
          deps=every_partition(*CAMPAIGN_METRICS_READS, "recipient_steps"), kinds={"duckdb"})
def metrics_daily(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Every campaign's metrics per touch, channel and variant, as of the end of the partition's day."""
    day = date.fromisoformat(context.partition_key)
    now = clock.now()
    with warehouse.connect() as con:
        frame = refresh_daily_metrics(con, day, now)
        campaigns = sorted(set(frame["campaign_id"]))[:MAX_PICTURED] if not frame.empty else []
        pictures = [metrics_markdown(load_campaign(con, campaign, min(now, _end_of(day)))) for campaign in campaigns]
    return dg.MaterializeResult(metadata={
        "day": context.partition_key, "rows": len(frame), "campaigns": len(set(frame["campaign_id"])) if not frame.empty else 0,
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
