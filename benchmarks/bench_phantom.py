"""Time the phantom: one full-size study and one small study (``--small``), default options.

Usage::

    python benchmarks/bench_phantom.py                 # this tree, best of 3
    python benchmarks/bench_phantom.py --old HEAD~3    # ... and an older revision, side by side

Each tree is timed in its own Python process (``write_study`` of ``default_study_spec(seed)``,
as ``python -m modic.phantom OUT --seed SEED [--small]`` does, imports excluded); an older
revision's ``modic/`` is extracted with ``git archive`` into a temporary folder (the working
tree and the index are not touched). Prints wall and CPU seconds per study, best of
``--repeats``, with the load average before and after: on a shared machine a load above
the core count inflates the wall times, the CPU times less so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from modic.phantom import default_study_spec, small_series, write_study

seed, repeats = int(sys.argv[1]), int(sys.argv[2])
out = {}
for kind in ("full", "small"):
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        over = {"series": small_series()} if kind == "small" else {}
        spec = default_study_spec(seed, **over)
        with tempfile.TemporaryDirectory() as tmp:
            w0, c0 = time.perf_counter(), time.process_time()
            write_study(spec, Path(tmp) / "study", dicom_subdir=".")
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    out[kind] = {"wall": best_wall, "cpu": best_cpu}
print(json.dumps(out))
"""


def _time_tree(root: Path, seed: int, repeats: int) -> dict[str, dict[str, float]]:
    """Best wall / CPU seconds of a full-size and a small study with ``root``'s modic."""
    env = dict(os.environ, PYTHONPATH=str(root))
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(seed), str(repeats)],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    times: dict[str, dict[str, float]] = json.loads(res.stdout.strip().splitlines()[-1])
    return times


def _extract(rev: str, dest: Path) -> Path:
    """Extract revision ``rev``'s ``modic/`` package into ``dest``; returns ``dest``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "modic"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = dest / "modic.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", metavar="REV", help="also time this git revision (e.g. HEAD~3)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per study (best is kept)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    print(f"load average before: {_load()}")
    rows: list[tuple[str, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.old:
            rows.append((args.old, _time_tree(_extract(args.old, Path(tmp)), args.seed, args.repeats)))
        rows.append(("this tree", _time_tree(ROOT, args.seed, args.repeats)))
    print(f"load average after:  {_load()}")
    print(f"seed {args.seed}, best of {args.repeats}")
    print(f"{'revision':<12} {'full wall':>10} {'full CPU':>10} {'small wall':>11} {'small CPU':>10}")
    for name, t in rows:
        print(
            f"{name:<12} {t['full']['wall']:>9.2f}s {t['full']['cpu']:>9.2f}s "
            f"{t['small']['wall']:>10.2f}s {t['small']['cpu']:>9.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
