"""Endplate bands, body outline and central reference marrow from a vertebral-body mask.

This is the geometric layer under every ROI that modic *proposes* rather than a person
draws: :mod:`modic.labelmap` feeds it the body of each vertebra from another tool's
segmentation, and the proposal of ROIs from the image itself (issue 9) will feed it a body
found in the image. It knows nothing about label maps, DICOM or annotations: it takes a
2-D boolean mask of one vertebral body on one sagittal image, in that image's pixel grid,
and returns masks in the same grid.

Coordinate conventions
----------------------
* Masks are ``(rows, columns)`` boolean arrays indexed ``[row, col]`` (numpy/skimage).
* Directions in the image are given in **millimetre components along the row index and
  the column index**, ``(d_row, d_col)``: moving one row down the image moves
  ``pixel_spacing[0]`` mm along the image's column direction (DICOM
  ImageOrientationPatient[3:6]). For a sagittal image with orientation ``(0, 1, 0, 0, 0,
  -1)`` (rows run to the feet) the head direction is ``(-1, 0)``; :func:`image_direction`
  turns any patient (LPS) direction into these components.

What is derived
---------------
The body's own axis is found first: the head direction of the image is only a start, since
lumbar bodies are tilted by the lordosis (L5 and S1 by 20-40 degrees). Along a trial axis
the body is cut into strips 1 pixel wide across it; the top and bottom of each strip are the
superior and inferior endplate surfaces there. A straight line is fitted to the central
part (``length_fraction``) of each surface; the axis is turned to the normal of the mean of
the two lines' directions, and the fit is repeated until it moves less than 0.5 degrees
(at most 6 times). Depth below a surface is then measured along that axis, strip by strip,
so a concave (domed) endplate is followed.

* **Endplate band** (``superior`` / ``inferior``): body pixels whose centre lies between
  ``inset_mm`` and ``inset_mm + height_mm`` below the endplate surface, over the central
  ``length_fraction`` of the body's antero-posterior length.
* **Body** (``body``): the mask itself, cleaned: its largest 4-connected piece with holes
  filled.
* **Reference** (``reference``): central marrow, the pixels in the middle
  ``reference_height_fraction`` of the local body height and the middle
  ``reference_length_fraction`` of its length, at least ``cortex_mm`` from the body's
  outline: as far from both endplates (where Modic changes start) and from the cortex
  (partial volume) as the body allows.

Defaults and where they come from
---------------------------------
* ``inset_mm = 1.0``: the bony endplate is a thin dark line under 1 mm thick on T1 (the
  phantom's bony endplate is 0.6-1.0 mm, modelled on it), and the first pixel under a
  label's edge mixes cortex, cartilage and disc. Skipping 1 mm leaves out that pixel at
  the usual 0.5-1.2 mm pixel size; the classifier also leaves out partial-volume voxels at
  the endplate itself (docs/classifier.md), so a smaller inset is safe.
* ``height_mm = 5.0``: a Modic change is marrow signal *next to the endplate* (Modic
  1988; the Nordic Modic Consensus Group, Jensen et al. 2007, grade its height from the
  endplate). The band 1-6 mm under the endplate lies inside Udby grade A (< 25 % of the
  body height, Udby et al. 2022; lumbar bodies are 25-30 mm tall), where every change, of
  whatever grade, is present. It is the band of the classic phantom reader (marrow 1-6 mm
  under the endplate) against which the classifier was calibrated (docs/classifier.md).
* ``length_fraction = 0.8``: the central four fifths of the endplate, leaving out the
  rounded rim (ring apophysis) at the anterior and posterior corners, where the cortex
  curves and the surface is not the endplate; the phantom's realistic reader draws bands
  over one half to four fifths of the depth.
* ``reference_height_fraction = 0.4``, ``reference_length_fraction = 0.5``, ``cortex_mm =
  2.0``: normal-appearing marrow of the same vertebra away from the endplates (DOMAIN.md,
  "Reference tissue"); the classic phantom reader's reference is a 12 x 8 mm ellipse in
  mid-body, about these shares of a lumbar body.

These constants place a region; they change which marrow is measured, not how a measured
region is typed. Every one is a field of :class:`BandSettings` and can be changed.

Examples
--------
>>> import numpy as np
>>> body = np.zeros((40, 50), dtype=bool)
>>> body[5:33, 5:45] = True                      # a 28 x 40 mm body at 1 mm pixels
>>> regions = endplate_bands(body, (1.0, 1.0), up=(-1.0, 0.0))
>>> rows = np.nonzero(regions.superior.any(axis=1))[0]
>>> int(rows.min()), int(rows.max())             # centres 1.5-5.5 mm under the top edge (row 5)
(6, 10)
>>> round(regions.body_height_mm, 1), round(regions.tilt_deg, 1)
(28.0, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import BandError

__all__ = ["BandSettings", "BodyRegions", "BandError", "endplate_bands", "image_direction"]

#: Most iterations of the axis fit, and the change (degrees) below which it stops.
_AXIS_ITERATIONS = 6
_AXIS_TOLERANCE_DEG = 0.5
#: Smallest body the bands are derived from: pixels, and height / length in mm.
MIN_BODY_PIXELS = 20
MIN_BODY_MM = 8.0


@dataclass(frozen=True)
class BandSettings:
    """Where the bands and the reference lie in a body (see the module docstring).

    Parameters
    ----------
    height_mm : float
        Height of an endplate band into the body, mm (default 5).
    inset_mm : float
        Distance from the endplate surface to the band's outer edge, mm (default 1).
    length_fraction : float
        Share of the body's antero-posterior length the bands span, centred (default 0.8).
    reference_height_fraction, reference_length_fraction : float
        Central shares of the local body height and of its length for the reference
        (defaults 0.4 and 0.5).
    reference_position : float
        Where the reference's middle lies along the body's local height, 0 at the
        inferior endplate and 1 at the superior (default 0.5: the middle). The reference
        must stay inside the body: ``reference_position +- reference_height_fraction / 2``
        within 0.05-0.95.
    cortex_mm : float
        Smallest distance from the reference to the body's outline, mm (default 2).

    Raises
    ------
    ValueError
        Naming the bad argument.
    """

    height_mm: float = 5.0
    inset_mm: float = 1.0
    length_fraction: float = 0.8
    reference_height_fraction: float = 0.4
    reference_length_fraction: float = 0.5
    cortex_mm: float = 2.0
    reference_position: float = 0.5

    def __post_init__(self) -> None:
        rhf = self.reference_height_fraction
        half = 0.5 * rhf if isinstance(rhf, (int, float)) else 0.0  # a bad height is named below
        checks = {
            "height_mm": 0.5 <= self.height_mm <= 20.0,
            "inset_mm": 0.0 <= self.inset_mm <= 10.0,
            "length_fraction": 0.1 <= self.length_fraction <= 1.0,
            "reference_height_fraction": 0.05 <= self.reference_height_fraction <= 0.9,
            "reference_length_fraction": 0.05 <= self.reference_length_fraction <= 1.0,
            "cortex_mm": 0.0 <= self.cortex_mm <= 10.0,
            "reference_position": 0.05 + half <= self.reference_position <= 0.95 - half,
        }
        ranges = {
            "height_mm": "0.5-20 mm",
            "inset_mm": "0-10 mm",
            "length_fraction": "0.1-1",
            "reference_height_fraction": "0.05-0.9",
            "reference_length_fraction": "0.05-1",
            "cortex_mm": "0-10 mm",
            "reference_position": "0.05-0.95 with the reference's height inside",
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not ok:
                raise ValueError(f"BandSettings.{name} must be in {ranges[name]}, got {value!r}")


@dataclass(frozen=True)
class BodyRegions:
    """The regions derived from one body mask, all ``(rows, columns)`` bool in its grid.

    Attributes
    ----------
    body : (rows, columns) ndarray of bool
        The cleaned body (largest piece, holes filled).
    superior, inferior : (rows, columns) ndarray of bool or None
        The endplate bands; None when not asked for or empty.
    reference : (rows, columns) ndarray of bool or None
        Central marrow; None when not asked for or when the body is too small for it.
    axis : (2,) ndarray
        Unit vector of the body's axis towards its superior endplate, ``(d_row, d_col)``
        mm components (see the module docstring).
    tilt_deg : float
        Angle between the axis and the ``up`` direction given, degrees.
    body_height_mm : float
        Median height of the body along its axis over the central strips, mm.
    endplate_length_mm : float
        Length of the body across its axis (the endplate length), mm.
    notes : list of str
        What a reader should know (e.g. a reference left out, and why).
    """

    body: NDArray[np.bool_]
    superior: NDArray[np.bool_] | None
    inferior: NDArray[np.bool_] | None
    reference: NDArray[np.bool_] | None
    axis: NDArray[np.float64]
    tilt_deg: float
    body_height_mm: float
    endplate_length_mm: float
    notes: list[str] = field(default_factory=list)


def image_direction(direction_lps: ArrayLike, orientation: ArrayLike) -> NDArray[np.float64]:
    """Components ``(d_row, d_col)`` of a patient direction in an image, normalised.

    Parameters
    ----------
    direction_lps : (3,) array_like
        A direction in LPS, e.g. ``(0, 0, 1)`` for the head.
    orientation : (6,) array_like
        The image's ImageOrientationPatient (row cosine, then column cosine).

    Returns
    -------
    (2,) ndarray
        Unit vector: its projection on the column cosine (increasing row index) and on the
        row cosine (increasing column index).

    Raises
    ------
    ValueError
        If the direction is (nearly) perpendicular to the image.

    Examples
    --------
    >>> image_direction([0, 0, 1], [0, 1, 0, 0, 0, -1])    # head, on a sagittal image
    array([-1.,  0.])
    """
    d = np.asarray(direction_lps, dtype=float).reshape(3)
    iop = np.asarray(orientation, dtype=float).reshape(6)
    v = np.array([d @ iop[3:], d @ iop[:3]])
    n = float(np.linalg.norm(v))
    if n < 0.2 * max(float(np.linalg.norm(d)), 1e-12):
        raise ValueError(f"direction {d.tolist()} is nearly perpendicular to the image plane")
    return np.asarray(v / n, dtype=float)


def endplate_bands(
    body: ArrayLike,
    pixel_spacing: tuple[float, float],
    up: ArrayLike,
    settings: BandSettings | None = None,
    *,
    surfaces: tuple[str, ...] = ("superior", "inferior"),
    reference: bool = True,
) -> BodyRegions:
    """Derive the endplate bands, body and central reference from a vertebral-body mask.

    Parameters
    ----------
    body : (rows, columns) array_like of bool
        The vertebral body on one sagittal image (body only: posterior elements removed).
    pixel_spacing : (2,) tuple of float
        PixelSpacing ``(row spacing, column spacing)`` in mm.
    up : (2,) array_like
        Roughly the head direction in the image, ``(d_row, d_col)`` mm components
        (:func:`image_direction` of ``(0, 0, 1)``); the body's own axis is fitted from it
        and must lie within 60 degrees of it.
    settings : BandSettings, optional
    surfaces : tuple of {"superior", "inferior"}
        The endplates to derive. With one surface only, the axis is fitted from that
        surface alone (e.g. S1 cut out of a sacrum, whose lower side is not an endplate).
    reference : bool
        Derive the central reference (needs both surfaces).

    Returns
    -------
    BodyRegions

    Raises
    ------
    BandError
        If the mask is empty, smaller than 20 pixels or 8 mm across, or gives no band.
    ValueError
        For bad arguments (shape, spacing, surfaces), naming them.
    """
    s = settings or BandSettings()
    mask = np.asarray(body)
    if mask.ndim != 2:
        raise ValueError(f"body must be a 2-D (rows, columns) mask, got shape {mask.shape}")
    mask = mask.astype(bool)
    sp = (float(pixel_spacing[0]), float(pixel_spacing[1]))
    if not all(math.isfinite(v) and v > 0 for v in sp):
        raise ValueError(f"pixel_spacing must be two positive numbers, got {pixel_spacing!r}")
    bad = [x for x in surfaces if x not in ("superior", "inferior")]
    if bad or not surfaces:
        raise ValueError(f"surfaces must name 'superior' and/or 'inferior', got {surfaces!r}")
    u0 = np.asarray(up, dtype=float).reshape(2)
    if not np.all(np.isfinite(u0)) or float(np.linalg.norm(u0)) == 0:
        raise ValueError(f"up must be a non-zero 2-vector, got {u0.tolist()}")
    u0 = u0 / np.linalg.norm(u0)

    clean = _clean(mask)
    if int(clean.sum()) < MIN_BODY_PIXELS:
        raise BandError(
            f"the body mask has {int(mask.sum())} pixels (largest piece {int(clean.sum())}); at least "
            f"{MIN_BODY_PIXELS} are needed to find its endplates"
        )
    rr, cc = np.nonzero(clean)
    pts = np.stack([rr * sp[0], cc * sp[1]], axis=1)
    step = min(sp)
    use_top, use_bottom = "superior" in surfaces, "inferior" in surfaces
    axis = u0.copy()
    for _ in range(_AXIS_ITERATIONS):
        frame = _Frame(pts, axis, sp, step)
        slopes = []
        if use_top:
            slopes.append(frame.surface_slope(frame.top, s.length_fraction))
        if use_bottom:
            slopes.append(frame.surface_slope(frame.bottom, s.length_fraction))
        slope = float(np.mean(slopes))
        turn = math.atan(slope)
        axis = _rotate(axis, turn)
        if abs(math.degrees(turn)) < _AXIS_TOLERANCE_DEG:
            break
    tilt = math.degrees(math.acos(float(np.clip(axis @ u0, -1.0, 1.0))))
    if tilt > 60.0:
        raise BandError(f"the body's axis is {tilt:.0f} degrees from the head direction; is this a body?")
    frame = _Frame(pts, axis, sp, step)
    length = frame.length_mm
    heights = frame.top - frame.bottom
    central = frame.central(s.length_fraction)
    height = float(np.median(heights[central])) if central.any() else float(np.median(heights))
    if length < MIN_BODY_MM or height < MIN_BODY_MM:
        raise BandError(
            f"the body is {height:.1f} mm tall and {length:.1f} mm long; at least {MIN_BODY_MM:.0f} mm "
            "each are needed to place endplate bands"
        )
    in_length = frame.within_length(s.length_fraction)
    notes: list[str] = []
    bands: dict[str, NDArray[np.bool_] | None] = {"superior": None, "inferior": None}
    for name in surfaces:
        depth = frame.depth_below_top() if name == "superior" else frame.depth_above_bottom()
        sel = in_length & (depth >= s.inset_mm) & (depth < s.inset_mm + s.height_mm)
        if not sel.any():
            raise BandError(
                f"no pixel lies {s.inset_mm:g}-{s.inset_mm + s.height_mm:g} mm under the {name} endplate "
                f"of a {height:.1f} mm tall body at {sp[0]:g} x {sp[1]:g} mm pixels"
            )
        out = np.zeros_like(clean)
        out[rr[sel], cc[sel]] = True
        bands[name] = out
    ref_mask: NDArray[np.bool_] | None = None
    if reference:
        if not (use_top and use_bottom):
            notes.append("no reference: it needs both endplates of the body")
        else:
            ref_mask = _reference(clean, rr, cc, frame, s, sp)
            if ref_mask is None:
                notes.append(
                    f"no reference: no marrow of the {height:.0f} mm tall body lies {s.cortex_mm:g} mm from "
                    "its outline in its centre"
                )
    return BodyRegions(
        body=clean,
        superior=bands["superior"],
        inferior=bands["inferior"],
        reference=ref_mask,
        axis=axis,
        tilt_deg=tilt,
        body_height_mm=height,
        endplate_length_mm=length,
        notes=notes,
    )


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _clean(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Largest 4-connected piece of ``mask``, holes filled."""
    from scipy import ndimage
    from skimage.measure import label

    if not mask.any():
        return mask.copy()
    lab = label(mask, connectivity=1)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    largest = lab == int(np.argmax(counts))
    filled: NDArray[np.bool_] = ndimage.binary_fill_holes(largest)
    return filled


