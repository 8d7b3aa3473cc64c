"""Composition of a touch: one request per due lead (its step or variant brief, its research, its earlier messages),
and the composer's answers as `drafts` rows."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from outbound_pipeline.domain.briefs import variant_steps
from outbound_pipeline.domain.spec import Step
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ComposedDraft, ComposeRequest, LeadProfile, Snippet, StepBrief


def step_briefs(step: Step, touch: int) -> dict[str | None, StepBrief]:
    """The composer's brief for the step (key None) and for each of its variants."""
    return {name: StepBrief(touch=touch, intent=s.intent, channels=tuple(s.channels), tone=s.tone, cta=s.cta)
            for name, s in variant_steps(step).items()}


def available_channels(lead: LeadProfile) -> tuple[str, ...]:
    """Channels a lead can be reached on: email with an address, WhatsApp and SMS with a phone."""
    return (("email",) if lead.email else ()) + (("whatsapp", "sms") if lead.phone else ())


def snippets_by_lead(snippets: pd.DataFrame) -> dict[str, list[Snippet]]:
    """lead id -> its snippets in rank order."""
    out: dict[str, list[Snippet]] = {}
    for row in snippets.sort_values(["lead_id", "rank"]).to_dict("records"):
        out.setdefault(str(row["lead_id"]), []).append(Snippet(
            str(row["snippet_id"]), str(row["source_url"]), str(row["title"]), str(row["text"]),
            row["published_date"] if isinstance(row["published_date"], str) else None,
            float(row["score"]) if pd.notna(row["score"]) else None,
        ))
    return out


def compose_requests(campaign_id: str, goal: str, voice: str, briefs: dict[str | None, StepBrief], leads: list[LeadProfile],
                     variants: list[str | None], snippets: pd.DataFrame, earlier: dict[str, list[str]]) -> list[ComposeRequest]:
    """One request per lead, in the brief of the variant it drew, grounded in its snippets, aware of what it was sent before."""
    by_lead = snippets_by_lead(snippets)
    return [
        ComposeRequest(campaign_id=campaign_id, goal=goal, voice=voice, lead=lead, step=briefs[variant],
                       snippets=by_lead.get(lead.lead_id, []), available_channels=available_channels(lead),
                       previous_bodies=tuple(earlier.get(lead.lead_id, ())))
        for lead, variant in zip(leads, variants, strict=True)
    ]


def drafts_frame(campaign_id: str, touch: int, requests: list[ComposeRequest], composed: list[ComposedDraft], now: datetime) -> pd.DataFrame:
    """`drafts` rows, one per lead; the draft id derives from campaign, touch and lead, so a touch drafts each lead once."""
    return pd.DataFrame([{
        "draft_id": stable_id("drf", campaign_id, touch, req.lead.lead_id), "campaign_id": campaign_id, "touch": touch,
        "lead_id": req.lead.lead_id, "channel": d.channel, "tone": d.tone, "cta": d.cta, "subject": d.subject, "body": d.body,
        "cited_snippet_ids": json.dumps(d.cited_snippet_ids), "composer": d.composer, "flags": json.dumps(d.flags),
        "cost_usd": d.cost_usd, "created_at": now,
    } for req, d in zip(requests, composed, strict=True)])
