"""The layering the package promises, checked on its source: stages talk through tables, SQL lives in `store/`.

- no module of one `defs/<stage>/` imports another stage's module;
- `domain/` is pure: it imports no Dagster, no DuckDB and nothing of ours outside `domain/` and `ids`;
- SQL statements appear only as strings inside `store/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "outbound_pipeline"
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|VIEW|OR REPLACE)|ALTER\s+TABLE)\b", re.S)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "defs" and re.fullmatch(r"s\d_\w+", parts[2]) else None


def test_no_stage_imports_another_stage() -> None:
    crossings = [
        f"{dotted(path)} imports {name}"
        for path in modules() if (own := stage_of(dotted(path)))
        for name in imports(path) if (other := stage_of(name)) and other != own
    ]
    assert crossings == []


def test_stage_folders_sort_in_flow_order() -> None:
    stages = sorted(p.name for p in (PACKAGE / "defs").iterdir() if p.is_dir() and stage_of(f"outbound_pipeline.defs.{p.name}"))
    assert [int(s[1]) for s in stages] == list(range(1, len(stages) + 1))


def test_domain_is_pure() -> None:
    impure = [
        f"{dotted(path)} imports {name}"
        for path in modules() if dotted(path).startswith("outbound_pipeline.domain")
        for name in imports(path)
        if name.split(".")[0] in ("dagster", "duckdb")
        or (name.startswith("outbound_pipeline.") and not name.startswith(("outbound_pipeline.domain", "outbound_pipeline.ids")))
    ]
    assert impure == []


@pytest.mark.parametrize("path", [p for p in modules() if not dotted(p).startswith("outbound_pipeline.store")], ids=dotted)
def test_no_sql_outside_store(path: Path) -> None:
    strings = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert [s[:80] for s in strings if SQL.search(s)] == []
