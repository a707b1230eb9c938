"""Modic type of an endplate region from its signal relative to normal marrow.

The rule is Modic's (Radiology 1988), with the mixed types of Fayad (2009), read voxel by
voxel as research coding does (Gao et al., JOR Spine 2022; DOMAIN.md):

=========  ===========  =========================  =====================
type       T1           T2 (no fat suppression)    STIR / fat-sat T2
=========  ===========  =========================  =====================
0          iso          iso                        iso
1          hypo         hyper                      hyper
2          hyper        iso or hyper               hypo (iso or hyper when
                                                   fat is poorly suppressed)
3          hypo         hypo                       hypo
=========  ===========  =========================  =====================

Evidence comes from every sequence, not from T1 alone: a voxel (or the region) is abnormal
when *any* of T1, T2 or STIR departs from the reference beyond what noise, the reference's
spread and the normal variation of marrow explain; the type comes from the *pattern*
across the sequences, matched against the signature of each tissue in this study.

How a region is decided
-----------------------
1. **Units.** Signal is taken as the log ratio to the reference median on each sequence,
   and a voxel's deviation is expressed in units of that sequence's uncertainty
   ``s = sqrt(cv_ref**2 + tissue_sd**2)``: the reference's robust relative spread (noise
   and marrow heterogeneity) and the normal variation of marrow between places of a spine
   (``tissue_sd``, a floor). The reference's own uncertainty at the region (coil
   gradient, a far reference: ``systematic``, from :class:`SignalContext`) moves the
   whole region at once: it widens the region-level test and the confidence (step 6).
2. **Signatures.** Each Modic tissue has a direction in that space: oedema (type 1) dark
   on T1, bright on T2 and STIR; fat (type 2) with *this study's* fat contrast, measured
   from its own fat (:mod:`modic.contrast`) when given -- a STIR that suppresses fat
   poorly makes fat bright on STIR, and then a T1-bright, STIR-bright region is still
   fat; sclerosis (type 3) dark on all.
3. **Voxel types.** A voxel is abnormal when any sequence lies more than ``voxel_z`` units
   from the reference; it takes the type whose signature points closest to its pattern
   (cosine at least ``min_cosine``), else it is *untyped* (its sequences contradict every
   Modic pattern).
4. **Region type.** When typed abnormal voxels reach ``abnormal_fraction``: the dominant
   type, or a mixed type (1/2, 2/3) when the second makes up ``mixed_fraction`` of them.
   Otherwise the region's medians are tested as a whole (a weak change whose voxels are
   each within noise): a deviation beyond ``region_z`` of its uncertainty on any sequence
   is a change of the type its pattern matches. Otherwise type 0. A change call whose
   departure the vertebra's own marrow just beyond the region shows as strongly
   (:attr:`SignalContext.body`, ``body_ratio``) is patchy marrow, not a change anchored at
   the endplate: type 0.
5. **Indeterminate.** When untyped voxels outnumber the typed abnormal ones, when the
   region as a whole departs from the reference in a pattern that fits no Modic type, or
   when too much of the region cannot be typed, the result is ``indeterminate`` with the
   reason in words -- never type 0. So is a type-3 call whose median T1 is not darker
   than the reference by ``voxel_z`` units: sclerosis is dark on T1 (Modic 1988), and a
   band a little darker on T2 and STIR with a near-normal T1 is what denser subchondral
   or leaner marrow, a coil gradient or partial volume at the endplate also give.
6. **Confidence.** Region and reference voxels are resampled (bootstrap) and each
   reference level is moved by its systematic uncertainty (normal marrow variation,
   coil gradient, distance); steps 3-5 are repeated and the share of resamples giving
   the same type is mapped to a probability by a calibration table measured on phantom
   cohorts (``confidence_calibration``). So a small region, a noisy image, a borderline
   signal, or a call that depends on which reference is used all lower it.

The thresholds live in :class:`ClassifierParameters`; docs/classifier.md gives their
sources and the calibration that chose them (``benchmarks/calibrate_classifier.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._parameters import DEFAULT_PARAMETERS, ClassifierParameters
from .errors import MeasurementError
from .sequence import Role

__all__ = [
    "ModicType",
    "Call",
    "ClassifierParameters",
    "DEFAULT_PARAMETERS",
    "SIGNATURES",
    "SignalContext",
    "SignalRatio",
    "TypeDecision",
    "classify_samples",
    "decide_type",
    "decide_codes",
    "body_departure",
    "evidence",
    "type_signatures",
    "voxel_type_map",
    "UNTYPED",
]


class ModicType(str, enum.Enum):
    """Modic type of an endplate region (``INDETERMINATE`` when it cannot be typed)."""

    NONE = "0"
    TYPE1 = "1"
    TYPE2 = "2"
    TYPE3 = "3"
    MIXED_1_2 = "1/2"
    MIXED_2_3 = "2/3"
    INDETERMINATE = "indeterminate"

    @property
    def tissue(self) -> str:
        """What the type is made of, in words."""
        return _TISSUE[self]

    @property
    def is_change(self) -> bool:
        """True for a Modic change (1, 2, 3, 1/2, 2/3); False for 0 and indeterminate."""
        return self not in (ModicType.NONE, ModicType.INDETERMINATE)


_TISSUE = {
    ModicType.NONE: "normal marrow",
    ModicType.TYPE1: "oedema pattern",
    ModicType.TYPE2: "fatty marrow pattern",
    ModicType.TYPE3: "sclerosis pattern",
    ModicType.MIXED_1_2: "mixed oedema and fat",
    ModicType.MIXED_2_3: "mixed fat and sclerosis",
    ModicType.INDETERMINATE: "cannot be typed",
}


class Call(str, enum.Enum):
    """Signal of a region relative to the reference on one sequence."""

    HYPO = "hypo"
    ISO = "iso"
    HYPER = "hyper"


#: Typical signal of each Modic tissue relative to normal adult marrow, per sequence
#: (T1, T2 fast spin echo, STIR with good fat suppression). Only their *directions*
#: matter (step 2). Type 1: T1 0.6-0.8, T2 1.2-2, STIR 1.3-4 (Eur Radiol Exp 2017; Gao
#: et al. JOR Spine 2022; the independent cohort of issue 7: T1 0.83-0.94 with T2/STIR
#: 1.2-1.9); type 2: T1 1.2-1.4, T2 1.0-1.3, STIR 0.4-0.7 when fat is suppressed (Modic
#: 1988); type 3: dark on all (Modic 1988). Design values; the fat signature is replaced
#: by the study's own measured fat contrast when it is known (SignalContext.fat_ratio).
SIGNATURES: dict[int, dict[Role, float]] = {
    1: {Role.T1: 0.70, Role.T2: 1.50, Role.STIR: 2.00},
    2: {Role.T1: 1.35, Role.T2: 1.15, Role.STIR: 0.55},
    3: {Role.T1: 0.60, Role.T2: 0.65, Role.STIR: 0.65},
}
#: A type-2 change holds about half again the fat of normal marrow (fat fraction ~0.5 ->
#: ~0.75-0.9): its signature is taken half-way from marrow to the measured pure fat.
_FAT_SHARE = 0.5


@dataclass(frozen=True)
class SignalContext:
    """What the study itself says about its sequences, for one region.

    Attributes
    ----------
    fat_ratio : dict of Role to float
        Signal of fat relative to the reference marrow on each sequence, measured from
        the study's own fat (:func:`modic.contrast.measure_contrast`). Sets the type-2
        signature; a STIR fat ratio near or above 1 means the STIR suppresses fat poorly.
    systematic : dict of Role to float
        Relative uncertainty (standard deviation of the log) of the reference level at the
        region beyond ``tissue_sd``: the coil gradient between a far reference and the
        region, or the spread of the references of several vertebrae.
    notes : list of str
        Why the context is what it is (for warnings).
    body : dict of Role to float
        Median signal, on each sequence, of the vertebra's own marrow just *beyond* the
        region (the same outline moved into the body past its far edge;
        :func:`modic.reading.body_marrow_samples`), on the scale of the region's samples.
        Empty when not measured. A change is anchored at the endplate: a departure that
        the marrow beyond shows as strongly is patchy marrow (``body_ratio``).
    along_mm : tuple of float
        Position of each region sample along the endplate (antero-posterior, mm, in the
        T1 plane; :func:`modic.extent.along_endplate`), in the order of the region's
        samples; empty when not known. A type-0 call is checked for a local departure
        over part of the endplate (``partial_length_mm``). Ignored when its length is not
        the number of region samples.
    proposed : bool
        The region is a band modic proposed (``ROI.origin == "proposed"``): its type-0 call
        is capped by ``proposed_normal_typed_calibration``.
    reference_flagged : {None, "drawn", "proposed"}
        The reference may hold part of a change or heterogeneous marrow (off the level the
        other references predict, or a T1 spread well above the noise; the warnings say
        which), and who placed it: the call claims at most ``reference_flag_confidence``
        or ``proposed_reference_flag_confidence``. None: not flagged.
    """

    fat_ratio: dict[Role, float] = field(default_factory=dict)
    systematic: dict[Role, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    body: dict[Role, float] = field(default_factory=dict)
    along_mm: tuple[float, ...] = ()
    proposed: bool = False
    reference_flagged: Literal["drawn", "proposed"] | None = None


EMPTY_CONTEXT = SignalContext()


@dataclass(frozen=True)
class SignalRatio:
    """Signal of a region relative to reference marrow on one sequence.

    Attributes
    ----------
    role : Role
    ratio : float
        median(region) / median(reference).
    low, high : float
        Bootstrap 95 % interval of the ratio (including the reference's systematic
        uncertainty).
    call : Call
    call_confidence : float
        Share of bootstrap resamples giving the same call.
    region_median, reference_median : float
    reference_spread : float
        Robust spread (1.4826 x MAD) of the reference.
    n_region, n_reference : int
        Voxels (samples) used.
    unit : float
        The sequence's unit of deviation ``s`` (relative, module docstring step 1).
    """

    role: Role
    ratio: float
    low: float
    high: float
    call: Call
    call_confidence: float
    region_median: float
    reference_median: float
    reference_spread: float
    n_region: int
    n_reference: int
    unit: float = 0.0


@dataclass(frozen=True)
class TypeDecision:
    """What the classifier decided for one region, before it is tied to an ROI.

    Attributes
    ----------
    modic_type : ModicType
    confidence : float
        Probability that the type is right (calibrated bootstrap agreement, 0-1).
    ratios : dict of Role to SignalRatio
    fractions : dict of str to float
        Share of the region's voxels of each voxel type: keys ``"0"``, ``"1"``, ``"2"``,
        ``"3"`` and ``"unclassified"`` (untyped: contradictory patterns); they sum to 1.
    warnings : list of str
    reason : str
        For an indeterminate result, why, in plain words; else how the type was reached
        (``"voxels"`` or ``"region"``-level evidence) in words.
    agreement : float
        The raw bootstrap agreement before calibration.
    body_rule : bool
        Whether the body-marrow rule (step 4) read a change pattern as normal marrow (its
        confidence is then at most ``body_explained_confidence``).
    partial_mm : float
        For a type-0 call: the length (mm along the endplate) of a local departure in a
        Modic pattern over part of the region (``partial_length_mm``; its confidence is
        then at most ``partial_confidence``); 0 when there is none or it was not looked for.
    """

    modic_type: ModicType
    confidence: float
    ratios: dict[Role, SignalRatio]
    fractions: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    agreement: float = 0.0
    body_rule: bool = False
    partial_mm: float = 0.0


# voxel type codes
_UNTYPED = 4
_VOXEL_KEYS = ("0", "1", "2", "3", "unclassified")
# region codes
_INDET = 9
_CODE_TO_TYPE = {
    0: ModicType.NONE,
    1: ModicType.TYPE1,
    2: ModicType.TYPE2,
    3: ModicType.TYPE3,
    12: ModicType.MIXED_1_2,
    23: ModicType.MIXED_2_3,
    _INDET: ModicType.INDETERMINATE,
}
_SEQ = (Role.T1, Role.T2, Role.STIR)


def _robust(ref: NDArray[np.float64], axis: int = -1) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Median and robust spread (1.4826 MAD) along an axis."""
    med = np.median(ref, axis=axis)
    mad = np.median(np.abs(ref - np.expand_dims(med, axis)), axis=axis)
    return med, 1.4826 * mad


