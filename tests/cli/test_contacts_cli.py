"""`outbound contacts`: import into lists, lists, search, show, export, remove, through the command line."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from outbound_pipeline.cli.main import main

SEED = """phone_number,name,email,company,deal_stage,notes
+15551234567,John Doe,john@example.com,Acme Corp,proposal,VIP customer
5559876543,Jane Smith,jane@example.com,Beta Inc,discovery,Follow up on quote
(555) 555-0100,Bob Wilson,,Gamma LLC,lead,New lead from website
"""
MORE = """phone_number,name,email,company,notes
+15559876543,Jane S.,jane.smith@other.example,Beta Inc,same phone as Jane
+14155552671,Kim Ode,kim@example.com,"=HYPERLINK(""http://evil.example"",""x"")",-5
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_contacts_commands_end_to_end(workdir: Path, capsys, monkeypatch) -> None:
    # Each import at its own minute: members are listed in the order they were added.
    (workdir / "seed.csv").write_text(SEED)
    (workdir / "more.csv").write_text(MORE)
    monkeypatch.setenv("OUTBOUND_NOW", "2026-01-05T09:00:00")
    code, out, _ = run(capsys, "contacts", "import", str(workdir / "seed.csv"), "--list", "q1")
    assert code == 0 and "3 rows read, 3 imported (3 new contacts), 0 skipped (duplicates), 0 rejected" in out
    assert "3 phone(s) are possible but not known as assigned" in out

    monkeypatch.setenv("OUTBOUND_NOW", "2026-01-05T09:01:00")
    code, out, _ = run(capsys, "contacts", "import", str(workdir / "more.csv"), "--list", "q1")
    assert code == 0 and "2 rows read, 1 imported (1 new contacts), 1 skipped (duplicates), 0 rejected" in out
    assert "already in list 'q1' with the same phone (seed.csv line 3)" in out and "looks like a spreadsheet formula" in out

    monkeypatch.setenv("OUTBOUND_NOW", "2026-01-05T09:02:00")
    code, out, _ = run(capsys, "contacts", "import", str(workdir / "seed.csv"), "--list", "vip")
    assert code == 0 and "3 imported (0 new contacts)" in out

    code, out, _ = run(capsys, "contacts", "lists")
    assert re.search(r"\| q1 +\| +4 \| +4 \| +2 \|", out) and re.search(r"\| vip +\| +3 \|", out)

    code, out, _ = run(capsys, "contacts", "search", "5550100")
    assert "Bob" in out and "q1, vip" in out
    code, out, _ = run(capsys, "contacts", "search", "acme")
    assert "John" in out and "Jane" not in out
    lead_id = re.findall(r"lead_[0-9a-f]{16}", out)[0]

    code, out, _ = run(capsys, "contacts", "show", lead_id)
    assert code == 0 and "first_name: John" in out and '"deal_stage": "proposal"' in out
    assert "lists (2)" in out and "campaigns (0)" in out and "replies (0)" in out

    target = workdir / "q1.csv"
    code, out, _ = run(capsys, "contacts", "export", "--list", "q1", "--out", str(target))
    assert code == 0 and "exported 4 contacts" in out
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["first_name"] for r in rows] == ["John", "Jane", "Bob", "Kim"]
    assert rows[3]["notes"] == "'-5" and rows[3]["company"] == ""  # the formula never got in; text starting with - is neutralised
    assert rows[0]["deal_stage"] == "proposal"

    code, out, _ = run(capsys, "contacts", "remove", lead_id, "--list", "vip")
    assert code == 0 and "removed" in out
    code, out, _ = run(capsys, "contacts", "remove", lead_id)
    assert code == 0 and "from the contact base" in out
    code, _, err = run(capsys, "contacts", "show", lead_id)
    assert code == 2 and "no contact" in err


def test_broken_files_are_clear_errors_and_import_nothing(workdir: Path, capsys) -> None:
    (workdir / "dup.csv").write_text("name,phone_number,Mobile,email\nAna,+14155552671,+14155552672,a@x.example\n")
    code, _, err = run(capsys, "contacts", "import", str(workdir / "dup.csv"), "--list", "x")
    assert code == 2 and "'phone' from columns 'phone_number', 'Mobile'" in err and "nothing was imported" in err
    code, out, _ = run(capsys, "contacts", "lists")
    assert "No lists yet" in out
