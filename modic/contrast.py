"""A study's own contrast, measured from its own tissues.

Modic typing compares an endplate region with normal marrow, but what each sequence can
say depends on the study: a STIR or fat-saturated T2 that suppresses fat poorly shows fat
bright, so a T1-bright, STIR-bright region is still fat (type 2); a fast spin-echo T2
keeps fat bright, so T2 alone cannot separate fat from oedema; a noisy image hides small
changes. This module measures, from the study itself:

* **fat**: the T1-brightest tissue of the sagittal T1 (subcutaneous and epidural fat),
  sampled at the same patient positions on T2 and STIR, relative to the reference marrow;
  the STIR fat ratio is the fat-suppression check (good < 0.6 x marrow, poor >= 0.9 x);
* **noise**: per sequence, from the second differences of the image (Immerkaer 1996,
  robust form), relative to the marrow signal (its inverse is the marrow SNR).

The data flow::

    LoadedStudy + reference ROIs -> measure_contrast -> StudyContrast
      -> fat_ratio per sequence -> the type-2 signature of modic.criteria (SignalContext)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .annotations import ROI
from .errors import MeasurementError
from .measure import RegionSample, bilinear, mask_indices, roi_points, sample_region
from .sequence import Role
from .study import LoadedStudy
from .volume import Volume

__all__ = ["StudyContrast", "measure_contrast", "sample_points", "noise_sigma", "FAT_SUPPRESSION_LEVELS"]

#: T1 percentile above which foreground voxels are taken as fat. Subcutaneous fat fills
#: well over 5 % of a lumbar sagittal field of view; marrow, even fatty, is darker than
#: it on T1 (Modic 1988; DOMAIN.md). Design value.
FAT_PERCENTILE = 95.0
#: At most this many fat voxels are sampled (a fixed, seeded subsample).
MAX_FAT_VOXELS = 4000
#: STIR fat / marrow ratios separating good, partial and poor fat suppression. Normal
#: adult marrow is about half fat: with complete suppression fat is darker than marrow
#: (ratio well below 1); a ratio near or above 1 means fat is not suppressed (the real
#: TIRM of issue 7 had subcutaneous fat at 2.3x muscle). Design values.
FAT_SUPPRESSION_LEVELS = (0.6, 0.9)


@dataclass(frozen=True)
class StudyContrast:
    """Contrast of a study, measured from its own tissues.

    Attributes
    ----------
    marrow : dict of Role to float
        Median signal of the reference marrow ROIs, pooled.
    fat : dict of Role to float
        Median signal of the study's fat on each sequence (missing where it could not be
        sampled).
    noise : dict of Role to float
        Image noise (standard deviation, same units as the signal).
    fat_voxels : int
        How many fat voxels were sampled on T1.
    source : str
        ``"automatic"`` (T1-brightest tissue) or ``"fat ROI"``.
    notes : list of str
        What could not be measured, and why.
    """

    marrow: dict[Role, float]
    fat: dict[Role, float]
    noise: dict[Role, float]
    fat_voxels: int = 0
    source: str = "automatic"
    notes: list[str] = field(default_factory=list)

    @property
    def fat_ratio(self) -> dict[Role, float]:
        """Fat relative to marrow on each sequence where both are known."""
        return {r: self.fat[r] / self.marrow[r] for r in self.fat if self.marrow.get(r, 0) > 0}

    @property
    def relative_noise(self) -> dict[Role, float]:
        """Noise relative to the marrow signal (1 / SNR)."""
        return {r: self.noise[r] / self.marrow[r] for r in self.noise if self.marrow.get(r, 0) > 0}

    @property
    def fat_suppression(self) -> str | None:
        """``"good"``, ``"partial"`` or ``"poor"`` from the STIR fat ratio; None without STIR."""
        k = self.fat_ratio.get(Role.STIR)
        if k is None:
            return None
        lo, hi = FAT_SUPPRESSION_LEVELS
        return "good" if k < lo else "partial" if k < hi else "poor"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (ratios to marrow, SNR, suppression), no patient data."""
        rn = self.relative_noise
        return {
            "source": self.source,
            "fat_voxels": self.fat_voxels,
            "fat_ratio": {r.value: round(v, 4) for r, v in self.fat_ratio.items()},
            "marrow_snr": {r.value: round(1.0 / v, 2) for r, v in rn.items() if v > 0},
            "fat_suppression": self.fat_suppression,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """One line for people, e.g. ``"fat 1.8x marrow on T1, 1.3x on T2, 0.35x on STIR
        (fat suppression good); marrow SNR T1 24, T2 18, STIR 11"``."""
        fr = self.fat_ratio
        parts = []
        if fr:
            parts.append("fat " + ", ".join(f"{v:.2f}x on {r.value}" for r, v in fr.items()) + " of marrow")
            if self.fat_suppression:
                parts[-1] += f" (fat suppression {self.fat_suppression})"
        rn = self.relative_noise
        if rn:
            parts.append("marrow SNR " + ", ".join(f"{r.value} {1 / v:.0f}" for r, v in rn.items() if v > 0))
        return "; ".join(parts) if parts else "contrast not measured"


#: Integer-valued volumes (stored pixel values; most DICOM) within this many units of 0
#: take the counting path of :func:`noise_sigma`: their second differences are exact in
#: integers and their order statistics are read off value counts, with the same result as
#: sorting (the float path) in a fraction of the time.
_COUNTING_RANGE = 1 << 20


def _value_counts(a: NDArray[Any]) -> tuple[int, NDArray[np.intp]] | None:
    """A volume's smallest value and the count of each value from it, when every value is
    an integer within :data:`_COUNTING_RANGE` of 0; else None (NaN, inf, fractions, a wider
    range). Slice by slice, in one buffer."""
    if a.size == 0 or a.dtype.kind not in "iuf":
        return None
    lo, hi = a.min(), a.max()
    if not (-_COUNTING_RANGE <= lo and hi <= _COUNTING_RANGE):  # NaN compares False
        return None
    lo = int(lo)
    counts = np.zeros(int(hi) - lo + 1, dtype=np.intp)
    buf = np.empty(a.shape[1:], dtype=np.int32)  # holds every value within the range
    # a float slice is integer-valued when its values truncated and taken back to its
    # dtype (exactly: |value| <= 2**20) are the same (as np.array_equal(buf, slice) says)
    back = np.empty(a.shape[1:], dtype=a.dtype) if a.dtype.kind == "f" else None
    differs = np.empty(a.shape[1:], dtype=bool)
    for sl in a:
        np.copyto(buf, sl, casting="unsafe")
        if back is not None:
            np.copyto(back, buf, casting="unsafe")
            if np.not_equal(back, sl, out=differs).any():
                return None
        if lo:
            np.subtract(buf, lo, out=buf)
        counts += np.bincount(buf.ravel(), minlength=counts.size)
    return lo, counts


def _order_statistics(counts: NDArray[np.intp], lo: int, ranks: list[int]) -> list[float]:
    """The values of ``ranks`` (0-based) in the sorted values whose counts are ``counts``
    (of ``lo``, ``lo + 1``, ...)."""
    cum = np.cumsum(counts)
    return [float(lo + int(np.searchsorted(cum, k, side="right"))) for k in ranks]


def _counts(values: NDArray[np.integer[Any]]) -> tuple[NDArray[np.intp], int]:
    lo = int(values.min())
    return np.bincount(values - lo if lo else values), lo


def _percentile_of_counts(counts: NDArray[np.intp], lo: int, q: float) -> float:
    """``np.percentile`` (linear) of the values counted in ``counts`` (see
    :func:`_order_statistics`).

    The interpolation is numpy's, step by step (its ``_lerp``), so that the result is the
    same float.
    """
    n = int(counts.sum())
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return _order_statistics(counts, lo, [n - 1])[0]
    k = int(np.floor(virtual))
    a, b = _order_statistics(counts, lo, [k, k + 1])
    t = virtual - k
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _percentiles_like(counts: NDArray[np.intp], lo: int, q: float | list[float], dtype: np.dtype[Any]) -> Any:
    """``np.percentile(x, q)`` of a float array ``x`` of ``dtype`` whose integer values are
    counted in ``counts`` (see :func:`_order_statistics`), in numpy's arithmetic: a scalar
    ``q`` interpolates in ``dtype`` (and returns a scalar of it), a list of them in float64
    (its ``_lerp``, step by step), so that the results are the same floats."""
    n = int(counts.sum())
    many = isinstance(q, list)
    fractions = np.true_divide(np.asarray(q if many else [q]), 100)
    out = []
    for virtual in (n - 1) * fractions:
        if virtual >= n - 1:  # numpy reads the last value twice
            last = dtype.type(_order_statistics(counts, lo, [n - 1])[0])
            out.append(np.float64(last) if many else last)
            continue
        k = int(np.floor(virtual))
        a, b = (dtype.type(v) for v in _order_statistics(counts, lo, [k, k + 1]))
        t = np.float64(virtual - k) if many else float(virtual - k)
        diff = b - a
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return out if many else out[0]


def _percentile_of_integers(values: NDArray[np.integer[Any]], q: float) -> float:
    """``np.percentile(values.astype(float), q)`` (linear), from counts of each value."""
    return _percentile_of_counts(*_counts(values), q)


def _median_of_integers(values: NDArray[np.integer[Any]]) -> float:
    """``np.median(values.astype(float))``, from counts of each value."""
    n = values.size
    counts, lo = _counts(values)
    if n % 2:
        return _order_statistics(counts, lo, [n // 2])[0]
    a, b = _order_statistics(counts, lo, [n // 2 - 1, n // 2])
    return (a + b) / 2


def _second_difference(x0: NDArray[Any], x1: NDArray[Any], x2: NDArray[Any], out: NDArray[Any]) -> None:
    """``out = x0 - 2 * x1 + x2`` (same shapes; ``out`` apart from them), the same
    operations without temporaries."""
    np.multiply(x1, 2, out=out)
    np.subtract(x0, out, out=out)
    np.add(out, x2, out=out)


def noise_sigma(volume: Volume, mask: NDArray[np.bool_] | None = None) -> float:
    """Image noise of a volume from its second differences (robust Immerkaer 1996).

    The 3x3 kernel ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` cancels smooth signal; for white
    Gaussian noise of standard deviation sigma its output has standard deviation 6 sigma.
    The median absolute output over the foreground (signal above 10 % of the 99th
    percentile) keeps edges from inflating it.

    Parameters
    ----------
    volume : Volume
    mask : (slices, rows, columns) bool ndarray, optional
        Where to measure (default: the foreground).

    Returns
    -------
    float
        Noise standard deviation, in the volume's units (0 when it cannot be measured).
    """
    return _noise_sigma(volume, mask, _value_counts(volume.array))


def _noise_sigma(
    volume: Volume, mask: NDArray[np.bool_] | None, counted: tuple[int, NDArray[np.intp]] | None
) -> float:
    """:func:`noise_sigma`, given the volume's value counts (:func:`_value_counts`)."""
    arr = volume.array
    if arr.shape[1] < 3 or arr.shape[2] < 3:
        return 0.0
    if mask is not None:
        fg = mask[:, 1:-1, 1:-1]
    elif counted is None:
        fg = arr[:, 1:-1, 1:-1] > 0.1 * np.percentile(arr.astype(np.float64), 99, overwrite_input=True)
    else:
        fg = arr[:, 1:-1, 1:-1] > 0.1 * _percentile_of_counts(counted[1], counted[0], 99)
    n = int(np.count_nonzero(fg))
    if n < 100:
        return 0.0
    # a slice at a time, in buffers made once: fresh memory for the temporaries of a whole
    # volume costs as much as the arithmetic (integers: exact, as the float64 path; int32
    # holds them, as the kernel's output is within 16 x _COUNTING_RANGE of 0)
    rows, cols = arr.shape[1:]
    kind = np.float64 if counted is None else np.int32
    a, dc, lap = (
        np.empty((rows, cols), kind),
        np.empty((rows, cols - 2), kind),
        np.empty((rows - 2, cols - 2), kind),
    )
    vals: NDArray[Any] = np.empty(n, dtype=kind)
    at = 0
    for k in range(arr.shape[0]):
        np.copyto(a, arr[k], casting="unsafe")
        # the kernel is the outer product of [1, -2, 1] with itself: second differences
        # along the columns, then along the rows (a third of the passes of the 9-term sum)
        _second_difference(a[:, :-2], a[:, 1:-1], a[:, 2:], out=dc)
        _second_difference(dc[:-2], dc[1:-1], dc[2:], out=lap)
        np.abs(lap, out=lap)
        keep = fg[k].ravel()
        c = int(np.count_nonzero(keep))
        np.compress(keep, lap.ravel(), out=vals[at : at + c])
        at += c
    median = float(np.median(vals, overwrite_input=True)) if counted is None else _median_of_integers(vals)
    return float(1.4826 * median / 6.0)


def sample_points(
    volume: Volume, points: NDArray[np.float64], tolerance: float | None = None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Sample a volume at LPS points (nearest slice, bilinear in-plane).

    Parameters
    ----------
    volume : Volume
    points : (N, 3) ndarray
        LPS mm.
    tolerance : float, optional
        Largest distance from a point to its slice; default half the slice spacing.

    Returns
    -------
    values : (N,) ndarray
        NaN where ``valid`` is False.
    valid : (N,) bool ndarray
        Points within ``tolerance`` of a slice and inside its field of view.
    """
    g = volume.geometry
    tol = g.slice_spacing / 2 if tolerance is None else tolerance
    k, dist = g.nearest_slice(points)
    rowcol = g.patient_to_rowcol(points)
    valid = (np.abs(dist) <= tol + 1e-6) & g.contains_in_plane(rowcol)
    out = np.full(points.shape[0], np.nan)
    for s in np.unique(k[valid]):
        sel = valid & (k == s)
        out[sel] = bilinear(volume.array[s], rowcol[sel])
    return out, valid


def _pooled(
    study: LoadedStudy,
    rois: Sequence[ROI],
    samples: Mapping[str, Mapping[Role, RegionSample]] | None = None,
) -> dict[Role, float]:
    """Median of the ROIs' samples pooled, per sequence (``samples``: ROI id -> samples
    already measured, e.g. :attr:`modic.reading.ReferenceModel.samples`)."""
    out: dict[Role, float] = {}
    points: dict[int, NDArray[np.float64]] = {}
    for role, vol in study.volumes.items():
        vals = []
        for i, roi in enumerate(rois):
            known = samples.get(roi.id) if samples is not None else None
            if known is not None and role in known:
                vals.append(known[role].values)
                continue
            try:
                if i not in points:
                    points[i] = roi_points(roi)
                vals.append(sample_region(roi, vol, points=points[i]).values)
            except MeasurementError:  # outside this series: the others still count
                continue
        if vals:
            out[role] = float(np.median(np.concatenate(vals)))
    return out


def measure_contrast(
    study: LoadedStudy,
    references: Sequence[ROI],
    *,
    fat_rois: Sequence[ROI] = (),
    reference_samples: Mapping[str, Mapping[Role, RegionSample]] | None = None,
) -> StudyContrast:
    """Measure a study's fat contrast and noise from its own tissues.

    Parameters
    ----------
    study : LoadedStudy
    references : sequence of ROI
        Reference marrow ROIs (their pooled median is the marrow level).
    fat_rois : sequence of ROI, optional
        ROIs drawn in fat (e.g. subcutaneous fat); when given they replace the automatic
        detection.
    reference_samples : mapping of str to mapping of Role to RegionSample, optional
        The references' samples when already measured, by ROI id
        (:attr:`modic.reading.ReferenceModel.samples`); the others are sampled here.
        The ids must be unique among ``references``.

    Returns
    -------
    StudyContrast
    """
    notes: list[str] = []
    marrow = _pooled(study, references, reference_samples)
    t1 = study.t1
    a = t1.array
    counted = _value_counts(a)  # of the T1: for its noise and its fat
    noise = {
        r: _noise_sigma(v, None, counted) if v is t1 else noise_sigma(v) for r, v in study.volumes.items()
    }
    for r, s in list(noise.items()):
        if s <= 0:
            notes.append(f"noise of {r.value} could not be measured")
            del noise[r]
    if fat_rois:
        return StudyContrast(marrow, _pooled(study, fat_rois), noise, source="fat ROI", notes=notes)

    if counted is None or a.dtype.kind != "f":
        fg = a > 0.1 * np.percentile(a, 99)
        if fg.sum() < 100:
            notes.append("T1 has too little foreground to find fat")
            return StudyContrast(marrow, {}, noise, notes=notes)
        lo, hi = np.percentile(a[fg], [FAT_PERCENTILE, 99.8])
    else:  # integer-valued: the same percentiles from counts of each value, without sorting
        base, counts = counted
        level = 0.1 * _percentiles_like(counts, base, 99, a.dtype)
        bright = np.where((base + np.arange(counts.size)).astype(a.dtype) > level, counts, 0)
        if bright.sum() < 100:
            notes.append("T1 has too little foreground to find fat")
            return StudyContrast(marrow, {}, noise, notes=notes)
        lo, hi = _percentiles_like(bright, base, [FAT_PERCENTILE, 99.8], a.dtype)
        fg = a > level
    sel = np.column_stack(mask_indices(fg & (a >= lo) & (a <= hi)))  # np.argwhere
    rng = np.random.default_rng(0)
    if len(sel) > MAX_FAT_VOXELS:
        sel = sel[rng.choice(len(sel), MAX_FAT_VOXELS, replace=False)]
    pts = t1.geometry.index_to_patient(sel.astype(float))
    fat: dict[Role, float] = {Role.T1: float(np.median(a[tuple(sel.T)]))}
    for role, vol in study.volumes.items():
        if role is Role.T1:
            continue
        vals, ok = sample_points(vol, pts)
        if ok.sum() >= 50:
            fat[role] = float(np.median(vals[ok]))
        else:
            notes.append(f"fat could not be sampled on {role.value} (slices do not match the T1's)")
    fr = {r: fat[r] / marrow[r] for r in fat if marrow.get(r, 0) > 0}
    if fr.get(Role.T1, 2.0) < 1.15:
        notes.append(
            f"the T1-brightest tissue is only {fr[Role.T1]:.2f}x the reference marrow: fat contrast is not "
            "used (marrow as fatty as fat, or no fat in the field of view)"
        )
    return StudyContrast(marrow, fat, noise, fat_voxels=int(len(sel)), notes=notes)


def fat_ratio_for(contrast: StudyContrast | None, roles: Mapping[Role, Any]) -> dict[Role, float]:
    """The fat ratios of ``contrast`` on ``roles`` (empty when not measured for all)."""
    if contrast is None:
        return {}
    fr = contrast.fat_ratio
    return fr if all(r in fr for r in roles) else {}
