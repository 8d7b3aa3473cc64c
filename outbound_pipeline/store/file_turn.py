"""Whose turn it is at the DuckDB file: a lock file beside it, taken before opening the file.

DuckDB lets one process write at a time and refuses the others at once, so a process that meets the file held can
only try again later, and every try opens the file (an attachment in `warehouse`, 2-3 ms) before it learns it has to wait.
Runs that hand work to each other every quarter of a second (research, compose, review and send of one touch) would spend
their time in those tries and in the back-off between them. Taking an advisory `flock` on `<file>.turn` first is a
cheap system call, tried every few milliseconds, so the file passes from one unit of work to the next as soon as it
is closed. The threads of one process take turns as well (DuckDB can fail when threads of one process open and close
the same file at once); a unit of work opened inside another on the same thread joins its turn. Programs that open
the file without this (a BI tool on the live file) are still met by the retry in `warehouse._open`.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

TRY_EVERY_S = 0.003


class TurnTimeout(TimeoutError):
    """Other units of work of the pipeline kept the file longer than this one was willing to wait."""


_guard = threading.Lock()
_thread_turns: dict[str, threading.RLock] = {}  # lock file -> the turn among this process's threads
_held: dict[str, list[int]] = {}  # lock file -> [descriptor holding the flock, nesting depth], by the thread whose turn it is


def _flock(lock_path: str, deadline: float) -> int:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TurnTimeout(lock_path) from None
            time.sleep(TRY_EVERY_S)


@contextmanager
def turn(path: str, timeout_s: float) -> Iterator[None]:
    """Hold the turn at the DuckDB file `path` for the block, waiting up to `timeout_s` for it."""
    lock_path = f"{path}.turn"
    deadline = time.monotonic() + timeout_s
    with _guard:
        thread_turn = _thread_turns.setdefault(lock_path, threading.RLock())
    if not thread_turn.acquire(timeout=max(timeout_s, 0.0)):
        raise TurnTimeout(lock_path)
    try:
        held = _held.get(lock_path)
        if held is None:
            held = _held[lock_path] = [_flock(lock_path, deadline), 0]
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
            if not held[1]:
                del _held[lock_path]
                os.close(held[0])  # closing the descriptor releases the flock
    finally:
        thread_turn.release()
