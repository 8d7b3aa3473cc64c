"""Stage 6, track: records from the landing area (webhooks, polled inboxes) into delivery_events and replies."""


import json

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.track.process import process_batch, stats_metadata
from outbound_pipeline.resources import ChannelService, ComposeService, IntentService, PipelineClock, Warehouse
from outbound_pipeline.store.schema import columns
from outbound_pipeline.webhooks import landing

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


def landed_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, replies) of landed records: webhooks through `landing.to_frames`, polled replies as they were stored."""
    events, replies = landing.to_frames(records)
    polled = [r["payload"] for r in records if r.get("source") == "polled_reply" and isinstance(r.get("payload"), dict)]
    if polled:
        extra = pd.DataFrame(polled).reindex(columns=POLLED_REPLY_COLUMNS)
        extra["received_at"] = pd.to_datetime(extra["received_at"]).astype("datetime64[ns]")
        extra["touch"] = pd.array(pd.to_numeric(extra["touch"]), dtype="Int64")
        replies = pd.concat([replies.reindex(columns=POLLED_REPLY_COLUMNS), extra], ignore_index=True) if not replies.empty else extra
        replies = landing.dedupe(replies, "reply_id")
    return events, replies


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, deps=["sends"],
          description="Webhook callbacks and polled replies from the landing area, ingested into delivery_events and replies.")
def landed_records(context: dg.AssetExecutionContext, config: LandingBatch, warehouse: Warehouse, intent: IntentService,
                   composer: ComposeService, channels: ChannelService, clock: PipelineClock) -> dg.MaterializeResult:
    """Ingest one batch of landed records exactly as the sensor saw it (same start, same count)."""
    records, end = landing.read_since(config.from_cursor, limit=config.count)
    if config.to_cursor and end != config.to_cursor:
        raise dg.Failure(f"the landing area changed under this batch: read up to {end}, the sensor saw {config.to_cursor}")
    events, replies = landed_frames(records)
    owner_mail = channels.by_name("resend") if channels.resend_api_key else None
    stats = process_batch(warehouse.connect, events, replies, clock.now(), intent.provider, composer.provider, owner_mail,
                          intent.max_concurrency)
    context.log.info(f"{len(records)} landed records: {stats.events} new events, {stats.replies} new replies")
    return dg.MaterializeResult(metadata={"records": len(records), "from_cursor": config.from_cursor or "", "to_cursor": end or "",
                                          **stats_metadata(stats)})
