"""Modic type of an endplate region from its signal relative to normal marrow.

The rule is Modic's (Radiology 1988), read voxel by voxel as research coding does
(Gao et al., JOR Spine 2022; DOMAIN.md):

=========  ===========  =========================  =====================
type       T1           T2 (no fat suppression)    STIR / fat-sat T2
=========  ===========  =========================  =====================
0          iso          iso                        iso
1          hypo         hyper                      hyper
2          hyper        iso or hyper               hypo (or iso: partial suppression)
3          hypo         hypo                       hypo
=========  ===========  =========================  =====================

Every Modic type changes the T1 signal (darker in 1 and 3, brighter in 2), so T1 decides
whether a voxel is abnormal and in which direction; the fluid-sensitive sequences (STIR
first, else T2) separate type 1 (oedema: bright) from type 3 (sclerosis: dark).

How a region is decided
-----------------------
1. **Reference statistics** per sequence: the median of the reference marrow and its
   robust spread (1.4826 x MAD), which holds both the image noise and the normal
   heterogeneity of marrow.
2. **Voxel calls**: a voxel is hypo- or hyper-intense on a sequence when it differs from
   the reference median by more than ``max(min_voxel_change, voxel_z x cv)`` where ``cv`` is
   the reference's relative spread, so a noisier image needs a larger difference.
3. **Voxel types** from the T1 / T2 / STIR pattern above (a dark-T1 voxel whose STIR and T2
   are both iso is typed by the direction of their deviation: every dark-T1 voxel is
   abnormal, and a fast spin-echo T2 can hide oedema behind fat).
4. **Region type**: if abnormal voxels are fewer than ``abnormal_fraction``, type 0;
   otherwise the dominant abnormal type, or a mixed type (1/2, 2/3) when the second type
   makes up at least ``mixed_fraction`` of the abnormal voxels.
5. **Confidence**: the region and the reference are resampled (bootstrap over voxels) and
   steps 1-4 repeated; the confidence is the share of resamples giving the same type. So
   a small region, a noisy image or a borderline signal all lower the confidence.

The signal intensity ratio (SIR) reported per sequence is median(region) /
median(reference) with a bootstrap 95 % interval, and its call (hypo / iso / hyper) uses
an equivalence margin around 1 (``iso_margin``) on the bootstrap distribution. The
thresholds live in :class:`ClassifierParameters`; docs/classifier.md gives their sources
and the calibration that chose them (``benchmarks/calibrate_classifier.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import MeasurementError
from .sequence import Role

__all__ = [
    "ModicType",
    "Call",
    "ClassifierParameters",
    "DEFAULT_PARAMETERS",
    "SignalRatio",
    "TypeDecision",
    "classify_samples",
    "decide_type",
]


class ModicType(str, enum.Enum):
    """Modic type of an endplate region."""

    NONE = "0"
    TYPE1 = "1"
    TYPE2 = "2"
    TYPE3 = "3"
    MIXED_1_2 = "1/2"
    MIXED_2_3 = "2/3"

    @property
    def tissue(self) -> str:
        """What the type is made of, in words."""
        return _TISSUE[self]


_TISSUE = {
    ModicType.NONE: "normal marrow",
    ModicType.TYPE1: "oedema pattern",
    ModicType.TYPE2: "fatty marrow pattern",
    ModicType.TYPE3: "sclerosis pattern",
    ModicType.MIXED_1_2: "mixed oedema and fat",
    ModicType.MIXED_2_3: "mixed fat and sclerosis",
}


class Call(str, enum.Enum):
    """Signal of a region relative to the reference on one sequence."""

    HYPO = "hypo"
    ISO = "iso"
    HYPER = "hyper"


@dataclass(frozen=True)
class ClassifierParameters:
    """The thresholds of the classifier. See docs/classifier.md for their sources.

    Attributes
    ----------
    voxel_z : float
        A voxel differs from the reference when it lies more than this many reference
        spreads from the reference median. Calibrated (2.5; 2.0-3.0 perform within 0.3 %
        of each other); 2.5 spreads keeps about 99 % of normal marrow voxels iso under a
        Gaussian model.
    min_voxel_change : float
        ... and by at least this fraction of the reference median: the floor that keeps
        residual coil bias and normal marrow variation between region and reference iso
        in quiet images. Calibrated (0.18).
    max_voxel_change : float
        Upper cap of the voxel threshold (0.45), so that a very noisy reference cannot make
        every change "iso": Modic 1 and 3 lower T1 by 30-50 %, Modic 2 raises it by 20-40 %
        (Modic 1988; Gao et al. 2022), so larger thresholds would hide them. Design choice.
    abnormal_fraction : float
        A region is abnormal (type != 0) when at least this share of its voxels has an
        abnormal type. Calibrated (0.3; 0.25-0.4 perform the same).
    mixed_fraction : float
        A region is mixed (1/2 or 2/3) when the second type makes up at least this share
        of its abnormal voxels. Constrained to >= 0.15 (a visible share of the change) and
        calibrated within that range (0.15); see docs/classifier.md for why it is not free.
    iso_margin : float
        Per-sequence SIR call: ``iso`` within 1 +/- iso_margin. Explanatory only (the type
        comes from the voxels). The naive band of other tools is 0.15 (no citation); typical
        SIRs of Modic changes are 0.5-0.8 and 1.2-2 (Eur Radiol Exp 2017; Gao 2022), so 0.10
        keeps normal variation iso without hiding changes. Design choice.
    n_bootstrap : int
        Resamples for the confidence and the SIR intervals (200: the 2.5/97.5 percentiles
        and a confidence to about +/- 0.03).
    min_voxels : int
        Fewer voxels than this in a region or reference is an error (5: below that a median
        and its spread mean nothing).
    small_voxels : int
        Fewer voxels than this gets a warning (20); the confidence accounts for size too.

    Notes
    -----
    Calibrated values come from ``benchmarks/calibrate_classifier.py`` on 60 phantom
    studies (seeds 500000-500059, 660 endplates), kept apart from the evaluation seeds.
    """

    voxel_z: float = 2.5
    min_voxel_change: float = 0.18
    max_voxel_change: float = 0.45
    abnormal_fraction: float = 0.30
    mixed_fraction: float = 0.15
    iso_margin: float = 0.10
    n_bootstrap: int = 200
    min_voxels: int = 5
    small_voxels: int = 20

    def __post_init__(self) -> None:
        for name in ("voxel_z", "min_voxel_change", "max_voxel_change", "iso_margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClassifierParameters.{name} must be positive")
        for name in ("abnormal_fraction", "mixed_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"ClassifierParameters.{name} must be between 0 and 1")
        if self.n_bootstrap < 20:
            raise ValueError("ClassifierParameters.n_bootstrap must be at least 20")


DEFAULT_PARAMETERS = ClassifierParameters()


@dataclass(frozen=True)
class SignalRatio:
    """Signal of a region relative to reference marrow on one sequence.

    Attributes
    ----------
    role : Role
    ratio : float
        median(region) / median(reference).
    low, high : float
        Bootstrap 95 % interval of the ratio.
    call : Call
    call_confidence : float
        Share of bootstrap resamples giving the same call.
    region_median, reference_median : float
    reference_spread : float
        Robust spread (1.4826 x MAD) of the reference.
    n_region, n_reference : int
        Voxels (samples) used.
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


