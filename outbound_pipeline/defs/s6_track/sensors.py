"""Sensors that bring events and replies in. None of them opens DuckDB.

- `landing_sensor` turns newly landed records into one ingestion run each tick; its
  cursor is the landing position, stored only once the run request is made.
- `inbound_poll_sensor` reads what webhooks can miss (Twilio's Messages list, Resend's
  received emails, the IMAP mailbox) and lands it; each source keeps its own place in the cursor, so a source
  that fails is asked again next tick from where it was.
- `tracking_sensor` asks the providers of every running or paused campaign with messages in flight for message
  statuses, in one run per tick; it reads campaign statuses from the instance (`defs.campaign_status`), and what
  is in flight from the last tracking run's metadata and the `sends` materialisations since.
"""


import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.campaign_status import campaign_states, skipped_summary
from outbound_pipeline.defs.resources import ChannelService, InboxService, PipelineClock
from outbound_pipeline.defs.s6_track.jobs import track_job
from outbound_pipeline.engine.landed import polled_records, received_email_records
from outbound_pipeline.providers.base import InboundSource, ReceivedEmails
from outbound_pipeline.providers.wire import naive_utc
from outbound_pipeline.store import landing

LANDING_BATCH = 5000  # records per ingestion run
FIRST_POLL_LOOKBACK = timedelta(hours=72)  # the attribution window: older replies could not be attributed anyway
Position = dict[str, Any]  # a polled source's place: {"since": ISO time, "seen": ids taken at exactly that time}


