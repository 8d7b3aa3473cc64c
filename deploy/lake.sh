#!/usr/bin/env bash
# The DuckLake environment (.venv-lake: the project on DuckDB 1.4.4 with the DuckLake, PostgreSQL and SQLite
# extensions from PyPI, and dagster-postgres), set up on first use, then one thing:
#   ./run lake test [pytest args]   the DuckLake tests (tests/lake; add -m slow for the two-campaign pipeline test)
#   ./run lake bench [args]         bench/lake.py: 4 campaigns one after another on the file, all at once on the lake
#   ./run lake python [args]        the environment's Python, e.g. to run `outbound` against a lake
# The tests and the benchmark start their own PostgreSQL (Debian's postgresql server binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${LAKE_VENV:-.venv-lake}"
stamp="$VENV/.installed-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ deploy/lake-requirements.txt -nt "$stamp" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e '.[dev]' -r deploy/lake-requirements.txt
  touch "$stamp"
fi
case "${1:-}" in
  test)   shift; exec "$VENV/bin/pytest" tests/lake -p no:cacheprovider "$@" ;;
  bench)  shift; exec "$VENV/bin/python" -m bench.lake "$@" ;;
  python) shift; exec "$VENV/bin/python" "$@" ;;
  *) echo "usage: ./run lake test | bench | python" >&2; exit 2 ;;
esac
