"""What the HTTP surface reads and records: campaigns created over HTTP (`api_campaigns`), the audit trail of changes
made over HTTP (`api_audit`), and the per-contact view of a campaign (status, attempts, last error) behind the stats,
the contacts listing and the live campaign page."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.store.warehouse import insert_new

# --------------------------------------------------------------------------------------------- api_campaigns


def record_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, name: str, channel: str, settings: dict[str, Any],
                    actor: str, now: datetime) -> None:
    """Keep the caller's own fields of a campaign created over HTTP (its display name, agent, numbers, template)."""
    insert_new(con, "api_campaigns", pd.DataFrame([{
        "campaign_id": campaign_id, "name": name, "channel": channel, "settings": json.dumps(settings, sort_keys=True, default=str),
        "created_by": actor, "created_at": now, "updated_at": now}]))


def update_settings(con: duckdb.DuckDBPyConnection, campaign_id: str, name: str, channel: str, settings: dict[str, Any],
                    now: datetime) -> None:
    con.execute("UPDATE api_campaigns SET name = ?, channel = ?, settings = ?, updated_at = ? WHERE campaign_id = ?",
                [name, channel, json.dumps(settings, sort_keys=True, default=str), now, campaign_id])


def api_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str) -> dict[str, Any] | None:
    """The HTTP fields of one campaign (None: not created over HTTP)."""
    rows = con.execute("SELECT campaign_id, name, channel, settings, created_by, created_at, updated_at FROM api_campaigns "
                       "WHERE campaign_id = ?", [campaign_id]).fetchall()
    if not rows:
        return None
    cid, name, channel, settings, created_by, created_at, updated_at = rows[0]
    return {"campaign_id": cid, "name": name, "channel": channel, "settings": json.loads(settings), "created_by": created_by,
            "created_at": created_at, "updated_at": updated_at}