@dataclass(frozen=True)
class TypeDecision:
    """What the classifier decided for one region, before it is tied to an ROI.

    Attributes
    ----------
    modic_type : ModicType
    confidence : float
        Share of bootstrap resamples that give the same type (0-1).
    ratios : dict of Role to SignalRatio
    fractions : dict of str to float
        Share of the region's voxels of each voxel type: keys ``"0"``, ``"1"``, ``"2"``,
        ``"3"`` and ``"unclassified"`` (contradictory patterns); they sum to 1.
    warnings : list of str
    """

    modic_type: ModicType
    confidence: float
    ratios: dict[Role, SignalRatio]
    fractions: dict[str, float]
    warnings: list[str] = field(default_factory=list)


# voxel type codes
_UNCLASSIFIED = 4
_VOXEL_KEYS = ("0", "1", "2", "3", "unclassified")


def _robust(ref: NDArray[np.float64], axis: int = -1) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Median and robust spread (1.4826 MAD) along an axis."""
    med = np.median(ref, axis=axis)
    mad = np.median(np.abs(ref - np.expand_dims(med, axis)), axis=axis)
    return med, 1.4826 * mad


def _voxel_calls(
    values: NDArray[np.float64],
    ref_median: NDArray[np.float64],
    ref_spread: NDArray[np.float64],
    p: ClassifierParameters,
) -> NDArray[np.int8]:
    """-1 / 0 / +1 per voxel. ``values`` (..., n); ``ref_*`` (...,)."""
    cv = ref_spread / ref_median
    thr = np.clip(p.voxel_z * cv, p.min_voxel_change, p.max_voxel_change)[..., None]
    rel = values / ref_median[..., None] - 1.0
    out = np.zeros(values.shape, dtype=np.int8)
    out[rel > thr] = 1
    out[rel < -thr] = -1
    return out


def _voxel_types(calls: Mapping[Role, NDArray[np.int8]], fluid_dev: NDArray[np.float64]) -> NDArray[np.int8]:
    """Voxel Modic type (0-3, 4 = unclassified) from per-sequence calls.

    ``fluid_dev`` is the summed relative deviation from the reference median of the
    fluid-sensitive sequences (STIR, T2), same shape as the calls: it decides oedema versus
    sclerosis for a dark-T1 voxel whose fluid-sensitive calls are both iso.
    """
    t1 = calls[Role.T1]
    stir = calls.get(Role.STIR)
    t2 = calls.get(Role.T2)
    types = np.zeros(t1.shape, dtype=np.int8)
    # T1 hypo: fluid-sensitive sequences separate oedema (1, bright) from sclerosis (3, dark).
    # STIR is the more specific of the two (fat suppressed); T2 decides when STIR is iso or
    # absent; when both are iso, the direction of their (sub-threshold) deviation decides:
    # every dark-T1 voxel is abnormal, and a fast spin-echo T2 can hide oedema behind fat.
    hypo = t1 < 0
    fluid_sign = np.sign(fluid_dev).astype(np.int8)
    if t2 is not None:
        fluid_sign = np.where(t2 != 0, t2, fluid_sign).astype(np.int8)
    if stir is not None:
        fluid_sign = np.where(stir != 0, stir, fluid_sign).astype(np.int8)
    types[hypo & (fluid_sign >= 0)] = 1
    types[hypo & (fluid_sign < 0)] = 3
    # T1 hyper: fatty marrow, type 2 -- unless STIR is bright too (fat would be dark on STIR)
    hyper = t1 > 0
    types[hyper] = 2
    if stir is not None:
        types[hyper & (stir > 0)] = _UNCLASSIFIED
    return types


def _fluid_deviation(
    reg: Mapping[Role, NDArray[np.float64]], med: Mapping[Role, NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Summed relative deviation of STIR and T2 from their reference medians, (..., n)."""
    out = np.zeros(reg[Role.T1].shape)
    for r in (Role.STIR, Role.T2):
        if r in reg:
            out = out + reg[r] / np.expand_dims(med[r], -1) - 1.0
    return out


