"""Tables stamped when a unit of work wrote them, so followers open the file only when what they read has changed."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from outbound_pipeline.engine.research import snippets_frame
from outbound_pipeline.providers.base import ResearchResult, Snippet
from outbound_pipeline.store import changes, warehouse
from outbound_pipeline.store.research import insert_snippets


def snippet_rows(lead_id: str) -> pd.DataFrame:
    snippet = Snippet(snippet_id=f"snp_{lead_id}", source_url="https://news.example/a", title="News", text="Something happened.")
    return snippets_frame("stamps", [ResearchResult(lead_id, "q", [snippet], "offline")], pd.Timestamp("2026-01-05 10:00").to_pydatetime())


def test_a_unit_that_wrote_a_table_moves_its_stamp_and_reading_moves_nothing(tmp_path):
    db = str(tmp_path / "outbound.duckdb")
    watch = warehouse.watch(db, ["research_snippets"])
    assert watch.changed()  # the first look always reads
    with warehouse.connect(db) as con:
        con.execute("SELECT 1").fetchall()
    assert not watch.changed()  # opening and reading stamps nothing
    with warehouse.connect(db) as con:
        assert insert_snippets(con, snippet_rows("lead_a")) > 0
    assert changes.stamp(db, "research_snippets") is not None
    assert watch.changed() and not watch.changed()
    with warehouse.connect(db) as con:
        assert insert_snippets(con, snippet_rows("lead_a")) == 0  # nothing new: the rows were there already
    assert watch.changed()  # a write was tried: the follower reads once more and finds nothing, which is harmless


def test_a_write_by_another_process_is_seen(tmp_path):
    db = str(tmp_path / "outbound.duckdb")
    with warehouse.connect(db) as con:
        con.execute("SELECT 1").fetchall()
    watch = warehouse.watch(db, ["drafts", "research_snippets"])
    watch.changed()
    code = ("import sys; from outbound_pipeline.store import warehouse; from outbound_pipeline.store.research import insert_snippets; "
            "from tests.store.test_changes import snippet_rows\n"
            "with warehouse.connect(sys.argv[1]) as con: insert_snippets(con, snippet_rows('lead_b'))")
    subprocess.run([sys.executable, "-c", code, db], check=True)
    assert watch.changed()


def test_a_write_that_left_no_stamp_is_still_read_after_a_while(tmp_path):
    db = str(tmp_path / "outbound.duckdb")
    now = [0.0]
    watch = changes.Watch(db, ["approvals"], at_least_every_s=2.0, clock=lambda: now[0])
    assert watch.changed() and not watch.changed()
    now[0] = 1.9
    assert not watch.changed()
    now[0] = 2.0
    assert watch.changed()  # a write made some other way (plain SQL) is taken up, later


def test_a_lake_keeps_no_stamps_and_is_read_at_every_poll(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTBOUND_STORE", "ducklake:postgres:dbname=lake")
    watch = warehouse.watch(str(tmp_path / "outbound.duckdb"), ["drafts"])
    assert watch.changed() and watch.changed()


def test_nested_units_stamp_what_each_wrote(tmp_path):
    db = str(tmp_path / "outbound.duckdb")
    with warehouse.connect(db) as con:
        con.execute("SELECT 1").fetchall()
    outer = warehouse.watch(db, ["research_snippets"])
    outer.changed()
    with warehouse.connect(db) as con:
        with warehouse.connect(db) as inner:
            insert_snippets(inner, snippet_rows("lead_c"))
        assert outer.changed()  # stamped when the inner unit closed, before the outer one did
        con.execute("SELECT count(*) FROM research_snippets").fetchall()
    assert not outer.changed()  # the outer unit only read
