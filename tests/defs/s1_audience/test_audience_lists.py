"""A campaign's audience from contact lists and a segment, frozen at launch by the `recipients` asset."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from outbound_pipeline.cli.contacts import ListInUse, import_file
from outbound_pipeline.store import campaigns as campaign_store
from tests.conftest import add_campaign

NOW = datetime(2026, 3, 10, 12, 0)
SELECTION = ["campaigns", "campaign_events", "leads", "lead_rejects", "recipients"]

PIPELINE = """phone_number,name,email,company,deal_stage,employees,renewal
+14155550101,Ana Ruiz,ana@acme.example,Acme,won,120,2026-04-01
+14155550102,Ben Ode,ben@beta.example,Beta,trial,9,2026-02-15
+14155550103,Cy Lee,cy@gamma.example,Gamma,lost,500,2026-05-20
+14155550104,Di Po,di@delta.example,Delta,won,40,2026-03-01
"""
EVENTS = """phone_number,name,email,company,deal_stage
+14155550105,Eve Stone,eve@eps.example,Epsilon,trial
+14155550101,Ana Ruiz,ana@acme.example,Acme,won
"""


def write_campaign(workdir: Path, name: str, audience: str) -> None:
    (workdir / "campaigns" / f"{name}.yaml").write_text(f"""name: {name}
goal: Book a call with operations leaders about late deliveries.
type: oneshot
approval: manual
audience:
{audience}
steps:
  - intent: Introduce the late-delivery report.
