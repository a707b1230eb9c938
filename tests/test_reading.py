"""Classifying ROIs on real DICOM: a lesion defined in patient space, written on T1, T2 and
STIR grids that differ in matrix, field of view and slice positions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from dicomfactory import SAGITTAL, VENDORS, write_series

import modic
from modic.annotations import ROI, Annotations, ImagePlane, Rectangle, RoiLabel
from modic.criteria import DEFAULT_PARAMETERS
from modic.errors import MeasurementError
from modic.measure import bilinear, sample_region

# marrow = 1000 on every sequence; tissues relative to it (Modic 1988 / DOMAIN.md table)
TISSUE = {"0": (1.0, 1.0, 1.0), "1": (0.62, 1.5, 1.9), "2": (1.4, 1.18, 0.45), "3": (0.55, 0.58, 0.6)}
ROLE_INDEX = {"T1": 0, "T2": 1, "STIR": 2}
# the lesion box in LPS mm: x (left-right) from -2 to 10, y (A-P) from -30 to -15, z from 0 to 10
BOX = np.array([[-2.0, 10.0], [-30.0, -15.0], [0.0, 10.0]])
STUDY_UID = "1.2.826.0.1.3680043.8.498.4242"


def _grid_values(
    kind: str,
    role: str,
    origin,
    n,
    rows,
    cols,
    ps,
    step,
    rng,
    split=None,
    gradient=0.0,
    layers=(),
    spheres=(),
):
    """Signal on a sagittal grid: marrow everywhere, the lesion inside BOX.

    With ``split=(a, b)`` the lower half of the box (z < 5) is tissue a and the upper half b.
    ``gradient``: a receive-coil gain exp(gradient * z) on every sequence (z in mm).
    ``layers``: ``(z_low, z_high, (t1, t2, stir))`` slabs across the whole grid (e.g. a
    cortical endplate and a disc), drawn over the marrow.
    ``spheres``: ``((x, y, z), radius, (t1, t2, stir))`` balls (e.g. a hemangioma), drawn last.
    """
    o = np.asarray(origin, float)
    rowc, colc = np.array(SAGITTAL[:3]), np.array(SAGITTAL[3:])
    normal = np.cross(rowc, colc)
    s, r, c = np.meshgrid(np.arange(n), np.arange(rows), np.arange(cols), indexing="ij")
    p = o + s[..., None] * step * normal + c[..., None] * ps[1] * rowc + r[..., None] * ps[0] * colc
    inside = np.all((p >= BOX[:, 0]) & (p <= BOX[:, 1]), axis=-1)
    rel = np.ones((n, rows, cols))
    i = ROLE_INDEX[role]
    if split is None:
        rel[inside] = TISSUE[kind][i]
    else:
        low = inside & (p[..., 2] < 5.0)
        rel[low] = TISSUE[split[0]][i]
        rel[inside & ~low] = TISSUE[split[1]][i]
    for z0, z1, tissue in layers:
        rel[(p[..., 2] >= z0) & (p[..., 2] < z1)] = tissue[i]
    for centre, radius, tissue in spheres:
        rel[np.linalg.norm(p - np.asarray(centre, float), axis=-1) <= radius] = tissue[i]
    rel = rel * np.exp(gradient * p[..., 2])
    values = 1000 * rel + rng.normal(0, 40, rel.shape)
    return np.clip(values, 0, 65535).astype(np.uint16)


def build_study(
    root: Path,
    kind: str = "1",
    *,
    split=None,
    with_stir: bool = True,
    seed: int = 0,
    gradient: float = 0.0,
    layers=(),
    spheres=(),
) -> Path:
    """T1: 9 slices 48x48 at 1 mm, 4 mm apart, slice k at x = 16 - 4k. T2: 8 slices 60x60 at
    0.8 mm, 4.4 mm apart, from x = 14.5. STIR: 10 slices 40x40 at 1.2 mm, 3.6 mm apart."""
    rng = np.random.default_rng(seed)
    h = VENDORS["siemens"]
    grids = {
        "T1": dict(origin=(16.0, -40.0, 20.0), n=9, rows=48, cols=48, ps=(1.0, 1.0), step=4.0, number=2),
        "T2": dict(origin=(14.5, -43.0, 22.0), n=8, rows=60, cols=60, ps=(0.8, 0.8), step=4.4, number=3),
        "STIR": dict(origin=(15.0, -41.0, 21.0), n=10, rows=40, cols=40, ps=(1.2, 1.2), step=3.6, number=4),
    }
    for role, g in grids.items():
        if role == "STIR" and not with_stir:
            continue
        vals = _grid_values(
            kind,
            role,
            g["origin"],
            g["n"],
            g["rows"],
            g["cols"],
            g["ps"],
            g["step"],
            rng,
            split,
            gradient,
            layers,
            spheres,
        )
        write_series(
            root / role,
            vals,
            origin=g["origin"],
            orientation=SAGITTAL,
            pixel_spacing=g["ps"],
            slice_spacing=g["step"],
            study_uid=STUDY_UID,
            series_number=g["number"],
            header=h[role],
        )
    return root


def annotations_for(study: modic.LoadedStudy, *, reference: str | None = "L4") -> Annotations:
    """An L4 inferior endplate ROI inside the lesion box, and a reference in normal marrow,
    both on T1 slice 3 (x = 4 mm). T1 column c lies at y = -40 + c, row r at z = 20 - r."""
    plane = ImagePlane.from_series(study.t1.series, 3)
    # box y -30..-15 -> columns 10..25; z 0..10 -> rows 10..20; keep 2 pixels inside
    roi = ROI(RoiLabel.for_endplate("L4", "inferior"), Rectangle(12, 12, 24, 19), plane)
    rois = [roi]
    if reference is not None:
        # y -8..0 (columns 32..40), same rows: normal marrow
        rois.append(ROI(RoiLabel.for_reference(reference), Rectangle(32, 12, 40, 19), plane))
    return Annotations(rois=rois, study_instance_uid=STUDY_UID)


@pytest.mark.parametrize("kind", ["0", "1", "2", "3"])
def test_each_type_is_found_through_grids(tmp_path, kind):
    study = modic.load_study(build_study(tmp_path, kind))
    (res,) = modic.classify(study, annotations_for(study))
    assert res.modic_type.value == kind
    assert res.confidence > 0.9
    for role, rel in zip(("T1", "T2", "STIR"), TISSUE[kind], strict=True):
        assert res.ratios[modic.Role(role)].ratio == pytest.approx(rel, rel=0.05)


def test_mixed_type_through_grids(tmp_path):
    study = modic.load_study(build_study(tmp_path, split=("1", "2")))
    (res,) = modic.classify(study, annotations_for(study))
    assert res.modic_type.value == "1/2"
    assert "Modic 1/2" in res.explanation


def test_without_stir(tmp_path):
    study = modic.load_study(build_study(tmp_path, "2", with_stir=False))
    assert study.stir is None
    (res,) = modic.classify(study, annotations_for(study))
    assert res.modic_type.value == "2"
    assert set(res.ratios) == {modic.Role.T1, modic.Role.T2}


def test_slices_and_voxels_used_are_reported(tmp_path):
    study = modic.load_study(build_study(tmp_path, "1"))
    (res,) = modic.classify(study, annotations_for(study))
    t1, t2, stir = (res.series[modic.Role(r)] for r in ("T1", "T2", "STIR"))
    # ROI on T1 slice 3 (x = 4): 12 x 7 pixel centres
    assert (t1.slice_index, t1.distance_mm, t1.n_voxels) == (3, 0.0, 84)
    # T2 slices at x = 14.5 - 4.4 k: nearest to x = 4 is k = 2 (x = 5.7), 1.7 mm away
    assert t2.slice_index == 2 and abs(t2.distance_mm) == pytest.approx(1.7)
    # STIR slices at x = 15 - 3.6 k: nearest is k = 3 (x = 4.2), 0.2 mm away
    assert stir.slice_index == 3 and abs(stir.distance_mm) == pytest.approx(0.2)
    rec = res.to_record()
    assert rec["level"] == "L4/L5" and rec["t2_slice"] == 2 and rec["voxels"] == 84
    assert (
        res.explanation.startswith("T1 0.6")
        and "of L4 reference marrow: oedema pattern, Modic 1" in res.explanation
    )


def test_nearest_reference_is_used_with_a_warning(tmp_path):
    study = modic.load_study(build_study(tmp_path, "1"))
    (res,) = modic.classify(study, annotations_for(study, reference="L3"))
    assert res.modic_type.value == "1"
    assert any("no reference marrow in L4; used the L3 reference (1 level away)" in w for w in res.warnings)


def test_no_reference_is_an_error(tmp_path):
    study = modic.load_study(build_study(tmp_path, "1"))
    with pytest.raises(MeasurementError, match="no reference ROI"):
        modic.classify(study, annotations_for(study, reference=None))


def test_roi_outside_a_series_is_refused_with_its_name(tmp_path):
    study = modic.load_study(build_study(tmp_path, "1"))
    ann = annotations_for(study)
    # an ROI at x = 17.5 is 1.5 mm from the T1's first slice (x = 16, within half of 4 mm)
    # but 3.0 mm from the T2's first slice (x = 14.5), beyond half of 4.4 mm
    far_plane = ImagePlane(**{**ann.rois[0].image.__dict__, "position": (17.5, -40.0, 20.0)})
    far = ROI(RoiLabel.for_endplate("L4", "superior"), Rectangle(12, 12, 24, 19), far_plane)
    errors: list = []
    results = modic.classify(study, list(ann) + [far], errors=errors)
    assert len(results) == 1
    ((roi, msg),) = errors
    assert roi is far
    assert "L4 superior" in msg and "nearest slice of T2 series 3" in msg


def test_bilinear_on_known_values():
    img = np.arange(12, dtype=float).reshape(3, 4)  # value = 4 * row + col
    pts = np.array([[0.0, 0.0], [1.5, 2.5], [2.0, 3.0], [0.25, 1.0]])
    np.testing.assert_allclose(bilinear(img, pts), [0.0, 8.5, 11.0, 2.0])


def test_sampling_the_roi_own_series_returns_its_pixels(tmp_path):
    study = modic.load_study(build_study(tmp_path, "1"))
    roi = annotations_for(study).rois[0]
    s = sample_region(roi, study.t1)
    expected = study.t1.array[3, 12:19, 12:24].ravel()
    np.testing.assert_allclose(np.sort(s.values), np.sort(expected))


def _rect(study, label, x0, y0, x1, y1):
    return ROI(label, Rectangle(x0, y0, x1, y1), ImagePlane.from_series(study.t1.series, 3))


def test_a_coil_gradient_is_measured_from_several_references_and_corrected(tmp_path):
    # signal x exp(0.02 z): the L4 ROI (z 2..8) is 0.77x a reference at z 15..19 on every
    # sequence, like the real study whose receive coil made L1 1.5x brighter than L4
    study = modic.load_study(build_study(tmp_path, "0", gradient=0.02))
    roi = annotations_for(study, reference=None).rois[0]
    far_only = [roi, _rect(study, RoiLabel.for_reference("L3"), 32, 1, 40, 5)]
    (alone,) = modic.classify(study, far_only)
    assert not (alone.modic_type.is_change and alone.confidence >= 0.9)
    assert any("coil gradient cannot be measured" in w for w in alone.warnings)
    # references in four other vertebrae show the trend; corrected, the ROI is normal
    refs = [
        _rect(study, RoiLabel.for_reference("L2"), 32, 1, 40, 5),  # z 19..16
        _rect(study, RoiLabel.for_reference("L3"), 32, 6, 40, 10),  # z 14..11
        _rect(study, RoiLabel.for_reference("L5"), 32, 28, 40, 33),  # z -8..-12
        _rect(study, RoiLabel.for_reference("S1"), 32, 38, 40, 44),  # z -18..-23
    ]
    (res,) = modic.classify(study, [roi, *refs])
    assert res.modic_type is modic.ModicType.NONE
    assert res.ratios[modic.Role.T1].ratio == pytest.approx(1.0, abs=0.05)
    assert any("corrected for the coil gradient" in w for w in res.warnings)
    # L3 and L5 are one level away; L3 is nearer (its centre at z 12 against the ROI's 4.5):
    # its level is moved by exp(0.02 * (4.5 - 12))
    assert res.reference_label.vertebra == "L3"
    assert res.reference_correction[modic.Role.T1] == pytest.approx(np.exp(0.02 * -7.5), rel=0.05)


def test_a_band_over_the_cortical_endplate_is_not_sclerosis(tmp_path):
    # an L4 inferior band drawn over its endplate: cortical bone (dark on every sequence) at
    # z 0..2 and the disc below it; 2 of its 6 rows are cortex, which reads as "type 3"
    cortex = (0.0, 2.0, (0.08, 0.08, 0.08))
    disc = (-12.0, 0.0, (0.55, 1.6, 1.7))
    study = modic.load_study(build_study(tmp_path, "0", layers=[cortex, disc]))
    band = _rect(study, RoiLabel.for_endplate("L4", "inferior"), 12, 15, 24, 21)  # rows 15..20: z 5..0
    ref = _rect(study, RoiLabel.for_reference("L4"), 32, 4, 40, 10)
    (res,) = modic.classify(study, [band, ref])
    assert res.excluded_voxels >= 24  # the two cortex rows of 12 pixels
    assert res.modic_type is modic.ModicType.NONE
    assert any("partial-volume margin" in w for w in res.warnings)
    rec = res.to_record()
    assert rec["excluded_voxels"] == res.excluded_voxels
    # the marrow rows stay: at most the row next to the cortex goes with it
    assert res.excluded_voxels <= 36


# a vertebral hemangioma: fatty (T1-bright, T2-bright like fat) with vascular water
# (STIR not suppressed); the cortical endplate of L4 at z 0..2 and its disc below
HEMANGIOMA = (1.45, 1.6, 1.3)
CORTEX = (0.0, 2.0, (0.08, 0.08, 0.08))
DISC = (-12.0, 0.0, (0.55, 1.6, 1.7))


def test_a_round_bright_focus_inside_the_body_is_not_modic_2(tmp_path):
    # a hemangioma-like ball of radius 4.5 mm centred at z 9.5, 7.5 mm above the endplate
    # (z 2): 3 mm of normal marrow separate it from the cortical line; it fills about half
    # of the band (rows 8..17, z 12..3), enough to make the band "type 2" were it read by
    # signal alone
    ball = ((4.0, -21.0, 9.5), 4.5, HEMANGIOMA)
    study = modic.load_study(build_study(tmp_path, "0", layers=[CORTEX, DISC], spheres=[ball]))
    band = _rect(study, RoiLabel.for_endplate("L4", "inferior"), 14, 8, 26, 18)
    ref = _rect(study, RoiLabel.for_reference("L4"), 34, 4, 42, 10)
    (res,) = modic.classify(study, [band, ref])
    assert not (res.modic_type.is_change and res.confidence >= 0.9), (res.modic_type, res.confidence)
    assert res.modic_type is modic.ModicType.NONE
    assert any("focus inside the body" in w for w in res.warnings)


def test_the_same_tissue_as_a_band_along_the_endplate_is_modic_2(tmp_path):
    # the same bright tissue, but as a band reaching the cortical line (z 2..6) all along
    # the ROI: band-like, attached to the endplate, so fat replacement (Modic 2)
    band_tissue = (2.0, 6.0, (1.45, 1.25, 0.5))
    study = modic.load_study(build_study(tmp_path, "0", layers=[CORTEX, DISC, band_tissue]))
    band = _rect(study, RoiLabel.for_endplate("L4", "inferior"), 12, 13, 30, 18)  # z 7..3
    ref = _rect(study, RoiLabel.for_reference("L4"), 34, 4, 42, 10)
    (res,) = modic.classify(study, [band, ref])
    assert res.modic_type is modic.ModicType.TYPE2
    assert not any("focus inside the body" in w for w in res.warnings)


def test_a_fat_roi_in_the_annotations_gives_the_study_fat_contrast(tmp_path):
    # without a fat ROI the T1-brightest tissue is taken as fat; with one, its signal is
    # the fat contrast (here a region of the type-2 box, 1.4x marrow on T1, 0.45x on STIR)
    study = modic.load_study(build_study(tmp_path, "2"))
    ann = annotations_for(study)
    (auto,) = modic.classify(study, ann)
    assert auto.contrast.source == "automatic"
    fat = _rect(study, RoiLabel.for_fat("L4"), 13, 12, 23, 18)
    results = modic.classify(study, [*ann.rois, fat])
    assert results.contrast.source == "fat ROI"
    fr = results.contrast.fat_ratio
    assert fr[modic.Role.T1] == pytest.approx(1.4, rel=0.05)
    assert fr[modic.Role.STIR] == pytest.approx(0.45, rel=0.1)
    assert results[0].modic_type is modic.ModicType.TYPE2


# a fatty patch of normal marrow (heterogeneous, fatty-with-age marrow): mildly T1- and
# T2-bright and STIR-dark, like a weak Modic 2 change
FATTY_PATCH = (1.2, 1.25, 0.7)


def test_a_fatty_patch_that_continues_into_the_body_is_normal_marrow(tmp_path):
    # a ball of fattier marrow (radius 9 mm, centred 7 mm above the band's endplate edge)
    # fills the L4 inferior band (rows 13..18, z 7..2) and the marrow above it alike; the
    # reference (z 16..10, y -6..2) lies outside it
    patch = ((4.0, -22.0, 8.0), 9.0, FATTY_PATCH)
    study = modic.load_study(build_study(tmp_path, "0", spheres=[patch]))
    band = _rect(study, RoiLabel.for_endplate("L4", "inferior"), 12, 13, 24, 18)
    ref = _rect(study, RoiLabel.for_reference("L4"), 34, 4, 42, 10)
    (res,) = modic.classify(study, [band, ref])
    assert res.modic_type is modic.ModicType.NONE, (res.modic_type, res.reason)
    assert any("continues into the vertebral body" in w for w in res.warnings)
    # read from its signal alone, the same band is a change
    off = replace(DEFAULT_PARAMETERS, body_ratio=0.0)
    (alone,) = modic.classify(study, [band, ref], parameters=off)
    assert alone.modic_type.is_change


def test_the_same_tissue_as_a_band_anchored_at_the_endplate_is_a_change(tmp_path):
    # the same fattier tissue only in a layer along the endplate (z 1..7.5): the marrow
    # beyond the band is normal, so the band is a (weak) Modic 2 change
    layer = (1.0, 7.5, FATTY_PATCH)
    study = modic.load_study(build_study(tmp_path, "0", layers=[layer]))
    band = _rect(study, RoiLabel.for_endplate("L4", "inferior"), 12, 13, 24, 18)
    ref = _rect(study, RoiLabel.for_reference("L4"), 34, 4, 42, 10)
    (res,) = modic.classify(study, [band, ref])
    assert res.modic_type is modic.ModicType.TYPE2, (res.modic_type, res.reason)
    assert not any("continues into the vertebral body" in w for w in res.warnings)


def test_a_call_against_a_flagged_reference_claims_at_most_the_cap(tmp_path):
    # a reference half in the type 1 change and half in normal marrow: heterogeneous, so the
    # spread the region is compared with is wide and the call cannot be sure
    study = modic.load_study(build_study(tmp_path, "1"))
    roi = annotations_for(study, reference=None).rois[0]
    mixed = _rect(study, RoiLabel.for_reference("L4"), 18, 12, 34, 19)  # columns 18-25 changed
    capped = replace(DEFAULT_PARAMETERS, reference_flag_confidence=0.6)
    uncapped = replace(DEFAULT_PARAMETERS, reference_flag_confidence=1.0)
    (res,) = modic.classify(study, [roi, mixed], parameters=capped)
    assert any("reference marrow is heterogeneous" in w for w in res.warnings)
    assert res.confidence <= 0.6
    assert "confidence at most 0.60" in res.reason
    (free,) = modic.classify(study, [roi, mixed], parameters=uncapped)
    assert free.confidence > 0.6  # the cap is what lowered it
    # a reference modic proposed has its own cap
    proposed = replace(mixed, origin="proposed")
    (res,) = modic.classify(study, [roi, proposed],
                            parameters=replace(capped, proposed_reference_flag_confidence=0.5))
    assert res.confidence <= 0.5 and "confidence at most 0.50" in res.reason
    # a reference in normal marrow is not flagged, and its call keeps its confidence
    (clean,) = modic.classify(study, annotations_for(study), parameters=capped)
    assert not any("heterogeneous" in w or "hold part of a change" in w for w in clean.warnings)
    assert clean.modic_type.value == "1" and clean.confidence > 0.9


def test_a_proposed_band_read_as_normal_claims_what_proposed_bands_earned(tmp_path):
    # the same normal ROI, drawn and proposed: a proposed band's type 0 is capped by the
    # typed-share knots of proposed bands (they miss a change more often)
    study = modic.load_study(build_study(tmp_path, "0"))
    ann = annotations_for(study)
    (drawn,) = modic.classify(study, ann)
    roi, ref = ann.rois
    (proposed,) = modic.classify(study, [replace(roi, origin="proposed"), ref])
    assert drawn.modic_type.value == proposed.modic_type.value == "0"
    first = DEFAULT_PARAMETERS.proposed_normal_typed_calibration[0][1]
    assert drawn.confidence > first >= proposed.confidence
    assert proposed.confidence > 0.9
