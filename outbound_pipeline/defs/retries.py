"""Retry policies of the runs that write DuckDB.

DuckDB lets one process write at a time. A step that cannot open the file within the lock timeout
(`OUTBOUND_LOCK_TIMEOUT_S`) fails with `WarehouseBusy` having written nothing; its run retries it after a
backoff instead of ending failed. Refusals that another attempt cannot change (a bad campaign file, a lead
list that cannot be read, an edited spec) are `dg.Failure(allow_retries=False)` and are not retried.
"""

import dagster as dg

# Jobs started by the daemon (schedules, sensors, the UI): about 10 s, 20 s, 40 s between attempts.
DUCKDB_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Runs driven in-process (the command line, the demo, tests): someone is waiting, so 1 s, 2 s, 4 s.
DRIVER_RETRY = dg.RetryPolicy(max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL)
