"""Stage 3, compose: one grounded draft per due lead and touch, in the organisation's voice; or, for a template
step, the user's template rendered per lead (no research, no cost; a missing variable flags the draft, and a
lead the step's channels cannot reach is marked failed with the reason instead of drafted).

What a lead is due for also depends on its earlier touches: their drafts, approvals, sends,
delivery events and replies (routing reads them, and a follow-up reads the earlier bodies).
Those tables are `drafts` itself or written downstream of it, so Dagster cannot take them as
deps (an asset graph has no cycles); the loop is closed by the cadence plan, which opens the
next touch when its leads are due.
"""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.resources import CampaignCatalog, ComposeService, PipelineClock, Warehouse
from outbound_pipeline.defs.runs import first_drafts_stored, materialising_now
from outbound_pipeline.domain.routing import assign_variants
from outbound_pipeline.domain.templates import MISSING_FLAG
from outbound_pipeline.domain.touches import REPLY_TOUCH, parse_touch_key
from outbound_pipeline.engine.answers import draft_answers
from outbound_pipeline.engine.cadence import due_leads
from outbound_pipeline.engine.compose import (
    TEMPLATE_COMPOSER,
    compose_requests,
    drafts_frame,
    organisation_name,
    step_briefs,
    template_drafts,
)
from outbound_pipeline.engine.following import FOLLOW_EVERY_S, HAND_OVER_EVERY_S, wait_while
from outbound_pipeline.engine.profiles import lead_profiles
from outbound_pipeline.engine.research_feed import ResearchFeed
from outbound_pipeline.providers.base import ComposedDraft, ComposeRequest
from outbound_pipeline.providers.concurrency import map_following
from outbound_pipeline.store import drafts as draft_store
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status
from outbound_pipeline.store.events import replies_needing_answers
from outbound_pipeline.store.reachability import fail_recipients, last_inbound, opted_out_channels

GROUP = "s3_compose"
ANSWERABLE = ("running", "paused", "completed")  # campaign statuses whose replies still get answers


def _campaign_dep(key: str) -> dg.AssetDep:
    """A campaign-partitioned table read by every touch of the campaign."""
    return dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping())


class ComposeConfig(dg.Config):
    """`follow_research`: also draft the leads research stores while this run goes on, until research is done, so a
    touch is composed beside its research instead of after it (launch this run with the research run; started with a
    launch, it first waits for the launch to freeze the audience)."""

    follow_research: bool = False


RESEARCH_KEY = dg.AssetKey("research_snippets")
AUDIENCE_KEY = dg.AssetKey("recipients")


