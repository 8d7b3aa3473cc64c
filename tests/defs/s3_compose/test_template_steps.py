"""Template steps through the compose stage: rendered per lead, flagged when a variable is missing, held in auto mode
unless `send_with_missing`, failed with a reason when the step cannot reach the lead, mixed with composed steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from outbound_pipeline import settings
from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.runner import LAUNCH, TOUCH, Driver
from tests.conftest import MONDAY_MORNING, add_campaign

LEADS_CSV = """\
first_name,last_name,email,phone,company,role,country,deal_stage,appointment_date
Ana,Lopez,ana@acme.example,+34 612 345 201,Acme Freight,COO,ES,proposal,Tue 13 Jan
Ben,Okafor,ben@bolt.example,+34 612 345 202,Bolt Retail,COO,ES,{{campaign.name}},Wed 14 Jan
Cleo,Park,cleo@cargo.example,,Cargo Co,COO,ES,,Thu 15 Jan
"""

HEADER = """\
name: {name}
goal: Remind customers of what we agreed and invite a reply.
type: {type}
approval: {approval}
from_name: Routewise
audience:
  lead_list: tpl_leads.csv
  default_region: ES
sending_window: {{start: "00:00", end: "23:59", days: [mon, tue, wed, thu, fri, sat, sun], default_timezone: Europe/Madrid}}
"""


def write(workdir: Path, name: str, steps: str, type_: str = "oneshot", approval: str = "auto", extra: str = "") -> str:
    (workdir / "tpl_leads.csv").write_text(LEADS_CSV, encoding="utf-8")
    text = HEADER.format(name=name, type=type_, approval=approval) + extra + "steps:\n" + steps
    (workdir / "campaigns" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return name


def launch_and_draft(driver: Driver, instance, name: str, touch: int = 1, selection: list[str] | None = None) -> str:
    add_campaign(instance, name)
    assert driver.run(LAUNCH, MONDAY_MORNING, name).success
    key = touch_key(name, touch)
    instance.add_dynamic_partitions(touch_partitions.name, [key])
    assert driver.run(selection or ["drafts", "recipient_steps"], MONDAY_MORNING, key).success
    return key


def frame(db, sql: str, params: list | None = None) -> pd.DataFrame:
    with db() as con:
        return con.execute(sql, params or []).df()


def by_first_name(db, name: str) -> dict[str, dict]:
    rows = frame(db, "SELECT l.first_name, d.* FROM drafts d JOIN leads l USING (lead_id) WHERE d.campaign_id = ?", [name])
    return {r["first_name"]: r for r in rows.to_dict("records")}


EVERY_FORM = """\
  - name: recap
    channels: [email]
    subject: "{{company}} / {{deal_stage}}"
    template: >-
      {{name}}|{{first_name}}|{{email}}|{{phone}}|{{deal_stage}}|{{contact.name}}|{{contact.company}}|{{campaign.name}}|{{step.name}}|{{company.name}}
"""


def test_every_variable_form_is_rendered_into_the_draft(driver, instance, workdir, db, monkeypatch):
    monkeypatch.delenv("OUTBOUND_ORGANISATION_NAME", raising=False)
    name = write(workdir, "tpl_forms", EVERY_FORM)
    launch_and_draft(driver, instance, name)
    drafts = by_first_name(db, name)
    ana = drafts["Ana"]
    assert ana["body"] == ("Ana Lopez|Ana|ana@acme.example|+34612345201|proposal|Ana Lopez|Acme Freight|tpl_forms|recap|Routewise")
    assert ana["subject"] == "Acme Freight / proposal"
    assert ana["channel"] == "email" and ana["composer"] == "template" and ana["cost_usd"] == 0.0
    assert json.loads(ana["cited_snippet_ids"]) == [] and json.loads(ana["flags"]) == []
    # Single pass: a value that looks like a placeholder is printed as written, never rendered again.
    assert "|{{campaign.name}}|" in drafts["Ben"]["body"] and json.loads(drafts["Ben"]["flags"]) == []
    # Cleo has no phone and no deal stage: both placeholders stay visible and are flagged.
    assert "|{{phone}}|{{deal_stage}}|" in drafts["Cleo"]["body"] and drafts["Cleo"]["subject"] == "Cargo Co / {{deal_stage}}"
    assert json.loads(drafts["Cleo"]["flags"]) == ["template_variable_missing:deal_stage", "template_variable_missing:phone"]


def test_organisation_name_setting_wins_over_from_name(driver, instance, workdir, db, monkeypatch):
    monkeypatch.setenv("OUTBOUND_ORGANISATION_NAME", "Routewise Ltd")
    name = write(workdir, "tpl_org", EVERY_FORM)
    launch_and_draft(driver, instance, name)
    assert by_first_name(db, name)["Ana"]["body"].endswith("|recap|Routewise Ltd")


SMS_REMINDER = """\
  - name: reminder
    channels: [sms]
    template: "Hi {{first_name}}, stage {{deal_stage}} on {{appointment_date}}."
