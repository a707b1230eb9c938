"""One study's ROIs (:class:`ROI`, :class:`Annotations`) and the versioned JSON file that
keeps them (:func:`read_annotations`, :func:`write_annotations`); the format is described
in :mod:`modic.annotations`."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from .._io import atomic_write_bytes
from .._jsondoc import (
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
from ..errors import AnnotationFormatError
from ._common import (
    DEFAULT_OUTLINE_POINTS,
    MAX_ROIS,
    MM_DECIMALS,
    _get_object,
    _get_points,
)
from .labels import _KINDS, VERTEBRAE, Endplate, RoiKind, RoiLabel
from .planes import ImagePlane
from .shapes import Mask, Shape, shape_from_dict

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)

FORMAT_NAME = "modic-annotations"
#: The version this module writes.
FORMAT_VERSION = "1.1"
_MAJOR, _MINOR = 1, 1
_SCHEMA_RESOURCE = "annotations-1.1.schema.json"
#: Who made an ROI's shape (format 1.1; see :class:`ROI`).
ORIGINS: tuple[str, ...] = ("drawn", "proposed", "derived", "imported")
RoiOrigin = Literal["drawn", "proposed", "derived", "imported"]

#: Largest tolerated disagreement between ``outline_lps`` and image + shape, in mm.
OUTLINE_TOLERANCE_MM = 1.0


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
    origin : {"drawn", "proposed", "derived", "imported"}
        Format 1.1. Who made the shape: a person (``"drawn"``, the default); modic, from the
        image, for a person to accept or edit (``"proposed"``); modic, from another tool's
        segmentation such as a vertebra label map (``"derived"``); another program's file,
        such as a DICOM SR (``"imported"``). A person who edits a proposed or derived ROI
        makes it ``"drawn"`` (:meth:`touch` with ``by_hand=True``).
    source : str
        Format 1.1. What a proposed, derived or imported ROI came from, in words (e.g.
        ``"TotalSpineSeg labels seg.nii.gz, label 44"``); ``""`` for a drawn ROI.
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
    origin: RoiOrigin = "drawn"
    source: str = ""

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise AnnotationFormatError(
                f"must be one of {', '.join(repr(o) for o in ORIGINS)}, got {self.origin!r}", field="origin"
            )
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
        _check_strings_and_times(self, ("author", "tool_version", "comment", "source"))
        if isinstance(self.shape, Mask):
            s, im = self.shape, self.image
            if s.x0 + s.width > im.columns or s.y0 + s.height > im.rows:
                raise AnnotationFormatError(
                    f"a {s.height}x{s.width} mask at column {s.x0}, row {s.y0} does not fit in the "
                    f"{im.rows}x{im.columns} image",
                    field="shape",
                )

    def touch(self, *, by_hand: bool = False) -> None:
        """Set :attr:`modified` to now (call after editing the ROI).

        ``by_hand=True`` (a person edited the shape or label): a proposed, derived or
        imported ROI becomes ``"drawn"``, and :attr:`source` keeps where it started.
        """
        self.modified = utc_now()
        if by_hand and self.origin != "drawn":
            self.source = f"edited by hand from {self.origin}" + (f": {self.source}" if self.source else "")
            self.origin = "drawn"

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
            "origin": self.origin,
            "source": self.source,
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
        if len(self.rois) > MAX_ROIS:
            raise AnnotationFormatError(
                f"{len(self.rois)} ROIs, more than the {MAX_ROIS} one document may hold", field="rois"
            )
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
        return self._of_kind("reference")

    def bodies(self) -> list[ROI]:
        """Vertebral body outlines (kind ``"body"``) in anatomical order (head -> foot), stable."""
        return self._of_kind("body")

    def fat_regions(self) -> list[ROI]:
        """Fat regions (kind ``"fat"``) in anatomical order (head -> foot), stable."""
        return self._of_kind("fat")

    def _of_kind(self, kind: RoiKind) -> list[ROI]:
        return sorted((r for r in self.rois if r.label.kind == kind), key=lambda r: r.label.sort_key)

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
            raise ValueError(f"kind must be one of {', '.join(repr(k) for k in _KINDS)}, got {kind!r}")
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


def _roi_from_dict(d: object, *, strict: bool) -> tuple[ROI, NDArray[np.float64] | None]:
    d = as_object(d)
    optional = ("patient", "author", "comment", "tool_version", "origin", "source")
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
        origin=get_str(d, "origin") if "origin" in d else "drawn",  # type: ignore[arg-type]
        source=get_str(d, "source") if "source" in d else "",
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
    if len(items) > MAX_ROIS:
        raise AnnotationFormatError(
            f"{len(items)} ROIs, more than the {MAX_ROIS} one document may hold", field="rois"
        )
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
