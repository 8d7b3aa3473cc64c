"""A/B results: per campaign, step and variant, how many leads drew it and how they answered."""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import replace_where

VARIANT_SQL = """
WITH per_send AS (
    SELECT rs.campaign_id, rs.touch, rs.step, rs.variant, rs.lead_id, s.send_id, s.status = 'sent' AS sent,
           EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id AND e.event_type IN ('delivered', 'opened', 'read', 'clicked')) AS delivered,
           EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id AND e.event_type IN ('opened', 'read', 'clicked')) AS opened,
           EXISTS (SELECT 1 FROM replies p WHERE p.send_id = s.send_id AND p.intent <> 'opt_out') AS replied,
           EXISTS (SELECT 1 FROM replies p WHERE p.send_id = s.send_id AND p.intent = 'interested') AS to_cta
    FROM recipient_steps rs
    LEFT JOIN sends s ON s.campaign_id = rs.campaign_id AND s.lead_id = rs.lead_id AND s.touch = rs.touch
    WHERE rs.variant IS NOT NULL
)
SELECT campaign_id, touch, any_value(step) AS step, variant, count(DISTINCT lead_id) AS leads,
       count(*) FILTER (WHERE sent) AS sent, count(*) FILTER (WHERE delivered) AS delivered,
       count(*) FILTER (WHERE opened) AS opened, count(*) FILTER (WHERE replied) AS replied,
       count(*) FILTER (WHERE to_cta) AS replied_to_cta,
       count(*) FILTER (WHERE replied) / nullif(count(*) FILTER (WHERE delivered), 0) AS reply_rate,
       count(*) FILTER (WHERE to_cta) / nullif(count(*) FILTER (WHERE delivered), 0) AS reply_to_cta_rate,
       ?::TIMESTAMP AS computed_at
FROM per_send GROUP BY campaign_id, touch, variant ORDER BY ALL
"""


@dg.asset(group_name="s8_metrics", pool="duckdb", deps=["delivery_events", "replies"], kinds={"duckdb"})
def variant_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Counts and reply rates per A/B variant of every step that has variants."""
    with warehouse.connect() as con:
        frame = con.execute(VARIANT_SQL, [clock.now()]).df()
        frame = validate("variant_metrics", frame) if not frame.empty else frame
        replace_where(con, "variant_metrics", frame, "true", [])
    return dg.MaterializeResult(metadata={"rows": len(frame), "variants": dg.MetadataValue.json(
        frame[["campaign_id", "step", "variant", "leads", "replied"]].to_dict("records") if not frame.empty else [])})
