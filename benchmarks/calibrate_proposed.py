"""Where classification with proposed (whole-endplate) ROIs loses against reader ROIs.

For every truth endplate L1-S1 of each study it measures the proposed band
(:func:`modic.propose.propose`) and the reader's ROI (the classic reader of
``benchmarks/propose.py`` on the widened cohort; the realistic reader styles of
``benchmarks/accuracy.py`` with ``--realistic``) through modic's own pipeline
(:func:`modic.reading.prepare_region`, :func:`modic.criteria.classify_samples`), and
records per endplate: the truth type, the call with each ROI, its confidence and reason,
the share of the band's voxels typed 1-3, and the band's layout (each kept voxel's
position along the endplate, :attr:`modic.criteria.SignalContext.along_mm`).

The measurements are cached (``benchmarks/_data/calibrate_proposed-*.pkl``), so the
decision is rerun on them in seconds with ``--reuse``; ``--sweep`` tries the partial-change
rule's constants (``ClassifierParameters.partial_*``) on the cache.

Usage::

    python benchmarks/calibrate_proposed.py --widened --seeds 700000-700039
    python benchmarks/calibrate_proposed.py --widened --seeds 710000-710079
    python benchmarks/calibrate_proposed.py --realistic --seeds 600000-600059
    python benchmarks/calibrate_proposed.py --widened --seeds 700000-700039 --reuse --sweep \
        --also benchmarks/_data/calibrate_proposed-widened-710000-710079.pkl \
        --also benchmarks/_data/calibrate_proposed-realistic-600000-600059.pkl

Prints the error categories per ROI source (docs/classifier.md, "Whole-endplate bands").
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import modic  # noqa: E402
from modic.contrast import measure_contrast  # noqa: E402
from modic.criteria import DEFAULT_PARAMETERS, ClassifierParameters, SignalContext, classify_samples  # noqa: E402
from modic.phantom import GroundTruth  # noqa: E402
from modic.reading import ReferenceModel, prepare_region  # noqa: E402
from modic.sequence import Role  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data"
WANTED = ("L1", "L2", "L3", "L4", "L5", "S1")


@dataclass
class Case:
    """One truth endplate measured with one ROI source."""

    seed: int
    vertebra: str
    endplate: str
    truth: str
    source: str  # "proposed" or "reader"
    levels_right: bool
    missing: str = ""  # why there is no measurement ("not proposed", the error)
    region: dict[Role, np.ndarray] = field(default_factory=dict)
    reference: dict[Role, np.ndarray] = field(default_factory=dict)
    context: SignalContext | None = None
    info: dict[str, Any] = field(default_factory=dict)


# the cache is read by other scripts too: pickle the cases under this module's name
Case.__module__ = "calibrate_proposed"
sys.modules.setdefault("calibrate_proposed", sys.modules[__name__])


def _levels_right(study: Any, truth: GroundTruth, prop: Any) -> bool:
    import propose as bp

    from modic.phantom.truth import anatomy_of

    anat = anatomy_of(truth)
    shift = bp.TRANSITIONAL_SHIFT[truth.spec.get("transitional", "")]
    got = []
    for b in prop.bodies:
        r, c = np.nonzero(b.mask)
        got.append(bp.which_body(anat, study, b.slice_index, (float(r.mean()), float(c.mean()))))
    if shift and all(g == b.name for g, b in zip(got, prop.bodies, strict=True)):
        shift = 0
    return all(g == bp._counted(b.name, shift) for g, b in zip(got, prop.bodies, strict=True))


def layout(study: Any, roi: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n,) mm of each ROI pixel along the endplate (from the ROI's centre) and towards the
    disc, in the T1 plane (the axes of :mod:`modic.extent`)."""
    from modic.measure import roi_points
    from modic.reading import _disc_direction

    pts = roi_points(roi)
    normal = study.t1.geometry.normal
    d = _disc_direction(roi, pts)
    u = d - (d @ normal) * normal
    u = u / np.linalg.norm(u)
    e = np.cross(normal, u)
    c = pts - pts.mean(axis=0)
    return c @ e, c @ u