def campaign_ids_in_use(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Ids taken by a campaign row or an HTTP record."""
    rows = con.execute("SELECT campaign_id FROM campaigns UNION SELECT campaign_id FROM api_campaigns").fetchall()
    return {r[0] for r in rows}


# --------------------------------------------------------------------------------------------- api_audit


def audit(con: duckdb.DuckDBPyConnection, key_name: str, method: str, path: str, campaign_id: str | None, action: str,
          status_code: int, detail: str | None, now: datetime) -> None:
    """One audit row per change asked over HTTP, refused or done."""
    insert_new(con, "api_audit", pd.DataFrame([{
        "audit_id": stable_id("aud", key_name, method, path, action, now.isoformat(), detail, status_code),
        "key_name": key_name, "method": method, "path": path, "campaign_id": campaign_id, "action": action,
        "status_code": status_code, "detail": detail, "occurred_at": now}]))


def audit_trail(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    return con.execute("""SELECT occurred_at, key_name, method, path, campaign_id, action, status_code, detail FROM api_audit
                          WHERE ?::VARCHAR IS NULL OR campaign_id = ? ORDER BY occurred_at, audit_id""",
                       [campaign_id, campaign_id]).df()


# --------------------------------------------------------------------------------------------- per-contact view

# One row per recipient: its latest message and where that message got to. The status is the furthest stage reached:
# replied, failed (unreachable, refused or bounced), suppressed, read, opened, delivered, sent, queued, else pending.
_CONTACTS = """
WITH last_send AS (
    SELECT lead_id, arg_max(send_id, coalesce(sent_at, recorded_at)) AS send_id, sum(attempts) AS attempts
    FROM sends WHERE campaign_id = $campaign GROUP BY lead_id),
events AS (
    SELECT send_id, bool_or(event_type = 'delivered') AS delivered, bool_or(event_type = 'read') AS was_read,
           bool_or(event_type IN ('opened', 'clicked')) AS opened,
           bool_or(event_type IN ('failed', 'undelivered', 'bounced')) AS failed
    FROM delivery_events WHERE campaign_id = $campaign GROUP BY send_id),
replied AS (SELECT DISTINCT lead_id FROM replies WHERE campaign_id = $campaign),
rows AS (
    SELECT r.lead_id, trim(concat_ws(' ', l.first_name, l.last_name)) AS name, l.phone, l.email, s.channel,
           CASE WHEN p.lead_id IS NOT NULL OR r.status = 'replied' THEN 'replied'
                WHEN r.status = 'failed' OR s.status = 'failed' OR coalesce(e.failed, false) THEN 'failed'
                WHEN s.status = 'suppressed' THEN 'suppressed'
                WHEN coalesce(e.was_read, false) THEN 'read'
                WHEN coalesce(e.opened, false) THEN 'opened'
                WHEN coalesce(e.delivered, false) THEN 'delivered'
                WHEN s.status = 'sent' THEN 'sent'
                WHEN s.status IN ('pending', 'sending') THEN 'queued'
                ELSE 'pending' END AS status,
           r.status AS recipient_status, coalesce(ls.attempts, 0)::INTEGER AS attempts, NULL::INTEGER AS duration_seconds,
           coalesce(s.error_message, CASE WHEN r.status = 'failed' THEN r.status_reason END) AS error_message,
           s.sent_at AS last_sent_at, l.custom_vars AS variables, r.added_at
    FROM recipients r JOIN leads l USING (lead_id)
    LEFT JOIN last_send ls USING (lead_id) LEFT JOIN sends s ON s.send_id = ls.send_id
    LEFT JOIN events e ON e.send_id = ls.send_id LEFT JOIN replied p ON p.lead_id = r.lead_id
    WHERE r.campaign_id = $campaign)
"""


def contact_status_counts(con: duckdb.DuckDBPyConnection, campaign_id: str) -> dict[str, int]:
    """How many of the campaign's recipients are in each status."""
    rows = con.execute(_CONTACTS + "SELECT status, count(*) FROM rows GROUP BY status", {"campaign": campaign_id}).fetchall()
    return {status: int(n) for status, n in rows}


def message_contacts(con: duckdb.DuckDBPyConnection, campaign_id: str, status: str | None, search: str | None,
                     page: int, limit: int) -> tuple[pd.DataFrame, int]:
    """One page of the campaign's recipients (in the order they joined), filtered by status and by a name, phone or email
    fragment; with the number of rows matching."""
    text = (search or "").strip().lower()
    where = """WHERE ($status::VARCHAR IS NULL OR status = $status)
               AND ($q::VARCHAR = '' OR strpos(lower(concat_ws(' ', name, phone, email)), $q) > 0)"""
    params: dict[str, Any] = {"campaign": campaign_id, "status": status, "q": text}
    total = int(con.execute(_CONTACTS + f"SELECT count(*) FROM rows {where}", params).fetchall()[0][0])
    frame = con.execute(_CONTACTS + f"SELECT * EXCLUDE (added_at) FROM rows {where} ORDER BY added_at, lead_id LIMIT $limit OFFSET $offset",
                        {**params, "limit": limit, "offset": (page - 1) * limit}).df()
    return frame, total


def contacts_in_lists(con: duckdb.DuckDBPyConnection, list_names: list[str]) -> int:
    """Active contacts in any of these lists (what a launch could select before its segment)."""
    if not list_names:
        return 0
    return int(con.execute("""SELECT count(DISTINCT m.lead_id) FROM list_members m JOIN leads l USING (lead_id)
                              WHERE list_contains(?, m.list_name) AND l.status = 'active'""", [list_names]).fetchall()[0][0])


def list_contacts_page(con: duckdb.DuckDBPyConnection, list_name: str, page: int, limit: int) -> tuple[pd.DataFrame, int]:
    """Contacts uploaded to a campaign's list before its launch, shown as `pending` with no attempts yet."""
    total = int(con.execute("SELECT count(*) FROM list_members WHERE list_name = ?", [list_name]).fetchall()[0][0])
    frame = con.execute("""
        SELECT l.lead_id, trim(concat_ws(' ', l.first_name, l.last_name)) AS name, l.phone, l.email, NULL::VARCHAR AS channel,
               'pending' AS status, NULL::VARCHAR AS recipient_status, 0 AS attempts, NULL::INTEGER AS duration_seconds,
               CASE WHEN l.status <> 'active' THEN l.status_reason END AS error_message, NULL::TIMESTAMP AS last_sent_at,
               l.custom_vars AS variables
        FROM list_members m JOIN leads l USING (lead_id) WHERE m.list_name = ?
        ORDER BY m.added_at, m.source_file, m.line LIMIT ? OFFSET ?""", [list_name, limit, (page - 1) * limit]).df()
    return frame, total


def campaign_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every campaign: status, recipients, messages sent, leads who engaged (opened, read or clicked) and replied."""
    return con.execute("""
        SELECT c.campaign_id, c.status, c.status_reason, c.type, c.approval_mode, c.launched_at, c.spec,
               a.name AS api_name, a.channel AS api_channel, a.settings AS api_settings,
               (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.campaign_id) AS recipients,
               (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status = 'sent') AS sent,
               (SELECT count(DISTINCT e.lead_id) FROM delivery_events e WHERE e.campaign_id = c.campaign_id
                  AND e.event_type IN ('opened', 'read', 'clicked')) AS engaged,
               (SELECT count(DISTINCT p.lead_id) FROM replies p WHERE p.campaign_id = c.campaign_id) AS replied
        FROM campaigns c LEFT JOIN api_campaigns a USING (campaign_id) ORDER BY c.updated_at DESC, c.campaign_id
    """).df()


def api_drafts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Campaigns created over HTTP that have no campaigns row yet (not recorded as drafts)."""
    return con.execute("""SELECT a.* FROM api_campaigns a WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.campaign_id = a.campaign_id)
                          ORDER BY a.created_at""").df()
