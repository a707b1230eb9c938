"""``modic batch`` per study, before and after the fast header scan and the header index,
side by side in one run, and a re-run over an unchanged cohort against the ``stat`` floor.

The cohort: ``--copies`` copies of the four sample studies (``modic.data``), every UID
replaced per copy (so that no copy is a duplicate of another), with their annotation
files; written once to ``benchmarks/_data/headers-cohort-<copies>/`` (git-ignored).

Variants, each a fresh OUTDIR, one worker, in this process, interleaved repeat by repeat:

* ``cold, full parse``: the header reader as before (every element parsed and converted:
  ``modic.dicomfolder._SCAN_TAGS = None``);
* ``cold, fast parse``: as now (only ``SCAN_KEYWORDS``);
* ``edited, index``: every annotation file touched, so that every study is classified
  again, its headers from a header index filled by a previous run (``--header-index``);
* ``edited, no index``: the same without the index;
* ``scan, ...``: ``modic.scan`` of each study folder alone, with the full parse, the fast
  parse, and from a filled header index (classification dominates a batch's time).

Then ``re-run`` (``modic batch`` in a subprocess, every study up to date) against the floor:
``os.walk`` + ``os.stat`` of every file under ROOT, in a subprocess too, and the imports of
the re-run (``python -X importtime``).

Usage::

    python benchmarks/bench_batch_headers.py                 # 10 copies (40 studies), 3 repeats
    python benchmarks/bench_batch_headers.py --copies 50 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

import modic
import modic.dicomfolder as dicomfolder
from modic.batch import run_batch

HERE = Path(__file__).parent
UID_RE = re.compile(r"\b[0-9]+(?:\.[0-9]+){4,}\b")


def _remap(ds: pydicom.Dataset, mapping: dict[str, str], copy: int) -> None:
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value and elem.tag not in (0x00080016, 0x00020002, 0x00020010):
            values = elem.value if isinstance(elem.value, list) else [elem.value]
            new = [mapping.setdefault(str(v), generate_uid(entropy_srcs=[str(v), str(copy)])) for v in values]
            elem.value = new if isinstance(elem.value, list) else new[0]


def build_cohort(copies: int) -> Path:
    root = HERE / "_data" / f"headers-cohort-{copies}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    sample = modic.data.sample_data_dir()
    names = modic.data.sample_study_names()
    for c in range(copies):
        for name in names:
            mapping: dict[str, str] = {}
            src = sample / name
            dst = root / f"c{c:03d}" / name
            for dirpath, _, files in os.walk(src):
                for f in files:
                    p = Path(dirpath) / f
                    out = dst / p.relative_to(src)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    ds = pydicom.dcmread(p)
                    _remap(ds, mapping, c)
                    if "file_meta" in dir(ds) and "MediaStorageSOPInstanceUID" in ds.file_meta:
                        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                    ds.save_as(out)
            text = modic.data.sample_annotations_path(name).read_text(encoding="utf-8")
            text = UID_RE.sub(lambda m, mp=mapping: mp.get(m.group(0), m.group(0)), text)
            (dst.parent / f"{name}.modic.json").write_text(text, encoding="utf-8")
    (root / "done").write_text("")
    return root


def _batch(root: Path, out: Path, *, full: bool = False, index: Path | None = None) -> float:
    saved = dicomfolder._SCAN_TAGS
    if full:
        dicomfolder._SCAN_TAGS = None
    try:
        t0 = time.perf_counter()
        summary = run_batch(root, out, workers=1, header_index=index)
        elapsed = time.perf_counter() - t0
    finally:
        dicomfolder._SCAN_TAGS = saved
    assert summary.n_failed == 0, summary
    return elapsed


def _touch_annotations(root: Path) -> None:
    for p in root.rglob("*.modic.json"):
        p.write_text(p.read_text(encoding="utf-8") + " ", encoding="utf-8")


def _stat_floor() -> str:
    return (
        "import os,sys,time\n"
        "t=time.perf_counter()\n"
        "for d,_,fs in os.walk(sys.argv[1]):\n"
        "    [os.stat(os.path.join(d,f)) for f in fs]\n"
        "print(time.perf_counter()-t)\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    root = build_cohort(args.copies)
    n_studies = len(list(root.rglob("*.modic.json")))
    n_files = sum(len(f) for _, _, f in os.walk(root))
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-headers-"))
    best: dict[str, float] = {}

    def keep(name: str, t: float) -> None:
        best[name] = min(best.get(name, float("inf")), t)

    try:
        index = tmp / "index.sqlite"
        _batch(root, tmp / "warm", index=index)  # fills the index, warms the page cache
        for r in range(args.repeats):
            keep("cold, full parse", _batch(root, tmp / f"full{r}", full=True))
            keep("cold, fast parse", _batch(root, tmp / f"fast{r}"))
            _touch_annotations(root)
            keep("edited, index", _batch(root, tmp / "warm", index=index))
            _touch_annotations(root)
            keep("edited, no index", _batch(root, tmp / "warm"))
        # the scan alone (classification dominates a batch's time and its noise)
        study_dirs = sorted(p.with_name(p.name[: -len(".modic.json")]) for p in root.rglob("*.modic.json"))
        scan_index = tmp / "scan-index.sqlite"
        for d in study_dirs:
            modic.scan(d, index=scan_index)

        def scan_all(full: bool = False, index: Path | None = None) -> float:
            saved = dicomfolder._SCAN_TAGS
            if full:
                dicomfolder._SCAN_TAGS = None
            try:
                t0 = time.perf_counter()
                for d in study_dirs:
                    modic.scan(d, index=index)
                return time.perf_counter() - t0
            finally:
                dicomfolder._SCAN_TAGS = saved

        for _ in range(args.repeats):
            keep("scan, full parse", scan_all(full=True))
            keep("scan, fast parse", scan_all())
            keep("scan, from the index", scan_all(index=scan_index))
        print(f"{n_studies} studies, {n_files} files, one worker, best of {args.repeats} interleaved repeats")
        print(f"{'variant':<22} {'ms/study':>9} {'x before':>9}")
        for name, t in best.items():
            ref = best["scan, full parse" if name.startswith("scan") else "cold, full parse"]
            print(f"{name:<22} {1000 * t / n_studies:9.1f} {t / ref:9.2f}")

        # re-run over an unchanged cohort (subprocesses: imports included) vs the stat floor
        modic_cmd = [sys.executable, "-m", "modic", "-q", "batch", str(root), "-o", str(tmp / "warm")]
        rerun, floor = float("inf"), float("inf")
        for _ in range(max(args.repeats, 3)):
            t0 = time.perf_counter()
            subprocess.run(modic_cmd, check=True, capture_output=True)
            rerun = min(rerun, time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", _stat_floor(), str(root)], check=True, capture_output=True)
            floor = min(floor, time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python = time.perf_counter() - t0
        print(
            f"re-run (all up to date) {rerun:.3f} s; walk+stat floor {floor:.3f} s "
            f"(python alone {python:.3f} s): {rerun / floor:.2f}x the floor"
        )
        imp = subprocess.run(
            [sys.executable, "-X", "importtime", *modic_cmd[1:]], capture_output=True, text=True
        )
        rows = []
        for line in imp.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m and len(m.group(3)) <= 2:
                rows.append((int(m.group(2)), m.group(4)))
        rows.sort(reverse=True)
        print(
            "re-run's top-level imports (cumulative ms): "
            + ", ".join(f"{name} {us / 1000:.0f}" for us, name in rows[:10])
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
