"""Campaign types, branches, variants and the lifecycle over a simulated clock, in-process against a temporary DuckDB."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import dagster as dg
import pytest

from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.defs.resources import PipelineClock
from outbound_pipeline.defs.s1_audience.sensors import scheduled_launch_sensor
from outbound_pipeline.domain.lifecycle import IllegalTransition
from outbound_pipeline.runner import LAUNCH, TOUCH
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import simulate, write_campaign


def one(db, sql: str, params: list | None = None):
    with db() as con:
        return con.execute(sql, params or []).fetchall()[0][0]


def test_drip_sends_every_step_to_non_repliers_and_completes(driver, instance, db, workdir):
    write_campaign(workdir, "drip3", type="drip", steps=[
        {"name": "intro", "intent": "introduce"}, {"name": "nudge", "delay": "2d", "intent": "follow_up_on_signal"},
        {"name": "wrap", "delay": "2bd", "intent": "last_touch"}])
    simulate(driver, instance, "drip3", MONDAY_MORNING, days=7, tick=timedelta(days=1))
    with db() as con:
        per_touch = dict(con.execute("SELECT touch, count(*) FROM sends WHERE campaign_id = 'drip3' GROUP BY touch").fetchall())
        late = con.execute("""SELECT count(*) FROM sends s JOIN replies p USING (campaign_id, lead_id)
                              WHERE s.touch > p.touch AND s.recorded_at > p.received_at AND p.intent <> 'opt_out'""").fetchall()[0][0]
        repeated = con.execute("""SELECT count(*) FROM (SELECT lead_id FROM drafts WHERE campaign_id = 'drip3'
                                  GROUP BY lead_id HAVING count(DISTINCT body) < count(*))""").fetchall()[0][0]
    assert per_touch[1] >= per_touch[2] >= per_touch[3] > 0 and late == 0
    assert repeated == 0  # each touch a fresh composition, never a repeat of the lead's earlier message
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'drip3'") == "completed"
    assert one(db, "SELECT reason FROM campaign_events WHERE campaign_id = 'drip3' AND to_status = 'completed'") == "nothing left to do"


def test_oneshot_ends_after_end_after(driver, instance, db, workdir):
    write_campaign(workdir, "once", type="oneshot", end_after="2d", steps=[{"name": "only", "intent": "introduce"}])
    add_campaign(instance, "once")
    driver.run(LAUNCH, MONDAY_MORNING, "once")
    for key in driver.track_and_plan("once", MONDAY_MORNING):
        driver.run(TOUCH, MONDAY_MORNING, key)
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'once'") == "running"
    driver.track_and_plan("once", MONDAY_MORNING + timedelta(days=1))
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'once'") == "running"
    driver.track_and_plan("once", MONDAY_MORNING + timedelta(days=2, minutes=1))
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'once'") == "completed"
    assert one(db, "SELECT reason FROM campaign_events WHERE to_status = 'completed'") == "ended 2d after launch"
    assert one(db, "SELECT max(touch) FROM sends") == 1


def test_followup_only_reaches_leads_without_a_reply_in_the_window(driver, instance, db, workdir):
    write_campaign(workdir, "chase", type="followup", steps=[
        {"name": "ask", "intent": "introduce"}, {"name": "chase", "delay": "3d", "intent": "follow_up_on_signal"}])
    simulate(driver, instance, "chase", MONDAY_MORNING, days=5)
    with db() as con:
        replied_in_window = con.execute("""
            SELECT count(*) FROM replies p JOIN sends s ON s.send_id = p.send_id
            WHERE p.campaign_id = 'chase' AND s.touch = 1 AND p.received_at <= s.sent_at + INTERVAL 3 DAY""").fetchall()[0][0]
        chased_after_reply = con.execute("""
            SELECT count(*) FROM sends s2 JOIN replies p ON p.lead_id = s2.lead_id AND p.campaign_id = s2.campaign_id
            WHERE s2.campaign_id = 'chase' AND s2.touch = 2 AND p.touch = 1""").fetchall()[0][0]
        first, second = (con.execute("SELECT count(*) FROM sends WHERE campaign_id = 'chase' AND touch = ?", [t]).fetchall()[0][0] for t in (1, 2))
    assert replied_in_window > 0 and chased_after_reply == 0
    assert 0 < second < first


def test_branch_on_reply_intent_and_ab_variants_are_recorded(driver, instance, db, workdir):
    write_campaign(workdir, "branchy", type="drip", steps=[
        {"name": "intro", "intent": "introduce", "variants": [{"name": "direct", "weight": 50, "tone": "direct"},
                                                               {"name": "warm", "weight": 50, "tone": "warm"}],
         "next": [{"when": {"replied_intent": ["question", "interested", "not_now", "out_of_office", "not_interested"]}, "goto": "answer"},
                  {"when": "no_reply", "goto": "nudge"}]},
        {"name": "nudge", "delay": "2d", "intent": "follow_up_on_signal", "final": True},
        {"name": "answer", "delay": "1h", "intent": "answer_question", "final": True}])
    simulate(driver, instance, "branchy", MONDAY_MORNING, days=4, tick=timedelta(hours=12))
    driver.run(["variant_metrics"], MONDAY_MORNING + timedelta(days=6))
    with db() as con:
        via = dict(con.execute("SELECT via, count(*) FROM recipient_steps WHERE campaign_id = 'branchy' GROUP BY via").fetchall())
        wrong = con.execute("""
            SELECT count(*) FROM recipient_steps rs WHERE rs.step = 'answer' AND NOT EXISTS (
                SELECT 1 FROM replies p WHERE p.lead_id = rs.lead_id AND p.campaign_id = rs.campaign_id AND p.touch = 1)""").fetchall()[0][0]
        answered = con.execute("SELECT count(*) FROM sends WHERE campaign_id = 'branchy' AND touch = 3 AND status = 'sent'").fetchall()[0][0]
        both = con.execute("""SELECT count(*) FROM recipient_steps a JOIN recipient_steps b USING (campaign_id, lead_id)
                              WHERE a.step = 'nudge' AND b.step = 'answer'""").fetchall()[0][0]
        variants = dict(con.execute("SELECT variant, leads FROM variant_metrics WHERE campaign_id = 'branchy'").fetchall())
        tones = con.execute("""SELECT count(*) FROM drafts d JOIN recipient_steps rs USING (campaign_id, lead_id, touch)
                               WHERE d.touch = 1 AND d.tone <> rs.variant""").fetchall()[0][0]
    assert via["entry"] > 10 and via.get("no_reply", 0) > 0
    assert sum(v for k, v in via.items() if k.startswith("replied:")) > 0 and wrong == 0
    assert answered > 0 and both == 0  # a replier is answered, never nudged
    assert set(variants) == {"direct", "warm"} and sum(variants.values()) == via["entry"]
    assert tones == 0  # each lead's draft used its variant's tone


def test_pause_holds_sends_and_resume_continues_without_duplicates(driver, instance, db, workdir):
    write_campaign(workdir, "pausable", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    path = str(workdir / "outbound.duckdb")
    add_campaign(instance, "pausable")
    driver.run(LAUNCH, MONDAY_MORNING, "pausable")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "pausable.t1")
    queued = one(db, "SELECT count(*) FROM sends WHERE status = 'pending'")
    assert queued > 0
    commands.set_status("pausable", "paused", path, instance, MONDAY_MORNING)
    driver.run(TOUCH, MONDAY_MORNING + timedelta(hours=1), "pausable.t1")
    assert one(db, "SELECT count(*) FROM sends WHERE status = 'pending'") == queued  # held, not dropped
    assert driver.track_and_plan("pausable", MONDAY_MORNING + timedelta(hours=1)) == []
    with pytest.raises(IllegalTransition, match="cannot become paused"):
        commands.set_status("pausable", "paused", path, instance, MONDAY_MORNING)
    commands.set_status("pausable", "running", path, instance, MONDAY_MORNING + timedelta(hours=2))
    for _ in range(2):
        driver.run(TOUCH, MONDAY_MORNING + timedelta(hours=2), "pausable.t1")
    keys = driver.base["channels"].by_name("offline").accepted_keys()
    assert len(keys) == queued and max(Counter(keys).values()) == 1
    assert one(db, "SELECT count(*) FROM sends WHERE status IN ('sent', 'failed')") == queued
    with db() as con:
        events = [e[0] for e in con.execute("SELECT to_status FROM campaign_events ORDER BY occurred_at, seq").fetchall()]
    assert events == ["running", "paused", "running"]


def test_scheduled_launch_fires_at_its_time(driver, instance, db, workdir):
    write_campaign(workdir, "later", type="oneshot", steps=[{"name": "only", "intent": "introduce"}])
    path = str(workdir / "outbound.duckdb")
    message = commands.launch("later", path, instance, MONDAY_MORNING, at="2026-01-06T09:30:00+01:00")
    assert "08:30:00 UTC" in message
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'later'") == "scheduled"
    assert one(db, "SELECT count(*) FROM recipients") == 0  # the audience is frozen at launch, not before

    def tick(at):
        ctx = dg.build_sensor_context(instance=instance, resources={"clock": PipelineClock(now_iso=at.isoformat())})
        return scheduled_launch_sensor(ctx)

    assert isinstance(tick(MONDAY_MORNING + timedelta(hours=23, minutes=29)), dg.SkipReason)
    result = tick(MONDAY_MORNING + timedelta(hours=23, minutes=31))
    assert [r.partition_key for r in result.run_requests] == ["later"]
    for request in result.dynamic_partitions_requests:
        instance.delete_dynamic_partition(request.partitions_def_name, request.partition_keys[0])
    assert isinstance(tick(MONDAY_MORNING + timedelta(days=2)), dg.SkipReason)  # fires once
    driver.run(LAUNCH, MONDAY_MORNING + timedelta(hours=23, minutes=31), "later")
    assert one(db, "SELECT status FROM campaigns WHERE campaign_id = 'later'") == "running"
    assert one(db, "SELECT count(*) FROM recipients") > 0
    with pytest.raises(ValueError, match="no zone offset"):
        commands.launch("later", path, instance, MONDAY_MORNING, at="2026-01-06T09:30:00")


def test_stop_is_final_and_test_send_stays_out_of_campaign_tables(driver, instance, db, workdir):
    write_campaign(workdir, "stoppy", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    path = str(workdir / "outbound.duckdb")
    commands.create("stoppy", path, instance, MONDAY_MORNING)
    out = commands.test_send("stoppy", "+1 415 555 0100", path, MONDAY_MORNING, step="intro")
    assert "sent via offline sms to +14155550100" in out
    assert one(db, "SELECT count(*) FROM test_sends WHERE campaign_id = 'stoppy'") == 1
    assert one(db, "SELECT count(*) FROM sends") == 0
    commands.set_status("stoppy", "stopped", path, instance, MONDAY_MORNING)
    with pytest.raises(IllegalTransition, match="stopped: it cannot become running"):
        commands.set_status("stoppy", "running", path, instance, MONDAY_MORNING)
    with pytest.raises(ValueError, match="only a draft or scheduled campaign can be launched"):
        commands.launch("stoppy", path, instance, MONDAY_MORNING)
