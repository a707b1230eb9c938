"""How far a Modic change reaches: into the vertebral body, and along the endplate.

Two research gradings of a change's size are measured on the sagittal images:

- **Height** (Udby et al., J Orthop Res 2022): the greatest height the change reaches
  into the vertebral body, as a share of the body's height, graded **A** (< 25 %),
  **B** (25-50 %) or **C** (> 50 %).
- **Length along the endplate** (Jensen et al., Nordic Modic Consensus Group, Acta Radiol
  2007): the antero-posterior length of the endplate the change covers, as a share of the
  endplate's length, graded **small** (< 25 %), **medium** (25-50 %) or **large**
  (>= 50 %).

This module holds the result (:class:`Extent`), the two gradings, and the measurement
(:func:`measure_extent`), see its docstring for the method and its failure modes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from .criteria import ModicType

if TYPE_CHECKING:
    from .annotations import ROI
    from .criteria import ClassifierParameters
    from .reading import PreparedRegion
    from .results import ModicResult
    from .study import LoadedStudy

__all__ = [
    "Extent",
    "HEIGHT_GRADES",
    "LENGTH_GRADES",
    "height_grade",
    "length_grade",
    "measure_extent",
    "add_extent",
    "body_for",
    "along_endplate",
]

HeightGrade = Literal["A", "B", "C"]
LengthGrade = Literal["small", "medium", "large"]
BodySource = Literal["outline", "estimated"]

#: Udby height grades and their bounds (share of the vertebral body height): A < 0.25,
#: B 0.25-0.50, C > 0.50 (Udby et al., J Orthop Res 2022; the phantom's
#: :func:`modic.phantom.spec.udby_grade` uses the same rule: 0.25 is B, 0.50 is B).
HEIGHT_GRADES: tuple[str, ...] = ("A", "B", "C")
#: Length grades over the endplate (share of its antero-posterior length): small < 0.25,
#: medium 0.25-0.50, large >= 0.50 (Nordic Modic Consensus Group, Jensen et al. 2007).
LENGTH_GRADES: tuple[str, ...] = ("small", "medium", "large")


def height_grade(fraction: float) -> HeightGrade:
    """Udby grade of a change reaching ``fraction`` of the vertebral body height.

    Examples
    --------
    >>> height_grade(0.1), height_grade(0.25), height_grade(0.5), height_grade(0.51)
    ('A', 'B', 'B', 'C')
    """
    if not fraction >= 0:
        raise ValueError(f"height fraction must be >= 0, got {fraction!r}")
    if fraction < 0.25:
        return "A"
    if fraction <= 0.5:
        return "B"
    return "C"


def length_grade(fraction: float) -> LengthGrade:
    """Nordic length grade of a change covering ``fraction`` of the endplate's length.

    Examples
    --------
    >>> length_grade(0.2), length_grade(0.25), length_grade(0.49), length_grade(0.5)
    ('small', 'medium', 'medium', 'large')
    """
    if not fraction >= 0:
        raise ValueError(f"length fraction must be >= 0, got {fraction!r}")
    if fraction < 0.25:
        return "small"
    if fraction < 0.5:
        return "medium"
    return "large"


@dataclass(frozen=True)
class Extent:
    """The size of one Modic change, measured on a sagittal slice.

    Attributes
    ----------
    height_mm : float
        Greatest height of the change into the vertebral body, from the endplate along
        the body's head-foot axis (perpendicular to the endplate), mm.
    body_height_mm : float
        Height of the vertebral body along the same axis, mm (see :func:`measure_extent`).
    height_fraction : float
        ``height_mm / body_height_mm`` (capped at 1).
    height_grade : {"A", "B", "C"}
        Udby grade of ``height_fraction``.
    length_mm : float
        Antero-posterior length of the endplate the change covers, mm.
    endplate_length_mm : float
        Antero-posterior length of the endplate, mm.
    length_fraction : float
        ``length_mm / endplate_length_mm`` (capped at 1).
    length_grade : {"small", "medium", "large"}
        Nordic grade of ``length_fraction``.
    body_source : {"outline", "estimated"}
        ``"outline"``: the body was a drawn (or imported) body ROI; ``"estimated"``: found
        from the image.
    slice_index : int
        The slice (0-based, of the study's sagittal T1 series, whose grid the extent is
        measured on) where the change reached highest; -1 when unknown.
    slice_offset_mm : float
        That slice's distance from the T1 slice of the endplate ROI (mm, along the normal).
    """

    height_mm: float
    body_height_mm: float
    height_fraction: float
    height_grade: HeightGrade
    length_mm: float
    endplate_length_mm: float
    length_fraction: float
    length_grade: LengthGrade
    body_source: BodySource
    slice_index: int = -1
    slice_offset_mm: float = 0.0

    def __post_init__(self) -> None:
        for name in ("height_mm", "body_height_mm", "length_mm", "endplate_length_mm"):
            v = getattr(self, name)
            if not v >= 0:
                raise ValueError(f"Extent.{name} must be >= 0, got {v!r}")
        for name in ("height_fraction", "length_fraction"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"Extent.{name} must be within 0-1, got {v!r}")
        if self.height_grade not in HEIGHT_GRADES:
            raise ValueError(f"Extent.height_grade must be one of {HEIGHT_GRADES}, got {self.height_grade!r}")
        if self.length_grade not in LENGTH_GRADES:
            raise ValueError(f"Extent.length_grade must be one of {LENGTH_GRADES}, got {self.length_grade!r}")
        if self.body_source not in ("outline", "estimated"):
            raise ValueError(f"Extent.body_source must be 'outline' or 'estimated', got {self.body_source!r}")

    @classmethod
    def from_measurements(
        cls,
        height_mm: float,
        body_height_mm: float,
        length_mm: float,
        endplate_length_mm: float,
        body_source: BodySource,
        slice_index: int = -1,
        slice_offset_mm: float = 0.0,
    ) -> Extent:
        """An extent from its four lengths: the fractions and grades follow."""
        hf = min(1.0, height_mm / body_height_mm) if body_height_mm > 0 else float("nan")
        lf = min(1.0, length_mm / endplate_length_mm) if endplate_length_mm > 0 else float("nan")
        return cls(
            height_mm=float(height_mm),
            body_height_mm=float(body_height_mm),
            height_fraction=float(hf),
            height_grade=height_grade(hf),
            length_mm=float(length_mm),
            endplate_length_mm=float(endplate_length_mm),
            length_fraction=float(lf),
            length_grade=length_grade(lf),
            body_source=body_source,
            slice_index=int(slice_index),
            slice_offset_mm=float(slice_offset_mm),
        )

    @property
    def summary(self) -> str:
        """One line, e.g. ``"grade B (38 % of the L4 body height), medium (45 % of the endplate)"``."""
        return (
            f"grade {self.height_grade} ({self.height_fraction:.0%} of the body height), "
            f"{self.length_grade} ({self.length_fraction:.0%} of the endplate length)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lengths in mm)."""
        return {
            "height_mm": round(self.height_mm, 2),
            "body_height_mm": round(self.body_height_mm, 2),
            "height_fraction": round(self.height_fraction, 4),
            "height_grade": self.height_grade,
            "length_mm": round(self.length_mm, 2),
            "endplate_length_mm": round(self.endplate_length_mm, 2),
            "length_fraction": round(self.length_fraction, 4),
            "length_grade": self.length_grade,
            "body_source": self.body_source,
            "slice_index": self.slice_index,
            "slice_offset_mm": round(self.slice_offset_mm, 2),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Extent:
        """Inverse of :meth:`to_dict`."""
        return cls(
            height_mm=float(d["height_mm"]),
            body_height_mm=float(d["body_height_mm"]),
            height_fraction=float(d["height_fraction"]),
            height_grade=d["height_grade"],
            length_mm=float(d["length_mm"]),
            endplate_length_mm=float(d["endplate_length_mm"]),
            length_fraction=float(d["length_fraction"]),
            length_grade=d["length_grade"],
            body_source=d["body_source"],
            slice_index=int(d.get("slice_index", -1)),
            slice_offset_mm=float(d.get("slice_offset_mm", 0.0)),
        )


# ----------------------------------------------------------------------------- measurement
#: How far (mm) around the endplate ROI's centre the images are searched for the body
#: and the change: a lumbar body is 25-30 mm tall and 30-50 mm deep (so the body fits).
SEARCH_RADIUS_MM = 55.0
#: Plausible vertebral body heights and endplate lengths (mm): adult lumbar bodies are
#: about 22-32 mm tall and 30-50 mm deep; outside 12-45 / 15-70 mm the outline found is
#: not a body (a disc, a fused level, a missed cortex), and the extent is not measured.
BODY_HEIGHT_RANGE_MM = (12.0, 45.0)
ENDPLATE_LENGTH_RANGE_MM = (15.0, 70.0)
#: The endplate's length is measured on the line this share of the body height in from
#: the endplate: deep enough to pass under a concave endplate's rim, above the body's waist.
ENDPLATE_LINE_DEPTH = 0.25
#: A body's edge is where sqrt(T1 x T2), relative to the reference marrow, falls below
#: this (cortical bone: 0.15-0.5 on the phantom's endplates), or a dip (:data:`DIP_MAX`):
#: the classifier's ``cortex_level`` (0.5). Sclerosis (type 3) can be as dark, so a change
#: with a type-3 component is only measured against a drawn body outline.
EDGE_LEVEL = 0.5
#: Along each antero-posterior bin, the change runs from the endplate into the body while
#: its pixels follow each other with gaps of at most this many pixels; it must start within
#: ``START_MM`` of the endplate line. A patch of fatty marrow deeper in the body, joined to
#: the change only around a corner, does not lengthen it. Design values.
GAP_PX = 2.5
START_MM = 4.0
#: The change's edge: where a pixel's departure from the reference, along the direction
#: of the change's own core, falls below this share of the core's (half maximum, as a
#: full width at half maximum measures a blurred object). Design value.
CORE_SHARE = 0.5
#: Fewest abnormal voxels of the change's type in the endplate ROI to trace it from.
MIN_SEED_VOXELS = 3


@dataclass(frozen=True)
class _Frame:
    """The T1 slice grid around an endplate ROI and the endplate's axes on it.

    ``u`` points from the body to the disc (the head-foot axis of the vertebra at this
    endplate) and ``e`` along the endplate (antero-posterior), both in-plane unit LPS
    vectors; ``w``, ``t`` are each window pixel's coordinates along them (mm, from the
    ROI's centroid).
    """

    slice_index: int
    rows: NDArray[np.intp]  # (n,) rows of the window pixels
    cols: NDArray[np.intp]  # (n,) columns
    shape: tuple[int, int]  # window (rows, cols)
    origin: tuple[int, int]  # window's top-left (row, col) in the slice
    points: NDArray[np.float64]  # (n, 3) LPS of the window pixel centres
    u: NDArray[np.float64]  # (3,) LPS
    e: NDArray[np.float64]  # (3,) LPS
    w: NDArray[np.float64]  # (h, w) mm along u
    t: NDArray[np.float64]  # (h, w) mm along e
    pixel_mm: float
    edge: NDArray[np.bool_]  # (h, w): on the window border (the image's, where it is cut)


def along_endplate(
    points: NDArray[np.float64], toward_disc: NDArray[np.float64], normal: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Position of each of an endplate ROI's points along its endplate, mm.

    Parameters
    ----------
    points : (n, 3) ndarray
        LPS positions (the ROI's pixel centres, :func:`modic.measure.roi_points`).
    toward_disc : (3,) ndarray
        Unit LPS vector from the body towards the disc (``modic.reading._disc_direction``).
    normal : (3,) ndarray
        Unit normal of the T1 slices (the sagittal plane's, left-right).

    Returns
    -------
    (n,) ndarray
        Along the endplate (antero-posterior in the T1 plane: the in-plane direction
        perpendicular to ``toward_disc``, the ``e`` axis of the extent's frame), from the
        points' centroid, mm.

    Examples
    --------
    >>> pts = np.array([[0.0, -10.0, 0.0], [0.0, 0.0, 0.5], [0.0, 12.0, 1.0]])
    >>> np.round(np.abs(along_endplate(pts, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))), 2)
    array([10.67,  0.67, 11.33])
    """
    _, e = _endplate_axes(toward_disc, normal)
    return np.asarray((points - points.mean(axis=0)) @ e, dtype=np.float64)


def _endplate_axes(
    toward_disc: NDArray[np.float64], normal: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The in-plane unit vectors ``(u, e)`` of an endplate's frame, LPS: ``u`` towards the
    disc (``toward_disc`` without its component along the slices' ``normal``), ``e`` along
    the endplate (``normal x u``)."""
    u = toward_disc - (toward_disc @ normal) * normal
    u = u / np.linalg.norm(u)
    return u, np.cross(normal, u)


def _frame(study: Any, roi: Any, pts: Any, slice_index: int) -> _Frame:
    from .reading import _disc_direction

    g = study.t1.geometry
    rc = g.patient_to_rowcol(pts)
    centre = pts.mean(axis=0)
    normal = g.normal
    u, e = _endplate_axes(_disc_direction(roi, pts), normal)
    ps = g.pixel_spacing
    pixel = float(min(ps))
    c_rc = rc.mean(axis=0)
    half = np.array([SEARCH_RADIUS_MM / ps[0], SEARCH_RADIUS_MM / ps[1]])
    r0 = int(max(0, np.floor(c_rc[0] - half[0])))
    r1 = int(min(g.rows, np.ceil(c_rc[0] + half[0]) + 1))
    c0 = int(max(0, np.floor(c_rc[1] - half[1])))
    c1 = int(min(g.columns, np.ceil(c_rc[1] + half[1]) + 1))
    rr, cc = np.mgrid[r0:r1, c0:c1]
    shape = rr.shape
    rows, cols = rr.ravel(), cc.ravel()
    ijk = np.column_stack([np.full(rows.size, slice_index), rows, cols]).astype(float)
    p = g.index_to_patient(ijk)
    # project the ROI's centre onto this slice, so neighbour slices share the (t, w) axes
    c = centre - ((centre - g.positions[slice_index]) @ normal) * normal
    w = ((p - c) @ u).reshape(shape)
    t = ((p - c) @ e).reshape(shape)
    edge = np.zeros(shape, dtype=bool)
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    return _Frame(slice_index, rows, cols, shape, (r0, c0), p, u, e, w, t, pixel, edge)


def _sample(study: Any, fr: _Frame) -> dict[Any, Any] | None:
    """Every sequence at the window's pixel centres, ``(h, w)`` each; None if a series
    has no slice within half its spacing of the window's plane."""
    from .measure import bilinear

    out = {}
    centre = fr.points.mean(axis=0)
    for role, vol in study.volumes.items():
        g = vol.geometry
        (k,), (dist,) = g.nearest_slice(centre[None])
        if abs(dist) > g.slice_spacing / 2 + 1e-6:
            return None
        rc = g.patient_to_rowcol(fr.points)
        inside = g.contains_in_plane(rc)
        vals = np.where(inside, bilinear(vol.array[int(k)], rc), np.nan)
        out[role] = vals.reshape(fr.shape)
    return out


def _voxel_type_map(images: dict[Any, Any], prep: Any, parameters: Any) -> tuple[Any, Any]:
    """:func:`modic.criteria.voxel_type_map` against the prepared region's reference."""
    from .criteria import voxel_type_map

    return voxel_type_map(images, prep.reference_values, prep.context, parameters)


def _smooth3(img: Any) -> Any:
    a = np.pad(np.where(np.isfinite(img), img, 0.0), 1, mode="edge")
    n = a.shape
    return sum(a[i : n[0] - 2 + i, j : n[1] - 2 + j] for i in range(3) for j in range(3)) / 9.0


#: A cortical line next to bright tissue (fat, CSF on T2) is thinner than a pixel and is
#: read partial-volumed, at 0.3-0.7 of marrow on the phantom: besides anything below the
#: cortex level, a dip to below ``DIP_MAX`` that lies ``DIP_DEPTH`` below the highest
#: signal within ``DIP_WINDOW_MM`` behind it and half that below the highest ahead of it
#: is a cortical line. Marrow noise
#: (SNR >= 8: a relative sd <= 0.07 on three averaged lines) makes no such dip, nor does
#: the edge of a change (a ramp, not a dip). Design values, checked on the phantom.
DIP_MAX = 0.8
DIP_DEPTH = 0.25
DIP_WINDOW_MM = 2.5


def _running_max(a: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """``out[:, i] = a[:, i : i + width].max(axis=1)`` for every full window, ``(k, s -
    width + 1)``: one elementwise maximum per offset (numpy's reduction over a strided
    window view is several times slower)."""
    m = a.shape[1] - width + 1
    out = a[:, :m].copy()
    for j in range(1, width):
        np.maximum(out, a[:, j : j + m], out=out)
    return out


def _dip_window(step_mm: float) -> int:
    """:data:`DIP_WINDOW_MM` in profile steps."""
    return max(1, int(round(DIP_WINDOW_MM / step_mm)))


def _first_boundaries(
    profiles: NDArray[np.float64],
    lengths: NDArray[np.intp],
    level: float,
    step_mm: float,
    last: NDArray[np.intp] | None = None,
) -> NDArray[np.intp]:
    """Per profile, the index of the centre (darkest point) of its first cortical line
    (see :data:`DIP_MAX`), or -1.

    Parameters
    ----------
    profiles : (k, s) ndarray
        ``k`` profiles of ``s`` samples ``step_mm`` apart; only the first ``lengths[i]``
        samples of profile ``i`` are read (the rest may be NaN).
    lengths : (k,) int ndarray
    level : float
        Anything below this is a cortical line.
    step_mm : float
    last : (k,) int ndarray, optional
        Lines that start after index ``last[i]`` are not looked for (a profile read only
        part of the way: a line is known only :func:`_dip_window` steps before its end).

    Returns
    -------
    (k,) int ndarray
        -1 where a profile has no cortical line (up to ``last``).
    """
    k, s = profiles.shape
    n = _dip_window(step_mm)
    valid = np.arange(s)[None, :] < lengths[:, None]
    v = np.where(valid, profiles, -np.inf)  # past its end a profile reads as the padding
    pad = np.full((k, s + 2 * n), -np.inf)
    pad[:, n : n + s] = v
    left = _running_max(pad[:, : s + n], n + 1)  # max of v[i-n .. i]
    right = _running_max(pad[:, n:], n + 1)  # max of v[i .. i+n]
    # behind (the body's side) a drop of DIP_DEPTH, ahead a rise of half that (a disc or
    # fat beyond the line may be only a little brighter than partial-volumed cortex)
    with np.errstate(invalid="ignore"):
        dip = (v < DIP_MAX) & (left - v >= DIP_DEPTH) & (right - v >= DIP_DEPTH / 2)
    hit = ((v < level) | dip) & valid
    if last is not None:
        hit &= np.arange(s)[None, :] <= last[:, None]
    first = np.argmax(hit, axis=1)
    # on the line's near slope: move to its darkest point, its centre
    ahead = np.where(valid, profiles, np.inf)
    ahead = np.concatenate([ahead, np.full((k, n), np.inf)], axis=1)
    near = np.take_along_axis(ahead, first[:, None] + np.arange(n + 1)[None, :], axis=1)
    centre = first + np.argmin(near, axis=1)
    return np.where(hit.any(axis=1), centre, -1)


def _boundary_image(images: dict[Any, Any], prep: Any) -> Any:
    """``(h, w)`` signal in which only cortical bone (and air) is dark: the geometric mean
    of T1 and T2 relative to the reference marrow (T1 alone without a T2).

    Cortical bone gives no signal on any sequence; marrow is ~1 on both; a type-1 change
    (T1 0.6-0.8, T2 1.2-2) and a type-2 change (T1 1.2-1.4) stay near or above 1; disc
    (T1-dark, T2-bright) stays near 0.8; sclerosis (type 3, ~0.6 on both) is the darkest
    tissue that is not cortex.
    """
    from .sequence import Role

    ref = {r: float(np.median(v)) for r, v in prep.reference_values.items()}
    t1 = images[Role.T1] / ref[Role.T1]
    if Role.T2 in images and Role.T2 in ref:
        t2 = images[Role.T2] / ref[Role.T2]
        return np.sqrt(np.clip(t1, 0.0, None) * np.clip(t2, 0.0, None))
    return t1


#: How far the body's profiles are read first (mm): past the far endplate of most bodies
#: from a quarter of their height in (the rest are read on to SEARCH_RADIUS_MM). Only a
#: speed setting, it changes no result (see ``walk`` in _estimate_body).
_FIRST_REACH_MM = 24.0


def _estimate_body(fr: _Frame, bright: Any, level: float) -> tuple[Any, str | None]:  # noqa: C901
    """The vertebral body on the window: ``(h, w)`` bool mask, or None and a reason.

    The body is the marrow between the cortical lines that bound it: its two endplates and
    its anterior and posterior cortex. A cortical line is where ``bright``
    (:func:`_boundary_image`) falls below ``level`` (the classifier's ``cortex_level``,
    0.5 of marrow), read on three parallel lines one pixel apart (averaged, so noise does
    not break or fake a line, while the thin cortex is not blurred across). Profiles are
    followed from the endplate ROI's centre: along the head-foot axis ``u`` to both
    endplates (the body height at the centre), then along the endplate on the line
    :data:`ENDPLATE_LINE_DEPTH` of that height in (the endplate's antero-posterior ends),
    then along ``u`` at every half pixel between those ends (the body's outline).
    """
    from .measure import bilinear

    img = np.where(np.isfinite(bright), bright, np.nan)
    step = 0.25 * fr.pixel_mm
    span = np.arange(0.0, SEARCH_RADIUS_MM, step)
    n_dip = _dip_window(step)
    first_reach = int(np.ceil(_FIRST_REACH_MM / step)) + n_dip + 1
    # (t, w) -> fractional window (row, col): invert the linear map of the window grid
    h, wd = fr.shape
    A = np.array(
        [
            [fr.t[min(1, h - 1), 0] - fr.t[0, 0], fr.t[0, min(1, wd - 1)] - fr.t[0, 0]],
            [fr.w[min(1, h - 1), 0] - fr.w[0, 0], fr.w[0, min(1, wd - 1)] - fr.w[0, 0]],
        ]
    )
    Ainv = np.linalg.inv(A)
    filled = np.where(np.isfinite(img), img, 0.0)

    def at(tt: Any, ww: Any) -> Any:
        dt, dw = np.asarray(tt, float) - fr.t[0, 0], np.asarray(ww, float) - fr.w[0, 0]
        d = np.stack(np.broadcast_arrays(dt, dw), axis=-1)
        rc = d @ Ainv.T
        inside = (rc[..., 0] >= 0) & (rc[..., 0] <= h - 1) & (rc[..., 1] >= 0) & (rc[..., 1] <= wd - 1)
        vals = bilinear(filled, rc.reshape(-1, 2)).reshape(rc.shape[:-1])
        return np.where(inside, vals, np.nan)

    def walk(t0: Any, w0: Any, dt: Any, dw: Any) -> NDArray[np.float64]:
        """Distance (mm) from each ``(t0, w0)`` along its ``(dt, dw)`` (``(k,)`` each) to
        the first cortical line (NaN where none is met within the window).

        The profiles are read to :data:`_FIRST_REACH_MM` first (a body is 22-32 mm tall),
        and to :data:`SEARCH_RADIUS_MM` only where no line was met: the same lines as
        reading them all the way."""
        px = fr.pixel_mm
        t0, w0, dt, dw = (np.asarray(x, float)[:, None] for x in (t0, w0, dt, dw))
        out = np.full(t0.shape[0], np.nan)
        todo = np.arange(t0.shape[0])
        for reach in (min(first_reach, span.size), span.size):
            sp = span[:reach]
            ta, wa, dta, dwa = t0[todo], w0[todo], dt[todo], dw[todo]
            offsets = (-1.0, 0.0, 1.0)  # the three parallel lines, sampled in one call
            tt = np.stack([ta + dta * sp - dwa * o * px for o in offsets])
            ww = np.stack([wa + dwa * sp + dta * o * px for o in offsets])
            prof = np.mean(at(tt, ww), axis=0)
            nan = np.isnan(prof)
            ended = nan.any(axis=1)  # left the window: the whole profile was read
            lengths = np.where(ended, np.argmax(nan, axis=1), reach)
            last = None if reach == span.size else np.where(ended, reach, reach - n_dip - 1)
            i = _first_boundaries(prof, lengths, level, step, last)
            out[todo] = np.where(i >= 0, span[np.maximum(i, 0)], np.nan)
            todo = todo[(i < 0) & ~ended]
            if not todo.size or reach == span.size:
                break
        return out

    if not at(0.0, 0.0) >= level:
        return None, "the endplate ROI's centre is as dark as cortical bone"
    top0, bot0 = (float(x) for x in walk([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, -1.0]))
    if np.isnan(top0) or np.isnan(bot0):
        return None, "no endplate found along the body's head-foot axis within the image"
    height0 = top0 + bot0
    lo, hi = BODY_HEIGHT_RANGE_MM
    if not lo <= height0 <= hi:
        return None, (
            f"the body found is {height0:.0f} mm tall along its head-foot axis, outside "
            f"{lo:.0f}-{hi:.0f} mm: not a vertebral body outline"
        )
    w_line = top0 - ENDPLATE_LINE_DEPTH * height0
    front, back = (float(x) for x in walk([0.0, 0.0], [w_line, w_line], [-1.0, 1.0], [0.0, 0.0]))
    if np.isnan(front) or np.isnan(back):
        return None, "the body's anterior or posterior cortex was not found within the image"
    length = front + back
    lo, hi = ENDPLATE_LENGTH_RANGE_MM
    if not lo <= length <= hi:
        return None, (
            f"the endplate found is {length:.0f} mm long, outside {lo:.0f}-{hi:.0f} mm: not a vertebral body"
        )
    ts = np.arange(-front + fr.pixel_mm / 2, back - fr.pixel_mm / 2 + 1e-9, fr.pixel_mm / 2)
    # every half pixel between the ends, up and down along u from the endplate line
    k = ts.size
    ab = walk(np.r_[ts, ts], np.full(2 * k, w_line), np.zeros(2 * k), np.r_[np.ones(k), -np.ones(k)])
    a, b = ab[:k], ab[k:]
    with np.errstate(invalid="ignore"):
        found = np.isfinite(a) & np.isfinite(b) & (a + b <= BODY_HEIGHT_RANGE_MM[1])
    tops = np.where(found, w_line + a, np.nan)
    bots = np.where(found, w_line - b, np.nan)
    ok = np.isfinite(tops)
    if ok.sum() < 0.6 * ts.size:
        return None, "the body's outline could not be followed over most of the endplate"
    tops = np.interp(ts, ts[ok], tops[ok])
    bots = np.interp(ts, ts[ok], bots[ok])
    mask = (
        (fr.t >= -front)
        & (fr.t <= back)
        & (fr.w <= np.interp(fr.t, ts, tops))
        & (fr.w >= np.interp(fr.t, ts, bots))
    )
    return mask, None


def _body_from_roi(fr: _Frame, study: Any, body: Any) -> Any:
    """A body ROI (or a (rows, cols) bool mask on the T1 slice) as a window mask."""
    from skimage.draw import polygon2mask

    g = study.t1.geometry
    if isinstance(body, np.ndarray):
        if body.shape != (g.rows, g.columns):
            shape = (g.rows, g.columns)
            raise ValueError(f"body mask must have the T1 slice's shape {shape}, got {body.shape}")
        full = body.astype(bool)
    else:
        outline = body.patient_outline(128)
        rc = g.patient_to_rowcol(outline)
        full = polygon2mask((g.rows, g.columns), rc)
    r0, c0 = fr.origin
    return full[r0 : r0 + fr.shape[0], c0 : c0 + fr.shape[1]]


def _columns(fr: _Frame, mask: Any) -> tuple[Any, Any, Any]:
    """Per antero-posterior bin (one pixel wide): its centre ``t``, and the highest and
    lowest ``w`` of ``mask`` in it (NaN where empty)."""
    b = np.floor(fr.t / fr.pixel_mm).astype(int)
    lo_b, hi_b = int(b.min()), int(b.max())
    n = hi_b - lo_b + 1
    top = np.full(n, -np.inf)
    bot = np.full(n, np.inf)
    bi = (b - lo_b)[mask]
    wv = fr.w[mask]
    np.maximum.at(top, bi, wv)
    np.minimum.at(bot, bi, wv)
    centres = (np.arange(n) + lo_b + 0.5) * fr.pixel_mm
    empty = ~np.isfinite(top)
    top[empty] = np.nan
    bot[empty] = np.nan
    return centres, top, bot


def _contiguous_depth(fr: _Frame, change: Any, top: Any) -> Any:
    """Per antero-posterior bin (as :func:`_columns`), the lowest ``w`` the change reaches
    from the endplate line ``top`` without a gap of more than :data:`GAP_PX` pixels (NaN
    where it does not start within :data:`START_MM` of the line)."""
    b = np.floor(fr.t / fr.pixel_mm).astype(int)
    lo_b = int(b.min())
    out = np.full(top.shape, np.nan)
    bi = (b - lo_b)[change]
    wv = fr.w[change]
    order = np.lexsort((-wv, bi))
    bi, wv = bi[order], wv[order]  # by bin, each from the endplate side (highest w) down
    if not bi.size:
        return out
    new_bin = np.r_[True, bi[1:] != bi[:-1]]
    first = np.flatnonzero(new_bin)  # where each bin's run starts
    last_of_bin = np.r_[new_bin[1:], True]
    # a bin's change ends at its first gap wider than GAP_PX, else at its deepest pixel
    gap = GAP_PX * fr.pixel_mm
    ends = last_of_bin | np.r_[-np.diff(wv) > gap, False]
    at = np.flatnonzero(ends)
    end = at[np.unique(np.cumsum(new_bin)[at], return_index=True)[1]]  # the first end per bin
    j = bi[first]
    with np.errstate(invalid="ignore"):
        near = np.isfinite(top[j]) & ~(top[j] - wv[first] > START_MM)  # it starts at the endplate
    out[j[near]] = wv[end[near]]
    return out


def _measure_slice(
    study: Any,
    roi: Any,
    pts: Any,
    prep: Any,
    codes: frozenset[int],
    slice_index: int,
    body: Any,
    parameters: Any,
) -> tuple[dict[str, float], str | None]:
    """Height and length of the change and its body on one T1 slice (or a reason)."""
    from scipy import ndimage

    fr = _frame(study, roi, pts, slice_index)
    images = _sample(study, fr)
    if images is None:
        return {}, "a series has no slice through this T1 slice"
    if body is None and 3 in codes:
        return {}, (
            "sclerosis (type 3) is as dark as the cortical bone that bounds the body, so the body cannot be "
            "found from the image around it; draw the body's outline (a 'body' ROI) to measure its extent"
        )
    if body is None:
        mask, why = _estimate_body(fr, _boundary_image(images, prep), EDGE_LEVEL)
        if mask is None:
            return {}, f"no vertebral body found on the image: {why}"
    else:
        mask = _body_from_roi(fr, study, body)
        if not mask.any():
            return {}, "the body outline does not cross this slice's window"
    if (mask & fr.edge).any():
        return {}, "the vertebral body reaches the edge of the image or of the search window"
    types, z = _voxel_type_map(images, prep, parameters)
    # seeds: the endplate ROI's own pixels, moved onto this slice
    g = study.t1.geometry
    rc = np.rint(g.patient_to_rowcol(pts)).astype(int)
    r0, c0 = fr.origin
    rr, cc = rc[:, 0] - r0, rc[:, 1] - c0
    ok = (rr >= 0) & (rr < fr.shape[0]) & (cc >= 0) & (cc < fr.shape[1])
    in_roi = np.zeros(fr.shape, dtype=bool)
    in_roi[rr[ok], cc[ok]] = True
    # a pixel is part of the change when it has one of its types and departs from the
    # reference, in the direction of the change's own core (the median of the ROI's pixels
    # of that type), by at least CORE_SHARE of the core's departure: the change's edge is
    # at half its own contrast, so milder heterogeneity of the marrow around it is not
    # taken for the change
    candidate = np.zeros(fr.shape, dtype=bool)
    for c in codes:
        own = in_roi & (types == c)
        if own.sum() < MIN_SEED_VOXELS:
            continue
        core = np.median(z[own], axis=0)
        size = float(np.linalg.norm(core))
        if size == 0:
            continue
        candidate |= (types == c) & (z @ (core / size) >= CORE_SHARE * size)
    # ... and most of its 3x3 neighbourhood too: isolated noise voxels do not carry the
    # change across normal marrow
    support = ndimage.uniform_filter(candidate.astype(float), size=3, mode="constant") * 9
    candidate &= support >= 4.5
    candidate &= mask  # never outside the body: fat and disc beside it can look like a change
    seeds = in_roi & candidate
    if seeds.sum() < MIN_SEED_VOXELS:
        return {}, (
            f"fewer than {MIN_SEED_VOXELS} voxels of the endplate ROI are abnormal in the change's "
            "pattern on this slice: the change cannot be traced from them"
        )
    lab, _ = ndimage.label(candidate, structure=np.ones((3, 3), dtype=bool))
    change = np.isin(lab, np.unique(lab[seeds])) & (lab > 0)
    if (change & fr.edge).any():
        return {}, "the change reaches the edge of the image or of the search window"
    centres, top, bot = _columns(fr, mask)
    cbot = _contiguous_depth(fr, change, top)
    half = fr.pixel_mm / 2
    # an estimated body's edges are the centres of its cortical lines; a drawn outline's are
    # the outer edges of its pixels. The change's depth runs from the endplate's edge to the
    # centre of its deepest pixel.
    pad = 0.0 if body is None else half
    depth = top + pad - cbot
    heights = top - bot + 2 * pad
    j0 = int(np.argmin(np.abs(np.where(np.isfinite(heights), centres, np.inf))))  # the ROI's centre
    if not np.isfinite(heights[j0]):
        return {}, "the vertebral body does not cross the endplate ROI"
    # bins at the body's rounded corners, where it is much lower than at the ROI, are left
    # out: a change there would be measured against a sliver of body
    usable = np.isfinite(depth) & np.isfinite(heights) & (heights >= 0.6 * heights[j0])
    if not usable.any():
        return {}, "the change does not overlap the vertebral body"
    i = int(np.nanargmax(np.where(usable, depth, -np.inf)))
    # endplate length: the body's extent along the endplate on the line a quarter in
    w_line = float(top[j0]) - ENDPLATE_LINE_DEPTH * float(heights[j0])
    on_line = mask & (np.abs(fr.w - w_line) <= half)
    if not on_line.any():
        return {}, "the endplate's length could not be measured"
    endplate_length = float(fr.t[on_line].max() - fr.t[on_line].min() + fr.pixel_mm)
    ct = fr.t[change]
    length = float(ct.max() - ct.min() + fr.pixel_mm)
    return (
        {
            "height_mm": float(min(depth[i], heights[i])),
            "body_height_mm": float(heights[i]),
            "length_mm": float(min(length, endplate_length)),
            "endplate_length_mm": endplate_length,
        },
        None,
    )


#: Voxel types (:mod:`modic.criteria` codes) a change of each type is traced through.
_CODES: dict[str, frozenset[int]] = {
    "1": frozenset({1}),
    "2": frozenset({2}),
    "3": frozenset({3}),
    "1/2": frozenset({1, 2}),
    "2/3": frozenset({2, 3}),
}


def measure_extent(
    study: LoadedStudy,
    prepared: PreparedRegion,
    modic_type: ModicType | str,
    *,
    body: ROI | NDArray[np.bool_] | None = None,
    parameters: ClassifierParameters | None = None,
    neighbours: int = 1,
) -> tuple[Extent | None, str | None]:
    """Measure how far a classified change reaches into its vertebral body.

    Method (on the sagittal T1 grid, every sequence sampled at its pixel centres):

    1. **Voxel types.** Every pixel within :data:`SEARCH_RADIUS_MM` of the endplate ROI is
       typed with the classifier's own voxel rule (:mod:`modic.criteria` steps 1-3: the
       log deviation from the ROI's reference marrow on T1, T2 and STIR in units of the
       reference's spread, matched to the Modic signatures with the study's own fat
       contrast). A pixel belongs to the change when it has one of the change's types
       (1/2: 1 or 2) and so do most of its 3x3 neighbours (noise voxels do not bridge
       normal marrow).
    2. **The body.** A body ROI (``body``: an outline drawn or imported in the annotations,
       ``body_source="outline"``), else the body estimated from the T1 image
       (``"estimated"``): the marrow bounded by the dark lines (a 3x3-smoothed T1 below
       ``cortex_level`` x reference marrow) met along profiles from the ROI's centre --
       along the head-foot axis to both endplates, then along the endplate to the
       anterior and posterior cortex, then along the head-foot axis at every pixel
       between those (see ``_estimate_body``).
    3. **Growth.** From the ROI's abnormal pixels of the change's types, the change is
       grown over connected pixels (8-neighbours) of those types inside the body.
    4. **Measures.** Across the endplate in one-pixel bins, the change's depth below the
       endplate surface (the body's edge on the disc side) along the vertebra's head-foot
       axis (perpendicular to the endplate: the in-plane direction of the ROI's short
       axis towards its disc, as the partial-volume step uses); the height is its
       greatest depth, and the body height is the body's local height in that same bin,
       so a concave endplate does not inflate the fraction. The length is the change's
       antero-posterior extent, against the endplate length (the body's extent along the
       endplate a quarter of its height in from the endplate).
    5. **Slice.** The ROI's T1 slice and ``neighbours`` slices either side are measured;
       the one where the change reaches highest is kept (its index in ``slice_index``).
       Udby et al. grade the greatest extent on the sagittal images; only slices next to
       the reader's own slice are searched, so a change seen far laterally is not
       mistaken for this one.

    The extent is not measured (None, and the reason) when the change's type has no
    voxel pattern (type 0, indeterminate), when fewer than :data:`MIN_SEED_VOXELS` of the
    ROI's voxels are abnormal in its pattern (a weak change typed from the region as a
    whole), when no plausible body is found (heights outside
    :data:`BODY_HEIGHT_RANGE_MM`, lengths outside :data:`ENDPLATE_LENGTH_RANGE_MM`, a
    dark change mistaken for the cortex, a missed cortical line that lets the body leak),
    or when the body or the change reaches the edge of the image.

    Failure modes to know: a change that reaches the opposite endplate or fills the body
    makes the estimated body the change itself (T1-dark type 1 stays above the cortex
    level, a dense type 3 may not); a change that merges with a change at the other
    endplate of the same body is measured as one; an ROI drawn on a slice far from the
    change's largest extent measures that slice's (smaller) extent.

    Parameters
    ----------
    study : LoadedStudy
    prepared : PreparedRegion
        The ROI as prepared for classification (:func:`modic.reading.prepare_region`).
    modic_type : ModicType or str
        The ROI's type ("1", "2", "3", "1/2", "2/3").
    body : ROI or (rows, cols) bool ndarray, optional
        The vertebral body's outline (an ROI of kind ``"body"``), or a mask on the T1
        slice grid. Used on the neighbour slices too (a body's sagittal outline changes
        little over a slice or two near the midline).
    parameters : ClassifierParameters, optional
    neighbours : int
        T1 slices either side of the ROI's own to measure (default 1).

    Returns
    -------
    extent : Extent or None
    warning : str or None
        Why the extent was not measured, in words.
    """
    from .criteria import DEFAULT_PARAMETERS
    from .geometry import map_region
    from .measure import roi_points

    t = ModicType(modic_type)
    if t.value not in _CODES:
        return None, None
    p = DEFAULT_PARAMETERS if parameters is None else parameters
    roi = prepared.roi
    pts = roi_points(roi)
    g = study.t1.geometry
    try:
        k0 = map_region(pts, g, name="T1").slice_index
    except Exception as exc:  # noqa: BLE001 -- a measurement that cannot be made is reported
        return None, f"extent not measured: {exc}"
    codes = _CODES[t.value]
    source: BodySource = "estimated" if body is None else "outline"
    best: tuple[dict[str, float], int] | None = None
    first_reason: str | None = None
    for k in [k0] + [k0 + d * s for d in range(1, neighbours + 1) for s in (-1, 1)]:
        if not 0 <= k < g.shape[0]:
            continue
        m, why = _measure_slice(study, roi, pts, prepared, codes, k, body, p)
        if why is not None:
            if k == k0:
                return None, f"extent not measured: {why}"
            continue
        share = m["height_mm"] / m["body_height_mm"]
        if best is None or share > best[0]["height_mm"] / best[0]["body_height_mm"]:
            best = (m, k)
    if best is None:  # pragma: no cover - the ROI's own slice either measures or returns
        return None, f"extent not measured: {first_reason}"
    m, k = best
    offset = float(g.slice_coordinates[k] - g.slice_coordinates[k0])
    return (
        Extent.from_measurements(
            m["height_mm"], m["body_height_mm"], m["length_mm"], m["endplate_length_mm"], source, k, offset
        ),
        None,
    )


def body_for(label_vertebra: str, bodies: Iterable[ROI]) -> ROI | None:
    """The body outline of ``label_vertebra`` among ``bodies`` (the first), or None."""
    for b in bodies:
        if b.label.kind == "body" and b.label.vertebra == label_vertebra:
            return b
    return None


def add_extent(
    result: ModicResult,
    study: LoadedStudy,
    prepared: PreparedRegion,
    *,
    body: ROI | None = None,
    parameters: ClassifierParameters | None = None,
) -> ModicResult:
    """Set ``result.extent`` (:func:`measure_extent`) and add a warning when a change's
    extent cannot be measured; returns ``result``. Type 0 and indeterminate results keep
    ``extent=None`` silently."""
    from .errors import ModicError

    if not result.modic_type.is_change:
        return result
    try:
        ext, why = measure_extent(study, prepared, result.modic_type, body=body, parameters=parameters)
    except (ModicError, ValueError) as exc:
        ext, why = None, f"extent not measured: {exc}"
    result.extent = ext
    if why:
        result.warnings.append(why)
    return result
