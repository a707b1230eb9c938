"""MR signal: pulse-sequence equations, coil sensitivity, Rician noise and stored values.

Signal equations (magnitude taken after the complex noise is added, so partial-volume
sums of water and fat keep their signs, as in a real inversion-recovery image):

- spin echo / fast spin echo: ``S = PD (1 - exp(-TR/T1)) exp(-TE/T2)``
- STIR (inversion recovery): ``S = PD (1 - 2 exp(-TI/T1) + exp(-TR/T1)) exp(-TE/T2)``,
  with ``TI = T1_fat ln(2 / (1 + exp(-TR/T1_fat)))`` (~ T1_fat ln 2), which nulls fat
- incomplete STIR fat nulling (``SeriesSpec.stir_efficiency`` = e < 1): the fat pool
  behaves as if its T1 were longer than the one TI nulls (multi-peak fat, B0 / B1
  inhomogeneity): its longitudinal term is ``e (1 - 2 exp(-TI/T1f) + exp(-TR/T1f)) -
  (1 - e) (1 - exp(-TR/T1f))`` -- a share ``1 - e`` still inverted at TI, adding to the
  (inverted) water in magnitude; the header TI is unchanged
- spectral fat saturation (``"t2fs"``): the fat pool of the fast-spin-echo signal is
  scaled by ``1 - efficiency`` (incomplete suppression is common: DOMAIN.md)
- spoiled gradient echo (localizer): ``S = PD sin(a) (1 - E1) / (1 - cos(a) E1)
  exp(-TE/T2)``, T2 standing in for T2*.

In fast spin echo (and FSE-based STIR / fat-sat) the fat pool relaxes with its long
apparent FSE T2 (J-coupling suppression), in spin echo and gradient echo with its SE T2.

Noise: ``sigma_T1 = mean(S_T1 of normal L1-L5 marrow) / snr`` (noise-free, coil
sensitivity 1); every series uses ``sigma_T1 * noise_scale`` (default by role, see
:func:`default_noise_scale`), except that a localizer without an explicit
``noise_scale`` gets a marrow SNR of ``snr / 2`` on its own (gradient-echo) signal.  Complex Gaussian noise of
that sigma is added to the real signal and the magnitude is kept (Rician statistics,
Rayleigh in air).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .spec import SeriesSpec
from .tissue import FatRelaxation, Tissue, fat_relaxation

if TYPE_CHECKING:
    from .anatomy import Anatomy

__all__ = [
    "Sequence",
    "default_sequence",
    "stir_null_ti",
    "compartment_signal",
    "tissue_signal",
    "tissue_signal_slope",
    "tissue_signal_patch_slope",
    "default_noise_scale",
    "coil_sensitivity",
    "coil_gradient_profile",
    "add_rician_noise",
    "Quantisation",
    "quantise",
]

FloatArray = NDArray[np.float64]

_FSE_KINDS = ("fse", "stir", "fse_fs")


@dataclass(frozen=True)
class Sequence:
    """Acquisition parameters that determine contrast.

    Attributes
    ----------
    kind : str
        ``"fse"``, ``"stir"``, ``"fse_fs"``, ``"se"`` or ``"gre"``.
    tr, te : float
        Repetition and echo time, ms.
    ti : float or None
        Inversion time, ms (STIR only).
    flip_angle : float
        Excitation flip angle, degrees.
    echo_train_length : int
        Echo-train length (1 for SE and GRE).
    fat_residual : float
        Fraction of the fat signal kept (1 = no fat saturation).
    stir_fat_residual : float
        STIR only: share of the fat's relaxed magnetisation still inverted at TI (0 = fat
        nulled by TI; ``1 - SeriesSpec.stir_efficiency``).
    """

    kind: str
    tr: float
    te: float
    ti: float | None
    flip_angle: float
    echo_train_length: int
    fat_residual: float = 1.0
    stir_fat_residual: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``stir_fat_residual`` left out when 0)."""
        d = asdict(self)
        if d["stir_fat_residual"] == 0.0:
            del d["stir_fat_residual"]
        return d


def stir_null_ti(t1_fat: float, tr: float) -> float:
    """Inversion time (ms) that nulls a pool of longitudinal relaxation ``t1_fat``.

    Examples
    --------
    >>> round(stir_null_ti(220.0, 4000.0))
    152
    """
    return t1_fat * math.log(2.0 / (1.0 + math.exp(-tr / t1_fat)))


# (TR, TE, ETL) defaults per role at (1.5 T, 3 T); vendors differ slightly.
_DEFAULTS: dict[str, dict[float, tuple[float, float, int]]] = {
    "t1": {1.5: (550.0, 11.0, 3), 3.0: (650.0, 10.0, 4)},
    "t2": {1.5: (3500.0, 100.0, 17), 3.0: (4000.0, 95.0, 19)},
    "stir": {1.5: (4000.0, 60.0, 11), 3.0: (5000.0, 50.0, 13)},
    "t2fs": {1.5: (3500.0, 90.0, 15), 3.0: (4000.0, 85.0, 17)},
}
_VENDOR_TR = {"siemens": 1.0, "ge": 1.05, "philips": 0.95}
_LOCALIZER = {"siemens": (8.6, 4.0, 20.0), "ge": (5.2, 1.6, 30.0), "philips": (11.0, 4.6, 15.0)}


