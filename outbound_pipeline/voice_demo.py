"""The offline demo of a voice campaign: launch, then dial passes on a simulated clock until every contact is done.

The clock moves a minute at a time while calls are in flight, and otherwise jumps to the next retry or the next
quarter hour (when calling hours are closed for everyone left). Opt-outs given on a call reach the suppressions
through the track step, run hourly as in production.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from outbound_pipeline.defs.partitions import add_campaign
from outbound_pipeline.engine.call_report import format_call_stats
from outbound_pipeline.runner import DIAL, LAUNCH, TRACK, Driver, offline_services, track_config
from outbound_pipeline.store import calls as calls_store
from outbound_pipeline.store import landing, warehouse
from outbound_pipeline.store.campaigns import campaign_metrics, current_status

VOICE_DEMO_START = datetime(2026, 1, 5, 14, 30)  # Monday: 09:30 in New York, 06:30 in Los Angeles (its calls wait)
HORIZON = timedelta(days=2)


def _track(driver: Driver, campaign: str, now: datetime, cursor: str | None) -> str | None:
    """A track run over the records landed since `cursor` (opt-outs given on calls among them), as the landing sensor asks."""
    records, end = landing.read_since(cursor, Path(driver.base["voice"].landing_dir))
    config = track_config(campaign)
    if records:
        config["ops"]["track"]["config"].update(from_cursor=cursor, count=len(records), to_cursor=end)
    driver.run(TRACK, now, run_config=config)
    return end or cursor


def run_voice_demo(campaign: str, instance: dg.DagsterInstance, db_path: str | None = None, start: datetime = VOICE_DEMO_START,
                   quiet: bool = True):  # -> DemoResult
    from outbound_pipeline.demo import DemoResult

    started = time.monotonic()
    driver = Driver(instance, db_path, quiet)
    add_campaign(instance, campaign)
    driver.base.update(offline_services(driver.base))  # a demo never dials a real number, whatever the environment holds
    driver.run(LAUNCH, start, campaign)
    now, ticks, last_track, cursor = start, 0, start, None
    while now <= start + HORIZON:
        driver.run(DIAL, now)
        ticks += 1
        if now - last_track >= timedelta(hours=1):
            cursor = _track(driver, campaign, now, cursor)
            last_track = now
        with warehouse.connect(driver.db_path, read_only=True) as con:
            if current_status(con, campaign) != "running":
                break
            flying, next_retry = calls_store.outlook(con, campaign)
        if flying:
            now += timedelta(minutes=1)
        else:
            now = max(now + timedelta(minutes=1), min(next_retry or now + timedelta(minutes=15), now + timedelta(minutes=15)))
    _track(driver, campaign, now, cursor)
    driver.run(["call_metrics", "campaign_metrics"], now)
    with warehouse.connect(driver.db_path, read_only=True) as con:
        stats = calls_store.call_stats(con, campaign)
        metrics = campaign_metrics(con, campaign)
    return DemoResult(metrics=metrics, runs=driver.runs, ticks=ticks, seconds=time.monotonic() - started,
                      report=format_call_stats(stats))
