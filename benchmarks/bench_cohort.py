"""A cohort of small annotated phantom studies through ``modic batch``, beside SimpleITK.

A script that prints numbers, not a test (SimpleITK is needed only here:
``pip install SimpleITK``)::

    python benchmarks/bench_cohort.py                 # 1,000 studies
    python benchmarks/bench_cohort.py --studies 200   # when time is short

The cohort is written once under ``benchmarks/_data/cohort_<N>/`` (git-ignored) by
``python -m modic.phantom DIR --count N --seed 700000 --small --annotations``, in two
processes (seeds split in halves). Then, each in a fresh process:

- cold batch with 1 worker and with 2 workers (new output folder each): wall, CPU of
  the process and its workers, studies per minute, peak RSS of the parent and of the
  largest worker (``ru_maxrss``; with 1 worker the studies run in the parent);
- re-run over the unchanged cohort (``modic -q batch`` again, a subprocess as a user
  runs it) against the floor: a fresh ``python`` that walks the cohort and ``stat``s
  every file, and the same walk inside this process;
- SimpleITK reading the same sagittal T1 + T2 of every study
  (``GetGDCMSeriesFileNames`` + ``ImageSeriesReader.Execute`` + ``GetArrayFromImage``);
- a per-stage profile (cProfile, 1 worker, the first ``--profile`` studies), the
  functions with the largest cumulative time.

``uptime`` is printed before and after: on a shared machine the wall times are noisy,
the CPU times less so.

The processes run as an installed modic does, with its modules' bytecode cached: when
``PYTHONDONTWRITEBYTECODE`` is set (or ``-B``), they get a bytecode cache of their own
(``PYTHONPYCACHEPREFIX`` in a temporary folder), else every start would compile modic
from source (about 0.1 s per process).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"
SEED = 700000
#: The environment of every measured process (:func:`_installed_env`).
ENV: dict[str, str] = dict(os.environ)


def _installed_env(cache: str) -> dict[str, str]:
    """This environment with bytecode caching on: in ``cache`` when it was off."""
    env = dict(os.environ)
    if sys.flags.dont_write_bytecode or env.get("PYTHONDONTWRITEBYTECODE"):
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", cache)
    return env


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime: not available"


def generate(n: int) -> Path:
    """The cohort folder (written when absent)."""
    root = DATA_DIR / f"cohort_{n}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    parts = root / "parts"
    half = (n + 1) // 2
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modic.phantom",
                str(parts / str(i)),
                "--count",
                str(c),
                "--seed",
                str(s),
                "--small",
                "--annotations",
            ],
            stdout=subprocess.DEVNULL,
        )
        for i, (s, c) in enumerate(((SEED, half), (SEED + half, n - half)))
        if c > 0
    ]
    if any(p.wait() for p in procs):
        raise SystemExit("generating the cohort failed")
    for part in parts.iterdir():  # one flat cohort
        for entry in part.iterdir():
            entry.rename(root / entry.name)
    shutil.rmtree(parts)
    (root / "done").write_text("")
    print(f"generated {n} studies in {time.perf_counter() - t0:.1f} s (2 processes)")
    return root


_RUN = """
import json, resource, sys, time
from modic.batch import run_batch
t = time.perf_counter(); c = time.process_time()
s = run_batch(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]))
wall = time.perf_counter() - t
me = resource.getrusage(resource.RUSAGE_SELF); ch = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps(dict(wall=wall, cpu=me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime,
                      parent_kb=me.ru_maxrss, worker_kb=ch.ru_maxrss, ok=s.n_ok, failed=s.n_failed)))
"""


def cold(root: Path, out: Path, workers: int) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-c", _RUN, str(root), str(out), str(workers)],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    res: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    return res


def _stat_walk(root: str) -> int:
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            os.stat(os.path.join(dirpath, f))
            n += 1
    return n


def rerun(root: Path, out: Path, repeats: int) -> None:
    modic = [sys.executable, "-m", "modic", "-q", "batch", str(root), "-o", str(out), "--workers", "1"]
    floor = [
        sys.executable,
        "-c",
        f"import os\nfor d, _, fs in os.walk({str(root)!r}):\n    for f in fs: os.stat(os.path.join(d, f))",
    ]
    bare = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"modic re-run": [], "python walk+stat": [], "python startup": []}
    commands = (("modic re-run", modic), ("python walk+stat", floor), ("python startup", bare))
    for _, cmd in commands:  # once untimed: the bytecode and the page cache warm
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    for _ in range(repeats):  # interleaved
        for name, cmd in commands:
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
            times[name].append(time.perf_counter() - t)
    t = time.perf_counter()
    n = _stat_walk(str(root))
    inproc = time.perf_counter() - t
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    for k, v in med.items():
        print(f"  {k:<18} {v * 1000:8.1f} ms (median of {repeats})")
    print(f"  stat of {n} files in this process: {inproc * 1000:.1f} ms")
    print(
        f"  re-run / walk+stat process: {med['modic re-run'] / med['python walk+stat']:.2f}x; "
        f"re-run / in-process stat: {med['modic re-run'] / inproc:.1f}x"
    )


def simpleitk(root: Path) -> tuple[float, float, int]:
    import SimpleITK as sitk

    folders = []
    for truth in sorted(root.glob("*.truth.json")):
        doc = json.loads(truth.read_text())
        study = truth.with_name(truth.name[: -len(".truth.json")])
        for s in doc["series"]:
            if s["plane"] == "sagittal" and s["role"] in ("t1", "t2"):
                folders.append(str((study / s["files"][0]).parent))
    t = time.perf_counter()
    c = time.process_time()
    for d in folders:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(d))
        sitk.GetArrayFromImage(reader.Execute())
    return time.perf_counter() - t, time.process_time() - c, len(folders) // 2


def profile(root: Path, n: int, top: int) -> None:
    from modic.batch import find_jobs, run_batch

    jobs = find_jobs(root)[:n]
    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        prof.enable()
        run_batch(root, tmp, workers=1, jobs=jobs)
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(r"modic/", top)
    print(buf.getvalue())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=1000)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (1,2)")
    p.add_argument("--repeats", type=int, default=5, help="re-run repeats (5)")
    p.add_argument("--profile", type=int, default=50, help="studies profiled (50; 0 = none)")
    args = p.parse_args()
    print(_uptime())
    cache = tempfile.mkdtemp(prefix="modic-bench-pycache-")
    ENV.clear()
    ENV.update(_installed_env(cache))
    if ENV.get("PYTHONPYCACHEPREFIX") == cache:
        print(f"PYTHONDONTWRITEBYTECODE was set: bytecode cached in {cache} for the measured processes")
    root = generate(args.studies)
    n = args.studies
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for w in (int(x) for x in args.workers.split(",")):
            r = cold(root, out, w)
            print(
                f"cold, {w} worker(s): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, "
                f"{n / r['wall'] * 60:.0f} studies/min, {r['wall'] / n * 1000:.0f} ms/study; "
                f"peak RSS parent {r['parent_kb'] / 1024:.0f} MB, largest worker "
                f"{r['worker_kb'] / 1024:.0f} MB; ok {r['ok']:.0f}, failed {r['failed']:.0f}"
            )
        print("re-run over the unchanged cohort:")
        rerun(root, out, args.repeats)
    try:
        wall, cpu, k = simpleitk(root)
        print(
            f"SimpleITK T1+T2 of {k} studies: {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"{wall / max(k, 1) * 1000:.0f} ms/study"
        )
    except ImportError:
        print("SimpleITK not installed: pip install SimpleITK")
    if args.profile:
        profile(root, args.profile, 25)
    print(_uptime())
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
