"""Throughput of the pipeline's heavy paths on generated data, offline.

    python -m bench [--leads 5000]

Prints, per stage, rows processed, seconds and rows per second. Numbers depend on
the machine; compare runs on the same one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path


def _timed(label: str, rows: int, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {rows:>9,} rows {seconds:>8.2f} s {rows / seconds if seconds else float('inf'):>12,.0f} rows/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--leads", type=int, default=5000, help="size of the generated lead list")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="outbound-bench-"))
    data = root / "data"
    repo_data = Path(__file__).resolve().parent.parent / "data"
    shutil.copytree(repo_data / "campaigns", data / "campaigns")
    for name in ("sample_signals.json", "voice.md"):
        shutil.copy(repo_data / name, data / name)
    os.environ.update({
        "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"), "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "ledger"),
        "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"), "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"),
        "OUTBOUND_LANDING_DIR": str(data / "landing"),
    })
    for secret in ("TAVILY_API_KEY", "OPENAI_API_KEY", "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        os.environ.pop(secret, None)

    import dagster as dg
    import pandas as pd

    from outbound_pipeline.domain.lead_list import import_lead_list
    from outbound_pipeline.ids import stable_ids
    from outbound_pipeline.runner import LAUNCH, TOUCH, TRACK, Driver
    from outbound_pipeline.sample_data import write_leads_csv
    from outbound_pipeline.store import warehouse
    from outbound_pipeline.store.metrics import rollup

    n = args.leads
    print(f"outbound_pipeline benchmarks, {n:,} generated leads, data in {root}\n")
    csv_path = write_leads_csv(data / "sample_leads.csv", n, seed=7, bad_rows=False)
    result = _timed("import: parse + validate + E.164 + dedup", n, lambda: import_lead_list(csv_path, "US"))

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("campaigns", ["demo_drip"])
        driver = Driver(instance, str(data / "outbound.duckdb"))
        monday = datetime(2026, 1, 5, 9, 0)
        _timed("launch: import + audience + research (offline)", n, lambda: driver.run(LAUNCH, monday, "demo_drip"))
        with warehouse.connect(data / "outbound.duckdb") as con:
            audience = con.execute("SELECT count(*) FROM recipients").fetchall()[0][0]
        _timed("touch 1: compose + approve + outbox + send", audience, lambda: driver.run(TOUCH, monday, "demo_drip.t1"))
        later = datetime(2026, 1, 8, 9, 0)
        _timed("track: poll simulated funnel + react", audience, lambda: driver.run(TRACK, later, "demo_drip"))

    with warehouse.connect(data / "outbound.duckdb") as con:
        events = pd.DataFrame({"n": range(200_000)})
        frame = pd.DataFrame({
            "event_id": stable_ids("evt", events["n"]), "send_id": "snd_bench", "campaign_id": "bench", "touch": 1, "lead_id": "lead_bench",
            "channel": "email", "event_type": "delivered", "occurred_at": later, "provider": "offline", "detail": "{}", "ingested_at": later,
        })
        _timed("bulk insert_new (validate + ON CONFLICT)", len(frame), lambda: warehouse.insert_new(con, "delivery_events", frame))
        _timed("bulk insert_new again (all duplicates)", len(frame), lambda: warehouse.insert_new(con, "delivery_events", frame))
        sends = con.execute("SELECT count(*) FROM sends").fetchall()[0][0]
        _timed("metrics rollup (facts folded in, every breakdown)", sends, lambda: rollup(con, later))
    print(f"\nimported {len(result.leads):,} leads, {len(result.rejects):,} rejects; audience {audience:,}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
