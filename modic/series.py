"""What a folder scan finds: studies, series (stacks of parallel slices) and frames.

These objects hold header information only; pixel data is read by
:func:`modic.volume.load_volume` for the series that are asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .geometry import SliceGeometry
from .sequence import Plane, Role, SequenceInfo, SeriesIdentity

__all__ = [
    "PixelEncoding",
    "Frame",
    "Series",
    "Study",
    "SkippedFile",
    "ScanResult",
    "pseudonym",
]


def pseudonym(uid: str, length: int = 10) -> str:
    """A short, stable, non-identifying key for a UID (hex of its SHA-256).

    Outputs use it instead of StudyInstanceUID or patient identifiers, so that tables
    can be shared; the same study always gets the same key.

    Examples
    --------
    >>> pseudonym("1.2.3")
    'c47f5b18b8'
    """
    return hashlib.sha256(uid.encode("ascii", "replace")).hexdigest()[:length]


@dataclass(frozen=True)
class PixelEncoding:
    """How the pixel data of one file is stored, and where.

    Attributes
    ----------
    transfer_syntax : str
        Transfer Syntax UID of the file.
    offset : int or None
        Byte offset of the Pixel Data *value* in the file, when it could be located
        (not for deflated files).
    length : int
        Length of the Pixel Data value in bytes (0xFFFFFFFF when encapsulated).
    file_size : int
        Size of the file in bytes.
    bits_allocated, bits_stored, pixel_representation, samples_per_pixel : int
        Image Pixel module attributes.
    photometric_interpretation : str
    number_of_frames : int
    """

    transfer_syntax: str
    offset: int | None
    length: int
    file_size: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    samples_per_pixel: int
    photometric_interpretation: str
    number_of_frames: int


@dataclass(frozen=True)
class Frame:
    """One image plane: a single-frame file, or one frame of a multi-frame file.

    Attributes
    ----------
    path : Path
    frame_index : int
        0-based index of the frame within its file (0 for single-frame files).
    sop_instance_uid : str
    instance_number : int or None
    position : (3,) tuple of float
        ImagePositionPatient, LPS mm (centre of the first transmitted pixel).
    orientation : (6,) tuple of float
        ImageOrientationPatient.
    pixel_spacing : (2,) tuple of float
        ``(row spacing, column spacing)`` in mm.
    rows, columns : int
    rescale_slope, rescale_intercept : float
        Stored value -> real value: ``value = stored * slope + intercept``.
    slice_thickness : float or None
    echo_time : float or None
        ms; frames of one series with different echo times form different stacks.
    encoding : PixelEncoding
    """

    path: Path
    frame_index: int
    sop_instance_uid: str
    instance_number: int | None
    position: tuple[float, ...]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, ...]
    rows: int
    columns: int
    rescale_slope: float
    rescale_intercept: float
    slice_thickness: float | None
    echo_time: float | None
    encoding: PixelEncoding

    @property
    def name(self) -> str:
        """The file name, with ``[frame N]`` for frames of a multi-frame file."""
        if self.encoding.number_of_frames > 1:
            return f"{self.path.name} [frame {self.frame_index + 1}]"
        return self.path.name


@dataclass
class Series:
    """A stack of parallel slices of one DICOM series, ready to be loaded.

    A DICOM series that mixes orientations, matrix sizes or echo times (a 3-plane
    localizer, a dual-echo acquisition) is split into several stacks, as dcm2niix does;
    each becomes a :class:`Series` with ``stack`` 1, 2, ...; otherwise ``stack`` is 0.

    Attributes
    ----------
    study_uid, series_uid : str
    stack : int
    number : int or None
        SeriesNumber.
    description : str
        SeriesDescription (or ProtocolName when that is missing).
    modality, manufacturer, frame_of_reference_uid : str
    sop_class_uid : str
    frames : list of Frame
        Ordered along the slice normal, duplicates removed.
    geometry : SliceGeometry or None
        None when the frames are inconsistent (see ``problems``).
    sequence : SequenceInfo
        The header evidence used to identify the series.
    identity : SeriesIdentity
        Role, plane, fat suppression and the reasons for them.
    warnings : list of str
        Things a reader should know: gaps, uneven spacing, dropped duplicates.
    problems : list of str
        Why the series cannot be loaded; empty when it can.
    image_type : tuple of str
    """

    study_uid: str
    series_uid: str
    stack: int
    number: int | None
    description: str
    modality: str
    manufacturer: str
    frame_of_reference_uid: str
    sop_class_uid: str
    frames: list[Frame]
    geometry: SliceGeometry | None
    sequence: SequenceInfo
    identity: SeriesIdentity
    image_type: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Short name used in tables and on the command line: ``"7"`` or ``"7.2"``."""
        base = str(self.number) if self.number is not None else pseudonym(self.series_uid, 6)
        return f"{base}.{self.stack}" if self.stack else base

    @property
    def role(self) -> Role:
        return self.identity.role

    @property
    def plane(self) -> Plane:
        return self.identity.plane

    @property
    def usable(self) -> bool:
        """True when the series has a consistent geometry and can be loaded."""
        return not self.problems and self.geometry is not None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_slices, rows, columns)``."""
        f = self.frames[0]
        return (len(self.frames), f.rows, f.columns)

    @property
    def is_derived(self) -> bool:
        """ImageType says DERIVED (reformats, subtractions, maps)."""
        return bool(self.image_type) and self.image_type[0] == "DERIVED"

    def label(self) -> str:
        """``"7 t1_tse_sag"``: key and description."""
        return f"{self.key} {self.description}".strip()

    def __repr__(self) -> str:
        n, r, c = self.shape
        return f"<Series {self.key} {self.description!r} {self.role.value} {self.plane.value} {n}x{r}x{c}>"


@dataclass
class Study:
    """The series of one study (one StudyInstanceUID) found by a scan.

    Patient identifiers are kept (``patient_name``, ``patient_id``) for users who ask
    for them, but modic's outputs use :attr:`key` unless told otherwise.
    """

    study_uid: str
    series: list[Series]
    description: str = ""
    date: str = ""
    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    folders: list[Path] = field(default_factory=list)
    #: Files of this study (by their StudyInstanceUID) that the scan could not use.
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Pseudonymous study key (see :func:`pseudonym`)."""
        return pseudonym(self.study_uid)

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    def __repr__(self) -> str:
        return f"<Study {self.key} {len(self.series)} series>"


@dataclass(frozen=True)
class SkippedFile:
    """A file the scan passed over, and why."""

    path: Path
    reason: str
    #: StudyInstanceUID from the file's header, when it was read that far; else "".
    study_uid: str = ""


@dataclass
class ScanResult:
    """Everything a folder scan found.

    Attributes
    ----------
    root : Path
    studies : list of Study
    skipped : list of SkippedFile
        Files that are not DICOM images or cannot be used, with the reason.
    n_files : int
        Files looked at.
    """

    root: Path
    studies: list[Study]
    skipped: list[SkippedFile]
    n_files: int

    def all_series(self) -> list[Series]:
        """Every series of every study, in scan order."""
        return [s for st in self.studies for s in st.series]

    def skipped_summary(self) -> dict[str, int]:
        """How many files were skipped for each reason category (text before ':')."""
        counts: dict[str, int] = {}
        for s in self.skipped:
            cat = s.reason.split(":")[0]
            counts[cat] = counts.get(cat, 0) + 1
        return counts

    def __repr__(self) -> str:
        return (
            f"<ScanResult {self.root}: {len(self.studies)} studies, "
            f"{len(self.all_series())} series, {len(self.skipped)} files skipped>"
        )
