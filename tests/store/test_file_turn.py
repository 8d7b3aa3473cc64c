"""Processes of the pipeline take turns at the DuckDB file through a lock file, handing it over as soon as it is closed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from outbound_pipeline.store import file_turn, warehouse

HOLD = """
import sys, time
from outbound_pipeline.store import file_turn
with file_turn.turn(sys.argv[1], 10):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_in_another_process(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_unit_of_work_waits_for_another_process_turn_and_starts_as_soon_as_it_ends(tmp_path: Path):
    path = tmp_path / "outbound.duckdb"
    holder = _hold_in_another_process(path, 0.6)
    started = time.monotonic()
    with warehouse.connect(path) as con:
        waited = time.monotonic() - started
        assert con.execute("SELECT 42").fetchone() == (42,)
    holder.wait()
    assert 0.3 < waited < 0.6 + 0.5  # waited for the other process, not a back-off period after it


def test_a_unit_opened_inside_another_joins_its_turn_and_other_threads_wait_for_it(tmp_path: Path):
    path = str(tmp_path / "outbound.duckdb")
    entered: list[float] = []

    def other_thread() -> None:
        with file_turn.turn(path, 2.0):
            entered.append(time.monotonic())

    with file_turn.turn(path, 1.0):
        with file_turn.turn(path, 0.1):  # nested on the same thread: no wait on itself
            pass
        other = threading.Thread(target=other_thread)
        other.start()
        time.sleep(0.3)
        assert not entered  # the other thread waits: threads of one process take turns too
        left = time.monotonic()
    other.join()
    assert entered and entered[0] >= left
    with file_turn.turn(path, 0.1):  # and the turn was given back when the last one left
        pass


def test_a_turn_kept_too_long_by_another_process_is_a_plain_warehouse_busy_error(tmp_path: Path):
    path = tmp_path / "outbound.duckdb"
    holder = _hold_in_another_process(path, 3)
    try:
        with pytest.raises(warehouse.WarehouseBusy, match="busy with other runs of the pipeline"), warehouse.connect(path, timeout_s=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    with warehouse.connect(path, timeout_s=1) as con:  # a killed holder leaves no lock behind: the kernel releases it
        assert con.execute("SELECT 1").fetchone() == (1,)
