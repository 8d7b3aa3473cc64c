"""Read-only snapshots of the warehouse for BI tools, published atomically so BI never blocks the pipeline and is never blocked.

DuckDB lets one process hold the live file for writing, and a BI tool opened on it would stop
every run (see `warehouse.WarehouseBusy`). So BI reads a copy instead. `publish_snapshot` opens the
live file read-only for as long as copying its tables takes, builds a new version in a private
directory, and makes it current with one atomic rename of a symlink:

    <export_dir>/
        current -> versions/<version>        the symlink BI tools go through
        versions/<version>/outbound.duckdb   every table, as a plain DuckDB file
        versions/<version>/parquet/<table>.parquet
        versions/<version>/manifest.json     tables, row counts, when it was published

How a BI tool connects: open `<export_dir>/current/outbound.duckdb` read-only (DuckDB CLI:
`duckdb -readonly data/exports/current/outbound.duckdb`; DBeaver, Metabase or Superset: a DuckDB
connection to that path with read-only access), or read `<export_dir>/current/parquet/*.parquet`
with any Parquet reader. The path never changes; what it points to does, all at once.

Why readers never fail or see half a snapshot: a version is complete before `current` points at it,
and a symlink is replaced with `os.replace` (one rename: a reader resolves either the old target or
the new one). Old versions are deleted only once they have not been current for `grace_seconds`
and are not among the newest `keep`, so a reader that resolved `current` a moment before the swap
still finds its files. A reader that holds a file open keeps reading it even after the version is
deleted (an open file outlives its directory entry on Linux and macOS), and nothing ever writes to
a published file, so a reader can never block publishing either.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from outbound_pipeline.store import backend
from outbound_pipeline.store.warehouse import LOCK_TIMEOUT_S, connect

SNAPSHOT_FILE = "outbound.duckdb"
PARQUET_DIR = "parquet"
MANIFEST_FILE = "manifest.json"
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
BUILDING_PREFIX = ".building-"
KEEP_VERSIONS = 2  # the current version and the one before it survive any prune
GRACE_SECONDS = 60.0  # how long a superseded version stays for readers that resolved `current` just before the swap
# A leading =, +, - or @ makes a spreadsheet evaluate the cell as a formula; tab and carriage return do too in some of them.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SnapshotInfo:
    """What one publication made current: where to read it and what it holds."""

    version: str
    directory: Path  # the version's own directory (stable for as long as the version is kept)
    database: Path  # `<export_dir>/current/outbound.duckdb`: the path to give a BI tool
    parquet: dict[str, Path]  # table -> `<export_dir>/current/parquet/<table>.parquet`
    row_counts: dict[str, int]
    published_at: datetime
    removed_versions: tuple[str, ...]  # older versions deleted by this publication


def current_database(export_dir: str | Path) -> Path:
    """The stable path of the current snapshot's DuckDB file, for BI tools and `duckdb.connect(..., read_only=True)`."""
    return Path(export_dir) / CURRENT_LINK / SNAPSHOT_FILE


def current_version(export_dir: str | Path) -> str | None:
    """The name of the version `current` points at, or None before the first publication."""
    try:
        return Path(os.readlink(Path(export_dir) / CURRENT_LINK)).name
    except FileNotFoundError:
        return None


