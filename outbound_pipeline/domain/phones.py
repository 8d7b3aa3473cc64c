"""Phone numbers of a contact file: E.164, whether `phonenumbers` knows them as assigned, and their time zone.

Checking a number costs tens of microseconds (parsing, then matching it against its region's number types), so
an import checks each distinct (number, region) once, and a large file's distinct numbers in parallel across
cores (`check_phones`). Only `phonenumbers` is imported here, so worker processes start quickly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phone_timezone

from outbound_pipeline.domain.phone_national import national
from outbound_pipeline.domain.phone_types import is_possible, region_and_kind

phonenumbers.enable_pattern_cache()  # keep the metadata's compiled patterns rather than look them up in `re`'s cache per call
_SEPARATORS = re.compile(r"[\s().\-/]")
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=512)
def _national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The pattern `phonenumbers.parse` strips or rewrites at the start of a national number of this country code
    even after the country code (Madagascar's `20`, Argentina's mobile `9`), None when there is none."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None

# Where a country spans several zones, the one most of its people live in.
MAIN_ZONE = {
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "FR": "Europe/Paris", "GB": "Europe/London", "DE": "Europe/Berlin",
    "IT": "Europe/Rome", "NL": "Europe/Amsterdam", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires", "CL": "America/Santiago", "JP": "Asia/Tokyo", "IN": "Asia/Kolkata",
    "CN": "Asia/Shanghai", "ZA": "Africa/Johannesburg", "NG": "Africa/Lagos", "AU": "Australia/Sydney",
}

# Below this many distinct numbers, starting worker processes costs more than it saves.
PARALLEL_FROM = 5_000
CHUNK = 2_000


def international(text: str) -> phonenumbers.PhoneNumber | None:
    """A number written with its country code (`+34 612 34 56 78`, `0034612345678`, E.164) read without the full parser.

    Only plain digits and separators qualify; a national part starting with 0 or 1 (a trunk prefix written after
    the country code, Italy's leading zero) or with what the country's metadata strips or rewrites when parsing
    is left to the full parser: None means "ask `phonenumbers.parse`".
    """
    digits = _SEPARATORS.sub("", text)
    if text.startswith("00"):  # as `parse_number` reads it: `0 0 44...` is no international number
        digits = "+" + digits[2:]
    body = digits[1:]
    if not (digits.startswith("+") and body.isascii() and body.isdigit() and 8 <= len(body) <= 15):
        return None
    for size in (1, 2, 3):
        code = int(body[:size])
        if code in _COUNTRY_CODES:
            national = body[size:]
            if national[:1] in ("0", ""):  # a leading zero: the parser keeps it as Italy's (a flag on the number)
                return None
            prefix = _national_prefix(code)
            if prefix is not None and prefix.match(national):
                return None
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None


def parse_number(raw: str, region: str) -> phonenumbers.PhoneNumber:
    """The number as written (`00` read as `+`), read for `region` when it has no country code; ValueError when unreadable.

    Plain numbers, with their country code or without, are read by the fast paths (`international`, `national`), which
    give the parser's answer or None when the parser must decide."""
    text = raw.strip()
    fast = international(text)
    if fast is not None:
        return fast
    if text.startswith("00"):
        text = "+" + text[2:]
    fast = None if text.startswith("+") else national(text, region)
    if fast is not None:
        return fast
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {raw!r} cannot be parsed: {exc}") from exc


@dataclass(frozen=True)
class Phone:
    e164: str
    valid: bool
    number: phonenumbers.PhoneNumber
    kind: int  # phonenumbers.PhoneNumberType: valid means it is known (not UNKNOWN)
    region: str | None = None  # `phonenumbers.region_code_for_number`, found with the type


@lru_cache(maxsize=1 << 16)
def phone(raw: str, region: str) -> Phone:
    """One written number, once per distinct value and region; its type is worked out once, for validity and time zone."""
    number = parse_number(raw, region)
    if not is_possible(number):  # `phonenumbers.is_possible_number`
        raise ValueError(f"phone {raw!r} is not a possible number for region {region}")
    where, kind = region_and_kind(number)  # `phonenumbers.number_type`, what is_valid_number checks: a known type for the number's region
    e164 = (f"+{number.country_code}{phonenumbers.national_significant_number(number)}" if number.national_number
            else phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))  # E.164 is `+`, the code and the national number
    return Phone(e164, kind != PhoneNumberType.UNKNOWN, number, kind, where)


