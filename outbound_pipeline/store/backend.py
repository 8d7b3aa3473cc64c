"""Which store the pipeline writes: the embedded DuckDB file, or a DuckLake, chosen by one setting.

`OUTBOUND_STORE` unset (or `duckdb`): the DuckDB file at `OUTBOUND_DUCKDB_PATH`, as always.
`OUTBOUND_STORE=ducklake:postgres:dbname=outbound host=db user=outbound` (or `ducklake:sqlite:/path/catalog.sqlite`):
a DuckLake whose catalog lives in that database and whose Parquet files live under
`OUTBOUND_LAKE_DATA_PATH` (a local folder or `s3://bucket/prefix/`; default: `lake/` beside the DuckDB
file). Many processes on many hosts may write a lake at once; only one may write the file.

Attaching a lake costs most of a second (extension load, catalog connection), so each process
attaches once and hands every unit of work its own cursor on that attachment.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

LAKE_ALIAS = "lake"
_CATALOG_EXTENSIONS = {"postgres": "postgres_scanner", "sqlite": "sqlite_scanner"}
_attached: dict[tuple, duckdb.DuckDBPyConnection] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LakeTarget:
    """A DuckLake: `url` is what ATTACH takes (`ducklake:postgres:...`), `data_path` where its Parquet files go."""

    url: str
    data_path: str

    @property
    def catalog(self) -> str:
        """postgres, sqlite, or duckdb (a catalog file: one writing process only)."""
        kind = self.url.split(":", 2)[1] if self.url.count(":") >= 2 else "duckdb"
        return kind if kind in _CATALOG_EXTENSIONS else "duckdb"

    def describe(self) -> str:
        """Where the lake is, without the connection string (it may hold a password)."""
        return f"DuckLake ({self.catalog} catalog, data in {self.data_path})"


def store_url(path: str | Path) -> str:
    """The store a unit of work opens: `OUTBOUND_STORE` when it names a lake, else `path` (the DuckDB file)."""
    configured = os.environ.get("OUTBOUND_STORE", "").strip()
    if configured.startswith("ducklake:"):
        return configured
    if configured.startswith("duckdb:") and len(configured) > len("duckdb:"):
        return configured[len("duckdb:"):]
    return str(path)


def lake_target(url: str) -> LakeTarget | None:
    """The lake `url` names, or None for a DuckDB file."""
    if not url.startswith("ducklake:"):
        return None
    data_path = os.environ.get("OUTBOUND_LAKE_DATA_PATH")
    if not data_path:
        data_path = str(Path(os.environ.get("OUTBOUND_DUCKDB_PATH", "data/outbound.duckdb")).parent / "lake")
    if not data_path.startswith(("s3://", "gs://", "gcs://", "r2://", "az://", "abfss://")):
        Path(data_path).mkdir(parents=True, exist_ok=True)
        data_path = str(Path(data_path).resolve())
    return LakeTarget(url=url, data_path=data_path.rstrip("/") + "/")


def _extension_file(name: str) -> Path | None:
    """The `.duckdb_extension` a `duckdb-ext-<name>` wheel installed for this DuckDB, if any."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        return None
    platform = duckdb.execute("PRAGMA platform").fetchall()[0][0]
    for root in spec.submodule_search_locations:
        candidate = Path(root) / "extensions" / f"v{duckdb.__version__}" / platform / f"{name}.duckdb_extension"
        if candidate.exists():
            return candidate
    return None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD an extension from its PyPI wheel when installed, else from DuckDB's own extension repository."""
    local = _extension_file(name)
    if local is not None:
        con.execute(f"LOAD '{local}'")
        return
    try:
        con.execute(f"LOAD {name}")
    except duckdb.Error:
        con.execute(f"INSTALL {name}")
        con.execute(f"LOAD {name}")


def _s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """Object-storage credentials from the environment (never stored in the lake)."""
    load_extension(con, "httpfs")
    options = {"KEY_ID": "AWS_ACCESS_KEY_ID", "SECRET": "AWS_SECRET_ACCESS_KEY", "REGION": "AWS_REGION",
               "ENDPOINT": "OUTBOUND_S3_ENDPOINT", "URL_STYLE": "OUTBOUND_S3_URL_STYLE"}
    given = {key: os.environ[env] for key, env in options.items() if os.environ.get(env)}
    if given:
        # CREATE SECRET takes literals, not parameters: each value is quoted. The secret lives in this process only.
        literal = ", ".join(f"{k} '{v.replace(chr(39), chr(39) * 2)}'" for k, v in given.items())
        con.execute(f"CREATE OR REPLACE SECRET outbound_s3 (TYPE s3, {literal})")


def _attach(target: LakeTarget, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    load_extension(con, "ducklake")
    if target.catalog in _CATALOG_EXTENSIONS:
        load_extension(con, _CATALOG_EXTENSIONS[target.catalog])
    if target.data_path.startswith("s3://"):
        _s3_secret(con)
    options = [f"DATA_PATH '{target.data_path}'"] + (["READ_ONLY"] if read_only else [])
    con.execute(f"ATTACH '{target.url.replace(chr(39), chr(39) * 2)}' AS {LAKE_ALIAS} ({', '.join(options)})")
    con.execute("SET ducklake_max_retry_count = 100")  # commits that do not clash are replayed on the new snapshot
    return con


def lake_cursor(target: LakeTarget, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A fresh cursor on this process's attachment of the lake, with the lake as its default database."""
    key = (target, read_only, os.getpid())
    with _lock:
        base = _attached.get(key)
        if base is None:
            base = _attached[key] = _attach(target, read_only)
    cursor = base.cursor()
    cursor.execute(f"USE {LAKE_ALIAS}")
    return cursor
