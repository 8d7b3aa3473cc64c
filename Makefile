# Shortcuts for ./run, which sets up .venv on first use (Python 3.11+ is all it needs).
.PHONY: demo test dev bench clean

demo:
	./run demo

test:
	./run test

dev:
	./run dev

bench:
	./run bench

clean:
	rm -rf data/outbound.duckdb data/outbound.duckdb.wal data/offline_ledger data/landing data/cache data/exports data/reports data/unsubscribe.secret
	find data/dagster_home -mindepth 1 -not -name dagster.yaml -exec rm -rf {} +
