"""The blocking check `outbox_only_approved`: an outbox row without a matching approval stops `sends`."""

from __future__ import annotations

import pandas as pd

from outbound_pipeline.domain.review import ReviewRequest
from outbound_pipeline.engine.review_queue import record_decisions
from outbound_pipeline.store.warehouse import insert_new
from tests.conftest import MONDAY_MORNING
from tests.defs.s4_review.helpers import launch_review, ledger, materialize
from tests.defs.s4_review.test_modes import draft_ids, table


def smuggle_into_outbox(db, draft_id: str) -> str:
    """What a bug or a hand-written INSERT could do: queue a draft that nobody approved."""
    with db() as con:
        row = con.execute("""
            SELECT d.draft_id, d.campaign_id, d.touch, d.lead_id, d.channel, d.subject, d.body,
                   CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address
            FROM drafts d JOIN leads l USING (lead_id) WHERE d.draft_id = ?
        """, [draft_id]).df()
        send_id = draft_id.replace("drf_", "snd_")
        frame = row.assign(send_id=send_id, status="pending", cost_usd=0.0, attempts=0, recorded_at=MONDAY_MORNING, updated_at=MONDAY_MORNING,
                           segments=pd.array([pd.NA], dtype="Int64"))
        assert insert_new(con, "sends", frame) == 1
    return send_id


def check_outcome(result) -> tuple[bool, dict]:
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "outbox_only_approved")
    return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


def test_unapproved_outbox_row_fails_the_check_and_nothing_is_sent(driver, drafted, db):
    key = drafted("manual")
    ids = draft_ids(db, key)
    smuggled = smuggle_into_outbox(db, ids[0])

    result = launch_review(driver, key, {"reviewer": "dana", "approve": [ids[1]]})
    passed, meta = check_outcome(result)
    assert not passed and meta["unapproved"] == 1
    assert meta["examples"] == [{"send_id": smuggled, "draft_id": ids[0], "problem": "no approval row"}]
    assert not result.success
    assert result.asset_materializations_for_node("outbox") and not result.asset_materializations_for_node("sends")
    assert "sends" not in {e.step_key for e in result.all_events if e.is_step_success}
    assert ledger(driver) == []  # not the smuggled row, and not the approved one either: the whole send step was held
    assert table(db, "SELECT status FROM sends WHERE send_id = ?", [smuggled])["status"].tolist() == ["pending"]


def test_tampered_text_fails_the_check_and_dispatch_refuses_it_too(driver, drafted, db):
    key = drafted("manual")
    ids = draft_ids(db, key)
    campaign, touch = key.split(".t")
    with db() as con:
        record_decisions(con, campaign, int(touch), ReviewRequest(reviewer="dana", approve=ids[:2]), MONDAY_MORNING)
    assert materialize(driver, ["outbox"], key).success
    with db() as con:
        con.execute("UPDATE sends SET body = 'Totally different text nobody approved.' WHERE draft_id = ?", [ids[0]])

    result = materialize(driver, ["outbox", "sends"], key)
    passed, meta = check_outcome(result)
    assert not passed and meta["examples"][0]["problem"] == "text differs from the approved text"
    assert not result.asset_materializations_for_node("sends") and ledger(driver) == []

    # Materialising `sends` on its own skips the check; the dispatcher still refuses the tampered row.
    assert materialize(driver, ["sends"], key).success
    sends = table(db, "SELECT draft_id, send_id, status, error_message FROM sends").set_index("draft_id")
    assert sends.loc[ids[0], "status"] == "suppressed" and sends.loc[ids[0], "error_message"] == "text differs from the approved text"
    assert ledger(driver) == [sends.loc[ids[1], "send_id"]]
