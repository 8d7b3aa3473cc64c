"""Stage 6, track: delivery events and replies in (provider polling and the landing log); the campaigns react."""

from typing import Any

import dagster as dg

from outbound_pipeline.defs.resources import ChannelService, IntentService, PipelineClock, Warehouse
from outbound_pipeline.engine.tracking import LandingChanged, gather, in_flight, process_batch, stats_metadata
from outbound_pipeline.providers.base import ChannelProvider, ReceivedEmails
from outbound_pipeline.store import events as events_store

GROUP = "s6_track"
# What tracking reads: sends to attribute events and replies; leads, recipients and campaigns to react to them.
READS = ["sends", "leads", "recipients", "campaigns"]
REACTIONS = "Written with delivery_events and replies, in the same transaction, by `track`."


class TrackBatch(dg.Config):
    """What one tracking run ingests: the campaigns whose sent messages are polled from their providers, and a batch
    of the landing log (the landing sensor fills in `from_cursor`, `count`, `to_cursor`). Either may be left out;
    with none of the landing fields set, no landed record is read."""

    campaigns: list[str] = []
    from_cursor: str | None = None
    count: int | None = None
    to_cursor: str | None = None

    def landing_batch(self) -> tuple[str | None, int | None, str | None] | None:
        if self.from_cursor is None and self.count is None and self.to_cursor is None:
            return None
        return self.from_cursor, self.count, self.to_cursor


def _email_provider(channels: ChannelService) -> ChannelProvider | None:
    """The email provider when a real one is configured: it fetches received emails and emails owners."""
    return channels.by_name("resend") if channels.resend_api_key else None


@dg.multi_asset(
    name="track",
    specs=[
        dg.AssetSpec("delivery_events", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="What happened to each message: sent, delivered, opened, read, bounced, opted out, failed."),
        dg.AssetSpec("replies", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="Inbound replies with their intent; a reply ends the lead's sequence and notifies its owner."),
        dg.AssetSpec("suppressions", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="Leads and addresses never to contact again (opt-outs, hard bounces, complaints). " + REACTIONS),
        dg.AssetSpec("inbound_windows", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="Each lead's latest inbound WhatsApp message (the 24-hour window). " + REACTIONS),
        dg.AssetSpec("tickets", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="A ticket per reply that needs a person (human reply mode). " + REACTIONS),
        dg.AssetSpec("notifications", deps=READS, group_name=GROUP, kinds={"duckdb"},
                     description="One notification per reply for the lead's owner, emailed when an email provider is set. " + REACTIONS),
    ],
    pool="track",  # not `duckdb`: providers are polled with no connection open; one tracking step at a time
    can_subset=True,
)
def track(context: dg.AssetExecutionContext, config: TrackBatch, warehouse: Warehouse, channels: ChannelService, intent: IntentService,
          clock: PipelineClock):
    """Poll the campaigns' providers and read the landing batch; store what is new; stop, pause, suppress and notify."""
    now = clock.now()
    email = _email_provider(channels)
    received = email if isinstance(email, ReceivedEmails) else None
    try:
        batch = gather(warehouse.connect, config.campaigns, channels.by_name, now, config.landing_batch(), received)
    except LandingChanged as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    stats = process_batch(warehouse.connect, batch.events, batch.replies, now, intent.provider, email, intent.max_concurrency)
    context.log.info(f"{batch.records} landed records, {len(config.campaigns)} campaigns polled: "
                     f"{stats.events} new events, {stats.replies} new replies")
    if batch.unread:  # everything else is stored; re-executing this run (same records) reads these again, and stores the rest once
        raise dg.Failure(description=f"{len(batch.unread)} inbound emails could not be read; re-execute this run once fixed",
                         allow_retries=False, metadata={"unread": dg.MetadataValue.json(list(batch.unread[:20])), **stats_metadata(stats)})
    with warehouse.connect() as con:
        events_total, replies_total = events_store.totals(con)
    landing = {"records": batch.records, "from_cursor": config.from_cursor or "", "to_cursor": batch.to_cursor or ""}
    polled: dict[str, Any] = {}
    if config.campaigns:  # what the tracking sensor reads: campaigns with nothing left in flight get no run until they send again
        flying = in_flight(warehouse.connect, config.campaigns, channels.by_name, now)
        polled = {"polled_campaigns": dg.MetadataValue.json(sorted(config.campaigns)), "in_flight_campaigns": dg.MetadataValue.json(flying)}
    metadata: dict[str, dict[str, Any]] = {
        "delivery_events": {"campaigns_polled": len(config.campaigns), **landing, **polled, "new_events": stats.events, "events_total": events_total,
                            "leads_opted_out": stats.opted_out, "leads_invalid": stats.bounced, "campaigns_paused": stats.paused_campaigns},
        "replies": {"new_replies": stats.replies, "replies_total": replies_total, "sequences_stopped": stats.stopped},
        "suppressions": {"suppressions_added": stats.suppressed},
        "inbound_windows": {},
        "tickets": {"tickets_opened": stats.tickets},
        "notifications": {"owners_notified": stats.notified, "owners_emailed": stats.owners_emailed},
    }
    for key, values in metadata.items():
        if dg.AssetKey(key) in context.selected_asset_keys:  # a run may select only some of the tables (runner.TRACK)
            yield dg.MaterializeResult(asset_key=key, metadata=values)
