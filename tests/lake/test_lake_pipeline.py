"""The pipeline on DuckLake: two campaigns, each in its own process, at once, against the same lake.

The lake's catalog and Dagster's instance are both on the PostgreSQL server the tests start. Each
campaign (a copy of the demo drip to its own slice of the sample leads) goes from launch through
touches, tracking, cadence and the metrics rollup. The same campaigns run one after another on a
DuckDB file give the reference: the lake must end with the same rows for each campaign (nothing
lost) and one row per key in every keyed table (nothing duplicated).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from bench.lake import duplicate_keys, prepare, run_file, run_lake
from bench.postgres_server import Postgres

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)
def test_two_campaigns_in_two_processes_at_once_lose_and_duplicate_nothing(postgres: Postgres, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    names = prepare(tmp_path, campaigns=2, leads_each=20)
    on_file = run_file(tmp_path, names, tick_hours=48)
    on_lake, lake_env = run_lake(tmp_path, names, postgres, tick_hours=48, lake_db="pipeline_lake", dagster_db="pipeline_dagster")

    assert max(r["began"] for r in on_lake) < min(r["ended"] for r in on_lake), "the two campaigns did not run at the same time"
    for file_result, lake_result in zip(on_file, on_lake, strict=True):
        assert lake_result["counts"] == file_result["counts"]
        assert lake_result["sent"] == file_result["sent"] > 0
        for table in ("recipients", "drafts", "sends", "delivery_events", "campaign_metrics"):
            assert lake_result["counts"].get(table, 0) > 0, f"{lake_result['campaign']}: no {table} rows"
    assert duplicate_keys(lake_env) == dict.fromkeys(duplicate_keys(lake_env), 0)

    for key in ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(key, lake_env[key])
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == sum(r["runs"] for r in on_lake)
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
