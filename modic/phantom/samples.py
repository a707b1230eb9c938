"""The project's sample data set: a few small phantom studies covering the cases that matter.

======================================  =====================================================
folder                                  content
======================================  =====================================================
``siemens_15T_type1_type2``             Siemens 1.5 T; L4 inferior type 1 (B), L5 superior
                                        type 2 (A); nested ``SE000002/IM000001`` names
``ge_3T_type3_mixed12``                 GE 3 T (signed 16-bit); L3 inferior type 3, S1
                                        superior mixed 1/2 (layered, C)
``philips_15T_mixed23_enhanced``        Philips 1.5 T (RescaleSlope != 1); L4 inferior mixed
                                        2/3 side by side; sagittal T1 as one Enhanced MR
                                        multi-frame object; files named by UID
``siemens_3T_rle_t2fs``                 Siemens 3 T, every series RLE Lossless; L5 inferior
                                        type 1 (C) and S1 superior type 2 (B); a fat-saturated
                                        T2 instead of STIR; flat shuffled file names
======================================  =====================================================
"""

from __future__ import annotations

from .spec import LesionSpec, SeriesSpec, StudySpec, small_series

__all__ = ["sample_specs", "SAMPLE_NAMES"]

#: Folder names of the sample studies, in writing order.
SAMPLE_NAMES: tuple[str, ...] = (
    "siemens_15T_type1_type2",
    "ge_3T_type3_mixed12",
    "philips_15T_mixed23_enhanced",
    "siemens_3T_rle_t2fs",
)


def _with_t2fs() -> list[SeriesSpec]:
    series = small_series(stir=False)
    t2 = next(s for s in series if s.role == "t2" and s.plane == "sagittal")
    series.insert(series.index(t2) + 1, SeriesSpec(
        role="t2fs", plane="sagittal", rows=t2.rows, cols=t2.cols, fov_mm=t2.fov_mm,
        n_slices=t2.n_slices, slice_thickness=t2.slice_thickness, slice_gap=t2.slice_gap,
        slice_offset=t2.slice_offset, center_offset=t2.center_offset, fat_sat_efficiency=0.85))
    return series


def sample_specs(seed: int = 1000) -> dict[str, StudySpec]:
    """Specs of the sample studies, keyed by folder name (seeds ``seed`` ... ``seed + 3``)."""
    return {
        SAMPLE_NAMES[0]: StudySpec(
            seed=seed, vendor="siemens", field_strength=1.5, snr=25.0, bias=0.3,
            lesions=[LesionSpec("L4", "inferior", "1", height_fraction=0.35,
                                width_fraction=0.7, depth_fraction=0.75),
                     LesionSpec("L5", "superior", "2", height_fraction=0.2,
                                width_fraction=0.6, depth_fraction=0.6, ap_position=-0.2)],
            series=small_series()),
        SAMPLE_NAMES[1]: StudySpec(
            seed=seed + 1, vendor="ge", field_strength=3.0, snr=30.0, bias=0.35,
            lesions=[LesionSpec("L3", "inferior", "3", height_fraction=0.18,
                                width_fraction=0.5, depth_fraction=0.6),
                     LesionSpec("S1", "superior", "1/2", height_fraction=0.55,
                                width_fraction=0.7, depth_fraction=0.8, mix_fraction=0.5,
                                mix_layout="layered")],
            series=small_series()),
        SAMPLE_NAMES[2]: StudySpec(
            seed=seed + 2, vendor="philips", field_strength=1.5, snr=22.0, bias=0.25,
            lesions=[LesionSpec("L4", "inferior", "2/3", height_fraction=0.3,
                                width_fraction=0.7, depth_fraction=0.8, mix_fraction=0.5,
                                mix_layout="side")],
            series=small_series(enhanced_role="t1"), file_naming="uid"),
        SAMPLE_NAMES[3]: StudySpec(
            seed=seed + 3, vendor="siemens", field_strength=3.0, snr=28.0, bias=0.3,
            lesions=[LesionSpec("L5", "inferior", "1", height_fraction=0.6,
                                width_fraction=0.75, depth_fraction=0.8),
                     LesionSpec("S1", "superior", "2", height_fraction=0.3,
                                width_fraction=0.6, depth_fraction=0.7)],
            series=_with_t2fs(), transfer_syntax="rle", file_naming="flat"),
    }
