"""Composition of a touch: one request per due lead (its step or variant brief, its research, its earlier messages),
and the composer's answers as `drafts` rows; or, for a template step, the user's template rendered per lead."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

import pandas as pd

from outbound_pipeline.domain.briefs import variant_steps
from outbound_pipeline.domain.spec import CampaignSpec, Step
from outbound_pipeline.domain.templates import (
    TemplateMessage,
    reachable_channel,
    render_step,
    template_context,
    text_value,
    unreachable_reason,
    whatsapp_window_open,
)
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ComposedDraft, ComposeRequest, LeadProfile, Snippet, StepBrief


def step_briefs(step: Step, touch: int) -> dict[str | None, StepBrief]:
    """The composer's brief for the step (key None) and for each of its variants."""
    return {name: StepBrief(touch=touch, intent=s.intent, channels=tuple(s.channels), tone=s.tone, cta=s.cta)
            for name, s in variant_steps(step).items()}


def available_channels(lead: LeadProfile, opted_out: Collection[str] = ()) -> tuple[str, ...]:
    """Channels a lead can be reached on: email with an address, WhatsApp and SMS with a phone, less those it opted out of."""
    if "all" in opted_out:
        return ()
    have = (("email",) if lead.email else ()) + (("whatsapp", "sms") if lead.phone else ())
    return tuple(c for c in have if c not in opted_out)


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
                     variants: list[str | None], snippets: pd.DataFrame, earlier: dict[str, list[str]],
                     opted_out: Mapping[str, Collection[str]] | None = None) -> list[ComposeRequest]:
    """One request per lead, in the brief of the variant it drew, grounded in its snippets, aware of what it was sent before."""
    by_lead = snippets_by_lead(snippets)
    return [
        ComposeRequest(campaign_id=campaign_id, goal=goal, voice=voice, lead=lead, step=briefs[variant],
                       snippets=by_lead.get(lead.lead_id, []),
                       # channels the lead opted out of are not offered; with none left, the send is suppressed at dispatch
                       available_channels=available_channels(lead, (opted_out or {}).get(lead.lead_id, ())) or available_channels(lead),
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


# ------------------------------------------------------------------------------------------ template steps

TEMPLATE_COMPOSER = "template"  # drafts.composer of a rendered draft: no research, no model, no cost
DEFAULT_EMAIL_FROM = "Sam Rivera <sam@routewise.example>"  # the channel resource's default From


def organisation_name(spec: CampaignSpec, environ: Mapping[str, str] | None = None) -> str:
    """`{{company.name}}`, the sending organisation: OUTBOUND_ORGANISATION_NAME, else the campaign's `from_name`,
    else the display name of the email From (OUTBOUND_EMAIL_FROM)."""
    env = os.environ if environ is None else environ
    named = env.get("OUTBOUND_ORGANISATION_NAME", "").strip() or (spec.from_name or "").strip()
    return named or parseaddr(env.get("OUTBOUND_EMAIL_FROM") or DEFAULT_EMAIL_FROM)[0].strip()


def lead_context(lead: Mapping[str, object], spec: CampaignSpec, step_name: str, organisation: str) -> dict[str, str]:
    """Every template variable of one `leads` row (custom columns decoded from `custom_vars`)."""
    custom = json.loads(text_value(lead.get("custom_vars")) or "{}")
    return template_context(lead, custom, spec.name, step_name, organisation)


@dataclass(frozen=True)
class TemplateOutcome:
    """A template step's result for one lead: its message, or why the step cannot reach it."""

    lead_id: str
    message: TemplateMessage | None
    unreachable: str | None = None


def render_for_lead(lead: Mapping[str, object], spec: CampaignSpec, touch: int, variant: str | None, organisation: str,
                    last_inbound_at: datetime | None, now: datetime, opted_out: Collection[str] = ()) -> TemplateOutcome:
    """Render touch `touch` for one `leads` row on the first of the step's channels it can be reached on and did not opt out of."""
    step, step_name = spec.step(touch), spec.step_names[touch - 1]
    lead_id = str(lead["lead_id"])
    email, phone = text_value(lead.get("email")) or None, text_value(lead.get("phone")) or None
    channel = reachable_channel(step.channels, email, phone, opted_out)
    if channel is None:
        return TemplateOutcome(lead_id, None, unreachable_reason(step.channels, email, phone, opted_out))
    context = lead_context(lead, spec, step_name, organisation)
    message = render_step(step, variant, channel, context, whatsapp_window_open(last_inbound_at, now))
    return TemplateOutcome(lead_id, message)


def template_drafts(spec: CampaignSpec, touch: int, due: pd.DataFrame, organisation: str, last_inbound: Mapping[str, datetime],
                    now: datetime, opted_out: Mapping[str, Collection[str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`drafts` rows, unreachable leads) of a template step for the `due` leads (rows of `leads` plus `variant`).

    A rendered draft cites nothing and costs nothing; each variable left unfilled is a
    `template_variable_missing:<name>` flag. A lead the step's channels cannot reach gets no draft:
    it is returned with its reason (lead_id, reason) so the recipient is marked failed.
    """
    step = spec.step(touch)
    rows: list[dict] = []
    failed: list[dict] = []
    records: list[dict[str, object]] = due.to_dict("records")  # type: ignore[assignment]
    for lead in records:
        drawn = lead.get("variant")
        variant = drawn if isinstance(drawn, str) else None
        outcome = render_for_lead(lead, spec, touch, variant, organisation, last_inbound.get(str(lead["lead_id"])), now,
                                  (opted_out or {}).get(str(lead["lead_id"]), ()))
        if outcome.message is None:
            failed.append({"lead_id": outcome.lead_id, "reason": f"{outcome.unreachable} (step {spec.step_names[touch - 1]}: "
                                                                 f"{', '.join(step.channels)})"})
            continue
        m = outcome.message
        rows.append({
            "draft_id": stable_id("drf", spec.name, touch, outcome.lead_id), "campaign_id": spec.name, "touch": touch,
            "lead_id": outcome.lead_id, "channel": m.channel, "tone": step.tone or TEMPLATE_COMPOSER, "cta": step.cta or "",
            "subject": m.subject, "body": m.body, "cited_snippet_ids": "[]", "composer": TEMPLATE_COMPOSER,
            "flags": json.dumps(m.flags), "cost_usd": 0.0, "created_at": now,
        })
    columns = ["draft_id", "campaign_id", "touch", "lead_id", "channel", "tone", "cta", "subject", "body", "cited_snippet_ids",
               "composer", "flags", "cost_usd", "created_at"]
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(failed, columns=["lead_id", "reason"])
