"""Retry with exponential backoff and full jitter, for 429s and 5xx only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def with_retries(
    call: Callable[[], T],
    is_retryable: Callable[[Exception], bool],
    retry_after: Callable[[Exception], float | None] = lambda exc: None,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `call`; on a retryable error wait (honouring Retry-After when given) and try again.

    Anything not retryable (a 4xx other than 408/409/425/429) is raised at once: retrying
    a request the provider rejected only repeats the rejection.
    """
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not is_retryable(exc):
                raise
            hinted = retry_after(exc)
            backoff = min(max_delay, base_delay * 2**attempt)
            sleep(hinted if hinted is not None else random.uniform(0, backoff))
    raise AssertionError("unreachable")