def default_sequence(series: SeriesSpec, vendor: str, field_strength: float) -> Sequence:
    """Vendor- and field-style acquisition parameters of ``series``, with its overrides."""
    fat = fat_relaxation(field_strength)
    if series.role == "localizer":
        tr, te, fa = _LOCALIZER[vendor]
        return Sequence("gre", series.tr or tr, series.te or te, None,
                        series.flip_angle or fa, 1)
    tr0, te0, etl0 = _DEFAULTS[series.role][field_strength]
    tr = series.tr if series.tr is not None else round(tr0 * _VENDOR_TR[vendor])
    te = series.te if series.te is not None else te0
    etl = series.echo_train_length or etl0
    fa = series.flip_angle if series.flip_angle is not None else 90.0
    if series.role == "stir":
        ti = series.ti if series.ti is not None else float(round(stir_null_ti(fat.t1, tr)))
        residual = 0.0 if series.stir_efficiency is None else 1.0 - series.stir_efficiency
        return Sequence("stir", float(tr), float(te), ti, fa, etl, stir_fat_residual=residual)
    if series.role == "t2fs":
        return Sequence("fse_fs", float(tr), float(te), None, fa, etl,
                        fat_residual=1.0 - series.fat_sat_efficiency)
    return Sequence("fse", float(tr), float(te), None, fa, etl)


def compartment_signal(pd: float, t1: float, t2: float, seq: Sequence) -> float:
    """Signed signal of one pool (before magnitude)."""
    if pd == 0.0:
        return 0.0
    e2 = math.exp(-seq.te / t2)
    if seq.kind == "stir":
        assert seq.ti is not None
        return pd * (1.0 - 2.0 * math.exp(-seq.ti / t1) + math.exp(-seq.tr / t1)) * e2
    if seq.kind == "gre":
        a = math.radians(seq.flip_angle)
        e1 = math.exp(-seq.tr / t1)
        return pd * math.sin(a) * (1.0 - e1) / (1.0 - math.cos(a) * e1) * e2
    return pd * (1.0 - math.exp(-seq.tr / t1)) * e2


def _fat_pool(seq: Sequence, fat: FatRelaxation) -> float:
    t2 = fat.t2_fse if seq.kind in _FSE_KINDS else fat.t2_se
    out = compartment_signal(1.0, fat.t1, t2, seq) * seq.fat_residual
    if seq.kind == "stir" and seq.stir_fat_residual > 0.0:
        r = seq.stir_fat_residual
        relaxed = (1.0 - math.exp(-seq.tr / fat.t1)) * math.exp(-seq.te / t2)
        out = (1.0 - r) * out - r * relaxed
    return out


def tissue_signal(tissue: Tissue, seq: Sequence, fat: FatRelaxation) -> float:
    """Signed signal of ``tissue``: ``PD ((1 - FF) S_water + FF S_fat)``."""
    water = compartment_signal(1.0, tissue.water.t1, tissue.water.t2, seq)
    return tissue.pd * ((1.0 - tissue.ff) * water + tissue.ff * _fat_pool(seq, fat))


def tissue_signal_slope(tissue: Tissue, seq: Sequence, fat: FatRelaxation) -> float:
    """d(signal)/d(FF) times the tissue's texture amplitude (0 for untextured tissues)."""
    if tissue.texture == 0.0:
        return 0.0
    water = compartment_signal(1.0, tissue.water.t1, tissue.water.t2, seq)
    return tissue.texture * tissue.pd * (_fat_pool(seq, fat) - water)


def tissue_signal_patch_slope(tissue: Tissue, seq: Sequence, fat: FatRelaxation) -> float:
    """d(signal)/d(FF) times the tissue's patch amplitude (0 for tissues without patches)."""
    if tissue.patch == 0.0:
        return 0.0
    water = compartment_signal(1.0, tissue.water.t1, tissue.water.t2, seq)
    return tissue.patch * tissue.pd * (_fat_pool(seq, fat) - water)


_NOISE_SCALE = {"t1": 1.0, "t2": 0.5, "stir": 0.4, "t2fs": 0.45, "localizer": 0.05}


def default_noise_scale(role: str) -> float:
    """Noise sigma of a series of ``role`` relative to the T1's.

    T2-weighted and inversion-recovery series average more and are reconstructed at a
    similar marrow SNR in practice although their raw signal is lower.

    Examples
    --------
    >>> default_noise_scale("stir")
    0.4
    """
    return _NOISE_SCALE[role]


