"""Extent of Modic changes (modic.extent) against the phantom's truth.

Run:  python benchmarks/extent.py [--studies 40] [--first 600000] [--style realistic|band]
      [--outline] [--workers 2] [--json out.json]

Studies: the realistic *calibration* cohort (benchmarks/cohort.py ``realistic_spec``,
seeds 600000+; generated once into ``_data/realistic/`` and reused), so that the held-out
evaluation seeds of the classifier (920000+) stay unseen. Each change's height reaches a
random 15-60 % of its body's local height (``LesionSpec.height_fraction``) and covers a
random share of the body's antero-posterior depth. The ROIs are drawn by the seeded
realistic reader (``--style realistic``: bands 3-8 mm tall, 0-3 px from the endplate,
the whole change, or one pixel inside it) or all as bands (``--style band``), and every
study goes through ``modic.classify`` (the extent is measured on the body estimated from
the image; with ``--outline`` every changed endplate's vertebra also gets a body outline,
drawn from the phantom's tissue map on the endplate ROI's image: its marrow and changes,
``body_source="outline"``).

Printed, over the endplates that hold a change in the truth and that modic calls a
change:

- how many got an extent, and why the others did not;
- the Udby height grade against the truth's grade (of the change's greatest height share
  over the whole change, ``measured_height_fraction``; and of the spec's share at the
  change's centre, ``height_fraction``): agreement, the confusion matrix and Cohen's
  linearly weighted kappa;
- the height-fraction error (modic - truth): median, mean absolute, 90th percentile;
- the body height against the truth's local body height at the change's centre;
- the length grade and length fraction against the change's antero-posterior share of
  the body's depth (``depth_fraction``, at the change's centre: an upper bound of what a
  slice beside the centre shows);
- the same per ROI style (band / inside / whole).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from cohort import REALISTIC_CALIBRATION_BASE, generate, reader_style

import modic
from modic.annotations import ROI, Annotations, ImagePlane, Mask, RoiLabel
from modic.extent import height_grade, length_grade
from modic.phantom import GroundTruth, tissue_at
from modic.phantom.reader import ReaderStyle, reader_annotations

GRADES = ("A", "B", "C")
LENGTHS = ("small", "medium", "large")


def _style(seed: int, name: str) -> ReaderStyle:
    if name == "band":
        return ReaderStyle(normal="band", change="band", reference="anywhere", seed=seed)
    return reader_style(seed)


def body_outline(truth: GroundTruth, vertebra: str, image: ImagePlane) -> ROI | None:
    """The body of ``vertebra`` on ``image`` from the phantom's tissue map (marrow and changes)."""
    rr, cc = np.mgrid[0 : image.rows, 0 : image.columns]
    xy = np.column_stack([cc.ravel() + 0.5, rr.ravel() + 0.5])
    names = tissue_at(truth, image.pixel_to_patient(xy)).reshape(image.rows, image.columns)
    inside = (names == f"marrow_{vertebra}") | (
        np.char.startswith(names, "modic") & (np.char.find(names, f"_{vertebra}_") >= 0)
    )
    if not inside.any():
        return None
    return ROI(RoiLabel.for_body(vertebra), Mask.from_image_mask(inside), image)


def measure_study(args: tuple[int, str, str, str, bool]) -> list[dict[str, Any]]:
    """One study's changed endplates: truth and modic's extent (plain data)."""
    seed, folder, truth_path, style_name, outline = args
    truth = GroundTruth.from_json(truth_path)
    study = modic.load_study(folder)
    style = _style(seed, style_name)
    rois = reader_annotations(truth, study, style=style)
    if outline:
        bodies = []
        for roi in rois.endplates():
            ep = roi.label.endplate.value if roi.label.endplate else ""
            if truth.endplate(roi.label.vertebra, ep).lesion is not None and not any(
                b.label.vertebra == roi.label.vertebra for b in bodies
            ):
                b = body_outline(truth, roi.label.vertebra, roi.image)
                if b is not None:
                    bodies.append(b)
        rois = Annotations([*rois, *bodies], study_instance_uid=rois.study_instance_uid)
    results = modic.classify(study, rois, errors=[])
    rows = []
    for r in results:
        ep = r.label.endplate.value if r.label.endplate else ""
        e = truth.endplate(r.label.vertebra, ep)
        if e.lesion is None:
            continue
        les = e.lesion
        draw = style.draw(r.label.vertebra, ep, changed=True)
        ext = r.extent
        why = next((w for w in r.warnings if w.startswith("extent not measured")), "")
        rows.append(
            {
                "seed": seed,
                "endplate": str(r.label),
                "truth_type": les.modic_type,
                "modic_type": r.modic_type.value,
                "is_change": r.modic_type.is_change,
                "roi": draw.kind,
                "body_source": None if ext is None else ext.body_source,
                "truth_height_fraction": les.measured_height_fraction,
                "spec_height_fraction": les.height_fraction,
                "truth_grade": height_grade(les.measured_height_fraction),
                "spec_grade": les.udby_grade,
                "truth_body_height_mm": les.geometry["local_body_height_mm"],
                "truth_length_fraction": les.depth_fraction,
                "height_fraction": None if ext is None else ext.height_fraction,
                "grade": None if ext is None else ext.height_grade,
                "body_height_mm": None if ext is None else ext.body_height_mm,
                "length_fraction": None if ext is None else ext.length_fraction,
                "length_grade": None if ext is None else ext.length_grade,
                "why": why,
            }
        )
    return rows


