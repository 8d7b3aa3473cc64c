"""The demo's headline metrics recomputed from the raw tables in pandas, without the metrics SQL or its shared definitions."""

from __future__ import annotations

import duckdb


def recompute(con: duckdb.DuckDBPyConnection, campaign_id: str) -> dict[str, float | int | None]:
    """Whole-campaign counts and rates, each written out from the seed's definition."""
    sends = con.execute("SELECT * FROM sends WHERE campaign_id = ? AND touch > 0", [campaign_id]).df()
    events = con.execute("SELECT send_id, event_type, occurred_at, detail FROM delivery_events WHERE campaign_id = ?", [campaign_id]).df()
    replies = con.execute("SELECT * FROM replies WHERE campaign_id = ? AND send_id IS NOT NULL", [campaign_id]).df()
    replies = replies[replies["send_id"].isin(set(sends["send_id"]))]

    def with_event(*types: str) -> set[str]:
        return set(events.loc[events["event_type"].isin(types), "send_id"])

    handed = sends[sends["status"] == "sent"]
    delivered_ids = with_event("delivered", "opened", "read", "clicked")
    delivered = handed[handed["send_id"].isin(delivered_ids)]
    emails = handed[handed["channel"] == "email"]
    emails_delivered = emails[emails["send_id"].isin(delivered_ids)]
    answered = replies[replies["intent"] != "opt_out"]
    reached = set(delivered["lead_id"]) | set(sends.loc[sends["send_id"].isin(set(replies["send_id"])), "lead_id"])
    replied = set(answered["lead_id"])
    to_cta = set(answered.loc[answered["intent"] == "interested", "lead_id"])
    opted_out = set(replies.loc[replies["intent"] == "opt_out", "lead_id"]) | set(sends.loc[sends["send_id"].isin(with_event("opted_out")), "lead_id"])

    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    # a human open: an open or click more than 10 s after the delivery receipt, naming no image proxy
    receipts = events[events["event_type"] == "delivered"].groupby("send_id")["occurred_at"].min()
    opens = events[events["event_type"].isin(["opened", "clicked"]) & ~events["detail"].fillna("").str.contains("Proxy|\"Mozilla/5.0\"")]
    opens = opens.assign(receipt=opens["send_id"].map(receipts))
    human_ids = set(opens.loc[(opens["occurred_at"] - opens["receipt"]).dt.total_seconds() >= 10, "send_id"])

    first = answered.sort_values("received_at").drop_duplicates("lead_id").merge(sends[["send_id", "sent_at"]], on="send_id")
    waits = (first["received_at"] - first["sent_at"]).dt.total_seconds()
    return {
        "sent": len(handed), "delivered": len(delivered), "leads_reached": len(reached), "replied": len(replied),
        "replied_to_cta": len(to_cta), "opted_out": len(opted_out),
        "delivery_rate": rate(len(delivered), len(handed)),
        "open_rate": rate(int(emails_delivered["send_id"].isin(with_event("opened", "clicked")).sum()), len(emails_delivered)),
        "human_open_rate": rate(int(emails_delivered["send_id"].isin(human_ids).sum()), len(emails_delivered)),
        "reply_rate": rate(len(replied), len(reached)),
        "reply_to_cta_rate": rate(len(to_cta), len(replied)),
        "opt_out_rate": rate(len(opted_out), len(reached)),
        "bounce_rate": rate(int(emails["send_id"].isin(with_event("bounced")).sum()), len(emails)),
        "response_median_s": float(waits.median()) if len(waits) else None,
    }
