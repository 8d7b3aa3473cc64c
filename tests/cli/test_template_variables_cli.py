"""`outbound campaign create` warns about, and `launch` refuses, template variables no contact of the audience can fill."""

from __future__ import annotations

import shutil

import pytest

from outbound_pipeline import settings
from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.store import campaigns as campaign_store
from tests.conftest import MONDAY_MORNING


def _reminder(workdir, name: str, template: str) -> None:
    shutil.copy(settings.REPO_ROOT / "data" / "appointment_reminders.csv", workdir)
    yaml = (settings.REPO_ROOT / "data" / "campaigns" / "appointment_reminder.yaml").read_text(encoding="utf-8")
    start = yaml.index("    template: >-")
    text = yaml[:start].replace("name: appointment_reminder", f"name: {name}") + f"    template: \"{template}\"\n"
    (workdir / "campaigns" / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_create_warns_and_launch_refuses_a_variable_no_contact_can_fill(workdir, instance, db):
    path = str(workdir / "outbound.duckdb")
    _reminder(workdir, "typo", "Hi {{first_name}}, see you on {{appointment_day}} at {{ clinic }} ({{campaign.name}}).")
    created = commands.create("typo", path, instance, MONDAY_MORNING)
    assert created.startswith("created typo")
    assert "warning: template variables no contact can fill" in created
    assert "step 'reminder' (template): {{appointment_day}} is not a contact field, a built-in name or a custom column of the " \
           "campaign's lists (their columns: appointment_date, clinic)" in created
    with pytest.raises(ValueError, match=r"(?s)launch of .typo. refused, the campaign is unchanged: .*\{\{appointment_day\}\}"):
        commands.launch("typo", path, instance, MONDAY_MORNING)
    with db() as con:
        assert campaign_store.current_status(con, "typo") == "draft"
        assert con.execute("SELECT count(*) FROM recipients WHERE campaign_id = 'typo'").fetchall()[0][0] == 0


def test_create_of_a_campaign_whose_variables_all_exist_says_nothing_more(workdir, instance):
    _reminder(workdir, "fine", "Hi {{first_name}}, see you on {{appointment_date}} at {{clinic}}.")
    assert commands.create("fine", str(workdir / "outbound.duckdb"), instance, MONDAY_MORNING) == "created fine (oneshot, 1 steps) as draft"
