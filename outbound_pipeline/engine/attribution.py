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

from outbound_pipeline.store import events as events_store

PHONE_WINDOW_HOURS = 72  # a WhatsApp/SMS reply belongs to a send to that number this recent
SEND_FIELDS = ["send_id", "campaign_id", "touch", "lead_id"]


def _provider_message_id(detail: object) -> str | None:
    try:
        data = json.loads(detail) if isinstance(detail, str) else {}
    except json.JSONDecodeError:
        return None
    value = data.get("provider_message_id") or data.get("sid") if isinstance(data, dict) else None
    return str(value) if value else None


def attribute_events(con: duckdb.DuckDBPyConnection, events: pd.DataFrame) -> pd.DataFrame:
    """Fill send, campaign, touch and lead from `sends`, by send id or provider message id."""
    if events.empty:
        return events
    events = events.reset_index(drop=True).copy()
    keys = pd.DataFrame({"send_id": events["send_id"].astype(object), "pmid": events["detail"].map(_provider_message_id)})
    keys = keys.astype({"send_id": "string", "pmid": "string"})
    found = events_store.sends_for_events(con, keys)
    if found.empty:
        return events
    hit = events.index.isin(found.index)
    for col in SEND_FIELDS:
        events[col] = events[col].astype(object)
        events.loc[hit, col] = found.loc[events.index[hit], col].to_numpy()
    events.loc[hit, "channel"] = found.loc[events.index[hit], "channel"].to_numpy()
    events["touch"] = events["touch"].astype("Int64")
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
    refs_frame = ref_keys.astype({"ref": "string"}) if not ref_keys.empty else pd.DataFrame({"i": pd.Series(dtype="int64"),
                                                                                              "ref": pd.Series(dtype="string")})
    candidates = events_store.reply_candidates(con, keys, refs_frame, PHONE_WINDOW_HOURS)
    known = events_store.sends_of_replies(con, keys[["i"]].assign(send_id=replies["send_id"].astype("string")))
    leads = events_store.leads_by_address(con, keys)
    thread = _latest(candidates[candidates["how"] == "thread"])
    other = _latest(candidates[candidates["how"] != "thread"])
    best = pd.concat([thread, other[~other.index.isin(thread.index)]])
    how = pd.Series("none", index=replies.index, dtype=object)
    for col in SEND_FIELDS:
        replies.loc[best.index, col] = best[col].to_numpy()
    how.loc[best.index] = best["how"].to_numpy()
    for col in ("campaign_id", "touch", "lead_id"):
        replies.loc[known.index, col] = known[col].to_numpy()
    how.loc[known.index] = "send"
    how.loc[replies["send_id"].notna() & (how == "none")] = "send"
    no_lead = replies["lead_id"].isna() & replies.index.isin(leads.index)
    replies.loc[no_lead, "lead_id"] = leads.loc[replies.index[no_lead], "lead_id"].to_numpy()
    replies["attribution"] = how
    replies["touch"] = replies["touch"].astype("Int64")
    return replies
