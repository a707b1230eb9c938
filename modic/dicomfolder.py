"""Scan a folder of DICOM files into studies and series, reading headers only.

The scan walks the folder recursively, whatever the file names (most archives have
no ``.dcm`` extension); it skips non-DICOM files and DICOM objects that are not images
(DICOMDIR, structured reports...) and says why; it groups images by StudyInstanceUID
and SeriesInstanceUID, splits a series that mixes orientations, matrix sizes or echo
times into stacks, orders the slices of each stack along the slice normal, and reports
gaps, uneven spacing and duplicate positions.

Pixel data is not read here, but its location in each file is noted so that
:mod:`modic.volume` can read it directly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from ._io import NotARegularFileError, open_regular_file
from .errors import DicomFileError
from .geometry import ORIENTATION_TOLERANCE, SliceGeometry, slice_normal
from .sequence import Role, SequenceInfo, SeriesIdentity, identify
from .series import Frame, PixelEncoding, ScanResult, Series, SkippedFile, Study

__all__ = ["scan", "read_frames", "read_header", "FileHeader"]

logger = logging.getLogger(__name__)

_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_DATA = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF

#: Largest distance of an ImagePositionPatient from the origin (mm): a scanner bore is ~1 m.
MAX_POSITION_MM = 1.0e5
#: Largest PixelSpacing (mm): MR pixels are 0.2-4 mm.
MAX_PIXEL_SPACING_MM = 100.0
#: Largest Rows or Columns read (MR images have at most ~1024; DICOM allows 65535).
MAX_IMAGE_SIDE = 8192
#: Largest decoded pixel data of one file (bytes): an Enhanced MR series of 200 frames of
#: 1024 x 1024 at 16 bits is 400 MiB.
MAX_PIXEL_BYTES = 2 * 2**30
#: Largest ratio of declared decoded size to file size for compressed pixel data. Lossless
#: JPEG / JPEG-LS / JPEG 2000 / RLE reach 2-4:1 on MR and lossy JPEG ~10-40:1; 1000:1 only
#: a wrong header (or an image of nothing) reaches.
MAX_COMPRESSION_RATIO = 1000
#: More duplicate positions than this in one series are reported in one summary line.
MAX_DUPLICATE_WARNINGS = 3
#: Two slices closer than this along the normal are at the same position (mm).
DUPLICATE_TOLERANCE_MM = 0.01
#: A step larger than this multiple of the median spacing is a gap (missing slices).
GAP_FACTOR = 1.5
#: Steps differing from the median by more than this fraction are reported as uneven.
UNEVEN_FRACTION = 0.02


class _Skip(Exception):
    """A file is not used; the message says why (internal to the scan).

    ``study_uid`` is set when the header was read far enough to say which study the file
    belongs to.
    """

    study_uid: str = ""


def scan(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    roles: Mapping[str, Role | str] | None = None,
    index: str | os.PathLike[str] | None = None,
) -> ScanResult:
    """Find the DICOM studies and series under a folder (or in a list of files).

    Parameters
    ----------
    path : path-like or iterable of path-like
        A folder, scanned recursively (hidden folders included, symlinks followed
        once), a single file, or a list of files.
    roles : mapping of str to Role or str, optional
        Override the detected role of series, keyed by series number (``"5"``), stack
        key (``"5.2"``), SeriesInstanceUID or SeriesDescription (case-insensitive),
        e.g. ``{"5": "T2"}``. The reasons of an overridden series say so.
    index : path-like, optional
        A header index file (:mod:`modic.index`, SQLite; created if absent, never inside
        an input folder): headers of files unchanged since they were indexed (same size,
        mtime and inode) are taken from it instead of parsed; the others are parsed and
        indexed. The result is the same with and without.

    Returns
    -------
    ScanResult
        Studies with their series (stacks), and the files skipped with the reason.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    >>> import modic
    >>> result = modic.scan(modic.data.sample_study_path("siemens_15T_type1_type2"))
    >>> [s.role.value for s in result.studies[0].series]
    ['localizer', 'localizer', 'localizer', 'T1', 'T2', 'STIR', 'T2']
    """
    root, files = _list_files(path)
    idx = None
    if index is not None:
        from .index import HeaderIndex

        idx = HeaderIndex(index)
        headers = idx.headers(files, read_header)
    else:
        headers = [read_header(f) for f in files]
    try:
        return _scan_result(root, files, headers, roles)
    finally:
        if idx is not None:
            idx.close()  # writes the records read, with the sequence evidence now known


def _scan_result(
    root: Path,
    files: list[Path],
    headers: list[FileHeader | SkippedFile],
    roles: Mapping[str, Role | str] | None,
) -> ScanResult:
    skipped: list[SkippedFile] = []
    # study uid -> series uid -> list of (frame, header of its file)
    groups: dict[str, dict[str, list[tuple[Frame, FileHeader]]]] = defaultdict(lambda: defaultdict(list))
    study_headers: dict[str, FileHeader] = {}
    study_folders: dict[str, set[Path]] = defaultdict(set)
    for f, hd in zip(files, headers, strict=True):
        if isinstance(hd, SkippedFile):
            skipped.append(hd)
            logger.debug("skipped %s: %s", f, hd.reason)
            continue
        st_uid = hd.study_uid
        study_headers.setdefault(st_uid, hd)
        study_folders[st_uid].add(f.parent)
        for fr in hd.frames:
            groups[st_uid][hd.series_uid].append((fr, hd))

    studies: list[Study] = []
    for st_uid, series_groups in groups.items():
        series: list[Series] = []
        for se_uid, items in series_groups.items():
            series.extend(_build_stacks(st_uid, se_uid, items))
        series.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.series_uid, s.stack))
        hdr = study_headers[st_uid]
        studies.append(
            Study(
                study_uid=st_uid,
                series=series,
                description=hdr.study_description,
                date=hdr.study_date,
                patient_name=hdr.patient_name,
                patient_id=hdr.patient_id,
                accession_number=hdr.accession_number,
                folders=sorted(study_folders[st_uid]),
                skipped=[f for f in skipped if f.study_uid == st_uid],
            )
        )
    studies.sort(key=lambda s: (s.date, s.study_uid))
    result = ScanResult(root=root, studies=studies, skipped=skipped, n_files=len(files))
    if roles:
        _apply_role_overrides(result, roles)
    logger.info(
        "scanned %d files under %s: %d studies, %d series, %d files skipped",
        len(files),
        root,
        len(studies),
        len(result.all_series()),
        len(skipped),
    )
    return result


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def _list_files(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> tuple[Path, list[Path]]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        if not p.is_dir():  # a file, or a special file that read_header skips with its kind
            return p.parent, [p]
        files: list[Path] = []
        seen: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(p, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen:  # symlink loop
                dirnames[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            dirnames.sort()
            files.extend(Path(dirpath) / name for name in sorted(filenames))
        return p, files
    paths = [Path(x) for x in path]
    for q in paths:
        if not q.is_file():
            raise FileNotFoundError(f"{q}: no such file")
    root = Path(os.path.commonpath([str(q.parent) for q in paths])) if paths else Path(".")
    return root, paths


def _looks_like_dicom(head: bytes) -> bool:
    """DICM magic at 128, or (for files without preamble) a plausible first tag."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) >= 8:
        for order in "<>":  # little- or big-endian data set without file meta
            group, elem = struct.unpack(order + "HH", head[:4])
            if group in (0x0002, 0x0008) and elem < 0x0100:
                return True
    return False


