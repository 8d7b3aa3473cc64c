"""What tracking reads and writes: delivery_events, replies, suppressions, inbound_windows, tickets, notifications.

Campaign settings a query needs (reply mode, owner, approval mode, bounce threshold) come
from each campaign's frozen spec read through `CampaignSpec`, so its defaults live in one
place; they are handed to the SQL as the registered frame `_settings`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.intents import NEEDS_NO_ANSWER, OPT_OUT
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import update_from

SETTINGS_COLUMNS = ["campaign_id", "status", "goal", "reply_mode", "owner_email", "approval", "bounce_pause_threshold"]


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, **frames: pd.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
    """Frames visible to SQL under their keyword names for the duration of the block."""
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield con
    finally:
        for name in frames:
            con.unregister(name)


def campaign_settings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per launched campaign: its status, goal and the spec settings tracking reacts by."""
    campaigns = con.execute("SELECT campaign_id, status, goal FROM campaigns ORDER BY campaign_id").fetchall()
    rows = []
    for campaign_id, status, goal in campaigns:
        spec = campaign_spec(con, campaign_id)
        rows.append({"campaign_id": campaign_id, "status": status, "goal": goal, "reply_mode": spec.reply_mode,
                     "owner_email": spec.owner_email, "approval": spec.approval, "bounce_pause_threshold": spec.bounce_pause_threshold})
    frame = pd.DataFrame(rows, columns=SETTINGS_COLUMNS)
    return frame.astype({c: "string" for c in SETTINGS_COLUMNS if c != "bounce_pause_threshold"}).astype({"bounce_pause_threshold": "float64"})


# --------------------------------------------------------------------------- what to poll


def polled_sends(con: duckdb.DuckDBPyConnection, campaign_ids: Sequence[str], since: datetime | None = None,
                 final: pd.DataFrame | None = None, settled: pd.DataFrame | None = None) -> pd.DataFrame:
    """The campaigns' sends a provider may still report on: sent or failed, handed over at or after `since`, not final yet.

    `final` (provider, channel, event_type): a stored event of that type ends the message's story (`replied`: a
    stored reply to it); `settled` (provider, before): that provider reports nothing on messages handed over before
    `before`. So a tracking tick costs the messages still in flight, not the whole history of the campaign.
    """
    final = final if final is not None else pd.DataFrame({"provider": [], "channel": [], "event_type": []}, dtype="string")
    settled = settled if settled is not None else pd.DataFrame({"provider": pd.Series([], dtype="string"),
                                                                "before": pd.Series([], dtype="datetime64[us]")})
    with _registered(con, _final=final, _settled=settled):
        return con.execute("""
            WITH candidates AS (
                SELECT s.* FROM sends s LEFT JOIN _settled t ON t.provider = s.provider
                WHERE list_contains(?::VARCHAR[], s.campaign_id) AND s.status IN ('sent', 'failed')
                  AND (?::TIMESTAMP IS NULL OR coalesce(s.sent_at, s.updated_at) >= ?::TIMESTAMP)
                  AND (t.before IS NULL OR coalesce(s.sent_at, s.updated_at) >= t.before)
            ),
            ended AS (
                SELECT e.send_id FROM delivery_events e
                JOIN candidates c ON c.send_id = e.send_id
                JOIN _final f ON f.provider = c.provider AND f.channel = c.channel AND f.event_type = e.event_type
                UNION
                SELECT r.send_id FROM replies r
                JOIN candidates c ON c.send_id = r.send_id
                JOIN _final f ON f.provider = c.provider AND f.channel = c.channel AND f.event_type = 'replied'
            )
            SELECT * FROM candidates WHERE send_id NOT IN (SELECT send_id FROM ended WHERE send_id IS NOT NULL)
        """, [list(campaign_ids), since, since]).df()


def providers_of(con: duckdb.DuckDBPyConnection, campaign_ids: Sequence[str]) -> list[str]:
    """The providers that carried the campaigns' messages."""
    rows = con.execute("SELECT DISTINCT provider FROM sends WHERE list_contains(?::VARCHAR[], campaign_id) AND provider IS NOT NULL",
                       [list(campaign_ids)]).fetchall()
    return sorted(str(r[0]) for r in rows)


def campaigns_in_flight(con: duckdb.DuckDBPyConnection, campaign_ids: Sequence[str], since: datetime | None,
                        final: pd.DataFrame | None = None, settled: pd.DataFrame | None = None) -> list[str]:
    """Which of the campaigns have a message tracking still polls (see `polled_sends`)."""
    polled = polled_sends(con, campaign_ids, since, final, settled)
    return sorted(polled["campaign_id"].dropna().astype(str).unique().tolist())


