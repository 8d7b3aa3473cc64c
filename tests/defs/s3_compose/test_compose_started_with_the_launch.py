"""Compose started as a launch begins (its sensor fires on the launch's `campaigns` step) waits for the audience."""

from __future__ import annotations

import threading
import time

import dagster as dg

import outbound_pipeline.defs.s1_audience.assets as audience_assets
from outbound_pipeline.defs.s3_compose.jobs import FOLLOW_RESEARCH
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.runner import LAUNCH
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.following_helpers import on_disk_driver


def test_a_compose_run_started_with_the_launch_drafts_the_audience_the_launch_freezes(workdir, db, monkeypatch):
    driver, instance = on_disk_driver(workdir)
    add_campaign(instance, "demo_drip")
    slow_import = audience_assets.import_lead_list

    def import_slowly(*args, **kwargs):  # a long list: the audience is frozen well after the launch began
        time.sleep(1.5)
        return slow_import(*args, **kwargs)

    monkeypatch.setattr(audience_assets, "import_lead_list", import_slowly)
    results: dict[str, dg.ExecuteInProcessResult] = {}
    launch = threading.Thread(target=lambda: results.update(launch=driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")))
    launch.start()
    while instance.get_latest_materialization_event(dg.AssetKey("campaigns")) is None:  # when the sensor would fire
        time.sleep(0.02)
    assert instance.get_latest_materialization_event(dg.AssetKey("recipients")) is None
    compose = driver.run(["drafts", "recipient_steps"], MONDAY_MORNING, touch_key("demo_drip", 1), run_config=FOLLOW_RESEARCH)
    launch.join()
    assert results["launch"].success and compose.success
    with db() as con:
        recipients = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = 'demo_drip'").fetchone()
        drafted = con.execute("SELECT count(DISTINCT lead_id) FROM drafts WHERE campaign_id = 'demo_drip' AND touch = 1").fetchone()
    assert recipients is not None and drafted is not None and recipients[0] > 0
    assert int(compose.asset_materializations_for_node("drafts")[0].metadata["drafted"].value) == drafted[0] > 0  # type: ignore[arg-type]
