"""Bring delivery events and replies in, once each, and make the campaigns react to them.

Everything a batch implies is written in one transaction with the batch itself, so a
crash never leaves a stored reply without its consequences; every reaction is derived
from the incoming rows and written idempotently, so ingesting the same batch again
changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.domain.intents import OPT_OUT, classify_intent, is_opt_out
from outbound_pipeline.domain.preferences import ALL, opt_out_channel
from outbound_pipeline.ids import stable_ids
from outbound_pipeline.providers.base import ChannelProvider
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.store import events as events_store
from outbound_pipeline.store.campaigns import transition
from outbound_pipeline.store.warehouse import insert_new

# Twilio error codes that mean the number itself is wrong (not a passing delivery problem).
INVALID_NUMBER_CODES = {"21211", "21614", "30005", "30006"}
# Resend reports hard bounces as "Permanent"; soft ones ("Transient") do not invalidate an address.
SOFT_BOUNCES = {"transient", "soft", "undetermined"}
MIN_SENT_FOR_BOUNCE_PAUSE = 20  # below this, one bounce would swing the rate wildly


@dataclass
class IngestStats:
    events: int = 0
    replies: int = 0
    stopped: int = 0
    opted_out: int = 0
    bounced: int = 0
    suppressed: int = 0
    paused_campaigns: int = 0
    tickets: int = 0
    notified: int = 0
    owners_emailed: int = 0


def poll_providers(sends: pd.DataFrame, provider_named: Callable[[str], ChannelProvider], until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ask every provider that carried one of `sends` what happened to them, up to `until`."""
    events, replies = [], []
    for name in sends["provider"].dropna().unique():
        found_events, found_replies = provider_named(name).poll_events(sends[sends["provider"] == name], until)
        events.append(found_events)
        replies.append(found_replies)
    return (pd.concat(events, ignore_index=True) if events else pd.DataFrame(),
            pd.concat(replies, ignore_index=True) if replies else pd.DataFrame())


def classify(replies: pd.DataFrame, classifier: Callable[[str], str] = classify_intent, max_concurrency: int = 4) -> pd.DataFrame:
    """Fill in the intent of replies that arrived without one; an opt-out keyword overrides any intent."""
    if replies.empty:
        return replies
    replies = replies.copy()
    unknown = replies["intent"].isna() | (replies["intent"] == "unknown")
    bodies = replies.loc[unknown, "body"].astype(str).tolist()
    replies.loc[unknown, "intent"] = map_concurrently(classifier, bodies, max_concurrency) if bodies else []
    replies.loc[replies["body"].astype(str).map(is_opt_out), "intent"] = OPT_OUT
    return replies


def new_replies(con: duckdb.DuckDBPyConnection, replies: pd.DataFrame) -> pd.DataFrame:
    """Replies not stored yet (so a repeat is never classified, or paid for, twice)."""
    if replies.empty:
        return replies
    replies = replies.drop_duplicates("reply_id")
    known = events_store.known_reply_ids(con, replies["reply_id"])
    return replies[~replies["reply_id"].isin(known)].reset_index(drop=True)


