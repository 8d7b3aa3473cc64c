"""A/B results: per campaign, step and variant, how many leads drew it and how they answered."""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import GROUP, every_partition
from outbound_pipeline.store.metrics import refresh_variant_metrics

VARIANT_METRICS_READS = ["recipient_steps", "sends", "delivery_events", "replies"]


@dg.asset(group_name=GROUP, pool="duckdb", deps=every_partition(*VARIANT_METRICS_READS), kinds={"duckdb"})
def variant_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Counts and reply rates per A/B variant of every step that has variants."""
    with warehouse.connect() as con:
        frame = refresh_variant_metrics(con, clock.now())
    return dg.MaterializeResult(metadata={"rows": len(frame), "variants": dg.MetadataValue.json(
        frame[["campaign_id", "step", "variant", "leads", "replied"]].to_dict("records") if not frame.empty else [])})
