"""Email replies from an IMAP mailbox (standard library `imaplib`).

Replies to our emails land in the reply-to mailbox; we read it without marking
anything (`BODY.PEEK`, read-only SELECT) and keep our place by UID. The cursor is
`<UIDVALIDITY>:<last UID>`: when the server renumbers the mailbox (new UIDVALIDITY)
reading starts over, which is safe because reply ids are derived from Message-IDs.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime

import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ProviderError

REPLY_COLUMNS = ["reply_id", "send_id", "campaign_id", "touch", "lead_id", "channel", "from_address", "body", "intent",
                 "received_at", "provider", "thread_refs", "message_id"]
_MSGID = re.compile(r"<[^<>\s]+>")
_QUOTE_HEADER = re.compile(r"^\s*(On .{0,200} wrote:|-----Original Message-----|From: .+)$", re.IGNORECASE)


def refs_from(in_reply_to: object, references: object) -> list[str]:
    """Message-IDs an email answers, from its In-Reply-To and References values: In-Reply-To first, then References newest first."""
    refs = _MSGID.findall(str(in_reply_to or ""))
    refs += list(reversed(_MSGID.findall(str(references or ""))))
    return list(dict.fromkeys(refs))


def thread_refs(message: EmailMessage) -> list[str]:
    """Message-IDs this email answers: In-Reply-To first, then References newest first."""
    return refs_from(message.get("In-Reply-To"), message.get("References"))


def html_to_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def reply_text(message: EmailMessage) -> str:
    """The new text of a reply: the plain part, without the quoted message below it."""
    part = message.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if part is not None else ""
    if part is not None and part.get_content_type() == "text/html":
        text = html_to_text(text)
    return new_text(text)


def new_text(text: str) -> str:
    """A reply's own words: everything above the quoted message (`>` lines, "On ... wrote:", a forwarded header)."""
    kept = []
    for line in text.splitlines():
        if line.startswith(">") or _QUOTE_HEADER.match(line):
            break
        kept.append(line)
    return "\n".join(kept).strip() or text.strip()


def _received_at(message: EmailMessage, fallback: datetime) -> datetime:
    try:
        at = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        return fallback
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def parse_reply(raw: bytes, fallback_id: str, now: datetime) -> dict:
    """One RFC 5322 message as a replies row (unattributed), with its thread references."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message_id = str(message.get("Message-ID") or "").strip() or fallback_id
    auto = str(message.get("Auto-Submitted") or "no").lower() != "no"
    return {
        "reply_id": stable_id("rpl", "email", message_id), "send_id": None, "campaign_id": None, "touch": None, "lead_id": None,
        "channel": "email", "from_address": parseaddr(str(message.get("From") or ""))[1].lower(), "body": reply_text(message),
        "intent": "auto_reply" if auto else "unknown", "received_at": _received_at(message, now), "provider": "imap",
        "thread_refs": json.dumps(thread_refs(message)), "message_id": message_id if message_id != fallback_id else None,
    }


class ImapInbox:
    """Reads new messages from one mailbox; never changes flags or deletes anything."""

    name = "imap"

    def __init__(self, host: str, user: str, password: str, port: int = 993, mailbox: str = "INBOX", use_ssl: bool = True,
                 timeout_s: float = 30.0, batch: int = 200):
        self.host, self.port, self.user, self.mailbox = host, port, user, mailbox
        self._password = password
        self.use_ssl = use_ssl
        self.timeout_s = timeout_s
        self.batch = batch

    def __repr__(self) -> str:
        return f"ImapInbox({self.user}@{self.host}:{self.port}/{self.mailbox})"

    def _connect(self) -> imaplib.IMAP4:
        cls = imaplib.IMAP4_SSL if self.use_ssl else imaplib.IMAP4
        conn = cls(self.host, self.port, timeout=self.timeout_s)
        conn.login(self.user, self._password)
        return conn

    def poll(self, cursor: str | None, now: datetime | None = None) -> tuple[pd.DataFrame, str | None]:
        """Messages after `cursor` (at most `batch`), as unattributed replies rows, and the cursor after them."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        validity, last = (cursor.split(":", 1) if cursor else ("", "0"))
        try:
            conn = self._connect()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ProviderError(self.name, "connect", f"{self!r}: {exc}") from exc
        try:
            typ, _ = conn.select(self.mailbox, readonly=True)
            if typ != "OK":
                raise ProviderError(self.name, "select", f"cannot open mailbox {self.mailbox!r}")
            values = conn.response("UIDVALIDITY")[1]  # from the OK [UIDVALIDITY n] line of SELECT
            current = values[0].decode() if values and isinstance(values[0], bytes) else ""
            after = int(last) if validity == current else 0
            typ, data = conn.uid("SEARCH", "UID", f"{after + 1}:*")
            uids = sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > after)[: self.batch]
            rows = []
            for uid in uids:
                typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), None)
                if typ == "OK" and raw:
                    rows.append(parse_reply(raw, f"<{current}.{uid}@{self.host}>", now))
        except imaplib.IMAP4.error as exc:
            raise ProviderError(self.name, "imap", str(exc)) from exc
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
        new_cursor = f"{current}:{uids[-1]}" if uids else (f"{current}:{after}" if current else cursor)
        return pd.DataFrame(rows, columns=REPLY_COLUMNS), new_cursor
