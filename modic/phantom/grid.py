"""Imaging grids: where each pixel of each slice lies in patient space.

Conventions (DICOM): patient coordinates are LPS millimetres (+x patient left,
+y posterior, +z superior).  A slice has a *row direction* (along a row, i.e. increasing
column index; the first ImageOrientationPatient triplet), a *column direction*
(increasing row index; the second triplet) and PixelSpacing = (row spacing, column
spacing): the centre of pixel ``(r, c)`` is ``ipp + c * col_spacing * row_dir +
r * row_spacing * col_dir``.  Volumes are ``(slice, row, col)`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Stack", "rotation_about", "plane_axes", "stack_for_plane"]

FloatArray = NDArray[np.float64]


def rotation_about(axis: FloatArray, angle_deg: float) -> FloatArray:
    """3x3 rotation matrix about unit vector ``axis`` by ``angle_deg`` (right hand)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.deg2rad(angle_deg)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    rot: FloatArray = np.eye(3) + np.sin(t) * k + (1.0 - np.cos(t)) * (k @ k)
    return rot


def plane_axes(plane: str) -> tuple[FloatArray, FloatArray]:
    """Untilted (row direction, column direction) of a plane, LPS unit vectors.

    Sagittal rows run anterior -> posterior and columns superior -> inferior; coronal rows
    right -> left, columns superior -> inferior; axial rows right -> left, columns
    anterior -> posterior (the usual scanner conventions).
    """
    if plane == "sagittal":
        return np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    if plane == "coronal":
        return np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])
    if plane == "axial":
        return np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    raise ValueError(f"plane must be 'sagittal', 'coronal' or 'axial', got {plane!r}")


