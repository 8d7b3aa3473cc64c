"""Funnel and step drop-off: per campaign and step, how many recipients entered, were reached, engaged and replied.

A step's previous steps come from the campaign's frozen spec (every step that can lead to it: the
following-step rule and branches). Its drop-off is the share of the recipients of those previous
steps who did not enter it; recipients still waiting for the step count as not (yet) reached.
"""


import json

import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import GROUP, every_partition
from outbound_pipeline.store.metrics import refresh_funnel_metrics

# The step graph comes from each campaign's frozen spec (`campaigns`).
FUNNEL_METRICS_READS = ["campaigns", "drafts", "sends", "delivery_events", "replies"]


@dg.asset(group_name=GROUP, pool="duckdb", deps=every_partition(*FUNNEL_METRICS_READS), kinds={"duckdb"})
def funnel_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per campaign and step: recipients entering, sent, delivered, engaged, replied, and drop-off from the previous step."""
    with warehouse.connect() as con:
        frame = refresh_funnel_metrics(con, clock.now())
    shown = json.loads(frame[["campaign_id", "step", "entered", "sent", "replied", "dropoff_rate"]].to_json(orient="records")) if not frame.empty else []
    return dg.MaterializeResult(metadata={"rows": len(frame), "steps": dg.MetadataValue.json(shown)})
