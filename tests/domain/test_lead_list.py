"""Lead import: every line becomes a lead or a reject with its line number and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    assert sorted(result.leads["source_line"]) == [2, 8]
    assert set(reasons) == {3, 4, 5, 6, 7, 9, 10, 12}
    assert "email 'not-an-email' is invalid" in reasons[3]
    assert "not a valid number" in reasons[4]
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
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"company,role\nAcme,COO\n", "header needs first_name and email or phone"),
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
