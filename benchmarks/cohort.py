"""A cohort of phantom studies for calibrating and measuring the classifier.

Seeds decide everything about a study (vendor, field strength, SNR, bias, lesions, grids,
compression), so a cohort is a list of seeds. Calibration and evaluation use disjoint
seed ranges:

* calibration: seeds 500000 + i   (``benchmarks/calibrate_classifier.py``)
* evaluation:  seeds 910000 + i   (``benchmarks/accuracy.py``)

Seeds 900000+ were the first evaluation cohort; its errors were read while developing the
classifier (they showed the dark-T1 / iso-T2 rule), so it no longer counts as held out and
a fresh range is used.

Studies are generated once into ``benchmarks/_data/cohort/`` (git-ignored) and reused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modic.phantom import GroundTruth, LesionSpec, SeriesSpec, StudySpec, write_study

CALIBRATION_BASE = 500_000
EVALUATION_BASE = 910_000
DATA = Path(__file__).resolve().parent / "_data" / "cohort"

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


@dataclass(frozen=True)
class CohortStudy:
    seed: int
    folder: Path
    truth_path: Path


def _generate(seed: int) -> CohortStudy:
    folder = DATA / f"s{seed}"
    truth_path = DATA / f"s{seed}.truth.json"
    if not truth_path.exists():
        write_study(cohort_spec(seed), folder, truth_path=truth_path, overwrite=True, dicom_subdir=".")
    return CohortStudy(seed, folder, truth_path)


def generate(seeds: Iterable[int], workers: int | None = None) -> list[CohortStudy]:
    """Generate (or reuse) the studies of these seeds; prints progress on stderr."""
    seeds = list(seeds)
    DATA.mkdir(parents=True, exist_ok=True)
    out = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for i, st in enumerate(pool.map(_generate, seeds), 1):
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
