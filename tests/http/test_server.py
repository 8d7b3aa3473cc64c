"""The receiver for real: uvicorn on a loopback port, configured from the environment, hit over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from twilio.request_validator import RequestValidator

from outbound_pipeline.engine.landed import to_frames
from outbound_pipeline.http.server import app_from_env
from outbound_pipeline.store import landing

TOKEN = "real-server-test-token"
UNSUBSCRIBE_SECRET = "real-server-unsubscribe-secret-0123"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running_server(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, Path]]:
    landing_dir = tmp_path / "landing"
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("RESEND_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("OUTBOUND_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("OUTBOUND_LANDING_DIR", str(landing_dir))
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", UNSUBSCRIBE_SECRET)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app_from_env(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn exited early"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", landing_dir
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_signed_twilio_callback_over_real_http_is_landed(running_server: tuple[str, Path]) -> None:
    base, landing_dir = running_server
    url = f"{base}/webhooks/twilio/status"
    params = {"MessageSid": "SMreal1", "MessageStatus": "read", "From": "whatsapp:+15550000000", "To": "whatsapp:+34600111222"}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{base}/healthz").json() == {"ok": True, "twilio": True, "resend": False}
        assert client.post(url, data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}).status_code == 403
        resp = client.post(url, data=params, headers={"X-Twilio-Signature": signature})
        assert resp.status_code == 200
        # Resend is not configured in this environment: refused, nothing stored.
        assert (
            client.post(
                f"{base}/webhooks/resend", content=b"{}", headers={"svix-id": "m", "svix-timestamp": "1", "svix-signature": "v1,x"}
            ).status_code
            == 403
        )
    # The 200 came back only after the line was fsynced, so it is readable now.
    records, cursor = landing.read_since(None, landing_dir)
    assert [(r["source"], r["landing_id"]) for r in records] == [("twilio_status", "SMreal1:read")]
    events, _ = to_frames(records)
    assert events[["event_type", "channel"]].values.tolist() == [["read", "whatsapp"]]
    assert cursor is not None


def test_access_log_lines_never_show_an_unsubscribe_token() -> None:
    import logging

    from outbound_pipeline.http.server import RedactUnsubscribeTokens

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", "/unsubscribe?send_id=snd_1&token=abcDEF_-123", "1.1", 200), None)
    assert RedactUnsubscribeTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /unsubscribe?send_id=snd_1&token=[redacted] HTTP/1.1" 200'
