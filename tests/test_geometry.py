"""Voxel <-> patient coordinates, and mapping between series on different grids."""

from __future__ import annotations

import numpy as np
import pytest
from dicomfactory import VENDORS, volume_pattern, write_series

import modic
from modic.errors import GeometryError, OutsideVolumeError
from modic.geometry import SliceGeometry, map_region, slice_normal

# A slightly tilted sagittal orientation: rows run anterior->posterior with a small
# superior component, columns run head->foot. Unit and orthogonal by construction.
_A = np.deg2rad(6.0)
TILTED = (0.0, np.cos(_A), np.sin(_A), 0.0, np.sin(_A), -np.cos(_A))


def test_sagittal_normal_points_right_to_left():
    # (0,1,0) x (0,0,-1) = (-1, 0, 0): towards the patient's right
    np.testing.assert_allclose(slice_normal([0, 1, 0, 0, 0, -1]), [-1, 0, 0])
    np.testing.assert_allclose(slice_normal([1, 0, 0, 0, 1, 0]), [0, 0, 1])


def test_degenerate_orientation_is_refused():
    with pytest.raises(GeometryError, match="orthogonal unit vectors"):
        slice_normal([1, 0, 0, 1, 0, 0])


def test_index_to_patient_follows_the_dicom_equation():
    g = SliceGeometry(
        positions=np.array([[10.0, -20.0, 30.0], [6.0, -20.0, 30.0]]),
        orientation=np.array([0, 1, 0, 0, 0, -1.0]),
        pixel_spacing=(0.5, 0.8),  # row spacing 0.5 mm, column spacing 0.8 mm
        rows=100,
        columns=80,
    )
    # P = IPP[s] + c * colspacing * rowcos + r * rowspacing * colcos
    # slice 1, row 4, col 10: (6, -20 + 10*0.8, 30 - 4*0.5)
    np.testing.assert_allclose(g.index_to_patient([1, 4, 10]), [6.0, -12.0, 28.0])
    np.testing.assert_allclose(g.patient_to_index([6.0, -12.0, 28.0]), [1, 4, 10], atol=1e-9)
    # affine gives the same on a regular grid
    np.testing.assert_allclose((g.affine @ [1, 4, 10, 1])[:3], [6.0, -12.0, 28.0])


def _write_two_grids(tmp_path):
    """T1 and T2 with different matrix, field of view and slice positions, one point in both.

    P is voxel (slice 3, row 10, col 20) of the T1; the T2's origin is chosen so that the
    same P is its voxel (slice 5, row 30, col 12).
    """
    rowc, colc = np.array(TILTED[:3]), np.array(TILTED[3:])
    normal = np.cross(rowc, colc)
    t1_origin = np.array([20.0, -60.0, 40.0])
    t1_ps, t1_step = (1.0, 1.1), 4.0
    p = t1_origin + 3 * t1_step * normal + 20 * t1_ps[1] * rowc + 10 * t1_ps[0] * colc
    t2_ps, t2_step = (0.7, 0.6), 4.4
    t2_origin = p - (5 * t2_step * normal + 12 * t2_ps[1] * rowc + 30 * t2_ps[0] * colc)
    h = VENDORS["siemens"]
    write_series(
        tmp_path / "t1",
        volume_pattern(8, 48, 40),
        origin=t1_origin,
        orientation=TILTED,
        pixel_spacing=t1_ps,
        slice_spacing=t1_step,
        series_number=2,
        header=h["T1"],
        study_uid="1.2.826.0.1.3680043.8.498.7",
    )
    write_series(
        tmp_path / "t2",
        volume_pattern(9, 64, 56),
        origin=t2_origin,
        orientation=TILTED,
        pixel_spacing=t2_ps,
        slice_spacing=t2_step,
        series_number=3,
        header=h["T2"],
        study_uid="1.2.826.0.1.3680043.8.498.7",
    )
    return p, normal


