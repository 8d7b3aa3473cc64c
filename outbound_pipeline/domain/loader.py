"""Load campaign specs from YAML files, turning every problem into one readable error.

A campaign file is user input read by sensors on every tick, so loading it is bounded: the file's size
(`MAX_FILE_BYTES`), the number of YAML nodes after aliases are expanded and their nesting (`MAX_NODES`,
`MAX_DEPTH`), and the number of steps (`spec.MAX_STEPS`). Whatever the text, the loader returns a spec or
raises `CampaignSpecError` naming the file; it never raises anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from outbound_pipeline.domain.spec import MAX_STEPS, CampaignSpec

MAX_FILE_BYTES = 256 * 1024  # a real campaign is a few kB; parsing megabytes of YAML takes minutes
MAX_NODES = 50_000  # YAML values after expanding aliases (`&a` / `*a`), which can multiply a small file
MAX_DEPTH = 64  # nesting of mappings and lists; a campaign needs about six

try:  # libyaml's parser is many times faster than the pure-Python one
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class CampaignSpecError(ValueError):
    """A campaign file is missing, unreadable or invalid; the message names file and field."""


class UnknownCampaignError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0])


def _describe(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _too_large(size: int, source: str) -> CampaignSpecError:
    return CampaignSpecError(f"{source}: the campaign file is {size:,} bytes; a campaign file may be at most {MAX_FILE_BYTES:,} bytes")


def _check_bounds(data: object, source: str) -> None:
    """Walk the parsed value without recursion; refuse it when it is too big or too deep (aliases count each time used)."""
    nodes, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise CampaignSpecError(f"{source}: the campaign file expands to more than {MAX_NODES:,} values (check its `*` aliases)")
        if depth > MAX_DEPTH:
            raise CampaignSpecError(f"{source}: the campaign file nests more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _load_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise CampaignSpecError(f"{source}: not valid YAML: {exc}") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # e.g. a date such as 2026-02-31
        raise CampaignSpecError(f"{source}: not valid YAML: {type(exc).__name__}: {exc}") from exc


def parse_campaign(text: str, source: str = "<string>") -> CampaignSpec:
    """Parse and validate one campaign from YAML text; every problem is a `CampaignSpecError` naming `source`."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_FILE_BYTES:
        raise _too_large(size, source)
    data = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise CampaignSpecError(f"{source}: a campaign file must be a mapping of fields, got {type(data).__name__}")
    _check_bounds(data, source)
    steps = data.get("steps")
    if isinstance(steps, list) and len(steps) > MAX_STEPS:
        raise CampaignSpecError(f"{source}: the campaign has {len(steps)} steps; a campaign may have at most {MAX_STEPS}")
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignSpecError(f"{source}: invalid campaign:\n{_describe(exc)}") from exc
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # a rule that failed outside pydantic's reporting
        raise CampaignSpecError(f"{source}: invalid campaign: {type(exc).__name__}: {exc}") from exc


def load_campaign_file(path: str | Path) -> CampaignSpec:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refused before reading: a huge file costs nothing
            raise _too_large(size, str(path))
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignSpecError(f"{path}: cannot read campaign file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CampaignSpecError(f"{path}: the campaign file is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    spec = parse_campaign(text, str(path))
    if spec.name != path.stem:
        raise CampaignSpecError(f"{path}: campaign name {spec.name!r} must match the file name {path.stem!r}")
    return spec


def load_campaigns(directory: str | Path) -> dict[str, CampaignSpec]:
    """Every campaign in a directory (`*.yaml`, `*.yml`), by name."""
    directory = Path(directory)
    specs: dict[str, CampaignSpec] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        spec = load_campaign_file(path)
        specs[spec.name] = spec
    return specs


def get_campaign(name: str, directory: str | Path) -> CampaignSpec:
    """One campaign by name; an unknown name is a clear error listing the known ones."""
    directory = Path(directory)
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name}{suffix}"
        if path.exists():
            return load_campaign_file(path)
    known = sorted(p.stem for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")])
    raise UnknownCampaignError(f"unknown campaign {name!r}: no {name}.yaml in {directory} (known: {', '.join(known) or 'none'})")
