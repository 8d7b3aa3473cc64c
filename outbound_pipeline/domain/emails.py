"""Email addresses of a contact file: the validator's normal form, each distinct address once.

Only `email_validator` is imported here, so the import's worker processes can check a file's addresses without
loading pandas (see `PhoneChecker.submit_emails`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=1 << 14)
def _email_domain(domain: str) -> str | None:
    """The validator's normal form of a domain, checked once per distinct domain; None when it refuses it."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def normalise_email(raw: str) -> str:
    """Normalised address; raises ValueError with the validator's reason (no DNS lookups).

    The common address (a plain ASCII local part) is checked with one pattern and its domain once per distinct
    domain; anything else, and every refusal, goes through the full validator, which gives the reason.
    """
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 254 and _DOT_ATOM.fullmatch(local):
        normal = _email_domain(domain)
        if normal is not None:
            return f"{local}@{normal}"
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"email {raw!r} is invalid: {exc}") from exc


# What the importer needs of one address: (normal form, None), or (None, the reason it is refused).
EmailChecked = tuple[str | None, str | None]


def check_email(raw: str) -> EmailChecked:
    """`normalise_email` as plain values a worker process can send back; (None, None) for an empty value."""
    if not raw:
        return None, None
    try:
        return normalise_email(raw), None
    except ValueError as exc:
        return None, str(exc)


def check_emails(values: list[str]) -> list[EmailChecked]:
    return [check_email(value) for value in values]
