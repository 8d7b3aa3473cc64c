"""The campaigns table and its audit trail `campaign_events`: the spec frozen at launch, the status and every move of it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd
from pydantic import ValidationError

from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED, IllegalTransition, check, is_final
from outbound_pipeline.domain.loader import UnknownCampaignError
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.spec_changes import describe, differences
from outbound_pipeline.ids import stable_id
from outbound_pipeline.store.warehouse import insert_new


def campaign_spec(con: duckdb.DuckDBPyConnection, campaign_id: str) -> CampaignSpec:
    """The spec frozen when the campaign was launched."""
    row = con.execute("SELECT spec FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    if not row:
        raise UnknownCampaignError(f"campaign {campaign_id!r} has not been launched: materialise its `campaigns` partition first")
    return CampaignSpec.model_validate_json(row[0][0])


def current_status(con: duckdb.DuckDBPyConnection, campaign_id: str) -> str | None:
    """The campaign's status, None when it has no row yet."""
    row = con.execute("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    return row[0][0] if row else None


def campaign_status(con: duckdb.DuckDBPyConnection, campaign_id: str) -> str:
    """The campaign's status, 'unknown' when it has no row yet (for metadata and messages)."""
    return current_status(con, campaign_id) or "unknown"


def campaign_frame(spec: CampaignSpec, status: str, now: datetime) -> pd.DataFrame:
    """The campaign's row: its spec frozen as JSON with a short hash, so a changed file shows as a changed hash."""
    spec_json = spec.model_dump_json()
    return pd.DataFrame([{
        "campaign_id": spec.name, "goal": spec.goal, "type": spec.type, "approval_mode": spec.approval,
        "lead_list": spec.audience.lead_list, "n_touches": spec.n_touches, "spec": spec_json,
        "spec_hash": hashlib.sha256(spec_json.encode()).hexdigest()[:16], "status": status, "status_reason": None,
        "launched_at": now, "updated_at": now,
    }])


def record_event(con: duckdb.DuckDBPyConnection, campaign_id: str, from_status: str | None, to_status: str, reason: str | None,
                 actor: str, now: datetime, scheduled_for: datetime | None = None) -> None:
    """One `campaign_events` row; `seq` orders the moves made at the same instant."""
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM campaign_events WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    insert_new(con, "campaign_events", pd.DataFrame([{
        "event_id": stable_id("cev", campaign_id, from_status, to_status, now.isoformat(), reason),
        "campaign_id": campaign_id, "from_status": from_status, "to_status": to_status, "reason": reason, "actor": actor,
        "scheduled_for": scheduled_for, "occurred_at": now, "seq": seq,
    }]))


def create(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, actor: str, now: datetime) -> None:
    """Record a new campaign as a draft; a campaign that exists already is refused."""
    status = current_status(con, spec.name)
    if status is not None:
        raise ValueError(f"campaign {spec.name!r} already exists ({status}); use duplicate to start a copy")
    insert_new(con, "campaigns", campaign_frame(spec, "draft", now))
    record_event(con, spec.name, None, "draft", "created", actor, now)


class SpecFrozen(ValueError):
    """The campaign was launched with another version of its spec; a launched campaign's spec never changes."""

    def __init__(self, campaign_id: str, status: str, changes: list[str]):
        self.changes = changes
        super().__init__(
            f"campaign {campaign_id!r} is {status} and runs on the spec frozen at its launch; its file has changed since, "
            f"so nothing was written:\n{describe(changes)}\nRestore the file, or duplicate the campaign "
            f"(`outbound campaign duplicate {campaign_id} <new name>`) to run the edited version.")


@dataclass(frozen=True)
class Launch:
    """What freezing a spec did: the status it found, whether it started the campaign, and the status now."""

    previous_status: str | None
    launched: bool
    status: str


def frozen_changes(frozen_json: str, spec: CampaignSpec) -> list[str]:
    """What `spec` changes compared with the frozen one (read through today's model, so new defaulted fields are no change)."""
    try:
        frozen = CampaignSpec.model_validate_json(frozen_json).model_dump(mode="json")
    except ValidationError:
        frozen = json.loads(frozen_json)
    return differences(frozen, spec.model_dump(mode="json"))


def freeze_spec(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, actor: str, now: datetime) -> Launch:
    """Freeze the spec into the campaign's row. A new, draft or scheduled campaign starts running now: its row and its
    `launched` event are written in one transaction. A launched campaign is left as it is when the spec is the one it was
    launched with, and refused (`SpecFrozen`, nothing written) when the file has been edited since."""
    found = con.execute("SELECT spec, status FROM campaigns WHERE campaign_id = ?", [spec.name]).fetchall()
    frozen_json, previous_status = found[0] if found else (None, None)
    if previous_status is not None and previous_status not in NOT_LAUNCHED:
        changes = frozen_changes(frozen_json, spec)
        if changes:
            raise SpecFrozen(spec.name, previous_status, changes)
        return Launch(previous_status, launched=False, status=previous_status)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM campaigns WHERE campaign_id = ?", [spec.name])
        insert_new(con, "campaigns", campaign_frame(spec, "running", now))
        record_event(con, spec.name, previous_status, "running", "launched", actor, now)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return Launch(previous_status, launched=True, status="running")


@dataclass(frozen=True)
class Snapshot:
    """A campaign's state before a launch, to put back if the launch fails part way."""

    campaign_id: str
    row: pd.DataFrame  # its campaigns row (empty when it had none)
    last_event: int  # the seq of its last campaign_events row (0: none)
    had_recipients: bool


def snapshot(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Snapshot:
    row = con.execute("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id]).df()
    last = con.execute("SELECT coalesce(max(seq), 0) FROM campaign_events WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    recipients = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    return Snapshot(campaign_id, row, int(last), recipients > 0)


def restore(con: duckdb.DuckDBPyConnection, before: Snapshot) -> None:
    """Put the campaign back as `before` saw it: its row, its events, and no audience if it had none (one transaction).
    Imported leads stay: they belong to the lead list, not to the campaign."""
    campaign_id = before.campaign_id
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM campaigns WHERE campaign_id = ?", [campaign_id])
        if not before.row.empty:
            con.register("_before", before.row)
            con.execute("INSERT INTO campaigns SELECT * FROM _before")
            con.unregister("_before")
        con.execute("DELETE FROM campaign_events WHERE campaign_id = ? AND seq > ?", [campaign_id, before.last_event])
        if not before.had_recipients:
            con.execute("DELETE FROM recipient_steps WHERE campaign_id = ?", [campaign_id])
            con.execute("DELETE FROM recipients WHERE campaign_id = ?", [campaign_id])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def transition(con: duckdb.DuckDBPyConnection, campaign_id: str, target: str, reason: str | None, actor: str, now: datetime,
               scheduled_for: datetime | None = None) -> str:
    """Move an existing campaign to `target` (legal moves only), audited; returns the status it had.

    A final move (stopped, completed) also ends the campaign's traffic: queued sends are suppressed and
    active recipients closed with the campaign's status.
    """
    current = current_status(con, campaign_id)
    if current is None:
        raise IllegalTransition(f"campaign {campaign_id!r} does not exist yet: run `outbound campaign create {campaign_id}` first")
    check(campaign_id, current, target)
    con.execute("UPDATE campaigns SET status = ?, status_reason = ?, updated_at = ? WHERE campaign_id = ?", [target, reason, now, campaign_id])
    record_event(con, campaign_id, current, target, reason, actor, now, scheduled_for)
    if is_final(target):
        con.execute("""UPDATE sends SET status = 'suppressed', error_message = 'campaign ' || ?, updated_at = ?
                       WHERE campaign_id = ? AND status = 'pending'""", [target, now, campaign_id])
        con.execute("""UPDATE recipients SET status = ?, status_reason = 'campaign ' || ?, updated_at = ?
                       WHERE campaign_id = ? AND status = 'active'""", [target, target, now, campaign_id])
    return current


def status_overview(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """Every campaign (or one) with its status, audience size, active recipients, sent and queued messages."""
    return con.execute("""
        SELECT c.campaign_id, c.type, c.status, c.status_reason,
               (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.campaign_id) AS recipients,
               (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.campaign_id AND r.status = 'active') AS active,
               (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status = 'sent') AS sent,
               (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status IN ('pending', 'sending')) AS queued
        FROM campaigns c WHERE ?::VARCHAR IS NULL OR c.campaign_id = ? ORDER BY c.campaign_id
    """, [campaign_id, campaign_id]).df()


def status_history(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """The campaign's lifecycle moves, oldest first."""
    return con.execute("""SELECT occurred_at, from_status, to_status, reason, actor FROM campaign_events
                          WHERE campaign_id = ? ORDER BY occurred_at, seq""", [campaign_id]).df()


def record_test_send(con: duckdb.DuckDBPyConnection, row: dict[str, object]) -> None:
    """Keep a test send in `test_sends`, apart from the campaign's sends and metrics."""
    insert_new(con, "test_sends", pd.DataFrame([row]))


def campaign_metrics(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """The `campaign_metrics` rows of every campaign (or one), whole campaign (touch 0) first."""
    return con.execute("SELECT * FROM campaign_metrics WHERE ?::VARCHAR IS NULL OR campaign_id = ? ORDER BY campaign_id, touch",
                       [campaign_id, campaign_id]).df()
