"""Tissues of the phantom: proton density, fat fraction and relaxation times at 1.5 T and 3 T.

Every tissue is a two-compartment mixture of a *water* pool and a *fat* pool::

    S = PD * ((1 - FF) * f(T1_water, T2_water) + FF * f(T1_fat, T2_fat))

where ``PD`` is the total proton density relative to CSF (1.0), ``FF`` the proton-density
fat fraction (0 for pure-water tissues, ~0.35-0.55 for normal adult lumbar marrow) and
``f`` the sequence's signal equation (:mod:`modic.phantom.signal`).  The fat pool is
shared by all tissues; its apparent T2 depends on the sequence (see :class:`FatRelaxation`).

Sources (values rounded; where a study gives both field strengths it is used for both)
--------------------------------------------------------------------------------------
- de Bazelaire CMJ et al. MR imaging relaxation times of abdominal and pelvic tissues
  measured in vivo at 3.0 T. Radiology 2004;230:652-659 -- paravertebral muscle (3 T:
  T1 898 ms, T2 29 ms), bone marrow of L4 (3 T: T1 586 ms, T2 49 ms, a water+fat
  composite), subcutaneous fat (3 T: T1 382 ms, T2 68 ms) and the 1.5 T comparison values.
- Stanisz GJ et al. T1, T2 relaxation and magnetization transfer in tissue at 3T.
  Magn Reson Med 2005;54:507-512 -- spinal cord (T1 745/993 ms, T2 74/78 ms at
  1.5/3 T), cartilage (T1 1024/1168 ms, T2 30/27 ms), blood (T1 1441/1932 ms).
- Gold GE et al. Musculoskeletal MRI at 3.0 T: relaxation times and image contrast.
  AJR 2004;183:343-351 -- T1 of musculoskeletal tissues rises ~20-40 % from 1.5 to 3 T
  while T2 changes little; used for the 3 T values of tissues measured only at 1.5 T.
- Henkelman RM et al. Why fat is bright in RARE and fast spin-echo imaging. J Magn Reson
  Imaging 1992;2:533-540; Pai A et al. Magn Reson Imaging 2008;26:1215-1220 (apparent T2
  of fat and marrow 41-160 ms, rising with the echo-train length) -- J-coupling
  suppression in fast spin echo lengthens the apparent T2 of fat.
- Lu H et al. Routine clinical brain MRI sequences for use at 3.0 Tesla. J Magn Reson
  Imaging 2005;22:13-22 -- CSF T1 ~4.2 s at 3 T; CSF T2 ~ 2 s (long-TE literature).
- Intervertebral disc: nucleus pulposus T2 ~100-130 ms when healthy, ~60-70 ms when
  degenerated; annulus ~40-50 ms (e.g. Marinelli NL et al. Spine 2009;34:520-524;
  Stelzeneder D et al. Eur J Radiol 2012;81:e324-e330).  T1 values are typical literature
  values and are less critical for the contrasts of interest.
- Vertebral hemangioma (Ross JS et al. Radiology 1987;165:165-169; Laredo JD et al.
  Radiology 1986): fat-rich stroma and slow-flowing blood in dilated vessels -- bright
  on T1 and T2, intermediate on STIR; modelled as fat fraction ~0.75 with a long-T2
  vascular water pool (blood-like T1).
- Modic changes (Modic MT et al. Radiology 1988;166:193-199): type 1 = oedema and
  fibrovascular tissue (long T1 and T2 water, reduced fat), type 2 = fatty replacement
  (PDFF ~80-95 %), type 3 = sclerosis (little mobile water or fat, short T2).  Their
  parameters below are phenomenological: chosen inside physiological ranges so that
  the published signal pattern follows from the physics, not imposed per sequence.

The *effective* fat T1 (220 ms at 1.5 T, 320 ms at 3 T) is lower than the inversion-recovery
values of subcutaneous fat (343/382 ms, de Bazelaire 2004) because fat is a multi-peak
spectrum; it is the single-pool value that the clinical STIR inversion times (~150 ms at
1.5 T, ~220 ms at 3 T, TI = T1_fat ln 2) null, which is what STIR images show.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "WaterRelaxation",
    "FatRelaxation",
    "Tissue",
    "TISSUE_NAMES",
    "fat_relaxation",
    "water_relaxation",
    "base_tissue",
    "normal_marrow",
    "modic_tissue",
    "disc_nucleus",
    "hemangioma_tissue",
    "focal_fat_tissue",
]


@dataclass(frozen=True)
class WaterRelaxation:
    """Relaxation times of a water pool, in milliseconds."""

    t1: float
    t2: float


@dataclass(frozen=True)
class FatRelaxation:
    """Relaxation of the (single-peak, effective) fat pool, in milliseconds.

    Attributes
    ----------
    t1 : float
        Effective longitudinal relaxation time.
    t2_se : float
        Apparent T2 in conventional spin echo / gradient echo.
    t2_fse : float
        Apparent T2 in fast (turbo) spin echo, longer because the rapid refocusing
        train suppresses J-coupling (Henkelman 1992).
    """

    t1: float
    t2_se: float
    t2_fse: float


@dataclass(frozen=True)
class Tissue:
    """One tissue: total proton density, fat fraction and its water relaxation.

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"csf"`` or ``"marrow_L3"``.
    pd : float
        Proton density relative to CSF (= 1.0).
    ff : float
        Proton-density fat fraction in [0, 1].
    water : WaterRelaxation
        Relaxation of the water pool (the fat pool is global, see :func:`fat_relaxation`).
    texture : float
        Amplitude (absolute fat-fraction units) of the smooth spatial fat-fraction
        texture the tissue receives (0 = homogeneous).
    patch : float
        Amplitude (absolute fat-fraction units) of the patchy (blotchy) fat-fraction
        variation of heterogeneous marrow (0 = none).
    """

    name: str
    pd: float
    ff: float
    water: WaterRelaxation
    texture: float = 0.0
    patch: float = 0.0


def _field_index(field_strength: float) -> int:
    if abs(field_strength - 1.5) < 1e-6:
        return 0
    if abs(field_strength - 3.0) < 1e-6:
        return 1
    raise ValueError(f"field_strength must be 1.5 or 3.0 (tesla), got {field_strength!r}")


# (T1 at 1.5 T, T1 at 3 T), (T2 at 1.5 T, T2 at 3 T), ms; PD relative to CSF; FF.
_WATER: dict[str, tuple[tuple[float, float], tuple[float, float], float, float]] = {
    # name: ((T1 1.5, T1 3), (T2 1.5, T2 3), PD, FF)
    "air": ((1000.0, 1000.0), (1.0, 1.0), 0.0, 0.0),
    "csf": ((4000.0, 4300.0), (2000.0, 1800.0), 1.0, 0.0),  # Lu 2005
    "cord": ((745.0, 993.0), (74.0, 78.0), 0.75, 0.0),  # Stanisz 2005 spinal cord
    # cauda equina: nerve roots bathed in CSF, ~60 % nerve by volume
    "cauda": ((1500.0, 1800.0), (90.0, 90.0), 0.82, 0.0),
    # skeletal muscle (Stanisz 2005; de Bazelaire 2004 report 856/898 ms, 27/29 ms in vivo)
    "muscle": ((1008.0, 1412.0), (44.0, 50.0), 0.72, 0.03),
    "skin": ((800.0, 1000.0), (40.0, 35.0), 0.70, 0.0),
    "subcutaneous_fat": ((800.0, 1000.0), (50.0, 45.0), 0.95, 0.90),
    "epidural_fat": ((800.0, 1000.0), (50.0, 45.0), 0.95, 0.85),
    "fascia_fat": ((800.0, 1000.0), (50.0, 45.0), 0.90, 0.75),
    # abdominal organs and bowel: a middle value of kidney/spleen/liver (de Bazelaire)
    "viscera": ((900.0, 1150.0), (60.0, 55.0), 0.80, 0.10),
    "lung": ((1200.0, 1300.0), (30.0, 25.0), 0.12, 0.0),
    # flowing blood: washed out of spin-echo slices -> flow void (Stanisz blood T1)
    "flow_void": ((1441.0, 1932.0), (290.0, 275.0), 0.03, 0.0),
    "cortical_bone": ((1000.0, 1200.0), (1.0, 1.0), 0.05, 0.0),
    "cartilage": ((1024.0, 1168.0), (30.0, 27.0), 0.70, 0.0),  # Stanisz 2005
    "annulus": ((900.0, 1100.0), (45.0, 40.0), 0.70, 0.0),
    "disc_remnant": ((900.0, 1100.0), (25.0, 22.0), 0.40, 0.0),  # fused sacral discs
    "ligament": ((700.0, 850.0), (15.0, 13.0), 0.35, 0.0),
    # water pool of vertebral marrow; with FF ~0.45 the composite matches de Bazelaire's
    # L4 marrow (T1 ~549/586 ms, T2 ~49 ms)
    "marrow_water": ((800.0, 1000.0), (45.0, 40.0), 0.90, 0.0),
    # Modic type 1: oedema / fibrovascular tissue
    "oedema_water": ((1300.0, 1600.0), (95.0, 85.0), 0.95, 0.0),
    # Modic type 3: sclerotic bone, little mobile water, short T2
    "sclerosis_water": ((900.0, 1100.0), (22.0, 20.0), 0.30, 0.0),
    # hemangioma: slow-flowing blood in dilated vascular spaces (blood T1, long T2)
    "vascular_water": ((1400.0, 1800.0), (130.0, 115.0), 0.90, 0.0),
}

# nucleus pulposus, healthy and degenerated (interpolated by the disc's hydration)
_NUCLEUS = {
    "healthy": ((1200.0, 1400.0), (125.0, 115.0), 0.92),
    "degenerated": ((950.0, 1100.0), (60.0, 55.0), 0.78),
}

# fat pool: effective T1 (see module docstring), SE T2 (de Bazelaire), FSE T2 (Pai 2008)
_FAT = {0: FatRelaxation(t1=220.0, t2_se=58.0, t2_fse=140.0),
        1: FatRelaxation(t1=320.0, t2_se=68.0, t2_fse=130.0)}

#: Names of the base tissues known to :func:`base_tissue`.
TISSUE_NAMES: tuple[str, ...] = tuple(_WATER)


def fat_relaxation(field_strength: float) -> FatRelaxation:
    """Relaxation of the fat pool at ``field_strength`` (1.5 or 3.0 T).

    Examples
    --------
    >>> fat_relaxation(1.5).t1
    220.0
    """
    return _FAT[_field_index(field_strength)]


def water_relaxation(name: str, field_strength: float) -> WaterRelaxation:
    """Relaxation of the water pool of base tissue ``name`` at ``field_strength``."""
    if name not in _WATER:
        raise ValueError(f"unknown tissue {name!r}; known: {', '.join(_WATER)}")
    i = _field_index(field_strength)
    t1, t2, _, _ = _WATER[name]
    return WaterRelaxation(t1=t1[i], t2=t2[i])


def base_tissue(name: str, field_strength: float) -> Tissue:
    """A base tissue (CSF, muscle, fat, ...) with its literature parameters."""
    relax = water_relaxation(name, field_strength)
    _, _, pd, ff = _WATER[name]
    return Tissue(name=name, pd=pd, ff=ff, water=relax)


def normal_marrow(name: str, fat_fraction: float, field_strength: float,
                  texture: float = 0.0, patch: float = 0.0) -> Tissue:
    """Normal vertebral marrow with proton-density fat fraction ``fat_fraction``."""
    if not 0.0 <= fat_fraction <= 1.0:
        raise ValueError(f"fat_fraction must be in [0, 1], got {fat_fraction!r}")
    water = water_relaxation("marrow_water", field_strength)
    return Tissue(name=name, pd=0.90, ff=fat_fraction, water=water, texture=texture,
                  patch=patch)


def focal_fat_tissue(name: str, field_strength: float, fat_fraction: float = 0.85) -> Tissue:
    """A focal fat island of normal marrow (marrow water, high fat fraction)."""
    water = water_relaxation("marrow_water", field_strength)
    return Tissue(name=name, pd=0.93, ff=fat_fraction, water=water)


def hemangioma_tissue(name: str, field_strength: float, fat_fraction: float = 0.75) -> Tissue:
    """A vertebral hemangioma: fat fraction ``fat_fraction`` and vascular water."""
    water = water_relaxation("vascular_water", field_strength)
    return Tissue(name=name, pd=0.92, ff=fat_fraction, water=water)


def modic_tissue(name: str, modic_type: str, field_strength: float,
                 fat_fraction: float | None = None, texture: float = 0.0,
                 patch: float = 0.0) -> Tissue:
    """Marrow of a Modic change of ``modic_type`` ``"1"``, ``"2"`` or ``"3"``.

    Parameters
    ----------
    name : str
        Identifier of the tissue.
    modic_type : str
        ``"1"`` (oedema), ``"2"`` (fatty replacement) or ``"3"`` (sclerosis).
    field_strength : float
        1.5 or 3.0 T.
    fat_fraction : float, optional
        Override of the type's default fat fraction (0.15, 0.88, 0.15).
    texture, patch : float
        Fat-fraction texture and patch amplitudes (types 1 and 2; sclerosis stays
        homogeneous).
    """
    if modic_type == "1":
        ff = 0.15 if fat_fraction is None else fat_fraction
        water = water_relaxation("oedema_water", field_strength)
        return Tissue(name=name, pd=0.95, ff=ff, water=water, texture=texture, patch=patch)
    if modic_type == "2":
        ff = 0.88 if fat_fraction is None else fat_fraction
        water = water_relaxation("marrow_water", field_strength)
        return Tissue(name=name, pd=0.93, ff=ff, water=water, texture=texture, patch=patch)
    if modic_type == "3":
        ff = 0.15 if fat_fraction is None else fat_fraction
        water = water_relaxation("sclerosis_water", field_strength)
        return Tissue(name=name, pd=0.30, ff=ff, water=water)
    raise ValueError(f"modic_type must be '1', '2' or '3', got {modic_type!r}")


def disc_nucleus(name: str, hydration: float, field_strength: float) -> Tissue:
    """Nucleus pulposus; ``hydration`` 1 = healthy, 0 = degenerated (linear blend)."""
    if not 0.0 <= hydration <= 1.0:
        raise ValueError(f"hydration must be in [0, 1], got {hydration!r}")
    i = _field_index(field_strength)
    h, d = _NUCLEUS["healthy"], _NUCLEUS["degenerated"]
    t1 = d[0][i] + hydration * (h[0][i] - d[0][i])
    t2 = d[1][i] + hydration * (h[1][i] - d[1][i])
    pd = d[2] + hydration * (h[2] - d[2])
    return Tissue(name=name, pd=pd, ff=0.0, water=WaterRelaxation(t1=t1, t2=t2))
