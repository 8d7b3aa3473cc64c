"""Stage 6, track: records from the landing area (webhooks, polled inboxes) into delivery_events and replies."""


import json

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.resources import ChannelService, ComposeService, IntentService, PipelineClock, Warehouse
from outbound_pipeline.engine.inbound_email import Fetch, resend_inbound
from outbound_pipeline.engine.tracking import process_batch, stats_metadata
from outbound_pipeline.store import landing
from outbound_pipeline.store.schema import columns

GROUP = "s6_track"
POLLED_REPLY_COLUMNS = [c for c in columns("replies") if c not in ("ingested_at", "attribution")]


class LandingBatch(dg.Config):
    """Which landed records to ingest. The landing sensor fills this in; empty means everything landed so far."""

    from_cursor: str | None = None
    count: int | None = None
    to_cursor: str | None = None


def polled_records(replies: pd.DataFrame) -> list[dict]:
    """Landing records for polled replies (the row itself is the payload)."""
    rows = replies.reindex(columns=POLLED_REPLY_COLUMNS).astype(object).where(replies.reindex(columns=POLLED_REPLY_COLUMNS).notna(), None)
    return [landing.make_record("polled_reply", f"{r['provider']}:{r['reply_id']}", json.loads(json.dumps(r, default=str)))
            for r in rows.to_dict("records")]


def landed_frames(records: list[dict], fetch_received: Fetch | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(events, replies, unread inbound emails) of landed records: webhooks through `landing.to_frames`,
    Resend inbound emails (fetched in full with `fetch_received` when the webhook lacks the body),
    polled replies as they were stored."""
    events, replies = landing.to_frames(records)
    polled = [r["payload"] for r in records if r.get("source") == "polled_reply" and isinstance(r.get("payload"), dict)]
    extras = []
    if polled:
        extra = pd.DataFrame(polled).reindex(columns=POLLED_REPLY_COLUMNS)
        extra["received_at"] = pd.to_datetime(extra["received_at"]).astype("datetime64[ns]")
        extra["touch"] = pd.array(pd.to_numeric(extra["touch"]), dtype="Int64")
        extras.append(extra)
    inbound, unread = resend_inbound(records, fetch_received)
    if not inbound.empty:
        extras.append(inbound.reindex(columns=POLLED_REPLY_COLUMNS))
    if extras:
        parts = ([replies.reindex(columns=POLLED_REPLY_COLUMNS)] if not replies.empty else []) + extras
        replies = landing.dedupe(pd.concat(parts, ignore_index=True), "reply_id")
    return events, replies, unread


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, deps=["sends"],
          description="Webhook callbacks and polled replies from the landing area, ingested into delivery_events and replies.")
def landed_records(context: dg.AssetExecutionContext, config: LandingBatch, warehouse: Warehouse, intent: IntentService,
                   composer: ComposeService, channels: ChannelService, clock: PipelineClock) -> dg.MaterializeResult:
    """Ingest one batch of landed records exactly as the sensor saw it (same start, same count)."""
    records, end = landing.read_since(config.from_cursor, limit=config.count)
    if config.to_cursor and end != config.to_cursor:
        raise dg.Failure(f"the landing area changed under this batch: read up to {end}, the sensor saw {config.to_cursor}")
    resend = channels.by_name("resend") if channels.resend_api_key else None
    events, replies, unread = landed_frames(records, resend.get_received if resend is not None else None)
    stats = process_batch(warehouse.connect, events, replies, clock.now(), intent.provider, composer.provider, resend,
                          intent.max_concurrency)
    context.log.info(f"{len(records)} landed records: {stats.events} new events, {stats.replies} new replies")
    if unread:  # everything else is stored; re-executing this run (same records) reads these again, and stores the rest once
        raise dg.Failure(description=f"{len(unread)} inbound emails could not be read; re-execute this run once fixed",
                         metadata={"unread": dg.MetadataValue.json(unread[:20]), **stats_metadata(stats)})
    return dg.MaterializeResult(metadata={"records": len(records), "from_cursor": config.from_cursor or "", "to_cursor": end or "",
                                          **stats_metadata(stats)})
