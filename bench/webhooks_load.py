"""Load on the webhook receiver: signed Twilio and Resend callbacks at a fixed rate, each landed exactly once.

    python -m bench.webhooks_load [--rate 500] [--seconds 60] [--connections 64]

Starts the receiver (uvicorn, one process, as `outbound webhooks` runs it) on a free loopback
port with a fresh landing area, sends an open-loop stream of signed requests (half Twilio status
callbacks, half Resend events, every one a distinct event) and prints the achieved rate, latency
percentiles and, from the landing area afterwards, how many accepted events landed once, twice or
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
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

TOKEN = "bench-twilio-auth-token"
SECRET = "whsec_" + base64.b64encode(b"bench-resend-webhook-secret-32by").decode()
SERVER = """
import sys, uvicorn
from outbound_pipeline.http.server import app_from_env
uvicorn.run(app_from_env(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twilio_request(base: str, i: int) -> tuple[str, bytes, dict[str, str]]:
    url = f"{base}/webhooks/twilio/status"
    params = {"MessageSid": f"SM{i:032x}", "MessageStatus": "delivered", "To": "+34600000001", "AccountSid": "AC" + "0" * 32}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    return url, urlencode(params).encode(), {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


def resend_request(base: str, i: int, hook: Webhook) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"type": "email.delivered", "created_at": datetime.now(UTC).isoformat(),
                       "data": {"email_id": f"em_{i:012d}", "tags": {"send_id": f"snd_{i:016x}"}}})
    msg_id = f"msg_{i:012d}"
    now = datetime.now(UTC)
    headers = {"svix-id": msg_id, "svix-timestamp": str(int(now.timestamp())), "svix-signature": hook.sign(msg_id, now, body),
               "Content-Type": "application/json"}
    return f"{base}/webhooks/resend", body.encode(), headers


async def offer(base: str, rate: float, seconds: float, connections: int) -> tuple[list[float], Counter, set[str]]:
    """Send rate x seconds requests on a fixed schedule; returns latencies, status counts and the accepted landing ids."""
    hook = Webhook(SECRET)
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: Counter = Counter()
    accepted: set[str] = set()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            url, body, headers = twilio_request(base, i) if i % 2 == 0 else resend_request(base, i, hook)
            began = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                return
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] += 1
            if response.status_code < 300:
                accepted.add(f"SM{i:032x}:delivered" if i % 2 == 0 else f"msg_{i:012d}")

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    statuses["_elapsed_ms"] = int(elapsed * 1000)
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
           "OUTBOUND_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        latencies, statuses, accepted = asyncio.run(offer(base, args.rate, args.seconds, args.connections))
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
