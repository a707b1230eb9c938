"""Say what an MR series is (T1, T2, STIR, PD, localizer) from its header, with reasons.

The role of a series decides how its signal is read: a type-2 Modic change is bright on a
T2 fast spin echo but dark on STIR, so mistaking one for the other inverts the result.
Series descriptions are typed by people and lie or are missing, so the header's physics
comes first:

1. **Localizer** names or ``ImageType`` win over everything (a localizer has real timing
   but is never read).
2. **Header evidence**: inversion recovery with its inversion time (STIR versus T1 FLAIR
   versus FLAIR), spin-echo or gradient-echo timing (TR, TE, flip angle), the fat
   saturation flags (``ScanOptions``, Enhanced MR ``SpectrallySelectedSuppression``) and
   Enhanced MR ``AcquisitionContrast``.
3. **Description** (``SeriesDescription``, else ``ProtocolName``) in Siemens, GE and
   Philips naming styles. It decides when the header cannot; when both speak and
   disagree, the header is followed and a reason says the description disagrees.

Every decision is recorded as a human-readable reason in :class:`SeriesIdentity`.

Examples
--------
>>> info = SequenceInfo(repetition_time=550.0, echo_time=12.0,
...                     scanning_sequence=("SE",), series_description="t1_tse_sag",
...                     orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
>>> identity = identify(info)
>>> identity.role, identity.plane, identity.fat_suppressed
(<Role.T1: 'T1'>, <Plane.SAGITTAL: 'sagittal'>, False)
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pydicom is imported when a header is read (a batch re-run needs none)
    import pydicom
    from pydicom.dataset import Dataset

from .errors import GeometryError

__all__ = ["Role", "Plane", "SequenceInfo", "SeriesIdentity", "plane_of", "identify"]


# ---------------------------------------------------------------------------------------
# Thresholds. Each one is a physics or vendor fact; change them only with a source.
# ---------------------------------------------------------------------------------------

# Spin-echo / fast-spin-echo weighting (ms). MR physics textbooks give short TR as a few
# hundred ms (about 300-800), long TR as 2000 ms or more, short TE as 10-30 ms and long TE
# as 80-120 ms (Westbrook & Talbot, "MRI in Practice", ch. 2; McRobbie et al., "MRI from
# Picture to Proton", ch. 4; docs DOMAIN.md: T1 TR 400-800 / TE < 30, T2 TR > 2000 /
# TE 80-120). The limits below keep a margin for 3 T T1 protocols (TR up to ~900 ms) and
# for fast spin echo T2 with TR 1500-2000 ms; the gaps between them are "ambiguous".
T1_MAX_TR = 1000.0
T1_MAX_TE = 30.0
LONG_TR_MIN = 1500.0
T2_MIN_TE = 60.0
PD_MAX_TE = 40.0

# Spoiled gradient echo (FLASH, SPGR, T1-FFE) is T1-weighted with a large flip angle
# (60-90 degrees) and the shortest TE; a small flip angle with a longer TE gives PD or
# T2* contrast (same textbooks, gradient-echo chapter). 3D T1 GRE with small flip and very
# short TR is T1-weighted too, but needs the description to say so.
GRE_T1_MIN_FLIP = 50.0
GRE_T1_MAX_TE = 15.0
# Spin-echo refocusing pulses are 90-180 degrees (Siemens stores 150-180 for TSE); a flip
# angle below this, with ScanningSequence missing, points to gradient echo.
GRE_MAX_FLIP_WHEN_UNKNOWN = 40.0

# Inversion recovery (ms). STIR nulls fat at TI = T1(fat) * ln 2 (for TR >> T1): about
# 130-170 ms at 1.5 T and 180-230 ms at 3 T (Bydder & Young, J Comput Assist Tomogr
# 1985;9:659; Delfaut et al., RadioGraphics 1999;19:373, "about 150 ms at 1.5 T"); low-field
# (0.2-0.5 T) scanners use 80-120 ms. T1 FLAIR (GE "T1FLAIR_GEMS") uses TI ~ 750-1000 ms
# at 1.5 T (up to ~1200 ms at 3 T) with a short TE; FLAIR nulls CSF (T1 ~ 4 s) with
# TI ~ 2000-2800 ms.
STIR_TI_MIN = 80.0
STIR_TI_MAX = 300.0
FLAIR_TI_MIN = 1500.0
IR_T1_MAX_TE = 40.0
#: Typical STIR inversion times by field strength (tesla -> (low, high) ms), for reasons.
TYPICAL_STIR_TI: tuple[tuple[float, tuple[float, float]], ...] = (
    (1.5, (130.0, 170.0)),
    (3.0, (180.0, 230.0)),
)

# Plane: lumbar axials are angled along the disc by up to ~25-30 degrees and sagittals are
# usually tilted a few degrees, so a slice normal more than 30 degrees from every patient
# axis is called oblique.
OBLIQUE_TILT_DEGREES = 30.0
# Row and column cosines must be perpendicular; |cos| up to 0.05 (~3 degrees) tolerates
# rounded header values, anything more is a corrupt orientation.
PERPENDICULAR_TOLERANCE = 0.05

# Some older GE and Philips headers give MagneticFieldStrength in gauss (15000 = 1.5 T);
# no clinical magnet exceeds 20 T.
_MAX_TESLA = 20.0
_GAUSS_PER_TESLA = 10000.0


class Role(str, enum.Enum):
    """What a series is for Modic reading."""

    T1 = "T1"
    T2 = "T2"
    STIR = "STIR"
    """STIR or fat-suppressed T2: fluid-sensitive with fat dark."""
    PD = "PD"
    LOCALIZER = "localizer"
    OTHER = "other"


class Plane(str, enum.Enum):
    """The patient plane a series' slices lie in."""

    SAGITTAL = "sagittal"
    AXIAL = "axial"
    CORONAL = "coronal"
    OBLIQUE = "oblique"


# ---------------------------------------------------------------------------------------
# Header reading
# ---------------------------------------------------------------------------------------

_FUNCTIONAL_GROUPS = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")


def _get(ds: Dataset, keyword: str) -> Any:
    """``ds.<keyword>`` or None; never raises, whatever the element holds."""
    try:
        return ds.get(keyword)
    except Exception:  # a malformed element must not stop identification
        return None


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return not value.strip()
    if isinstance(value, Sequence):
        return len(value) == 0
    return False


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    """The first item of the sequence ``keyword`` in ``ds``, or None."""
    value = _get(ds, keyword)
    try:
        item = value[0] if value else None
    except Exception:
        return None
    from pydicom.dataset import Dataset

    return item if isinstance(item, Dataset) else None


