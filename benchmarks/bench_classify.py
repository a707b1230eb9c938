"""How long classifying one study takes, stage by stage, on the bundled sample studies.

Run:  python benchmarks/bench_classify.py [--repeats 5] [--compare REV] [--cohort N]

Prints, per sample study (11 endplate ROIs, 6 references, T1 + T2 + STIR), the CPU time
(this process) and wall time of ``modic.classify`` and of its stages, run one after
another the way ``modic.reading.classify`` runs them: fitting the reference model
(sampling every reference once), measuring the study's contrast (fat on every sequence,
noise; the references' level from the model's samples where ``measure_contrast`` takes
them), per endplate preparing the region (sampling, partial-volume and focal-lesion
masks, body marrow), the bootstrap decision (``classify_samples``, 200 resamples) and the
extent, and the anatomy checks. Loading the DICOM is left out (see bench_load.py). Each number is the
minimum over ``--repeats`` runs (the least disturbed by the other processes; the load
average is printed).

``--compare REV`` clones this repository at the git revision REV into a temporary folder
and runs the same measurement on it in a subprocess, interleaved with this tree's, so the
two columns are measured under the same load.

``--cohort N`` measures, in a second table, the first N studies of the batch benchmark's
cohort (``benchmarks/_data/cohort_200``, written by bench_cohort.py; small phantom studies,
11 endplates, mostly normal, so the extent is seldom measured), the studies ``modic batch``
classifies.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

STAGES = ("references", "contrast", "prepare", "bootstrap", "extent", "anatomy", "classify")


def _clock(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def _study(study: Any, ann: Any, repeats: int) -> dict[str, list[float]]:
    """[min CPU s, min wall s] per stage for one study (summed over its ROIs)."""
    from modic.anatomy import check_rois
    from modic.contrast import measure_contrast
    from modic.criteria import classify_samples
    from modic.extent import add_extent
    from modic.reading import ReferenceModel, classify, classify_roi, prepare_region

    rois = list(ann)
    refs = [r for r in rois if r.label.kind == "reference"]
    ends = [r for r in rois if r.label.kind == "endplate"]
    classify(study, ann)  # warm: lazy imports, caches
    # an older revision (--compare) measures the references again for the contrast
    reuse = "reference_samples" in inspect.signature(measure_contrast).parameters
    best = {s: [float("inf"), float("inf")] for s in STAGES}
    for _ in range(repeats):
        t: dict[str, list[float]] = {s: [0.0, 0.0] for s in STAGES}

        def add(stage: str, fn: Callable[[], Any], t: dict[str, list[float]] = t) -> Any:
            c, w, res = _clock(fn)
            t[stage][0] += c
            t[stage][1] += w
            return res

        model = add("references", lambda: ReferenceModel.fit(study, refs))
        shared = {"reference_samples": model.samples} if reuse else {}  # as modic.classify does
        contrast = add("contrast", partial(measure_contrast, study, refs, **shared))
        for roi in ends:
            kw = {"contrast": contrast, "reference_model": model}
            prep = add("prepare", partial(prepare_region, study, roi, refs, **kw))
            add(
                "bootstrap",
                partial(classify_samples, prep.region_values, prep.reference_values, context=prep.context),
            )
            res = classify_roi(study, roi, refs, extent=False, **kw)
            add("extent", partial(add_extent, res, study, prep))
        add("anatomy", lambda: check_rois(study, rois))
        add("classify", lambda: classify(study, ann))
        for s in STAGES:
            best[s] = [min(best[s][0], t[s][0]), min(best[s][1], t[s][1])]
    return best


COHORT = Path(__file__).resolve().parent / "_data" / "cohort_200"


def measure(repeats: int, cohort: int = 0) -> dict[str, dict[str, list[float]]]:
    """Per study and stage: [min CPU s, min wall s]; the sample studies, or with ``cohort``
    the first ``cohort`` studies of :data:`COHORT`."""
    import modic

    if cohort:
        folders = sorted(p for p in COHORT.glob("study_*") if p.is_dir())[:cohort]
        studies = [(f.name, f, f.with_name(f.name + ".modic.json")) for f in folders]
    else:
        studies = [
            (n, modic.data.sample_study_path(n), modic.data.sample_annotations_path(n))
            for n in modic.data.sample_study_names()
        ]
    out = {}
    for name, folder, rois in studies:
        out[name] = _study(modic.load_study(folder), modic.read_annotations(rois), repeats)
    return out


def _clone(rev: str) -> Path:
    root = Path(__file__).resolve().parent.parent
    tmp = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    subprocess.run(["git", "clone", "-q", str(root), str(tmp)], check=True)
    subprocess.run(["git", "-C", str(tmp), "checkout", "-q", rev], check=True)
    return tmp


def _other(clone: Path, repeats: int, cohort: int = 0) -> dict[str, dict[str, list[float]]]:
    env = dict(os.environ, PYTHONPATH=str(clone))
    cmd = [sys.executable, __file__, "--repeats", str(repeats), "--cohort", str(cohort), "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=clone)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(title: str, runs: list[tuple[str, dict[str, dict[str, list[float]]]]]) -> None:
    names = list(runs[0][1])
    print(title)
    head = f"{'stage (ms per study, median of studies)':40}"
    for label, _ in runs:
        head += f" {label + ' CPU':>14} {label + ' wall':>14}"
    print(head)
    for s in STAGES:
        line = f"{s:40}"
        for _, r in runs:
            cpu = sorted(r[n][s][0] for n in names)[len(names) // 2]
            wall = sorted(r[n][s][1] for n in names)[len(names) // 2]
            line += f" {cpu * 1000:14.1f} {wall * 1000:14.1f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--compare", metavar="REV", help="also measure this git revision (a clean clone), side by side"
    )
    ap.add_argument(
        "--cohort",
        type=int,
        default=0,
        metavar="N",
        help="also measure the first N studies of benchmarks/_data/cohort_200 (a second table)",
    )
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(measure(args.repeats, args.cohort)))
        return
    if args.cohort and not COHORT.is_dir():
        ap.error(f"--cohort: {COHORT} does not exist; python benchmarks/bench_cohort.py writes it")
    print(f"cores: {os.cpu_count()}; load average at the start {os.getloadavg()[0]:.1f}")
    print(f"minimum of {args.repeats} runs per study; 'classify' is the whole modic.classify")
    clone = _clone(args.compare) if args.compare else None
    for cohort in (0, args.cohort) if args.cohort else (0,):
        title = f"the first {cohort} studies of {COHORT.name}" if cohort else "the sample studies"
        if clone is not None:
            runs = []
            for _ in range(2):  # interleaved: this tree, the other, this tree, the other
                runs.append(("this", measure(args.repeats, cohort)))
                runs.append((args.compare[:10], _other(clone, args.repeats, cohort)))
            mine = {
                n: {s: [min(runs[0][1][n][s][i], runs[2][1][n][s][i]) for i in (0, 1)] for s in STAGES}
                for n in runs[0][1]
            }
            theirs = {
                n: {s: [min(runs[1][1][n][s][i], runs[3][1][n][s][i]) for i in (0, 1)] for s in STAGES}
                for n in runs[1][1]
            }
            _table(title, [(args.compare[:10], theirs), ("this", mine)])
        else:
            _table(title, [("this", measure(args.repeats, cohort))])
    print(f"load average at the end {os.getloadavg()[0]:.1f} (CPU < wall: other processes had the cores)")


if __name__ == "__main__":
    main()
