"""Which send (and so campaign, touch and lead) an event or a reply belongs to.

Events carry our send id (Resend tags, the status-callback URL, unsubscribe links) or
the provider's message id, which `sends` holds. Replies carry neither, so they are
matched the way a person would: an email by the Message-ID it answers, else by who
sent it; a WhatsApp or SMS message by the most recent send to that number within
72 hours. What matches nothing is kept, with the lead filled in when the address is
one of our leads.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

PHONE_WINDOW_HOURS = 72  # a WhatsApp/SMS reply belongs to a send to that number this recent
SEND_FIELDS = ["send_id", "campaign_id", "touch", "lead_id"]


def _provider_message_id(detail: object) -> str | None:
    try:
        data = json.loads(detail) if isinstance(detail, str) else {}
    except json.JSONDecodeError:
        return None
    value = data.get("provider_message_id") or data.get("sid") if isinstance(data, dict) else None
    return str(value) if value else None


def _lookup(con: duckdb.DuckDBPyConnection, sql: str, keys: pd.DataFrame) -> pd.DataFrame:
    con.register("_keys", keys)
    try:
        return con.execute(sql).df()
    finally:
        con.unregister("_keys")


def attribute_events(con: duckdb.DuckDBPyConnection, events: pd.DataFrame) -> pd.DataFrame:
    """Fill send, campaign, touch and lead from `sends`, by send id or provider message id."""
    if events.empty:
        return events
    events = events.reset_index(drop=True).copy()
    keys = pd.DataFrame({"send_id": events["send_id"].astype(object), "pmid": events["detail"].map(_provider_message_id)})
    keys = keys.astype({"send_id": "string", "pmid": "string"})
    found = _lookup(con, """
        SELECT k.rowid_ AS i, s.send_id, s.campaign_id, s.touch, s.lead_id, s.channel
        FROM (SELECT row_number() OVER () - 1 AS rowid_, * FROM _keys) k
        JOIN sends s ON s.send_id = k.send_id OR (k.send_id IS NULL AND s.provider_message_id = k.pmid)
        QUALIFY row_number() OVER (PARTITION BY k.rowid_ ORDER BY s.send_id = k.send_id DESC) = 1
    """, keys).set_index("i")
    if found.empty:
        return events
    hit = events.index.isin(found.index)
    for col in SEND_FIELDS:
        events[col] = events[col].astype(object)
        events.loc[hit, col] = found.loc[events.index[hit], col].to_numpy()
    events.loc[hit, "channel"] = found.loc[events.index[hit], "channel"].to_numpy()
    events["touch"] = pd.array(events["touch"], dtype="Int64")
    return events


def _latest(candidates: pd.DataFrame) -> pd.DataFrame:
    """Per reply (`i`), the candidate send with the latest `sent_at`."""
    return candidates.sort_values(["i", "sent_at", "send_id"]).drop_duplicates("i", keep="last").set_index("i")


def attribute_replies(con: duckdb.DuckDBPyConnection, replies: pd.DataFrame) -> pd.DataFrame:
    """Fill send, campaign, touch and lead of each reply, and say how (`attribution`)."""
    if replies.empty:
        return replies
    replies = replies.reset_index(drop=True).copy()
    for col in ("thread_refs", "attribution", *SEND_FIELDS):
        if col not in replies:
            replies[col] = None
        replies[col] = replies[col].astype(object).where(replies[col].notna(), None)
    replies["received_at"] = pd.to_datetime(replies["received_at"])
    refs = replies["thread_refs"].map(lambda v: json.loads(v) if isinstance(v, str) and v else [])
    address = replies["from_address"].astype(str).str.strip().str.lower()
    keys = pd.DataFrame({"i": replies.index, "address": address, "channel": replies["channel"], "received_at": replies["received_at"],
                         "has_send": replies["send_id"].notna()})
    ref_keys = keys[["i"]].assign(ref=refs).explode("ref").dropna(subset=["ref"])
    con.register("_refs", ref_keys.astype({"ref": "string"}) if not ref_keys.empty else pd.DataFrame({"i": pd.Series(dtype="int64"),
                                                                                                        "ref": pd.Series(dtype="string")}))
    try:
        candidates = _lookup(con, f"""
            SELECT k.i, s.send_id, s.campaign_id, s.touch, s.lead_id, s.sent_at, 'thread' AS how
            FROM _keys k JOIN _refs r ON r.i = k.i JOIN sends s ON s.message_id = r.ref
            WHERE NOT k.has_send AND s.status = 'sent'
            UNION ALL
            SELECT k.i, s.send_id, s.campaign_id, s.touch, s.lead_id, s.sent_at,
                   CASE WHEN k.channel = 'email' THEN 'sender_address' ELSE 'number_72h' END
            FROM _keys k JOIN sends s ON lower(s.to_address) = k.address
            WHERE NOT k.has_send AND s.status = 'sent' AND s.sent_at <= k.received_at
              AND ((k.channel = 'email' AND s.channel = 'email')
                   OR (k.channel <> 'email' AND s.channel <> 'email' AND k.received_at - s.sent_at <= INTERVAL {PHONE_WINDOW_HOURS} HOUR))
        """, keys)
        known = _lookup(con, """
            SELECT k.i, s.campaign_id, s.touch, s.lead_id FROM _keys k JOIN sends s ON s.send_id = k.send_id
        """, keys.assign(send_id=replies["send_id"].astype("string")))
        leads = _lookup(con, """
            SELECT k.i, any_value(l.lead_id) AS lead_id FROM _keys k
            JOIN leads l ON (k.channel = 'email' AND lower(l.email) = k.address) OR (k.channel <> 'email' AND l.phone = k.address)
            GROUP BY k.i
        """, keys).set_index("i")
    finally:
        con.unregister("_refs")
    thread = _latest(candidates[candidates["how"] == "thread"])
    other = _latest(candidates[candidates["how"] != "thread"])
    best = pd.concat([thread, other[~other.index.isin(thread.index)]])
    how = pd.Series("none", index=replies.index, dtype=object)
    for col in SEND_FIELDS:
        replies.loc[best.index, col] = best[col].to_numpy()
    how.loc[best.index] = best["how"].to_numpy()
    known = known.set_index("i")
    for col in ("campaign_id", "touch", "lead_id"):
        replies.loc[known.index, col] = known[col].to_numpy()
    how.loc[known.index] = "send"
    how.loc[replies["send_id"].notna() & (how == "none")] = "send"
    no_lead = replies["lead_id"].isna() & replies.index.isin(leads.index)
    replies.loc[no_lead, "lead_id"] = leads.loc[replies.index[no_lead], "lead_id"].to_numpy()
    replies["attribution"] = how
    replies["touch"] = pd.array(replies["touch"], dtype="Int64")
    return replies
