"""Numbers written the national way (`(201) 555-0123`, `07400 123456`, `612 34 56 78`) read without the full parser.

`phonenumbers.parse` spends most of its time on text it must be wary of (letters, extensions, `tel:` URIs, Unicode
digits); a number written as plain ASCII digits and the usual separators needs none of that. Its answer then depends
on the digits alone: the region's country code, with the national prefix (`0`, `1`) taken off when the library
would take it off. Anything the parser treats specially (an international dialling prefix, the country code written
without `+`, a prefix the region rewrites, a leading zero kept in the number) gets None: "ask `phonenumbers.parse`".
The same answers as the parser's are tested on generated numbers (tests/domain/test_import_fast_paths.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata

_NATIONAL_TEXT = re.compile(r"[0-9 ().\-/]+")  # ASCII digits and separators the parser reads as punctuation (no tab: it refuses that)
_DROP = str.maketrans("", "", " ().-/")
_MIN_NSN, _MAX_NSN = 2, 17  # the parser's bounds on a national significant number


class _Rules(NamedTuple):
    country_code: int
    code_text: str
    idd: re.Pattern[str] | None          # the region's international dialling prefix (`011`, `00`)
    prefix: re.Pattern[str] | None       # national prefix for parsing (`0`, `1`), None when the region has none
    rewrites: bool                       # the region has a rule rewriting the prefix (Argentina's, Mexico's, Japan's)
    general: re.Pattern[str] | None      # every number of the region matches this
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]


@lru_cache(maxsize=512)
def _rules(region: str) -> _Rules | None:
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.country_code is None or metadata.general_desc is None or not metadata.general_desc.possible_length:
        return None
    general = metadata.general_desc
    return _Rules(
        country_code=metadata.country_code, code_text=str(metadata.country_code),
        idd=re.compile(metadata.international_prefix) if metadata.international_prefix else None,
        prefix=re.compile(metadata.national_prefix_for_parsing) if metadata.national_prefix_for_parsing else None,
        rewrites=bool(metadata.national_prefix_transform_rule),
        general=re.compile(general.national_number_pattern) if general.national_number_pattern else None,
        lengths=tuple(general.possible_length), local_lengths=tuple(general.possible_length_local_only or ()))


def _viable(rules: _Rules, digits: str) -> bool:
    return rules.general is not None and rules.general.fullmatch(digits) is not None


def _keeps_stripped(rules: _Rules, size: int) -> bool:
    """Whether the parser keeps a number stripped to `size` digits (`_test_number_length` neither too short, local only
    nor an invalid length: possible, or too long)."""
    if size in rules.local_lengths:
        return False
    lowest = rules.lengths[0]
    if lowest == size:
        return True
    if lowest > size:
        return False
    if rules.lengths[-1] < size:
        return True
    return size in rules.lengths[1:]


def national(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """`phonenumbers.parse(text, region)` of a number without its country code, or None when the full parser must decide."""
    if not _NATIONAL_TEXT.fullmatch(text):
        return None
    digits = text.translate(_DROP)
    if not 3 <= len(digits) <= _MAX_NSN:  # two digits alone are read differently from two digits with separators
        return None
    rules = _rules(region)
    if rules is None or digits.startswith(rules.code_text) or (rules.idd is not None and rules.idd.match(digits)):
        return None
    nsn = digits
    if rules.prefix is not None:
        found = rules.prefix.match(digits)
        if found is not None:
            groups = found.groups()
            if rules.rewrites and (not groups or groups[-1] is not None):  # the library rewrites only when the last group took part
                return None
            stripped = digits[found.end():]
            if not (_viable(rules, digits) and not _viable(rules, stripped)) and _keeps_stripped(rules, len(stripped)):
                nsn = stripped
    if len(nsn) < _MIN_NSN or nsn.startswith("0"):  # a leading zero is kept as Italy's is: the parser flags it
        return None
    return phonenumbers.PhoneNumber(country_code=rules.country_code, national_number=int(nsn))