def _macros(group: Dataset) -> Iterator[Dataset]:
    """First items of every sequence in a functional-group item (the macros)."""
    try:
        elements = list(group)
    except Exception:
        return
    from pydicom.dataset import Dataset

    for elem in elements:
        try:
            if elem.VR == "SQ" and elem.value and isinstance(elem.value[0], Dataset):
                yield elem.value[0]
        except Exception:
            continue


def _lookup(ds: Dataset, *keywords: str) -> Any:
    """The first non-empty value of ``keywords``, wherever the MR IODs keep it.

    Search order: the top level (classic MR), then the shared functional groups and
    the first frame's functional groups of an Enhanced MR object, each with the first
    item of their macros (``MRTimingAndRelatedParametersSequence``, ``MREchoSequence``,
    ``MRModifierSequence``, ``PlaneOrientationSequence``, ``MRImageFrameTypeSequence``...).
    """
    places: list[Dataset] = [ds]
    for group_keyword in _FUNCTIONAL_GROUPS:
        group = _first_item(ds, group_keyword)
        if group is not None:
            places.append(group)
            places.extend(_macros(group))
    for keyword in keywords:
        for place in places:
            value = _get(place, keyword)
            if not _is_empty(value):
                return value
    return None


def _to_float(value: Any) -> float | None:
    """A finite float from a DS/IS/FD value, a string or the first of several, else None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if isinstance(value, str):
        text = value.split("\\")[0].strip()
        try:
            number = float(text)
        except ValueError:
            return None
    elif isinstance(value, Sequence):
        return _to_float(value[0]) if len(value) else None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    """A float > 0 or None (GE writes InversionTime 0 for sequences without inversion)."""
    number = _to_float(value)
    return number if number is not None and number > 0 else None


def _to_strings(value: Any) -> tuple[str, ...]:
    """Upper-cased stripped strings of a (multi-valued) CS element; () if absent."""
    if value is None:
        return ()
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if isinstance(value, str):
        parts: Sequence[Any] = value.split("\\")
    elif isinstance(value, Sequence):
        parts = value
    else:
        parts = (value,)
    return tuple(str(p).strip().upper() for p in parts if p is not None and str(p).strip())


def _to_text(value: Any) -> str:
    """A stripped string ("" if absent); several values are joined with a backslash."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace").strip()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Sequence):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _to_orientation(value: Any) -> tuple[float, float, float, float, float, float] | None:
    """Six finite direction cosines, or None when absent or malformed."""
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return None
    if len(value) != 6:
        return None
    numbers = [_to_float(v) for v in value]
    if any(n is None for n in numbers):
        return None
    a, b, c, d, e, f = (float(n) for n in numbers if n is not None)
    return (a, b, c, d, e, f)


def _to_tesla(value: Any) -> float | None:
    """MagneticFieldStrength in tesla; values in gauss (e.g. 15000) are converted."""
    number = _positive(value)
    if number is not None and number > _MAX_TESLA:
        number /= _GAUSS_PER_TESLA
        if number > _MAX_TESLA:
            return None
    return number


@dataclass(frozen=True)
class SequenceInfo:
    """The header evidence used to identify a series (all optional).

    Attributes
    ----------
    repetition_time, echo_time, inversion_time : float or None
        TR, TE (effective TE for Enhanced MR) and TI in milliseconds.
    flip_angle : float or None
        Degrees.
    field_strength : float or None
        Tesla.
    scanning_sequence, sequence_variant, scan_options, image_type : tuple of str
        Upper-cased values, e.g. ``("SE", "IR")``, ``("SK", "SP", "OSP")``,
        ``("FAST_GEMS", "SAT_GEMS")``, ``("ORIGINAL", "PRIMARY", "M", "ND")``.
    series_description, protocol_name, sequence_name, manufacturer : str
        As in the header (``sequence_name`` is SequenceName or PulseSequenceName).
    acquisition_contrast : str
        Enhanced MR AcquisitionContrast (0008,9209), e.g. ``"T2"``; "" if absent.
    fat_suppression_tag : str
        Enhanced MR SpectrallySelectedSuppression (0018,9025), e.g. ``"FAT"``.
    inversion_recovery_tag : str
        Enhanced MR InversionRecovery (0018,9009), ``"YES"`` or ``"NO"``.
    orientation : tuple of 6 float or None
        ImageOrientationPatient: row then column direction cosines, LPS.
    diffusion_b_value : float or None
        DiffusionBValue (0018,9087), or Philips' private b-value (2001,1003) in a Philips
        header; 0 for the b = 0 images of a diffusion series.
    diffusion_directionality : str
        DiffusionDirectionality (0018,9075), e.g. ``"DIRECTIONAL"``, ``"NONE"`` (b = 0).
    echo_planar : str
        Enhanced MR EchoPlanarPulseSequence (0018,9018), ``"YES"`` or ``"NO"``.
    complex_component : str
        Enhanced MR ComplexImageComponent (0008,9208), e.g. ``"MAGNITUDE"``, ``"PHASE"``.
    """

    repetition_time: float | None = None
    echo_time: float | None = None
    inversion_time: float | None = None
    flip_angle: float | None = None
    field_strength: float | None = None
    scanning_sequence: tuple[str, ...] = ()
    sequence_variant: tuple[str, ...] = ()
    scan_options: tuple[str, ...] = ()
    image_type: tuple[str, ...] = ()
    series_description: str = ""
    protocol_name: str = ""
    sequence_name: str = ""
    manufacturer: str = ""
    acquisition_contrast: str = ""
    fat_suppression_tag: str = ""
    inversion_recovery_tag: str = ""
    orientation: tuple[float, float, float, float, float, float] | None = None
    diffusion_b_value: float | None = None
    diffusion_directionality: str = ""
    echo_planar: str = ""
    complex_component: str = ""

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset) -> SequenceInfo:
        """Collect the evidence from a classic or Enhanced MR header.

        Parameters
        ----------
        ds : pydicom.Dataset
            An MR Image Storage or Enhanced MR Image Storage header, e.g. read with
            ``pydicom.dcmread(path, stop_before_pixels=True)``. For Enhanced MR the
            values are taken from the top level, else from the shared functional
            groups, else from the first frame's functional groups.

        Returns
        -------
        SequenceInfo
            Missing or malformed attributes become None, "" or (); this never raises.
        """
        return cls(
            repetition_time=_positive(_lookup(ds, "RepetitionTime")),
            echo_time=_positive(_lookup(ds, "EchoTime", "EffectiveEchoTime")),
            inversion_time=_positive(_lookup(ds, "InversionTime", "InversionTimes")),
            flip_angle=_positive(_lookup(ds, "FlipAngle")),
            field_strength=_to_tesla(_lookup(ds, "MagneticFieldStrength")),
            scanning_sequence=_to_strings(_lookup(ds, "ScanningSequence")),
            sequence_variant=_to_strings(_lookup(ds, "SequenceVariant")),
            scan_options=_to_strings(_lookup(ds, "ScanOptions")),
            image_type=_to_strings(_lookup(ds, "ImageType", "FrameType")),
            series_description=_to_text(_lookup(ds, "SeriesDescription")),
            protocol_name=_to_text(_lookup(ds, "ProtocolName")),
            sequence_name=_to_text(_lookup(ds, "SequenceName", "PulseSequenceName")),
            manufacturer=_to_text(_lookup(ds, "Manufacturer")),
            acquisition_contrast=_to_text(_lookup(ds, "AcquisitionContrast")).upper(),
            fat_suppression_tag=_to_text(_lookup(ds, "SpectrallySelectedSuppression")).upper(),
            inversion_recovery_tag=_to_text(_lookup(ds, "InversionRecovery")).upper(),
            orientation=_to_orientation(_lookup(ds, "ImageOrientationPatient")),
            diffusion_b_value=_b_value(ds),
            diffusion_directionality=_to_text(_lookup(ds, "DiffusionDirectionality")).upper(),
            echo_planar=_to_text(_lookup(ds, "EchoPlanarPulseSequence")).upper(),
            complex_component=_to_text(_lookup(ds, "ComplexImageComponent")).upper(),
        )