#: Samples up to this size have their resampled deviations sorted (row by row) rather than
#: selected in :func:`_resampled_median_mad`: faster for short rows; the same values.
_SORT_MAX = 128


def _resampled_median_mad(
    samples: Sequence[NDArray[np.float64]], draws: Sequence[NDArray[np.intp]], n_mad: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Median of every bootstrap resample of several samples, and the robust spread of
    some, without sorting resampled copies.

    Each sample is sorted once; a resample is then just how often it draws each sorted
    value (one ``bincount`` of all draws), and its median the mean of the order statistics
    ``(n - 1) // 2`` and ``n // 2`` (0-based), found by ``searchsorted`` on the cumulative
    counts of all resamples laid end to end. The MAD is the middle of the drawn absolute
    deviations (rows sorted up to :data:`_SORT_MAX`, ``np.partition`` beyond). The values are those of
    :func:`_robust` (``np.median``) of the drawn copies, for the same draws.

    Parameters
    ----------
    samples : sequence of g (m_i,) arrays
    draws : sequence of g (b, m_i) int arrays
        Indices into each sample: row ``r`` of ``draws[i]`` is resample ``r`` of sample ``i``.
    n_mad : int
        The MAD is computed for the first ``n_mad`` samples.

    Returns
    -------
    med : (b, g) ndarray
    spread : (b, n_mad) ndarray
        1.4826 MAD.
    """
    g, b = len(samples), draws[0].shape[0]
    sizes = np.array([x.size for x in samples])
    width = int(sizes.max())
    table = np.zeros((g, width))  # sample i sorted in row i (padding is never drawn)
    keys = []
    for i, (x, d) in enumerate(zip(samples, draws, strict=True)):
        order = np.argsort(x, kind="stable")
        table[i, : x.size] = x[order]
        rank = np.empty(x.size, dtype=np.intp)
        rank[order] = np.arange(x.size)
        keys.append((rank[d] + ((i * b + np.arange(b)) * width)[:, None]).ravel())
    cum = np.cumsum(np.bincount(np.concatenate(keys), minlength=g * b * width))  # draws so far, row-major
    total = np.repeat(sizes, b)  # (g b,) draws per resample
    start = np.concatenate([[0], np.cumsum(total)[:-1]])  # draws before each resample
    lo = np.searchsorted(cum, start + (total - 1) // 2, side="right") % width
    hi = np.searchsorted(cum, start + total // 2, side="right") % width
    grp = np.repeat(np.arange(g), b)
    med = (table[grp, lo] + table[grp, hi]) / 2.0  # (g b,)
    spread = np.empty((b, n_mad))
    for i in range(n_mad):
        x, n = samples[i], int(sizes[i])
        mid = [(n - 1) // 2, n // 2]
        dev = np.abs(x[draws[i]] - med[i * b : (i + 1) * b, None])
        # the two middle order statistics of each row (the same values whichever way they
        # are found): sorting short rows is faster than selecting; a long row is
        # partitioned at the upper one, the lower one then being the largest before it
        if n <= _SORT_MAX:
            dev.sort(axis=1)
            low, high = dev[:, mid[0]], dev[:, mid[1]]
        else:
            dev = np.partition(dev, mid[1], axis=1)
            high = dev[:, mid[1]]
            low = high if mid[0] == mid[1] else dev[:, : mid[1]].max(axis=1)
        spread[:, i] = 1.4826 * (low + high) / 2.0
    return med.reshape(g, b).T, spread


def type_signatures(roles: list[Role], fat_ratio: Mapping[Role, float] | None = None) -> NDArray[np.float64]:
    """(3, k) log-ratio signatures of types 1, 2, 3 on ``roles``.

    The type-2 signature follows the study's measured fat contrast when ``fat_ratio`` gives
    it for every role and fat is clearly brighter than marrow on T1 (> 1.15x: otherwise
    the "fat" found was not fat, or marrow is as fatty as fat, and the design values stand).
    """
    sig = np.array([[np.log(SIGNATURES[t][r]) for r in roles] for t in (1, 2, 3)])
    if fat_ratio and all(r in fat_ratio for r in roles) and fat_ratio.get(Role.T1, 0.0) > 1.15:
        sig[1] = [np.log(1.0 + _FAT_SHARE * (max(fat_ratio[r], 0.05) - 1.0)) for r in roles]
    return sig


def _units(ref_cv: NDArray[np.float64], p: ClassifierParameters) -> NDArray[np.float64]:
    """Per-sequence unit of a voxel's deviation (relative), broadcasting over leading axes.

    The reference's systematic uncertainty moves every voxel of a region together, so it
    is not a voxel's noise: it enters the region-level test and the bootstrap instead.
    """
    return np.sqrt(ref_cv**2 + p.tissue_sd**2)


def _forbidden(z: NDArray[np.float64], limit: float, roles: list[Role]) -> NDArray[np.bool_]:
    """(..., 3) types 1, 2, 3 that a pattern ``z`` (..., k) rules out by Modic's criteria.

    A clearly T1-bright pattern is neither oedema nor sclerosis; a clearly T1-dark one is not
    fat; a clearly bright fluid-sensitive sequence is not sclerosis; a clearly dark STIR is
    not oedema. "Clearly": beyond ``limit`` units.
    """
    j1 = roles.index(Role.T1)
    t1 = z[..., j1]
    fluid = [j for j, r in enumerate(roles) if r is not Role.T1]
    fluid_up = np.any(z[..., fluid] > limit, axis=-1)
    stir_down = z[..., roles.index(Role.STIR)] < -limit if Role.STIR in roles else np.zeros(t1.shape, bool)
    no1 = (t1 > limit) | stir_down
    no2 = t1 < -limit
    no3 = (t1 > limit) | fluid_up
    return np.stack([no1, no2, no3], axis=-1)


def _whiten(
    z: NDArray[np.float64], unit: NDArray[np.float64], sig: NDArray[np.float64], p: ClassifierParameters
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Patterns ``z`` (b, n, k) and signatures (3, k) in units (b, k), whitened for the
    normal variation of marrow fat content.

    Normal marrow varies from place to place mostly in its fat content (age, patches,
    focal fat), which moves every sequence together along the fat direction (the type-2
    signature): its covariance in units is ``I + g g^T`` with ``g = fat_sd * f / unit``,
    ``f`` the fat direction scaled to 1 on T1. ``W = I - a g^ g^T`` with ``a = 1 - 1 /
    sqrt(1 + |g|^2)`` whitens it: deviations along the fat direction count for less,
    others as before. Returns ``(W z, W sig / unit)`` with shapes (b, n, k) and (b, 3, k).
    """
    sig_u = sig[None, :, :] / unit[:, None, :]  # (b, 3, k)
    fat = _fat_axis(unit, sig, p)
    if fat is None:
        return z, sig_u
    a, gh = fat
    zw = z - (a[:, None, :] * _dot(z, gh[:, None, :])[..., None]) * gh[:, None, :]
    sw = sig_u - (a[:, None, :] * _dot(sig_u, gh[:, None, :])[..., None]) * gh[:, None, :]
    return zw, sw


def _fat_axis(
    unit: NDArray[np.float64], sig: NDArray[np.float64], p: ClassifierParameters
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The whitening of :func:`_whiten`: ``a`` (b, 1) and the unit fat direction ``g^``
    (b, k) in units ``unit`` (b, k); None without fat variation (``fat_sd`` 0)."""
    if p.fat_sd <= 0:
        return None
    f = sig[1] / sig[1][0] if abs(sig[1][0]) > 1e-9 else sig[1]  # T1 is the first role
    g = p.fat_sd * f[None, :] / unit  # (b, k)
    gn = np.linalg.norm(g, axis=-1, keepdims=True)  # (b, 1)
    gh = g / np.maximum(gn, 1e-12)
    a = 1.0 - 1.0 / np.sqrt(1.0 + gn**2)  # (b, 1)
    return a, gh


def _sum_parts(parts: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Sum of 2 or 3 products over the sequences, in numpy's einsum's order of addition
    (the first and the third, then the second: its two-lane loop), so the floats are those
    of ``np.einsum`` over the sequence axis."""
    if len(parts) == 3:
        return np.asarray((parts[0] + parts[2]) + parts[1])
    if len(parts) == 2:
        return np.asarray(parts[0] + parts[1])
    return np.asarray(np.sum(np.stack(parts, axis=-1), axis=-1))  # not reached: 2 or 3 sequences


def _dot(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.einsum`` of ``x * y`` (broadcast) over their last axis, of 2 or 3 sequences,
    written out per sequence (:func:`_sum_parts`): several times faster on many short
    patterns than einsum, or than a reduction over a length-3 axis."""
    if x.shape[-1] not in (2, 3):  # not reached: 2 or 3 sequences
        return np.asarray(np.einsum("...k,...k->...", x, y))
    return _sum_parts([x[..., j] * y[..., j] for j in range(x.shape[-1])])


def _norm(parts: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """``np.linalg.norm`` over the sequences, of one array per sequence: the squares added
    in turn (as numpy's reduction of a short axis adds them)."""
    acc = parts[0] * parts[0]
    for x in parts[1:]:
        acc = acc + x * x
    return np.asarray(np.sqrt(acc))


def _max_abs(parts: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """``np.max(np.abs(.), axis=-1)`` over the sequences, of one array per sequence."""
    out = np.abs(parts[0])
    for x in parts[1:]:
        out = np.maximum(out, np.abs(x))
    return out


def _cosines(z: NDArray[np.float64], sig_u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cosine between patterns ``z`` (b, n, k) and signatures ``sig_u`` (b, 3, k)."""
    sig_z = sig_u / np.maximum(np.linalg.norm(sig_u, axis=-1, keepdims=True), 1e-12)
    zn = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    return _dot(zn[:, :, None, :], sig_z[:, None, :, :])


def _top_two(
    a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """The best and second-best of three types, from their cosines ``a``, ``b``, ``c``
    (same shape): indices (0-2) and values, ties to the lower index (as a stable sort)."""
    if np.isnan(a).any() or np.isnan(b).any() or np.isnan(c).any():  # a sort puts NaN last
        cos = np.stack([a, b, c], axis=-1)
        order = np.argsort(-cos, axis=-1, kind="stable")
        c1 = np.take_along_axis(cos, order[..., :1], axis=-1)[..., 0]
        c2 = np.take_along_axis(cos, order[..., 1:2], axis=-1)[..., 0]
        return order[..., 0], order[..., 1], c1, c2
    best = np.where(a >= b, np.where(a >= c, 0, 2), np.where(b >= c, 1, 2))
    # the larger of the other two, ties to the lower index
    lo, hi = np.where(best == 0, b, a), np.where(best == 2, b, c)
    first_wins = lo >= hi
    second = np.where(first_wins, np.where(best == 0, 1, 0), np.where(best == 2, 1, 2))
    top = np.where(best == 0, a, np.where(best == 1, b, c))
    return best, second, top, np.where(first_wins, lo, hi)


def _voxel_types(
    logdev: NDArray[np.float64] | Sequence[NDArray[np.float64]],
    unit: NDArray[np.float64],
    sig: NDArray[np.float64],
    p: ClassifierParameters,
    roles: list[Role],
) -> NDArray[np.int8]:
    """Voxel type (0-3, 4 = untyped) from log deviations ``(b, n, k)`` (or one ``(b, n)``
    array per sequence) and units ``(b, k)``.

    A voxel whose pattern fits two types about equally (cosines within ``type_margin``,
    e.g. T2-bright with T1 within noise and no STIR: oedema or fat) takes whichever of the
    two dominates the region's clearly typed voxels.
    """
    # one (b, n) array per sequence: the same elementwise arithmetic as _whiten, _cosines
    # and _forbidden on (b, n, k) arrays (the same floats), without strided access to the
    # short sequence axis
    parts = [logdev[..., j] for j in range(logdev.shape[-1])] if isinstance(logdev, np.ndarray) else logdev
    k = len(parts)
    z = [parts[j] / unit[:, None, j] for j in range(k)]
    sig_u = sig[None, :, :] / unit[:, None, :]  # (b, 3, k)
    zw = z
    fat = _fat_axis(unit, sig, p)
    if fat is not None:
        a, gh = fat
        along = a * _sum_parts([z[j] * gh[:, None, j] for j in range(k)])  # (b, n)
        zw = [z[j] - along * gh[:, None, j] for j in range(k)]
        sig_u = sig_u - (a[:, None, :] * _dot(sig_u, gh[:, None, :])[..., None]) * gh[:, None, :]
    sig_z = sig_u / np.maximum(np.linalg.norm(sig_u, axis=-1, keepdims=True), 1e-12)  # (b, 3, k)
    size = np.maximum(_norm(zw), 1e-12)
    zn = [x / size for x in zw]
    cos = [_sum_parts([zn[j] * sig_z[:, None, t, j] for j in range(k)]) for t in range(3)]
    # Modic's criteria rule some types out (_forbidden)
    limit = p.sign_z
    t1 = z[roles.index(Role.T1)]
    fluid_up = np.zeros(t1.shape, dtype=bool)
    for j, r in enumerate(roles):
        if r is not Role.T1:
            fluid_up |= z[j] > limit
    stir_down = z[roles.index(Role.STIR)] < -limit if Role.STIR in roles else np.zeros(t1.shape, bool)
    no = ((t1 > limit) | stir_down, t1 < -limit, (t1 > limit) | fluid_up)
    cos = [np.where(n, -2.0, c) for n, c in zip(no, cos, strict=True)]
    best, second, c1, c2 = _top_two(*cos)
    abnormal = _max_abs(zw) > p.voxel_z
    if p.matched_filter:  # the evidence of all sequences along the best-fitting type
        abnormal |= (_norm(zw) * c1 > p.voxel_z) & (c1 >= p.min_cosine)
    typed = abnormal & (c1 >= p.min_cosine)
    ambiguous = typed & (c2 >= p.min_cosine) & (c1 - c2 < p.type_margin)
    clear = typed & ~ambiguous
    counts = np.stack([(clear & (best == t)).sum(axis=-1) for t in range(3)], axis=-1)  # (b, 3)
    dominant = np.argmax(counts, axis=-1)[:, None]
    pick = np.where(ambiguous & (second == dominant), second, best)
    types = np.where(typed, pick + 1, _UNTYPED).astype(np.int8)
    return np.where(abnormal, types, 0).astype(np.int8)


def _fractions(types: NDArray[np.int8]) -> NDArray[np.float64]:
    """(..., 5) share of each voxel type along the last axis."""
    n = types.shape[-1]
    return np.stack([(types == k).sum(axis=-1) / n for k in range(5)], axis=-1)


def _region_pattern(
    d: NDArray[np.float64],
    sd: NDArray[np.float64],
    sig: NDArray[np.float64],
    p: ClassifierParameters,
    roles: list[Role],
) -> tuple[NDArray[np.bool_], NDArray[np.int8], NDArray[np.float64]]:
    """Region-level test: significant?, best type (1-3, 4 = none fits), best cosine. ``d``, ``sd`` (b, k)."""
    z = d / sd
    zw3, sig_u = _whiten(z[:, None, :], sd, sig, p)
    zw = zw3[:, 0, :]
    significant = np.max(np.abs(zw), axis=-1) > p.region_z
    cos = _cosines(zw3, sig_u)[:, 0, :]
    cos = np.where(_forbidden(z, p.region_z, roles), -2.0, cos)
    best = np.argmax(cos, axis=-1) + 1
    best_cos = np.max(cos, axis=-1)
    if p.matched_filter:  # the evidence of all sequences along the best-fitting type
        along = np.linalg.norm(zw, axis=-1) * best_cos
        significant = significant | ((along > p.region_z) & (best_cos >= p.min_cosine))
    best = np.where(best_cos >= p.min_cosine, best, _UNTYPED)
    return significant, best.astype(np.int8), best_cos


def _decide(
    frac: NDArray[np.float64],
    region_sig: NDArray[np.bool_],
    region_type: NDArray[np.int8],
    p: ClassifierParameters,
) -> NDArray[np.int16]:
    """Region code per row: 0-3, 12 (=1/2), 23 (=2/3) or 9 (indeterminate)."""
    abn = frac[..., 1:4]
    typed = abn.sum(axis=-1)
    untyped = frac[..., 4]
    order = np.argsort(-abn, axis=-1, kind="stable")
    first = order[..., 0] + 1
    second = order[..., 1] + 1
    share2 = np.take_along_axis(abn, order[..., 1:2], axis=-1)[..., 0] / np.maximum(typed, 1e-12)
    pair = np.minimum(first, second) * 10 + np.maximum(first, second)
    mixed = (share2 >= p.mixed_fraction) & ((pair == 12) | (pair == 23))
    voxel_code = np.where(mixed, pair, first).astype(np.int16)
    by_voxels = typed >= p.abnormal_fraction
    out = np.zeros(frac.shape[:-1], dtype=np.int16)
    # region-level: a weak change whose voxels are each within noise
    out = np.where(region_sig & (region_type != _UNTYPED), region_type.astype(np.int16), out)
    out = np.where(region_sig & (region_type == _UNTYPED), _INDET, out)
    out = np.where(~region_sig & (untyped >= p.untyped_fraction), _INDET, out)
    out = np.where(by_voxels, voxel_code, out)
    out = np.where(by_voxels & (untyped > typed), _INDET, out)
    return out


def _as_samples(name: str, values: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise MeasurementError(f"{name}: samples contain NaN or infinite values")
    return a


def _median_se(cv: NDArray[np.float64], n: int | NDArray[np.float64]) -> NDArray[np.float64]:
    """Standard error of a log median from a relative spread: 1.2533 cv / sqrt(n)."""
    return 1.2533 * cv / np.sqrt(n)


class _Prepared:
    """Region and reference samples, their statistics and the study context, on ``roles``."""

    def __init__(
        self,
        region: Mapping[Role, ArrayLike],
        reference: Mapping[Role, ArrayLike],
        context: SignalContext,
        p: ClassifierParameters,
        check: bool,
    ) -> None:
        if Role.T1 not in region or Role.T1 not in reference:
            raise MeasurementError("a T1-weighted sequence is needed to type Modic changes")
        roles = [r for r in _SEQ if r in region and r in reference]
        if len(roles) < 2:
            raise MeasurementError("a T2-weighted or STIR sequence is needed besides T1")
        self.roles = roles
        self.reg = {r: _as_samples(f"region {r.value}", region[r]) for r in roles}
        self.ref = {r: _as_samples(f"reference {r.value}", reference[r]) for r in roles}
        n = {self.reg[r].size for r in roles}
        if len(n) != 1:
            raise MeasurementError(
                "region samples must be the same voxels on every sequence; got counts "
                + ", ".join(f"{r.value} {self.reg[r].size}" for r in roles)
            )
        self.n_reg = n.pop()
        self.warnings: list[str] = []
        if check:
            counts = [("region", self.n_reg)] + [(f"reference on {r.value}", self.ref[r].size) for r in roles]
            for what, count in counts:
                if count < p.min_voxels:
                    raise MeasurementError(
                        f"the {what} has {count} voxels; at least {p.min_voxels} are needed"
                    )
                if count < p.small_voxels:
                    self.warnings.append(f"the {what} has only {count} voxels: the result is uncertain")
        stats = [_robust(self.ref[r]) for r in roles]
        for r, (m, _) in zip(roles, stats, strict=True):
            med = float(m)
            if not med > 0:
                raise MeasurementError(
                    f"the reference median on {r.value} is {med:g}; signal must be positive (is it marrow?)"
                )
            if not np.all(self.reg[r] > 0):
                self.reg[r] = np.maximum(self.reg[r], 1e-3 * med)
        self.med = np.array([s[0] for s in stats])
        self.cv = np.array([s[1] for s in stats]) / self.med
        self.systematic = np.array([float(context.systematic.get(r, 0.0)) for r in roles])
        self.sig = type_signatures(roles, context.fat_ratio)
        self.logreg = np.log(np.column_stack([self.reg[r] for r in roles]))  # (n, k)
        body = [float(context.body.get(r, 0.0)) for r in roles]
        self.logbody = np.log(body) if all(v > 0 for v in body) else None  # (k,) or None


_CHANGE_CODES = (1, 2, 3, 12, 23)


def _body_ratio(
    d: NDArray[np.float64], body_dev: NDArray[np.float64], unit: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """How much of a region's departure the marrow beyond it shows, and its size.

    ``d`` and ``body_dev`` (b, k): log deviations from the reference of the region's median
    and of the body marrow beyond it; ``unit`` (b, k). Returns the projection of the body's
    departure on the region's over the region's squared length, and the region's largest
    departure, both in units (b,).
    """
    z = d / unit
    zb = body_dev / unit
    ratio = np.sum(z * zb, axis=-1) / np.maximum(np.sum(z * z, axis=-1), 1e-12)
    return ratio, np.max(np.abs(z), axis=-1)


def _body_veto(
    codes: NDArray[np.int16],
    d: NDArray[np.float64],
    body_dev: NDArray[np.float64],
    unit: NDArray[np.float64],
    p: ClassifierParameters,
) -> NDArray[np.bool_]:
    """(b,) change calls that the marrow beyond the region explains (module docstring, step 4)."""
    ratio, size = _body_ratio(d, body_dev, unit)
    return np.isin(codes, _CHANGE_CODES) & (ratio >= p.body_ratio) & (size <= p.body_max_z)


def body_departure(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    context: SignalContext = EMPTY_CONTEXT,
) -> tuple[float, float]:
    """For calibration sweeps: (ratio, largest region departure in units) that
    ``body_ratio`` and ``body_max_z`` are compared with; (nan, nan) without body marrow."""
    prep = _Prepared(region, reference, context, parameters, check=False)
    if prep.logbody is None:
        return float("nan"), float("nan")
    d, unit = _median_departure(prep, parameters)
    ratio, size = _body_ratio(d[None], (prep.logbody - np.log(prep.med))[None], unit[None])
    return float(ratio[0]), float(size[0])


def _median_departure(
    prep: _Prepared, p: ClassifierParameters
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(k,) log departure of the region's median from the reference, and the voxel unit."""
    return np.median(prep.logreg - np.log(prep.med), axis=0), _units(prep.cv, p)


def _evidence(
    prep: _Prepared, p: ClassifierParameters
) -> tuple[NDArray[np.float64], bool, int, float, float, NDArray[np.float64], NDArray[np.float64]]:
    """Voxel fractions, region significant?, region type, region best cosine, region max
    |z|, and the region's median log departure and the voxel unit (:func:`_median_departure`)."""
    unit = _units(prep.cv, p)
    logdev = prep.logreg - np.log(prep.med)
    frac = _fractions(_voxel_types(logdev[None], unit[None], prep.sig, p, prep.roles))[0]
    d = np.median(logdev, axis=0)
    nref = np.array([prep.ref[r].size for r in prep.roles])
    sd = np.sqrt(
        _median_se(prep.cv, prep.n_reg) ** 2
        + _median_se(prep.cv, nref) ** 2
        + p.tissue_sd**2
        + prep.systematic**2
    )
    sig, rtype, rcos = _region_pattern(d[None], sd[None], prep.sig, p, prep.roles)
    return frac, bool(sig[0]), int(rtype[0]), float(rcos[0]), float(np.max(np.abs(d / sd))), d, unit


def _point(
    prep: _Prepared, p: ClassifierParameters
) -> tuple[int, NDArray[np.float64], float, float, int, bool]:
    """Point estimate: region code, voxel fractions, region best cosine, region max |z|,
    the change code that the marrow beyond the region explained (0 if none), and whether
    a type-3 call was made indeterminate for its near-normal T1."""
    frac, sig, rtype, rcos, rz, d, unit = _evidence(prep, p)  # d, unit: _median_departure's
    code = int(_decide(frac[None], np.array([sig]), np.array([rtype], dtype=np.int8), p)[0])
    explained = 0
    if _point_body_veto(prep, p, code, d, unit):
        code, explained = 0, code
    faint = False
    if code == 3:
        code = int(_faint_sclerosis(np.array([code]), d[None], unit[None], prep.roles, p)[0])
        faint = code == _INDET
    return code, frac, rcos, rz, explained, faint


#: Width (mm) of the columns along the endplate in which a local departure is looked for:
#: about one pixel of a lumbar sagittal T1 (0.6-1.2 mm), so that a column spans the
#: region's depth and holds a few voxels.
_PARTIAL_BIN_MM = 1.0


def _partial_departure(
    prep: _Prepared, p: ClassifierParameters, along: NDArray[np.float64]
) -> tuple[float, int, float]:
    """A local departure over part of a region (``partial_length_mm``): its length along
    the endplate (mm), its code (1-3, 12, 23) and the share of its voxels typed 1-3;
    ``(0, 0, 0)`` when there is none.

    ``along`` (n,): each region sample's position along the endplate, mm. The region is
    cut into columns :data:`_PARTIAL_BIN_MM` wide across its depth; a column belongs to
    the departure when ``partial_column_share`` of its voxels are typed 1-3 (an empty
    column, between pixel centres, takes its nearest neighbour's share). The longest run
    of such columns, at least ``partial_length_mm`` long and short of the whole region,
    is decided as a region of its own (steps 3-4: its voxel types, and its median against
    the reference beyond ``region_z`` of its uncertainty); a change there is the answer.
    """
    t = along - along.min()
    col = np.floor(t / _PARTIAL_BIN_MM).astype(np.intp)
    ncol = int(col.max()) + 1
    min_cols = int(np.ceil(p.partial_length_mm / _PARTIAL_BIN_MM - 1e-9))
    if ncol <= min_cols:  # the region is no longer than a local departure
        return 0.0, 0, 0.0
    unit = _units(prep.cv, p)
    logdev = prep.logreg - np.log(prep.med)
    types = _voxel_types(logdev[None], unit[None], prep.sig, p, prep.roles)[0]
    typed = (types >= 1) & (types <= 3)
    count = np.bincount(col, minlength=ncol)
    share = np.bincount(col, weights=typed.astype(np.float64), minlength=ncol) / np.maximum(count, 1)
    filled = np.flatnonzero(count > 0)  # sorted; an empty column takes its nearest one's share
    at = np.arange(ncol)
    pos = np.searchsorted(filled, at)
    lo = filled[np.maximum(pos - 1, 0)]
    hi = filled[np.minimum(pos, filled.size - 1)]
    good = share[np.where(np.abs(at - lo) < np.abs(hi - at), lo, hi)] >= p.partial_column_share
    # the longest run of good columns
    edges = np.diff(np.concatenate([[0], good.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size == 0:
        return 0.0, 0, 0.0
    k = int(np.argmax(stops - starts))
    a, b = int(starts[k]), int(stops[k])
    if b - a < min_cols or b - a >= ncol:
        return 0.0, 0, 0.0
    inside = (col >= a) & (col < b)
    n = int(inside.sum())
    if n < p.min_voxels:
        return 0.0, 0, 0.0
    frac = _fractions(types[inside][None])[0]
    d = np.median(logdev[inside], axis=0)
    nref = np.array([prep.ref[r].size for r in prep.roles])
    sd = np.sqrt(
        _median_se(prep.cv, n) ** 2 + _median_se(prep.cv, nref) ** 2 + p.tissue_sd**2 + prep.systematic**2
    )
    sig, rtype, _ = _region_pattern(d[None], sd[None], prep.sig, p, prep.roles)
    if not sig[0] or rtype[0] == _UNTYPED:
        return 0.0, 0, 0.0
    code = int(_decide(frac[None], sig, rtype, p)[0])
    if code not in _CHANGE_CODES:
        return 0.0, 0, 0.0
    return (b - a) * _PARTIAL_BIN_MM, code, float(frac[1:4].sum())


def _faint_sclerosis(
    codes: NDArray[np.integer],
    d: NDArray[np.float64],
    unit: NDArray[np.float64],
    roles: list[Role],
    p: ClassifierParameters,
) -> NDArray[np.int16]:
    """(b,) codes with type 3 made indeterminate where the region's median T1 is not
    darker than the reference by ``voxel_z`` units (``d``, ``unit``: (b, k) log departure of
    the region's median and the voxel unit; module docstring, step 5)."""
    j = roles.index(Role.T1)
    faint = (np.asarray(codes) == 3) & (-d[:, j] / unit[:, j] < p.voxel_z)
    return np.where(faint, _INDET, codes).astype(np.int16)


def t1_departure(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    context: SignalContext = EMPTY_CONTEXT,
) -> float:
    """For calibration sweeps: the region's median T1 departure from the reference in
    voxel units (negative: darker), which a type-3 call needs beyond ``-voxel_z``."""
    prep = _Prepared(region, reference, context, parameters, check=False)
    d, unit = _median_departure(prep, parameters)
    j = prep.roles.index(Role.T1)
    return float(d[j] / unit[j])


def _point_body_veto(
    prep: _Prepared, p: ClassifierParameters, code: int, d: NDArray[np.float64], unit: NDArray[np.float64]
) -> bool:
    """Whether the marrow beyond the region explains the point estimate's change call
    (``d``, ``unit``: :func:`_median_departure`)."""
    if prep.logbody is None or p.body_ratio <= 0 or code not in _CHANGE_CODES:
        return False
    body_dev = (prep.logbody - np.log(prep.med))[None]
    veto = _body_veto(np.array([code], dtype=np.int16), d[None], body_dev, unit[None], p)
    return bool(veto[0])


def evidence(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    context: SignalContext = EMPTY_CONTEXT,
) -> tuple[NDArray[np.float64], bool, int]:
    """The evidence steps 1-4 weigh, before the region decision: for calibration sweeps.

    Returns the (5,) voxel-type fractions (0, 1, 2, 3, untyped), whether the region as a
    whole departs from the reference, and the type its pattern matches (1-3, 4 = none).
    :func:`decide_codes` turns many of them into region types for any fraction thresholds.
    """
    frac, sig, rtype, *_ = _evidence(
        _Prepared(region, reference, context, parameters, check=False), parameters
    )
    return frac, sig, rtype


#: Voxel code of :func:`voxel_type_map` for a voxel that is abnormal but of no type, or
#: not measurable (0 normal, 1-3 the Modic types).
UNTYPED = _UNTYPED


def voxel_type_map(
    images: Mapping[Any, NDArray[np.floating]],
    reference_values: Mapping[Any, NDArray[np.floating]],
    context: SignalContext,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """The classifier's voxel rule (steps 1-3 of the module docstring) over whole images.

    Parameters
    ----------
    images : mapping of Role to (h, w) ndarray
        Signal of each sequence on one common grid (NaN where a sequence has no value).
    reference_values : mapping of Role to (n,) ndarray
        The region's reference samples (e.g. ``PreparedRegion.reference_values``).
    context : SignalContext
        The study's contrast (fat on each sequence, noise).
    parameters : ClassifierParameters

    Returns
    -------
    types : (h, w) int8 ndarray
        0 normal, 1-3 the Modic type of the voxel, :data:`UNTYPED` for an abnormal voxel of
        no type or a pixel without every sequence.
    z : (h, w, k) ndarray
        The deviations they were typed from: log ratio to the reference in units of its
        spread, per sequence (in the order of the roles given).
    """
    shape = next(iter(images.values())).shape
    valid = np.all([np.isfinite(v) for v in images.values()], axis=0).ravel()
    region = {r: np.where(np.isfinite(v), v, 1.0).ravel() for r, v in images.items()}
    ref = {r: v for r, v in reference_values.items() if r in region}
    pr = _Prepared(region, ref, context, parameters, check=False)
    unit = _units(pr.cv, parameters)
    logdev = pr.logreg - np.log(pr.med)
    types = _voxel_types(logdev[None], unit[None], pr.sig, parameters, pr.roles)[0].astype(np.int8)
    types = np.where(valid, types, _UNTYPED).astype(np.int8)
    z = np.where(valid[:, None], logdev / unit, 0.0)
    return types.reshape(shape), z.reshape(*shape, -1)


def decide_codes(
    fractions: ArrayLike, significant: ArrayLike, region_type: ArrayLike, parameters: ClassifierParameters
) -> list[ModicType]:
    """Region types from stacked :func:`evidence` (``(m, 5)``, ``(m,)``, ``(m,)``)."""
    codes = _decide(
        np.asarray(fractions, dtype=float),
        np.asarray(significant, dtype=bool),
        np.asarray(region_type, dtype=np.int8),
        parameters,
    )
    return [_CODE_TO_TYPE[int(c)] for c in codes]


def decide_type(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    context: SignalContext = EMPTY_CONTEXT,
) -> tuple[ModicType, dict[str, float]]:
    """The type and voxel-type fractions alone, without bootstrap, ratios or checks.

    Fast; for calibration sweeps. Same inputs as :func:`classify_samples`.
    """
    prep = _Prepared(region, reference, context, parameters, check=False)
    code, frac, _, _, _, _ = _point(prep, parameters)
    return _CODE_TO_TYPE[code], {k: float(v) for k, v in zip(_VOXEL_KEYS, frac, strict=True)}


def _calibrated(agreement: float, knots: tuple[tuple[float, float], ...]) -> float:
    """The agreement through the knots: linear from (0, 0), constant after the last knot."""
    if not knots:
        return agreement
    xs = [0.0] + [k[0] for k in knots]
    ys = [0.0] + [k[1] for k in knots]
    return float(np.interp(agreement, xs, ys))


def classify_samples(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    context: SignalContext = EMPTY_CONTEXT,
    seed: int = 0,
) -> TypeDecision:
    """Decide the Modic type of a region from its voxel samples and reference samples.

    Parameters
    ----------
    region : mapping of Role to (n,) array_like
        Signal of the region's voxels on each sequence, **the same voxels in the same
        order** on every sequence (sampled at the same patient positions). T1 is required,
        with T2 and/or STIR.
    reference : mapping of Role to (m,) array_like
        Signal of normal reference marrow on each sequence (any number of voxels per
        sequence; they need not correspond).
    parameters : ClassifierParameters
    context : SignalContext, optional
        The study's own fat contrast and the reference's systematic uncertainty
        (:func:`modic.contrast.measure_contrast`, :mod:`modic.reading`).
    seed : int
        Seed of the bootstrap, so results are reproducible.

    Returns
    -------
    TypeDecision

    Raises
    ------
    MeasurementError
        Missing T1, no fluid-sensitive sequence, too few voxels, mismatched region
        sample counts, or a non-positive reference median.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = {Role.T1: rng.normal(100, 5, 200), Role.T2: rng.normal(100, 5, 200)}
    >>> oedema = {Role.T1: rng.normal(65, 5, 150), Role.T2: rng.normal(160, 5, 150)}
    >>> classify_samples(oedema, ref).modic_type
    <ModicType.TYPE1: '1'>
    """
    p = parameters
    prep = _Prepared(region, reference, context, p, check=True)
    roles = prep.roles
    warnings = list(prep.warnings)
    code, frac, rcos, rz, explained, faint = _point(prep, p)
    modic_type = _CODE_TO_TYPE[code]

    # -- bootstrap: resample region voxels (jointly across sequences) and reference, and
    #    move each reference level by its systematic uncertainty -------------------------
    rng = np.random.default_rng(seed)
    b = p.n_bootstrap
    n = prep.n_reg
    idx = rng.integers(0, n, size=(b, n))
    k = len(roles)
    # medians and MADs of the resamples from how often each sorted sample is drawn (the
    # same draws and the same values as the median of each resampled copy, without them)
    nref = np.array([prep.ref[r].size for r in roles], dtype=np.float64)
    ref_draws = [rng.integers(0, prep.ref[r].size, size=(b, prep.ref[r].size)) for r in roles]
    med_all, s_ref = _resampled_median_mad(
        [prep.ref[r] for r in roles] + [prep.logreg[:, j] for j in range(k)], ref_draws + [idx] * k, k
    )
    med_b, reg_med_b = med_all[:, :k], med_all[:, k:]  # (b, k): references; region (log)
    cv_b = s_ref / med_b
    # marrow variation moves each sequence on its own; a coil gradient or a far reference
    # moves all of them together (one coil)
    shift = (
        rng.normal(0.0, 1.0, size=(b, k)) * p.tissue_sd + rng.normal(0.0, 1.0, size=(b, 1)) * prep.systematic
    )
    if p.fat_sd > 0:  # normal marrow's fat content varies from place to place (module docstring)
        f = prep.sig[1] / prep.sig[1][0] if abs(prep.sig[1][0]) > 1e-9 else prep.sig[1]
        shift = shift + rng.normal(0.0, 1.0, size=(b, 1)) * p.fat_sd * f[None, :]
    logmed_b = np.log(med_b) + shift
    # the resampled voxels' log deviations, (b, n) per sequence
    logdev_b = [prep.logreg[:, j][idx] - logmed_b[:, j, None] for j in range(k)]
    unit_b = _units(cv_b, p)
    frac_b = _fractions(_voxel_types(logdev_b, unit_b, prep.sig, p, roles))
    d_b = reg_med_b - logmed_b  # the median of each resample's log deviations
    sd_b = np.sqrt(
        _median_se(cv_b, n) ** 2 + _median_se(cv_b, nref) ** 2 + p.tissue_sd**2 + prep.systematic**2
    )
    sig_b, rtype_b, _ = _region_pattern(d_b, sd_b, prep.sig, p, roles)
    codes_b = _decide(frac_b, sig_b, rtype_b, p)
    if prep.logbody is not None and p.body_ratio > 0:  # patchy marrow beyond the region (step 4)
        codes_b = np.where(_body_veto(codes_b, d_b, prep.logbody[None, :] - logmed_b, unit_b, p), 0, codes_b)
    codes_b = _faint_sclerosis(codes_b, d_b, unit_b, roles, p)
    agreement = float(np.mean(codes_b == code))
    knots = p.confidence_calibration if modic_type is ModicType.NONE else p.change_calibration
    confidence = _calibrated(agreement, knots)
    typed = float(frac[1] + frac[2] + frac[3])
    capped_by = ""
    # a band placed without looking earns less at the same typed share
    typed_knots = p.normal_typed_calibration
    if context.proposed and p.proposed_normal_typed_calibration:
        typed_knots = p.proposed_normal_typed_calibration
    if modic_type is ModicType.NONE and typed_knots:
        xs = [k[0] for k in typed_knots]
        ys = [k[1] for k in typed_knots]
        cap = float(np.interp(typed, xs, ys))
        if cap < confidence:
            confidence, capped_by = cap, "typed"
    if explained and p.body_explained_confidence < confidence:
        confidence, capped_by = p.body_explained_confidence, "body"
    partial_mm, partial_code, partial_typed = 0.0, 0, 0.0
    along = np.asarray(context.along_mm, dtype=np.float64)
    if modic_type is ModicType.NONE and p.partial_length_mm > 0 and along.size == n:
        partial_mm, partial_code, partial_typed = _partial_departure(prep, p, along)
        if partial_mm and p.partial_confidence < confidence:
            confidence, capped_by = p.partial_confidence, "partial"
    # the spread the region is compared with is the reference's: a change can hide in a
    # heterogeneous one, and a normal band depart from one holding a change
    flag_cap = {"drawn": p.reference_flag_confidence, "proposed": p.proposed_reference_flag_confidence,
                None: 1.0}[context.reference_flagged]
    flag_capped = flag_cap < confidence
    if flag_capped:
        confidence = flag_cap

    ratios = {}
    unit = _units(prep.cv, p)
    ratio_b = np.exp(d_b)  # (b, k) resampled signal ratios
    bounds = np.percentile(ratio_b, [2.5, 97.5], axis=0)  # (2, k): the same as per sequence
    for j, r in enumerate(roles):
        region_median = np.median(prep.reg[r])
        ratio = float(region_median / prep.med[j])
        br = ratio_b[:, j]
        lo, hi = bounds[:, j]
        shares = {
            Call.HYPO: float(np.mean(br < 1 - p.iso_margin)),
            Call.HYPER: float(np.mean(br > 1 + p.iso_margin)),
        }
        shares[Call.ISO] = 1.0 - shares[Call.HYPO] - shares[Call.HYPER]
        call = Call.HYPO if ratio < 1 - p.iso_margin else Call.HYPER if ratio > 1 + p.iso_margin else Call.ISO
        ratios[r] = SignalRatio(
            role=r,
            ratio=ratio,
            low=float(lo),
            high=float(hi),
            call=call,
            call_confidence=shares[call],
            region_median=float(region_median),
            reference_median=float(prep.med[j]),
            reference_spread=float(prep.cv[j] * prep.med[j]),
            n_region=n,
            n_reference=int(prep.ref[r].size),
            unit=float(unit[j]),
        )
    fractions = {key: float(v) for key, v in zip(_VOXEL_KEYS, frac, strict=True)}
    reason = _reason(modic_type, fractions, ratios, rcos, rz, p)
    if faint:
        t1 = ratios[Role.T1]
        t1_z = -np.log(t1.ratio) / t1.unit if t1.ratio > 0 and t1.unit > 0 else 0.0
        reason = (
            f"the region is darker than the reference on every sequence ({_pattern(ratios)}), but its T1 "
            f"only by {t1_z:.1f} units, under the {p.voxel_z:g} a dark T1 needs: sclerosis (type 3) is dark "
            "on T1; denser or leaner subchondral marrow, a coil gradient or partial volume at the endplate "
            "darken a band like this"
        )
    if capped_by == "typed":
        reason = (
            f"{typed:.0%} of the voxels depart from the reference in a Modic pattern, short of the "
            f"{p.abnormal_fraction:.0%} that makes a change: read as normal, but a weak or small change "
            f"cannot be ruled out (confidence at most {confidence:.2f}, what such calls earned on the "
            + ("development cohorts with proposed bands)" if context.proposed else "calibration cohort)")
        )
    if partial_mm:
        length = float(along.max() - along.min()) + _PARTIAL_BIN_MM
        local = (
            f"{partial_mm:.0f} mm of the region's {length:.0f} mm along the endplate depart from the "
            f"reference in a type {_CODE_TO_TYPE[partial_code].value} pattern ({partial_typed:.0%} of the "
            "voxels there)"
        )
        warnings.append(
            f"{local}: a change over part of the endplate, or partial volume at the endplate, a Schmorl "
            "node or an ROI leaving the vertebral body; look at that part"
        )
        if capped_by == "partial":
            reason = (
                f"the region as a whole reads as normal, but {local}: a change over part of the endplate "
                f"cannot be ruled out (confidence at most {confidence:.2f}, what such calls earned on the "
                "development cohorts)"
            )
    if explained:
        reason = (
            f"the region departs from the reference in a type {_CODE_TO_TYPE[explained].value} pattern "
            f"({_pattern(ratios)}), but the vertebra's marrow just beyond it departs as much: patchy "
            "marrow, not a change anchored at the endplate"
        )
        warnings.append(
            f"read as normal marrow: the departure (type {_CODE_TO_TYPE[explained].value} pattern) continues "
            "into the vertebral body beyond the region as strongly (patchy or fatty-with-age marrow)"
        )
    if flag_capped:
        reason = (
            f"{reason}; but the reference may hold part of a change or heterogeneous marrow (see the "
            f"warnings): confidence at most {confidence:.2f}, what calls against such references earned on "
            "the development cohorts"
        )
    warnings.extend(_consistency_warnings(modic_type, ratios, fractions, context))
    return TypeDecision(
        modic_type=modic_type,
        confidence=confidence,
        ratios=ratios,
        fractions=fractions,
        warnings=warnings,
        reason=reason,
        agreement=agreement,
        body_rule=bool(explained),
        partial_mm=partial_mm,
    )


def _pattern(ratios: Mapping[Role, SignalRatio]) -> str:
    return ", ".join(f"{r.value} {s.ratio:.2f}x ({s.call.value})" for r, s in ratios.items())


def _reason(
    t: ModicType,
    fractions: Mapping[str, float],
    ratios: Mapping[Role, SignalRatio],
    region_cos: float,
    region_z: float,
    p: ClassifierParameters,
) -> str:
    typed = fractions["1"] + fractions["2"] + fractions["3"]
    untyped = fractions["unclassified"]
    if t is ModicType.INDETERMINATE:
        if typed >= p.abnormal_fraction:
            return (
                f"the sequences contradict each other: {untyped:.0%} of the voxels fit no Modic pattern, "
                f"more than the {typed:.0%} that do"
            )
        if region_z > p.region_z:
            return (
                "the region departs from the reference in a pattern that fits no Modic type "
                f"({_pattern(ratios)})"
            )
        return (
            f"{untyped:.0%} of the voxels cannot be typed: their T1, T2 and STIR signals "
            "contradict each other"
        )
    if t is ModicType.NONE:
        return "no sequence departs from the reference beyond noise and normal marrow variation"
    if typed >= p.abnormal_fraction:
        return f"{typed:.0%} of the voxels are abnormal in a Modic pattern"
    return f"the region as a whole departs from the reference in a Modic pattern ({_pattern(ratios)})"


def _consistency_warnings(
    t: ModicType,
    ratios: Mapping[Role, SignalRatio],
    fractions: Mapping[str, float],
    context: SignalContext,
) -> list[str]:
    """Patterns that do not fit the physics and suggest a mislabelled series."""
    out = []
    t1, t2, stir = ratios.get(Role.T1), ratios.get(Role.T2), ratios.get(Role.STIR)
    if t1 is not None and t2 is not None and t1.call is Call.HYPER and t2.call is Call.HYPO:
        out.append(
            f"T2 is dark ({t2.ratio:.2f}x) where T1 is bright ({t1.ratio:.2f}x): fat stays bright on fast "
            "spin-echo T2, so this 'T2' series may be fat-suppressed"
        )
    fat_stir = context.fat_ratio.get(Role.STIR)
    if (
        t1 is not None
        and stir is not None
        and t1.call is Call.HYPER
        and stir.call is Call.HYPER
        and (fat_stir is None or fat_stir < 0.8)
    ):
        out.append(
            f"STIR is bright ({stir.ratio:.2f}x) in a T1-bright region: fat should be dark on STIR; is the "
            "STIR series really fat-suppressed?"
        )
    if fractions["unclassified"] >= 0.25 and t is not ModicType.INDETERMINATE:
        out.append(
            f"{fractions['unclassified']:.0%} of the voxels have contradictory T1/T2/STIR signal "
            "(they fit no Modic pattern)"
        )
    return out
