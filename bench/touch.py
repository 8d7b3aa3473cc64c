"""One touch (research, compose, approve, send) against local fake providers, next to the providers' limits.

    python -m bench.touch [--leads 2000] [--latency 0.15] [--rate 50] [--loop-sample 40]
    python -m bench.touch --mixed [--leads 300]      # Resend at its shipped 2/s beside WhatsApp and SMS
    python -m bench.touch --streamed [--slice 0]     # the stages at once, as the launch and three following runs (bench/touch_stage.py)

The real SDK clients (tavily-python, openai, resend, twilio) talk to `bench.fake_providers`, which answers
each request after `latency` and answers 429 (with Retry-After) above `rate` requests per second per provider.
Each stage runs as the pipeline runs it (Dagster materialisations through `runner.Driver`) and is printed
next to its bound: requests / rate + one latency, the fastest the provider's limit allows. The
one-at-a-time loop (research, compose, send for one lead, then the next) is timed on `--loop-sample` leads
and scaled to the whole list.

`--streamed` runs the touch's stages at once instead of one after the other, as a launch runs them: the launch's run
freezes the audience, then researches it, storing snippets as they come (or in runs of `--slice` recipients); compose,
drafting whoever is researched, starts with the launch (as `compose_beside_research_sensor` requests it when the
launch's run is handed to the run launcher: both processes start together); review,
approving each draft stored, and send, sending each draft approved, start once compose has stored its first drafts
(their sensors watch for the observation compose logs then). Each runs in a process of its own
(`bench/touch_stage.py`) sharing a Dagster instance and the DuckDB file, started the moment its sensor could fire (a
sensor's tick interval is not counted). Its bound is the slowest stage's: research's requests / rate + one latency.

`--mixed` sends with Resend's shipped pacing (OUTBOUND_RATE_EMAIL unset: 2/s) and WhatsApp and SMS at
`rate`: the last WhatsApp/SMS message must reach Twilio within its own bound, whatever email's pacing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench.fake_providers import FakeProviders

CAMPAIGN = """name: bench_touch
goal: {goal}
type: oneshot
approval: auto
owner_email: owner@example.com
audience: {{lead_list: bench_leads.csv, default_region: US}}
sending_window: {{start: "00:00", end: "23:59", days: [mon, tue, wed, thu, fri, sat, sun], default_timezone: UTC}}
steps:
  - name: intro
    channels: [{channels}]
    intent: introduce
    cta: a 20-minute call next week
    whatsapp_template: {{content_sid: HX00000000000000000000000000000001, variables: {{"1": first_name}}}}
"""
MONDAY = datetime(2026, 1, 5, 10, 0)
GOAL = "Book a 20-minute call with operations leaders."  # the campaign's goal, also the loop's
STAGES = ("research", "compose", "review", "send")  # the streamed touch's runs, each following the one before


def peak_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _workdir(leads: int, channels: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix="outbound-bench-touch-"))
    data = root / "data"
    repo_data = Path(__file__).resolve().parent.parent / "data"
    (data / "campaigns").mkdir(parents=True)
    shutil.copy(repo_data / "voice.md", data / "voice.md")
    (data / "campaigns" / "bench_touch.yaml").write_text(CAMPAIGN.format(channels=channels, goal=GOAL), encoding="utf-8")
    from outbound_pipeline.sample_data import write_leads_csv

    write_leads_csv(data / "bench_leads.csv", leads, seed=11, bad_rows=False)
    os.environ.update({
        "OUTBOUND_DATA_DIR": str(data), "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"),
        "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "ledger"), "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"),
        "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"), "OUTBOUND_LANDING_DIR": str(data / "landing"),
        "OUTBOUND_CACHE_DIR": str(root / "cache"), "OUTBOUND_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-0123456789abcdef",
        "OUTBOUND_DAILY_LIMIT": "unlimited", "OUTBOUND_WHATSAPP_TIER": "unlimited", "OUTBOUND_WEEKLY_CAP_PER_LEAD": "unlimited",
    })
    return root


def _limits_env(rate: float, email_rate: float | None) -> None:
    """The providers' limits as the pipeline is told them: each provider at `rate`, email at `email_rate` (None: shipped)."""
    for name in ("TAVILY", "OPENAI", "TWILIO", "WHATSAPP", "SMS", "SMS_SENDER"):
        os.environ[f"OUTBOUND_RATE_{name}"] = str(rate)
    if email_rate is None:
        os.environ.pop("OUTBOUND_RATE_EMAIL", None)
    else:
        os.environ["OUTBOUND_RATE_EMAIL"] = str(email_rate)


