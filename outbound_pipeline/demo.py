"""The offline demo: a whole campaign, launch to metrics, on a simulated clock.

It materialises the same assets, in the same order, that the schedules and sensors
would in production: launch, then on every tick track -> cadence plan -> due touches,
and finally the metrics rollups, the daily history and the BI snapshot. Every run
is recorded in the Dagster instance, so `dagster dev` shows the demo's history afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import add_campaign
from outbound_pipeline.defs.resources import CampaignCatalog
from outbound_pipeline.runner import LAUNCH, METRICS, TOUCH, TRACK, Driver, daily_range, offline_services, track_config
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_metrics

DEMO_START = datetime(2026, 1, 5, 6, 0)  # a Monday, 06:00 UTC


@dataclass
class DemoResult:
    """The demo campaign's metrics and what it took: Dagster runs, clock ticks, wall-clock seconds."""

    metrics: pd.DataFrame
    runs: int
    ticks: int
    seconds: float
    report: str = ""  # what to print instead of the metrics table (a voice campaign's call stats)


def run_demo(campaign: str = "demo_drip", instance: dg.DagsterInstance | None = None, db_path: str | None = None,
             start: datetime = DEMO_START, tick: timedelta = timedelta(hours=8), tail: timedelta = timedelta(days=4),
             quiet: bool = True) -> DemoResult:
    """Launch `campaign`, step the clock until its last touch has had time to draw replies, roll up metrics."""
    started = time.monotonic()
    instance = instance or dg.DagsterInstance.get()
    driver = Driver(instance, db_path, quiet)
    catalog: CampaignCatalog = driver.base["catalog"]
    spec = catalog.spec(campaign)
    if spec.is_voice:  # calls, not messages: dial passes on a minute clock
        from outbound_pipeline.voice_demo import run_voice_demo

        return run_voice_demo(campaign, instance, db_path, quiet=quiet)
    add_campaign(instance, campaign)
    driver.base.update(offline_services(driver.base))  # a demo never reaches a real provider, whatever the environment holds
    driver.run(LAUNCH, start, campaign)
    horizon = start + sum((s.delay_timedelta() for s in spec.steps), timedelta()) + tail
    now, ticks = start, 0
    while now <= horizon:
        for key in driver.track_and_plan(campaign, now):
            driver.run(TOUCH, now, key)
        now += tick
        ticks += 1
    driver.run(TRACK, now, run_config=track_config(campaign))
    driver.run(METRICS, now)
    driver.run(["metrics_daily"], now, tags=daily_range(start, now))  # the campaign's history, a day per partition
    driver.run(["bi_snapshot"], now)  # what BI tools read: data/exports/current
    with warehouse.connect(driver.db_path) as con:
        metrics = campaign_metrics(con, campaign)
    return DemoResult(metrics=metrics, runs=driver.runs, ticks=ticks, seconds=time.monotonic() - started)


def format_metrics(metrics: pd.DataFrame) -> str:
    """The metrics table as a person reads it: counts, rates as percentages, response time in hours, money in dollars.

    Message counts (sent, delivered, opened, read, bounced) count messages; lead counts (reached, replied, cta, opted_out,
    converted) count leads, as the rates beside them divide them (definitions in `domain.metrics`).
    """
    shown = metrics.copy()
    shown["touch"] = shown["touch"].map(lambda t: "all" if t == 0 else str(t))
    for col in [c for c in shown.columns if c.endswith("_rate")]:
        shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.1%}")
    for col in ("cost_usd", "cost_per_reply_usd", "cost_per_conversion_usd"):
        if col in shown.columns:
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{float(v):.2f}")
    for col in ("response_median_s", "response_p90_s"):
        if col in shown.columns:
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v / 3600:.1f}h")
    names = {"delivery_rate": "delivery", "open_rate": "open", "read_rate": "read%", "leads_reached": "reached", "reply_rate": "reply",
             "replied_to_cta": "cta", "reply_to_cta_rate": "cta%", "opt_out_rate": "opt-out", "bounce_rate": "bounce",
             "conversion_rate": "conversion", "response_median_s": "resp.med", "response_p90_s": "resp.p90", "cost_usd": "cost",
             "cost_per_reply_usd": "per_reply"}
    cols = [c for c in ("campaign_id", "touch", "sent", "delivered", "delivery_rate", "opened", "open_rate", "read", "read_rate", "leads_reached",
                        "replied", "reply_rate", "replied_to_cta", "reply_to_cta_rate", "opted_out", "opt_out_rate", "bounced", "bounce_rate",
                        "converted", "conversion_rate", "response_median_s", "response_p90_s", "cost_usd", "cost_per_reply_usd")
            if c in shown.columns]
    return shown[cols].rename(columns=names).to_string(index=False)
