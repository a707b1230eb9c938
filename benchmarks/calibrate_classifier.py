"""Calibrate the classifier's thresholds and its confidence on phantom studies kept apart
from evaluation.

Run:  python benchmarks/calibrate_classifier.py [--studies 60] [--workers 2]

Generates (or reuses) the *realistic* calibration cohort (seeds 600000+; benchmarks/cohort.py:
weak changes, incomplete fat suppression, coil gradients, 4-5 mm slices with partial
volume, heterogeneous and fatty marrow, fat islands, hemangiomas, Schmorl nodes; reader
ROIs of several styles), measures every endplate ROI once through modic's own pipeline
(benchmarks/prepared.py), then

1. sweeps the thresholds of ``modic.criteria.ClassifierParameters`` -- voxel_z,
   tissue_sd, region_z, min_cosine, sign_z, fat_sd, matched_filter, the partial-volume
   margin, abnormal_fraction and mixed_fraction (held >= 0.15, see docs/classifier.md) -- and prints the settings with
   the best Cohen's kappa (an indeterminate call counts as a disagreement; ties: fewer
   confident errors, then accuracy, then nearest the current defaults);
2. with the current defaults, runs the full classifier (bootstrap) on every case and fits
   the maps from bootstrap agreement to the probability of being right (isotonic
   regression, pooled adjacent violators), apart for type-0 calls and for the others,
   printed as the knots of ``ClassifierParameters.confidence_calibration`` and
   ``change_calibration`` (``--confidence-only``: this step and the next alone);
3. fits what a type-0 call may claim by its share of voxels typed 1, 2 or 3
   (``normal_typed_calibration``) and when the body-marrow rule made it
   (``body_explained_confidence``).

The measured ROIs are cached in ``benchmarks/_data/realistic/prepared-FIRST-LAST.pkl``;
``--reuse`` reruns the decision on them (after a change to the decision only).

The script changes nothing: copy chosen values into ``ClassifierParameters`` by hand and
record the run in docs/classifier.md. The evaluation seeds (920000+, benchmarks/accuracy.py)
are never read here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace

import numpy as np
from cohort import DATA_REALISTIC, REALISTIC_CALIBRATION_BASE, generate, kappa, reader_style
from prepared import PV_SETTINGS, PreparedCase, prepare

from modic.criteria import (
    DEFAULT_PARAMETERS,
    body_departure,
    classify_samples,
    decide_codes,
    evidence,
    t1_departure,
)
from modic.sequence import Role

LABELS6 = ("0", "1", "2", "3", "1/2", "2/3", "indeterminate")
#: The grid of 2026-12-03 (afternoon, with the body-marrow rule): thresholds that trade
#: sensitivity to weak changes against false changes in patchy marrow, which that rule
#: removes; the rest held at the values of the morning's sweep (docs/classifier.md).
GRID = {
    "voxel_z": [2.5, 3.0],
    "tissue_sd": [0.08],
    "region_z": [2.5, 3.0],
    "min_cosine": [0.3],
    "sign_z": [1.0],
    "fat_sd": [0.0],
    "matched_filter": [False, True],
    "pv": ["default"],
}
INNER = {
    "abnormal_fraction": [0.3, 0.4, 0.5, 0.6],
    "mixed_fraction": [0.15, 0.2, 0.25, 0.3],
    "body_ratio": [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "body_max_z": [3.0, 4.0, 6.0, 8.0, 1e9],
}
#: The cases, set once per worker process (fork), so grid points do not pickle them.
_CASES: list[PreparedCase] = []


def _score(truth: list[str], pred: list[str]) -> tuple[float, float]:
    m = confusion7(truth, pred)
    return kappa(m), float(np.trace(m) / m.sum())


def confusion7(truth: list[str], pred: list[str]) -> np.ndarray:
    m = np.zeros((len(LABELS6), len(LABELS6)), dtype=int)
    for t, p in zip(truth, pred, strict=True):
        m[LABELS6.index(t), LABELS6.index(p)] += 1
    return m


def _grid_point(values: tuple) -> list[tuple]:
    vz, tsd, rz, mc, sz, fsd, mf, pv = values
    px, slab = PV_SETTINGS[pv]
    p0 = replace(
        DEFAULT_PARAMETERS,
        voxel_z=vz,
        tissue_sd=tsd,
        region_z=rz,
        min_cosine=mc,
        sign_z=sz,
        fat_sd=fsd,
        matched_filter=mf,
        pv_margin_px=px,
        pv_slab_fraction=slab,
    )
    ev = [evidence(c.region_values(pv), c.reference, p0, c.context) for c in _CASES]
    frac = np.array([e[0] for e in ev])
    sig = np.array([e[1] for e in ev])
    rtype = np.array([e[2] for e in ev])
    body = np.array([body_departure(c.region_values(pv), c.reference, p0, c.context) for c in _CASES])
    # a type-3 call needs a T1 darker than voxel_z units (criteria._faint_sclerosis)
    faint_t1 = np.array([t1_departure(c.region_values(pv), c.reference, p0, c.context) for c in _CASES]) > -vz
    truth = [c.truth for c in _CASES]
    out = []
    for af, mxf in itertools.product(INNER["abnormal_fraction"], INNER["mixed_fraction"]):
        p = replace(p0, abnormal_fraction=af, mixed_fraction=mxf)
        pred0 = [t.value for t in decide_codes(frac, sig, rtype, p)]
        change = np.array([t not in ("0", "indeterminate") for t in pred0])
        for br, bmz in itertools.product(INNER["body_ratio"], INNER["body_max_z"]):
            if br == 0 and bmz != INNER["body_max_z"][0]:
                continue  # off: body_max_z does not matter
            # the marrow beyond the region explains a weak change call (criteria._body_veto)
            veto = change & (body[:, 0] >= br) & (body[:, 1] <= bmz) if br > 0 else np.zeros(len(pred0), bool)
            pred = ["0" if v else t for t, v in zip(pred0, veto, strict=True)]
            pred = ["indeterminate" if t == "3" and f else t for t, f in zip(pred, faint_t1, strict=True)]
            k, acc = _score(truth, pred)
            out.append((k, acc, (vz, tsd, rz, mc, sz, fsd, mf, pv, af, mxf, br, bmz)))
    return out


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled adjacent violators: the increasing step fit of y on x.

    Returns each block's centre (mean x) and level. A level is the block's
    rule-of-succession mean (sum + 1) / (n + 2) (Laplace), so a block of calls that were
    all right does not map to a probability of exactly 1.
    """
    ux, inv = np.unique(x, return_inverse=True)  # equal agreements form one block
    sums = np.bincount(inv, weights=y.astype(float))
    counts = np.bincount(inv).astype(float)
    blocks: list[list[float]] = []  # [sum_y, count, sum_x]
    for xi, si, ni in zip(ux, sums, counts, strict=True):
        blocks.append([si, ni, xi * ni])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, n, sx = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
            blocks[-1][2] += sx
    return np.array([b[2] / b[1] for b in blocks]), np.array([_level(b) for b in blocks])


