"""Unsubscribe links that only we can mint: the send id plus an HMAC of it under a server secret.

A send id alone is guessable (it is derived from the address and the campaign), so a
link carrying only the send id would let anyone opt anyone out. Every link we put in
an email carries `token = HMAC-SHA256(secret, send_id)`, and the receiver honours a
click or an RFC 8058 one-click POST only when the token matches (compared in constant
time).

The secret is `OUTBOUND_UNSUBSCRIBE_SECRET`; when unset (the offline demo), one is
generated on first use into `unsubscribe.secret` beside the DuckDB file, readable by
the owner only, and reused by both the senders and the receiver. It is never logged.
No Starlette here: providers and resources import this module too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from outbound_pipeline import settings

SECRET_ENV = "OUTBOUND_UNSUBSCRIBE_SECRET"
SECRET_FILE_NAME = "unsubscribe.secret"
MIN_SECRET_CHARS = 16
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_DOMAIN = b"outbound-unsubscribe\x1f"


def secret_path() -> Path:
    """Where a generated secret is kept: beside the DuckDB file, where the senders and the receiver both look."""
    return Path(settings.duckdb_path()).parent / SECRET_FILE_NAME


def load_secret(path: Path | None = None) -> str:
    """`OUTBOUND_UNSUBSCRIBE_SECRET`, else the generated one at `path` (created with mode 0600 on first use)."""
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return checked(configured)
    return _generated_secret(path or secret_path())


def checked(secret: str) -> str:
    """A configured secret, refused when too short to resist guessing (the message never shows it)."""
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"{SECRET_ENV} is too short: use at least {MIN_SECRET_CHARS} random characters")
    return secret


def _generated_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        # O_EXCL: of two processes starting together exactly one writes; the other reads its secret below.
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    for _ in range(50):
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
        time.sleep(0.01)  # the creator has the file open but has not written yet
    raise ValueError(f"the unsubscribe secret file {path} is empty: delete it to generate a new one, or set {SECRET_ENV}")


def token(secret: str, send_id: str) -> str:
    """The token that proves a link for `send_id` came from us (43 URL-safe characters)."""
    digest = hmac.new(secret.encode("utf-8"), _DOMAIN + send_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid(secret: str, send_id: str, candidate: str | None) -> bool:
    """Whether `candidate` is the token for `send_id`, compared in constant time."""
    if not candidate or not TOKEN_RE.match(candidate):
        return False
    return hmac.compare_digest(token(secret, send_id).encode("ascii"), candidate.encode("ascii"))


def link(url_template: str, secret: str, send_id: str) -> str:
    """The unsubscribe URL for one send: the template's `{send_id}` (and `{token}` if present) filled in.

    A template without `{token}` gets `token=` appended to its query, so the templates
    already configured as `.../unsubscribe?send_id={send_id}` keep working.
    """
    tok = token(secret, send_id)
    url = url_template.format(send_id=quote(send_id, safe=""), token=tok)
    if "{token}" not in url_template:
        url += ("&" if "?" in url else "?") + f"token={tok}"
    return url


def link_builder(url_template: str, secret: str) -> Callable[[str], str]:
    """`send_id -> URL` for a provider to call per message; the secret stays inside the closure."""

    def build(send_id: str) -> str:
        return link(url_template, secret, send_id)

    return build