def _measure(study: Any, ann: Any, types: dict[tuple[str, str], str], seed: int, source: str,
             levels_right: bool) -> list[Case]:
    refs = list(ann.references())
    rois = {(r.label.vertebra, r.label.endplate.value): r for r in ann.endplates()}
    out: list[Case] = []
    contrast = measure_contrast(study, refs) if refs else None
    model = ReferenceModel.fit(study, refs) if refs else None
    for key, t in sorted(types.items()):
        if key[0] not in WANTED:
            continue
        case = Case(seed, key[0], key[1], t, source, levels_right)
        out.append(case)
        roi = rois.get(key)
        if roi is None or not refs:
            case.missing = "not proposed" if roi is None else "no reference"
            continue
        try:
            prep = prepare_region(study, roi, refs, contrast=contrast, reference_model=model)
        except modic.errors.MeasurementError as exc:
            case.missing = f"not measurable: {exc}"
            continue
        case.region = prep.region_values
        case.reference = prep.reference_values
        case.context = prep.context
        along, depth = layout(study, roi)
        case.info = {
            "along": along[prep.keep],
            "depth": depth[prep.keep],
            "style": getattr(roi, "comment", ""),
            "reference_from": prep.reference.label.vertebra,
            "voxels": int(prep.keep.size),
        }
    return out


def measure_study(args: tuple[int, str]) -> list[Case]:
    """The cases of one study (both ROI sources)."""
    import cohort

    from modic.phantom.reader import reader_annotations
    from modic.propose import propose

    seed, kind = args
    if kind == "widened":
        import propose as bp

        st = bp._gen_one(seed)
    else:
        st = cohort.generate([seed], workers=1, realistic=True)[0]
    truth = GroundTruth.from_json(st.truth_path)
    types = cohort.truth_types(truth)
    study = modic.load_study(st.folder)
    try:
        prop = propose(study)
    except modic.errors.ModicError:
        prop = None
    levels = bool(prop is not None and _levels_right(study, truth, prop))
    cases = []
    if prop is not None:
        cases += _measure(study, prop.annotations, types, seed, "proposed", levels)
    else:
        cases += [Case(seed, k[0], k[1], t, "proposed", False, missing="no proposal")
                  for k, t in sorted(types.items()) if k[0] in WANTED]
    style = None if kind == "widened" else cohort.reader_style(seed)
    ann = reader_annotations(truth, study) if style is None else reader_annotations(truth, study, style=style)
    cases += _measure(study, ann, types, seed, "reader", True)
    return cases


# ------------------------------------------------------------------------------ decision
def decide(cases: list[Case], p: ClassifierParameters) -> list[dict[str, Any]]:
    """Every case's call under ``p`` (same seeds as the pipeline: seed 0)."""
    rows = []
    for c in cases:
        row: dict[str, Any] = {"case": c, "call": "missing", "confidence": 0.0, "typed": float("nan"),
                               "reason": c.missing, "partial": False}
        if not c.missing:
            ctx = c.context
            along = c.info.get("along")
            if ctx is not None and along is not None and len(along) == len(c.region[Role.T1]):
                ctx = replace(ctx, along_mm=tuple(float(x) for x in along))
            d = classify_samples(c.region, c.reference, parameters=p, context=ctx)
            f = d.fractions
            row.update(call=d.modic_type.value, confidence=d.confidence, reason=d.reason,
                       typed=f["1"] + f["2"] + f["3"], partial=d.partial_mm > 0)
        rows.append(row)
    return rows


def category(row: dict[str, Any]) -> str:
    c: Case = row["case"]
    call, t = row["call"], c.truth
    if call == t:
        return "right"
    if call == "missing":
        return "not measured (" + (c.missing.split(":")[0]) + ")"
    if c.source == "proposed" and not c.levels_right:
        return "levels wrong"
    if call == "indeterminate":
        return "indeterminate"
    if t == "0":
        return "normal read as a change"
    if call == "0":
        typed = row["typed"]
        band = "<10 %" if typed < 0.1 else "10-20 %" if typed < 0.2 else "20-30 %" if typed < 0.3 else ">=30 %"
        return f"change read as 0 (typed {band})"
    if set(call.split("/")) & set(t.split("/")):
        return "mixed vs single type"
    return "another type"