def _fractions(types: NDArray[np.int8]) -> NDArray[np.float64]:
    """(..., 5) share of each voxel type along the last axis."""
    n = types.shape[-1]
    return np.stack([(types == k).sum(axis=-1) / n for k in range(5)], axis=-1)


def _decide(frac: NDArray[np.float64], p: ClassifierParameters) -> NDArray[np.int8]:
    """Region type code per row of ``frac`` (..., 5): 0-3, 12 (=1/2) or 23 (=2/3)."""
    abn = frac[..., 1:4]
    abnormal = abn.sum(axis=-1)
    order = np.argsort(-abn, axis=-1, kind="stable")
    first = order[..., 0] + 1
    second = order[..., 1] + 1
    share2 = np.take_along_axis(abn, order[..., 1:2], axis=-1)[..., 0] / np.maximum(abnormal, 1e-12)
    out = first.astype(np.int16)
    pair = np.minimum(first, second) * 10 + np.maximum(first, second)
    mixed = (share2 >= p.mixed_fraction) & ((pair == 12) | (pair == 23))
    out = np.where(mixed, pair, out)
    out = np.where(abnormal < p.abnormal_fraction, 0, out)
    return out.astype(np.int8)


_CODE_TO_TYPE = {
    0: ModicType.NONE,
    1: ModicType.TYPE1,
    2: ModicType.TYPE2,
    3: ModicType.TYPE3,
    12: ModicType.MIXED_1_2,
    23: ModicType.MIXED_2_3,
}