def totals(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(delivery events, replies) stored so far."""
    events, replies = con.execute("SELECT (SELECT count(*) FROM delivery_events), (SELECT count(*) FROM replies)").fetchall()[0]
    return int(events), int(replies)


# --------------------------------------------------------------------------- attribution


def sends_for_events(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """Per row of `keys` (`send_id`, `pmid`: provider message id), the matching send; indexed by row position `i`."""
    with _registered(con, _keys=keys):
        # Two equality joins (hash joins) rather than one join on an OR, which DuckDB runs as a nested loop over every send.
        return con.execute("""
            WITH k AS (SELECT row_number() OVER () - 1 AS rowid_, * FROM _keys),
            matched AS (
                SELECT k.rowid_, 0 AS rank, s.send_id, s.campaign_id, s.touch, s.lead_id, s.channel
                FROM k JOIN sends s ON s.send_id = k.send_id
                UNION ALL
                SELECT k.rowid_, 1 AS rank, s.send_id, s.campaign_id, s.touch, s.lead_id, s.channel
                FROM k JOIN sends s ON s.provider_message_id = k.pmid WHERE k.send_id IS NULL
            )
            SELECT rowid_ AS i, send_id, campaign_id, touch, lead_id, channel FROM matched
            QUALIFY row_number() OVER (PARTITION BY rowid_ ORDER BY rank, send_id) = 1
        """).df().set_index("i")


def reply_candidates(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame, refs: pd.DataFrame, phone_window_hours: int) -> pd.DataFrame:
    """Sends each reply (`keys`: i, address, channel, received_at, has_send) may answer, and how they match (`how`).

    `thread`: the email answers the send's Message-ID (`refs`: i, ref); `sender_address`: an email from the
    address we emailed; `number_72h`: a WhatsApp/SMS message from a number we wrote to within the window.
    """
    with _registered(con, _keys=keys, _refs=refs):
        return con.execute(f"""
            SELECT k.i, s.send_id, s.campaign_id, s.touch, s.lead_id, s.sent_at, 'thread' AS how
            FROM _keys k JOIN _refs r ON r.i = k.i JOIN sends s ON s.message_id = r.ref
            WHERE NOT k.has_send AND s.status = 'sent'
            UNION ALL
            SELECT k.i, s.send_id, s.campaign_id, s.touch, s.lead_id, s.sent_at,
                   CASE WHEN k.channel = 'email' THEN 'sender_address' ELSE 'number_72h' END
            FROM _keys k JOIN sends s ON lower(s.to_address) = k.address
            WHERE NOT k.has_send AND s.status = 'sent' AND s.sent_at <= k.received_at
              AND ((k.channel = 'email' AND s.channel = 'email')
                   OR (k.channel <> 'email' AND s.channel <> 'email' AND k.received_at - s.sent_at <= INTERVAL {int(phone_window_hours)} HOUR))
        """).df()


def sends_of_replies(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """Campaign, touch and lead of the replies that name their send (`keys`: i, send_id); indexed by `i`."""
    with _registered(con, _keys=keys):
        return con.execute("SELECT k.i, s.campaign_id, s.touch, s.lead_id FROM _keys k JOIN sends s ON s.send_id = k.send_id").df().set_index("i")


def leads_by_address(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """The lead whose email (email replies) or phone (the others) sent each reply (`keys`: i, address, channel); indexed by `i`."""
    with _registered(con, _keys=keys):
        return con.execute("""
            SELECT i, any_value(lead_id) AS lead_id FROM (
                SELECT k.i, l.lead_id FROM _keys k JOIN leads l ON lower(l.email) = k.address WHERE k.channel = 'email'
                UNION ALL
                SELECT k.i, l.lead_id FROM _keys k JOIN leads l ON l.phone = k.address WHERE k.channel <> 'email'
            ) GROUP BY i
        """).df().set_index("i")


def known_event_ids(con: duckdb.DuckDBPyConnection, event_ids: pd.Series) -> set[str]:
    """The ids among `event_ids` already stored."""
    with _registered(con, _ids=pd.DataFrame({"event_id": event_ids.astype("string")})):
        return {r[0] for r in con.execute("SELECT e.event_id FROM delivery_events e JOIN _ids USING (event_id)").fetchall()}


def known_reply_ids(con: duckdb.DuckDBPyConnection, reply_ids: pd.Series) -> set[str]:
    """The ids among `reply_ids` already stored."""
    with _registered(con, _ids=pd.DataFrame({"reply_id": reply_ids.astype("string")})):
        return {r[0] for r in con.execute("SELECT reply_id FROM replies WHERE reply_id IN (SELECT reply_id FROM _ids)").fetchall()}


# --------------------------------------------------------------------------- reactions


def stop_replied_recipients(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """End the sequence of every active recipient with an attributed reply other than an opt-out (the first reply's intent is the reason)."""
    return int(con.execute("""
        UPDATE recipients SET status = 'replied', status_reason = 'replied: ' || p.intent, updated_at = ?
        FROM (SELECT campaign_id, lead_id, arg_min(intent, received_at) AS intent FROM replies
              WHERE intent <> ? AND campaign_id IS NOT NULL GROUP BY ALL) p
        WHERE recipients.campaign_id = p.campaign_id AND recipients.lead_id = p.lead_id AND recipients.status = 'active'
    """, [now, OPT_OUT]).fetchall()[0][0])


def lead_contacts(con: duckdb.DuckDBPyConnection, lead_ids: pd.Series) -> pd.DataFrame:
    """Email and phone of the given leads."""
    with _registered(con, _leads=pd.DataFrame({"lead_id": lead_ids.astype("string")})):
        return con.execute("SELECT lead_id, email, phone FROM leads WHERE lead_id IN (SELECT lead_id FROM _leads)").df()


def mark_leads(con: duckdb.DuckDBPyConnection, marks: pd.DataFrame, now: datetime) -> list[str]:
    """Set each active lead of `marks` (lead_id, status, reason) to its status and pause it in every campaign; the statuses changed."""
    with _registered(con, _marks=marks[["lead_id", "status", "reason"]].astype("string")):
        changed = con.execute("""
            UPDATE leads SET status = m.status, status_reason = m.reason FROM _marks m
            WHERE leads.lead_id = m.lead_id AND leads.status = 'active' RETURNING leads.status
        """).fetchall()
        con.execute("""
            UPDATE recipients SET status = 'paused', status_reason = 'lead ' || m.status || ': ' || m.reason, updated_at = ?
            FROM _marks m WHERE recipients.lead_id = m.lead_id AND recipients.status = 'active'
        """, [now])
    return [status for (status,) in changed]


def upsert_inbound_windows(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Keep each lead's latest inbound message time (lead_id, last_inbound_at, reply_id, updated_at)."""
    with _registered(con, _inbound=validate("inbound_windows", frame)):
        con.execute("""
            INSERT INTO inbound_windows SELECT lead_id, last_inbound_at, reply_id, updated_at FROM _inbound
            ON CONFLICT (lead_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at, reply_id = excluded.reply_id,
                updated_at = excluded.updated_at WHERE excluded.last_inbound_at > inbound_windows.last_inbound_at
        """)


def campaigns_over_bounce_rate(con: duckdb.DuckDBPyConnection, campaign_ids: pd.Series, min_sent: int) -> list[tuple[str, str]]:
    """(campaign, reason) for each running campaign among `campaign_ids` whose bounced/sent rate passed its spec's threshold."""
    touched = pd.DataFrame({"campaign_id": campaign_ids.astype("string")})
    with _registered(con, _touched=touched, _settings=campaign_settings(con)):
        return [(str(c), str(r)) for c, r in con.execute("""
            WITH rates AS (
                SELECT c.campaign_id, c.bounce_pause_threshold AS threshold,
                       (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status = 'sent') AS sent,
                       (SELECT count(DISTINCT e.send_id) FROM delivery_events e
                        WHERE e.campaign_id = c.campaign_id AND e.event_type = 'bounced') AS bounced
                FROM _settings c WHERE c.campaign_id IN (SELECT campaign_id FROM _touched) AND c.status = 'running'
            )
            SELECT campaign_id, format('bounce rate {:.1f}% ({} bounced of {} sent) passed the {:.1f}% threshold',
                                       100.0 * bounced / sent, bounced, sent, 100.0 * threshold) AS reason
            FROM rates WHERE sent >= ? AND bounced > threshold * sent ORDER BY campaign_id
        """, [min_sent]).fetchall()]


# A reply worth a person's or an answer's attention, with the lead, its campaign's settings and what we sent.
_REPLY_CONTEXT = """
    SELECT p.reply_id, p.campaign_id, p.lead_id, p.touch, p.channel, p.intent, p.body, p.from_address, p.received_at,
           coalesce(l.owner_email, c.owner_email) AS owner_email, c.reply_mode,
           coalesce(l.first_name || coalesce(' ' || l.last_name, ''), p.from_address) AS who,
           l.company, c.goal, s.subject AS sent_subject, s.body AS sent_body
    FROM replies p LEFT JOIN leads l ON l.lead_id = p.lead_id LEFT JOIN _settings c ON c.campaign_id = p.campaign_id
    LEFT JOIN sends s ON s.send_id = p.send_id
    WHERE NOT list_contains(?::VARCHAR[], p.intent)
"""


def replies_for_tickets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Replies a person should answer (human reply mode, or no campaign matched) that have no ticket yet, with their context."""
    with _registered(con, _settings=campaign_settings(con)):
        return con.execute(_REPLY_CONTEXT + """
            AND c.reply_mode IS DISTINCT FROM 'ai'
            AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.reply_id = p.reply_id)
        """, [list(NEEDS_NO_ANSWER)]).df()


def replies_needing_answers(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """AI reply mode: attributed replies of live campaigns that deserve an answer and have no answer draft yet, with what an answer needs."""
    with _registered(con, _settings=campaign_settings(con)):
        return con.execute(_REPLY_CONTEXT + """
            AND c.reply_mode = 'ai' AND p.lead_id IS NOT NULL AND p.campaign_id IS NOT NULL
            AND c.status NOT IN ('stopped', 'draft', 'scheduled') AND (?::VARCHAR IS NULL OR p.campaign_id = ?)
            AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.reply_id = p.reply_id)
            ORDER BY p.received_at, p.reply_id
        """, [list(NEEDS_NO_ANSWER), campaign_id, campaign_id]).df()


def replies_to_notify(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Replies (opt-outs aside) with no owner notification yet, with the owner and the message to send them.

    The message points at the answer draft (ai reply mode, a person replied, the lead is known) or at the open ticket.
    """
    with _registered(con, _settings=campaign_settings(con)):
        return con.execute("""
            SELECT p.reply_id, p.campaign_id, p.lead_id, coalesce(l.owner_email, c.owner_email) AS owner_email,
                   coalesce(l.first_name || coalesce(' ' || l.last_name, ''), p.from_address) || ' replied'
                   || coalesce(' to ' || p.campaign_id || CASE WHEN p.touch = 0 THEN ' (our answer)' ELSE ' (touch ' || p.touch || ')' END,
                               ' (no campaign matched)') || ' on ' || p.channel
                   || ', ' || p.intent || ': ' || p.body
                   || CASE WHEN c.reply_mode = 'ai' AND NOT list_contains(?::VARCHAR[], p.intent) AND p.lead_id IS NOT NULL
                           THEN E'\n\nAn answer is drafted for ' || p.campaign_id || '.reply: '
                                || CASE WHEN c.approval = 'auto' THEN 'it goes out on approval mode auto.'
                                        ELSE 'review it with `outbound review list --campaign ' || p.campaign_id || ' --touch reply`.' END
                           WHEN t.ticket_id IS NOT NULL THEN E'\n\nTicket ' || t.ticket_id || ' is open for you.' ELSE '' END AS message
            FROM replies p LEFT JOIN leads l ON l.lead_id = p.lead_id LEFT JOIN _settings c ON c.campaign_id = p.campaign_id
            LEFT JOIN tickets t ON t.reply_id = p.reply_id
            WHERE p.intent <> ? AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.reply_id = p.reply_id)
        """, [list(NEEDS_NO_ANSWER), OPT_OUT]).df()


# --------------------------------------------------------------------------- owner notifications


def unsent_notifications(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Notifications with an owner address that have not been emailed, oldest first."""
    return con.execute("""
        SELECT notification_id, campaign_id, lead_id, owner_email, message, created_at FROM notifications
        WHERE emailed_at IS NULL AND owner_email IS NOT NULL ORDER BY created_at, notification_id
    """).df()


def mark_emailed(con: duckdb.DuckDBPyConnection, notification_ids: Sequence[str], at: datetime) -> None:
    """Record that these notifications reached their owner."""
    update_from(con, "notifications", pd.DataFrame({"notification_id": list(notification_ids), "emailed_at": at}), "notification_id",
                ["emailed_at"])


# --------------------------------------------------------------------------- tickets


def list_tickets(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None, only_open: bool = False) -> pd.DataFrame:
    """Tickets, oldest first, optionally of one campaign and only the open ones."""
    return con.execute("""
        SELECT ticket_id, status, campaign_id, lead_id, owner_email, summary, created_at, closed_at, closed_by, close_note
        FROM tickets
        WHERE (?::VARCHAR IS NULL OR campaign_id = ?) AND (NOT ? OR status = 'open')
        ORDER BY created_at, ticket_id
    """, [campaign_id, campaign_id, only_open]).df()


def ticket_state(con: duckdb.DuckDBPyConnection, ticket_id: str) -> tuple[str, str | None, datetime | None] | None:
    """(status, closed_by, closed_at) of a ticket, None when there is no such ticket."""
    found = con.execute("SELECT status, closed_by, closed_at FROM tickets WHERE ticket_id = ?", [ticket_id]).fetchall()
    return (found[0][0], found[0][1], found[0][2]) if found else None


def close_open_ticket(con: duckdb.DuckDBPyConnection, ticket_id: str, by: str, note: str | None, now: datetime) -> None:
    """Close the ticket if it is still open, recording who, when and why."""
    con.execute("""UPDATE tickets SET status = 'closed', closed_at = ?, closed_by = ?, close_note = ?
                   WHERE ticket_id = ? AND status = 'open'""", [now, by, note, ticket_id])
