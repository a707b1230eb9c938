"""Read a study: classify every endplate ROI against reference marrow.

This is the data flow's last step before outputs::

    LoadedStudy + Annotations
      -> the study's own contrast: fat on every sequence, noise (modic.contrast)
      -> the reference levels of all vertebrae and their trend along the spine
         (receive-coil gradient; modic.reading.ReferenceModel)
      -> per endplate ROI: samples on T1 / T2 / STIR (modic.measure), minus the voxels
         that hold cortical endplate or disc by partial volume, and minus those of a
         T1-bright focus that normal marrow separates from the endplate (hemangioma,
         focal fat: not a Modic change)
      -> reference ROI samples (same vertebra, else the nearest), corrected for the coil
         gradient, with their systematic uncertainty
      -> Modic type with its numbers (modic.criteria)
      -> ModicResult (modic.results)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .annotations import ROI, VERTEBRAE, Annotations
from .contrast import StudyContrast, fat_ratio_for, measure_contrast
from .criteria import DEFAULT_PARAMETERS, ClassifierParameters, SignalContext, classify_samples
from .errors import MeasurementError
from .extent import along_endplate
from .geometry import MappedRegion, map_region
from .measure import RegionSample, _sample_mapped, bilinear, choose_reference, roi_points, sample_region
from .results import ModicResult, ModicResults, SeriesUsed
from .sequence import Role
from .study import LoadedStudy

__all__ = [
    "classify",
    "classify_roi",
    "prepare_region",
    "PreparedRegion",
    "ReferenceModel",
    "partial_volume_mask",
    "focal_lesion_mask",
    "body_marrow_samples",
]

logger = logging.getLogger(__name__)

#: Smallest systematic uncertainty of a reference from another vertebra when the trend
#: of several references is known (their scatter about it is measured on few points).
_MIN_TREND_SD = 0.03
#: A reference that departs from the trend of the others by more than this (and by
#: three of their scatters) is flagged: it may hold part of a change.
_OUTLIER_LOG = 0.10
#: How far from a voxel the endplate boundary is looked for when telling a focus inside
#: the body from a change along the endplate (focal_lesion_mask), mm.
_FOCAL_REACH_MM = 12.0
#: The body marrow beyond an endplate ROI (body_marrow_samples): how far past the ROI's
#: far edge it starts, and the depth of the ROI's endplate-side layer that is moved, mm.
_BODY_GAP_MM = 2.0
_BODY_LAYER_MM = 4.0


def _samples(roi: ROI, study: LoadedStudy) -> dict[Role, RegionSample]:
    pts = roi_points(roi)
    return {role: sample_region(roi, vol, points=pts) for role, vol in study.volumes.items()}


def _height(roi: ROI) -> float:
    """Head-foot (LPS S) coordinate of an ROI's centroid, mm."""
    return float(roi.patient_outline().mean(axis=0)[2])


