"""Phone checks of an import: the country-code fast path and the parallel checker give the full parser's answers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from outbound_pipeline.domain import phones
from outbound_pipeline.domain.phones import PhoneChecker, check_phone, international, phone_zone

REGIONS = ["US", "GB", "ES", "DE", "IT", "FR", "MX", "BR", "AR", "JP", "IN", "AU", "NG", "ZA", "CN", "NL"]


def _written(rng: random.Random) -> str:
    """A number as people write it: a real country code (sometimes), national digits, spaces, dashes, brackets, `+` or `00`."""
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    code = str(rng.choice(codes))
    national = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 13)))
    if rng.random() < 0.3:  # a real number of a region, the way its example numbers look
        example = phonenumbers.example_number_for_type(rng.choice(REGIONS), rng.choice([0, 1, 2]))
        if example is not None:
            code, national = str(example.country_code), str(example.national_number)
            if rng.random() < 0.5:
                national = national[:-3] + "".join(rng.choice("0123456789") for _ in range(3))
    digits = code + national
    cut = sorted(rng.sample(range(1, len(digits)), k=min(3, len(digits) - 1)))
    parts = [digits[i:j] for i, j in zip([0, *cut], [*cut, len(digits)], strict=True)]
    text = rng.choice([" ", "-", ".", "", " / "]).join(parts)
    if rng.random() < 0.2:
        text = f"{text[:len(code)]} ({text[len(code):len(code) + 3]}) {text[len(code) + 3:]}"
    return rng.choice(["+", "00", "+ ", ""]) + text


def _checked_by_full_parser(number: phonenumbers.PhoneNumber) -> object:
    """What `check_phone` must answer, from `phonenumbers`' own calls (its zone lookup works out the type a second time)."""
    if not phonenumbers.is_possible_number(number):
        return "impossible"
    decided, zone = phone_zone(number)
    return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), phonenumbers.is_valid_number(number), decided, zone)


def test_the_country_code_fast_path_reads_every_number_as_the_full_parser_does():
    rng = random.Random(17)
    taken = 0
    for _ in range(30_000):
        text = _written(rng)
        fast = international(text)
        if fast is None:
            continue
        taken += 1
        full = phonenumbers.parse("+" + text.strip()[2:] if text.strip().startswith("00") else text, rng.choice(REGIONS))
        assert fast == full, text
        checked = check_phone(text, "US")
        assert (checked if isinstance(checked, tuple) else "impossible") == _checked_by_full_parser(full), text
    assert taken > 10_000  # the fast path was exercised, not skipped


@pytest.mark.parametrize("workers", [1, 2])
def test_national_numbers_checked_in_parallel_match_the_checks_made_one_by_one(monkeypatch: pytest.MonkeyPatch, workers: int):
    rng = random.Random(5)
    pairs = []
    for _ in range(3_000):
        region = rng.choice(REGIONS)
        example = phonenumbers.example_number_for_type(region, rng.choice([0, 1]))
        national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL) if example else "12345"
        varied = "".join(rng.choice("0123456789") if ch.isdigit() and i > len(national) - 4 else ch for i, ch in enumerate(national))
        pairs.append((rng.choice([varied, national, "not a phone", "+1 555 0100"]), region))
    monkeypatch.setattr(phones, "PARALLEL_FROM", 100)
    monkeypatch.setattr(phones, "CHUNK", 250)
    with PhoneChecker(workers=workers) as checker:
        parallel = checker.check(pairs)
        assert checker._pool is not None  # the work went to worker processes
    assert parallel == [check_phone(raw, region) for raw, region in pairs]
    assert any(isinstance(c, str) for c in parallel) and any(isinstance(c, tuple) and c[1] for c in parallel)


def test_with_no_worker_the_numbers_are_checked_in_the_calling_process(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(phones, "PARALLEL_FROM", 1)
    with PhoneChecker(workers=0) as checker:
        assert checker.check([("+34 612 345 678", "ES")]) == [check_phone("+34 612 345 678", "ES")]
        assert checker._pool is None
