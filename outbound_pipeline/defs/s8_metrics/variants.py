"""A/B results: per campaign, step and variant, how many leads drew it and how they answered, with a verdict per step."""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import GROUP, every_partition
from outbound_pipeline.engine.charts import ab_chart, markdown_image
from outbound_pipeline.engine.report import ab_verdicts
from outbound_pipeline.store.metrics import refresh_variant_metrics, rollup

VARIANT_METRICS_READS = ["recipient_steps", "sends", "delivery_events", "replies"]


@dg.asset(group_name=GROUP, pool="duckdb", deps=every_partition(*VARIANT_METRICS_READS), kinds={"duckdb"})
def variant_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Counts and reply rates per A/B variant of every step that has variants, and each step's verdict (`domain.experiments`):
    leads who replied out of leads reached, a fixed horizon planned up front, so hourly looks cannot crown a false winner."""
    now = clock.now()
    with warehouse.connect() as con:
        frame = refresh_variant_metrics(con, now)
        rows = rollup(con, now) if not frame.empty else None
    verdicts = [(campaign, v) for campaign in sorted(set(frame["campaign_id"])) for v in ab_verdicts(rows, campaign)] if rows is not None else []
    lines = [f"- **{campaign}**, {v.step}: {v.text}" for campaign, v in verdicts]
    charts = [markdown_image(ab_chart(v, title=f"A/B {campaign} {v.step}"), f"A/B {campaign} {v.step}") for campaign, v in verdicts[:5]]
    return dg.MaterializeResult(metadata={
        "rows": len(frame),
        "variants": dg.MetadataValue.json(frame[["campaign_id", "step", "variant", "leads", "replied"]].to_dict("records") if not frame.empty else []),
        "verdicts": dg.MetadataValue.json([{"campaign_id": c, "step": v.step, "state": v.state, "winner": v.winner, "text": v.text,
                                            "planned_n": v.planned_n, "p_value": v.p_value} for c, v in verdicts]),
        "ab": dg.MetadataValue.md("\n".join(lines) + ("\n\n" + "\n\n".join(charts) if charts else "") if lines else "_no step with variants has sent yet_"),
    })
