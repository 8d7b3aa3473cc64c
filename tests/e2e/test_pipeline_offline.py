"""The whole offline pipeline, materialised in-process against a temporary DuckDB."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from outbound_pipeline.demo import run_demo
from outbound_pipeline.runner import LAUNCH, TOUCH, TRACK, track_config
from tests.conftest import MONDAY_MORNING, add_campaign


def counts(db, *tables: str) -> dict[str, int]:
    with db() as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}


def test_launch_imports_leads_freezes_audience_and_researches(driver, instance, db):
    add_campaign(instance, "demo_drip")
    result = driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    assert result.success
    got = counts(db, "campaigns", "leads", "lead_rejects", "recipients", "research_snippets")
    assert got["campaigns"] == 1
    assert got["leads"] == 295 and got["lead_rejects"] == 7  # 301 data lines: every one is a lead or a reject
    with db() as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM lead_rejects GROUP BY kind").fetchall())
    assert kinds == {"rejected": 4, "skipped": 2, "warning": 1}  # the warning's lead (good phone, bad email) is imported
    assert got["leads"] + kinds["rejected"] + kinds["skipped"] == 301
    with db() as con:
        per_lead = con.execute("SELECT count(*) FROM research_snippets GROUP BY lead_id").df()["count_star()"]
        audience = con.execute("SELECT count(*) FROM recipients r JOIN leads l USING (lead_id) WHERE l.role = 'Head of Customer Experience'").fetchall()[0][0]
    assert per_lead.between(3, 5).all()
    assert got["recipients"] == per_lead.size  # everyone in the audience was researched
    assert audience == 0  # the filter in demo_drip.yaml leaves this role out
    assert 200 < got["recipients"] < 295


@pytest.mark.slow  # the whole demo campaign: run by CI with `./run test -m slow`
def test_whole_campaign_runs_and_replied_leads_get_no_further_touch(driver, instance, db):
    result = run_demo("demo_drip", instance=instance, db_path=driver.base["warehouse"].path)
    m = result.metrics.set_index("touch")
    assert list(m.index) == [0, 1, 2, 3]
    assert m.loc[0, "sent"] == m.loc[[1, 2, 3], "sent"].sum()
    assert m.loc[1, "sent"] > m.loc[2, "sent"] > m.loc[3, "sent"] > 0  # replies, bounces and opt-outs thin each touch
    assert 0.9 < m.loc[0, "delivery_rate"] <= 1.0 and m.loc[0, "replied"] > 0
    with db() as con:
        late_touches = con.execute("""
            SELECT count(*) FROM sends s JOIN replies p ON p.campaign_id = s.campaign_id AND p.lead_id = s.lead_id
            WHERE p.intent <> 'opt_out' AND s.touch > p.touch AND s.recorded_at > p.received_at
        """).fetchall()[0][0]
        after_opt_out = con.execute("""
            SELECT count(*) FROM sends s JOIN leads l USING (lead_id)
            JOIN delivery_events e ON e.lead_id = s.lead_id AND e.event_type IN ('opted_out', 'bounced')
            WHERE s.recorded_at > e.occurred_at
        """).fetchall()[0][0]
        replied_status = con.execute("SELECT count(*) FROM recipients WHERE status = 'replied'").fetchall()[0][0]
        notified = con.execute("SELECT count(*) FROM notifications").fetchall()[0][0]
        unapproved = con.execute("SELECT count(*) FROM sends s LEFT JOIN approvals a USING (draft_id) WHERE a.draft_id IS NULL").fetchall()[0][0]
    assert late_touches == 0
    assert after_opt_out == 0
    assert replied_status > 0 and notified >= replied_status
    assert unapproved == 0


def test_rematerialising_partitions_does_not_duplicate_rows(driver, instance, db):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")
    later = MONDAY_MORNING + timedelta(days=2)
    driver.run(TRACK, later, run_config=track_config("demo_drip"))
    tables = ("leads", "lead_rejects", "recipients", "research_snippets", "drafts", "approvals", "sends", "delivery_events", "replies", "notifications")
    first = counts(db, *tables)
    ledger_before = len(driver.base["channels"].by_name("offline").accepted_keys())
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")
    driver.run(TRACK, later, run_config=track_config("demo_drip"))
    assert counts(db, *tables) == first
    assert first["sends"] > 0 and first["delivery_events"] > 0
    assert len(driver.base["channels"].by_name("offline").accepted_keys()) == ledger_before  # nothing sent twice


@pytest.mark.slow  # the whole demo campaign: run by CI with `./run test -m slow`
def test_demo_is_deterministic(tmp_path, workdir, instance, monkeypatch):
    import dagster as dg

    first = run_demo("demo_drip", instance=instance, db_path=str(tmp_path / "a.duckdb")).metrics
    monkeypatch.setenv("OUTBOUND_OFFLINE_LEDGER_DIR", str(tmp_path / "ledger_b"))
    second = run_demo("demo_drip", instance=dg.DagsterInstance.ephemeral(), db_path=str(tmp_path / "b.duckdb")).metrics
    cols = [c for c in first.columns if c != "computed_at"]
    assert len(first) == 4 and first.set_index("touch").loc[0, "sent"] > 600  # each run wrote its own database
    pd.testing.assert_frame_equal(first[cols], second[cols], check_exact=False, rtol=1e-12)  # sums may differ in the last bit


def test_unknown_campaign_partition_fails_clearly(driver, instance):
    add_campaign(instance, "no_such_campaign")
    with pytest.raises(Exception, match="unknown campaign 'no_such_campaign'"):
        driver.run(["campaigns"], MONDAY_MORNING, "no_such_campaign")


@pytest.mark.slow  # the whole demo campaign: run by CI with `./run test -m slow`
def test_demo_stays_offline_even_with_credentials_in_the_environment(workdir, instance, monkeypatch, tmp_path):
    for name in ("TAVILY_API_KEY", "OPENAI_API_KEY", "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, "real-looking-secret")
    for name in ("OUTBOUND_TAVILY_BASE_URL", "OPENAI_BASE_URL", "RESEND_API_URL", "OUTBOUND_TWILIO_BASE_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens: any real call would fail the demo
    result = run_demo("demo_drip", instance=instance, db_path=str(tmp_path / "demo.duckdb"))
    assert result.metrics.set_index("touch").loc[0, "sent"] > 0
    from outbound_pipeline.store import warehouse

    with warehouse.connect(tmp_path / "demo.duckdb") as con:
        providers = {r[0] for r in con.execute("SELECT DISTINCT provider FROM sends WHERE provider IS NOT NULL").fetchall()}
        composers = {r[0] for r in con.execute("SELECT DISTINCT composer FROM drafts").fetchall()}
    assert providers == {"offline"} and composers == {"rules"}
