"""Stage 1, import: launch a campaign, import its lead list, freeze its audience."""


import hashlib
import json

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import campaign_partitions, open_touch
from outbound_pipeline.defs.resources import CampaignCatalog, PipelineClock, Warehouse
from outbound_pipeline.domain.lead_list import import_lead_list
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED, record_event
from outbound_pipeline.markdown import md_table
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import insert_new, replace_where

GROUP = "s1_import"


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", kinds={"duckdb"})
def campaigns(context: dg.AssetExecutionContext, warehouse: Warehouse, catalog: CampaignCatalog, clock: PipelineClock) -> dg.MaterializeResult:
    """The campaign's validated YAML spec, frozen into the `campaigns` table; opens its first touch."""
    spec = catalog.spec(context.partition_key)
    spec_json = spec.model_dump_json()
    now = clock.now()
    row = pd.DataFrame([{
        "campaign_id": spec.name, "goal": spec.goal, "type": spec.type, "approval_mode": spec.approval,
        "lead_list": spec.audience.lead_list, "n_touches": spec.n_touches, "spec": spec_json,
        "spec_hash": hashlib.sha256(spec_json.encode()).hexdigest()[:16], "status": "running", "status_reason": None,
        "launched_at": now, "updated_at": now,
    }])
    row = validate("campaigns", row)
    with warehouse.connect() as con:
        existing = con.execute("SELECT spec_hash, status, launched_at FROM campaigns WHERE campaign_id = ?", [spec.name]).fetchall()
        existing = existing[0] if existing else None
        launching = not existing or existing[1] in NOT_LAUNCHED  # created or scheduled campaigns start now
        if existing and not launching:
            # Re-launching keeps the campaign's state and first launch time; only the spec is refreshed.
            row.loc[0, ["status", "launched_at"]] = [existing[1], existing[2]]
        replace_where(con, "campaigns", row, "campaign_id = ?", [spec.name])
        if launching:
            record_event(con, spec.name, existing[1] if existing else None, "running", "launched", "pipeline", now)
    opened = open_touch(context.instance, spec.name, 1)
    return dg.MaterializeResult(metadata={
        "campaign": spec.name, "type": spec.type, "approval": spec.approval, "touches": spec.n_touches,
        "spec_changed": bool(existing and existing[0] != row.loc[0, "spec_hash"]), "first_touch_opened": opened,
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec("leads", deps=["campaigns"], description="Clean, de-duplicated leads (E.164 phones, validated emails).",
                     group_name=GROUP, kinds={"duckdb"}),
        dg.AssetSpec("lead_rejects", deps=["campaigns"], description="Every lead-list line that was not imported, with its reason.",
                     group_name=GROUP, kinds={"duckdb"}),
    ],
    partitions_def=campaign_partitions,
    pool="duckdb",
)
def import_leads(context: dg.AssetExecutionContext, warehouse: Warehouse, catalog: CampaignCatalog, clock: PipelineClock):
    """Import the campaign's lead list. New leads are added, known ones refreshed without touching their status."""
    with warehouse.connect() as con:
        spec = campaign_spec(con, context.partition_key)
    result = import_lead_list(catalog.lead_list_path(spec), spec.audience.default_region, imported_at=clock.now())
    source = result.leads["source_list"].iloc[0] if not result.leads.empty else spec.audience.lead_list.rsplit("/", 1)[-1]
    with warehouse.connect() as con:
        before = con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
        if not result.leads.empty:
            leads = validate("leads", result.leads)
            con.register("_incoming_leads", leads)
            con.execute("""
                INSERT INTO leads SELECT * FROM _incoming_leads
                ON CONFLICT (lead_id) DO UPDATE SET
                    first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email,
                    phone = excluded.phone, company = excluded.company, role = excluded.role, country = excluded.country,
                    timezone = excluded.timezone, owner_email = excluded.owner_email, custom_vars = excluded.custom_vars
            """)
            con.unregister("_incoming_leads")
        added = con.execute("SELECT count(*) FROM leads").fetchall()[0][0] - before
        replace_where(con, "lead_rejects", result.rejects, "source_list = ?", [source])
    reasons = result.rejects["reason"].str.split(":").str[0].value_counts().to_dict() if not result.rejects.empty else {}
    yield dg.MaterializeResult(asset_key="leads", metadata={
        "lines_read": result.lines_read, "imported": len(result.leads), "new_leads": added,
        "with_email": int(result.leads["email"].notna().sum()) if not result.leads.empty else 0,
        "with_phone": int(result.leads["phone"].notna().sum()) if not result.leads.empty else 0,
    })
    yield dg.MaterializeResult(asset_key="lead_rejects", metadata={
        "rejected": len(result.rejects),
        "preview": dg.MetadataValue.md(md_table(result.rejects[["line_number", "reason"]]) if not result.rejects.empty else "none"),
        "reasons": dg.MetadataValue.json(reasons),
    })


def audience_mask(leads: pd.DataFrame, filters: dict) -> pd.Series:
    """Rows matching every `field: value | [values]` filter; fields are lead columns or custom variables."""
    mask = pd.Series(True, index=leads.index)
    custom = leads["custom_vars"].map(json.loads) if filters else None
    for field, wanted in filters.items():
        values = {str(v).lower() for v in (wanted if isinstance(wanted, list) else [wanted])}
        column = leads[field] if field in leads.columns else custom.map(lambda c, f=field: c.get(f))
        mask &= column.astype(str).str.lower().isin(values)
    return mask


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["leads"], kinds={"duckdb"})
def recipients(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """The campaign's audience, frozen at its first materialisation: later lead edits do not change who is targeted."""
    campaign_id = context.partition_key
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        if campaign_status(con, campaign_id) in NOT_LAUNCHED:  # the audience freezes at launch, not before
            return dg.MaterializeResult(metadata={"recipients": 0, "frozen": False, "added": 0})
        frozen = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
        if frozen:
            return dg.MaterializeResult(metadata={"recipients": frozen, "frozen": True, "added": 0})
        list_name = spec.audience.lead_list.rsplit("/", 1)[-1]
        leads = con.execute("SELECT * FROM leads WHERE source_list = ? AND status = 'active'", [list_name]).df()
        chosen = leads[audience_mask(leads, spec.audience.filter)]
        now = clock.now()
        frame = pd.DataFrame({
            "campaign_id": campaign_id, "lead_id": chosen["lead_id"], "status": "active", "status_reason": None,
            "variant": None, "added_at": now, "updated_at": now,
        })
        added = insert_new(con, "recipients", frame)
    return dg.MaterializeResult(metadata={"recipients": added, "frozen": False, "added": added, "filtered_out": len(leads) - len(chosen)})
