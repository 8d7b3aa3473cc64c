"""A sensor tick and a run writing DuckDB at the same time both succeed: sensors never open the database."""

from __future__ import annotations

import threading

import dagster as dg

from outbound_pipeline.defs.s6_track.sensors import landing_sensor
from outbound_pipeline.runner import TRACK
from outbound_pipeline.store import landing
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s6_track.helpers import later


def test_sensor_tick_during_a_writing_run(driver, instance, workdir, db):
    add_campaign(instance, "demo_drip")
    landing.append(landing.make_record("twilio_inbound", "SMx", {"MessageSid": "SMx", "From": "+34600000001", "Body": "hi"}))
    run_result: dict = {}
    writing = threading.Event()
    real_connect = driver.base["warehouse"].__class__.connect

    def run() -> None:
        run_result["result"] = driver.run(["campaigns", "leads", "lead_rejects", "recipients"], MONDAY_MORNING, "demo_drip")

    # Hold the database open for writing inside the run, and tick the sensor while it is held.
    def held_connect(self, read_only: bool = False):
        writing.set()
        return real_connect(self, read_only)

    driver.base["warehouse"].__class__.connect = held_connect
    try:
        thread = threading.Thread(target=run)
        thread.start()
        assert writing.wait(60)
        ticks, during_run = [], 0
        while thread.is_alive():
            context = dg.build_sensor_context(instance=instance, cursor=None)
            ticks.append(landing_sensor(context))
            during_run += thread.is_alive()
        thread.join(120)
    finally:
        driver.base["warehouse"].__class__.connect = real_connect
    assert run_result["result"].success
    assert during_run >= 1  # at least one tick finished while the run held the database
    assert all(isinstance(t, dg.RunRequest) and t.run_config["ops"]["track"]["config"]["count"] == 1 for t in ticks)
    # ...and the run that tick asked for then writes, after the other one, without colliding.
    assert driver.run(TRACK, later(1), run_config=ticks[-1].run_config).success
    with db() as con:
        assert con.execute("SELECT count(*) FROM replies").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM leads").fetchall()[0][0] > 200
