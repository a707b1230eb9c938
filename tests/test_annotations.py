"""The annotation file format: labels, image planes, shapes, ROIs, reading and writing.

Every expected value below is worked out by hand from the stated conventions: image
coordinates (x, y) = (column, row) with the top-left pixel's corner at (0, 0), so the
centre of pixel (row r, col c) is (c + 0.5, r + 0.5); a pixel belongs to a shape when its
centre lies inside (left/top edges in, right/bottom edges out); the patient position of a
pixel centre is IPP + c * column_spacing * row_cosine + r * row_spacing * column_cosine.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import stat
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modic
from modic.annotations import (
    FORMAT_VERSION,
    ROI,
    VERTEBRAE,
    Annotations,
    Ellipse,
    Endplate,
    ImagePlane,
    Mask,
    Polygon,
    Rectangle,
    RoiLabel,
    Shape,
    annotation_path_for,
    annotation_schema,
    read_annotations,
    rowcol_to_xy,
    shape_from_dict,
    write_annotations,
    xy_to_rowcol,
)
from modic.errors import AnnotationFormatError, ModicError
from modic.geometry import SliceGeometry

SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # image +x = posterior, image +y = foot
T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-01T10:05:00.000Z"
SERIES_UID = "1.2.826.0.1.3680043.8.498.10"
SOP_UID = "1.2.826.0.1.3680043.8.498.10.7"


def make_plane(**changes: Any) -> ImagePlane:
    """A sagittal 20x16 image, IPP (10, -100, 50), row spacing 0.8 mm, column spacing 0.5 mm."""
    args: dict[str, Any] = dict(
        series_instance_uid=SERIES_UID,
        sop_instance_uid=SOP_UID,
        frame_number=1,
        rows=20,
        columns=16,
        position=(10.0, -100.0, 50.0),
        orientation=SAGITTAL,
        pixel_spacing=(0.8, 0.5),
        series_number=2,
        series_description="t1_tse_sag",
    )
    args.update(changes)
    return ImagePlane(**args)


MASK_3X4 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
MASK_3X4_BITS = "hDA="  # 1000 0100 | 0011 0000 -> 0x84 0x30 -> base64 by hand


def one_of_each_shape() -> list[Shape]:
    return [
        Polygon([[1.25, 2.5], [6.0, 2.75], [4.125, 7.0]]),
        Rectangle(2, 3, 5, 6),
        Ellipse(8.0, 9.5, 3.0, 1.5, angle_deg=30.0),
        Mask(3, 2, MASK_3X4),
    ]


def make_annotations() -> Annotations:
    """Four ROIs, fixed ids and times: L4 inferior polygon, L4 reference rectangle,
    L5 superior mask, L5 reference ellipse (in this order)."""
    plane = make_plane()
    rois = [
        ROI(RoiLabel.parse("L4 inferior"), Polygon([[1, 1], [7, 1], [4, 5]]), plane, id="a", created=T0),
        ROI(RoiLabel.parse("ref L4"), Rectangle(2, 3, 5, 6), plane, id="b", created=T0, author="rater 1"),
        ROI(RoiLabel.parse("L5s"), Mask(3, 2, MASK_3X4), plane, id="c", created=T0, modified=T1),
        ROI(RoiLabel.parse("L5 ref"), Ellipse(8, 9.5, 3, 1.5), plane, id="d", created=T0, comment="é"),
    ]
    return Annotations(
        rois,
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.2",
        description="test study",
        created=T0,
        modified=T1,
    )


def pixels(mask: np.ndarray) -> set[tuple[int, int]]:
    """The (row, col) of the set pixels of a mask."""
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)}


# ----------------------------------------------------------------------------------------
# coordinate helpers
# ----------------------------------------------------------------------------------------
def test_pixel_centre_is_half_a_pixel_from_the_corner():
    np.testing.assert_array_equal(rowcol_to_xy([2, 3]), [3.5, 2.5])
    np.testing.assert_array_equal(xy_to_rowcol([3.5, 2.5]), [2.0, 3.0])
    np.testing.assert_array_equal(xy_to_rowcol([[0.0, 0.0], [1.0, 2.0]]), [[-0.5, -0.5], [1.5, 0.5]])
    with pytest.raises(ValueError, match="last axis"):
        xy_to_rowcol([1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------
L4_INF = RoiLabel("endplate", "L4", Endplate.INFERIOR)
L5_SUP = RoiLabel("endplate", "L5", Endplate.SUPERIOR)
L4_REF = RoiLabel("reference", "L4", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L4 inferior", L4_INF),
        ("L4-inf", L4_INF),
        ("L4i", L4_INF),
        ("l4 Inferior", L4_INF),
        ("L4_inf", L4_INF),
        ("  L4 inferior endplate ", L4_INF),
        ("L5 superior", L5_SUP),
        ("L5-sup", L5_SUP),
        ("L5s", L5_SUP),
        ("ref L4", L4_REF),
        ("reference L4", L4_REF),
        ("L4 ref", L4_REF),
        ("L4 reference", L4_REF),
        ("T11 sup", RoiLabel("endplate", "T11", Endplate.SUPERIOR)),
        ("T12i", RoiLabel("endplate", "T12", Endplate.INFERIOR)),
        ("S1 superior", RoiLabel("endplate", "S1", Endplate.SUPERIOR)),
        ("L3 body", RoiLabel("body", "L3")),
        ("body L3", RoiLabel("body", "L3")),
        ("L3 vertebral body", RoiLabel("body", "L3")),
        ("L3-vb", RoiLabel("body", "L3")),
        ("S1 body", RoiLabel("body", "S1")),
        ("L5 fat", RoiLabel("fat", "L5")),
        ("fat L5", RoiLabel("fat", "L5")),
    ],
)
def test_label_parse_accepts_the_usual_spellings(text: str, expected: RoiLabel):
    assert RoiLabel.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("L6 inf", "cannot read 'L6 inf'"),
        ("C5 inf", "cannot read"),
        ("L4 sideways", "cannot read"),
        ("", "cannot read"),
        ("ref L4 inf", "cannot read"),
        ("body L4 inf", "cannot read"),
        ("fat L4 body", "cannot read"),
        ("L4 bodies", "cannot read"),
        ("L4", "does not say which endplate"),
        ("S1 inferior", "only a superior endplate"),
        ("S1i", "only a superior endplate"),
    ],
)
def test_label_parse_explains_what_it_cannot_read(text: str, message: str):
    with pytest.raises(AnnotationFormatError, match=message) as info:
        RoiLabel.parse(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ModicError)


def test_label_str_level_and_order():
    assert str(L4_INF) == "L4 inferior"
    assert str(L4_REF) == "L4 reference"
    assert L4_INF.level == "L4/L5"
    assert L5_SUP.level == "L4/L5"
    assert RoiLabel.parse("L5 inf").level == "L5/S1"
    assert RoiLabel.parse("S1 sup").level == "L5/S1"
    assert RoiLabel.parse("T11 sup").level == "T10/T11"
    assert RoiLabel.parse("T12 inf").level == "T12/L1"
    assert L4_REF.level is None
    assert RoiLabel.for_body("L4").level is None and RoiLabel.for_fat("L4").level is None
    labels = [RoiLabel.parse(t) for t in ("L5s", "L4i", "L4 fat", "ref L4", "L4 body", "L4s", "T12i")]
    assert [str(x) for x in sorted(labels, key=lambda x: x.sort_key)] == [
        "T12 inferior",
        "L4 superior",
        "L4 body",
        "L4 reference",
        "L4 fat",
        "L4 inferior",
        "L5 superior",
    ]
    assert VERTEBRAE == ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


def test_label_constructor_checks_its_arguments():
    assert RoiLabel("endplate", "L4", "inferior") == L4_INF  # type: ignore[arg-type]
    assert RoiLabel("endplate", "L4", "inferior").endplate is Endplate.INFERIOR  # type: ignore[arg-type]
    assert RoiLabel.for_endplate("L4", "inferior") == L4_INF
    assert RoiLabel.for_reference("L4") == L4_REF
    cases = [
        (("reference", "L4", Endplate.INFERIOR), "endplate", "no endplate"),
        (("endplate", "L4", None), "endplate", "needs 'superior' or 'inferior'"),
        (("endplate", "L4", "middle"), "endplate", "'middle'"),
        (("endplate", "L6", "inferior"), "vertebra", "'L6'"),
        (("endplate", "l4", "inferior"), "vertebra", "'l4'"),
        (("endplate", "S1", "inferior"), "endplate", "only a superior endplate"),
        (("lesion", "L4", None), "kind", "'lesion'"),
    ]
    for args, field, message in cases:
        with pytest.raises(AnnotationFormatError, match=message) as info:
            RoiLabel(*args)  # type: ignore[arg-type]
        assert info.value.field == field


# ----------------------------------------------------------------------------------------
# image planes
# ----------------------------------------------------------------------------------------
def test_pixel_to_patient_follows_the_dicom_equation():
    plane = make_plane()
    # centre of pixel (row 4, col 6) = xy (6.5, 4.5):
    # (10, -100, 50) + 6 * 0.5 * (0, 1, 0) + 4 * 0.8 * (0, 0, -1) = (10, -97, 46.8)
    np.testing.assert_allclose(plane.pixel_to_patient([6.5, 4.5]), [10.0, -97.0, 46.8])
    # the centre of the top-left pixel is IPP; its outer corner is half a pixel further out
    np.testing.assert_allclose(
        plane.pixel_to_patient([[0.5, 0.5], [0.0, 0.0]]),
        [[10.0, -100.0, 50.0], [10.0, -100.25, 50.4]],
    )


def test_pixel_to_patient_on_an_oblique_plane():
    # row cosine (0, 0.6, -0.8), column cosine (0, -0.8, -0.6): unit and orthogonal
    plane = make_plane(
        position=(0.0, 0.0, 0.0), orientation=(0, 0.6, -0.8, 0, -0.8, -0.6), pixel_spacing=(2, 1)
    )
    # pixel (row 1, col 3): 3 * 1 * (0, .6, -.8) + 1 * 2 * (0, -.8, -.6) = (0, 0.2, -3.6)
    np.testing.assert_allclose(plane.pixel_to_patient([3.5, 1.5]), [0.0, 0.2, -3.6], atol=1e-12)
    np.testing.assert_allclose(plane.normal, [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(plane.patient_to_pixel([0.0, 0.2, -3.6]), [3.5, 1.5], atol=1e-12)


def test_patient_to_pixel_projects_onto_the_plane():
    plane = make_plane()
    # 3 mm to the patient's left of the centre of pixel (4, 6); the normal is (-1, 0, 0)
    points = np.array([[13.0, -97.0, 46.8], [10.0, -100.25, 50.4]])
    np.testing.assert_allclose(plane.patient_to_pixel(points), [[6.5, 4.5], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(plane.distance_to_plane(points), [-3.0, 0.0], atol=1e-12)


def test_image_plane_from_geometry():
    geometry = SliceGeometry(
        positions=np.array([[16.0, -40.0, 20.0], [12.0, -40.0, 20.0], [8.0, -40.0, 20.0]]),
        orientation=np.array(SAGITTAL),
        pixel_spacing=(0.5, 0.8),
        rows=30,
        columns=40,
    )
    plane = ImagePlane.from_geometry(geometry, 2, SERIES_UID, SOP_UID, series_number=7)
    assert plane.position == (8.0, -40.0, 20.0)
    assert (plane.rows, plane.columns, plane.pixel_spacing, plane.frame_number) == (30, 40, (0.5, 0.8), 1)
    assert plane.orientation == SAGITTAL and plane.series_number == 7
    # centre of (row 3, col 5): (8, -40 + 5 * 0.8, 20 - 3 * 0.5)
    np.testing.assert_allclose(plane.pixel_to_patient([5.5, 3.5]), [8.0, -36.0, 18.5])
    with pytest.raises(IndexError):
        ImagePlane.from_geometry(geometry, 3, SERIES_UID, SOP_UID)


def test_image_plane_from_a_scanned_series(lumbar_study):
    t1 = next(s for s in modic.scan(lumbar_study.root).all_series() if s.number == 2)
    plane = ImagePlane.from_series(t1, 0)
    assert plane.position == (16.0, -40.0, 20.0)  # t1_origin of the conftest study
    assert plane.sop_instance_uid == t1.frames[0].sop_instance_uid
    assert plane.series_instance_uid == t1.series_uid
    assert (plane.rows, plane.columns, plane.frame_number, plane.series_number) == (32, 32, 1, 2)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"orientation": (0, 1, 0, 0, 1, 0)}, "orientation", "orthogonal unit vectors"),
        ({"orientation": (0, 1, 0)}, "orientation", "must be 6 numbers"),
        ({"pixel_spacing": (0.8, 0.0)}, "pixel_spacing", "positive"),
        ({"position": (1.0, float("nan"), 2.0)}, "position[1]", "finite"),
        ({"frame_number": 0}, "frame_number", ">= 1"),
        ({"rows": 2.5}, "rows", "integer"),
        ({"sop_instance_uid": ""}, "sop_instance_uid", "non-empty"),
    ],
)
def test_image_plane_checks_its_arguments(changes: dict[str, Any], field: str, message: str):
    with pytest.raises(AnnotationFormatError, match=message) as info:
        make_plane(**changes)
    assert info.value.field == field


# ----------------------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------------------
def test_rectangle_covers_the_pixels_whose_centres_are_inside():
    # x from 2 to 5 holds centres 2.5, 3.5, 4.5 (cols 2..4); y from 3 to 6 rows 3..5
    mask = Rectangle(2, 3, 5, 6).rasterize(8, 8)
    assert mask.shape == (8, 8) and mask.dtype == bool
    assert pixels(mask) == {(r, c) for r in (3, 4, 5) for c in (2, 3, 4)}
    assert Rectangle(2, 3, 5, 6).area_px == 9.0


def test_centres_on_an_edge_count_on_the_left_and_top_only():
    # centres x = 2.5 (on the left edge: in), 3.5 (in), 4.5 (on the right edge: out); y = 3.5 only
    left = Rectangle(2.5, 3, 4.5, 4)
    right = Rectangle(4.5, 3, 6.5, 4)
    assert pixels(left.rasterize(8, 8)) == {(3, 2), (3, 3)}
    assert pixels(right.rasterize(8, 8)) == {(3, 4), (3, 5)}
    # the same rule for a polygon with the same corners, and for edges on row centres
    assert pixels(Polygon(left.outline()).rasterize(8, 8)) == {(3, 2), (3, 3)}
    assert pixels(Rectangle(1, 2.5, 2, 4.5).rasterize(8, 8)) == {(2, 1), (3, 1)}
    assert pixels(Polygon([[1, 2.5], [2, 2.5], [2, 4.5], [1, 4.5]]).rasterize(8, 8)) == {(2, 1), (3, 1)}


def test_rectangle_sorts_its_corners_and_rounds():
    assert Rectangle(5, 6, 2, 3) == Rectangle(2, 3, 5, 6)
    assert Rectangle(5, 6, 2, 3).outline().tolist() == [[2, 3], [5, 3], [5, 6], [2, 6]]
    assert Rectangle(0.12345, 0, 1, 1).x0 == 0.123
    with pytest.raises(AnnotationFormatError, match="x1 != x0") as info:
        Rectangle(2, 3, 2, 6)
    assert info.value.field == "x1"


def test_rectangle_is_clipped_to_the_image():
    assert pixels(Rectangle(-3, -3, 1, 1).rasterize(4, 4)) == {(0, 0)}
    assert not Rectangle(10, 10, 12, 12).rasterize(4, 4).any()


def test_right_triangle_pixels():
    # centres (c + .5, r + .5) with x + y < 4.2  <=>  r + c <= 3
    tri = Polygon([[0, 0], [4.2, 0], [0, 4.2]])
    expected = {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (3, 0)}
    assert pixels(tri.rasterize(6, 6)) == expected
    assert tri.area_px == pytest.approx(0.5 * 4.2 * 4.2)


def test_isosceles_triangle_pixels():
    # vertices (1, 1), (7, 1), (4, 5): at height y the triangle spans
    # x in [1 + 0.75 (y - 1), 7 - 0.75 (y - 1)]
    #   row 1 (y 1.5): [1.375, 6.625] -> centres 1.5 .. 6.5 -> cols 1..6
    #   row 2 (y 2.5): [2.125, 5.875] -> cols 2..5
    #   row 3 (y 3.5): [2.875, 5.125] -> cols 3, 4
    #   row 4 (y 4.5): [3.625, 4.375] -> no centre
    tri = Polygon([[1, 1], [7, 1], [4, 5]])
    expected = {(1, c) for c in range(1, 7)} | {(2, c) for c in range(2, 6)} | {(3, 3), (3, 4)}
    assert pixels(tri.rasterize(8, 8)) == expected
    assert tri.area_px == 12.0


def test_polygon_needs_three_points_and_rounds_to_a_thousandth():
    with pytest.raises(AnnotationFormatError, match="a polygon needs at least 3 points, got 2") as info:
        Polygon([[0, 0], [1, 1]])
    assert info.value.field == "points"
    with pytest.raises(AnnotationFormatError, match="finite"):
        Polygon([[0, 0], [1, np.inf], [2, 0]])
    p = Polygon([[1.23456, 2], [3, 4], [5, 6.0004]])
    assert p.points.tolist() == [[1.235, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert p == Polygon(np.array([[1.235, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert hash(p) == hash(Polygon([[1.235, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    with pytest.raises(ValueError, match="read-only"):
        p.points[0, 0] = 9.0


def test_small_circle_pixels():
    # centre (5, 5), radius 1.2: the four centres (4.5|5.5, 4.5|5.5) are 0.71 away,
    # the next ones (e.g. (4.5, 3.5)) 1.58 away
    assert pixels(Ellipse(5, 5, 1.2, 1.2).rasterize(10, 10)) == {(4, 4), (4, 5), (5, 4), (5, 5)}


def test_ellipse_rotation_turns_x_towards_y():
    # rx = 2.2 along x, ry = 0.6 across, centre on the centre column of col 5, between rows 4 and 5
    flat = Ellipse(5.5, 5, 2.2, 0.6)
    # dy = +-0.5 -> (dy / .6)^2 = .69, leaving |dx| <= 2.2 * sqrt(.31) = 1.22 -> cols 4, 5, 6
    assert pixels(flat.rasterize(10, 10)) == {(r, c) for r in (4, 5) for c in (4, 5, 6)}
    # turned by 90 degrees the long axis runs down the image: col 5, |dy| <= 2.2 -> rows 3..6
    upright = Ellipse(5.5, 5, 2.2, 0.6, angle_deg=90)
    assert pixels(upright.rasterize(10, 10)) == {(3, 5), (4, 5), (5, 5), (6, 5)}
    # the outline starts at the end of the rotated x semi-axis: 30 degrees from +x towards +y
    start = Ellipse(0, 0, 2, 1, angle_deg=30).outline(8)[0]
    np.testing.assert_allclose(start, [2 * np.cos(np.pi / 6), 2 * np.sin(np.pi / 6)])


def test_ellipse_pixel_count_matches_its_area():
    e = Ellipse(32.3, 30.7, 20, 10, angle_deg=30)
    assert e.area_px == pytest.approx(np.pi * 200)
    assert e.rasterize(64, 64).sum() == pytest.approx(np.pi * 20 * 10, rel=0.02)
    outline = e.outline(32)
    assert outline.shape == (32, 2)
    # every outline point is on the ellipse
    t = np.deg2rad(30)
    d = outline - [32.3, 30.7]
    u = (d[:, 0] * np.cos(t) + d[:, 1] * np.sin(t)) / 20
    v = (-d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)) / 10
    np.testing.assert_allclose(u**2 + v**2, 1.0)


def test_ellipse_needs_positive_radii():
    with pytest.raises(AnnotationFormatError, match="> 0") as info:
        Ellipse(5, 5, 3, -2)
    assert info.value.field == "ry"


def test_mask_is_placed_at_its_corner_pixel():
    m = Mask(3, 2, MASK_3X4)
    assert pixels(m.rasterize(6, 8)) == {(2, 3), (3, 4), (4, 5), (4, 6)}
    assert m.area_px == 4.0
    assert (m.height, m.width) == (3, 4)
    # clipped at the image edge
    assert pixels(m.rasterize(4, 5)) == {(2, 3), (3, 4)}


def test_mask_serialises_as_packed_bits():
    d = Mask(3, 2, MASK_3X4).to_dict()
    assert d == {"type": "mask", "x0": 3, "y0": 2, "height": 3, "width": 4, "bits": MASK_3X4_BITS}
    assert Mask.from_dict(d) == Mask(3, 2, MASK_3X4)


def test_mask_outline_follows_the_pixel_edges():
    # pixels (rows 3..5, cols 2..4):  X X .      squares: row 3 spans y 3..4, x 2..4
    #                                 X . .                row 4 spans y 4..5, x 2..3
    #                                 X X X                row 5 spans y 5..6, x 2..5
    m = Mask(2, 3, [[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    assert m.outline().tolist() == [[2, 3], [4, 3], [4, 4], [3, 4], [3, 5], [5, 5], [5, 6], [2, 6]]
    # one pixel: its square
    assert Mask(5, 1, [[1]]).outline().tolist() == [[5, 1], [6, 1], [6, 2], [5, 2]]
    # a ring: the outer boundary only
    ring = np.ones((4, 4), bool)
    ring[1:3, 1:3] = False
    assert Mask(0, 0, ring).outline().tolist() == [[0, 0], [4, 0], [4, 4], [0, 4]]
    # two pieces touching at a corner are separate; the larger one is outlined
    pieces = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
    assert Mask(0, 0, pieces).outline().tolist() == [[0, 0], [2, 0], [2, 2], [0, 2]]


def test_mask_outline_rasterises_back_to_the_mask():
    m = Mask(2, 3, [[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    assert np.array_equal(Polygon(m.outline()).rasterize(10, 10), m.rasterize(10, 10))


def test_mask_checks_and_crops():
    with pytest.raises(AnnotationFormatError, match="at least one painted pixel"):
        Mask(0, 0, np.zeros((2, 2), bool))
    with pytest.raises(AnnotationFormatError, match=">= 0") as info:
        Mask(-1, 0, [[1]])
    assert info.value.field == "x0"
    with pytest.raises(AnnotationFormatError, match="2-D"):
        Mask(0, 0, [1, 1])
    full = np.zeros((10, 12), bool)
    full[4, 7] = full[6, 5] = True
    cropped = Mask.from_image_mask(full)
    assert (cropped.x0, cropped.y0, cropped.mask.tolist()) == (
        5,
        4,
        [[False, False, True], [False, False, False], [True, False, False]],
    )
    assert np.array_equal(cropped.rasterize(10, 12), full)


@pytest.mark.parametrize("shape", one_of_each_shape(), ids=lambda s: s.type)
def test_shape_dict_round_trip(shape: Shape):
    d = shape.to_dict()
    assert next(iter(d)) == "type" and d["type"] == shape.type
    again = shape_from_dict(json.loads(json.dumps(d)))
    assert again == shape and type(again) is type(shape)


def test_unknown_shape_type():
    with pytest.raises(AnnotationFormatError, match="unknown shape type 'circle'") as info:
        shape_from_dict({"type": "circle", "cx": 1, "cy": 1, "r": 2})
    assert info.value.field == "type"


# ----------------------------------------------------------------------------------------
# ROIs and documents
# ----------------------------------------------------------------------------------------
def test_roi_patient_outline_and_pixel_mask():
    roi = ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane())
    # corner (x, y) -> IPP + (x - .5) * .5 * (0, 1, 0) + (y - .5) * .8 * (0, 0, -1)
    np.testing.assert_allclose(
        roi.patient_outline(),
        [[10.0, -99.25, 48.0], [10.0, -97.75, 48.0], [10.0, -97.75, 45.6], [10.0, -99.25, 45.6]],
    )
    mask = roi.pixel_mask()
    assert mask.shape == (20, 16)
    assert pixels(mask) == {(r, c) for r in (3, 4, 5) for c in (2, 3, 4)}


def test_roi_defaults():
    roi = ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane())
    other = ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane())
    assert len(roi.id) == 32 and int(roi.id, 16) >= 0 and roi.id != other.id
    assert roi.created.endswith("Z") and roi.modified == roi.created
    assert roi.tool_version == modic.__version__
    roi.created = roi.modified = T0
    roi.touch()
    assert roi.modified != T0


def test_roi_checks_its_arguments():
    with pytest.raises(AnnotationFormatError, match="does not fit") as info:
        ROI(L4_INF, Mask(14, 0, MASK_3X4), make_plane())  # 16 columns, mask reaches column 17
    assert info.value.field == "shape"
    with pytest.raises(AnnotationFormatError, match="ISO 8601") as info:
        ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane(), created="2024-05-01 10:00")
    assert info.value.field == "created"
    with pytest.raises(AnnotationFormatError, match="ISO 8601"):
        ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane(), created="2024-02-30T10:00:00Z")
    with pytest.raises(AnnotationFormatError, match="RoiLabel"):
        ROI("L4i", Rectangle(2, 3, 5, 6), make_plane())  # type: ignore[arg-type]


def test_annotations_container():
    ann = make_annotations()
    assert len(ann) == 4 and [r.id for r in ann] == ["a", "b", "c", "d"]
    assert [str(r.label) for r in ann.endplates()] == ["L4 inferior", "L5 superior"]
    assert [str(r.label) for r in ann.references()] == ["L4 reference", "L5 reference"]
    assert [r.id for r in ann.find("L4")] == ["a", "b"]
    assert [r.id for r in ann.find("l4", "inferior")] == ["a"]
    assert [r.id for r in ann.find("L5", kind="reference")] == ["d"]
    assert ann.find("L3") == []
    assert ann.get("c").label == L5_SUP
    with pytest.raises(ValueError, match="already"):
        ann.add(ROI(L4_INF, Rectangle(0, 0, 1, 1), make_plane(), id="a"))
    added = ann.add(ROI(RoiLabel.parse("L3i"), Rectangle(0, 0, 1, 1), make_plane(), id="e"))
    assert ann.get("e") is added and ann.modified != T1
    assert ann.remove("b").id == "b" and len(ann) == 4
    with pytest.raises(KeyError):
        ann.get("b")
    with pytest.raises(KeyError):
        ann.remove("zz")
    with pytest.raises(ValueError, match="vertebra"):
        ann.find("L9")


def test_annotations_refuse_duplicate_ids():
    roi = ROI(L4_INF, Rectangle(2, 3, 5, 6), make_plane(), id="x")
    with pytest.raises(AnnotationFormatError, match="duplicate id 'x'") as info:
        Annotations([roi, ROI(L4_REF, Rectangle(2, 3, 5, 6), make_plane(), id="x")])
    assert info.value.field == "rois[1].id"


def test_document_layout():
    d = make_annotations().to_dict()
    assert list(d) == ["format", "version", "study", "tool", "created", "modified", "rois"]
    assert d["format"] == "modic-annotations" and d["version"] == FORMAT_VERSION == "1.1"
    assert d["tool"] == {"name": "modic", "version": modic.__version__}
    roi = d["rois"][0]
    assert list(roi) == [
        "id",
        "label",
        "shape",
        "image",
        "patient",
        "author",
        "created",
        "modified",
        "tool_version",
        "comment",
        "origin",
        "source",
    ]
    assert roi["origin"] == "drawn" and roi["source"] == ""
    assert roi["label"] == {"kind": "endplate", "vertebra": "L4", "endplate": "inferior"}
    assert d["rois"][1]["label"] == {"kind": "reference", "vertebra": "L4", "endplate": None}
    assert roi["shape"] == {"type": "polygon", "points": [[1.0, 1.0], [7.0, 1.0], [4.0, 5.0]]}
    assert roi["image"] == {
        "series_instance_uid": SERIES_UID,
        "sop_instance_uid": SOP_UID,
        "frame_number": 1,
        "rows": 20,
        "columns": 16,
        "image_position_patient": [10.0, -100.0, 50.0],
        "image_orientation_patient": [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
        "pixel_spacing": [0.8, 0.5],
        "series_number": 2,
        "series_description": "t1_tse_sag",
    }
    # (1, 1) -> (10, -100 + .5 * .5, 50 - .5 * .8); (7, 1) -> y + 6 * .5; (4, 5) -> y + 3 * .5, z - 4 * .8
    assert roi["patient"] == {
        "outline_lps": [[10.0, -99.75, 49.6], [10.0, -96.75, 49.6], [10.0, -98.25, 46.4]]
    }


# ----------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", one_of_each_shape(), ids=lambda s: s.type)
def test_file_round_trip_for_each_shape(tmp_path: Path, shape: Shape):
    ann = Annotations([ROI(L4_INF, shape, make_plane(), id="r1", created=T0)], created=T0)
    path = write_annotations(ann, tmp_path / "case7.modic.json")
    assert path == tmp_path / "case7.modic.json"
    first = path.read_bytes()
    again = read_annotations(path)
    assert again == ann
    write_annotations(again, path)
    assert path.read_bytes() == first


def test_file_round_trip_of_a_whole_document(tmp_path: Path):
    ann = make_annotations()
    path = write_annotations(ann, tmp_path / "a.modic.json")
    assert read_annotations(path) == ann
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and '"comment": "é"' in text  # UTF-8, not \u escapes
    assert '"points": [\n' in text and "[1.0, 1.0]" in text  # one point per line
    assert json.loads(text) == ann.to_dict()


def test_written_numbers_are_rounded_but_header_values_exact(tmp_path: Path):
    plane = make_plane(position=(10.123456789012, -100.0, 50.0), pixel_spacing=(0.46875, 0.46875))
    roi = ROI(L4_INF, Polygon([[1.23456, 2.0], [3.0, 4.00049], [5.0, 6.0]]), plane, created=T0)
    path = write_annotations(Annotations([roi], created=T0), tmp_path / "x.modic.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    r = doc["rois"][0]
    assert r["shape"]["points"] == [[1.235, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert r["image"]["image_position_patient"][0] == 10.123456789012
    assert r["image"]["pixel_spacing"] == [0.46875, 0.46875]
    for point in r["patient"]["outline_lps"]:
        assert point == [round(v, 4) for v in point]
    back = read_annotations(path)
    assert back.rois[0].image == plane
    assert back == Annotations([roi], created=T0)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "case7.modic.json"
    path.write_text("old content", encoding="utf-8")
    ann = make_annotations()
    seen: dict[str, Any] = {}
    real_replace = os.replace

    def spying_replace(src: Any, dst: Any) -> None:
        # at the moment of the swap the old file is untouched and the new one complete
        seen["old"] = Path(dst).read_text(encoding="utf-8")
        seen["new"] = Path(src).read_text(encoding="utf-8")
        seen["same_folder"] = Path(src).parent == Path(dst).parent
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    write_annotations(ann, path)
    assert seen["old"] == "old content"
    assert seen["same_folder"]
    assert json.loads(seen["new"]) == ann.to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case7.modic.json"]  # no temporary file left


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "case7.modic.json"
    path.write_text("old content", encoding="utf-8")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="case7.modic.json: cannot write: no space left on the disk"):
        write_annotations(make_annotations(), path)
    assert path.read_text(encoding="utf-8") == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case7.modic.json"]


def test_write_overwrite_and_mode(tmp_path: Path):
    path = tmp_path / "case7.modic.json"
    path.write_text("old content", encoding="utf-8")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_annotations(make_annotations(), path, overwrite=False)
    assert path.read_text(encoding="utf-8") == "old content"
    if os.name == "posix":
        path.chmod(0o640)
    write_annotations(make_annotations(), path)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    with pytest.raises(FileNotFoundError):
        write_annotations(make_annotations(), tmp_path / "missing" / "x.modic.json")


def test_read_names_the_file_and_the_field(tmp_path: Path):
    doc = make_annotations().to_dict()
    doc["rois"][0]["shape"]["points"] = [[1, 1], [5, 5]]
    doc["rois"] = [doc["rois"][1], doc["rois"][2], doc["rois"][0]]
    path = tmp_path / "study1.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AnnotationFormatError) as info:
        read_annotations(path)
    assert str(info.value) == f"{path}: rois[2].shape.points: a polygon needs at least 3 points, got 2"
    assert (info.value.source, info.value.field) == (str(path), "rois[2].shape.points")


def test_read_reports_invalid_json_with_line_and_column(tmp_path: Path):
    path = tmp_path / "bad.modic.json"
    # the comma after "1.0" is missing: the parser stops at the quote opening line 4, column 3
    path.write_text(
        '{\n  "format": "modic-annotations",\n  "version": "1.0"\n  "study": {}\n}\n', encoding="utf-8"
    )
    with pytest.raises(AnnotationFormatError, match="invalid JSON at line 4, column 3") as info:
        read_annotations(path)
    assert str(info.value).startswith(str(path))
    path.write_text('{"format": NaN}', encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match="NaN"):
        read_annotations(path)
    path.write_text('{"format": "modic-annotations", "format": "x"}', encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match="appears twice"):
        read_annotations(path)
    path.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(AnnotationFormatError, match="UTF-8"):
        read_annotations(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match="expected an object"):
        read_annotations(path)


def test_versions(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "v.modic.json"
    doc = make_annotations().to_dict()
    for version in ("2.0", "0.9", "1", 1.0):
        doc["version"] = version
        path.write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(AnnotationFormatError, match=r"reads versions 1\.x") as info:
            read_annotations(path)
        assert info.value.field == "version"
    # a later minor version reads, ignoring fields it added, with a warning
    doc["version"] = "1.3"
    doc["rois"][0]["confidence"] = 0.9
    doc["rois"][0]["shape"]["smoothing"] = 2
    path.write_text(json.dumps(doc), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="modic.annotations"):
        ann = read_annotations(path)
    assert ann == make_annotations()
    assert "1.3" in caplog.text and "ignored" in caplog.text
    # ... but in a 1.0 or 1.1 document an unknown field is an error
    for version in ("1.0", "1.1"):
        doc["version"] = version
        path.write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(AnnotationFormatError, match="unknown field") as info:
            read_annotations(path)
        assert info.value.field == "rois[0].confidence"


def test_a_version_1_0_file_reads_as_drawn_rois(tmp_path: Path):
    """A file written by modic before 1.1 (no origin, no source) reads, its ROIs drawn."""
    doc = make_annotations().to_dict()
    doc["version"] = "1.0"
    for roi in doc["rois"]:
        del roi["origin"], roi["source"]
    path = tmp_path / "old.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    ann = read_annotations(path)
    assert {r.origin for r in ann} == {"drawn"} and {r.source for r in ann} == {""}
    assert ann == make_annotations()


def test_body_and_fat_rois_and_origins_round_trip(tmp_path: Path, validator: Any):
    plane = make_plane()
    rois = [
        ROI(
            RoiLabel.for_body("L4"),
            Rectangle(1, 1, 9, 12),
            plane,
            id="b",
            origin="derived",
            source="TotalSpineSeg labels seg.nii.gz, label 44",
            created=T0,
        ),
        ROI(RoiLabel.for_fat("L4"), Ellipse(12, 4, 2, 2), plane, id="f", created=T0),
        ROI(L4_INF, Rectangle(2, 10, 8, 12), plane, id="e", origin="proposed", created=T0),
        ROI(L4_REF, Rectangle(3, 4, 6, 7), plane, id="r", origin="imported", source="SR 1.2.3", created=T0),
    ]
    ann = Annotations(rois, created=T0)
    path = write_annotations(ann, tmp_path / "a.modic.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == "1.1"
    assert [r["label"]["kind"] for r in doc["rois"]] == ["body", "fat", "endplate", "reference"]
    assert [r["origin"] for r in doc["rois"]] == ["derived", "drawn", "proposed", "imported"]
    validator.validate(doc)
    again = read_annotations(path)
    assert again == ann
    assert [r.id for r in again.bodies()] == ["b"] and [r.id for r in again.fat_regions()] == ["f"]
    assert [r.id for r in again.references()] == ["r"] and [r.id for r in again.endplates()] == ["e"]
    assert [r.id for r in again.find("L4", kind="body")] == ["b"]


def test_an_roi_edited_by_hand_becomes_drawn():
    roi = ROI(
        L4_INF, Rectangle(2, 10, 8, 12), make_plane(), origin="derived", source="SPINEPS label 23", created=T0
    )
    roi.touch()
    assert roi.origin == "derived"
    roi.touch(by_hand=True)
    assert roi.origin == "drawn" and roi.source == "edited by hand from derived: SPINEPS label 23"
    assert roi.modified > T0


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"origin": "guessed"}, "origin", "must be one of 'drawn', 'proposed', 'derived', 'imported'"),
        ({"source": 3}, "source", "must be a string"),
    ],
)
def test_origin_and_source_are_checked(kwargs: dict, field: str, message: str):
    with pytest.raises(AnnotationFormatError, match=message) as info:
        ROI(L4_INF, Rectangle(2, 10, 8, 12), make_plane(), **kwargs)
    assert info.value.field == field


def test_body_and_fat_labels_have_no_endplate():
    with pytest.raises(AnnotationFormatError, match="a body ROI has no endplate") as info:
        RoiLabel("body", "L4", Endplate.INFERIOR)
    assert info.value.field == "endplate"
    with pytest.raises(AnnotationFormatError, match="must be one of 'endplate', 'reference', 'body', 'fat'"):
        RoiLabel("disc", "L4")  # type: ignore[arg-type]


def test_patient_outline_is_checked_but_not_trusted(caplog: pytest.LogCaptureFixture):
    doc = make_annotations().to_dict()
    doc["rois"][1]["patient"]["outline_lps"][0][1] += 0.5  # within 1 mm: silent
    with caplog.at_level(logging.WARNING, logger="modic.annotations"):
        assert Annotations.from_dict(doc) == make_annotations()
    assert caplog.text == ""
    doc["rois"][1]["patient"]["outline_lps"][0][2] += 5.0  # 5 mm off: warned, image form used
    with caplog.at_level(logging.WARNING, logger="modic.annotations"):
        ann = Annotations.from_dict(doc, source="s.modic.json")
    assert ann == make_annotations()
    assert "s.modic.json: rois[1]" in caplog.text and "outline_lps" in caplog.text
    caplog.clear()
    del doc["rois"][1]["patient"]  # optional
    assert Annotations.from_dict(doc) == make_annotations()


def test_roi_from_dict_stands_alone():
    roi = make_annotations().rois[2]
    assert ROI.from_dict(roi.to_dict()) == roi
    bad = roi.to_dict()
    bad["shape"]["x0"] = -1
    with pytest.raises(AnnotationFormatError, match=">= 0") as info:
        ROI.from_dict(bad)
    assert info.value.field == "shape.x0"


def test_annotation_path_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert annotation_path_for("data/case7/") == Path("data/case7.modic.json")
    assert annotation_path_for(Path("data") / "case7") == Path("data/case7.modic.json")
    study = tmp_path / "case9"
    study.mkdir()
    assert annotation_path_for(study) == tmp_path / "case9.modic.json"
    monkeypatch.chdir(study)
    assert annotation_path_for(".") == tmp_path / "case9.modic.json"
    assert not annotation_path_for(study).is_relative_to(study)  # never inside the DICOM folder


# ----------------------------------------------------------------------------------------
# the JSON Schema, and the catalogue of bad documents
# ----------------------------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting ``doc[...] = value`` at a path like ``rois.0.image.rows``."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return mutate


# (name, mutation, field the reader names, words of its message, whether JSON Schema can tell)
# make_annotations(): rois[0] L4 inferior polygon, rois[1] L4 reference rectangle,
# rois[2] L5 superior 3x4 mask, rois[3] L5 reference ellipse.
BAD_DOCUMENTS: list[tuple[str, Callable[[dict[str, Any]], None], str, str, bool]] = [
    ("missing field", _delete("rois.0.image.pixel_spacing"), "rois[0].image.pixel_spacing", "missing", True),
    ("missing rois", _delete("rois"), "rois", "missing", True),
    ("wrong type", _set("rois.0.image.rows", "512"), "rois[0].image.rows", "expected an integer", True),
    ("wrong type of label", _set("rois.0.label", "L4i"), "rois[0].label", "expected an object", True),
    ("bad vertebra", _set("rois.0.label.vertebra", "L6"), "rois[0].label.vertebra", "'L6'", True),
    (
        "endplate on a reference",
        _set("rois.1.label.endplate", "inferior"),
        "rois[1].label.endplate",
        "no endplate",
        True,
    ),
    (
        "endplate ROI without endplate",
        _delete("rois.0.label.endplate"),
        "rois[0].label.endplate",
        "needs",
        True,
    ),
    ("S1 inferior", _set("rois.0.label.vertebra", "S1"), "rois[0].label.endplate", "only a superior", True),
    ("2-point polygon", _set("rois.0.shape.points", [[1, 1], [5, 5]]), "rois[0].shape.points", "got 2", True),
    (
        "3-coordinate point",
        _set("rois.0.shape.points.1", [7, 1, 0]),
        "rois[0].shape.points[1]",
        "2 numbers",
        True,
    ),
    (
        "unknown shape type",
        _set("rois.0.shape.type", "circle"),
        "rois[0].shape.type",
        "unknown shape type",
        True,
    ),
    ("negative radius", _set("rois.3.shape.ry", -2), "rois[3].shape.ry", "> 0", True),
    ("negative mask corner", _set("rois.2.shape.x0", -1), "rois[2].shape.x0", ">= 0", True),
    ("bad version", _set("version", "2.0"), "version", "1.x", True),
    ("not a modic file", _set("format", "dicom-sr"), "format", "not a modic annotation file", True),
    ("frame number 0", _set("rois.0.image.frame_number", 0), "rois[0].image.frame_number", ">= 1", True),
    (
        "zero pixel spacing",
        _set("rois.0.image.pixel_spacing", [0.8, 0]),
        "rois[0].image.pixel_spacing",
        "positive",
        True,
    ),
    ("unknown field", _set("colour", "red"), "colour", "unknown field", True),
    ("bad timestamp", _set("rois.0.created", "yesterday"), "rois[0].created", "ISO 8601", True),
    ("mask bits not base64", _set("rois.2.shape.bits", "h@A="), "rois[2].shape.bits", "base64", True),
    (
        "orientation out of range",
        _set("rois.0.image.image_orientation_patient", [0, 2, 0, 0, 0, -1]),
        "rois[0].image.image_orientation_patient",
        "orthogonal unit vectors",
        True,
    ),
    # Cross-field rules JSON Schema cannot express; the schema says so in its descriptions.
    (
        "mask bits length mismatch",
        _set("rois.2.shape.height", 5),
        "rois[2].shape.bits",
        "needs 3 bytes",
        False,
    ),
    (
        "empty mask",
        _set("rois.2.shape.bits", "AAA="),
        "rois[2].shape.bits",
        "at least one painted pixel",
        False,
    ),
    (
        "non-orthogonal orientation",
        _set("rois.0.image.image_orientation_patient", [0, 1, 0, 0, 1, 0]),
        "rois[0].image.image_orientation_patient",
        "orthogonal unit vectors",
        False,
    ),
]


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = annotation_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_shipped_with_the_package():
    resource = resources.files("modic.schemas").joinpath("annotations-1.1.schema.json")
    assert resource.is_file()
    # the 1.0 schema stays shipped for tools that validate older files
    assert resources.files("modic.schemas").joinpath("annotations-1.0.schema.json").is_file()
    schema = annotation_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("annotations-1.1.schema.json")
    assert annotation_schema() is not schema  # a fresh copy each time


def test_every_schema_field_is_described():
    schema = annotation_schema()
    undescribed: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    undescribed.append(f"{where}.{name}")
            for key, sub in node.items():
                if key != "allOf":  # if/then rules restate fields declared elsewhere
                    walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "#")
    assert undescribed == []
    assert all("description" in d for d in schema["$defs"].values())


def test_written_files_follow_the_schema(tmp_path: Path, validator: Any):
    path = write_annotations(make_annotations(), tmp_path / "a.modic.json")
    assert list(validator.iter_errors(json.loads(path.read_text(encoding="utf-8")))) == []
    empty = write_annotations(Annotations(created=T0), tmp_path / "b.modic.json")
    assert list(validator.iter_errors(json.loads(empty.read_text(encoding="utf-8")))) == []


@pytest.mark.parametrize(
    ("name", "mutate", "field", "words", "schema_can_tell"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS]
)
def test_bad_documents_are_refused_by_reader_and_schema(
    tmp_path: Path,
    validator: Any,
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    words: str,
    schema_can_tell: bool,
):
    doc = copy.deepcopy(make_annotations().to_dict())
    mutate(doc)
    path = tmp_path / "bad.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AnnotationFormatError) as info:
        read_annotations(path)
    assert info.value.field == field, str(info.value)
    assert words in info.value.problem
    assert str(info.value).startswith(f"{path}: {field}: ")

    errors = list(validator.iter_errors(doc))
    if not schema_can_tell:
        assert errors == [], "the schema now catches this: move it to the entries it can tell"
        return
    assert errors, f"the schema accepts the bad document {name!r}"
    # the schema's errors point at the field (or inside it), or at the object missing or holding it
    target = f"$.{field}"
    holder = f"$.{field.rsplit('.', 1)[0]}" if "." in field else "$"

    def paths(error: Any) -> set[str]:
        return {error.json_path} | {p for sub in error.context for p in paths(sub)}

    found = set().union(*(paths(e) for e in errors))
    assert any(p in (target, holder) or p.startswith((target + "[", target + ".")) for p in found), [
        (e.json_path, e.message) for e in errors
    ]


def test_the_valid_base_document_passes_both(validator: Any):
    doc = make_annotations().to_dict()
    assert list(validator.iter_errors(doc)) == []
    assert Annotations.from_dict(doc) == make_annotations()


# ----------------------------------------------------------------------------------------
# hostile and broken files: refused quickly, with the file and the reason, never a hang
# ----------------------------------------------------------------------------------------
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path):
    fifo = tmp_path / "case.modic.json"
    os.mkfifo(fifo)
    with pytest.raises(AnnotationFormatError, match=r"is a FIFO \(named pipe\), not a regular file") as info:
        read_annotations(fifo)
    assert str(fifo) in str(info.value)


def test_a_link_to_a_device_is_refused(tmp_path: Path):
    link = tmp_path / "case.modic.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(AnnotationFormatError, match="is a character device, not a regular file"):
        read_annotations(link)


def test_a_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "case.modic.json"
    folder.mkdir()
    with pytest.raises(AnnotationFormatError, match="is a folder"):
        read_annotations(folder)


def test_a_file_larger_than_the_limit_is_refused_before_reading(tmp_path: Path):
    big = tmp_path / "case.modic.json"
    with open(big, "wb") as f:
        f.truncate(65 * 2**20)  # sparse: costs no disk
    with pytest.raises(AnnotationFormatError, match=r"is 65\.0 MiB, more than the 64 MiB"):
        read_annotations(big)


def test_deep_nesting_is_refused(tmp_path: Path):
    path = tmp_path / "deep.modic.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match="JSON nested too deeply"):
        read_annotations(path)


def test_too_many_rois_are_refused(tmp_path: Path):
    doc = make_annotations().to_dict()
    doc["rois"] = [dict(doc["rois"][0], id=f"r{i}") for i in range(2001)]
    path = tmp_path / "many.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(
        AnnotationFormatError, match="2001 ROIs, more than the 2000 one document may hold"
    ) as info:
        read_annotations(path)
    assert info.value.field == "rois"


def test_a_polygon_with_too_many_points_is_refused_before_its_points_are_checked(tmp_path: Path):
    doc = make_annotations().to_dict()
    doc["rois"][0]["shape"] = {"type": "polygon", "points": [[1.0, 1.0]] * 1_000_000}
    path = tmp_path / "points.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match="1000000 points, more than the 20000") as info:
        read_annotations(path)
    assert info.value.field == "rois[0].shape.points"


@pytest.mark.parametrize(
    ("rows", "columns", "field", "message"),
    [
        (1_000_000, 1_000_000, "rows", "must be at most 16384, got 1000000"),
        (40_000, 40_000, "rows", "must be at most 16384"),
        (8192, 8192, "rows", "a 8192 x 8192 image is larger than the 16777216 pixels"),
    ],
)
def test_a_huge_declared_image_is_refused_before_any_allocation(
    tmp_path: Path, rows: int, columns: int, field: str, message: str
):
    doc = make_annotations().to_dict()
    doc["rois"][0]["image"]["rows"] = rows
    doc["rois"][0]["image"]["columns"] = columns
    del doc["rois"][0]["patient"]
    path = tmp_path / "huge.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=message) as info:
        read_annotations(path)
    assert info.value.field == f"rois[0].image.{field}"


@pytest.mark.parametrize(
    ("value", "message"),
    [(1.3407807929942597e154, r"must be within \+-1e\+09"), (10**400, "a too large integer")],
)
def test_numbers_too_large_for_geometry_are_refused(tmp_path: Path, value: object, message: str):
    """Found by tests/test_fuzz.py: a huge outline coordinate overflowed in the outline check."""
    doc = make_annotations().to_dict()
    doc["rois"][0]["patient"]["outline_lps"][0][0] = value
    path = tmp_path / "big.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=message) as info:
        read_annotations(path)
    assert info.value.field == "rois[0].patient.outline_lps[0][0]"
