"""Retry policy: which failed sends go out again, and under which idempotency key.

A send that failed, or was reported undelivered, goes back to the outbox up to the campaign's
`retry_attempts`, once `retry_delay` has passed, unless it was delivered, opened, read, or its
lead objected. One failure is answered whatever the policy: Twilio error 63016 (the WhatsApp
24-hour window is closed) reported after the send was accepted. Such a send goes out once more
with the step's approved template (never the same free text again); without a template, or if
the template failed the same way, it is left failed, saying why.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.touches import REPLY_TOUCH

WINDOW_CLOSED = "63016"  # Twilio: outside the WhatsApp 24-hour window, only a template may go out
TEMPLATE_RESEND = "WhatsApp 24-hour window closed (Twilio 63016): re-queued once to send the step's approved template"
NO_TEMPLATE = "WhatsApp 24-hour window closed (Twilio 63016) and this step has no approved template: not re-sent"
TEMPLATE_FAILED = "WhatsApp 24-hour window closed (Twilio 63016) again after the template re-send: not re-sent"

# What a retry changes on its send; a 63016 answer also says why in `error_code` and `error_message`.
RETRY_COLUMNS = ["status", "retries", "updated_at"]
WINDOW_CLOSED_COLUMNS = [*RETRY_COLUMNS, "error_code", "error_message"]


def retry_key(send_id: str, retries: object) -> str:
    """Idempotency key: the send id, and a fresh key per retry (a re-send after a crash keeps its key)."""
    count = 0
    if isinstance(retries, int | float | np.integer | np.floating) and retries == retries:  # NaN: no count
        count = int(retries)
    return send_id if count == 0 else f"{send_id}.r{count}"


def has_template(spec: CampaignSpec, touch: int, variant: object) -> bool:
    """Whether the step (or the lead's variant of it) has an approved WhatsApp template; answers to replies never do."""
    if touch == REPLY_TOUCH:
        return False
    return spec.step(touch).template_for(variant if isinstance(variant, str) else None) is not None


def window_closed_updates(candidates: pd.DataFrame, spec: CampaignSpec, now: datetime) -> pd.DataFrame:
    """The answer to asynchronous 63016 failures (`candidates`: send_id, touch, retries, variant, resent).

    A send with a template that has not been re-sent yet goes back to `pending` with `error_code = '63016'`
    (the dispatcher then sends the template) and `retries` + 1 (a fresh idempotency key); any other is left `failed`.
    """
    if candidates.empty:
        return pd.DataFrame(columns=["send_id", "touch", *WINDOW_CLOSED_COLUMNS])
    resent = candidates["resent"].astype(bool)
    touches, variants = candidates["touch"].astype("int64").tolist(), candidates["variant"].tolist()
    template = pd.Series([has_template(spec, t, v) for t, v in zip(touches, variants, strict=True)], index=candidates.index, dtype=bool)
    requeue = template & ~resent
    return pd.DataFrame({
        "send_id": candidates["send_id"],
        "touch": candidates["touch"].astype("int64"),
        "status": requeue.map({True: "pending", False: "failed"}),
        "retries": (candidates["retries"].astype("int64") + requeue.astype("int64")).astype("Int64"),
        "error_code": WINDOW_CLOSED,
        "error_message": [TEMPLATE_RESEND if q else (TEMPLATE_FAILED if r else NO_TEMPLATE) for q, r in zip(requeue, resent, strict=True)],
        "updated_at": now,
    })


def retry_updates(candidates: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Failed or undelivered sends (`candidates`: send_id, touch, retries) back to `pending`, one retry more each."""
    return pd.DataFrame({
        "send_id": candidates["send_id"],
        "touch": candidates["touch"].astype("int64"),
        "status": "pending",
        "retries": (candidates["retries"].astype("int64") + 1).astype("Int64"),
        "updated_at": now,
    }, columns=["send_id", "touch", *RETRY_COLUMNS])
