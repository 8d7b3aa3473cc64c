"""Short-lived DuckDB connections and bulk writes.

DuckDB lets one process write at a time. Every write here opens the file, does
its work in one short transaction and closes it. The pipeline's processes take
turns at the file through a lock file beside it (`file_turn.py`), so it passes
from one unit of work to the next as soon as it is closed. When another program
holds the file (a BI tool opened on the live file), opening waits with jittered
exponential backoff, says so in the log, and after `timeout_s` gives up with
`WarehouseBusy`, a plain-words error naming the file, instead of DuckDB's raw
lock exception. Writing assets also share the `duckdb` concurrency pool (see
dagster.yaml) so runs queue instead of colliding. Opening for writing brings the
file to the current schema first (`migrations.py`).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import duckdb
import pandas as pd
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from outbound_pipeline.store import backend, changes, file_turn, lake
from outbound_pipeline.store.migrations import migrate
from outbound_pipeline.store.schema import columns
from outbound_pipeline.store.validation import validate

log = logging.getLogger(__name__)
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")
_migrated: set[str] = set()
LOCK_TIMEOUT_S = float(os.environ.get("OUTBOUND_LOCK_TIMEOUT_S", "120"))  # seconds a unit of work waits for the file


class WarehouseBusy(RuntimeError):
    """Another process held the DuckDB file for longer than we were willing to wait; nothing was written."""


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(marker in str(exc) for marker in _LOCK_MARKERS)


def _log_wait(state: RetryCallState) -> None:
    log.warning("the DuckDB file is held by another process; waiting (%.0f s so far)", state.seconds_since_start)


@dataclass
class _Attachment:
    """A file attached to the process's instance: its alias, its mode, and how many units of work have it open."""

    alias: str
    read_only: bool
    units: int = 0


class _Host:
    """One in-memory DuckDB per process, to which each unit of work attaches the file and from which it detaches it.

    Starting a database instance costs about 10 ms (its catalog of functions and extensions), attaching a file about 2:
    units of work handed from process to process every few hundred milliseconds spent most of their turn starting
    instances. Detaching closes the file (checkpointed) and releases DuckDB's lock on it, as closing a connection did.
    A unit opened inside another on the same thread and file joins its attachment."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pid = -1
        self._instance: duckdb.DuckDBPyConnection | None = None
        self._attached: dict[str, _Attachment] = {}  # by the file's real path
        self._aliases = itertools.count()

    def _host(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            if self._instance is None or self._pid != os.getpid():  # a forked child starts its own
                self._instance, self._pid, self._attached = duckdb.connect(":memory:"), os.getpid(), {}
            return self._instance

    def attach(self, path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A connection whose default database is the file at `path` (attached now, or joined)."""
        host = self._host()
        path = os.path.realpath(path)
        found = self._attached.get(path)  # the caller holds the file's turn: no other thread attaches it meanwhile
        if found is None:
            found = _Attachment(f"store_{next(self._aliases)}", read_only)
            with host.cursor() as admin:
                admin.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {found.alias}" + (" (READ_ONLY)" if read_only else ""))
            self._attached[path] = found
        elif found.read_only and not read_only:
            raise RuntimeError(f"{path} is open read-only in an enclosing unit of work: it cannot be written in this one")
        con = host.cursor()
        try:
            con.execute(f"USE {found.alias}")
        except BaseException:
            con.close()
            raise
        found.units += 1
        return con

    def release(self, path: str, con: duckdb.DuckDBPyConnection) -> None:
        """Close the unit's connection; the last unit on the file detaches it (closing the file)."""
        con.close()
        path = os.path.realpath(path)
        found = self._attached[path]
        found.units -= 1
        if not found.units:
            with self._host().cursor() as admin:
                admin.execute(f"DETACH {found.alias}")
            del self._attached[path]  # once detached: a detach that failed is tried again by the next unit's release

    def close_if_idle(self) -> None:
        """Close the in-memory instance when no unit of work has a file attached: before a fork, so that the child does
        not inherit a database whose worker threads it has not got (it starts its own on its first unit of work)."""
        with self._guard:
            if self._instance is not None and not self._attached:
                self._instance.close()
                self._instance = None


