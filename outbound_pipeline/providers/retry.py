"""Retry with exponential backoff and full jitter, for 429s and 5xx only (tenacity)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

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
    """Call `call`; on a retryable error wait (honouring Retry-After when given) and try again, `attempts` calls at most.

    Anything not retryable (a 4xx other than 408/409/425/429) is raised at once: retrying
    a request the provider rejected only repeats the rejection. The last error is raised as is.
    """
    jitter = wait_random_exponential(multiplier=base_delay, max=max_delay)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hinted = retry_after(error) if isinstance(error, Exception) else None
        return hinted if hinted is not None else jitter(state)

    retryable = retry_if_exception(lambda exc: isinstance(exc, Exception) and is_retryable(exc))
    retrying = Retrying(retry=retryable, stop=stop_after_attempt(attempts), wait=wait, sleep=sleep, reraise=True)
    return retrying(call)
