"""The ``modic batch`` parent's peak memory against the number of studies.

The parent (the process that runs :func:`modic.batch.run_batch`) hands the studies to its
workers, writes each finished study's shard, and assembles the output files. Its peak
memory should not grow with the cohort: the records are streamed from the shards into
the output files, never all held at once.

The cohort: the small three-series studies of the tests (``tests/test_batch.py``,
``write_annotated_study``: 5 slices of 64 x 40, two endplates each, types 0-3 in turn),
written once to ``benchmarks/_data/memory-cohort/`` (git-ignored); each cohort size is a
folder of hard links to its first N studies.

Each run is a fresh OUTDIR, in a subprocess of its own that prints its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the parent alone, its workers excluded)
and the peak of the Python heap it traced (``tracemalloc``, started after the imports).
``--modic PATH`` runs another copy of the package (e.g. the previous commit, exported
with ``git archive HEAD~1 modic | tar -x -C /tmp/old``) side by side, size by size.

Usage::

    python benchmarks/bench_batch_memory.py                        # 50, 200, 800 studies
    python benchmarks/bench_batch_memory.py --sizes 50 200 --workers 1
    python benchmarks/bench_batch_memory.py --modic /tmp/old       # before (/tmp/old/modic) vs now
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
DATA = HERE / "_data" / "memory-cohort"

CHILD = r"""
import json, resource, sys, time, tracemalloc
import modic.batch
tracemalloc.start()
t0, c0 = time.monotonic(), time.process_time()
s = modic.batch.run_batch(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), dask_address=sys.argv[4] or None)
wall, cpu = time.monotonic() - t0, time.process_time() - c0
peak = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"ok": s.n_ok, "failed": s.n_failed, "wall": wall, "cpu": cpu, "rss": rss, "heap": peak,
                  "file": modic.batch.__file__}))
"""


def make_cohort(n: int) -> Path:
    """The first ``n`` studies of the benchmark cohort (written when missing)."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_batch import write_annotated_study

    DATA.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        folder = DATA / "all" / f"s{i:05d}"
        if not (folder.parent / (folder.name + ".modic.json")).exists():
            shutil.rmtree(folder, ignore_errors=True)
            write_annotated_study(folder, "0123"[i % 4], seed=700000 + i)
    root = DATA / f"n{n}"
    if not root.is_dir():
        tmp = DATA / f".n{n}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for i in range(n):
            name = f"s{i:05d}"
            shutil.copytree(DATA / "all" / name, tmp / name, copy_function=os.link)
            os.link(DATA / "all" / (name + ".modic.json"), tmp / (name + ".modic.json"))
        tmp.rename(root)
    return root


def measure(root: Path, workers: int, dask: str, modic_path: str | None) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (modic_path, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), out, str(workers), dask],
            capture_output=True,
            text=True,
            env=env,
            cwd=out,  # not the repository: ``-c`` puts the working folder first on sys.path
            check=False,
        )
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    data: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dask", default="", help="a Dask address ('local') instead of the process pool")
    ap.add_argument("--modic", default=None, help="folder holding another modic package to compare")
    ap.add_argument("--make-only", action="store_true", help="write the cohort and stop")
    args = ap.parse_args()
    roots = {n: make_cohort(n) for n in args.sizes}
    if args.make_only:
        return
    print(
        f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; workers={args.workers}", flush=True
    )
    variants = [("now", None)] + ([("other", args.modic)] if args.modic else [])
    print(f"{'variant':8} {'studies':>7} {'peak RSS MB':>11} {'peak heap MB':>12} {'wall s':>7} {'cpu s':>6}")
    rows: dict[str, list[tuple[int, dict[str, float]]]] = {v: [] for v, _ in variants}
    for n in args.sizes:
        for name, path in variants:
            t = time.monotonic()
            m = measure(roots[n], args.workers, args.dask, path)
            assert m["ok"] == n, m
            rows[name].append((n, m))
            print(
                f"{name:8} {n:7d} {m['rss'] / 2**20:11.1f} {m['heap'] / 2**20:12.2f} {m['wall']:7.1f} {m['cpu']:6.1f}"
                f"   ({time.monotonic() - t:.0f} s; {m['file']})",
                flush=True,
            )
    for name, got in rows.items():
        if len(got) >= 2:
            (n0, a), (n1, b) = got[0], got[-1]
            per_rss = (b["rss"] - a["rss"]) / (n1 - n0) / 1024
            per_heap = (b["heap"] - a["heap"]) / (n1 - n0) / 1024
            print(f"{name}: per extra study {per_rss:.1f} KB of RSS, {per_heap:.1f} KB of traced heap")


if __name__ == "__main__":
    main()
