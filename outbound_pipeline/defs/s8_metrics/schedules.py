"""Schedules of the metrics stage."""

import dagster as dg

from outbound_pipeline.defs.s8_metrics.jobs import metrics_job


@dg.schedule(job=metrics_job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def metrics_schedule(context: dg.ScheduleEvaluationContext):
    """Hourly metric rollup."""
    return dg.RunRequest(run_key=f"metrics:{context.scheduled_execution_time:%Y%m%d%H}")
