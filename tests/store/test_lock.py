"""Another process holding the DuckDB file: we wait, then fail in plain words; once it lets go, work goes on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from outbound_pipeline.store import warehouse

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_file_held_too_long_fails_with_a_plain_message_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.duckdb"
    with warehouse.connect(path) as con:
        con.execute("CREATE TABLE probe (x INTEGER)")
    holder = hold(path, 30)
    try:
        with pytest.raises(warehouse.WarehouseBusy, match=r"stayed locked by another process for 1 s.*wrote nothing"), \
                warehouse.connect(path, timeout_s=1.0) as con:
            con.execute("INSERT INTO probe VALUES (1)")
    finally:
        holder.kill()
        holder.wait()
    with warehouse.connect(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM probe").fetchall() == [(0,)]


def test_a_short_hold_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "o.duckdb"
    holder = hold(path, 1.5)
    started = time.monotonic()
    with warehouse.connect(path, timeout_s=30) as con:
        con.execute("CREATE TABLE probe (x INTEGER)")
        con.execute("INSERT INTO probe VALUES (1)")
    holder.wait()
    assert time.monotonic() - started >= 1.0
    with warehouse.connect(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM probe").fetchall() == [(1,)]
