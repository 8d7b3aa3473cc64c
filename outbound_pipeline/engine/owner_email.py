"""Owner notifications by email, through the email provider, when one is configured.

Each notification is sent at most once: its id is the provider's idempotency key and
`emailed_at` records success. Only recent notifications are emailed, so configuring a
provider later does not flood anyone with old news.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage, SendResult
from outbound_pipeline.store.warehouse import update_from

RECENT = timedelta(days=2)


def unsent(con) -> pd.DataFrame:
    return con.execute("""
        SELECT notification_id, campaign_id, lead_id, owner_email, message, created_at FROM notifications
        WHERE emailed_at IS NULL AND owner_email IS NOT NULL ORDER BY created_at, notification_id
    """).df()


def email_owners(con_factory: Callable, provider: ChannelProvider | None, now: datetime) -> int:
    """Email the owner every recent notification not emailed yet; returns how many went out."""
    if provider is None:
        return 0
    with con_factory() as con:
        pending = unsent(con)
    pending = pending[pending["created_at"] >= now - RECENT]
    if pending.empty:
        return 0
    results: list[SendResult] = []
    for row in pending.itertuples(index=False):
        message = OutboundMessage(
            send_id=row.notification_id, idempotency_key=row.notification_id, campaign_id=row.campaign_id or "", touch=0,
            lead_id=row.lead_id or "", channel="email", to=row.owner_email, subject=f"Reply: {row.message.split(':', 1)[0][:100]}",
            body=row.message, sent_at=now,
        )
        try:
            results.append(provider.send(message))
        except Exception:  # the next run tries again; the idempotency key keeps it to one email
            continue
    done = pd.DataFrame({"notification_id": [r.send_id for r in results if r.status == "sent"], "emailed_at": now})
    with con_factory() as con:
        update_from(con, "notifications", done, "notification_id", ["emailed_at"])
    return len(done)
