"""Manual, batch and auto review, driven through the real `review_job` and its launchpad config."""

from __future__ import annotations

import pytest

from outbound_pipeline.providers.channel_offline import OfflineChannel
from outbound_pipeline.runner import TOUCH
from tests.conftest import MONDAY_MORNING
from tests.defs.s4_review.helpers import failure_message, launch_review, ledger


def table(db, sql: str, params: list | None = None):
    with db() as con:
        return con.execute(sql, params or []).df()


def draft_ids(db, key: str) -> list[str]:
    """The touch's drafts, those of leads inside the sending window on Monday morning (Europe, or no zone) first."""
    campaign, touch = key.split(".t")
    return list(table(db, """
        SELECT draft_id FROM drafts d JOIN leads l USING (lead_id) WHERE campaign_id = ? AND touch = ?
        ORDER BY coalesce(l.timezone, 'Europe/') LIKE 'Europe/%' DESC, draft_id
    """, [campaign, int(touch)])["draft_id"])


def handed(sends):
    """Rows handed to the provider: `sent` or `failed` (the offline channel simulates failures); `pending` ones wait for their window."""
    assert sends["status"].isin(["sent", "failed", "pending"]).all()
    return sends[sends["status"] != "pending"]


@pytest.fixture
def provider_bodies(monkeypatch) -> dict[str, str]:
    """send_id -> the text the channel provider was actually handed."""
    seen: dict[str, str] = {}
    original = OfflineChannel.send

    def recording(self, message):
        seen[message.send_id] = message.body
        return original(self, message)

    monkeypatch.setattr(OfflineChannel, "send", recording)
    return seen


def test_manual_nothing_is_sent_until_approved_then_exactly_the_decisions(driver, drafted, db, provider_bodies):
    key = drafted("manual")
    ids = draft_ids(db, key)
    assert len(ids) >= 8

    touch = driver.run(TOUCH, MONDAY_MORNING, key)  # what the cadence sensor runs: no decision in config
    meta = touch.asset_materializations_for_node("approvals")[0].metadata
    assert meta["waiting"].value == len(ids) and meta["approved"].value == 0 and meta["decisions_recorded"].value == 0
    queue = meta["review_queue"].value
    assert ids[0] in queue and "| draft_id | lead | channel | text | snippets |" in queue
    assert "**Grounded in:**" in queue and "](https://" in queue  # cited snippets with their URLs
    assert table(db, "SELECT * FROM sends").empty and ledger(driver) == []

    approve, reject, edit = ids[:3], ids[3:5], ids[5]
    new_text = "Hi, a shorter note written by the reviewer: would a 20-minute call next week help?"
    result = launch_review(driver, key, {"approve": approve, "reject": reject, "edits": {edit: new_text}, "note": "first pass"},
                           tags={"reviewer": "dana@example.com"})
    assert result.success, failure_message(result)
    meta = result.asset_materializations_for_node("approvals")[0].metadata
    assert (meta["approved"].value, meta["edited"].value, meta["rejected"].value) == (3, 1, 2)
    assert meta["waiting"].value == len(ids) - 6
    assert reject[0] not in meta["review_queue"].value and ids[6] in meta["review_queue"].value

    rows = table(db, "SELECT * FROM approvals ORDER BY draft_id").set_index("draft_id")
    assert set(rows["reviewer"]) == {"dana@example.com"} and set(rows["mode"]) == {"manual"} and set(rows["note"]) == {"first pass"}
    original = table(db, "SELECT body FROM drafts WHERE draft_id = ?", [edit])["body"][0]
    assert rows.loc[edit, "decision"] == "edited" and rows.loc[edit, "original_body"] == original and rows.loc[edit, "final_body"] == new_text
    assert rows.loc[reject, "final_body"].isna().all() and rows["decided_at"].notna().all()

    sends = table(db, "SELECT * FROM sends").set_index("draft_id")
    assert set(sends.index) == {*approve, edit}  # the rejected and the undecided are not in the outbox
    assert sorted(ledger(driver)) == sorted(handed(sends)["send_id"]) and len(handed(sends)) == 4
    assert provider_bodies[sends.loc[edit, "send_id"]] == new_text  # the provider got the edited text
    assert sends.loc[edit, "body"] == new_text

    # A later touch run (the cadence sensor) keeps the rejected and the undecided away from every channel.
    driver.run(TOUCH, MONDAY_MORNING, key)
    assert set(table(db, "SELECT draft_id FROM sends")["draft_id"]) == {*approve, edit}


