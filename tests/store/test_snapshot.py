"""The BI snapshot: every table copied, swapped in atomically; readers never fail and never hold up publishing; CSVs are formula-safe."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from outbound_pipeline.store.snapshot import current_database, current_version, export_csv, neutralise_cells, publish_snapshot

# Polls the snapshot until told to stop; each read checks that the two tables agree (a half-published snapshot would not).
POLL = """
import json, sys, time, duckdb
path, stop, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
reads, failures, seen = 0, [], set()
print("ready", flush=True)
while True:
    stopping = __import__("os").path.exists(stop)
    try:
        con = duckdb.connect(path, read_only=True)
        try:
            rows = con.execute("SELECT count(*) FROM numbers").fetchall()[0][0]
            stamp = con.execute("SELECT n FROM stamp").fetchall()[0][0]
        finally:
            con.close()
        reads += 1
        seen.add(stamp)
        if rows != stamp:
            failures.append(f"inconsistent snapshot: {rows} rows, stamp {stamp}")
    except Exception as exc:
        failures.append(repr(exc))
    if stopping:
        break
    time.sleep(interval)
print(json.dumps({"reads": reads, "failures": failures, "distinct_snapshots": len(seen)}), flush=True)
"""

# Opens the snapshot, keeps the connection, and reads through it again when asked.
HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM numbers").fetchall()[0][0], flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM numbers").fetchall()[0][0], con.execute("SELECT sum(i) FROM numbers").fetchall()[0][0], flush=True)
"""


def live_database(path: Path, rows: int) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE numbers (i BIGINT PRIMARY KEY, label VARCHAR)")
        con.execute("CREATE TABLE stamp (n BIGINT)")
        con.execute("INSERT INTO stamp VALUES (0)")
    finally:
        con.close()
    add_rows(path, rows)
    return path


def add_rows(path: Path, rows: int) -> None:
    """Append `rows` numbers and move the stamp in one transaction, like a pipeline run would."""
    con = duckdb.connect(str(path))
    try:
        start = con.execute("SELECT n FROM stamp").fetchall()[0][0]
        con.execute("BEGIN")
        con.execute("INSERT INTO numbers SELECT range, 'n' || range FROM range(?, ?)", [start, start + rows])
        con.execute("UPDATE stamp SET n = ?", [start + rows])
        con.execute("COMMIT")
    finally:
        con.close()


def test_every_table_and_row_is_copied_to_duckdb_and_parquet(tmp_path: Path) -> None:
    live = live_database(tmp_path / "outbound.duckdb", 250)
    info = publish_snapshot(live, tmp_path / "exports")

    assert info.row_counts == {"numbers": 250, "stamp": 1}
    assert info.database == tmp_path / "exports" / "current" / "outbound.duckdb" == current_database(tmp_path / "exports")
    assert current_version(tmp_path / "exports") == info.version == info.directory.name
    con = duckdb.connect(str(info.database), read_only=True)
    try:
        assert con.execute("SELECT count(*), sum(i), max(label) FROM numbers").fetchall() == [(250, sum(range(250)), "n99")]
        for table, parquet in info.parquet.items():
            assert parquet.exists()
            assert con.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchall()[0][0] == info.row_counts[table]
    finally:
        con.close()
    manifest = json.loads((info.directory / "manifest.json").read_text())
    assert manifest["tables"]["numbers"] == {"rows": 250, "parquet": "parquet/numbers.parquet"}
    assert not list(info.directory.glob("*.wal"))  # the file is complete on its own

    only = publish_snapshot(live, tmp_path / "exports", tables=["stamp"])
    assert only.row_counts == {"stamp": 1} and list(only.parquet) == ["stamp"]
    with pytest.raises(ValueError, match=r"no table\(s\) \['nope'\]"):
        publish_snapshot(live, tmp_path / "exports", tables=["nope"])
    assert current_version(tmp_path / "exports") == only.version  # a failed publication leaves the current one in place
    assert not list((tmp_path / "exports").glob(".building-*"))
    with pytest.raises(FileNotFoundError):
        publish_snapshot(tmp_path / "missing.duckdb", tmp_path / "exports")


