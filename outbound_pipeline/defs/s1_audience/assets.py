"""Stage 1, audience: launch a campaign, import its lead list, freeze its audience."""

from collections.abc import Iterator

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions, open_touch
from outbound_pipeline.defs.resources import CampaignCatalog, PipelineClock, Warehouse
from outbound_pipeline.domain.audience import audience_mask
from outbound_pipeline.domain.lead_list import import_lead_list
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED
from outbound_pipeline.store import campaigns as campaign_store
from outbound_pipeline.store import contacts

GROUP = "s1_import"


def _selected(context: dg.AssetExecutionContext, results: dict[str, dict]) -> Iterator[dg.MaterializeResult]:
    """A result for each asset of the multi-asset the run selected (the table is written either way)."""
    for key, metadata in results.items():
        if dg.AssetKey(key) in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("campaigns", group_name=GROUP, kinds={"duckdb"},
                     description="The campaign's validated YAML spec, frozen at launch, and its status."),
        dg.AssetSpec("campaign_events", group_name=GROUP, kinds={"duckdb"},
                     description="Every lifecycle move of a campaign (launched, paused, resumed, stopped, completed), with who and why."),
    ],
    partitions_def=campaign_partitions, pool="duckdb", can_subset=True,
)
def campaigns(context: dg.AssetExecutionContext, catalog: CampaignCatalog, warehouse: Warehouse,
              clock: PipelineClock) -> Iterator[dg.MaterializeResult]:
    """Freeze the campaign's spec; a campaign not launched yet starts running (a `campaign_events` row); opens its first touch."""
    spec = catalog.spec(context.partition_key)
    with warehouse.connect() as con:
        launch = campaign_store.freeze_spec(con, spec, "pipeline", clock.now())
    opened = open_touch(context.instance, spec.name, 1)
    yield from _selected(context, {
        "campaigns": {"campaign": spec.name, "type": spec.type, "approval": spec.approval, "touches": spec.n_touches,
                      "spec_changed": launch.spec_changed, "first_touch_opened": opened},
        "campaign_events": {"launched": launch.launched, "launched_from": launch.previous_status or "new"},
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec("leads", deps=["campaigns"], description="Clean, de-duplicated leads (E.164 phones, validated emails).",
                     group_name=GROUP, kinds={"duckdb"}),
        dg.AssetSpec("lead_rejects", deps=["campaigns"], description="Every lead-list line that was not imported, with its reason.",
                     group_name=GROUP, kinds={"duckdb"}),
    ],
    partitions_def=campaign_partitions, pool="duckdb", can_subset=True,
)
def import_leads(context: dg.AssetExecutionContext, warehouse: Warehouse, catalog: CampaignCatalog,
                 clock: PipelineClock) -> Iterator[dg.MaterializeResult]:
    """Import the campaign's lead list. New leads are added, known ones refreshed without touching their status."""
    with warehouse.connect() as con:
        spec = campaign_store.campaign_spec(con, context.partition_key)
    result = import_lead_list(catalog.lead_list_path(spec), spec.audience.default_region, imported_at=clock.now())
    source = result.leads["source_list"].iloc[0] if not result.leads.empty else spec.audience.lead_list.rsplit("/", 1)[-1]
    with warehouse.connect() as con:
        added = contacts.upsert_leads(con, result.leads)
        contacts.replace_rejects(con, source, result.rejects)
    rejects = result.rejects
    reasons = {str(k): int(v) for k, v in rejects["reason"].str.split(":").str[0].value_counts().items()} if not rejects.empty else {}
    preview = rejects[["line_number", "reason"]].assign(reason=rejects["reason"].str.replace("|", "\\|", regex=False)) if not rejects.empty else None
    yield from _selected(context, {
        "leads": {
            "lines_read": result.lines_read, "imported": len(result.leads), "new_leads": added,
            "with_email": int(result.leads["email"].notna().sum()) if not result.leads.empty else 0,
            "with_phone": int(result.leads["phone"].notna().sum()) if not result.leads.empty else 0,
        },
        "lead_rejects": {
            "rejected": len(rejects),
            "preview": dg.MetadataValue.md(
                preview.head(50).to_markdown(index=False) + (f"\n\n_{len(preview) - 50} more rows not shown_" if len(preview) > 50 else "")
                if preview is not None else "none"),
            "reasons": dg.MetadataValue.json(reasons),
        },
    })


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["campaigns", "leads"], kinds={"duckdb"})
def recipients(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """The campaign's audience, frozen at its first materialisation after launch: later lead edits do not change who is targeted."""
    campaign_id = context.partition_key
    with warehouse.connect() as con:
        spec = campaign_store.campaign_spec(con, campaign_id)
        if campaign_store.campaign_status(con, campaign_id) in NOT_LAUNCHED:
            return dg.MaterializeResult(metadata={"recipients": 0, "frozen": False, "added": 0})
        frozen = contacts.recipient_count(con, campaign_id)
        if frozen:
            return dg.MaterializeResult(metadata={"recipients": frozen, "frozen": True, "added": 0})
        leads = contacts.active_leads_of_list(con, spec.audience.lead_list.rsplit("/", 1)[-1])
        chosen = leads[audience_mask(leads, spec.audience.filter)]
        added = contacts.freeze_audience(con, campaign_id, chosen["lead_id"], clock.now())
    return dg.MaterializeResult(metadata={"recipients": added, "frozen": False, "added": added, "filtered_out": len(leads) - len(chosen)})
