"""The image an ROI was drawn on (:class:`ImagePlane`) and the image-coordinate conventions
(:func:`xy_to_rowcol`, :func:`rowcol_to_xy`); see :mod:`modic.annotations`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._jsondoc import (
    as_object,
    check_keys,
    get_str,
)
from ..errors import AnnotationFormatError, GeometryError
from ..geometry import SliceGeometry, slice_normal
from ._common import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    _as_floats,
    _as_int,
    _get_int,
    _get_numbers,
    _last_axis,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..series import Series

logger = logging.getLogger(__name__)


def xy_to_rowcol(xy: ArrayLike) -> NDArray[np.float64]:
    """Image coordinates ``(x, y)`` -> pixel-centre indices ``(row, col)``.

    Parameters
    ----------
    xy : (..., 2) array_like
        ``(x, y)`` with the origin at the top-left corner of the top-left pixel.

    Returns
    -------
    (..., 2) ndarray
        ``(row, col) = (y - 0.5, x - 0.5)``, fractional, as numpy/skimage index them.

    Examples
    --------
    >>> xy_to_rowcol([3.5, 2.5])  # centre of the pixel in row 2, column 3
    array([2., 3.])
    """
    a = _last_axis(xy, 2, "xy")
    return np.stack([a[..., 1] - 0.5, a[..., 0] - 0.5], axis=-1)


def rowcol_to_xy(rowcol: ArrayLike) -> NDArray[np.float64]:
    """Pixel-centre indices ``(row, col)`` -> image coordinates ``(x, y)``.

    Parameters
    ----------
    rowcol : (..., 2) array_like
        ``(row, col)`` indices, possibly fractional.

    Returns
    -------
    (..., 2) ndarray
        ``(x, y) = (col + 0.5, row + 0.5)``.

    Examples
    --------
    >>> rowcol_to_xy([2, 3])
    array([3.5, 2.5])
    """
    a = _last_axis(rowcol, 2, "rowcol")
    return np.stack([a[..., 1] + 0.5, a[..., 0] + 0.5], axis=-1)


_PLANE_JSON_NAMES = {
    "position": "image_position_patient",
    "orientation": "image_orientation_patient",
}


@dataclass(frozen=True)
class ImagePlane:
    """The image an ROI was drawn on: its identity and its DICOM geometry.

    Parameters
    ----------
    series_instance_uid, sop_instance_uid : str
        The DICOM image (non-empty).
    frame_number : int
        1-based frame of a multi-frame image (DICOM convention); 1 for single-frame.
    rows, columns : int
        Matrix size.
    position : (3,) tuple of float
        ImagePositionPatient: LPS mm of the *centre* of the top-left pixel.
    orientation : (6,) tuple of float
        ImageOrientationPatient: row direction cosine (direction of increasing column
        index, image +x), then column direction cosine (increasing row index, image +y).
        Must be two orthogonal unit vectors (within 1 %).
    pixel_spacing : (2,) tuple of float
        PixelSpacing ``(row spacing, column spacing)`` in mm: the distance between
        adjacent rows, then between adjacent columns.
    series_number : int, optional
    series_description : str, optional
        For people reading the file.

    Raises
    ------
    AnnotationFormatError
        Naming the bad argument.
    """

    series_instance_uid: str
    sop_instance_uid: str
    frame_number: int
    rows: int
    columns: int
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing: tuple[float, float]
    series_number: int | None = None
    series_description: str = ""

    def __post_init__(self) -> None:
        for name in ("series_instance_uid", "sop_instance_uid"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise AnnotationFormatError(f"must be a non-empty string, got {value!r}", field=name)
        if not isinstance(self.series_description, str):
            raise AnnotationFormatError(
                f"must be a string, got {type(self.series_description).__name__}", field="series_description"
            )
        object.__setattr__(self, "frame_number", _as_int(self.frame_number, "frame_number", minimum=1))
        object.__setattr__(self, "rows", _as_int(self.rows, "rows", minimum=1))
        object.__setattr__(self, "columns", _as_int(self.columns, "columns", minimum=1))
        for name in ("rows", "columns"):
            if getattr(self, name) > MAX_IMAGE_SIDE:
                raise AnnotationFormatError(
                    f"must be at most {MAX_IMAGE_SIDE}, got {getattr(self, name)}", field=name
                )
        if self.rows * self.columns > MAX_IMAGE_PIXELS:
            raise AnnotationFormatError(
                f"a {self.rows} x {self.columns} image is larger than the {MAX_IMAGE_PIXELS} pixels "
                "(4096 x 4096) an annotated image may have",
                field="rows",
            )
        if self.series_number is not None:
            object.__setattr__(self, "series_number", _as_int(self.series_number, "series_number"))
        object.__setattr__(self, "position", _as_floats(self.position, "position", 3))
        orientation = _as_floats(self.orientation, "orientation", 6)
        try:
            slice_normal(orientation)
        except GeometryError as e:
            raise AnnotationFormatError(str(e), field="orientation") from None
        object.__setattr__(self, "orientation", orientation)
        spacing = _as_floats(self.pixel_spacing, "pixel_spacing", 2)
        if min(spacing) <= 0:
            raise AnnotationFormatError(
                f"must be two positive numbers, got {list(spacing)}", field="pixel_spacing"
            )
        object.__setattr__(self, "pixel_spacing", spacing)

    # -- geometry ---------------------------------------------------------------------
    @property
    def row_cosine(self) -> NDArray[np.float64]:
        """(3,) LPS direction of image +x (increasing column index)."""
        return np.array(self.orientation[:3])

    @property
    def column_cosine(self) -> NDArray[np.float64]:
        """(3,) LPS direction of image +y (increasing row index)."""
        return np.array(self.orientation[3:])

    @property
    def normal(self) -> NDArray[np.float64]:
        """(3,) unit normal ``row_cosine x column_cosine`` (LPS)."""
        return np.array(self._normal)

    @cached_property  # the plane is frozen: computed once, on first use
    def _normal(self) -> tuple[float, ...]:
        return tuple(float(v) for v in slice_normal(self.orientation))

    def pixel_to_patient(self, xy: ArrayLike) -> NDArray[np.float64]:
        """Patient coordinates of image points.

        Parameters
        ----------
        xy : (N, 2) or (2,) array_like
            Image coordinates ``(x, y)``: origin at the top-left corner of the top-left
            pixel, so the centre of pixel ``(row r, col c)`` is ``(c + 0.5, r + 0.5)``.

        Returns
        -------
        (N, 3) or (3,) ndarray
            LPS mm: ``IPP + (x - 0.5) * column_spacing * row_cosine
            + (y - 0.5) * row_spacing * column_cosine``.

        Examples
        --------
        >>> plane = ImagePlane("1.2", "1.2.3", 1, 10, 10, (0, 0, 0), (0, 1, 0, 0, 0, -1), (2.0, 1.0))
        >>> plane.pixel_to_patient([3.5, 1.5])  # centre of row 1, column 3
        array([ 0.,  3., -2.])
        """
        a = np.asarray(xy, dtype=float)
        single = a.ndim == 1
        a = _last_axis(a, 2, "xy").reshape(-1, 2)
        row_spacing, col_spacing = self.pixel_spacing
        p = (
            np.asarray(self.position)
            + (a[:, 0:1] - 0.5) * col_spacing * self.row_cosine
            + (a[:, 1:2] - 0.5) * row_spacing * self.column_cosine
        )
        return p[0] if single else p

    def patient_to_pixel(self, lps: ArrayLike) -> NDArray[np.float64]:
        """Image coordinates of patient points, projected onto the image plane.

        Parameters
        ----------
        lps : (N, 3) or (3,) array_like
            LPS mm.

        Returns
        -------
        (N, 2) or (2,) ndarray
            ``(x, y)`` image coordinates (top-left pixel corner at 0); the distance from
            the plane is dropped (see :meth:`distance_to_plane`).
        """
        p = np.asarray(lps, dtype=float)
        single = p.ndim == 1
        d = _last_axis(p, 3, "lps").reshape(-1, 3) - np.asarray(self.position)
        row_spacing, col_spacing = self.pixel_spacing
        x = d @ self.row_cosine / col_spacing + 0.5
        y = d @ self.column_cosine / row_spacing + 0.5
        out = np.stack([x, y], axis=1)
        return out[0] if single else out

    def distance_to_plane(self, lps: ArrayLike) -> NDArray[np.float64]:
        """(N,) signed distance in mm of LPS points from the image plane, along :attr:`normal`."""
        p = _last_axis(lps, 3, "lps").reshape(-1, 3)
        return np.asarray((p - np.asarray(self.position)) @ self.normal, dtype=float)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_geometry(
        cls,
        geometry: SliceGeometry,
        slice_index: int,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_number: int = 1,
        *,
        series_number: int | None = None,
        series_description: str = "",
    ) -> ImagePlane:
        """The plane of one slice of a :class:`~modic.geometry.SliceGeometry`.

        Parameters
        ----------
        geometry : SliceGeometry
        slice_index : int
            0-based slice of the geometry (slices ordered along the normal).
        series_instance_uid, sop_instance_uid : str
            Identity of that slice's image.
        frame_number : int
            1-based frame number within its file (1 for single-frame files).
        series_number, series_description : optional
        """
        n = geometry.shape[0]
        if not 0 <= int(slice_index) < n:
            raise IndexError(f"slice_index {slice_index} outside 0..{n - 1}")
        return cls(
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
            frame_number=frame_number,
            rows=geometry.rows,
            columns=geometry.columns,
            position=tuple(float(v) for v in geometry.positions[int(slice_index)]),  # type: ignore[arg-type]
            orientation=tuple(float(v) for v in geometry.orientation),  # type: ignore[arg-type]
            pixel_spacing=(float(geometry.pixel_spacing[0]), float(geometry.pixel_spacing[1])),
            series_number=series_number,
            series_description=series_description,
        )

    @classmethod
    def from_series(cls, series: Series, slice_index: int) -> ImagePlane:
        """The plane of slice ``slice_index`` (0-based, along the normal) of a scanned series."""
        if series.geometry is None:
            raise GeometryError(
                f"series {series.label()} has no consistent geometry: {'; '.join(series.problems)}"
            )
        frame = series.frames[slice_index]
        return cls.from_geometry(
            series.geometry,
            slice_index,
            series.series_uid,
            frame.sop_instance_uid,
            frame.frame_index + 1,
            series_number=series.number,
            series_description=series.description,
        )

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (header values written exactly)."""
        return {
            "series_instance_uid": self.series_instance_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "frame_number": self.frame_number,
            "rows": self.rows,
            "columns": self.columns,
            "image_position_patient": list(self.position),
            "image_orientation_patient": list(self.orientation),
            "pixel_spacing": list(self.pixel_spacing),
            "series_number": self.series_number,
            "series_description": self.series_description,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> ImagePlane:
        """Build from the JSON form; errors name the JSON field."""
        d = as_object(d)
        required = (
            "series_instance_uid",
            "sop_instance_uid",
            "frame_number",
            "rows",
            "columns",
            "image_position_patient",
            "image_orientation_patient",
            "pixel_spacing",
        )
        check_keys(d, required, ("series_number", "series_description"), strict=strict)
        number = d.get("series_number")
        try:
            return cls(
                series_instance_uid=get_str(d, "series_instance_uid"),
                sop_instance_uid=get_str(d, "sop_instance_uid"),
                frame_number=_get_int(d, "frame_number"),
                rows=_get_int(d, "rows"),
                columns=_get_int(d, "columns"),
                position=_get_numbers(d, "image_position_patient", 3),  # type: ignore[arg-type]
                orientation=_get_numbers(d, "image_orientation_patient", 6),  # type: ignore[arg-type]
                pixel_spacing=_get_numbers(d, "pixel_spacing", 2),  # type: ignore[arg-type]
                series_number=None if number is None else _get_int(d, "series_number"),
                series_description=get_str(d, "series_description") if "series_description" in d else "",
            )
        except AnnotationFormatError as e:
            head, sep, rest = e.field.partition("[")
            raise AnnotationFormatError(
                e.problem, field=_PLANE_JSON_NAMES.get(head, head) + sep + rest
            ) from None