@dataclass
class ReferenceModel:
    """The reference marrow levels of a study and their trend along the spine.

    A receive coil makes signal vary smoothly along the spine (up to 1.6x across L1-S1 on
    real studies), the same way on every sequence. With references in several vertebrae
    the trend of log signal against head-foot position is fitted per sequence (Theil-Sen
    with four or more vertebrae, least squares otherwise), and a reference is corrected to
    the position of the region it is compared with. The scatter of the references about
    the trend measures how comparable they are; a reference far off the trend is flagged.

    Attributes
    ----------
    medians : dict of str to dict of Role to float
        Per reference ROI id, its median on each sequence.
    heights : dict of str to float
        Per reference ROI id, its head-foot coordinate (mm).
    slope : dict of Role to float
        Fitted log signal per mm (0 without a fit).
    scatter : dict of Role to float or None
        Robust scatter (log units) of the references about the trend; None when too few.
    vertebrae : int
        Vertebrae with a reference.
    flagged : dict of str to str
        Reference ROI id -> warning, for references far off the trend.
    """

    medians: dict[str, dict[Role, float]] = field(default_factory=dict)
    heights: dict[str, float] = field(default_factory=dict)
    slope: dict[Role, float] = field(default_factory=dict)
    scatter: dict[Role, float | None] = field(default_factory=dict)
    vertebrae: int = 0
    flagged: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, dict[Role, float]] = field(default_factory=dict)
    samples: dict[str, dict[Role, RegionSample]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def fit(cls, study: LoadedStudy, references: Sequence[ROI]) -> ReferenceModel:
        """Measure every reference and fit the trend along the spine."""
        m = cls()
        labels: dict[str, str] = {}
        for ref in references:
            try:
                s = _samples(ref, study)
            except MeasurementError:
                continue
            m.samples[ref.id] = s
            m.medians[ref.id] = {r: float(np.median(v.values)) for r, v in s.items()}
            m.heights[ref.id] = _height(ref)
            labels[ref.id] = ref.label.vertebra
        m.vertebrae = len(set(labels.values()))
        ids = list(m.medians)
        for role in study.volumes:
            xs = np.array([m.heights[i] for i in ids if m.medians[i].get(role, 0) > 0])
            keep = [i for i in ids if m.medians[i].get(role, 0) > 0]
            ys = np.log([m.medians[i][role] for i in keep]) if keep else np.array([])
            if m.vertebrae < 2 or len(keep) < 2 or np.ptp(xs) < 10.0:
                m.slope[role], m.scatter[role] = 0.0, None
                continue
            if len(keep) >= 4:
                ii, jj = np.triu_indices(len(keep), 1)
                dx = xs[jj] - xs[ii]
                ok = np.abs(dx) > 5.0
                b = float(np.median((ys[jj] - ys[ii])[ok] / dx[ok]))
            else:
                b = float(np.polyfit(xs, ys, 1)[0])
            a = float(np.median(ys - b * xs))
            resid = ys - (a + b * xs)
            m.slope[role] = b
            for i, e in zip(keep, resid, strict=True):
                m.offsets.setdefault(i, {})[role] = float(e)
            if len(keep) >= 4:
                m.scatter[role] = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
            elif len(keep) == 3:
                m.scatter[role] = float(np.sqrt(np.sum(resid**2)))  # one degree of freedom
            else:
                m.scatter[role] = None
            sc = m.scatter[role]
            if sc is not None and len(keep) >= 4:
                for i, e in zip(keep, resid, strict=True):
                    if abs(e) > max(_OUTLIER_LOG, 3 * sc) and i not in m.flagged:
                        m.flagged[i] = (
                            f"the {labels[i]} reference is {np.exp(e):.2f}x the level that the references "
                            f"of the other vertebrae predict on {role.value}: it may hold part of a "
                            "change or heterogeneous marrow"
                        )
        return m

    def correction(self, ref: ROI, roi: ROI) -> dict[Role, float]:
        """Factor per sequence that moves the reference's level to the region's position."""
        dz = _height(roi) - (self.heights[ref.id] if ref.id in self.heights else _height(ref))
        return {r: float(np.exp(b * dz)) for r, b in self.slope.items()}

    def systematic(self, ref: ROI, roi: ROI, p: ClassifierParameters) -> tuple[dict[Role, float], str | None]:
        """Systematic uncertainty of the reference level at the region, and a note."""
        levels = abs(VERTEBRAE.index(ref.label.vertebra) - VERTEBRAE.index(roi.label.vertebra))
        out: dict[Role, float] = {}
        note = None
        for r in self.slope or {Role.T1: 0.0}:
            if levels == 0:
                sd = 0.0
            elif self.scatter.get(r) is not None:
                sd = max(float(self.scatter[r] or 0.0), _MIN_TREND_SD)
            elif self.vertebrae >= 2:
                sd = 0.5 * p.far_reference_sd * levels  # trend from two vertebrae: unchecked
            else:
                sd = p.far_reference_sd * levels
                note = (
                    f"only one vertebra has reference marrow, {levels} level{'s' if levels > 1 else ''} from "
                    f"{roi.label.vertebra}: the coil gradient cannot be measured, so the reference level is "
                    f"uncertain by about {sd:.0%} and the confidence is lowered"
                )
            off = self.offsets.get(ref.id, {}).get(r)
            if ref.id in self.flagged and off is not None:
                sd = float(np.hypot(sd, off))
            out[r] = sd
        return out, note


def _smooth3(img: NDArray[np.floating]) -> NDArray[np.float64]:
    """3x3 box mean (edges replicated)."""
    a = np.pad(img.astype(np.float64), 1, mode="edge")
    return (
        a[:-2, :-2]
        + a[:-2, 1:-1]
        + a[:-2, 2:]
        + a[1:-1, :-2]
        + a[1:-1, 1:-1]
        + a[1:-1, 2:]
        + a[2:, :-2]
        + a[2:, 1:-1]
        + a[2:, 2:]
    ) / 9.0


def _window(
    shape: tuple[int, ...], *rowcols: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The rows and columns ``[lo, hi)`` of an image of ``shape`` that
    :func:`modic.measure.bilinear` reads to sample it at all of ``rowcols`` ((N, 2) each).

    Sampling the window at the points less ``lo`` gives the same floats as sampling the
    whole image (the same pixels, the same fractional offsets), for a fraction of the work.
    """
    size = np.array(shape[:2])
    # the extremes of the points clipped to the image, as bilinear clips them (column by
    # column: numpy reduces an (N, 2) array over its first axis many times slower)
    first = np.clip([min(float(x[:, j].min()) for x in rowcols) for j in (0, 1)], 0, size - 1)
    last = np.clip([max(float(x[:, j].max()) for x in rowcols) for j in (0, 1)], 0, size - 1)
    lo = np.minimum(np.floor(first).astype(np.intp), np.maximum(size - 2, 0))
    hi = np.minimum(np.floor(last).astype(np.intp) + 2, size)
    return lo, hi


def _crop(image: NDArray[Any], lo: NDArray[np.intp], hi: NDArray[np.intp]) -> NDArray[Any]:
    """``image[lo[0]:hi[0], lo[1]:hi[1]]`` (a view)."""
    return image[lo[0] : hi[0], lo[1] : hi[1]]


def _smooth3_window(
    image: NDArray[np.floating], lo: NDArray[np.intp], hi: NDArray[np.intp]
) -> NDArray[np.float64]:
    """``_smooth3(image)[lo[0]:hi[0], lo[1]:hi[1]]``, smoothing only the window and its
    one-pixel rim (the image's own edge is replicated as before)."""
    a = np.maximum(lo - 1, 0)
    b = np.minimum(hi + 1, np.array(image.shape))
    return _smooth3(_crop(image, a, b))[lo[0] - a[0] : hi[0] - a[0], lo[1] - a[1] : hi[1] - a[1]]


def _disc_direction(roi: ROI, pts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit LPS vector from an endplate ROI towards its disc.

    Superior endplates face the disc above (+S), inferior ones the disc below (-S); an
    elongated band's short axis, when within 50 degrees of that, follows the endplate's
    tilt (lordosis).
    """
    toward = np.array(
        [0.0, 0.0, 1.0 if roi.label.endplate and roi.label.endplate.value == "superior" else -1.0]
    )
    if len(pts) >= 6:
        c = pts - pts.mean(axis=0)
        w, v = np.linalg.eigh(c.T @ c / len(pts))  # ascending: through-plane, minor, major
        if w[2] > 0 and w[1] > 0 and np.sqrt(w[2] / w[1]) >= 1.8:
            minor = v[:, 1] * np.sign(v[:, 1] @ toward or 1.0)
            if minor @ toward >= np.cos(np.radians(50)):
                return np.asarray(minor / np.linalg.norm(minor))
    return toward


def _towards_disc_on_t1(
    roi: Any,
    study: Any,
    points: NDArray[np.float64] | None,
    mapped: MappedRegion | None,
    direction: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], Any, MappedRegion, NDArray[np.float64], NDArray[np.float64]]:
    """The ROI's pixel centres, the T1 geometry, the centres mapped onto the T1, the unit LPS
    direction towards the disc, and that direction as ``(d_row, d_col)`` T1 pixels per mm;
    each computed only when not given."""
    pts = roi_points(roi) if points is None else points
    g = study.t1.geometry
    m = map_region(pts, g, name=f"T1 series {study.t1.series.label()}") if mapped is None else mapped
    d = _disc_direction(roi, pts) if direction is None else direction
    step_rc = np.array([d @ g.column_cosine / g.pixel_spacing[0], d @ g.row_cosine / g.pixel_spacing[1]])
    return pts, g, m, d, step_rc


def partial_volume_mask(
    roi: ROI,
    study: LoadedStudy,
    reference_t1: float,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    points: NDArray[np.float64] | None = None,
    *,
    mapped: MappedRegion | None = None,
    direction: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """The voxels of an endplate ROI that hold cortical endplate or disc by partial volume.

    From each voxel, the smoothed T1 is followed towards the disc for 6 mm; its darkest
    point, when darker than ``cortex_level`` x the reference marrow, is the endplate
    boundary (the cortical line, or the disc behind it). Voxels nearer to it than the margin (``pv_margin_px``
    T1 pixels plus ``pv_slab_fraction`` of the slice thickness) that are darker than the
    reference on T1, and darker than the marrow one margin deeper (a ramp, not the plateau
    of a change that reaches the endplate), are partial volume; at most ``pv_max_share``
    of the region is flagged (the nearest ones).

    Parameters
    ----------
    roi : ROI
    study : LoadedStudy
    reference_t1 : float
        The reference marrow's T1 level.
    parameters : ClassifierParameters
    points : (n, 3) ndarray, optional
        The ROI's pixel centres (:func:`modic.measure.roi_points`); computed when not given.
    mapped : MappedRegion, optional
        ``points`` mapped onto the study's T1 (:func:`modic.geometry.map_region`); computed
        when not given (:func:`prepare_region` maps them once for its three rules).
    direction : (3,) ndarray, optional
        Unit LPS vector from the ROI towards its disc; computed when not given.

    Returns
    -------
    exclude : (n,) bool ndarray
        In the ROI's own pixel order (as :func:`modic.measure.roi_points`).
    distance_mm : (n,) ndarray
        Distance of each voxel from the boundary (inf when none within 6 mm).
    """
    exclude, dist = _partial_volume(
        roi, study, reference_t1, parameters, points, mapped, direction, every=True
    )
    assert dist is not None  # every distance was asked for
    return exclude, dist


def _partial_volume(
    roi: ROI,
    study: LoadedStudy,
    reference_t1: float,
    p: ClassifierParameters,
    points: NDArray[np.float64] | None,
    mapped: MappedRegion | None,
    direction: NDArray[np.float64] | None,
    *,
    every: bool,
) -> tuple[NDArray[np.bool_], NDArray[np.float64] | None]:
    """:func:`partial_volume_mask`; with ``every=False`` the boundary is looked for only
    from the voxels that can be left out (darker than the reference on T1) and the
    distances are not returned (None), unless more voxels than the cap qualify (then
    from all of them, as ``every=True``). Each voxel's profile is its own, so the mask is
    the same."""
    pts, g, m, d, step_rc = _towards_disc_on_t1(roi, study, points, mapped, direction)
    raw = study.t1.array[m.slice_index]
    pixel = float(min(g.pixel_spacing))
    steps = np.arange(0.0, 6.0 + 1e-9, 0.25 * pixel)
    level = p.cortex_level * reference_t1
    thickness = g.slice_thickness or g.slice_spacing
    margin = p.pv_margin_px * pixel + p.pv_slab_fraction * thickness
    rc = m.rowcol[None, :, :] + steps[:, None, None] * step_rc  # (step, voxel, 2)
    deeper_rc = m.rowcol - margin * step_rc
    lo, hi = _window(raw.shape, rc.reshape(-1, 2), deeper_rc, m.rowcol)  # what the samples read of the slice
    # partial volume with cortex or disc only ever darkens marrow on T1 (bone gives no
    # signal, disc is darker than marrow): voxels near the boundary that are not darker
    # than the reference keep their evidence (a type-2 change at the endplate stays)
    own = bilinear(_crop(raw, lo, hi), m.rowcol - lo)
    dark = own < (1.0 - 2.0 * p.tissue_sd) * reference_t1
    n = len(pts)
    if not every and not dark.any():
        return np.zeros(n, dtype=bool), None
    img = _smooth3_window(raw, lo, hi)

    def boundary(at: NDArray[np.float64]) -> NDArray[np.float64]:
        """Distance (mm) to the boundary from voxels at ``at`` (step, voxel, 2)."""
        flat = at.reshape(-1, 2)
        profile = np.where(g.contains_in_plane(flat), bilinear(img, flat - lo), np.inf).reshape(at.shape[:-1])
        # the cortical line is the darkest point on the way to the disc (sclerosis above
        # it is dark too, but not as dark as cortical bone); no boundary when nothing is
        # that dark
        darkest = np.argmin(profile, axis=0)
        low = profile[darkest, np.arange(at.shape[1])]
        return np.asarray(np.where(low < level, steps[darkest], np.inf))

    # a change reaching the endplate is a plateau of dark signal, while partial volume is
    # a ramp: a voxel is excused only when it is clearly darker than the marrow one margin
    # deeper into the body (away from the disc)
    at = np.arange(n) if every else np.flatnonzero(dark)
    dist_at = boundary(rc[:, at])
    deeper = np.where(g.contains_in_plane(deeper_rc[at]), bilinear(img, deeper_rc[at] - lo), np.inf)
    exclude = np.zeros(n, dtype=bool)
    exclude[at] = (dist_at < margin) & dark[at] & (own[at] < (1.0 - 3.0 * p.tissue_sd) * deeper)
    dist = dist_at if every else None
    cap = int(np.floor(p.pv_max_share * n))
    if exclude.sum() > cap:  # the nearest ones, among all the voxels
        dist = dist if dist is not None else boundary(rc)
        order = np.argsort(dist, kind="stable")
        exclude = np.zeros(n, dtype=bool)
        exclude[order[:cap]] = True
    return exclude, dist


def _in_plane_perpendicular(step_rc: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit (row, col) pixel step perpendicular to ``step_rc`` in the image plane."""
    perp = np.array([-step_rc[1], step_rc[0]])
    return np.asarray(perp / max(float(np.linalg.norm(perp)), 1e-12))


def focal_lesion_mask(
    roi: ROI,
    study: LoadedStudy,
    reference_t1: float,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    points: NDArray[np.float64] | None = None,
    *,
    mapped: MappedRegion | None = None,
    direction: NDArray[np.float64] | None = None,
) -> NDArray[np.bool_]:
    """The T1-bright voxels of an endplate ROI that belong to a focus *inside* the body.

    A vertebral hemangioma (and a focal fat island) is T1- and T2-bright like fat, but it
    is round, lies inside the body and is not attached to the endplate: normal marrow
    separates it from the cortical line. A Modic type-2 change is band-like *along* the
    endplate, reaching it (Modic 1988): that is how a radiologist tells them apart.

    From each voxel brighter on T1 than ``exp(2 tissue_sd)`` x the reference, the T1 is
    followed towards the disc (as :func:`partial_volume_mask`, averaged over five lines
    one pixel apart along the endplate, so noise does not break a plateau); the voxel is
    part of a separated focus when, before the partial-volume margin of the endplate
    boundary, the signal stays at the reference level (within ``-2 tissue_sd`` ..
    ``+0.5 tissue_sd`` in log) over ``focal_gap_mm`` or more: a plateau of normal marrow,
    not the ramp a change passes through on its way into the cortex or into a T1-dark
    layer of a mixed change. Without an endplate boundary within ``_FOCAL_REACH_MM`` (12 mm:
    the far edge of the tallest band a reader draws, 8 mm, 3 pixels in from the endplate)
    nothing is flagged.

    Parameters
    ----------
    roi : ROI
    study : LoadedStudy
    reference_t1 : float
        The reference marrow's T1 level.
    parameters : ClassifierParameters
    points : (n, 3) ndarray, optional
        The ROI's pixel centres (:func:`modic.measure.roi_points`); computed when not given.
    mapped : MappedRegion, optional
        ``points`` mapped onto the study's T1 (:func:`modic.geometry.map_region`); computed
        when not given (:func:`prepare_region` maps them once for its three rules).
    direction : (3,) ndarray, optional
        Unit LPS vector from the ROI towards its disc; computed when not given.

    Returns
    -------
    (n,) bool ndarray
        In the ROI's own pixel order (as :func:`modic.measure.roi_points`).
    """
    p = parameters
    pts, g, m, d, step_rc = _towards_disc_on_t1(roi, study, points, mapped, direction)
    raw = study.t1.array[m.slice_index]
    pixel = float(min(g.pixel_spacing))
    perp = _in_plane_perpendicular(step_rc / max(float(np.linalg.norm(step_rc)), 1e-12))
    steps = np.arange(0.0, _FOCAL_REACH_MM + 1e-9, 0.25 * pixel)
    offsets = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    # (offset, step, voxel, 2) positions
    rc = (
        m.rowcol[None, None, :, :]
        + offsets[:, None, None, None] * perp
        + steps[None, :, None, None] * step_rc
    )
    lo, hi = _window(raw.shape, rc.reshape(-1, 2))  # what the samples read of the slice
    window = _crop(raw, lo, hi)

    def profiles(at: NDArray[np.float64]) -> NDArray[np.float64]:
        """(steps, voxels) mean T1 over the offsets, at positions ``at`` (offset, step, voxel, 2)."""
        flat = at.reshape(-1, 2)
        vals = np.where(g.contains_in_plane(flat), bilinear(window, flat - lo), np.inf)
        return np.asarray(vals.reshape(at.shape[:-1]).mean(axis=0))

    # only a voxel that is bright at its own place can be part of a focus: the profiles of
    # the others are not followed (each voxel's profile is its own, so the same floats)
    level0 = np.log(np.maximum(profiles(rc[:, :1]), 1e-6) / reference_t1)[0]
    bright = np.flatnonzero(level0 > 2.0 * p.tissue_sd)
    out = np.zeros(len(pts), dtype=bool)
    if bright.size == 0:
        return out
    profile = profiles(rc[:, :, bright])
    level = p.cortex_level * reference_t1
    darkest = np.argmin(profile, axis=0)
    low = profile[darkest, np.arange(bright.size)]
    dist = np.where(low < level, steps[darkest], np.inf)
    thickness = g.slice_thickness or g.slice_spacing
    margin = p.pv_margin_px * pixel + p.pv_slab_fraction * thickness
    log_prof = np.log(np.maximum(profile, 1e-6) / reference_t1)
    normal = (log_prof > -2.0 * p.tissue_sd) & (log_prof < 0.5 * p.tissue_sd)
    before = steps[:, None] < (dist[None, :] - margin)
    step_mm = float(steps[1] - steps[0]) if steps.size > 1 else 0.0
    best = _longest_run(normal & before, step_mm)
    out[bright] = np.isfinite(dist) & (best >= p.focal_gap_mm)
    return out


def _longest_run(flags: NDArray[np.bool_], step_mm: float) -> NDArray[np.float64]:
    """Per column of ``flags`` (steps, n), the length (mm) of its longest run of True.

    A run of ``j`` steps is ``step_mm`` added ``j`` times, one after another (as a walk
    along the profile counts it), so the lengths are the same floats as that walk's.
    """
    s = flags.shape[0]
    i = np.arange(1, s + 1)[:, None]
    # each step's run ends at the step itself; it started after the last False before it
    last_false = np.maximum.accumulate(np.where(flags, 0, i), axis=0)
    longest = (i - last_false).max(axis=0, initial=0)
    lengths = np.concatenate([[0.0], np.cumsum(np.full(s, step_mm))])  # j steps added in turn
    return np.asarray(lengths[longest])


def body_marrow_samples(
    roi: ROI,
    study: LoadedStudy,
    reference_t1: float,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    points: NDArray[np.float64] | None = None,
    *,
    direction: NDArray[np.float64] | None = None,
) -> dict[Role, NDArray[np.float64]] | None:
    """Samples of the vertebra's own marrow just beyond an endplate ROI, on every sequence.

    A Modic change is a band anchored at the endplate: its departure from normal marrow is
    strongest there and fades into the body. Patchy or fatty-with-age marrow is not
    organised by the endplate: it continues past the band. To tell them apart the ROI's
    endplate-side layer (the voxels within ``min(H, _BODY_LAYER_MM)`` of its edge nearest
    the disc, ``H`` the ROI's extent towards the disc) is moved away from the disc by ``H
    + _BODY_GAP_MM``, into the body, and sampled there (same slice on each sequence, as
    :func:`modic.measure.sample_region`). Points that fall out of the image or on tissue
    darker on T1 than ``cortex_level`` x the reference (cortex, the opposite endplate, a
    disc) are dropped.

    Parameters
    ----------
    roi : ROI
    study : LoadedStudy
    reference_t1 : float
        The reference marrow's T1 level.
    parameters : ClassifierParameters
    points : (n, 3) ndarray, optional
        The ROI's pixel centres (:func:`modic.measure.roi_points`); computed when not given.
    direction : (3,) ndarray, optional
        Unit LPS vector from the ROI towards its disc; computed when not given.

    Returns
    -------
    dict of Role to (m,) ndarray, or None
        None when fewer than half of the layer's points (or fewer than ``min_voxels``)
        land in marrow, or the probe cannot be sampled.
    """
    p = parameters
    pts = roi_points(roi) if points is None else points
    d = _disc_direction(roi, pts) if direction is None else direction
    s = pts @ d
    depth = s.max() - s  # 0 at the ROI's edge nearest the disc
    height = float(depth.max())
    layer = depth <= min(height, _BODY_LAYER_MM)
    probe = pts[layer] - d * (height + _BODY_GAP_MM)
    try:
        values = {role: sample_region(roi, vol, points=probe).values for role, vol in study.volumes.items()}
    except MeasurementError:
        return None
    ok = np.all([np.isfinite(v) & (v > 0) for v in values.values()], axis=0)
    ok &= values[Role.T1] >= p.cortex_level * reference_t1
    if ok.sum() < max(p.min_voxels, 0.5 * layer.sum()):
        return None
    return {r: v[ok] for r, v in values.items()}


@dataclass
class PreparedRegion:
    """What the classifier is given for one endplate ROI, before it decides.

    Attributes
    ----------
    roi, reference : ROI
        The endplate ROI and the reference ROI chosen for it.
    region : dict of Role to RegionSample
        All the ROI's samples, as measured.
    keep : (n,) bool ndarray
        The samples used (False: left out as partial volume).
    reference_values : dict of Role to (m,) ndarray
        Reference samples, corrected for the coil gradient.
    context : SignalContext
    correction : dict of Role to float
        Coil-gradient factor applied to the reference.
    warnings : list of str
    reference_samples : dict of Role to RegionSample
        The reference as measured, before the correction.
    focal : (n,) bool ndarray
        Samples left out as part of a T1-bright focus separated from the endplate by
        normal marrow (hemangioma, focal fat; :func:`focal_lesion_mask`).
    """

    roi: ROI
    reference: ROI
    region: dict[Role, RegionSample]
    keep: NDArray[np.bool_]
    reference_values: dict[Role, NDArray[np.float64]]
    context: SignalContext
    correction: dict[Role, float]
    warnings: list[str]
    reference_samples: dict[Role, RegionSample] = field(default_factory=dict)
    focal: NDArray[np.bool_] | None = None

    @property
    def region_values(self) -> dict[Role, NDArray[np.float64]]:
        """The samples used, per sequence."""
        return {r: s.values[self.keep] for r, s in self.region.items()}

    @property
    def excluded(self) -> int:
        return int((~self.keep).sum())


def prepare_region(
    study: LoadedStudy,
    roi: ROI,
    references: list[ROI],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    contrast: StudyContrast | None = None,
    reference_model: ReferenceModel | None = None,
) -> PreparedRegion:
    """Measure an endplate ROI and its reference, ready for :func:`modic.criteria.classify_samples`.

    Samples the ROI on every sequence, leaves out partial volume at the endplate, picks
    the reference (same vertebra, else the nearest), corrects it for the coil gradient,
    and sets the systematic uncertainty and the study's fat contrast. See
    :func:`classify_roi` for the parameters.
    """
    p = parameters
    if roi.label.kind != "endplate":
        raise MeasurementError(f"ROI {roi.label} ({roi.id}) is not an endplate ROI")
    ref, ref_warning = choose_reference(roi, references)
    if reference_model is None:
        reference_model = ReferenceModel.fit(study, references)
    if contrast is None:
        contrast = measure_contrast(study, references)
    pts = roi_points(roi)
    region: dict[Role, RegionSample] = {}
    mapped: dict[Role, MappedRegion] = {}
    for role, vol in study.volumes.items():
        region[role], mapped[role] = _sample_mapped(roi, vol, pts)
    reference = reference_model.samples.get(ref.id)  # measured once, when the model was fitted
    if reference is None:
        try:
            reference = _samples(ref, study)
        except MeasurementError as exc:
            raise MeasurementError(f"reference for {roi.label}: {exc}") from None

    warnings = [ref_warning] if ref_warning else []
    factor = reference_model.correction(ref, roi)
    systematic, sys_note = reference_model.systematic(ref, roi, p)
    if sys_note:
        warnings.append(sys_note)
    flagged = ref.id in reference_model.flagged
    if flagged:
        warnings.append(reference_model.flagged[ref.id])
    moved = {r: f for r, f in factor.items() if abs(np.log(f)) >= 0.03}
    if moved:
        warnings.append(
            "reference corrected for the coil gradient along the spine ("
            + ", ".join(f"{r.value} x{f:.2f}" for r, f in moved.items())
            + f", from the references of {reference_model.vertebrae} vertebrae)"
        )
    ref_values = {r: s.values * factor.get(r, 1.0) for r, s in reference.items()}

    ref_t1 = float(np.median(ref_values[Role.T1]))
    # the ROI on the T1 (as sampled) and its disc's direction, for the three rules below
    on_t1 = mapped[Role.T1]
    toward = _disc_direction(roi, pts)
    exclude, _ = _partial_volume(roi, study, ref_t1, p, pts, on_t1, toward, every=False)
    focal = focal_lesion_mask(roi, study, ref_t1, p, points=pts, mapped=on_t1, direction=toward) & ~exclude
    keep = ~exclude & ~focal
    if keep.sum() < p.min_voxels:
        keep = ~exclude if (~exclude).sum() >= p.min_voxels else np.ones(len(pts), dtype=bool)
        focal = focal & ~keep
    n_excluded = int((exclude & ~keep).sum())
    n_focal = int((focal & ~keep).sum())
    if n_excluded:
        warnings.append(
            f"{n_excluded} of {len(pts)} voxels left out: within the partial-volume margin of the cortical "
            "endplate or disc"
        )
    if n_focal:
        warnings.append(
            f"{n_focal} of {len(pts)} voxels left out: a T1-bright focus inside the body, separated from the "
            "endplate by normal marrow (a hemangioma or focal fat, not a Modic change)"
        )
    rn = contrast.relative_noise
    t1_cv = float(np.median(np.abs(ref_values[Role.T1] - ref_t1)) * 1.4826 / ref_t1)
    if Role.T1 in rn and t1_cv > max(2.5 * rn[Role.T1], 0.12):
        flagged = True
        warnings.append(
            f"the reference marrow is heterogeneous (T1 spread {t1_cv:.0%} against image noise "
            f"{rn[Role.T1]:.0%}): it may hold part of a change, a fat island or a vessel"
        )
    body = (
        body_marrow_samples(roi, study, ref_t1, p, points=pts, direction=toward) if p.body_ratio > 0 else None
    )
    along = along_endplate(pts, toward, study.t1.geometry.normal)[keep]  # for a local departure
    context = SignalContext(
        fat_ratio=fat_ratio_for(contrast, region),
        systematic=systematic,
        notes=list(contrast.notes),
        body={r: float(np.median(v)) for r, v in body.items()} if body else {},
        along_mm=tuple(float(x) for x in along),
        proposed=roi.origin == "proposed",
        reference_flagged=("proposed" if ref.origin == "proposed" else "drawn") if flagged else None,
    )
    return PreparedRegion(
        roi, ref, region, keep, ref_values, context, dict(factor), warnings, reference, focal=focal & ~keep
    )


def classify_roi(
    study: LoadedStudy,
    roi: ROI,
    references: list[ROI],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    seed: int = 0,
    contrast: StudyContrast | None = None,
    reference_model: ReferenceModel | None = None,
    body: ROI | None = None,
    extent: bool = True,
) -> ModicResult:
    """Classify one endplate ROI.

    Parameters
    ----------
    study : LoadedStudy
    roi : ROI
        An endplate ROI (label kind ``endplate``).
    references : list of ROI
        The study's reference ROIs; the one of the same vertebra is used, else the nearest.
    parameters : ClassifierParameters
    seed : int
        Bootstrap seed.
    contrast : StudyContrast, optional
        The study's own contrast (:func:`modic.contrast.measure_contrast`); measured here
        when not given.
    reference_model : ReferenceModel, optional
        The references' levels and trend (:meth:`ReferenceModel.fit`); fitted here when not
        given.
    body : ROI, optional
        The outline of the ROI's vertebral body (an ROI of kind ``"body"``) for the extent;
        estimated from the image when not given (:func:`modic.extent.measure_extent`).
    extent : bool
        Measure a change's extent (``result.extent``); default True.

    Raises
    ------
    MeasurementError
        If the ROI or its reference cannot be measured (outside a series, too few voxels,
        no reference).
    """
    if contrast is None:
        contrast = measure_contrast(study, references)
    prep = prepare_region(
        study, roi, references, parameters=parameters, contrast=contrast, reference_model=reference_model
    )
    try:
        decision = classify_samples(
            prep.region_values, prep.reference_values, parameters=parameters, context=prep.context, seed=seed
        )
    except MeasurementError as exc:
        raise MeasurementError(f"ROI {roi.label}: {exc}") from None
    warnings = prep.warnings + list(decision.warnings)
    region = prep.region
    for role, s in region.items():
        g = study.volumes[role].geometry
        half_slab = (g.slice_thickness or g.slice_spacing) / 2
        if abs(s.distance_mm) > half_slab:
            warnings.append(
                f"{role.value} slice {s.slice_index + 1} is {abs(s.distance_mm):.1f} mm from the ROI, "
                f"beyond its half thickness ({half_slab:.1f} mm): the ROI falls in the gap between slices"
            )
    series = {
        role: SeriesUsed(
            role=role,
            series_key=s.series_key,
            series_description=study.volumes[role].series.description,
            slice_index=s.slice_index,
            distance_mm=s.distance_mm,
            n_voxels=s.n_voxels,
        )
        for role, s in region.items()
    }
    result = ModicResult(
        roi_id=roi.id,
        label=roi.label,
        modic_type=decision.modic_type,
        confidence=decision.confidence,
        ratios=decision.ratios,
        fractions=decision.fractions,
        reference_label=prep.reference.label,
        reference_id=prep.reference.id,
        series=series,
        warnings=warnings,
        study_key=study.key,
        reason=decision.reason,
        excluded_voxels=prep.excluded,
        reference_correction=prep.correction,
        contrast=contrast,
    )
    if extent:  # how far a change reaches into its body (Udby grade), modic.extent
        from .extent import add_extent

        add_extent(result, study, prep, body=body, parameters=parameters)
    return result


def classify(
    study: LoadedStudy,
    annotations: Annotations | Iterable[ROI],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    seed: int = 0,
    errors: list[tuple[ROI, str]] | None = None,
    anatomy: bool = True,
    vertebrae: object = None,
) -> ModicResults:
    """Classify every endplate ROI of a study.

    Parameters
    ----------
    study : LoadedStudy
        From :func:`modic.load_study`.
    annotations : Annotations or iterable of ROI
        Endplate ROIs and reference ROIs (from :func:`modic.read_annotations`). Fat ROIs
        (label kind ``"fat"``, e.g. subcutaneous fat marked by the reader), when present,
        give the study's fat contrast instead of the automatic T1-brightest tissue
        (:func:`modic.contrast.measure_contrast`; ``results.contrast.source`` is
        ``"fat ROI"``).
    parameters : ClassifierParameters, optional
    seed : int
        Bootstrap seed (results are reproducible for a given seed).
    errors : list, optional
        When given, ROIs that cannot be measured are appended here as ``(roi, message)``
        and the others are still classified; otherwise the first such error is raised.
    anatomy : bool
        Check that every ROI lies where its label says (:func:`modic.anatomy.check_rois`;
        default True). A result whose ROI, or whose reference, has an anatomy warning
        carries it in ``warnings`` and its confidence is capped at
        :data:`modic.anatomy.CONFIDENCE_CAP` (0.5: the marrow measured may not be the
        endplate named); notes are added to ``warnings`` without a cap.
    vertebrae : Proposal or Annotations, optional
        Vertebral bodies found in the image (:func:`modic.propose.propose`) for the
        image-based anatomy checks; without them only the geometric checks run.

    Returns
    -------
    ModicResults
        One :class:`ModicResult` per endplate ROI, head to foot, and the study's measured
        contrast (``results.contrast``).

    Raises
    ------
    MeasurementError
        If there is no endplate ROI or no reference ROI, or (when ``errors`` is None) an
        ROI cannot be measured.

    Examples
    --------
    >>> import modic
    >>> name = "siemens_15T_type1_type2"
    >>> study = modic.load_study(modic.data.sample_study_path(name))
    >>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
    >>> results = modic.classify(study, rois)
    >>> [(str(r.label), r.modic_type.value) for r in results if r.modic_type.value != "0"]
    [('L4 inferior', '1'), ('L5 superior', '2')]
    """
    rois = list(annotations)
    endplates = [r for r in rois if r.label.kind == "endplate"]
    references = [r for r in rois if r.label.kind == "reference"]
    bodies = [r for r in rois if r.label.kind == "body"]  # RoiLabel.for_body: extent's body outline
    fat_rois = [r for r in rois if r.label.kind == "fat"]  # RoiLabel.for_fat (annotations 1.1)
    if not endplates:
        raise MeasurementError(f"study {study.key}: the annotations hold no endplate ROI")
    if not references:
        raise MeasurementError(
            f"study {study.key}: the annotations hold no reference ROI; mark normal marrow "
            "(label 'reference') in the vertebrae you read"
        )
    model = ReferenceModel.fit(study, references)
    unique = len({r.id for r in references}) == len(references)  # the model's samples are by ROI id
    contrast = measure_contrast(
        study, references, fat_rois=fat_rois, reference_samples=model.samples if unique else None
    )
    endplates.sort(key=lambda r: (VERTEBRAE.index(r.label.vertebra), r.label.endplate != "superior"))
    out = []
    for roi in endplates:
        try:
            out.append(
                classify_roi(
                    study,
                    roi,
                    references,
                    parameters=parameters,
                    seed=seed,
                    contrast=contrast,
                    reference_model=model,
                    body=next((b for b in bodies if b.label.vertebra == roi.label.vertebra), None),
                )
            )
        except MeasurementError as exc:
            if errors is None:
                raise
            logger.warning("%s", exc)
            errors.append((roi, str(exc)))
    if anatomy:  # is every ROI where its label says? (modic.anatomy)
        from .anatomy import apply_findings, check_rois

        apply_findings(out, check_rois(study, rois, vertebrae=vertebrae))
    return ModicResults(out, contrast=contrast)
