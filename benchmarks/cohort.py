"""Cohorts of phantom studies for calibrating and measuring the classifier.

Seeds decide everything about a study (vendor, field strength, SNR, bias, lesions, grids,
compression), so a cohort is a list of seeds. Calibration and evaluation use disjoint
seed ranges:

* calibration: seeds 500000 + i   (``cohort_spec``; the first calibration)
* evaluation:  seeds 910000 + i   (``cohort_spec``; the first held-out evaluation)
* realistic calibration: seeds 600000 + i   (``realistic_spec``, ``reader_style``)
* realistic evaluation:  seeds 920000 + i   (``realistic_spec``, ``reader_style``;
  never to be looked at while developing or calibrating)

Seeds 900000+ were the first evaluation cohort; its errors were read while developing the
classifier (they showed the dark-T1 / iso-T2 rule), so it no longer counts as held out and
a fresh range is used. Realistic evaluation seeds 920000-920259 have all been evaluated
and looked at (2026-12-02 to 12-04, docs/classifier.md): a new evaluation starts at
920260.

The *realistic* cohort (``realistic_spec``) adds what real scans show and the plain
phantom did not, each factor drawn independently per study (present in about 35-45 % of
studies, so every factor is represented on its own and many studies hold several):
weak changes (type 1 with T1 0.8-0.95x normal marrow, type 2 1.1-1.3x), fat islands of
5-20 % in type-1 changes, incomplete fat suppression (STIR / fat-sat efficiency 30-90 %),
a receive-coil gradient of 1.2-1.6x between L1 and S1 (either end brighter), 4.5-5 mm
slices (else 3-4.4 mm), heterogeneous patchy marrow with focal fat islands, hemangiomas,
Schmorl nodes and degenerated (T2-dark) discs; always: a marrow fat fraction that rises
with the patient's age, undulating endplates (0.3-1.2 mm) and SNR 8-40. ROIs are drawn
with ``reader_style(seed)`` (modic.phantom.reader.ReaderStyle.realistic).

Studies are generated once into ``benchmarks/_data/cohort/`` (``cohort_spec``) or
``benchmarks/_data/realistic/`` (``realistic_spec``), both git-ignored, and reused::

    from cohort import REALISTIC_CALIBRATION_BASE, generate, reader_style
    studies = generate(range(600000, 600060), realistic=True)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modic.phantom import (
    GroundTruth,
    HemangiomaSpec,
    LesionSpec,
    SchmorlNodeSpec,
    SeriesSpec,
    StudySpec,
    write_study,
)
from modic.phantom.reader import ReaderStyle

CALIBRATION_BASE = 500_000
EVALUATION_BASE = 910_000
REALISTIC_CALIBRATION_BASE = 600_000
REALISTIC_EVALUATION_BASE = 920_000
DATA = Path(__file__).resolve().parent / "_data" / "cohort"
DATA_REALISTIC = Path(__file__).resolve().parent / "_data" / "realistic"

ENDPLATES = [(v, e) for v in ("L1", "L2", "L3", "L4", "L5") for e in ("superior", "inferior")] + [
    ("S1", "superior")
]
LESION_TYPES = ("1", "2", "3", "1/2", "2/3", "2/1", "3/2")


def _series(rng: np.random.Generator) -> list[SeriesSpec]:
    """Sagittal T1, T2 on another grid, STIR / fat-sat T2 / none, axial T2, localizer."""
    t1_rows = int(rng.choice([192, 224, 256]))
    t1_fov = float(rng.uniform(260, 300))
    spacing = float(rng.uniform(3.6, 4.8))
    thick = spacing * float(rng.uniform(0.85, 0.95))
    n = int(rng.integers(11, 16))
    t2_rows = int(rng.choice([208, 256, 288]))
    offset = float(rng.uniform(0.2, 0.5)) * spacing
    centre = (float(rng.uniform(-2, 2)), float(rng.uniform(-8, 8)), float(rng.uniform(-10, 10)))
    tilt = (float(rng.uniform(-4, 4)), float(rng.uniform(-2, 2)))
    sag = dict(plane="sagittal", n_slices=n, slice_thickness=thick, slice_gap=spacing - thick)
    series = [
        SeriesSpec(
            role="localizer",
            plane="3plane",
            rows=128,
            cols=128,
            fov_mm=(420.0, 420.0),
            n_slices=3,
            slice_thickness=8.0,
            slice_gap=22.0,
        ),
        SeriesSpec(role="t1", rows=t1_rows, cols=t1_rows, fov_mm=(t1_fov, t1_fov), **sag),
        SeriesSpec(
            role="t2",
            rows=t2_rows,
            cols=t2_rows,
            fov_mm=(300.0, 300.0),
            slice_offset=offset,
            center_offset=centre,
            tilt_deg=tilt,
            **sag,
        ),
    ]
    fluid = rng.choice(["stir", "stir", "stir", "t2fs", "none"])
    if fluid != "none":
        extra = {"fat_sat_efficiency": float(rng.uniform(0.6, 0.95))} if fluid == "t2fs" else {}
        series.append(
            SeriesSpec(
                role=str(fluid),
                rows=160,
                cols=160,
                fov_mm=(300.0, 300.0),
                slice_offset=offset,
                center_offset=centre,
                tilt_deg=tilt,
                **sag,
                **extra,
            )
        )
    series.append(
        SeriesSpec(
            role="t2",
            plane="axial",
            rows=128,
            cols=128,
            fov_mm=(200.0, 200.0),
            n_slices=10,
            slice_thickness=4.0,
            slice_gap=1.0,
        )
    )
    return series


def cohort_spec(seed: int) -> StudySpec:
    """The phantom study of a cohort seed."""
    rng = np.random.default_rng([seed, 20261121])
    n_lesions = int(rng.integers(1, 4))
    picks = rng.choice(len(ENDPLATES), size=n_lesions, replace=False)
    lesions = []
    for i in sorted(picks):
        v, e = ENDPLATES[i]
        lesions.append(
            LesionSpec(
                v,
                e,
                str(rng.choice(LESION_TYPES)),
                height_fraction=float(rng.uniform(0.15, 0.6)),
                width_fraction=float(rng.uniform(0.45, 0.8)),
                depth_fraction=float(rng.uniform(0.5, 0.85)),
                ap_position=float(rng.uniform(-0.25, 0.25)),
                mix_fraction=float(rng.uniform(0.35, 0.65)),
                mix_layout=str(rng.choice(["layered", "side"])),
            )
        )
    return StudySpec(
        seed=seed,
        vendor=str(rng.choice(["siemens", "ge", "philips"])),
        field_strength=float(rng.choice([1.5, 3.0])),
        snr=float(rng.uniform(10, 40)),
        bias=float(rng.uniform(0.0, 0.5)),
        lesions=lesions,
        series=_series(rng),
        transfer_syntax=str(rng.choice(["explicit", "explicit", "rle", "jpeg2000"])),
        file_naming=str(rng.choice(["nested", "uid", "flat"])),
    )


#: Probability that a study of the realistic cohort has each difficulty factor.
REALISTIC_P = {
    "weak": 0.5,
    "fat_islands": 0.4,
    "fat_suppression": 0.5,
    "coil": 0.45,
    "thick": 0.4,
    "heterogeneous": 0.45,
    "hemangioma": 0.35,
    "schmorl": 0.35,
    "degenerated": 0.45,
}
_FACTOR_STREAM = {name: i + 1 for i, name in enumerate(REALISTIC_P)}


def _factor_rng(seed: int, name: str) -> np.random.Generator:
    """One random stream per factor, so that each is drawn independently of the others."""
    return np.random.default_rng([seed, 20261201, _FACTOR_STREAM.get(name, 0)])


def _realistic_series(seed: int) -> tuple[list[SeriesSpec], tuple[int, int, int]]:
    """Sagittal T1 and T2 (other grid), STIR / fat-sat T2 / none, axial T2, localizer.

    Slices 4.5-5 mm thick in the studies with the "thick" factor (sampled 4 times through
    the slab), 3-4.4 mm otherwise (3 times); fat suppression 30-90 % efficient in those
    with the "fat_suppression" factor, else 95-100 %.
    """
    rng = np.random.default_rng([seed, 20261201, 100])
    trng = _factor_rng(seed, "thick")
    thick = bool(trng.random() < REALISTIC_P["thick"])
    thickness = float(trng.uniform(4.5, 5.0) if thick else trng.uniform(3.0, 4.4))
    gap = float(rng.uniform(0.3, 1.0))
    fs_rng = _factor_rng(seed, "fat_suppression")
    poor = bool(fs_rng.random() < REALISTIC_P["fat_suppression"])
    efficiency = float(fs_rng.uniform(0.3, 0.9) if poor else fs_rng.uniform(0.95, 1.0))
    t1_rows = int(rng.choice([224, 256, 288]))
    t1_fov = float(rng.uniform(260, 320))
    n = int(rng.integers(11, 16))
    t2_rows = int(rng.choice([240, 256, 288]))
    offset = float(rng.uniform(0.2, 0.5)) * (thickness + gap)
    centre = (float(rng.uniform(-2, 2)), float(rng.uniform(-8, 8)), float(rng.uniform(-10, 10)))
    tilt = (float(rng.uniform(-4, 4)), float(rng.uniform(-2, 2)))
    sag = dict(plane="sagittal", n_slices=n, slice_thickness=thickness, slice_gap=gap)
    moved = dict(slice_offset=offset, center_offset=centre, tilt_deg=tilt)
    series = [
        SeriesSpec(role="localizer", plane="3plane", rows=128, cols=128, fov_mm=(420.0, 420.0),
                   n_slices=3, slice_thickness=8.0, slice_gap=22.0),
        SeriesSpec(role="t1", rows=t1_rows, cols=t1_rows, fov_mm=(t1_fov, t1_fov), **sag),
        SeriesSpec(role="t2", rows=t2_rows, cols=t2_rows, fov_mm=(300.0, 300.0), **moved, **sag),
    ]
    fluid = str(rng.choice(["stir"] * 13 + ["t2fs"] * 4 + ["none"] * 3))
    if fluid == "stir":
        series.append(SeriesSpec(role="stir", rows=192, cols=192, fov_mm=(300.0, 300.0),
                                 stir_efficiency=efficiency if efficiency < 1.0 else None,
                                 **moved, **sag))
    elif fluid == "t2fs":
        series.append(SeriesSpec(role="t2fs", rows=192, cols=192, fov_mm=(300.0, 300.0),
                                 fat_sat_efficiency=efficiency, **moved, **sag))
    series.append(SeriesSpec(role="t2", plane="axial", rows=128, cols=128, fov_mm=(200.0, 200.0),
                             n_slices=10, slice_thickness=4.0, slice_gap=1.0))
    return series, ((4 if thick else 3), 3, 3)


def realistic_spec(seed: int) -> StudySpec:
    """The phantom study of a realistic-cohort seed (see the module docstring).

    Every factor is drawn from its own random stream of the seed, present with the
    probability in :data:`REALISTIC_P`; the ground truth records them (``truth.factors``
    per study, ``endplate.factors`` per endplate).
    """
    rng = np.random.default_rng([seed, 20261201])
    n_lesions = int(rng.choice([0, 1, 1, 2, 2, 3]))
    picks = sorted(rng.choice(len(ENDPLATES), size=n_lesions, replace=False))
    drawn = []
    for i in picks:
        v, e = ENDPLATES[i]
        drawn.append(dict(
            vertebra=v, endplate=e, modic_type=str(rng.choice(LESION_TYPES)),
            height_fraction=float(rng.uniform(0.15, 0.6)),
            width_fraction=float(rng.uniform(0.45, 0.8)),
            depth_fraction=float(rng.uniform(0.5, 0.85)),
            ap_position=float(rng.uniform(-0.25, 0.25)),
            mix_fraction=float(rng.uniform(0.35, 0.65)),
            mix_layout=str(rng.choice(["layered", "side"]))))
    # weak changes: single type 1 (T1 0.8-0.95x) or type 2 (1.1-1.3x)
    wrng = _factor_rng(seed, "weak")
    if drawn and wrng.random() < REALISTIC_P["weak"]:
        for j, les in enumerate(drawn):
            if j == 0 or wrng.random() < 0.5:
                if les["modic_type"] not in ("1", "2"):
                    les["modic_type"] = str(wrng.choice(["1", "2"]))
                les["t1_ratio"] = float(wrng.uniform(0.8, 0.95) if les["modic_type"] == "1"
                                        else wrng.uniform(1.1, 1.3))
    # fat islands (5-20 %) in the type-1 part of changes
    frng = _factor_rng(seed, "fat_islands")
    if drawn and frng.random() < REALISTIC_P["fat_islands"]:
        with_1 = [les for les in drawn if "1" in les["modic_type"].split("/")]
        if not with_1:
            drawn[-1]["modic_type"] = "1"
            drawn[-1].pop("t1_ratio", None)
            with_1 = [drawn[-1]]
        for les in with_1:
            les["fat_islands"] = float(frng.uniform(0.05, 0.2))
    lesions = [LesionSpec(**les) for les in drawn]
    series, supersample = _realistic_series(seed)
    # receive-coil gradient L1 / S1 of 1.2-1.6, either end brighter
    crng = _factor_rng(seed, "coil")
    coil = 1.0
    if crng.random() < REALISTIC_P["coil"]:
        g = float(crng.uniform(1.2, 1.6))
        coil = g if crng.random() < 0.5 else 1.0 / g
    # marrow: fat fraction rising with age; patchy with focal fat islands
    hrng = _factor_rng(seed, "heterogeneous")
    age = int(rng.integers(25, 81))
    ff = float(np.clip(0.25 + 0.006 * (age - 25) + rng.normal(0.0, 0.05), 0.2, 0.72))
    heterogeneity, islands = 0.0, 0.0
    if hrng.random() < REALISTIC_P["heterogeneous"]:
        heterogeneity, islands = float(hrng.uniform(0.4, 1.0)), float(hrng.uniform(0.5, 2.5))
    # hemangiomas (1-2 in L1-S1), Schmorl nodes (1-2), degenerated discs (1-2, low lumbar)
    mrng = _factor_rng(seed, "hemangioma")
    hemangiomas = []
    if mrng.random() < REALISTIC_P["hemangioma"]:
        for v in mrng.choice(["L1", "L2", "L3", "L4", "L5", "S1"], size=int(mrng.integers(1, 3)),
                             replace=False):
            hemangiomas.append(HemangiomaSpec(
                str(v), radius_mm=float(mrng.uniform(3.0, 8.0)),
                lr_position=float(mrng.uniform(-0.3, 0.3)), ap_position=float(mrng.uniform(-0.4, 0.3)),
                height_position=float(mrng.uniform(-0.3, 0.3)),
                fat_fraction=float(mrng.uniform(0.65, 0.85))))
    srng = _factor_rng(seed, "schmorl")
    nodes = []
    if srng.random() < REALISTIC_P["schmorl"]:
        for i in srng.choice(len(ENDPLATES), size=int(srng.integers(1, 3)), replace=False):
            v, e = ENDPLATES[int(i)]
            nodes.append(SchmorlNodeSpec(
                v, e, radius_mm=float(srng.uniform(2.0, 5.0)), depth_mm=float(srng.uniform(2.0, 5.0)),
                lr_position=float(srng.uniform(-0.3, 0.3)), ap_position=float(srng.uniform(-0.3, 0.3))))
    drng = _factor_rng(seed, "degenerated")
    degenerated: list[str] = []
    if drng.random() < REALISTIC_P["degenerated"]:
        discs = ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]
        p = np.array([0.1, 0.1, 0.2, 0.3, 0.3])
        degenerated = [str(d) for d in drng.choice(discs, size=int(drng.integers(1, 3)), replace=False, p=p)]
    return StudySpec(
        seed=seed,
        vendor=str(rng.choice(["siemens", "ge", "philips"])),
        field_strength=float(rng.choice([1.5, 3.0])),
        snr=float(rng.uniform(8, 40)),
        bias=float(rng.uniform(0.1, 0.6)),
        lesions=lesions,
        series=series,
        transfer_syntax=str(rng.choice(["explicit", "explicit", "rle", "jpeg2000"])),
        file_naming=str(rng.choice(["nested", "uid", "flat"])),
        supersample=supersample,
        marrow_fat_fraction=ff,
        marrow_texture=float(rng.uniform(0.02, 0.05)),
        coil_gradient=coil,
        marrow_heterogeneity=heterogeneity,
        marrow_fat_islands=islands,
        endplate_irregularity=float(rng.uniform(0.3, 1.2)),
        degenerated_discs=degenerated,
        hemangiomas=hemangiomas,
        schmorl_nodes=nodes,
        patient_age=age,
    )


def reader_style(seed: int) -> ReaderStyle:
    """The reader of a realistic-cohort study: bands, any change outline, references
    anywhere and 20 % missing (modic.phantom.reader.ReaderStyle.realistic), seeded by it."""
    return ReaderStyle.realistic(seed)


@dataclass(frozen=True)
class CohortStudy:
    seed: int
    folder: Path
    truth_path: Path
    realistic: bool = False


def _generate(seed: int, realistic: bool = False) -> CohortStudy:
    data = DATA_REALISTIC if realistic else DATA
    folder = data / f"s{seed}"
    truth_path = data / f"s{seed}.truth.json"
    spec = realistic_spec(seed) if realistic else cohort_spec(seed)
    if truth_path.exists() and _recorded_spec(truth_path) != json.loads(json.dumps(spec.to_dict())):
        print(f"  s{seed}: written by another version of the cohort spec; regenerating", file=sys.stderr)
        truth_path.unlink()
    if not truth_path.exists():
        write_study(spec, folder, truth_path=truth_path, overwrite=True, dicom_subdir=".")
    return CohortStudy(seed, folder, truth_path, realistic)


def _recorded_spec(truth_path: Path) -> object:
    try:
        return json.loads(truth_path.read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return None


def generate(seeds: Iterable[int], workers: int | None = None, realistic: bool = False) -> list[CohortStudy]:
    """Generate (or reuse) the studies of these seeds; prints progress on stderr.

    A cached study is reused only if its truth records the spec the seed gives now.

    ``realistic``: ``realistic_spec`` studies in ``_data/realistic/`` (else ``cohort_spec``
    in ``_data/cohort/``).
    """
    seeds = list(seeds)
    (DATA_REALISTIC if realistic else DATA).mkdir(parents=True, exist_ok=True)
    out = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for i, st in enumerate(pool.map(_generate, seeds, [realistic] * len(seeds)), 1):
            out.append(st)
            if i % 10 == 0 or i == len(seeds):
                print(f"  generated {i}/{len(seeds)} studies", file=sys.stderr)
    return out


def truth_types(truth: GroundTruth) -> dict[tuple[str, str], str]:
    """Modic type per (vertebra, endplate), mixed types in canonical order (1/2, 2/3)."""
    canon = {"2/1": "1/2", "3/2": "2/3"}
    return {(e.vertebra, e.endplate): canon.get(e.modic_type, e.modic_type) for e in truth.endplates}


LABELS = ("0", "1", "2", "3", "1/2", "2/3")


def confusion(pairs: list[tuple[str, str]]) -> np.ndarray:
    """6x6 confusion matrix (rows: truth, columns: prediction) in LABELS order."""
    m = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    for t, p in pairs:
        m[LABELS.index(t), LABELS.index(p)] += 1
    return m


def kappa(m: np.ndarray) -> float:
    """Cohen's kappa of a confusion matrix."""
    n = m.sum()
    po = np.trace(m) / n
    pe = float((m.sum(0) * m.sum(1)).sum()) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


def format_confusion(m: np.ndarray) -> str:
    head = "truth \\ pred " + " ".join(f"{lab:>5}" for lab in LABELS)
    rows = [f"{lab:>12} " + " ".join(f"{v:5d}" for v in m[i]) for i, lab in enumerate(LABELS)]
    return "\n".join([head, *rows])
