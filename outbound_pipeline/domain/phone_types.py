"""`phonenumbers.number_type` with one regular expression per region and number length.

The library tests a number against each of its region's number types in turn (premium rate, toll free, ...,
fixed line, mobile), a length check and a pattern match each, so a number costs a dozen Python calls, twice for a
country code that several regions share (the region is found by typing the number). Here the types whose lengths
admit the number are joined, in the library's order, into one pattern whose first matching alternative names the
type: the same answer (tested against the library on generated numbers), a few regex calls instead of dozens.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

# The library's order of tests (`_number_type_helper`); fixed line and mobile come last and are special-cased.
_ORDER = (("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
          ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
          ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER), ("uan", PhoneNumberType.UAN),
          ("voicemail", PhoneNumberType.VOICEMAIL), ("fixed_line", PhoneNumberType.FIXED_LINE), ("mobile", PhoneNumberType.MOBILE))
_KIND = dict(_ORDER)
UNKNOWN = PhoneNumberType.UNKNOWN


def _pattern(desc: object, length: int) -> str | None:
    """The desc's pattern when a number of `length` digits can match it (`_is_number_matching_desc`), else None."""
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    lengths = getattr(desc, "possible_length", ()) or ()
    if not pattern or (lengths and length not in lengths):
        return None
    return str(pattern)


class _Typer:
    """The compiled tests of one region's metadata for numbers of one length."""

    __slots__ = ("general", "types", "mobile_too", "same_pattern")

    def __init__(self, metadata: PhoneMetadata, length: int) -> None:
        general = _pattern(metadata.general_desc, length)
        self.general = re.compile(general) if general else None
        self.same_pattern = bool(metadata.same_mobile_and_fixed_line_pattern)
        parts = []
        for name, _ in _ORDER:
            if name == "mobile" and self.same_pattern:
                continue  # the library tests mobile on its own only when its pattern differs from fixed line's
            pattern = _pattern(getattr(metadata, name), length)
            if pattern:
                parts.append(f"(?P<{name}>{pattern})")
        self.types = re.compile("|".join(parts)) if parts else None
        mobile = _pattern(metadata.mobile, length)
        self.mobile_too = re.compile(mobile) if mobile else None  # a fixed-line number matching mobile too

    def kind(self, nsn: str) -> int:
        if self.general is None or self.types is None or not self.general.fullmatch(nsn):
            return UNKNOWN
        found = self.types.fullmatch(nsn)  # alternatives are tried in order: the first type that matches whole wins
        if found is None:
            return UNKNOWN
        kind = _KIND[str(found.lastgroup)]
        if kind == PhoneNumberType.FIXED_LINE and (self.same_pattern or (self.mobile_too is not None and self.mobile_too.fullmatch(nsn))):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return kind


@lru_cache(maxsize=8192)
def _typer(region: str, country_code: int, length: int) -> _Typer | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    return None if metadata is None else _Typer(metadata, length)


@lru_cache(maxsize=1024)
def _picker(region: str) -> tuple[bool, re.Pattern[str] | None]:
    """(has metadata, the leading digits that pick `region` among those sharing its country code or None: type the number)."""
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None:
        return False, None
    return True, re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None


def kind_in(nsn: str, region: str, country_code: int) -> int:
    """`_number_type_helper(nsn, metadata of region)`: the number's type in that region, UNKNOWN when it is none of them."""
    typer = _typer(region, country_code, len(nsn))
    return UNKNOWN if typer is None else typer.kind(nsn)


def region_and_kind(number: phonenumbers.PhoneNumber) -> tuple[str | None, int]:
    """(`region_code_for_number`, `number_type`) of a number, typing it once where the library types it twice."""
    country_code = number.country_code or 0
    nsn = phonenumbers.national_significant_number(number)
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None:
        return None, UNKNOWN
    if len(regions) == 1:
        return regions[0], kind_in(nsn, regions[0], country_code)
    for region in regions:  # `_region_code_for_number_from_list`
        known, leading = _picker(region)
        if not known:
            continue
        if leading is not None:
            if leading.match(nsn):
                return region, kind_in(nsn, region, country_code)
            continue
        kind = kind_in(nsn, region, country_code)
        if kind != UNKNOWN:
            return region, kind
    return None, UNKNOWN


def number_kind(number: phonenumbers.PhoneNumber) -> int:
    """`phonenumbers.number_type(number)`, faster."""
    return region_and_kind(number)[1]


@lru_cache(maxsize=1024)
def _lengths(country_code: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(possible lengths, local-only lengths) of the national numbers of a country code's main region, None for an unknown code."""
    if country_code not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, phonenumbers.region_code_for_country_code(country_code))
    if metadata is None or metadata.general_desc is None:
        return None
    general = metadata.general_desc
    return tuple(general.possible_length), tuple(general.possible_length_local_only or ())


def is_possible(number: phonenumbers.PhoneNumber) -> bool:
    """`phonenumbers.is_possible_number(number)`: its length is one its country code's numbers have (local-only lengths too)."""
    lengths = _lengths(number.country_code or 0)
    if lengths is None:
        return False
    possible, local = lengths
    size = len(phonenumbers.national_significant_number(number))
    if size in local:
        return True
    if possible[0] == size:
        return True
    if possible[0] > size or possible[-1] < size:
        return False
    return size in possible[1:]
