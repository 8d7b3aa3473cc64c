"""Jobs of the audience stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions

launch_job = dg.define_asset_job("launch_job", selection=["campaigns", "leads", "lead_rejects", "recipients", "research_snippets"],
                                 partitions_def=campaign_partitions, description="Launch a campaign: spec, leads, audience, research.")
