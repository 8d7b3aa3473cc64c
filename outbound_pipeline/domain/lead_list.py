"""Read a contact file (CSV or CRM extract) into clean leads and reported lines.

Every row ends up in exactly one place: imported as a lead (perhaps with a field-level warning),
skipped as a duplicate, or rejected, each with its line number and reason; rows read = imported +
skipped + rejected. A broken line (an unterminated quote, say) is reported on its own and reading goes
on at the next line, so one stray quote never swallows the rest of the file. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import islice
from json.encoder import encode_basestring
from pathlib import Path
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from outbound_pipeline.domain.contact_csv import (
    FORMULA_START,
    FULL_NAME,
    canonical_header,
    decode_lead_file,
    describe_duplicates,
    duplicate_headers,
    looks_like_formula,
    sniff_delimiter,
    split_name,
    with_split_name,
)
from outbound_pipeline.domain.phones import MAIN_ZONE, Phone, PhoneChecker, parse_number, phone, phone_zone
from outbound_pipeline.ids import stable_id

KNOWN = ("first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email")
# What happened to a reported line: imported with a field left out, skipped as a duplicate, or not imported at all.
WARNING, SKIPPED, REJECTED = "warning", "skipped", "rejected"
KINDS = (WARNING, SKIPPED, REJECTED)
T = TypeVar("T")


class LeadListError(ValueError):
    """The file as a whole cannot be read as a lead list (missing, empty, no usable header, a column named twice)."""


@dataclass(frozen=True)
class ImportResult:
    """The leads of a file, its reported lines (`lead_rejects` rows of kind warning, skipped or rejected) and file-level warnings."""

    leads: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int
    warnings: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return 0 if self.rejects.empty else int((self.rejects["kind"] == kind).sum())

    @property
    def imported(self) -> int:
        return len(self.leads)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def rejected(self) -> int:
        return self.count(REJECTED)

    @property
    def warned(self) -> int:
        return self.count(WARNING)

    @property
    def invalid_phones(self) -> int:
        """Imported phones in E.164 form that `phonenumbers` does not know as assigned (fictional 555 numbers, say)."""
        return 0 if self.leads.empty else int((self.leads["phone"].notna() & ~self.leads["phone_valid"].fillna(True).astype(bool)).sum())

    def summary(self) -> dict[str, int]:
        """Rows read, imported, skipped and rejected (read = imported + skipped + rejected), plus warnings and unverified phones."""
        return {"read": self.lines_read, "imported": self.imported, "skipped": self.skipped, "rejected": self.rejected,
                "warnings": self.warned, "phones_not_valid": self.invalid_phones}


def normalise_header(name: str) -> str:
    """The lead field a header names (aliases of sales tools and phone systems), else its own key: a custom variable."""
    return canonical_header(name)


_parse_phone = parse_number
_phone = phone
_Phone = Phone


def parse_phone(raw: str, region: str) -> tuple[str, bool]:
    """(E.164, valid) of a phone number that has a possible length for its region; raises ValueError with a reason otherwise.

    `valid` is whether `phonenumbers` knows the number as assigned: a fictional +1 555 number is possible but not valid,
    so it imports flagged rather than being refused.
    """
    found = _phone(raw, region)
    return found.e164, found.valid


def normalise_phone(raw: str, region: str) -> str:
    """E.164 form of a phone number; raises ValueError with a reason when it is not a real number."""
    number = _parse_phone(raw, region)
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {raw!r} is not a valid number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def infer_timezone(given: str, phone: str | phonenumbers.PhoneNumber | None, country: str | None = None,
                   kind: int | None = None) -> str | None:
    """The lead's IANA zone: as given when valid, else the phone's zone, else the country's main zone.

    A number whose zone is ambiguous (a US mobile, say) gives no zone rather than a wrong
    one; the campaign's default zone then applies. `phone` may be the parsed number (no second parse).
    """
    if given and _known_zone(given):
        return given
    if phone:
        decided, zone = phone_zone(phonenumbers.parse(phone) if isinstance(phone, str) else phone, kind)
        if decided:
            return zone
    return MAIN_ZONE.get(country or "")




_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")


class _LineFeed:
    """The file's physical lines for csv.reader, with a position that can be moved back to resynchronise after a broken line.

    Lines are split off the text as they are asked for, and those before the row being read are let go (`release`),
    so the file is held once, as its text, not a second time as a list of lines. NUL bytes are removed as lines are
    handed out; the lines that had one are remembered for a warning.
    """

    def __init__(self, text: str) -> None:
        self._source = (m.group() for m in _PHYSICAL_LINE.finditer(text))
        self._buffer: list[str] = []
        self._base = 0  # line index of _buffer[0]
        self.pos = 0
        self.nul_lines: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        return self

    def has_more(self) -> bool:
        while self.pos - self._base >= len(self._buffer):
            size = len(self._buffer)
            self._buffer.extend(islice(self._source, 4096))  # lines split off in batches: one call per line costs more
            if len(self._buffer) == size:
                return False
        return True

    def release(self, before: int) -> None:
        """Lines before `before` will not be read again."""
        drop = before - self._base
        if drop > 4096:
            del self._buffer[:drop]
            self._base = before

    def __next__(self) -> str:
        if not self.has_more():
            raise StopIteration
        line = self._buffer[self.pos - self._base]
        self.pos += 1
        if "\x00" in line:
            self.nul_lines.add(self.pos)
            line = line.replace("\x00", "")
        return line


class _Row(NamedTuple):
    line: int                   # physical line the row starts on (the header is line 1)
    fields: list[str] | None    # None: the line could not be read as CSV
    error: str | None = None
    had_nul: bool = False


def read_rows(text: str, delimiter: str = ",") -> tuple[list[str], list[_Row]]:
    """(header, rows) with physical line numbers; blank lines are left out (see `iter_rows`)."""
    header, rows = iter_rows(text, delimiter)
    return header, list(rows)


def iter_rows(text: str, delimiter: str = ",") -> tuple[list[str], Iterator[_Row]]:
    """(header, rows as they are read) with physical line numbers; blank lines are left out.

    A row that cannot be parsed, or a quoted field that runs over several lines and leaves the row with the
    wrong number of fields (an unterminated quote), is reported on its first line, and reading starts again
    on the line after it: one broken quote costs one row, not the rest of the file. A quoted field that spans
    lines and closes properly (a note with a line break) is an ordinary row.
    """
    if not _needs_csv(text):
        return _plain_rows(text.splitlines(), delimiter)
    return _csv_rows(text, delimiter)


def _csv_rows(text: str, delimiter: str) -> tuple[list[str], Iterator[_Row]]:
    """`iter_rows` by the CSV reader, with its recovery after a broken line."""
    feed = _LineFeed(text)
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadListError("the file is empty: expected a header line") from None
    except csv.Error as exc:
        raise LeadListError(f"line 1: the header is not valid CSV: {exc}") from None
    if feed.pos > 1:
        raise LeadListError("line 1: the header has a quote that is not closed on its line; fix the header and import again")
    return header, _rows(feed, reader, len(header))


def _rows(feed: _LineFeed, reader: Iterator[list[str]], width: int) -> Iterator[_Row]:
    while feed.has_more():
        start = feed.pos
        feed.release(start)
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield _Row(start + 1, None, _broken(start + 1, str(exc)))
            feed.pos = start + 1
            continue
        spanned = feed.pos - start
        if spanned > 1 and len(fields) != width:
            yield _Row(start + 1, None, _broken(start + 1, f"a quoted field runs over {spanned} lines and leaves {len(fields)} "
                                                            f"fields instead of {width}"))
            feed.pos = start + 1
            continue
        if not "".join(fields).strip():  # no field holds anything but blanks
            continue
        had_nul = bool(feed.nul_lines) and any(line in feed.nul_lines for line in range(start + 1, feed.pos + 1))
        yield _Row(start + 1, fields, None, had_nul)


# Without a quote (nor a NUL byte, nor a line break `splitlines` knows and the CSV reader does not), every physical line is
# one row whose fields are its text between delimiters: the file is split as it is, with no line-by-line recovery.
_NEEDS_CSV = re.compile('["\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]')


def _needs_csv(text: str) -> bool:
    if text.isascii():  # known without reading it; then a search per character is a memory scan
        return any(char in text for char in '"\x00\x0b\x0c\x1c\x1d\x1e')
    return _NEEDS_CSV.search(text) is not None


def _plain_rows(lines: list[str], delimiter: str) -> tuple[list[str], Iterator[_Row]]:
    """`iter_rows` of a file without quotes: the same header, rows and line numbers, without the CSV reader's per-line feed."""
    if not lines:
        raise LeadListError("the file is empty: expected a header line")
    return _split(lines[0], delimiter), _plain(lines, delimiter)


