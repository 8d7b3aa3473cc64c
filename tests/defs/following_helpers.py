"""Helpers for the tests of runs that follow the stage before them: a Dagster instance on disk (runs of several threads
at once, as a deployment has them) and a research stage that stores its snippets in batches while the others run."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from outbound_pipeline.engine.profiles import lead_profiles
from outbound_pipeline.engine.research import snippets_frame
from outbound_pipeline.providers.research_offline import OfflineResearch
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import research as research_store


def on_disk_driver(workdir: Path) -> tuple[Driver, dg.DagsterInstance]:
    """A Driver on a Dagster instance kept on disk: the in-memory one refuses runs of several threads at once."""
    from outbound_pipeline.defs.resources import default_resources

    (workdir / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(workdir / "dagster_home"))
    driver = Driver(instance, str(workdir / "outbound.duckdb"))
    driver.base = default_resources()
    return driver, instance


def research_in_batches(db: Callable, campaign: str, leads: pd.DataFrame, batches: int, pause_s: float) -> list[float]:
    """The research stage: the leads' snippets stored in `batches` parts, one every `pause_s`; returns when each landed."""
    provider, profiles = OfflineResearch(), lead_profiles(leads)
    landed: list[float] = []
    for batch in (profiles[i::batches] for i in range(batches)):
        time.sleep(pause_s)
        with db() as con:
            research_store.insert_snippets(con, snippets_frame(campaign, [provider.research(lead, "Book a call") for lead in batch],
                                                               datetime(2026, 1, 5)))
        landed.append(time.monotonic())
    return landed


def first_touch(driver: Driver, instance: dg.DagsterInstance, campaign: str) -> str:
    """Freeze the campaign's audience and open its first touch, as a launch does; returns the touch's partition key."""
    from outbound_pipeline.defs.partitions import touch_partitions
    from outbound_pipeline.domain.touches import touch_key
    from tests.conftest import MONDAY_MORNING, add_campaign

    add_campaign(instance, campaign)
    assert driver.run(["campaigns", "campaign_events", "leads", "lead_rejects", "recipients"], MONDAY_MORNING, campaign).success
    key = touch_key(campaign, 1)
    instance.add_dynamic_partitions(touch_partitions.name, [key])
    return key
