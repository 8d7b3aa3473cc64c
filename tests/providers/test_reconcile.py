"""Reconciliation after a crash tells "the provider never accepted it" from "the provider cannot say".

Only the first may lead to sending again: `reconcile` answers None for it and raises ProviderError
for the second, while `lookup` keeps folding both into None.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from outbound_pipeline.providers.base import ProviderError
from outbound_pipeline.providers.email_resend import ResendEmail
from outbound_pipeline.providers.messaging_twilio import TwilioMessaging
from tests.providers.test_email_resend import KEY, NOW
from tests.providers.test_email_resend import _error as resend_error
from tests.providers.test_email_resend import _message as email
from tests.providers.test_messaging_twilio import LEAD, MESSAGES, _sms, error, make, page, resource


@pytest.fixture
def twilio(httpserver: HTTPServer) -> TwilioMessaging:
    return make(httpserver, [], max_attempts=2)


@pytest.fixture
def resend_provider(httpserver: HTTPServer) -> ResendEmail:
    return ResendEmail(KEY, "Sales <sales@mail.seller.example>", base_url=httpserver.url_for(""), requests_per_second=0,
                       max_attempts=2, sleep=lambda _: None, clock=lambda: NOW + timedelta(minutes=5))


def test_twilio_reconcile_finds_the_accepted_message(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="GET", query_string={"To": LEAD, "PageSize": "50"}).respond_with_json(
        page([resource("SMours", LEAD, _sms().body)]))
    found = twilio.reconcile(_sms())
    assert found is not None and (found.status, found.provider_message_id) == ("sent", "SMours")


def test_twilio_reconcile_answers_none_only_when_the_list_lacks_the_message(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(page([resource("SMx", LEAD, "another message")]))
    assert twilio.reconcile(_sms()) is None


@pytest.mark.parametrize("status, code", [(401, 20003), (500, 20500)])
def test_twilio_reconcile_raises_when_twilio_cannot_be_asked(httpserver: HTTPServer, twilio: TwilioMessaging, status: int, code: int) -> None:
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(error(code, "unavailable", status), status=status)
    with pytest.raises(ProviderError) as raised:
        twilio.reconcile(_sms())
    assert raised.value.status == status
    assert twilio.lookup(_sms()) is None  # the old question still folds "unknown" into None
    assert not [req for req, _ in httpserver.log if req.method == "POST"]  # and nothing was sent meanwhile


def test_resend_reconcile_replays_the_key_and_returns_the_original_id(httpserver: HTTPServer, resend_provider: ResendEmail) -> None:
    httpserver.expect_request("/emails", method="POST", headers={"Idempotency-Key": "snd_0002"}).respond_with_json({"id": "first-id"})
    found = resend_provider.reconcile(email(2))
    assert found is not None and (found.status, found.provider_message_id) == ("sent", "first-id")


def test_resend_reconcile_raises_once_the_key_may_have_expired(httpserver: HTTPServer, resend_provider: ResendEmail) -> None:
    with pytest.raises(ProviderError) as raised:
        resend_provider.reconcile(email(sent_at=NOW - timedelta(hours=30)))
    assert raised.value.code == "idempotency_window_passed"
    assert httpserver.log == []  # no replay: past the key's lifetime it would be a second email


def test_resend_reconcile_raises_when_resend_keeps_failing(httpserver: HTTPServer, resend_provider: ResendEmail) -> None:
    httpserver.expect_request("/emails").respond_with_json(resend_error(500, "application_error", "boom"), status=500)
    with pytest.raises(ProviderError):
        resend_provider.reconcile(email())
