"""Who is asking: bearer API keys for the REST API, signed session cookies for the pages, CSRF tokens for their forms.

A key is `obk_<key id>_<secret>`: the key id finds its row, the SHA-256 of the whole key must match the stored hash
(compared in constant time); the key itself is shown once, when it is created, and never stored or logged. A reviewer
signs in to the pages with a key; the browser then holds a session cookie (HttpOnly, SameSite=Strict) carrying the key
id, an expiry and a CSRF token, signed with HMAC-SHA256 under `OUTBOUND_SESSION_SECRET` (else a key derived from the
unsubscribe secret, so it survives restarts). Every form and every page action posts its session's CSRF token back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import duckdb

from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.store import api_keys, warehouse

ROLES = ("api", "reviewer")
KEY_RE = re.compile(r"^obk_([0-9a-f]{12})_([A-Za-z0-9_-]{32,64})$")
SESSION_COOKIE = "outbound_session"
SESSION_SECONDS = 12 * 3600
SESSION_SECRET_ENV = "OUTBOUND_SESSION_SECRET"


@dataclass(frozen=True)
class Caller:
    """A verified key holder: its name is what the audit trail and the approvals record."""

    key_id: str
    name: str
    role: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, whole key) for a new key."""
    key_id = secrets.token_hex(6)
    return key_id, f"obk_{key_id}_{secrets.token_urlsafe(32)}"


def create_key(db_path: str, name: str, role: str, now: datetime) -> str:
    """Create a key for `name` and return it: the only time it is shown."""
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}", name):
        raise ValueError(f"key name {name!r}: use letters, digits, space, '.', '_', '@' or '-' (at most 64 characters)")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
    key_id, key = new_key()
    with warehouse.connect(db_path) as con:
        api_keys.add_key(con, key_id, name, role, hash_key(key), now)
    return key


def verify_key(con: duckdb.DuckDBPyConnection, key: str | None) -> Caller | None:
    """The holder of a well-formed, live key whose hash matches; None for anything else."""
    match = KEY_RE.match((key or "").strip())
    if not match:
        return None
    row = api_keys.key_by_id(con, match.group(1))
    if row is None or not hmac.compare_digest(str(row["key_hash"]), hash_key(match.group(0))):
        return None
    return Caller(str(row["key_id"]), str(row["name"]), str(row["role"]))


def caller_by_id(con: duckdb.DuckDBPyConnection, key_id: str) -> Caller | None:
    """The live key behind a session (a revoked key ends its sessions at once)."""
    row = api_keys.key_by_id(con, key_id)
    return Caller(str(row["key_id"]), str(row["name"]), str(row["role"])) if row else None


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --------------------------------------------------------------------------------------------- sessions


def session_secret() -> bytes:
    configured = os.environ.get(SESSION_SECRET_ENV)
    if configured:
        if len(configured) < 16:
            raise ValueError(f"{SESSION_SECRET_ENV} is too short: use at least 16 random characters")
        return configured.encode()
    return hmac.new(unsubscribe_tokens.load_secret().encode(), b"outbound-session", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    expires: int


def issue_session(secret: bytes, key_id: str, now: float | None = None) -> tuple[str, Session]:
    """A signed cookie value for a signed-in key, with a fresh CSRF token."""
    session = Session(key_id, secrets.token_urlsafe(24), int((now or time.time()) + SESSION_SECONDS))
    payload = _b64(json.dumps({"k": session.key_id, "c": session.csrf, "e": session.expires}).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}", session


def read_session(secret: bytes, cookie: str | None, now: float | None = None) -> Session | None:
    """The session of a cookie we signed and that has not expired; None for anything else."""
    if not cookie or "." not in cookie:
        return None
    payload, _, signature = cookie.partition(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["k"]), str(data["c"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > (now or time.time()) else None


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, str(token))