#: Philips' private diffusion b-value (2001,1003), FL, in classic MR headers that lack
#: DiffusionBValue (dcm2niix reads the same element for Philips DWI).
_PHILIPS_B_VALUE = 0x20011003


def _b_value(ds: Dataset) -> float | None:
    """DiffusionBValue, else Philips' private b-value; None when neither is there."""
    value = _to_float(_lookup(ds, "DiffusionBValue"))
    if value is not None:
        return value
    if "PHILIPS" not in _to_text(_get(ds, "Manufacturer")).upper():
        return None
    try:
        elem = ds.get(_PHILIPS_B_VALUE)
        if elem is None:
            return None
        value = elem.value
        if isinstance(value, bytes) and len(value) == 4:  # implicit VR: the FL's raw bytes
            number = struct.unpack("<f", value)[0]
            return float(number) if math.isfinite(number) else None
        return _to_float(value)
    except Exception:
        return None


@dataclass(frozen=True)
class SeriesIdentity:
    """What a series is, and why.

    Attributes
    ----------
    role : Role
    plane : Plane
        OBLIQUE also when the orientation is missing or unusable (see ``reasons``).
    fat_suppressed : bool
        True for STIR and for any series with fat suppression (e.g. a fat-saturated T1,
        which is not used for Modic reading).
    reasons : tuple of str
        The evidence behind role, fat suppression and plane; never empty.
    tilt_degrees : float or None
        Angle between the slice normal and the nearest patient axis; None without a
        usable orientation.
    """

    role: Role
    plane: Plane
    fat_suppressed: bool
    reasons: tuple[str, ...]
    tilt_degrees: float | None


# ---------------------------------------------------------------------------------------
# Plane
# ---------------------------------------------------------------------------------------

_AXIS_PLANES = (
    ("L-R", Plane.SAGITTAL),
    ("A-P", Plane.CORONAL),
    ("S-I", Plane.AXIAL),
)


def _unit_normal(orientation: Sequence[float] | np.ndarray) -> np.ndarray:
    """The slice normal, cross(row, column), as a unit vector in LPS; checks the input."""
    try:
        cosines = np.asarray(orientation, dtype=float)
    except (TypeError, ValueError) as exc:
        raise GeometryError(
            f"ImageOrientationPatient must be 6 numbers, got {orientation!r}"
        ) from exc
    if cosines.shape != (6,):
        raise GeometryError(
            f"ImageOrientationPatient must be 6 numbers (row then column cosines), "
            f"got shape {cosines.shape}"
        )
    if not np.all(np.isfinite(cosines)):
        raise GeometryError(f"ImageOrientationPatient has non-finite values: {cosines.tolist()}")
    row, col = cosines[:3], cosines[3:]
    for name, vector in (("row", row), ("column", col)):
        if np.linalg.norm(vector) < 1e-6:
            raise GeometryError(
                f"ImageOrientationPatient {name} direction cosine has zero length: "
                f"{vector.tolist()}"
            )
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    cosine = float(np.dot(row, col))
    if abs(cosine) > 1.0 - 1e-6:
        raise GeometryError(
            f"ImageOrientationPatient row and column cosines are parallel: "
            f"{cosines.tolist()}"
        )
    if abs(cosine) > PERPENDICULAR_TOLERANCE:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        raise GeometryError(
            f"ImageOrientationPatient row and column cosines are not perpendicular "
            f"({angle:.1f} degrees apart): {cosines.tolist()}"
        )
    normal = np.cross(row, col)
    return np.asarray(normal / np.linalg.norm(normal), dtype=float)


def plane_of(orientation: Sequence[float] | np.ndarray) -> tuple[Plane, float]:
    """The patient plane of slices with this orientation, and their tilt.

    The slice normal is cross(row cosine, column cosine) in LPS. Its nearest patient
    axis names the plane: L-R (x) sagittal, A-P (y) coronal, S-I (z) axial. The tilt is
    the angle between the normal and that axis; above ``OBLIQUE_TILT_DEGREES`` (30)
    the plane is OBLIQUE (lumbar axials follow the disc by up to ~25-30 degrees).

    Parameters
    ----------
    orientation : (6,) array_like
        ImageOrientationPatient: row direction cosines then column direction cosines.

    Returns
    -------
    plane : Plane
    tilt : float
        Degrees, in [0, 54.7].

    Raises
    ------
    GeometryError
        A ``ValueError``: not 6 finite numbers, a zero-length cosine, or row and column
        cosines that are parallel or not perpendicular.

    Examples
    --------
    >>> plane_of([0, 1, 0, 0, 0, -1])
    (<Plane.SAGITTAL: 'sagittal'>, 0.0)
    >>> plane_of([1, 0, 0, 0, 1, 0])[0]
    <Plane.AXIAL: 'axial'>
    """
    normal = _unit_normal(orientation)
    axis = int(np.argmax(np.abs(normal)))
    tilt = math.degrees(math.acos(min(1.0, float(abs(normal[axis])))))
    plane = _AXIS_PLANES[axis][1] if tilt <= OBLIQUE_TILT_DEGREES else Plane.OBLIQUE
    return plane, tilt