def _split(line: str, delimiter: str) -> list[str]:
    return line.split(delimiter) if line else []  # the CSV reader reads an empty line as no field at all


def _plain(lines: list[str], delimiter: str) -> Iterator[_Row]:
    limit = csv.field_size_limit()
    for index in range(1, len(lines)):
        line = lines[index]
        lines[index] = ""  # let the line go once read: the file is held as its lines only until each is split
        if len(line) > limit:  # a field may be longer than the CSV reader allows: let it say so, as for any file
            try:
                fields = next(csv.reader([line], delimiter=delimiter, strict=True))
            except csv.Error as exc:
                yield _Row(index + 1, None, _broken(index + 1, str(exc)))
                continue
        else:
            fields = _split(line, delimiter)
        if not fields or (not fields[0].strip() and not "".join(fields).strip()):  # no field holds anything but blanks
            continue
        yield _Row(index + 1, fields)


def _broken(line: int, detail: str) -> str:
    if "unexpected end of data" in detail or "field larger than field limit" in detail:
        detail = "a quote opened on this line is never closed (or a field runs longer than the CSV field limit)"
    return f"malformed CSV on line {line}: {detail}; this line is left out and reading resumes on line {line + 1}"


def read_text(path: Path) -> tuple[str, list[str]]:
    """The file's text and warnings about its encoding; whole-file problems raise LeadListError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LeadListError(f"lead list {path} does not exist") from None
    except IsADirectoryError:
        raise LeadListError(f"lead list {path} is a directory, not a file") from None
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")) and data.count(b"\x00") > len(data[:4096]) // 4:
        raise LeadListError(f"lead list {path} is not a text file (it is mostly NUL bytes); export it as CSV")
    return decode_lead_file(data)


def import_lead_list(path: str | Path, default_region: str = "US", imported_at: datetime | None = None) -> ImportResult:
    """Parse, validate and de-duplicate a contact file. Raises LeadListError only for whole-file problems.

    Encodings other than UTF-8 and semicolon- or tab-separated files are read, with a file-level warning.
    """
    path = Path(path)
    text, warnings = read_text(path)
    delimiter = sniff_delimiter(text[:65536])
    if delimiter != ",":
        warnings.append(f"the file is {'semicolon' if delimiter == ';' else 'tab'}-separated; read with that delimiter")
    raw_header, rows = iter_rows(text, delimiter)
    del text  # the rows hold what they need of it
    duplicates = duplicate_headers(raw_header)
    if duplicates:
        raise LeadListError(f"lead list {path.name}: {describe_duplicates(duplicates)}; rename or remove one of each and import again")
    header = [normalise_header(h) for h in raw_header]
    if not ({"first_name", FULL_NAME} & set(header)) or not ({"email", "phone"} & set(header)):
        raise LeadListError(f"lead list {path}: header needs a name (first_name or name) and email or phone; found {', '.join(raw_header)}")
    return _LeadReader(path.name, default_region, imported_at or datetime.now().replace(microsecond=0), warnings).read(header, rows)


# A value of a column joined with NUL (no field holds one: they are removed as lines are read) starting like a formula.
_STARTS_LIKE_FORMULA = re.compile("\x00[" + re.escape("".join(FORMULA_START)) + "]")  # no `\A`: the search then stops at NULs only
CHUNK_ROWS = 20_000  # rows checked together: memory stays bounded while the work per distinct value is shared
_LEAD_COLUMNS = ("lead_id", "source_list", "source_line", "first_name", "last_name", "email", "phone", "company", "role",
                 "country", "timezone", "owner_email", "custom_vars", "status", "status_reason", "imported_at", "phone_valid")


class _LeadReader:
    """Turns parsed rows into leads and reported lines; one instance per file.

    Rows are read in chunks and checked column by column: each distinct email, name and (phone, region) of a chunk
    is checked once (phones across cores when there are many), and only the few reported rows are rebuilt as records.
    """

    def __init__(self, source: str, default_region: str, imported_at: datetime, warnings: list[str]) -> None:
        self.source, self.default_region, self.imported_at, self.warnings = source, default_region, imported_at, warnings
        self.leads: dict[str, list] = {key: [] for key in _LEAD_COLUMNS}  # column -> values: no dict per lead is kept
        self.reports: list[dict] = []
        self.seen_email: dict[str, int] = {}
        self.seen_phone: dict[str, int] = {}
        self.phones = PhoneChecker()
        self.shared: dict[str, str] = {}  # one string object per distinct company, role, name...: a million rows share them

    def report(self, line: int, kind: str, reasons: list[str], raw: object) -> None:
        self.reports.append({"source_list": self.source, "line_number": line, "reason": "; ".join(reasons), "kind": kind,
                             "raw": json.dumps(raw, ensure_ascii=False), "imported_at": self.imported_at})

    def read(self, header: list[str], rows: Iterable[_Row]) -> ImportResult:
        collecting = gc.isenabled()
        gc.disable()  # millions of new strings and lists, none cyclic: the collector would re-walk them again and again
        try:
            return self._read(header, rows)
        finally:
            if collecting:
                gc.enable()

    def _read(self, header: list[str], rows: Iterable[_Row]) -> ImportResult:
        read = 0
        width = len(header)
        fields_of: list[list[str]] = []
        lines: list[int] = []
        nuls: list[int] = []
        finish: Callable[[], None] | None = None
        with self.phones:
            for row in rows:
                read += 1
                fields = row.fields
                if fields is None:
                    self.report(row.line, REJECTED, [row.error or "malformed CSV"], {"line": row.line})
                    continue
                if len(fields) != width:
                    if len(fields) > width and not any(f.strip() for f in fields[width:]):
                        fields = fields[:width]  # trailing empty cells a spreadsheet added
                    else:
                        self.report(row.line, REJECTED, [f"expected {width} fields, found {len(fields)}"], fields)
                        continue
                if row.had_nul:
                    nuls.append(len(lines))
                fields_of.append(fields)
                lines.append(row.line)
                if len(lines) >= CHUNK_ROWS:
                    finish = self.chunk(header, fields_of, lines, nuls, finish)
                    fields_of, lines, nuls = [], [], []
            if lines:
                finish = self.chunk(header, fields_of, lines, nuls, finish)
            if finish is not None:
                finish()
        self.reports.sort(key=lambda r: r["line_number"])  # one report per line; chunks report phase by phase
        if self.warnings:
            self.report(1, WARNING, self.warnings, {"file": self.source})
        count = len(self.leads["lead_id"])
        leads = pd.DataFrame(index=pd.RangeIndex(count))
        if count:
            for key in _LEAD_COLUMNS:  # column by column, each list let go once converted: the leads are held once
                leads[key] = self.leads.pop(key)
            leads["phone_valid"] = leads["phone_valid"].astype("boolean")
        rejects = pd.DataFrame(self.reports, columns=["source_list", "line_number", "reason", "kind", "raw", "imported_at"])
        return ImportResult(leads, rejects, lines_read=read, warnings=list(self.warnings))

    def chunk(self, header: list[str], fields_of: list[list[str]], lines: list[int], nuls: list[int],
              previous: Callable[[], None] | None) -> Callable[[], None]:
        """Check a chunk of well-formed rows column by column; the returned call (made once its phones are checked, in file
        order) reports, de-duplicates and keeps its leads. The workers check this chunk's phones while the next is read."""
        cols: dict[str, list[str]] = {}
        n = len(lines)
        notes: dict[int, list[str]] = {i: ["a NUL byte was removed from the row"] for i in nuls}
        for key, values in zip(header, zip(*fields_of, strict=True), strict=True):
            col = cols[key] = list(map(str.strip, values))
            if not _STARTS_LIKE_FORMULA.search("\x00" + "\x00".join(col)):  # one scan of the column; most hold no such value
                continue
            for i in [i for i, value in enumerate(col) if value.startswith(FORMULA_START)]:
                value = col[i]
                if looks_like_formula(value):
                    notes.setdefault(i, []).append(f"{key} {value[:40]!r} looks like a spreadsheet formula and was left out")
                    col[i] = ""
        del fields_of
        empty = [""] * n

        def record(i: int) -> dict[str, str]:
            return with_split_name({key: col[i] for key, col in cols.items()})

        first, last = self._names(cols, n)
        keep = [i for i in range(n) if first[i]]
        if len(keep) < n:
            for i in range(n):
                if not first[i]:
                    self.report(lines[i], REJECTED, ["first_name is empty", *notes.get(i, [])], record(i))
        countries = [(c or self.default_region).upper() for c in cols.get("country", empty)]
        regions = [c if len(c) == 2 else self.default_region for c in countries]

        emails = cols.get("email", empty)
        email_of = {value: _checked(normalise_email, value) for value in {emails[i] for i in keep}}
        phones = cols.get("phone", empty)
        pairs = list({(phones[i], regions[i]) for i in keep if phones[i]})
        pending = self.phones.submit(pairs)
        if previous is not None:
            previous()  # the chunk before, whose phones were checked while this one was read

        def finish() -> None:
            phone_of = dict(zip(pairs, pending(), strict=True))
            share = self.shared.setdefault

            given_zones = cols.get("timezone", empty)
            known_zone = {given: bool(given) and _known_zone(given) for given in set(given_zones)}
            out = self.leads
            line_out, first_out, last_out, email_out, phone_out, valid_out, country_out, zone_out, id_out = (
                out["source_line"], out["first_name"], out["last_name"], out["email"], out["phone"], out["phone_valid"],
                out["country"], out["timezone"], out["lead_id"])
            seen_email, seen_phone = self.seen_email, self.seen_phone
            sha1 = hashlib.sha1
            kept: list[int] = []
            for i in keep:
                line = lines[i]
                email, email_problem = email_of[emails[i]] if emails[i] else (None, None)
                checked = phone_of[(phones[i], regions[i])] if phones[i] else None
                phone_problem = checked if isinstance(checked, str) else None
                parts = checked if isinstance(checked, tuple) else None
                row_notes = notes.get(i)
                if email is None and parts is None:
                    problems = [p for p in (email_problem, phone_problem) if p]
                    self.report(line, REJECTED, (problems or ["no email and no phone: the lead cannot be reached"]) + (row_notes or []),
                                record(i))
                    continue
                if email_problem or phone_problem:
                    problem = email_problem or phone_problem
                    row_notes = [f"{problem}: the lead is kept with its {'phone' if email_problem else 'email'}", *(row_notes or [])]
                e164 = parts[0] if parts else None
                email_key = email.lower() if email else None
                if email_key == email:
                    email_key = email  # the address itself, not a second copy of it
                by_email = seen_email.get(email_key) if email_key else None
                by_phone = seen_phone.get(e164) if e164 else None
                if by_email or by_phone:  # `duplicate_of`, inline: it runs for every row
                    duplicate = f"duplicate of line {by_email} (same email)" if by_email else f"duplicate of line {by_phone} (same phone)"
                    self.report(line, SKIPPED, [duplicate, *(row_notes or [])], record(i))
                    continue
                if email_key:
                    seen_email[email_key] = line
                if e164:
                    seen_phone[e164] = line
                if row_notes:
                    self.report(line, WARNING, row_notes, record(i))
                country = countries[i]
                region = country if len(country) == 2 else None
                given = given_zones[i]
                zone: str | None
                if known_zone[given]:
                    zone = given
                elif parts and parts[2]:
                    zone = parts[3]
                else:
                    zone = MAIN_ZONE.get(region or "")
                kept.append(i)
                line_out.append(line)
                first_out.append(share(first[i], first[i]))
                last_out.append(share(last[i], last[i]) or None)
                email_out.append(email)
                phone_out.append(e164)
                valid_out.append(parts[1] if parts else None)
                country_out.append(region)
                zone_out.append(share(zone, zone) if zone else zone)
                id_out.append("lead_" + sha1(str(email_key or e164).encode()).hexdigest()[:16])  # `lead_id_for`, inline
            count = len(kept)
            out["source_list"].extend([self.source] * count)
            for key in ("company", "role", "owner_email"):
                col = cols.get(key, empty)
                out[key].extend(share(col[i], col[i]) or None for i in kept)
            out["custom_vars"].extend(self._custom_vars(cols, kept))
            out["status"].extend(["active"] * count)
            out["status_reason"].extend([None] * count)
            out["imported_at"].extend([self.imported_at] * count)
        return finish

    def _names(self, cols: dict[str, list[str]], n: int) -> tuple[list[str], list[str]]:
        """First and last names, split from a full `name` column where the file has no first name (`with_split_name`)."""
        first = cols.get("first_name", [""] * n)
        last = cols.get("last_name", [""] * n)
        full = cols.get(FULL_NAME)
        if full is None:
            return first, last
        first, last = list(first), list(last)
        split: dict[str, tuple[str, str]] = {}
        for i in range(n):
            if first[i]:
                continue
            name = full[i]
            parts = split.get(name)
            if parts is None:
                parts = split[name] = split_name(name)
            first[i] = parts[0]
            if not last[i]:
                last[i] = parts[1]
            full[i] = ""  # the full name became first and last name: it is no custom variable
        return first, last

    @staticmethod
    def _custom_vars(cols: dict[str, list[str]], kept: list[int]) -> list[str]:
        """`json.dumps(custom, ensure_ascii=False, sort_keys=True)` of each kept row's non-empty other columns, column-wise."""
        keys = sorted(key for key in cols if key not in KNOWN)
        if not keys:
            return ["{}"] * len(kept)
        pieces = []
        for key in keys:
            col = cols[key]
            prefix = encode_basestring(key) + ": "
            pieces.append([prefix + encode_basestring(col[i]) if col[i] else "" for i in kept])
        return ["{" + ", ".join(filter(None, row)) + "}" for row in zip(*pieces, strict=True)]


