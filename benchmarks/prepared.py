"""Cohort studies -> graded cases measured through modic's own reading pipeline.

A *prepared case* is one endplate ROI of one study with its ground-truth type and what
:func:`modic.reading.prepare_region` gives the classifier: the region's samples on T1 / T2
/ STIR, which of them survive the partial-volume check (for several margins, so a sweep
can compare them), the reference samples corrected for the coil gradient, and the
study's contrast and the reference's systematic uncertainty (SignalContext). The raw
samples (all voxels, uncorrected reference) are kept too, for the naive rules, which see
the same ROIs.

Samples do not depend on the decision thresholds, so a calibration sweep decides
thousands of cases per second from them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from cohort import CohortStudy, truth_types
from evaluate import naive_rule

import modic
from modic.contrast import measure_contrast
from modic.criteria import DEFAULT_PARAMETERS, ClassifierParameters, SignalContext
from modic.phantom import GroundTruth
from modic.phantom.reader import reader_annotations
from modic.reading import ReferenceModel, partial_volume_mask, prepare_region
from modic.sequence import Role

#: Partial-volume margins compared by the calibration: (pv_margin_px, pv_slab_fraction).
PV_SETTINGS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "narrow": (0.5, 0.1),
    "default": (1.0, 0.15),
    "wide": (1.5, 0.25),
}


@dataclass
class PreparedCase:
    seed: int
    vertebra: str
    endplate: str
    truth: str
    region: dict[Role, np.ndarray]
    keep: dict[str, np.ndarray]
    reference: dict[Role, np.ndarray]
    raw_reference: dict[Role, np.ndarray]
    context: SignalContext
    info: dict[str, Any] = field(default_factory=dict)

    def region_values(self, pv: str = "default") -> dict[Role, np.ndarray]:
        k = self.keep[pv]
        if k.sum() < 5:
            k = np.ones_like(k)
        return {r: v[k] for r, v in self.region.items()}


def naive_type(case: PreparedCase) -> str:
    """Whole-ROI mean ratio on T1 and T2 with a fixed +/-15 % band (evaluate.naive_rule), raw reference."""
    return naive_rule(case.region, case.raw_reference)


def plain_z_type(case: PreparedCase, z: float = 2.5, abnormal: float = 0.3, mixed: float = 0.15) -> str:
    """A plain voxel-wise z-score rule on T1 / T2 alone, against the raw reference.

    Per voxel, z = (x - median) / (1.4826 MAD) of the reference. T1 z < -z: oedema when T2
    is above the reference median, else sclerosis; T1 z > +z: fat. A region with at least
    ``abnormal`` abnormal voxels takes the dominant type, mixed (1/2, 2/3) when the second
    makes up ``mixed`` of them.
    """
    if Role.T2 not in case.region:
        return "0"
    zs = {}
    for r in (Role.T1, Role.T2):
        ref = case.raw_reference[r]
        med = np.median(ref)
        sd = 1.4826 * np.median(np.abs(ref - med)) or 1.0
        zs[r] = (case.region[r] - med) / sd
    t1, t2 = zs[Role.T1], zs[Role.T2]
    types = np.zeros(t1.size, dtype=int)
    types[(t1 < -z) & (t2 >= 0)] = 1
    types[(t1 < -z) & (t2 < 0)] = 3
    types[t1 > z] = 2
    counts = np.array([(types == k).sum() for k in (1, 2, 3)])
    if counts.sum() < abnormal * t1.size:
        return "0"
    order = np.argsort(-counts, kind="stable")
    first, second = order[0] + 1, order[1] + 1
    pair = {(1, 2): "1/2", (2, 1): "1/2", (2, 3): "2/3", (3, 2): "2/3"}.get((int(first), int(second)))
    if pair and counts[order[1]] >= mixed * counts.sum():
        return pair
    return str(first)


def _factor_info(
    truth: GroundTruth, vertebra: str, endplate: str, study: modic.LoadedStudy
) -> dict[str, Any]:
    """What made this case hard: the study's and the endplate's recorded factors."""
    spec = truth.spec
    info: dict[str, Any] = {
        "vendor": spec.get("vendor"),
        "field": spec.get("field_strength"),
        "snr": spec.get("snr"),
        "stir": study.stir is not None,
        "slice_mm": float(study.t1.geometry.slice_thickness or study.t1.geometry.slice_spacing),
    }
    factors = getattr(truth, "factors", None)
    if isinstance(factors, dict):
        info.update({f"study.{k}": v for k, v in factors.items()})
    e = truth.endplate(vertebra, endplate)
    ef = getattr(e, "factors", None)
    if isinstance(ef, dict):
        info.update({f"endplate.{k}": v for k, v in ef.items()})
    return info


def prepare_study(
    st: CohortStudy, style: Any = None, parameters: ClassifierParameters = DEFAULT_PARAMETERS
) -> tuple[list[PreparedCase], list[str]]:
    """The prepared cases of one cohort study, and notes on endplates that could not be read."""
    truth = GroundTruth.from_json(st.truth_path)
    types = truth_types(truth)
    study = modic.load_study(st.folder)
    ann = reader_annotations(truth, study) if style is None else reader_annotations(truth, study, style=style)
    refs = list(ann.references())
    cases: list[PreparedCase] = []
    notes: list[str] = []
    if not refs:
        return cases, [f"seed {st.seed}: no reference ROI drawn"]
    contrast = measure_contrast(study, refs)
    model = ReferenceModel.fit(study, refs)
    for roi in ann.endplates():
        key = (roi.label.vertebra, roi.label.endplate.value)
        try:
            prep = prepare_region(
                study, roi, refs, parameters=parameters, contrast=contrast, reference_model=model
            )
        except modic.errors.MeasurementError as exc:
            notes.append(f"seed {st.seed} {key[0]} {key[1]} (type {types[key]}): {exc}")
            continue
        ref_t1 = float(np.median(prep.reference_values[Role.T1]))
        focal = prep.focal if prep.focal is not None else np.zeros(prep.keep.size, dtype=bool)
        keep = {}
        for name, (px, slab) in PV_SETTINGS.items():
            p = replace(parameters, pv_margin_px=px, pv_slab_fraction=slab)
            exclude, _ = partial_volume_mask(roi, study, ref_t1, p)
            keep[name] = ~exclude & ~focal
        info = _factor_info(truth, *key, study)
        info["voxels"] = int(prep.keep.size)
        info["focal_voxels"] = int(focal.sum())
        info["reference_from_neighbour"] = prep.reference.label.vertebra != key[0]
        info["style"] = getattr(roi, "comment", "")
        cases.append(
            PreparedCase(
                st.seed,
                key[0],
                key[1],
                types[key],
                {r: s.values for r, s in prep.region.items()},
                keep,
                prep.reference_values,
                {r: s.values for r, s in prep.reference_samples.items()},
                prep.context,
                info,
            )
        )
    return cases, notes


def _prepare(args: tuple[CohortStudy, Any]) -> tuple[list[PreparedCase], list[str]]:
    return prepare_study(*args)


def prepare(
    studies: Iterable[CohortStudy], styles: Iterable[Any] | None = None, workers: int | None = None
) -> tuple[list[PreparedCase], list[str]]:
    """Prepare the cases of many studies in parallel (``styles``: one reader style per study)."""
    studies = list(studies)
    styles = list(styles) if styles is not None else [None] * len(studies)
    cases: list[PreparedCase] = []
    notes: list[str] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for i, (c, n) in enumerate(pool.map(_prepare, zip(studies, styles, strict=True)), 1):
            cases += c
            notes += n
            if i % 20 == 0 or i == len(studies):
                print(f"  measured {i}/{len(studies)} studies", file=sys.stderr)
    return cases, notes
