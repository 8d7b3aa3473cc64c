"""DuckLake housekeeping: merge the small Parquet files many short transactions leave, expire old snapshots.

Every unit of work commits a snapshot with its own small files; left alone, reads slow down as
files pile up and the catalog grows. Merging rewrites adjacent small files of a table into larger
ones; expiring drops snapshots older than the retention, after which the files only they referenced
are deleted. Time travel reaches back as far as the retention. On the DuckDB file there is nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import duckdb

from outbound_pipeline.store.backend import LAKE_ALIAS

METADATA = f"__ducklake_metadata_{LAKE_ALIAS}"


@dataclass(frozen=True)
class Housekeeping:
    data_files_before: int
    data_files_after: int
    snapshots_before: int
    snapshots_after: int


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ? AND type = 'ducklake'",
                       [LAKE_ALIAS]).fetchall()[0][0] > 0


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    files = con.execute(f"SELECT count(*) FROM {METADATA}.ducklake_data_file WHERE end_snapshot IS NULL").fetchall()[0][0]
    snapshots = con.execute(f"SELECT count(*) FROM {METADATA}.ducklake_snapshot").fetchall()[0][0]
    return int(files), int(snapshots)


def tidy(con: duckdb.DuckDBPyConnection, keep_snapshots_for: timedelta = timedelta(days=7)) -> Housekeeping | None:
    """Merge small files, expire snapshots older than `keep_snapshots_for`, delete the files nothing references; None on a file."""
    if not is_lake(con):
        return None
    files_before, snapshots_before = _counts(con)
    cutoff = f"now() - INTERVAL '{int(keep_snapshots_for.total_seconds())} seconds'"
    con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}')")
    con.execute(f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', older_than => {cutoff})")
    con.execute(f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', older_than => {cutoff})")
    files_after, snapshots_after = _counts(con)
    return Housekeeping(files_before, files_after, snapshots_before, snapshots_after)
