"""Load campaign specs from YAML files, turning every problem into one readable error."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from outbound_pipeline.domain.spec import CampaignSpec


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


def parse_campaign(text: str, source: str = "<string>") -> CampaignSpec:
    """Parse and validate one campaign from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignSpecError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CampaignSpecError(f"{source}: a campaign file must be a mapping of fields, got {type(data).__name__}")
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignSpecError(f"{source}: invalid campaign:\n{_describe(exc)}") from exc


def load_campaign_file(path: str | Path) -> CampaignSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignSpecError(f"{path}: cannot read campaign file: {exc.strerror}") from exc
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