def _selected(context: dg.AssetExecutionContext, results: dict[str, dict]) -> Iterator[dg.MaterializeResult]:
    """A result for each asset of the multi-asset the run selected (the tables are written either way)."""
    for key, metadata in results.items():
        if dg.AssetKey(key) in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("drafts", group_name=GROUP, kinds={"duckdb"},
                     deps=[_campaign_dep(k) for k in ("campaigns", "leads", "recipients", "research_snippets")],
                     description="One draft per lead due for the touch (composed and grounded, or rendered from the step's template); "
                                 "answers to replies under the reply touch."),
        dg.AssetSpec("recipient_steps", group_name=GROUP, kinds={"duckdb"},
                     description="Each recipient's path through the steps: how it entered each step and which A/B variant it drew."),
    ],
    # In its own pool, not `duckdb`: no connection is open while the composer answers; one compose step at a time
    # keeps the process-wide OpenAI limit true.
    partitions_def=touch_partitions, pool="compose", can_subset=True,
)
def drafts(context: dg.AssetExecutionContext, config: ComposeConfig, warehouse: Warehouse, composer: ComposeService, catalog: CampaignCatalog,
           clock: PipelineClock) -> Iterator[dg.MaterializeResult]:
    """Draft the touch for every lead due now; leads already drafted are left as they are."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    now = clock.now()
    if touch == REPLY_TOUCH:
        yield from _selected(context, {"drafts": _answers(campaign_id, warehouse, composer, now), "recipient_steps": {"entered": 0}})
        return
    if config.follow_research:  # started with the launch: who is due is known once its audience is frozen
        wait_while(lambda: materialising_now(context.instance, AUDIENCE_KEY, campaign_id))
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        if status != "running":
            yield from _selected(context, {"drafts": {"drafted": 0, "skipped_because": f"campaign is {status}"}, "recipient_steps": {"entered": 0}})
            return
        due = due_leads(con, spec, touch, now)
        opted_out = opted_out_channels(con, due["lead_id"].tolist())  # channels each lead opted out of: never drafted for
        step, step_name = spec.step(touch), spec.step_names[touch - 1]
        if step.is_template:
            earlier = {}
            inbound = last_inbound(con, due["lead_id"].tolist()) if "whatsapp" in step.channels else {}
        else:
            earlier = draft_store.previous_bodies(con, campaign_id, touch)
    due["variant"] = assign_variants(campaign_id, step_name, due["lead_id"], step.variants)
    kept = {"added": 0, "entered": 0, "announced": 0}  # composed drafts stored as they come
    if step.is_template:
        frame, unreachable = template_drafts(spec, touch, due, organisation_name(spec), inbound, now, opted_out)
        composer_name, without_research = TEMPLATE_COMPOSER, 0
    else:
        provider = composer.provider
        parts: list[pd.DataFrame] = []
        feed = ResearchFeed(due, campaign_id, warehouse.connect, config.follow_research,
                            lambda: materialising_now(context.instance, RESEARCH_KEY, campaign_id),
                            changed=warehouse.watch("research_snippets").changed)
        voice, briefs = catalog.voice().text, step_briefs(step, touch)

        def ready() -> list[ComposeRequest]:
            return [request for leads, snippets in feed.ready() for request in compose_requests(
                campaign_id, spec.goal, voice, briefs, lead_profiles(leads), leads["variant"].tolist(), snippets, earlier, opted_out)]

        def keep(batch: list[tuple[ComposeRequest, ComposedDraft]]) -> None:  # stored as they come: review and send can take them up
            part = drafts_frame(campaign_id, touch, [request for request, _ in batch], [draft for _, draft in batch], now)
            parts.append(part)
            with warehouse.connect() as con:
                kept["added"] += draft_store.insert_drafts(con, part)
                kept["entered"] += draft_store.record_path(con, due[due["lead_id"].isin(part["lead_id"])], campaign_id, touch, step_name, now)
            if config.follow_research and kept["added"] and not kept["announced"]:  # review and sending start now
                context.log_event(first_drafts_stored(context.partition_key, kept["added"]))
                kept["announced"] = 1

        composed = map_following(lambda request: (request, provider.compose(request)), ready, key=lambda request: request.lead.lead_id,
                                 upstream_done=feed.done, max_workers=composer.max_concurrency, hand_over=keep,
                                 every_s=HAND_OVER_EVERY_S, poll_every_s=FOLLOW_EVERY_S, limit=composer.limit())
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        unreachable = pd.DataFrame(columns=["lead_id", "reason"])
        composer_name, without_research = provider.name, len(due) - composed
    drafted = due[due["lead_id"].isin(frame["lead_id"])] if not frame.empty else due.iloc[0:0]
    with warehouse.connect() as con:
        if step.is_template:
            added = draft_store.insert_drafts(con, frame)
            entered = draft_store.record_path(con, drafted, campaign_id, touch, step_name, now)
        else:
            added, entered = kept["added"], kept["entered"]
        failed = fail_recipients(con, campaign_id, unreachable, now)
        total = draft_store.drafts_in_touch(con, campaign_id, touch)
    channels = {str(k): int(v) for k, v in frame["channel"].value_counts().items()} if not frame.empty else {}
    missing = int(frame["flags"].str.contains(MISSING_FLAG, regex=False).sum()) if not frame.empty else 0
    yield from _selected(context, {
        "drafts": {
            "composer": composer_name, "due": len(due), "drafted": added, "drafts_in_touch": total,
            "without_research": without_research, "flagged": int((frame["flags"] != "[]").sum()) if not frame.empty else 0,
            "missing_variables": missing, "unreachable": failed,
            "by_channel": dg.MetadataValue.json(channels), "cost_usd": float(frame["cost_usd"].sum()) if not frame.empty else 0.0,
        },
        "recipient_steps": {"entered": entered, "step": step_name},
    })


def _answers(campaign_id: str, warehouse: Warehouse, composer: ComposeService, now: datetime) -> dict:
    """The reply touch: answers to replies (reply_mode ai) that tracking has not drafted yet (it normally has)."""
    with warehouse.connect() as con:
        status = campaign_status(con, campaign_id)
        pending = replies_needing_answers(con, campaign_id) if status in ANSWERABLE else pd.DataFrame()
    frame = draft_answers(pending, composer.provider, now, composer.max_concurrency)
    with warehouse.connect() as con:
        added = draft_store.insert_drafts(con, frame)
        total = draft_store.drafts_in_touch(con, campaign_id, REPLY_TOUCH)
    return {"reply_touch": True, "campaign_status": status, "drafted": added, "drafts_in_touch": total,
            "cost_usd": float(frame["cost_usd"].sum()) if not frame.empty else 0.0}
