"""One batch of events and replies, from raw frames to stored rows and reactions.

Shared by the per-campaign `track` asset (provider polling) and the `landed_records`
asset (webhooks and polled inboxes): attribute (read), classify and compose (no
connection open while a provider is called), then store and react in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from outbound_pipeline.engine.answers import draft_answers
from outbound_pipeline.engine.attribution import attribute_events, attribute_replies
from outbound_pipeline.engine.ingest import IngestStats, classify, new_replies, replies_needing_answers, store_and_react
from outbound_pipeline.engine.owner_email import email_owners
from outbound_pipeline.providers.base import ChannelProvider, Composer, IntentClassifier
from outbound_pipeline.store.warehouse import insert_new


def process_batch(con_factory: Callable, events: pd.DataFrame, replies: pd.DataFrame, now: datetime, intent: IntentClassifier,
                  composer: Composer, owner_email_provider: ChannelProvider | None = None, max_concurrency: int = 4) -> IngestStats:
    """Store a batch once and apply everything it implies; safe to run again on the same batch."""
    with con_factory() as con:
        events = attribute_events(con, events) if not events.empty else events
        replies = attribute_replies(con, new_replies(con, replies)) if not replies.empty else replies
    replies = classify(replies, intent.classify, max_concurrency)
    with con_factory() as con:
        con.execute("BEGIN")
        try:
            stats = store_and_react(con, events, replies, now)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        pending = replies_needing_answers(con)
    answers = draft_answers(pending, composer, now, max_concurrency)
    if not answers.empty:
        with con_factory() as con:
            stats.answers_drafted = insert_new(con, "drafts", answers)
    stats.owners_emailed = email_owners(con_factory, owner_email_provider, now)
    return stats


def stats_metadata(stats: IngestStats) -> dict[str, int]:
    return {k: int(v) for k, v in vars(stats).items()}