def _row(label: str, seconds: float, bound: float, note: str = "") -> None:
    print(f"{label:<34} {seconds:>8.1f} s   bound {bound:>7.1f} s   ratio {seconds / bound:>5.2f}x   {note}", flush=True)


def _one_at_a_time(fake: FakeProviders, n: int, goal: str) -> float:
    """Seconds per lead when research, compose and send run for one lead after another, with the same clients."""
    from outbound_pipeline.engine.compose import available_channels
    from outbound_pipeline.providers.base import ComposeRequest, LeadProfile, OutboundMessage, StepBrief
    from outbound_pipeline.providers.compose_openai import OpenAIComposer
    from outbound_pipeline.providers.email_resend import ResendEmail
    from outbound_pipeline.providers.research_tavily import TavilyResearch
    from outbound_pipeline.sample_data import make_leads

    env = fake.env()
    research = TavilyResearch(api_key=env["TAVILY_API_KEY"], base_url=env["OUTBOUND_TAVILY_BASE_URL"])
    composer = OpenAIComposer(api_key=env["OPENAI_API_KEY"], base_url=env["OPENAI_BASE_URL"])
    email = ResendEmail(api_key=env["RESEND_API_KEY"], from_address="Sam <sam@example.com>", base_url=env["RESEND_API_URL"],
                        requests_per_second=0)
    leads = [LeadProfile(lead_id=f"lead_loop_{i}", first_name=str(r[0]) or "Sam", last_name=str(r[1]), company=str(r[4]), role=str(r[5]),
                         email=f"loop{i}@example.com", phone=None, country="US") for i, r in enumerate(make_leads(n, 99, False))]
    brief = StepBrief(touch=1, intent="introduce", channels=("email",), tone=None, cta="a call")
    start = time.perf_counter()
    for lead in leads:
        found = research.research(lead, goal)
        draft = composer.compose(ComposeRequest(campaign_id="loop", goal=goal, voice="plain", lead=lead, step=brief,
                                                snippets=found.snippets, available_channels=available_channels(lead)))
        email.send(OutboundMessage(send_id=f"snd_loop_{lead.lead_id}", idempotency_key=f"loop-{lead.lead_id}",
                                                           campaign_id="loop", touch=1, lead_id=lead.lead_id, channel="email",
                                                           to=lead.email or "", body=draft.body, subject=draft.subject or "Hello"))
    return (time.perf_counter() - start) / n


def _against_the_loop(fake: FakeProviders, sample: int, leads: int, label: str, total: float) -> float:
    """Time the one-at-a-time loop on `sample` leads, scale it to `leads`, print it beside `total`; returns the loop's seconds."""
    per_lead = _one_at_a_time(fake, sample, GOAL)
    loop = per_lead * leads
    print(f"\n{label} {total:.1f} s; one lead at a time {loop:.1f} s ({per_lead * 1000:.0f} ms per lead x {leads:,}, "
          f"timed on {sample}): {loop / total:.1f}x faster")
    return loop


def _tracking_poll(fake: FakeProviders, rate: float) -> None:
    """One tracking poll of every WhatsApp/SMS message just sent: the Messages list by day vs one request per message."""
    from datetime import UTC

    from outbound_pipeline.providers.messaging_twilio import TwilioMessaging
    from outbound_pipeline.store import warehouse

    with warehouse.connect(os.environ["OUTBOUND_DUCKDB_PATH"], read_only=True) as con:
        sent = con.execute("SELECT * FROM sends WHERE provider = 'twilio' AND status = 'sent'").df()
    env = fake.env()
    timed = {}
    for label, list_above in (("one request per message", 10**9), ("Messages list by day", 50)):
        client = TwilioMessaging(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"], messaging_service_sid="MG" + "0" * 32,
                                 base_url=fake.url, max_concurrency=16, requests_per_second=rate, list_above=list_above)
        fake.reset_counters()
        start = time.perf_counter()
        events, _ = client.poll_events(sent, datetime.now(UTC))
        timed[label] = time.perf_counter() - start
        print(f"{'tracking poll: ' + label:<44} {timed[label]:>6.1f} s  {fake.counters['twilio'].requests:>5,} requests "
              f"for {len(sent):,} messages, {len(events):,} events", flush=True)


