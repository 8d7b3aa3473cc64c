"""Schedules and sensors evaluated against a real instance, as the daemon would."""

from __future__ import annotations

import dagster as dg

from outbound_pipeline.definitions import defs
from outbound_pipeline.defs.s7_cadence.sensors import due_touch_sensor
from outbound_pipeline.runner import LAUNCH
from tests.conftest import MONDAY_MORNING, add_campaign


def test_definitions_load_with_every_stage():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"campaigns", "leads", "lead_rejects", "recipients", "research_snippets", "drafts", "approvals", "outbox", "sends",
            "delivery_events", "replies", "cadence_plan", "campaign_metrics"} <= keys


def test_due_touch_sensor_requests_the_touches_the_cadence_plan_found(driver, instance):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    plan = driver.run(["cadence_plan"], MONDAY_MORNING, "demo_drip")
    assert plan.success
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = due_touch_sensor(context)
    requests = result.run_requests if hasattr(result, "run_requests") else list(result)
    assert [r.partition_key for r in requests] == ["demo_drip.t1"]
    assert requests[0].run_key.startswith("touch:demo_drip.t1:")
    with dg.build_sensor_context(instance=instance, cursor=context.cursor, definitions=defs) as again:
        repeat = due_touch_sensor(again)
    again_requested = repeat.run_requests if hasattr(repeat, "run_requests") else list(repeat or [])
    assert not [r for r in again_requested if isinstance(r, dg.RunRequest)]  # one plan, one request
