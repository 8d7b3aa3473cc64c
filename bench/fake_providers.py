"""Local stand-ins for Tavily, OpenAI, Resend and Twilio, for benchmarks: their wire formats, a fixed latency, and a rate limit.

    python -m bench.fake_providers [--latency 0.15] [--rate 50]     # serve until interrupted

Each provider answers after `latency` seconds and admits `rate` requests per second (a GCRA with a burst of
`burst`); above that it answers 429 with `Retry-After`, the way the real services do. The real SDK clients
talk to it unchanged (base URLs below), so a benchmark measures the pipeline's own concurrency and pacing.
Counters per provider: requests, 429s, and the most requests in flight at once.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TWILIO_MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages(?:/(?P<sid>\w+))?\.json$")
SNIPPET_ID = re.compile(r"^\[(snp_\w+)\]", re.MULTILINE)
ALLOWED = re.compile(r"^Allowed channels \(this lead can be reached on\): (.+)$", re.MULTILINE)
PREFERRED = re.compile(r"^Channel preference: (.+)$", re.MULTILINE)
NAME = re.compile(r"^- name: (.+)$", re.MULTILINE)


@dataclass
class Counters:
    requests: int = 0
    limited: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class Gcra:
    """Generic cell rate algorithm: `rate` per second with a burst of `burst`; `admit()` is 0 or the seconds to wait."""

    def __init__(self, rate: float, burst: int):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.tolerance = self.interval * max(0, burst - 1)
        self._tat = 0.0  # theoretical arrival time
        self._lock = threading.Lock()

    def admit(self) -> float:
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat, now)
            if tat - now > self.tolerance:
                return tat - now - self.tolerance
            self._tat = tat + self.interval
            return 0.0


class FakeProviders:
    """The four providers on one local port; `start()` returns the base URL."""

    def __init__(self, latency: float = 0.15, rate: float = 50.0, burst: int = 5, host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.limits = {name: Gcra(rate, burst) for name in ("tavily", "openai", "resend", "twilio")}
        self.counters = {name: Counters() for name in self.limits}
        self.arrivals: dict[str, list[float]] = {"resend": [], "twilio": []}  # when each message reached the provider
        self.admitted: dict[str, list[float]] = {name: [] for name in self.limits}  # when each request within the rate came in
        self.limited_at: dict[str, list[float]] = {name: [] for name in self.limits}  # when each request answered 429 came in
        self.twilio_messages: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = {name: Counters() for name in self.limits}
            self.arrivals = {"resend": [], "twilio": []}
            self.admitted = {name: [] for name in self.limits}
            self.limited_at = {name: [] for name in self.limits}

    def env(self) -> dict[str, str]:
        """The environment that points the pipeline's real clients here."""
        return {
            "TAVILY_API_KEY": "tvly-bench", "OUTBOUND_TAVILY_BASE_URL": self.url,
            "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"{self.url}/v1",
            "RESEND_API_KEY": "re_bench", "RESEND_API_URL": self.url,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "bench-token", "OUTBOUND_TWILIO_BASE_URL": self.url,
            "TWILIO_WHATSAPP_FROM": "+15550001111", "TWILIO_SMS_FROM_NUMBERS": "+15550002222",
        }

    # ---------------------------------------------------------------- accounting

    def enter(self, provider: str) -> float:
        """Count a request in; the seconds it must wait when over the rate (then it is answered 429)."""
        wait = self.limits[provider].admit()
        with self._lock:
            c = self.counters[provider]
            c.requests += 1
            if wait:
                c.limited += 1
                self.limited_at[provider].append(time.monotonic())
            else:
                self.admitted[provider].append(time.monotonic())
                c.in_flight += 1
                c.max_in_flight = max(c.max_in_flight, c.in_flight)
        return wait

    def leave(self, provider: str) -> None:
        with self._lock:
            self.counters[provider].in_flight -= 1

    # ---------------------------------------------------------------- answers

    def tavily(self, body: dict[str, Any]) -> dict[str, Any]:
        query = str(body.get("query", ""))
        key = uuid.uuid5(uuid.NAMESPACE_URL, query).hex[:10]
        results = [{"title": f"News {n} about the company", "url": f"https://news.example/{key}-{n}",
                    "content": f"The company announced initiative {n}: {query[:80]}", "score": 0.9 - n / 10,
                    "raw_content": None, "published_date": "2026-06-01"} for n in range(1, int(body.get("max_results") or 5) + 1)]
        return {"query": query, "follow_up_questions": None, "answer": None, "images": [], "results": results,
                "response_time": self.latency, "request_id": str(uuid.uuid4())}

    def openai(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
        allowed = [c.strip() for c in (ALLOWED.search(prompt) or _NONE).group(1).split(",") if c.strip()] or ["email"]
        preferred = [c.strip() for c in (PREFERRED.search(prompt) or _NONE).group(1).split(",") if c.strip()]
        # a stable spread over the allowed channels, so a touch exercises every provider
        usable = [c for c in preferred if c in allowed] or allowed
        channel = usable[uuid.uuid5(uuid.NAMESPACE_URL, prompt).int % len(usable)]
        cited = SNIPPET_ID.findall(prompt)[:1]
        first = ((NAME.search(prompt) or _NONE).group(1) or "there").split()[0]
        draft = {"channel": channel, "tone": "helpful", "cta": "a short call",
                 "subject": "Your latest initiative" if channel == "email" else None,
                 "body": f"Hi {first}, I read about your latest initiative. Would a short call next week help?",
                 "cited_snippet_ids": cited}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:20]}", "object": "chat.completion", "created": int(time.time()),
                "model": str(body.get("model", "gpt-4o-mini")),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(draft), "refusal": None}}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 80, "total_tokens": 980}}

    def resend_send(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        with self._lock:
            if idempotency_key and idempotency_key in self.emails:
                return {"id": self.emails[idempotency_key]["id"]}
            email_id = str(uuid.uuid4())
            email = {"id": email_id, "to": body.get("to"), "created_at": _now().isoformat()}
            self.emails[idempotency_key or email_id] = email
            self.arrivals["resend"].append(time.monotonic())
        return {"id": email["id"]}

    def twilio_create(self, account: str, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        now = _now()
        message = {"sid": sid, "account_sid": account, "to": form.get("To"), "from": form.get("From"),
                   "messaging_service_sid": form.get("MessagingServiceSid"), "body": form.get("Body", ""),
                   "status": "queued", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
                   "price": None, "price_unit": "USD", "error_code": None, "error_message": None, "api_version": "2010-04-01",
                   "date_created": format_datetime(now, usegmt=True), "date_updated": format_datetime(now, usegmt=True),
                   "date_sent": None, "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json", "_created": time.monotonic()}
        with self._lock:
            self.twilio_messages[sid] = message
            self.arrivals["twilio"].append(time.monotonic())
        return _public(message)

    def twilio_fetch(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            message = self.twilio_messages.get(sid)
        if message is None:
            return None
        aged = time.monotonic() - message["_created"] > 1.0  # delivered (or read) one second after it was sent
        final = "read" if str(message["to"]).startswith("whatsapp:") else "delivered"
        settled = format_datetime(parsedate_to_datetime(message["date_created"]) + timedelta(seconds=1), usegmt=True)
        return _public({**message, "status": final if aged else "sent", "date_sent": message["date_created"],
                        "date_updated": settled if aged else message["date_created"]})

    def twilio_list(self, account: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """The Messages list: `To` and `DateSent>` (by day, as Twilio filters) honoured, newest first, paged."""
        to: str | None = query["To"][0] if query.get("To") else None
        after = query["DateSent>"][0][:10] if query.get("DateSent>") else None
        with self._lock:
            sids = [sid for sid, m in self.twilio_messages.items() if to is None or m["to"] == to]
        messages = [m for m in (self.twilio_fetch(sid) for sid in sids) if m is not None]
        if after:
            messages = [m for m in messages if parsedate_to_datetime(m["date_created"]).date().isoformat() >= after]
        messages.sort(key=lambda m: (parsedate_to_datetime(m["date_created"]), m["sid"]), reverse=True)
        size = int((query.get("PageSize") or ["50"])[0])
        page = int((query.get("Page") or ["0"])[0])
        items = messages[page * size:(page + 1) * size]
        base = f"/2010-04-01/Accounts/{account}/Messages.json"
        more = (page + 1) * size < len(messages)
        next_uri = f"{base}?PageSize={size}&Page={page + 1}&PageToken=PA{page + 1}" + (f"&DateSent%3E={after}" if after else "")
        return {"messages": items, "page": page, "page_size": size, "first_page_uri": f"{base}?PageSize={size}&Page=0",
                "next_page_uri": next_uri if more else None, "previous_page_uri": None, "uri": f"{base}?PageSize={size}&Page={page}",
                "start": page * size, "end": page * size + len(items) - 1}


class _NoMatch:
    def group(self, _i: int) -> str:
        return ""


_NONE = _NoMatch()


def _now() -> datetime:
    return datetime.now(UTC)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


LIMITED: dict[str, dict[str, Any]] = {
    "tavily": {"detail": {"error": "Rate limit exceeded"}},
    "openai": {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
    "resend": {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests. You can only make 50 requests per second."},
    "twilio": {"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429},
}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProviders
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None

    def _provider(self, path: str) -> str | None:
        if path == "/search":
            return "tavily"
        if path.endswith("/chat/completions"):
            return "openai"
        if path.startswith("/emails"):
            return "resend"
        if path.startswith("/2010-04-01/"):
            return "twilio"
        return None

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._handle("POST")

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        raw = self._body() if method == "POST" else b""
        provider = self._provider(url.path)
        if provider is None:
            self._reply(404, {"error": f"no fake for {method} {url.path}"})
            return
        wait = self.fake.enter(provider)
        if wait:
            seconds = max(1, math.ceil(wait))
            self._reply(429, LIMITED[provider], {"Retry-After": str(seconds), "retry-after-ms": str(int(wait * 1000) + 1),
                                                  "ratelimit-reset": str(seconds)})
            return
        try:
            time.sleep(self.fake.latency)
            self._answer(provider, method, url.path, url.query, raw)
        finally:
            self.fake.leave(provider)

    def _answer(self, provider: str, method: str, path: str, query: str, raw: bytes) -> None:
        fake = self.fake
        if provider == "tavily":
            self._reply(200, fake.tavily(json.loads(raw or b"{}")))
        elif provider == "openai":
            self._reply(200, fake.openai(json.loads(raw or b"{}")))
        elif provider == "resend" and method == "POST" and path == "/emails":
            self._reply(200, fake.resend_send(json.loads(raw or b"{}"), self.headers.get("Idempotency-Key")))
        elif provider == "twilio" and (match := TWILIO_MESSAGE.match(path)):
            if method == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                self._reply(201, fake.twilio_create(match["account"], form))
            elif match["sid"]:
                found = fake.twilio_fetch(match["sid"])
                if found is None:
                    self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                else:
                    self._reply(200, found)
            else:
                self._reply(200, fake.twilio_list(match["account"], parse_qs(query)))
        else:
            self._reply(404, {"error": f"no fake for {method} {path}"})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_providers")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    fake = FakeProviders(args.latency, args.rate, port=args.port)
    print(f"fake providers on {fake.url} ({args.latency * 1000:.0f} ms, 429 above {args.rate:g} requests/s)", flush=True)
    fake._server.serve_forever()


if __name__ == "__main__":
    main()