def read_frames(path: str | os.PathLike[str]) -> tuple[Dataset, list[Frame]]:
    """Read the header of one file and describe its image frames.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    header : pydicom.Dataset
        The header, read up to (not including) Pixel Data.
    frames : list of Frame
        One per image frame (several for an Enhanced MR multi-frame object).

    Raises
    ------
    DicomFileError
        If the file is not a usable DICOM image; the message says why.
    """
    try:
        ds, frames = _read_frames(Path(path))
    except _Skip as exc:
        raise DicomFileError(str(path), str(exc)) from None
    _convert_elements(ds)  # the sequence evidence too (the scan converts it when it is used)
    return ds, frames


@dataclass(frozen=True)
class FileHeader:
    """What the scan keeps of one file's header: its frames and the values that describe
    its study and series, converted as the scan uses them (plain data, so that
    :mod:`modic.index` can store it).

    Attributes
    ----------
    study_uid, series_uid : str
    frames : tuple of Frame
    study_description, study_date, patient_name, patient_id, accession_number : str
    series_number : int or None
    series_description : str
        SeriesDescription, else ProtocolName, stripped.
    modality, manufacturer, frame_of_reference_uid, sop_class_uid : str
    image_type : tuple of str
        Upper case.
    spacing_between_slices : float or None
        The nominal SpacingBetweenSlices (mm).
    known_sequence : SequenceInfo or None
        ``SequenceInfo.from_dataset`` of the header once :attr:`sequence` was asked for
        (only the first file of each stack is), else None.
    dataset : pydicom.Dataset or None
        The header, until :attr:`sequence` is known (not stored by :mod:`modic.index`).
    """

    study_uid: str
    series_uid: str
    frames: tuple[Frame, ...]
    study_description: str
    study_date: str
    patient_name: str
    patient_id: str
    accession_number: str
    series_number: int | None
    series_description: str
    modality: str
    manufacturer: str
    frame_of_reference_uid: str
    sop_class_uid: str
    image_type: tuple[str, ...]
    spacing_between_slices: float | None
    known_sequence: SequenceInfo | None = field(default=None, compare=False, repr=False)
    dataset: Dataset | None = field(default=None, compare=False, repr=False)

    @property
    def sequence(self) -> SequenceInfo:
        """``SequenceInfo.from_dataset`` of the header, worked out on first use."""
        info = self.known_sequence
        if info is None:
            if self.dataset is not None:
                with warnings.catch_warnings(record=True) as caught:  # as when the header was read
                    warnings.simplefilter("always")
                    info = SequenceInfo.from_dataset(self.dataset)
                for w in caught:
                    logger.debug("%s: %s", self.frames[0].path, w.message)
            else:  # read by the fast parser, or a record from the index: pydicom reads it
                path = self.frames[0].path
                again = read_header(path, fast=False)
                if isinstance(again, FileHeader):
                    info = again.sequence
                else:
                    logger.warning("%s changed while it was scanned: %s", path, again.reason)
                    info = SequenceInfo()
            object.__setattr__(self, "known_sequence", info)
            object.__setattr__(self, "dataset", None)
        return info

    @classmethod
    def from_dataset(cls, ds: Dataset, frames: Iterable[Frame]) -> FileHeader:
        """The record of header ``ds`` (as :func:`read_frames` returns it) and its frames."""
        number = ds.get("SeriesNumber")
        try:
            number_i = int(number) if number not in (None, "") else None
        except (TypeError, ValueError):
            number_i = None
        nominal = ds.get("SpacingBetweenSlices")
        try:
            nominal_f = float(nominal) if nominal not in (None, "") else None
        except (TypeError, ValueError):
            nominal_f = None
        description = str(ds.get("SeriesDescription", "") or "") or str(ds.get("ProtocolName", "") or "")
        return cls(
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID),
            frames=tuple(frames),
            study_description=str(ds.get("StudyDescription", "") or ""),
            study_date=str(ds.get("StudyDate", "") or ""),
            patient_name=str(ds.get("PatientName", "") or ""),
            patient_id=str(ds.get("PatientID", "") or ""),
            accession_number=str(ds.get("AccessionNumber", "") or ""),
            series_number=number_i,
            series_description=description.strip(),
            modality=str(ds.get("Modality", "") or ""),
            manufacturer=str(ds.get("Manufacturer", "") or ""),
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
            sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
            image_type=tuple(str(v).upper() for v in (ds.get("ImageType") or ())),
            spacing_between_slices=nominal_f,
            dataset=ds if isinstance(ds, Dataset) else None,  # else sequence evidence from pydicom
        )


