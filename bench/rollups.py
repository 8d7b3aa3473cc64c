"""The metrics rollups over ten million delivery events: campaign, funnel and variant, each alone and the three together.

    python -m bench.rollups [--events 10000000] [--bound 2.0]

Builds a synthetic warehouse in a temporary DuckDB file (20 campaigns of the demo's three steps,
four events per send on average, replies, drafts, step entries and variants) and folds it into
`send_facts` once (the first fold reads the whole history). Then, as the pipeline does day after day,
a new day of events and replies arrives (a twentieth of the history; checkpointed into the file, as the tracking
units that wrote it each did when they closed it) and is timed: folding that day in (its commit included) plus the
campaign, funnel and variant rollups, together, against the bound (the fold and the three rollups are
also printed apart). Also times each rollup alone and, in the same run, a plain scan of the events (every
column the rollups would read, once).
Prints each figure, the bound, the ratios and the process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from outbound_pipeline.domain.loader import load_campaign_file
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metric_facts import fold_send_facts
from outbound_pipeline.store.metrics import funnel_frame, rollup, variant_frame

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 5, 9, 0)
CAMPAIGNS = 20
EVENTS_PER_SEND = 4

# Every column of delivery_events a rollup reads, scanned once, the same way: the floor under any rollup.
PLAIN_SCAN = """
SELECT count(*), max(length(send_id)), max(occurred_at), max(length(detail)), count(*) FILTER (WHERE event_type = 'opened')
FROM delivery_events WHERE occurred_at < $1
"""


def build(con: duckdb.DuckDBPyConnection, n_events: int) -> dict[str, int]:
    """Fill the warehouse with `n_events` delivery events of `n_events / 4` sends, written in a few set-based statements."""
    sends = n_events // EVENTS_PER_SEND
    per_campaign = sends // CAMPAIGNS
    entry = per_campaign * 10 // 19  # touch 1: 10/19 of a campaign's sends, touch 2 6/19, touch 3 3/19
    second = per_campaign * 6 // 19
    spec = load_campaign_file(REPO / "data" / "campaigns" / "demo_drip.yaml")
    for c in range(CAMPAIGNS):
        campaign = f"bench_{c:02d}"
        con.execute("INSERT INTO campaigns VALUES (?, 'bench', 'drip', 'auto', 'bench.csv', 3, ?, 'h', 'running', NULL, ?, ?)",
                    [campaign, json.dumps({**json.loads(spec.model_dump_json()), "name": campaign}), START, START])
    con.execute(f"""
        CREATE TEMP TABLE plan AS
        SELECT i, 'bench_' || lpad((i % {CAMPAIGNS})::VARCHAR, 2, '0') AS campaign_id, i // {CAMPAIGNS} AS j,
               hash(i) % 1000 AS r, hash(i * 7 + 1) % 1000 AS r2
        FROM range({sends}) t(i)
    """)
    con.execute(f"""
        CREATE TEMP TABLE shaped AS
        SELECT i, campaign_id, r, r2,
               CASE WHEN j < {entry} THEN 1 WHEN j < {entry + second} THEN 2 ELSE 3 END AS touch,
               CASE WHEN j < {entry} THEN j WHEN j < {entry + second} THEN j - {entry} ELSE j - {entry + second} END AS lead_no,
               CASE WHEN r < 600 THEN 'email' WHEN r < 850 THEN 'whatsapp' ELSE 'sms' END AS channel
        FROM plan
    """)
    con.execute(f"""
        CREATE TEMP TABLE s AS
        SELECT 'snd_' || i AS send_id, 'dft_' || i AS draft_id, campaign_id, touch, 'lead_' || lead_no AS lead_id, channel,
               CASE WHEN touch = 1 THEN (CASE WHEN lead_no % 2 = 0 THEN 'A' ELSE 'B' END) END AS variant,
               CASE WHEN r2 < 10 THEN 'failed' WHEN r2 < 15 THEN 'pending' ELSE 'sent' END AS status,
               TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' + to_days(((touch - 1) * 3 + lead_no % 10)::INTEGER)
                   + to_seconds((lead_no % 36000)::BIGINT) AS sent_at, r, r2
        FROM shaped
    """)
    con.execute("""
        INSERT INTO sends (send_id, draft_id, campaign_id, touch, lead_id, channel, to_address, body, status, provider, cost_usd,
                           attempts, recorded_at, sent_at, updated_at)
        SELECT send_id, draft_id, campaign_id, touch, lead_id, channel, lead_id || '@example.com', 'hello', status, 'bench',
               CASE WHEN channel = 'email' THEN 0.001 ELSE 0.05 END, 1, sent_at - INTERVAL 5 MINUTE,
               CASE WHEN status = 'sent' THEN sent_at END, sent_at
        FROM s ORDER BY sent_at
    """)
    con.execute("""
        INSERT INTO drafts (draft_id, campaign_id, touch, lead_id, channel, tone, cta, body, cited_snippet_ids, composer, flags, cost_usd, created_at)
        SELECT draft_id, campaign_id, touch, lead_id, channel, 'warm', 'call', 'hello', '[]', 'bench', '[]', 0.002, sent_at - INTERVAL 1 HOUR FROM s ORDER BY sent_at
    """)
    con.execute("""
        INSERT INTO recipient_steps SELECT campaign_id, lead_id, touch, touch, CASE touch WHEN 1 THEN 'intro' WHEN 2 THEN 'nudge' ELSE 'close_the_loop' END,
               variant, CASE WHEN touch = 1 THEN 'entry' ELSE 'next' END, sent_at - INTERVAL 2 HOUR FROM s
    """)
    con.execute("""
        INSERT INTO recipients SELECT campaign_id, lead_id, 'active', NULL, variant, sent_at, sent_at FROM s WHERE touch = 1
    """)
    # Four events per send: sent; delivered, bounced or failed; an open (a fifth of them by a machine a second after
    # delivery, or through Google's image proxy), a read or a delay; a click, a complaint, an opt-out or another delay.
    con.execute("""
        INSERT INTO delivery_events
        SELECT 'evt_' || s.send_id || '_' || k, s.send_id, campaign_id, touch, lead_id, channel,
               CASE k WHEN 0 THEN 'sent'
                      WHEN 1 THEN CASE WHEN status = 'failed' THEN 'failed' WHEN r2 < 40 AND channel = 'email' THEN 'bounced' ELSE 'delivered' END
                      WHEN 2 THEN CASE WHEN channel = 'email' AND r2 % 2 = 0 THEN 'opened' WHEN channel = 'whatsapp' AND r2 % 3 > 0 THEN 'read'
                                       ELSE 'delivery_delayed' END
                      ELSE CASE WHEN channel = 'email' AND r2 % 10 = 0 THEN 'clicked' WHEN r2 % 997 = 1 THEN 'complained'
                                WHEN r2 % 50 = 3 THEN 'opted_out' ELSE 'delivery_delayed' END END,
               coalesce(sent_at, TIMESTAMP '2026-01-05') + CASE k WHEN 0 THEN INTERVAL 0 SECOND WHEN 1 THEN INTERVAL 40 SECOND
                   WHEN 2 THEN (CASE WHEN r % 5 = 0 THEN INTERVAL 41 SECOND ELSE INTERVAL 3 HOUR END) ELSE INTERVAL 5 HOUR END,
               'bench', CASE WHEN k = 2 AND r % 7 = 0 THEN '{"user_agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}' ELSE '{}' END,
               coalesce(sent_at, TIMESTAMP '2026-01-05') + INTERVAL 6 HOUR
        FROM s, range(4) t(k)
    """)
    con.execute("""
        INSERT INTO replies (reply_id, send_id, campaign_id, touch, lead_id, channel, from_address, body, intent, received_at, provider, ingested_at)
        SELECT 'rpl_' || send_id, send_id, campaign_id, touch, lead_id, channel, lead_id || '@example.com', 'hi',
               CASE r % 5 WHEN 0 THEN 'interested' WHEN 1 THEN 'question' WHEN 2 THEN 'not_now' WHEN 3 THEN 'opt_out' ELSE 'not_interested' END,
               sent_at + INTERVAL 20 HOUR, 'bench', sent_at + INTERVAL 20 HOUR
        FROM s WHERE status = 'sent' AND r2 % 16 = 5
    """)
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
              for t in ("sends", "delivery_events", "replies", "drafts", "recipient_steps", "recipients")}
    con.execute("DROP TABLE plan; DROP TABLE shaped; DROP TABLE s")
    con.execute("CHECKPOINT")
    return counts


RECENT_DAYS = 3  # how far back a day's opens, reads, clicks and replies reach, in `--day recent`


def append_day(con: duckdb.DuckDBPyConnection, n_events: int, sends: int, day: int, recent: bool) -> int:
    """A new day: `n_events` opens, reads and clicks on earlier messages, and a reply to one in sixteen, ingested that day.
    `recent`: on messages of the history's last RECENT_DAYS days (where a day's opens and replies mostly land); otherwise on
    messages drawn from the whole history (the worst case for the fold: every stored row group of the facts changes)."""
    at = f"TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' + INTERVAL {30 + day} DAY"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE targets AS
        SELECT row_number() OVER () - 1 AS n, send_id FROM sends
        {f"WHERE sent_at >= (SELECT max(sent_at) FROM sends) - INTERVAL {RECENT_DAYS} DAY" if recent else ""}
    """)
    count = int(con.execute("SELECT count(*) FROM temp.targets").fetchall()[0][0])
    con.execute(f"""
        INSERT INTO delivery_events
        SELECT 'evt_day{day}_' || i, t.send_id, 'bench', 1, 'lead', CASE WHEN x % 3 = 0 THEN 'whatsapp' ELSE 'email' END,
               CASE i % 3 WHEN 0 THEN 'opened' WHEN 1 THEN 'read' ELSE 'clicked' END, {at} + to_seconds(i % 80000), 'bench', '{{}}',
               {at} + to_seconds(i % 80000)
        FROM (SELECT i, hash(i + {day} * 7919) % {count} AS x FROM range({n_events}) r(i)) JOIN temp.targets t ON t.n = x
    """)
    con.execute(f"""
        INSERT INTO replies (reply_id, send_id, campaign_id, touch, lead_id, channel, from_address, body, intent, received_at, provider, ingested_at)
        SELECT 'rpl_day{day}_' || i, t.send_id, 'bench', 1, 'lead', 'email', 'x@example.com', 'hi', 'interested', {at}, 'bench', {at}
        FROM (SELECT i, hash(i * 31 + {day}) % {count} AS x FROM range({n_events // 16}) r(i)) JOIN temp.targets t ON t.n = x
    """)
    return n_events + n_events // 16


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best of `repeat` runs, in seconds (the first warms the file's pages)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rollups")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--bound", type=float, default=2.0, help="seconds allowed for the three rollups together")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--day", choices=("recent", "uniform"), default="recent",
                        help="where the new day's events land: on the last days' messages, or spread over the whole history")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="outbound-rollups-"))
    try:
        path = root / "bench.duckdb"
        started = time.perf_counter()
        with warehouse.connect(path) as con:
            counts = build(con, args.events)
        print(f"built {', '.join(f'{n:,} {t}' for t, n in counts.items())} in {time.perf_counter() - started:.1f} s ({path})")
        cutoff = START + timedelta(days=40)  # after the last event, appended days included: every row counts
        rollups: dict[str, Callable[[duckdb.DuckDBPyConnection], object]] = {
            "campaign": lambda con: rollup(con, cutoff),  # every breakdown as of the day's end: one metrics_daily partition
            "funnel": lambda con: funnel_frame(con, cutoff),
            "variant": lambda con: variant_frame(con, cutoff),
        }
        with warehouse.connect(path) as con:
            scan = timed(lambda: con.execute(PLAIN_SCAN, [cutoff]).fetchall(), args.repeat)
            first = timed(lambda: fold_send_facts(con), 1)
            days, folds, three = [], [], []
            for day in range(args.repeat):  # each repeat: a new day arrives, is folded in, and the three rollups run
                new = append_day(con, counts["delivery_events"] // 20, counts["sends"], day, args.day == "recent")
                con.execute("CHECKPOINT")  # the day came in through tracking's units, each closing the file (checkpointed)
                folds.append(timed(lambda: fold_send_facts(con), 1))
                three.append(timed(lambda: [fn(con) for fn in rollups.values()], 1))
                days.append(folds[-1] + three[-1])
            together = min(days)
            figures = {name: timed(lambda fn=fn: fn(con), args.repeat) for name, fn in rollups.items()}  # type: ignore[misc]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"plain scan of {counts['delivery_events']:,} events (baseline): {scan:.3f} s")
        print(f"first fold of the whole history into send_facts: {first:.2f} s (once)")
        for name, seconds in figures.items():
            print(f"{name:<9} rollup alone: {seconds:.3f} s  ({seconds / scan:.1f}x the scan)")
        print(f"the new day's fold alone: {min(folds):.3f} s; the three rollups after it, together: {min(three):.3f} s "
              f"({min(three) / args.bound:.2f} of the bound)")
        verdict = "within the bound" if together < args.bound else f"over the bound by {together - args.bound:.2f} s"
        print(f"a new day ({new:,} events and replies) folded in + campaign + funnel + variant: {together:.3f} s "
              f"(best of {len(days)}: {', '.join(f'{d:.2f}' for d in days)}), bound {args.bound:.1f} s, "
              f"ratio to the bound {together / args.bound:.2f}, {together / scan:.1f}x the plain scan: {verdict}")
        print(f"peak memory (RSS): {peak_mb:,.0f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
