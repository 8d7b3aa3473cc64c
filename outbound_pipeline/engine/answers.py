"""AI reply mode: an answer draft for each reply, through the same approval gate as every draft.

Answers are rows of `drafts` under the campaign's reply touch (`<campaign>.reply`, touch 0),
one per reply (`drafts.reply_id`), on the channel the reply came in on. Nothing here sends:
`approvals` (a person, or `auto`), `outbox`, its blocking check and `sends` do, exactly as
for a campaign step. With a real composer (OpenAI) the answer is written by the model from
the reply and what we sent; offline a short, intent-aware holding answer is drafted instead.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.ids import stable_id
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


def answer_draft_id(campaign_id: str, reply_id: str) -> str:
    """One answer per reply: the draft id (and so the approval and the send) derives from the reply."""
    return stable_id("drf", campaign_id, "reply", reply_id)


def draft_answers(pending: pd.DataFrame, composer: Composer, now: datetime, max_concurrency: int = 4) -> pd.DataFrame:
    """`drafts` rows for the reply touch: one answer per pending reply, on the channel it came in on, citing the reply."""
    if pending.empty:
        return pd.DataFrame()
    rows = list(pending.itertuples(index=False))
    use_model = getattr(composer, "name", "rules") != "rules"
    answers = map_concurrently(lambda r: _model_answer(composer, r) if use_model else _offline_answer(r), rows, max_concurrency)
    subject = pending["sent_subject"].map(lambda s: s if isinstance(s, str) and s.lower().startswith("re:") else (f"Re: {s}" if isinstance(s, str) else None))
    return pd.DataFrame({
        "draft_id": [answer_draft_id(c, r) for c, r in zip(pending["campaign_id"], pending["reply_id"], strict=True)],
        "campaign_id": pending["campaign_id"], "touch": REPLY_TOUCH, "lead_id": pending["lead_id"], "channel": pending["channel"],
        "tone": "reply", "cta": "answer their " + pending["intent"].astype(str),
        "subject": subject.where(pending["channel"] == "email", None), "body": [a[0] for a in answers],
        "cited_snippet_ids": pending["reply_id"].map(lambda r: json.dumps([r])), "reply_id": pending["reply_id"],
        "composer": f"answer:{getattr(composer, 'name', 'rules') if use_model else 'rules'}", "flags": "[]",
        "cost_usd": [a[1] for a in answers], "created_at": now,
    })
