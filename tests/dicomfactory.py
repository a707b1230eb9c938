"""Write real DICOM files for the tests, with pydicom only.

Kept independent of :mod:`modic.phantom` on purpose: the loader is tested against files
written here, from geometry stated by hand in each test, never against modic's own writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

ENHANCED_MR = UID("1.2.840.10008.5.1.4.1.1.4.1")
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # rows run anterior->posterior, columns head->foot
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)

VENDORS: dict[str, dict[str, dict[str, Any]]] = {
    # role -> header values, as the three vendors write them
    "siemens": {
        "T1": dict(
            SeriesDescription="t1_tse_sag",
            ScanningSequence="SE",
            SequenceVariant=["SK", "SP", "OSP"],
            SequenceName="*tse2d1_3",
            RepetitionTime=550,
            EchoTime=11,
            ScanOptions="",
        ),
        "T2": dict(
            SeriesDescription="t2_tse_sag",
            ScanningSequence="SE",
            SequenceVariant=["SK", "SP", "OSP"],
            SequenceName="*tse2d1_17",
            RepetitionTime=3500,
            EchoTime=98,
            ScanOptions="",
        ),
        "STIR": dict(
            SeriesDescription="t2_tirm_sag",
            ScanningSequence=["IR", "SE"],
            SequenceVariant=["SK", "SP", "MP", "OSP"],
            SequenceName="*tir2d1_13",
            RepetitionTime=4000,
            EchoTime=60,
            InversionTime=150,
            ScanOptions="IR",
        ),
        "localizer": dict(
            SeriesDescription="localizer",
            ScanningSequence="GR",
            SequenceVariant=["SP", "OSP"],
            SequenceName="*fl2d1",
            RepetitionTime=8.6,
            EchoTime=4.0,
            ScanOptions="",
        ),
    },
    "ge": {
        "T1": dict(
            SeriesDescription="SAG T1 FSE",
            ScanningSequence="SE",
            SequenceVariant=["SK", "OSP"],
            RepetitionTime=600,
            EchoTime=9.5,
            ScanOptions=["FAST_GEMS", "NPW_GEMS"],
        ),
        "T2": dict(
            SeriesDescription="SAG T2 FSE",
            ScanningSequence="SE",
            SequenceVariant=["SK", "OSP"],
            RepetitionTime=3800,
            EchoTime=102,
            ScanOptions=["FAST_GEMS", "NPW_GEMS"],
        ),
        "STIR": dict(
            SeriesDescription="SAG STIR",
            ScanningSequence=["SE", "IR"],
            SequenceVariant=["SK", "OSP"],
            RepetitionTime=4200,
            EchoTime=42,
            InversionTime=220,
            ScanOptions=["FAST_GEMS", "IR_GEMS"],
        ),
        "localizer": dict(
            SeriesDescription="3-PLANE LOC",
            ScanningSequence="GR",
            SequenceVariant="SS",
            RepetitionTime=5.1,
            EchoTime=1.6,
            ScanOptions=["FAST_GEMS"],
        ),
    },
    "philips": {
        "T1": dict(
            SeriesDescription="sT1W_TSE",
            ScanningSequence="SE",
            SequenceVariant="SK",
            RepetitionTime=480,
            EchoTime=8,
            ScanOptions="",
        ),
        "T2": dict(
            SeriesDescription="sT2W_TSE",
            ScanningSequence="SE",
            SequenceVariant="SK",
            RepetitionTime=3000,
            EchoTime=120,
            ScanOptions="",
        ),
        "STIR": dict(
            SeriesDescription="sSTIR",
            ScanningSequence=["SE", "IR"],
            SequenceVariant="SK",
            RepetitionTime=3300,
            EchoTime=60,
            InversionTime=165,
            ScanOptions="IR",
        ),
        "localizer": dict(
            SeriesDescription="Survey",
            ScanningSequence="GR",
            SequenceVariant="SS",
            RepetitionTime=11,
            EchoTime=4.6,
            ScanOptions="",
        ),
    },
}


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def base_dataset(
    *,
    study_uid: str,
    series_uid: str,
    series_number: int,
    sop_uid: str,
    sop_class: str = MRImageStorage,
    header: dict[str, Any] | None = None,
    manufacturer: str = "SIEMENS",
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """A Dataset with patient/study/series/equipment attributes filled in."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = _uid("for", study_uid)
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = "TEST-0001"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.StudyDescription = "LUMBAR SPINE"
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.MagneticFieldStrength = 1.5
    ds.SeriesNumber = series_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    for k, v in (header or {}).items():
        setattr(ds, k, v)
    return ds


def _pixel_module(ds: Dataset, rows: int, cols: int, signed: bool = False) -> None:
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0


