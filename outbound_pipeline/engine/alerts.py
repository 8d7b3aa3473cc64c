"""Alerts on the campaign metrics, raised to the campaign's owner: kept in `alerts`, emailed when an email provider is set.

`alerts` is the owner's notification of a figure past its line (complaint rate above 0.3 %, opt-out, bounce,
failure, a delivery drop: `domain.metrics.alerts`). It is written by the metrics stage alone, so `notifications`
(replies, written by tracking) keeps its one writer. An alert is raised at most once per campaign, metric and day
while the figure stays past its line; each is emailed once (its id is the provider's idempotency key, `emailed_at`
records success), and only recent ones, so configuring a provider later does not flood the owner with old news.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from outbound_pipeline.domain.metrics import Alert, alerts
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage
from outbound_pipeline.store.metrics import alert_counts, alerts_to_email, campaign_owners, mark_alerts_emailed, record_alerts

RECENT = timedelta(days=2)
ALERT_COLUMNS = ["alert_id", "campaign_id", "metric", "value", "threshold", "message", "owner_email", "raised_at", "emailed_at"]


@dataclass(frozen=True)
class AlertRun:
    """What one pass found: every alert standing now, how many were new today, how many owners were emailed."""

    standing: tuple[Alert, ...]
    new: int
    emailed: int


def alert_frame(found: list[Alert], owners: dict[str, str | None], now: datetime) -> pd.DataFrame:
    """Rows for `alerts`: one per campaign, metric and day (so a figure that stays past its line is raised once a day)."""
    rows = [{"alert_id": stable_id("alr", a.campaign_id, a.metric, now.date().isoformat()), "campaign_id": a.campaign_id,
             "metric": a.metric, "value": float(a.value), "threshold": float(a.threshold), "message": a.message,
             "owner_email": owners.get(a.campaign_id), "raised_at": now, "emailed_at": pd.NaT} for a in found]
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


def raise_alerts(connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], now: datetime,
                 email: ChannelProvider | None = None) -> AlertRun:
    """Judge every campaign's figures, keep the new alerts, and email their owners (no connection open while emailing)."""
    with connect() as con:
        current, previous = alert_counts(con)
        found = [a for campaign, counts in sorted(current.items()) for a in alerts(campaign, counts, previous.get(campaign))]
        new = record_alerts(con, alert_frame(found, campaign_owners(con), now))
        pending = alerts_to_email(con, now - RECENT) if email is not None else pd.DataFrame()
    done = _email(pending, email, now) if email is not None and not pending.empty else []
    if done:
        with connect() as con:
            mark_alerts_emailed(con, done, now)
    return AlertRun(standing=tuple(found), new=new, emailed=len(done))


def _email(pending: pd.DataFrame, email: ChannelProvider, now: datetime) -> list[str]:
    done = []
    for row in pending.to_dict("records"):
        message = OutboundMessage(send_id=str(row["alert_id"]), idempotency_key=str(row["alert_id"]), campaign_id=str(row["campaign_id"]),
                                  touch=0, lead_id="", channel="email", to=str(row["owner_email"]),
                                  subject=f"Alert: {row['campaign_id']} {str(row['metric']).replace('_', ' ')}"[:120],
                                  body=str(row["message"]), sent_at=now)
        try:
            result = email.send(message)
        except Exception:  # the next pass tries again; the idempotency key keeps it to one email
            continue
        if result.status == "sent":
            done.append(str(row["alert_id"]))
    return done
