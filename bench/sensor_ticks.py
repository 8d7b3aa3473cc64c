"""Sensor ticks with a backlog: 100,000 landed webhook events waiting, read by `landing_sensor` one batch per tick.

    python -m bench.sensor_ticks [--events 100000]

Lands `--events` Twilio status callbacks (as the receiver writes them) in a temporary landing area, then
evaluates `landing_sensor` tick after tick, as the daemon would, until the backlog is requested. Printed: the
first, median and slowest tick, ticks needed, records per requested run, and peak memory, next to the bound:
a tick must finish well inside Dagster's sensor timeout (60 s); the target here is 1 s per tick, and the
ticks' total should grow with the backlog, not with its square.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.touch import peak_mb

BOUND_S = 1.0


def land(directory: Path, events: int, per_write: int = 1000) -> None:
    """`events` status callbacks, written in groups (the receiver batches concurrent requests the same way)."""
    from outbound_pipeline.store import landing

    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for start in range(0, events, per_write):
        group = [landing.make_record("twilio_status", f"SM{i:032d}:delivered",
                                     {"MessageSid": f"SM{i:032d}", "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32,
                                      "To": "+34600000000", "From": "+15550002222"})
                 for i in range(start, min(events, start + per_write))]
        landing.append_many(group, directory, clock=lambda: at)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sensor_ticks")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    import dagster as dg

    from outbound_pipeline.defs.s6_track.sensors import LANDING_BATCH, landing_sensor

    with tempfile.TemporaryDirectory(prefix="outbound-bench-sensor-") as tmp:
        os.environ["OUTBOUND_LANDING_DIR"] = tmp
        start = time.perf_counter()
        land(Path(tmp), args.events)
        print(f"{args.events:,} events landed in {time.perf_counter() - start:.1f} s; landing_sensor reads {LANDING_BATCH:,} per run\n")
        ticks: list[float] = []
        requested = 0
        cursor: str | None = None
        with dg.instance_for_test() as instance:
            while True:
                context = dg.build_sensor_context(instance=instance, cursor=cursor)
                began = time.perf_counter()
                result = landing_sensor(context)
                ticks.append(time.perf_counter() - began)
                cursor = context.cursor
                if not isinstance(result, dg.RunRequest):
                    break
                requested += int(result.tags["outbound/landed_records"])
        worst = max(ticks)
        print(f"ticks {len(ticks)} (the last finds nothing), runs requested for {requested:,} records")
        print(f"first tick {ticks[0]:.3f} s, median {statistics.median(ticks):.3f} s, slowest {worst:.3f} s, all ticks {sum(ticks):.2f} s")
        print(f"bound {BOUND_S:.1f} s per tick: {'held' if worst <= BOUND_S else 'NOT HELD'} (ratio {worst / BOUND_S:.2f}); "
              f"peak memory {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