def test_deciding_twice_is_an_error_and_records_nothing(driver, drafted, db):
    key = drafted("manual")
    ids = draft_ids(db, key)
    assert launch_review(driver, key, {"reviewer": "dana", "approve": [ids[0]]}).success

    again = launch_review(driver, key, {"reviewer": "lee", "reject": [ids[0]], "approve": [ids[1]]})
    assert not again.success
    message = failure_message(again)
    assert "already decided" in message and ids[0] in message and "approved by dana" in message
    decided = table(db, "SELECT draft_id, decision, reviewer FROM approvals")
    assert decided.to_dict("records") == [{"draft_id": ids[0], "decision": "approved", "reviewer": "dana"}]  # ids[1] not recorded either

    nobody = launch_review(driver, key, {"approve": [ids[3]]})
    assert not nobody.success and "reviewer name is required" in failure_message(nobody)
    assert table(db, "SELECT draft_id FROM sends")["draft_id"].tolist() == [ids[0]]  # only what was approved


def test_reviewer_comes_from_config_then_run_tags(driver, drafted, db):
    key = drafted("manual")
    ids = draft_ids(db, key)
    assert launch_review(driver, key, {"approve": [ids[0]]}, tags={"dagster/user": "ui-user@example.com"}).success
    assert launch_review(driver, key, {"approve": [ids[1]], "reviewer": "named"}, tags={"reviewer": "tagged"}).success
    assert launch_review(driver, key, {"approve": [ids[2]]}, tags={"reviewer": "tagged", "dagster/user": "ui-user@example.com"}).success
    who = table(db, "SELECT draft_id, reviewer FROM approvals").set_index("draft_id")["reviewer"]
    assert (who[ids[0]], who[ids[1]], who[ids[2]]) == ("ui-user@example.com", "named", "tagged")


def test_batch_approve_all_remaining_only_after_the_spot_check(driver, drafted, db):
    key = drafted("batch")  # batch_spot_check: 3
    ids = draft_ids(db, key)

    early = launch_review(driver, key, {"reviewer": "dana", "approve": [ids[0]], "approve_all_remaining": True})
    assert not early.success
    assert "needs 3 drafts spot-checked one by one first" in failure_message(early) and "1 so far" in failure_message(early)
    assert table(db, "SELECT * FROM approvals").empty and table(db, "SELECT * FROM sends").empty

    assert launch_review(driver, key, {"reviewer": "dana", "approve": [ids[0]], "reject": [ids[1]]}).success
    done = launch_review(driver, key, {"reviewer": "dana", "edits": {ids[2]: "Edited during the spot check."}, "approve_all_remaining": True})
    assert done.success, failure_message(done)
    assert done.asset_materializations_for_node("approvals")[0].metadata["waiting"].value == 0

    rows = table(db, "SELECT * FROM approvals").set_index("draft_id")
    assert len(rows) == len(ids) and set(rows["mode"]) == {"batch"} and set(rows["reviewer"]) == {"dana"}
    rest = rows.drop(index=ids[:3])
    assert (rest["decision"] == "approved").all() and set(rest["note"]) == {"approved with the rest of the touch"}
    sends = table(db, "SELECT draft_id, send_id, status FROM sends")
    assert set(sends["draft_id"]) == set(ids) - {ids[1]}
    assert sorted(ledger(driver)) == sorted(handed(sends)["send_id"])


def test_auto_mode_approves_everything_and_says_so(driver, drafted, db):
    key = drafted("auto")
    ids = draft_ids(db, key)
    result = driver.run(TOUCH, MONDAY_MORNING, key)
    assert result.asset_materializations_for_node("approvals")[0].metadata["decisions_recorded"].value == len(ids)
    rows = table(db, "SELECT * FROM approvals")
    assert len(rows) == len(ids) and set(rows["reviewer"]) == {"auto"} and set(rows["mode"]) == {"auto"}
    assert set(rows["decision"]) == {"approved"} and rows["note"].str.contains("auto").all()
    sends = table(db, "SELECT draft_id, send_id, status FROM sends")
    assert set(sends["draft_id"]) == set(ids) and sorted(ledger(driver)) == sorted(handed(sends)["send_id"])

    refused = launch_review(driver, key, {"reviewer": "dana", "reject": [ids[0]]})
    assert not refused.success and "approves automatically" in failure_message(refused)


def test_readme_launchpad_example_is_valid_review_job_config():
    import re

    import dagster as dg
    import yaml

    from outbound_pipeline import settings
    from outbound_pipeline.definitions import defs

    readme = (settings.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(ops:\n  approvals:.*?)```", readme, re.S)
    assert example, "README shows a launchpad config for review_job"
    config = yaml.safe_load(example.group(1))
    assert dg.validate_run_config(defs.resolve_job_def("review_job"), config)["ops"]["approvals"]["config"]["reject"]
