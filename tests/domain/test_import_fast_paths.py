"""The import's fast paths (plain addresses, numbers written with or without their country code, number types) agree with
the full parsers."""

from __future__ import annotations

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from outbound_pipeline.domain.lead_list import infer_timezone, normalise_email, parse_phone
from outbound_pipeline.domain.phone_national import national
from outbound_pipeline.domain.phone_types import is_possible, region_and_kind
from outbound_pipeline.domain.phones import international

EMAILS = ["Ana.Lopez@Example.COM", " ana@nimbusharbor.example ", "a@b", "bad@@x.com", "a..b@x.com", "ünï@x.com", "A@BÜCHER.ch",
          "q@localhost", "z@x.test", "long" + "a" * 70 + "@x.com", "o'brien+tag@mail.example.org", "x@-bad-.com"]
PHONES = ["+44 (0) 20 7946 0958", "+39 06 6982 0000", "0039 06 69820000", "+1 1 212 555 0100", "+1 415 555 2671", "+34612345678",
          "+7 912 345 67 89", "+352 621 123 456", "+34-612-34-56-78", "+1 (555) 0100", "+999 1234 5678", "+880 1712 345678",
          "+44 7911 123456", "+61 412 345 678", "+55 11 91234 5678", "0044 7911 123456", "+49 1512 3456789", "+81 90-1234-5678",
          # written without the country code: national prefixes, the code without +, IDD prefixes, extensions, odd lengths
          "(201) 555-0123", "201.555.0123", "1 (201) 555-0123", "1-201-555-0123", "555 0100", "07400 123456", "020 7946 0958",
          "06 6982 0000", "612 34 56 78", "91 123 45 67", "011 44 7911 123456", "0044 20 7946 0958", "44 7911 123456",
          "212-555-0100 ext 12", "212 555 0100 x3", "12", "123", "1234567", "0800 123 4567", "(0) 7911 123456",
          "0039 06 69820000", "39 06 6982 0000", "7911 123456 / 7911 654321", "0 0 44 7911 123456", "201\t555 0123",
          "090-1234-5678", "(11) 96123-4567", "222 123 4567", "912 345 678", "01512 3456789", "+1 212 555 0100 ; 5"]


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


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
          phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.UAN]


@st.composite
def _written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(text, region): a region's example number, perhaps with a prefix, a few digits changed, cut or lengthened, and separators."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES))) or phonenumbers.example_number(region)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    digits = str(example.national_number) if example is not None else draw(st.from_regex(r"[0-9]{3,12}", fullmatch=True))
    prefix = draw(st.sampled_from(["", "", metadata.national_prefix or "", "0", "1", str(metadata.country_code), "00", "011", "8"]))
    digits = list(prefix + digits)
    for _ in range(draw(st.integers(0, 3))):
        digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
    digits = digits[:draw(st.integers(1, len(digits)))] + list(draw(st.from_regex(r"[0-9]{0,3}", fullmatch=True)))
    separators = draw(st.lists(st.sampled_from(["", "", "", " ", "-", ".", "(", ")", "/"]), min_size=len(digits), max_size=len(digits)))
    return "".join(d + s for d, s in zip(digits, separators, strict=True)).strip(), region


@settings(max_examples=3000, deadline=None)
@given(_written_numbers())
def test_national_fast_path_gives_the_parsers_number(written):
    text, region = written
    ours = national(text, region)
    if ours is None:
        return  # the full parser decides
    assert ours == phonenumbers.parse(text, region)


@st.composite
def _numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    """A region's example number with digits changed and its length moved by one or two, or any digits under any code."""
    if draw(st.integers(0, 9)) == 0:
        code = draw(st.sampled_from([0, 1, 7, 44, 800, 808, 870, 882, 979, 999, *phonenumbers.COUNTRY_CODE_TO_REGION_CODE]))
        return phonenumbers.PhoneNumber(country_code=code, national_number=draw(st.integers(1, 10**13)))
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES))) or phonenumbers.example_number(region)
    if example is None:
        return phonenumbers.PhoneNumber(country_code=1, national_number=draw(st.integers(1, 10**10)))
    digits = list(str(example.national_number))
    for _ in range(draw(st.integers(0, 4))):
        digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
    digits = digits[:len(digits) - draw(st.integers(0, 2))] + list(draw(st.from_regex(r"[0-9]{0,2}", fullmatch=True)))
    number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int("".join(digits) or "0"))
    if draw(st.booleans()) and draw(st.booleans()):
        number.italian_leading_zero = True
        number.number_of_leading_zeros = draw(st.sampled_from([None, 1, 2]))
    return number


@settings(max_examples=5000, deadline=None)
@given(_numbers())
def test_number_types_and_lengths_are_the_librarys(number):
    assert region_and_kind(number) == (phonenumbers.region_code_for_number(number), phonenumbers.number_type(number))
    assert is_possible(number) == phonenumbers.is_possible_number(number)
    if number.national_number:
        assert f"+{number.country_code}{phonenumbers.national_significant_number(number)}" == phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("raw", ["(201) 555-0123", "07400 123456", "612 34 56 78", "090-1234-5678", "01512 3456789", "(11) 96123-4567"])
def test_national_fast_path_answers_the_common_national_forms(raw):
    region = {"(": "US", "07": "GB", "61": "ES", "09": "JP", "01": "DE"}.get(raw[:2], "US") if not raw.startswith("(11)") else "BR"
    assert national(raw, region) == phonenumbers.parse(raw, region)


@st.composite
def _international_numbers(draw: st.DrawFn) -> str:
    """A country code's example number, written with `+` or `00`, perhaps with a trunk digit after the code, digits changed, cut
    or lengthened, and separators."""
    code = draw(st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)))
    region = phonenumbers.region_code_for_country_code(code)
    example = phonenumbers.example_number_for_non_geo_entity(code) if region == "001" else phonenumbers.example_number(region)
    digits = list(draw(st.sampled_from(["", "", "0", "1", "9"])) + (str(example.national_number) if example is not None else "12345678"))
    for _ in range(draw(st.integers(0, 3))):
        digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
    digits = digits[:draw(st.integers(1, len(digits)))] + list(draw(st.from_regex(r"[0-9]{0,3}", fullmatch=True)))
    separators = draw(st.lists(st.sampled_from(["", "", " ", "-", ".", "(", ")"]), min_size=len(digits), max_size=len(digits)))
    return f"{draw(st.sampled_from(['+', '00']))}{code} " + "".join(d + s for d, s in zip(digits, separators, strict=True)).strip()


@settings(max_examples=3000, deadline=None)
@given(_international_numbers())
def test_international_fast_path_gives_the_parsers_number(text):
    ours = international(text)
    if ours is None:
        return  # the full parser decides
    assert ours == phonenumbers.parse("+" + text[2:] if text.startswith("00") else text, "US")
