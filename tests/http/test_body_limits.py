"""Bodies are capped while they stream in, on every route, chunked or not; JSON depth is bounded before parsing."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient

from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import MAX_BODY_BYTES, MAX_JSON_DEPTH, create_app, json_depth_exceeds
from outbound_pipeline.store import landing

TOKEN = "twilio-auth-token-for-limit-tests"
SECRET = "whsec_" + base64.b64encode(b"resend-webhook-key-for-limits-32").decode()
UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-limit-tests"
NOW = datetime(2026, 11, 23, 17, 5, 0, tzinfo=UTC)
CHUNK = 64 * 1024
GIB = 1024**3


def _app(tmp_path: Path):
    return create_app(TOKEN, SECRET, tmp_path, clock=lambda: NOW, unsubscribe_secret=UNSUBSCRIBE_SECRET)


def _signed_unsubscribe_path(send_id: str = "snd_1") -> str:
    return unsubscribe_tokens.link("/unsubscribe?send_id={send_id}", UNSUBSCRIBE_SECRET, send_id)


def _svix_headers(raw: bytes, msg_id: str = "msg_deep") -> dict[str, str]:
    stamp = int(NOW.timestamp())
    return {"svix-id": msg_id, "svix-timestamp": str(stamp),
            "svix-signature": Webhook(SECRET).sign(msg_id, datetime.fromtimestamp(stamp, UTC), raw.decode()),
            "content-type": "application/json"}


class ChunkedSource:
    """An ASGI `receive` handing out a 1 GiB body in 64 KiB chunks, counting what the app pulled."""

    def __init__(self, total: int = GIB):
        self.total = total
        self.pulled = 0
        self.chunk = b"x" * CHUNK

    async def receive(self) -> dict:
        if self.pulled >= self.total:
            await asyncio.sleep(3600)  # never reached when the cap works
        self.pulled += CHUNK
        return {"type": "http.request", "body": self.chunk, "more_body": self.pulled < self.total}


async def _call(app, path: str, source: ChunkedSource, headers: list[tuple[bytes, bytes]]) -> int:
    path_only, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path_only, "raw_path": path_only.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked"), *headers],
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000)}
    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, source.receive, send)
    return statuses[0]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/webhooks/twilio/status", [(b"x-twilio-signature", b"c2lnbmF0dXJl")], id="twilio-status"),
        pytest.param("/webhooks/twilio/inbound", [(b"x-twilio-signature", b"c2lnbmF0dXJl")], id="twilio-inbound"),
        pytest.param("/webhooks/resend", [(b"svix-id", b"m"), (b"svix-timestamp", b"1"), (b"svix-signature", b"v1,x")], id="resend"),
        pytest.param(_signed_unsubscribe_path(), [], id="unsubscribe"),
    ],
)
def test_a_chunked_gigabyte_is_refused_after_reading_at_most_the_cap_plus_one_chunk(tmp_path: Path, path: str, headers) -> None:
    source = ChunkedSource()
    status = asyncio.run(_call(_app(tmp_path), path, source, headers))
    assert status == 413
    assert source.pulled <= MAX_BODY_BYTES + CHUNK  # stopped as soon as the cap was passed: 320 KiB of 1 GiB
    assert landing.landed_files(tmp_path) == []


def test_a_declared_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    source = ChunkedSource()
    path = _signed_unsubscribe_path()
    status = asyncio.run(_call(_app(tmp_path), path, source, [(b"content-length", str(GIB).encode())]))
    assert status == 413 and source.pulled == 0


def test_a_body_of_exactly_the_cap_is_accepted(tmp_path: Path) -> None:
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * (MAX_BODY_BYTES - 31)
    assert len(body) == MAX_BODY_BYTES
    client = TestClient(_app(tmp_path))
    assert client.post(_signed_unsubscribe_path(), content=body).status_code == 200
    assert client.post(_signed_unsubscribe_path(), content=body + b"x").status_code == 413


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(_app(tmp_path), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_over_a_real_socket_a_chunked_upload_is_cut_off_early(served: str, tmp_path: Path) -> None:
    sent = 0

    def gigabyte() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"x" * CHUNK
        while sent < GIB:
            sent += CHUNK
            yield chunk

    with httpx.Client(timeout=30) as client:
        try:
            status = client.post(served + _signed_unsubscribe_path(), content=gigabyte()).status_code
        except httpx.TransportError:
            status = None  # the server may reset the socket while we are still writing: also a refusal
    assert status in (413, None)
    assert sent < 64 * 1024 * 1024  # only what fits in socket buffers before the server hung up, not the gigabyte
    assert landing.landed_files(tmp_path) == []


# --------------------------------------------------------------------------- JSON depth


def test_a_signed_100000_level_json_body_is_a_bad_request_not_a_crash(tmp_path: Path) -> None:
    deep = b'{"a":' * 40_000 + b"1" + b"}" * 40_000
    client = TestClient(_app(tmp_path))
    for body in (deep, b"[" * 100_000 + b"]" * 100_000):
        assert len(body) <= MAX_BODY_BYTES
        resp = client.post("/webhooks/resend", content=body, headers=_svix_headers(body))
        assert resp.status_code == 400
    assert landing.landed_files(tmp_path) == []


def test_json_at_the_depth_limit_is_accepted_and_one_deeper_is_not(tmp_path: Path) -> None:
    def nested(levels: int) -> bytes:  # the outer object is level 1
        inner = "1"
        for _ in range(levels - 1):
            inner = '{"k":' + inner + "}"
        return json.dumps({"type": "email.delivered", "data": {"email_id": "e1"}}).encode()[:-1] + b',"x":' + inner.encode() + b"}"

    client = TestClient(_app(tmp_path))
    ok, too_deep = nested(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH + 1)
    assert client.post("/webhooks/resend", content=ok, headers=_svix_headers(ok, "m_ok")).status_code == 200
    assert client.post("/webhooks/resend", content=too_deep, headers=_svix_headers(too_deep, "m_deep")).status_code == 400
    assert [r["landing_id"] for r in landing.read_since(None, tmp_path)[0]] == ["m_ok"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert not json_depth_exceeds(json.dumps({"s": "[" * 1000, "t": '\\"{{{{'}).encode(), limit=2)
    assert json_depth_exceeds(b"[[[", limit=2)
    assert not json_depth_exceeds(b"[[]]", limit=2)


def test_a_signed_integer_too_long_to_parse_is_a_bad_request(tmp_path: Path) -> None:
    body = b'{"type":"email.delivered","n":' + b"9" * 5000 + b"}"
    resp = TestClient(_app(tmp_path)).post("/webhooks/resend", content=body, headers=_svix_headers(body))
    assert resp.status_code == 400
