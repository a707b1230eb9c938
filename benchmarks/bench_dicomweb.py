"""Time fetching studies from a DICOMweb server into modic's cache, cold and warm.

This is a script that prints numbers, not a test. It starts Debian's Orthanc with its
DICOMweb plugin on 127.0.0.1 (as ``tests/test_dicomweb.py`` does, through
``tests/orthanc.py``; ``apt-get install orthanc orthanc-dicomweb``), uploads the four
sample studies, and times :meth:`modic.dicomweb.StudyCache.fetch` of all four:

- cold: an empty cache (QIDO-RS series and instance lists, one streamed WADO-RS request
  per needed series, every instance written atomically);
- warm: the same cache again (QIDO-RS only: what the server holds is checked, nothing is
  downloaded);
- everything: ``all_series=True`` into another empty cache (what ``modic info`` fetches),
  to show what skipping the localizer and axial series saves.

::

    python benchmarks/bench_dicomweb.py              # 5 repeats
    python benchmarks/bench_dicomweb.py --repeats 10 --json out/bench_dicomweb.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import orthanc  # noqa: E402 -- tests/orthanc.py, the server the tests use

import modic  # noqa: E402
from modic.dicomweb import Credentials, DicomwebServer, StudyCache  # noqa: E402


def _fetch_all(server: DicomwebServer, cache: Path, uids: list[str], all_series: bool = False) -> dict[str, float]:
    store = StudyCache(cache)
    before = dict(server.requests)
    t = time.perf_counter()
    fetched = [store.fetch(server, uid, all_series=all_series) for uid in uids]
    seconds = time.perf_counter() - t
    size = sum(p.stat().st_size for f in fetched for p in f.path.rglob("*.dcm"))
    return {
        "seconds": seconds,
        "downloaded": sum(f.downloaded for f in fetched),
        "cached": sum(f.cached for f in fetched),
        "series": sum(len(f.fetched) for f in fetched),
        "megabytes": size / 1e6,
        **{f"requests_{k}": server.requests[k] - before.get(k, 0) for k in server.requests},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    why = orthanc.missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 1
    names = modic.data.sample_study_names()
    uids = [modic.read_annotations(modic.data.sample_annotations_path(n)).study_instance_uid for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        server_proc = orthanc.Orthanc(Path(tmp) / "orthanc").start()
        started = time.perf_counter() - t
        try:
            t = time.perf_counter()
            n_files = sum(server_proc.upload_folder(modic.data.sample_study_path(n)) for n in names)
            uploaded = time.perf_counter() - t
            server = DicomwebServer(
                server_proc.dicomweb, credentials=Credentials(orthanc.USER, orthanc.PASSWORD, source="bench")
            )
            runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": [], "everything": []}
            for i in range(args.repeats):
                cache = Path(tmp) / f"cache{i}"
                runs["cold"].append(_fetch_all(server, cache, uids))
                runs["warm"].append(_fetch_all(server, cache, uids))
                runs["everything"].append(_fetch_all(server, Path(tmp) / f"all{i}", uids, all_series=True))
        finally:
            server_proc.stop()
    print(f"Orthanc {started:.2f} s to answer; {n_files} files of {len(names)} studies uploaded in {uploaded:.2f} s")
    print(f"fetch of {len(names)} studies, {args.repeats} repeats (best / median seconds):")
    print(f"  {'':<11} {'best':>6} {'median':>7} {'series':>7} {'downloaded':>11} {'cached':>7} {'MB':>6}  requests")
    for kind, rs in runs.items():
        secs = [r["seconds"] for r in rs]
        r = rs[0]
        reqs = ", ".join(f"{int(r[k])} {k[9:]}" for k in r if k.startswith("requests_") and r[k])
        print(
            f"  {kind:<11} {min(secs):>6.2f} {statistics.median(secs):>7.2f} {int(r['series']):>7} "
            f"{int(r['downloaded']):>11} {int(r['cached']):>7} {r['megabytes']:>6.1f}  {reqs}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"started": started, "uploaded": uploaded, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