@dg.sensor(job=track_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request one run for the records landed since the cursor; the run reads exactly those (same start, same count)."""
    start = context.cursor or None
    records, end = landing.read_since(start, limit=LANDING_BATCH)  # raises on an unreadable area: the cursor stays put
    if not records:
        if end and end != start:
            context.update_cursor(end)  # only blank or torn lines were passed over
        return dg.SkipReason("nothing new in the landing area")
    config = {"from_cursor": start, "count": len(records), "to_cursor": end}
    context.update_cursor(end)
    return dg.RunRequest(run_key=f"landing:{start or 'origin'}:{end}", run_config={"ops": {"track": {"config": config}}},
                         tags={"outbound/landed_records": str(len(records))})


def _advance(state: Position | None, since: datetime, found: list[tuple[str, pd.Timestamp]]) -> Position:
    """The source's next position after finding `found` (id, received time) since `since`."""
    if not found:
        return state or {"since": since.isoformat(), "seen": []}
    latest = max(at for _, at in found)
    seen = [item_id for item_id, at in found if at == latest]
    if state and datetime.fromisoformat(state["since"]) == latest.to_pydatetime():
        seen = sorted(set(seen) | set(state.get("seen", [])))
    return {"since": latest.isoformat(), "seen": seen}


def _since(state: Position | None, now: datetime) -> datetime:
    return datetime.fromisoformat(state["since"]) if state else now - FIRST_POLL_LOOKBACK


def _messages_poll(source: InboundSource, state: Position | None, now: datetime) -> tuple[list[dict], Position]:
    """Inbound messages (Twilio's Messages list) as polled-reply records."""
    since = _since(state, now)
    found = source.poll_inbound(since, seen=(state or {}).get("seen", []))
    position = _advance(state, since, list(zip(found["reply_id"], found["received_at"], strict=True)) if not found.empty else [])
    return polled_records(found), position


def _emails_poll(source: ReceivedEmails, state: Position | None, now: datetime) -> tuple[list[dict], Position]:
    """Received emails (Resend's receiving list) as `email.received` records, fetched in full at ingestion."""
    since = _since(state, now)
    found = source.list_received(since, seen=(state or {}).get("seen", []))
    stamps = [naive_utc(e["created_at"]) for e in found]  # naive UTC, like the other sources' positions
    position = _advance(state, since, [(str(e["id"]), at) for e, at in zip(found, stamps, strict=True) if at is not None])
    return received_email_records(found), position


@dg.sensor(minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING)
def inbound_poll_sensor(context: dg.SensorEvaluationContext, channels: ChannelService, inbox: InboxService,
                        clock: PipelineClock) -> dg.SkipReason:
    """Poll Twilio's inbound messages, Resend's received emails and the IMAP mailbox; land what they hold for
    `landing_sensor` to ingest. Each source has its own cursor key ("twilio", "resend", "imap")."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    landed, failed = 0, []
    sources: list[tuple[str, Callable[[], tuple[list[dict], Any]]]] = []
    if channels.twilio_account_sid and channels.twilio_auth_token:
        twilio = channels.by_name("twilio")
        if isinstance(twilio, InboundSource):
            sources.append(("twilio", lambda: _messages_poll(twilio, cursor.get("twilio"), clock.now())))
    if channels.resend_api_key:
        resend = channels.by_name("resend")
        if isinstance(resend, ReceivedEmails):
            sources.append(("resend", lambda: _emails_poll(resend, cursor.get("resend"), clock.now())))
    if inbox.configured:
        def imap_poll() -> tuple[list[dict], Any]:
            found, position = inbox.inbox().poll(cursor.get("imap"), clock.now())
            return polled_records(found), position
        sources.append(("imap", imap_poll))
    for name, poll in sources:
        try:
            found, position = poll()
            for record in found:
                landing.append(record)
        except Exception as exc:  # this source is asked again next tick from the same place
            context.log.warning(f"polling {name} failed, will retry from the same place: {type(exc).__name__}: {exc}")
            failed.append(name)
            continue
        landed += len(found)
        cursor[name] = position
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if not sources:
        return dg.SkipReason("no inbound source configured (Twilio credentials, RESEND_API_KEY, OUTBOUND_IMAP_*)")
    return dg.SkipReason(f"landed {landed} polled replies" + (f"; failed: {', '.join(failed)}" if failed else ""))


TRACKED_EVENTS = dg.AssetKey("delivery_events")
SENDS = dg.AssetKey("sends")
POLL_HISTORY = 200  # tracking materialisations looked through for the last polling run (landing runs come between)


def _last_poll(instance: dg.DagsterInstance) -> tuple[int, set[str], set[str]] | None:
    """(storage id, campaigns polled, campaigns left in flight) of the latest tracking run that polled providers."""
    records = instance.fetch_materializations(TRACKED_EVENTS, limit=POLL_HISTORY, ascending=False).records
    for record in records:
        event = record.asset_materialization
        meta = event.metadata if event is not None else {}
        if "in_flight_campaigns" in meta and "polled_campaigns" in meta:
            return record.storage_id, set(meta["polled_campaigns"].value), set(meta["in_flight_campaigns"].value)  # type: ignore[arg-type]
    return None


def _sent_since(instance: dg.DagsterInstance, storage_id: int) -> set[str]:
    """Campaigns whose `sends` were materialised after `storage_id` (touch partition `campaign.tN`)."""
    flt = dg.AssetRecordsFilter(asset_key=SENDS, after_storage_id=storage_id)
    return {str(r.partition_key).rsplit(".", 1)[0] for r in instance.fetch_materializations(flt, limit=10_000).records if r.partition_key}


def quiet_campaigns(instance: dg.DagsterInstance, campaigns: list[str]) -> list[str]:
    """Of `campaigns`, those the last polling run found with nothing in flight and that have sent nothing since."""
    last = _last_poll(instance)
    if last is None:
        return []
    storage_id, polled, flying = last
    sent = _sent_since(instance, storage_id)
    return [c for c in campaigns if c in polled and c not in flying and c not in sent]


@dg.sensor(job=track_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def tracking_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Every five minutes, one run polling the providers of every running or paused campaign for delivery events.

    Campaigns never launched, stopped or completed are left out (named in the log); their replies still arrive
    through webhooks and inbound polling.
    """
    states = campaign_states(context.instance)
    campaigns = [s.campaign_id for s in states if s.tracked]
    quiet = quiet_campaigns(context.instance, campaigns)
    if quiet:
        context.log.info(f"nothing in flight, not polled: {', '.join(quiet)}")
        campaigns = [c for c in campaigns if c not in quiet]
    skipped = [s for s in states if not s.tracked]
    if skipped:
        context.log.info(f"not tracked, not running or paused: {skipped_summary(skipped)}")
    if not campaigns:
        if quiet:
            return dg.SkipReason(f"nothing in flight in {', '.join(quiet)}")
        return dg.SkipReason(f"no running or paused campaign to track{': left out ' + skipped_summary(skipped) if skipped else ''}")
    bucket = int(context.cursor or 0) + 1
    context.update_cursor(str(bucket))
    return dg.RunRequest(run_key=f"track:{bucket}", run_config={"ops": {"track": {"config": {"campaigns": campaigns}}}})
