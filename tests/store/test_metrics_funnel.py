"""Step drop-off: a recipient whose next step is not due yet is waiting, not dropped."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import funnel_frame, refresh_funnel_metrics
from tests.store.metrics_fixtures import DAY1, DAY2, build_campaign, insert

SPEC = {"name": "c1", "type": "drip", "goal": "Book a call.", "approval": "auto", "audience": {"lead_list": "x.csv"},
        "steps": [{"name": "step1", "intent": "introduce"}, {"name": "step2", "intent": "nudge", "delay": "1d"},
                  {"name": "step3", "intent": "close", "delay": "3d"}]}


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "f.duckdb") as connection:
        build_campaign(connection)
        spec = CampaignSpec.model_validate(SPEC)
        insert(connection, "campaigns", campaign_id="c1", goal="Book a call.", type="drip", approval_mode="auto", lead_list="x.csv",
               n_touches=3, spec=spec.model_dump_json(), spec_hash="h", status="running", launched_at=DAY1, updated_at=DAY1)
        statuses = {"L1": "replied", "L2": "active", "L3": "paused", "L4": "paused", "L5": "active", "L6": "active"}
        for lead, status in statuses.items():
            insert(connection, "recipients", campaign_id="c1", lead_id=lead, status=status, added_at=DAY1, updated_at=DAY1)
        yield connection


def steps(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("step")


def test_a_step_not_due_yet_is_waiting_not_dropped(con):
    # Day 2, 12:00: step 2 went to L2 and L6 (queued); L5's step 1 failed and it is still in the sequence with no message out:
    # waiting. L1 replied, L3 and L4 were paused: dropped. Step 3 (3 days after step 2) is due for nobody yet.
    funnel = steps(funnel_frame(con, DAY2 + timedelta(hours=2)))
    second = funnel.loc["step2"]
    assert (second["entered"], second["waiting"], second["dropped"], second["previous_entered"]) == (2, 1, 3, 5)
    assert second["dropoff_rate"] == pytest.approx(3 / 5)
    third = funnel.loc["step3"]
    assert (third["entered"], third["waiting"], third["dropped"], third["previous_entered"]) == (0, 2, 0, 0)
    assert pd.isna(third["dropoff_rate"])  # nobody's turn has come: no drop-off yet, not 100 %


def test_once_the_delay_has_passed_the_missing_step_is_drop_off(con):
    funnel = steps(funnel_frame(con, DAY2 + timedelta(days=4)))
    third = funnel.loc["step3"]
    # L2's step 2 went out on day 2: 3 days later step 3 was due and never came. L6's step 2 never left: still waiting.
    assert (third["entered"], third["waiting"], third["dropped"], third["dropoff_rate"]) == (0, 1, 1, 1.0)


def test_funnel_table_keeps_waiting(con):
    written = refresh_funnel_metrics(con, DAY2 + timedelta(hours=2))
    stored = con.execute("SELECT step, waiting FROM funnel_metrics ORDER BY touch").fetchall()
    assert stored == [("step1", None), ("step2", 1), ("step3", 2)]
    assert len(written) == 3 and json.loads(written.to_json(orient="records"))[0]["previous_steps"] is None
