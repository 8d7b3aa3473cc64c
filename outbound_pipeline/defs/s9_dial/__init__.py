"""Stage 9, dial: voice campaigns' calls, placed within every concurrency limit, their results, transcripts and metrics."""
