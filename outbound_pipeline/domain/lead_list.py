"""Read a lead list (CSV or CRM extract) into clean leads and reported rejects.

Every input line ends up in exactly one place: a lead, or a reject with its line
number and reason. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezone

from outbound_pipeline.ids import stable_id

KNOWN = ("first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email")
ALIASES = {
    "firstname": "first_name", "first": "first_name", "given_name": "first_name", "name": "first_name",
    "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
    "e_mail": "email", "email_address": "email", "mail": "email",
    "mobile": "phone", "phone_number": "phone", "mobile_phone": "phone", "whatsapp": "phone", "telephone": "phone",
    "organisation": "company", "organization": "company", "account": "company", "company_name": "company",
    "title": "role", "job_title": "role", "position": "role",
    "country_code": "country", "tz": "timezone", "time_zone": "timezone", "owner": "owner_email", "lead_owner": "owner_email",
}


class LeadListError(ValueError):
    """The file as a whole cannot be read as a lead list (missing, not text, no usable header)."""


@dataclass(frozen=True)
class ImportResult:
    leads: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int


def normalise_header(name: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return ALIASES.get(key, key)


def normalise_phone(raw: str, region: str) -> str:
    """E.164 form of a phone number; raises ValueError with a reason when it is not a real number."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {raw!r} cannot be parsed: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {raw!r} is not a valid number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Normalised address; raises ValueError with the validator's reason (no DNS lookups)."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"email {raw!r} is invalid: {exc}") from exc


# Where a country spans several zones, the one most of its people live in.
MAIN_ZONE = {
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "FR": "Europe/Paris", "GB": "Europe/London", "DE": "Europe/Berlin",
    "IT": "Europe/Rome", "NL": "Europe/Amsterdam", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires", "CL": "America/Santiago", "JP": "Asia/Tokyo", "IN": "Asia/Kolkata",
    "CN": "Asia/Shanghai", "ZA": "Africa/Johannesburg", "NG": "Africa/Lagos", "AU": "Australia/Sydney",
}


def infer_timezone(given: str, phone: str | None, country: str | None = None) -> str | None:
    """The lead's IANA zone: as given when valid, else the phone's zone, else the country's main zone.

    A number whose zone is ambiguous (a US mobile, say) gives no zone rather than a wrong
    one; the campaign's default zone then applies.
    """
    if given:
        try:
            ZoneInfo(given)
            return given
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if phone:
        zones = [z for z in phone_timezone.time_zones_for_number(phonenumbers.parse(phone)) if z != "Etc/Unknown"]
        if len(zones) == 1:
            return zones[0]
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        main_zone = MAIN_ZONE.get(region or "")
        if main_zone in zones:
            return main_zone
        if zones:
            return None
    return MAIN_ZONE.get(country or "")


def _read_rows(text: str) -> tuple[list[str], list[tuple[int, list[str] | None, str | None]]]:
    """(header, [(line_number, fields or None, error)]) keeping physical line numbers."""
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadListError("the file is empty: expected a header line") from None
    except csv.Error as exc:
        raise LeadListError(f"line 1: the header is not valid CSV: {exc}") from None
    rows: list[tuple[int, list[str] | None, str | None]] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append((start, None, f"malformed CSV: {exc}"))
            break  # the reader cannot resynchronise after a broken quote; the rest is in this reject
        if not any(f.strip() for f in fields):
            continue  # blank line, nothing to import or report
        rows.append((start, fields, None))
    return header, rows


def import_lead_list(path: str | Path, default_region: str = "US", imported_at: datetime | None = None) -> ImportResult:
    """Parse, validate and de-duplicate a lead list. Raises LeadListError only for whole-file problems."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LeadListError(f"lead list {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise LeadListError(f"lead list {path} is not UTF-8 text (byte {exc.start}); export it as UTF-8 CSV") from None
    raw_header, rows = _read_rows(text)
    header = [normalise_header(h) for h in raw_header]
    if "first_name" not in header or not ({"email", "phone"} & set(header)):
        raise LeadListError(f"lead list {path}: header needs first_name and email or phone; found {', '.join(raw_header)}")
    imported_at = imported_at or datetime.now().replace(microsecond=0)
    source = path.name
    leads: list[dict] = []
    rejects: list[dict] = []
    seen: dict[str, int] = {}

    def reject(line: int, reason: str, raw: object) -> None:
        rejects.append({"source_list": source, "line_number": line, "reason": reason, "raw": json.dumps(raw, ensure_ascii=False), "imported_at": imported_at})

    for line, fields, error in rows:
        if fields is None:
            reject(line, error or "malformed CSV", text.splitlines()[line - 1 :][:3])
            continue
        if len(fields) != len(header):
            reject(line, f"expected {len(header)} fields, found {len(fields)}", fields)
            continue
        record = {k: v.strip() for k, v in zip(header, fields, strict=True)}
        problems = []
        if not record.get("first_name"):
            problems.append("first_name is empty")
        email = phone = None
        if record.get("email"):
            try:
                email = normalise_email(record["email"])
            except ValueError as exc:
                problems.append(str(exc))
        country = (record.get("country") or default_region).upper()
        if record.get("phone"):
            try:
                phone = normalise_phone(record["phone"], country if len(country) == 2 else default_region)
            except ValueError as exc:
                problems.append(str(exc))
        if not problems and not email and not phone:
            problems.append("no email and no phone: the lead cannot be reached")
        if problems:
            reject(line, "; ".join(problems), record)
            continue
        identity = (email or "").lower() or phone
        duplicate_of = seen.get(f"e:{email.lower()}" if email else "") or seen.get(f"p:{phone}" if phone else "")
        if duplicate_of:
            reject(line, f"duplicate of line {duplicate_of} (same {'email' if email and seen.get('e:' + email.lower()) else 'phone'})", record)
            continue
        if email:
            seen[f"e:{email.lower()}"] = line
        if phone:
            seen[f"p:{phone}"] = line
        custom = {k: v for k, v in record.items() if k not in KNOWN and v != ""}
        leads.append({
            "lead_id": stable_id("lead", identity),
            "source_list": source,
            "source_line": line,
            "first_name": record["first_name"],
            "last_name": record.get("last_name") or None,
            "email": email,
            "phone": phone,
            "company": record.get("company") or None,
            "role": record.get("role") or None,
            "country": country if len(country) == 2 else None,
            "timezone": infer_timezone(record.get("timezone", ""), phone, country if len(country) == 2 else None),
            "owner_email": record.get("owner_email") or None,
            "custom_vars": json.dumps(custom, ensure_ascii=False, sort_keys=True),
            "status": "active",
            "status_reason": None,
            "imported_at": imported_at,
        })
    return ImportResult(pd.DataFrame(leads), pd.DataFrame(rejects), lines_read=len(rows))