def lead_id_for(email: str | None, phone: str | None) -> str:
    """A contact's stable id: from its email (case-insensitive) when it has one, else from its phone."""
    return stable_id("lead", (email or "").lower() or phone)


def _checked(parse: Callable[[str], T], raw: str) -> tuple[T | None, str | None]:
    """(parsed, None), (None, reason) when `parse` refuses the value, (None, None) for an empty value."""
    if not raw:
        return None, None
    try:
        return parse(raw), None
    except ValueError as exc:
        return None, str(exc)


def skip_list_duplicates(result: ImportResult, list_name: str, members: pd.DataFrame) -> ImportResult:
    """The result with leads already in the list (same contact, email or phone, from another file) moved to skipped lines.

    `members` has the list's current contacts from other files: lead_id, email, phone, source_file, line.
    """
    if result.leads.empty or members.empty:
        return result
    where: dict[str, str] = {}
    for member in members.itertuples(index=False):
        origin = f"{member.source_file} line {member.line}"
        where.setdefault(f"id:{member.lead_id}", f"already in list {list_name!r} ({origin})")
        if isinstance(member.email, str):
            where.setdefault(f"e:{member.email.lower()}", f"already in list {list_name!r} with the same email ({origin})")
        if isinstance(member.phone, str):
            where.setdefault(f"p:{member.phone}", f"already in list {list_name!r} with the same phone ({origin})")
    reasons: dict[int, str] = {}
    for lead in result.leads.itertuples(index=False):
        keys = [f"id:{lead.lead_id}"] + ([f"e:{lead.email.lower()}"] if isinstance(lead.email, str) else []) + (
            [f"p:{lead.phone}"] if isinstance(lead.phone, str) else [])
        found = next((where[k] for k in keys if k in where), None)
        if found:
            reasons[int(str(lead.source_line))] = found
    if not reasons:
        return result
    leads = result.leads[~result.leads["source_line"].isin(list(reasons))].reset_index(drop=True)
    skipped_rows = result.leads[result.leads["source_line"].isin(list(reasons))]
    rejects = result.rejects.copy()
    earlier = rejects[rejects["line_number"].isin(list(reasons)) & (rejects["kind"] == WARNING)].set_index("line_number")["reason"]
    rejects = rejects[~(rejects["line_number"].isin(list(reasons)) & (rejects["kind"] == WARNING))]
    added = []
    for row in skipped_rows.to_dict("records"):
        line = int(row["source_line"])
        added.append({
            "source_list": row["source_list"], "line_number": line, "kind": SKIPPED,
            "reason": "; ".join([reasons[line], *([str(earlier[line])] if line in earlier.index else [])]),
            "raw": json.dumps({k: row[k] for k in ("first_name", "last_name", "email", "phone", "company")}, ensure_ascii=False, default=str),
            "imported_at": row["imported_at"],
        })
    rejects = pd.concat([rejects, pd.DataFrame(added)], ignore_index=True).sort_values("line_number", kind="stable").reset_index(drop=True)
    return ImportResult(leads, rejects, result.lines_read, result.warnings)
