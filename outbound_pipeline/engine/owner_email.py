"""Owner notifications by email, through the email provider, when one is configured.

Each notification is sent at most once: its id is the provider's idempotency key and
`emailed_at` records success. Only recent notifications are emailed, so configuring a
provider later does not flood anyone with old news.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import duckdb

from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage, SendResult
from outbound_pipeline.store import events as events_store

RECENT = timedelta(days=2)


def email_owners(con_factory: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], provider: ChannelProvider | None,
                 now: datetime) -> int:
    """Email the owner every recent notification not emailed yet; returns how many went out."""
    if provider is None:
        return 0
    with con_factory() as con:
        pending = events_store.unsent_notifications(con)
    pending = pending[pending["created_at"] >= now - RECENT]
    if pending.empty:
        return 0
    results: list[SendResult] = []
    for row in pending.to_dict("records"):
        text = str(row["message"])
        message = OutboundMessage(
            send_id=str(row["notification_id"]), idempotency_key=str(row["notification_id"]), campaign_id=row["campaign_id"] or "", touch=0,
            lead_id=row["lead_id"] or "", channel="email", to=str(row["owner_email"]), subject=f"Reply: {text.split(':', 1)[0][:100]}",
            body=text, sent_at=now,
        )
        try:
            results.append(provider.send(message))
        except Exception:  # the next run tries again; the idempotency key keeps it to one email
            continue
    done = [r.send_id for r in results if r.status == "sent"]
    if done:
        with con_factory() as con:
            events_store.mark_emailed(con, done, now)
    return len(done)
