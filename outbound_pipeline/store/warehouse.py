"""Short-lived DuckDB connections and bulk writes.

DuckDB lets one process write at a time. Every write here opens the file, does
its work in one short transaction and closes it, retrying with jittered backoff
when another process holds the lock. Writing assets also share the `duckdb`
concurrency pool (see dagster.yaml) so runs queue instead of colliding.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from outbound_pipeline.store.schema import columns, ddl
from outbound_pipeline.store.validation import validate

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")
_initialised: set[str] = set()


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _LOCK_MARKERS)


@contextmanager
def connect(path: str | Path, read_only: bool = False, timeout_s: float = 120.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, creating its tables on first use, waiting out other writers."""
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
    try:
        if not read_only and path not in _initialised:
            for statement in ddl():
                con.execute(statement)
            _initialised.add(path)
        yield con
    finally:
        con.close()


def insert_new(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Validate, then insert the rows whose key is not there yet; returns how many were new. One statement."""
    if frame.empty:
        return 0
    cols = columns(table)
    frame = validate(table, frame.reindex(columns=cols))
    before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.register("_incoming", frame)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _incoming ON CONFLICT DO NOTHING")
    finally:
        con.unregister("_incoming")
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] - before


def replace_where(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, where: str, params: list) -> None:
    """Validate, then replace the rows matching `where` with `frame` in one transaction (idempotent rewrite)."""
    cols = columns(table)
    frame = validate(table, frame.reindex(columns=cols)) if not frame.empty else frame
    con.execute("BEGIN")
    try:
        con.execute(f"DELETE FROM {table} WHERE {where}", params)
        if not frame.empty:
            con.register("_incoming", frame)
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _incoming")
            con.unregister("_incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def update_from(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, key: str, set_columns: list[str]) -> None:
    """Bulk UPDATE: set `set_columns` of the rows whose `key` is in `frame`."""
    if frame.empty:
        return
    con.register("_updates", frame[[key, *set_columns]])
    try:
        assignments = ", ".join(f"{c} = u.{c}" for c in set_columns)
        con.execute(f"UPDATE {table} SET {assignments} FROM _updates u WHERE {table}.{key} = u.{key}")
    finally:
        con.unregister("_updates")