def _streamed(leads: int, args: argparse.Namespace) -> None:
    """The touch with its stages running at once (`bench/touch_stage.py`), next to the one-at-a-time loop."""
    fake = FakeProviders(latency=args.latency, rate=args.rate)
    fake.start()
    os.environ.update(fake.env())
    _limits_env(args.rate, args.rate)
    root = _workdir(leads, "email, whatsapp, sms")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    how = f"in runs of {args.slice}" if args.slice else "in one run stored as it goes"
    print(f"one streamed touch for {leads:,} generated leads, research {how}; fake providers "
          f"{args.latency * 1000:.0f} ms, 429 above {args.rate:g} requests/s; data in {root}\n", flush=True)

    import dagster as dg

    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("campaigns", ["bench_touch"])
    instance.add_dynamic_partitions("campaign_touches", ["bench_touch.t1"])
    started, started_mono = time.time(), time.monotonic()
    os.environ.update({"OUTBOUND_BENCH_NOW": MONDAY.isoformat(), "OUTBOUND_BENCH_STARTED": str(started)})
    # As the pipeline runs it: the launch's run freezes the audience, then researches it; the sensors start compose as
    # the launch's run is launched (both processes start together), and review and sending once compose has stored its
    # first drafts.
    stages = [_stage_process("research", args.slice, root), _stage_process("compose", args.slice, root)]
    began = _logged(lambda: instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=1), stages[0], started)
    drafted = _logged(lambda: instance.fetch_observations(dg.AssetKey("drafts"), limit=1).records, stages[1], started)
    stages += [_stage_process(stage, args.slice, root) for stage in STAGES[2:]]
    if any(stage.wait() for stage in stages):
        raise SystemExit("a stage failed")
    total = time.time() - started
    logs = {stage: json.loads((root / f"{stage}.done").read_text(encoding="utf-8")) for stage in STAGES}
    sent = _counts(os.environ["OUTBOUND_DUCKDB_PATH"])
    researched = sum(done for _, done in logs["research"]["runs"])
    bound = researched / args.rate + args.latency
    print(f"recipients researched {researched:,}, sent {sent}; the launch's run started at {began:.1f} s (compose was launched with it at 0 s), "
          f"compose stored its first drafts at {drafted:.1f} s (review and send started)")
    for stage, log in logs.items():
        print(f"{stage:<8} ready at {log['ready_at']:4.1f} s, {len(log['runs']):>2} runs, last ended at {log['runs'][-1][0]:5.1f} s, "
              f"CPU {log['cpu_seconds']:5.1f} s; "
              f"DuckDB opened {log['opens']:>4} times, waited {log['lock_waited_s']:5.1f} s for the lock, held it {log['lock_held_s']:5.1f} s")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"this process (fake providers) CPU {usage.ru_utime + usage.ru_stime:5.1f} s; {os.cpu_count()} cores give {(os.cpu_count() or 1) * total:.0f} s")
    for provider, times in fake.admitted.items():
        if times:
            limited = ", ".join(f"{t - started_mono:.1f}" for t in fake.limited_at[provider][:8])
            print(f"{provider:<8} requests {len(times):>5,} from {min(times) - started_mono:5.1f} s to {max(times) - started_mono:5.1f} s "
                  f"({(len(times) - 1) / (max(times) - min(times)):4.1f}/s), 429s {fake.counters[provider].limited}"
                  + (f" at {limited} s" if limited else ""))
    last_run = max(log["runs"][-1][0] for log in logs.values())
    print(f"the last run ended at {last_run:.1f} s, the last process exited at {total:.1f} s (measured to the exit)")
    _row("whole touch, streamed", total, bound, "the slowest stage's bound: research's requests at the rate")
    loop = _against_the_loop(fake, args.loop_sample, leads, "whole touch streamed", total)
    print(f"(target 20x; ceiling at this rate {loop / bound:.1f}x)")
    print(f"peak memory of this process {peak_mb():.0f} MB (each stage runs in its own)")
    fake.stop()
    shutil.rmtree(root, ignore_errors=True)


def _logged(event: Callable[[], object], run: subprocess.Popen, started: float) -> float:
    """Seconds from `started` until `run` logged `event` (when the sensor watching for it would fire)."""
    while not event():
        if run.poll() is not None:
            raise SystemExit("a run ended before the event its followers start on")
        time.sleep(0.02)
    return time.time() - started


