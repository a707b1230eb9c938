"""Measure a region of interest on every sequence of a study.

An ROI is drawn on one image (usually a sagittal T1 slice). It is rasterised there (the
pixels whose centres lie inside it), each pixel centre is taken to patient coordinates
(LPS mm), and every sequence of the study is sampled at those same patient positions:
on the slice of that sequence nearest to the ROI (refused when none lies within half a
slice spacing), with bilinear interpolation in-plane. So the T1, T2 and STIR values of a
sample describe the same piece of tissue, which is what voxel-by-voxel typing needs, even
though the series differ in matrix, field of view and slice positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .annotations import ROI, VERTEBRAE
from .errors import MeasurementError, OutsideVolumeError
from .geometry import MappedRegion, map_region
from .sequence import Role
from .volume import Volume

__all__ = ["RegionSample", "sample_region", "choose_reference", "bilinear", "mask_indices"]


@dataclass(frozen=True)
class RegionSample:
    """The signal of an ROI on one sequence.

    Attributes
    ----------
    role : Role
    series_key : str
        Which series (number / stack key).
    series_uid : str
    slice_index : int
        Slice of that series used (0-based, along the slice normal).
    distance_mm : float
        Distance from the ROI's centroid to that slice's plane.
    values : (n,) ndarray of float
        Signal at the ROI's n pixel centres, in the ROI's own pixel order.
    """

    role: Role
    series_key: str
    series_uid: str
    slice_index: int
    distance_mm: float
    values: NDArray[np.float64]

    @property
    def n_voxels(self) -> int:
        return int(self.values.size)


def bilinear(image: NDArray[np.floating], rowcol: NDArray[np.float64]) -> NDArray[np.float64]:
    """Bilinear interpolation of a 2-D image at fractional ``(row, col)`` pixel-centre indices.

    Parameters
    ----------
    image : (rows, cols) ndarray
    rowcol : (N, 2) ndarray
        Positions; those within half a pixel outside the image are clamped to the edge.

    Returns
    -------
    (N,) ndarray of float64

    Examples
    --------
    >>> bilinear(np.array([[0.0, 10.0], [20.0, 30.0]]), np.array([[0.5, 0.5], [0.0, 1.0]]))
    array([15., 10.])
    """
    rows, cols = image.shape
    r = np.clip(rowcol[:, 0], 0, rows - 1)
    c = np.clip(rowcol[:, 1], 0, cols - 1)
    r0 = np.minimum(np.floor(r).astype(np.intp), max(rows - 2, 0))
    c0 = np.minimum(np.floor(c).astype(np.intp), max(cols - 2, 0))
    fr, fc = r - r0, c - c0
    # the four neighbours (r0, c0), (r0, c1), (r1, c0), (r1, c1), where r1 = r0 + 1 except
    # on an image one row high (c1 the same), gathered in one call by their flat indices
    # and then taken to float64: the same values as converting the whole image first
    i00 = r0 * cols + c0
    idx = np.empty((4, i00.size), dtype=np.intp)
    idx[0] = i00
    np.add(i00, 1 if cols > 1 else 0, out=idx[1])
    np.add(i00, cols if rows > 1 else 0, out=idx[2])
    np.add(idx[2], 1 if cols > 1 else 0, out=idx[3])
    v = image.reshape(-1).take(idx).astype(np.float64)
    wc = 1 - fc
    top = v[0] * wc + v[1] * fc
    bottom = v[2] * wc + v[3] * fc
    return np.asarray(top * (1 - fr) + bottom * fr)


def mask_indices(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], ...]:
    """``np.nonzero(mask)``: the indices of the True elements, one array per axis, in
    row-major order.

    Found from the flat indices (``np.flatnonzero``), which is several times faster than
    ``np.nonzero`` on a multi-dimensional mask that is mostly False (an ROI in its image,
    the fat of a volume); the same arrays.

    Examples
    --------
    >>> mask_indices(np.array([[False, True], [True, True]]))
    (array([0, 1, 1]), array([1, 0, 1]))
    """
    return np.unravel_index(np.flatnonzero(mask), mask.shape)


def roi_points(roi: ROI) -> NDArray[np.float64]:
    """(n, 3) LPS positions of the centres of the pixels an ROI covers on its own image."""
    mask = roi.pixel_mask()
    rr, cc = mask_indices(mask)
    if rr.size == 0:
        raise MeasurementError(f"ROI {roi.label} ({roi.id}) covers no pixel centre of its image")
    xy = np.column_stack([cc + 0.5, rr + 0.5])  # pixel centres in image (x, y) coordinates
    return np.asarray(roi.image.pixel_to_patient(xy), dtype=float)


def sample_region(
    roi: ROI,
    volume: Volume,
    *,
    points: NDArray[np.float64] | None = None,
    tolerance: float | None = None,
) -> RegionSample:
    """Sample a volume at the pixel centres of an ROI.

    Parameters
    ----------
    roi : ROI
    volume : Volume
        Any series of the same frame of reference.
    points : (n, 3) ndarray, optional
        The ROI's pixel centres in LPS (computed when not given).
    tolerance : float, optional
        Largest distance (mm) from the ROI to the slice used; default half the slice
        spacing of the volume.

    Raises
    ------
    MeasurementError
        If the ROI falls outside the volume's slices or field of view.
    """
    return _sample_mapped(roi, volume, roi_points(roi) if points is None else points, tolerance)[0]


def _sample_mapped(
    roi: ROI, volume: Volume, points: NDArray[np.float64], tolerance: float | None = None
) -> tuple[RegionSample, MappedRegion]:
    """:func:`sample_region`, and the ROI's points mapped onto the volume's slice used."""
    series = volume.series
    role = series.role
    try:
        m = map_region(
            points, volume.geometry, tolerance=tolerance, name=f"{role.value} series {series.label()}"
        )
    except OutsideVolumeError as exc:
        raise MeasurementError(f"ROI {roi.label}: {exc}") from None
    values = bilinear(volume.array[m.slice_index], m.rowcol)
    sample = RegionSample(
        role=role,
        series_key=series.key,
        series_uid=series.series_uid,
        slice_index=m.slice_index,
        distance_mm=m.distance_mm,
        values=values,
    )
    return sample, m


def _centroid(roi: ROI) -> NDArray[np.float64]:
    return np.asarray(roi.patient_outline().mean(axis=0), dtype=float)


def choose_reference(roi: ROI, references: list[ROI]) -> tuple[ROI, str | None]:
    """The reference marrow ROI to compare an endplate ROI with.

    The reference of the same vertebra is preferred (the nearest one, if several); when
    that vertebra has none, the reference of the nearest vertebra is used (the nearest in
    space among equally distant levels) and a warning says so.

    Returns
    -------
    reference : ROI
    warning : str or None

    Raises
    ------
    MeasurementError
        If there is no reference ROI at all.
    """
    if not references:
        raise MeasurementError(
            f"no reference ROI: mark normal marrow (label 'reference') in {roi.label.vertebra} "
            "or a nearby vertebra, away from the endplates"
        )
    here = _centroid(roi)
    level = VERTEBRAE.index(roi.label.vertebra)

    def key(ref: ROI) -> tuple[int, float]:
        return (
            abs(VERTEBRAE.index(ref.label.vertebra) - level),
            float(np.linalg.norm(_centroid(ref) - here)),
        )

    keys = [key(ref) for ref in references]
    i = min(range(len(references)), key=keys.__getitem__)  # the first of the smallest, as min()
    best = references[i]
    if best.label.vertebra == roi.label.vertebra:
        return best, None
    gap = keys[i][0]
    return best, (
        f"no reference marrow in {roi.label.vertebra}; used the {best.label.vertebra} reference "
        f"({gap} level{'s' if gap > 1 else ''} away): coil sensitivity differs more with distance"
    )
