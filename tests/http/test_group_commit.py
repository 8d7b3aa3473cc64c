"""Group commit: concurrent landings share one write and fsync, and none is acknowledged before its fsync."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outbound_pipeline.store import landing

T0 = datetime(2026, 11, 23, 17, 5, 0, tzinfo=UTC)


def _record(i: int) -> dict:
    return landing.make_record("resend", f"msg_{i}", {"type": "email.delivered", "data": {"email_id": f"e{i}"}})


def test_no_future_resolves_before_the_fsync_covering_its_line(tmp_path: Path, monkeypatch) -> None:
    release = threading.Event()
    entered = threading.Event()
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def held_fsync(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        real_fsync(fd)
        fsyncs.append(fd)

    monkeypatch.setattr(landing.os, "fsync", held_fsync)
    committer = landing.GroupCommitter(tmp_path, clock=lambda: T0, linger_s=0.05)
    futures = [committer.submit(_record(i)) for i in range(20)]
    assert entered.wait(10)
    assert not any(f.done() for f in futures)  # written, maybe, but not yet fsynced: nobody is told
    release.set()
    stored = [f.result(timeout=10) for f in futures]
    assert fsyncs  # the file (and the new directory entry) were fsynced before the answers
    assert [s["landing_id"] for s in stored] == [f"msg_{i}" for i in range(20)]
    assert [r["landing_id"] for r in landing.read_since(None, tmp_path)[0]] == [f"msg_{i}" for i in range(20)]


def test_records_arriving_together_share_one_write_and_fsync(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(landing.os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    committer = landing.GroupCommitter(tmp_path, clock=lambda: T0, linger_s=0.2)
    futures = [committer.submit(_record(i)) for i in range(100)]
    for f in futures:
        f.result(timeout=10)
    assert committer.groups_written == 1
    assert len(calls) == 2  # the file once, the new directory entry once: not 100 fsyncs
    records, _ = landing.read_since(None, tmp_path)
    assert len(records) == 100 and {r["received_at"] for r in records} == {T0.isoformat()}


def test_many_threads_landing_at_once_each_land_exactly_once(tmp_path: Path) -> None:
    committer = landing.GroupCommitter(tmp_path, clock=lambda: T0)
    results: list[dict] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        for i in range(start, start + 50):
            stored = committer.submit(_record(i)).result(timeout=10)
            with lock:
                results.append(stored)

    threads = [threading.Thread(target=worker, args=(n * 50,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    landed = [r["landing_id"] for r in landing.read_since(None, tmp_path)[0]]
    assert sorted(landed) == sorted(f"msg_{i}" for i in range(400)) and len(results) == 400
    assert committer.groups_written < 400


def test_a_failed_write_fails_every_waiter_of_that_group_and_the_next_group_still_lands(tmp_path: Path, monkeypatch) -> None:
    real = landing.append_many
    failures = iter([OSError(28, "No space left on device")])

    def flaky(records, directory, *, clock):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(records, directory, clock=clock)

    monkeypatch.setattr(landing, "append_many", flaky)
    committer = landing.GroupCommitter(tmp_path, clock=lambda: T0, linger_s=0.05)
    doomed = [committer.submit(_record(i)) for i in range(5)]
    for f in doomed:
        with pytest.raises(OSError):
            f.result(timeout=10)
    assert committer.submit(_record(99)).result(timeout=10)["landing_id"] == "msg_99"
    assert [r["landing_id"] for r in landing.read_since(None, tmp_path)[0]] == ["msg_99"]


def test_malformed_records_are_refused_at_submit(tmp_path: Path) -> None:
    committer = landing.GroupCommitter(tmp_path)
    with pytest.raises(ValueError):
        committer.submit(landing.make_record("carrier_pigeon", "x", {}))


def test_the_writer_thread_stops_when_idle_and_restarts_on_demand(tmp_path: Path) -> None:
    committer = landing.GroupCommitter(tmp_path, clock=lambda: T0, idle_s=0.05)
    committer.submit(_record(1)).result(timeout=10)
    deadline = threading.Event()
    for _ in range(100):
        if not committer._running:
            break
        deadline.wait(0.02)
    assert not committer._running
    assert committer.submit(_record(2)).result(timeout=10)["landing_id"] == "msg_2"