@dataclass(frozen=True)
class Stack:
    """A stack of parallel, equally spaced slices.

    Attributes
    ----------
    center : (3,) ndarray
        Centre of the stack, LPS mm (the centre of the middle slice's centre pixel
        position when ``rows``/``cols`` are odd).
    row_dir, col_dir : (3,) ndarray
        Unit direction cosines (ImageOrientationPatient).
    rows, cols : int
        Matrix.
    row_spacing, col_spacing : float
        PixelSpacing, mm.
    thickness : float
        SliceThickness, mm.
    spacing : float
        Distance between slice centres, mm (SpacingBetweenSlices).
    n_slices : int
        Number of slices.
    plane : str
        ``"sagittal"``, ``"coronal"`` or ``"axial"``.
    """

    center: FloatArray
    row_dir: FloatArray
    col_dir: FloatArray
    rows: int
    cols: int
    row_spacing: float
    col_spacing: float
    thickness: float
    spacing: float
    n_slices: int
    plane: str

    @property
    def normal(self) -> FloatArray:
        """Slice normal, ``row_dir x col_dir`` (LPS unit vector)."""
        n: FloatArray = np.cross(self.row_dir, self.col_dir)
        return n

    @property
    def slice_offsets(self) -> FloatArray:
        """(n_slices,) offsets of the slice centres along the normal from :attr:`center`."""
        k = np.arange(self.n_slices, dtype=float)
        offsets: FloatArray = (k - (self.n_slices - 1) / 2.0) * self.spacing
        return offsets

    def image_position(self, k: int) -> FloatArray:
        """ImagePositionPatient (centre of pixel (0, 0)) of slice ``k``, LPS mm."""
        ipp: FloatArray = (self.center + self.slice_offsets[k] * self.normal
                           - (self.cols - 1) / 2.0 * self.col_spacing * self.row_dir
                           - (self.rows - 1) / 2.0 * self.row_spacing * self.col_dir)
        return ipp

    def pixel_to_lps(self, k: int, r: NDArray[np.floating], c: NDArray[np.floating]
                     ) -> FloatArray:
        """LPS mm of pixel centres ``(r, c)`` (float arrays) on slice ``k``; shape (..., 3)."""
        ipp = self.image_position(k)
        rr = np.asarray(r, dtype=float)[..., None]
        cc = np.asarray(c, dtype=float)[..., None]
        out: FloatArray = (ipp + cc * self.col_spacing * self.row_dir
                           + rr * self.row_spacing * self.col_dir)
        return out

    def fine_axes(self, supersample: tuple[int, int, int]
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Sub-sample offsets from :attr:`center` along normal, column and row directions.

        Parameters
        ----------
        supersample : tuple of int
            ``(ms, mr, mc)`` sub-samples through the slice thickness, along the column
            direction (per row) and along the row direction (per column).

        Returns
        -------
        a : (n_slices * ms,) ndarray
            Offsets along :attr:`normal`; sub-samples of slice ``k`` are ``a[k*ms:(k+1)*ms]``
            and span the slice *thickness* (not the spacing).
        b : (rows * mr,) ndarray
            Offsets along :attr:`col_dir`.
        c : (cols * mc,) ndarray
            Offsets along :attr:`row_dir`.
        """
        ms, mr, mc = supersample
        sub_s = ((np.arange(ms) + 0.5) / ms - 0.5) * self.thickness
        sub_r = ((np.arange(mr) + 0.5) / mr - 0.5) * self.row_spacing
        sub_c = ((np.arange(mc) + 0.5) / mc - 0.5) * self.col_spacing
        a = (self.slice_offsets[:, None] + sub_s[None, :]).ravel()
        rr = (np.arange(self.rows) - (self.rows - 1) / 2.0) * self.row_spacing
        cc = (np.arange(self.cols) - (self.cols - 1) / 2.0) * self.col_spacing
        b = (rr[:, None] + sub_r[None, :]).ravel()
        c = (cc[:, None] + sub_c[None, :]).ravel()
        return a, b, c

    def key(self) -> tuple[float, ...]:
        """A hashable summary of the geometry (equal keys = identical grids)."""
        return (*np.round(self.center, 6), *np.round(self.row_dir, 9),
                *np.round(self.col_dir, 9), self.rows, self.cols, self.row_spacing,
                self.col_spacing, self.thickness, self.spacing, self.n_slices)


def stack_for_plane(plane: str, center: FloatArray, rows: int, cols: int,
                    fov_mm: tuple[float, float], n_slices: int, thickness: float,
                    gap: float, tilt_deg: tuple[float, float] = (0.0, 0.0),
                    normal: FloatArray | None = None) -> Stack:
    """Build a :class:`Stack`.

    Parameters
    ----------
    plane : str
        ``"sagittal"``, ``"coronal"`` or ``"axial"``.
    center : (3,) array_like
        Stack centre, LPS mm.
    rows, cols : int
        Matrix.
    fov_mm : tuple of float
        (rows * row spacing, cols * column spacing), mm.
    n_slices : int
        Number of slices.
    thickness, gap : float
        Slice thickness and gap, mm.
    tilt_deg : tuple of float
        Rotation about the row direction, then about the column direction, degrees.
    normal : (3,) array_like, optional
        For axial stacks: the wanted slice normal before the tilt (e.g. a disc's normal);
        the row direction is kept as close to patient left as possible.
    """
    row, col = plane_axes(plane)
    if normal is not None:
        n = np.asarray(normal, dtype=float)
        n = n / np.linalg.norm(n)
        row = row - (row @ n) * n
        row = row / np.linalg.norm(row)
        col = np.cross(n, row)
    rot1 = rotation_about(row, tilt_deg[0])
    row, col = rot1 @ row, rot1 @ col
    rot2 = rotation_about(col, tilt_deg[1])
    row, col = rot2 @ row, rot2 @ col
    row = np.where(np.abs(row) < 1e-12, 0.0, row)
    col = np.where(np.abs(col) < 1e-12, 0.0, col)
    return Stack(center=np.asarray(center, dtype=float), row_dir=row, col_dir=col,
                 rows=rows, cols=cols, row_spacing=fov_mm[0] / rows,
                 col_spacing=fov_mm[1] / cols, thickness=thickness,
                 spacing=thickness + gap, n_slices=n_slices, plane=plane)
