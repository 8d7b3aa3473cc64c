"""Jobs of the tracking stage."""

import dagster as dg

from outbound_pipeline.defs.retries import DUCKDB_RETRY

TRACKED_TABLES = ["delivery_events", "replies", "suppressions", "inbound_windows", "tickets", "notifications"]

track_job = dg.define_asset_job("track_job", op_retry_policy=DUCKDB_RETRY, selection=TRACKED_TABLES,
                                description="Ingest delivery events and replies: polled from the campaigns' providers, and landed "
                                            "webhooks and polled inboxes; the campaigns react in the same transaction.")
