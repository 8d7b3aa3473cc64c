"""Sensors of the compose stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import first_touch_with_launch
from outbound_pipeline.defs.s3_compose.jobs import compose_beside_research_job


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.STARTING, request_job=compose_beside_research_job, minimum_interval_seconds=10,
                      default_status=dg.DefaultSensorStatus.RUNNING)
def compose_beside_research_sensor(context: dg.RunStatusSensorContext):
    """When a launch that will research its audience is launched, start drafting the first touch beside the research (a
    run that waits for the audience, then drafts each lead as its research lands), instead of after all of it: for a
    list of thousands the touch then takes about as long as its research. Requested as the launch's run is handed to
    the run launcher (STARTING, before its process exists), so both processes start together and compose is running
    when the first answers land: held to the same rate as research, it could not catch up. The plan that follows the
    launch still runs the touch, which approves and sends what is drafted and drafts whatever this run did not."""
    return first_touch_with_launch(context.instance, context.dagster_run, "compose-beside-research")
