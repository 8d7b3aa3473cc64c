"""Tracking polls only messages still in flight, and the tracking sensor leaves campaigns with none alone."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from outbound_pipeline.definitions import defs
from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.defs.s6_track.sensors import tracking_sensor
from outbound_pipeline.engine.tracking import final_rules
from outbound_pipeline.runner import LAUNCH, TOUCH, TRACK
from outbound_pipeline.store import events as events_store
from tests.conftest import MONDAY_MORNING, add_campaign

POLL = {"ops": {"track": {"config": {"campaigns": ["demo_drip"]}}}}


def _polled(db, driver, now) -> int:
    channels: ChannelService = driver.base["channels"]
    with db() as con:
        final, settled = final_rules(events_store.providers_of(con, ["demo_drip"]), channels.by_name, now)
        return len(events_store.polled_sends(con, ["demo_drip"], now - timedelta(days=7), final, settled))


def _track_metadata(driver, now) -> dict:
    result = driver.run(TRACK, now, run_config=POLL)
    meta = result.asset_materializations_for_node("track")[0].metadata
    return {k: v.value for k, v in meta.items()}


def test_final_messages_are_not_polled_again_and_quiet_campaigns_get_no_run(driver, instance, db):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    instance.add_dynamic_partitions("campaign_touches", ["demo_drip.t1"])
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")
    with db() as con:
        sent = con.execute("SELECT count(*) FROM sends WHERE status IN ('sent', 'failed')").fetchall()[0][0]
    assert sent > 100

    hour = MONDAY_MORNING + timedelta(hours=1)
    assert _polled(db, driver, hour) == sent  # nothing stored yet: every message is in flight
    meta = _track_metadata(driver, hour)
    assert meta["in_flight_campaigns"] == ["demo_drip"] and meta["polled_campaigns"] == ["demo_drip"]
    with db() as con:
        ended = con.execute("""SELECT count(DISTINCT send_id) FROM delivery_events
                               WHERE event_type IN ('bounced', 'failed', 'opted_out')""").fetchall()[0][0]
    assert ended > 0
    assert _polled(db, driver, hour) <= sent - ended  # bounced, failed and opted-out messages are final: not polled again

    # A first tick with nothing recorded polls every running campaign.
    first = tracking_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(first, dg.RunRequest)

    days = MONDAY_MORNING + timedelta(days=4)  # past the offline timeline's 71 hours: every message has settled
    assert _polled(db, driver, days) == 0
    meta = _track_metadata(driver, days)
    assert meta["in_flight_campaigns"] == []
    quiet = tracking_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(quiet, dg.SkipReason) and "nothing in flight in demo_drip" in quiet.skip_message

    driver.run(["sends"], days, "demo_drip.t1")  # the campaign sends again: it is polled again
    again = tracking_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(again, dg.RunRequest) and again.run_config["ops"]["track"]["config"]["campaigns"] == ["demo_drip"]
