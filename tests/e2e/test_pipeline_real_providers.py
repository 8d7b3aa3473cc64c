"""Credentials in the environment switch every stage to the real SDK clients, with no other change.

One local HTTP server plays Tavily, OpenAI, Resend and Twilio on their real wire formats;
the pipeline is launched and one touch sent exactly as in production.
"""

from __future__ import annotations

import csv
import json
from urllib.parse import parse_qs

import pytest
from werkzeug import Request, Response

from outbound_pipeline.runner import LAUNCH, TOUCH
from tests.conftest import MONDAY_MORNING, add_campaign

SECRETS = {
    "TAVILY_API_KEY": "tvly-test-secret-123",
    "OPENAI_API_KEY": "sk-test-secret-456",
    "RESEND_API_KEY": "re_test_secret_789",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token-secret-000",
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "2" * 32,
}


class FakeProviders:
    """Answers like the four providers do, and keeps every request for the assertions."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict | str]] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        headers = dict(request.headers)
        if request.path == "/search":
            payload = json.loads(body)
            self.requests.append(("tavily", headers, payload))
            results = [{"title": f"Signal {i} for {payload['query'][:30]}", "url": f"https://news.example.org/a{i}",
                        "content": f"Public fact number {i} about the company.", "score": 0.9 - i / 10,
                        "published_date": f"2026-10-0{i + 1}"} for i in range(4)]
            return Response(json.dumps({"query": payload["query"], "results": results, "response_time": 0.4}),
                            content_type="application/json")
        if request.path == "/v1/chat/completions":
            payload = json.loads(body)
            self.requests.append(("openai", headers, payload))
            schema = payload["response_format"]["json_schema"]["schema"]["properties"]
            snippet = schema["cited_snippet_ids"]["items"]["enum"][0]
            channel = schema["channel"]["enum"][0] if "enum" in schema["channel"] else "email"
            draft = {"channel": channel, "tone": "warm", "cta": "a short call", "subject": "Quick idea" if channel == "email" else None,
                     "body": "Hi, I saw your public news and thought of a short call. Open to it?", "cited_snippet_ids": [snippet]}
            return Response(json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1767600000, "model": payload["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(draft), "refusal": None}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 80, "total_tokens": 980},
            }), content_type="application/json")
        if request.path == "/emails":
            payload = json.loads(body)
            self.requests.append(("resend", headers, payload))
            return Response(json.dumps({"id": f"re_{len(self.requests)}"}), content_type="application/json")
        if request.path.endswith("/Messages.json") and request.method == "POST":
            form = {k: v[0] for k, v in parse_qs(body).items()}
            self.requests.append(("twilio", headers, form))
            sid = f"SM{len(self.requests):032d}"
            return Response(json.dumps({
                "sid": sid, "status": "accepted", "to": form["To"], "from": None, "body": form.get("Body"), "num_segments": "1",
                "messaging_service_sid": form.get("MessagingServiceSid"), "price": None, "price_unit": "USD", "error_code": None,
                "error_message": None, "date_created": "Mon, 05 Jan 2026 09:00:00 +0000", "date_sent": None,
                "account_sid": SECRETS["TWILIO_ACCOUNT_SID"], "direction": "outbound-api", "uri": f"/2010-04-01/Accounts/x/Messages/{sid}.json",
            }), status=201, content_type="application/json")
        return Response(json.dumps({"message": f"unexpected {request.method} {request.path}"}), status=404, content_type="application/json")

    def of(self, provider: str) -> list[tuple[dict, dict | str]]:
        return [(h, b) for p, h, b in self.requests if p == provider]


@pytest.fixture
def real_env(workdir, httpserver, monkeypatch):
    fake = FakeProviders()
    httpserver.expect_request("").respond_with_handler(fake)  # every path
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    base = httpserver.url_for("").rstrip("/")
    monkeypatch.setenv("OUTBOUND_TAVILY_BASE_URL", base)
    monkeypatch.setenv("OPENAI_BASE_URL", base + "/v1")
    monkeypatch.setenv("RESEND_API_URL", base)
    monkeypatch.setenv("OUTBOUND_TWILIO_BASE_URL", base)
    # A small audience keeps the exchange readable: the first 12 sample leads.
    rows = list(csv.reader((workdir / "sample_leads.csv").open(encoding="utf-8")))
    with (workdir / "sample_leads.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows[:13])
    return fake


def test_real_clients_take_over_when_credentials_are_set(real_env, driver, instance, db, workdir):
    from outbound_pipeline.defs.resources import default_resources

    driver.base = default_resources()  # built under the credentials
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")

    with db() as con:
        snippets = con.execute("SELECT provider, count(*) FROM research_snippets GROUP BY 1").fetchall()
        composers = con.execute("SELECT composer, sum(cost_usd) FROM drafts GROUP BY 1").fetchall()
        sends = con.execute("SELECT send_id, channel, provider, provider_message_id, status FROM sends").df()
    assert dict(snippets).keys() == {"tavily"}
    assert [c for c, _ in composers] == ["openai"] and composers[0][1] > 0  # token usage became cost
    sent = sends[sends["status"] == "sent"]
    assert set(sent["provider"]) == {"resend", "twilio"}
    assert sent["provider_message_id"].notna().all()

    tavily = real_env.of("tavily")
    assert tavily and all(h["Authorization"] == f"Bearer {SECRETS['TAVILY_API_KEY']}" for h, _ in tavily)
    emails = real_env.of("resend")
    by_id = sends.set_index("send_id")
    for headers, payload in emails:
        key = headers["Idempotency-Key"]
        assert by_id.loc[key, "channel"] == "email"  # the send's own id is the idempotency key
        assert payload["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert key in payload["headers"]["List-Unsubscribe"]
    for _headers, form in real_env.of("twilio"):
        assert form["MessagingServiceSid"] == SECRETS["TWILIO_MESSAGING_SERVICE_SID"]
        assert form["To"].removeprefix("whatsapp:").startswith("+")
        if form["To"].startswith("whatsapp:"):  # no inbound message yet: outside the 24-hour window, so the template
            assert form["ContentSid"] == "HX00000000000000000000000000000001" and "Body" not in form
            assert set(json.loads(form["ContentVariables"])) == {"1", "2"}
    assert len(emails) + len(real_env.of("twilio")) == len(sent)

    # Secrets never land in DuckDB.
    with db() as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        dump = "".join(con.execute(f"SELECT * FROM {t}").df().to_csv() for t in tables)
    for value in (SECRETS["TAVILY_API_KEY"], SECRETS["OPENAI_API_KEY"], SECRETS["RESEND_API_KEY"], SECRETS["TWILIO_AUTH_TOKEN"]):
        assert value not in dump

    # Re-materialising costs nothing: research comes from the cache, nothing is sent twice.
    calls = len(real_env.requests)
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")
    assert len(real_env.requests) == calls
