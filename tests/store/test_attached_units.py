"""Units of work attach the file to one in-memory DuckDB per process: the file is DuckDB's only while a unit has it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from outbound_pipeline.store import warehouse

OPEN_ELSEWHERE = "import duckdb, sys; duckdb.connect(sys.argv[1]).close(); print('opened')"


def _other_process_opens(path: Path) -> bool:
    """Whether another process (a BI tool, another run) can open the file for writing right now."""
    done = subprocess.run([sys.executable, "-c", OPEN_ELSEWHERE, str(path)], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() == "opened"


def test_the_file_is_held_during_a_unit_and_released_after_it(tmp_path: Path) -> None:
    path = tmp_path / "outbound.duckdb"
    with warehouse.connect(path) as con:
        con.execute("CREATE TABLE notes (n INTEGER)")
        con.execute("INSERT INTO notes VALUES (1), (2)")
        assert not _other_process_opens(path)  # DuckDB's lock is taken while the unit goes on
    assert _other_process_opens(path)  # and released with it, committed and in the file
    assert duckdb.connect(str(path), read_only=True).execute("SELECT sum(n) FROM notes").fetchone() == (3,)
    assert not Path(f"{path}.wal").exists()  # checkpointed when the unit let go of the file


def test_a_unit_inside_another_on_the_same_file_joins_it_and_the_outer_one_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "outbound.duckdb"
    with warehouse.connect(path) as outer:
        outer.execute("CREATE TABLE notes (n INTEGER)")
        with warehouse.connect(path) as inner:
            inner.execute("INSERT INTO notes VALUES (7)")
        assert outer.execute("SELECT count(*) FROM notes").fetchone() == (1,)  # the inner unit did not close the file
        assert not _other_process_opens(path)
    assert _other_process_opens(path)


def test_writing_inside_a_read_only_unit_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "outbound.duckdb"
    with warehouse.connect(path) as con:
        con.execute("CREATE TABLE notes (n INTEGER)")
    with warehouse.connect(path, read_only=True) as reader:
        with pytest.raises(RuntimeError, match="open read-only in an enclosing unit of work"), warehouse.connect(path):
            pass
        assert reader.execute("SELECT count(*) FROM notes").fetchone() == (0,)


def test_temporary_tables_and_registered_frames_end_with_their_unit(tmp_path: Path) -> None:
    """Each unit has a connection of its own: what it made for itself does not leak into the next."""
    import pandas as pd

    path = tmp_path / "outbound.duckdb"
    with warehouse.connect(path) as con:
        con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS n")
        con.register("incoming", pd.DataFrame({"n": [1, 2]}))
        assert con.execute("SELECT current_database()").fetchone() != ("memory",)
    with warehouse.connect(path) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scratch'").fetchone() == (0,)
        with pytest.raises(duckdb.CatalogException):
            con.execute("SELECT * FROM incoming")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_after_units_of_work_opens_the_file_itself(tmp_path: Path) -> None:
    """A forked child does not inherit a database instance whose threads it has not got (it would hang)."""
    path = tmp_path / "outbound.duckdb"
    with warehouse.connect(path) as con:
        con.execute("CREATE TABLE notes (n INTEGER)")
    pid = os.fork()
    if pid == 0:  # the child: one unit of work, then out without running the parent's exit handlers
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not the test runner's timeout handler: killed outright
        signal.alarm(30)  # a child stuck on an inherited instance ends instead of hanging the test
        try:
            with warehouse.connect(path) as con:
                con.execute("INSERT INTO notes VALUES (5)")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with warehouse.connect(path, read_only=True) as con:
        assert con.execute("SELECT sum(n) FROM notes").fetchone() == (5,)
