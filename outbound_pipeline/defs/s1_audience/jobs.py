"""Jobs of the audience stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions

LAUNCH_SELECTION = ["campaigns", "campaign_events", "leads", "lead_rejects", "recipients", "research_snippets"]

launch_job = dg.define_asset_job("launch_job", selection=LAUNCH_SELECTION, partitions_def=campaign_partitions,
                                 description="Launch a campaign: spec, leads, audience, research.")
