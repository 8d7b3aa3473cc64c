"""AI reply mode: an answer draft for each reply, through the same approval gate as every draft.

Answers are rows of `drafts` under the campaign's reply touch (`<campaign>.reply`, touch 0),
one per reply (`drafts.reply_id`), on the channel the reply came in on. Nothing here sends:
`approvals` (a person, or `auto`), `outbox`, its blocking check and `sends` do, exactly as
for a campaign step. The composer writes the answer's text (`Composer.answer`).
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ComposedAnswer, Composer, ReplyToAnswer
from outbound_pipeline.providers.concurrency import map_concurrently


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def reply_to_answer(row: pd.Series) -> ReplyToAnswer:
    """What the composer needs of one pending reply (a row of `replies_needing_answers`)."""
    return ReplyToAnswer(
        reply_id=str(row["reply_id"]), campaign_id=str(row["campaign_id"]), lead_id=str(row["lead_id"]),
        first_name=str(row["who"]).split(" ")[0], company=_text(row["company"]) or "", goal=_text(row["goal"]) or "",
        touch=int(row["touch"]) if pd.notna(row["touch"]) else None, channel=str(row["channel"]), intent=str(row["intent"]),
        body=str(row["body"]), we_sent=_text(row["sent_body"]),
    )


def answer_draft_id(campaign_id: str, reply_id: str) -> str:
    """One answer per reply: the draft id (and so the approval and the send) derives from the reply."""
    return stable_id("drf", campaign_id, "reply", reply_id)


def draft_answers(pending: pd.DataFrame, composer: Composer, now: datetime, max_concurrency: int = 4) -> pd.DataFrame:
    """`drafts` rows for the reply touch: one answer per pending reply, on the channel it came in on, citing the reply."""
    if pending.empty:
        return pd.DataFrame()
    replies = [reply_to_answer(row) for _, row in pending.iterrows()]
    answers: list[ComposedAnswer] = map_concurrently(composer.answer, replies, max_concurrency)
    subject = pending["sent_subject"].map(lambda s: s if isinstance(s, str) and s.lower().startswith("re:") else (f"Re: {s}" if isinstance(s, str) else None))
    return pd.DataFrame({
        "draft_id": [answer_draft_id(c, r) for c, r in zip(pending["campaign_id"], pending["reply_id"], strict=True)],
        "campaign_id": pending["campaign_id"], "touch": REPLY_TOUCH, "lead_id": pending["lead_id"], "channel": pending["channel"],
        "tone": "reply", "cta": "answer their " + pending["intent"].astype(str),
        "subject": subject.where(pending["channel"] == "email", None), "body": [a.body for a in answers],
        "cited_snippet_ids": pending["reply_id"].map(lambda r: json.dumps([r])), "reply_id": pending["reply_id"],
        "composer": [f"answer:{a.composer}" for a in answers], "flags": "[]",
        "cost_usd": [a.cost_usd for a in answers], "created_at": now,
    })
