"""Tracking across campaign sizes: the scaling curve, and what a tick costs next to what changed.

    python -m bench.tracking [--sizes 1000,5000,10000,20000] [--ticks 16] [--every-hours 6]

Per size: a generated list is launched and its first touch sent (offline providers), then tracking runs
every `--every-hours` as the tracking sensor would (Dagster runs through `runner.Driver`). Printed per size:
the launch + touch time, the tracking time and its share, the first tick (every message new), the mean of
the later ticks, messages polled and events added per tick, and, on the settled campaign, one tick as tracking
works now (engine only) next to one that polls every message (how tracking worked before: the baseline, measured
in the same run on the same data). Then the 10k->20k
ratio of the tracking time: linear is 2.0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.touch import CAMPAIGN, GOAL, peak_mb

MONDAY = datetime(2026, 1, 5, 10, 0)


def _setup(root: Path, leads: int) -> Path:
    data = root / "data"
    (data / "campaigns").mkdir(parents=True)
    repo_data = Path(__file__).resolve().parent.parent / "data"
    for name in ("voice.md", "sample_signals.json"):
        shutil.copy(repo_data / name, data / name)
    (data / "campaigns" / "bench_touch.yaml").write_text(CAMPAIGN.format(channels="email, whatsapp, sms", goal=GOAL), encoding="utf-8")
    from outbound_pipeline.sample_data import write_leads_csv

    write_leads_csv(data / "bench_leads.csv", leads, seed=11, bad_rows=False)
    os.environ.update({
        "OUTBOUND_DATA_DIR": str(data), "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"),
        "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "ledger"), "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"),
        "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"), "OUTBOUND_LANDING_DIR": str(data / "landing"),
        "OUTBOUND_CACHE_DIR": str(root / "cache"), "OUTBOUND_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-0123456789abcdef",
        "OUTBOUND_DAILY_LIMIT": "unlimited", "OUTBOUND_WHATSAPP_TIER": "unlimited", "OUTBOUND_WEEKLY_CAP_PER_LEAD": "unlimited",
        "OUTBOUND_RATE_EMAIL": "1000", "OUTBOUND_RATE_WHATSAPP": "1000", "OUTBOUND_RATE_SMS": "1000",
    })
    return data / "outbound.duckdb"


def _every_message_tick(driver, now: datetime) -> tuple[float, int]:
    """One tick as tracking worked before: every message of the horizon simulated and stored again (seconds, messages)."""
    from outbound_pipeline.engine.ingest import poll_providers
    from outbound_pipeline.engine.tracking import process_batch
    from outbound_pipeline.store import events as events_store

    warehouse, channels, intent = driver.base["warehouse"], driver.base["channels"], driver.base["intent"]
    start = time.perf_counter()
    with warehouse.connect() as con:
        sent = events_store.polled_sends(con, ["bench_touch"], since=now - timedelta(days=7))
    events, replies = poll_providers(sent, channels.by_name, now)
    process_batch(warehouse.connect, events, replies, now, intent.provider)
    return time.perf_counter() - start, len(sent)


def _quiet_tick(driver, now: datetime) -> float:
    """The same tick as tracking works now (only messages in flight, then which campaigns remain in flight), engine only."""
    from outbound_pipeline.engine.tracking import gather, in_flight, process_batch

    warehouse, channels, intent = driver.base["warehouse"], driver.base["channels"], driver.base["intent"]
    start = time.perf_counter()
    batch = gather(warehouse.connect, ["bench_touch"], channels.by_name, now, None, None)
    process_batch(warehouse.connect, batch.events, batch.replies, now, intent.provider)
    in_flight(warehouse.connect, ["bench_touch"], channels.by_name, now)
    return time.perf_counter() - start


def _polled(driver, now: datetime) -> int:
    from outbound_pipeline.engine.tracking import final_rules
    from outbound_pipeline.store import events as events_store

    with driver.base["warehouse"].connect() as con:
        final, settled = final_rules(events_store.providers_of(con, ["bench_touch"]), driver.base["channels"].by_name, now)
        return len(events_store.polled_sends(con, ["bench_touch"], now - timedelta(days=7), final, settled))


def run_size(leads: int, ticks: int, every: timedelta) -> dict[str, float]:
    import dagster as dg

    from outbound_pipeline.runner import LAUNCH, TOUCH, TRACK, Driver

    root = Path(tempfile.mkdtemp(prefix="outbound-bench-track-"))
    db_path = _setup(root, leads)
    poll = {"ops": {"track": {"config": {"campaigns": ["bench_touch"]}}}}
    out: dict[str, float] = {"leads": leads}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("campaigns", ["bench_touch"])
        instance.add_dynamic_partitions("campaign_touches", ["bench_touch.t1"])
        driver = Driver(instance, str(db_path))
        start = time.perf_counter()
        driver.run(LAUNCH, MONDAY, "bench_touch")
        driver.run(TOUCH, MONDAY, "bench_touch.t1")
        out["flow_s"] = time.perf_counter() - start
        tick_s, polled, added = [], [], []
        for i in range(1, ticks + 1):
            now = MONDAY + every * i
            polled.append(_polled(driver, now))
            start = time.perf_counter()
            result = driver.run(TRACK, now, run_config=poll)
            tick_s.append(time.perf_counter() - start)
            meta = result.asset_materializations_for_node("track")[0].metadata
            added.append(int(meta["new_events"].value))  # type: ignore[arg-type]
        out["quiet_tick_s"] = _quiet_tick(driver, MONDAY + every * ticks)
        out["baseline_tick_s"], out["baseline_messages"] = _every_message_tick(driver, MONDAY + every * ticks)
    out.update(track_s=sum(tick_s), first_tick_s=tick_s[0], later_tick_s=sum(tick_s[1:]) / max(1, len(tick_s) - 1),
               last_tick_s=tick_s[-1], polled_first=polled[0], polled_last=polled[-1], events=sum(added),
               events_later=sum(added[1:]) / max(1, len(added) - 1))
    shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking")
    parser.add_argument("--sizes", default="1000,5000,10000,20000")
    parser.add_argument("--ticks", type=int, default=16, help="tracking ticks after the touch")
    parser.add_argument("--every-hours", type=float, default=6.0, help="simulated hours between ticks")
    args = parser.parse_args()
    for secret in ("TAVILY_API_KEY", "OPENAI_API_KEY", "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        os.environ.pop(secret, None)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"tracking after one touch, {args.ticks} ticks every {args.every_hours:g} h (offline providers)\n")
    print(f"{'leads':>7} {'flow s':>7} {'track s':>8} {'share':>6} {'1st tick':>9} {'later':>7} {'last':>6} "
          f"{'polled 1st/last':>16} {'events/later tick':>18} {'last tick, engine':>18} {'polling every message':>22}", flush=True)
    results = []
    for n in sizes:
        r = run_size(n, args.ticks, timedelta(hours=args.every_hours))
        results.append(r)
        share = r["track_s"] / (r["track_s"] + r["flow_s"])
        print(f"{n:>7,} {r['flow_s']:>7.1f} {r['track_s']:>8.1f} {share:>6.0%} {r['first_tick_s']:>8.2f}s {r['later_tick_s']:>6.2f}s "
              f"{r['last_tick_s']:>5.2f}s {int(r['polled_first']):>7,}/{int(r['polled_last']):<8,} {r['events_later']:>18,.0f} "
              f"{r['quiet_tick_s']:>17.2f}s {r['baseline_tick_s']:>9.2f}s ({int(r['baseline_messages']):,} msgs)", flush=True)
    by = {int(r["leads"]): r for r in results}
    if 10000 in by and 20000 in by:
        ratio = by[20000]["track_s"] / by[10000]["track_s"]
        print(f"\n10k -> 20k: tracking time x{ratio:.2f} (linear: 2.0); at 20k a tick with nothing in flight costs "
              f"{by[20000]['quiet_tick_s']:.2f} s in the engine (plus the run's fixed cost: {by[20000]['last_tick_s']:.2f} s in all) "
              f"vs {by[20000]['baseline_tick_s']:.2f} s polling every message")
    print(f"peak memory {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