_HOST = _Host()
os.register_at_fork(before=_HOST.close_if_idle)


def _open(path: str, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    retrying = Retrying(retry=retry_if_exception(_is_lock_error), wait=wait_random_exponential(multiplier=0.05, max=0.25),
                        stop=stop_after_delay(timeout_s), before_sleep=_log_wait)
    try:
        return retrying(duckdb.connect, path, read_only=read_only) if path == ":memory:" else retrying(_HOST.attach, path, read_only)
    except RetryError as exc:
        raise WarehouseBusy(
            f"the DuckDB file {path} stayed locked by another process for {timeout_s:.0f} s, so this unit of work did not run "
            "and wrote nothing. Close the program holding it (a BI tool should read the published snapshot, not the live "
            "file) and run again."
        ) from exc.last_attempt.exception()


@contextmanager
def connect(path: str | Path, read_only: bool = False, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database (migrated to the current schema on first write), waiting out other writers up to `timeout_s`.

    `path` is the DuckDB file; when `OUTBOUND_STORE` names a DuckLake (see `backend.py`), the lake is opened instead."""
    path = backend.store_url(path)
    target = backend.lake_target(path)
    if target is not None:
        with _connect_lake(target, read_only) as lake_con:
            yield lake_con
        return
    if path == ":memory:":
        with _opened(path, read_only, timeout_s) as con:
            yield con
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    written = changes.begin_unit()
    try:
        with file_turn.turn(path, timeout_s), _opened(path, read_only, max(0.0, timeout_s - (time.monotonic() - started))) as con:
            yield con
    except file_turn.TurnTimeout as exc:
        raise WarehouseBusy(f"the DuckDB file {path} stayed busy with other runs of the pipeline for {timeout_s:.0f} s, so this unit "
                            "of work did not run and wrote nothing; run it again once they are done.") from exc
    finally:
        changes.end_unit()
        changes.mark(path, written)  # once the file is closed, whatever was committed; a failed unit may have committed some


def watch(path: str | Path, tables: list[str]) -> changes.Watch:
    """A `changes.Watch` on `tables` of the store at `path` (a DuckLake keeps no stamps: it is read at every poll)."""
    url = backend.store_url(path)
    return changes.Watch(None if backend.lake_target(url) is not None or url == ":memory:" else url, tables)


@contextmanager
def _opened(path: str, read_only: bool, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    raw = _open(path, read_only, timeout_s)
    con = raw
    if duckdb.__version__.startswith("1."):  # the version DuckLake's extension is built for: see lake.numbered
        con = cast(duckdb.DuckDBPyConnection, lake.NumberedParams(raw))
    try:
        if not read_only and path not in _migrated:
            migrate(con)
            _migrated.add(path)
        yield con
    finally:
        if path == ":memory:":
            raw.close()
        else:
            _HOST.release(path, raw)


@contextmanager
def _connect_lake(target: backend.LakeTarget, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A unit of work on a DuckLake: no file lock to wait for; commit conflicts are retried in `lake.py`."""
    cursor = backend.lake_cursor(target, read_only)
    con = cast(duckdb.DuckDBPyConnection, lake.LakeConnection(cursor))
    try:
        if not read_only and target.url not in _migrated:
            lake.ensure_guard(cursor)
            lake.retry_conflicts(lambda: migrate(con))
            _migrated.add(target.url)
        yield con
    finally:
        cursor.close()


def insert_new(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Validate, then insert the rows whose key is not there yet; returns how many were new. One statement."""
    if frame.empty:
        return 0
    changes.wrote(table)
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
    changes.wrote(table)
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
    changes.wrote(table)
    con.register("_updates", frame[[key, *set_columns]])
    try:
        assignments = ", ".join(f"{c} = u.{c}" for c in set_columns)
        con.execute(f"UPDATE {table} SET {assignments} FROM _updates u WHERE {table}.{key} = u.{key}")
    finally:
        con.unregister("_updates")
