"""The webhook receiver: a small Starlette app that verifies provider callbacks and lands them.

Every route verifies before it stores: a provider callback needs its provider's
signature (403 when it is bad or missing, or when that provider's secret is not
configured), an unsubscribe needs the HMAC token we put in the link (403 without
it), and `/healthz` changes nothing. Bodies are read as a stream and refused with
413 as soon as they pass `MAX_BODY_BYTES`, chunked or not; JSON deeper than
`MAX_JSON_DEPTH` is refused with 400 before it is parsed. Accepted events are
appended to the landing area with group commit (one write and one fsync for all
requests arriving together) and each 2xx goes back only after the fsync covering
its line, so an acknowledged event survives a crash; anything else gets a non-2xx
and the provider retries. The app never opens DuckDB and never logs secrets,
signatures or tokens.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from twilio import request_validator as twilio_rv

from outbound_pipeline.http import svix, unsubscribe_tokens
from outbound_pipeline.store import landing

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 64
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SEND_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# A JSON string (escapes included) or one bracket: brackets inside strings do not nest.
_JSON_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Rejected(Exception):
    """Stop handling a request with this status; the reason is logged, never echoed with secrets."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets nest deeper than `limit`, found without recursion (json.loads recurses per level)."""
    depth = 0
    for match in _JSON_NESTING.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 for anything else (too deep, not JSON, not an object)."""
    if json_depth_exceeds(body):
        raise _Rejected(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, an int of over 4300 digits
        raise _Rejected(400, "body is not JSON") from exc
    if not isinstance(payload, dict):
        raise _Rejected(400, "body is not a JSON object")
    return payload


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read chunk by chunk and abandoned (413) as soon as it passes `limit`.

    A declared Content-Length over the limit is refused before reading anything; a
    chunked body is refused after at most `limit` bytes plus one chunk.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Rejected(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Rejected(413, "body too large")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise _Rejected(400, "client went away mid-body") from exc
    return b"".join(chunks)


def create_app(
    twilio_auth_token: str | None,
    resend_webhook_secret: str | None,
    landing_dir: Path,
    public_base_url: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
    *,
    unsubscribe_secret: str | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the receiver.

    `public_base_url` (e.g. `https://hooks.example.com`) is what Twilio was told
    to call; behind a proxy the request URL differs from it and Twilio's
    signature, which covers the URL, would never match otherwise. `clock` drives
    both the Svix freshness window and `received_at`. `unsubscribe_secret` keys the
    unsubscribe tokens; None loads it as the senders do (`unsubscribe_tokens.load_secret`).
    `extra_routes` are served beside the webhooks (the REST API, the review inbox, voice).
    """
    landing_dir = Path(landing_dir)
    base_url = public_base_url.rstrip("/") if public_base_url else None
    twilio_validator = twilio_rv.RequestValidator(twilio_auth_token) if twilio_auth_token else None
    unsub_secret = unsubscribe_secret if unsubscribe_secret is not None else unsubscribe_tokens.load_secret()
    committer = landing.GroupCommitter(landing_dir, clock=clock)

    def signed_url(request: Request) -> str:
        if base_url is None:
            return str(request.url)
        query = request.url.query
        return base_url + request.url.path + (f"?{query}" if query else "")

    async def verified_twilio_params(request: Request) -> ImmutableMultiDict:
        if twilio_validator is None:
            raise _Rejected(403, "twilio auth token not configured")
        signature = request.headers.get(twilio_rv.SIGNATURE_HEADER)
        if not signature:
            raise _Rejected(403, "missing X-Twilio-Signature")
        body = await read_body(request)
        try:
            params = ImmutableMultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise _Rejected(403, "undecodable form body") from exc
        settings_header = request.headers.get(twilio_rv.SIGNATURE_SETTINGS_HEADER, "")
        algorithm = twilio_rv.get_signature_algorithm(settings_header) if settings_header else None
        try:
            valid = twilio_validator.validate(signed_url(request), params, signature, algorithm=algorithm)
        except (ValueError, UnicodeError) as exc:  # e.g. a Host header with a non-numeric port
            raise _Rejected(403, "unverifiable request URL") from exc
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
            stored = await asyncio.wrap_future(committer.submit(record))
        except OSError as exc:
            log.error("could not land a %s event: %s", record.get("source"), exc)
            raise _Rejected(503, "landing area unavailable") from exc
        except (ValueError, TypeError, RecursionError) as exc:  # this record cannot be written as a JSON line
            raise _Rejected(400, "event cannot be stored") from exc
        log.debug("landed %s event %s", stored["source"], stored["landing_id"])
        return stored

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _Rejected as rejected:
                log.warning("rejected %s %s: %s", request.method, request.url.path, rejected.reason)
                # Close the connection: the server would otherwise keep reading (and discarding) an unread body.
                return PlainTextResponse(_STATUS_TEXT.get(rejected.status, "rejected"), status_code=rejected.status,
                                         headers={"Connection": "close"})

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
        await land(landing.make_record("resend", msg_id, parse_json_object(body)))
        return JSONResponse({"ok": True})

    def verified_send_id(request: Request) -> tuple[str, str]:
        """(send_id, token) from the query, or 400 for a malformed send id and 403 for a token that is not ours."""
        send_id = request.query_params.get("send_id", "")
        if not SEND_ID_RE.match(send_id):
            raise _Rejected(400, "missing or malformed send_id")
        token = request.query_params.get("token", "")
        if not unsubscribe_tokens.valid(unsub_secret, send_id, token):
            raise _Rejected(403, "missing or wrong unsubscribe token")
        return send_id, token

    async def unsubscribe_page(request: Request) -> Response:
        # A GET never unsubscribes: mail scanners prefetch links. It shows a one-button form instead.
        send_id, token = verified_send_id(request)
        action = html.escape(f"/unsubscribe?send_id={quote(send_id, safe='')}&token={token}", quote=True)
        return HTMLResponse(
            "<!doctype html><title>Unsubscribe</title>"
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<p>Stop receiving these messages?</p><button type=submit>Unsubscribe</button></form>"
        )

    async def unsubscribe(request: Request) -> Response:
        send_id, _ = verified_send_id(request)
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
        *extra_routes,
    ]
    app = Starlette(routes=routes)
    app.state.landing = committer
    return app


_STATUS_TEXT = {400: "bad request", 403: "forbidden", 413: "payload too large", 503: "unavailable"}
