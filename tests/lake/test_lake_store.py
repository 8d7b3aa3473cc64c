"""The store on a real DuckLake: PostgreSQL catalog started for the tests, Parquet files in a temporary folder."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from bench.postgres_server import Postgres
from outbound_pipeline.store import housekeeping, warehouse
from outbound_pipeline.store.migrations import MIGRATIONS, applied_versions
from outbound_pipeline.store.schema import TABLES

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 9, 0)


def _suppressions(ids: range, reason: str = "opt_out") -> pd.DataFrame:
    return pd.DataFrame({"suppression_id": [f"s{i}" for i in ids], "lead_id": [f"l{i}" for i in ids],
                         "address": [f"a{i}@example.com" for i in ids], "channel": "email", "reason": reason,
                         "source": "test", "created_at": NOW})


def test_a_new_lake_gets_every_table_and_every_migration(lake: str) -> None:
    with warehouse.connect("ignored.duckdb") as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
        assert set(TABLES) <= tables
        assert applied_versions(con) == {m.version for m in MIGRATIONS}
    with warehouse.connect("ignored.duckdb", read_only=True) as con:  # read-only: what a BI tool attaches
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == len(MIGRATIONS)


def test_keyed_inserts_and_upserts_keep_one_row_per_key(lake: str) -> None:
    with warehouse.connect("ignored.duckdb") as con:
        assert warehouse.insert_new(con, "suppressions", _suppressions(range(0, 10))) == 10
        assert warehouse.insert_new(con, "suppressions", _suppressions(range(5, 15))) == 5
        con.execute("INSERT INTO inbound_windows VALUES ('l1', ?, 'r1', ?) ON CONFLICT (lead_id) DO UPDATE SET "
                    "last_inbound_at = excluded.last_inbound_at WHERE excluded.last_inbound_at > inbound_windows.last_inbound_at",
                    [NOW, NOW])
        con.execute("INSERT INTO inbound_windows VALUES ('l1', ?, 'r2', ?) ON CONFLICT (lead_id) DO UPDATE SET "
                    "last_inbound_at = excluded.last_inbound_at WHERE excluded.last_inbound_at > inbound_windows.last_inbound_at",
                    [NOW + timedelta(hours=1), NOW])
        assert con.execute("SELECT count(*), count(DISTINCT suppression_id) FROM suppressions").fetchall() == [(15, 15)]
        assert con.execute("SELECT last_inbound_at FROM inbound_windows").fetchall() == [(NOW + timedelta(hours=1),)]


def _write_batches(store: str, data_path: str, start: int, batches: int) -> None:
    os.environ.update(OUTBOUND_STORE=store, OUTBOUND_LAKE_DATA_PATH=data_path)
    for b in range(batches):
        with warehouse.connect("ignored.duckdb") as con:
            warehouse.insert_new(con, "suppressions", _suppressions(range(start + b * 20, start + b * 20 + 40)))


def test_two_processes_adding_overlapping_keys_at_once_leave_each_key_once(lake: str, tmp_path: Path) -> None:
    with warehouse.connect("ignored.duckdb"):
        pass  # the schema, made once, as a deployment's first run does
    context = multiprocessing.get_context("spawn")
    data_path = os.environ["OUTBOUND_LAKE_DATA_PATH"]
    workers = [context.Process(target=_write_batches, args=(lake, data_path, start, 8)) for start in (0, 10)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=240)
        assert w.exitcode == 0
    with warehouse.connect("ignored.duckdb", read_only=True) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT suppression_id) FROM suppressions").fetchall()[0]
    assert (total, distinct) == (190, 190)  # ids 0..189, each once, though both processes offered most of them


def test_housekeeping_merges_small_files_and_expires_snapshots(lake: str) -> None:
    with warehouse.connect("ignored.duckdb") as con:
        for i in range(6):
            warehouse.insert_new(con, "suppressions", _suppressions(range(i * 3, i * 3 + 3)))
        done = housekeeping.tidy(con, keep_snapshots_for=timedelta(0))
        assert done is not None
        assert done.data_files_after < done.data_files_before and done.snapshots_after < done.snapshots_before
        assert con.execute("SELECT count(*) FROM suppressions").fetchall() == [(18,)]


def test_housekeeping_does_nothing_on_the_duckdb_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTBOUND_STORE", raising=False)
    with warehouse.connect(tmp_path / "file.duckdb") as con:
        assert housekeeping.tidy(con) is None


def test_a_sqlite_catalog_serves_the_same_store(sqlite_lake: str) -> None:
    with warehouse.connect("ignored.duckdb") as con:
        assert warehouse.insert_new(con, "suppressions", _suppressions(range(3))) == 3
        assert warehouse.insert_new(con, "suppressions", _suppressions(range(3))) == 0
        assert applied_versions(con) == {m.version for m in MIGRATIONS}


def test_dagster_instance_on_postgres_runs_housekeeping(lake: str, postgres: Postgres, new_database, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in {"DAGSTER_PG_HOST": postgres.host, "DAGSTER_PG_PORT": str(postgres.port), "DAGSTER_PG_USER": postgres.user,
                       "DAGSTER_PG_PASSWORD": "unused-with-trust-auth", "DAGSTER_PG_DB": new_database("dagster")}.items():
        monkeypatch.setenv(key, value)
    from outbound_pipeline.defs.housekeeping import lake_housekeeping_job
    from outbound_pipeline.defs.resources import Warehouse

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = lake_housekeeping_job.execute_in_process(instance=instance, resources={"warehouse": Warehouse(path="ignored.duckdb")})
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
