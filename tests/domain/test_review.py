"""decide(): the rules every review path (launchpad, CLI, auto) goes through, without Dagster."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from outbound_pipeline.domain.review import ReviewError, ReviewRequest, decide

NOW = datetime(2026, 1, 5, 9, 0)


def drafts(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "draft_id": [f"drf_{i}" for i in range(n)], "campaign_id": "c", "touch": 1,
        "channel": ["sms", "whatsapp", "email"] * (n // 3) + ["email"] * (n % 3),
        "subject": None, "body": [f"text {i}" for i in range(n)],
    })


NONE = pd.DataFrame({"draft_id": pd.Series(dtype=str), "decision": pd.Series(dtype=str)})


def test_empty_request_records_nothing_and_needs_no_reviewer():
    assert decide(drafts(), NONE, "manual", ReviewRequest(reviewer=""), NOW).empty
    assert decide(drafts(), NONE, "batch", ReviewRequest(reviewer=""), NOW, spot_check=3).empty


def test_manual_rows_keep_original_and_final_text():
    rows = decide(drafts(), NONE, "manual", ReviewRequest("dana", approve=["drf_0"], reject=["drf_1"], edits={"drf_2": "new"}), NOW)
    got = rows.set_index("draft_id")
    assert got.loc["drf_0", ["decision", "final_body"]].tolist() == ["approved", "text 0"]
    assert got.loc["drf_1", "decision"] == "rejected" and got.loc["drf_1", "final_body"] is None
    assert got.loc["drf_2", ["decision", "original_body", "final_body"]].tolist() == ["edited", "text 2", "new"]
    assert set(got["reviewer"]) == {"dana"} and set(got["mode"]) == {"manual"} and (got["decided_at"] == NOW).all()


@pytest.mark.parametrize(("request_", "message"), [
    (ReviewRequest("dana", approve=["drf_0"], reject=["drf_0"]), "one decision, these were given several: drf_0"),
    (ReviewRequest("dana", approve=["drf_x"]), "not drafts of this touch: drf_x"),
    (ReviewRequest("dana", edits={"drf_2": "  "}), "an edit must carry the new text"),
    (ReviewRequest("dana", edits={"drf_0": "x" * 1601}), "drf_0: sms takes 1600"),
    (ReviewRequest("", approve=["drf_0"]), "a reviewer name is required"),
    (ReviewRequest("auto", approve=["drf_0"]), "'auto' is reserved"),
])
def test_refusals_name_the_problem(request_, message):
    with pytest.raises(ReviewError) as err:
        decide(drafts(), NONE, "manual", request_, NOW)
    assert message in str(err.value)


def test_batch_spot_check_counts_earlier_decisions_and_is_capped_by_the_touch_size():
    earlier = pd.DataFrame({"draft_id": ["drf_0", "drf_1"], "decision": ["approved", "rejected"]})
    with pytest.raises(ReviewError, match="needs 3 drafts spot-checked one by one first.*2 so far"):
        decide(drafts(), earlier, "batch", ReviewRequest("dana", approve_all_remaining=True), NOW, spot_check=3)
    rows = decide(drafts(), earlier, "batch", ReviewRequest("dana", approve=["drf_2"], approve_all_remaining=True), NOW, spot_check=3)
    assert sorted(rows["draft_id"]) == ["drf_2", "drf_3", "drf_4", "drf_5"] and set(rows["decision"]) == {"approved"}
    small = decide(drafts(2), NONE, "batch", ReviewRequest("dana", approve=["drf_0", "drf_1"], approve_all_remaining=True), NOW, spot_check=5)
    assert len(small) == 2


def test_auto_approves_the_undecided_as_auto_and_refuses_hand_decisions():
    earlier = pd.DataFrame({"draft_id": ["drf_0"], "decision": ["approved"]})
    rows = decide(drafts(), earlier, "auto", ReviewRequest(reviewer=""), NOW)
    assert len(rows) == 5 and set(rows["reviewer"]) == {"auto"} and set(rows["mode"]) == {"auto"}
    with pytest.raises(ReviewError, match="approves automatically"):
        decide(drafts(), NONE, "auto", ReviewRequest("dana", reject=["drf_1"]), NOW)
