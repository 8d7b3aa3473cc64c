"""Schedules of the cadence stage. They read Dagster's instance only, never DuckDB."""

import logging

import dagster as dg

from outbound_pipeline.defs.campaign_status import campaign_states, skipped_summary
from outbound_pipeline.defs.s7_cadence.jobs import cadence_job


def cadence_requests(instance: dg.DagsterInstance, stamp: str, log: logging.Logger | None = None) -> list[dg.RunRequest] | dg.SkipReason:
    """One cadence run per campaign to plan (see `CampaignState.planned`); the others named in the log and the skip reason."""
    states = campaign_states(instance)
    planned = [s.campaign_id for s in states if s.planned]
    skipped = [s for s in states if not s.planned]
    if skipped and log is not None:
        log.info(f"not planned, not running: {skipped_summary(skipped)}")
    if not planned:
        return dg.SkipReason(f"no running campaign to plan{': left alone ' + skipped_summary(skipped) if skipped else ''}")
    return [dg.RunRequest(run_key=f"cadence:{c}:{stamp}", partition_key=c) for c in planned]


@dg.schedule(job=cadence_job, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def cadence_schedule(context: dg.ScheduleEvaluationContext):
    """Every 15 minutes, plan the next touches of every running campaign (and of completed ones still answering replies).

    Campaigns never launched, paused, stopped or completed are left alone, named in the tick's log and skip reason:
    their plan would find nothing to do, or fail for want of a launch.
    """
    return cadence_requests(context.instance, context.scheduled_execution_time.strftime("%Y%m%d%H%M"), context.log)