"""


def only_cleo_has_a_region(workdir: Path) -> None:
    """A `region` column only Cleo (no phone, so no SMS draft) fills: the variable exists, yet every draft misses it."""
    lines = LEADS_CSV.splitlines()
    rows = [lines[0] + ",region", *(line + ("," + "North" if line.startswith("Cleo") else ",") for line in lines[1:])]
    (workdir / "tpl_leads.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_missing_value_is_held_in_auto_mode_and_waits_for_a_person(driver, instance, workdir, db):
    name = write(workdir, "tpl_hold", SMS_REMINDER.replace("{{deal_stage}}", "{{region}}"))
    only_cleo_has_a_region(workdir)
    key = launch_and_draft(driver, instance, name, selection=TOUCH)
    approvals = frame(db, "SELECT * FROM approvals WHERE campaign_id = ?", [name])
    drafts = by_first_name(db, name)
    assert set(drafts) == {"Ana", "Ben"}  # Cleo has no phone: no draft
    assert all(json.loads(d["flags"]) == ["template_variable_missing:region"] for d in drafts.values())
    assert approvals.empty, "a flagged draft is never approved automatically"
    assert frame(db, "SELECT * FROM sends WHERE campaign_id = ?", [name]).empty
    # The reviewer sees the flag and the hold in the queue, and decides by id.
    result = driver.run(["approvals"], MONDAY_MORNING, key)
    queue = result.asset_materializations_for_node("approvals")[0].metadata["review_queue"].value
    assert "template_variable_missing:region" in queue and "2 held for a person" in queue
    ana = drafts["Ana"]["draft_id"]
    decided = driver.run(["approvals"], MONDAY_MORNING, key, run_config={"ops": {"approvals": {"config": {
        "reviewer": "dana", "edits": {ana: "Hi Ana, see you on Tue 13 Jan."}}}}})
    assert decided.success
    rows = frame(db, "SELECT draft_id, decision, mode, reviewer FROM approvals WHERE campaign_id = ?", [name])
    assert rows.to_dict("records") == [{"draft_id": ana, "decision": "edited", "mode": "manual", "reviewer": "dana"}]


def test_send_with_missing_sends_the_flagged_draft_as_rendered(driver, instance, workdir, db):
    name = write(workdir, "tpl_send_missing", SMS_REMINDER.replace("{{deal_stage}}", "{{region}}"), extra="send_with_missing: true\n")
    only_cleo_has_a_region(workdir)
    launch_and_draft(driver, instance, name, selection=TOUCH)
    approvals = frame(db, "SELECT reviewer, decision FROM approvals WHERE campaign_id = ?", [name])
    assert len(approvals) == 2 and set(approvals["reviewer"]) == {"auto"}
    sends = frame(db, "SELECT body, channel, segments FROM sends WHERE campaign_id = ?", [name])
    assert len(sends) == 2 and set(sends["channel"]) == {"sms"} and sends["body"].str.contains("{{region}}", regex=False).all()


def test_a_variable_no_contact_can_fill_refuses_the_launch(driver, instance, workdir, db):
    name = write(workdir, "tpl_typo", SMS_REMINDER.replace("{{deal_stage}}", "{{dael_stage}}"))
    add_campaign(instance, name)
    result = driver.run(LAUNCH, MONDAY_MORNING, name, raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
    assert "step 'reminder' (template): {{dael_stage}} is not a contact field" in message and "deal_stage" in message
    assert frame(db, "SELECT * FROM recipients WHERE campaign_id = ?", [name]).empty


@pytest.mark.parametrize("channels", [["sms"], ["whatsapp"], ["whatsapp", "sms"]])
def test_lead_without_phone_fails_with_the_reason_and_is_not_rerouted(driver, instance, workdir, db, channels):
    steps = SMS_REMINDER.replace("[sms]", "[" + ", ".join(channels) + "]")
    name = write(workdir, f"tpl_nophone_{len(channels)}_{channels[0]}", steps)
    launch_and_draft(driver, instance, name, selection=TOUCH)
    recipients = frame(db, """SELECT l.first_name, r.status, r.status_reason FROM recipients r JOIN leads l USING (lead_id)
                              WHERE r.campaign_id = ? ORDER BY 1""", [name])
    cleo = recipients[recipients["first_name"] == "Cleo"].iloc[0]
    assert cleo["status"] == "failed" and cleo["status_reason"].startswith("no phone number")
    assert set(recipients[recipients["first_name"] != "Cleo"]["status"]) == {"active"}
    assert "Cleo" not in by_first_name(db, name), "not rerouted to email"
    sends = frame(db, "SELECT channel FROM sends WHERE campaign_id = ?", [name])
    assert set(sends["channel"]) <= set(channels) and len(sends) == 2


def test_whatsapp_outside_the_window_records_the_content_template_body(driver, instance, workdir, db):
    steps = """\
  - name: nudge
    channels: [whatsapp]
    template: "Hi {{first_name}}, free text."
    whatsapp_template:
      content_sid: HX00000000000000000000000000000009
      variables: {"1": first_name, "2": "static:Tuesday", "3": deal_stage}
      body: "Hello {{1}}, see you {{2}} ({{3}})."
