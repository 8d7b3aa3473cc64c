"""What every HTTP handler shares: the database path, the campaigns folder, the Dagster instance, the clock, and the
rule that the server touches DuckDB only for one short unit of work at a time.

DuckDB allows one writing process. The server never holds the file: each request opens it, does its work and closes
it. Writes from this process go one at a time (a lock), so two reviewers clicking at once cannot collide. A file held
by a run is waited out up to `OUTBOUND_LOCK_TIMEOUT_S` (the request waits, it is not dropped); past that the client
gets 503 with Retry-After and nothing was written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from outbound_pipeline.store import warehouse


class ApiError(Exception):
    """Answer the request with this status and a JSON body `{"error": message, ...extra}`."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Surface:
    db_path: str
    campaigns_dir: Path
    instance: Callable[[], dg.DagsterInstance]
    now: Callable[[], datetime]
    public_base_url: str | None = None
    secure_cookies: bool = False
    lock_timeout_s: float = warehouse.LOCK_TIMEOUT_S  # how long a request waits for a file another process holds
    writes: threading.Lock = field(default_factory=threading.Lock)
    changes: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection for reading."""
        with self._busy_as_503(), warehouse.connect(self.db_path, timeout_s=self.lock_timeout_s) as con:
            yield con

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection for one unit of writing work, one at a time in this process."""
        with self.writes, self._busy_as_503(), warehouse.connect(self.db_path, timeout_s=self.lock_timeout_s) as con:
            yield con

    @contextmanager
    def lifecycle(self) -> Iterator[None]:
        """Launches and status changes of campaigns, one at a time (each opens the file for its own short units)."""
        with self.changes, self._busy_as_503():
            yield

    @contextmanager
    def _busy_as_503(self) -> Iterator[None]:
        try:
            yield
        except warehouse.WarehouseBusy as exc:
            raise ApiError(503, str(exc), retry_after_s=30) from exc
