"""The dial stage as Dagster runs it: the dial step and call metrics materialised offline, the dial sensor, and the
shipped voice campaign through `outbound demo`."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from outbound_pipeline import settings
from outbound_pipeline.cli.campaign import status_report
from outbound_pipeline.defs.campaign_status import report_status
from outbound_pipeline.defs.resources import CampaignCatalog
from outbound_pipeline.defs.s9_dial.sensors import dial_sensor
from outbound_pipeline.demo import run_demo
from outbound_pipeline.runner import DIAL, LAUNCH, Driver, offline_services
from outbound_pipeline.store import calls as store
from outbound_pipeline.store import warehouse
from tests.conftest import add_campaign

START = datetime(2026, 1, 5, 15, 0)  # Monday 10:00 in New York


@pytest.fixture
def voice_data(workdir: Path) -> Path:
    shutil.copytree(settings.DATA_DIR / "agents", workdir / "agents")
    shutil.copy(settings.DATA_DIR / "call_contacts.csv", workdir / "call_contacts.csv")
    return workdir


def test_dial_runs_and_call_metrics(voice_data: Path, driver: Driver, instance: dg.DagsterInstance):
    driver.base.update(offline_services(driver.base))
    add_campaign(instance, "demo_calls")
    driver.run(LAUNCH, START, "demo_calls")
    result = driver.run(DIAL, START)
    meta = result.asset_materializations_for_node("dial")[0].metadata
    assert meta["queued"].value == 20 and meta["placed"].value == 3  # max_concurrent 3
    for minute in (2, 4, 6):
        driver.run(DIAL, START + timedelta(minutes=minute))
    driver.run(["call_metrics"], START + timedelta(minutes=40))
    with warehouse.connect(voice_data / "outbound.duckdb") as con:
        [row] = store.read_call_metrics(con, "demo_calls").to_dict("records")
        stats = store.call_stats(con, "demo_calls")
        prompts = con.execute("SELECT count(*) FROM calls WHERE from_number NOT IN ('+12125550197', '+13125550198')").fetchall()
    assert row["calls_placed"] == stats["call_metrics"]["total_attempts"] > 3
    assert row["answered_human"] + row["voicemail"] + row["no_answer"] + row["failed"] <= row["calls_placed"]
    assert float(row["cost_usd"]) == pytest.approx(stats["call_metrics"]["cost_usd"], abs=1e-4)
    assert prompts == [(0,)]  # every caller ID from the pool; its unusable entry skipped
    assert "campaign demo_calls (running): 20 contacts" in status_report(str(voice_data / "outbound.duckdb"), "demo_calls")
    context_file = next((voice_data / "landing" / "voice_calls").glob("call_*.json"))
    assert "You are Ava" in context_file.read_text()  # the agent's prompt file reached the call's context


def test_dial_sensor_runs_only_for_voice_campaigns(voice_data: Path, instance: dg.DagsterInstance):
    catalog = CampaignCatalog(campaigns_dir=str(voice_data / "campaigns"), leads_dir=str(voice_data))
    with dg.build_sensor_context(instance=instance, resources={"catalog": catalog}) as context:
        assert isinstance(dial_sensor(context), dg.SkipReason)
    add_campaign(instance, "demo_drip")
    add_campaign(instance, "demo_calls")
    report_status(instance, "demo_drip", "running")
    with dg.build_sensor_context(instance=instance, resources={"catalog": catalog}) as context:
        assert isinstance(dial_sensor(context), dg.SkipReason)  # a message campaign is not dialled
    report_status(instance, "demo_calls", "running")
    with dg.build_sensor_context(instance=instance, resources={"catalog": catalog}, cursor="4") as context:
        request = dial_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.run_key == "dial:5"


@pytest.mark.slow
def test_the_shipped_voice_campaign_runs_offline_end_to_end(voice_data: Path, instance: dg.DagsterInstance):
    result = run_demo("demo_calls", instance=instance, db_path=str(voice_data / "outbound.duckdb"))
    assert result.report.startswith("campaign demo_calls (completed): 20 contacts, 100% done")
    with warehouse.connect(voice_data / "outbound.duckdb") as con:
        stats = store.call_stats(con, "demo_calls")
        retried = con.execute("SELECT count(*) FROM calls WHERE attempt > 1").fetchall()[0][0]
        turns = con.execute("SELECT count(DISTINCT call_id) FROM call_turns").fetchall()[0][0]
        suppressed = con.execute("SELECT count(*) FROM suppressions s JOIN replies r ON r.reply_id = s.source "
                                 "WHERE r.channel = 'voice' AND s.channel = 'all'").fetchall()[0][0]
    contacts = stats["contacts"]
    assert contacts["pending"] == contacts["calling"] == 0 and contacts["completed"] + contacts["voicemail"] > 10
    assert retried > 0 and stats["call_metrics"]["total_attempts"] > 20 and sum(stats["outcomes"].values()) > 5
    assert turns >= contacts["completed"] + contacts["voicemail"]
    assert stats["call_metrics"]["cost_usd"] > 0
    assert suppressed == stats["outcomes"].get("do_not_call", 0)  # asked not to be called: suppressed on every channel
