"""Shared fixtures: small lumbar studies written as real DICOM with pydicom."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from dicomfactory import AXIAL, SAGITTAL, VENDORS, volume_pattern, write_series


@dataclass
class WrittenStudy:
    root: Path
    study_uid: str
    t1_origin: tuple[float, float, float]


def write_lumbar_study(
    root: Path,
    vendor: str = "siemens",
    *,
    study_uid: str | None = None,
    with_stir: bool = True,
    with_descriptions: bool = True,
) -> WrittenStudy:
    """A five-series lumbar study: localizer, sagittal T1, T2 (other grid), STIR, axial T2.

    The sagittal T1 is 9 slices of 32x32 pixels at 1.0 mm, 4 mm apart, first slice at
    x = +16 mm; the T2 is 8 slices of 40x40 at 0.8 mm, 4.4 mm apart, first slice at
    x = +14 mm (so its slices fall between the T1's).
    """
    from pydicom.uid import generate_uid

    study_uid = study_uid or generate_uid(entropy_srcs=[str(root), vendor])
    h = VENDORS[vendor]

    def hdr(role: str) -> dict[str, object]:
        d = dict(h[role])
        if not with_descriptions:
            d.pop("SeriesDescription", None)
        return d

    t1_origin = (16.0, -40.0, 20.0)
    write_series(
        root / "T1",
        volume_pattern(9, 32, 32),
        origin=t1_origin,
        orientation=SAGITTAL,
        pixel_spacing=(1.0, 1.0),
        slice_spacing=4.0,
        study_uid=study_uid,
        series_number=2,
        header=hdr("T1"),
    )
    write_series(
        root / "T2",
        volume_pattern(8, 40, 40, seed=3),
        origin=(14.0, -42.0, 22.0),
        orientation=SAGITTAL,
        pixel_spacing=(0.8, 0.8),
        slice_spacing=4.4,
        study_uid=study_uid,
        series_number=3,
        header=hdr("T2"),
    )
    if with_stir:
        write_series(
            root / "STIR",
            volume_pattern(9, 32, 32, seed=5),
            origin=t1_origin,
            orientation=SAGITTAL,
            pixel_spacing=(1.0, 1.0),
            slice_spacing=4.0,
            study_uid=study_uid,
            series_number=4,
            header=hdr("STIR"),
        )
    ax = dict(hdr("T2"))
    if with_descriptions:
        ax["SeriesDescription"] = {"siemens": "t2_tse_tra", "ge": "AX T2 FRFSE", "philips": "T2W_TSE ax"}[
            vendor
        ]
    write_series(
        root / "AX",
        volume_pattern(6, 24, 24, seed=7),
        origin=(-12.0, -50.0, 0.0),
        orientation=AXIAL,
        pixel_spacing=(1.0, 1.0),
        slice_spacing=5.0,
        study_uid=study_uid,
        series_number=5,
        header=ax,
    )
    # localizer: one series with a sagittal, a coronal and an axial image (GE 3-plane style)
    loc = hdr("localizer")
    for k, (orient, origin) in enumerate(
        [
            (SAGITTAL, (0.0, -60.0, 60.0)),
            ((1.0, 0.0, 0.0, 0.0, 0.0, -1.0), (-60.0, 0.0, 60.0)),
            (AXIAL, (-60.0, -60.0, 0.0)),
        ]
    ):
        write_series(
            root / "LOC",
            np.full((1, 16, 16), 100 + k, np.uint16),
            origin=origin,
            orientation=orient,
            pixel_spacing=(4.0, 4.0),
            study_uid=study_uid,
            series_number=1,
            header=loc,
            names=[f"loc{k}"],
            instance_numbers=[k + 1],
            series_uid=generate_uid(entropy_srcs=[str(root), "loc"]),
        )
    return WrittenStudy(root=root, study_uid=study_uid, t1_origin=t1_origin)


@pytest.fixture
def lumbar_study(tmp_path: Path) -> WrittenStudy:
    return write_lumbar_study(tmp_path / "study")
