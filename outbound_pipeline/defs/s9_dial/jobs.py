"""Jobs of the dial stage."""

import dagster as dg

from outbound_pipeline.defs.retries import DUCKDB_RETRY

dial_job = dg.define_asset_job("dial_job", op_retry_policy=DUCKDB_RETRY, selection=["call_contacts", "calls", "call_turns", "call_metrics"],
                               description="One pass of the dialer over every running voice campaign, then the call metrics.")
