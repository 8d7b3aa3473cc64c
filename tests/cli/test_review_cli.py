"""`outbound review ...`: the same rules and rows as the launchpad, from a terminal."""

from __future__ import annotations

import dagster as dg
import pytest

from outbound_pipeline.cli.main import main
from outbound_pipeline.defs.partitions import touch_partitions
from tests.conftest import MONDAY_MORNING
from tests.defs.s4_review.helpers import ledger
from tests.defs.s4_review.test_modes import draft_ids, handed, table


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run `outbound ...` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("OUTBOUND_NOW", MONDAY_MORNING.isoformat())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_review_from_the_terminal_batch_mode(cli, drafted, db, driver, tmp_path, monkeypatch):
    key = drafted("batch")  # batch_spot_check: 3
    ids = draft_ids(db, key)
    where = ["--campaign", "review_batch", "--touch", "1"]

    code, out, _ = cli("review", "list", *where)
    assert code == 0
    assert f"{len(ids)} drafts: {len(ids)} waiting, 0 approved" in out and "approval mode: batch" in out
    assert all(d in out for d in ids) and "grounded in:" in out and "<https://" in out and "lead: " in out

    code, _, err = cli("review", "approve-rest", *where, "--reviewer", "dana")
    assert code == 2 and "needs 3 drafts spot-checked" in err

    assert cli("review", "approve", ids[0], ids[1], "--reviewer", "dana")[0] == 0
    code, out, _ = cli("review", "reject", ids[2], "--reviewer", "dana", "--note", "wrong company")
    assert code == 0 and "recorded 1 rejected (reviewer dana)" in out and "outbound review send --campaign review_batch --touch 1" in out
    assert cli("review", "edit", ids[3], "--text", "Edited from the terminal.", "--reviewer", "dana")[0] == 0
    letter = tmp_path / "edit.txt"
    letter.write_text("Edited from a file,\nover two lines.\n", encoding="utf-8")
    monkeypatch.setenv("OUTBOUND_REVIEWER", "lee")
    assert cli("review", "edit", ids[4], "--file", str(letter))[0] == 0

    code, _, err = cli("review", "reject", ids[0], "--reviewer", "lee")
    assert code == 2 and "already decided" in err and f"{ids[0]} (approved by dana" in err
    code, _, err = cli("review", "approve", "drf_0000000000000000", ids[5])
    assert code == 2 and "no such draft: drf_0000000000000000" in err

    code, out, _ = cli("review", "approve-rest", *where)
    assert code == 0 and f"recorded {len(ids) - 5} approved (reviewer lee)" in out
    code, out, _ = cli("review", "list", *where)
    assert f"{len(ids)} drafts: 0 waiting, {len(ids) - 3} approved, 2 edited, 1 rejected" in out and "Nothing is waiting" in out

    rows = table(db, "SELECT * FROM approvals").set_index("draft_id")
    assert len(rows) == len(ids) and set(rows["mode"]) == {"batch"}
    assert rows.loc[ids[2], "note"] == "wrong company" and rows.loc[ids[4], "final_body"] == "Edited from a file,\nover two lines."
    assert rows.loc[ids[4], "reviewer"] == "lee" and rows.loc[ids[3], "reviewer"] == "dana"
    assert table(db, "SELECT * FROM sends").empty  # recording decisions sends nothing by itself

    with dg.DagsterInstance.get() as instance:  # the instance `outbound review send` records its run in
        instance.add_dynamic_partitions(touch_partitions.name, [key])
    code, out, err = cli("review", "send", *where)
    assert code == 0, err
    assert f"{key}: queued {len(ids) - 1}; sent" in out
    sends = table(db, "SELECT draft_id, send_id, status, body FROM sends").set_index("draft_id")
    assert set(sends.index) == set(ids) - {ids[2]} and sends.loc[ids[3], "body"] == "Edited from the terminal."
    assert sorted(ledger(driver)) == sorted(handed(sends)["send_id"])
