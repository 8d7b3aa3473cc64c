"""DuckLake fixtures: a private PostgreSQL server, a lake per test, the store pointed at it.

These tests need DuckLake's extension, which exists on PyPI only for DuckDB 1.4.x
(`duckdb-ext-ducklake`), so they run in their own environment: `./run lake test`. Elsewhere they
skip, saying so. They also need PostgreSQL's server binaries (Debian's `postgresql`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from bench.postgres_server import Postgres, find_bin_dir, running_postgres
from outbound_pipeline.store import backend

_names = itertools.count(1)


def _missing() -> str | None:
    if backend._extension_file("ducklake") is None:
        return (f"DuckLake's extension is not installed for DuckDB {duckdb.__version__}: these tests run in .venv-lake "
                "(`./run lake test`, DuckDB 1.4.4 with duckdb-ext-ducklake)")
    if find_bin_dir() is None:
        return "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
    return None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture
def new_database(postgres: Postgres) -> Iterator:
    """Creates a fresh database on the test server; returns its name."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None

    def create(prefix: str = "lake") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        postgres.create_database(name, bin_dir)
        return name

    yield create


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: Postgres, new_database) -> str:
    """OUTBOUND_STORE pointed at a new DuckLake (PostgreSQL catalog, data files under tmp_path); returns the store URL."""
    url = "ducklake:postgres:" + postgres.dsn(new_database())
    monkeypatch.setenv("OUTBOUND_STORE", url)
    monkeypatch.setenv("OUTBOUND_LAKE_DATA_PATH", str(tmp_path / "lake_files"))
    monkeypatch.setenv("OUTBOUND_DUCKDB_PATH", str(tmp_path / "unused.duckdb"))
    return url


@pytest.fixture
def sqlite_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if backend._extension_file("ducklake") is None or backend._extension_file("sqlite_scanner") is None:
        pytest.skip(_missing() or "the sqlite extension is not installed")
    url = f"ducklake:sqlite:{tmp_path / 'catalog.sqlite'}"
    monkeypatch.setenv("OUTBOUND_STORE", url)
    monkeypatch.setenv("OUTBOUND_LAKE_DATA_PATH", str(tmp_path / "lake_files"))
    return url


