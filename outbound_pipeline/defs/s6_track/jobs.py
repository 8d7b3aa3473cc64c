"""Jobs of the tracking stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions

track_job = dg.define_asset_job("track_job", selection=["delivery_events", "replies"], partitions_def=campaign_partitions,
                                description="Ingest delivery events and replies for a campaign.")
landing_job = dg.define_asset_job("landing_job", selection=["landed_records"],
                                  description="Ingest landed webhook callbacks and polled replies into delivery_events and replies.")