def _detail(detail: object) -> dict:
    try:
        value = json.loads(detail) if isinstance(detail, str) else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def lead_marks(events: pd.DataFrame, scope: str = ALL) -> pd.DataFrame:
    """Events that end a lead: hard bounces, complaints and invalid numbers (lead invalid), opt-outs (opted out).

    `covers` is the channel each one suppresses (`all`, or under the `channel` opt-out scope the opt-out's own channel)."""
    if events.empty:
        return pd.DataFrame(columns=["event_id", "lead_id", "status", "reason", "suppression", "channel", "covers"])
    details = events["detail"].map(_detail)
    bounce_type = details.map(lambda d: str(d.get("bounce_type") or "").lower())
    code = details.map(lambda d: str(d.get("error_code") or ""))
    kind = pd.Series(None, index=events.index, dtype=object)
    kind[(events["event_type"] == "bounced") & ~bounce_type.isin(SOFT_BOUNCES)] = "hard_bounce"
    kind[events["event_type"] == "complained"] = "complaint"
    kind[events["event_type"].isin(["failed", "undelivered"]) & code.isin(INVALID_NUMBER_CODES)] = "invalid_number"
    opted = events["event_type"] == "opted_out"
    kind[opted] = OPT_OUT
    kind[opted & (events["provider"] == "unsubscribe")] = "unsubscribe_link"
    marks = events.assign(suppression=kind)[kind.notna()]
    reasons = {"hard_bounce": "hard bounce", "complaint": "spam complaint", "invalid_number": "invalid number",
               "opt_out": "opted out", "unsubscribe_link": "unsubscribed by link"}
    return pd.DataFrame({
        "event_id": marks["event_id"], "lead_id": marks["lead_id"],
        "status": marks["suppression"].map(lambda k: "opted_out" if k in ("opt_out", "unsubscribe_link") else "invalid"),
        "reason": marks["suppression"].map(reasons) + " on " + marks["channel"].astype(str), "suppression": marks["suppression"],
        "channel": marks["channel"],
        "covers": [opt_out_channel(k, c, None, scope) for k, c in zip(marks["suppression"], marks["channel"], strict=True)],
    })


def suppression_rows(con: duckdb.DuckDBPyConnection, marks: pd.DataFrame, replies: pd.DataFrame, now: datetime,
                     scope: str = ALL) -> pd.DataFrame:
    """Suppression rows for opt-out replies and lead-ending events: the lead (or bare address) on the channel each covers
    (every channel, or under the `channel` scope an opt-out's own channel)."""
    opt_outs = replies[replies["intent"] == OPT_OUT] if not replies.empty else replies
    parts = []
    if not opt_outs.empty:
        covers = [opt_out_channel(OPT_OUT, c, b, scope) for c, b in zip(opt_outs["channel"], opt_outs["body"], strict=True)]
        parts.append(pd.DataFrame({"lead_id": opt_outs["lead_id"], "address": opt_outs["from_address"], "reason": "opt_out",
                                   "source": opt_outs["reply_id"], "channel": covers}))
    if not marks.empty:
        parts.append(pd.DataFrame({"lead_id": marks["lead_id"], "address": None, "reason": marks["suppression"], "source": marks["event_id"],
                                   "channel": marks["covers"]}))
    if not parts:
        return pd.DataFrame()
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["lead_id"].notna() | rows["address"].notna()].copy()
    if rows.empty:
        return rows
    # Suppress the lead's addresses too, so a re-imported or duplicated lead stays suppressed.
    contacts = events_store.lead_contacts(con, rows["lead_id"])
    rows = rows.merge(contacts, on="lead_id", how="left")
    rows["address"] = rows["address"].where(rows["address"].notna(), rows["email"].where(rows["email"].notna(), rows["phone"]))
    key = rows["lead_id"].where(rows["lead_id"].notna(), rows["address"].astype(str).str.lower())
    rows["suppression_id"] = stable_ids("sup", key.astype(str), rows["channel"])
    return rows.drop(columns=["email", "phone"]).drop_duplicates("suppression_id").assign(created_at=now)


def store_and_react(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, replies: pd.DataFrame, now: datetime,
                    scope: str | None = None) -> IngestStats:
    """Insert new events and replies (ids make repeats harmless), then apply their consequences. Call inside a transaction.

    `scope` is what an opt-out covers (default: `OUTBOUND_OPT_OUT_SCOPE`); an opt-out of one channel suppresses that channel
    and leaves the lead active on the others."""
    scope = scope or settings.opt_out_scope()
    stats = IngestStats()
    stats.events = insert_new(con, "delivery_events", events.assign(ingested_at=now)) if not events.empty else 0
    stats.replies = insert_new(con, "replies", replies.assign(ingested_at=now)) if not replies.empty else 0
    record_inbound(con, replies, now)
    # A reply (other than an opt-out) ends the lead's sequence in that campaign.
    stats.stopped = events_store.stop_replied_recipients(con, now)
    marks = lead_marks(events, scope)
    if not replies.empty:
        opt = replies[(replies["intent"] == OPT_OUT) & replies["lead_id"].notna()]
        covers = [opt_out_channel(OPT_OUT, c, b, scope) for c, b in zip(opt["channel"], opt["body"], strict=True)]
        marks = pd.concat([marks, pd.DataFrame({"event_id": opt["reply_id"], "lead_id": opt["lead_id"], "status": "opted_out",
                                                "reason": "replied " + opt["body"].astype(str).str.slice(0, 40), "suppression": "opt_out",
                                                "channel": opt["channel"], "covers": covers})], ignore_index=True)
    stats.suppressed = insert_new(con, "suppressions", suppression_rows(con, marks, replies, now, scope))
    # Only what covers every channel ends the lead; an opt-out of one channel leaves it active on the others.
    marks = marks[marks["lead_id"].notna() & (marks["covers"] == ALL)].drop_duplicates("lead_id")
    if not marks.empty:
        changed = events_store.mark_leads(con, marks, now)
        stats.opted_out = changed.count("opted_out")
        stats.bounced = changed.count("invalid")
    stats.paused_campaigns = pause_on_bounce_rate(con, events, now)
    stats.tickets = open_tickets(con, now)
    stats.notified = notify_owners(con, now)
    return stats