def _plane_reasons(info: SequenceInfo) -> tuple[Plane, float | None, list[str]]:
    if info.orientation is None:
        return (
            Plane.OBLIQUE,
            None,
            ["orientation (ImageOrientationPatient) missing: plane unknown, reported as "
             "oblique; the caller decides"],
        )
    try:
        plane, tilt = plane_of(info.orientation)
    except ValueError as exc:
        return Plane.OBLIQUE, None, [f"orientation unusable ({exc}): reported as oblique"]
    normal = _unit_normal(info.orientation)
    axis = int(np.argmax(np.abs(normal)))
    axis_name, axis_plane = _AXIS_PLANES[axis]
    shown = ", ".join(f"{v + 0.0:+.3f}" for v in normal)  # + 0.0 turns -0.0 into 0.0
    if plane is Plane.OBLIQUE:
        text = (
            f"slice normal ({shown}) is {tilt:.1f} degrees from the nearest axis ({axis_name}), "
            f"more than {OBLIQUE_TILT_DEGREES:g}: oblique"
        )
    else:
        text = (
            f"slice normal ({shown}) along {axis_name}: {axis_plane.value}, "
            f"tilted {tilt:.1f} degrees"
        )
    return plane, tilt, [text]


# ---------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------

# A vertebral range such as "T12-S1", "Th12/L1" or "L1 to S1" is anatomy, not a weighting.
_VERTEBRAL_RANGE = re.compile(
    r"(?<![a-z0-9])(?:c|th?|l|s)\d{1,2}\s*(?:-|/|to)\s*(?:c|th?|l|s)\d{1,2}(?![0-9])"
)
# A weighting token: optional Philips plane prefix (s/a/c as in "sT2W_TSE"), the weighting,
# optional "W"/"WI", then a known suffix ("t2fs", "t1flair", "t2wspair"). "t1" followed by
# a digit ("t12") never matches.
_WEIGHTING_SUFFIXES = (
    "fs|fatsat|fsat|flair|tse|fse|frfse|se|spair|spir|stir|tirm|dixon|ideal|c|ce|gd|post|pre"
)
_WEIGHTING_TOKEN = re.compile(
    rf"(?P<prefix>[sac]?)(?P<weight>t1|t2|pd|dp)(?:w|wi)?(?P<suffix>{_WEIGHTING_SUFFIXES})?"
)
_WEIGHTING_ROLES = {"t1": Role.T1, "t2": Role.T2, "pd": Role.PD, "dp": Role.PD}
_PREFIX_PLANES = {"s": Plane.SAGITTAL, "a": Plane.AXIAL, "c": Plane.CORONAL}
_PLANE_WORDS = {
    "sag": Plane.SAGITTAL,
    "sagittal": Plane.SAGITTAL,
    "ax": Plane.AXIAL,
    "axial": Plane.AXIAL,
    "tra": Plane.AXIAL,
    "transverse": Plane.AXIAL,
    "cor": Plane.CORONAL,
    "coronal": Plane.CORONAL,
}
# Localizers: Siemens "localizer", "AAHead_Scout"; GE "3-PLANE LOC", "3pl loc", "Scout";
# Philips "Survey"; Canon/Toshiba and others "tri-pilot", "locator".
_LOCALIZER_STEMS = ("localiz", "localis", "scout", "survey", "pilot", "locator")
_LOCALIZER_TOKENS = frozenset({"loc", "locs", "3pl", "3plane", "3planeloc"})
_LOCALIZER_IMAGE_TYPES = frozenset({"LOCALIZER", "SCOUT", "SURVEY"})
# STIR names: STIR everywhere (Philips "sSTIR", "STIR_longTR"), Siemens TIRM (turbo
# inversion recovery magnitude). The names of fat suppression: FS, fat sat, Philips
# SPIR/SPAIR (Siemens SPAIR too), GE/Siemens CHESS.
_STIR_TOKEN = re.compile(r"[sac]?stir")
_FAT_SAT_TOKENS = frozenset(
    {"fs", "fatsat", "fsat", "fatsup", "fatsuppressed", "spair", "spir", "chess", "fssat"}
)
_FAT_SAT_SUFFIXES = frozenset({"fs", "fatsat", "fsat", "spair", "spir"})
_FAT_WORDS = frozenset({"sat", "saturation", "saturated", "sup", "suppression", "suppressed"})
# Dixon (Siemens "dixon", Philips "mDIXON", GE "IDEAL") makes water, fat, in- and opposed-
# phase images; only the water image is fat-suppressed.
_DIXON_TOKENS = frozenset({"dixon", "mdixon", "ideal", "flexdixon"})
_WATER_TOKENS = frozenset({"water", "w", "wat"})
_FLAIR_TOKENS = frozenset({"flair", "darkfluid"})
_T2STAR_TOKENS = frozenset({"t2star", "medic", "merge", "swi", "hemo"})
_DIFFUSION_TOKENS = frozenset({"dwi", "diff", "diffusion", "adc", "dti", "trace", "ep2d"})


def _tokens(text: str) -> tuple[str, ...]:
    """Lower-case word tokens of a description; vertebral ranges removed."""
    lowered = text.lower().replace("t2*", "t2star")
    lowered = _VERTEBRAL_RANGE.sub(" ", lowered)
    return tuple(t for t in re.split(r"[^a-z0-9]+", lowered) if t)


def _localizer_word(tokens: Sequence[str]) -> str | None:
    for token in tokens:
        if token in _LOCALIZER_TOKENS or any(stem in token for stem in _LOCALIZER_STEMS):
            return token
    for first, second in zip(tokens, tokens[1:], strict=False):
        if first == "3" and second in ("plane", "pl"):
            return "3-plane"
    return None


def _plane_hint(tokens: Sequence[str]) -> Plane | None:
    for token in tokens:
        if token in _PLANE_WORDS:
            return _PLANE_WORDS[token]
        match = _WEIGHTING_TOKEN.fullmatch(token) or _STIR_TOKEN.fullmatch(token)
        if match and token[0] in _PREFIX_PLANES and not token.startswith("stir"):
            return _PREFIX_PLANES[token[0]]
    return None


@dataclass
class _Evidence:
    """One source's opinion: a role (None = undecided), fat suppression and reasons."""

    role: Role | None = None
    fat_suppressed: bool = False
    reasons: list[str] = field(default_factory=list)
    summary: str = ""
    has_timing: bool = False


@dataclass
class _Words:
    """What a description names."""

    weights: dict[Role, str] = field(default_factory=dict)
    stir: str = ""
    fat: str = ""
    dixon: str = ""
    water: str = ""
    flair: bool = False
    t2star: str = ""
    diffusion: str = ""


