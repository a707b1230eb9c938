"""How often calls compared with a flagged reference are right (calibrates
``ClassifierParameters.reference_flag_confidence``).

A reference is *flagged* when the classifier warns that it may hold part of a change: it
lies off the level the study's other references predict (:class:`modic.reading.ReferenceModel`)
or its marrow is heterogeneous (its T1 spread well above the image noise). Both widen the
spread the region is compared with, so a change can hide in it. For every truth endplate
L1-S1 of each study, the call with the proposed ROIs (:func:`modic.propose.propose_rois`)
and with the phantom reader's ROIs (as ``benchmarks/propose.py --classify``) is recorded
with its confidence and whether its reference is flagged; the script prints, per call type
and overall, how many flagged calls there are and how many are right, and the
confidence (right + 1) / (n + 2) that the typed ones (not indeterminate) earned. The
three development cohorts together (2026-12-04): reader 136 of 144 typed calls right
(0.938), proposed 174 of 210 (0.825).

Usage::

    python benchmarks/calibrate_reference_flag.py --widened --seeds 700000-700039
    python benchmarks/calibrate_reference_flag.py --realistic --seeds 600000-600059
    python benchmarks/calibrate_reference_flag.py --widened --seeds 710000-710079 --json out.json
    python benchmarks/calibrate_reference_flag.py --widened --seeds 700000-700039 --typed

``--typed`` also prints the type-0 calls per bin of the share of their voxels typed 1-3
(``ClassifierParameters.proposed_normal_typed_calibration``; 2026-12-04, the three cohorts
together, proposed ROIs: 0-10 % 668 of 693 right, 10-20 % 792 of 815, 20-30 % 154 of 172,
30 % or more 34 of 57).

The caps themselves are switched off unless ``--capped`` is given, so the calls are
measured as they were before the rule.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import modic  # noqa: E402
from modic.criteria import DEFAULT_PARAMETERS  # noqa: E402
from modic.phantom import GroundTruth  # noqa: E402

WANTED = ("L1", "L2", "L3", "L4", "L5", "S1")
#: The warnings that flag a reference (modic.reading).
FLAGS = ("it may hold part of a change or heterogeneous marrow", "the reference marrow is heterogeneous")


def _canon(r: Any) -> str:
    return r.modic_type.value


def measure(folder: str, capped: bool) -> list[dict[str, Any]]:
    """Per truth endplate L1-S1 and ROI source: call, truth, confidence, flagged."""
    import cohort

    from modic.phantom.reader import reader_annotations

    logging.disable(logging.WARNING)
    study = modic.load_study(folder)
    truth = GroundTruth.from_json(folder + ".truth.json")
    types = cohort.truth_types(truth)
    p = DEFAULT_PARAMETERS if capped else replace(DEFAULT_PARAMETERS, reference_flag_confidence=1.0,
                                                  proposed_reference_flag_confidence=1.0)
    rows = []
    for source in ("proposed", "reader"):
        try:
            ann = modic.propose_rois(study) if source == "proposed" else reader_annotations(truth, study)
        except modic.errors.ModicError:
            continue
        for r in modic.classify(study, ann, parameters=p, errors=[]):
            key = (r.label.vertebra, str(r.label.endplate))
            if key[0] not in WANTED or key not in types:
                continue
            f = r.fractions
            rows.append({"seed": truth.seed, "endplate": " ".join(key), "source": source,
                         "call": _canon(r), "truth": types[key], "confidence": float(r.confidence),
                         "flagged": any(f in w for w in r.warnings for f in FLAGS),
                         "typed": float(f["1"] + f["2"] + f["3"])})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="A-B range of seeds")
    ap.add_argument("--realistic", action="store_true")
    ap.add_argument("--widened", action="store_true")
    ap.add_argument("--capped", action="store_true", help="with the cap on (the calls as modic gives them)")
    ap.add_argument("--json", help="write every call to this file")
    ap.add_argument("--typed", action="store_true",
                    help="also the type-0 calls by their typed share (proposed_normal_typed_calibration)")
    args = ap.parse_args(argv)
    import cohort
    import propose as bench

    a, b = (int(x) for x in args.seeds.split("-"))
    seeds = list(range(a, b + 1))
    studies = cohort.generate(seeds, realistic=True) if args.realistic else bench.generate_widened(seeds)
    with ProcessPoolExecutor() as pool:
        rows = [r for rs in pool.map(measure, [str(s.folder) for s in studies],
                                     [args.capped] * len(studies)) for r in rs]
    summarize(rows)
    if args.typed:
        summarize_typed(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def summarize(rows: list[dict[str, Any]]) -> None:
    for source in ("proposed", "reader", None):
        sel = [r for r in rows if source is None or r["source"] == source]
        flagged = [r for r in sel if r["flagged"]]
        right = sum(r["call"] == r["truth"] for r in flagged)
        typed = [r for r in flagged if r["call"] != "indeterminate"]
        ok = sum(r["call"] == r["truth"] for r in typed)
        print(f"{source or 'both'}: {len(sel)} calls, {len(flagged)} with a flagged reference, {right} of them "
              f"right; of the {len(typed)} typed ones (not indeterminate) {ok}: earned (right + 1) / (n + 2) "
              f"= {(ok + 1) / (len(typed) + 2):.3f}")
        for call in ("0", "1", "2", "3", "1/2", "2/3", "indeterminate"):
            c = [r for r in flagged if r["call"] == call]
            if c:
                ok = sum(r["call"] == r["truth"] for r in c)
                hi = [r for r in c if r["confidence"] >= 0.9]
                print(f"  called {call}: {len(c)}, right {ok}; at confidence >= 0.9: {len(hi)}, right "
                      f"{sum(r['call'] == r['truth'] for r in hi)}")


#: The bins of the typed share (ClassifierParameters.normal_typed_calibration's knots lie
#: at their middles, the last at 0.35).
TYPED_BINS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 1.01))


def summarize_typed(rows: list[dict[str, Any]]) -> None:
    """Type-0 calls per source and bin of the share of voxels typed 1-3: how many, how many
    right, and (right + 1) / (n + 2)."""
    for source in ("proposed", "reader"):
        print(f"type-0 calls with {source} ROIs, by typed share:")
        for lo, hi in TYPED_BINS:
            sel = [r for r in rows if r["source"] == source and r["call"] == "0" and lo <= r["typed"] < hi]
            ok = sum(r["truth"] == "0" for r in sel)
            print(f"  {lo:.0%}-{min(hi, 1.0):.0%}: {len(sel)} calls, {ok} right, (right + 1) / (n + 2) = "
                  f"{(ok + 1) / (len(sel) + 2):.3f}")


if __name__ == "__main__":
    sys.exit(main())
