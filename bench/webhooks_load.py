"""Load on the webhook receiver: signed Twilio and Resend callbacks at a fixed rate, each landed exactly once.

    python -m bench.webhooks_load [--rate 500] [--seconds 60] [--connections 64]

Starts the receiver (uvicorn, one process, as `outbound webhooks` runs it) on a free loopback
port with a fresh landing area, sends an open-loop stream of signed requests (half Twilio status
callbacks, half Resend events, every one a distinct event, all signed before the clock starts) over
kept-alive HTTP/1.1 connections and prints the achieved rate, latency percentiles (counted from when
each request was due, so queueing behind a slow receiver shows) and, from the landing area afterwards, how many accepted events landed once, twice or
not at all. Bound: the offered rate is held with every accepted event landed exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx

try:
    import uvloop
except ImportError:  # the standard loop works too, just costs the load generator more CPU
    uvloop = None  # type: ignore[assignment]
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

TOKEN = "bench-twilio-auth-token"
SECRET = "whsec_" + base64.b64encode(b"bench-resend-webhook-secret-32by").decode()
UNSUBSCRIBE_SECRET = "bench-unsubscribe-secret-0123456789"
SERVER = """
import sys, uvicorn
from outbound_pipeline.http.server import app_from_env
uvicorn.run(app_from_env(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twilio_request(base: str, i: int, validator: RequestValidator) -> tuple[str, bytes, dict[str, str]]:
    url = f"{base}/webhooks/twilio/status"
    params = {"MessageSid": f"SM{i:032x}", "MessageStatus": "delivered", "To": "+34600000001", "AccountSid": "AC" + "0" * 32}
    signature = validator.compute_signature(url, params)
    return "/webhooks/twilio/status", urlencode(params).encode(), {"X-Twilio-Signature": signature,
                                                                   "Content-Type": "application/x-www-form-urlencoded"}


def resend_request(i: int, hook: Webhook, now: datetime) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"type": "email.delivered", "created_at": now.isoformat(),
                       "data": {"email_id": f"em_{i:012d}", "tags": {"send_id": f"snd_{i:016x}"}}})
    msg_id = f"msg_{i:012d}"
    headers = {"svix-id": msg_id, "svix-timestamp": str(int(now.timestamp())), "svix-signature": hook.sign(msg_id, now, body),
               "Content-Type": "application/json"}
    return "/webhooks/resend", body.encode(), headers


def signed_requests(base: str, total: int) -> list[bytes]:
    """Every request, signed and serialised up front, so the load generator spends its time sending, not signing.

    The Svix timestamps are taken now; the receiver accepts them for five minutes, longer than a run.
    """
    hook, validator, now = Webhook(SECRET), RequestValidator(TOKEN), datetime.now(UTC)
    host = base.removeprefix("http://")
    out = []
    for i in range(total):
        path, body, headers = twilio_request(base, i, validator) if i % 2 == 0 else resend_request(i, hook, now)
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(head.encode() + b"\r\n" + body)
    return out


def accepted_id(i: int) -> str:
    return f"SM{i:032x}:delivered" if i % 2 == 0 else f"msg_{i:012d}"


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """One request on a kept-alive HTTP/1.1 connection: (status, whether the server keeps the connection)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() != "close"


async def offer(base: str, rate: float, seconds: float, connections: int) -> tuple[list[float], Counter, set[str]]:
    """Open loop: request i is due at start + i/rate and goes out on the first free connection.

    Latency counts from when a request was due, so time spent waiting for a free
    connection (the receiver falling behind) is included, not hidden.
    """
    total = int(rate * seconds)
    requests = signed_requests(base, total)
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: Counter = Counter()
    accepted: set[str] = set()
    due: asyncio.Queue[int] = asyncio.Queue()
    start = time.perf_counter()

    async def schedule() -> None:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(i)
        for _ in range(connections):
            due.put_nowait(-1)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (i := await due.get()) >= 0:
            try:
                status, keep = await _exchange(reader, writer, requests[i])
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                statuses[type(exc).__name__] += 1
                keep = False
            else:
                latencies.append(time.perf_counter() - (start + i / rate))
                statuses[status] += 1
                if status < 300:
                    accepted.add(accepted_id(i))
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
        writer.close()

    await asyncio.gather(schedule(), *(connection() for _ in range(connections)))
    statuses["_elapsed_ms"] = int((time.perf_counter() - start) * 1000)
    return latencies, statuses, accepted


def landed_ids(landing_dir: Path) -> Counter:
    from outbound_pipeline.store import landing

    records, _ = landing.read_since(None, landing_dir)
    return Counter(r["landing_id"] for r in records)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_load")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    landing_dir = Path(tempfile.mkdtemp(prefix="outbound-webhooks-load-"))
    port = free_port()
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "RESEND_WEBHOOK_SECRET": SECRET, "OUTBOUND_LANDING_DIR": str(landing_dir),
           "OUTBOUND_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "OUTBOUND_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
           "OUTBOUND_DUCKDB_PATH": str(landing_dir / "unused.duckdb")}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        run = uvloop.run if uvloop is not None else asyncio.run
        latencies, statuses, accepted = run(offer(base, args.rate, args.seconds, args.connections))
    finally:
        server.terminate()
        server.wait(timeout=30)
    elapsed = statuses.pop("_elapsed_ms") / 1000
    landed = landed_ids(landing_dir)
    once = sum(1 for i in accepted if landed.get(i) == 1)
    twice = sum(1 for i in accepted if landed.get(i, 0) > 1)
    lost = sum(1 for i in accepted if i not in landed)
    sent = sum(v for k, v in statuses.items())
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    achieved = sent / elapsed if elapsed else 0.0
    print(f"offered {args.rate:.0f} req/s for {args.seconds:.0f} s over {args.connections} connections: {sent} requests in {elapsed:.1f} s "
          f"({achieved:.0f} req/s achieved)")
    print(f"status codes: {dict(sorted((str(k), v) for k, v in statuses.items()))}")
    print(f"latency p50 {quantiles[49] * 1000:.1f} ms, p90 {quantiles[89] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms, "
          f"max {max(latencies, default=0) * 1000:.1f} ms")
    print(f"accepted {len(accepted)}: landed once {once}, more than once {twice}, lost {lost}")
    held = achieved >= 0.95 * args.rate and len(accepted) == sent and once == len(accepted)
    print(f"bound: >= {0.95 * args.rate:.0f} req/s achieved, every request accepted and landed exactly once -> {'held' if held else 'NOT held'}")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
