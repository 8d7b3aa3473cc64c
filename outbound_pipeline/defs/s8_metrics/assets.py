"""Stage 8, metrics: one row per campaign and touch (touch 0 = whole campaign), for any BI tool.

Answers to replies (`reply_mode: ai`, the reply touch) are not a campaign step: they stay out of
the funnel counts and rates, and are counted apart (`answers_sent`) with their cost in the
whole-campaign row.
"""


import dagster as dg

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.markdown import md_table
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import replace_where

GROUP = "s8_metrics"

# Per send, what happened to it; then counted per touch and for the campaign as a whole.
METRICS_SQL = """
WITH ev AS (
    SELECT send_id,
           bool_or(event_type IN ('delivered', 'opened', 'read', 'clicked')) AS delivered,
           bool_or(event_type IN ('opened', 'clicked')) AS opened,
           bool_or(event_type = 'read') AS was_read,
           bool_or(event_type = 'bounced') AS bounced,
           bool_or(event_type IN ('failed', 'undelivered')) AS failed,
           bool_or(event_type = 'opted_out') AS opted_out
    FROM delivery_events WHERE send_id IS NOT NULL GROUP BY send_id
), rp AS (
    SELECT send_id,
           bool_or(intent <> 'opt_out') AS replied,
           bool_or(intent = 'interested') AS to_cta,
           bool_or(intent = 'opt_out') AS opted_out
    FROM replies WHERE send_id IS NOT NULL GROUP BY send_id
), per_send AS (
    SELECT s.campaign_id, s.touch, s.channel, s.cost_usd,
           s.status = 'sent' AS sent,
           s.status = 'failed' OR coalesce(ev.failed, false) AS failed,
           coalesce(ev.delivered, false) AS delivered,
           coalesce(ev.opened, false) AS opened,
           coalesce(ev.was_read, false) AS was_read,
           coalesce(ev.bounced, false) AS bounced,
           coalesce(rp.replied, false) AS replied,
           coalesce(rp.to_cta, false) AS to_cta,
           coalesce(ev.opted_out, false) OR coalesce(rp.opted_out, false) AS opted_out
    FROM sends s LEFT JOIN ev USING (send_id) LEFT JOIN rp USING (send_id)
    WHERE s.status IN ('sent', 'failed') AND s.touch > 0  -- touch 0: answers to replies, counted apart
), answers AS (
    SELECT campaign_id, count(*) FILTER (WHERE status = 'sent') AS answers_sent, sum(cost_usd) AS cost
    FROM sends WHERE touch = 0 AND status IN ('sent', 'failed') GROUP BY campaign_id
), grouped AS (
    SELECT campaign_id, coalesce(touch, 0) AS touch,
           count(*) FILTER (WHERE sent) AS sent,
           count(*) FILTER (WHERE delivered) AS delivered,
           count(*) FILTER (WHERE failed) AS failed,
           count(*) FILTER (WHERE bounced) AS bounced,
           count(*) FILTER (WHERE opened) AS opened,
           count(*) FILTER (WHERE was_read) AS read,
           count(*) FILTER (WHERE replied) AS replied,
           count(*) FILTER (WHERE to_cta) AS replied_to_cta,
           count(*) FILTER (WHERE opted_out) AS opted_out,
           count(*) FILTER (WHERE delivered AND channel = 'email') AS delivered_email,
           count(*) FILTER (WHERE delivered AND channel = 'whatsapp') AS delivered_whatsapp,
           sum(cost_usd) AS send_cost
    FROM per_send GROUP BY GROUPING SETS ((campaign_id, touch), (campaign_id))
), other_cost AS (
    SELECT campaign_id, touch, sum(cost_usd) AS cost FROM drafts GROUP BY ALL
    UNION ALL
    SELECT campaign_id, 0, sum(cost_usd) FROM research_snippets GROUP BY ALL
)
SELECT g.campaign_id, g.touch, g.sent, g.delivered, g.failed, g.bounced, g.opened, g.read, g.replied, g.replied_to_cta, g.opted_out,
       g.delivered / nullif(g.sent, 0) AS delivery_rate,
       g.opened / nullif(g.delivered_email, 0) AS open_rate,
       g.read / nullif(g.delivered_whatsapp, 0) AS read_rate,
       g.replied / nullif(g.delivered, 0) AS reply_rate,
       g.replied_to_cta / nullif(g.delivered, 0) AS reply_to_cta_rate,
       g.opted_out / nullif(g.delivered, 0) AS opt_out_rate,
       g.bounced / nullif(g.sent, 0) AS bounce_rate,
       g.send_cost + coalesce((SELECT sum(o.cost) FROM other_cost o WHERE o.campaign_id = g.campaign_id
                               AND (g.touch = 0 OR o.touch = g.touch)), 0)
                   + CASE WHEN g.touch = 0 THEN coalesce(a.cost, 0) ELSE 0 END AS cost_usd,
       ?::TIMESTAMP AS computed_at,
       CASE WHEN g.touch = 0 THEN coalesce(a.answers_sent, 0) END AS answers_sent
FROM grouped g LEFT JOIN answers a USING (campaign_id) ORDER BY g.campaign_id, g.touch
"""


@dg.asset(group_name=GROUP, pool="duckdb", deps=["delivery_events", "replies"], kinds={"duckdb"})
def campaign_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Funnel counts and rates per campaign and touch, recomputed in one SQL statement."""
    with warehouse.connect() as con:
        frame = validate("campaign_metrics", con.execute(METRICS_SQL, [clock.now()]).df())
        replace_where(con, "campaign_metrics", frame, "true", [])
    whole = frame[frame["touch"] == 0]
    return dg.MaterializeResult(metadata={
        "campaigns": len(whole), "messages_sent": int(whole["sent"].sum()),
        "summary": dg.MetadataValue.md(md_table(whole[["campaign_id", "sent", "delivery_rate", "reply_rate", "opt_out_rate", "bounce_rate", "cost_usd"]].round(3))),
    })
