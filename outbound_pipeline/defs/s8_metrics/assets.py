"""Stage 8, metrics: one row per campaign and touch (touch 0 = whole campaign), for any BI tool.

Answers to replies (`reply_mode: ai`, the reply touch) are not a campaign step: they stay out of
the funnel counts and rates, and are counted apart (`answers_sent`) with their cost in the
whole-campaign row. The SQL is in `store.metrics`.
"""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.engine.report import load_campaign, markdown_table, metrics_markdown
from outbound_pipeline.store.metrics import refresh_campaign_metrics

GROUP = "s8_metrics"

# Rollups are unpartitioned: they read every partition of what they count.
CAMPAIGN_METRICS_READS = ["campaigns", "sends", "drafts", "delivery_events", "replies", "research_snippets"]


MAX_PICTURED = 5  # campaigns drawn in one materialisation's metadata
SUMMARY = ("campaign_id", "sent", "delivered", "leads_reached", "replied", "delivery_rate", "open_rate", "reply_rate", "reply_to_cta_rate",
           "opt_out_rate", "bounce_rate", "conversion_rate", "cost_usd", "cost_per_reply_usd")


def every_partition(*keys: str) -> list[dg.AssetDep]:
    return [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in keys]


# Unpartitioned tables the rollups read besides: a voice campaign's calls (their cost).
CAMPAIGN_METRICS_UNPARTITIONED = [dg.AssetDep("calls")]


@dg.asset(group_name=GROUP, pool="duckdb", deps=[*every_partition(*CAMPAIGN_METRICS_READS, "recipient_steps"), *CAMPAIGN_METRICS_UNPARTITIONED],
          kinds={"duckdb"})
def campaign_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Counts and rates per campaign and touch, as the product defines them (`domain.metrics`), with a funnel and a
    rates-over-time chart and a summary table per campaign in the metadata."""
    now = clock.now()
    with warehouse.connect() as con:
        frame = refresh_campaign_metrics(con, now)
        whole = frame[frame["touch"] == 0]
        pictured = whole.sort_values("computed_at")["campaign_id"].tolist()[:MAX_PICTURED]
        pictures = [metrics_markdown(load_campaign(con, campaign, now)) for campaign in pictured]
    return dg.MaterializeResult(metadata={
        "campaigns": len(whole), "messages_sent": int(whole["sent"].sum()), "leads_replied": int(whole["replied"].sum()),
        "summary": dg.MetadataValue.md(markdown_table(whole[[c for c in SUMMARY if c in whole.columns]])),
        "pictures": dg.MetadataValue.md("\n\n".join(pictures) or "_no campaign has sent anything yet_"),
    })