def _read_words(tokens: Sequence[str]) -> _Words:
    words = _Words()
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        match = _WEIGHTING_TOKEN.fullmatch(token)
        if match:
            words.weights.setdefault(_WEIGHTING_ROLES[match["weight"]], token)
            suffix = match["suffix"] or ""
            if suffix in _FAT_SAT_SUFFIXES:
                words.fat = words.fat or token
            elif suffix in ("stir", "tirm"):
                words.stir = words.stir or token
            elif suffix == "flair":
                words.flair = True
            elif suffix in ("dixon", "ideal"):
                words.dixon = words.dixon or token
        if _STIR_TOKEN.fullmatch(token) or token == "tirm":
            words.stir = words.stir or token
        if token in _FAT_SAT_TOKENS:
            words.fat = words.fat or token
        if token == "fat" and following in _FAT_WORDS:
            words.fat = words.fat or f"fat {following}"
        if token in ("proton", "protondensity") and (following == "density" or token != "proton"):
            words.weights.setdefault(Role.PD, "proton density")
        if token in _DIXON_TOKENS:
            words.dixon = words.dixon or token
        if token in _WATER_TOKENS:
            words.water = words.water or token
        if token in _FLAIR_TOKENS or (token == "dark" and following == "fluid"):
            words.flair = True
        if token in _T2STAR_TOKENS:
            words.t2star = words.t2star or token
        if token in _DIFFUSION_TOKENS:
            words.diffusion = words.diffusion or token
    return words


def _describe_stir(word: str) -> str:
    if word.startswith("tirm") or word.endswith("tirm"):
        return "TIRM (Siemens STIR)"
    return "STIR"


def _text_evidence(label: str, text: str) -> _Evidence:
    """What one description or protocol name says about the role."""
    words = _read_words(_tokens(text))
    says = f"{label} {text!r}"
    # A water image: "water" spelled out (GE IDEAL "WATER: ..."), or Dixon with "W".
    water = words.water == "water" or (bool(words.dixon) and bool(words.water))
    fat_word = words.fat or (f"{words.dixon} water".strip() if water else "")
    if words.dixon and not water:
        dixon_note = [
            f"{says} names {words.dixon} without a water marker: fat suppression not assumed"
        ]
    else:
        dixon_note = []
    if words.diffusion:
        return _Evidence(Role.OTHER, False, [f"{says} names diffusion imaging ({words.diffusion})"])
    if words.t2star:
        return _Evidence(
            Role.OTHER, False, [f"{says} names T2* gradient echo ({words.t2star}), not T2"]
        )
    if words.flair:
        if Role.T1 in words.weights:
            return _Evidence(Role.T1, bool(fat_word), [
                f"{says} names T1 FLAIR: an inversion-recovery T1 (GE), read as T1"])
        return _Evidence(Role.OTHER, False, [f"{says} names FLAIR (fluid-attenuated): not STIR"])
    if words.stir:
        return _Evidence(Role.STIR, True, [f"{says} names {_describe_stir(words.stir)}"])
    if len(words.weights) > 1:
        named = ", ".join(r.value for r in words.weights)
        return _Evidence(None, bool(fat_word), [f"{says} names several weightings ({named})"])
    if len(words.weights) == 1:
        role, token = next(iter(words.weights.items()))
        reasons = [f"{says} names {role.value} ({token!r})"] + dixon_note
        if fat_word:
            reasons.append(f"{says} names fat suppression ({fat_word!r})")
            if role is Role.T2:
                reasons.append("a fat-suppressed T2 is fluid-sensitive with fat dark: read as STIR")
                return _Evidence(Role.STIR, True, reasons)
        return _Evidence(role, bool(fat_word), reasons)
    if fat_word:
        return _Evidence(Role.STIR, True, [
            f"{says} names fat suppression ({fat_word!r}) without a weighting: read as a "
            "fat-suppressed T2 (STIR)"] + dixon_note)
    return _Evidence(None, False, dixon_note)


def _description_evidence(info: SequenceInfo) -> _Evidence:
    """The role named by SeriesDescription, else by ProtocolName."""
    notes: list[str] = []
    for label, text in (("description", info.series_description),
                        ("protocol", info.protocol_name)):
        if not text:
            continue
        evidence = _text_evidence(label, text)
        if evidence.role is not None:
            evidence.reasons[:0] = notes
            return evidence
        notes.extend(evidence.reasons or [f"{label} {text!r} names no weighting"])
    return _Evidence(None, False, notes)


# ImageType values (index 2 on) of images that are not a magnitude image of tissue signal:
# phase, real and imaginary parts (PS3.3 C.8.13.1.1.1 "Complex Image Component"; Siemens
# "P", GE "PHASE"/"REAL"/"IMAGINARY"), and field maps (Philips "B0"/"B0 MAP", "B1").
_NOT_MAGNITUDE_IMAGE_TYPES = frozenset(
    {"P", "PHASE", "PHASE MAP", "R", "REAL", "I", "IMAGINARY", "B0", "B0 MAP", "B1", "B1 MAP",
     "FIELD_MAP", "FIELDMAP", "FIELD MAP"}
)
# ImageType values of diffusion images and maps made from them (Siemens "DIFFUSION",
# "ADC", "TRACEW", "FA", "EXP"; GE/Philips "DWI", "ADC", "EADC", "TENSOR", "CALC_BVALUE").
_DIFFUSION_IMAGE_TYPES = frozenset(
    {"DIFFUSION", "ADC", "EADC", "TRACEW", "TRACE", "FA", "EXP", "DWI", "TENSOR", "CALC_BVALUE",
     "ISODWI", "DIFFUSION MAP"}
)
_COMPLEX_PARTS = frozenset({"PHASE", "REAL", "IMAGINARY"})
# Siemens sequence names: "*ep_b1000t" (diffusion EPI), "*fm2d2" (gradient-echo field map).
_SIEMENS_DIFFUSION = re.compile(r"^\*?(ep|re|ez)_b\d", re.IGNORECASE)
_SIEMENS_FIELD_MAP = re.compile(r"^\*?fm\d", re.IGNORECASE)
# Words of descriptions naming a field map, matched as whole tokens ("gre_field_mapping"
# gives the tokens "gre field mapping").
_FIELD_MAP_PHRASES = ("field map", "field mapping", "fieldmap", "fieldmapping", "b0 map", "b0map",
                      "b1 map", "b1map", "fmap")


