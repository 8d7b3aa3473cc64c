"""Stage 3, compose: one grounded draft per due lead and touch, in the organisation's voice."""


import json

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.resources import CampaignCatalog, ComposeService, PipelineClock, Warehouse
from outbound_pipeline.domain.briefs import record_path, step_briefs
from outbound_pipeline.domain.routing import assign_variants, due_leads
from outbound_pipeline.domain.touches import REPLY_TOUCH, parse_touch_key
from outbound_pipeline.engine.answers import draft_answers
from outbound_pipeline.engine.ingest import replies_needing_answers
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ComposedDraft, ComposeRequest, Snippet
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status
from outbound_pipeline.store.contacts import available_channels, lead_profiles
from outbound_pipeline.store.warehouse import insert_new

GROUP = "s3_compose"


def _snippets_by_lead(frame: pd.DataFrame) -> dict[str, list[Snippet]]:
    out: dict[str, list[Snippet]] = {}
    for row in frame.sort_values(["lead_id", "rank"]).itertuples(index=False):
        out.setdefault(row.lead_id, []).append(Snippet(row.snippet_id, row.source_url, row.title, row.text, row.published_date, row.score))
    return out


def _answers(campaign_id: str, warehouse: Warehouse, composer: ComposeService, now) -> dg.MaterializeResult:
    """The reply touch: answers to replies (reply_mode ai) that tracking has not drafted yet (it normally has)."""
    with warehouse.connect() as con:
        status = campaign_status(con, campaign_id)
        pending = replies_needing_answers(con, campaign_id) if status in ("running", "paused", "completed") else pd.DataFrame()
    frame = draft_answers(pending, composer.provider, now, composer.max_concurrency)
    with warehouse.connect() as con:
        added = insert_new(con, "drafts", frame)
        total = con.execute("SELECT count(*) FROM drafts WHERE campaign_id = ? AND touch = ?", [campaign_id, REPLY_TOUCH]).fetchall()[0][0]
    return dg.MaterializeResult(metadata={"reply_touch": True, "campaign_status": status, "drafted": added, "drafts_in_touch": total,
                                          "cost_usd": float(frame["cost_usd"].sum()) if not frame.empty else 0.0})


@dg.asset(
    partitions_def=touch_partitions, group_name=GROUP, pool="duckdb", kinds={"duckdb"},
    deps=[dg.AssetDep("research_snippets", partition_mapping=dg.AllPartitionMapping())],
)
def drafts(context: dg.AssetExecutionContext, warehouse: Warehouse, composer: ComposeService, catalog: CampaignCatalog,
           clock: PipelineClock) -> dg.MaterializeResult:
    """Draft the touch for every lead due now; leads already drafted are left as they are."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    now = clock.now()
    if touch == REPLY_TOUCH:
        return _answers(campaign_id, warehouse, composer, now)
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        if status != "running":
            return dg.MaterializeResult(metadata={"drafted": 0, "skipped_because": f"campaign is {status}"})
        step = spec.step(touch)
        due = due_leads(con, spec, touch, now)
        con.register("_due", due[["lead_id"]] if not due.empty else pd.DataFrame({"lead_id": pd.Series(dtype=str)}))
        snippets = con.execute("SELECT * FROM research_snippets WHERE campaign_id = ? AND lead_id IN (SELECT lead_id FROM _due)",
                               [campaign_id]).df()
        con.unregister("_due")
        previous = con.execute("SELECT lead_id, list(body ORDER BY touch) AS bodies FROM drafts WHERE campaign_id = ? AND touch < ? GROUP BY lead_id",
                               [campaign_id, touch]).df()
    by_lead = _snippets_by_lead(snippets)
    earlier = dict(zip(previous["lead_id"], previous["bodies"], strict=True))
    voice = catalog.voice().text
    step_name = spec.step_names[touch - 1]
    due["variant"] = assign_variants(campaign_id, step_name, due["lead_id"], step.variants)
    briefs = step_briefs(step, touch)
    requests = [
        ComposeRequest(campaign_id=campaign_id, goal=spec.goal, voice=voice, lead=lead, step=briefs[variant],
                       snippets=by_lead.get(lead.lead_id, []), available_channels=available_channels(lead),
                       previous_bodies=tuple(earlier.get(lead.lead_id, ())))
        for lead, variant in zip(lead_profiles(due), due["variant"], strict=True)
    ]
    ready = [r for r in requests if r.snippets]
    provider = composer.provider
    composed: list[ComposedDraft] = map_concurrently(provider.compose, ready, composer.max_concurrency)
    frame = pd.DataFrame([{
        "draft_id": stable_id("drf", campaign_id, touch, req.lead.lead_id), "campaign_id": campaign_id, "touch": touch,
        "lead_id": req.lead.lead_id, "channel": d.channel, "tone": d.tone, "cta": d.cta, "subject": d.subject, "body": d.body,
        "cited_snippet_ids": json.dumps(d.cited_snippet_ids), "composer": d.composer, "flags": json.dumps(d.flags),
        "cost_usd": d.cost_usd, "created_at": now,
    } for req, d in zip(ready, composed, strict=True)])
    with warehouse.connect() as con:
        added = insert_new(con, "drafts", frame)
        record_path(con, due[due["lead_id"].isin(frame["lead_id"])] if not frame.empty else due.iloc[0:0], campaign_id, touch, step_name, now)
        total = con.execute("SELECT count(*) FROM drafts WHERE campaign_id = ? AND touch = ?", [campaign_id, touch]).fetchall()[0][0]
    channels = frame["channel"].value_counts().to_dict() if not frame.empty else {}
    return dg.MaterializeResult(metadata={
        "composer": provider.name, "due": len(due), "drafted": added, "drafts_in_touch": total,
        "without_research": len(requests) - len(ready), "flagged": int((frame["flags"] != "[]").sum()) if not frame.empty else 0,
        "by_channel": dg.MetadataValue.json(channels), "cost_usd": float(frame["cost_usd"].sum()) if not frame.empty else 0.0,
    })
