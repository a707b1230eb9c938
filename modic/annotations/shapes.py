"""2-D shapes in image coordinates: :class:`Polygon`, :class:`Rectangle`, :class:`Ellipse`,
:class:`Mask`; outlines and rasterisation (pixel centres inside)."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._jsondoc import (
    as_object,
    check_keys,
    get_str,
)
from ..errors import AnnotationFormatError
from ._common import (
    DEFAULT_OUTLINE_POINTS,
    PIXEL_DECIMALS,
    _as_float,
    _as_int,
    _as_point_array,
    _check_point_count,
    _check_type,
    _get_int,
    _get_number,
    _get_points,
    _round,
)

logger = logging.getLogger(__name__)

_BASE64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


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
        _check_point_count(pts.shape[0], "points")
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
