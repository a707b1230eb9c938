"""Per-file cost of reading DICOM headers, candidates side by side in one run.

Candidates, each over the same files, interleaved repeat by repeat (the machine is shared:
the ratios of one run are what counts, the best of the repeats is reported):

* ``bytes``: open the file and read all of it (the floor);
* ``pydicom full``: ``dcmread(stop_before_pixels=True)``, values left unconverted;
* ``modic before``: modic's header reader as it was: the full parse, then every public
  element converted (``modic.dicomfolder._convert_elements``), then the frames described;
* ``pydicom specific_tags``: ``dcmread(stop_before_pixels=True, specific_tags=...)`` for the
  tags the scan reads (``modic.dicomfolder.SCAN_KEYWORDS``), unconverted;
* ``modic, pydicom path``: the scan's header reader (``modic.dicomfolder.read_header``)
  with pydicom parsing: the specific_tags parse, the elements it uses converted (the
  sequence evidence later, for the first file of each stack only), the frames described,
  the record made;
* ``modic, no value cache``: the same with modic's parser for the common case
  (:mod:`modic._fastheader`; pydicom for the rest: here the Enhanced MR study), every
  value converted;
* ``modic now``: the same, with the parser's cache of converted values that repeat from
  file to file (emptied before each pass, as in a new worker);
* ``gdcm Scanner``: python-gdcm's ``gdcm.Scanner`` over the same tags (string values, no
  conversion), when python-gdcm is installed (``pip install python-gdcm``; modic does not
  depend on it).

Usage::

    python benchmarks/bench_headers.py               # the sample data (236 files), 5 repeats
    python benchmarks/bench_headers.py --repeats 9 --folder some/export
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom

import modic
import modic._fastheader as _fastheader
import modic.dicomfolder as dicomfolder


def _files(folder: Path) -> list[Path]:
    """The DICOM files (DICM marker) under ``folder``."""
    out = []
    for d, _, names in os.walk(folder):
        for name in names:
            with open(Path(d) / name, "rb") as fp:
                if fp.read(132)[128:] == b"DICM":
                    out.append(Path(d) / name)
    return sorted(out)


def _read_bytes(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fp:
            fp.read()


def _pydicom_full(files: list[Path]) -> None:
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)


def _pydicom_specific(files: list[Path]) -> None:
    tags = dicomfolder._SCAN_TAGS
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True, specific_tags=tags)


def _modic(full: bool, fast: bool = True, cache: bool = True) -> Callable[[list[Path]], None]:
    def run(files: list[Path]) -> None:
        _fastheader._CACHE.clear()  # each pass starts cold, as a new batch worker does
        cacheable = _fastheader._CACHEABLE
        if not cache:
            _fastheader._CACHEABLE = frozenset()
        saved = dicomfolder._SCAN_TAGS
        if full:
            dicomfolder._SCAN_TAGS = None
        try:
            for f in files:
                if full:  # the scan's work per file before: parse, convert all, frames
                    try:
                        dicomfolder._read_frames(f)
                    except dicomfolder._Skip:
                        pass
                else:  # the scan's work per file now, its record included
                    dicomfolder.read_header(f, fast=fast)
        finally:
            dicomfolder._SCAN_TAGS = saved
            _fastheader._CACHEABLE = cacheable

    return run


def _gdcm_scanner() -> Callable[[list[Path]], None] | None:
    try:
        import gdcm  # type: ignore[import-not-found]
    except ImportError:
        return None
    tags = [t for t in dicomfolder._SCAN_TAGS or [] if t >> 16 != 0x2001]

    def run(files: list[Path]) -> None:
        scanner = gdcm.Scanner()
        for t in tags:
            scanner.AddTag(gdcm.Tag(t >> 16, t & 0xFFFF))
        names = [str(f) for f in files]
        if not scanner.Scan(names):
            raise RuntimeError("gdcm.Scanner failed")
        for n in names:  # the values as Python strings, as modic would need them
            scanner.GetMapping(n)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=modic.data.sample_data_dir())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    files = _files(args.folder)
    candidates: dict[str, Callable[[list[Path]], None]] = {
        "bytes": _read_bytes,
        "pydicom full": _pydicom_full,
        "modic before": _modic(full=True),
        "pydicom specific_tags": _pydicom_specific,
        "modic, pydicom path": _modic(full=False, fast=False),
        "modic, no value cache": _modic(full=False, cache=False),
        "modic now": _modic(full=False),
    }
    gd = _gdcm_scanner()
    if gd is not None:
        candidates["gdcm Scanner"] = gd
    else:
        print("python-gdcm not installed: gdcm Scanner not measured", file=sys.stderr)
    best = dict.fromkeys(candidates, float("inf"))
    warnings.simplefilter("ignore")
    for run in candidates.values():  # warm the page cache and the imports
        run(files[:20])
    for _ in range(args.repeats):
        for name, run in candidates.items():
            t0 = time.perf_counter()
            run(files)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"{len(files)} files under {args.folder}, best of {args.repeats} interleaved repeats")
    print(f"{'candidate':<24} {'ms/file':>8} {'x modic before':>15}")
    ref = best["modic before"]
    for name, t in best.items():
        print(f"{name:<24} {1000 * t / len(files):8.3f} {t / ref:15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