def _stage_process(stage: str, size: int, root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.touch_stage", stage, str(size), str(root)])


def _counts(db_path: str) -> dict[str, int]:
    from outbound_pipeline.store import warehouse

    with warehouse.connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT channel, count(*) FROM sends WHERE status = 'sent' GROUP BY channel").fetchall()
    return {str(ch): int(n) for ch, n in rows}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.touch")
    parser.add_argument("--leads", type=int, default=None, help="leads in the list (2000; 300 with --mixed)")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds each fake provider takes to answer")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second each fake provider admits (429 above)")
    parser.add_argument("--loop-sample", type=int, default=40, help="leads timed one at a time (scaled to the list)")
    parser.add_argument("--mixed", action="store_true", help="email at Resend's shipped 2/s beside WhatsApp and SMS")
    parser.add_argument("--streamed", action="store_true", help="research, compose and send at once, research in slices")
    parser.add_argument("--slice", type=int, default=0, help="recipients per research run when streamed (0: one run, stored as it goes)")
    args = parser.parse_args()
    leads = args.leads or (300 if args.mixed else 2000)
    if args.streamed:
        _streamed(leads, args)
        return

    fake = FakeProviders(latency=args.latency, rate=args.rate)
    fake.start()
    os.environ.update(fake.env())
    _limits_env(args.rate, None if args.mixed else args.rate)
    root = _workdir(leads, "email, whatsapp, sms")
    print(f"one touch for {leads:,} generated leads; fake providers {args.latency * 1000:.0f} ms, 429 above {args.rate:g} requests/s; "
          f"data in {root}\n", flush=True)

    import dagster as dg

    from outbound_pipeline.runner import Driver
    from outbound_pipeline.store import warehouse

    stages = [("import + audience", ["campaigns", "campaign_events", "leads", "lead_rejects", "recipients"], "bench_touch"),
              ("research (Tavily)", ["research_snippets"], "bench_touch"),
              ("compose (OpenAI)", ["drafts", "recipient_steps"], "bench_touch.t1"),
              ("approve + outbox", ["approvals", "outbox"], "bench_touch.t1"),
              ("send (Resend, Twilio)", ["sends"], "bench_touch.t1")]
    timings: dict[str, float] = {}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("campaigns", ["bench_touch"])
        instance.add_dynamic_partitions("campaign_touches", ["bench_touch.t1"])
        driver = Driver(instance, os.environ["OUTBOUND_DUCKDB_PATH"])
        for label, selection, key in stages:
            fake.reset_counters()
            start = time.perf_counter()
            driver.run(selection, MONDAY, key)
            timings[label] = time.perf_counter() - start
            timings[label + ":429"] = sum(c.limited for c in fake.counters.values())
        with warehouse.connect(driver.db_path, read_only=True) as con:
            recipients = con.execute("SELECT count(*) FROM recipients").fetchall()[0][0]
            researched = con.execute("SELECT count(DISTINCT lead_id) FROM research_snippets").fetchall()[0][0]
            drafted = con.execute("SELECT count(*) FROM drafts").fetchall()[0][0]
    sent = _counts(os.environ["OUTBOUND_DUCKDB_PATH"])
    emails, twilio = sent.get("email", 0), sent.get("whatsapp", 0) + sent.get("sms", 0)
    rate, lat = args.rate, args.latency
    email_rate = rate if not args.mixed else 2.0
    send_bound = max(emails / email_rate, twilio / rate) + lat
    print(f"recipients {recipients:,}, researched {researched:,}, drafted {drafted:,}, sent {sent}\n")
    print(f"{'import + audience':<34} {timings['import + audience']:>8.1f} s   (no provider)")
    _row("research (Tavily)", timings["research (Tavily)"], researched / rate + lat, f"{researched:,} requests, 429s {timings['research (Tavily):429']:.0f}")
    _row("compose (OpenAI)", timings["compose (OpenAI)"], drafted / rate + lat, f"{drafted:,} requests, 429s {timings['compose (OpenAI):429']:.0f}")
    print(f"{'approve + outbox':<34} {timings['approve + outbox']:>8.1f} s   (no provider)")
    _row("send (Resend, Twilio)", timings["send (Resend, Twilio)"], send_bound,
         f"{emails:,} emails at {email_rate:g}/s, {twilio:,} WhatsApp/SMS at {rate:g}/s, 429s {timings['send (Resend, Twilio):429']:.0f}")
    total = sum(v for k, v in timings.items() if not k.endswith(":429"))
    if args.mixed:
        times = sorted(fake.arrivals["twilio"])
        first_send = min(fake.arrivals["resend"] + fake.arrivals["twilio"])
        twilio_done = times[-1] - first_send if times else 0.0
        _row("WhatsApp/SMS handed to Twilio", twilio_done, twilio / rate + lat, f"{twilio:,} messages beside {emails:,} emails paced at 2/s")
    else:
        _tracking_poll(fake, rate)
        _against_the_loop(fake, args.loop_sample, leads, "whole touch", total)
    print(f"peak memory {peak_mb():.0f} MB")
    fake.stop()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