def fit_calibration(agreement: np.ndarray, correct: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Knots (agreement, P(right)) at fixed agreements: the isotonic fit, linear between
    its blocks' centres (so the map rises across a block boundary instead of jumping),
    increasing."""
    cx, ly = isotonic(agreement, correct)
    grid = [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.995, 1.0]
    knots = []
    last = 0.0
    for g in grid:
        v = max(float(np.interp(g, cx, ly)), last)
        knots.append((g, round(v, 3)))
        last = v
    return tuple(knots)


def main() -> None:
    global _CASES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--confidence-only", action="store_true", help="skip the threshold sweep (step 1)")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the measured ROIs of an earlier run (same seeds, same code)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    seeds = range(REALISTIC_CALIBRATION_BASE, REALISTIC_CALIBRATION_BASE + args.studies)
    studies = generate(seeds, args.workers, realistic=True)
    cache = DATA_REALISTIC / f"prepared-{seeds.start}-{seeds.stop - 1}.pkl"
    if args.reuse and cache.exists():  # the same measurements, to rerun only the decision
        cases, notes = pickle.loads(cache.read_bytes())
    else:
        cases, notes = prepare(studies, [reader_style(s) for s in seeds], args.workers)
        cache.write_bytes(pickle.dumps((cases, notes)))
    cases = [c for c in cases if c.region[Role.T1].size >= DEFAULT_PARAMETERS.min_voxels]  # refused by modic
    _CASES = cases
    print(
        f"calibration cohort: {len(studies)} realistic studies (seeds {seeds.start}-{seeds.stop - 1}), "
        f"{len(cases)} endplate ROIs; {len(notes)} endplates not readable"
    )
    print("truth:", ", ".join(f"type {k}: {sum(c.truth == k for c in cases)}" for k in LABELS6[:6]))

    scored: list[tuple] = []
    if not args.confidence_only:
        scored = sweep()
    _confidence(cases, t0, scored, args.json)


def sweep() -> list[tuple]:
    """Step 1: every grid point, best first."""
    t0 = time.perf_counter()
    default = asdict(DEFAULT_PARAMETERS)
    points = list(itertools.product(*GRID.values()))
    with ProcessPoolExecutor() as pool:
        scored = [r for chunk in pool.map(_grid_point, points, chunksize=4) for r in chunk]
    names = [*GRID, *INNER]

    def dist(values: tuple) -> float:
        d = 0.0
        for n, v in zip(names, values, strict=True):
            if n == "pv":
                d += 0.0 if v == "default" else 1.0
            elif isinstance(v, bool) or not default[n]:
                d += 0.0 if v == default[n] else 1.0
            else:
                d += abs(np.log(v / default[n]))
        return d

    scored.sort(key=lambda r: (round(r[0], 4), round(r[1], 4), -dist(r[2])), reverse=True)
    print(f"\nswept {len(scored)} settings in {time.perf_counter() - t0:.0f} s")
    print("best 12 (kappa, accuracy, " + ", ".join(names) + "):")
    for k, acc, values in scored[:12]:
        print(f"  {k:.4f}  {acc:.4f}  " + "  ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)))
    cur = tuple("default" if n == "pv" else default[n] for n in names)
    current = next((r for r in scored if r[2] == cur), None)
    if current is not None:
        print(f"current defaults: kappa {current[0]:.4f}, accuracy {current[1]:.4f}")
    print("best kappa per partial-volume margin:")
    for pv in [v for v in PV_SETTINGS if any(r[2][7] == v for r in scored)]:
        k, acc, values = max((r for r in scored if r[2][7] == pv), key=lambda r: (r[0], r[1]))
        print(
            f"  {pv:8s} kappa {k:.4f} accuracy {acc:.4f} at "
            + ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True) if n != "pv")
        )

    return scored


def _confidence(cases: list[PreparedCase], t0: float, scored: list[tuple], json_path: str | None) -> None:
    """Step 2: agreement -> probability, with the current thresholds, apart for type-0 calls
    (``confidence_calibration``) and for the others (``change_calibration``)."""
    p = replace(
        DEFAULT_PARAMETERS,
        confidence_calibration=(),
        change_calibration=(),
        normal_typed_calibration=(),
        body_explained_confidence=1.0,
    )
    decisions = [
        classify_samples(c.region_values(), c.reference, parameters=p, context=c.context, seed=i)
        for i, c in enumerate(cases)
    ]
    agree = np.array([d.agreement for d in decisions])
    right = np.array([d.modic_type.value == c.truth for d, c in zip(decisions, cases, strict=True)])
    normal = np.array([d.modic_type.value == "0" for d in decisions])
    m = confusion7([c.truth for c in cases], [d.modic_type.value for d in decisions])
    print(f"\ncurrent defaults with bootstrap: accuracy {np.trace(m) / m.sum():.4f}, kappa {kappa(m):.4f}")
    print(format_confusion7(m))
    fitted = {}
    for name, sel in (("confidence_calibration", normal), ("change_calibration", ~normal)):
        print(
            f"{name}: {int(sel.sum())} calls, {right[sel].mean() if sel.any() else float('nan'):.3f} right; "
            "raw agreement reliability (bin: n, accuracy):"
        )
        for lo, hi in [(0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01)]:
            b = sel & (agree >= lo) & (agree < hi)
            if b.any():
                print(f"  {lo:.2f}-{min(hi, 1):.2f}: n={int(b.sum()):4d} accuracy {right[b].mean():.3f}")
        fitted[name] = fit_calibration(agree[sel], right[sel].astype(float)) if sel.any() else ()
        print(f"{name} = {fitted[name]}")
    fitted.update(_normal_caps(decisions, right, normal))
    print(f"total {time.perf_counter() - t0:.0f} s")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump({"best": scored[:50], "calibration": fitted}, fh, indent=1, default=str)


#: Bins of the share of typed voxels for ``normal_typed_calibration``: a fit on the share
#: itself (continuous, almost every value once) would make a block of every call.
TYPED_BINS = (0.0, 0.1, 0.2, 0.3, 1.01)


def _level(block: list[float]) -> float:
    """The rule-of-succession share of right calls of a block [right, n, ...]."""
    return (block[0] + 1) / (block[1] + 2)


def _normal_caps(decisions: list, right: np.ndarray, normal: np.ndarray) -> dict[str, object]:
    """Step 3: what a type-0 call may claim by its share of typed voxels
    (``normal_typed_calibration``: per bin of :data:`TYPED_BINS`, adjacent bins pooled until
    the levels do not increase with the share, each level the rule-of-succession share of
    right calls, a knot at each bin's centre; calls the body-marrow rule made left out), and
    when the body-marrow rule made it (``body_explained_confidence``)."""
    typed = np.array([d.fractions["1"] + d.fractions["2"] + d.fractions["3"] for d in decisions])
    body = np.array([d.body_rule for d in decisions])
    sel = normal & ~body
    print(
        f"normal_typed_calibration: {int(sel.sum())} type-0 calls (those of the body-marrow rule left out), "
        "by share of typed voxels (bin: n, right):"
    )
    blocks: list[list[float]] = []  # [right, n, sum of bin centres, bins]
    for lo, hi in zip(TYPED_BINS[:-1], TYPED_BINS[1:], strict=True):
        b = sel & (typed >= lo) & (typed < hi)
        n, r = int(b.sum()), int(right[b].sum())
        print(f"  {lo:.1f}-{min(hi, 1):.1f}: n={n:4d} right {r}")
        if n == 0:
            continue
        blocks.append([r, n, (lo + min(hi, 0.4)) / 2, 1])
        while len(blocks) > 1 and _level(blocks[-1]) > _level(blocks[-2]):
            r2, n2, c2, k2 = blocks.pop()
            blocks[-1] = [blocks[-1][0] + r2, blocks[-1][1] + n2, blocks[-1][2] + c2, blocks[-1][3] + k2]
    knots = tuple((round(b[2] / b[3], 3), round(_level(b), 3)) for b in blocks)
    print(f"normal_typed_calibration = {knots}")
    nb, rb = int((normal & body).sum()), int(right[normal & body].sum())
    level = round(_level([rb, nb]), 3)
    print(f"body_explained_confidence = {level}  ({rb} of {nb} calls the body-marrow rule made were right)")
    return {"normal_typed_calibration": knots, "body_explained_confidence": level}


def format_confusion7(m: np.ndarray) -> str:
    head = "truth \\ pred " + " ".join(f"{lab[:5]:>5}" for lab in LABELS6)
    rows = [f"{lab[:12]:>12} " + " ".join(f"{v:5d}" for v in m[i]) for i, lab in enumerate(LABELS6)]
    return "\n".join([head, *rows])


if __name__ == "__main__":
    main()
