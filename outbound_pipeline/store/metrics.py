"""The metrics tables: per campaign and touch, per A/B variant, and the step funnel, each recomputed in one statement.

Every count comes from the shared definitions of `store.views` (`send_outcomes`, `send_replies`), so a
send counts once however many events it has. Answers to replies (the reply touch, 0) are not a
campaign step: they stay out of the funnel counts and rates, and are counted apart (`answers_sent`)
with their cost in the whole-campaign row.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.funnel import step_graph
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.views import with_views
from outbound_pipeline.store.warehouse import replace_where

# Per send, what happened to it; then counted per touch and for the campaign as a whole (touch 0).
# `opened` is email opens and clicks (the open rate is over delivered emails); `read` is WhatsApp's read receipt.
METRICS_SQL = f"""
{with_views("send_outcomes", "send_replies")}, per_send AS (
    SELECT o.campaign_id, o.touch, o.channel, o.cost_usd,
           o.status = 'sent' AS sent,
           o.status = 'failed' OR o.failed AS failed,
           o.delivered, o.opened, o.read AS was_read, o.bounced,
           coalesce(r.replied, false) AS replied,
           coalesce(r.replied_to_cta, false) AS to_cta,
           o.opted_out OR coalesce(r.opted_out, false) AS opted_out
    FROM send_outcomes o LEFT JOIN send_replies r USING (send_id)
    WHERE o.status IN ('sent', 'failed') AND o.touch > 0  -- touch 0: answers to replies, counted apart
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

# Per A/B variant of a step: its `opened` counts engagement on any channel (opened, clicked or read).
VARIANT_SQL = f"""
{with_views("send_outcomes", "send_replies")}, per_send AS (
    SELECT rs.campaign_id, rs.touch, rs.step, rs.variant, rs.lead_id, o.send_id, o.status = 'sent' AS sent,
           coalesce(o.delivered, false) AS delivered, coalesce(o.engaged, false) AS opened,
           coalesce(r.replied, false) AS replied, coalesce(r.replied_to_cta, false) AS to_cta
    FROM recipient_steps rs
    LEFT JOIN send_outcomes o ON o.campaign_id = rs.campaign_id AND o.lead_id = rs.lead_id AND o.touch = rs.touch
    LEFT JOIN send_replies r ON r.send_id = o.send_id
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

# Per step: recipients who entered it (a draft was written for them), were sent, delivered, engaged (opened, clicked
# or read) and replied; drop-off from the previous steps (`_funnel_steps`, `_funnel_edges` come from the spec).
FUNNEL_SQL = f"""
{with_views("send_outcomes", "send_replies")}, entered AS (  -- answers to replies (touch 0) are no step
    SELECT DISTINCT campaign_id, touch, lead_id FROM drafts WHERE touch >= 1
), per_lead AS (
    SELECT rs.campaign_id, rs.touch, rs.lead_id,
           coalesce(bool_or(o.status = 'sent'), false) AS sent,
           coalesce(bool_or(o.delivered), false) AS delivered,
           coalesce(bool_or(o.engaged), false) AS engaged,
           coalesce(bool_or(r.replied), false) AS replied
    FROM entered rs
    LEFT JOIN send_outcomes o ON o.campaign_id = rs.campaign_id AND o.touch = rs.touch AND o.lead_id = rs.lead_id
    LEFT JOIN send_replies r ON r.send_id = o.send_id
    GROUP BY rs.campaign_id, rs.touch, rs.lead_id
), counts AS (
    SELECT campaign_id, touch, count(*) AS entered, count(*) FILTER (WHERE sent) AS sent,
           count(*) FILTER (WHERE delivered) AS delivered, count(*) FILTER (WHERE engaged) AS engaged,
           count(*) FILTER (WHERE replied) AS replied
    FROM per_lead GROUP BY campaign_id, touch
), previous AS (  -- each recipient of any previous step, once per step it could lead to
    SELECT DISTINCT e.campaign_id, e.touch, rs.lead_id
    FROM _funnel_edges e JOIN entered rs ON rs.campaign_id = e.campaign_id AND rs.touch = e.previous_touch
), dropoff AS (
    SELECT p.campaign_id, p.touch, count(*) AS previous_entered, count(*) FILTER (WHERE cur.lead_id IS NULL) AS dropped
    FROM previous p
    LEFT JOIN entered cur ON cur.campaign_id = p.campaign_id AND cur.touch = p.touch AND cur.lead_id = p.lead_id
    GROUP BY p.campaign_id, p.touch
)
SELECT st.campaign_id, st.touch, st.step, st.previous_steps,
       coalesce(c.entered, 0) AS entered, coalesce(c.sent, 0) AS sent, coalesce(c.delivered, 0) AS delivered,
       coalesce(c.engaged, 0) AS engaged, coalesce(c.replied, 0) AS replied,
       CASE WHEN st.previous_steps IS NOT NULL THEN coalesce(d.previous_entered, 0) END AS previous_entered,
       CASE WHEN st.previous_steps IS NOT NULL THEN coalesce(d.dropped, 0) END AS dropped,
       d.dropped / nullif(d.previous_entered, 0) AS dropoff_rate,
       $now::TIMESTAMP AS computed_at
FROM _funnel_steps st
LEFT JOIN counts c ON c.campaign_id = st.campaign_id AND c.touch = st.touch
LEFT JOIN dropoff d ON d.campaign_id = st.campaign_id AND d.touch = st.touch
ORDER BY st.campaign_id, st.touch
"""


def _rewrite(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate, then replace the whole table with `frame` (a rollup is recomputed from scratch each time)."""
    frame = validate(table, frame) if not frame.empty else frame
    replace_where(con, table, frame, "true", [])
    return frame


def refresh_campaign_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `campaign_metrics`; returns the rows written."""
    return _rewrite(con, "campaign_metrics", con.execute(METRICS_SQL, [now]).df())


def refresh_variant_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `variant_metrics`; returns the rows written."""
    return _rewrite(con, "variant_metrics", con.execute(VARIANT_SQL, [now]).df())


def launched_specs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, CampaignSpec]]:
    """Every launched campaign with its frozen spec, by id."""
    rows = con.execute("SELECT campaign_id, spec FROM campaigns ORDER BY campaign_id").fetchall()
    return [(campaign_id, CampaignSpec.model_validate_json(spec)) for campaign_id, spec in rows]