def write_series(
    folder: Path,
    pixels: np.ndarray,
    *,
    origin: Sequence[float],
    orientation: Sequence[float] = SAGITTAL,
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    slice_spacing: float = 4.0,
    positions: Sequence[Sequence[float]] | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    header: dict[str, Any] | None = None,
    manufacturer: str = "SIEMENS",
    slope: float = 1.0,
    intercept: float = 0.0,
    names: Sequence[str] | None = None,
    instance_numbers: Sequence[int] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    compress: str | None = None,
    preamble: bool = True,
) -> list[Path]:
    """Write a stack of single-frame MR images, slice k at ``origin + k * slice_spacing * normal``.

    Parameters
    ----------
    pixels : (n, rows, cols) array of uint16 (or int16)
        Stored values of slice k, in the order of ``positions``.
    positions : optional
        Explicit ImagePositionPatient per slice (overrides origin/slice_spacing).
    names : optional
        File names relative to ``folder`` (may contain sub-folders); default ``IM{k}``.
    compress : optional
        A transfer syntax UID to compress to (e.g. RLE Lossless, JPEG 2000 Lossless).
    """
    n, rows, cols = pixels.shape
    row_c, col_c = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_c, col_c)
    if positions is None:
        positions = [tuple(np.asarray(origin, float) + k * slice_spacing * normal) for k in range(n)]
    study_uid = study_uid or _uid("study", folder)
    series_uid = series_uid or _uid("series", folder, series_number)
    paths = []
    for k in range(n):
        sop = _uid("sop", series_uid, k)
        ds = base_dataset(
            study_uid=study_uid,
            series_uid=series_uid,
            series_number=series_number,
            sop_uid=sop,
            header=header,
            manufacturer=manufacturer,
            transfer_syntax=transfer_syntax,
        )
        ds.InstanceNumber = instance_numbers[k] if instance_numbers is not None else k + 1
        ds.ImagePositionPatient = [float(v) for v in positions[k]]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
        ds.SliceThickness = float(slice_spacing) * 0.9
        ds.SpacingBetweenSlices = float(slice_spacing)
        ds.SliceLocation = float(np.dot(positions[k], normal))
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        _pixel_module(ds, rows, cols, signed=pixels.dtype.kind == "i")
        arr = np.ascontiguousarray(pixels[k])
        if transfer_syntax == ExplicitVRLittleEndian or transfer_syntax == ImplicitVRLittleEndian:
            ds.PixelData = arr.astype("<" + arr.dtype.str[1:]).tobytes()
        if compress is not None:
            ds.compress(compress, arr)
        name = names[k] if names is not None else f"IM{k + 1}"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(
            path,
            enforce_file_format=preamble,
            implicit_vr=None if preamble else True,
            little_endian=None if preamble else True,
        )
        paths.append(path)
    return paths


def write_enhanced(
    path: Path,
    pixels: np.ndarray,
    *,
    origin: Sequence[float],
    orientation: Sequence[float] = SAGITTAL,
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    slice_spacing: float = 4.0,
    frame_order: Sequence[int] | None = None,
    study_uid: str | None = None,
    series_number: int = 1,
    slope: float = 1.0,
    intercept: float = 0.0,
    tr: float = 550.0,
    te: float = 10.0,
    description: str = "sT1W_TSE",
    contrast: str = "T1",
) -> Path:
    """Write an Enhanced MR Image Storage multi-frame object.

    Frame f holds ``pixels[frame_order[f]]``, positioned at
    ``origin + frame_order[f] * slice_spacing * normal``: with a shuffled ``frame_order`` the
    frames are stored out of spatial order, as some scanners do.
    """
    n, rows, cols = pixels.shape
    order = list(frame_order) if frame_order is not None else list(range(n))
    normal = np.cross(np.array(orientation[:3], float), np.array(orientation[3:], float))
    study_uid = study_uid or _uid("study", path.parent)
    series_uid = _uid("enh-series", path)
    ds = base_dataset(
        study_uid=study_uid,
        series_uid=series_uid,
        series_number=series_number,
        sop_uid=_uid("enh-sop", path),
        sop_class=ENHANCED_MR,
        manufacturer="Philips Medical Systems",
        header={"SeriesDescription": description},
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    ds.AcquisitionContrast = contrast
    ds.PulseSequenceName = "TSE"
    ds.ContentDate = "20240102"
    ds.ContentTime = "101500"
    _pixel_module(ds, rows, cols)

    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [float(v) for v in orientation]
    shared.PlaneOrientationSequence = DicomSequence([po])
    pm = Dataset()
    pm.PixelSpacing = [float(v) for v in pixel_spacing]
    pm.SliceThickness = float(slice_spacing)
    shared.PixelMeasuresSequence = DicomSequence([pm])
    pvt = Dataset()
    pvt.RescaleSlope = slope
    pvt.RescaleIntercept = intercept
    pvt.RescaleType = "US"
    shared.PixelValueTransformationSequence = DicomSequence([pvt])
    timing = Dataset()
    timing.RepetitionTime = tr
    timing.FlipAngle = 90
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    echo = Dataset()
    echo.EffectiveEchoTime = te
    shared.MREchoSequence = DicomSequence([echo])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for k in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in np.asarray(origin, float) + k * slice_spacing * normal]
        item.PlanePositionSequence = DicomSequence([pp])
        fc = Dataset()
        fc.InStackPositionNumber = k + 1
        fc.StackID = "1"
        item.FrameContentSequence = DicomSequence([fc])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.ascontiguousarray(pixels[order]).astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def volume_pattern(n: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Stored values that say where they are: value = 1000*slice + row + small noise-free pattern."""
    s, r, c = np.meshgrid(np.arange(n), np.arange(rows), np.arange(cols), indexing="ij")
    return (1000 * s + 7 * r + c + seed).astype(np.uint16)