def _not_tissue_image_reason(info: SequenceInfo) -> str | None:
    """Why a series can never be a T1, T2 or STIR for Modic reading (or None).

    Diffusion-weighted series (whose b = 0 images have T2 timing and T2 contrast), field
    maps, phase, real and imaginary images, and Siemens mosaics (several slices tiled into
    one image). These win over timing, as a localizer does.
    """
    if "MOSAIC" in info.image_type:
        return ("ImageType contains MOSAIC: a Siemens mosaic (several slices tiled into one image, "
                "usually diffusion or functional EPI), not a sagittal stack")
    if info.acquisition_contrast == "DIFFUSION":
        return "AcquisitionContrast DIFFUSION: a diffusion-weighted series"
    # Philips writes a b-value of 0 (and directionality NONE) on every MR image, so only a
    # diffusion weighting > 0 or a direction says "diffusion".
    if info.diffusion_b_value is not None and info.diffusion_b_value > 0:
        return (f"b-value {info.diffusion_b_value:g} s/mm2: a diffusion-weighted series "
                "(its b = 0 images have T2 timing, but it is not a T2)")
    if info.diffusion_directionality in ("DIRECTIONAL", "ISOTROPIC", "BMATRIX"):
        return f"DiffusionDirectionality {info.diffusion_directionality}: a diffusion-weighted series"
    marked = _DIFFUSION_IMAGE_TYPES.intersection(info.image_type[2:])
    if marked:
        return f"ImageType contains {sorted(marked)[0]}: a diffusion image or map"
    if _SIEMENS_DIFFUSION.match(info.sequence_name):
        return f"SequenceName {info.sequence_name!r}: Siemens diffusion EPI"
    if info.echo_planar == "YES":
        return "EchoPlanarPulseSequence YES: echo planar (diffusion or functional), not a structural image"
    if info.complex_component in _COMPLEX_PARTS:
        return f"ComplexImageComponent {info.complex_component}: not a magnitude image"
    marked = _NOT_MAGNITUDE_IMAGE_TYPES.intersection(info.image_type[2:])
    if marked:
        return f"ImageType contains {sorted(marked)[0]}: a phase, real/imaginary or field-map image"
    if _SIEMENS_FIELD_MAP.match(info.sequence_name):
        return f"SequenceName {info.sequence_name!r}: Siemens gradient-echo field map"
    for label, text in (("description", info.series_description), ("protocol", info.protocol_name)):
        tokens = _tokens(text)
        spaced = f" {' '.join(tokens)} "
        word = next((w for w in _FIELD_MAP_PHRASES if f" {w} " in spaced), None)
        if word is not None:
            return f"{label} {text!r} names a field map ({word!r})"
        words = _read_words(_tokens(text))
        if words.diffusion:
            return f"{label} {text!r} names diffusion imaging ({words.diffusion!r})"
    return None


def _localizer_reason(info: SequenceInfo) -> str | None:
    marked = _LOCALIZER_IMAGE_TYPES.intersection(info.image_type)
    if marked:
        return f"ImageType contains {sorted(marked)[0]}: localizer"
    for label, text in (("description", info.series_description),
                        ("protocol", info.protocol_name)):
        word = _localizer_word(_tokens(text))
        if word:
            return f"{label} {text!r} names a localizer ({word!r})"
    return None


# ---------------------------------------------------------------------------------------
# Header physics
# ---------------------------------------------------------------------------------------

# ScanOptions values meaning fat saturation: "FS" is the DICOM defined term (PS3.3
# C.8.3.1, used by Siemens, Philips and GE). GE "SAT_GEMS" marks spatial saturation bands,
# not fat saturation.
_FAT_SAT_OPTIONS = frozenset({"FS", "FAT_SAT", "FATSAT"})
# Inversion recovery: ScanningSequence "IR"; Siemens ScanOptions "IR"; GE ScanOptions
# "IR_GEMS", "T1FLAIR_GEMS", "T2FLAIR_GEMS"; Enhanced MR InversionRecovery "YES"; Siemens
# SequenceName "*tir..." (turbo inversion recovery).
_IR_OPTIONS = frozenset({"IR", "IR_GEMS", "T1FLAIR_GEMS", "T2FLAIR_GEMS"})
_SIEMENS_TIR = re.compile(r"^\*?tir", re.IGNORECASE)
# Enhanced MR AcquisitionContrast (0008,9209) defined terms.
_CONTRAST_ROLES = {
    "T1": Role.T1,
    "T2": Role.T2,
    "PROTON_DENSITY": Role.PD,
    "STIR": Role.STIR,
    "FLUID_ATTENUATED": Role.OTHER,
    "T2_STAR": Role.OTHER,
    "DIFFUSION": Role.OTHER,
    "FLOW_ENCODED": Role.OTHER,
    "PERFUSION": Role.OTHER,
    "TAGGING": Role.OTHER,
    "TOF": Role.OTHER,
}


def _ms(value: float) -> str:
    return f"{value:g} ms"


def _typical_stir(field_strength: float | None) -> str:
    for tesla, (low, high) in TYPICAL_STIR_TI:
        if field_strength is not None and abs(field_strength - tesla) <= 0.25:
            return f"typical STIR TI {low:g}-{high:g} ms at {tesla:g} T"
    return f"STIR TI {STIR_TI_MIN:g}-{STIR_TI_MAX:g} ms across field strengths"


def _inversion_recovery(info: SequenceInfo) -> str | None:
    """Why the series is inversion recovery, or None."""
    if "IR" in info.scanning_sequence:
        return "ScanningSequence " + "\\".join(info.scanning_sequence)
    options = _IR_OPTIONS.intersection(info.scan_options)
    if options:
        return f"ScanOptions {sorted(options)[0]}"
    if info.inversion_recovery_tag == "YES":
        return "InversionRecovery YES"
    if _SIEMENS_TIR.match(info.sequence_name):
        return f"SequenceName {info.sequence_name!r} (Siemens turbo inversion recovery)"
    if not info.scanning_sequence and info.inversion_time is not None:
        return "InversionTime given (ScanningSequence missing)"
    return None


