"""Shared fixtures: an isolated DuckDB file, ledger and Dagster instance per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from outbound_pipeline import settings
from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import warehouse

MONDAY_MORNING = datetime(2026, 1, 5, 9, 0)  # 09:00 UTC: inside the demo campaign's window in Madrid


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data directory: DuckDB, offline ledger, landing area, campaigns and leads (copies of the shipped ones)."""
    data = tmp_path / "data"
    shutil.copytree(settings.DATA_DIR / "campaigns", data / "campaigns")
    for name in ("sample_leads.csv", "sample_signals.json", "voice.md"):
        shutil.copy(settings.DATA_DIR / name, data / name)
    monkeypatch.setenv("OUTBOUND_DUCKDB_PATH", str(data / "outbound.duckdb"))
    monkeypatch.setenv("OUTBOUND_OFFLINE_LEDGER_DIR", str(data / "offline_ledger"))
    monkeypatch.setenv("OUTBOUND_LANDING_DIR", str(data / "landing"))
    monkeypatch.setenv("OUTBOUND_CAMPAIGNS_DIR", str(data / "campaigns"))
    monkeypatch.setenv("OUTBOUND_LEADS_DIR", str(data))
    monkeypatch.setenv("OUTBOUND_VOICE_PATH", str(data / "voice.md"))
    for secret in ("TAVILY_API_KEY", "OPENAI_API_KEY", "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(secret, raising=False)
    return data


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory Dagster instance: run storage on disk would cost a second per materialisation."""
    inst = dg.DagsterInstance.ephemeral()
    try:
        yield inst
    finally:
        inst.dispose()


@pytest.fixture
def driver(workdir: Path, instance: dg.DagsterInstance) -> Driver:
    """Materialises asset selections at a chosen simulated time against the private database."""
    from outbound_pipeline.defs.resources import default_resources

    drv = Driver(instance, str(workdir / "outbound.duckdb"))
    # Resources read their paths from the environment when built: rebuild them under the test's environment.
    drv.base = default_resources()
    return drv


@pytest.fixture
def db(workdir: Path):
    """Open the test database briefly: `with db() as con: ...`."""
    return lambda: warehouse.connect(workdir / "outbound.duckdb")


def add_campaign(instance: dg.DagsterInstance, name: str) -> None:
    if not instance.has_dynamic_partition(campaign_partitions.name, name):
        instance.add_dynamic_partitions(campaign_partitions.name, [name])