def coil_gradient_profile(points: NDArray[np.floating], anatomy: Anatomy, gradient: float
                          ) -> FloatArray:
    """Head-foot factor of the receive sensitivity at ``points`` ((N, 3) LPS) -> (N,).

    ``gradient ** f(u)``, ``u`` the position along the axis from the S1 to the L1 body
    centre (0 midway, +-0.5 at L1 / S1) and ``f(u) = 0.5 tanh(2u) / tanh(1)``: log-linear
    near the lumbar spine, levelling off beyond it; exactly ``gradient`` between the L1
    and S1 centres.  Normalised to 1 at the centre of L3.
    """
    P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    c1, c5 = anatomy.vertebra("L1").center, anatomy.vertebra("S1").center
    axis = c1 - c5
    length = float(np.linalg.norm(axis))
    axis = axis / length
    mid = 0.5 * (c1 + c5)

    def f(q: FloatArray) -> FloatArray:
        u = ((q - mid) @ axis) / length
        out: FloatArray = 0.5 * np.tanh(2.0 * u) / np.tanh(1.0)
        return out

    l3 = anatomy.vertebra("L3").center[None, :]
    out: FloatArray = np.exp(math.log(gradient) * (f(P) - f(l3)[0]))
    return out


def coil_sensitivity(points: NDArray[np.floating], anatomy: Anatomy, strength: float,
                     gradient: float = 1.0) -> NDArray[np.float32]:
    """Receive sensitivity of a posterior spine array at ``points`` ((N, 3) LPS) -> (N,).

    ``(1 - strength) + strength * g`` with ``g`` falling off exponentially (90 mm) with the
    distance in front of the coil plane 10 mm behind the back's skin, and slowly (Gaussian,
    250 mm) to the sides; normalised to 1 at the centre of L3.  With ``gradient != 1`` it
    is multiplied by the head-foot profile of :func:`coil_gradient_profile`.
    """
    P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    ref = anatomy.vertebra("L3").center[None, :]

    def raw(q: FloatArray) -> FloatArray:
        y_coil = anatomy.back_y(q[:, 2]) + 10.0
        dist = np.clip(y_coil - q[:, 1], 0.0, None)
        g = np.exp(-dist / 90.0) * np.exp(-((q[:, 0] - ref[0, 0]) / 250.0) ** 2)
        out: FloatArray = (1.0 - strength) + strength * g
        return out

    sens = raw(P) / raw(ref)[0]
    if gradient != 1.0:
        sens = sens * coil_gradient_profile(P, anatomy, gradient)
    out: NDArray[np.float32] = sens.astype(np.float32)
    return out


def add_rician_noise(signal: NDArray[np.floating], sigma: float, rng: np.random.Generator
                     ) -> NDArray[np.float32]:
    """``|signal + sigma (n1 + i n2)|`` with independent standard normal n1, n2."""
    s = np.asarray(signal, dtype=np.float32)
    n1 = rng.standard_normal(s.shape, dtype=np.float32)
    n2 = rng.standard_normal(s.shape, dtype=np.float32)
    out: NDArray[np.float32] = np.hypot(s + np.float32(sigma) * n1, np.float32(sigma) * n2)
    return out


@dataclass(frozen=True)
class Quantisation:
    """How model signal maps to stored pixel values.

    ``real_world = stored * slope + intercept = signal * gain`` (up to rounding), so
    ``signal = (stored * slope + intercept) / gain``.
    """

    gain: float
    slope: float
    intercept: float
    bits_stored: int
    signed: bool


def quantise(signal: NDArray[np.floating], vendor: str, seed: int, series_number: int
             ) -> tuple[NDArray[np.integer], Quantisation]:
    """Scale ``signal`` (``(slice, row, col)``, >= 0) to integer stored values.

    The 99.9th percentile maps to ~3000 real-world units (the maximum to at most 4000,
    so that nothing is clipped and every stored value inverts to the signal).  Siemens and GE store
    real-world values directly (RescaleSlope 1, intercept 0; GE as signed 16-bit);
    Philips stores ``real_world / slope`` with a series-specific RescaleSlope != 1.
    """
    s = np.asarray(signal, dtype=np.float64)
    p = float(np.percentile(s, 99.9)) if s.size else 1.0
    top_signal = float(s.max()) if s.size else 1.0
    gain = float(f"{min(3000.0 / max(p, 1e-12), 4000.0 / max(top_signal, 1e-12)):.6g}")
    if vendor == "philips":
        rng = np.random.default_rng([seed, 7, series_number])
        slope = float(f"{rng.uniform(1.2, 3.6):.12g}")
        q = Quantisation(gain=gain, slope=slope, intercept=0.0, bits_stored=12, signed=False)
    elif vendor == "ge":
        q = Quantisation(gain=gain, slope=1.0, intercept=0.0, bits_stored=16, signed=True)
    else:
        q = Quantisation(gain=gain, slope=1.0, intercept=0.0, bits_stored=12, signed=False)
    stored = np.rint((s * q.gain - q.intercept) / q.slope)
    top = 2 ** (q.bits_stored - 1) - 1 if q.signed else 2 ** q.bits_stored - 1
    stored = np.clip(stored, 0, top)
    dtype = np.int16 if q.signed else np.uint16
    return stored.astype(dtype), q
