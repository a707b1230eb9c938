"""Calibrate the classifier's thresholds on phantom studies kept apart from evaluation.

Run:  python benchmarks/calibrate_classifier.py [--studies 60]

Generates (or reuses) the calibration cohort (seeds 500000+, disjoint from the evaluation
seeds 910000+ of benchmarks/accuracy.py), draws the ROIs a careful reader would draw from
the ground truth in two styles (one pixel inside the change's border, and the whole
change), samples them once, then sweeps three thresholds of
``modic.criteria.ClassifierParameters`` (voxel_z, min_voxel_change, abnormal_fraction)
over a grid, for each allowed mixed_fraction, and prints the settings with the best mean
Cohen's kappa over the two reader styles (ties: accuracy, then nearest the current
defaults).

mixed_fraction is not free: on the phantom, whose pure changes hold no islands of another
tissue, a lower threshold never costs anything, so the sweep would drive it to the grid's
floor; real marrow has fat islands and heterogeneity. It is constrained to >= 0.15 (a
second component must be a visible share of the change) and the sweep shows what each
value gives. The script changes nothing: copy chosen values into ``ClassifierParameters``
by hand and record the run in docs/classifier.md.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import asdict, replace

import numpy as np
from cohort import CALIBRATION_BASE, LABELS, confusion, format_confusion, generate, kappa
from evaluate import collect

from modic.criteria import _CODE_TO_TYPE, DEFAULT_PARAMETERS, _decide, decide_type

GRID = {
    "voxel_z": [1.5, 2.0, 2.5, 3.0],
    "min_voxel_change": [0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.25],
    "abnormal_fraction": [0.15, 0.2, 0.25, 0.3, 0.4, 0.5],
    "mixed_fraction": [0.15, 0.2, 0.25, 0.3],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    seeds = range(CALIBRATION_BASE, CALIBRATION_BASE + args.studies)
    studies = generate(seeds, args.workers)
    styles = {"inside the border": True, "whole change": False}
    case_sets = {}
    for name, erode in styles.items():
        cases, notes = collect(studies, args.workers, erode=erode)
        case_sets[name] = cases
        print(f"reader '{name}': {len(cases)} endplate ROIs; {len(notes)} endplates not readable")
    cases = case_sets["inside the border"]
    print(f"calibration cohort: {len(studies)} studies (seeds {seeds.start}-{seeds.stop - 1})")
    counts = {lab: sum(c.truth == lab for c in cases) for lab in LABELS}
    print("truth:", ", ".join(f"type {k}: {v}" for k, v in counts.items()))
    default = asdict(DEFAULT_PARAMETERS)
    names = list(GRID)
    keys = ("0", "1", "2", "3", "unclassified")
    # per style: the voxel thresholds decide the voxel-type fractions; the two fraction
    # thresholds then decide the type from them, which is cheap, so sweep them inside
    scores: dict[tuple[float, ...], list[tuple[float, float, np.ndarray]]] = {}
    for cs in case_sets.values():
        truth = [c.truth for c in cs]
        for vz, mvc in itertools.product(GRID["voxel_z"], GRID["min_voxel_change"]):
            p0 = replace(DEFAULT_PARAMETERS, voxel_z=vz, min_voxel_change=mvc)
            frac = np.array([[decide_type(c.region, c.reference, p0)[1][k] for k in keys] for c in cs])
            for af, mf in itertools.product(GRID["abnormal_fraction"], GRID["mixed_fraction"]):
                codes = _decide(frac, replace(p0, abnormal_fraction=af, mixed_fraction=mf))
                m = confusion(list(zip(truth, (_CODE_TO_TYPE[int(k)].value for k in codes), strict=True)))
                scores.setdefault((vz, mvc, af, mf), []).append((kappa(m), float(np.trace(m) / m.sum()), m))
    results = []
    for values, per_style in scores.items():
        k = float(np.mean([x[0] for x in per_style]))
        acc = float(np.mean([x[1] for x in per_style]))
        dist = sum(abs(np.log(v / default[n])) for n, v in zip(names, values, strict=True))
        results.append((k, acc, -dist, values, per_style[0][2], [x[0] for x in per_style]))
    results.sort(key=lambda r: (round(r[0], 4), round(r[1], 4), r[2]), reverse=True)
    print(f"\nswept {len(results)} settings in {time.perf_counter() - t0:.0f} s (total)")
    print("\nbest 10 (mean kappa, mean accuracy, kappa per reader style, " + ", ".join(names) + "):")
    for k, acc, _, values, _, per in results[:10]:
        per_s = "/".join(f"{x:.3f}" for x in per)
        print(f"  {k:.4f}  {acc:.4f}  ({per_s})  " + "  ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)))
    current = next((r for r in results if all(v == default[n] for n, v in zip(names, r[3], strict=True))), None)
    if current is not None:
        print(f"\ncurrent defaults: mean kappa {current[0]:.4f}, mean accuracy {current[1]:.4f}")
    print("confusion of the best setting, reader 'inside the border' (rows truth, columns prediction):")
    print(format_confusion(results[0][4]))
    print("\nbest kappa for each mixed_fraction (the other three free):")
    for mf in GRID["mixed_fraction"]:
        k, acc, _, values, _, _ = max((r for r in results if r[3][3] == mf), key=lambda r: (r[0], r[1]))
        print(f"  mixed_fraction={mf}: kappa {k:.4f}, accuracy {acc:.4f} at " + ", ".join(f"{n}={v}" for n, v in zip(names[:3], values[:3], strict=True)))


if __name__ == "__main__":
    main()
