"""BI readers against the published snapshot while the pipeline runs: one polling every 0.5 s, one holding it for minutes.

    python -m bench.bi_readers [--minutes 10]

In a temporary data directory, starts two reader processes on `data/exports/current/outbound.duckdb`
(the path a BI tool is given): one opens, queries and closes it every 0.5 s; the other opens it once and
holds the connection (and re-reads it) for `--minutes`. Meanwhile the pipeline runs the offline demo,
publishing a snapshot after every run as the run-status sensor does, then keeps rolling up metrics and
publishing every 20 s until the holder lets go. Prints reads, failed reads, failed pipeline runs (bound: 0
each) and how long the snapshot was held.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

POLL = """
import json, os, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
reads, failures = 0, []
print("ready", flush=True)
while not os.path.exists(stop):
    if os.path.exists(path) or reads:
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                con.execute("SELECT count(*) FROM sends").fetchall()
                con.execute("SELECT count(*) FROM campaign_metrics").fetchall()
            finally:
                con.close()
            reads += 1
        except Exception as exc:
            failures.append(repr(exc))
    time.sleep(0.5)
print(json.dumps({"reads": reads, "failures": failures[:5], "failed": len(failures)}), flush=True)
"""

HOLD = """
import json, os, sys, time, duckdb
path, seconds = sys.argv[1], float(sys.argv[2])
print("ready", flush=True)
while not os.path.exists(path):
    time.sleep(0.1)
con = duckdb.connect(path, read_only=True)
started, first = time.monotonic(), con.execute("SELECT count(*) FROM sends").fetchall()[0][0]
rereads, changed = 0, 0
while time.monotonic() - started < seconds:
    time.sleep(5)
    rereads += 1
    changed += con.execute("SELECT count(*) FROM sends").fetchall()[0][0] != first
con.close()
print(json.dumps({"held_s": time.monotonic() - started, "rereads": rereads, "changed_under_reader": changed}), flush=True)
"""


def _prepare(root: Path) -> Path:
    data = root / "data"
    repo_data = Path(__file__).resolve().parent.parent / "data"
    shutil.copytree(repo_data / "campaigns", data / "campaigns")
    for name in ("sample_leads.csv", "sample_signals.json", "voice.md"):
        shutil.copy(repo_data / name, data / name)
    os.environ.update({
        "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"), "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "ledger"),
        "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"), "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"),
        "OUTBOUND_LANDING_DIR": str(data / "landing"),
    })
    for secret in ("TAVILY_API_KEY", "OPENAI_API_KEY", "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        os.environ.pop(secret, None)
    return data


def _start(code: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bi_readers")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the second reader holds the snapshot open")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="outbound-bi-"))
    data = _prepare(root)

    import dagster as dg

    from outbound_pipeline import demo
    from outbound_pipeline.runner import METRICS, Driver
    from outbound_pipeline.store.snapshot import current_database

    class PublishingDriver(Driver):
        """Publishes the snapshot after every run, as `bi_snapshot_after_runs` requests it in a deployment."""

        def run(self, selection: list[str], now: datetime, *a: Any, **kw: Any) -> dg.ExecuteInProcessResult:
            result = super().run(selection, now, *a, **kw)
            if "bi_snapshot" not in selection:
                super().run(["bi_snapshot"], now)
            return result

    snapshot = current_database(data / "exports")
    stop = root / "stop"
    poller = _start(POLL, str(snapshot), str(stop))
    holder = _start(HOLD, str(snapshot), str(args.minutes * 60))
    demo.Driver = PublishingDriver  # type: ignore[misc]
    failed_runs, runs, started = [], 0, time.monotonic()
    try:
        with dg.instance_for_test() as instance:
            try:
                result = demo.run_demo("demo_drip", instance=instance, db_path=str(data / "outbound.duckdb"))
                runs += result.runs
                print(f"demo finished: {result.runs} runs in {result.seconds:.0f} s while the snapshot was read", flush=True)
            except Exception as exc:  # what the bench counts: a run the readers made fail
                failed_runs.append(f"demo: {exc!r}")
            driver = Driver(instance, str(data / "outbound.duckdb"))
            now = demo.DEMO_START + timedelta(days=20)
            while holder.poll() is None:
                try:
                    driver.run([*METRICS, "bi_snapshot"], now)
                    runs += 1
                except Exception as exc:
                    failed_runs.append(f"metrics: {exc!r}")
                time.sleep(20)
    finally:
        stop.touch()
    polled = json.loads((poller.communicate(timeout=120)[0].strip().splitlines() or ["{}"])[-1])
    held = json.loads((holder.communicate(timeout=120)[0].strip().splitlines() or ["{}"])[-1])
    print(f"polling reader: {polled.get('reads', 0)} reads every 0.5 s, {polled.get('failed', '?')} failed (bound 0) {polled.get('failures', [])}")
    print(f"holding reader: held the snapshot {held.get('held_s', 0) / 60:.1f} min, re-read it {held.get('rereads', 0)} times, "
          f"saw it change under it {held.get('changed_under_reader', '?')} times (bound 0)")
    print(f"pipeline: {runs} runs over {(time.monotonic() - started) / 60:.1f} min, {len(failed_runs)} failed (bound 0) {failed_runs[:3]}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
