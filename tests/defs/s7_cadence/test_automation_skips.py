"""The cadence schedule and the tracking sensor run only campaigns that are running, from the instance alone."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pytest

from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.definitions import defs
from outbound_pipeline.defs.s6_track.sensors import tracking_sensor
from outbound_pipeline.defs.s7_cadence.schedules import cadence_requests, cadence_schedule
from outbound_pipeline.runner import LAUNCH
from outbound_pipeline.store import warehouse
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import write_campaign


def evaluate(instance, monkeypatch):
    """Evaluate the schedule and the sensor as the daemon would; opening DuckDB during it is a failure."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a schedule or sensor opened DuckDB")

    with monkeypatch.context() as patched:
        patched.setattr(warehouse, "connect", refuse)
        planned = cadence_requests(instance, "202601050915")
        tracked = tracking_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    return planned, tracked


def test_campaigns_never_launched_stopped_or_completed_are_left_alone(driver, instance, db, workdir, monkeypatch):
    path = str(workdir / "outbound.duckdb")
    for name in ("idle", "live", "held", "gone"):
        write_campaign(workdir, name, type="drip", steps=[{"name": "intro", "intent": "introduce"}])
        add_campaign(instance, name)  # as campaign_file_sensor adds them: a partition is not a launch

    planned, tracked = evaluate(instance, monkeypatch)
    assert isinstance(planned, dg.SkipReason) and isinstance(tracked, dg.SkipReason)
    assert "no running campaign to plan: left alone gone (not launched), held (not launched), idle (not launched)" in planned.skip_message
    assert "no running or paused campaign to track" in tracked.skip_message

    for name in ("live", "held", "gone"):
        driver.run(LAUNCH, MONDAY_MORNING, name)
    commands.set_status("held", "paused", path, instance, MONDAY_MORNING)
    commands.set_status("gone", "stopped", path, instance, MONDAY_MORNING)
    planned, tracked = evaluate(instance, monkeypatch)
    assert [r.partition_key for r in planned] == ["live"]
    assert tracked.run_config["ops"]["track"]["config"]["campaigns"] == ["held", "live"]  # paused: handed-over messages still report

    commands.set_status("held", "running", path, instance, MONDAY_MORNING + timedelta(hours=1))
    planned, _ = evaluate(instance, monkeypatch)
    assert [r.partition_key for r in planned] == ["held", "live"]

    # Completed by the cadence itself (a oneshot past its end): its plan's status metadata is what the schedule reads next.
    with db() as con:
        con.execute("UPDATE campaigns SET status = 'completed' WHERE campaign_id = 'live'")
    assert driver.run(["cadence_plan"], MONDAY_MORNING + timedelta(hours=2), "live").success
    planned, tracked = evaluate(instance, monkeypatch)
    assert [r.partition_key for r in planned] == ["held"]
    assert tracked.run_config["ops"]["track"]["config"]["campaigns"] == ["held"]


@pytest.mark.parametrize("reply_mode", ["human", "ai"])
def test_a_completed_campaign_is_planned_only_while_it_answers_replies(driver, instance, db, workdir, monkeypatch, reply_mode):
    write_campaign(workdir, "done", type="drip", reply_mode=reply_mode, steps=[{"name": "intro", "intent": "introduce"}])
    add_campaign(instance, "done")
    driver.run(LAUNCH, MONDAY_MORNING, "done")
    with db() as con:
        con.execute("UPDATE campaigns SET status = 'completed' WHERE campaign_id = 'done'")
    driver.run(["cadence_plan"], MONDAY_MORNING, "done")
    planned, _ = evaluate(instance, monkeypatch)
    assert ([r.partition_key for r in planned] if reply_mode == "ai" else planned.skip_message) == (
        ["done"] if reply_mode == "ai" else "no running campaign to plan: left alone done (completed)")


def test_the_schedule_itself_skips_a_campaign_file_never_launched(workdir):
    # A schedule's context reaches the instance through a reference, which only an instance on disk has.
    with dg.instance_for_test() as on_disk:
        add_campaign(on_disk, "demo_drip")
        tick = cadence_schedule(dg.build_schedule_context(instance=on_disk, scheduled_execution_time=datetime(2026, 1, 5, 9, 15)))
    assert isinstance(tick, dg.SkipReason)
    assert tick.skip_message == "no running campaign to plan: left alone demo_drip (not launched)"