def _zones(number: phonenumbers.PhoneNumber, kind: int | None) -> list[str]:
    """`phonenumbers.timezone.time_zones_for_number`, with the number's type when it is known already."""
    if kind is None:
        return list(phone_timezone.time_zones_for_number(number))
    if kind == PhoneNumberType.UNKNOWN:
        return []
    if not phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        return list(phone_timezone._country_level_time_zones_for_number(number))
    return list(phone_timezone.time_zones_for_geographical_number(number))


def phone_zone(number: phonenumbers.PhoneNumber, kind: int | None = None, region: str | None = None) -> tuple[bool, str | None]:
    """(decided, zone) from the number: its one zone, its country's main zone among several, or no zone when ambiguous.

    `kind` and `region` are the number's type and region when they are known already (else worked out here)."""
    zones = [z for z in _zones(number, kind) if z != "Etc/Unknown"]
    if len(zones) == 1:
        return True, zones[0]
    if not zones:
        return False, None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0, ())
    if any(r in MAIN_ZONE for r in regions):  # only then does the exact region matter (+1 has no main zone)
        main_zone = MAIN_ZONE.get(region or region_and_kind(number)[0] or "")
        if main_zone in zones:
            return True, main_zone
    return True, None


# What the importer needs of one number: (E.164, valid, zone decided by the number, that zone), or the reason it is refused.
Checked = tuple[str, bool, bool, str | None] | str


def check_phone(raw: str, region: str) -> Checked:
    """`phone` and `phone_zone` of one written number, as plain values a worker process can send back."""
    try:
        found = phone(raw, region)
    except ValueError as exc:
        return str(exc)
    decided, zone = phone_zone(found.number, found.kind, found.region)
    return found.e164, found.valid, decided, zone


def _check_chunk(pairs: list[tuple[str, str]]) -> list[Checked]:
    return [check_phone(raw, region) for raw, region in pairs]


class PhoneChecker:
    """`check_phone` of many numbers, each distinct (number, region) once per call; in worker processes when there
    are enough to pay for starting them. The pool, once started, serves every later call until `close`.

    `workers` is how many worker processes; by default one core fewer than the machine has, since the caller keeps one
    busy reading the file (on two cores one worker keeps up with it, and a second would only take the caller's core).
    With no worker the numbers are checked in the calling process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1) - 1
        self._pool: ProcessPoolExecutor | None = None

    def check(self, pairs: list[tuple[str, str]]) -> list[Checked]:
        """The checks of `pairs`, in order."""
        return self.submit(pairs)()

    def submit(self, pairs: list[tuple[str, str]]) -> Callable[[], list[Checked]]:
        """Start checking `pairs`; the returned call gives their checks in order (waiting for the workers if need be),
        so the caller can read on while the workers check."""
        if self.workers < 1 or len(pairs) < PARALLEL_FROM:
            return lambda: _check_chunk(pairs)
        if self._pool is None:
            # spawn, not fork: the caller may hold threads (DuckDB, Dagster) that a forked child would inherit half-way
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"))
        futures = [self._pool.submit(_check_chunk, pairs[i:i + CHUNK]) for i in range(0, len(pairs), CHUNK)]

        def result() -> list[Checked]:
            try:
                return [checked for future in futures for checked in future.result()]
            except BrokenProcessPool:  # a worker could not start (a script without a `__main__` guard, say): check here instead
                self.close()
                self.workers = 0
                return _check_chunk(pairs)
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> PhoneChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_phones(pairs: list[tuple[str, str]], workers: int | None = None) -> list[Checked]:
    """`check_phone` of each (number, region), in order, in parallel when there are many."""
    with PhoneChecker(workers) as checker:
        return checker.check(pairs)
