"""A launch is all or nothing, and a launched campaign keeps the spec it was launched with."""

from __future__ import annotations

import dagster as dg
import pytest

from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.defs.campaign_status import campaign_state
from outbound_pipeline.runner import LAUNCH
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import write_campaign


def state(db, name: str) -> tuple:
    with db() as con:
        row = con.execute("SELECT status, spec_hash, launched_at FROM campaigns WHERE campaign_id = ?", [name]).fetchall()
        events = con.execute("SELECT from_status, to_status, reason FROM campaign_events WHERE campaign_id = ? ORDER BY seq", [name]).fetchall()
        recipients = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [name]).fetchall()[0][0]
    return row, events, recipients


@pytest.mark.parametrize("lead_list", ["missing.csv", "no_first_name.csv"])
def test_a_launch_whose_lead_list_cannot_be_read_leaves_the_campaign_as_it_was(driver, instance, db, workdir, lead_list):
    (workdir / "no_first_name.csv").write_text("company,email\nAcme,ana@example.com\n", encoding="utf-8")
    write_campaign(workdir, "broken", type="drip", steps=[{"name": "intro", "intent": "introduce"}],
                   audience={"lead_list": lead_list, "default_region": "US"})
    path = str(workdir / "outbound.duckdb")
    commands.create("broken", path, instance, MONDAY_MORNING)
    before = state(db, "broken")
    assert before[0][0][0] == "draft"

    with pytest.raises(ValueError, match=r"launch of 'broken' failed and was undone \(broken is still draft\): campaigns: .*lead list") as caught:
        commands.launch("broken", path, instance, MONDAY_MORNING)
    assert "Traceback" not in str(caught.value)
    assert state(db, "broken") == before  # status, events, recipients: untouched

    result = driver.run(LAUNCH, MONDAY_MORNING, "broken", raise_on_error=False)  # launch_job as the UI starts it
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "launch of 'broken' refused, the campaign is unchanged" in failure.step_failure_data.error.message
    assert state(db, "broken") == before
    seen = campaign_state(instance, "broken")  # what the schedules and sensors read: not running, left alone
    assert seen.status == "draft" and not seen.planned and not seen.tracked


def test_a_launch_failing_after_the_campaign_started_is_undone(driver, instance, db, workdir, monkeypatch):
    write_campaign(workdir, "halfway", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    path = str(workdir / "outbound.duckdb")
    commands.create("halfway", path, instance, MONDAY_MORNING)
    before = state(db, "halfway")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")  # research now calls a server that is not there: the last step fails
    monkeypatch.setenv("OUTBOUND_TAVILY_BASE_URL", "http://127.0.0.1:9")
    from outbound_pipeline.providers.research_tavily import TavilyResearch

    monkeypatch.setitem(TavilyResearch.__init__.__kwdefaults__, "attempts", 1)  # the step's own retries still run; no call retries
    with pytest.raises(ValueError, match=r"failed and was undone \(halfway is still draft\): research_snippets"):
        commands.launch("halfway", path, instance, MONDAY_MORNING)
    assert state(db, "halfway") == before
    assert campaign_state(instance, "halfway").status == "draft"
    monkeypatch.delenv("TAVILY_API_KEY")
    assert commands.launch("halfway", path, instance, MONDAY_MORNING).startswith("launched halfway:")
    assert state(db, "halfway")[0][0][0] == "running"


def test_an_edited_file_is_refused_for_a_launched_campaign_naming_what_changed(driver, instance, db, workdir):
    write_campaign(workdir, "frozen", type="drip", steps=[{"name": "intro", "intent": "introduce"},
                                                          {"name": "nudge", "delay": "2d", "intent": "follow_up_on_signal"}])
    add_campaign(instance, "frozen")
    driver.run(LAUNCH, MONDAY_MORNING, "frozen")
    before = state(db, "frozen")
    assert driver.run(["campaigns"], MONDAY_MORNING, "frozen").success  # the same file again: nothing to do
    assert state(db, "frozen") == before

    write_campaign(workdir, "frozen", type="drip", steps=[{"name": "intro", "intent": "introduce"},
                                                          {"name": "nudge", "delay": "5d", "intent": "follow_up_on_signal"}])
    result = driver.run(["campaigns"], MONDAY_MORNING, "frozen", raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "campaign 'frozen' is running and runs on the spec frozen at its launch" in message
    assert "steps[1].delay: '2d' -> '5d'" in message and "nothing was written" in message
    assert len([e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]) == 0  # refused, not retried
    assert state(db, "frozen") == before
