"""Campaign files appear in the Dagster UI ready to launch, without a terminal.

`campaign_file_sensor` reads the campaigns directory (files only, never DuckDB) and adds a
`campaigns` partition for every valid campaign file that has none yet. It requests no run:
launching stays an explicit act (`launch_job` on the partition in the UI, or
`outbound campaign launch`). A file that does not load is named in the sensor's skip reason
and log with the loader's error (file and field), and gets no partition until it is fixed;
the other files are added all the same, whatever is wrong with that one.
"""


from pathlib import Path

import dagster as dg

from outbound_pipeline.defs.launches import due_launches, parse_launch_key, scheduled_launches
from outbound_pipeline.defs.partitions import CAMPAIGNS, campaign_partitions
from outbound_pipeline.defs.resources import CampaignCatalog, PipelineClock
from outbound_pipeline.defs.s1_audience.jobs import launch_job
from outbound_pipeline.domain.loader import CampaignSpecError, load_campaign_file


def scan_campaign_files(directory: str | Path) -> tuple[list[str], list[str]]:
    """(names of the valid campaign files, one error per invalid file), in file-name order."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], [f"{directory}: the campaigns directory does not exist"]
    names: list[str] = []
    errors: list[str] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            spec = load_campaign_file(path)
        except CampaignSpecError as exc:
            errors.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - the loader's own defect must not hide the other files
            errors.append(f"{path}: could not be loaded: {type(exc).__name__}: {exc}")
            continue
        if spec.name not in names:
            names.append(spec.name)
    return names, errors


@dg.sensor(job=launch_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def campaign_file_sensor(context: dg.SensorEvaluationContext, catalog: CampaignCatalog):
    """Add a `campaigns` partition for each new valid campaign file; never launches anything."""
    names, errors = scan_campaign_files(catalog.campaigns_dir)
    known = set(context.instance.get_dynamic_partitions(CAMPAIGNS))
    new = [n for n in names if n not in known]
    for error in errors:
        context.log.warning(error)
    if new:
        context.log.info(f"campaigns ready to launch: {', '.join(new)}")
    parts = [f"added {len(new)} campaign partition(s) ready to launch: {', '.join(new)}" if new
             else f"no new campaign file ({len(names)} valid, all already partitions)"]
    if errors:
        parts.append(f"{len(errors)} invalid campaign file(s), not added:\n" + "\n".join(errors))
    return dg.SensorResult(
        dynamic_partitions_requests=[campaign_partitions.build_add_request(new)] if new else [],
        skip_reason="; ".join(parts),
    )


@dg.sensor(job=launch_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def scheduled_launch_sensor(context: dg.SensorEvaluationContext, clock: PipelineClock):
    """Launch every campaign whose scheduled time (`outbound campaign launch --at`) has come, once."""
    keys = due_launches(context.instance, clock.now())
    if not keys:
        return dg.SkipReason("no scheduled launch is due")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"launch:{key}", partition_key=parse_launch_key(key)[0], tags={"outbound/scheduled_launch": key})
                      for key in keys],
        dynamic_partitions_requests=[scheduled_launches.build_delete_request(keys)],
    )
