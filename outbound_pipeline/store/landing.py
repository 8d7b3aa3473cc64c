"""The durable landing area between the webhook receiver and the pipeline.

The receiver must answer providers quickly and must never open DuckDB (one
writer at a time; Dagster runs own it). So accepted events are appended to
JSON-lines files, fsynced before the HTTP 200, and a sensor later reads them
with `read_since`, keeping its place in a Dagster cursor ("file:byte_offset").

Layout: `<dir>/events-YYYYMMDDHH.jsonl`, one file per UTC hour, append-only.
The receiver lands through a `GroupCommitter`: concurrent requests share one write
and one fsync, each acknowledged only once the fsync covering its line is done.
Writers serialise on a process lock plus an exclusive `fcntl.flock` on
`<dir>/.landing.lock`, and pick the hour file *inside* that lock: once a newer
hour file exists no writer will touch an older one again, so a reader that has
moved on to the newer file can never miss a line.

Duplicates are expected (providers retry; Svix and Twilio both redeliver on
timeouts). The landing area keeps every delivery; deduplication happens at
ingestion by `event_id` / `reply_id` (`dedupe` drops repeats within a batch,
and the warehouse insert skips keys it already holds).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from outbound_pipeline import settings

log = logging.getLogger(__name__)

# `polled_reply`: replies the poll sensor found in Twilio's Messages list or the IMAP mailbox (payload: a replies row).
SOURCES = ("twilio_status", "twilio_inbound", "resend", "unsubscribe", "polled_reply",
           "twilio_call", "voice_relay")  # voice: call status/AMD callbacks and conversation turns, in their own directory
FILE_RE = re.compile(r"^events-(\d{10})\.jsonl$")
LOCK_NAME = ".landing.lock"

_process_lock = threading.Lock()


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- writing


def make_record(source: str, landing_id: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A record ready for `append` (which stamps `received_at`)."""
    return {"landing_id": landing_id, "source": source, "payload": payload, **extra}


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable: without it a crash can lose a freshly created file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Threads of this process, then other processes, one at a time."""
    with _process_lock:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def file_for(moment: datetime) -> str:
    """The landing file name for a moment: one file per UTC hour."""
    return f"events-{moment.astimezone(UTC):%Y%m%d%H}.jsonl"


def _checked(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("source") not in SOURCES:
        raise ValueError(f"unknown landing source {record.get('source')!r}")
    if not record.get("landing_id"):
        raise ValueError("a landed record needs a landing_id")
    if not isinstance(record.get("payload"), dict):
        raise ValueError("a landed record needs a dict payload")
    return record


def _line(stored: dict[str, Any]) -> bytes:
    text = json.dumps(stored, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (legal in JSON text, not in UTF-8): keep it as a \\u escape
        return (json.dumps(stored, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode("ascii")


def append(record: dict[str, Any], directory: Path | None = None, *, clock: Callable[[], datetime] = _utcnow) -> dict[str, Any]:
    """Append one record durably and return it as stored.

    When this returns, the line is on disk (file fsynced, and the directory too
    when the file is new), so the caller may acknowledge the provider.
    `received_at` is stamped here, inside the lock, from `clock`.
    """
    return append_many([record], directory, clock=clock)[0]


def append_many(records: list[dict[str, Any]], directory: Path | None = None, *,
                clock: Callable[[], datetime] = _utcnow) -> list[dict[str, Any]]:
    """Append several records with one write and one fsync; return them as stored, in order.

    All or nothing for the caller: when this returns every line is on disk; when it
    raises, none of them may be acknowledged (some may have landed: ingestion dedupes).
    One `received_at` (and so one hour file) for the whole group, read inside the lock.
    """
    for record in records:
        _checked(record)
    if not records:
        return []
    directory = Path(directory) if directory is not None else settings.landing_dir()
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_dir(directory.parent)
    with _locked(directory):
        now = clock()
        received_at = now.astimezone(UTC).isoformat()
        stored = [{**record, "received_at": received_at} for record in records]
        data = b"".join(_line(s) for s in stored)
        path = directory / file_for(now)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and _last_byte(path, size) != b"\n":
                # A writer died mid-line; end that fragment so ours starts on a fresh line.
                data = b"\n" + data
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(directory)
    return stored


class GroupCommitter:
    """Lands records from many concurrent requests with one write and one fsync per group.

    `submit` queues a record and returns a future that resolves, to the stored record,
    only after the fsync covering its line (or fails with the OSError, and then the
    request must not be acknowledged). One writer thread drains the queue: whatever
    arrived while the previous group was being written, plus what arrives within
    `linger_s`, goes out together, so under load the fsync cost is shared and an idle
    receiver adds at most `linger_s` to a request. The thread stops when idle and starts
    again on the next record. Other processes are still serialised by the file lock.
    """

    def __init__(self, directory: Path, *, clock: Callable[[], datetime] = _utcnow, linger_s: float = 0.002,
                 max_group: int = 512, idle_s: float = 1.0):
        self.directory = Path(directory)
        self.clock = clock
        self.linger_s = linger_s
        self.max_group = max_group
        self.idle_s = idle_s
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], Future[dict[str, Any]]]] = queue.SimpleQueue()
        self._state = threading.Lock()
        self._running = False
        self.groups_written = 0

    def submit(self, record: dict[str, Any]) -> Future[dict[str, Any]]:
        """Queue one record (ValueError at once when it is malformed)."""
        _checked(record)
        future: Future[dict[str, Any]] = Future()
        with self._state:
            self._queue.put((record, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="landing-group-commit", daemon=True).start()
        return future

    def _next_group(self) -> list[tuple[dict[str, Any], Future[dict[str, Any]]]] | None:
        try:
            first = self._queue.get(timeout=self.idle_s)
        except queue.Empty:
            with self._state:
                if self._queue.empty():  # `submit` enqueues under this lock: nothing can slip in unseen
                    self._running = False
                    return None
            return []
        group = [first]
        deadline = time.monotonic() + self.linger_s
        while len(group) < self.max_group:
            try:
                group.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                group.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return group

    def _run(self) -> None:
        while (group := self._next_group()) is not None:
            if not group:
                continue
            try:
                stored = append_many([record for record, _ in group], self.directory, clock=self.clock)
            except OSError as exc:  # the disk, not the records: every waiter hears it, none may hang
                for _, future in group:
                    future.set_exception(exc)
                continue
            except Exception:  # a record that cannot be written must not take the others down with it
                self._one_by_one(group)
                continue
            self.groups_written += 1
            for (_, future), line in zip(group, stored, strict=True):
                future.set_result(line)

    def _one_by_one(self, group: list[tuple[dict[str, Any], Future[dict[str, Any]]]]) -> None:
        for record, future in group:
            try:
                future.set_result(append_many([record], self.directory, clock=self.clock)[0])
            except Exception as exc:
                future.set_exception(exc)


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --------------------------------------------------------------------------- reading


def _parse_cursor(cursor: str) -> tuple[str, int]:
    name, sep, offset = cursor.rpartition(":")
    if not sep or not FILE_RE.match(name) or not offset.isdigit():
        raise ValueError(f"bad landing cursor {cursor!r}; expected 'events-YYYYMMDDHH.jsonl:<offset>'")
    return name, int(offset)


def landed_files(directory: Path | None = None) -> list[str]:
    """Landing file names in order (oldest hour first)."""
    directory = Path(directory) if directory is not None else settings.landing_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if FILE_RE.match(p.name))


def read_since(cursor: str | None, directory: Path | None = None, *, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Records landed after `cursor`, and the cursor to store for next time.

    Only complete lines are returned: a half-written last line of the newest
    file is left for the next call. A fragment at the end of an *older* file can
    only come from a crashed writer (nobody writes to an hour file once a newer
    one exists), so it is skipped with a warning, as are unparseable lines.
    `limit` caps how many records one call returns. Read-only; never opens DuckDB.
    """
    directory = Path(directory) if directory is not None else settings.landing_dir()
    start_name, start_offset = _parse_cursor(cursor) if cursor else (None, 0)
    files = [n for n in landed_files(directory) if start_name is None or n >= start_name]
    records: list[dict[str, Any]] = []
    new_cursor = cursor
    for index, name in enumerate(files):
        offset = start_offset if name == start_name else 0
        is_newest = index == len(files) - 1
        with open(directory / name, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        pos = 0
        while pos < len(data):
            if limit is not None and len(records) >= limit:
                return records, f"{name}:{offset + pos}"
            end = data.find(b"\n", pos)
            if end == -1:
                if is_newest:
                    break  # maybe still being written: leave it for next time
                log.warning("skipping a torn line at the end of %s (offset %d)", name, offset + pos)
                pos = len(data)
                break
            line = data[pos:end]
            pos = end + 1
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                log.warning("skipping an unparseable line in %s at offset %d", name, offset + pos - len(line) - 1)
        new_cursor = f"{name}:{offset + pos}"
    return records, new_cursor


# --------------------------------------------------------------------------- deduplication


def dedupe(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Keep the first row per `key`: redelivered webhooks land twice but must count once."""
    return frame.drop_duplicates(subset=[key], keep="first").reset_index(drop=True)
