"""outbound_pipeline: outbound campaigns over email, WhatsApp, SMS and voice, as a Dagster code location over DuckDB."""

import atexit
import gc

# A process that loaded the pipeline (a run, a step, the command line) holds a large heap of Dagster's, pandas' and
# DuckDB's objects; at exit Python would walk all of it for garbage cycles once more, about half a second per process,
# for memory the system takes back anyway. Frozen first, the heap is left to the system; objects freed by reference
# counting (open files among them) are still closed as usual.
atexit.register(gc.freeze)
