"""A compose run that follows research drafts leads as their research lands, and ends once research is done."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pandas as pd

from outbound_pipeline.engine.profiles import lead_profiles
from outbound_pipeline.engine.research import snippets_frame
from outbound_pipeline.engine.research_feed import ResearchFeed
from outbound_pipeline.providers.research_offline import OfflineResearch
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import research as research_store
from tests.conftest import MONDAY_MORNING
from tests.defs.following_helpers import first_touch, research_in_batches

COMPOSE = ["drafts", "recipient_steps"]
FOLLOW = {"ops": {"drafts": {"config": {"follow_research": True}}}}


def _drafted(result) -> int:
    return int(result.asset_materializations_for_node("drafts")[0].metadata["drafted"].value)


def _start(driver: Driver, instance, db) -> tuple[str, pd.DataFrame]:
    key = first_touch(driver, instance, "demo_drip")
    with db() as con:
        leads = research_store.recipients_without_research(con, "demo_drip")
    return key, leads


def test_a_following_compose_run_drafts_what_research_stores_while_it_runs(driver, instance, db):
    key, leads = _start(driver, instance, db)
    assert len(leads) > 6
    landed: list[float] = []

    def research_in_six_batches() -> None:  # the research stage, storing what it found every 0.4 s while compose runs
        landed.extend(research_in_batches(db, "demo_drip", leads, 6, 0.4))

    researcher = threading.Thread(target=research_in_six_batches)
    researcher.start()
    result = driver.run(COMPOSE, MONDAY_MORNING, key, run_config=FOLLOW)
    ended = time.monotonic()
    researcher.join()
    assert _drafted(result) == len(leads)  # every lead, though none was researched when the run started
    assert ended - landed[-1] < 5  # ended soon after the last research landed, not after a grace period
    with db() as con:
        drafted = {r[0] for r in con.execute("SELECT lead_id FROM drafts WHERE touch = 1").fetchall()}
        steps = con.execute("SELECT count(*) FROM recipient_steps WHERE campaign_id = 'demo_drip'").fetchall()[0][0]
    assert drafted == set(leads["lead_id"]) and steps == len(leads)


def test_without_following_compose_drafts_only_what_was_researched_when_it_started(driver, instance, db):
    key, leads = _start(driver, instance, db)
    provider = OfflineResearch()
    with db() as con:
        research_store.insert_snippets(con, snippets_frame("demo_drip", [provider.research(lead, "Book a call")
                                                                         for lead in lead_profiles(leads.head(3))], datetime(2026, 1, 5)))
    result = driver.run(COMPOSE, MONDAY_MORNING, key)
    assert _drafted(result) == 3
    assert result.asset_materializations_for_node("drafts")[0].metadata["without_research"].value == len(leads) - 3


def test_research_that_stopped_keeps_a_follower_waiting_only_for_the_grace_period(driver, instance, db):
    _key, leads = _start(driver, instance, db)
    now = {"t": 0.0}
    running = {"research": True}
    feed = ResearchFeed(leads.assign(variant=None), "demo_drip", db, follow=True, research_in_progress=lambda: running["research"],
                        grace_s=10.0, clock=lambda: now["t"])
    assert list(feed.ready()) == [] and not feed.done()  # nothing researched yet, research under way
    now["t"] = 60.0
    assert not feed.done()  # quiet for a minute, but a research run is still in progress: it may be slow
    running["research"] = False
    assert feed.done()  # quiet past the grace period and no research run: it failed or was cancelled
    with db() as con:
        research_store.insert_snippets(con, snippets_frame("demo_drip", [OfflineResearch().research(lead_profiles(leads.head(1))[0], "x")],
                                                           datetime(2026, 1, 5)))
    ((ready, _snippets),) = list(feed.ready())
    assert list(ready["lead_id"]) == [leads["lead_id"].iloc[0]] and not feed.done()  # new research: waiting again
    now["t"] = 69.0
    assert not feed.done()
    now["t"] = 70.5
    assert feed.done()
