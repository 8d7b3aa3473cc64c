"""Sensors that bring events and replies in. None of them opens DuckDB.

- `landing_sensor` turns newly landed records into one ingestion run each tick; its
  cursor is the landing position, stored only once the run request is made.
- `inbound_poll_sensor` reads what webhooks can miss (Twilio's Messages list, Resend's
  received emails, the IMAP mailbox) and lands it; each source keeps its own place in the cursor, so a source
  that fails is asked again next tick from where it was.
- `tracking_sensor` asks each campaign's providers for message statuses.
"""


import json
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.resources import ChannelService, InboxService, PipelineClock
from outbound_pipeline.defs.s6_track.jobs import landing_job, track_job
from outbound_pipeline.defs.s6_track.landed import polled_records
from outbound_pipeline.store import landing

LANDING_BATCH = 5000  # records per ingestion run
FIRST_POLL_LOOKBACK = timedelta(hours=72)  # the attribution window: older replies could not be attributed anyway

@dg.sensor(job=landing_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext):
    """Request one run for the records landed since the cursor; the run reads exactly those (same start, same count)."""
    start = context.cursor or None
    records, end = landing.read_since(start, limit=LANDING_BATCH)  # raises on an unreadable area: the cursor stays put
    if not records:
        if end and end != start:
            context.update_cursor(end)  # only blank or torn lines were passed over
        return dg.SkipReason("nothing new in the landing area")
    config = {"from_cursor": start, "count": len(records), "to_cursor": end}
    context.update_cursor(end)
    return dg.RunRequest(run_key=f"landing:{start or 'origin'}:{end}", run_config={"ops": {"landed_records": {"config": config}}},
                         tags={"outbound/landed_records": str(len(records))})


def _records(polled: tuple[pd.DataFrame, object]) -> tuple[list[dict], object]:
    """Polled replies (a replies frame) as landing records, with the source's new position."""
    found, position = polled
    return polled_records(found), position


def _twilio_poll(channels: ChannelService, state: dict | None, now: datetime) -> tuple[pd.DataFrame, dict]:
    since = datetime.fromisoformat(state["since"]) if state else now - FIRST_POLL_LOOKBACK
    found = channels.by_name("twilio").poll_inbound(since, seen=(state or {}).get("seen", []))
    if found.empty:
        return found, state or {"since": since.isoformat(), "seen": []}
    latest = found["received_at"].max()
    seen = found.loc[found["received_at"] == latest, "reply_id"].tolist()
    if state and datetime.fromisoformat(state["since"]) == latest.to_pydatetime():
        seen = sorted(set(seen) | set(state.get("seen", [])))
    return found, {"since": latest.isoformat(), "seen": seen}


def resend_received_records(emails: list[dict]) -> list[dict]:
    """Landing records for emails listed by `GET /emails/receiving`: shaped as the `email.received` webhook lands
    them, so ingestion fetches each in full and stores it once, whichever way (or both) it came."""
    return [landing.make_record("resend", f"poll:{e['id']}", {"type": "email.received", "created_at": e.get("created_at"),
                                                             "data": {**e, "email_id": e["id"]}}) for e in emails]


def _resend_poll(channels: ChannelService, state: dict | None, now: datetime) -> tuple[list[dict], dict]:
    since = datetime.fromisoformat(state["since"]) if state else now - FIRST_POLL_LOOKBACK
    found = channels.by_name("resend").list_received(since, seen=(state or {}).get("seen", []))
    if not found:
        return [], state or {"since": since.isoformat(), "seen": []}
    stamps = [landing._ts(e["created_at"]) for e in found]  # naive UTC, like the other sources' positions
    latest = max(stamps)
    seen = [str(e["id"]) for e, at in zip(found, stamps, strict=True) if at == latest]
    if state and datetime.fromisoformat(state["since"]) == latest.to_pydatetime():
        seen = sorted(set(seen) | set(state.get("seen", [])))
    return resend_received_records(found), {"since": latest.isoformat(), "seen": seen}


@dg.sensor(minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING)
def inbound_poll_sensor(context: dg.SensorEvaluationContext, channels: ChannelService, inbox: InboxService, clock: PipelineClock):
    """Poll Twilio's inbound messages, Resend's received emails and the IMAP mailbox; land what they hold for
    `landing_sensor` to ingest. Each source has its own cursor key ("twilio", "resend", "imap")."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    landed, failed = 0, []
    sources = []
    if channels.twilio_account_sid and channels.twilio_auth_token:
        sources.append(("twilio", lambda: _records(_twilio_poll(channels, cursor.get("twilio"), clock.now()))))
    if channels.resend_api_key:
        sources.append(("resend", lambda: _resend_poll(channels, cursor.get("resend"), clock.now())))
    if inbox.configured:
        sources.append(("imap", lambda: _records(inbox.inbox().poll(cursor.get("imap"), clock.now()))))
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


@dg.sensor(job=track_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def tracking_sensor(context: dg.SensorEvaluationContext):
    """Every five minutes, poll providers for each campaign's delivery events and replies."""
    bucket = int(context.cursor or 0) + 1
    context.update_cursor(str(bucket))
    campaigns = context.instance.get_dynamic_partitions(campaign_partitions.name)
    return [dg.RunRequest(run_key=f"track:{c}:{bucket}", partition_key=c) for c in campaigns]

