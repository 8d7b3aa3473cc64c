"""Importing a large contact file: the pipeline's import next to DuckDB reading the same file.

    python -m bench.import_csv [--rows 1000000]

The file is generated (20,000 realistic rows, the sample generator's, repeated with distinct emails and
phones, a few bad rows in each copy) into a temporary folder. Printed: DuckDB's `read_csv` of the file
alone (the floor: reading and splitting the text), `import_lead_list` (read, validate, E.164, time zone,
duplicates, every bad row reported), rows per second, the ratio and the peak memory of each, measured in
a fresh process each so one does not inherit the other's peak (the import's CPU time includes its phone-checking
worker process, one fewer than the cores). Targets: < 15 s and < 1.5 GB at 1M rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_ROWS = 20_000
_DIGIT = re.compile(r"\d")


def _vary(phone: str, copy: int) -> str:
    """Another number of the same range: the 5th and 6th digits from the end moved by `copy` (the generator varies the last 4)."""
    spots = [m.start() for m in _DIGIT.finditer(phone)][-6:-4]
    if len(spots) < 2:
        return phone
    value = (int(phone[spots[0]] + phone[spots[1]]) + copy) % 100
    chars = list(phone)
    chars[spots[0]], chars[spots[1]] = str(value // 10), str(value % 10)
    return "".join(chars)


def write_file(path: Path, rows: int) -> Path:
    """`rows` data rows: the sample generator's rows (with its bad ones), repeated with distinct emails and phones."""
    from outbound_pipeline.sample_data import HEADER, make_leads

    base = make_leads(min(rows, BASE_ROWS), seed=5, bad_rows=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        written = 0
        copy = 0
        while written < rows:
            for row in base:
                if written >= rows:
                    break
                out = list(row)
                if copy:
                    if "@" in out[2]:
                        out[2] = out[2].replace("@", f".c{copy}@", 1)
                    if out[3]:
                        out[3] = _vary(out[3], copy)
                    out[11] = f"CRM-{copy}-{out[11]}"
                writer.writerow(out)
                written += 1
            copy += 1
    return path


def _measure(kind: str, path: str) -> dict[str, float]:
    """Run one measurement in a fresh process: (seconds, CPU seconds, peak MB, counts): CPU time shows the work on a machine others load too."""
    code = f"""
import json, os, resource, threading, time
together = [0.0]
def _rss_kb(pid):
    with open(f"/proc/{{pid}}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
def _sample():  # this process and its worker processes at the same moment, every 50 ms
    me = os.getpid()
    while True:
        pids = [me]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{{entry}}/stat") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[1]) == me:
                            pids.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        total = 0
        for pid in pids:
            try:
                total += _rss_kb(pid)
            except (OSError, StopIteration):
                pass
        together[0] = max(together[0], total / 1024)
        time.sleep(0.05)
threading.Thread(target=_sample, daemon=True).start()
start = time.perf_counter()
if {kind!r} == "duckdb":
    import duckdb
    n = duckdb.connect().execute("SELECT count(*) FROM read_csv(?, all_varchar = true, header = true)", [{path!r}]).fetchall()[0][0]
    out = {{"rows": n}}
else:
    from outbound_pipeline.domain.lead_list import import_lead_list
    r = import_lead_list({path!r}, "US")
    out = {{"rows": r.lines_read, "imported": r.imported, "skipped": r.skipped, "rejected": r.rejected, "warnings": r.warned}}
out["seconds"] = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
out["cpu_s"] = usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime
out["peak_mb"] = usage.ru_maxrss / 1024
out["together_mb"] = together[0]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {kind} measurement failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_csv")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outbound-bench-import-") as tmp:
        path = write_file(Path(tmp) / "contacts.csv", args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"import of {args.rows:,} rows ({size_mb:.0f} MB)\n", flush=True)
        floor = _measure("duckdb", str(path))
        print(f"{'DuckDB read_csv alone':<28} {floor['seconds']:>7.1f} s (cpu {floor['cpu_s']:>6.1f} s) "
              f"{floor['rows'] / floor['seconds']:>10,.0f} rows/s  peak {floor['peak_mb']:>6.0f} MB", flush=True)
        ours = _measure("import", str(path))
        print(f"{'import_lead_list':<28} {ours['seconds']:>7.1f} s (cpu {ours['cpu_s']:>6.1f} s) "
              f"{ours['rows'] / ours['seconds']:>10,.0f} rows/s  peak {ours['peak_mb']:>6.0f} MB   "
              f"ratio {ours['seconds'] / floor['seconds']:.1f}x DuckDB", flush=True)
        total_mb = max(ours["peak_mb"], ours["together_mb"])
        workers = (os.cpu_count() or 1) - 1
        print(f"  with its {workers} phone-checking worker process{'es' if workers != 1 else ''}: peak {total_mb:,.0f} MB together "
              f"(sampled every 50 ms); cpu includes theirs")
        print(f"  read {ours['rows']:,.0f}: imported {ours['imported']:,.0f}, skipped {ours['skipped']:,.0f}, rejected {ours['rejected']:,.0f}, "
              f"warnings {ours['warnings']:,.0f}")
        held = ours["seconds"] < 15 and total_mb < 1536
        print(f"target < 15 s and < 1.5 GB: {'held' if held else 'NOT HELD'}")


if __name__ == "__main__":
    main()
