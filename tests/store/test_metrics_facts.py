"""send_facts folded in incrementally gives the same figures as folding the whole history at once."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metric_facts import fold_send_facts
from outbound_pipeline.store.metrics import funnel_frame, rollup, variant_frame
from tests.store.metrics_fixtures import DAY1, DAY2, build_campaign, insert, send

LATER = DAY2 + timedelta(days=3)


def _second_day(con) -> None:
    """What arrives later: L6's queued step 2 goes out and is opened and answered; L3 gets a late reply to step 1."""
    con.execute("UPDATE sends SET status = 'sent', sent_at = ?, updated_at = ? WHERE send_id = 's_L6_2'", [DAY2, DAY2 + timedelta(days=1)])
    insert(con, "delivery_events", event_id="e_late_1", send_id="s_L6_2", campaign_id="c1", touch=2, lead_id="L6", channel="email",
           event_type="delivered", occurred_at=DAY2 + timedelta(minutes=1), ingested_at=DAY2 + timedelta(days=1))
    insert(con, "delivery_events", event_id="e_late_2", send_id="s_L6_2", campaign_id="c1", touch=2, lead_id="L6", channel="email",
           event_type="opened", occurred_at=DAY2 + timedelta(hours=3), ingested_at=DAY2 + timedelta(days=1))
    insert(con, "replies", reply_id="r_late", send_id="s_L3_1", campaign_id="c1", touch=1, lead_id="L3", channel="email",
           intent="interested", received_at=DAY2 + timedelta(hours=5), ingested_at=DAY2 + timedelta(days=1))
    send(con, "L7", 1, "sms", "sent", DAY2 + timedelta(hours=20), ("delivered",), "A")


def _figures(con) -> pd.DataFrame:
    return rollup(con, LATER).drop(columns=["computed_at"]).sort_values(["touch", "channel", "variant"]).reset_index(drop=True)


def _whole_history(tmp_path) -> pd.DataFrame:
    with warehouse.connect(tmp_path / "whole.duckdb") as con:
        build_campaign(con)
        _second_day(con)
        return _figures(con)


def test_folding_day_by_day_equals_folding_everything_at_once(tmp_path):
    with warehouse.connect(tmp_path / "daily.duckdb") as con:
        build_campaign(con)
        first = _figures(con)
        _second_day(con)
        assert con.execute("SELECT count(*) FROM send_facts").fetchall() == [(8,)]  # nothing folded since
        second = _figures(con)
        assert con.execute("SELECT count(*) FROM send_facts").fetchall() == [(9,)]
        folds = dict(con.execute("SELECT source, folded_to FROM send_facts_folds").fetchall())
    pd.testing.assert_frame_equal(second, _whole_history(tmp_path))
    whole, then = second[second["touch"] == 0].iloc[0], first[first["touch"] == 0].iloc[0]
    assert (then["sent"], then["queued"], then["replied"], then["leads_reached"]) == (6, 1, 2, 4)
    assert (whole["sent"], whole["queued"], whole["replied"], whole["leads_reached"]) == (8, 0, 3, 6)  # L3 answered, L7 reached
    assert folds["delivery_events"] == DAY2 + timedelta(days=1)


def _third_day(con) -> None:
    """Only engagement arrives: L7's SMS is clicked (no open for SMS), L6's step 2 opened again, by a machine a second after delivery."""
    for n, (send_id, lead, touch, channel, event_type, at) in enumerate([
            ("s_L6_2", "L6", 2, "email", "opened", DAY2 + timedelta(minutes=1, seconds=1)),
            ("s_L7_1", "L7", 1, "sms", "clicked", DAY2 + timedelta(hours=22))]):
        insert(con, "delivery_events", event_id=f"e_third_{n}", send_id=send_id, campaign_id="c1", touch=touch, lead_id=lead, channel=channel,
               event_type=event_type, occurred_at=at, ingested_at=DAY2 + timedelta(days=2))


