"""`review_job` retries a step that met the DuckDB file held by another process; a refused review is not retried."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import dagster as dg
from dagster._core.execution.plan import active

from outbound_pipeline.store import warehouse
from tests.defs.s4_review.helpers import failure_message, launch_review
from tests.defs.s4_review.test_modes import draft_ids, table

HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # a writer in another process: DuckDB's file lock
    print("held", flush=True)
    sys.stdin.readline()
    con.close()
""")


class RetryClock:
    """Dagster's step retry wait (10 s or more under DUCKDB_RETRY) on a clock the test moves forward instead of sleeping.

    Sleeping is where the other process lets go of the file (`on_sleep`), so the retried attempt finds it free.
    """

    def __init__(self, on_sleep: Callable[[], None]) -> None:
        self.on_sleep = on_sleep
        self.offset = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.on_sleep()
        self.offset += seconds


def retries(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """(step, error class) of every step retry in the run, the error unwrapped from Dagster's own wrappers."""
    found = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            data: Any = event.event_specific_data  # StepRetryData
            error = data.error
            while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError", "RetryRequestedFromPolicy"):
                error = error.cause
            found.append((str(event.step_key), error.cls_name))
    return found


def test_a_lock_busy_review_run_is_retried_and_a_refusal_is_not(driver, drafted, db, workdir, monkeypatch):
    key = drafted("manual")
    ids = draft_ids(db, key)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir / "outbound.duckdb")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def release() -> None:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("go\n")
            holder.stdin.flush()
            holder.wait(30)

    clock = RetryClock(release)
    monkeypatch.setattr(active, "time", clock)
    real_open = warehouse._open
    monkeypatch.setattr(warehouse, "_open", lambda path, read_only, timeout_s: real_open(path, read_only, min(timeout_s, 0.3)))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = launch_review(driver, key, {"reviewer": "dana", "approve": ids[:2]})
    finally:
        release()
    assert busy.success, failure_message(busy)
    assert retries(busy) == [("approvals", "WarehouseBusy")]  # the first attempt met the held file and wrote nothing
    assert len(clock.slept) == 1 and 0 <= clock.slept[0] <= 20  # one wait: DUCKDB_RETRY, 10 s give or take its jitter
    decided = table(db, "SELECT draft_id, decision, reviewer FROM approvals ORDER BY draft_id")
    assert decided.to_dict("records") == [{"draft_id": i, "decision": "approved", "reviewer": "dana"} for i in sorted(ids[:2])]
    assert sorted(table(db, "SELECT draft_id FROM sends")["draft_id"]) == sorted(ids[:2])  # each decision once, each send once

    refused = launch_review(driver, key, {"reviewer": "lee", "reject": [ids[0]]})
    assert not refused.success and "already decided" in failure_message(refused)
    assert retries(refused) == [] and len(clock.slept) == 1  # refused at once: no retry, no wait
    assert [e.step_key for e in refused.all_events if e.is_step_failure] == ["approvals"]
