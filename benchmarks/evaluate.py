"""Turn cohort studies into graded cases: reader ROIs, samples, truth, and the naive rule.

A *case* is one endplate ROI of one study with its ground-truth type and the voxel
samples of the ROI and of its reference on T1 / T2 / STIR: everything the classifier
sees. Samples do not depend on the classifier's thresholds, so a calibration sweep
decides thousands of cases per second from them.

The reader is the classic one (``erode``) or a ``modic.phantom.reader.ReaderStyle``
(``style=``: one style, or a function of the seed such as ``cohort.reader_style``). Each
case's ``info`` carries what made it hard (:func:`case_info`), so accuracy can be
reported per factor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cohort import CohortStudy, truth_types

import modic
from modic.measure import choose_reference, roi_points, sample_region
from modic.phantom import GroundTruth
from modic.phantom.reader import ReaderStyle, reader_annotations
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
    return naive_rule(case.region, case.reference)


def naive_rule(region: dict[Role, np.ndarray], reference: dict[Role, np.ndarray]) -> str:
    """The naive rule on samples: whole-ROI mean ratios on T1 and T2, fixed 0.85 / 1.15 band."""
    t1 = region[Role.T1].mean() / reference[Role.T1].mean()
    if Role.T2 not in region:
        return "0" if NAIVE_LOW <= t1 <= NAIVE_HIGH else ("2" if t1 > NAIVE_HIGH else "1")
    t2 = region[Role.T2].mean() / reference[Role.T2].mean()
    if t1 < NAIVE_LOW and t2 > NAIVE_HIGH:
        return "1"
    if t1 > NAIVE_HIGH:
        return "2"
    if t1 < NAIVE_LOW and t2 < NAIVE_LOW:
        return "3"
    return "0"


def case_info(
    truth: GroundTruth,
    vertebra: str,
    endplate: str,
    study: modic.LoadedStudy,
    style: ReaderStyle | None = None,
    reference_vertebra: str | None = None,
) -> dict[str, Any]:
    """The difficulty factors of one endplate case.

    Flat keys: ``vendor``, ``field``, ``snr``, ``stir`` (a fluid-sensitive fat-suppressed
    series was read), ``slice_mm`` (T1), ``coil_gradient`` (L1 / S1 sensitivity, 1 =
    none), ``coil_gradient_strength`` (>= 1), ``fat_sat_efficiency`` (None without a
    fat-suppressed series), ``marrow_heterogeneity``, ``weak``, ``fat_islands`` (share of
    the change), ``hemangioma`` (in the vertebra), ``schmorl``, ``focal_fat_islands``,
    ``disc_degenerated``, ``reader_kind`` / ``reader_inset_px`` / ``reader_height_mm``
    (what the reader drew), ``reference_from_neighbour``. Also every recorded truth
    factor as ``study.<name>`` and ``endplate.<name>`` (studies without realism options
    have none; the flat keys then hold their neutral values).
    """
    spec = truth.spec
    sf = truth.factors or {}
    e = truth.endplate(vertebra, endplate)
    ef = e.factors or {}
    g = study.t1.geometry
    info: dict[str, Any] = {
        "vendor": spec["vendor"],
        "field": spec["field_strength"],
        "snr": spec["snr"],
        "stir": study.stir is not None,
        "slice_mm": float(g.slice_thickness or g.slice_spacing),
        "coil_gradient": sf.get("coil_gradient", 1.0),
        "coil_gradient_strength": sf.get("coil_gradient_strength", 1.0),
        "fat_sat_efficiency": sf.get("fat_sat_efficiency"),
        "marrow_heterogeneity": sf.get("marrow_heterogeneity", 0.0),
        "weak": bool(ef.get("weak", False)),
        "fat_islands": float(ef.get("fat_islands", 0.0)),
        "hemangioma": bool(ef.get("hemangioma", False)),
        "schmorl": bool(ef.get("schmorl", False)),
        "focal_fat_islands": int(ef.get("focal_fat_islands", 0)),
        "disc_degenerated": bool(ef.get("disc_degenerated", False)),
    }
    if "fat_sat_efficiency" not in sf:  # older truth: the STIR nulls fat, a t2fs series says
        fs = [s.sequence.get("fat_residual") for s in truth.series if s.fat_suppressed and s.plane == "sagittal"]
        info["fat_sat_efficiency"] = (1.0 - min(fs)) if fs and min(fs) < 1.0 else (1.0 if fs else None)
    draw = (style or ReaderStyle()).draw(vertebra, endplate, changed=e.modic_type != "0")
    info["reader_kind"] = draw.kind
    info["reader_inset_px"] = draw.inset_px
    info["reader_height_mm"] = draw.height_mm
    info["reference_from_neighbour"] = reference_vertebra is not None and reference_vertebra != vertebra
    info.update({f"study.{k}": v for k, v in sf.items() if k != "series"})
    info.update({f"endplate.{k}": v for k, v in ef.items()})
    info["endplate.reader_inset_px"] = draw.inset_px
    return info


StyleArg = ReaderStyle | Callable[[int], ReaderStyle] | None


def _style_for(style: StyleArg, seed: int) -> ReaderStyle | None:
    if style is None or isinstance(style, ReaderStyle):
        return style
    return style(seed)


def collect_cases(st: CohortStudy, erode: bool = True, style: StyleArg = None) -> tuple[list[Case], list[str]]:
    """The graded cases of one cohort study, and notes on endplates that could not be read.

    ``erode`` (classic reader): the simulated reader outlines changes one pixel inside their
    border (True) or outlines the whole change, border included (False). ``style``: a
    ``ReaderStyle`` or a function seed -> style (e.g. ``cohort.reader_style``) instead;
    see modic.phantom.reader.
    """
    truth = GroundTruth.from_json(st.truth_path)
    types = truth_types(truth)
    study = modic.load_study(st.folder)
    reader = _style_for(style, st.seed)
    ann = reader_annotations(truth, study, erode=erode) if reader is None else reader_annotations(
        truth, study, style=reader
    )
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
        info = case_info(truth, key[0], key[1], study, reader, ref.label.vertebra)
        if reader is None and types[key] != "0":
            info["reader_kind"] = "inside" if erode else "whole"
        info["voxels"] = int(region[Role.T1].size)
        cases.append(Case(st.seed, key[0], key[1], types[key], region, reference, info=info))
    return cases, notes


def collect(
    studies: list[CohortStudy], workers: int | None = None, erode: bool = True, style: StyleArg = None
) -> tuple[list[Case], list[str]]:
    """The cases of many studies in parallel (``style``: see :func:`collect_cases`)."""
    cases: list[Case] = []
    notes: list[str] = []
    styles = [_style_for(style, st.seed) for st in studies]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for i, (c, n) in enumerate(
            pool.map(collect_cases, studies, [erode] * len(studies), styles), 1
        ):
            cases += c
            notes += n
            if i % 20 == 0 or i == len(studies):
                print(f"  measured {i}/{len(studies)} studies", file=sys.stderr)
    return cases, notes
