"""The one `Definitions` of the code location: every stage folder under `defs/`, in flow order.

Each `defs/sN_<stage>/` module holds Dagster objects only (assets, checks, jobs, schedules,
sensors); they are collected here, so adding one to a stage needs no edit in this file.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from outbound_pipeline import defs as defs_package
from outbound_pipeline.defs.resources import default_resources

STAGE_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(defs_package.__path__, defs_package.__name__ + ".")
    if info.name.split(".")[2].startswith("s") and info.name.count(".") == 3
)


# Shared definitions outside the stages (housekeeping of the store), collected like a stage's.
SHARED_MODULES = ["outbound_pipeline.defs.housekeeping"]


def _objects(modules: list, kind: type | tuple[type, ...]) -> list:
    """Every object of `kind` defined or imported at module level, each once."""
    found = {id(obj): obj for m in modules for obj in vars(m).values() if isinstance(obj, kind)}
    return list(found.values())


def _stage_definitions() -> dg.Definitions:
    modules = [importlib.import_module(name) for name in [*STAGE_MODULES, *SHARED_MODULES]]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(modules),
        asset_checks=dg.load_asset_checks_from_modules(modules),
        jobs=_objects(modules, (UnresolvedAssetJobDefinition, dg.JobDefinition)),
        schedules=_objects(modules, dg.ScheduleDefinition),
        sensors=_objects(modules, dg.SensorDefinition),
    )


def _definitions() -> tuple[dg.Definitions, list, list]:
    stages = _stage_definitions()
    return dg.Definitions.merge(stages, dg.Definitions(resources=default_resources())), list(stages.assets or []), list(stages.asset_checks or [])


# One Definitions object at module scope: Dagster's loaders refuse a module with several.
defs, ASSETS, ASSET_CHECKS = _definitions()

# What a process holds once the pipeline is loaded (the modules of Dagster, pandas, DuckDB and the definitions) lives as
# long as the process. Frozen, it is left out of every later full garbage collection, which would otherwise walk it all
# each time: 60-140 ms pauses in the middle of a run, which a run held to a provider's rate cannot make up.
gc.freeze()
