"""Contact files as people have them: seed 004's `phone_number,name,email,...` format, full names, duplicates, encodings, delimiters."""

from __future__ import annotations

import csv
import io

import pytest

from outbound_pipeline.domain.contact_csv import (
    canonical_header,
    canonical_headers,
    decode_lead_file,
    describe_duplicates,
    duplicate_headers,
    sniff_delimiter,
    split_name,
    with_split_name,
)

# The example CSV of the Outbound Campaigns Guide, section 3, as written there.
SEED_CSV = """phone_number,name,email,company,deal_stage,notes
+15551234567,John Doe,john@example.com,Acme Corp,proposal,VIP customer
5559876543,Jane Smith,jane@example.com,Beta Inc,discovery,Follow up on quote
(555) 555-0100,Bob Wilson,,Gamma LLC,lead,New lead from website
"""
# Section 4's row with a date column.
SEED_VARIABLES_CSV = """phone_number,name,email,company,deal_stage,appointment_date
+15551234567,John Doe,john@example.com,Acme Corp,proposal,2026-03-15
"""


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = canonical_headers(next(reader))
    return [with_split_name(dict(zip(header, fields, strict=True))) for fields in reader]


def test_seed_header_is_recognised() -> None:
    assert canonical_headers(["phone_number", "name", "email", "company", "deal_stage", "notes"]) == [
        "phone", "name", "email", "company", "deal_stage", "notes"]
    assert duplicate_headers(["phone_number", "name", "email", "company", "deal_stage", "notes"]) == {}


def test_seed_rows_become_leads_with_split_names_and_variables() -> None:
    assert rows(SEED_CSV) == [
        {"phone": "+15551234567", "first_name": "John", "last_name": "Doe", "email": "john@example.com", "company": "Acme Corp",
         "deal_stage": "proposal", "notes": "VIP customer"},
        {"phone": "5559876543", "first_name": "Jane", "last_name": "Smith", "email": "jane@example.com", "company": "Beta Inc",
         "deal_stage": "discovery", "notes": "Follow up on quote"},
        {"phone": "(555) 555-0100", "first_name": "Bob", "last_name": "Wilson", "email": "", "company": "Gamma LLC",
         "deal_stage": "lead", "notes": "New lead from website"},
    ]
    assert rows(SEED_VARIABLES_CSV)[0]["appointment_date"] == "2026-03-15"


def test_header_spellings() -> None:
    assert [canonical_header(h) for h in ("Phone Number", " MOBILE ", "Full Name", "E-mail", "Deal Stage", "First Name", "notes")] == [
        "phone", "phone", "name", "email", "deal_stage", "first_name", "notes"]


@pytest.mark.parametrize(("full", "first", "last"), [
    ("Mary Ann de la Cruz", "Mary Ann", "de la Cruz"),
    ("Mary Ann Smith", "Mary Ann", "Smith"),
    ("John Doe", "John", "Doe"),
    ("  John    Doe ", "John", "Doe"),
    ("Cher", "Cher", ""),
    ("", "", ""),
    ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
    ("Van Morrison", "Van", "Morrison"),
    ("Maria da Silva", "Maria", "da Silva"),
    ("Martin Luther King Jr.", "Martin Luther", "King Jr."),
    ("John Smith, Jr.", "John", "Smith Jr."),
    ("Cruz, Mary Ann", "Mary Ann", "Cruz"),
    ("de la Cruz, Mary Ann", "Mary Ann", "de la Cruz"),
    ("Dr. Jane Smith", "Jane", "Smith"),
    ("Dr. Smith", "Dr.", "Smith"),
    ("Jean-Luc Picard", "Jean-Luc", "Picard"),
    ("Juan Pérez García", "Juan Pérez", "García"),
])
def test_split_name(full: str, first: str, last: str) -> None:
    assert split_name(full) == (first, last)


def test_split_name_leaves_own_first_and_last_columns_alone() -> None:
    assert with_split_name({"name": "Johnny D", "first_name": "John", "last_name": "Doe"}) == {
        "name": "Johnny D", "first_name": "John", "last_name": "Doe"}
    assert with_split_name({"name": "John Doe", "last_name": "Doe-Smith"}) == {"first_name": "John", "last_name": "Doe-Smith"}
    assert with_split_name({"first_name": "Ana"}) == {"first_name": "Ana"}


def test_duplicate_headers_are_named() -> None:
    header = ["phone_number", "Name", "email", "Mobile", "E-mail", "notes", "Notes"]
    duplicates = duplicate_headers(header)
    assert duplicates == {"phone": ["phone_number", "Mobile"], "email": ["email", "E-mail"], "notes": ["notes", "Notes"]}
    assert describe_duplicates({"phone": ["phone_number", "Mobile"]}) == (
        "the header names a field more than once: 'phone' from columns 'phone_number', 'Mobile'")


def test_utf8_with_and_without_bom() -> None:
    text = "phone_number,name\n+34600000000,José Núñez\n"
    assert decode_lead_file(text.encode("utf-8")) == (text, [])
    assert decode_lead_file(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, [])
    assert decode_lead_file(text.encode("utf-16")) == (text, [])


def test_latin1_and_cp1252_fall_back_with_a_warning() -> None:
    text = "phone_number,name,notes\n+34600000000,José Núñez,“VIP” – 5€\n"
    decoded, warnings = decode_lead_file(text.encode("cp1252"))
    assert decoded == text
    assert len(warnings) == 1 and "not UTF-8" in warnings[0] and "line 2" in warnings[0] and "cp1252" in warnings[0]
    latin = "name\nFrançois\n"
    assert decode_lead_file(latin.encode("latin-1"))[0] == latin
    decoded, warnings = decode_lead_file(b"name\n\x81\xe9\n")  # 0x81 is undefined in cp1252
    assert decoded == "name\n\x81é\n" and "Latin-1" in warnings[0]


@pytest.mark.parametrize(("sample", "delimiter"), [
    (SEED_CSV, ","),
    ("phone_number;name;email;notes\n+34600000000;García, Ana;ana@x.es;1,5 M€\n", ";"),
    ("phone_number\tname\temail\n+34600000000\tAna García\tana@x.es\n", "\t"),
    ('phone_number,name,notes\n+1555,"Doe; John","a;b;c;d"\n', ","),
    ("phone_number\n+15551234567\n", ","),
    ("", ","),
    ("phone_number;name;email\n+3460000;Ana;a@x\n+3460001;Bo", ";"),  # the sample ends inside a row
])
def test_sniff_delimiter(sample: str, delimiter: str) -> None:
    assert sniff_delimiter(sample) == delimiter


def test_semicolon_file_reads_end_to_end() -> None:
    data = "phone_number;name;email;notes\r\n+34600000000;María José de la Fuente;mj@x.es;llamar después\r\n".encode("cp1252")
    text, warnings = decode_lead_file(data)
    assert warnings
    assert rows(text, sniff_delimiter(text)) == [
        {"phone": "+34600000000", "first_name": "María José", "last_name": "de la Fuente", "email": "mj@x.es", "notes": "llamar después"}]
