"""The command line on a voice campaign: preview shows each contact's opening line and voicemail; forecast refuses clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from outbound_pipeline import settings
from outbound_pipeline.cli.forecast import campaign_forecast
from outbound_pipeline.cli.preview import preview


@pytest.fixture
def voice_data(workdir: Path) -> Path:
    shutil.copy(settings.DATA_DIR / "call_contacts.csv", workdir / "call_contacts.csv")
    return workdir


def test_preview_renders_the_agents_lines_per_contact(voice_data: Path):
    text = preview("demo_calls", limit=2, campaigns_dir=voice_data / "campaigns", leads_dir=voice_data)
    assert "a call held by agent ava (agents/ava.md)" in text and "2 of 20 contacts" in text
    assert "opening: Hi Maria, this is Ava, an AI assistant calling for Routewise." in text
    assert "voicemail: Hi James, this is Ava from Routewise about route planning at Hudson Freight." in text


def test_forecast_says_it_covers_messages(voice_data: Path):
    with pytest.raises(ValueError, match="voice campaign"):
        campaign_forecast("demo_calls")
