"""Research in slices: each run researches at most `max_leads` recipients still without research, and compose drafts
whoever is researched so far, so a touch's stages can run at once rather than one after the other."""

from __future__ import annotations

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.runner import Driver
from tests.conftest import MONDAY_MORNING, add_campaign

AUDIENCE = ["campaigns", "campaign_events", "leads", "lead_rejects", "recipients"]
COMPOSE = ["drafts", "recipient_steps"]


def _research(driver: Driver, max_leads: int) -> int:
    result = driver.run(["research_snippets"], MONDAY_MORNING, "demo_drip",
                        run_config={"ops": {"research_snippets": {"config": {"max_leads": max_leads}}}})
    return int(result.asset_materializations_for_node("research_snippets")[0].metadata["leads_researched"].value)  # type: ignore[arg-type]


def test_research_in_slices_and_compose_takes_up_each_slice(driver, instance, db):
    add_campaign(instance, "demo_drip")
    assert driver.run(AUDIENCE, MONDAY_MORNING, "demo_drip").success
    with db() as con:
        recipients = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = 'demo_drip'").fetchall()[0][0]
    assert recipients > 6
    key = touch_key("demo_drip", 1)
    instance.add_dynamic_partitions(touch_partitions.name, [key])

    assert _research(driver, 4) == 4
    driver.run(COMPOSE, MONDAY_MORNING, key)
    with db() as con:
        researched = {r[0] for r in con.execute("SELECT DISTINCT lead_id FROM research_snippets").fetchall()}
        drafted = {r[0] for r in con.execute("SELECT lead_id FROM drafts WHERE touch = 1").fetchall()}
    assert len(researched) == 4 and drafted <= researched and drafted  # only the researched slice is drafted

    slices = [_research(driver, 64) for _ in range((recipients - 4 + 63) // 64 + 1)]
    assert slices[-1] == 0 and sum(slices) == recipients - 4 and max(slices) == 64  # the rest, 64 at a time, then nothing left
    driver.run(COMPOSE, MONDAY_MORNING, key)
    with db() as con:
        again = {r[0] for r in con.execute("SELECT lead_id FROM drafts WHERE touch = 1").fetchall()}
        researched = {r[0] for r in con.execute("SELECT DISTINCT lead_id FROM research_snippets").fetchall()}
    assert drafted < again and len(researched) == recipients  # the later slices drafted by the next compose run