def weighted_kappa(pairs: list[tuple[str, str]], labels: tuple[str, ...]) -> float:
    """Cohen's kappa with linear weights over ordered labels."""
    k = len(labels)
    m = np.zeros((k, k))
    for a, b in pairs:
        m[labels.index(a), labels.index(b)] += 1
    n = m.sum()
    if n == 0:
        return float("nan")
    w = 1 - np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    po = (w * m).sum() / n
    pe = (w * np.outer(m.sum(1), m.sum(0))).sum() / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


def confusion_text(pairs: list[tuple[str, str]], labels: tuple[str, ...], what: str) -> str:
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for a, b in pairs:
        m[labels.index(a), labels.index(b)] += 1
    width = max(len(x) for x in labels) + 2
    corner = "truth \\ modic"
    head = f"  {corner:>14}" + "".join(f"{x:>{width}}" for x in labels)
    rows = [f"  {t:>14}" + "".join(f"{v:>{width}}" for v in row) for t, row in zip(labels, m, strict=True)]
    return "\n".join([f"  {what}", head, *rows])


def summarize(rows: list[dict[str, Any]], title: str) -> dict[str, Any]:
    called = [r for r in rows if r["is_change"]]
    measured = [r for r in called if r["grade"] is not None]
    out: dict[str, Any] = {
        "title": title,
        "changes": len(rows),
        "called_change": len(called),
        "measured": len(measured),
    }
    print(f"\n== {title}: {len(rows)} changes in the truth, {len(called)} called a change by modic, "
          f"{len(measured)} with an extent ({len(measured) / max(len(called), 1):.0%})")
    if not measured:
        return out
    g = [(r["truth_grade"], r["grade"]) for r in measured]
    gs = [(r["spec_grade"], r["grade"]) for r in measured]
    agree = float(np.mean([a == b for a, b in g]))
    agree_spec = float(np.mean([a == b for a, b in gs]))
    within1 = float(np.mean([abs(GRADES.index(a) - GRADES.index(b)) <= 1 for a, b in g]))
    err = np.array([r["height_fraction"] - r["truth_height_fraction"] for r in measured])
    body = np.array([r["body_height_mm"] - r["truth_body_height_mm"] for r in measured])
    lerr = np.array([r["length_fraction"] - r["truth_length_fraction"] for r in measured])
    lg = [(length_grade(r["truth_length_fraction"]), r["length_grade"]) for r in measured]
    out.update(
        grade_agreement=agree,
        grade_agreement_spec=agree_spec,
        grade_kappa_linear=weighted_kappa(g, GRADES),
        height_fraction_error_median=float(np.median(err)),
        height_fraction_error_mae=float(np.mean(np.abs(err))),
        height_fraction_error_p90=float(np.percentile(np.abs(err), 90)),
        body_height_error_mm_median=float(np.median(body)),
        body_height_error_mm_mae=float(np.mean(np.abs(body))),
        length_fraction_error_median=float(np.median(lerr)),
        length_fraction_error_mae=float(np.mean(np.abs(lerr))),
        length_grade_agreement=float(np.mean([a == b for a, b in lg])),
    )
    print(f"  Udby grade: {agree:.1%} agree with the truth's grade (greatest height share), "
          f"{agree_spec:.1%} with the spec's grade (share at the centre); within one grade {within1:.1%}; "
          f"linear kappa {out['grade_kappa_linear']:.3f}")
    print(confusion_text(g, GRADES, "Udby grade (truth: greatest height share)"))
    print(f"  height fraction error (modic - truth): median {np.median(err):+.3f}, mean |err| "
          f"{np.mean(np.abs(err)):.3f}, 90th percentile |err| {np.percentile(np.abs(err), 90):.3f}")
    print(f"  body height error: median {np.median(body):+.2f} mm, mean |err| {np.mean(np.abs(body)):.2f} mm")
    print(f"  length fraction error (modic - truth at the centre): median {np.median(lerr):+.3f}, mean |err| "
          f"{np.mean(np.abs(lerr)):.3f}; length grade agreement {out['length_grade_agreement']:.1%}")
    print(confusion_text(lg, LENGTHS, "length grade (truth: antero-posterior share at the centre)"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=40)
    ap.add_argument("--first", type=int, default=REALISTIC_CALIBRATION_BASE)
    ap.add_argument("--style", choices=("realistic", "band"), default="realistic")
    ap.add_argument("--outline", action="store_true", help="give every changed vertebra a body outline")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="write the numbers and every case here")
    args = ap.parse_args(argv)
    t0 = time.time()
    studies = generate(range(args.first, args.first + args.studies), workers=args.workers, realistic=True)
    tasks = [(s.seed, str(s.folder), str(s.truth_path), args.style, args.outline) for s in studies]
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for i, part in enumerate(pool.map(measure_study, tasks), 1):
            rows.extend(part)
            if i % 10 == 0 or i == len(tasks):
                print(f"  measured {i}/{len(tasks)} studies", file=sys.stderr)
    print(f"extent benchmark: {len(studies)} realistic phantom studies (seeds {args.first}-"
          f"{args.first + args.studies - 1}), ROIs drawn in the {args.style!r} reader style, "
          f"{'body outlines from the truth' if args.outline else 'bodies estimated from the images'}, "
          f"{time.time() - t0:.0f} s")
    summary = [summarize(rows, "all changes")]
    for kind in ("band", "inside", "whole"):
        sub = [r for r in rows if r["roi"] == kind]
        if sub:
            summary.append(summarize(sub, f"ROI drawn as {kind}"))
    reasons: dict[str, int] = {}
    for r in rows:
        if r["is_change"] and r["grade"] is None:
            key = r["why"].split(":", 1)[-1].strip().split(":")[0] or "(no reason)"
            reasons[key] = reasons.get(key, 0) + 1
    if reasons:
        print("\nnot measured:")
        for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {v:4d}  {k}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"summary": summary, "cases": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