"""
    name = write(workdir, "tpl_wa", steps)
    launch_and_draft(driver, instance, name)
    drafts = by_first_name(db, name)
    assert drafts["Ana"]["body"] == "Hello Ana, see you Tuesday (proposal)."
    assert drafts["Ana"]["channel"] == "whatsapp"


MIXED = """\
  - name: intro
    channels: [email]
    intent: introduce
    cta: a 20-minute call
  - name: reminder
    delay: 0h
    channels: [email]
    subject: "Your {{deal_stage}}"
    template: "Hi {{first_name}}, a reminder about {{deal_stage}} from {{company.name}}."
"""


def test_mixed_campaign_composes_one_step_and_renders_the_other(driver, instance, workdir, db):
    name = write(workdir, "tpl_mixed", MIXED.replace("{{deal_stage}}", "{{role}}"), type_="drip")
    key1 = launch_and_draft(driver, instance, name, selection=TOUCH)
    composed = frame(db, "SELECT composer, cited_snippet_ids, channel FROM drafts WHERE campaign_id = ? AND touch = 1", [name])
    assert len(composed) == 3 and set(composed["composer"]) == {"rules"}
    assert all(json.loads(c) for c in composed["cited_snippet_ids"])
    assert key1.endswith("1")
    key2 = touch_key(name, 2)
    instance.add_dynamic_partitions(touch_partitions.name, [key2])
    later = MONDAY_MORNING.replace(hour=10)
    assert driver.run(TOUCH, later, key2).success
    rendered = frame(db, "SELECT d.composer, d.subject, d.body, d.cited_snippet_ids, l.first_name FROM drafts d JOIN leads l USING (lead_id) "
                         "WHERE d.campaign_id = ? AND d.touch = 2 ORDER BY l.first_name", [name])
    assert not rendered.empty and set(rendered["composer"]) == {"template"}
    first = rendered.iloc[0]
    assert first["subject"] == "Your COO" and first["body"] == f"Hi {first['first_name']}, a reminder about COO from Routewise."
    assert set(rendered["cited_snippet_ids"]) == {"[]"}


def test_example_appointment_reminder_runs_end_to_end(driver, instance, workdir, db):
    shutil.copy(settings.REPO_ROOT / "data" / "campaigns" / "appointment_reminder.yaml", workdir / "campaigns")
    shutil.copy(settings.REPO_ROOT / "data" / "appointment_reminders.csv", workdir)
    launch_and_draft(driver, instance, "appointment_reminder", selection=TOUCH)
    recipients = frame(db, "SELECT status, status_reason FROM recipients WHERE campaign_id = 'appointment_reminder'")
    assert len(recipients) == 10 and (recipients["status"] == "failed").sum() == 1
    assert recipients["status_reason"].dropna().str.startswith("no phone number").all()
    drafts = frame(db, "SELECT body, flags FROM drafts WHERE campaign_id = 'appointment_reminder'")
    assert len(drafts) == 9 and drafts["body"].str.contains("Brightsmile Dental").all()
    assert (drafts["flags"] == '["template_variable_missing:appointment_date"]').sum() == 1
    sends = frame(db, "SELECT status, segments, cost_usd FROM sends WHERE campaign_id = 'appointment_reminder'")
    assert len(sends) == 8 and set(sends["segments"]) == {1}
    assert sends.loc[sends["status"] == "sent", "cost_usd"].round(4).eq(0.0079).all()
    researched = frame(db, "SELECT count(*) AS n FROM research_snippets WHERE campaign_id = 'appointment_reminder'")
    assert researched["n"][0] == 0, "a template-only campaign is not researched at launch"


@pytest.mark.slow
def test_outbound_demo_runs_the_example_campaign_and_prints_its_metrics(workdir, capsys):
    from outbound_pipeline.cli.main import main

    shutil.copy(settings.REPO_ROOT / "data" / "campaigns" / "appointment_reminder.yaml", workdir / "campaigns")
    shutil.copy(settings.REPO_ROOT / "data" / "appointment_reminders.csv", workdir)
    assert main(["demo", "--campaign", "appointment_reminder", "--ephemeral"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("campaign_id"))
    assert {"sent", "delivered", "delivery", "reply", "cost"} <= set(header.split())
    rows = [line.split() for line in out.splitlines() if line.lstrip().startswith("appointment_reminder ")]
    assert rows and rows[0][1] == "all" and int(rows[0][2]) > 0  # the whole campaign's row, with messages sent


def _opt_out(db, lead_first_name: str, channel: str) -> None:
    from outbound_pipeline.store.warehouse import insert_new

    with db() as con:
        lead_id = con.execute("SELECT lead_id FROM leads WHERE first_name = ?", [lead_first_name]).fetchall()[0][0]
        insert_new(con, "suppressions", pd.DataFrame([{"suppression_id": f"sup_{lead_id}_{channel}", "lead_id": lead_id, "address": None,
                                                        "channel": channel, "reason": "opt_out", "source": "test", "created_at": MONDAY_MORNING}]))


def test_a_channel_the_lead_opted_out_of_is_skipped_and_a_step_left_with_none_fails_with_the_reason(driver, instance, workdir, db):
    both = write(workdir, "tpl_pref_both", SMS_REMINDER.replace("[sms]", "[sms, whatsapp]"))
    only = write(workdir, "tpl_pref_sms", SMS_REMINDER)
    for name in (both, only):
        add_campaign(instance, name)
        assert driver.run(LAUNCH, MONDAY_MORNING, name).success
    _opt_out(db, "Ana", "sms")
    for name in (both, only):
        instance.add_dynamic_partitions(touch_partitions.name, [touch_key(name, 1)])
        assert driver.run(["drafts", "recipient_steps"], MONDAY_MORNING, touch_key(name, 1)).success
    assert by_first_name(db, both)["Ana"]["channel"] == "whatsapp" and by_first_name(db, both)["Ben"]["channel"] == "sms"
    assert "Ana" not in by_first_name(db, only)
    reasons = frame(db, "SELECT l.first_name, r.status, r.status_reason FROM recipients r JOIN leads l USING (lead_id) "
                        "WHERE r.campaign_id = ? AND r.status = 'failed' ORDER BY 1", [only])
    assert reasons.values.tolist() == [["Ana", "failed", "opted out of sms (step reminder: sms)"],
                                       ["Cleo", "failed", "no phone number (step reminder: sms)"]]
