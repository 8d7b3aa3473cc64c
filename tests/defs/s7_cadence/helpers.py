"""Temp campaigns and a simulated-clock loop for cadence tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml

from outbound_pipeline.runner import LAUNCH, TOUCH, TRACK, Driver, track_config
from tests.conftest import add_campaign

BASE = {
    "goal": "Book a 20-minute call with operations leaders about routing.",
    "approval": "auto",
    "audience": {"lead_list": "sample_leads.csv", "default_region": "US", "filter": {"role": ["COO", "CEO"]}},
    "bounce_pause_threshold": 1.0,  # small audiences: keep the bounce-rate auto-pause out of these tests
    "sending_window": {"start": "00:00", "end": "23:59", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
}


def write_campaign(workdir: Path, name: str, **fields) -> None:
    """A campaign YAML in the test's campaigns directory (BASE plus `fields`)."""
    spec = {"name": name, **BASE, **fields}
    (workdir / "campaigns" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def simulate(driver: Driver, instance, campaign: str, start: datetime, days: float, tick: timedelta = timedelta(hours=12)) -> datetime:
    """Launch, then track -> plan -> due touches on every tick, as the sensors and schedules would."""
    add_campaign(instance, campaign)
    driver.run(LAUNCH, start, campaign)
    now, end = start, start + timedelta(days=days)
    while now <= end:
        for key in driver.track_and_plan(campaign, now):
            driver.run(TOUCH, now, key)
        now += tick
    driver.run(TRACK, now, run_config=track_config(campaign))
    return now