def test_patient_to_rowcol_is_the_in_plane_part_of_patient_to_index():
    g = SliceGeometry(
        positions=np.array([[1.5, -20.0, 30.0], [6.0, -20.0, 30.0], [10.0, -20.0, 30.0]]),
        orientation=np.array([0, 0.96, -0.28, 0, 0.28, 0.96]),
        pixel_spacing=(0.7, 0.9),
        rows=64,
        columns=48,
    )
    pts = np.random.default_rng(3).normal(0.0, 30.0, (200, 3))
    assert np.array_equal(g.patient_to_rowcol(pts), g.patient_to_index(pts)[:, 1:])  # bit for bit
    assert np.array_equal(g.patient_to_rowcol(pts[0]), g.patient_to_index(pts[0])[1:])
    assert g.slice_spacing == g.slice_spacing  # cached after the first use


def test_known_point_maps_to_the_right_voxel_in_two_grids(tmp_path):
    p, _ = _write_two_grids(tmp_path)
    study = modic.load_study(tmp_path)
    np.testing.assert_allclose(study.t1.index_to_patient([3, 10, 20]), p, atol=1e-4)
    np.testing.assert_allclose(study.t1.patient_to_index(p), [3, 10, 20], atol=1e-4)
    np.testing.assert_allclose(study.t2.patient_to_index(p), [5, 30, 12], atol=1e-4)
    # the pixel there holds the value the test wrote for that voxel (1000*s + 7*r + c + seed)
    assert study.t2.array[5, 30, 12] == 1000 * 5 + 7 * 30 + 12


def test_region_drawn_on_t1_maps_to_t2(tmp_path):
    p, normal = _write_two_grids(tmp_path)
    study = modic.load_study(tmp_path)
    # a small square around P on T1 slice 3, given as T1 (row, col) indices
    square = np.array([[8, 18], [8, 22], [12, 22], [12, 18]], float)
    pts = study.t1.index_to_patient(np.column_stack([np.full(4, 3), square]))
    m = map_region(pts, study.t2.geometry)
    assert m.slice_index == 5
    assert abs(m.distance_mm) < 1e-4
    # T1 row step 1.0 mm = 1/0.7 T2 rows; T1 col step 1.1 mm = 1.1/0.6 T2 cols
    expected = np.array([[30 + (r - 10) * 1.0 / 0.7, 12 + (c - 20) * 1.1 / 0.6] for r, c in square])
    np.testing.assert_allclose(m.rowcol, expected, atol=1e-4)


def test_point_between_slices_is_outside_beyond_half_a_spacing(tmp_path):
    p, normal = _write_two_grids(tmp_path)
    study = modic.load_study(tmp_path)
    g = study.t2.geometry
    near = p + 2.1 * normal  # 2.1 mm from slice 5, under half of 4.4 mm
    assert map_region(near[None], g).slice_index == 5
    # beyond the last slice (8) by more than half a spacing
    far = p + (3 * 4.4 + 2.3) * normal
    with pytest.raises(OutsideVolumeError, match="allowed 2.2 mm"):
        map_region(far[None], g)


def test_region_outside_field_of_view_is_refused(tmp_path):
    p, _ = _write_two_grids(tmp_path)
    study = modic.load_study(tmp_path)
    rowc = np.array(TILTED[:3])
    outside = p + 200 * rowc
    with pytest.raises(OutsideVolumeError, match="outside the 64x56 field of view"):
        map_region(outside[None], study.t2.geometry, name="T2")


def test_uneven_positions_map_exactly():
    xs = np.array([0.0, -4.0, -8.5, -12.0])
    g = SliceGeometry(
        positions=np.column_stack([xs, np.zeros(4), np.zeros(4)]),
        orientation=np.array([0, 1, 0, 0, 0, -1.0]),
        pixel_spacing=(1, 1),
        rows=4,
        columns=4,
    )
    k, d = g.nearest_slice([[-8.0, 0, 0], [-8.6, 0, 0]])
    assert k.tolist() == [2, 2]
    # normal is -x, so a point at x=-8.0 is 0.5 mm *behind* slice 2 (at -8.5) along the normal
    np.testing.assert_allclose(d, [-0.5, 0.1], atol=1e-9)
    np.testing.assert_allclose(g.patient_to_index([-8.5, 2, -3])[0], 2.0)