def report(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in ("proposed", "reader"):
        rs = [r for r in rows if r["case"].source == source]
        ok = [r for r in rs if r["case"].levels_right]
        right = sum(r["call"] == r["case"].truth for r in rs)
        right_ok = sum(r["call"] == r["case"].truth for r in ok)
        normal = [r for r in rs if r["case"].truth == "0" and r["call"] != "missing"]
        fp = sum(r["call"] not in ("0", "indeterminate") for r in normal)
        conf_wrong = sum(r["call"] != r["case"].truth and r["call"] != "missing" and r["confidence"] >= 0.9
                         for r in rs)
        cats = Counter(category(r) for r in rs)
        print(f"[{label}] {source}: right {right}/{len(rs)} = {100 * right / max(len(rs), 1):.1f} %; "
              f"levels right: {right_ok}/{len(ok)} = {100 * right_ok / max(len(ok), 1):.1f} %; "
              f"normal called a change {fp}/{len(normal)}; confident (>= 0.9) wrong {conf_wrong}; "
              f"local departure in a type-0 call {sum(r['partial'] for r in rs)} "
              f"(right {sum(r['partial'] and r['call'] == r['case'].truth for r in rs)})")
        reader_right = {(r["case"].seed, r["case"].vertebra, r["case"].endplate) for r in rows
                        if r["case"].source == "reader" and r["call"] == r["case"].truth}
        for k, v in cats.most_common():
            if k != "right":
                also = sum(category(r) == k and (r["case"].seed, r["case"].vertebra, r["case"].endplate)
                           in reader_right for r in rs)
                print(f"    {v:4d}  {k}" + (f"  (reader ROI right on {also})" if source == "proposed" else ""))
        out[source] = {"right": right, "n": len(rs), "right_levels_ok": right_ok, "n_levels_ok": len(ok),
                       "fp": fp, "normal": len(normal), "confident_wrong": conf_wrong}
    return out


def sweep(cases: list[Case]) -> None:
    """Per setting of the local-departure rule: how many type-0 calls it flags, how many of
    them are right, and the confident (>= 0.9 without the cap) errors among them; the fitted
    ``partial_confidence`` is the rule-of-succession share right, (right + 1) / (n + 2)."""
    uncapped = replace(DEFAULT_PARAMETERS, partial_confidence=1.0)
    print("length_mm share  flagged right  wrong>=0.9 caught  right>=0.9 capped  fit")
    for length in (3.0, 5.0, 8.0):
        for share in (0.4, 0.5, 0.6):
            rows = decide(cases, replace(uncapped, partial_length_mm=length, partial_column_share=share))
            flagged = [r for r in rows if r["partial"]]
            right = sum(r["call"] == r["case"].truth for r in flagged)
            wrong_conf = sum(r["call"] != r["case"].truth and r["confidence"] >= 0.9 for r in flagged)
            right_conf = sum(r["call"] == r["case"].truth and r["confidence"] >= 0.9 for r in flagged)
            fit = (right + 1) / (len(flagged) + 2)
            print(f"{length:9g} {share:5g} {len(flagged):8d} {right:5d} {wrong_conf:18d} {right_conf:18d}  {fit:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="A-B range of seeds")
    ap.add_argument("--widened", action="store_true", help="the widened cohort (benchmarks/propose.py)")
    ap.add_argument("--realistic", action="store_true", help="the realistic calibration cohort")
    ap.add_argument("--reuse", action="store_true", help="reuse the cached measurements")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--off", action="store_true", help="also decide with the partial-change rule off")
    ap.add_argument("--list", action="store_true", help="print every wrong endplate (development seeds only)")
    ap.add_argument("--sweep", action="store_true",
                    help="try partial_length_mm x partial_column_share; fit partial_confidence")
    ap.add_argument("--also", action="append", default=[], metavar="PKL",
                    help="pool another cache (another cohort's) into the sweep and the fit")
    args = ap.parse_args(argv)
    kind = "realistic" if args.realistic else "widened"
    a, b = (int(x) for x in args.seeds.split("-"))
    seeds = list(range(a, b + 1))
    cache = DATA / f"calibrate_proposed-{kind}-{a}-{b}.pkl"
    if args.reuse and cache.exists():
        cases = pickle.loads(cache.read_bytes())
    else:
        cases = []
        with ProcessPoolExecutor(max_workers=args.workers or os.cpu_count()) as pool:
            for i, cs in enumerate(pool.map(measure_study, [(s, kind) for s in seeds]), 1):
                cases += cs
                if i % 10 == 0 or i == len(seeds):
                    print(f"  measured {i}/{len(seeds)} studies", file=sys.stderr)
        cache.write_bytes(pickle.dumps(cases))
    print(f"{kind} seeds {a}-{b}: {len(seeds)} studies, {sum(c.source == 'proposed' for c in cases)} endplates")
    if args.sweep:
        for extra in args.also:
            cases = cases + pickle.loads(Path(extra).read_bytes())
        sweep(cases)
        return 0
    settings = [("default", DEFAULT_PARAMETERS)]
    if args.off:
        settings.insert(0, ("rule off", replace(DEFAULT_PARAMETERS, partial_length_mm=0.0)))
    for name, p in settings:
        rows = decide(cases, p)
        report(rows, name)
        if args.list:
            for r in rows:
                c = r["case"]
                if r["call"] != c.truth and r["call"] != "missing":
                    print(f"  {c.seed} {c.vertebra} {c.endplate[:3]} {c.source}: truth {c.truth} got {r['call']} "
                          f"({r['confidence']:.2f}, typed {r['typed']:.2f}) {r['reason'][:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
