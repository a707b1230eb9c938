"""Regions of interest drawn on sagittal images, and the versioned JSON file that keeps them.

A study's annotations are a list of :class:`ROI`: a *label* (which endplate, or a
reference region of normal marrow in which vertebra), a 2-D *shape* and the *image* it was
drawn on (:class:`ImagePlane`, with that image's DICOM geometry, so that the shape can be
put into patient coordinates and mapped to other series without reopening the DICOM files).

Coordinate conventions
----------------------
* **Image coordinates** ``(x, y)``: ``x`` runs along a row (the column direction of the
  array), ``y`` down the columns (the row direction), in pixels, with the origin at the
  **top-left corner of the top-left pixel**. The centre of pixel ``(row r, col c)`` is
  therefore ``(x, y) = (c + 0.5, r + 0.5)``. This is the DICOM SR SCOORD convention (PS3.3
  C.18.6.1.1). :func:`rowcol_to_xy` and :func:`xy_to_rowcol` are the only conversions to
  and from numpy/skimage ``(row, col)`` pixel-centre indices.
* **Patient coordinates** are DICOM LPS millimetres (see :mod:`modic.geometry`). A point
  ``(x, y)`` of an image maps to::

      P = IPP + (x - 0.5) * column_spacing * row_cosine + (y - 0.5) * row_spacing * column_cosine

  where IPP (ImagePositionPatient) is the centre of the top-left pixel.
* **Rasterisation** (:meth:`Polygon.rasterize` etc.) selects the pixels whose *centres*
  lie inside the shape. A centre exactly on an edge of a polygon or rectangle counts as
  inside on the left/top edges and outside on the right/bottom edges (the crossing-number
  rule; exact for axis-parallel edges), so that shapes sharing an edge never share a pixel.
  A centre exactly on an ellipse counts as inside.

File format (version 1.0)
-------------------------
UTF-8 JSON, by default in a sibling of the study folder (:func:`annotation_path_for`:
``data/case7/`` -> ``data/case7.modic.json``), never inside the DICOM folder. The JSON Schema
(draft 2020-12) is shipped as ``modic/schemas/annotations-1.0.schema.json``
(:func:`annotation_schema`)::

    {
      "format": "modic-annotations",            # constant
      "version": "1.0",                         # "<major>.<minor>"
      "study": {"study_instance_uid": "1.2...", "frame_of_reference_uid": "1.2...",
                "description": ""},             # description optional
      "tool": {"name": "modic", "version": "0.1.0.dev0"},   # the program that made the document
      "created": "2024-05-01T10:00:00.000Z",    # ISO 8601 with a time zone (modic writes UTC)
      "modified": "2024-05-01T10:05:00.000Z",
      "rois": [
        {
          "id": "9f0c...",                      # unique within the document (uuid4 hex by default)
          "label": {"kind": "endplate", "vertebra": "L4", "endplate": "inferior"},
                                                # kind "reference": "endplate" is null or absent
          "shape": {"type": "polygon", "points": [[x, y], ...]},         # >= 3 points, implicitly closed
                 # {"type": "rectangle", "x0": .., "y0": .., "x1": .., "y1": ..}   x0 < x1, y0 < y1
                 # {"type": "ellipse", "cx": .., "cy": .., "rx": .., "ry": .., "angle_deg": 0.0}
                 # {"type": "mask", "x0": col, "y0": row, "height": h, "width": w,
                 #  "bits": base64(numpy.packbits(mask.ravel()))}   row-major, MSB first
          "image": {"series_instance_uid": "..", "sop_instance_uid": "..", "frame_number": 1,
                    "rows": 512, "columns": 512,
                    "image_position_patient": [x, y, z], "image_orientation_patient": [6 floats],
                    "pixel_spacing": [row_spacing, column_spacing],
                    "series_number": 2, "series_description": "t1_tse_sag"},  # last two optional
          "patient": {"outline_lps": [[x, y, z], ...]},   # optional, derived (see below)
          "author": "", "created": "...Z", "modified": "...Z", "tool_version": "0.1.0.dev0",
          "comment": ""                          # these three optional, default ""
        }
      ]
    }

* All shape coordinates are image coordinates as above; ``angle_deg`` turns the ellipse's
  own x axis from the image +x axis towards +y (clockwise as displayed, the same as
  ``matplotlib.patches.Ellipse(angle=...)`` drawn over ``imshow``).
* ``frame_number`` is 1-based (DICOM), 1 for single-frame images.
* ``patient.outline_lps`` is the shape's outline (:meth:`ROI.patient_outline`) in LPS mm,
  written for every ROI for the benefit of other tools. It is derived data: the image-plane
  form is authoritative, and a reader only logs a warning when the two disagree by more
  than 1 mm.
* Numbers: shape coordinates are stored to 1/1000 pixel (shapes round on construction, so
  a document reads back equal to what was written) and ``outline_lps`` to 1/10000 mm;
  DICOM header values (position, orientation, spacing) are written exactly.
* Versions: a reader accepts every 1.x document. Unknown fields are errors in 1.0
  documents and are ignored (with a logged warning) in later 1.x minor versions; other
  major versions are refused.

Errors name the file and the JSON field, e.g.
``study1.modic.json: rois[2].shape.points: a polygon needs at least 3 points, got 2``
(:class:`~modic.errors.AnnotationFormatError`, a ``ValueError``).

Examples
--------
>>> plane = ImagePlane("1.2.3", "1.2.3.4", 1, rows=64, columns=64, position=(10.0, -100.0, 50.0),
...                    orientation=(0, 1, 0, 0, 0, -1), pixel_spacing=(1.0, 1.0))
>>> roi = ROI(RoiLabel.parse("L4i"), Rectangle(2, 3, 5, 6), plane)
>>> str(roi.label), roi.label.level, int(roi.pixel_mask().sum())
('L4 inferior', 'L4/L5', 9)
>>> ann = Annotations([roi], study_instance_uid="1.2")
>>> ann.find("L4")[0] is roi
True
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import __version__
from ._io import atomic_write_bytes
from ._jsondoc import (
    as_object,
    at,
    check_keys,
    check_timestamp,
    check_version,
    dumps,
    get_str,
    json_type,
    read_json,
    utc_now,
)
from .errors import AnnotationFormatError, GeometryError
from .geometry import SliceGeometry, slice_normal

if TYPE_CHECKING:  # pragma: no cover
    from .series import Series

__all__ = [
    "VERTEBRAE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Endplate",
    "RoiLabel",
    "ImagePlane",
    "Shape",
    "Polygon",
    "Rectangle",
    "Ellipse",
    "Mask",
    "ROI",
    "Annotations",
    "shape_from_dict",
    "xy_to_rowcol",
    "rowcol_to_xy",
    "read_annotations",
    "write_annotations",
    "annotation_path_for",
    "annotation_schema",
]

logger = logging.getLogger(__name__)

#: Vertebrae an ROI can be labelled with, ordered head -> foot.
VERTEBRAE: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: Value of the ``"format"`` field.
FORMAT_NAME = "modic-annotations"
#: The version this module writes.
FORMAT_VERSION = "1.0"
_MAJOR, _MINOR = 1, 0
_SCHEMA_RESOURCE = "annotations-1.0.schema.json"

#: Shape coordinates (pixels) are kept to this many decimals.
PIXEL_DECIMALS = 3
#: ``outline_lps`` (mm) is written with this many decimals.
MM_DECIMALS = 4
#: Largest tolerated disagreement between ``outline_lps`` and image + shape, in mm.
OUTLINE_TOLERANCE_MM = 1.0
#: Points of an ellipse outline unless told otherwise.
DEFAULT_OUTLINE_POINTS = 64

_BASE64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


# ----------------------------------------------------------------------------------------
# coordinate helpers
# ----------------------------------------------------------------------------------------
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


def _last_axis(values: ArrayLike, n: int, name: str) -> NDArray[np.float64]:
    a = np.asarray(values, dtype=float)
    if a.ndim == 0 or a.shape[-1] != n:
        raise ValueError(f"{name} must have {n} values along its last axis, got shape {a.shape}")
    return a


def _round(value: float, decimals: int) -> float:
    return round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


# ----------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------
class Endplate(str, Enum):
    """Which endplate of a vertebra: the superior one (towards the head) or the inferior one."""

    SUPERIOR = "superior"
    INFERIOR = "inferior"

    def __str__(self) -> str:
        return self.value


RoiKind = Literal["endplate", "reference"]
_KINDS = ("endplate", "reference")
# T10 only names the disc level above T11's superior endplate.
_LEVEL_NAMES = ("T10",) + VERTEBRAE
_PARSE_RE = re.compile(r"(?:(ref|reference)\s*)?(t1[12]|l[1-5]|s1)\s*([a-z]*)")
_PARSE_WORDS: dict[str, Endplate | None] = {
    "s": Endplate.SUPERIOR,
    "sup": Endplate.SUPERIOR,
    "superior": Endplate.SUPERIOR,
    "i": Endplate.INFERIOR,
    "inf": Endplate.INFERIOR,
    "inferior": Endplate.INFERIOR,
    "r": None,
    "ref": None,
    "reference": None,
}


@dataclass(frozen=True)
class RoiLabel:
    """What an ROI marks: an endplate of a vertebra, or reference marrow in a vertebra.

    Parameters
    ----------
    kind : {"endplate", "reference"}
        ``"endplate"``: the marrow next to an endplate, where a Modic change is looked
        for. ``"reference"``: normal-appearing marrow that signal is compared with.
    vertebra : str
        One of :data:`VERTEBRAE` (``"T11"`` ... ``"S1"``), upper case.
    endplate : Endplate or str, optional
        Required for an endplate ROI, ``None`` for a reference. S1 has only a superior
        endplate (the lower side of the L5/S1 disc).

    Raises
    ------
    AnnotationFormatError
        Naming the bad argument (``kind``, ``vertebra`` or ``endplate``).

    Examples
    --------
    >>> RoiLabel("endplate", "L4", Endplate.INFERIOR).level
    'L4/L5'
    >>> str(RoiLabel.parse("ref L4"))
    'L4 reference'
    """

    kind: RoiKind
    vertebra: str
    endplate: Endplate | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise AnnotationFormatError(f"must be 'endplate' or 'reference', got {self.kind!r}", field="kind")
        if not isinstance(self.vertebra, str) or self.vertebra not in VERTEBRAE:
            raise AnnotationFormatError(
                f"must be one of {', '.join(VERTEBRAE)}, got {self.vertebra!r}", field="vertebra"
            )
        if self.kind == "reference":
            if self.endplate is not None:
                raise AnnotationFormatError(
                    f"a reference ROI has no endplate (got {str(self.endplate)!r}); leave it null",
                    field="endplate",
                )
            return
        if self.endplate is None:
            raise AnnotationFormatError("an endplate ROI needs 'superior' or 'inferior'", field="endplate")
        try:
            endplate = Endplate(self.endplate)
        except ValueError:
            raise AnnotationFormatError(
                f"must be 'superior' or 'inferior', got {self.endplate!r}", field="endplate"
            ) from None
        if self.vertebra == "S1" and endplate is Endplate.INFERIOR:
            raise AnnotationFormatError(
                "S1 has only a superior endplate (the L5/S1 level) in the lumbar spine", field="endplate"
            )
        object.__setattr__(self, "endplate", endplate)

    @classmethod
    def for_endplate(cls, vertebra: str, endplate: Endplate | str) -> RoiLabel:
        """The label of an endplate ROI, e.g. ``RoiLabel.for_endplate("L4", "inferior")``."""
        return cls("endplate", vertebra, Endplate(endplate))

    @classmethod
    def for_reference(cls, vertebra: str) -> RoiLabel:
        """The label of a reference ROI in ``vertebra``."""
        return cls("reference", vertebra)

    @classmethod
    def parse(cls, text: str) -> RoiLabel:
        """Read a label as people type it (command line, annotation UI).

        Case, spaces, ``-`` and ``_`` do not matter. Accepted spellings::

            "L4 inferior", "L4 inf", "L4-inf", "L4i", "L4 inferior endplate"
            "L5 superior", "L5-sup", "L5s"
            "ref L4", "reference L4", "L4 ref", "L4 reference", "L4r"

        Parameters
        ----------
        text : str

        Returns
        -------
        RoiLabel

        Raises
        ------
        AnnotationFormatError
            If the text names no known vertebra, no endplate, or an endplate that does not
            exist (S1 inferior).

        Examples
        --------
        >>> RoiLabel.parse("L4-inf") == RoiLabel.for_endplate("L4", "inferior")
        True
        """
        hint = (
            "write e.g. 'L4 inferior', 'L4-inf', 'L4i', 'L5 superior' or 'ref L4' "
            f"(vertebrae {', '.join(VERTEBRAE)})"
        )
        if not isinstance(text, str):
            raise AnnotationFormatError(f"an ROI label must be text, got {type(text).__name__}; {hint}")
        s = re.sub(r"[\s_\-:,/]+", " ", text.strip().lower()).strip()
        s = re.sub(r"\s+(endplate|ep)$", "", s)
        m = _PARSE_RE.fullmatch(s)
        if m is None or m.group(3) not in ("", *_PARSE_WORDS):
            raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {hint}")
        prefix, vertebra, word = m.group(1), m.group(2).upper(), m.group(3)
        try:
            if prefix:
                if word and _PARSE_WORDS[word] is not None:
                    raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {hint}")
                return cls("reference", vertebra)
            if not word:
                raise AnnotationFormatError(
                    f"{text!r} does not say which endplate: write '{vertebra} superior' or "
                    f"'{vertebra} inferior' (or 'ref {vertebra}' for a reference region)"
                )
            endplate = _PARSE_WORDS[word]
            if endplate is None:
                return cls("reference", vertebra)
            return cls("endplate", vertebra, endplate)
        except AnnotationFormatError as e:
            if not e.field:
                raise
            raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {e.problem}") from None

    def __str__(self) -> str:
        if self.endplate is None:
            return f"{self.vertebra} reference"
        return f"{self.vertebra} {self.endplate.value}"

    @property
    def level(self) -> str | None:
        """Disc level of an endplate: ``"L4/L5"`` for L4 inferior and L5 superior; None for a reference."""
        if self.endplate is None:
            return None
        i = _LEVEL_NAMES.index(self.vertebra)
        if self.endplate is Endplate.SUPERIOR:
            return f"{_LEVEL_NAMES[i - 1]}/{self.vertebra}"
        return f"{self.vertebra}/{_LEVEL_NAMES[i + 1]}"

    @property
    def sort_key(self) -> tuple[int, int]:
        """Head -> foot order: by vertebra, then superior endplate, reference, inferior endplate."""
        within = {Endplate.SUPERIOR: 0, None: 1, Endplate.INFERIOR: 2}[self.endplate]
        return (VERTEBRAE.index(self.vertebra), within)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"kind", "vertebra", "endplate"}`` (endplate null for a reference)."""
        return {
            "kind": self.kind,
            "vertebra": self.vertebra,
            "endplate": None if self.endplate is None else self.endplate.value,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> RoiLabel:
        """Build from the JSON form; errors name the field (``"vertebra"``, ...).

        ``strict=False`` ignores unknown fields (documents of a later 1.x version).
        """
        d = as_object(d)
        check_keys(d, ("kind", "vertebra"), ("endplate",), strict=strict)
        kind = get_str(d, "kind")
        vertebra = get_str(d, "vertebra")
        endplate = d.get("endplate")
        if endplate is not None and not isinstance(endplate, str):
            raise AnnotationFormatError(
                f"expected a string or null, got {json_type(endplate)}", field="endplate"
            )
        return cls(kind, vertebra, endplate)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# the image an ROI was drawn on
# ----------------------------------------------------------------------------------------
# ImagePlane argument -> JSON field, for error messages
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
        return slice_normal(self.orientation)

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


# ----------------------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------------------
class Shape(ABC):
    """A 2-D region in image coordinates (``x`` = column, ``y`` = row, origin at the corner).

    Subclasses: :class:`Polygon`, :class:`Rectangle`, :class:`Ellipse`, :class:`Mask`.
    """

    type: ClassVar[str]

    @abstractmethod
    def outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(N, 2) ``(x, y)`` vertices of a closed polygon around the shape (not repeated at the end)."""

    @abstractmethod
    def rasterize(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """(rows, columns) bool mask of the pixels whose centres lie inside the shape."""

    @property
    @abstractmethod
    def area_px(self) -> float:
        """Area in square pixels (geometric, not the count of rasterised pixels)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with ``"type"`` first."""


@dataclass(frozen=True, eq=False)
class Polygon(Shape):
    """A closed polygon, also what freehand (lasso) drawing produces.

    Parameters
    ----------
    points : (N, 2) array_like
        ``(x, y)`` vertices in image coordinates, ``N >= 3``, implicitly closed (do not
        repeat the first point). Rounded to 1/1000 pixel and kept read-only.
        Self-intersecting polygons are rasterised with the even-odd rule.

    Examples
    --------
    >>> tri = Polygon([[0, 0], [4.2, 0], [0, 4.2]])
    >>> tri.rasterize(4, 4).astype(int)
    array([[1, 1, 1, 1],
           [1, 1, 1, 0],
           [1, 1, 0, 0],
           [1, 0, 0, 0]])
    """

    points: NDArray[np.float64]
    type: ClassVar[str] = "polygon"

    def __post_init__(self) -> None:
        pts = _as_point_array(self.points, "points", 2)
        if pts.shape[0] < 3:
            raise AnnotationFormatError(
                f"a polygon needs at least 3 points, got {pts.shape[0]}", field="points"
            )
        pts = np.round(pts, PIXEL_DECIMALS) + 0.0
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Polygon):
            return NotImplemented
        return self.points.shape == other.points.shape and bool(np.array_equal(self.points, other.points))

    def __hash__(self) -> int:
        return hash((self.type, self.points.shape, self.points.tobytes()))

    def outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(N, 2) the polygon's own vertices (``n`` is ignored)."""
        return self.points.copy()

    def rasterize(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """(rows, columns) bool: pixel centres inside (crossing-number rule, see the module docstring)."""
        return _polygon_mask(self.points, rows, columns)

    @property
    def area_px(self) -> float:
        """Shoelace area in square pixels (of a simple polygon)."""
        return abs(_signed_area(self.points))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "points": self.points.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> Polygon:
        """Build from ``{"type": "polygon", "points": [[x, y], ...]}``."""
        d = as_object(d)
        check_keys(d, ("type", "points"), strict=strict)
        _check_type(d, cls.type)
        return cls(np.asarray(_get_points(d, "points", 2), dtype=float))


@dataclass(frozen=True)
class Rectangle(Shape):
    """An axis-aligned rectangle ``[x0, x1] x [y0, y1]`` in image coordinates.

    The corners may be given in any order; they are sorted so that ``x0 < x1`` and
    ``y0 < y1``, and rounded to 1/1000 pixel.

    Examples
    --------
    >>> Rectangle(2, 3, 5, 6).rasterize(8, 8)[3:6, 2:5].all()  # centres of cols 2-4, rows 3-5
    np.True_
    """

    x0: float
    y0: float
    x1: float
    y1: float
    type: ClassVar[str] = "rectangle"

    def __post_init__(self) -> None:
        v = {name: _as_float(getattr(self, name), name) for name in ("x0", "y0", "x1", "y1")}
        x0, x1 = sorted((_round(v["x0"], PIXEL_DECIMALS), _round(v["x1"], PIXEL_DECIMALS)))
        y0, y1 = sorted((_round(v["y0"], PIXEL_DECIMALS), _round(v["y1"], PIXEL_DECIMALS)))
        if x0 == x1:
            raise AnnotationFormatError(f"a rectangle needs x1 != x0, both are {x0}", field="x1")
        if y0 == y1:
            raise AnnotationFormatError(f"a rectangle needs y1 != y0, both are {y0}", field="y1")
        for name, value in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1)):
            object.__setattr__(self, name, value)

    def outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(4, 2) corners ``(x0, y0), (x1, y0), (x1, y1), (x0, y1)`` (``n`` is ignored)."""
        return np.array([[self.x0, self.y0], [self.x1, self.y0], [self.x1, self.y1], [self.x0, self.y1]])

    def rasterize(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """(rows, columns) bool: centres with ``x0 <= x < x1`` and ``y0 <= y < y1``."""
        out = np.zeros((_as_int(rows, "rows", minimum=1), _as_int(columns, "columns", minimum=1)), dtype=bool)
        r0, r1 = _centre_range(self.y0, self.y1, rows)
        c0, c1 = _centre_range(self.x0, self.x1, columns)
        out[r0:r1, c0:c1] = True
        return out

    @property
    def area_px(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> Rectangle:
        """Build from ``{"type": "rectangle", "x0", "y0", "x1", "y1"}``."""
        d = as_object(d)
        check_keys(d, ("type", "x0", "y0", "x1", "y1"), strict=strict)
        _check_type(d, cls.type)
        return cls(*(_get_number(d, k) for k in ("x0", "y0", "x1", "y1")))


@dataclass(frozen=True)
class Ellipse(Shape):
    """An ellipse centred at ``(cx, cy)`` with semi-axes ``rx``, ``ry`` (pixels).

    Parameters
    ----------
    cx, cy : float
        Centre, image coordinates.
    rx, ry : float
        Semi-axes (> 0): ``rx`` along the ellipse's own x axis, ``ry`` across it.
    angle_deg : float
        Rotation of the ellipse's x axis from image +x towards image +y, in degrees:
        clockwise as displayed (y points down), like ``matplotlib.patches.Ellipse`` over
        ``imshow``. All values are rounded to 1/1000.

    Examples
    --------
    >>> Ellipse(5, 5, 1.2, 1.2).rasterize(8, 8)[4:6, 4:6].sum()
    np.int64(4)
    """

    cx: float
    cy: float
    rx: float
    ry: float
    angle_deg: float = 0.0
    type: ClassVar[str] = "ellipse"

    def __post_init__(self) -> None:
        for name in ("cx", "cy", "rx", "ry", "angle_deg"):
            object.__setattr__(self, name, _round(_as_float(getattr(self, name), name), PIXEL_DECIMALS))
        for name in ("rx", "ry"):
            if getattr(self, name) <= 0:
                raise AnnotationFormatError(
                    f"an ellipse's semi-axis must be > 0 pixels, got {getattr(self, name)}", field=name
                )

    def _cos_sin(self) -> tuple[float, float]:
        # exact for multiples of 90 degrees, so that rotated ellipses rasterise symmetrically
        quarter, rest = divmod(self.angle_deg, 90.0)
        if rest == 0:
            return [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][int(quarter) % 4]
        t = math.radians(self.angle_deg)
        return math.cos(t), math.sin(t)

    def outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(n, 2) points on the ellipse, starting at the end of the rotated +x semi-axis."""
        n = _as_int(n, "n", minimum=3)
        t = 2 * np.pi * np.arange(n) / n
        cos, sin = self._cos_sin()
        u, v = self.rx * np.cos(t), self.ry * np.sin(t)
        return np.stack([self.cx + u * cos - v * sin, self.cy + u * sin + v * cos], axis=1)

    def rasterize(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """(rows, columns) bool: centres inside or on the ellipse."""
        rows = _as_int(rows, "rows", minimum=1)
        columns = _as_int(columns, "columns", minimum=1)
        out = np.zeros((rows, columns), dtype=bool)
        cos, sin = self._cos_sin()
        hx = math.hypot(self.rx * cos, self.ry * sin)  # half extents of the bounding box
        hy = math.hypot(self.rx * sin, self.ry * cos)
        c0, c1 = _centre_range(self.cx - hx - 1, self.cx + hx + 1, columns)
        r0, r1 = _centre_range(self.cy - hy - 1, self.cy + hy + 1, rows)
        if c1 <= c0 or r1 <= r0:
            return out
        dx = (np.arange(c0, c1) + 0.5 - self.cx)[None, :]
        dy = (np.arange(r0, r1) + 0.5 - self.cy)[:, None]
        u = (dx * cos + dy * sin) / self.rx
        v = (dy * cos - dx * sin) / self.ry
        out[r0:r1, c0:c1] = u * u + v * v <= 1.0
        return out

    @property
    def area_px(self) -> float:
        return math.pi * self.rx * self.ry

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "cx": self.cx,
            "cy": self.cy,
            "rx": self.rx,
            "ry": self.ry,
            "angle_deg": self.angle_deg,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> Ellipse:
        """Build from ``{"type": "ellipse", "cx", "cy", "rx", "ry", "angle_deg"}`` (angle optional, 0)."""
        d = as_object(d)
        check_keys(d, ("type", "cx", "cy", "rx", "ry"), ("angle_deg",), strict=strict)
        _check_type(d, cls.type)
        angle = _get_number(d, "angle_deg") if "angle_deg" in d else 0.0
        cx, cy, rx, ry = (_get_number(d, k) for k in ("cx", "cy", "rx", "ry"))
        return cls(cx, cy, rx, ry, angle_deg=angle)


@dataclass(frozen=True, eq=False, repr=False)
class Mask(Shape):
    """A painted region: a boolean mask placed in the image.

    Parameters
    ----------
    x0, y0 : int
        Column and row (>= 0) of the mask's top-left pixel in the image.
    mask : (h, w) array_like of bool
        ``mask[i, j]`` is pixel ``(row y0 + i, col x0 + j)``. At least one pixel must be
        set. Kept as a read-only copy.

    Notes
    -----
    Serialised as ``{"x0", "y0", "height", "width", "bits"}`` where ``bits`` is the
    base64 of ``numpy.packbits(mask.ravel())`` (row-major, most significant bit first,
    the last byte padded with zero bits).
    """

    x0: int
    y0: int
    mask: NDArray[np.bool_]
    type: ClassVar[str] = "mask"

    def __post_init__(self) -> None:
        object.__setattr__(self, "x0", _as_int(self.x0, "x0", minimum=0))
        object.__setattr__(self, "y0", _as_int(self.y0, "y0", minimum=0))
        m = np.asarray(self.mask)
        if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
            raise AnnotationFormatError(f"must be a non-empty 2-D array, got shape {m.shape}", field="mask")
        if m.dtype != bool:
            if not np.isin(m, (0, 1)).all():
                raise AnnotationFormatError("must hold booleans (or 0 and 1 only)", field="mask")
        m = np.array(m, dtype=bool)  # a copy
        if not m.any():
            raise AnnotationFormatError("a mask needs at least one painted pixel", field="mask")
        m.setflags(write=False)
        object.__setattr__(self, "mask", m)

    @classmethod
    def from_image_mask(cls, mask: ArrayLike) -> Mask:
        """The painted pixels of a full-image ``(rows, columns)`` mask, cropped to their bounding box."""
        m = np.asarray(mask, dtype=bool)
        if m.ndim != 2 or not m.any():
            raise AnnotationFormatError("needs a 2-D mask with at least one painted pixel", field="mask")
        rr, cc = np.nonzero(m)
        return cls(int(cc.min()), int(rr.min()), m[rr.min() : rr.max() + 1, cc.min() : cc.max() + 1])

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return (self.x0, self.y0, self.mask.shape) == (other.x0, other.y0, other.mask.shape) and bool(
            np.array_equal(self.mask, other.mask)
        )

    def __hash__(self) -> int:
        return hash((self.type, self.x0, self.y0, self.mask.shape, np.packbits(self.mask).tobytes()))

    def __repr__(self) -> str:
        return f"Mask(x0={self.x0}, y0={self.y0}, shape={self.mask.shape}, pixels={int(self.mask.sum())})"

    def outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(N, 2) exact boundary of the pixel squares, as integer ``(x, y)`` pixel corners.

        Pixels that touch only at a corner belong to different pieces (4-connectivity).
        When the mask has several pieces the outline of the largest is returned, and holes
        are left out: the outline is for display and for :meth:`ROI.patient_outline`; the
        mask itself is what is measured. ``n`` is ignored. The polygon runs clockwise as
        displayed, starting at its top-left corner, with collinear corners removed.
        """
        return _mask_outline(self.mask) + np.array([self.x0, self.y0], dtype=float)

    def rasterize(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """(rows, columns) bool: the mask placed at ``(y0, x0)``, clipped to the image."""
        rows = _as_int(rows, "rows", minimum=1)
        columns = _as_int(columns, "columns", minimum=1)
        out = np.zeros((rows, columns), dtype=bool)
        h = max(0, min(self.height, rows - self.y0))
        w = max(0, min(self.width, columns - self.x0))
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.mask[:h, :w]
        return out

    @property
    def area_px(self) -> float:
        """Number of painted pixels."""
        return float(self.mask.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "x0": self.x0,
            "y0": self.y0,
            "height": self.height,
            "width": self.width,
            "bits": base64.b64encode(np.packbits(self.mask.ravel()).tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> Mask:
        """Build from ``{"type": "mask", "x0", "y0", "height", "width", "bits"}``."""
        d = as_object(d)
        check_keys(d, ("type", "x0", "y0", "height", "width", "bits"), strict=strict)
        _check_type(d, cls.type)
        x0, y0 = _get_int(d, "x0", minimum=0), _get_int(d, "y0", minimum=0)
        h, w = _get_int(d, "height", minimum=1), _get_int(d, "width", minimum=1)
        bits = get_str(d, "bits")
        if not _BASE64_RE.match(bits):
            raise AnnotationFormatError(
                "not valid base64 (standard alphabet, with '=' padding)", field="bits"
            )
        try:
            raw = base64.b64decode(bits, validate=True)
        except binascii.Error as e:  # pragma: no cover - the pattern above catches these
            raise AnnotationFormatError(f"not valid base64: {e}", field="bits") from None
        expected = (h * w + 7) // 8
        if len(raw) != expected:
            raise AnnotationFormatError(
                f"a {h}x{w} mask needs {expected} bytes of packed bits, but the base64 holds {len(raw)}",
                field="bits",
            )
        m = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=h * w).astype(bool).reshape(h, w)
        try:
            return cls(x0, y0, m)
        except AnnotationFormatError as e:
            raise AnnotationFormatError(e.problem, field="bits" if e.field == "mask" else e.field) from None


_SHAPES: dict[str, type[Polygon] | type[Rectangle] | type[Ellipse] | type[Mask]] = {
    "polygon": Polygon,
    "rectangle": Rectangle,
    "ellipse": Ellipse,
    "mask": Mask,
}


def shape_from_dict(d: Mapping[str, Any], *, strict: bool = True) -> Shape:
    """Build a :class:`Polygon`, :class:`Rectangle`, :class:`Ellipse` or :class:`Mask` from its JSON form.

    Raises
    ------
    AnnotationFormatError
        Naming the field, e.g. ``"type"`` for an unknown shape type.
    """
    d = as_object(d)
    if "type" not in d:
        raise AnnotationFormatError("required field is missing", field="type")
    kind = get_str(d, "type")
    if kind not in _SHAPES:
        raise AnnotationFormatError(
            f"unknown shape type {kind!r}; expected one of {', '.join(_SHAPES)}", field="type"
        )
    return _SHAPES[kind].from_dict(d, strict=strict)


def _centre_range(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Indices ``i`` (clipped to ``0..n``) whose centres ``i + 0.5`` satisfy ``lo <= i + 0.5 < hi``."""
    i0 = math.ceil(lo - 0.5)
    i1 = math.ceil(hi - 0.5)
    return min(max(i0, 0), n), min(max(i1, 0), n)


def _polygon_mask(vertices: NDArray[np.float64], rows: int, columns: int) -> NDArray[np.bool_]:
    """Pixels whose centres lie inside a polygon (even-odd crossing-number rule, PNPOLY)."""
    rows = _as_int(rows, "rows", minimum=1)
    columns = _as_int(columns, "columns", minimum=1)
    out = np.zeros((rows, columns), dtype=bool)
    x, y = vertices[:, 0], vertices[:, 1]
    c0, c1 = _centre_range(float(x.min()), float(x.max()), columns)
    r0, r1 = _centre_range(float(y.min()), float(y.max()), rows)
    if c1 <= c0 or r1 <= r0:
        return out
    px = (np.arange(c0, c1) + 0.5)[None, :]
    py = (np.arange(r0, r1) + 0.5)[:, None]
    inside = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for i in range(len(x)):
        xi, yi, xj, yj = x[i], y[i], x[i - 1], y[i - 1]
        if yi == yj:
            continue  # a horizontal edge is never crossed
        crosses = (yi > py) != (yj > py)
        x_at = xi + (py - yi) * (xj - xi) / (yj - yi)
        inside ^= crosses & (px < x_at)
    out[r0:r1, c0:c1] = inside
    return out


def _signed_area(points: NDArray[np.float64]) -> float:
    """Shoelace area; positive when the polygon runs clockwise as displayed (y down)."""
    x, y = points[:, 0], points[:, 1]
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def _mask_outline(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Boundary polygon of the largest 4-connected piece of a mask, at pixel corners.

    Pixel ``(r, c)`` is the square ``[c, c + 1] x [r, r + 1]`` in ``(x, y)``. Boundary
    edges are directed with the painted side on their right as displayed; at a corner
    where two pieces touch diagonally the trace turns right, staying with its piece.
    """
    m = np.pad(mask, 1)
    edges: set[tuple[int, int, int, int]] = set()  # (x, y, dx, dy) in padded corner coordinates
    for i, j in zip(*np.nonzero(m[1:, :] & ~m[:-1, :]), strict=True):  # top edge of a painted pixel
        edges.add((int(j), int(i) + 1, 1, 0))
    for i, j in zip(*np.nonzero(m[:-1, :] & ~m[1:, :]), strict=True):  # bottom edge
        edges.add((int(j) + 1, int(i) + 1, -1, 0))
    for i, j in zip(*np.nonzero(m[:, 1:] & ~m[:, :-1]), strict=True):  # left edge
        edges.add((int(j) + 1, int(i) + 1, 0, -1))
    for i, j in zip(*np.nonzero(m[:, :-1] & ~m[:, 1:]), strict=True):  # right edge
        edges.add((int(j) + 1, int(i), 0, 1))

    def successor(e: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x, y = e[0] + e[2], e[1] + e[3]
        dx, dy = e[2], e[3]
        for ndx, ndy in ((-dy, dx), (dx, dy), (dy, -dx)):  # right turn, straight on, left turn
            if (x, y, ndx, ndy) in edges:
                return (x, y, ndx, ndy)
        raise AssertionError("broken mask boundary")  # pragma: no cover

    best: NDArray[np.float64] | None = None
    best_area = -math.inf
    used: set[tuple[int, int, int, int]] = set()
    for first in sorted(edges, key=lambda e: (e[1], e[0], e[2], e[3])):
        if first in used:
            continue
        loop = [first]
        e = successor(first)
        while e != first:
            loop.append(e)
            e = successor(e)
        used.update(loop)
        corners = [
            (float(b[0]), float(b[1]))
            for a, b in zip([loop[-1], *loop[:-1]], loop, strict=True)
            if (a[2], a[3]) != (b[2], b[3])  # keep only the corners where the direction changes
        ]
        pts = np.array(corners) - 1.0
        area = _signed_area(pts)
        if area > best_area:
            best, best_area = pts, area
    assert best is not None
    start = int(np.lexsort((best[:, 0], best[:, 1]))[0])  # top-most, then left-most corner
    return np.roll(best, -start, axis=0)


# ----------------------------------------------------------------------------------------
# ROI and the document
# ----------------------------------------------------------------------------------------
def _check_strings_and_times(obj: ROI | Annotations, names: Sequence[str]) -> None:
    """Check that the attributes ``names`` of ``obj`` are strings and that its ``created`` and
    ``modified`` are timestamps; an empty ``modified`` becomes ``created``."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, str):
            raise AnnotationFormatError(f"must be a string, got {type(value).__name__}", field=name)
    check_timestamp(obj.created, "created")
    if not obj.modified:
        obj.modified = obj.created
    check_timestamp(obj.modified, "modified")


@dataclass
class ROI:
    """One region of interest: what it marks, its shape, and the image it was drawn on.

    Parameters
    ----------
    label : RoiLabel
    shape : Polygon, Rectangle, Ellipse or Mask
        In image coordinates of ``image`` (see the module docstring). A mask must fit in
        the image; other shapes may reach beyond it (clipped when rasterised).
    image : ImagePlane
    id : str
        Unique within a document; default a new uuid4 hex.
    author, comment : str
    created, modified : str
        ISO 8601 with a time zone; default now (UTC), and ``modified`` defaults to ``created``.
    tool_version : str
        Version of the program that drew it; default this modic's.
    """

    label: RoiLabel
    shape: Shape
    image: ImagePlane
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    author: str = ""
    created: str = field(default_factory=utc_now)
    modified: str = ""
    tool_version: str = __version__
    comment: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.label, RoiLabel):
            raise AnnotationFormatError(f"must be a RoiLabel, got {type(self.label).__name__}", field="label")
        if not isinstance(self.shape, Shape):
            raise AnnotationFormatError(
                f"must be a Polygon, Rectangle, Ellipse or Mask, got {type(self.shape).__name__}",
                field="shape",
            )
        if not isinstance(self.image, ImagePlane):
            raise AnnotationFormatError(
                f"must be an ImagePlane, got {type(self.image).__name__}", field="image"
            )
        if not isinstance(self.id, str) or not self.id:
            raise AnnotationFormatError(f"must be a non-empty string, got {self.id!r}", field="id")
        _check_strings_and_times(self, ("author", "tool_version", "comment"))
        if isinstance(self.shape, Mask):
            s, im = self.shape, self.image
            if s.x0 + s.width > im.columns or s.y0 + s.height > im.rows:
                raise AnnotationFormatError(
                    f"a {s.height}x{s.width} mask at column {s.x0}, row {s.y0} does not fit in the "
                    f"{im.rows}x{im.columns} image",
                    field="shape",
                )

    def touch(self) -> None:
        """Set :attr:`modified` to now (call after editing the ROI)."""
        self.modified = utc_now()

    def patient_outline(self, n: int = DEFAULT_OUTLINE_POINTS) -> NDArray[np.float64]:
        """(N, 3) LPS mm of the shape's outline (:meth:`Shape.outline`) on its image plane."""
        return self.image.pixel_to_patient(self.shape.outline(n))

    def pixel_mask(self) -> NDArray[np.bool_]:
        """(rows, columns) bool mask of the ROI on its own image (pixel centres inside)."""
        return self.shape.rasterize(self.image.rows, self.image.columns)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with ``patient.outline_lps`` (rounded to 1/10000 mm)."""
        outline = np.round(self.patient_outline(), MM_DECIMALS) + 0.0
        return {
            "id": self.id,
            "label": self.label.to_dict(),
            "shape": self.shape.to_dict(),
            "image": self.image.to_dict(),
            "patient": {"outline_lps": outline.tolist()},
            "author": self.author,
            "created": self.created,
            "modified": self.modified,
            "tool_version": self.tool_version,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> ROI:
        """Build from the JSON form; errors name the field (``"shape.points"``).

        A stored ``patient.outline_lps`` is checked against image + shape; a disagreement
        of more than 1 mm is logged as a warning (the image-plane form is used).
        """
        roi, stored = _roi_from_dict(d, strict=strict)
        _check_outline(roi, stored, f"ROI {roi.id}")
        return roi


def _default_tool() -> dict[str, str]:
    return {"name": "modic", "version": __version__}


@dataclass
class Annotations:
    """The ROIs of one study, as kept in a ``.modic.json`` file.

    Parameters
    ----------
    rois : list of ROI
        Unique ids.
    study_instance_uid, frame_of_reference_uid, description : str
    created, modified : str
        ISO 8601 with a time zone; default now (UTC). :meth:`add` and :meth:`remove` update
        ``modified``; :func:`write_annotations` does not (so that writing twice gives the
        same bytes).
    tool : dict
        ``{"name": ..., "version": ...}`` of the program that made the document.
    """

    rois: list[ROI] = field(default_factory=list)
    study_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    description: str = ""
    created: str = field(default_factory=utc_now)
    modified: str = ""
    tool: dict[str, str] = field(default_factory=_default_tool)

    def __post_init__(self) -> None:
        self.rois = list(self.rois)
        seen: dict[str, int] = {}
        for i, roi in enumerate(self.rois):
            if not isinstance(roi, ROI):
                raise AnnotationFormatError(f"must be an ROI, got {type(roi).__name__}", field=f"rois[{i}]")
            if roi.id in seen:
                raise AnnotationFormatError(
                    f"duplicate id {roi.id!r} (also rois[{seen[roi.id]}])", field=f"rois[{i}].id"
                )
            seen[roi.id] = i
        _check_strings_and_times(self, ("study_instance_uid", "frame_of_reference_uid", "description"))
        if (
            not isinstance(self.tool, Mapping)
            or set(self.tool) != {"name", "version"}
            or not all(isinstance(v, str) for v in self.tool.values())
        ):
            raise AnnotationFormatError(
                f"must be {{'name': str, 'version': str}}, got {self.tool!r}", field="tool"
            )
        self.tool = {"name": self.tool["name"], "version": self.tool["version"]}

    # -- container --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rois)

    def __iter__(self) -> Iterator[ROI]:
        return iter(self.rois)

    def add(self, roi: ROI) -> ROI:
        """Append an ROI (its id must be new) and update :attr:`modified`; returns the ROI."""
        if not isinstance(roi, ROI):
            raise TypeError(f"expected an ROI, got {type(roi).__name__}")
        if any(r.id == roi.id for r in self.rois):
            raise ValueError(f"an ROI with id {roi.id!r} is already in the annotations; remove it first")
        self.rois.append(roi)
        self.modified = utc_now()
        return roi

    def get(self, id: str) -> ROI:
        """The ROI with this id; ``KeyError`` if there is none."""
        for roi in self.rois:
            if roi.id == id:
                return roi
        raise KeyError(f"no ROI with id {id!r} in the annotations")

    def remove(self, id: str) -> ROI:
        """Remove the ROI with this id, update :attr:`modified`, and return it; ``KeyError`` if absent."""
        roi = self.get(id)
        self.rois.remove(roi)
        self.modified = utc_now()
        return roi

    def endplates(self) -> list[ROI]:
        """Endplate ROIs in anatomical order (head -> foot, superior before inferior), stable."""
        return sorted((r for r in self.rois if r.label.kind == "endplate"), key=lambda r: r.label.sort_key)

    def references(self) -> list[ROI]:
        """Reference ROIs in anatomical order (head -> foot), stable."""
        return sorted((r for r in self.rois if r.label.kind == "reference"), key=lambda r: r.label.sort_key)

    def find(
        self,
        vertebra: str,
        endplate: Endplate | str | None = None,
        kind: RoiKind | None = None,
    ) -> list[ROI]:
        """ROIs of a vertebra, optionally only one endplate or one kind, in document order.

        Parameters
        ----------
        vertebra : str
            ``"L4"`` (case-insensitive).
        endplate : Endplate or str, optional
            ``"superior"`` / ``"inferior"``; implies ``kind="endplate"``.
        kind : {"endplate", "reference"}, optional
        """
        v = str(vertebra).upper()
        if v not in VERTEBRAE:
            raise ValueError(f"vertebra must be one of {', '.join(VERTEBRAE)}, got {vertebra!r}")
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind must be 'endplate' or 'reference', got {kind!r}")
        ep = None if endplate is None else Endplate(endplate)
        return [
            r
            for r in self.rois
            if r.label.vertebra == v
            and (kind is None or r.label.kind == kind)
            and (ep is None or r.label.endplate is ep)
        ]

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "study": {
                "study_instance_uid": self.study_instance_uid,
                "frame_of_reference_uid": self.frame_of_reference_uid,
                "description": self.description,
            },
            "tool": dict(self.tool),
            "created": self.created,
            "modified": self.modified,
            "rois": [roi.to_dict() for roi in self.rois],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> Annotations:
        """Build from a JSON document, validating every field.

        Raises
        ------
        AnnotationFormatError
            Naming ``source`` and the JSON field, e.g.
            ``"<dict>: rois[2].shape.points: a polygon needs at least 3 points, got 2"``.
        """
        try:
            return _annotations_from_dict(d, source)
        except AnnotationFormatError as e:
            raise AnnotationFormatError(e.problem, field=e.field, source=source) from None


# ----------------------------------------------------------------------------------------
# reading and writing
# ----------------------------------------------------------------------------------------
def read_annotations(path: str | os.PathLike[str]) -> Annotations:
    """Read a ``.modic.json`` annotation file.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Annotations

    Raises
    ------
    AnnotationFormatError
        If the file is not UTF-8 JSON (with line and column), not a modic annotation
        document, of an unsupported version, or has an invalid field (the message names
        the file and the field path, e.g. ``rois[2].shape.points``).
    FileNotFoundError
        If there is no such file.
    """
    return Annotations.from_dict(read_json(path), source=os.fspath(path))


def write_annotations(
    annotations: Annotations, path: str | os.PathLike[str], *, overwrite: bool = True
) -> Path:
    """Write annotations as pretty, stable JSON, atomically.

    The document is written to a temporary file in the same folder, flushed to disk and
    then moved over ``path`` with :func:`os.replace`, so that a reader (or a crash) sees
    either the old file or the complete new one, never a partial file. The mode of an
    existing file is kept. Writing the same :class:`Annotations` twice gives identical
    bytes (timestamps are not changed by writing).

    Parameters
    ----------
    annotations : Annotations
    path : str or PathLike
        Usually :func:`annotation_path_for` the study folder. Its folder must exist.
    overwrite : bool
        If False, refuse to replace an existing file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``overwrite`` is False and ``path`` exists.
    """
    if not isinstance(annotations, Annotations):
        raise TypeError(f"expected Annotations, got {type(annotations).__name__}")
    path = Path(path)
    data = dumps(annotations.to_dict()).encode("utf-8")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    return atomic_write_bytes(path, data, make_parents=False)


def annotation_path_for(study_dir: str | os.PathLike[str]) -> Path:
    """The default annotation file of a study folder: its sibling ``<study_dir>.modic.json``.

    The file lives next to the folder, never inside it, so that DICOM folders stay
    untouched (and read-only archives can be annotated).

    Examples
    --------
    >>> annotation_path_for("data/case7/").as_posix()
    'data/case7.modic.json'
    """
    p = Path(study_dir)
    if p.name in ("", ".", ".."):
        p = p.resolve()
    if not p.name:
        raise ValueError(f"{os.fspath(study_dir)!r} has no folder name to name an annotation file after")
    return p.with_name(p.name + ".modic.json")


def annotation_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of version 1.0 annotation files, as a new dict.

    Shipped as ``modic/schemas/annotations-1.0.schema.json`` for other tools; modic itself
    validates in :meth:`Annotations.from_dict` and does not need ``jsonschema``. The schema
    cannot express a few cross-field rules that the reader enforces: orthogonal unit
    orientation vectors, the length of a mask's ``bits``, a mask with no painted pixel,
    rectangles of zero size, masks reaching beyond the image, unique ROI ids.
    """
    text = resources.files("modic.schemas").joinpath(_SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# ----------------------------------------------------------------------------------------
# validation helpers: each raises AnnotationFormatError naming the field
# ----------------------------------------------------------------------------------------
def _check_type(d: Mapping[str, Any], expected: str) -> None:
    if d["type"] != expected:
        raise AnnotationFormatError(f"expected {expected!r}, got {d['type']!r}", field="type")


def _get_object(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return as_object(d[key], key)


def _get_int(d: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = d[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's "integer" accepts 2.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationFormatError(f"expected an integer, got {json_type(value)}", field=key)
    return _as_int(value, key, minimum=minimum)


def _get_number(d: Mapping[str, Any], key: str) -> float:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationFormatError(f"expected a number, got {json_type(value)}", field=key)
    return _as_float(value, key)


def _get_numbers(d: Mapping[str, Any], key: str, n: int) -> tuple[float, ...]:
    value = d[key]
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} values" if isinstance(value, list) else json_type(value)
        raise AnnotationFormatError(f"expected an array of {n} numbers, got {got}", field=key)
    with at(key):
        return tuple(_get_number({f"[{i}]": v}, f"[{i}]") for i, v in enumerate(value))


def _get_points(d: Mapping[str, Any], key: str, dim: int) -> list[tuple[float, ...]]:
    value = d[key]
    if not isinstance(value, list):
        raise AnnotationFormatError(f"expected an array of points, got {json_type(value)}", field=key)
    with at(key):
        return [_get_numbers({f"[{i}]": p}, f"[{i}]", dim) for i, p in enumerate(value)]


def _as_int(value: object, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AnnotationFormatError(f"must be an integer, got {value!r}", field=name)
    v = int(value)
    if minimum is not None and v < minimum:
        raise AnnotationFormatError(f"must be >= {minimum}, got {v}", field=name)
    return v


def _as_float(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AnnotationFormatError(f"must be a number, got {value!r}", field=name)
    v = float(value)
    if not math.isfinite(v):
        raise AnnotationFormatError(f"must be a finite number, got {v}", field=name)
    return v


def _as_floats(values: object, name: str, n: int) -> tuple[float, ...]:
    try:
        seq = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise AnnotationFormatError(f"must be {n} numbers, got {values!r}", field=name) from None
    if len(seq) != n:
        raise AnnotationFormatError(f"must be {n} numbers, got {len(seq)}", field=name)
    with at(name):
        return tuple(_as_float(v, f"[{i}]") for i, v in enumerate(seq))


def _as_point_array(points: object, name: str, dim: int) -> NDArray[np.float64]:
    try:
        a = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise AnnotationFormatError(f"must be an (N, {dim}) array of numbers", field=name) from None
    if a.ndim != 2 or a.shape[1] != dim:
        raise AnnotationFormatError(
            f"must be an (N, {dim}) array of numbers, got shape {a.shape}", field=name
        )
    if not np.all(np.isfinite(a)):
        raise AnnotationFormatError("must hold finite numbers only", field=name)
    return a


def _roi_from_dict(d: object, *, strict: bool) -> tuple[ROI, NDArray[np.float64] | None]:
    d = as_object(d)
    optional = ("patient", "author", "comment", "tool_version")
    check_keys(d, ("id", "label", "shape", "image", "created", "modified"), optional, strict=strict)
    with at("label"):
        label = RoiLabel.from_dict(as_object(d["label"]), strict=strict)
    with at("shape"):
        shape = shape_from_dict(as_object(d["shape"]), strict=strict)
    with at("image"):
        image = ImagePlane.from_dict(as_object(d["image"]), strict=strict)
    stored = None
    if "patient" in d:
        with at("patient"):
            patient = _get_object(d, "patient")
            check_keys(patient, ("outline_lps",), strict=strict)
            points = _get_points(patient, "outline_lps", 3)
            if len(points) < 3:
                raise AnnotationFormatError(
                    f"an outline needs at least 3 points, got {len(points)}", field="outline_lps"
                )
            stored = np.array(points, dtype=float)
    roi = ROI(
        label=label,
        shape=shape,
        image=image,
        id=get_str(d, "id"),
        author=get_str(d, "author") if "author" in d else "",
        created=check_timestamp(d["created"], "created"),
        modified=check_timestamp(d["modified"], "modified"),
        tool_version=get_str(d, "tool_version") if "tool_version" in d else "",
        comment=get_str(d, "comment") if "comment" in d else "",
    )
    return roi, stored


def _check_outline(roi: ROI, stored: NDArray[np.float64] | None, where: str) -> None:
    """Log a warning when a stored ``outline_lps`` is more than 1 mm from image + shape."""
    if stored is None:
        return
    computed = roi.patient_outline()
    deviation = max(
        float(_distance_to_closed_polyline(stored, computed).max()),
        float(_distance_to_closed_polyline(computed, stored).max()),
    )
    if deviation > OUTLINE_TOLERANCE_MM:
        logger.warning(
            "%s: patient.outline_lps is up to %.2f mm away from the outline computed from the image "
            "plane and the shape; using the image-plane form (the outline is derived data)",
            where,
            deviation,
        )


def _distance_to_closed_polyline(
    points: NDArray[np.float64], polyline: NDArray[np.float64]
) -> NDArray[np.float64]:
    """(M,) distance of each of ``points`` (M, 3) to the closed polyline (N, 3).

    Works in chunks of points so that long freehand or mask outlines stay cheap in memory.
    """
    a = polyline
    ab = np.roll(polyline, -1, axis=0) - a
    length2 = np.einsum("ij,ij->i", ab, ab)
    length2 = np.where(length2 > 0, length2, 1.0)
    out = np.empty(points.shape[0], dtype=float)
    step = max(1, 2**20 // max(1, a.shape[0]))
    for start in range(0, points.shape[0], step):
        p = points[start : start + step]
        ap = p[:, None, :] - a[None, :, :]
        t = np.clip(np.einsum("mij,ij->mi", ap, ab) / length2, 0.0, 1.0)
        closest = a[None, :, :] + t[:, :, None] * ab[None, :, :]
        out[start : start + step] = np.linalg.norm(p[:, None, :] - closest, axis=2).min(axis=1)
    return out


def _annotations_from_dict(d: object, source: str) -> Annotations:
    d = as_object(d, "(document)")
    strict = check_version(
        d,
        FORMAT_NAME,
        _MAJOR,
        _MINOR,
        "a modic annotation file",
        missing_format=f"required field is missing (expected {FORMAT_NAME!r}); "
        "is this a modic annotation file?",
        unsupported=f"this modic ({__version__}) reads versions {_MAJOR}.x (it writes {FORMAT_VERSION}); "
        "a newer modic may read it",
    )
    if not strict:
        logger.warning(
            "%s: written in annotation format %s, newer than %s; fields this modic does not know are ignored",
            source,
            d["version"],
            FORMAT_VERSION,
        )
    check_keys(d, ("format", "version", "study", "tool", "created", "modified", "rois"), strict=strict)
    with at("study"):
        study = _get_object(d, "study")
        check_keys(study, ("study_instance_uid", "frame_of_reference_uid"), ("description",), strict=strict)
        study_uid = get_str(study, "study_instance_uid")
        for_uid = get_str(study, "frame_of_reference_uid")
        description = get_str(study, "description") if "description" in study else ""
    with at("tool"):
        tool = _get_object(d, "tool")
        check_keys(tool, ("name", "version"), strict=strict)
        tool_dict = {"name": get_str(tool, "name"), "version": get_str(tool, "version")}
    created = check_timestamp(d["created"], "created")
    modified = check_timestamp(d["modified"], "modified")
    items = d["rois"]
    if not isinstance(items, list):
        raise AnnotationFormatError(f"expected an array, got {json_type(items)}", field="rois")
    rois: list[ROI] = []
    for i, item in enumerate(items):
        with at(f"rois[{i}]"):
            roi, stored = _roi_from_dict(item, strict=strict)
        _check_outline(roi, stored, f"{source}: rois[{i}] ({roi.label})")
        rois.append(roi)
    return Annotations(
        rois=rois,
        study_instance_uid=study_uid,
        frame_of_reference_uid=for_uid,
        description=description,
        created=created,
        modified=modified,
        tool=tool_dict,
    )
