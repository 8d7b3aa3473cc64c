"""Schedules of the cadence stage. They read Dagster's instance only, never DuckDB."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.s7_cadence.jobs import cadence_job


def _campaigns(instance: dg.DagsterInstance) -> list[str]:
    return list(campaign_partitions.get_partition_keys(dynamic_partitions_store=instance))


@dg.schedule(job=cadence_job, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def cadence_schedule(context: dg.ScheduleEvaluationContext):
    """Every 15 minutes, plan every campaign's next touches."""
    stamp = context.scheduled_execution_time.strftime("%Y%m%d%H%M")
    return [dg.RunRequest(run_key=f"cadence:{c}:{stamp}", partition_key=c) for c in _campaigns(context.instance)]
