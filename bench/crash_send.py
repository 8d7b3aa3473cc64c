"""Exactly once under crashes: SIGKILL the sending run at random points, then check the providers' own records.

    python -m bench.crash_send [--kills 1000] [--messages 500] [--channels email,sms,whatsapp] [--seed 7]

Local fake providers play Resend (`POST /emails` honouring `Idempotency-Key` like Resend: a repeated
key answers the original email id and sends nothing; `GET /emails/{id}`) and Twilio (`POST
.../Messages.json` form, `GET .../Messages.json?To=...` list pages; no idempotency), and keep a ledger
of every message they accepted. For each channel a database is prepared once (launch, drafts,
auto-approval, outbox: `--messages` pending sends of one touch). Each scenario copies it, then runs
the `sends` asset (the `touch_job` step, with a step retry policy) in victim processes forked one at a
time from a zygote that imported everything and completed a warm-up run, so a victim
reaches its provider well under a second after it starts, and kills them with SIGKILL at points
placed from the progress earlier runs showed (spread over the whole send, not bunched at its start):

- at a random instant before the run's first provider request (run creation, step start, reading
  and marking the outbox) or while it sends (provider calls, result commits, reconciliation);
- when the fake provider accepts the k-th message (accepted, answer never read);
- at the k-th reconciliation request (a Twilio list page, a Resend replay of a known key);
- inside a step retry: the bench holds the DuckDB file as the run starts, its step fails busy and
  Dagster retries it, and the retried step is killed at an accepted message or a reconciliation request.

A recovery run is either a new run of the touch (the next schedule tick) or a Dagster re-execution
from failure of the killed run (what run retries do, once run monitoring has marked it failed); it
may itself be killed. After the scenario's kills, runs complete the touch and the ledger is
checked: every queued message accepted exactly once, none missing, and every `sends` row `sent`
with the provider id the ledger holds. Prints kill points tried (by kind), duplicates, losses and
mismatches; the bound is 0, 0 and 0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import duckdb
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus

from outbound_pipeline.defs.partitions import campaign_partitions, touch_partitions
from outbound_pipeline.defs.resources import ChannelService, default_resources
from outbound_pipeline.providers.base import ChannelProvider
from outbound_pipeline.providers.email_resend import ResendEmail
from outbound_pipeline.providers.messaging_twilio import TwilioMessaging
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.sends import touch_sends

SIM_NOW = datetime(2026, 1, 5, 9, 0)  # a Monday, 10:00 in Madrid: inside the sending window
ACCOUNT = "AC" + "c0ffee00" * 4
TOKEN = "crash-bench-token"
SERVICE = "MG" + "5e41ce00" * 4
RESEND_KEY = "re_crash_bench_key"
TEMPLATE_SID = "HX" + "0" * 31 + "7"
JOB = "crash_send"
REPO_DATA = Path(__file__).resolve().parent.parent / "data"
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
CHANNELS = ("email", "sms", "whatsapp")


# --------------------------------------------------------------------------- fake providers


class FakeProviders:
    """Resend and Twilio on their wire formats, with a ledger of accepted messages and kill triggers.

    A trigger ("accept", k) or ("lookup", k) SIGKILLs the armed victim when the k-th such request
    arrives after arming: an accepted message is recorded first, so the kill lands between the
    provider accepting and the sender hearing of it.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.accepted: list[dict[str, str]] = []  # provider, id, to, body, key
            self._by_key: dict[str, tuple[str, str]] = {}  # resend idempotency key -> (email id, payload)
            self._emails: dict[str, dict[str, Any]] = {}
            self._messages: list[dict[str, Any]] = []  # twilio resources, oldest first
            self.requests: Counter[str] = Counter()
            self._victim: int | None = None
            self._trigger: tuple[str, int] | None = None
            self._since_armed: Counter[str] = Counter()
            self.fired = False
            self.first_at: float | None = None  # monotonic times of the first and last request since arming
            self.last_at: float | None = None
            self._t0 = time.monotonic()

    def now(self) -> datetime:
        """The providers' clock: the simulated time the bench sends at, moving with the wall clock."""
        return SIM_NOW.replace(tzinfo=UTC) + timedelta(seconds=time.monotonic() - self._t0)

    def arm(self, pid: int, trigger: tuple[str, int] | None) -> None:
        with self._lock:
            self._victim, self._trigger, self._since_armed, self.fired = pid, trigger, Counter(), False
            self.first_at = self.last_at = None

    def seen(self) -> tuple[int, float | None, float | None]:
        """Requests since arming, and when the first and the last of them arrived: the bench's view of a run's progress."""
        with self._lock:
            return sum(self._since_armed.values()), self.first_at, self.last_at

    def unique_accepted(self) -> int:
        with self._lock:
            return len({a["to"] for a in self.accepted})

    def disarm(self) -> None:
        with self._lock:
            self._victim, self._trigger = None, None

    def _tick(self, kind: str) -> None:
        """Count a request (under the lock) and fire the trigger when it names this one."""
        self.requests[kind] += 1
        self._since_armed[kind] += 1
        self.last_at = time.monotonic()
        self.first_at = self.first_at or self.last_at
        if self._victim and self._trigger == (kind, self._since_armed[kind]) and not self.fired:
            self.fired = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._victim, signal.SIGKILL)

    # ------------------------------------------------------------------ resend

    def resend_send(self, key: str | None, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload, sort_keys=True)
        with self._lock:
            if key and key in self._by_key:
                email_id, first = self._by_key[key]
                self._tick("lookup")
                if first != body:
                    return 409, {"statusCode": 409, "name": "invalid_idempotent_request",
                                 "message": "Same idempotency key used with a different request payload."}
                return 200, {"id": email_id}
            email_id = str(uuid.uuid4())
            if key:
                self._by_key[key] = (email_id, body)
            self._emails[email_id] = {"object": "email", "id": email_id, "to": payload.get("to"), "from": payload.get("from"),
                                      "subject": payload.get("subject"), "text": payload.get("text"),
                                      "created_at": self.now().isoformat(), "last_event": "sent"}
            self.accepted.append({"provider": "resend", "id": email_id, "to": str((payload.get("to") or [""])[0]),
                                  "body": str(payload.get("text")), "key": key or ""})
            self._tick("accept")
        return 200, {"id": email_id}

    def resend_get(self, email_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            found = self._emails.get(email_id)
        if found is None:
            return 404, {"statusCode": 404, "name": "not_found", "message": "Email not found"}
        return 200, found

    # ------------------------------------------------------------------ twilio

    def twilio_create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to = form.get("To", "")
        body = form.get("Body")
        if body is None and form.get("ContentSid"):
            values = json.loads(form.get("ContentVariables") or "{}")
            body = f"Hi {values.get('1', '')}, a quick note for {values.get('2', '')}: open to a short call?"
        if not to or not body:
            return 400, {"code": 21602, "message": "Message body is required.", "more_info": "", "status": 400}
        with self._lock:
            sid = "SM" + uuid.uuid4().hex
            created = format_datetime(self.now())
            resource = {
                "account_sid": ACCOUNT, "api_version": "2010-04-01", "body": body, "date_created": created, "date_sent": None,
                "date_updated": created, "direction": "outbound-api", "error_code": None, "error_message": None, "from": None,
                "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0", "num_segments": "1", "price": None,
                "price_unit": "USD", "sid": sid, "status": "accepted", "to": to,
                "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
            }
            self._messages.append(resource)
            self.accepted.append({"provider": "twilio", "id": sid, "to": to.removeprefix("whatsapp:"), "body": body, "key": ""})
            self._tick("accept")
        return 201, resource

    def twilio_list(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        size = max(1, min(int(query.get("PageSize", "50")), 1000))
        page = int(query.get("Page", "0"))
        to = query.get("To")
        with self._lock:
            found = [m for m in reversed(self._messages) if to is None or m["to"] == to]  # newest first, like Twilio
            self._tick("lookup")
        if "DateSent>" in query:
            day = query["DateSent>"][:10]
            found = [m for m in found if datetime.strptime(m["date_created"][5:16], "%d %b %Y").strftime("%Y-%m-%d") >= day]
        items = found[page * size : (page + 1) * size]
        base = f"{path}?PageSize={size}" + (f"&To={to}" if to else "")
        more = (page + 1) * size < len(found)
        return 200, {"messages": items, "page": page, "page_size": size, "start": page * size, "end": page * size + max(0, len(items) - 1),
                     "uri": f"{base}&Page={page}", "first_page_uri": f"{base}&Page=0", "previous_page_uri": None,
                     "next_page_uri": f"{base}&Page={page + 1}&PageToken=PA{page + 1}" if more else None}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed
    # ACK hold every answer on a kept-alive connection for 40 ms.
    disable_nagle_algorithm = True
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        fake = self.server.fake
        body = self._body()
        if fake.delay:
            time.sleep(fake.delay)
        path = urlsplit(self.path).path
        if path == "/emails":
            self._answer(*fake.resend_send(self.headers.get("Idempotency-Key"), json.loads(body)))
        elif path.endswith("/Messages.json"):
            self._answer(*fake.twilio_create({k: v[0] for k, v in parse_qs(body.decode()).items()}))
        else:
            self._answer(404, {"message": f"unexpected POST {path}"})

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        fake = self.server.fake
        if fake.delay:
            time.sleep(fake.delay)
        url = urlsplit(self.path)
        if url.path.startswith("/emails/"):
            self._answer(*fake.resend_get(url.path.removeprefix("/emails/")))
        elif url.path.endswith("/Messages.json"):
            self._answer(*fake.twilio_list(url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))
        else:
            self._answer(404, {"message": f"unexpected GET {url.path}"})


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeProviders

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A killed sender drops its connections mid-request: expected here, not worth a traceback."""


def serve(fake: FakeProviders) -> tuple[str, Callable[[], None]]:
    """Start the fake providers on a free loopback port; returns (base URL, stop)."""
    server = _FakeServer(("127.0.0.1", 0), _Handler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


# --------------------------------------------------------------------------- the victim run


def _sim_clock() -> datetime:
    return datetime.fromisoformat(os.environ["OUTBOUND_NOW"]).replace(tzinfo=UTC)


class UnpacedChannels(ChannelService):
    """The real Resend and Twilio clients with their own per-second pacing off, so 500 messages take seconds.

    Providers judge time (Resend's key lifetime) on the pipeline's simulated clock, like the run does.
    """

    def _resend(self) -> ChannelProvider:
        if "resend" not in self._cache:
            self._cache["resend"] = ResendEmail(api_key=self.resend_api_key or "", from_address=self.email_from, base_url=self.resend_base_url,
                                                unsubscribe_url=self.unsubscribe_url, requests_per_second=0, max_concurrency=self.max_concurrency,
                                                base_delay=0.05, clock=_sim_clock)
        return self._cache["resend"]

    def _twilio(self) -> ChannelProvider:
        if "twilio" not in self._cache:
            self._cache["twilio"] = TwilioMessaging(account_sid=self.twilio_account_sid or "", auth_token=self.twilio_auth_token or "",
                                                    messaging_service_sid=self.twilio_messaging_service_sid, base_url=self.twilio_base_url,
                                                    sms_per_second_per_number=0, max_concurrency=self.max_concurrency, base_delay=0.05,
                                                    clock=_sim_clock)
        return self._cache["twilio"]


# A step that meets the DuckDB file held by another process is retried within its run, as in `touch_job`
# (`defs/retries.py`), with a short delay: the bench provokes such retries and kills runs inside them.
STEP_RETRY = dg.RetryPolicy(max_retries=3, delay=0.2)
LOCK_TIMEOUT_S = 0.3  # how long a victim waits for the DuckDB file before its step fails busy and is retried
_JOB: list[dg.JobDefinition] = []


def crash_send_job() -> dg.JobDefinition:
    """The `sends` asset of one touch as a job Dagster can re-execute from failure (built from the environment).

    Built once per process: Dagster reconstructs a job several times while it runs it.
    """
    if _JOB:
        return _JOB[0]
    from outbound_pipeline.definitions import ASSET_CHECKS, ASSETS

    resources: dict[str, Any] = default_resources()
    resources["channels"] = UnpacedChannels(
        offline_ledger_dir=os.environ["OUTBOUND_OFFLINE_LEDGER_DIR"], resend_api_key=dg.EnvVar("RESEND_API_KEY"),
        resend_base_url=os.environ["RESEND_API_URL"], twilio_account_sid=dg.EnvVar("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=dg.EnvVar("TWILIO_AUTH_TOKEN"), twilio_messaging_service_sid=os.environ["TWILIO_MESSAGING_SERVICE_SID"],
        twilio_base_url=os.environ["OUTBOUND_TWILIO_BASE_URL"],
    )
    job = dg.define_asset_job(JOB, selection=["sends"], partitions_def=touch_partitions, executor_def=dg.in_process_executor,
                              op_retry_policy=STEP_RETRY)
    defs = dg.Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, jobs=[job], resources=resources)
    _JOB.append(defs.resolve_job_def(JOB))
    return _JOB[0]


def run_sends(env: dict[str, str], instance: dg.DagsterInstance, partition: str, parent_run_id: str | None) -> bool:
    """One run of the touch's `sends` (new, or re-executing `parent_run_id` from failure); True when it succeeded."""
    os.environ.update(env)
    recon = dg.reconstructable(crash_send_job)
    if parent_run_id:
        options = dg.ReexecutionOptions.from_failure(parent_run_id, instance)
        # as Dagster's run retries do, the re-execution carries its parent's partition
        result = dg.execute_job(recon, instance, run_config=QUIET, reexecution_options=options, raise_on_error=False,
                                tags={"dagster/partition": partition})
    else:
        result = dg.execute_job(recon, instance, run_config=QUIET, tags={"dagster/partition": partition}, raise_on_error=False)
    return result.success


def _log_to(path: str) -> None:
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def victim(instance: dg.DagsterInstance, env: dict[str, str], partition: str, parent_run_id: str | None, log_path: str) -> None:
    """A forked victim: one run, then exit 0 on success, 3 on a failed run, 4 when the run could not be made."""
    _log_to(log_path)
    code = 4
    try:
        code = 0 if run_sends(env, instance, partition, parent_run_id) else 3
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)


def zygote(conn: Any, home: str) -> None:
    """The long-lived process victims are forked from, one at a time.

    It imports everything once and completes a warm-up run (against its own copy of a touch, while the
    bench prepares the next one), so a forked victim starts with Dagster, DuckDB and the
    provider SDKs loaded and their first-use work done: it reaches its provider in a fraction of a second
    instead of seconds. Nothing of a warm-up outlives it but code and caches: its job and resources are
    dropped, and no thread may be left running when a victim is forked. Victims share its Dagster instance
    (SQLite storages that open a connection per operation, none held across a fork). Per victim: fork,
    report the pid, wait, report the exit code (negative: the signal that ended it) and the CPU it used.
    """
    import gc

    import twilio.rest.api.v2010.account  # noqa: F401 - what a Twilio client loads on first use, once for every victim

    from outbound_pipeline import definitions  # noqa: F401 - imported here, once, for every victim

    instance = dg.DagsterInstance.local_temp(home)
    while (request := conn.recv()) is not None:
        kind, args = request
        if kind == "warm":
            env, partition, log_path = args
            _log_to(log_path)
            run_sends(env, instance, partition, None)
            # the job is built from the environment (the touch's paths): each victim builds its own
            _JOB.clear()
            ReconstructableJob.get_definition.cache_clear()
            ReconstructableJob.get_repository_definition.cache_clear()
            gc.collect()
            conn.send(("warm", threading.active_count()))
            continue
        pid = os.fork()
        if pid == 0:
            conn.close()
            victim(instance, *args)
        conn.send(("pid", pid))
        _, status, usage = os.wait4(pid, 0)
        conn.send(("exit", (os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime)))


class Victims:
    """The bench's handle on the zygote: warm it up, start a victim, wait for it (up to a delay), kill it."""

    def __init__(self, home: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        # Spawned children re-import the bench module, which runpy warns about when it runs as __main__.
        os.environ["PYTHONWARNINGS"] = "ignore::RuntimeWarning"
        saved = os.environ.get("OUTBOUND_LOCK_TIMEOUT_S")
        os.environ["OUTBOUND_LOCK_TIMEOUT_S"] = str(LOCK_TIMEOUT_S)  # read when the warehouse module is imported
        try:
            self._process = context.Process(target=zygote, args=(child, str(home)), daemon=True)
            self._process.start()
        finally:
            if saved is None:
                os.environ.pop("OUTBOUND_LOCK_TIMEOUT_S")
            else:
                os.environ["OUTBOUND_LOCK_TIMEOUT_S"] = saved
        child.close()
        self.pid: int | None = None
        self.cpu_seconds = 0.0  # spent by the victims (user and system)
        self._warming = 0

    def warm(self, env: dict[str, str], partition: str, log_path: str) -> None:
        """Queue a warm-up run (the zygote runs it while the caller goes on)."""
        self._conn.send(("warm", (env, partition, log_path)))
        self._warming += 1

    def ready(self) -> None:
        """Wait for the queued warm-ups; refuse to fork from a zygote left with threads running."""
        while self._warming:
            kind, threads = self._conn.recv()
            assert kind == "warm", kind
            self._warming -= 1
            if threads != 1:
                raise RuntimeError(f"the zygote runs {threads} threads after a warm-up: forking it would not be safe")

    def start(self, env: dict[str, str], partition: str, parent_run_id: str | None, log_path: str) -> int:
        self.ready()
        self._conn.send(("victim", (env, partition, parent_run_id, log_path)))
        kind, self.pid = self._conn.recv()
        assert kind == "pid", kind
        return int(self.pid)

    def wait(self, timeout: float | None) -> int | None:
        """The victim's exit code, or None if it is still running after `timeout` seconds."""
        if not self._conn.poll(timeout):
            return None
        kind, (code, cpu) = self._conn.recv()
        assert kind == "exit", kind
        self.pid = None
        self.cpu_seconds += cpu
        return int(code)

    def kill(self) -> int:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        code = self.wait(60)
        assert code is not None, "a killed victim did not exit"
        return code

    def close(self) -> None:
        if self.pid is not None:
            self.kill()
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


# --------------------------------------------------------------------------- preparing a touch


def _campaign_yaml(name: str, channel: str, leads_file: str) -> str:
    return f"""name: {name}
goal: Book a 20-minute call with operations leaders about routing.
type: drip
approval: auto
owner_email: owner@example.com
audience:
  lead_list: {leads_file}
  default_region: ES
sending_window:
  start: "08:00"
  end: "21:00"
  days: [mon, tue, wed, thu, fri]
  default_timezone: Europe/Madrid
steps:
  - name: intro
    delay: 0h
    channels: [{channel}]
    intent: introduce
    cta: a 20-minute call next week
    whatsapp_template:
      content_sid: {TEMPLATE_SID}
      variables: {{"1": first_name, "2": company}}
"""


FIRST = ["Ana", "Luis", "Marta", "Jon", "Eva", "Pablo", "Irene", "Hugo", "Nuria", "Raul", "Sara", "Tomas"]
LAST = ["Garcia", "Lopez", "Martin", "Ruiz", "Vidal", "Moreno", "Navarro", "Ortega"]


def _write_leads(path: Path, channel: str, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email", "industry",
                         "employees", "crm_id"])
        for i in range(count):
            first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
            email = f"{first.lower()}.{last.lower()}{i}@fleet{i}.example" if channel == "email" else ""
            phone = f"+346{10000000 + i:08d}" if channel != "email" else ""
            writer.writerow([first, last, email, phone, f"Fleet {i} Logistics", "COO", "ES", "Europe/Madrid", "owner@example.com",
                             "logistics", 120, f"CRM-{i}"])


def _data_env(data: Path) -> dict[str, str]:
    return {
        "OUTBOUND_DUCKDB_PATH": str(data / "outbound.duckdb"), "OUTBOUND_OFFLINE_LEDGER_DIR": str(data / "offline_ledger"),
        "OUTBOUND_LANDING_DIR": str(data / "landing"), "OUTBOUND_CAMPAIGNS_DIR": str(data / "campaigns"),
        "OUTBOUND_LEADS_DIR": str(data), "OUTBOUND_VOICE_PATH": str(data / "voice.md"),
    }


def prepare_touch(root: Path, channel: str, messages: int) -> Path:
    """A data directory whose database holds `messages` approved, pending sends of touch 1 on `channel` (offline stages)."""
    from outbound_pipeline.runner import LAUNCH, Driver

    data = root / f"template_{channel}"
    (data / "campaigns").mkdir(parents=True)
    name = f"crash_{channel}"
    (data / "campaigns" / f"{name}.yaml").write_text(_campaign_yaml(name, channel, f"{name}_leads.csv"), encoding="utf-8")
    _write_leads(data / f"{name}_leads.csv", channel, messages)
    for extra in ("sample_signals.json", "voice.md"):
        shutil.copy(REPO_DATA / extra, data / extra)
    saved = {k: os.environ.get(k) for k in [*_data_env(data), "RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]}
    os.environ.update(_data_env(data))
    for secret in ("RESEND_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        os.environ.pop(secret, None)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(str(campaign_partitions.name), [name])
            driver = Driver(instance, str(data / "outbound.duckdb"))
            driver.run(LAUNCH, SIM_NOW, name)
            driver.run(["drafts", "approvals", "outbox"], SIM_NOW, f"{name}.t1")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with warehouse.connect(data / "outbound.duckdb") as con:
        rows = touch_sends(con, name, 1)
    pending = int((rows["status"] == "pending").sum())
    if pending != messages:
        raise RuntimeError(f"{name}: {pending} pending sends prepared, wanted {messages}")
    return data


# --------------------------------------------------------------------------- scenarios


@dataclass
class Tally:
    kill_points: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    victim_cpu: float = 0.0  # seconds of CPU the victim runs used
    setup_seconds: float = 0.0  # preparing the touches and warming the zygote
    duplicates: int = 0
    losses: int = 0
    mismatches: int = 0
    scenarios: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(self.kill_points.values())

    def add(self, other: Tally) -> None:
        self.kill_points.update(other.kill_points)
        self.runs += other.runs
        self.duplicates += other.duplicates
        self.losses += other.losses
        self.mismatches += other.mismatches
        self.scenarios += other.scenarios
        self.failures.extend(other.failures)


@dataclass
class Pace:
    """What the bench has seen of a channel's runs, to place kill points where runs actually are.

    `startup`: seconds from a run's start to its first provider request (run creation, step start, reading the
    outbox, marking); `per_request`: seconds between provider requests once it talks to them. Running averages.
    """

    startup: float = 0.5
    per_request: float = 0.005
    observed: int = 0

    def observe(self, started: float, seen: tuple[int, float | None, float | None]) -> None:
        requests, first, last = seen
        if first is None or last is None:
            return
        weight = 1.0 if not self.observed else 0.3
        self.startup += weight * (first - started - self.startup)
        if requests > 1:
            self.per_request += weight * ((last - first) / (requests - 1) - self.per_request)
        self.observed += 1


@dataclass
class Bench:
    """Shared state of a bench: fake providers, the Dagster home every run is recorded in, the zygote victims are
    forked from, what runs of each channel look like."""

    root: Path
    fake: FakeProviders
    base_url: str
    rng: random.Random
    home: Path
    instance: dg.DagsterInstance
    victims: Victims
    pace: dict[str, Pace] = field(default_factory=dict)

    def warm(self, channel: str, template: Path) -> None:
        """Have the zygote complete one run of the channel's touch (on a copy) before any victim is forked."""
        work = self.root / f"warmup_{channel}"
        data, partition = _scenario_dirs(self, work, template, channel)
        self.victims.warm(_victim_env(self, data), partition, str(work / "victims.log"))


# No compute log capture: it starts two `tail` and two Python watchers per step, seconds of CPU per run that
# record a step's stdout and change nothing of what a crash leaves behind. One event log database for all runs
# instead of a new SQLite file (created and migrated) per run.
DAGSTER_YAML = """telemetry:
  enabled: false
compute_logs:
  module: dagster._core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {home}/history
"""


def start_bench(root: Path, seed: int, provider_delay: float = 0.0) -> tuple[Bench, Callable[[], None]]:
    """Fake providers on a loopback port, the Dagster home, and the zygote (it imports while the touches are prepared)."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home), encoding="utf-8")
    instance = dg.DagsterInstance.local_temp(str(home))  # creates the storages before the zygote opens them
    fake = FakeProviders(delay=provider_delay)
    base_url, stop_server = serve(fake)
    bench = Bench(root, fake, base_url, random.Random(seed), home, instance, Victims(home))

    def stop() -> None:
        bench.victims.close()
        stop_server()
        instance.dispose()

    return bench, stop


def _scenario_dirs(bench: Bench, work: Path, template: Path, channel: str) -> tuple[Path, str]:
    """A copy of the prepared touch, and its partition (known to the bench's Dagster instance): (data dir, partition)."""
    data = work / "data"
    shutil.copytree(template, data)
    partition = f"crash_{channel}.t1"
    if not bench.instance.has_dynamic_partition(str(touch_partitions.name), partition):
        bench.instance.add_dynamic_partitions(str(touch_partitions.name), [partition])
    return data, partition


def _victim_env(bench: Bench, data: Path) -> dict[str, str]:
    return {
        **_data_env(data), "OUTBOUND_NOW": SIM_NOW.isoformat(), "RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": bench.base_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_MESSAGING_SERVICE_SID": SERVICE,
        "OUTBOUND_TWILIO_BASE_URL": bench.base_url, "OUTBOUND_RATE_EMAIL": "100000", "OUTBOUND_RATE_SMS": "100000",
        "OUTBOUND_RATE_WHATSAPP": "100000", "DAGSTER_HOME": str(bench.home),
    }


def _fail_abandoned_runs(instance: dg.DagsterInstance) -> str | None:
    """What run monitoring does for a run whose process died: mark it failed. Returns the latest such run."""
    latest = None
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING,
                                                                    DagsterRunStatus.NOT_STARTED])):
        instance.report_run_failed(run)
        latest = latest or run.run_id
    return latest


def _retried_a_step(instance: dg.DagsterInstance, run_id: str | None) -> bool:
    if run_id is None:
        return False
    return bool(instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY, limit=1).records)


def _sending_rows(data: Path, campaign: str) -> int:
    with warehouse.connect(data / "outbound.duckdb") as con:
        return int((touch_sends(con, campaign, 1)["status"] == "sending").sum())


# Kinds of kill point, by weight: a random instant before the run reaches its provider, a random instant while it
# sends or reconciles, the k-th message accepted, the k-th reconciliation request (when rows are in flight), and a
# step retried after meeting the DuckDB file held (killed at an accepted message or a reconciliation request).
KILL_KINDS = {"startup": 2, "delay": 3, "accept": 3, "lookup": 3, "retry": 2}
WHERE = {"startup": "a random instant before its first request", "delay": "a random instant while sending",
         "accept": "an accepted message", "lookup": "a reconciliation request"}


def _choose_kill(bench: Bench, pace: Pace, in_flight: int, budget: int) -> tuple[str, str, float]:
    """(label, trigger kind, value): a delay in seconds, or k for the fake providers' k-th request of that kind."""
    kinds = [k for k in KILL_KINDS if k != "lookup" or in_flight]
    kind = bench.rng.choices(kinds, weights=[KILL_KINDS[k] for k in kinds])[0]
    if kind == "startup":
        return kind, "delay", bench.rng.uniform(0.0, pace.startup)
    if kind == "delay":
        return kind, "delay", pace.startup + bench.rng.uniform(0.0, pace.per_request * (budget + in_flight))
    if kind == "accept" or (kind == "retry" and (not in_flight or bench.rng.random() < 0.5)):
        return kind, "accept", bench.rng.randint(1, budget)
    return kind, "lookup", bench.rng.randint(1, in_flight)


def run_scenario(bench: Bench, template: Path, channel: str, kills: int, number: int, reexecute_share: float = 0.5) -> Tally:
    """Copy the prepared touch, kill `kills` runs of it at points spread over its progress, complete it, and audit the ledger.

    Each kill point is placed from what earlier runs showed: an accepted-message kill picks k up to twice the
    share of the remaining messages left for each remaining kill, so the kills spread over the whole send
    instead of bunching at its start, and delays are drawn from the observed time to first request and per request.
    """
    tally = Tally(scenarios=1)
    victims = bench.victims
    work = bench.root / f"{channel}_{number:05d}"
    data, partition = _scenario_dirs(bench, work, template, channel)
    campaign = f"crash_{channel}"
    env = _victim_env(bench, data)
    log = str(work / "victims.log")
    if channel not in bench.pace:  # a channel not seen yet starts from what the others showed: runs start alike
        seen = [p for p in bench.pace.values() if p.observed]
        bench.pace[channel] = Pace(seen[0].startup, seen[0].per_request) if seen else Pace()
    pace = bench.pace[channel]
    queued = len(template_rows(template, campaign))
    bench.fake.reset()
    failed_run: str | None = None
    instance = bench.instance

    def launch(trigger: tuple[str, float] | None, parent: str | None, hold_s: float = 0.0) -> int | None:
        """One victim run; with `hold_s` the bench holds the DuckDB file for that long after starting it."""
        holder = duckdb.connect(str(data / "outbound.duckdb")) if hold_s else None
        started = time.monotonic()
        pid = victims.start(env, partition, parent, log)
        bench.fake.arm(pid, (trigger[0], int(trigger[1])) if trigger and trigger[0] != "delay" else None)
        code = None
        try:
            if holder is not None:
                time.sleep(hold_s)
                holder.close()
                holder = None
            delay = trigger[1] - (time.monotonic() - started) if trigger and trigger[0] == "delay" else 600
            code = victims.wait(max(0.0, delay))
        finally:  # also when the bench itself is interrupted: no victim outlives it
            if holder is not None:
                holder.close()
            if code is None:
                code = victims.kill()
            bench.fake.disarm()
        tally.runs += 1
        pace.observe(started, bench.fake.seen())
        return code

    done = False
    attempts = 0
    while tally.kills < kills and attempts < 3 * kills:
        attempts += 1
        parent = failed_run if failed_run and bench.rng.random() < reexecute_share else None
        in_flight = _sending_rows(data, campaign)
        remaining = max(1, queued - bench.fake.unique_accepted())
        budget = max(1, 2 * remaining // (kills - tally.kills + 1))
        kind, trigger, value = _choose_kill(bench, pace, in_flight, budget)
        # a step retry: the first attempt waits LOCK_TIMEOUT_S for the file held here, fails busy and is retried
        hold = pace.startup + LOCK_TIMEOUT_S + 0.2 if kind == "retry" else 0.0
        code = launch((trigger, value), parent, hold)
        if code == -signal.SIGKILL:
            killed_run = _fail_abandoned_runs(instance)
            where = WHERE[trigger if kind == "retry" else kind]
            if kind == "retry":
                where += " in a retried step" if _retried_a_step(instance, killed_run) else " (the lock was free again: no retry)"
            label = f"{'re-execution' if parent else 'new run'} killed at {where}" + (" (reconciling)" if in_flight else "")
            tally.kill_points[label] += 1
            failed_run = killed_run or failed_run
        elif code == 0:
            done = True
            break
        else:
            failed_run = _latest_run(instance)
    for _ in range(6):  # complete the touch; a run with sends it cannot answer for fails and the next one asks again
        if done:
            break
        parent = failed_run if failed_run and bench.rng.random() < reexecute_share else None
        code = launch(None, parent)
        done = code == 0
        failed_run = _latest_run(instance)
    audit(bench, data, campaign, channel, tally, f"{channel} scenario {number}")
    shutil.rmtree(work, ignore_errors=True)
    return tally


_TEMPLATE_ROWS: dict[Path, Any] = {}


def template_rows(template: Path, campaign: str) -> Any:
    if template not in _TEMPLATE_ROWS:
        with warehouse.connect(template / "outbound.duckdb") as con:
            _TEMPLATE_ROWS[template] = touch_sends(con, campaign, 1)
    return _TEMPLATE_ROWS[template]


def _latest_run(instance: dg.DagsterInstance) -> str | None:
    runs = instance.get_runs(limit=1)
    return runs[0].run_id if runs else None


def audit(bench: Bench, data: Path, campaign: str, channel: str, tally: Tally, label: str) -> None:
    """Every queued message accepted exactly once by the provider, and the `sends` rows agreeing with its ledger."""
    with warehouse.connect(data / "outbound.duckdb") as con:
        rows = touch_sends(con, campaign, 1)
    accepted = Counter(a["to"] for a in bench.fake.accepted)
    ids = {a["to"]: a["id"] for a in bench.fake.accepted}
    duplicates = sum(n - 1 for n in accepted.values() if n > 1)
    missing = [r.send_id for r in rows.itertuples() if accepted[str(r.to_address)] == 0 or r.status != "sent"]
    strangers = set(accepted) - set(rows["to_address"])
    mismatched = [r.send_id for r in rows.itertuples() if r.status == "sent" and ids.get(str(r.to_address)) != r.provider_message_id]
    tally.duplicates += duplicates
    tally.losses += len(missing) + len(strangers)
    tally.mismatches += len(mismatched)
    if duplicates or missing or strangers or mismatched:
        statuses = dict(Counter(rows["status"]))
        tally.failures.append(f"{label}: {duplicates} duplicates, {len(missing)} lost {missing[:3]}, {len(strangers)} unknown recipients, "
                              f"{len(mismatched)} id mismatches {mismatched[:3]}; statuses {statuses}")


# --------------------------------------------------------------------------- command


def run(kills: int, messages: int, channels: list[str], seed: int, kills_per_scenario: int = 10, provider_delay: float = 0.0,
        root: Path | None = None, report: Callable[[str], None] = print) -> Tally:
    """Spread `kills` kill points over scenarios of each channel; returns the tally."""
    own_root = root is None
    root = root or Path(tempfile.mkdtemp(prefix="outbound-crash-", dir=_scratch()))
    bench, stop = start_bench(root, seed, provider_delay)
    total = Tally()
    started = time.monotonic()
    try:
        templates = {}
        for ch in channels:
            templates[ch] = prepare_touch(root, ch, messages)
            if ch == channels[0]:  # one run warms what every channel's runs share; the provider SDKs are imported
                bench.warm(ch, templates[ch])
        bench.victims.ready()
        total.setup_seconds = time.monotonic() - started
        report(f"prepared {messages} approved messages per channel ({', '.join(channels)}) and warmed up in {total.setup_seconds:.0f} s")
        per_channel = {ch: kills // len(channels) + (1 if i < kills % len(channels) else 0) for i, ch in enumerate(channels)}
        number = 0
        try:
            while any(total_by(total, ch) < per_channel[ch] for ch in channels):
                for ch in channels:
                    if total_by(total, ch) >= per_channel[ch]:
                        continue
                    number += 1
                    want = min(kills_per_scenario, per_channel[ch] - total_by(total, ch))
                    tally = run_scenario(bench, templates[ch], ch, want, number)
                    tally.kill_points = Counter({f"{ch}: {k}": v for k, v in tally.kill_points.items()})
                    total.add(tally)
                    report(f"  {ch:<9} scenario {number:>4}: {tally.kills} kill points, {tally.runs} runs; so far {total.kills} kill points, "
                           f"{total.duplicates} duplicates, {total.losses} losses ({time.monotonic() - started:.0f} s)")
        except KeyboardInterrupt:
            report(f"interrupted: the figures below cover the {total.scenarios} audited scenarios")
    finally:
        total.victim_cpu = bench.victims.cpu_seconds
        stop()
        if own_root:
            shutil.rmtree(root, ignore_errors=True)
    return total


def _scratch() -> str | None:
    """Memory-backed /dev/shm when there is one: a SIGKILL loses nothing the kernel's page cache holds, so
    disk syncs (DuckDB's, Dagster's SQLite) only slow the bench without changing what a crash leaves behind."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def total_by(tally: Tally, channel: str) -> int:
    return sum(n for label, n in tally.kill_points.items() if label.startswith(f"{channel}:"))


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops the bench like Ctrl-C: the scenarios audited so far are reported."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_send", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=1000, help="kill points to try, spread over the channels")
    parser.add_argument("--messages", type=int, default=500, help="approved messages in the touch being sent")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="email (Resend), sms, whatsapp (Twilio)")
    parser.add_argument("--kills-per-scenario", type=int, default=10, help="kills (recovery runs killed too) before the touch is completed")
    parser.add_argument("--provider-delay", type=float, default=0.0, help="seconds each fake provider request takes (widens kill windows)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        parser.error(f"unknown channels {sorted(unknown)}: choose from {', '.join(CHANNELS)}")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a bench started in the background ignores SIGINT otherwise
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    total = run(args.kills, args.messages, channels, args.seed, args.kills_per_scenario, args.provider_delay)
    elapsed = time.monotonic() - started
    print(f"\nkill points tried: {total.kills} over {total.scenarios} scenarios, {total.runs} runs, {elapsed:.0f} s")
    if total.kills:
        per_kill = (elapsed - total.setup_seconds) / total.kills
        print(f"  {per_kill:.2f} s per kill point after {total.setup_seconds:.0f} s of setup; victim runs used {total.victim_cpu:.0f} s of CPU "
              f"({total.victim_cpu / max(1, total.runs):.2f} s per run)")
    for label, n in sorted(total.kill_points.items()):
        print(f"  {label:<60} {n:>6}")
    print(f"duplicates: {total.duplicates}  (bound 0)")
    print(f"losses: {total.losses}  (bound 0)")
    print(f"database/ledger mismatches: {total.mismatches}  (bound 0)")
    for failure in total.failures[:20]:
        print(f"  ! {failure}")
    ok = total.duplicates == 0 and total.losses == 0 and total.mismatches == 0
    print(f"exactly once: held over {total.kills} kill points" if ok else "exactly once: VIOLATED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    from bench.crash_send import main as _main  # functions sent to the fork server must be importable as bench.crash_send

    _main()
