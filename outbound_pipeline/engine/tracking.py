"""One tracking batch, from raw frames to stored rows and reactions.

A batch gathers what the providers report for the campaigns' messages (polling) and what
landed from webhooks and polled inboxes. It is attributed (a read), classified (no
connection open while a provider is called), then stored with every reaction in one
transaction, and finally owners are emailed their notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.engine.attribution import attribute_events, attribute_replies
from outbound_pipeline.engine.ingest import IngestStats, classify, new_replies, poll_providers, store_and_react
from outbound_pipeline.engine.landed import landed_frames
from outbound_pipeline.engine.owner_email import email_owners
from outbound_pipeline.providers.base import ChannelProvider, IntentClassifier, ReceivedEmails
from outbound_pipeline.store import events as events_store
from outbound_pipeline.store import landing

ConnectionFactory = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass
class Gathered:
    """A batch before ingestion: events and replies, plus what the landing read saw."""

    events: pd.DataFrame
    replies: pd.DataFrame
    records: int = 0  # landed records read
    to_cursor: str | None = None  # the landing position after them
    unread: tuple[str, ...] = ()  # inbound emails that could not be fetched (not in `replies`)


class LandingChanged(RuntimeError):
    """The landing log no longer holds the batch the sensor saw; nothing was ingested."""


def _concat(frames: Sequence[pd.DataFrame], key: str) -> pd.DataFrame:
    parts = [f for f in frames if not f.empty]
    if not parts:
        return pd.DataFrame()
    return parts[0] if len(parts) == 1 else landing.dedupe(pd.concat(parts, ignore_index=True), key)


def final_rules(names: Sequence[str], provider_named: Callable[[str], ChannelProvider], now: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What each provider says about when a message is done: (final events per channel, settled-before time).

    A provider declares `final_events` ({channel: event types}, `replied` for a stored reply) and `settles_within`
    (a timedelta: it reports nothing on older messages; zero: it reports nothing by polling at all).
    """
    final_rows: list[tuple[str, str, str]] = []
    settled_rows: list[tuple[str, datetime]] = []
    for name in names:
        try:
            provider = provider_named(name)
        except (KeyError, ValueError):  # a provider no longer configured: its messages are polled as before, and fail there
            continue
        for channel, events in (getattr(provider, "final_events", None) or {}).items():
            final_rows += [(name, channel, event) for event in sorted(events)]
        settles = getattr(provider, "settles_within", None)
        if isinstance(settles, timedelta):
            settled_rows.append((name, now - settles if settles > timedelta(0) else datetime.max))
    final = pd.DataFrame(final_rows, columns=["provider", "channel", "event_type"]).astype("string")
    settled = pd.DataFrame({"provider": pd.Series([r[0] for r in settled_rows], dtype="string"),
                            "before": pd.Series([r[1] for r in settled_rows], dtype="datetime64[us]")})
    return final, settled


def in_flight(connect: ConnectionFactory, campaigns: Sequence[str], provider_named: Callable[[str], ChannelProvider],
              now: datetime) -> list[str]:
    """The campaigns with a message tracking still polls: the tracking sensor requests no run for the others."""
    if not campaigns:
        return []
    with connect() as con:
        names = events_store.providers_of(con, campaigns)
        final, settled = final_rules(names, provider_named, now)
        return events_store.campaigns_in_flight(con, campaigns, now - timedelta(days=settings.tracking_horizon_days()), final, settled)


def gather(connect: ConnectionFactory, campaigns: Sequence[str], provider_named: Callable[[str], ChannelProvider], now: datetime,
           landing_batch: tuple[str | None, int | None, str | None] | None, received: ReceivedEmails | None) -> Gathered:
    """Poll the campaigns' providers and read the landing batch `(from_cursor, count, to_cursor)`, when given.

    The batch is read exactly as the sensor saw it: same start, same count, and it must end where the sensor said.
    """
    polled_events, polled_replies = pd.DataFrame(), pd.DataFrame()
    if campaigns:
        with connect() as con:
            final, settled = final_rules(events_store.providers_of(con, campaigns), provider_named, now)
            sent = events_store.polled_sends(con, campaigns, since=now - timedelta(days=settings.tracking_horizon_days()),
                                             final=final, settled=settled)
        if not sent.empty:
            polled_events, polled_replies = poll_providers(sent, provider_named, now)
        if not polled_events.empty:  # a message in flight reports its earlier events again: only what is new goes on
            with connect() as con:
                known = events_store.known_event_ids(con, polled_events["event_id"])
            polled_events = polled_events[~polled_events["event_id"].isin(known)].reset_index(drop=True)
    if landing_batch is None:
        return Gathered(polled_events, polled_replies)
    from_cursor, count, to_cursor = landing_batch
    records, end = landing.read_since(from_cursor, limit=count)
    if to_cursor and end != to_cursor:
        raise LandingChanged(f"the landing area changed under this batch: read up to {end}, the sensor saw {to_cursor}")
    landed_events, landed_replies, unread = landed_frames(records, received)
    return Gathered(events=_concat([polled_events, landed_events], "event_id"), replies=_concat([polled_replies, landed_replies], "reply_id"),
                    records=len(records), to_cursor=end, unread=tuple(unread))


def process_batch(connect: ConnectionFactory, events: pd.DataFrame, replies: pd.DataFrame, now: datetime, intent: IntentClassifier,
                  owner_email_provider: ChannelProvider | None = None, max_concurrency: int = 4) -> IngestStats:
    """Store a batch once and apply everything it implies; safe to run again on the same batch."""
    with connect() as con:
        events = attribute_events(con, events) if not events.empty else events
        replies = attribute_replies(con, new_replies(con, replies)) if not replies.empty else replies
    replies = classify(replies, intent.classify, max_concurrency)
    with connect() as con:
        con.execute("BEGIN")
        try:
            stats = store_and_react(con, events, replies, now)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    stats.owners_emailed = email_owners(connect, owner_email_provider, now)
    return stats


def stats_metadata(stats: IngestStats) -> dict[str, int]:
    """The batch's counts, for run metadata."""
    return {k: int(v) for k, v in vars(stats).items()}
