"""The whole demo: its metrics recomputed from the raw tables, and BI readers on the snapshot that never fail and never block it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from outbound_pipeline import demo
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.snapshot import current_database
from tests.e2e.demo_recompute import recompute

# Polls the snapshot every `interval` seconds until told to stop; counts reads and every failure after the first publication.
POLL = """
import json, os, sys, time, duckdb
path, stop, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
reads, failures = 0, []
print("ready", flush=True)
while not os.path.exists(stop):
    if os.path.exists(path) or reads:
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                con.execute("SELECT count(*) FROM sends").fetchall()
                con.execute("SELECT count(*) FROM campaigns").fetchall()
            finally:
                con.close()
            reads += 1
        except Exception as exc:
            failures.append(repr(exc))
    time.sleep(interval)
print(json.dumps({"reads": reads, "failures": failures}), flush=True)
"""

# Opens the snapshot once published and holds the connection (and a query's result) until told to stop.
HOLD = """
import os, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(path) and not os.path.exists(stop):
    time.sleep(0.1)
con = duckdb.connect(path, read_only=True)
rows = con.execute("SELECT count(*) FROM sends").fetchall()[0][0]
while not os.path.exists(stop):
    time.sleep(0.2)
print(con.execute("SELECT count(*) FROM sends").fetchall()[0][0] == rows, flush=True)
con.close()
"""


class PublishingDriver(Driver):
    """A driver that publishes the BI snapshot after every run, as the run-status sensor does in a deployment."""

    def run(self, selection: list[str], now: datetime, *args, **kwargs):  # type: ignore[override]
        result = super().run(selection, now, *args, **kwargs)
        if "bi_snapshot" not in selection:
            super().run(["bi_snapshot"], now)
        return result


def _start(code: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.slow  # the whole demo campaign: run by CI with `./run test -m slow`
def test_demo_numbers_recompute_from_raw_tables_and_bi_readers_never_fail(driver, instance, workdir, monkeypatch, tmp_path):
    snapshot = current_database(Path(driver.db_path).parent / "exports")
    stop = tmp_path / "stop"
    poller = _start(POLL, str(snapshot), str(stop), "0.5")
    holder = _start(HOLD, str(snapshot), str(stop))
    monkeypatch.setattr(demo, "Driver", PublishingDriver)
    try:
        started = time.monotonic()
        result = demo.run_demo("demo_drip", instance=instance, db_path=driver.db_path)
        elapsed = time.monotonic() - started
    finally:
        stop.touch()
    polled = json.loads(poller.communicate(timeout=60)[0].strip().splitlines()[-1])
    held = holder.communicate(timeout=60)[0].strip().splitlines()[-1]
    assert polled["failures"] == [] and polled["reads"] >= elapsed / 0.5 * 0.5  # polled all along, 0 failed reads
    assert held == "True"  # the reader that held the snapshot all along saw a consistent file, and the demo finished regardless

    whole = result.metrics.set_index("touch").loc[0]
    with warehouse.connect(driver.db_path, read_only=True) as con:
        expected = recompute(con, "demo_drip")
    for name, value in expected.items():
        assert whole[name] == pytest.approx(value), name
    assert 0.15 < whole["reply_rate"] < 0.35 and whole["reply_to_cta_rate"] > whole["reply_rate"]
    # the demo itself counted its daily history and published the snapshot BI reads
    with duckdb.connect(str(snapshot), read_only=True) as con:
        days = con.execute("SELECT min(day), max(day), count(DISTINCT day) FROM metrics_daily WHERE campaign_id = 'demo_drip' "
                           "AND touch = 0 AND channel = 'all' AND variant = 'all'").fetchall()[0]
        last_day = con.execute("SELECT sent, replied, reply_rate FROM metrics_daily WHERE campaign_id = 'demo_drip' AND touch = 0 "
                               "AND channel = 'all' AND variant = 'all' ORDER BY day DESC LIMIT 1").fetchall()[0]
        published = con.execute("SELECT sent, replied FROM campaign_metrics WHERE touch = 0").fetchall()
    assert days[0] == demo.DEMO_START.date() and days[2] == (days[1] - days[0]).days + 1 >= 10
    assert last_day == (expected["sent"], expected["replied"], pytest.approx(expected["reply_rate"]))
    assert published == [(expected["sent"], expected["replied"])]
    printed = demo.format_metrics(result.metrics)
    assert f"{expected['reply_rate']:.1%}" in printed and f"{expected['reply_to_cta_rate']:.1%}" in printed