def read_header(path: str | os.PathLike[str], *, fast: bool = True) -> FileHeader | SkippedFile:
    """The scan's record of one file, or why the file is skipped (never raises for a bad file).

    Parameters
    ----------
    path : path-like
    fast : bool
        Parse the common case with :mod:`modic._fastheader` (the same values); False
        parses with pydicom.

    Returns
    -------
    FileHeader or SkippedFile
    """
    p = Path(path)
    try:
        ds, frames = _read_frames(p, fast=fast)
        return FileHeader.from_dataset(ds, frames)
    except _Skip as exc:
        return SkippedFile(p, str(exc), exc.study_uid)


def _read_frames(path: Path, fast: bool = False) -> tuple[Any, list[Frame]]:
    """Read one file's header; pydicom's warnings about odd values are logged, not raised.

    With ``fast``, the header is a :class:`modic._fastheader.FastHeader` when the file is
    the common case that parser reads (else a pydicom Dataset, as without).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read_frames_unguarded(path, fast)
        finally:
            for w in caught:
                logger.debug("%s: %s", path, w.message)


#: The header elements the scan reads (here, in :mod:`modic.sequence`
#: ``SequenceInfo.from_dataset`` and in :class:`modic.Study`); the header of each file is
#: parsed for these only (by :mod:`modic._fastheader` for the common case, else pydicom's
#: ``specific_tags``): about 0.3x the cost of parsing and converting every element
#: (``benchmarks/bench_headers.py``).
#: Reading another element from the scan's header? Add it here: ``tests/test_header_scan.py``
#: compares the scan of every test file with a full parse, element by element.
SCAN_KEYWORDS: tuple[str, ...] = (
    # identity of the study, series and instance
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "Modality", "Manufacturer", "InstanceNumber", "SeriesNumber",
    "SeriesDescription", "ProtocolName", "StudyDescription", "StudyDate", "PatientName",
    "PatientID", "AccessionNumber", "ImageType", "DirectoryRecordSequence",
    # pixel encoding
    "Rows", "Columns", "NumberOfFrames", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "SamplesPerPixel", "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept",
    # geometry
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "SpacingBetweenSlices",
    # Enhanced MR: every frame's values are in the functional groups
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
    # sequence evidence (modic.sequence.SequenceInfo.from_dataset)
    "RepetitionTime", "EchoTime", "EffectiveEchoTime", "InversionTime", "InversionTimes",
    "FlipAngle", "MagneticFieldStrength", "ScanningSequence", "SequenceVariant", "ScanOptions",
    "FrameType", "SequenceName", "PulseSequenceName", "AcquisitionContrast",
    "SpectrallySelectedSuppression", "InversionRecovery", "DiffusionBValue",
    "DiffusionDirectionality", "EchoPlanarPulseSequence", "ComplexImageComponent",
)  # fmt: skip
#: Tags parsed by the scan: :data:`SCAN_KEYWORDS`, Philips' private b-value (2001,1003)
#: and its private creator (2001,0010). None parses every element (the reference).
_SCAN_TAGS: list[int] | None = sorted(
    {int(pydicom.datadict.tag_for_keyword(k) or 0) for k in SCAN_KEYWORDS} | {0x20011003, 0x20010010}
)


#: Bytes read for the fast parser (:mod:`modic._fastheader`): headers are a few KiB; a file
#: whose Pixel Data starts later is read by pydicom.
FAST_READ_BYTES = 256 * 1024
#: What the fast parser converts: the sequence evidence is read by pydicom, for the first
#: file of each stack only (:attr:`FileHeader.sequence`).
_FAST_KEYWORDS: tuple[str, ...] = ()


#: Archives users put in an export folder, by their magic bytes: named, so that the user
#: knows to unpack them (modic reads no archive).
_ARCHIVES = (
    (b"PK\x03\x04", "a ZIP archive: unzip it first (modic reads no archive)"),
    (b"\x1f\x8b", "a gzip-compressed file: decompress it first (modic reads no archive)"),
    (b"BZh", "a bzip2-compressed file: decompress it first (modic reads no archive)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file: decompress it first (modic reads no archive)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive: unpack it first (modic reads no archive)"),
)


def _not_dicom_reason(head: bytes) -> str:
    """Why a file that is not DICOM is skipped; archives are named (``head``: its first bytes)."""
    for magic, what in _ARCHIVES:
        if head.startswith(magic):
            return f"not DICOM: {what}"
    return "not DICOM: no DICM marker and no DICOM header at the start"


def _read_frames_unguarded(path: Path, fast: bool = False) -> tuple[Any, list[Frame]]:
    try:
        fp, size = open_regular_file(path)
    except NotARegularFileError as exc:
        raise _Skip(f"{exc.kind}: special files are never opened for reading") from None
    except OSError as exc:
        raise _Skip(f"cannot read file: {exc.strerror or exc}") from None
    try:
        with fp:
            head = fp.read(132)
            if size == 0:
                raise _Skip("empty file")
            if not _looks_like_dicom(head):
                raise _Skip(_not_dicom_reason(head))
            fp.seek(0)
            parsed = _fast_parse(fp, size) if fast and _SCAN_TAGS is not None else None
            if parsed is None:
                fp.seek(0)
                parsed = _pydicom_parse(fp, head)
    except OSError as exc:
        raise _Skip(f"cannot read file: {exc.strerror or exc}") from None
    ds, pixel_tell, element_header = parsed
    return _check_header(path, ds, size, pixel_tell, element_header)


def _fast_parse(fp: Any, size: int) -> tuple[Any, int, bytes] | None:
    """(header, Pixel Data offset, its first 12 bytes) from :mod:`modic._fastheader`, or None."""
    from . import _fastheader

    global _FAST_KEYWORDS
    if not _FAST_KEYWORDS:
        lazy = {pydicom.datadict.keyword_for_tag(t) for t in _SEQUENCE_ONLY_TAGS}
        _FAST_KEYWORDS = tuple(k for k in SCAN_KEYWORDS if k not in lazy)
    buf = fp.read(min(size, FAST_READ_BYTES))
    try:
        ds, pixel_tell = _fastheader.parse(buf, _FAST_KEYWORDS)
    except _fastheader.Unusual as exc:
        logger.debug("%s: read by pydicom (%s)", getattr(fp, "name", "?"), exc)
        return None
    return ds, pixel_tell, buf[pixel_tell : pixel_tell + 12]


def _pydicom_parse(fp: Any, head: bytes) -> tuple[Dataset, int, bytes]:
    """(header, Pixel Data offset, its first 12 bytes) from pydicom (``fp`` at the start)."""
    try:
        ds = pydicom.dcmread(
            fp, stop_before_pixels=True, force=head[128:132] != b"DICM", specific_tags=_SCAN_TAGS
        )
    except InvalidDicomError as exc:
        raise _Skip(f"not DICOM: {exc}") from None
    except Exception as exc:  # pydicom raises many kinds on corrupt headers
        raise _Skip(f"unreadable DICOM header: {type(exc).__name__}: {exc}") from None
    pixel_tell = fp.tell()
    _convert_elements(ds, lazy=_SEQUENCE_ONLY_TAGS if _SCAN_TAGS is not None else frozenset())
    element_header = fp.read(12)
    return ds, pixel_tell, element_header


def _check_header(
    path: Path, ds: Any, size: int, pixel_tell: int, element_header: bytes
) -> tuple[Any, list[Frame]]:
    """The frames of a parsed header, or :class:`_Skip` naming what is wrong."""
    sop_class = str(ds.get("SOPClassUID", "") or "")
    meta = getattr(ds, "file_meta", None)
    if not sop_class and meta is not None:
        sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "")
    if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise _Skip("DICOMDIR: a directory index; the files it lists are scanned directly")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if not ds.get(keyword):
            raise _Skip(f"missing {keyword}: cannot tell which study or series the file belongs to")
    try:
        if "Rows" not in ds or "Columns" not in ds:
            modality = ds.get("Modality", "?")
            sop = sop_class or "?"
            raise _Skip(f"not an image: {modality} object without Rows/Columns (SOP class {sop})")
        encoding = _pixel_encoding(path, ds, size, pixel_tell, element_header)
        frames = _frames_of(path, ds, encoding)
    except _Skip as exc:
        exc.study_uid = str(ds.StudyInstanceUID)
        raise
    return ds, frames


MAX_CONVERT_DEPTH = 8


#: Top-level elements only ``SequenceInfo.from_dataset`` reads: left unconverted by the scan
#: (only the first file of each stack is asked for them, and ``modic.sequence`` reads each
#: through a guard that takes an unreadable value for an absent one, as a dropped element).
_SEQUENCE_ONLY_TAGS: frozenset[int] = frozenset(
    int(pydicom.datadict.tag_for_keyword(k) or 0)
    for k in (
        "RepetitionTime", "EffectiveEchoTime", "InversionTime", "InversionTimes", "FlipAngle",
        "MagneticFieldStrength", "ScanningSequence", "SequenceVariant", "ScanOptions", "FrameType",
        "SequenceName", "PulseSequenceName", "AcquisitionContrast", "SpectrallySelectedSuppression",
        "InversionRecovery", "DiffusionBValue", "DiffusionDirectionality", "EchoPlanarPulseSequence",
        "ComplexImageComponent",
    )
)  # fmt: skip


def _convert_elements(ds: Dataset, depth: int = 0, lazy: frozenset[int] = frozenset()) -> None:
    """Convert every public element of ``ds`` (and of its sequence items) now, and drop
    those whose value cannot be converted.

    pydicom converts raw element values lazily, on first access, so a corrupt value would
    otherwise raise wherever it is first read (while grouping series, say) instead of here.
    A dropped element reads as absent: the checks below then name what is missing.
    Private elements stay raw (modic reads one, Philips' b-value, with its own guard), and
    so do the top-level tags in ``lazy`` (see :data:`_SEQUENCE_ONLY_TAGS`).
    """
    for tag in list(ds.keys()):
        if tag.is_private or (depth == 0 and tag in lazy):
            continue
        try:
            elem = ds[tag]
            if elem.VR == "SQ" and depth < MAX_CONVERT_DEPTH:
                for item in elem.value:
                    _convert_elements(item, depth + 1)
        except Exception as exc:  # pydicom raises many kinds on corrupt values
            logger.debug("dropping unreadable element %s: %s", tag, exc)
            with contextlib.suppress(Exception):
                del ds[tag]


def _pixel_encoding(path: Path, ds: Dataset, size: int, tell: int, header: bytes) -> PixelEncoding:
    """Locate the Pixel Data value and check that the file holds all of it."""
    meta = getattr(ds, "file_meta", None)
    ts = (
        UID(str(meta.get("TransferSyntaxUID", "")))
        if meta is not None and "TransferSyntaxUID" in meta
        else None
    )
    if ts is None:
        implicit, little = ds.original_encoding[0], ds.original_encoding[1]
        ts = UID("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    elif not ts.is_transfer_syntax:
        raise _Skip(f"unknown TransferSyntaxUID {str(ts)!r}: cannot tell how the pixel data is encoded")
    else:
        implicit, little = ts.is_implicit_VR, ts.is_little_endian
    rows, cols = _dimension(ds, "Rows"), _dimension(ds, "Columns")
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError, OverflowError):
        raise _Skip(f"invalid NumberOfFrames {ds.get('NumberOfFrames')!r}") from None
    if n_frames < 1:
        raise _Skip(f"invalid NumberOfFrames {n_frames}")
    bits_alloc = int(ds.get("BitsAllocated", 16) or 16)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp != 1:
        raise _Skip(f"not a greyscale MR image: SamplesPerPixel is {spp}")
    if bits_alloc not in (8, 16, 32):
        raise _Skip(f"unsupported BitsAllocated {bits_alloc}")

    decoded = rows * cols * n_frames * (bits_alloc // 8)
    if decoded > MAX_PIXEL_BYTES:
        raise _Skip(
            f"declares {n_frames} frame(s) of {rows}x{cols} pixels at {bits_alloc} bits "
            f"({decoded / 2**30:.1f} GiB), more than the {MAX_PIXEL_BYTES / 2**30:g} GiB modic reads "
            "from one file"
        )
    if ts.is_compressed and decoded > MAX_COMPRESSION_RATIO * size:
        raise _Skip(
            f"declares {decoded / 2**20:.0f} MiB of pixels in a {size / 2**20:.2f} MiB file: more than "
            f"{MAX_COMPRESSION_RATIO}:1 compression, which no MR image reaches (Rows/Columns or "
            "NumberOfFrames are wrong)"
        )
    offset: int | None = None
    length = 0
    if ts.is_deflated:
        offset = None
        length = -1
    else:
        if len(header) < 8:
            raise _Skip("no pixel data: the file ends before the Pixel Data element (truncated?)")
        fmt = "<" if little else ">"
        group, elem = struct.unpack(fmt + "HH", header[:4])
        tag = (group << 16) | elem
        if tag != _PIXEL_DATA:
            if tag in (0x7FE00008, 0x7FE00009):
                raise _Skip("floating-point pixel data is not supported")
            raise _Skip("no pixel data: the file has no Pixel Data element")
        if implicit:
            (length,) = struct.unpack(fmt + "I", header[4:8])
            offset = tell + 8
        else:
            if len(header) < 12:
                raise _Skip("truncated file: ends inside the Pixel Data element header")
            (length,) = struct.unpack(fmt + "I", header[8:12])
            offset = tell + 12
        expected = rows * cols * n_frames * (bits_alloc // 8)
        if not ts.is_encapsulated:
            if length != _UNDEFINED_LENGTH and length < expected:
                raise _Skip(
                    f"inconsistent pixel data: {length} bytes for {n_frames} frame(s) of "
                    f"{rows}x{cols} at {bits_alloc} bits ({expected} bytes expected)"
                )
            if size - offset < expected:
                raise _Skip(f"truncated file: pixel data has {max(size - offset, 0)} of {expected} bytes")
        elif length != _UNDEFINED_LENGTH and size - offset < length:
            raise _Skip(f"truncated file: pixel data has {max(size - offset, 0)} of {length} bytes")
        elif size - offset < 16:
            raise _Skip("truncated file: encapsulated pixel data is empty")
    return PixelEncoding(
        transfer_syntax=str(ts),
        offset=offset,
        length=int(length),
        file_size=size,
        bits_allocated=bits_alloc,
        bits_stored=int(ds.get("BitsStored", bits_alloc) or bits_alloc),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        samples_per_pixel=spp,
        photometric_interpretation=str(ds.get("PhotometricInterpretation", "MONOCHROME2")),
        number_of_frames=n_frames,
    )


def _dimension(ds: Dataset, keyword: str) -> int:
    """Rows or Columns as a positive int no larger than :data:`MAX_IMAGE_SIDE`, else skip the file."""
    value = ds.get(keyword)
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        raise _Skip(f"{keyword} is empty or not a number ({value!r})") from None
    if n < 1:
        raise _Skip(f"{keyword} is {n}: an image needs at least one pixel")
    if n > MAX_IMAGE_SIDE:
        raise _Skip(
            f"{keyword} is {n}, more than the {MAX_IMAGE_SIDE} pixels modic reads (MR images have ~1024)"
        )
    return n


def _floats(value: Any, n: int, what: str) -> tuple[float, ...]:
    if value is None or value == "":
        raise _Skip(f"missing {what}")
    try:
        out = tuple(float(v) for v in (value if not isinstance(value, (int, float)) else [value]))
    except (TypeError, ValueError):
        raise _Skip(f"invalid {what}: {value!r}") from None
    if len(out) != n or not all(np.isfinite(out)):
        raise _Skip(f"invalid {what}: expected {n} numbers, got {value!r}")
    return out


def _position(value: Any, what: str) -> tuple[float, ...]:
    """ImagePositionPatient: 3 finite numbers within :data:`MAX_POSITION_MM` of the origin."""
    out = _floats(value, 3, what)
    if max(abs(v) for v in out) > MAX_POSITION_MM:
        raise _Skip(
            f"invalid {what}: more than {MAX_POSITION_MM:g} mm from the origin, not a position in a scanner"
        )
    return out


def _orientation(value: Any, what: str) -> tuple[float, ...]:
    """ImageOrientationPatient: 6 finite numbers, two orthogonal unit vectors (within 0.01)."""
    out = _floats(value, 6, what)
    row, col = np.array(out[:3]), np.array(out[3:])
    nr, nc, dot = float(np.linalg.norm(row)), float(np.linalg.norm(col)), float(row @ col)
    if abs(nr - 1) > 0.01 or abs(nc - 1) > 0.01 or abs(dot) > 0.01:
        raise _Skip(
            f"invalid {what}: not two orthogonal unit vectors "
            f"(|row|={nr:.3f}, |col|={nc:.3f}, row.col={dot:.3f})"
        )
    return out


def _spacing(value: Any, what: str) -> tuple[float, ...]:
    """PixelSpacing: 2 numbers, each > 0 and at most :data:`MAX_PIXEL_SPACING_MM`."""
    out = _floats(value, 2, what)
    if not all(0 < v <= MAX_PIXEL_SPACING_MM for v in out):
        got = ", ".join(f"{v:g}" for v in out)
        raise _Skip(f"invalid {what}: each must be > 0 and <= {MAX_PIXEL_SPACING_MM:g} mm, got {got}")
    return out


def _rescale(value: Any, keyword: str, default: float) -> float:
    """RescaleSlope (> 0) or RescaleIntercept as a finite float; absent gives ``default``."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _Skip(f"invalid {keyword}: {value!r}") from None
    if not math.isfinite(number):
        raise _Skip(f"invalid {keyword}: {value!r} is not a finite number")
    if keyword == "RescaleSlope" and number <= 0:
        raise _Skip(
            f"invalid RescaleSlope {number:g}: "
            + ("every pixel would have the same value" if number == 0 else "MR signal cannot be negative")
        )
    return number


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    item: Dataset = seq[0]
    return item


def _from_groups(keyword_seq: str, keyword: str, per_frame: Dataset | None, shared: Dataset | None) -> Any:
    for group in (per_frame, shared):
        item = _first_item(group, keyword_seq)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def _frames_of(path: Path, ds: Dataset, enc: PixelEncoding) -> list[Frame]:
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame_seq is not None:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        if len(per_frame_seq) != enc.number_of_frames:
            raise _Skip(
                f"inconsistent multi-frame header: {len(per_frame_seq)} per-frame items for "
                f"NumberOfFrames {enc.number_of_frames}"
            )
        frames = []
        for i, pf in enumerate(per_frame_seq):
            where = f"frame {i + 1}"
            pos = _from_groups("PlanePositionSequence", "ImagePositionPatient", pf, shared)
            iop = _from_groups("PlaneOrientationSequence", "ImageOrientationPatient", pf, shared)
            spacing = _from_groups("PixelMeasuresSequence", "PixelSpacing", pf, shared)
            thick = _from_groups("PixelMeasuresSequence", "SliceThickness", pf, shared)
            slope = _from_groups("PixelValueTransformationSequence", "RescaleSlope", pf, shared)
            icept = _from_groups("PixelValueTransformationSequence", "RescaleIntercept", pf, shared)
            te = _from_groups("MREchoSequence", "EffectiveEchoTime", pf, shared)
            geometry = (
                _position(pos, f"ImagePositionPatient of {where}"),
                _orientation(iop, f"ImageOrientationPatient of {where}"),
                _spacing(spacing, f"PixelSpacing of {where}"),
            )
            frames.append(_frame(path, ds, enc, i, geometry, (slope, icept), thick, te))
        return frames
    if enc.number_of_frames > 1:
        raise _Skip(
            f"multi-frame image ({enc.number_of_frames} frames) without per-frame functional "
            "groups: slice positions unknown"
        )
    slope, icept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    thick, te = ds.get("SliceThickness"), ds.get("EchoTime")
    geometry = (
        _position(ds.get("ImagePositionPatient"), "ImagePositionPatient (0020,0032)"),
        _orientation(ds.get("ImageOrientationPatient"), "ImageOrientationPatient (0020,0037)"),
        _spacing(ds.get("PixelSpacing"), "PixelSpacing (0028,0030)"),
    )
    return [_frame(path, ds, enc, 0, geometry, (slope, icept), thick, te)]


def _frame(
    path: Path,
    ds: Dataset,
    enc: PixelEncoding,
    index: int,
    geometry: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]],
    rescale: tuple[Any, Any],
    thickness: Any,
    echo_time: Any,
) -> Frame:
    """Frame ``index`` of the file ``path`` with header ``ds``.

    ``geometry`` is its checked ``(position, orientation, pixel spacing)``; ``rescale``
    (slope, intercept), ``thickness`` and ``echo_time`` are header values, None or "" when
    absent (slope 1, intercept 0, thickness and echo time unknown).
    """
    inst = ds.get("InstanceNumber")
    try:
        instance_number = int(inst) if inst not in (None, "") else None
    except (TypeError, ValueError):
        instance_number = None
    slope, intercept = rescale
    return Frame(
        path=path,
        frame_index=index,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or path.name),
        instance_number=instance_number,
        position=geometry[0],
        orientation=geometry[1],
        pixel_spacing=geometry[2],
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        rescale_slope=_rescale(slope, "RescaleSlope", 1.0),
        rescale_intercept=_rescale(intercept, "RescaleIntercept", 0.0),
        slice_thickness=float(thickness) if thickness not in (None, "") else None,
        echo_time=float(echo_time) if echo_time not in (None, "") else None,
        encoding=enc,
    )


