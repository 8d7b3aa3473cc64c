"""A run whose step meets the DuckDB file held by another process is retried and succeeds, losing no write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.defs.s7_cadence.helpers import write_campaign

HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # a writer in another process: DuckDB's file lock
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")

# Imports everything first (seconds), says "ready", and launches only when told: the lock is then certainly held.
RUNNER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    import dagster as dg
    from outbound_pipeline.defs.resources import default_resources
    from outbound_pipeline.runner import LAUNCH, Driver
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("campaigns", ["locked"])
    driver = Driver(instance, sys.argv[1])
    driver.base = default_resources()
    driver.base["warehouse"] = type(driver.base["warehouse"])(path=sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    result = driver.run(LAUNCH, datetime(2026, 1, 5, 9, 0), "locked", raise_on_error=False)
    retries = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            error = event.event_specific_data.error
            while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError", "RetryRequestedFromPolicy"):
                error = error.cause
            retries.append({"step": event.step_key, "cls": error.cls_name, "message": error.message})
    print(json.dumps({"success": result.success, "retries": retries}), flush=True)
""")


def test_a_run_meeting_a_held_lock_is_retried_and_succeeds(workdir, db):
    write_campaign(workdir, "locked", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    path = str(workdir / "outbound.duckdb")
    env = {**os.environ, "OUTBOUND_LOCK_TIMEOUT_S": "0.5"}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                              cwd=os.getcwd())
    holder = None
    try:
        assert runner.stdout is not None and runner.stdin is not None
        assert runner.stdout.readline().strip() == "ready"
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, "2.5"], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        runner.stdin.write("go\n")
        runner.stdin.flush()
        out, _ = runner.communicate(timeout=120)
    finally:
        for process in (runner, holder):
            if process is not None and process.poll() is None:
                process.kill()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["success"] is True
    assert report["retries"], "the first attempt should have met the held file"
    first = report["retries"][0]
    assert first["step"] == "campaigns" and first["cls"] == "WarehouseBusy"
    assert "stayed locked by another process" in first["message"] and "wrote nothing" in first["message"]
    assert all("Could not set lock" not in r["message"] and "Traceback" not in r["message"] for r in report["retries"])
    with db() as con:  # nothing lost, nothing twice
        assert con.execute("SELECT status FROM campaigns WHERE campaign_id = 'locked'").fetchall() == [("running",)]
        assert con.execute("SELECT count(*) FROM campaign_events WHERE campaign_id = 'locked'").fetchall()[0][0] == 1
        assert con.execute("SELECT count(*) FROM recipients WHERE campaign_id = 'locked'").fetchall()[0][0] > 0
