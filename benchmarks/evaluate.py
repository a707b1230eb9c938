"""Turn cohort studies into graded cases: reader ROIs, samples, truth, and the naive rule.

A *case* is one endplate ROI of one study with its ground-truth type and the voxel
samples of the ROI and of its reference on T1 / T2 / STIR: everything the classifier
sees. Samples do not depend on the classifier's thresholds, so a calibration sweep
decides thousands of cases per second from them.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from cohort import CohortStudy, truth_types

import modic
from modic.measure import choose_reference, roi_points, sample_region
from modic.phantom import GroundTruth
from modic.phantom.reader import reader_annotations
from modic.sequence import Role

#: The rule other tools use (whole-ROI mean ratio; hypo < 0.85, hyper > 1.15; T1 and T2 only).
NAIVE_LOW, NAIVE_HIGH = 0.85, 1.15


@dataclass
class Case:
    seed: int
    vertebra: str
    endplate: str
    truth: str
    region: dict[Role, np.ndarray]
    reference: dict[Role, np.ndarray]
    info: dict[str, object] = field(default_factory=dict)


def naive_type(case: Case) -> str:
    """Whole-ROI mean ratio on T1 and T2 with a fixed +/-15 % band; no mixed types."""
    t1 = case.region[Role.T1].mean() / case.reference[Role.T1].mean()
    if Role.T2 not in case.region:
        return "0" if NAIVE_LOW <= t1 <= NAIVE_HIGH else ("2" if t1 > NAIVE_HIGH else "1")
    t2 = case.region[Role.T2].mean() / case.reference[Role.T2].mean()
    if t1 < NAIVE_LOW and t2 > NAIVE_HIGH:
        return "1"
    if t1 > NAIVE_HIGH:
        return "2"
    if t1 < NAIVE_LOW and t2 < NAIVE_LOW:
        return "3"
    return "0"


def collect_cases(st: CohortStudy, erode: bool = True) -> tuple[list[Case], list[str]]:
    """The graded cases of one cohort study, and notes on endplates that could not be read.

    ``erode``: the simulated reader outlines changes one pixel inside their border (True)
    or outlines the whole change, border included (False); see modic.phantom.reader.
    """
    truth = GroundTruth.from_json(st.truth_path)
    types = truth_types(truth)
    study = modic.load_study(st.folder)
    ann = reader_annotations(truth, study, erode=erode)
    refs = ann.references()
    cases, notes = [], []
    marked = {(r.label.vertebra, r.label.endplate.value) for r in ann.endplates() if r.label.endplate}
    for key, t in types.items():
        if (
            key[0] in ("L1", "L2", "L3", "L4", "L5", "S1")
            and key not in marked
            and not (key[0] == "S1" and key[1] == "inferior")
        ):
            notes.append(
                f"seed {st.seed} {key[0]} {key[1]} (type {t}): no ROI drawn (too small / outside T1)"
            )
    for roi in ann.endplates():
        key = (roi.label.vertebra, roi.label.endplate.value)
        try:
            ref, _ = choose_reference(roi, refs)
            pts, ref_pts = roi_points(roi), roi_points(ref)
            region = {r: sample_region(roi, v, points=pts).values for r, v in study.volumes.items()}
            reference = {r: sample_region(ref, v, points=ref_pts).values for r, v in study.volumes.items()}
        except modic.errors.MeasurementError as exc:
            notes.append(f"seed {st.seed} {key[0]} {key[1]} (type {types[key]}): {exc}")
            continue
        spec = truth.spec
        cases.append(
            Case(
                st.seed,
                key[0],
                key[1],
                types[key],
                region,
                reference,
                info={
                    "vendor": spec["vendor"],
                    "field": spec["field_strength"],
                    "snr": spec["snr"],
                    "stir": study.stir is not None,
                    "voxels": int(region[Role.T1].size),
                },
            )
        )
    return cases, notes


def collect(
    studies: list[CohortStudy], workers: int | None = None, erode: bool = True
) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    notes: list[str] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for i, (c, n) in enumerate(pool.map(collect_cases, studies, [erode] * len(studies)), 1):
            cases += c
            notes += n
            if i % 20 == 0 or i == len(studies):
                print(f"  measured {i}/{len(studies)} studies", file=sys.stderr)
    return cases, notes