def funnel_frame(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """The funnel of every launched campaign, one row per step, computed in one statement."""
    steps: list[dict] = []
    edges: list[dict] = []
    for campaign_id, spec in launched_specs(con):
        s, e = step_graph(campaign_id, spec)
        steps += s
        edges += e
    step_frame = pd.DataFrame(steps, columns=["campaign_id", "touch", "step", "previous_steps"]).astype(
        {"campaign_id": "string", "touch": "int64", "step": "string", "previous_steps": "string"})
    edge_frame = pd.DataFrame(edges, columns=["campaign_id", "touch", "previous_touch"]).astype(
        {"campaign_id": "string", "touch": "int64", "previous_touch": "int64"})
    con.register("_funnel_steps", step_frame)
    con.register("_funnel_edges", edge_frame)
    try:
        return con.execute(FUNNEL_SQL, {"now": now}).df()
    finally:
        con.unregister("_funnel_steps")
        con.unregister("_funnel_edges")


def refresh_funnel_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `funnel_metrics`; returns the rows written."""
    return _rewrite(con, "funnel_metrics", funnel_frame(con, now))


def read_campaign_metrics(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """The `campaign_metrics` rows of one campaign (or all), by campaign and touch (touch 0 = whole campaign)."""
    if campaign_id is None:
        return con.execute("SELECT * FROM campaign_metrics ORDER BY campaign_id, touch").df()
    return con.execute("SELECT * FROM campaign_metrics WHERE campaign_id = ? ORDER BY touch", [campaign_id]).df()
