"""When a table last changed, readable without opening the DuckDB file.

A run following another stage (compose beside research, review beside compose, sending beside review) asks, poll after
poll, whether the table the stage before writes has changed. Opening the file to find out costs a turn at it (other
runs wait meanwhile) and a database instance; reading a stamp file costs a few microseconds. So every unit of work
that wrote tables through `warehouse`'s bulk writes stamps them once it has committed (`mark`), and a follower opens
the file only when a stamp it watches moved (`Watch`), or at least every `at_least_every_s`, so a write made some
other way is still taken up, later. A DuckLake has no stamps: its followers read at every poll.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_counter = itertools.count()
_local = threading.local()  # the tables written by the units of work open on this thread, innermost last


def _stamp_file(db_path: str, table: str) -> Path:
    return Path(f"{db_path}.changes") / table


def mark(db_path: str, tables: Iterable[str]) -> None:
    """Stamp `tables` of the database at `db_path` as changed now (after the change was committed)."""
    tables = sorted(set(tables))
    if not tables:
        return
    folder = _stamp_file(db_path, tables[0]).parent
    folder.mkdir(exist_ok=True)
    for table in tables:
        temporary = folder / f".{table}.{os.getpid()}.{threading.get_ident()}"
        temporary.write_text(f"{time.time_ns()} {os.getpid()} {next(_counter)}", encoding="utf-8")
        os.replace(temporary, folder / table)  # readers see the old stamp or the new one, never half of one


def stamp(db_path: str, table: str) -> str | None:
    """The table's current stamp (None when it was never stamped)."""
    try:
        return _stamp_file(db_path, table).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def begin_unit() -> set[str]:
    """Start noting the tables a unit of work on this thread writes; `end_unit` returns them."""
    stack: list[set[str]] = getattr(_local, "stack", None) or []
    _local.stack = stack
    written: set[str] = set()
    stack.append(written)
    return written


def end_unit() -> set[str]:
    return _local.stack.pop()


def wrote(table: str) -> None:
    """Note that the unit of work open on this thread (if any) writes `table`."""
    stack: list[set[str]] | None = getattr(_local, "stack", None)
    if stack:
        stack[-1].add(table)


class Watch:
    """`changed()`: whether any of `tables` was stamped since the last call that said so (the first call says so).

    Call it just before reading the tables: a write committed after the stamp was read moves it again, so the next call
    says so. It also says so once `at_least_every_s` has passed, and always when the database keeps no stamps (`db_path`
    None: a DuckLake)."""

    def __init__(self, db_path: str | None, tables: Iterable[str], at_least_every_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.db_path, self.tables, self.at_least_every_s, self._clock = db_path, tuple(tables), at_least_every_s, clock
        self._seen: tuple[str | None, ...] | None = None
        self._read_at = float("-inf")

    def changed(self) -> bool:
        if self.db_path is None:
            return True
        current = tuple(stamp(self.db_path, table) for table in self.tables)
        now = self._clock()
        if current == self._seen and now - self._read_at < self.at_least_every_s:
            return False
        self._seen, self._read_at = current, now
        return True
