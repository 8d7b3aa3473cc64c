"""Pandera schemas for every table that crosses an asset boundary.

Column names, types and nullability come from the DDL in `schema.py`, so the
two can never drift; the rules a type cannot say (E.164, enumerations, rates
between 0 and 1) are added here per table.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import pandera.pandas as pa

from outbound_pipeline.store.schema import column_specs

E164 = r"^\+[1-9]\d{6,14}$"
CHANNEL = ["email", "whatsapp", "sms", "voice"]  # voice: a contact's opt-out given on a call

_TYPES = {
    "VARCHAR": pa.String,
    "INTEGER": "Int64",
    "BIGINT": "Int64",
    "DOUBLE": pa.Float64,
    "TIMESTAMP": "datetime64[ns]",
    "DATE": "datetime64[ns]",
    "DECIMAL(18,6)": pa.Float64,  # money: exact in DuckDB, a float only while pandas checks it
    "BOOLEAN": "boolean",
}


# A campaign's lifecycle statuses; the legal moves between them are in domain/lifecycle.py.
CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "paused", "completed", "stopped")


def _isin(*values: str) -> pa.Check:
    return pa.Check.isin(list(values))


_RATE = pa.Check.in_range(0.0, 1.0)
_METRIC_CHECKS: dict[str, list[pa.Check]] = {
    **{c: [_RATE] for c in ("delivery_rate", "open_rate", "read_rate", "reply_rate", "reply_to_cta_rate",
                            "opt_out_rate", "bounce_rate", "click_rate", "complaint_rate", "conversion_rate")},
    **{c: [pa.Check.ge(0)] for c in ("sent", "delivered", "failed", "bounced", "opened", "read", "replied", "opted_out", "queued", "clicked",
                                     "complained", "converted", "leads_reached", "emails_sent", "emails_delivered", "emails_bounced",
                                     "whatsapp_delivered", "response_median_s", "response_p90_s", "cost_usd")},
}

CHECKS: dict[str, dict[str, list[pa.Check]]] = {
    "leads": {
        "phone": [pa.Check.str_matches(E164)],
        "email": [pa.Check.str_contains("@")],
        "status": [_isin("active", "invalid", "opted_out")],
        "first_name": [pa.Check.str_length(min_value=1)],
    },
    "lead_rejects": {"kind": [_isin("warning", "skipped", "rejected")], "line_number": [pa.Check.ge(1)]},
    "campaigns": {
        "type": [_isin("drip", "oneshot", "followup")],
        "approval_mode": [_isin("manual", "batch", "auto")],
        "status": [_isin(*CAMPAIGN_STATUSES)],
        "n_touches": [pa.Check.ge(1)],
    },
    "recipients": {"status": [_isin("active", "replied", "paused", "completed", "stopped", "failed")]},  # failed: a step cannot reach it
    "research_snippets": {
        "source_url": [pa.Check.str_matches(r"^https?://")],
        "rank": [pa.Check.in_range(1, 5)],
        "text": [pa.Check.str_length(min_value=1)],
    },
    "drafts": {
        "channel": [_isin(*CHANNEL)],
        "touch": [pa.Check.ge(0)],  # 0: answers to replies
        "body": [pa.Check.str_length(min_value=1)],
        "cited_snippet_ids": [pa.Check(lambda s: s.str.match(r'^\[(\s*\]|"[^"]+")'), error="cited_snippet_ids is a JSON list of ids")],
    },
    "approvals": {
        "decision": [_isin("approved", "edited", "rejected")],
        "mode": [_isin("auto", "manual", "batch")],
        "reviewer": [pa.Check.str_length(min_value=1)],
    },
    "sends": {
        "channel": [_isin(*CHANNEL)],
        "status": [_isin("pending", "sending", "sent", "failed", "suppressed")],
        "cost_usd": [pa.Check.ge(0)],
        "attempts": [pa.Check.ge(0)],
    },
    "delivery_events": {
        "channel": [_isin(*CHANNEL)],
        "event_type": [
            _isin("sent", "delivered", "delivery_delayed", "opened", "read", "clicked", "bounced", "complained", "opted_out", "failed", "undelivered")
        ],
    },
    "replies": {
        "channel": [_isin(*CHANNEL)],
        "intent": [_isin("interested", "question", "not_now", "not_interested", "opt_out", "out_of_office", "auto_reply", "unknown")],
        "attribution": [_isin("send", "provider_message_id", "thread", "sender_address", "number_72h", "none")],
    },
    "suppressions": {
        "channel": [_isin("all", *CHANNEL)],
        "reason": [_isin("opt_out", "unsubscribe_link", "complaint", "hard_bounce", "invalid_number")],
    },
    "tickets": {"status": [_isin("open", "closed")]},
    "campaign_events": {"to_status": [_isin(*CAMPAIGN_STATUSES)]},
    "recipient_steps": {"seq": [pa.Check.ge(1)], "touch": [pa.Check.ge(1)]},
    "test_sends": {"channel": [_isin(*CHANNEL)], "status": [_isin("sent", "failed")]},
    "variant_metrics": {
        **{c: [_RATE] for c in ("reply_rate", "reply_to_cta_rate")},
        **{c: [pa.Check.ge(0)] for c in ("leads", "sent", "delivered", "opened", "replied", "replied_to_cta")},
    },
    "funnel_metrics": {
        "dropoff_rate": [_RATE], "touch": [pa.Check.ge(1)],
        **{c: [pa.Check.ge(0)] for c in ("entered", "sent", "delivered", "engaged", "replied", "previous_entered", "dropped", "waiting")},
    },
    "campaign_metrics": _METRIC_CHECKS,
    "metrics_daily": _METRIC_CHECKS,
}

# Rules across columns of one row.
FRAME_CHECKS: dict[str, list[pa.Check]] = {
    # A composed draft cites at least one snippet; a rendered template draft (composer 'template') cites none.
    "drafts": [pa.Check(lambda df: (df["composer"] == "template") | df["cited_snippet_ids"].str.match(r'^\["[^"]+"'),
                        error="a composed draft must cite at least one snippet")],
}

UNIQUE: dict[str, list[str]] = {
    "leads": ["lead_id"],
    "lead_rejects": ["source_list", "line_number"],
    "list_members": ["list_name", "lead_id"],
    "recipients": ["campaign_id", "lead_id"],
    "research_snippets": ["campaign_id", "lead_id", "snippet_id"],
    "drafts": ["draft_id"],
    "approvals": ["draft_id"],
    "sends": ["send_id"],
    "delivery_events": ["event_id"],
    "replies": ["reply_id"],
    "campaign_metrics": ["campaign_id", "touch"],
    "notifications": ["notification_id"],
    "suppressions": ["suppression_id"],
    "tickets": ["ticket_id"],
    "inbound_windows": ["lead_id"],
    "campaign_events": ["event_id"],
    "recipient_steps": ["campaign_id", "lead_id", "touch"],
    "test_sends": ["test_send_id"],
    "variant_metrics": ["campaign_id", "touch", "variant"],
    "funnel_metrics": ["campaign_id", "touch"],
    "metrics_daily": ["day", "campaign_id", "touch", "channel", "variant"],
    "conversions": ["conversion_id"],
}


@cache
def schema_for(table: str) -> pa.DataFrameSchema:
    """The pandera schema of a table: DDL types and nullability plus its own rules."""
    checks = CHECKS.get(table, {})
    cols = {
        name: pa.Column(_TYPES[sql_type], checks=checks.get(name, []), nullable=nullable, coerce=True)
        for name, sql_type, nullable in column_specs(table)
    }
    return pa.DataFrameSchema(cols, checks=FRAME_CHECKS.get(table, []), strict=True, unique=UNIQUE.get(table), name=table, ordered=False)


def validate(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate (and coerce) a frame about to be written to `table`; raises on any breach."""
    return schema_for(table).validate(frame, lazy=True)