def _as_samples(name: str, values: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise MeasurementError(f"{name}: samples contain NaN or infinite values")
    return a


def _point_estimate(
    reg: Mapping[Role, NDArray[np.float64]],
    stats: Mapping[Role, tuple[NDArray[np.float64], NDArray[np.float64]]],
    p: ClassifierParameters,
) -> tuple[int, NDArray[np.float64]]:
    """Region type code and voxel-type fractions from region samples and reference stats."""
    calls = {
        r: _voxel_calls(reg[r][None, :], np.atleast_1d(stats[r][0]), np.atleast_1d(stats[r][1]), p)[0]
        for r in reg
    }
    fluid = _fluid_deviation(reg, {r: np.asarray(stats[r][0]) for r in reg})
    frac = _fractions(_voxel_types(calls, fluid))
    return int(_decide(frac, p)), frac


def decide_type(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
) -> tuple[ModicType, dict[str, float]]:
    """The type and voxel-type fractions alone, without bootstrap, ratios or checks.

    Fast; for calibration sweeps. Same inputs as :func:`classify_samples`.
    """
    roles = [r for r in (Role.T1, Role.T2, Role.STIR) if r in region and r in reference]
    reg = {r: np.asarray(region[r], dtype=float).reshape(-1) for r in roles}
    stats = {r: _robust(np.asarray(reference[r], dtype=float).reshape(-1)) for r in roles}
    code, frac = _point_estimate(reg, stats, parameters)
    return _CODE_TO_TYPE[code], {k: float(v) for k, v in zip(_VOXEL_KEYS, frac, strict=True)}


def classify_samples(
    region: Mapping[Role, ArrayLike],
    reference: Mapping[Role, ArrayLike],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
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
    if Role.T1 not in region or Role.T1 not in reference:
        raise MeasurementError("a T1-weighted sequence is needed to type Modic changes")
    roles = [r for r in (Role.T1, Role.T2, Role.STIR) if r in region and r in reference]
    if len(roles) < 2:
        raise MeasurementError("a T2-weighted or STIR sequence is needed besides T1")
    reg = {r: _as_samples(f"region {r.value}", region[r]) for r in roles}
    ref = {r: _as_samples(f"reference {r.value}", reference[r]) for r in roles}
    n = {reg[r].size for r in roles}
    if len(n) != 1:
        raise MeasurementError(
            "region samples must be the same voxels on every sequence; got counts "
            + ", ".join(f"{r.value} {reg[r].size}" for r in roles)
        )
    n_reg = n.pop()
    warnings: list[str] = []
    for what, count in [("region", n_reg)] + [(f"reference on {r.value}", ref[r].size) for r in roles]:
        if count < p.min_voxels:
            raise MeasurementError(f"the {what} has {count} voxels; at least {p.min_voxels} are needed")
        if count < p.small_voxels:
            warnings.append(f"the {what} has only {count} voxels: the result is uncertain")
    for r in roles:
        med = float(np.median(ref[r]))
        if not med > 0:
            raise MeasurementError(
                f"the reference median on {r.value} is {med:g}; signal must be positive (is it marrow?)"
            )

    # -- point estimate ------------------------------------------------------------------
    stats = {r: _robust(ref[r]) for r in roles}
    code, frac = _point_estimate(reg, stats, p)
    modic_type = _CODE_TO_TYPE[code]

    # -- bootstrap: resample region voxels (jointly across sequences) and reference -------
    rng = np.random.default_rng(seed)
    b = p.n_bootstrap
    idx = rng.integers(0, n_reg, size=(b, n_reg))
    boot_calls = {}
    boot_ratio = {}
    boot_reg = {}
    boot_med = {}
    for r in roles:
        ref_b = ref[r][rng.integers(0, ref[r].size, size=(b, ref[r].size))]
        med_b, spread_b = _robust(ref_b)
        reg_b = reg[r][idx]
        boot_calls[r] = _voxel_calls(reg_b, med_b, spread_b, p)
        boot_ratio[r] = np.median(reg_b, axis=1) / med_b
        boot_reg[r], boot_med[r] = reg_b, med_b
    boot_types = _voxel_types(boot_calls, _fluid_deviation(boot_reg, boot_med))
    boot_codes = _decide(_fractions(boot_types), p)
    confidence = float(np.mean(boot_codes == code))

    ratios = {}
    for r in roles:
        ref_med, ref_spread = stats[r]
        ratio = float(np.median(reg[r]) / ref_med)
        lo, hi = np.percentile(boot_ratio[r], [2.5, 97.5])
        br = boot_ratio[r]
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
            region_median=float(np.median(reg[r])),
            reference_median=float(ref_med),
            reference_spread=float(ref_spread),
            n_region=n_reg,
            n_reference=int(ref[r].size),
        )
    fractions = {k: float(v) for k, v in zip(_VOXEL_KEYS, frac, strict=True)}
    warnings.extend(_consistency_warnings(modic_type, ratios, fractions))
    return TypeDecision(
        modic_type=modic_type, confidence=confidence, ratios=ratios, fractions=fractions, warnings=warnings
    )


def _consistency_warnings(
    t: ModicType, ratios: Mapping[Role, SignalRatio], fractions: Mapping[str, float]
) -> list[str]:
    """Patterns that do not fit the physics and suggest a mislabelled series."""
    out = []
    t1, t2, stir = ratios.get(Role.T1), ratios.get(Role.T2), ratios.get(Role.STIR)
    if t is ModicType.TYPE2 and t2 is not None and t2.call is Call.HYPO:
        out.append(
            f"T2 is dark ({t2.ratio:.2f}x) where T1 shows fat: fat stays bright on fast spin-echo "
            "T2, so this 'T2' series may be fat-suppressed"
        )
    if t is ModicType.TYPE2 and stir is not None and stir.call is Call.HYPER:
        out.append(
            f"STIR is bright ({stir.ratio:.2f}x) in a fatty region: is the STIR series really fat-suppressed?"
        )
    if fractions["unclassified"] >= 0.25:
        out.append(
            f"{fractions['unclassified']:.0%} of the voxels have contradictory T1/T2/STIR signal "
            "(e.g. T1 dark but fluid-sensitive sequences iso)"
        )
    if t1 is not None and t is ModicType.NONE and t1.call is not Call.ISO and t1.call_confidence > 0.9:
        out.append(
            f"T1 median is {t1.call.value} ({t1.ratio:.2f}x) but too few voxels are abnormal for a Modic type"
        )
    return out
