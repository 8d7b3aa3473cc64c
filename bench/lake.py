"""The same campaigns one after another on the DuckDB file, then all at once on DuckLake.

    .venv-lake/bin/python -m bench.lake [--campaigns 4] [--leads 60] [--tick-hours 48]   (or: ./run lake bench)

Each campaign is a copy of the demo drip to its own slice of the sample leads, run offline on a
simulated clock from launch to metrics (launch, touches, tracking, cadence, rollup), each in its own
process. On the file the processes run one at a time, as the file's single writer allows; on the lake
(PostgreSQL catalog started here, Parquet files in a temporary folder, Dagster's instance on that
PostgreSQL) they all start together. Prints each campaign's wall time on both, the totals and their
ratio, and checks that both stores end with the same rows for every campaign.
Needs the DuckLake environment (`.venv-lake`, see the README's "Scaling out") and PostgreSQL's server binaries.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

from bench.postgres_server import Postgres, find_bin_dir, running_postgres
from outbound_pipeline import settings
from outbound_pipeline.store.schema import TABLES, columns

REPO = Path(__file__).resolve().parent.parent
# Rows each campaign owns (every table with a campaign_id), counted per store to show nothing was lost or duplicated.
COUNTED = [name for name in TABLES if "campaign_id" in columns(name)]


SETUP = """
import dagster as dg
from outbound_pipeline import settings
from outbound_pipeline.definitions import ASSETS
from outbound_pipeline.store import warehouse
with warehouse.connect(settings.duckdb_path()):
    pass
pools = {a.node_def.pool for a in ASSETS if isinstance(a, dg.AssetsDefinition) and getattr(a.node_def, "pool", None)}
with dg.DagsterInstance.get() as instance:
    for pool in sorted(pools):
        instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
"""


def prepare(root: Path, campaigns: int, leads_each: int) -> list[str]:
    """Campaign files `lake_1..N`, each a copy of the demo drip to its own slice of the sample leads."""
    (root / "campaigns").mkdir(parents=True)
    for name in ("sample_signals.json", "voice.md"):
        shutil.copy(settings.DATA_DIR / name, root / name)
    with open(settings.DATA_DIR / "sample_leads.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    spec = yaml.safe_load((settings.DATA_DIR / "campaigns" / "demo_drip.yaml").read_text())
    names = []
    for i in range(campaigns):
        name = f"lake_{i + 1}"
        with open(root / f"{name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([header, *body[i * leads_each:(i + 1) * leads_each]])
        spec.update(name=name, audience={**spec["audience"], "lead_list": f"{name}.csv"})
        (root / "campaigns" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        names.append(name)
    return names


def worker_env(root: Path, campaign: str, store: str | None, dagster_home: Path) -> dict[str, str]:
    """The environment of one campaign's process: shared store and Dagster instance, its own offline ledger and landing area."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBOUND_", "TWILIO_", "RESEND_", "OPENAI_", "TAVILY_"))}
    env.update(OUTBOUND_DUCKDB_PATH=str(root / "outbound.duckdb"), OUTBOUND_CAMPAIGNS_DIR=str(root / "campaigns"),
               OUTBOUND_LEADS_DIR=str(root), OUTBOUND_VOICE_PATH=str(root / "voice.md"), DAGSTER_HOME=str(dagster_home),
               OUTBOUND_OFFLINE_LEDGER_DIR=str(root / "ledgers" / campaign), OUTBOUND_LANDING_DIR=str(root / "landing" / campaign),
               OUTBOUND_CACHE_DIR=str(root / "cache"), PYTHONPATH=str(REPO))
    if store:
        env.update(OUTBOUND_STORE=store, OUTBOUND_LAKE_DATA_PATH=str(root / "lake_files"))
    return env