# --------------------------------------------------------------------------------------
# series and stacks
# --------------------------------------------------------------------------------------
def _stack_key(fr: Frame) -> tuple[Any, ...]:
    iop = tuple(round(v / ORIENTATION_TOLERANCE / 10) for v in fr.orientation)
    te = None if fr.echo_time is None else round(fr.echo_time, 1)
    return (iop, fr.rows, fr.columns, te)


def _build_stacks(study_uid: str, series_uid: str, items: list[tuple[Frame, FileHeader]]) -> list[Series]:
    by_key: dict[tuple[Any, ...], list[tuple[Frame, FileHeader]]] = defaultdict(list)
    for item in items:
        by_key[_stack_key(item[0])].append(item)
    stacks = list(by_key.values())
    # order stacks by their first instance, so numbering is stable
    stacks.sort(key=lambda st: min((f.instance_number or 0, str(f.path), f.frame_index) for f, _ in st))
    out = []
    for i, stack in enumerate(stacks):
        out.append(_build_series(study_uid, series_uid, i + 1 if len(stacks) > 1 else 0, stack))
    return out


def _build_series(
    study_uid: str, series_uid: str, stack: int, items: list[tuple[Frame, FileHeader]]
) -> Series:
    frames = [f for f, _ in items]
    header = items[0][1]
    warnings: list[str] = []
    problems: list[str] = []
    normal = slice_normal(frames[0].orientation)
    coords = np.array([np.dot(f.position, normal) for f in frames])
    big = 1 << 30
    order = sorted(
        range(len(frames)),
        key=lambda i: (
            round(float(coords[i]) / DUPLICATE_TOLERANCE_MM),
            frames[i].instance_number if frames[i].instance_number is not None else big,
            str(frames[i].path),
            frames[i].frame_index,
        ),
    )
    frames = [frames[i] for i in order]
    coords = coords[order]
    # duplicates: keep the first of each position (lowest InstanceNumber, then path)
    keep = [0]
    duplicates: list[str] = []
    same_instance = 0
    for i in range(1, len(frames)):
        if coords[i] - coords[keep[-1]] <= DUPLICATE_TOLERANCE_MM:
            kept = frames[keep[-1]]
            same = kept.sop_instance_uid == frames[i].sop_instance_uid
            same_instance += same
            duplicates.append(
                f"duplicate slice position {coords[i]:.2f} mm along the normal: kept {kept.path} "
                f"({_inst(kept)}), ignored {frames[i].path} ({_inst(frames[i])})"
                + (" -- the same SOP instance twice" if same else "")
            )
        else:
            keep.append(i)
    if len(duplicates) <= MAX_DUPLICATE_WARNINGS:
        warnings.extend(duplicates)
    else:
        # A 4-D series (b-values, echoes, time points, a double export) repeats every
        # position: one line says so instead of one per image.
        positions = len({round(float(c) / DUPLICATE_TOLERANCE_MM) for c in coords})
        twice = f"; {same_instance} of them the same SOP instance twice" if same_instance else ""
        warnings.append(
            f"{len(duplicates)} images repeat a slice position already taken ({len(frames)} images at "
            f"{positions} positions: a 4-D series, e.g. several b-values, echoes or time points, or "
            f"the same images exported twice{twice}); the first image of each position is kept "
            f"(lowest InstanceNumber, then path), e.g. {duplicates[0].removeprefix('duplicate slice ')}"
        )
    frames = [frames[i] for i in keep]
    coords = coords[keep]

    spacings = {f.pixel_spacing for f in frames}
    if len(spacings) > 1 and np.ptp(np.array(list(spacings)), axis=0).max() > 1e-3:
        counts = defaultdict(list)
        for f in frames:
            counts[f.pixel_spacing].append(f)
        detail = "; ".join(
            f"{ps[0]:g}x{ps[1]:g} mm in {len(fs)} slices (e.g. {fs[0].path.name})"
            for ps, fs in counts.items()
        )
        problems.append(f"inconsistent PixelSpacing within the stack: {detail}")
    slopes = {(f.rescale_slope, f.rescale_intercept) for f in frames}
    if len(slopes) > 1:
        warnings.append(
            f"RescaleSlope/Intercept vary between slices ({len(slopes)} distinct pairs); applied per slice"
        )

    if len(coords) > 1:
        steps = np.diff(coords)
        med = float(np.median(steps))
        for j in np.flatnonzero(steps > GAP_FACTOR * med):
            n_missing = int(round(steps[j] / med)) - 1
            warnings.append(
                f"gap of {steps[j]:.2f} mm between slices {j + 1} and {j + 2} "
                f"(spacing {med:.2f} mm): about {n_missing} slice(s) missing"
            )
        regular = steps[steps <= GAP_FACTOR * med]
        if regular.size and np.abs(regular - med).max() > max(UNEVEN_FRACTION * med, 0.01):
            warnings.append(
                f"uneven slice spacing: steps from {regular.min():.2f} to {regular.max():.2f} mm "
                f"(median {med:.2f} mm); positions are used slice by slice"
            )
        nominal_f = header.spacing_between_slices
        if nominal_f and abs(nominal_f - med) > max(0.05 * med, 0.1):
            warnings.append(
                f"SpacingBetweenSlices says {nominal_f:g} mm but the slice positions are {med:.2f} mm "
                "apart; the positions are used"
            )

    geometry = None
    if not problems:
        try:
            geometry = SliceGeometry(
                positions=np.array([f.position for f in frames]),
                orientation=np.array(frames[0].orientation),
                pixel_spacing=(frames[0].pixel_spacing[0], frames[0].pixel_spacing[1]),
                rows=frames[0].rows,
                columns=frames[0].columns,
                slice_thickness=frames[0].slice_thickness,
            )
        except ValueError as exc:
            problems.append(f"inconsistent geometry: {exc}")

    o = frames[0].orientation
    info = replace(header.sequence, orientation=(o[0], o[1], o[2], o[3], o[4], o[5]))
    if frames[0].echo_time is not None and info.echo_time is None:
        info = replace(info, echo_time=frames[0].echo_time)
    identity = identify(info)
    return Series(
        study_uid=study_uid,
        series_uid=series_uid,
        stack=stack,
        number=header.series_number,
        description=header.series_description,
        modality=header.modality,
        manufacturer=header.manufacturer,
        frame_of_reference_uid=header.frame_of_reference_uid,
        sop_class_uid=header.sop_class_uid,
        frames=frames,
        geometry=geometry,
        sequence=info,
        identity=identity,
        image_type=header.image_type,
        warnings=warnings,
        problems=problems,
    )


