"""Lead import: every line becomes a lead or a reject with its line number and reason."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outbound_pipeline.domain.lead_list import LeadListError, import_lead_list, normalise_phone
from outbound_pipeline.store.validation import validate

HEADER = "First Name,Last Name,E-mail,Mobile,Company,Job Title,Country,Plan,Favourite Colour\n"


def write(tmp_path: Path, body: str, header: str = HEADER, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def test_phones_become_e164_whatever_way_they_were_written(tmp_path):
    path = write(tmp_path, "\n".join([
        "Ana,Lopez,,612 34 56 78,Acme,COO,ES,pro,",        # national, Spanish
        "Ben,Ng,,+44 7400 123456,Acme,COO,GB,,",           # international with spaces
        "Cy,Ode,,0049 1512 3456789,Acme,COO,DE,,",         # 00 prefix
        "Di,Po,,(212) 555-0143,Acme,COO,,,",               # national, no country column: campaign default region
    ]) + "\n")
    result = import_lead_list(path, default_region="US")
    assert list(result.leads["phone"]) == ["+34612345678", "+447400123456", "+4915123456789", "+12125550143"]
    assert result.rejects.empty
    zones = list(result.leads["timezone"])
    assert zones[0] == "Europe/Madrid" and zones[1] == "Europe/London"  # inferred from the phone when not given
    assert zones[3] == "America/New_York"  # area code 212


def test_bad_rows_are_reported_with_line_and_reason_and_nothing_is_lost(tmp_path):
    path = write(tmp_path, "\n".join([
        "Ana,Lopez,ana@acme.example,,Acme,COO,ES,,",                  # line 2: good
        "Bo,Ray,not-an-email,,Acme,COO,ES,,",                         # line 3: bad email
        "Cy,Ode,,12345,Acme,COO,ES,,",                                # line 4: invalid phone
        ",Nameless,x@acme.example,,Acme,COO,ES,,",                    # line 5: no first name
        "Di,Po,,,Acme,COO,ES,,",                                      # line 6: unreachable
        "Ana,Lopez,ANA@acme.example,,Acme,COO,ES,,",                  # line 7: duplicate email (case-insensitive)
        "Ed,Fox,ed@acme.example,+34612345678,Acme,COO,ES,,",          # line 8: good
        "Fa,Gu,fa@acme.example,612 34 56 78,Acme,COO,ES,,",           # line 9: duplicate phone of line 8
        "Gi,Ho,gi@acme.example,,Acme,COO",                            # line 10: too few fields
        "",                                                           # line 11: blank, ignored
        'Hu,"Broken,hu@acme.example,,Acme,COO,ES,,',                  # line 12: unclosed quote to the end
    ]) + "\n")
    result = import_lead_list(path, default_region="ES")
    reasons = dict(zip(result.rejects["line_number"], result.rejects["reason"], strict=True))
    kinds = dict(zip(result.rejects["line_number"], result.rejects["kind"], strict=True))
    assert sorted(result.leads["source_line"]) == [2, 8]
    assert set(reasons) == {3, 4, 5, 6, 7, 9, 10, 12}
    assert {line for line, kind in kinds.items() if kind == "skipped"} == {7, 9}
    assert result.summary() == {"read": 10, "imported": 2, "skipped": 2, "rejected": 6, "warnings": 0, "phones_not_valid": 0}
    assert "email 'not-an-email' is invalid" in reasons[3]
    assert "not a possible number" in reasons[4]
    assert reasons[5] == "first_name is empty"
    assert reasons[6] == "no email and no phone: the lead cannot be reached"
    assert reasons[7] == "duplicate of line 2 (same email)"
    assert reasons[9] == "duplicate of line 8 (same phone)"
    assert reasons[10] == "expected 9 fields, found 6"
    assert reasons[12].startswith("malformed CSV")
    assert json.loads(result.rejects.set_index("line_number").loc[3, "raw"])["email"] == "not-an-email"
    validate("leads", result.leads)
    validate("lead_rejects", result.rejects)


def test_unknown_columns_are_kept_as_custom_variables_and_aliases_recognised(tmp_path):
    path = write(tmp_path, "Ana,Lopez,ana@acme.example,,Acme,COO,ES,pro,teal\nBo,Ray,bo@acme.example,,Acme,CEO,ES,,\n")
    leads = import_lead_list(path, "ES").leads.set_index("first_name")
    assert leads.loc["Ana", "role"] == "COO" and leads.loc["Ana", "email"] == "ana@acme.example"
    assert json.loads(leads.loc["Ana", "custom_vars"]) == {"plan": "pro", "favourite_colour": "teal"}
    assert json.loads(leads.loc["Bo", "custom_vars"]) == {}  # empty cells are not variables


def test_lead_ids_are_stable_across_files_and_reimports(tmp_path):
    a = import_lead_list(write(tmp_path, "Ana,Lopez,ana@acme.example,,Acme,COO,ES,,\n", name="a.csv"), "ES").leads
    b = import_lead_list(write(tmp_path, "Ana,L.,Ana@Acme.example,,Acme Inc,CEO,ES,,\n", name="b.csv"), "ES").leads
    assert a.loc[0, "lead_id"] == b.loc[0, "lead_id"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    (b"", "empty"),
    (b"\x00" * 64, "not a text file"),
    (b"company,role\nAcme,COO\n", r"header needs a name \(first_name or name\) and email or phone"),
    (b"name,phone_number,Mobile\nAna,+34612345678,+34612345679\n", "'phone' from columns 'phone_number', 'Mobile'"),
])
def test_whole_file_problems_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "leads.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LeadListError, match=message):
        import_lead_list(path, "US")


def test_normalise_phone_explains_what_is_wrong():
    with pytest.raises(ValueError, match="cannot be parsed"):
        normalise_phone("call me", "US")
    assert normalise_phone("+1 (415) 555-2671", "GB") == "+14155552671"  # an explicit country code wins over the region


# --------------------------------------------------------------------------- seed 004's files, as written there

SEED_UPLOAD = """phone_number,name,email,company,deal_stage,notes
+15551234567,John Doe,john@example.com,Acme Corp,proposal,VIP customer
5559876543,Jane Smith,jane@example.com,Beta Inc,discovery,Follow up on quote
(555) 555-0100,Bob Wilson,,Gamma LLC,lead,New lead from website
"""
SEED_END_TO_END = """phone_number,name,email,company,demo_date
+15551234567,Alice Johnson,alice@acme.com,Acme Corp,2026-02-18
+15559876543,Bob Martinez,bob@beta.io,Beta Inc,2026-02-19
+15555550100,Carol Lee,carol@gamma.co,Gamma LLC,2026-02-20
"""


def test_seed_upload_csv_imports_three_contacts_in_e164_with_variables(tmp_path):
    result = import_lead_list(write(tmp_path, SEED_UPLOAD, header=""), "US")
    leads = result.leads
    assert list(leads["phone"]) == ["+15551234567", "+15559876543", "+15555550100"]
    assert list(leads["first_name"]) == ["John", "Jane", "Bob"] and list(leads["last_name"]) == ["Doe", "Smith", "Wilson"]
    assert list(leads["company"]) == ["Acme Corp", "Beta Inc", "Gamma LLC"]
    assert json.loads(leads.loc[0, "custom_vars"]) == {"deal_stage": "proposal", "notes": "VIP customer"}
    assert list(leads["phone_valid"]) == [False, False, False]  # fictional 555 numbers import, flagged
    assert pd.isna(leads.loc[2, "email"])
    assert result.summary() == {"read": 3, "imported": 3, "skipped": 0, "rejected": 0, "warnings": 0, "phones_not_valid": 3}
    validate("leads", leads)


def test_seed_end_to_end_csv_imports_three_contacts_with_their_demo_dates(tmp_path):
    leads = import_lead_list(write(tmp_path, SEED_END_TO_END, header=""), "US").leads
    assert list(leads["phone"]) == ["+15551234567", "+15559876543", "+15555550100"]
    assert [json.loads(v)["demo_date"] for v in leads["custom_vars"]] == ["2026-02-18", "2026-02-19", "2026-02-20"]
    assert list(leads["email"]) == ["alice@acme.com", "bob@beta.io", "carol@gamma.co"]


def test_a_real_number_is_marked_valid(tmp_path):
    leads = import_lead_list(write(tmp_path, "+14155552671,Ana Ruiz,\n+15551234567,Ben Ode,\n", header="phone_number,name,email\n"), "US").leads
    assert list(leads["phone_valid"]) == [True, False]


# --------------------------------------------------------------------------- broken files lose no rows


def test_an_unterminated_quote_costs_its_own_line_and_the_rest_of_the_file_is_read(tmp_path):
    rows = [f"Person {i},p{i}@x.example,+1415555{i:04d}" for i in range(10_000)]
    body = '"Broken Quote,b@x.example,+14155552671\n' + "\n".join(rows) + "\n"
    result = import_lead_list(write(tmp_path, body, header="name,email,phone_number\n"), "US")
    assert result.summary()["read"] == 10_001
    assert result.imported == 10_000 and result.rejected == 1
    reject = result.rejects[result.rejects["kind"] == "rejected"].iloc[0]
    assert reject["line_number"] == 2
    assert "quote opened on this line is never closed" in reject["reason"] and "resumes on line 3" in reject["reason"]


def test_a_quote_closed_on_a_later_line_is_reported_and_reading_resynchronises(tmp_path):
    body = ('Ana,"Lopez,ana@x.example\n'            # line 2: quote closed only on line 4
            'Bo,Ray,bo@x.example\n'
            'Cy,"Ode",cy@x.example\n'
            'Di,"two\nlines",di@x.example\n')      # lines 5-6: a proper multi-line field
    result = import_lead_list(write(tmp_path, body, header="first_name,last_name,email\n"), "US")
    assert sorted(result.leads["source_line"]) == [3, 4, 5]
    assert result.leads.set_index("source_line").loc[5, "last_name"] == "two\nlines"
    assert list(result.rejects["line_number"]) == [2]
    assert result.lines_read == result.imported + result.skipped + result.rejected


def test_a_bad_phone_with_a_good_email_keeps_the_lead_and_warns_and_the_other_way_round(tmp_path):
    body = "Ana,ana@x.example,12\nBo,not-an-email,+14155552671\nCy,nope,34\n"
    result = import_lead_list(write(tmp_path, body, header="name,email,phone\n"), "US")
    leads = result.leads.set_index("source_line")
    assert leads.loc[2, "email"] == "ana@x.example" and pd.isna(leads.loc[2, "phone"])
    assert leads.loc[3, "phone"] == "+14155552671" and pd.isna(leads.loc[3, "email"])
    reported = result.rejects.set_index("line_number")
    assert reported.loc[2, "kind"] == "warning" and "phone '12'" in reported.loc[2, "reason"] and "kept with its email" in reported.loc[2, "reason"]
    assert reported.loc[3, "kind"] == "warning" and "email 'not-an-email' is invalid" in reported.loc[3, "reason"]
    assert reported.loc[4, "kind"] == "rejected" and "email 'nope'" in reported.loc[4, "reason"] and "phone '34'" in reported.loc[4, "reason"]
    validate("lead_rejects", result.rejects)


def test_nul_bytes_are_removed_and_formulas_are_never_imported_as_written(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b'name,email,company,notes\nAna Ruiz,ana@x.example,Ac\x00me,"=HYPERLINK(""http://evil.example"",""click"")"\n'
                     b"Bo Ray,bo@x.example,@SUM(A1:A9),-12.5\nCy Ode,cy@x.example,+cmd|' /C calc'!A0,+1 555 0100\n")
    result = import_lead_list(path, "US")
    leads = result.leads.set_index("source_line")
    assert leads.loc[2, "company"] == "Acme" and "notes" not in json.loads(leads.loc[2, "custom_vars"])
    assert pd.isna(leads.loc[3, "company"]) and json.loads(leads.loc[3, "custom_vars"]) == {"notes": "-12.5"}
    assert pd.isna(leads.loc[4, "company"]) and json.loads(leads.loc[4, "custom_vars"]) == {"notes": "+1 555 0100"}
    reasons = result.rejects.set_index("line_number")["reason"]
    assert "NUL byte" in reasons[2] and "notes '=HYPERLINK" in reasons[2] and "formula" in reasons[2]
    assert "company '@SUM(A1:A9)'" in reasons[3] and "formula" in reasons[4]
    assert set(result.rejects["kind"]) == {"warning"}


def test_latin1_and_semicolon_files_are_read_with_a_warning(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("Vorname;Nachname;E-Mail;Firma\nJosé;Müller;jose@x.example;Größe GmbH\n".replace("Vorname", "first_name")
                     .replace("Nachname", "last_name").replace("Firma", "Company").encode("latin-1"))
    result = import_lead_list(path, "DE")
    assert result.leads.loc[0, "first_name"] == "José" and result.leads.loc[0, "last_name"] == "Müller"
    assert result.leads.loc[0, "company"] == "Größe GmbH"
    assert any("not UTF-8" in w for w in result.warnings) and any("semicolon" in w for w in result.warnings)
    file_warning = result.rejects.set_index("line_number").loc[1]
    assert file_warning["kind"] == "warning" and "semicolon" in file_warning["reason"]


def test_utf8_with_bom_reads_without_warning(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SEED_UPLOAD.encode())
    result = import_lead_list(path, "US")
    assert result.imported == 3 and result.warnings == [] and result.rejects.empty


CELL = st.text(alphabet=st.sampled_from(list('ab ,;"\n\x00=@+-1@.x')), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=12))
def test_every_row_read_is_imported_skipped_or_rejected(rows):
    """Whatever the text after a valid header, rows read = imported + skipped + rejected, and nothing raises."""
    import tempfile

    text = "name,email,phone,notes\n" + "\n".join(",".join(cells) for cells in rows) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.csv"
        path.write_text(text, encoding="utf-8")
        try:
            result = import_lead_list(path, "US")
        except LeadListError:
            return  # a whole-file error (the sniffer picked another delimiter and the header lost its fields) is explicit
    assert result.lines_read == result.imported + result.skipped + result.rejected
    assert result.imported == len(set(result.leads["lead_id"])) if result.imported else True
    reported_lines = set(result.rejects.loc[result.rejects["kind"] != "warning", "line_number"]) if not result.rejects.empty else set()
    imported_lines = set(result.leads["source_line"]) if result.imported else set()
    assert not reported_lines & imported_lines


def test_chunked_and_parallel_reading_gives_the_answers_of_one_pass(tmp_path, monkeypatch):
    """Chunks of 400 rows with phones checked in worker processes import, skip and reject exactly as one sequential pass."""
    import csv

    from outbound_pipeline.domain import lead_list, phones
    from outbound_pipeline.sample_data import HEADER, make_leads

    rows = make_leads(3_000, seed=11, bad_rows=True)
    first = next(r for r in rows if "@" in r[2] and r[3])
    email, phone = first[2], first[3]
    rows += [
        [*first[:2], "other." + email, phone, *first[4:]],        # same phone as a lead of the first chunk: skipped
        [*first[:2], "other." + email, "+34 612 000 111", *first[4:]],  # its email was never kept, so this one imports
        *rows[5:900:7],                                          # copies of earlier rows, chunks later
    ]
    path = tmp_path / "many.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    when = datetime(2026, 1, 1)

    monkeypatch.setattr(lead_list, "CHUNK_ROWS", 10**9)
    monkeypatch.setattr(phones, "PARALLEL_FROM", 10**9)
    whole = import_lead_list(path, "US", imported_at=when)
    monkeypatch.setattr(lead_list, "CHUNK_ROWS", 400)
    monkeypatch.setattr(phones, "PARALLEL_FROM", 50)
    monkeypatch.setattr(phones, "CHUNK", 60)
    chunked = import_lead_list(path, "US", imported_at=when)

    pd.testing.assert_frame_equal(chunked.leads, whole.leads)
    pd.testing.assert_frame_equal(chunked.rejects, whole.rejects)
    assert chunked.lines_read == whole.lines_read == len(rows)
    assert chunked.lines_read == chunked.imported + chunked.skipped + chunked.rejected
    assert chunked.skipped >= 120 and chunked.rejected > 0
    reasons = chunked.rejects.set_index("line_number")["reason"]
    assert "(same phone)" in reasons[3_002]
    assert chunked.leads["email"].eq(("other." + email).lower()).any() or chunked.leads["email"].eq("other." + email).any()


@pytest.mark.parametrize("text", [
    "first_name,email\nAna,a@x.com\n\n , \nBo,b@x.com", "first_name,email\r\nAna,a@x.com\r\n", "\nfirst_name,email\nAna,a@x.com\n",
    "first_name;email\nAna;a@x.com;;\n;\n", "first_name,email\rAna,a@x.com\rBo\r", "first_name\tphone\nAna\t+34 612 345 678\n\t\n", "",
    "first_name,email\n" + "x" * 200 + ",a@x.com\n",
])
def test_a_file_without_quotes_is_split_as_the_csv_reader_reads_it(text):
    import csv

    from outbound_pipeline.domain import lead_list

    def read(rows_of: object, delimiter: str) -> object:
        try:
            header, rows = rows_of(delimiter)  # type: ignore[operator]
            return header, list(rows)
        except LeadListError as exc:
            return str(exc)

    limit = csv.field_size_limit(100)  # the long line is too long for the reader: both ways report it
    try:
        for delimiter in (",", ";", "\t"):
            assert read(lambda d: lead_list._plain_rows(text.splitlines(), d), delimiter) == read(lambda d: lead_list._csv_rows(text, d), delimiter)
    finally:
        csv.field_size_limit(limit)