""")


def lead_ids(db, campaign: str) -> list[str]:
    with db() as con:
        rows = con.execute("SELECT l.first_name FROM recipients r JOIN leads l USING (lead_id) WHERE r.campaign_id = ? ORDER BY 1",
                           [campaign]).fetchall()
    return [r[0] for r in rows]


def launch(driver, instance, workdir: Path, name: str, audience: str) -> None:
    write_campaign(workdir, name, audience)
    add_campaign(instance, name)
    driver.run(SELECTION, NOW, name)


@pytest.fixture
def lists(workdir: Path) -> Path:
    (workdir / "pipeline.csv").write_text(PIPELINE)
    (workdir / "events.csv").write_text(EVENTS)
    db_path = str(workdir / "outbound.duckdb")
    import_file(str(workdir / "pipeline.csv"), "pipeline", db_path, now=NOW - timedelta(days=30))
    import_file(str(workdir / "events.csv"), "events", db_path, now=NOW - timedelta(days=30))
    return workdir


@pytest.mark.parametrize(("segment", "expected"), [
    ("[{field: deal_stage, op: in, value: [won, trial]}]", ["Ana", "Ben", "Di", "Eve"]),
    ("[{field: deal_stage, op: not_in, value: [won]}]", ["Ben", "Cy", "Eve"]),
    ("[{field: employees, op: gt, value: 100}]", ["Ana", "Cy"]),
    ("[{field: employees, op: lte, value: 40}]", ["Ben", "Di"]),
    ("[{field: renewal, op: lt, value: 2026-03-10}]", ["Ben", "Di"]),
    ("[{field: renewal, op: gte, value: '2026-04-01'}]", ["Ana", "Cy"]),
    ("[{field: company, op: contains, value: ps}]", ["Eve"]),
    ("[{field: employees, op: exists, value: false}]", ["Eve"]),
    ("[{op: never_contacted}]", ["Cy", "Di", "Eve"]),
    ("[{op: not_contacted_within, value: 14d}]", ["Ben", "Cy", "Di", "Eve"]),
    ("[{op: replied_within, value: 7d}]", ["Ana"]),
    ("[{op: opened_within, value: 30d}]", ["Ben"]),
    ("[{field: deal_stage, op: in, value: [won, trial]}, {op: not_contacted_within, value: 14d}]", ["Ben", "Di", "Eve"]),
])
def test_segment_operators_pick_the_recipients(lists, driver, instance, db, segment, expected):
    with db() as con:
        ids = dict(con.execute("SELECT first_name, lead_id FROM leads").fetchall())
        con.execute("""INSERT INTO sends (send_id, draft_id, campaign_id, touch, lead_id, channel, to_address, body, status, cost_usd,
                       attempts, recorded_at, sent_at, updated_at) VALUES
                       ('s1', 'd1', 'old', 1, ?, 'email', 'ana@acme.example', 'hi', 'sent', 0, 1, ?, ?, ?),
                       ('s2', 'd2', 'old', 1, ?, 'email', 'ben@beta.example', 'hi', 'sent', 0, 1, ?, ?, ?)""",
                    [ids["Ana"], NOW - timedelta(days=3), NOW - timedelta(days=3), NOW,
                     ids["Ben"], NOW - timedelta(days=20), NOW - timedelta(days=20), NOW])
        con.execute("""INSERT INTO replies (reply_id, send_id, campaign_id, lead_id, channel, from_address, body, intent, received_at,
                       provider, ingested_at) VALUES ('r1', 's1', 'old', ?, 'email', 'ana@acme.example', 'yes', 'interested', ?, 'offline', ?)""",
                    [ids["Ana"], NOW - timedelta(days=2), NOW])
        con.execute("""INSERT INTO delivery_events (event_id, send_id, campaign_id, lead_id, channel, event_type, occurred_at, provider,
                       ingested_at) VALUES ('e1', 's2', 'old', ?, 'email', 'opened', ?, 'offline', ?)""",
                    [ids["Ben"], NOW - timedelta(days=19), NOW])
    launch(driver, instance, lists, "seg", f"  lists: [pipeline, events]\n  segment: {segment}")
    assert lead_ids(db, "seg") == expected


def test_a_contact_in_two_lists_is_one_recipient_and_the_old_filter_still_works(lists, driver, instance, db):
    launch(driver, instance, lists, "both", "  lists: [pipeline, events]\n  filter: {deal_stage: [won]}")
    assert lead_ids(db, "both") == ["Ana", "Di"]
    with db() as con:
        assert con.execute("SELECT count(*) FROM list_members WHERE lead_id = (SELECT lead_id FROM leads WHERE first_name = 'Ana')"
                           ).fetchall()[0][0] == 2


def test_lead_list_file_is_imported_into_its_own_list_and_combines_with_lists(lists, driver, instance, db):
    launch(driver, instance, lists, "mixed", "  lead_list: pipeline.csv\n  lists: [events]\n  segment: [{field: deal_stage, op: eq, value: trial}]")
    assert lead_ids(db, "mixed") == ["Ben", "Eve"]
    with db() as con:
        assert con.execute("SELECT count(*) FROM list_members WHERE list_name = 'pipeline.csv'").fetchall()[0][0] == 4


def test_an_unknown_list_fails_the_launch_with_its_name(lists, driver, instance, db):
    write_campaign(lists, "typo", "  lists: [pipelin]")
    add_campaign(instance, "typo")
    result = driver.run(SELECTION, NOW, "typo", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "'pipelin'" in str(failure.event_specific_data) and "outbound contacts import" in str(failure.event_specific_data)


def test_the_audience_is_frozen_and_a_running_campaigns_list_refuses_new_contacts(lists, driver, instance, db):
    launch(driver, instance, lists, "live", "  lists: [pipeline]")
    assert lead_ids(db, "live") == ["Ana", "Ben", "Cy", "Di"]
    db_path = str(lists / "outbound.duckdb")
    with pytest.raises(ListInUse, match=r"list 'pipeline' is used by running campaign\(s\) live.*pause it first"):
        import_file(str(lists / "events.csv"), "pipeline", db_path, now=NOW)
    with db() as con:
        assert con.execute("SELECT count(*) FROM list_members WHERE list_name = 'pipeline'").fetchall()[0][0] == 4
        campaign_store.transition(con, "live", "paused", "add contacts", "cli", NOW)
    summary = import_file(str(lists / "events.csv"), "pipeline", db_path, now=NOW)
    assert "2 rows read, 1 imported" in summary and "1 skipped (duplicates)" in summary
    driver.run(["recipients"], NOW + timedelta(hours=1), "live")
    assert lead_ids(db, "live") == ["Ana", "Ben", "Cy", "Di"]  # frozen at launch: Eve joined the list later
