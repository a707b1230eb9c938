"""modic.bands: endplate bands, body and reference from body masks whose geometry is stated
here (rectangles and domed bodies drawn with skimage at known tilts and pixel sizes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from skimage.draw import polygon

from modic.bands import BandError, BandSettings, endplate_bands, image_direction


def body_mask(
    height: float,
    length: float,
    tilt_deg: float,
    spacing: tuple[float, float],
    dome: float = 0.0,
    shape: tuple[int, int] = (120, 120),
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A body ``height`` x ``length`` mm, its axis ``tilt_deg`` from the image's head
    direction (-row), the endplates concave by ``dome`` mm at their centre (a parabola).

    Returns the mask, its centre (mm, (row, col)), axis and across unit vectors."""
    th = math.radians(tilt_deg)
    axis = np.array([-math.cos(th), math.sin(th)])
    across = np.array([-axis[1], axis[0]])
    centre = np.array(shape, dtype=float) / 2 * np.array(spacing)
    u = np.linspace(-length / 2, length / 2, 81)
    conc = dome * (1 - (2 * u / length) ** 2)
    top = [centre + x * across + (height / 2 - c) * axis for x, c in zip(u, conc, strict=True)]
    bottom = [centre + x * across - (height / 2 - c) * axis for x, c in zip(u[::-1], conc[::-1], strict=True)]
    outline = np.array(top + bottom) / np.array(spacing)
    m = np.zeros(shape, dtype=bool)
    rr, cc = polygon(outline[:, 0], outline[:, 1], shape)
    m[rr, cc] = True
    return m, centre, axis, across


