"""The contact base in DuckDB: a file written before lists existed gets its leads into lists; re-imports merge."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from outbound_pipeline.domain.lead_list import import_lead_list
from outbound_pipeline.store import contacts, warehouse

NOW = datetime(2026, 3, 1)


def test_leads_of_an_older_file_join_the_list_named_after_their_file(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the leads and lead_rejects tables as they were before migration 9
        con.execute("""CREATE TABLE leads (lead_id VARCHAR PRIMARY KEY, source_list VARCHAR NOT NULL, source_line INTEGER NOT NULL,
            first_name VARCHAR NOT NULL, last_name VARCHAR, email VARCHAR, phone VARCHAR, company VARCHAR, role VARCHAR, country VARCHAR,
            timezone VARCHAR, owner_email VARCHAR, custom_vars VARCHAR NOT NULL, status VARCHAR NOT NULL, status_reason VARCHAR,
            imported_at TIMESTAMP NOT NULL)""")
        con.execute("""CREATE TABLE lead_rejects (source_list VARCHAR NOT NULL, line_number INTEGER NOT NULL, reason VARCHAR NOT NULL,
            raw VARCHAR NOT NULL, imported_at TIMESTAMP NOT NULL, PRIMARY KEY (source_list, line_number))""")
        con.execute("INSERT INTO leads VALUES ('lead_a', 'spring.csv', 2, 'Ana', NULL, 'a@x.example', NULL, NULL, NULL, NULL, NULL, NULL,"
                    " '{}', 'active', NULL, ?)", [NOW])
        con.execute("INSERT INTO lead_rejects VALUES ('spring.csv', 3, 'first_name is empty', '{}', ?)", [NOW])
    with warehouse.connect(path) as con:
        assert con.execute("SELECT list_name, lead_id, source_file, line FROM list_members").fetchall() == [("spring.csv", "lead_a", "spring.csv", 2)]
        assert con.execute("SELECT kind FROM lead_rejects").fetchall() == [("rejected",)]
        assert con.execute("SELECT phone_valid FROM leads").fetchall() == [(None,)]


def test_a_contact_imported_again_keeps_what_the_new_file_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,email,phone_number,plan\nAna Ruiz,ana@x.example,+14155552671,pro\n")
    (tmp_path / "b.csv").write_text("name,email,region\nAna Ruiz,ana@x.example,west\n")
    with warehouse.connect(tmp_path / "db.duckdb") as con:
        contacts.import_into_list(con, "one", import_lead_list(tmp_path / "a.csv", "US", NOW), NOW)
        done = contacts.import_into_list(con, "two", import_lead_list(tmp_path / "b.csv", "US", NOW), NOW)
        assert done.new_contacts == 0
        phone, valid, custom = con.execute("SELECT phone, phone_valid, custom_vars FROM leads").fetchall()[0]
        lists = con.execute("SELECT list_name FROM list_members ORDER BY 1").fetchall()
    assert (phone, valid) == ("+14155552671", True)
    assert json.loads(custom) == {"plan": "pro", "region": "west"}
    assert lists == [("one",), ("two",)]
