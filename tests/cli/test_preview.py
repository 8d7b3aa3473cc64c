"""`outbound campaign preview`: each lead's rendered message, read-only."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from outbound_pipeline import settings
from outbound_pipeline.cli.main import main
from outbound_pipeline.cli.preview import preview

NOW = datetime(2026, 1, 5, 9, 0)


@pytest.fixture
def example(workdir: Path) -> Path:
    shutil.copy(settings.REPO_ROOT / "data" / "campaigns" / "appointment_reminder.yaml", workdir / "campaigns")
    shutil.copy(settings.REPO_ROOT / "data" / "appointment_reminders.csv", workdir)
    return workdir


def test_preview_renders_each_lead_with_segments_cost_missing_and_failures(example: Path) -> None:
    text = preview("appointment_reminder", limit=10, db_path=str(example / "outbound.duckdb"), now=NOW)
    assert "Hi Lucia, this is Brightsmile Dental: a reminder of your appointment on Tue 13 Jan 10:30." in text
    assert "1 segment (GSM-7, 152 characters) · $0.0079" in text
    assert "on >>{{appointment_date}}<<." in text and "missing: {{appointment_date}} -> held for a person" in text
    assert "Raul Serrano" in text and "FAILED: no phone number" in text
    assert "10 previewed: 1 with missing variables, 1 unreachable, 9 SMS segments, $0.0711" in text
    assert not (example / "outbound.duckdb").exists(), "preview writes nothing"


def test_preview_of_one_lead_and_of_a_whatsapp_step(example: Path) -> None:
    yaml = (example / "campaigns" / "appointment_reminder.yaml").read_text(encoding="utf-8")
    (example / "campaigns" / "wa_reminder.yaml").write_text(yaml.replace("name: appointment_reminder", "name: wa_reminder").replace(
        "channels: [sms]", "channels: [whatsapp]\n    whatsapp_template:\n      content_sid: HX00000000000000000000000000000007\n"
        "      variables: {\"1\": first_name, \"2\": appointment_date}\n      body: \"Hi {{1}}, see you {{2}}.\""), encoding="utf-8")
    text = preview("wa_reminder", lead_id="lead_47a482854cd6e600", db_path=str(example / "outbound.duckdb"), now=NOW)
    assert "Marta Gomez" in text and "Lucia" not in text
    assert "approved template HX00000000000000000000000000000007 (outside the 24-hour window)" in text
    assert "Hi Marta, see you Wed 14 Jan 09:00." in text


def test_preview_command_line(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "preview", "appointment_reminder", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "Lucia Martin" in out and "Javier Ruiz" in out and "Marta" not in out
    assert main(["campaign", "preview", "appointment_reminder", "--step", "nope"]) == 2
    assert "has no step 'nope'" in capsys.readouterr().err


def _with_segment(workdir: Path, name: str, segment: str, extra: str = "") -> None:
    yaml = (workdir / "campaigns" / "appointment_reminder.yaml").read_text(encoding="utf-8")
    (workdir / "campaigns" / f"{name}.yaml").write_text(
        yaml.replace("name: appointment_reminder", f"name: {name}")
        .replace("  default_region: ES\n", f"  default_region: ES\n  segment:\n{segment}{extra}"), encoding="utf-8")


def test_preview_applies_the_segment_to_the_list_file(example: Path) -> None:
    _with_segment(example, "norte_only", "    - {field: clinic, op: eq, value: Norte}\n")
    text = preview("norte_only", limit=10, db_path=str(example / "outbound.duckdb"), now=NOW)
    assert "3 of 3 leads" in text
    assert "Marta Gomez" in text and "Pablo Diaz" in text and "Ana Romero" in text
    assert "Lucia" not in text and "Raul" not in text


def test_preview_applies_the_segment_to_imported_lists_with_engagement(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contacts", "import", str(example / "appointment_reminders.csv"), "--list", "patients", "--region", "ES"]) == 0
    capsys.readouterr()
    yaml = (example / "campaigns" / "appointment_reminder.yaml").read_text(encoding="utf-8")
    (example / "campaigns" / "centro_recent.yaml").write_text(
        yaml.replace("name: appointment_reminder", "name: centro_recent")
        .replace("  lead_list: appointment_reminders.csv\n", "  lists: [patients]\n  segment:\n"
                 "    - {field: clinic, op: in, value: [Centro, Sur]}\n    - {op: never_contacted}\n"), encoding="utf-8")
    text = preview("centro_recent", limit=10, db_path=str(example / "outbound.duckdb"), now=NOW)
    assert "from DuckDB" in text and "7 of 7 leads" in text
    assert all(n in text for n in ("Lucia", "Javier", "Elena", "Sergio", "Carmen", "Diego", "Raul"))
    assert not any(n in text for n in ("Marta", "Pablo", "Ana Romero"))


def test_preview_shows_the_whatsapp_templates_media_and_quick_replies(example: Path) -> None:
    yaml = (example / "campaigns" / "appointment_reminder.yaml").read_text(encoding="utf-8")
    (example / "campaigns" / "wa_media.yaml").write_text(yaml.replace("name: appointment_reminder", "name: wa_media").replace(
        "channels: [sms]", "channels: [whatsapp]\n    media_url: https://cdn.clinic.example/map.png\n    whatsapp_template:\n"
        "      content_sid: HX00000000000000000000000000000008\n      variables: {\"1\": first_name, \"2\": appointment_date, \"3\": clinic}\n"
        "      body: \"Hi {{1}}, see you {{2}}.\"\n      media_url: https://cdn.clinic.example/clinics/{{3}}.png\n"
        "      buttons: [Confirm, Reschedule]"), encoding="utf-8")
    text = preview("wa_media", lead_id="lead_47a482854cd6e600", db_path=str(example / "outbound.duckdb"), now=NOW)
    assert "[media: https://cdn.clinic.example/clinics/Norte.png]" in text
    assert "Hi Marta, see you Wed 14 Jan 09:00." in text and "[ Confirm ] [ Reschedule ]  (quick replies)" in text