def _inst(f: Frame) -> str:
    return f"instance {f.instance_number}" if f.instance_number is not None else "no InstanceNumber"


# --------------------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------------------
def series_matches(series: Series, selector: str | int) -> bool:
    """Whether a user's selector names this series.

    A selector is a series number (``7`` or ``"7"``, matching every stack of series 7),
    a stack key (``"7.2"``), a SeriesInstanceUID, or a SeriesDescription (exact,
    case-insensitive).
    """
    sel = str(selector).strip()
    if not sel:
        return False
    if sel == series.key or sel == series.series_uid:
        return True
    if series.number is not None and sel == str(series.number):
        return True
    return sel.casefold() == series.description.casefold()


def _apply_role_overrides(result: ScanResult, roles: Mapping[str, Role | str]) -> None:
    for selector, role in roles.items():
        try:
            new_role = role if isinstance(role, Role) else _parse_role(str(role))
        except ValueError as exc:
            raise ValueError(f"role override {selector}={role}: {exc}") from None
        hits = [s for s in result.all_series() if series_matches(s, selector)]
        if not hits:
            raise ValueError(
                f"role override {selector}={new_role.value}: no series matches {selector!r} "
                "(use a series number, stack key, SeriesInstanceUID or description)"
            )
        for s in hits:
            old = s.identity
            s.identity = SeriesIdentity(
                role=new_role,
                plane=old.plane,
                fat_suppressed=old.fat_suppressed or new_role is Role.STIR,
                reasons=(f"role set to {new_role.value} by the user (detected: {old.role.value})",)
                + old.reasons,
                tilt_degrees=old.tilt_degrees,
            )


def _parse_role(text: str) -> Role:
    t = text.strip().casefold()
    for r in Role:
        if t in (r.value.casefold(), r.name.casefold()):
            return r
    raise ValueError(f"unknown role {text!r}; choose from {', '.join(r.value for r in Role)}")
