"""Bring delivery events and replies in, once each, and make the campaign react to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from outbound_pipeline.ids import stable_ids
from outbound_pipeline.providers.base import ChannelProvider
from outbound_pipeline.providers.intent_offline import classify_intent
from outbound_pipeline.store.warehouse import insert_new


@dataclass
class IngestStats:
    events: int = 0
    replies: int = 0
    stopped: int = 0
    opted_out: int = 0
    bounced: int = 0
    notified: int = 0


def poll_providers(sends: pd.DataFrame, provider_named: Callable[[str], ChannelProvider], until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ask every provider that carried one of `sends` what happened to them, up to `until`."""
    events, replies = [], []
    for name in sends["provider"].dropna().unique():
        found_events, found_replies = provider_named(name).poll_events(sends[sends["provider"] == name], until)
        events.append(found_events)
        replies.append(found_replies)
    return (pd.concat(events, ignore_index=True) if events else pd.DataFrame(),
            pd.concat(replies, ignore_index=True) if replies else pd.DataFrame())


def classify(replies: pd.DataFrame, classifier: Callable[[str], str] = classify_intent) -> pd.DataFrame:
    """Fill in the intent of replies that arrived without one."""
    if replies.empty:
        return replies
    unknown = replies["intent"].isna() | (replies["intent"] == "unknown")
    replies = replies.copy()
    replies.loc[unknown, "intent"] = replies.loc[unknown, "body"].map(classifier)
    return replies


def store_and_react(con, events: pd.DataFrame, replies: pd.DataFrame, now: datetime) -> IngestStats:
    """Insert new events and replies (ids make repeats harmless), then apply their consequences."""
    stats = IngestStats()
    stats.events = insert_new(con, "delivery_events", events.assign(ingested_at=now)) if not events.empty else 0
    stats.replies = insert_new(con, "replies", replies.assign(ingested_at=now)) if not replies.empty else 0
    # A reply (other than an opt-out) ends the lead's sequence in that campaign.
    stats.stopped = con.execute("""
        UPDATE recipients SET status = 'replied', status_reason = 'replied: ' || p.intent, updated_at = ?
        FROM (SELECT campaign_id, lead_id, arg_min(intent, received_at) AS intent FROM replies
              WHERE intent <> 'opt_out' AND campaign_id IS NOT NULL GROUP BY ALL) p
        WHERE recipients.campaign_id = p.campaign_id AND recipients.lead_id = p.lead_id AND recipients.status = 'active'
    """, [now]).fetchall()[0][0]
    # Opt-outs, in any channel, suppress the lead everywhere; bounces and complaints mark it invalid for email.
    marks = con.execute("""
        SELECT lead_id, 'opted_out' AS status, 'opted out via ' || channel AS reason FROM delivery_events
        WHERE event_type = 'opted_out' AND lead_id IS NOT NULL
        UNION ALL
        SELECT lead_id, 'opted_out', 'replied ' || left(body, 40) FROM replies WHERE intent = 'opt_out' AND lead_id IS NOT NULL
        UNION ALL
        SELECT lead_id, 'bounced', event_type || ' on ' || channel FROM delivery_events
        WHERE event_type IN ('bounced', 'complained') AND lead_id IS NOT NULL
    """).df().drop_duplicates("lead_id")
    if not marks.empty:
        con.register("_marks", marks)
        stats.opted_out = con.execute("""
            UPDATE leads SET status = m.status, status_reason = m.reason FROM _marks m
            WHERE leads.lead_id = m.lead_id AND leads.status = 'active' AND m.status = 'opted_out'
        """).fetchall()[0][0]
        stats.bounced = con.execute("""
            UPDATE leads SET status = m.status, status_reason = m.reason FROM _marks m
            WHERE leads.lead_id = m.lead_id AND leads.status = 'active' AND m.status = 'bounced'
        """).fetchall()[0][0]
        con.execute("""
            UPDATE recipients SET status = 'paused', status_reason = 'lead ' || m.status, updated_at = ?
            FROM _marks m WHERE recipients.lead_id = m.lead_id AND recipients.status = 'active'
        """, [now])
        con.unregister("_marks")
    stats.notified = notify_owners(con, now)
    return stats


def notify_owners(con, now: datetime) -> int:
    """One notification per attributed reply (not opt-outs) for the lead's owner."""
    fresh = con.execute("""
        SELECT p.reply_id, p.campaign_id, p.lead_id, coalesce(l.owner_email, json_extract_string(c.spec, '$.owner_email')) AS owner_email,
               l.first_name || coalesce(' ' || l.last_name, '') || ' replied to ' || p.campaign_id || ' (touch ' || p.touch || ', '
               || p.channel || ', ' || p.intent || '): ' || p.body AS message
        FROM replies p LEFT JOIN leads l USING (lead_id) LEFT JOIN campaigns c ON c.campaign_id = p.campaign_id
        WHERE p.intent <> 'opt_out' AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.reply_id = p.reply_id)
    """).df()
    if fresh.empty:
        return 0
    fresh["notification_id"] = stable_ids("ntf", fresh["reply_id"])
    return insert_new(con, "notifications", fresh.assign(kind="reply", created_at=now))
