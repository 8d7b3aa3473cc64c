"""AI reply mode: an answer draft for each reply, waiting for a person's approval.

Nothing here sends: a draft is stored as `awaiting_approval` and the owner is told.
With a real composer (OpenAI) the answer is written by the model from the reply and
what we sent; offline a short, intent-aware holding answer is drafted instead.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from outbound_pipeline.ids import stable_ids
from outbound_pipeline.providers.base import Composer, ComposeRequest, LeadProfile, Snippet, StepBrief
from outbound_pipeline.providers.concurrency import map_concurrently

_HOLDING = {
    "interested": "Thanks {first}, great to hear. Would Tuesday or Wednesday next week work for a 20-minute call? Happy to fit your calendar.",
    "question": "Thanks for asking, {first}. Good question: let me get you a precise answer today.",
    "not_now": "Understood, {first}, thanks for letting me know. I'll check back in a few months.",
    "not_interested": "Thanks for the honest answer, {first}. I won't follow up on this again.",
}


def _offline_answer(row) -> tuple[str, float]:
    template = _HOLDING.get(row.intent, "Thanks for your reply, {first}. I'll get back to you shortly.")
    return template.format(first=str(row.who).split(" ")[0]), 0.0


def _model_answer(composer: Composer, row) -> tuple[str, float]:
    lead = LeadProfile(lead_id=row.lead_id, first_name=str(row.who).split(" ")[0], last_name="", company=row.company or "", role="")
    grounding = Snippet("reply", "https://reply.invalid/" + row.reply_id, "Their reply", str(row.body))
    request = ComposeRequest(
        campaign_id=row.campaign_id, goal=str(row.goal or ""), voice="", lead=lead,
        step=StepBrief(touch=int(row.touch) if pd.notna(row.touch) else 1, intent=f"answer their reply ({row.intent})",
                       channels=(row.channel,)),
        snippets=[grounding], available_channels=(row.channel,),
        previous_bodies=tuple(b for b in (row.sent_body,) if isinstance(b, str)),
    )
    draft = composer.compose(request)
    return draft.body, float(draft.cost_usd)


def draft_answers(pending: pd.DataFrame, composer: Composer, now: datetime, max_concurrency: int = 4) -> pd.DataFrame:
    """Rows for `reply_drafts`: one answer per pending reply, on the channel it came in on."""
    if pending.empty:
        return pd.DataFrame()
    rows = list(pending.itertuples(index=False))
    use_model = getattr(composer, "name", "rules") != "rules"
    answers = map_concurrently(lambda r: _model_answer(composer, r) if use_model else _offline_answer(r), rows, max_concurrency)
    subject = pending["sent_subject"].map(lambda s: s if isinstance(s, str) and s.lower().startswith("re:") else (f"Re: {s}" if isinstance(s, str) else None))
    return pd.DataFrame({
        "reply_draft_id": stable_ids("rdr", pending["reply_id"]), "reply_id": pending["reply_id"], "campaign_id": pending["campaign_id"],
        "lead_id": pending["lead_id"], "channel": pending["channel"], "to_address": pending["from_address"],
        "subject": subject.where(pending["channel"] == "email", None), "body": [a[0] for a in answers],
        "composer": f"answer:{getattr(composer, 'name', 'rules') if use_model else 'rules'}", "status": "awaiting_approval",
        "cost_usd": [a[1] for a in answers], "created_at": now,
    })
