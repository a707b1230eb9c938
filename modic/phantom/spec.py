"""What to synthesise: lesions, series and studies, as plain validated dataclasses.

A :class:`StudySpec` fully determines a phantom study: the same spec (same ``seed``)
always gives the same anatomy, the same images and byte-identical DICOM files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "VERTEBRAE",
    "LESION_VERTEBRAE",
    "MODIC_TYPES",
    "LesionSpec",
    "HemangiomaSpec",
    "SchmorlNodeSpec",
    "SeriesSpec",
    "StudySpec",
    "default_series",
    "small_series",
    "default_study_spec",
]

#: Vertebrae of the model, top to bottom (the thoracic ones above T12 only fill the
#: field of view of localizers).
VERTEBRAE: tuple[str, ...] = (
    "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2", "S3", "S4",
)
#: Vertebrae whose endplates may carry a Modic change and are listed in the ground truth.
LESION_VERTEBRAE: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: Lumbosacral transitional anatomy a :class:`StudySpec` can have ("" = none).
TRANSITIONAL: tuple[str, ...] = ("", "sacralised_L5", "lumbarised_S1")
#: Modic types a :class:`LesionSpec` accepts (the mixed ones also in reverse order).
MODIC_TYPES: tuple[str, ...] = ("1", "2", "3", "1/2", "2/3", "2/1", "3/2")

_ROLES = ("t1", "t2", "stir", "t2fs", "localizer")
_PLANES = ("sagittal", "axial", "coronal", "3plane")
_VENDORS = ("siemens", "ge", "philips")
_SYNTAXES = ("explicit", "implicit", "rle", "jpeg2000")
_NAMINGS = ("nested", "uid", "flat")


@dataclass
class LesionSpec:
    """A Modic change at one endplate.

    The change is a band of marrow hugging the endplate: in the vertebra's frame it covers
    an ellipse of the endplate (``width_fraction`` of the body's left-right width,
    ``depth_fraction`` of its antero-posterior depth, centred at ``lr_position``,
    ``ap_position``) and reaches ``height_fraction`` of the local body height into the
    body (Udby grade A < 0.25 <= B <= 0.5 < C).  It never leaves the body's marrow.

    Attributes
    ----------
    vertebra : str
        One of :data:`LESION_VERTEBRAE` (``"T12"`` ... ``"S1"``).
    endplate : str
        ``"superior"`` or ``"inferior"`` (S1: superior only).
    modic_type : str
        ``"1"``, ``"2"``, ``"3"``, ``"1/2"`` or ``"2/3"`` (``"2/1"``, ``"3/2"`` reverse
        which type lies nearest the endplate / anteriorly).
    height_fraction : float
        Maximum height into the body as a fraction of the local body height, in (0, 0.95].
    width_fraction, depth_fraction : float
        Extent over the endplate as fractions of the body's width and depth, in (0, 1].
    lr_position, ap_position : float
        Centre of the change over the endplate, in units of the half width / half depth
        (+ = patient left / posterior), in [-0.6, 0.6].
    mix_fraction : float
        For mixed types: volume fraction of the first listed type, in (0, 1).
    mix_layout : str
        ``"layered"``: the first type nearest the endplate, the second further into the
        body; ``"side"``: the first type anterior, the second posterior.
    fat_fraction : float, optional
        Override of the proton-density fat fraction of a single-type change.
    irregularity : float
        Relative depth of the smooth irregularity of the change's far border, in [0, 0.5].
    t1_ratio : float, optional
        A *weak* change (single types 1 and 2 only): the noise-free T1 signal of the
        change relative to its vertebra's normal marrow, on the study's T1 sequence.  The
        change keeps its type's water (oedema for type 1), and its fat fraction is set so
        that the T1 signal is ``t1_ratio`` x normal: type 1 in [0.5, 0.98) (weak oedema keeps
        much of the marrow fat, so T1 drops only 5-20 % while T2 / STIR, driven by the
        oedema's long-T2 water, still rise 1.2-3x); type 2 in (1.02, 1.6] (a lower fat
        fraction than full fatty replacement).  ``None`` = the type's full tissue.
        Exclusive with ``fat_fraction``.
    fat_islands : float
        Volume fraction of the type-1 part of the change taken by small (1-2.5 mm) islands
        of preserved fatty marrow (fat fraction 0.85), in [0, 0.3].  They belong to the
        change: the ground truth stays the change's type and :func:`lesion_mask` gives 1
        there; the islands are listed in the endplate's truth ``factors``.
    """

    vertebra: str
    endplate: str
    modic_type: str
    height_fraction: float = 0.3
    width_fraction: float = 0.6
    depth_fraction: float = 0.7
    lr_position: float = 0.0
    ap_position: float = 0.0
    mix_fraction: float = 0.5
    mix_layout: str = "layered"
    fat_fraction: float | None = None
    irregularity: float = 0.1
    t1_ratio: float | None = None
    fat_islands: float = 0.0

    def __post_init__(self) -> None:
        if self.vertebra not in LESION_VERTEBRAE:
            raise ValueError(
                f"LesionSpec.vertebra must be one of {LESION_VERTEBRAE}, got {self.vertebra!r}")
        if self.endplate not in ("superior", "inferior"):
            raise ValueError(
                f"LesionSpec.endplate must be 'superior' or 'inferior', got {self.endplate!r}")
        if self.vertebra == "S1" and self.endplate == "inferior":
            raise ValueError("LesionSpec: S1 has no disc below it; use endplate='superior'")
        if self.modic_type not in MODIC_TYPES:
            raise ValueError(
                f"LesionSpec.modic_type must be one of {MODIC_TYPES}, got {self.modic_type!r}")
        _check_range("LesionSpec.height_fraction", self.height_fraction, 0.0, 0.95, low_open=True)
        _check_range("LesionSpec.width_fraction", self.width_fraction, 0.0, 1.0, low_open=True)
        _check_range("LesionSpec.depth_fraction", self.depth_fraction, 0.0, 1.0, low_open=True)
        _check_range("LesionSpec.lr_position", self.lr_position, -0.6, 0.6)
        _check_range("LesionSpec.ap_position", self.ap_position, -0.6, 0.6)
        _check_range("LesionSpec.mix_fraction", self.mix_fraction, 0.05, 0.95)
        _check_range("LesionSpec.irregularity", self.irregularity, 0.0, 0.5)
        if self.mix_layout not in ("layered", "side"):
            raise ValueError(
                f"LesionSpec.mix_layout must be 'layered' or 'side', got {self.mix_layout!r}")
        if self.fat_fraction is not None:
            _check_range("LesionSpec.fat_fraction", self.fat_fraction, 0.0, 1.0)
        if self.t1_ratio is not None:
            if self.modic_type == "1":
                _check_range("LesionSpec.t1_ratio (type 1)", self.t1_ratio, 0.5, 0.98)
            elif self.modic_type == "2":
                _check_range("LesionSpec.t1_ratio (type 2)", self.t1_ratio, 1.02, 1.6)
            else:
                raise ValueError("LesionSpec.t1_ratio is for single types '1' and '2' only, "
                                 f"got modic_type {self.modic_type!r}")
            if self.fat_fraction is not None:
                raise ValueError("LesionSpec: give t1_ratio or fat_fraction, not both")
        _check_range("LesionSpec.fat_islands", self.fat_islands, 0.0, 0.3)
        if self.fat_islands > 0 and "1" not in self.types:
            raise ValueError("LesionSpec.fat_islands needs a type-1 component "
                             f"(modic_type {self.modic_type!r})")

    @property
    def weak(self) -> bool:
        """Whether this is a weak change (:attr:`t1_ratio` set)."""
        return self.t1_ratio is not None

    @property
    def types(self) -> tuple[str, ...]:
        """The component types, first one nearest the endplate (or anterior)."""
        return tuple(self.modic_type.split("/"))

    @property
    def canonical_type(self) -> str:
        """The type as reported in the ground truth: ``"1/2"`` for ``"2/1"`` etc."""
        return "/".join(sorted(self.types))

    @property
    def udby_grade(self) -> str:
        """Udby height grade: ``"A"`` (< 25 %), ``"B"`` (25-50 %) or ``"C"`` (> 50 %)."""
        return udby_grade(self.height_fraction)


def udby_grade(height_fraction: float) -> str:
    """Udby grade of a change reaching ``height_fraction`` of the body height."""
    if height_fraction < 0.25:
        return "A"
    if height_fraction <= 0.5:
        return "B"
    return "C"


@dataclass
class HemangiomaSpec:
    """A vertebral hemangioma: a round, fatty and vascular lesion inside the body.

    Bright on T1 (fat) and on T2 (fat and slow-flowing blood), intermediate on STIR (the
    fat is suppressed, the vascular water stays).  It is **not** a Modic change: the
    ground truth of both endplates of its vertebra keeps its Modic type (0 unless a
    :class:`LesionSpec` is there) and records ``hemangioma: true`` in its ``factors``.
    The centre is kept at least ``radius_mm + 2.5`` mm from both endplate surfaces.

    Attributes
    ----------
    vertebra : str
        One of :data:`LESION_VERTEBRAE`.
    radius_mm : float
        Radius, in [2, 10] mm.
    lr_position, ap_position, height_position : float
        Centre in units of the body's half width, half depth and half height (+ = left,
        posterior, superior), in [-0.6, 0.6].
    fat_fraction : float
        Proton-density fat fraction, in [0.3, 0.9].
    """

    vertebra: str
    radius_mm: float = 5.0
    lr_position: float = 0.0
    ap_position: float = 0.0
    height_position: float = 0.0
    fat_fraction: float = 0.75

    def __post_init__(self) -> None:
        if self.vertebra not in LESION_VERTEBRAE:
            raise ValueError(f"HemangiomaSpec.vertebra must be one of {LESION_VERTEBRAE}, "
                             f"got {self.vertebra!r}")
        _check_range("HemangiomaSpec.radius_mm", self.radius_mm, 2.0, 10.0)
        for name in ("lr_position", "ap_position", "height_position"):
            _check_range(f"HemangiomaSpec.{name}", getattr(self, name), -0.6, 0.6)
        _check_range("HemangiomaSpec.fat_fraction", self.fat_fraction, 0.3, 0.9)


@dataclass
class SchmorlNodeSpec:
    """A Schmorl node: disc material herniated through an endplate into the body.

    A dome-shaped notch (``radius_mm`` over the endplate, ``depth_mm`` into the body)
    filled with hydrated nucleus (T1-dark, T2-bright) and rimmed by a thin sclerotic
    cortex.  **Truth:** a Schmorl node is not a Modic change -- its endplate's Modic type
    is 0 unless a :class:`LesionSpec` puts a change there too (then the change's type);
    the endplate's truth ``factors`` record ``schmorl: true``.

    Attributes
    ----------
    vertebra, endplate : str
        As for :class:`LesionSpec` (S1: superior only).
    radius_mm : float
        Radius of the notch over the endplate, in [1.5, 8] mm.
    depth_mm : float
        Depth into the body at its centre, in [1, 8] mm.
    lr_position, ap_position : float
        Centre in units of the half width / half depth, in [-0.5, 0.5].
    """

    vertebra: str
    endplate: str
    radius_mm: float = 3.5
    depth_mm: float = 3.5
    lr_position: float = 0.0
    ap_position: float = 0.0

    def __post_init__(self) -> None:
        if self.vertebra not in LESION_VERTEBRAE:
            raise ValueError(f"SchmorlNodeSpec.vertebra must be one of {LESION_VERTEBRAE}, "
                             f"got {self.vertebra!r}")
        if self.endplate not in ("superior", "inferior"):
            raise ValueError("SchmorlNodeSpec.endplate must be 'superior' or 'inferior', "
                             f"got {self.endplate!r}")
        if self.vertebra == "S1" and self.endplate == "inferior":
            raise ValueError("SchmorlNodeSpec: S1 has no disc below it; use endplate='superior'")
        _check_range("SchmorlNodeSpec.radius_mm", self.radius_mm, 1.5, 8.0)
        _check_range("SchmorlNodeSpec.depth_mm", self.depth_mm, 1.0, 8.0)
        _check_range("SchmorlNodeSpec.lr_position", self.lr_position, -0.5, 0.5)
        _check_range("SchmorlNodeSpec.ap_position", self.ap_position, -0.5, 0.5)


@dataclass
class SeriesSpec:
    """One acquired series.

    Geometry: a stack of ``n_slices`` parallel slices ``slice_thickness`` thick, spaced
    ``slice_thickness + slice_gap`` apart, each ``rows`` x ``cols`` pixels covering
    ``fov_mm = (rows * row spacing, cols * column spacing)`` millimetres.  The stack is
    centred on an anatomical anchor (sagittal / coronal: the spine midline at L3/L4;
    axial: the L4/L5 disc; localizer: L3), moved by ``center_offset`` (LPS mm) and by
    ``slice_offset`` millimetres along the slice normal, and rotated by ``tilt_deg``
    degrees about its row direction and then its column direction.  A ``"3plane"``
    localizer holds ``n_slices`` sagittal, coronal and axial slices in one series.

    Attributes
    ----------
    role : str
        ``"t1"``, ``"t2"``, ``"stir"``, ``"t2fs"`` (spectral fat-saturated T2) or
        ``"localizer"``.
    plane : str
        ``"sagittal"``, ``"axial"``, ``"coronal"`` or ``"3plane"`` (localizer only).
    rows, cols : int
        Matrix.
    fov_mm : tuple of float
        Field of view (along the columns, i.e. rows x row spacing; along the rows).
    n_slices : int
        Number of slices (per plane for a 3-plane localizer).
    slice_thickness, slice_gap : float
        Millimetres.
    slice_offset : float
        Shift of the stack along its normal, millimetres.
    center_offset : tuple of float
        Shift of the stack centre, LPS millimetres.
    tilt_deg : tuple of float
        Rotation about the row direction, then about the column direction, degrees.
    series_number : int, optional
        DICOM SeriesNumber (default: position in the study's list, vendor style).
    description : str, optional
        Overrides the vendor-style SeriesDescription / ProtocolName.
    tr, te, ti, flip_angle : float, optional
        Override the vendor / field-strength defaults (ms, degrees).
    echo_train_length : int, optional
        Override of the default echo-train length.
    fat_sat_efficiency : float
        Fraction of fat signal removed by spectral fat saturation (``"t2fs"`` only).
    stir_efficiency : float, optional
        ``"stir"`` only: fraction of the fat signal the inversion removes, in [0, 1].
        ``None`` = the inversion time nulls fat (up to its rounding to whole ms).  Below 1,
        the fat behaves as if its T1 were longer than the one the (unchanged, header)
        inversion time nulls -- the multi-peak fat spectrum and B0 / B1 inhomogeneity do
        that in real scans: at TI a fraction ``1 - stir_efficiency`` of the fat's relaxed
        magnetisation is still inverted, adding (in magnitude) to the inverted water.
    noise_scale : float, optional
        Noise sigma relative to the study's T1 noise (default by role).
    transfer_syntax : str, optional
        ``"explicit"``, ``"implicit"``, ``"rle"`` or ``"jpeg2000"`` (default: the study's).
    enhanced : bool
        Write the series as one Enhanced MR Image Storage multi-frame object.
    """

    role: str
    plane: str = "sagittal"
    rows: int = 256
    cols: int = 256
    fov_mm: tuple[float, float] = (280.0, 280.0)
    n_slices: int = 13
    slice_thickness: float = 4.0
    slice_gap: float = 0.4
    slice_offset: float = 0.0
    center_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt_deg: tuple[float, float] = (0.0, 0.0)
    series_number: int | None = None
    description: str | None = None
    tr: float | None = None
    te: float | None = None
    ti: float | None = None
    flip_angle: float | None = None
    echo_train_length: int | None = None
    fat_sat_efficiency: float = 0.9
    stir_efficiency: float | None = None
    noise_scale: float | None = None
    transfer_syntax: str | None = None
    enhanced: bool = False

    def __post_init__(self) -> None:
        self.fov_mm = (float(self.fov_mm[0]), float(self.fov_mm[1]))
        self.center_offset = (float(self.center_offset[0]), float(self.center_offset[1]),
                              float(self.center_offset[2]))
        self.tilt_deg = (float(self.tilt_deg[0]), float(self.tilt_deg[1]))
        if self.role not in _ROLES:
            raise ValueError(f"SeriesSpec.role must be one of {_ROLES}, got {self.role!r}")
        if self.plane not in _PLANES:
            raise ValueError(f"SeriesSpec.plane must be one of {_PLANES}, got {self.plane!r}")
        if (self.plane == "3plane") != (self.role == "localizer"):
            raise ValueError("SeriesSpec: plane='3plane' goes with role='localizer' and only it")
        for name in ("rows", "cols", "n_slices"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value > 1024:
                raise ValueError(f"SeriesSpec.{name} must be an int in [1, 1024], got {value!r}")
        if min(self.fov_mm) <= 0:
            raise ValueError(f"SeriesSpec.fov_mm must be positive, got {self.fov_mm!r}")
        _check_range("SeriesSpec.slice_thickness", self.slice_thickness, 0.2, 20.0)
        _check_range("SeriesSpec.slice_gap", self.slice_gap, 0.0, 100.0)
        _check_range("SeriesSpec.fat_sat_efficiency", self.fat_sat_efficiency, 0.0, 1.0)
        if self.stir_efficiency is not None:
            if self.role != "stir":
                raise ValueError("SeriesSpec.stir_efficiency is for role='stir' only "
                                 f"(role {self.role!r}; t2fs uses fat_sat_efficiency)")
            _check_range("SeriesSpec.stir_efficiency", self.stir_efficiency, 0.0, 1.0)
        if self.transfer_syntax is not None and self.transfer_syntax not in _SYNTAXES:
            raise ValueError(f"SeriesSpec.transfer_syntax must be one of {_SYNTAXES}, "
                             f"got {self.transfer_syntax!r}")
        if self.enhanced and self.plane == "3plane":
            raise ValueError("SeriesSpec: a 3-plane localizer cannot be written as enhanced")
        if self.noise_scale is not None and self.noise_scale <= 0:
            raise ValueError(f"SeriesSpec.noise_scale must be > 0, got {self.noise_scale!r}")

    @property
    def fat_suppressed(self) -> bool:
        """Whether the series suppresses fat (STIR or spectral fat saturation)."""
        return self.role in ("stir", "t2fs")

    @property
    def fat_suppression_efficiency(self) -> float | None:
        """Share of fat signal suppressed: STIR 1.0 unless :attr:`stir_efficiency`;
        fat-sat T2 :attr:`fat_sat_efficiency`; ``None`` for other roles."""
        if self.role == "stir":
            return 1.0 if self.stir_efficiency is None else self.stir_efficiency
        if self.role == "t2fs":
            return self.fat_sat_efficiency
        return None


@dataclass
class StudySpec:
    """A whole synthetic study.

    Attributes
    ----------
    seed : int
        Seed of every random choice (anatomy, noise, UIDs, dates); >= 0.
    vendor : str
        ``"siemens"``, ``"ge"`` or ``"philips"``: header conventions and scaling.
    field_strength : float
        1.5 or 3.0 tesla: relaxation times and STIR inversion time.
    snr : float
        Mean noise-free signal of normal L1-L5 marrow on the sagittal T1 (coil sensitivity
        1) divided by the noise sigma of the T1.  Other series use ``sigma *
        noise_scale`` (see :func:`modic.phantom.signal.default_noise_scale`).
    bias : float
        Strength of the coil sensitivity variation in [0, 0.9]; 0 = uniform.
    lesions : list of LesionSpec
        Modic changes; every other endplate is normal (type 0).
    series : list of SeriesSpec, optional
        The series to write; ``None`` = :func:`default_series`.
    transfer_syntax : str
        Default transfer syntax of the series: ``"explicit"`` (Explicit VR Little Endian),
        ``"implicit"``, ``"rle"`` (RLE Lossless) or ``"jpeg2000"`` (JPEG 2000 Lossless).
    file_naming : str
        ``"nested"`` (``SE000003/IM000012``), ``"uid"`` (flat, files named by their
        SOPInstanceUID) or ``"flat"`` (``IM000001`` ... in one folder, shuffled order).
    supersample : tuple of int
        Sub-samples per voxel (through-slice, along columns, along rows) for partial volume.
    marrow_fat_fraction : float, optional
        Mean fat fraction of normal marrow; ``None`` draws one in [0.35, 0.55] from the seed.
    marrow_texture : float
        Amplitude of the smooth fat-fraction texture of marrow (absolute FF units).
    patient_name, patient_id : str, optional
        Default ``PHANTOM^{seed}`` and ``PHANTOM{seed:06d}``.

    Realism options (all off by default; a spec that uses none of them gives the same
    images, files and truth as before they existed):

    coil_gradient : float
        Receive-coil gradient along the spine, as the sensitivity at the L1 body centre
        over that at the S1 body centre, in [0.5, 2.0] (1 = none).  Smooth (log-linear
        between L1 and S1, levelling off beyond), along the L1-S1 axis, multiplying the
        posterior fall-off of ``bias``; the same coil profile on every series.
    marrow_heterogeneity : float
        Patchy, blotchy fat-fraction variation of normal marrow (and, at half strength, of
        Modic changes) in [0, 1]: amplitude ``0.12 * marrow_heterogeneity`` in FF units,
        patches 6-20 mm, on top of ``marrow_texture``.
    marrow_fat_islands : float
        Mean number (Poisson) of focal fat islands per vertebra T12-S1, in [0, 6]: round
        1.5-4 mm islands of fatty marrow (FF 0.85) anywhere in the body, endplates
        included.  T1-bright like a small type 2, but normal: the truth stays 0.
    endplate_irregularity : float
        Amplitude in mm of a smooth undulation (wavelength 6-16 mm) of every endplate
        surface on top of its concavity, in [0, 1.5]; with thick slices it mixes marrow,
        cortical endplate and disc near the endplate (partial volume).
    degenerated_discs : list of str
        Discs (``"L4/L5"``; T12/L1 ... L5/S1) that are desiccated: nucleus at hydration
        0.05 (dark on T2) and 25 % lower.
    hemangiomas : list of HemangiomaSpec
        Vertebral hemangiomas (not Modic changes).
    schmorl_nodes : list of SchmorlNodeSpec
        Schmorl nodes (not Modic changes; see :class:`SchmorlNodeSpec`).
    patient_age : int, optional
        PatientAge in the headers (default drawn from the seed); in [18, 95].  (The marrow
        fat fraction is not derived from it: set ``marrow_fat_fraction``.)
    scoliosis_deg : float
        Lateral (coronal) curvature of the lumbar spine, in [-30, 30] degrees: each body
        T12-S1 is tilted to the side by ``scoliosis_deg * cos(pi * f)`` (``f`` 0 at T12 to
        1 at S1) on top of its own small tilt, so the column bows to one side (a C curve,
        apex at L2-L4) and leaves the midsagittal plane there. 0 = none.
    transitional : str
        Lumbosacral transitional anatomy (opt-in; docs/phantom.md): ``""`` none (default),
        ``"sacralised_L5"`` (L5 fused to the sacrum: the L5/S1 disc is a thin remnant and
        L5 follows the sacral slope, four mobile lumbar vertebrae) or ``"lumbarised_S1"``
        (S1 separated from the sacrum by a real disc and shaped like a lumbar body, six
        mobile lumbar vertebrae). The vertebrae keep their anatomical names (L5 is the
        fifth below T12 whatever its shape) in the ground truth.
    """

    seed: int
    vendor: str = "siemens"
    field_strength: float = 1.5
    snr: float = 25.0
    bias: float = 0.3
    lesions: list[LesionSpec] = field(default_factory=list)
    series: list[SeriesSpec] | None = None
    transfer_syntax: str = "explicit"
    file_naming: str = "nested"
    supersample: tuple[int, int, int] = (3, 3, 3)
    marrow_fat_fraction: float | None = None
    marrow_texture: float = 0.03
    patient_name: str | None = None
    patient_id: str | None = None
    coil_gradient: float = 1.0
    marrow_heterogeneity: float = 0.0
    marrow_fat_islands: float = 0.0
    endplate_irregularity: float = 0.0
    degenerated_discs: list[str] = field(default_factory=list)
    hemangiomas: list[HemangiomaSpec] = field(default_factory=list)
    schmorl_nodes: list[SchmorlNodeSpec] = field(default_factory=list)
    patient_age: int | None = None
    scoliosis_deg: float = 0.0
    transitional: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"StudySpec.seed must be an int >= 0, got {self.seed!r}")
        if self.vendor not in _VENDORS:
            raise ValueError(f"StudySpec.vendor must be one of {_VENDORS}, got {self.vendor!r}")
        if self.field_strength not in (1.5, 3.0):
            raise ValueError(
                f"StudySpec.field_strength must be 1.5 or 3.0, got {self.field_strength!r}")
        self.field_strength = float(self.field_strength)
        if not self.snr > 0:
            raise ValueError(f"StudySpec.snr must be > 0, got {self.snr!r}")
        _check_range("StudySpec.bias", self.bias, 0.0, 0.9)
        if self.transfer_syntax not in _SYNTAXES:
            raise ValueError(f"StudySpec.transfer_syntax must be one of {_SYNTAXES}, "
                             f"got {self.transfer_syntax!r}")
        if self.file_naming not in _NAMINGS:
            raise ValueError(f"StudySpec.file_naming must be one of {_NAMINGS}, "
                             f"got {self.file_naming!r}")
        self.supersample = (int(self.supersample[0]), int(self.supersample[1]),
                            int(self.supersample[2]))
        if min(self.supersample) < 1 or max(self.supersample) > 6:
            raise ValueError(
                f"StudySpec.supersample values must be in [1, 6], got {self.supersample!r}")
        if self.marrow_fat_fraction is not None:
            _check_range("StudySpec.marrow_fat_fraction", self.marrow_fat_fraction, 0.05, 0.8)
        _check_range("StudySpec.marrow_texture", self.marrow_texture, 0.0, 0.2)
        self.lesions = [les if isinstance(les, LesionSpec) else LesionSpec(**les)
                        for les in self.lesions]
        seen: set[tuple[str, str]] = set()
        for les in self.lesions:
            key = (les.vertebra, les.endplate)
            if key in seen:
                raise ValueError(f"StudySpec.lesions: two lesions at {key[0]} {key[1]}")
            seen.add(key)
        if self.series is not None:
            self.series = [s if isinstance(s, SeriesSpec) else SeriesSpec(**_tuplify(s))
                           for s in self.series]
            if not self.series:
                raise ValueError("StudySpec.series must not be empty (None = default series)")
        self.coil_gradient = float(self.coil_gradient)
        _check_range("StudySpec.coil_gradient", self.coil_gradient, 0.5, 2.0)
        _check_range("StudySpec.marrow_heterogeneity", self.marrow_heterogeneity, 0.0, 1.0)
        _check_range("StudySpec.marrow_fat_islands", self.marrow_fat_islands, 0.0, 6.0)
        _check_range("StudySpec.endplate_irregularity", self.endplate_irregularity, 0.0, 1.5)
        self.degenerated_discs = list(self.degenerated_discs)
        for d in self.degenerated_discs:
            if d not in DISCS:
                raise ValueError(f"StudySpec.degenerated_discs: {d!r} is not one of {DISCS}")
        if len(set(self.degenerated_discs)) != len(self.degenerated_discs):
            raise ValueError(f"StudySpec.degenerated_discs repeats a disc: {self.degenerated_discs}")
        self.hemangiomas = [h if isinstance(h, HemangiomaSpec) else HemangiomaSpec(**h)
                            for h in self.hemangiomas]
        self.schmorl_nodes = [n if isinstance(n, SchmorlNodeSpec) else SchmorlNodeSpec(**n)
                              for n in self.schmorl_nodes]
        seen = set()
        for node in self.schmorl_nodes:
            key = (node.vertebra, node.endplate)
            if key in seen:
                raise ValueError(f"StudySpec.schmorl_nodes: two nodes at {key[0]} {key[1]}")
            seen.add(key)
        _check_range("StudySpec.scoliosis_deg", self.scoliosis_deg, -30.0, 30.0)
        if self.transitional not in TRANSITIONAL:
            raise ValueError(f"StudySpec.transitional must be one of {TRANSITIONAL}, "
                             f"got {self.transitional!r}")
        if self.patient_age is not None and (
                not isinstance(self.patient_age, int) or not 18 <= self.patient_age <= 95):
            raise ValueError(f"StudySpec.patient_age must be an int in [18, 95], "
                             f"got {self.patient_age!r}")

    @property
    def uses_realism(self) -> bool:
        """Whether any realism option (study, series or lesion level) differs from its default.

        Only then does the ground truth carry ``factors`` (older truth files stay the same).
        """
        if any(getattr(self, k) != v for k, v in _NEW_FIELDS["StudySpec"].items()):
            return True
        if any(getattr(les, k) != v for les in self.lesions
               for k, v in _NEW_FIELDS["LesionSpec"].items()):
            return True
        return any(getattr(s, k) != v for s in self.resolved_series
                   for k, v in _NEW_FIELDS["SeriesSpec"].items())

    @property
    def resolved_series(self) -> list[SeriesSpec]:
        """The series to write (the defaults when :attr:`series` is ``None``)."""
        return list(self.series) if self.series is not None else default_series()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists).

        Realism options at their default values are left out, so the dict of a spec that
        uses none of them is what it was before they existed.
        """
        out: dict[str, Any] = _listify(dataclasses.asdict(self))
        _drop_defaults(out, "StudySpec")
        for les in out["lesions"]:
            _drop_defaults(les, "LesionSpec")
        for s in out["series"] or []:
            _drop_defaults(s, "SeriesSpec")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["lesions"] = [LesionSpec(**les) for les in d.get("lesions", [])]
        if d.get("series") is not None:
            d["series"] = [SeriesSpec(**_tuplify(s)) for s in d["series"]]
        if "supersample" in d:
            d["supersample"] = tuple(d["supersample"])
        d["hemangiomas"] = [HemangiomaSpec(**h) for h in d.get("hemangiomas", [])]
        d["schmorl_nodes"] = [SchmorlNodeSpec(**n) for n in d.get("schmorl_nodes", [])]
        return cls(**d)


#: Disc names a study can mark as degenerated.
DISCS: tuple[str, ...] = ("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")

#: Fields added for realism, with their defaults (left out of :meth:`StudySpec.to_dict`
#: at these values).
_NEW_FIELDS: dict[str, dict[str, Any]] = {
    "StudySpec": {"coil_gradient": 1.0, "marrow_heterogeneity": 0.0,
                  "marrow_fat_islands": 0.0, "endplate_irregularity": 0.0,
                  "degenerated_discs": [], "hemangiomas": [], "schmorl_nodes": [],
                  "patient_age": None, "scoliosis_deg": 0.0, "transitional": ""},
    "LesionSpec": {"t1_ratio": None, "fat_islands": 0.0},
    "SeriesSpec": {"stir_efficiency": None},
}


def _drop_defaults(d: dict[str, Any], cls_name: str) -> None:
    for k, v in _NEW_FIELDS[cls_name].items():
        if k in d and d[k] == v:
            del d[k]


def _listify(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _listify(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_listify(v) for v in obj]
    return obj


def _tuplify(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _check_range(name: str, value: float, low: float, high: float,
                 low_open: bool = False) -> None:
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def default_series() -> list[SeriesSpec]:
    """The default protocol: sagittal T1, T2 (on another grid), STIR, axial T2, localizer.

    The sagittal T2 differs from the T1 in matrix, field of view and slice positions
    (every slice shifted by 0.4 slice spacing); the STIR shares the T2's slice positions
    with a coarser matrix.
    """
    return [
        SeriesSpec(role="localizer", plane="3plane", rows=192, cols=192, fov_mm=(420.0, 420.0),
                   n_slices=3, slice_thickness=8.0, slice_gap=22.0),
        SeriesSpec(role="t1", plane="sagittal", rows=256, cols=256, fov_mm=(280.0, 280.0),
                   n_slices=13, slice_thickness=4.0, slice_gap=0.4),
        SeriesSpec(role="t2", plane="sagittal", rows=320, cols=320, fov_mm=(300.0, 300.0),
                   n_slices=13, slice_thickness=4.0, slice_gap=0.4, slice_offset=0.4 * 4.4,
                   center_offset=(0.0, 4.0, -6.0)),
        SeriesSpec(role="stir", plane="sagittal", rows=224, cols=224, fov_mm=(300.0, 300.0),
                   n_slices=13, slice_thickness=4.0, slice_gap=0.4, slice_offset=0.4 * 4.4,
                   center_offset=(0.0, 4.0, -6.0)),
        SeriesSpec(role="t2", plane="axial", rows=256, cols=256, fov_mm=(200.0, 200.0),
                   n_slices=12, slice_thickness=4.0, slice_gap=1.0),
    ]


def small_series(*, stir: bool = True, enhanced_role: str | None = None,
                 rle_role: str | None = None) -> list[SeriesSpec]:
    """A small protocol for sample data and fast tests (~1 MB per series or less).

    Parameters
    ----------
    stir : bool
        Include the sagittal STIR.
    enhanced_role : str, optional
        Role (``"t1"``, ``"t2"``, ``"stir"``) of the sagittal series to write as one
        Enhanced MR multi-frame object.
    rle_role : str, optional
        Role of the sagittal series to write RLE Lossless compressed.
    """

    def sag(role: str, **kw: Any) -> SeriesSpec:
        kw.setdefault("enhanced", role == enhanced_role)
        if role == rle_role:
            kw["transfer_syntax"] = "rle"
        return SeriesSpec(role=role, plane="sagittal", **kw)

    series = [
        SeriesSpec(role="localizer", plane="3plane", rows=128, cols=128, fov_mm=(420.0, 420.0),
                   n_slices=3, slice_thickness=8.0, slice_gap=22.0),
        sag("t1", rows=192, cols=192, fov_mm=(280.0, 280.0), n_slices=13,
            slice_thickness=4.0, slice_gap=0.4),
        sag("t2", rows=208, cols=208, fov_mm=(300.0, 300.0), n_slices=13,
            slice_thickness=4.0, slice_gap=0.4, slice_offset=0.4 * 4.4,
            center_offset=(0.0, 4.0, -6.0)),
    ]
    if stir:
        series.append(sag("stir", rows=160, cols=160, fov_mm=(300.0, 300.0), n_slices=13,
                          slice_thickness=4.0, slice_gap=0.4, slice_offset=0.4 * 4.4,
                          center_offset=(0.0, 4.0, -6.0)))
    series.append(SeriesSpec(role="t2", plane="axial", rows=128, cols=128,
                             fov_mm=(200.0, 200.0), n_slices=10, slice_thickness=4.0,
                             slice_gap=1.0))
    return series


def default_study_spec(seed: int, **overrides: Any) -> StudySpec:
    """A study with the default protocol and no lesions, updated with ``overrides``.

    Parameters
    ----------
    seed : int
        Seed of the study.
    **overrides
        Any :class:`StudySpec` field (``vendor=``, ``field_strength=``, ``lesions=``, ...).

    Examples
    --------
    >>> spec = default_study_spec(7, vendor="ge", field_strength=3.0,
    ...                           lesions=[LesionSpec("L4", "inferior", "1")])
    >>> spec.lesions[0].udby_grade
    'B'
    """
    return StudySpec(seed=seed, **overrides)
