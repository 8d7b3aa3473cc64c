"""Twilio 63016 reported after the send (status callback): the WhatsApp send goes out again once, as the step's template.

A free-text WhatsApp message accepted by Twilio can still fail later with 63016 (the 24-hour window
was closed: our record of the lead's last message was stale). The next cadence plan re-queues it,
whatever the campaign's `retry_attempts` (the cadence plan finds it due, the touch's send run re-queues it), and that
run sends the approved Content template
(ContentSid, no Body) under a fresh idempotency key. A step without a template is left failed.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from urllib.parse import parse_qs

import pandas as pd
import pytest
from werkzeug import Request, Response

from outbound_pipeline.domain.retry import NO_TEMPLATE
from outbound_pipeline.engine.retries import requeue_retries, requeue_window_closed
from outbound_pipeline.runner import LAUNCH, TOUCH
from outbound_pipeline.store import landing
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.warehouse import insert_new
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s6_track.helpers import ingest_landed, later

ACCOUNT = "AC" + "3" * 32
SERVICE = "MG" + "4" * 32
TEMPLATE = "HX00000000000000000000000000000001"  # demo_drip's step 1 template


class FakeTwilio:
    """`POST .../Messages.json` as Twilio answers it (201, status `accepted`); keeps each form."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        if not (request.path.endswith("/Messages.json") and request.method == "POST"):
            return Response(json.dumps({"code": 20404, "message": "not found", "status": 404}), 404, content_type="application/json")
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        self.forms.append(form)
        sid = f"SM{len(self.forms):032d}"
        return Response(json.dumps({
            "sid": sid, "status": "accepted", "to": form["To"], "from": None, "body": form.get("Body"), "num_segments": "1",
            "messaging_service_sid": form.get("MessagingServiceSid"), "price": None, "price_unit": "USD", "error_code": None,
            "error_message": None, "date_created": "Mon, 05 Jan 2026 09:00:00 +0000", "date_sent": None, "account_sid": ACCOUNT,
            "direction": "outbound-api", "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        }), status=201, content_type="application/json")


@pytest.fixture
def whatsapp_sent(workdir, httpserver, monkeypatch, driver, instance, db):
    """Touch 1 sent through a fake Twilio, WhatsApp as free text (we believe every lead wrote to us an hour ago)."""
    from outbound_pipeline.defs.resources import default_resources

    fake = FakeTwilio()
    httpserver.expect_request("").respond_with_handler(fake)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-token-for-tests")
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", SERVICE)
    monkeypatch.setenv("OUTBOUND_TWILIO_BASE_URL", httpserver.url_for("").rstrip("/"))
    rows = list(csv.reader((workdir / "sample_leads.csv").open(encoding="utf-8")))
    with (workdir / "sample_leads.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows[:13])
    driver.base = default_resources()
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    # The lead wrote an hour before the send (pipeline clock), so the window is open as far as we know.
    hour_before = MONDAY_MORNING - timedelta(hours=1)
    with db() as con:
        leads = con.execute("SELECT lead_id FROM recipients WHERE campaign_id = 'demo_drip'").df()
        insert_new(con, "inbound_windows", pd.DataFrame({"lead_id": leads["lead_id"], "last_inbound_at": hour_before,
                                                         "reply_id": "rpl_" + leads["lead_id"], "updated_at": MONDAY_MORNING}))
    driver.run(TOUCH, MONDAY_MORNING, "demo_drip.t1")
    with db() as con:
        sends = con.execute("SELECT send_id, to_address, provider_message_id FROM sends WHERE channel = 'whatsapp' AND status = 'sent' "
                            "ORDER BY send_id").df()
    assert not sends.empty
    first = [f for f in fake.forms if f["To"].startswith("whatsapp:")]
    assert first and all("Body" in f and "ContentSid" not in f for f in first)  # inside the window (so we thought): free text
    return fake, sends.iloc[0]


def _land_63016(sid: str, to: str) -> None:
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "63016", "AccountSid": ACCOUNT,
              "MessagingServiceSid": SERVICE, "To": f"whatsapp:{to}"}
    landing.append(landing.make_record("twilio_status", f"{sid}:undelivered", params))


def _send(db, send_id: str) -> dict:
    with db() as con:
        return con.execute("SELECT status, retries, error_code, error_message, provider_message_id FROM sends WHERE send_id = ?",
                           [send_id]).df().iloc[0].to_dict()


def test_63016_by_status_callback_resends_once_with_the_template(whatsapp_sent, driver, instance, db):
    fake, send = whatsapp_sent
    _land_63016(send["provider_message_id"], send["to_address"])
    ingest_landed(driver, instance, later(0.5))

    plan = driver.run(["cadence_plan"], later(1), "demo_drip").asset_materializations_for_node("cadence_plan")[0].metadata
    assert plan["retries_due"].value == 1  # demo_drip sets no retry_attempts
    assert "demo_drip.t1" in plan["due_touches"].value
    assert _send(db, send["send_id"])["status"] == "sent"  # the plan only reads; the touch's send run re-queues

    before = len(fake.forms)
    touch = driver.run(TOUCH, later(1), "demo_drip.t1")
    assert touch.asset_materializations_for_node("sends")[0].metadata["retries_queued"].value == 1
    (again,) = fake.forms[before:]  # only that send went out again
    assert again["To"] == f"whatsapp:{send['to_address']}"
    assert again["ContentSid"] == TEMPLATE and "Body" not in again
    assert set(json.loads(again["ContentVariables"])) == {"1", "2"}
    resent = _send(db, send["send_id"])
    assert resent["status"] == "sent" and resent["retries"] == 1 and pd.isna(resent["error_code"])
    assert resent["provider_message_id"] != send["provider_message_id"]

    # Once only: nothing more to re-queue, and the template failing with 63016 as well leaves it failed.
    assert driver.run(["cadence_plan"], later(2), "demo_drip").asset_materializations_for_node("cadence_plan")[0].metadata[
        "retries_due"].value == 0
    _land_63016(resent["provider_message_id"], send["to_address"])
    ingest_landed(driver, instance, later(2.5), None)
    with db() as con:
        spec = campaign_spec(con, "demo_drip")
        assert requeue_window_closed(con, spec, later(3)) == 0
    final = _send(db, send["send_id"])
    assert (final["status"], final["error_code"]) == ("failed", "63016") and "again" in final["error_message"]


def test_63016_without_a_template_is_left_failed_and_never_retried_blindly(whatsapp_sent, driver, instance, db):
    fake, send = whatsapp_sent
    _land_63016(send["provider_message_id"], send["to_address"])
    ingest_landed(driver, instance, later(0.5))
    with db() as con:
        spec = campaign_spec(con, "demo_drip")
        steps = [s.model_copy(update={"whatsapp_template": None, "variants": [v.model_copy(update={"whatsapp_template": None})
                                                                              for v in s.variants]}) for s in spec.steps]
        bare = spec.model_copy(update={"steps": steps, "retry_attempts": 3, "retry_delay": "0h"})
        assert requeue_retries(con, bare, later(1)) == 0
        assert requeue_retries(con, bare, later(2)) == 0  # the campaign's retry policy does not resend the free text either
    failed = _send(db, send["send_id"])
    assert (failed["status"], failed["error_code"], failed["error_message"]) == ("failed", "63016", NO_TEMPLATE)
