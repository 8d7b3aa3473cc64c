"""The contact files people already have: their bytes, delimiters, header names and full-name columns.

A contact export from a phone system, a CRM or a spreadsheet is often `phone_number,name,email,notes,...`
with one `name` column, saved as UTF-8 with a BOM, as Windows-1252, or with semicolons where the locale
uses a decimal comma. These functions turn such a file into what the lead-list importer expects:
text, a delimiter, canonical column names (each column once) and a first and last name per row.
Every column that is not a known lead field, `notes` included, stays a custom variable for templates.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping, Sequence

# Header spellings of the lead fields; `name` and its kin hold a full name and are split by `split_name`.
FULL_NAME_HEADERS = ("name", "full_name", "fullname", "contact_name", "contact")
FULL_NAME = "name"
HEADER_ALIASES: dict[str, str] = {
    "firstname": "first_name", "first": "first_name", "given_name": "first_name",
    "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
    "e_mail": "email", "email_address": "email", "mail": "email",
    "phone_number": "phone", "mobile": "phone", "mobile_phone": "phone", "mobile_number": "phone", "whatsapp": "phone",
    "telephone": "phone", "tel": "phone", "cell": "phone",
    "organisation": "company", "organization": "company", "account": "company", "company_name": "company",
    "title": "role", "job_title": "role", "position": "role",
    "country_code": "country", "tz": "timezone", "time_zone": "timezone", "owner": "owner_email", "lead_owner": "owner_email",
    **{h: FULL_NAME for h in FULL_NAME_HEADERS},
}
DELIMITERS = (",", ";", "\t")

# Words that start a surname when they follow the given names ("Mary Ann de la Cruz", "Ludwig van Beethoven").
SURNAME_PARTICLES = frozenset({
    "da", "das", "de", "del", "della", "dei", "der", "den", "di", "do", "dos", "du", "la", "le",
    "van", "von", "ter", "ten", "bin", "ibn", "al", "el", "st", "st.", "ap",
})
# Generational and academic suffixes that stay with the surname ("King Jr.").
NAME_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "ph.d.", "md", "m.d.", "esq", "esq."})
# Courtesy titles dropped in front of a name, so `{{first_name}}` reads "Jane" and not "Dr.".
NAME_TITLES = frozenset({"mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "dr", "dr.", "prof", "prof.", "sr.", "sra.", "srta.", "mx", "mx."})


def header_key(raw: str) -> str:
    """A header as a key: lower case, runs of other characters as `_` ("Phone Number" -> phone_number)."""
    return re.sub(r"[^a-z0-9]+", "_", raw.strip().lower()).strip("_")


def canonical_header(raw: str) -> str:
    """The lead field a header names (`phone_number` -> phone, `name` -> name, a full name), else its own key (a custom variable)."""
    key = header_key(raw)
    return HEADER_ALIASES.get(key, key)


def canonical_headers(raw_header: Sequence[str]) -> list[str]:
    """`canonical_header` of each column, in file order."""
    return [canonical_header(h) for h in raw_header]


def duplicate_headers(raw_header: Sequence[str]) -> dict[str, list[str]]:
    """Canonical names given by more than one column, with the headers that give them (`{"phone": ["phone_number", "Mobile"]}`).

    Two columns feeding one field would make one silently win; the importer refuses such a file and names them.
    """
    seen: dict[str, list[str]] = {}
    for raw in raw_header:
        seen.setdefault(canonical_header(raw), []).append(raw)
    return {name: raws for name, raws in seen.items() if len(raws) > 1}


def describe_duplicates(duplicates: Mapping[str, Sequence[str]]) -> str:
    """A one-line reason for refusing a file with duplicated columns."""
    parts = [f"{name!r} from columns {', '.join(repr(r) for r in raws)}" for name, raws in duplicates.items()]
    return "the header names a field more than once: " + "; ".join(parts)


def split_name(full_name: str) -> tuple[str, str]:
    """(first, last) of a full name, for the single `name` column of many contact exports.

    Rules, in order: spaces are collapsed; a leading courtesy title (Mr, Dr, ...) is dropped when a first and
    a last name follow; "Last, First" is turned around unless what follows the comma is a suffix ("King, Jr.");
    a trailing suffix (Jr., III, PhD) stays with the surname; a surname particle after the first word starts
    the surname ("Mary Ann de la Cruz" -> "Mary Ann", "de la Cruz"); otherwise the last word is the
    surname and the words before it the given names ("Mary Ann Smith" -> "Mary Ann", "Smith"). One word is
    a first name with no surname. Two given surnames without a particle ("Juan Pérez García") keep only
    the last as the surname: the file cannot tell us otherwise.
    """
    text = " ".join(full_name.split())
    if not text:
        return "", ""
    if text.count(",") == 1:
        before, after = (part.strip() for part in text.split(","))
        if after and before and after.lower() not in NAME_SUFFIXES:
            return " ".join(_without_title(after.split(" "))), before
        text = f"{before} {after}".strip()
    words = _without_title(text.split(" "))
    suffix: list[str] = []
    while len(words) > 2 and words[-1].lower() in NAME_SUFFIXES:
        suffix.insert(0, words.pop())
    if len(words) == 1:
        return words[0], " ".join(suffix)
    start = next((i for i in range(1, len(words) - 1) if words[i].lower() in SURNAME_PARTICLES), len(words) - 1)
    return " ".join(words[:start]), " ".join(words[start:] + suffix)


def _without_title(words: list[str]) -> list[str]:
    """The words of a name without a leading courtesy title, when at least two words remain ("Dr. Smith" keeps its title)."""
    return words[1:] if len(words) > 2 and words[0].lower() in NAME_TITLES else words


def with_split_name(record: Mapping[str, str]) -> dict[str, str]:
    """A row keyed by canonical headers, with `first_name` and `last_name` filled from a full `name` when the file has no first name.

    The full name itself is kept under `name` only when first and last name come from their own columns
    (then it is extra information, kept as a custom variable); otherwise it is replaced by its parts.
    """
    row = dict(record)
    if FULL_NAME not in row:
        return row
    if row.get("first_name", "").strip():
        return row
    first, last = split_name(row.pop(FULL_NAME))
    row["first_name"] = first
    if not row.get("last_name", "").strip():
        row["last_name"] = last
    return row


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_lead_file(data: bytes) -> tuple[str, list[str]]:
    """The text of a lead file and warnings about how it was read.

    UTF-8 with or without a byte-order mark is read as is; a UTF-16 file (Excel's "Unicode text") is read
    by its mark. Anything else is taken to be Windows-1252, the usual encoding of spreadsheets saved on
    Windows, or Latin-1 where Windows-1252 leaves a byte undefined; both always succeed, so the warning
    asks the operator to check accented letters rather than refusing the file.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), []
            except UnicodeDecodeError as exc:
                return data[len(bom):].decode("latin-1"), [
                    f"the file starts with a {encoding} byte-order mark but is not valid {encoding} (byte {exc.start}); read as Latin-1"]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        position = exc.start
    try:
        text, encoding = data.decode("cp1252"), "Windows-1252 (cp1252)"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "Latin-1 (ISO-8859-1)"
    line = data.count(b"\n", 0, position) + 1
    return text, [f"the file is not UTF-8 (first invalid byte on line {line}); read as {encoding}: check accented letters, "
                  "or export the file as CSV UTF-8"]


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample among comma, semicolon and tab; comma when nothing else fits better.

    The winner splits the header into the most columns while every sampled row has that many fields;
    quoted fields are respected, so "Doe, John" in a semicolon file does not make it comma-separated.
    """
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end inside a row
    text = "\n".join(lines[:50])
    best, best_score = ",", (False, 0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(f.strip() for f in r)]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) / len(rows)
        score = (width > 1, consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# A cell a spreadsheet would run: `=...` always; `+`, `-` or `@` when what follows is not a plain number or phone
# and carries a call, a sheet reference or a DDE pipe (`@SUM(A1)`, `+cmd|' /C calc'!A0`, `-2+3+HYPERLINK(...)`).
FORMULA_START = ("=", "+", "-", "@")
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9\s().,/-]*$")
_FORMULA_MARKS = re.compile(r"[(!|=]")


def looks_like_formula(value: str) -> bool:
    """Whether a cell reads as a spreadsheet formula rather than data; such text is never put into a message as written.

    `+1 555 0100` and `-12.5` are data; `=HYPERLINK("http://x","click")`, `@SUM(A1:A9)` and `+cmd|'/C calc'!A0` are formulas.
    """
    text = value.lstrip()
    if not text.startswith(FORMULA_START):
        return False
    if text.startswith("="):
        return True
    return not _PLAIN_NUMBER.match(text) and bool(_FORMULA_MARKS.search(text))