def test_a_reader_polling_while_snapshots_are_published_never_fails(tmp_path: Path) -> None:
    live = live_database(tmp_path / "outbound.duckdb", 1000)
    exports = tmp_path / "exports"
    publish_snapshot(live, exports)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", POLL, str(current_database(exports)), str(stop), "0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        publications = 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            add_rows(live, 5000)
            publish_snapshot(live, exports, keep=2, grace_seconds=2.0)
            publications += 1
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["failures"] == []
    assert result["reads"] >= 10
    assert result["distinct_snapshots"] >= 3 and publications >= 3
    assert len(list((exports / "versions").iterdir())) < publications  # superseded versions were cleaned up along the way


def test_a_reader_holding_the_snapshot_open_does_not_affect_publishing(tmp_path: Path) -> None:
    live = live_database(tmp_path / "outbound.duckdb", 100)
    exports = tmp_path / "exports"
    first = publish_snapshot(live, exports)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(current_database(exports))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "100"

        add_rows(live, 50)
        started = time.monotonic()
        second = publish_snapshot(live, exports, keep=1, grace_seconds=0.0)
        third = publish_snapshot(live, exports, keep=1, grace_seconds=0.0)
        assert time.monotonic() - started < 30  # no waiting on the reader
        assert first.version in second.removed_versions + third.removed_versions  # the held version was even deleted
        assert not first.directory.exists()

        holder.stdin.write("again\n")
        holder.stdin.flush()
        out, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0, err
    assert out.split() == ["100", str(sum(range(100)))]  # the reader kept its consistent, older snapshot

    assert current_version(exports) == third.version
    con = duckdb.connect(str(current_database(exports)), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM numbers").fetchall()[0][0] == 150
    finally:
        con.close()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "name": ["=HYPERLINK(\"http://x\",\"y\")", "+34600000000", "-2+3", "@SUM(A1)", "\tTab", "plain", None, "a=b"],
        "delta": [-1, 2, -3, 4, 5, 6, 7, 8],
        "=cmd": ["x"] * 8,
    })
    path = export_csv(frame, tmp_path / "out" / "leads.csv")
    assert not list(path.parent.glob(".*partial"))
    back = pd.read_csv(path, keep_default_na=False)
    assert list(back.columns) == ["name", "delta", "'=cmd"]
    assert back["name"].tolist() == ["'=HYPERLINK(\"http://x\",\"y\")", "'+34600000000", "'-2+3", "'@SUM(A1)", "'\tTab", "plain", "", "a=b"]
    assert back["delta"].tolist() == [-1, 2, -3, 4, 5, 6, 7, 8]  # numbers stay numbers
    assert frame["name"].iloc[0].startswith("=")  # the caller's frame is untouched
    assert neutralise_cells(pd.DataFrame({"x": ["=1"]}))["x"].tolist() == ["'=1"]


# Writers of CSV files. The sample lead list (`sample_data.py`) is the demo's input, not an export: its phone numbers must
# keep their leading `+` to be imported.
CSV_WRITERS = re.compile(r"\.to_csv\(|csv\.(?:writer|DictWriter)\(|FORMAT\s*'?csv", re.IGNORECASE)
CSV_ALLOWED = {"store/snapshot.py", "sample_data.py"}


def test_every_csv_export_goes_through_the_neutralising_writer() -> None:
    package = Path(__file__).resolve().parents[2] / "outbound_pipeline"
    writers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if CSV_WRITERS.search(p.read_text(encoding="utf-8")))
    assert set(writers) - CSV_ALLOWED == set(), f"CSV written outside store.snapshot.export_csv: {writers}"
    assert "store/snapshot.py" in writers  # the pattern does find a writer
