"""The benchmark commands run from a clean checkout, at a size that takes seconds: a bench that no longer runs proves nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(("command", "says"), [
    (["bench.tracking", "--sizes", "100,200", "--ticks", "2"], "polling every message"),
    (["bench.touch", "--streamed", "--leads", "40", "--loop-sample", "2"], "whole touch streamed"),
])
def test_a_bench_command_runs_and_prints_its_figures(command: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert says in done.stdout