def record_inbound(con: duckdb.DuckDBPyConnection, replies: pd.DataFrame, now: datetime) -> None:
    """An inbound WhatsApp message opens the lead's 24-hour window: keep its latest time per lead."""
    if replies.empty:
        return
    wa = replies[(replies["channel"] == "whatsapp") & replies["lead_id"].notna()]
    if wa.empty:
        return
    latest = wa.sort_values("received_at").drop_duplicates("lead_id", keep="last")
    events_store.upsert_inbound_windows(con, pd.DataFrame({"lead_id": latest["lead_id"], "last_inbound_at": latest["received_at"],
                                                           "reply_id": latest["reply_id"], "updated_at": now}))


def pause_on_bounce_rate(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, now: datetime) -> int:
    """Pause each running campaign (touched by new bounces) whose bounced/sent rate passed its threshold; say why."""
    if events.empty or not (events["event_type"] == "bounced").any():
        return 0
    touched = events.loc[(events["event_type"] == "bounced") & events["campaign_id"].notna(), "campaign_id"].drop_duplicates()
    if touched.empty:
        return 0
    over = events_store.campaigns_over_bounce_rate(con, touched, MIN_SENT_FOR_BOUNCE_PAUSE)
    # Through the lifecycle, so the pause is a legal move recorded in campaign_events (one per campaign paused).
    for campaign_id, reason in over:
        transition(con, campaign_id, "paused", reason, "pipeline", now)
    return len(over)


def open_tickets(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Human reply mode (and unattributed replies): a ticket for the owner, with the campaign context."""
    fresh = events_store.replies_for_tickets(con)
    if fresh.empty:
        return 0
    context = fresh.apply(lambda r: json.dumps({
        "campaign_id": r.campaign_id, "goal": r.goal, "touch": None if pd.isna(r.touch) else int(r.touch), "channel": r.channel,
        "intent": r.intent, "company": r.company, "we_sent": {"subject": r.sent_subject, "body": r.sent_body}, "reply": r.body,
        "from": r.from_address, "received_at": str(r.received_at),
    }, default=str), axis=1)
    tickets = pd.DataFrame({
        "ticket_id": stable_ids("tkt", fresh["reply_id"]), "reply_id": fresh["reply_id"], "campaign_id": fresh["campaign_id"],
        "lead_id": fresh["lead_id"], "owner_email": fresh["owner_email"], "status": "open",
        "summary": fresh["who"].astype(str) + " (" + fresh["intent"] + ", " + fresh["channel"] + "): " + fresh["body"].astype(str).str.slice(0, 200),
        "context": context, "created_at": now,
    })
    return insert_new(con, "tickets", tickets)


def notify_owners(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """One notification per reply (not opt-outs) for the lead's owner, pointing at the ticket or the answer draft."""
    fresh = events_store.replies_to_notify(con)
    if fresh.empty:
        return 0
    fresh["notification_id"] = stable_ids("ntf", fresh["reply_id"])
    return insert_new(con, "notifications", fresh.assign(kind="reply", created_at=now, emailed_at=None))
