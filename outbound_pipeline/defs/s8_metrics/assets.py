"""Stage 8, metrics: one row per campaign and touch (touch 0 = whole campaign), for any BI tool.

Answers to replies (`reply_mode: ai`, the reply touch) are not a campaign step: they stay out of
the funnel counts and rates, and are counted apart (`answers_sent`) with their cost in the
whole-campaign row. The SQL is in `store.metrics`.
"""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.store.metrics import refresh_campaign_metrics

GROUP = "s8_metrics"

# Rollups are unpartitioned: they read every partition of what they count.
CAMPAIGN_METRICS_READS = ["campaigns", "sends", "drafts", "delivery_events", "replies", "research_snippets"]


def every_partition(*keys: str) -> list[dg.AssetDep]:
    return [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in keys]


@dg.asset(group_name=GROUP, pool="duckdb", deps=every_partition(*CAMPAIGN_METRICS_READS), kinds={"duckdb"})
def campaign_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Funnel counts and rates per campaign and touch, recomputed in one SQL statement."""
    with warehouse.connect() as con:
        frame = refresh_campaign_metrics(con, clock.now())
    whole = frame[frame["touch"] == 0]
    summary = whole[["campaign_id", "sent", "delivery_rate", "reply_rate", "opt_out_rate", "bounce_rate", "cost_usd"]].round(3)
    return dg.MaterializeResult(metadata={
        "campaigns": len(whole), "messages_sent": int(whole["sent"].sum()),
        "summary": dg.MetadataValue.md(summary.to_markdown(index=False) if not summary.empty else "_none_"),
    })
