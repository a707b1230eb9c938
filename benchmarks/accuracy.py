"""Accuracy of the Modic classifier on an evaluation cohort of phantom studies.

Run:  python benchmarks/accuracy.py [--studies 200] [--json out.json]

The cohort (seeds 910000+, disjoint from the calibration seeds 500000+) spans the three
vendors' header styles, 1.5 T and 3 T, marrow SNR 10-40 on T1, coil bias, T2 grids offset
and tilted from the T1, STIR / fat-saturated T2 / no fluid-sensitive third series,
uncompressed / RLE / JPEG 2000 files, and 1-3 Modic changes per study of every type
(1, 2, 3, 1/2, 2/3) and size. ROIs are drawn from the ground truth as a careful reader
would (modic.phantom.reader). Every readable endplate L1 superior to S1 superior counts.

Printed: accuracy, Cohen's kappa, the confusion matrix and per-type recall, for modic
(the full classifier, with bootstrap confidence) and, side by side on the same ROIs, the
naive rule other tools use (whole-ROI mean ratio, hypo < 0.85, hyper > 1.15, T1 / T2
only); then the published anchors.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from cohort import EVALUATION_BASE, LABELS, confusion, format_confusion, generate, kappa
from evaluate import Case, collect, naive_type

from modic.criteria import classify_samples


def _report(name: str, pairs: list[tuple[str, str]]) -> dict[str, object]:
    m = confusion(pairs)
    acc = float(np.trace(m) / m.sum())
    k = kappa(m)
    recall = {lab: (float(m[i, i] / m[i].sum()) if m[i].sum() else None) for i, lab in enumerate(LABELS)}
    print(f"\n== {name}: accuracy {acc:.1%}, Cohen's kappa {k:.3f} ({m.sum()} endplates)")
    print(format_confusion(m))
    print(
        "recall: "
        + ", ".join(f"type {lab} {r:.1%}" if r is not None else f"type {lab} -" for lab, r in recall.items())
    )
    abnormal = [(t, p) for t, p in pairs if t != "0"]
    detect = sum((p != "0") for _, p in abnormal) / max(len(abnormal), 1)
    false_pos = sum((p != "0") for t, p in pairs if t == "0") / max(sum(t == "0" for t, _ in pairs), 1)
    print(f"changes detected (any type): {detect:.1%}; normal endplates called abnormal: {false_pos:.1%}")
    return {"accuracy": acc, "kappa": k, "confusion": m.tolist(), "recall": recall, "labels": list(LABELS)}


def _by(cases: list[Case], preds: list[str], key: str) -> None:
    groups: dict[object, list[bool]] = {}
    for c, p in zip(cases, preds, strict=True):
        v = c.info[key]
        if key == "snr":
            v = "10-20" if v < 20 else "20-30" if v < 30 else "30-40"
        groups.setdefault(v, []).append(c.truth == p)
    print(
        f"  by {key}: "
        + ", ".join(f"{g}: {np.mean(v):.1%} (n={len(v)})" for g, v in sorted(groups.items(), key=str))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=EVALUATION_BASE, help=f"default {EVALUATION_BASE}")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument(
        "--whole-change",
        action="store_true",
        help="the simulated reader outlines the whole change, border included (default: one pixel inside)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.studies)
    studies = generate(seeds, args.workers)
    cases, notes = collect(studies, args.workers, erode=not args.whole_change)
    print(
        f"evaluation cohort: {len(studies)} studies (seeds {seeds.start}-{seeds.stop - 1}), {len(cases)} endplate ROIs"
    )
    print("truth: " + ", ".join(f"type {lab}: {sum(c.truth == lab for c in cases)}" for lab in LABELS))
    if notes:
        print(f"{len(notes)} endplates could not be read and are left out:")
        for n in notes[:10]:
            print("  " + n)
    decisions = [classify_samples(c.region, c.reference, seed=i) for i, c in enumerate(cases)]
    ours = [d.modic_type.value for d in decisions]
    naive = [naive_type(c) for c in cases]
    out = {
        "studies": len(studies),
        "endplates": len(cases),
        "modic": _report(
            "modic (voxel-wise, robust statistics)", list(zip([c.truth for c in cases], ours, strict=True))
        ),
    }
    for key in ("vendor", "field", "snr", "stir"):
        _by(cases, ours, key)
    conf = np.array([d.confidence for d in decisions])
    right = np.array([c.truth == p for c, p in zip(cases, ours, strict=True)])
    print(
        f"  confidence: mean {conf[right].mean():.2f} when right, {conf[~right].mean() if (~right).any() else float('nan'):.2f} when wrong; "
        f"accuracy when confidence >= 0.9: {right[conf >= 0.9].mean():.1%} (n={int((conf >= 0.9).sum())}), "
        f"< 0.9: {right[conf < 0.9].mean() if (conf < 0.9).any() else float('nan'):.1%} (n={int((conf < 0.9).sum())})"
    )
    out["naive"] = _report(
        "naive rule (whole-ROI mean, 0.85 / 1.15, T1+T2)",
        list(zip([c.truth for c in cases], naive, strict=True)),
    )
    wrong = [(c, p, d) for c, p, d in zip(cases, ours, decisions, strict=True) if c.truth != p]
    if wrong:
        print("\nmodic's errors:")
        for c, p, d in wrong[:25]:
            fr = ", ".join(f"{k}:{v:.2f}" for k, v in d.fractions.items() if v >= 0.05)
            print(
                f"  seed {c.seed} {c.vertebra} {c.endplate}: truth {c.truth} got {p} (conf {d.confidence:.2f}; "
                f"{c.info['voxels']} voxels; snr {c.info['snr']:.0f}; stir {c.info['stir']}; fractions {fr})"
            )
    print(
        "\nPublished anchors: expert inter-reader kappa for Modic type 0.56-0.74 (Fayad 2009; 0.59 Carrino 2009); "
        "automated Modic typing 87.8 % accuracy (Jamaludin 2017); SpineNet marrow change kappa 0.74 (McSweeney 2023)."
    )
    print(
        "Note: phantom studies with ROIs drawn from the ground truth; real scans are harder (see docs/classifier.md)."
    )
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