def test_a_fold_of_opens_and_clicks_alone_leaves_the_other_facts_as_they_were(tmp_path):
    """A tick that brings only some kinds of event writes only the facts they change, and agrees with a fold of everything."""
    with warehouse.connect(tmp_path / "ticks.duckdb") as con:
        build_campaign(con)
        _figures(con)
        _second_day(con)
        _figures(con)
        before = con.execute("SELECT * EXCLUDE (opened_at, human_opened_at, clicked_at) FROM send_facts ORDER BY draft_id").df()
        _third_day(con)
        incremental = _figures(con)
        after = con.execute("SELECT * EXCLUDE (opened_at, human_opened_at, clicked_at) FROM send_facts ORDER BY draft_id").df()
        facts = con.execute("SELECT * FROM send_facts ORDER BY draft_id").df()
    pd.testing.assert_frame_equal(before, after)
    clicked = facts.set_index("send_id")["clicked_at"]
    assert clicked["s_L7_1"] == DAY2 + timedelta(hours=22)
    with warehouse.connect(tmp_path / "whole.duckdb") as con:
        build_campaign(con)
        _second_day(con)
        _third_day(con)
        pd.testing.assert_frame_equal(incremental, _figures(con))
        pd.testing.assert_frame_equal(facts, con.execute("SELECT * FROM send_facts ORDER BY draft_id").df())


def test_rows_stamped_before_the_last_fold_rebuild_the_facts(tmp_path):
    with warehouse.connect(tmp_path / "late.duckdb") as con:
        build_campaign(con)
        _figures(con)
        # an event imported late, stamped before the last fold: noticed by the row count
        insert(con, "delivery_events", event_id="e_old", send_id="s_L5_1", campaign_id="c1", touch=1, lead_id="L5", channel="whatsapp",
               event_type="read", occurred_at=DAY1 + timedelta(hours=1), ingested_at=DAY1)
        assert con.execute("SELECT read_at FROM send_facts WHERE send_id = 's_L5_1'").fetchall() == [(None,)]
        fold_send_facts(con)
        assert con.execute("SELECT read_at FROM send_facts WHERE send_id = 's_L5_1'").fetchall() == [(DAY1 + timedelta(hours=1),)]


def test_a_read_only_connection_folds_into_temporary_copies(tmp_path):
    path = tmp_path / "ro.duckdb"
    with warehouse.connect(path) as con:
        build_campaign(con)
        _figures(con)
        _second_day(con)
    with warehouse.connect(path, read_only=True) as con:
        figures = _figures(con)
        assert len(variant_frame(con, LATER)) == 2
    pd.testing.assert_frame_equal(figures, _whole_history(tmp_path))
    with warehouse.connect(path, read_only=True) as con:  # the file itself was not written
        assert con.execute("SELECT count(*) FROM send_facts").fetchall() == [(8,)]


def test_funnel_reads_the_facts(tmp_path):
    with warehouse.connect(tmp_path / "f.duckdb") as con:
        build_campaign(con)
        assert funnel_frame(con, LATER).empty  # no launched campaign: no step graph
        assert fold_send_facts(con) == 8
        assert con.execute("SELECT count(*) FILTER (WHERE human_opened_at IS NOT NULL), count(*) FILTER (WHERE converted_at IS NOT NULL) "
                           "FROM send_facts").fetchall() == [(2, 1)]  # L1 and L2 opened 20 min after delivery; L2 converted


@pytest.mark.parametrize("table", ["drafts", "sends", "replies"])
def test_no_rows_no_facts(tmp_path, table):
    with warehouse.connect(tmp_path / "e.duckdb") as con:
        assert fold_send_facts(con) == 0
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]


class _Recording:
    """A connection that notes every statement it runs."""

    def __init__(self, con) -> None:
        self.con, self.statements = con, []

    def execute(self, sql, *args, **kwargs):
        self.statements.append(" ".join(str(sql).split()))
        return self.con.execute(sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        return self.con.executemany(sql, *args, **kwargs)


def test_a_fold_runs_no_statement_for_a_source_with_nothing_new(tmp_path):
    """A day that brought only events folds only events: the drafts, steps and sends statements (each a scan and a join)
    are not run, and the facts are those of a fold of everything."""
    with warehouse.connect(tmp_path / "quiet.duckdb") as con:
        build_campaign(con)
        _figures(con)
        _second_day(con)
        _figures(con)
        _third_day(con)
        recording = _Recording(con)
        fold_send_facts(recording)  # type: ignore[arg-type]
        facts = con.execute("SELECT * FROM send_facts ORDER BY draft_id").df()
    folds = [s for s in recording.statements if s.startswith(("INSERT INTO send_facts ", "UPDATE send_facts"))]
    assert len(folds) == 1 and "FROM delivery_events" in folds[0]  # the events' fold, nothing else
    with warehouse.connect(tmp_path / "whole.duckdb") as con:
        build_campaign(con)
        _second_day(con)
        _third_day(con)
        fold_send_facts(con)
        pd.testing.assert_frame_equal(facts, con.execute("SELECT * FROM send_facts ORDER BY draft_id").df())
