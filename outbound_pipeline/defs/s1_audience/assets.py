"""Stage 1, audience: launch a campaign, import its lead list into the contact base, freeze its audience from its lists and segment."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions, open_touch
from outbound_pipeline.defs.resources import CampaignCatalog, PipelineClock, Warehouse
from outbound_pipeline.domain.audience import lead_list_name
from outbound_pipeline.domain.lead_list import LeadListError, import_lead_list
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED
from outbound_pipeline.domain.loader import CampaignSpecError, UnknownCampaignError
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.engine.template_check import check_variables
from outbound_pipeline.store import campaigns as campaign_store
from outbound_pipeline.store import contacts, segments

GROUP = "s1_import"


def _selected(context: dg.AssetExecutionContext, results: dict[str, dict]) -> Iterator[dg.MaterializeResult]:
    """A result for each asset of the multi-asset the run selected (the table is written either way)."""
    for key, metadata in results.items():
        if dg.AssetKey(key) in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _check_lead_list(catalog: CampaignCatalog, spec: CampaignSpec, now: datetime) -> int:
    """Read the lead list before anything is written, so a list that cannot be imported refuses the launch and leaves the
    campaign as it was (not running with no audience). Returns how many leads it holds."""
    if not spec.audience.lead_list:
        return 0
    path = catalog.lead_list_path(spec)
    try:
        result = import_lead_list(path, spec.audience.default_region, imported_at=now)
    except LeadListError as exc:
        raise dg.Failure(description=f"launch of {spec.name!r} refused, the campaign is unchanged: {exc}", allow_retries=False) from None
    if result.leads.empty:
        raise dg.Failure(description=f"launch of {spec.name!r} refused, the campaign is unchanged: lead list {path} has no "
                                     f"importable lead ({len(result.rejects)} line(s) rejected)", allow_retries=False)
    return len(result.leads)


def _check_template_variables(catalog: CampaignCatalog, warehouse: Warehouse, spec: CampaignSpec) -> None:
    """Refuse the launch, with nothing written, when a template uses a variable no contact of the audience can fill."""
    path = Path(catalog.lead_list_path(spec)) if spec.audience.lead_list else None
    with warehouse.connect() as con:
        problems = check_variables(con, spec, path).problems
    if problems:
        raise dg.Failure(description=f"launch of {spec.name!r} refused, the campaign is unchanged: template variables no contact can "
                                     f"fill: {'; '.join(problems)}", allow_retries=False)


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
    """Freeze the campaign's spec; a campaign not launched yet starts running (a `campaign_events` row); opens its first touch.

    A launch is refused, with nothing written, when the lead list cannot be imported. A launched campaign keeps the spec it
    was launched with: materialising it again with an edited file fails, naming what changed. The `status` metadata is
    what the schedules and sensors read to leave campaigns that are not running alone.
    """
    try:
        spec = catalog.spec(context.partition_key)
    except (CampaignSpecError, UnknownCampaignError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    now = clock.now()
    with warehouse.connect() as con:
        status = campaign_store.current_status(con, spec.name)
    leads = _check_lead_list(catalog, spec, now) if status is None or status in NOT_LAUNCHED else None
    if leads is not None:
        _check_template_variables(catalog, warehouse, spec)
    try:
        with warehouse.connect() as con:
            launch = campaign_store.freeze_spec(con, spec, "pipeline", now)
    except campaign_store.SpecFrozen as exc:
        raise dg.Failure(description=str(exc), allow_retries=False, metadata={"changed": dg.MetadataValue.json(exc.changes)}) from None
    opened = open_touch(context.instance, spec.name, 1)
    yield from _selected(context, {
        "campaigns": {"campaign": spec.name, "type": spec.type, "approval": spec.approval, "touches": spec.n_touches,
                      "status": launch.status, "reply_mode": spec.reply_mode, "first_touch_opened": opened,
                      **({"leads_in_list": leads} if leads is not None else {})},
        "campaign_events": {"launched": launch.launched, "launched_from": launch.previous_status or "new", "status": launch.status},
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec("leads", deps=["campaigns"], group_name=GROUP, kinds={"duckdb"},
                     description="The contact base: one row per person (E.164 phones, validated emails), and the lists each is in."),
        dg.AssetSpec("lead_rejects", deps=["campaigns"], group_name=GROUP, kinds={"duckdb"},
                     description="Every contact-file line not imported as written: rejected, skipped as a duplicate, or imported with a warning."),
    ],
    partitions_def=campaign_partitions, pool="duckdb", can_subset=True,
)
def import_leads(context: dg.AssetExecutionContext, warehouse: Warehouse, catalog: CampaignCatalog,
                 clock: PipelineClock) -> Iterator[dg.MaterializeResult]:
    """Import the campaign's lead_list file into the list named after it; a campaign drawing only on `lists` imports nothing.

    New contacts are added, known ones refreshed without touching their status; contacts the list already has from
    another file are skipped and reported.
    """
    with warehouse.connect() as con:
        spec = campaign_store.campaign_spec(con, context.partition_key)
    if not spec.audience.lead_list:
        yield from _selected(context, {
            "leads": {"lead_list": "none", "lists": dg.MetadataValue.json(spec.audience.list_names)},
            "lead_rejects": {"rejected": 0},
        })
        return
    result = import_lead_list(catalog.lead_list_path(spec), spec.audience.default_region, imported_at=clock.now())
    with warehouse.connect() as con:
        done = contacts.import_into_list(con, lead_list_name(spec.audience.lead_list), result, clock.now())
    result = done.result
    rejects = result.rejects
    reasons = {str(k): int(v) for k, v in rejects["reason"].str.split(":").str[0].value_counts().items()} if not rejects.empty else {}
    preview = rejects[["line_number", "kind", "reason"]].assign(reason=rejects["reason"].str.replace("|", "\\|", regex=False)) \
        if not rejects.empty else None
    summary = result.summary()
    yield from _selected(context, {
        "leads": {
            "list": done.list_name, "lines_read": summary["read"], "imported": summary["imported"], "skipped": summary["skipped"],
            "rejected": summary["rejected"], "new_leads": done.new_contacts, "phones_not_valid": summary["phones_not_valid"],
            "with_email": int(result.leads["email"].notna().sum()) if not result.leads.empty else 0,
            "with_phone": int(result.leads["phone"].notna().sum()) if not result.leads.empty else 0,
            "file_warnings": dg.MetadataValue.json(result.warnings),
        },
        "lead_rejects": {
            "rejected": summary["rejected"], "skipped": summary["skipped"], "warnings": summary["warnings"],
            "preview": dg.MetadataValue.md(
                preview.head(50).to_markdown(index=False) + (f"\n\n_{len(preview) - 50} more rows not shown_" if len(preview) > 50 else "")
                if preview is not None else "none"),
            "reasons": dg.MetadataValue.json(reasons),
        },
    })


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["campaigns", "leads"], kinds={"duckdb"})
def recipients(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """The campaign's audience: the leads of its lists its segment selects, frozen at the first materialisation after launch.

    Later imports and lead edits do not change who is targeted. A list the audience names that has no contacts is an error,
    so a typo in a list name never launches a campaign to nobody.
    """
    campaign_id = context.partition_key
    with warehouse.connect() as con:
        spec = campaign_store.campaign_spec(con, campaign_id)
        if campaign_store.campaign_status(con, campaign_id) in NOT_LAUNCHED:
            return dg.MaterializeResult(metadata={"recipients": 0, "frozen": False, "added": 0})
        frozen = contacts.recipient_count(con, campaign_id)
        if frozen:
            return dg.MaterializeResult(metadata={"recipients": frozen, "frozen": True, "added": 0})
        lists = spec.audience.list_names
        missing = [n for n in spec.audience.lists if n not in segments.existing_lists(con, lists)]
        if missing:
            raise dg.Failure(f"campaign {campaign_id!r}: audience list(s) {', '.join(repr(n) for n in missing)} have no contacts; "
                             f"import them with `outbound contacts import FILE --list NAME` (known lists: "
                             f"{', '.join(contacts.list_names(con)) or 'none'})", allow_retries=False)
        chosen = segments.select_segment(con, lists, spec.audience.effective_segment, clock.now())
        in_lists = segments.count_in_lists(con, lists)
        added = contacts.freeze_audience(con, campaign_id, chosen["lead_id"], clock.now())
    return dg.MaterializeResult(metadata={"recipients": added, "frozen": False, "added": added, "filtered_out": in_lists - len(chosen),
                                          "lists": dg.MetadataValue.json(lists)})
