"""Funnel and step drop-off: per campaign and step, how many recipients entered, were reached, engaged and replied.

A step's previous steps come from the campaign's frozen spec (every step that can lead to it: the
following-step rule and branches). Its drop-off is the share of the recipients of those previous
steps who did not enter it; recipients still waiting for the step count as not (yet) reached.
"""


import json

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import replace_where

FUNNEL_SQL = """
WITH entered AS (  -- a recipient entered a step when a draft was written for it (answers to replies, touch 0, are no step)
    SELECT DISTINCT campaign_id, touch, lead_id FROM drafts WHERE touch >= 1
), ev AS (
    SELECT send_id, bool_or(event_type IN ('delivered', 'opened', 'read', 'clicked')) AS delivered,
           bool_or(event_type IN ('opened', 'read', 'clicked')) AS engaged
    FROM delivery_events WHERE send_id IS NOT NULL GROUP BY send_id
), rp AS (
    SELECT send_id, bool_or(intent <> 'opt_out') AS replied FROM replies WHERE send_id IS NOT NULL GROUP BY send_id
), per_lead AS (
    SELECT rs.campaign_id, rs.touch, rs.lead_id,
           coalesce(bool_or(s.status = 'sent'), false) AS sent,
           coalesce(bool_or(ev.delivered), false) AS delivered,
           coalesce(bool_or(ev.engaged), false) AS engaged,
           coalesce(bool_or(rp.replied), false) AS replied
    FROM entered rs
    LEFT JOIN sends s ON s.campaign_id = rs.campaign_id AND s.touch = rs.touch AND s.lead_id = rs.lead_id
    LEFT JOIN ev ON ev.send_id = s.send_id
    LEFT JOIN rp ON rp.send_id = s.send_id
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


def step_graph(campaign_id: str, spec: CampaignSpec) -> tuple[list[dict], list[dict]]:
    """(one row per step with the names of its previous steps, one row per (step, previous step) edge)."""
    names = spec.step_names
    previous: dict[int, list[int]] = {t: [] for t in range(1, spec.n_touches + 1)}
    for touch in range(1, spec.n_touches + 1):
        for _, nxt in spec.successors(touch):
            if touch not in previous[nxt]:
                previous[nxt].append(touch)
    steps = [{"campaign_id": campaign_id, "touch": t, "step": names[t - 1],
              "previous_steps": ", ".join(names[p - 1] for p in sorted(ps)) or None} for t, ps in previous.items()]
    edges = [{"campaign_id": campaign_id, "touch": t, "previous_touch": p} for t, ps in previous.items() for p in ps]
    return steps, edges


def funnel_frame(con, now) -> pd.DataFrame:
    """The funnel of every launched campaign, one row per step, computed in one statement."""
    steps: list[dict] = []
    edges: list[dict] = []
    for campaign_id, spec_json in con.execute("SELECT campaign_id, spec FROM campaigns ORDER BY campaign_id").fetchall():
        s, e = step_graph(campaign_id, CampaignSpec.model_validate_json(spec_json))
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


@dg.asset(group_name="s8_metrics", pool="duckdb", deps=["delivery_events", "replies"], kinds={"duckdb"})
def funnel_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per campaign and step: recipients entering, sent, delivered, engaged, replied, and drop-off from the previous step."""
    with warehouse.connect() as con:
        frame = funnel_frame(con, clock.now())
        frame = validate("funnel_metrics", frame) if not frame.empty else frame
        replace_where(con, "funnel_metrics", frame, "true", [])
    shown = json.loads(frame[["campaign_id", "step", "entered", "sent", "replied", "dropoff_rate"]].to_json(orient="records")) if not frame.empty else []
    return dg.MaterializeResult(metadata={"rows": len(frame), "steps": dg.MetadataValue.json(shown)})