def _ir_timing(info: SequenceInfo, why: str) -> _Evidence:
    """STIR, T1 FLAIR, FLAIR or undecided, from the inversion time."""
    ti, te = info.inversion_time, info.echo_time
    if ti is None:
        if "T1FLAIR_GEMS" in info.scan_options:
            return _Evidence(Role.T1, False, [f"{why}: GE T1 FLAIR, an inversion-recovery T1"],
                             "ScanOptions T1FLAIR_GEMS is a T1 FLAIR", True)
        if "T2FLAIR_GEMS" in info.scan_options:
            return _Evidence(Role.OTHER, False, [f"{why}: GE T2 FLAIR (fluid-attenuated)"],
                             "ScanOptions T2FLAIR_GEMS is a FLAIR", True)
        return _Evidence(None, False, [
            f"{why} (inversion recovery) without InversionTime: timing cannot tell STIR "
            "from FLAIR"])
    if STIR_TI_MIN <= ti <= STIR_TI_MAX:
        return _Evidence(Role.STIR, True, [
            f"{why} with TI {_ms(ti)}: short-TI inversion recovery nulls fat "
            f"(STIR; {_typical_stir(info.field_strength)})"],
            f"inversion recovery with TI {_ms(ti)} is STIR", True)
    if ti >= FLAIR_TI_MIN:
        return _Evidence(Role.OTHER, False, [
            f"{why} with TI {_ms(ti)} (>= {_ms(FLAIR_TI_MIN)}): nulls fluid (FLAIR), not STIR"],
            f"inversion recovery with TI {_ms(ti)} is FLAIR", True)
    if ti > STIR_TI_MAX and (te is None or te <= IR_T1_MAX_TE):
        te_text = f"TE {_ms(te)}" if te is not None else "TE unknown"
        return _Evidence(Role.T1, False, [
            f"{why} with TI {_ms(ti)} and {te_text}: inversion-recovery T1 (T1 FLAIR), "
            f"not STIR (TI > {_ms(STIR_TI_MAX)})"],
            f"inversion recovery with TI {_ms(ti)} is T1 FLAIR timing", True)
    te_text = f" and TE {_ms(te)}" if te is not None else ""
    return _Evidence(None, False, [
        f"{why} with TI {_ms(ti)}{te_text} fits neither STIR ({_ms(STIR_TI_MIN)}-"
        f"{_ms(STIR_TI_MAX)}), T1 FLAIR nor FLAIR (>= {_ms(FLAIR_TI_MIN)})"], "", True)


def _gradient_echo_timing(info: SequenceInfo, why: str) -> _Evidence:
    tr, te, flip = info.repetition_time, info.echo_time, info.flip_angle
    if tr is None or te is None or flip is None:
        return _Evidence(None, False, [
            f"{why} without TR, TE and flip angle: timing cannot decide"], "", tr is not None)
    text = f"{why}, TR {_ms(tr)}, TE {_ms(te)}, flip {flip:g} degrees"
    if flip >= GRE_T1_MIN_FLIP and te <= GRE_T1_MAX_TE and tr < T1_MAX_TR:
        return _Evidence(Role.T1, False, [
            f"{text}: spoiled gradient-echo T1 weighting (flip >= {GRE_T1_MIN_FLIP:g} degrees, "
            f"TE <= {_ms(GRE_T1_MAX_TE)})"],
            f"gradient echo with flip {flip:g} degrees and TE {_ms(te)} is T1 timing", True)
    return _Evidence(None, False, [
        f"{text}: not clearly T1-weighted (a small flip or longer TE gives PD or T2* "
        "contrast); the description decides"], "", True)


def _spin_echo_timing(info: SequenceInfo, why: str) -> _Evidence:
    tr, te = info.repetition_time, info.echo_time
    if tr is None or te is None:
        missing = " and ".join(n for n, v in (("TR", tr), ("TE", te)) if v is None)
        return _Evidence(None, False, [f"{missing} missing: timing cannot decide"], "",
                         tr is not None or te is not None)
    timing = f"TR {_ms(tr)} and TE {_ms(te)}"
    short = f"TR {_ms(tr)} / TE {_ms(te)}"
    if tr < T1_MAX_TR and te < T1_MAX_TE:
        return _Evidence(Role.T1, False, [
            f"{timing}: T1-weighted timing (TR < {_ms(T1_MAX_TR)}, TE < {_ms(T1_MAX_TE)}){why}"],
            f"{short} are T1 timing", True)
    if tr > LONG_TR_MIN and te > T2_MIN_TE:
        return _Evidence(Role.T2, False, [
            f"{timing}: T2-weighted timing (TR > {_ms(LONG_TR_MIN)}, TE > {_ms(T2_MIN_TE)}){why}"],
            f"{short} are T2 timing", True)
    if tr > LONG_TR_MIN and te < PD_MAX_TE:
        return _Evidence(Role.PD, False, [
            f"{timing}: proton-density timing (TR > {_ms(LONG_TR_MIN)}, "
            f"TE < {_ms(PD_MAX_TE)}){why}"],
            f"{short} are proton-density timing", True)
    return _Evidence(None, False, [
        f"{timing} fit no weighting clearly (T1: TR < {_ms(T1_MAX_TR)}, TE < {_ms(T1_MAX_TE)}; "
        f"T2: TR > {_ms(LONG_TR_MIN)}, TE > {_ms(T2_MIN_TE)}; PD: TR > {_ms(LONG_TR_MIN)}, "
        f"TE < {_ms(PD_MAX_TE)})"], "", True)


def _timing_evidence(info: SequenceInfo) -> _Evidence:
    """The role told by the pulse sequence and its timing (None when it cannot tell)."""
    scanning = set(info.scanning_sequence)
    ir_why = _inversion_recovery(info)
    if "EP" in scanning:
        return _Evidence(Role.OTHER, False, [
            "ScanningSequence EP (echo planar): diffusion or functional imaging, not a "
            "structural T1/T2"], "ScanningSequence EP is echo planar", True)
    if ir_why is not None:
        return _ir_timing(info, ir_why)
    notes: list[str] = []
    if info.inversion_time is not None:
        notes.append(
            f"InversionTime {_ms(info.inversion_time)} without an inversion-recovery flag: "
            "ignored (spectral fat-suppression pulses such as SPAIR also carry a TI)")
    gradient_only = "GR" in scanning and "SE" not in scanning
    flip = info.flip_angle
    if not scanning and flip is not None and flip < GRE_MAX_FLIP_WHEN_UNKNOWN:
        evidence = _gradient_echo_timing(
            info, f"ScanningSequence missing, flip angle {flip:g} degrees suggests gradient echo")
    elif gradient_only:
        evidence = _gradient_echo_timing(info, "gradient echo (ScanningSequence GR)")
    else:
        why = "" if scanning else " (ScanningSequence missing: read as spin echo)"
        evidence = _spin_echo_timing(info, why)
    evidence.reasons[:0] = notes
    return evidence


def _header_fat_suppression(info: SequenceInfo) -> list[str]:
    """Reasons the header marks fat suppression; empty when it does not."""
    reasons = []
    options = _FAT_SAT_OPTIONS.intersection(info.scan_options)
    if options:
        reasons.append(f"ScanOptions {sorted(options)[0]}: fat saturation")
    if "FAT" in info.fat_suppression_tag:
        reasons.append(f"SpectrallySelectedSuppression {info.fat_suppression_tag}: fat suppressed")
    if "DIXON" in info.image_type and ("WATER" in info.image_type or "W" in info.image_type):
        reasons.append("ImageType marks a Dixon water image: fat removed")
    return reasons


