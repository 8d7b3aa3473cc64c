"""The dial sensor: a dial run every minute while a voice campaign is running or paused (its calls in flight still
report back). Never opens DuckDB: statuses come from the instance, channels from the campaign files."""

import dagster as dg

from outbound_pipeline.defs.campaign_status import campaign_states
from outbound_pipeline.defs.resources import CampaignCatalog
from outbound_pipeline.defs.s9_dial.jobs import dial_job
from outbound_pipeline.domain.loader import CampaignSpecError, UnknownCampaignError


@dg.sensor(job=dial_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dial_sensor(context: dg.SensorEvaluationContext, catalog: CampaignCatalog) -> dg.RunRequest | dg.SkipReason:
    """One dial run per minute for all voice campaigns together (the limits are organisation-wide)."""
    voice = []
    for state in campaign_states(context.instance):
        if not state.tracked:
            continue
        try:
            if catalog.spec(state.campaign_id).is_voice:
                voice.append(state.campaign_id)
        except (CampaignSpecError, UnknownCampaignError):
            continue
    if not voice:
        return dg.SkipReason("no running or paused voice campaign")
    tick = int(context.cursor or 0) + 1
    context.update_cursor(str(tick))
    return dg.RunRequest(run_key=f"dial:{tick}", tags={"outbound/voice_campaigns": ",".join(voice)[:200]})
