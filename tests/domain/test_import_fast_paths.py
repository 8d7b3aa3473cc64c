"""The import's fast paths (plain addresses, numbers written with their country code) agree with the full parsers."""

from __future__ import annotations

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from outbound_pipeline.domain.lead_list import infer_timezone, normalise_email, parse_phone

EMAILS = ["Ana.Lopez@Example.COM", " ana@nimbusharbor.example ", "a@b", "bad@@x.com", "a..b@x.com", "ünï@x.com", "A@BÜCHER.ch",
          "q@localhost", "z@x.test", "long" + "a" * 70 + "@x.com", "o'brien+tag@mail.example.org", "x@-bad-.com"]
PHONES = ["+44 (0) 20 7946 0958", "+39 06 6982 0000", "0039 06 69820000", "+1 1 212 555 0100", "+1 415 555 2671", "+34612345678",
          "+7 912 345 67 89", "+352 621 123 456", "+34-612-34-56-78", "+1 (555) 0100", "+999 1234 5678", "+880 1712 345678",
          "+44 7911 123456", "+61 412 345 678", "+55 11 91234 5678", "0044 7911 123456", "+49 1512 3456789", "+81 90-1234-5678"]


def _full_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return f"email {raw!r} is invalid: {exc}"


@pytest.mark.parametrize("raw", EMAILS)
def test_email_fast_path_gives_the_validators_answer(raw):
    try:
        ours = normalise_email(raw)
    except ValueError as exc:
        ours = str(exc)
    assert ours == _full_email(raw)


def _full_phone(raw: str, region: str) -> tuple[str, bool, str | None] | str:
    text = raw.strip()
    text = "+" + text[2:] if text.startswith("00") else text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return "unparsable"
    if not phonenumbers.is_possible_number(number):
        return "impossible"
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.is_valid_number(number), infer_timezone("", e164, region)


@pytest.mark.parametrize("raw", PHONES)
@pytest.mark.parametrize("region", ["US", "GB", "IT"])
def test_phone_fast_path_gives_the_full_parsers_answer(raw, region):
    try:
        e164, valid = parse_phone(raw, region)
        ours: tuple[str, bool, str | None] | str = (e164, valid, infer_timezone("", phonenumbers.parse(e164), region))
    except ValueError as exc:
        ours = "unparsable" if "cannot be parsed" in str(exc) else "impossible"
    assert ours == _full_phone(raw, region)