def postgres_instance_home(home: Path, pg: Postgres, dbname: str) -> dict[str, str]:
    """A DAGSTER_HOME holding deploy/dagster-postgres.yaml, and the variables that point it at `dbname` on `pg`."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    return {"DAGSTER_PG_HOST": pg.host, "DAGSTER_PG_PORT": str(pg.port), "DAGSTER_PG_USER": pg.user,
            "DAGSTER_PG_PASSWORD": "unused-with-trust-auth", "DAGSTER_PG_DB": dbname}


def start_worker(campaign: str, env: dict[str, str], tick_hours: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.lake", "--worker", campaign, "--tick-hours", str(tick_hours)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"campaign process failed ({process.returncode}):\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def worker(campaign: str, tick_hours: float) -> None:
    """One campaign from launch to metrics in this process; prints its seconds and row counts as JSON."""
    import dagster as dg

    from outbound_pipeline.demo import run_demo
    from outbound_pipeline.store import warehouse

    began = time.time()
    result = run_demo(campaign, instance=dg.DagsterInstance.get(), tick=timedelta(hours=tick_hours))
    ended = time.time()
    with warehouse.connect(settings.duckdb_path(), read_only=True) as con:
        counts = {t: int(con.execute(f"SELECT count(*) FROM {t} WHERE campaign_id = ?", [campaign]).fetchall()[0][0]) for t in COUNTED}
    sent = int(result.metrics.loc[result.metrics["touch"] == 0, "sent"].iloc[0])
    print(json.dumps({"campaign": campaign, "seconds": ended - began, "began": began, "ended": ended, "runs": result.runs,
                      "sent": sent, "counts": counts}))


def duplicate_keys(store_env: dict[str, str]) -> dict[str, int]:
    """Rows beyond the first per key (each PRIMARY KEY and UNIQUE of the schema), per table, in the store `store_env` names."""
    code = ("import json; from outbound_pipeline import settings; from outbound_pipeline.store import lake, warehouse\n"
            "with warehouse.connect(settings.duckdb_path(), read_only=True) as con:\n"
            "    print(json.dumps({f'{t}({\", \".join(k)})': con.execute(f'SELECT count(*) - count(DISTINCT ({\", \".join(k)})) FROM {t}')"
            ".fetchall()[0][0] for t, keys in lake.KEYS.items() for k in keys}))")
    out = subprocess.run([sys.executable, "-c", code], env=store_env, cwd=REPO, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_file(root: Path, names: list[str], tick_hours: float) -> list[dict]:
    home = root / "dagster_home_file"
    home.mkdir()
    return [finish(start_worker(n, worker_env(root, n, None, home), tick_hours)) for n in names]


def run_lake(root: Path, names: list[str], pg: Postgres, tick_hours: float, lake_db: str = "lake",
             dagster_db: str = "dagster") -> tuple[list[dict], dict[str, str]]:
    """Every campaign in its own process, all started together, on a new lake and a Dagster instance on `pg`.

    Returns each campaign's result and the environment that reaches the lake and the instance."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    pg.create_database(lake_db, bin_dir)
    pg.create_database(dagster_db, bin_dir)
    home = root / "dagster_home_lake"
    pg_env = postgres_instance_home(home, pg, dagster_db)
    store = "ducklake:postgres:" + pg.dsn(lake_db)
    # Set up once, as a deployment does before its first runs: the lake's schema, and the instance's pool limits
    # (Dagster creates a pool's row on first use; two runs doing so at once collide). The campaigns then start together.
    first = {**worker_env(root, names[0], store, home), **pg_env}
    subprocess.run([sys.executable, "-c", SETUP], env=first, cwd=REPO, check=True)
    processes = [start_worker(n, {**worker_env(root, n, store, home), **pg_env}, tick_hours) for n in names]
    return [finish(p) for p in processes], first


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lake")
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--leads", type=int, default=60, help="leads per campaign (disjoint slices of the sample list)")
    parser.add_argument("--tick-hours", type=float, default=48.0, help="simulated hours between cadence ticks")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tick_hours)
        return
    root = Path(tempfile.mkdtemp(prefix="outbound-lake-bench-"))
    try:
        names = prepare(root, args.campaigns, args.leads)
        started = time.monotonic()
        on_file = run_file(root, names, args.tick_hours)
        file_wall = time.monotonic() - started
        with running_postgres() as pg:
            started = time.monotonic()
            on_lake, lake_env = run_lake(root, names, pg, args.tick_hours)
            lake_wall = time.monotonic() - started
            duplicates = duplicate_keys(lake_env)
        print(f"{'campaign':<10} {'file, one after another':>24} {'lake, all at once':>18} {'rows equal':>11}")
        for f, lk in zip(on_file, on_lake, strict=True):
            print(f"{f['campaign']:<10} {f['seconds']:>22.1f} s {lk['seconds']:>16.1f} s {str(f['counts'] == lk['counts']):>11}")
        print(f"{'wall':<10} {file_wall:>22.1f} s {lake_wall:>16.1f} s")
        print(f"ratio lake/file wall time: {lake_wall / file_wall:.2f} (bound: < 1.0 means the lake finished the "
              f"{len(names)} campaigns sooner); {os.cpu_count()} CPUs")
        print(f"duplicate keys on the lake: {sum(duplicates.values())}")
        if any(f["counts"] != lk["counts"] for f, lk in zip(on_file, on_lake, strict=True)) or any(duplicates.values()):
            sys.exit("the lake's rows differ from the file's")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
