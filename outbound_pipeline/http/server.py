"""Run the webhook receiver under uvicorn, configured from the environment.

Secrets come only from the environment (never from arguments, which show up in
process listings) and are never logged.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from starlette.applications import Starlette

from outbound_pipeline import settings
from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import create_app

log = logging.getLogger(__name__)


def app_from_env() -> Starlette:
    """The receiver built from TWILIO_AUTH_TOKEN, RESEND_WEBHOOK_SECRET, OUTBOUND_UNSUBSCRIBE_SECRET (else the generated
    file beside the DuckDB, as the senders use), OUTBOUND_PUBLIC_BASE_URL and OUTBOUND_LANDING_DIR."""
    twilio_token = os.environ.get("TWILIO_AUTH_TOKEN") or None
    resend_secret = os.environ.get("RESEND_WEBHOOK_SECRET") or None
    public_base_url = os.environ.get("OUTBOUND_PUBLIC_BASE_URL") or None
    landing_dir = Path(os.environ["OUTBOUND_LANDING_DIR"]) if os.environ.get("OUTBOUND_LANDING_DIR") else settings.landing_dir()
    landing_dir.mkdir(parents=True, exist_ok=True)
    for name, configured in (("Twilio", twilio_token), ("Resend", resend_secret)):
        if not configured:
            log.warning("%s webhook secret not set: its callbacks will be refused with 403", name)
    unsubscribe_secret = unsubscribe_tokens.load_secret()
    if not os.environ.get(unsubscribe_tokens.SECRET_ENV):
        log.info("unsubscribe tokens keyed by the secret in %s (set %s to use your own)", unsubscribe_tokens.secret_path(),
                 unsubscribe_tokens.SECRET_ENV)
    log.info("landing accepted webhooks in %s (public base URL: %s)", landing_dir, public_base_url or "request URL")
    from outbound_pipeline.http.api_app import routes_from_env
    from outbound_pipeline.http.voice import voice_routes_from_env

    log.info("serving the REST API (/api, /docs), the review inbox (/inbox) and the campaign pages (/campaigns)")
    return create_app(twilio_token, resend_secret, landing_dir, public_base_url, unsubscribe_secret=unsubscribe_secret,
                      extra_routes=[*voice_routes_from_env(twilio_token, landing_dir, public_base_url), *routes_from_env()])


_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"]+")


class RedactUnsubscribeTokens(logging.Filter):
    """Access-log lines show request URLs; an unsubscribe token in one would let a log reader opt that lead out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_URL.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        return True


def serve(host: str = "127.0.0.1", port: int = 8787) -> None:
    """Serve until interrupted. Bind to loopback by default; put a TLS proxy in front for providers."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(RedactUnsubscribeTokens())
    uvicorn.run(app_from_env(), host=host, port=port, proxy_headers=True, log_level="info")


if __name__ == "__main__":
    serve()