def _header_evidence(info: SequenceInfo) -> _Evidence:
    """Timing, inversion recovery, fat-saturation flags and AcquisitionContrast together."""
    evidence = _timing_evidence(info)
    contrast = _CONTRAST_ROLES.get(info.acquisition_contrast)
    if contrast is not None:
        said = f"AcquisitionContrast {info.acquisition_contrast}"
        if evidence.role is None:
            evidence.role = contrast
            evidence.summary = f"{said} is {contrast.value}"
            evidence.reasons.append(f"{said}: {contrast.value} (scanner's own label)")
        elif evidence.role is contrast or {evidence.role, contrast} == {Role.T2, Role.STIR}:
            evidence.reasons.append(f"{said} agrees")
        else:
            evidence.reasons.append(
                f"{said} points to {contrast.value}, timing to {evidence.role.value}: "
                "timing is followed")
        evidence.has_timing = True
    if "SAT_GEMS" in info.scan_options and not _FAT_SAT_OPTIONS.intersection(info.scan_options):
        evidence.reasons.append("ScanOptions SAT_GEMS is a GE spatial saturation band, not fat "
                                "saturation")
    fat = _header_fat_suppression(info)
    if fat:
        evidence.fat_suppressed = True
        evidence.reasons.extend(fat)
    return evidence


# ---------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------

def _compatible(header: Role, described: Role) -> bool:
    """True when a description does not contradict the header.

    STIR is a long-TR fluid-sensitive sequence, so long-TR timing (T2 or PD) does not
    exclude it when the header has no inversion or fat-saturation flag, and a
    description "T2" does not deny fat suppression seen in the header.
    """
    if header is described:
        return True
    return {header, described} in ({Role.T2, Role.STIR}, {Role.PD, Role.STIR})


def _combine(header: _Evidence, described: _Evidence) -> tuple[Role, bool, list[str]]:
    """Role, fat suppression and reasons from the header and the description."""
    reasons = header.reasons + described.reasons
    if header.role is None and described.role is None:
        if header.has_timing:
            reasons.append("timing is ambiguous and the description names no weighting: other")
        else:
            reasons.append("no timing and no recognisable description: other")
        return Role.OTHER, header.fat_suppressed, reasons
    if header.role is None:
        assert described.role is not None
        reasons.append("the description decides (timing missing or ambiguous)")
        return described.role, header.fat_suppressed or described.fat_suppressed, reasons
    if described.role is None:
        return header.role, header.fat_suppressed, reasons
    if _compatible(header.role, described.role):
        role = Role.STIR if Role.STIR in (header.role, described.role) else header.role
        if role is not header.role and not header.fat_suppressed:
            reasons.append(
                f"{header.summary or 'the header timing'} with no inversion or fat-saturation "
                "flag, but STIR is a long-TR sequence too: the description's STIR is followed")
        else:
            reasons.append("the description agrees with the header")
        return role, header.fat_suppressed or described.fat_suppressed, reasons
    header_says = header.summary or f"the header says {header.role.value}"
    reasons.append(
        f"description says {described.role.value} but {header_says}: "
        "the header is followed, the description disagrees")
    return header.role, header.fat_suppressed, reasons


def _plane_note(info: SequenceInfo, plane: Plane) -> list[str]:
    hint = _plane_hint(_tokens(info.series_description)) or _plane_hint(
        _tokens(info.protocol_name))
    if hint is None:
        return []
    if info.orientation is None or plane is Plane.OBLIQUE:
        return [f"the description suggests {hint.value}"]
    if hint is not plane:
        return [f"the description suggests {hint.value} but the orientation is {plane.value}: "
                "the orientation is followed"]
    return []


def identify(info: SequenceInfo) -> SeriesIdentity:
    """Say what a series is: role, plane, fat suppression, with the reasons.

    Parameters
    ----------
    info : SequenceInfo
        Header evidence, e.g. ``SequenceInfo.from_dataset(ds)``.

    Returns
    -------
    SeriesIdentity
        ``reasons`` lists the evidence for the role, then fat suppression, then the plane.

    Notes
    -----
    Decision order: a localizer name or ImageType wins; then a series that holds no
    magnitude image of tissue signal (diffusion, field maps, phase, mosaics) is OTHER
    whatever its timing; otherwise the header (inversion
    time, TR/TE/flip, fat-saturation flags, AcquisitionContrast) and the description are
    combined, the header winning a conflict. A T2 with fat suppression is STIR; a T1 or
    PD with fat suppression keeps its role with ``fat_suppressed=True``. Nothing usable
    gives OTHER. Thresholds are the module constants (``T1_MAX_TR``, ``STIR_TI_MAX``...).

    Examples
    --------
    >>> identify(SequenceInfo(scanning_sequence=("SE", "IR"), repetition_time=4000.0,
    ...                       echo_time=40.0, inversion_time=150.0)).role
    <Role.STIR: 'STIR'>
    >>> identify(SequenceInfo(series_description="SAG T2 T12-S1")).role
    <Role.T2: 'T2'>
    """
    plane, tilt, plane_reasons = _plane_reasons(info)
    plane_reasons += _plane_note(info, plane)
    header = _header_evidence(info)
    localizer = _localizer_reason(info)
    if localizer is not None:
        reasons = [localizer]
        if header.role is not None:
            reasons.append(f"localizer wins over the timing ({header.role.value})")
        return SeriesIdentity(Role.LOCALIZER, plane, header.fat_suppressed,
                              tuple(reasons + plane_reasons), tilt)
    not_tissue = _not_tissue_image_reason(info)
    if not_tissue is not None:
        reasons = [not_tissue]
        if header.role not in (None, Role.OTHER):
            reasons.append(f"this wins over the timing ({header.role.value})")
        return SeriesIdentity(Role.OTHER, plane, False, tuple(reasons + plane_reasons), tilt)
    role, fat_suppressed, reasons = _combine(header, _description_evidence(info))
    if role is Role.T2 and fat_suppressed:
        role = Role.STIR
        reasons.append("T2 with fat suppression is fluid-sensitive with fat dark: read as STIR")
    if role is Role.STIR:
        fat_suppressed = True
    elif fat_suppressed and role in (Role.T1, Role.PD):
        reasons.append(f"{role.value} with fat suppression: fat_suppressed is set")
    return SeriesIdentity(role, plane, fat_suppressed, tuple(reasons + plane_reasons), tilt)