def _rotate(v: NDArray[np.float64], angle: float) -> NDArray[np.float64]:
    """Turn ``v`` by ``angle`` radians from itself towards its perpendicular :func:`_across`."""
    a = _across(v)
    w = math.cos(angle) * v - math.sin(angle) * a
    return np.asarray(w / np.linalg.norm(w), dtype=float)


def _across(axis: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit vector perpendicular to ``axis`` (turned +90 degrees in (d_row, d_col))."""
    return np.array([-axis[1], axis[0]], dtype=float)


class _Frame:
    """Body pixels in the frame of a trial axis: ``u`` across (strips), ``v`` along it."""

    def __init__(
        self, pts: NDArray[np.float64], axis: NDArray[np.float64], sp: tuple[float, float], step: float
    ) -> None:
        self.axis = axis
        across = _across(axis)
        self.u = pts @ across
        self.v = pts @ axis
        # half the extent of a pixel along the axis and across it
        half_v = 0.5 * (abs(axis[0]) * sp[0] + abs(axis[1]) * sp[1])
        half_u = 0.5 * (abs(across[0]) * sp[0] + abs(across[1]) * sp[1])
        self.u_lo, self.u_hi = float(self.u.min()) - half_u, float(self.u.max()) + half_u
        self.length_mm = self.u_hi - self.u_lo
        self.step = step
        nbins = max(1, int(math.ceil(self.length_mm / step)))
        self.bin = np.clip(((self.u - self.u_lo) / step).astype(int), 0, nbins - 1)
        top = np.full(nbins, -np.inf)
        bottom = np.full(nbins, np.inf)
        np.maximum.at(top, self.bin, self.v + half_v)
        np.minimum.at(bottom, self.bin, self.v - half_v)
        have = np.isfinite(top)
        centres = self.u_lo + (np.arange(nbins) + 0.5) * step
        if not have.all():  # strips a rotated grid left empty: interpolate
            top = np.interp(centres, centres[have], top[have])
            bottom = np.interp(centres, centres[have], bottom[have])
        self.top_bins, self.bottom_bins = top, bottom
        self.centres = centres
        self.top = top
        self.bottom = bottom

    def central(self, fraction: float) -> NDArray[np.bool_]:
        """Which strips lie in the central ``fraction`` of the length."""
        mid = 0.5 * (self.u_lo + self.u_hi)
        half = 0.5 * fraction * self.length_mm
        return np.asarray(np.abs(self.centres - mid) <= half, dtype=bool)

    def within_length(self, fraction: float) -> NDArray[np.bool_]:
        """Which pixels lie in the central ``fraction`` of the length."""
        mid = 0.5 * (self.u_lo + self.u_hi)
        return np.asarray(np.abs(self.u - mid) <= 0.5 * fraction * self.length_mm, dtype=bool)

    def surface_slope(self, surface: NDArray[np.float64], fraction: float) -> float:
        """Slope dv/du of a straight line fitted to the central part of a surface profile.

        One trimming pass drops strips more than 2.5 robust SDs off the first line (a
        corner, a notch).
        """
        sel = self.central(fraction)
        if int(sel.sum()) < 3:
            sel = np.ones_like(sel)
        x, y = self.centres[sel], surface[sel]
        if len(x) < 2:
            return 0.0
        m, b = np.polyfit(x, y, 1)
        r = y - (m * x + b)
        mad = float(np.median(np.abs(r - np.median(r)))) * 1.4826
        if mad > 0:
            keep = np.abs(r) <= 2.5 * mad + 1e-9
            if int(keep.sum()) >= 3:
                m, b = np.polyfit(x[keep], y[keep], 1)
        return float(m)

    def depth_below_top(self) -> NDArray[np.float64]:
        """(N,) depth of each pixel centre under the superior surface of its strip, mm."""
        return np.asarray(self.top[self.bin] - self.v, dtype=float)

    def depth_above_bottom(self) -> NDArray[np.float64]:
        """(N,) height of each pixel centre over the inferior surface of its strip, mm."""
        return np.asarray(self.v - self.bottom[self.bin], dtype=float)


def _reference(
    clean: NDArray[np.bool_],
    rr: NDArray[np.intp],
    cc: NDArray[np.intp],
    frame: _Frame,
    s: BandSettings,
    sp: tuple[float, float],
) -> NDArray[np.bool_] | None:
    from scipy import ndimage

    h = frame.top[frame.bin] - frame.bottom[frame.bin]
    rel = (frame.v - frame.bottom[frame.bin]) / np.where(h > 0, h, 1.0)
    mid_height = np.abs(rel - s.reference_position) <= 0.5 * s.reference_height_fraction
    mid_length = frame.within_length(s.reference_length_fraction)
    padded = np.pad(clean, 1)
    dist = ndimage.distance_transform_edt(padded, sampling=sp)[1:-1, 1:-1]
    # the distance transform measures to the nearest outside pixel centre; the outline is
    # half a pixel nearer
    away = dist[rr, cc] - 0.5 * min(sp) >= s.cortex_mm
    sel = mid_height & mid_length & away
    if not sel.any():
        return None
    out = np.zeros_like(clean)
    out[rr[sel], cc[sel]] = True
    return out
