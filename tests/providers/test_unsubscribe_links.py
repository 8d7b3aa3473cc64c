"""Every email's unsubscribe link carries the send id and an HMAC token the receiver accepts; nobody else can mint one."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_httpserver import HTTPServer
from starlette.testclient import TestClient

from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import create_app
from outbound_pipeline.http.server import app_from_env
from outbound_pipeline.providers.base import OutboundMessage
from outbound_pipeline.providers.channel_offline import OfflineChannel
from outbound_pipeline.providers.email_resend import ResendEmail
from outbound_pipeline.store import landing

SECRET = "a-long-enough-unsubscribe-secret"
TEMPLATE = "https://hooks.example.com/unsubscribe?send_id={send_id}"


def _email(send_id: str = "snd_0001") -> OutboundMessage:
    return OutboundMessage(send_id=send_id, idempotency_key=send_id, campaign_id="demo", touch=1, lead_id="lead_1",
                           channel="email", to="ana@example.com", body="Hello", subject="Hi")


def _url_of(list_unsubscribe: str) -> str:
    return list_unsubscribe.split(",")[0].strip().removeprefix("<").removesuffix(">")


def _one_click(app_secret: str, url: str, tmp_path: Path) -> int:
    """POST the link the way a mailbox provider does for RFC 8058 one-click, at our receiver."""
    parts = urlsplit(url)
    client = TestClient(create_app(None, None, tmp_path, unsubscribe_secret=app_secret))
    return client.post(f"{parts.path}?{parts.query}", content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code


def test_resend_emails_carry_a_tokened_one_click_link_the_receiver_honours(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/emails", method="POST").respond_with_json({"id": "em_1"})
    provider = ResendEmail("re_key", "Sales <sales@seller.example>", base_url=httpserver.url_for(""), requests_per_second=0,
                           unsubscribe_url=TEMPLATE, unsubscribe_link=unsubscribe_tokens.link_builder(TEMPLATE, SECRET))
    assert provider.send(_email("snd_0001/x")).status == "sent"
    [(request, _)] = httpserver.log
    headers = json.loads(request.data)["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = _url_of(headers["List-Unsubscribe"])
    query = parse_qs(urlsplit(url).query)
    assert query["send_id"] == ["snd_0001/x"]
    assert query["token"] == [unsubscribe_tokens.token(SECRET, "snd_0001/x")]
    # The receiver refuses the send id alone, and under another secret; it honours the link as sent.
    assert _one_click(SECRET, url.split("&token=")[0], tmp_path) in (400, 403)  # '/' in a send id is not ours: 400
    plain = _email("snd_0002")
    good = unsubscribe_tokens.link(TEMPLATE, SECRET, plain.send_id)
    assert _one_click("another-secret-entirely-123", good, tmp_path) == 403
    assert _one_click(SECRET, good.split("&token=")[0], tmp_path) == 403
    assert landing.landed_files(tmp_path) == []
    assert _one_click(SECRET, good, tmp_path) == 200
    assert [r["payload"]["send_id"] for r in landing.read_since(None, tmp_path)[0]] == ["snd_0002"]


def test_a_template_with_a_token_slot_is_filled_in_place() -> None:
    url = unsubscribe_tokens.link("https://x.example/u/{send_id}/{token}", SECRET, "snd_9")
    assert url == f"https://x.example/u/snd_9/{unsubscribe_tokens.token(SECRET, 'snd_9')}"
    assert unsubscribe_tokens.link("https://x.example/u", SECRET, "snd_9").startswith("https://x.example/u?token=")


def test_the_offline_channel_records_the_tokened_headers_it_sent(tmp_path: Path) -> None:
    channel = OfflineChannel(tmp_path, unsubscribe_link=unsubscribe_tokens.link_builder(TEMPLATE, SECRET))
    channel.send(_email("snd_off"))
    [entry] = [json.loads(line) for line in (tmp_path / "accepted.jsonl").read_text().splitlines()]
    url = _url_of(entry["headers"]["List-Unsubscribe"])
    assert parse_qs(urlsplit(url).query) == {"send_id": ["snd_off"], "token": [unsubscribe_tokens.token(SECRET, "snd_off")]}
    assert entry["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert _one_click(SECRET, url, tmp_path / "landing") == 200


def test_without_a_configured_secret_senders_and_receiver_share_a_generated_one(tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv(unsubscribe_tokens.SECRET_ENV, raising=False)
    monkeypatch.setenv("OUTBOUND_DUCKDB_PATH", str(tmp_path / "data" / "outbound.duckdb"))
    monkeypatch.setenv("OUTBOUND_LANDING_DIR", str(tmp_path / "landing"))
    service = ChannelService(offline_ledger_dir=str(tmp_path / "ledger"), unsubscribe_url=TEMPLATE)
    channel = service.for_channel("email")
    assert isinstance(channel, OfflineChannel)
    channel.send(_email("snd_demo"))
    secret_file = tmp_path / "data" / unsubscribe_tokens.SECRET_FILE_NAME
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 40
    url = _url_of(json.loads((tmp_path / "ledger" / "accepted.jsonl").read_text())["headers"]["List-Unsubscribe"])
    parts = urlsplit(url)
    client = TestClient(app_from_env())  # the receiver as `outbound webhooks` starts it, same environment
    assert client.post(f"{parts.path}?{parts.query}", content=b"List-Unsubscribe=One-Click").status_code == 200
    assert unsubscribe_tokens.load_secret() == secret  # reused, not regenerated
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("outbound_pipeline"))
    assert "unsubscribe.secret" in ours  # says where the secret is, never what it is
    assert secret not in caplog.text and parse_qs(parts.query)["token"][0] not in ours


def test_a_configured_secret_wins_and_a_short_one_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OUTBOUND_DUCKDB_PATH", str(tmp_path / "outbound.duckdb"))
    monkeypatch.setenv(unsubscribe_tokens.SECRET_ENV, SECRET)
    assert unsubscribe_tokens.load_secret() == SECRET
    assert not (tmp_path / unsubscribe_tokens.SECRET_FILE_NAME).exists()
    service = ChannelService(offline_ledger_dir=str(tmp_path / "ledger"), unsubscribe_url=TEMPLATE, unsubscribe_secret=SECRET)
    service.for_channel("email").send(_email("snd_cfg"))
    url = _url_of(json.loads((tmp_path / "ledger" / "accepted.jsonl").read_text())["headers"]["List-Unsubscribe"])
    assert unsubscribe_tokens.valid(SECRET, "snd_cfg", parse_qs(urlsplit(url).query)["token"][0])
    monkeypatch.setenv(unsubscribe_tokens.SECRET_ENV, "short")
    with pytest.raises(ValueError, match="too short") as info:
        unsubscribe_tokens.load_secret()
    assert "short'" not in str(info.value)


def test_tokens_are_per_send_and_per_secret() -> None:
    a = unsubscribe_tokens.token(SECRET, "snd_1")
    assert unsubscribe_tokens.valid(SECRET, "snd_1", a)
    assert not unsubscribe_tokens.valid(SECRET, "snd_2", a)
    assert not unsubscribe_tokens.valid(SECRET + "x", "snd_1", a)
    assert not unsubscribe_tokens.valid(SECRET, "snd_1", None)
    assert not unsubscribe_tokens.valid(SECRET, "snd_1", a.lower() if a != a.lower() else a.upper())
