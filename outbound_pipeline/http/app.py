"""The webhook receiver: a small Starlette app that verifies provider callbacks and lands them.

Every route verifies before it stores: a request with a bad or missing
signature, or for a provider whose secret is not configured, gets 403 and
leaves no trace. Accepted events are appended (and fsynced) to the landing
area before the 2xx goes back, so an acknowledged event survives a crash;
anything else gets a non-2xx and the provider retries. The app never opens
DuckDB and never logs secrets or signatures.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio import request_validator as twilio_rv

from outbound_pipeline.http import svix
from outbound_pipeline.store import landing

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SEND_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Rejected(Exception):
    """Stop handling a request with this status; the reason is logged, never echoed with secrets."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(
    twilio_auth_token: str | None,
    resend_webhook_secret: str | None,
    landing_dir: Path,
    public_base_url: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> Starlette:
    """Build the receiver.

    `public_base_url` (e.g. `https://hooks.example.com`) is what Twilio was told
    to call; behind a proxy the request URL differs from it and Twilio's
    signature, which covers the URL, would never match otherwise. `clock` drives
    both the Svix freshness window and `received_at`.
    """
    landing_dir = Path(landing_dir)
    base_url = public_base_url.rstrip("/") if public_base_url else None

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _Rejected(413, "body too large")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise _Rejected(413, "body too large")
        return body

    def signed_url(request: Request) -> str:
        if base_url is None:
            return str(request.url)
        query = request.url.query
        return base_url + request.url.path + (f"?{query}" if query else "")

    async def verified_twilio_params(request: Request) -> ImmutableMultiDict:
        if not twilio_auth_token:
            raise _Rejected(403, "twilio auth token not configured")
        signature = request.headers.get(twilio_rv.SIGNATURE_HEADER)
        if not signature:
            raise _Rejected(403, "missing X-Twilio-Signature")
        body = await read_body(request)
        try:
            params = ImmutableMultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise _Rejected(403, "undecodable form body") from exc
        validator = twilio_rv.RequestValidator(twilio_auth_token)
        get_algorithm = getattr(twilio_rv, "get_signature_algorithm", None)  # newer SDKs: SharedKey / HMAC_SHA256
        settings_header = request.headers.get(getattr(twilio_rv, "SIGNATURE_SETTINGS_HEADER", ""), "")
        if get_algorithm is not None and settings_header:
            valid = validator.validate(signed_url(request), params, signature, algorithm=get_algorithm(settings_header))
        else:
            valid = validator.validate(signed_url(request), params, signature)
        if not valid:
            raise _Rejected(403, "bad X-Twilio-Signature")
        return params

    def flatten(params: ImmutableMultiDict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in params:
            values = params.getlist(key)
            out[key] = values[0] if len(values) == 1 else values
        return out

    async def land(record: dict[str, Any]) -> dict[str, Any]:
        try:
            stored = await run_in_threadpool(landing.append, record, landing_dir, clock=clock)
        except OSError as exc:
            log.exception("could not land a %s event", record.get("source"))
            raise _Rejected(503, "landing area unavailable") from exc
        log.info("landed %s event %s", stored["source"], stored["landing_id"])
        return stored

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _Rejected as rejected:
                log.warning("rejected %s %s: %s", request.method, request.url.path, rejected.reason)
                return PlainTextResponse(_STATUS_TEXT.get(rejected.status, "rejected"), status_code=rejected.status)

        return endpoint

    async def twilio_status(request: Request) -> Response:
        params = flatten(await verified_twilio_params(request))
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not isinstance(sid, str) or not isinstance(status, str) or not sid or not status:
            raise _Rejected(400, "status callback without MessageSid/MessageStatus")
        record = landing.make_record("twilio_status", f"{sid}:{status}", params)
        if request.query_params:
            record["query"] = dict(request.query_params)  # part of the signed URL, e.g. ?send_id=...
        await land(record)
        return PlainTextResponse("ok")

    async def twilio_inbound(request: Request) -> Response:
        params = flatten(await verified_twilio_params(request))
        sid = params.get("MessageSid") or params.get("SmsSid")
        if not isinstance(sid, str) or not sid:
            raise _Rejected(400, "inbound message without MessageSid")
        await land(landing.make_record("twilio_inbound", sid, params))
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def resend(request: Request) -> Response:
        if not resend_webhook_secret:
            raise _Rejected(403, "resend webhook secret not configured")
        body = await read_body(request)
        try:
            msg_id = svix.verify(resend_webhook_secret, request.headers, body, clock=lambda: clock().timestamp())
        except svix.SvixVerificationError as exc:
            raise _Rejected(403, str(exc)) from exc
        except ValueError as exc:  # the configured secret itself is malformed
            raise _Rejected(403, "resend webhook secret is malformed") from exc
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Rejected(400, "body is not JSON") from exc
        if not isinstance(payload, dict):
            raise _Rejected(400, "body is not a JSON object")
        await land(landing.make_record("resend", msg_id, payload))
        return JSONResponse({"ok": True})

    def send_id_of(request: Request) -> str:
        send_id = request.query_params.get("send_id", "")
        if not SEND_ID_RE.match(send_id):
            raise _Rejected(400, "missing or malformed send_id")
        return send_id

    async def unsubscribe_page(request: Request) -> Response:
        # A GET never unsubscribes: mail scanners prefetch links. It shows a one-button form instead.
        send_id = html.escape(send_id_of(request), quote=True)
        return HTMLResponse(
            "<!doctype html><title>Unsubscribe</title>"
            f'<form method="post" action="/unsubscribe?send_id={send_id}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<p>Stop receiving these messages?</p><button type=submit>Unsubscribe</button></form>"
        )

    async def unsubscribe(request: Request) -> Response:
        send_id = send_id_of(request)
        body = await read_body(request)
        one_click = b"List-Unsubscribe=One-Click" in body
        payload = {"send_id": send_id, "channel": "email", "one_click": one_click}
        await land(landing.make_record("unsubscribe", send_id, payload))
        return HTMLResponse("<!doctype html><title>Unsubscribed</title><p>You have been unsubscribed.</p>")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "twilio": bool(twilio_auth_token), "resend": bool(resend_webhook_secret)})

    routes = [
        Route("/webhooks/twilio/status", guarded(twilio_status), methods=["POST"]),
        Route("/webhooks/twilio/inbound", guarded(twilio_inbound), methods=["POST"]),
        Route("/webhooks/resend", guarded(resend), methods=["POST"]),
        Route("/unsubscribe", guarded(unsubscribe_page), methods=["GET"]),
        Route("/unsubscribe", guarded(unsubscribe), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes)


_STATUS_TEXT = {400: "bad request", 403: "forbidden", 413: "payload too large", 503: "unavailable"}
