"""Loading campaign files at the loader's limits: what one sensor tick can cost per file.

    python -m bench.campaign_load

Times `load_campaign_file` on the worst files the limits allow: the largest step graph (a `MAX_STEPS`
chain, every step branching to the next, checked for cycles), a file padded with comments and one dense with data to just under `MAX_FILE_BYTES`,
an alias bomb that expands past `MAX_NODES`, and a 10 MB file (refused before it is read). Prints the
seconds of each against the bound: every file loads or is refused within 1 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from outbound_pipeline.domain.loader import MAX_FILE_BYTES, CampaignSpecError, load_campaign_file
from outbound_pipeline.domain.spec import MAX_STEPS

BOUND_S = 1.0
HEAD = "name: {name}\ngoal: Book a call with operations leaders.\ntype: drip\naudience: {{lead_list: leads.csv}}\nsteps:\n"


def _chain(name: str, n: int) -> str:
    lines = [f"  - {{name: s{i}, intent: introduce, delay: 1d, next: [{{when: no_reply, goto: s{i + 1}}}]}}\n" for i in range(1, n)]
    return HEAD.format(name=name) + "".join(lines) + f"  - {{name: s{n}, intent: introduce, final: true}}\n"


def _files(root: Path) -> dict[str, Path]:
    chain = _chain("chain", MAX_STEPS)
    padded = _chain("padded", MAX_STEPS)
    padded += ("# " + "x" * 78 + "\n") * ((MAX_FILE_BYTES - len(padded.encode()) - 100) // 81)
    dense = HEAD.format(name="dense") + "".join(  # data, not comments: a long cta in every step
        f"  - {{name: s{i}, intent: introduce, cta: '{'word ' * 480}', next: [{{when: no_reply, goto: s{i + 1}}}]}}\n"
        for i in range(1, MAX_STEPS)) + f"  - {{name: s{MAX_STEPS}, intent: introduce}}\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    huge = _chain("huge", MAX_STEPS) + ("# " + "x" * 78 + "\n") * (10 * 1024 * 1024 // 81)
    files = {"chain": chain, "padded": padded, "dense": dense, "bomb": bomb, "huge": huge}
    paths = {}
    for name, text in files.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def main() -> None:
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="outbound-campaign-load-") as tmp:
        for name, path in _files(Path(tmp)).items():
            start = time.perf_counter()
            try:
                spec = load_campaign_file(path)
                outcome = f"loaded, {spec.n_touches} steps"
            except CampaignSpecError as exc:
                outcome = "refused: " + str(exc).split(": ", 1)[1].split("\n")[0][:70]
            seconds = time.perf_counter() - start
            worst = max(worst, seconds)
            print(f"{name:<8} {path.stat().st_size:>12,} bytes {seconds:>8.3f} s  {outcome}")
    print(f"worst {worst:.3f} s per file; bound {BOUND_S:.1f} s: {'held' if worst <= BOUND_S else 'NOT HELD'}")


if __name__ == "__main__":
    main()
