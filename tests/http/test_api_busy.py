"""One writer at a time: a request that meets the DuckDB file held by another process (a run) waits it out and is
answered; one that would wait past the lock timeout gets 503 with Retry-After, having written nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from outbound_pipeline.http import auth
from outbound_pipeline.http.api_app import routes
from outbound_pipeline.http.api_context import Surface
from outbound_pipeline.http.app import create_app
from tests.http.test_api import NOW, SMS_CAMPAIGN

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN")
con.execute("CREATE TEMP TABLE held AS SELECT 1")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_file(db: str, seconds: float) -> subprocess.Popen:
    """Another process holding the file, as a run's step does."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, db, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def client(workdir: Path, instance: dg.DagsterInstance, lock_timeout_s: float) -> tuple[TestClient, dict[str, str]]:
    surface = Surface(db_path=str(workdir / "outbound.duckdb"), campaigns_dir=workdir / "campaigns", instance=lambda: instance,
                      now=lambda: NOW, lock_timeout_s=lock_timeout_s)
    key = auth.create_key(surface.db_path, "crm", "api", NOW)
    app = create_app(None, None, workdir / "landing", unsubscribe_secret="u" * 32, extra_routes=routes(surface))
    return TestClient(app), {"Authorization": f"Bearer {key}"}


def test_a_request_waits_out_a_run_holding_the_file(workdir: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", "u" * 32)
    c, headers = client(workdir, instance, lock_timeout_s=30)
    proc = hold_file(str(workdir / "outbound.duckdb"), 2.0)
    started = time.monotonic()
    try:
        created = c.post("/api/campaigns", headers=headers, json=SMS_CAMPAIGN)
    finally:
        proc.wait(timeout=30)
    assert created.status_code == 201, created.text
    assert time.monotonic() - started >= 1.0  # it waited for the holder instead of failing
    assert [x["id"] for x in c.get("/api/campaigns", headers=headers).json()["campaigns"]] == ["appointment-reminders"]


def test_past_the_lock_timeout_the_answer_is_503_and_nothing_is_written(workdir: Path, instance: dg.DagsterInstance,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", "u" * 32)
    c, headers = client(workdir, instance, lock_timeout_s=0.5)
    proc = hold_file(str(workdir / "outbound.duckdb"), 3.0)
    try:
        busy = c.post("/api/campaigns", headers=headers, json=SMS_CAMPAIGN)
    finally:
        proc.wait(timeout=30)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "30" and "locked by another process" in busy.json()["error"]
    assert c.get("/api/campaigns", headers=headers).json() == {"campaigns": []}
