"""Calibrate the classifier's thresholds on phantom studies kept apart from evaluation.

Run:  python benchmarks/calibrate_classifier.py [--studies 60]

Generates (or reuses) the calibration cohort (seeds 500000+, disjoint from the evaluation
seeds 900000+ of benchmarks/accuracy.py), draws the ROIs a careful reader would draw from
the ground truth, samples them once, then sweeps the four calibrated thresholds of
``modic.criteria.ClassifierParameters`` (voxel_z, min_voxel_change, abnormal_fraction,
mixed_fraction) over a grid and prints the best settings by Cohen's kappa (ties: accuracy,
then the setting nearest the current defaults). It changes nothing: copy the chosen
values into ``ClassifierParameters`` by hand and record the run in docs/classifier.md.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import asdict, replace

import numpy as np
from cohort import CALIBRATION_BASE, LABELS, confusion, generate, kappa
from evaluate import collect

from modic.criteria import _CODE_TO_TYPE, DEFAULT_PARAMETERS, _decide, decide_type

GRID = {
    "voxel_z": [1.5, 2.0, 2.5, 3.0],
    "min_voxel_change": [0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.25],
    "abnormal_fraction": [0.15, 0.2, 0.25, 0.3, 0.4, 0.5],
    "mixed_fraction": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    seeds = range(CALIBRATION_BASE, CALIBRATION_BASE + args.studies)
    studies = generate(seeds, args.workers)
    cases, notes = collect(studies, args.workers)
    print(
        f"calibration cohort: {len(studies)} studies (seeds {seeds.start}-{seeds.stop - 1}), "
        f"{len(cases)} endplate ROIs; {len(notes)} endplates not readable"
    )
    counts = {lab: sum(c.truth == lab for c in cases) for lab in LABELS}
    print("truth:", ", ".join(f"type {k}: {v}" for k, v in counts.items()))
    default = asdict(DEFAULT_PARAMETERS)
    results = []
    names = list(GRID)
    truth = [c.truth for c in cases]
    keys = ("0", "1", "2", "3", "unclassified")
    # the voxel thresholds decide the voxel-type fractions; the two fraction thresholds
    # then decide the type from them, which is cheap, so sweep them inside
    for vz, mvc in itertools.product(GRID["voxel_z"], GRID["min_voxel_change"]):
        p0 = replace(DEFAULT_PARAMETERS, voxel_z=vz, min_voxel_change=mvc)
        frac = np.array([[decide_type(c.region, c.reference, p0)[1][k] for k in keys] for c in cases])
        for af, mf in itertools.product(GRID["abnormal_fraction"], GRID["mixed_fraction"]):
            p = replace(p0, abnormal_fraction=af, mixed_fraction=mf)
            codes = _decide(frac, p)
            pairs = list(zip(truth, (_CODE_TO_TYPE[int(k)].value for k in codes), strict=True))
            m = confusion(pairs)
            acc = np.trace(m) / m.sum()
            values = (vz, mvc, af, mf)
            dist = sum(abs(np.log(v / default[n])) for n, v in zip(names, values, strict=True))
            results.append((kappa(m), acc, -dist, values, m))
    results.sort(key=lambda r: (round(r[0], 4), round(r[1], 4), r[2]), reverse=True)
    print(f"\nswept {len(results)} settings in {time.perf_counter() - t0:.0f} s (total)")
    print("\nbest 10 (kappa, accuracy, " + ", ".join(names) + "):")
    for k, acc, _, values, _ in results[:10]:
        print(f"  {k:.4f}  {acc:.4f}  " + "  ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)))
    current = next(r for r in results if all(v == default[n] for n, v in zip(names, r[3], strict=True)))
    print(f"\ncurrent defaults: kappa {current[0]:.4f}, accuracy {current[1]:.4f}")
    print("confusion of the best setting (rows truth, columns prediction):")
    from cohort import format_confusion

    print(format_confusion(results[0][4]))
    print("\nbest kappa for each mixed_fraction (the other three free):")
    for mf in GRID["mixed_fraction"]:
        k, acc, _, values, _ = max((r for r in results if r[3][3] == mf), key=lambda r: (r[0], r[1]))
        print(f"  mixed_fraction={mf}: kappa {k:.4f}, accuracy {acc:.4f} at " + ", ".join(f"{n}={v}" for n, v in zip(names[:3], values[:3], strict=True)))


if __name__ == "__main__":
    main()
