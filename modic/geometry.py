"""Slice geometry: voxel indices <-> patient coordinates, and mapping between series.

Conventions used everywhere in modic
------------------------------------
* Patient coordinates are DICOM LPS millimetres: +x towards the patient's Left, +y
  Posterior, +z Superior (head).
* A volume array is indexed ``(slice, row, col)``. Slices are ordered by increasing
  position along the slice normal ``n = row_cosine x column_cosine``.
* ``row_cosine`` is DICOM ImageOrientationPatient[0:3], the direction in which the
  **column index** increases along a row; ``column_cosine`` is
  ImageOrientationPatient[3:6], the direction in which the **row index** increases.
* ``pixel_spacing`` is DICOM PixelSpacing: ``(row spacing, column spacing)`` -- the
  distance between the centres of adjacent rows, then of adjacent columns.
* Index coordinates are of pixel centres: ``(s, r, c) = (0, 0, 0)`` is the centre of the
  first pixel of the first slice, at ImagePositionPatient of that slice.

The patient position of a voxel is therefore::

    P(s, r, c) = IPP[s] + c * pixel_spacing[1] * row_cosine + r * pixel_spacing[0] * column_cosine

Slice positions are kept per slice (``positions``), so stacks with gaps or uneven
spacing map exactly; :attr:`SliceGeometry.affine` is the regular-grid approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import GeometryError, OutsideVolumeError

__all__ = ["SliceGeometry", "MappedRegion", "map_region", "slice_normal"]

#: Two orientations whose direction cosines differ by less than this are the same.
ORIENTATION_TOLERANCE = 1e-3


def slice_normal(orientation: ArrayLike) -> NDArray[np.float64]:
    """Unit normal of the image plane from ImageOrientationPatient.

    Parameters
    ----------
    orientation : (6,) array_like
        ImageOrientationPatient: row direction cosine then column direction cosine.

    Returns
    -------
    (3,) ndarray
        ``row_cosine x column_cosine``, normalised, in LPS.

    Raises
    ------
    GeometryError
        If the two direction cosines are not unit length and orthogonal.

    Examples
    --------
    >>> slice_normal([0, 1, 0, 0, 0, -1])  # a sagittal image
    array([-1.,  0.,  0.])
    """
    iop = np.asarray(orientation, dtype=float).reshape(-1)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise GeometryError(f"ImageOrientationPatient must be 6 finite numbers, got {iop.tolist()}")
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if abs(nr - 1) > 0.01 or abs(nc - 1) > 0.01 or abs(float(row @ col)) > 0.01:
        raise GeometryError(
            "ImageOrientationPatient is not two orthogonal unit vectors "
            f"(|row|={nr:.3f}, |col|={nc:.3f}, row.col={float(row @ col):.3f})"
        )
    n = np.cross(row / nr, col / nc)
    return np.asarray(n / np.linalg.norm(n), dtype=float)


@dataclass(frozen=True)
class SliceGeometry:
    """Where every voxel of a stack of parallel slices lies in patient space.

    Parameters
    ----------
    positions : (n_slices, 3) array_like
        ImagePositionPatient of each slice (LPS mm), ordered along the slice normal.
    orientation : (6,) array_like
        ImageOrientationPatient shared by all slices.
    pixel_spacing : (2,) array_like
        PixelSpacing ``(row spacing, column spacing)`` in mm.
    rows, columns : int
        Matrix size of each slice.
    slice_thickness : float, optional
        Nominal slice thickness in mm (informational).
    """

    positions: NDArray[np.float64]
    orientation: NDArray[np.float64]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    slice_thickness: float | None = None
    normal: NDArray[np.float64] = field(init=False, repr=False)
    slice_coordinates: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=float).reshape(-1, 3)
        if pos.shape[0] == 0:
            raise GeometryError("a slice geometry needs at least one slice position")
        iop = np.asarray(self.orientation, dtype=float).reshape(-1)
        normal = slice_normal(iop)
        spacing = tuple(float(v) for v in self.pixel_spacing)
        if len(spacing) != 2 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise GeometryError(f"PixelSpacing must be two positive numbers, got {spacing}")
        if self.rows < 1 or self.columns < 1:
            raise GeometryError(f"matrix must be at least 1x1, got {self.rows}x{self.columns}")
        coords = pos @ normal
        if pos.shape[0] > 1 and np.any(np.diff(coords) <= 0):
            raise GeometryError("slice positions must be strictly increasing along the normal")
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "orientation", iop)
        object.__setattr__(self, "pixel_spacing", spacing)
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "slice_coordinates", coords)

    # -- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_slices, rows, columns)``."""
        return (self.positions.shape[0], self.rows, self.columns)

    @property
    def row_cosine(self) -> NDArray[np.float64]:
        """(3,) direction of increasing column index (ImageOrientationPatient[0:3])."""
        return self.orientation[:3]

    @property
    def column_cosine(self) -> NDArray[np.float64]:
        """(3,) direction of increasing row index (ImageOrientationPatient[3:6])."""
        return self.orientation[3:]

    @cached_property  # the geometry is frozen: computed once, on first use
    def slice_spacing(self) -> float:
        """Median distance between adjacent slice centres in mm (thickness if one slice)."""
        if self.positions.shape[0] < 2:
            return float(self.slice_thickness or 1.0)
        return float(np.median(np.diff(self.slice_coordinates)))

    @property
    def affine(self) -> NDArray[np.float64]:
        """(4, 4) affine from ``(slice, row, col, 1)`` to LPS mm, on a regular grid.

        Exact when slices are evenly spaced; otherwise it uses the median spacing, and
        :meth:`index_to_patient` (which uses each slice's own position) should be preferred.
        """
        a = np.eye(4)
        a[:3, 0] = self.normal * self.slice_spacing
        a[:3, 1] = self.column_cosine * self.pixel_spacing[0]
        a[:3, 2] = self.row_cosine * self.pixel_spacing[1]
        a[:3, 3] = self.positions[0]
        return a

    # -- conversions --------------------------------------------------------------------
    def index_to_patient(self, index: ArrayLike) -> NDArray[np.float64]:
        """Patient coordinates of voxel indices.

        Parameters
        ----------
        index : (N, 3) or (3,) array_like
            ``(slice, row, col)`` indices; row and col may be fractional, slice must be
            an integer (slices need not be evenly spaced).

        Returns
        -------
        (N, 3) or (3,) ndarray
            LPS millimetres.
        """
        idx = np.asarray(index, dtype=float)
        single = idx.ndim == 1
        idx = idx.reshape(-1, 3)
        s = np.rint(idx[:, 0]).astype(int)
        if np.any(np.abs(idx[:, 0] - s) > 1e-6):
            raise GeometryError("slice index must be an integer in index_to_patient")
        if np.any((s < 0) | (s >= self.shape[0])):
            raise OutsideVolumeError(f"slice index outside 0..{self.shape[0] - 1}: {s.tolist()}")
        pts = (
            self.positions[s]
            + idx[:, 2:3] * self.pixel_spacing[1] * self.row_cosine
            + idx[:, 1:2] * self.pixel_spacing[0] * self.column_cosine
        )
        return pts[0] if single else pts

    def patient_to_index(self, points: ArrayLike) -> NDArray[np.float64]:
        """Continuous ``(slice, row, col)`` index of patient points.

        The slice coordinate is interpolated between the actual slice positions (and
        extrapolated with the end spacings), so it is exact for uneven stacks.

        Parameters
        ----------
        points : (N, 3) or (3,) array_like
            LPS millimetres.

        Returns
        -------
        (N, 3) or (3,) ndarray
            ``(slice, row, col)`` as floats; values may lie outside the volume.
        """
        p = np.asarray(points, dtype=float)
        single = p.ndim == 1
        p = p.reshape(-1, 3)
        z = p @ self.normal
        zc = self.slice_coordinates
        if zc.size == 1:
            s = (z - zc[0]) / self.slice_spacing
        else:
            s = np.interp(z, zc, np.arange(zc.size, dtype=float))
            lo, hi = z < zc[0], z > zc[-1]
            s[lo] = (z[lo] - zc[0]) / (zc[1] - zc[0])
            s[hi] = zc.size - 1 + (z[hi] - zc[-1]) / (zc[-1] - zc[-2])
        out = np.empty((p.shape[0], 3))
        out[:, 0] = s
        out[:, 1:] = self.patient_to_rowcol(p)
        return out[0] if single else out

    def patient_to_rowcol(self, points: ArrayLike) -> NDArray[np.float64]:
        """Continuous in-plane ``(row, col)`` index of patient points: the last two
        columns of :meth:`patient_to_index`, without the slice coordinate.

        Parameters
        ----------
        points : (N, 3) or (3,) array_like
            LPS millimetres.

        Returns
        -------
        (N, 2) or (2,) ndarray
            ``(row, col)`` as floats; values may lie outside the image.
        """
        p = np.asarray(points, dtype=float)
        single = p.ndim == 1
        d = p.reshape(-1, 3) - self.positions[0]
        out = np.empty((d.shape[0], 2))
        out[:, 0] = d @ self.column_cosine / self.pixel_spacing[0]
        out[:, 1] = d @ self.row_cosine / self.pixel_spacing[1]
        return out[0] if single else out

    def nearest_slice(self, points: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The slice nearest to each point, and the point's distance to its plane.

        Parameters
        ----------
        points : (N, 3) array_like
            LPS millimetres.

        Returns
        -------
        slices : (N,) ndarray of int
        distance : (N,) ndarray of float
            Signed distance in mm from the slice plane along the normal.
        """
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        z = p @ self.normal
        k = np.abs(z[:, None] - self.slice_coordinates[None, :]).argmin(axis=1)
        return k, z - self.slice_coordinates[k]

    def contains_in_plane(self, rowcol: ArrayLike) -> NDArray[np.bool_]:
        """Whether ``(row, col)`` points lie inside the image (pixel edges included)."""
        rc = np.asarray(rowcol, dtype=float).reshape(-1, 2)
        return (
            (rc[:, 0] >= -0.5)
            & (rc[:, 0] <= self.rows - 0.5)
            & (rc[:, 1] >= -0.5)
            & (rc[:, 1] <= self.columns - 0.5)
        )


@dataclass(frozen=True)
class MappedRegion:
    """A planar region mapped onto one slice of another series.

    Attributes
    ----------
    slice_index : int
        Slice of the target series used.
    rowcol : (N, 2) ndarray
        The region's points in the target slice, ``(row, col)`` pixel-centre indices.
    distance_mm : float
        Distance from the region's centroid to the target slice plane (mm, signed
        along the target normal).
    max_distance_mm : float
        Largest absolute distance of any point of the region from that plane (non-zero
        when the two series are not parallel).
    """

    slice_index: int
    rowcol: NDArray[np.float64]
    distance_mm: float
    max_distance_mm: float


def map_region(
    points: ArrayLike,
    target: SliceGeometry,
    *,
    tolerance: float | None = None,
    name: str = "target series",
) -> MappedRegion:
    """Map a planar region given in patient coordinates onto the nearest slice of a series.

    Parameters
    ----------
    points : (N, 3) array_like
        The region's points (e.g. polygon vertices) in LPS mm.
    target : SliceGeometry
        Geometry of the series to map onto.
    tolerance : float, optional
        Largest allowed distance from the region's centroid to the chosen slice, in mm.
        Default: half the target's slice spacing.
    name : str
        How to name the target series in error messages.

    Returns
    -------
    MappedRegion

    Raises
    ------
    OutsideVolumeError
        If no slice lies within ``tolerance`` of the region, or part of the region falls
        outside the target's field of view.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    if p.shape[0] == 0:
        raise GeometryError("cannot map an empty region")
    tol = target.slice_spacing / 2 if tolerance is None else float(tolerance)
    centroid = p.mean(axis=0)
    (k,), (dist,) = target.nearest_slice(centroid[None, :])
    if abs(dist) > tol + 1e-6:
        raise OutsideVolumeError(
            f"region centred at LPS ({centroid[0]:.1f}, {centroid[1]:.1f}, {centroid[2]:.1f}) mm is "
            f"{abs(dist):.1f} mm from the nearest slice of {name} (allowed {tol:.1f} mm, "
            f"half the slice spacing); the region lies outside its slices"
        )
    rowcol = target.patient_to_rowcol(p)
    inside = target.contains_in_plane(rowcol)
    if not np.all(inside):
        raise OutsideVolumeError(
            f"{int((~inside).sum())} of {len(inside)} points of the region fall outside the "
            f"{target.rows}x{target.columns} field of view of {name}"
        )
    d_all = p @ target.normal - target.slice_coordinates[k]
    return MappedRegion(
        slice_index=int(k),
        rowcol=rowcol,
        distance_mm=float(dist),
        max_distance_mm=float(np.abs(d_all).max()),
    )
