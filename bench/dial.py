"""One dial pass over a large voice campaign: how long the dial step holds the minute it runs in.

    python -m bench.dial [--contacts 20000]

A generated list of `--contacts` contacts across four US zones is launched as a voice campaign (offline callee), then
the dial step runs as the dial sensor asks for it, once a minute of simulated time. Printed: the first pass (every
contact queued, the first calls placed), the mean of the next passes (calls ending, landed records read, new calls placed
within the limit) and the bound: a pass must end well inside the minute between passes (bound 5 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2026, 1, 5, 15, 0)
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
BOUND_S = 5.0


def _setup(root: Path, contacts: int) -> None:
    data = root / "data"
    (data / "campaigns").mkdir(parents=True)
    repo_data = Path(__file__).resolve().parent.parent / "data"
    shutil.copytree(repo_data / "agents", data / "agents")
    shutil.copy(repo_data / "voice.md", data / "voice.md")
    yaml = (repo_data / "campaigns" / "demo_calls.yaml").read_text().replace("demo_calls", "bench_calls")
    yaml = yaml.replace("call_contacts.csv", "bench_contacts.csv").replace("max_concurrent: 3", "max_concurrent: 10")
    (data / "campaigns" / "bench_calls.yaml").write_text(yaml)
    rows = [f"+1{200 + i % 700:03d}55{i // 700 % 100:02d}{i % 1000:03d},Contact {i},{ZONES[i % 4]}" for i in range(contacts)]
    (data / "bench_contacts.csv").write_text("phone_number,name,timezone\n" + "\n".join(rows) + "\n")
    os.environ.update({"OUTBOUND_DATA_DIR": str(data), "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"),
                       "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "ledger"), "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"),
                       "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"),
                       "OUTBOUND_LANDING_DIR": str(data / "landing"), "OUTBOUND_CACHE_DIR": str(root / "cache")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-dial-"))
    try:
        _setup(root, args.contacts)
        import dagster as dg

        from outbound_pipeline.defs.partitions import add_campaign
        from outbound_pipeline.defs.resources import default_resources
        from outbound_pipeline.engine.dialer import dial
        from outbound_pipeline.runner import LAUNCH, Driver, offline_services
        from outbound_pipeline.store import warehouse

        instance = dg.DagsterInstance.ephemeral()
        driver = Driver(instance, os.environ["OUTBOUND_DUCKDB_PATH"])
        driver.base = default_resources()
        driver.base.update(offline_services(driver.base))
        add_campaign(instance, "bench_calls")
        started = time.perf_counter()
        driver.run(LAUNCH, START, "bench_calls")
        launch_s = time.perf_counter() - started
        voice = driver.base["voice"]
        config, dialer = voice.config(os.environ["OUTBOUND_LEADS_DIR"]), voice.dialer()

        def connect():
            return warehouse.connect(os.environ["OUTBOUND_DUCKDB_PATH"])

        timings, placed = [], 0
        for n in range(args.passes + 1):
            started = time.perf_counter()
            stats = dial(connect, dialer, config, START + timedelta(minutes=n))
            timings.append(time.perf_counter() - started)
            placed += stats.placed
        first, later = timings[0], sum(timings[1:]) / max(1, len(timings) - 1)
        print(f"contacts {args.contacts}: launch {launch_s:.1f}s; first dial pass (all queued) {first:.2f}s; "
              f"later passes {later:.2f}s on average; {placed} calls placed over {len(timings)} passes")
        worst = max(timings)
        print(f"figure {worst:.2f} s per pass (worst), bound {BOUND_S:.1f} s, ratio {worst / BOUND_S:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