def local(
    mask: NDArray[np.bool_],
    spacing: tuple[float, float],
    centre: NDArray[np.float64],
    axis: NDArray[np.float64],
    across: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r, c = np.nonzero(mask)
    p = np.stack([r * spacing[0], c * spacing[1]], axis=1) - centre
    return p @ across, p @ axis


@pytest.mark.parametrize(
    "tilt, spacing",
    [(0.0, (1.0, 1.0)), (12.0, (0.8, 0.8)), (25.0, (1.1, 1.1)), (38.0, (0.7, 1.0)), (-20.0, (0.9, 0.9))],
)
def test_bands_follow_tilted_endplates(tilt: float, spacing: tuple[float, float]) -> None:
    height, length = 27.0, 38.0
    m, centre, axis, across = body_mask(height, length, tilt, spacing)
    r = endplate_bands(m, spacing, up=(-1.0, 0.0))
    assert r.tilt_deg == pytest.approx(abs(tilt), abs=1.5)
    assert r.body_height_mm == pytest.approx(height, abs=max(spacing))
    assert r.endplate_length_mm == pytest.approx(length, abs=2 * max(spacing))
    px = max(spacing)
    s = BandSettings()
    for mask, sign in ((r.superior, 1.0), (r.inferior, -1.0)):
        assert mask is not None and mask.any()
        assert not (mask & ~m).any()  # inside the body
        u, v = local(mask, spacing, centre, axis, across)
        depth = height / 2 - sign * v  # from the true endplate surface, along the true axis
        # the pixel centres lie inset..inset+height under the surface, within a pixel
        assert depth.min() >= s.inset_mm - px and depth.min() <= s.inset_mm + px
        assert depth.max() <= s.inset_mm + s.height_mm + px
        assert depth.max() >= s.inset_mm + s.height_mm - px
        # central four fifths of the length
        assert np.abs(u).max() <= 0.5 * 0.8 * length + px
        assert np.abs(u).max() >= 0.5 * 0.8 * length - 2 * px
    assert r.reference is not None
    u, v = local(r.reference, spacing, centre, axis, across)
    assert np.abs(v).max() <= 0.2 * height + px  # the middle 40 % of the height
    assert np.abs(u).max() <= 0.25 * length + px  # the middle half of the length
    assert (height / 2 - np.abs(v)).min() > s.inset_mm + s.height_mm  # away from both bands


def test_concave_endplates_are_followed_strip_by_strip() -> None:
    spacing = (0.9, 0.9)
    height, length, dome = 26.0, 36.0, 3.0
    m, centre, axis, across = body_mask(height, length, 8.0, spacing, dome=dome)
    r = endplate_bands(m, spacing, up=(-1.0, 0.0))
    assert r.superior is not None
    u, v = local(r.superior, spacing, centre, axis, across)
    surface = height / 2 - dome * (1 - (2 * u / length) ** 2)
    depth = surface - v
    assert depth.min() >= 1.0 - 0.8 and depth.max() <= 6.0 + 0.8
    # the band dips in the centre with the surface
    assert v[np.abs(u) < 3].max() < v[np.abs(u) > 12].max() - 1.5


def test_head_direction_and_custom_settings() -> None:
    # rows run to the head (orientation (0, 1, 0, 0, 0, 1)): the superior band is at the bottom
    up = image_direction([0, 0, 1], [0, 1, 0, 0, 0, 1])
    assert up.tolist() == [1.0, 0.0]
    m = np.zeros((60, 60), dtype=bool)
    m[10:40, 8:50] = True  # rows 10..39
    s = BandSettings(height_mm=3.0, inset_mm=0.0, length_fraction=1.0)
    r = endplate_bands(m, (1.0, 1.0), up, s)
    assert r.superior is not None and r.inferior is not None
    rows = np.nonzero(r.superior.any(axis=1))[0]
    assert rows.min() == 37 and rows.max() == 39  # centres 0.5-2.5 mm under the edge at row 39.5
    rows = np.nonzero(r.inferior.any(axis=1))[0]
    assert rows.min() == 10 and rows.max() == 12
    cols = np.nonzero(r.superior.any(axis=0))[0]
    assert cols.min() == 8 and cols.max() == 49


def test_reference_position_moves_the_reference_along_the_height() -> None:
    # a 30 mm tall box, rows 10..39 on 1 mm pixels, the head up the image (row 10 superior)
    m = np.zeros((60, 60), dtype=bool)
    m[10:40, 8:50] = True
    centre = endplate_bands(m, (1.0, 1.0), (-1.0, 0.0)).reference
    low = endplate_bands(m, (1.0, 1.0), (-1.0, 0.0),
                         BandSettings(reference_position=0.3, reference_height_fraction=0.2)).reference
    assert centre is not None and low is not None
    rows = np.nonzero(centre.any(axis=1))[0]
    assert rows.min() >= 10 + 9 and rows.max() <= 39 - 9  # the middle 0.4 of 30 mm: 12 mm
    rows = np.nonzero(low.any(axis=1))[0]
    # 0.2-0.4 of the height above the inferior edge (row 39.5): rows 27.5-33.5 mm
    assert rows.min() >= 27 and rows.max() <= 34 and rows.max() > 31


def test_one_surface_only_for_a_cut_body() -> None:
    m, centre, axis, across = body_mask(20.0, 36.0, 30.0, (1.0, 1.0))
    r = endplate_bands(m, (1.0, 1.0), up=(-1.0, 0.0), surfaces=("superior",))
    assert r.inferior is None and r.reference is None and r.superior is not None
    assert any("reference" in n for n in r.notes)
    assert r.tilt_deg == pytest.approx(30.0, abs=1.5)


def test_body_is_cleaned() -> None:
    m = np.zeros((60, 60), dtype=bool)
    m[10:40, 10:50] = True
    m[20:23, 20:23] = False  # a hole
    m[50:53, 50:53] = True  # a speck
    r = endplate_bands(m, (1.0, 1.0), (-1.0, 0.0))
    assert r.body[21, 21] and not r.body[51, 51]
    assert int(r.body.sum()) == 30 * 40


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.zeros((30, 30), dtype=bool), "0 pixels"),
        (np.pad(np.ones((4, 4), dtype=bool), 10), "at least 20"),
        (np.pad(np.ones((5, 30), dtype=bool), 10), "5.0 mm tall"),
    ],
)
def test_bad_bodies(mask: NDArray[np.bool_], message: str) -> None:
    with pytest.raises(BandError, match=message):
        endplate_bands(mask, (1.0, 1.0), (-1.0, 0.0))


def test_bad_arguments() -> None:
    m = np.ones((30, 30), dtype=bool)
    with pytest.raises(ValueError, match="2-D"):
        endplate_bands(np.ones((3, 3, 3), dtype=bool), (1.0, 1.0), (-1.0, 0.0))
    with pytest.raises(ValueError, match="pixel_spacing"):
        endplate_bands(m, (0.0, 1.0), (-1.0, 0.0))
    with pytest.raises(ValueError, match="up"):
        endplate_bands(m, (1.0, 1.0), (0.0, 0.0))
    with pytest.raises(ValueError, match="surfaces"):
        endplate_bands(m, (1.0, 1.0), (-1.0, 0.0), surfaces=("left",))
    with pytest.raises(ValueError, match="height_mm"):
        BandSettings(height_mm=0.1)
    with pytest.raises(ValueError, match="length_fraction"):
        BandSettings(length_fraction=1.5)
    with pytest.raises(ValueError, match="reference_position"):
        BandSettings(reference_position=0.8)  # 0.8 + 0.4 / 2 reaches the superior endplate
    with pytest.raises(ValueError, match="perpendicular"):
        image_direction([1, 0, 0], [0, 1, 0, 0, 0, -1])