def publish_snapshot(
    source_db: str | Path,
    export_dir: str | Path,
    tables: list[str] | None = None,
    *,
    keep: int = KEEP_VERSIONS,
    grace_seconds: float = GRACE_SECONDS,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> SnapshotInfo:
    """Copy `tables` (default: every table) of the live file into a new snapshot version and make it current atomically.

    Waits for a writer holding the live file like any other unit of work (up to `lock_timeout_s`, then
    `WarehouseBusy`). Publications are serialised with a lock file in `export_dir`; readers take no lock.
    """
    source = Path(source_db)
    if not source.exists() and backend.lake_target(backend.store_url(source)) is None:  # a lake is copied from its catalog
        raise FileNotFoundError(f"no DuckDB file at {source} to publish a snapshot of")
    export = Path(export_dir)
    (export / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
    with _publishing_lock(export):
        version = f"{time.time_ns():020d}-{os.getpid()}"
        building = export / f"{BUILDING_PREFIX}{version}"
        building.mkdir()
        try:
            row_counts = _copy_tables(source, building / SNAPSHOT_FILE, tables, lock_timeout_s)
            _write_parquet(building / SNAPSHOT_FILE, building / PARQUET_DIR, list(row_counts))
            published_at = datetime.now(UTC)
            _write_manifest(building / MANIFEST_FILE, version, published_at, row_counts)
            final = export / VERSIONS_DIR / version
            os.rename(building, final)  # complete before anything points at it
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        _point_current_at(export, final)
        removed = _prune(export, keep, grace_seconds)
    return SnapshotInfo(
        version=version,
        directory=final,
        database=current_database(export),
        parquet={t: export / CURRENT_LINK / PARQUET_DIR / f"{t}.parquet" for t in row_counts},
        row_counts=row_counts,
        published_at=published_at,
        removed_versions=removed,
    )


def neutralise_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which text cells (and column names) a spreadsheet would run as a formula start with a quote: `=1+1` -> `'=1+1`.

    Numbers are left alone (a negative number is data, not a formula); only text can smuggle `=HYPERLINK(...)`.
    """
    def neutral(value: object) -> object:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value

    safe = frame.copy()
    for column in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[column]) or pd.api.types.is_datetime64_any_dtype(safe[column])):
            safe[column] = safe[column].map(neutral)
    safe.columns = pd.Index([neutral(c) for c in safe.columns])
    return safe


def export_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` as UTF-8 CSV with formula-looking cells neutralised, atomically (a reader sees the old file or the new one)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        neutralise_cells(frame).to_csv(partial, index=False, encoding="utf-8")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


@contextmanager
def _publishing_lock(export: Path) -> Iterator[None]:
    with open(export / ".publish.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_tables(source: Path, snapshot: Path, tables: Sequence[str] | None, lock_timeout_s: float) -> dict[str, int]:
    """Copy the tables into a new DuckDB file while holding the live file read-only, and nothing more, for the shortest time."""
    with connect(source, read_only=True, timeout_s=lock_timeout_s) as con:
        available = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
            "AND NOT temporary ORDER BY table_name").fetchall()]
        wanted = available if tables is None else list(dict.fromkeys(tables))
        unknown = sorted(set(wanted) - set(available))
        if unknown:
            raise ValueError(f"no table(s) {unknown} in {source}; it has {available}")
        unsafe = [t for t in wanted if "/" in t or "\\" in t or t.startswith(".")]
        if unsafe:  # each table becomes `<table>.parquet`: a name must not reach outside the version's directory
            raise ValueError(f"table name(s) {unsafe} cannot be exported as file names")
        con.execute(f"ATTACH {_literal(snapshot)} AS snapshot (READ_WRITE)")
        try:
            counts: dict[str, int] = {}
            for table in wanted:
                con.execute(f"CREATE TABLE snapshot.main.{_identifier(table)} AS SELECT * FROM main.{_identifier(table)}")
                counts[table] = int(con.execute(f"SELECT count(*) FROM snapshot.main.{_identifier(table)}").fetchall()[0][0])
            con.execute("CHECKPOINT snapshot")  # everything in the file itself, no write-ahead log beside it
        finally:
            con.execute("DETACH snapshot")
    return counts


def _write_parquet(snapshot: Path, directory: Path, tables: Sequence[str]) -> None:
    """One Parquet file per table, written from the snapshot (the live file is already released)."""
    directory.mkdir()
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        for table in tables:
            con.execute(f"COPY main.{_identifier(table)} TO {_literal(directory / f'{table}.parquet')} (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()


def _write_manifest(path: Path, version: str, published_at: datetime, row_counts: dict[str, int]) -> None:
    manifest = {"version": version, "published_at": published_at.isoformat(), "database": SNAPSHOT_FILE,
                "tables": {t: {"rows": n, "parquet": f"{PARQUET_DIR}/{t}.parquet"} for t, n in row_counts.items()}}
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _point_current_at(export: Path, version_dir: Path) -> None:
    """Replace the `current` symlink in one rename; the link is relative so the export directory can be moved or mounted."""
    staged = export / f".{CURRENT_LINK}-{uuid.uuid4().hex}"
    os.symlink(Path(VERSIONS_DIR) / version_dir.name, staged)
    try:
        os.replace(staged, export / CURRENT_LINK)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def _prune(export: Path, keep: int, grace_seconds: float) -> tuple[str, ...]:
    """Delete versions readers can no longer reach: not current, not among the newest `keep`, superseded over `grace_seconds` ago."""
    current = current_version(export)
    versions = sorted(p for p in (export / VERSIONS_DIR).iterdir() if p.is_dir())
    now = time.time()
    removed = []
    for older, newer in zip(versions[:-keep] if keep > 0 else versions, versions[1:], strict=False):
        superseded_for = now - newer.stat().st_mtime  # the successor's completion is when this one stopped being current
        if older.name != current and superseded_for >= grace_seconds:
            shutil.rmtree(older, ignore_errors=True)
            removed.append(older.name)
    for leftover in export.glob(f"{BUILDING_PREFIX}*"):  # a publication that crashed midway (we hold the lock: none is running)
        shutil.rmtree(leftover, ignore_errors=True)
    return tuple(removed)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
