"""Write phantom series as DICOM MR objects with vendor-style headers.

Classic series are MR Image Storage, one file per slice; ``enhanced`` series are one
Enhanced MR Image Storage multi-frame object with per-frame plane positions and shared
orientation, pixel measures, rescale and timing functional groups.  Nothing depends on
the clock: dates, times and UIDs derive from the study seed, so files are reproducible
byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from .grid import Stack
from .signal import Quantisation, Sequence
from .spec import SeriesSpec

__all__ = [
    "MR_IMAGE_STORAGE",
    "ENHANCED_MR_IMAGE_STORAGE",
    "TRANSFER_SYNTAXES",
    "StudyHeader",
    "SeriesHeader",
    "vendor_series_header",
    "deterministic_uid",
    "classic_datasets",
    "enhanced_dataset",
    "encode",
    "save",
]

MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
TRANSFER_SYNTAXES: dict[str, UID] = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg2000": JPEG2000Lossless,
}


def deterministic_uid(*parts: object) -> UID:
    """A UID under pydicom's root derived only from ``parts`` (same parts, same UID)."""
    return generate_uid(entropy_srcs=["modic-phantom", *[str(p) for p in parts]])


def _ds(value: float) -> str:
    """Decimal string of at most 16 characters."""
    return format_number_as_ds(float(value))


def _ds_list(values: NDArray[np.floating] | list[float]) -> list[str]:
    return [_ds(v) for v in np.asarray(values, dtype=float).ravel()]


@dataclass
class StudyHeader:
    """Study and patient level attributes shared by every series."""

    study_uid: str
    frame_of_reference_uid: str
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    patient_age: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    vendor: str
    field_strength: float


@dataclass
class SeriesHeader:
    """Series level attributes (vendor style) for one series."""

    series_uid: str
    series_number: int
    series_time: str
    description: str
    protocol_name: str
    scanning_sequence: list[str]
    sequence_variant: list[str]
    scan_options: list[str]
    sequence_name: str
    image_type: list[str]
    acquisition_contrast: str


_MODELS = {
    ("siemens", 1.5): ("SIEMENS", "Aera", "syngo MR E11"),
    ("siemens", 3.0): ("SIEMENS", "Skyra", "syngo MR E11"),
    ("ge", 1.5): ("GE MEDICAL SYSTEMS", "Optima MR450w", "27\\LX\\MR Software release:RX27.0"),
    ("ge", 3.0): ("GE MEDICAL SYSTEMS", "SIGNA Architect",
                  "27\\LX\\MR Software release:RX27.0"),
    ("philips", 1.5): ("Philips Healthcare", "Ingenia", "5.6.1\\5.6.1.2"),
    ("philips", 3.0): ("Philips Healthcare", "Ingenia Elition X", "5.7.1\\5.7.1.1"),
}

_DESCRIPTIONS = {
    "siemens": {("t1", "sagittal"): "t1_tse_sag", ("t2", "sagittal"): "t2_tse_sag",
                ("stir", "sagittal"): "t2_tirm_sag", ("t2fs", "sagittal"): "t2_tse_fs_sag",
                ("t2", "axial"): "t2_tse_tra", ("t1", "axial"): "t1_tse_tra",
                ("stir", "axial"): "t2_tirm_tra", ("t2fs", "axial"): "t2_tse_fs_tra",
                ("localizer", "3plane"): "localizer"},
    "ge": {("t1", "sagittal"): "SAG T1 FSE", ("t2", "sagittal"): "SAG T2 FSE",
           ("stir", "sagittal"): "SAG STIR", ("t2fs", "sagittal"): "SAG T2 FSE FS",
           ("t2", "axial"): "AX T2 FRFSE", ("t1", "axial"): "AX T1 FSE",
           ("stir", "axial"): "AX STIR", ("t2fs", "axial"): "AX T2 FS",
           ("localizer", "3plane"): "3-PLANE LOC"},
    "philips": {("t1", "sagittal"): "sT1W_TSE", ("t2", "sagittal"): "sT2W_TSE",
                ("stir", "sagittal"): "sSTIR", ("t2fs", "sagittal"): "sT2W_SPIR",
                ("t2", "axial"): "T2W_TSE ax", ("t1", "axial"): "T1W_TSE ax",
                ("stir", "axial"): "STIR ax", ("t2fs", "axial"): "T2W_SPIR ax",
                ("localizer", "3plane"): "Survey"},
}


def vendor_series_header(series: SeriesSpec, seq: Sequence, vendor: str, study: StudyHeader,
                         series_number: int, series_time: str) -> SeriesHeader:
    """Vendor-style SeriesDescription, ScanningSequence, ScanOptions, ImageType, ..."""
    role, plane = series.role, series.plane
    key = (role, plane if plane in ("sagittal", "axial", "3plane") else "sagittal")
    desc = series.description or _DESCRIPTIONS[vendor].get(key, f"{role}_{plane}")
    contrast = {"t1": "T1", "t2": "T2", "stir": "T2", "t2fs": "T2",
                "localizer": "UNKNOWN"}[role]
    etl = seq.echo_train_length
    if vendor == "siemens":
        if role == "localizer":
            ss, sv, so, sn = ["GR"], ["SP", "OSP"], [""], "*fl2d1"
        elif role == "stir":
            ss, sv, so, sn = ["IR", "SE"], ["SK", "SP", "MP", "OSP"], ["IR"], f"*tir2d1_{etl}"
        else:
            ss, sv, sn = ["SE"], ["SK", "SP", "OSP"], f"*tse2d1_{etl}"
            so = ["FS"] if role == "t2fs" else [""]
        itype = ["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"]
    elif vendor == "ge":
        base = ["EDR_GEMS", "FILTERED_GEMS", "ACC_GEMS"]
        if role == "localizer":
            ss, sv, so, sn = ["GR"], ["SS", "SK"], ["FAST_GEMS", "EDR_GEMS", "SEQ_GEMS"], "fgre"
        elif role == "stir":
            ss, sv, so, sn = ["SE", "IR"], ["SK", "MP", "OSP"], ["IR_GEMS", "FAST_GEMS", *base], \
                "fse-ir"
        else:
            ss, sv = ["SE"], ["SK", "OSP"]
            fr = ["FR_GEMS"] if plane == "axial" else []
            fs = ["FS"] if role == "t2fs" else []
            so = ["FAST_GEMS", *fr, *fs, *base]
            sn = "frfse-xl" if plane == "axial" else "fse-xl"
        itype = ["ORIGINAL", "PRIMARY", "OTHER"]
    else:
        if role == "localizer":
            ss, sv, so, sn = ["GR"], ["SS"], ["OTHER"], ""
            itype = ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]
        elif role == "stir":
            ss, sv, so, sn = ["IR"], ["SK", "MP"], ["OTHER"], ""
            itype = ["ORIGINAL", "PRIMARY", "M_IR", "M", "IR"]
        else:
            ss, sv, sn = ["SE"], ["SK"], ""
            so = ["FS"] if role == "t2fs" else ["OTHER"]
            itype = ["ORIGINAL", "PRIMARY", "M_SE", "M", "SE"]
    return SeriesHeader(
        series_uid=deterministic_uid(study.study_uid, "series", series_number),
        series_number=series_number, series_time=series_time, description=desc,
        protocol_name=desc, scanning_sequence=ss, sequence_variant=sv, scan_options=so,
        sequence_name=sn, image_type=itype, acquisition_contrast=contrast)


def _common(ds: Dataset, study: StudyHeader, series: SeriesHeader, seq: Sequence,
            spec: SeriesSpec, sop_class: UID) -> None:
    """Patient, study, series, equipment and acquisition attributes."""
    manufacturer, model, software = _MODELS[(study.vendor, study.field_strength)]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = series.image_type
    ds.SOPClassUID = sop_class
    ds.StudyDate = study.study_date
    ds.SeriesDate = study.study_date
    ds.AcquisitionDate = study.study_date
    ds.ContentDate = study.study_date
    ds.StudyTime = study.study_time
    ds.SeriesTime = series.series_time
    ds.AcquisitionTime = series.series_time
    ds.ContentTime = series.series_time
    ds.AccessionNumber = study.accession_number
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.InstitutionName = "Modic Phantom Hospital"
    ds.ReferringPhysicianName = ""
    ds.StationName = f"PHANTOM{study.vendor.upper()}"
    ds.StudyDescription = "LUMBAR SPINE"
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = model
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.PatientAge = study.patient_age
    ds.BodyPartExamined = "LSPINE"
    ds.ScanningSequence = series.scanning_sequence
    ds.SequenceVariant = series.sequence_variant
    ds.ScanOptions = series.scan_options
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = series.sequence_name
    ds.AngioFlag = "N"
    ds.SliceThickness = _ds(spec.slice_thickness)
    ds.RepetitionTime = _ds(seq.tr)
    ds.EchoTime = _ds(seq.te)
    if seq.ti is not None:
        ds.InversionTime = _ds(seq.ti)
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = _ds(round(42.577478 * study.field_strength, 6))
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = _ds(study.field_strength)
    ds.SpacingBetweenSlices = _ds(spec.slice_thickness + spec.slice_gap)
    ds.EchoTrainLength = str(seq.echo_train_length)
    ds.DeviceSerialNumber = "00000"
    ds.SoftwareVersions = software.split("\\")
    ds.ProtocolName = series.protocol_name
    ds.ReceiveCoilName = {"siemens": "SP", "ge": "CTL", "philips": "dS Posterior"}[study.vendor]
    ds.TransmitCoilName = "Body"
    ds.AcquisitionMatrix = [0, spec.cols, spec.rows, 0]
    ds.InPlanePhaseEncodingDirection = "ROW" if spec.plane == "sagittal" else "COL"
    ds.FlipAngle = _ds(seq.flip_angle)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""


def _pixel_module(ds: Dataset, rows: int, cols: int, q: Quantisation,
                  frames: NDArray[np.integer]) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = q.bits_stored
    ds.HighBit = q.bits_stored - 1
    ds.PixelRepresentation = 1 if q.signed else 0
    arr = np.ascontiguousarray(frames.astype("<i2" if q.signed else "<u2"))
    ds.PixelData = arr.tobytes()


def _window(stored: NDArray[np.integer], q: Quantisation) -> tuple[str, str]:
    rw = stored.astype(np.float64) * q.slope + q.intercept
    lo, hi = np.percentile(rw, [1.0, 99.5])
    return _ds(round((lo + hi) / 2.0, 2)), _ds(round(max(hi - lo, 1.0), 2))


def _file_meta(sop_class: UID, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def classic_datasets(study: StudyHeader, series: SeriesHeader, spec: SeriesSpec,
                     seq: Sequence, stacks: list[Stack], stored: NDArray[np.integer],
                     q: Quantisation) -> list[Dataset]:
    """One MR Image Storage dataset per slice (uncompressed).

    Parameters
    ----------
    stacks : list of Stack
        The series' stacks (three for a 3-plane localizer); their slices in order make
        the images, InstanceNumber 1, 2, ...
    stored : (n_images, rows, cols) ndarray
        Stored pixel values, in the same order.
    """
    out = []
    n = 0
    for stack in stacks:
        for k in range(stack.n_slices):
            img = stored[n]
            n += 1
            sop_uid = deterministic_uid(series.series_uid, "image", n)
            ds = Dataset()
            ds.file_meta = _file_meta(MR_IMAGE_STORAGE, sop_uid)
            _common(ds, study, series, seq, spec, MR_IMAGE_STORAGE)
            ds.SOPInstanceUID = sop_uid
            ds.InstanceNumber = n
            ipp = stack.image_position(k)
            ds.ImagePositionPatient = _ds_list(ipp)
            ds.ImageOrientationPatient = _ds_list(np.concatenate([stack.row_dir,
                                                                  stack.col_dir]))
            ds.SliceLocation = _ds(float(np.dot(stack.center + stack.slice_offsets[k]
                                                * stack.normal, stack.normal)))
            ds.PixelSpacing = _ds_list([stack.row_spacing, stack.col_spacing])
            ds.SliceThickness = _ds(stack.thickness)
            ds.SpacingBetweenSlices = _ds(stack.spacing)
            _pixel_module(ds, stack.rows, stack.cols, q, img)
            wc, ww = _window(img, q)
            ds.WindowCenter = wc
            ds.WindowWidth = ww
            ds.RescaleIntercept = _ds(q.intercept)
            ds.RescaleSlope = _ds(q.slope)
            ds.RescaleType = "US"
            out.append(ds)
    return out


def _item(**kw: Any) -> Dataset:
    it = Dataset()
    for k, v in kw.items():
        setattr(it, k, v)
    return it


def enhanced_dataset(study: StudyHeader, series: SeriesHeader, spec: SeriesSpec,
                     seq: Sequence, stack: Stack, stored: NDArray[np.integer],
                     q: Quantisation, frame_times: list[str]) -> Dataset:
    """One Enhanced MR Image Storage multi-frame dataset holding the whole stack.

    Per frame: FrameContentSequence (stack position) and PlanePositionSequence; shared:
    PlaneOrientation, PixelMeasures, PixelValueTransformation, FrameVOILUT, MR timing,
    echo, modifier, FOV geometry, averages and image frame type.
    """
    sop_uid = deterministic_uid(series.series_uid, "image", 1)
    ds = Dataset()
    ds.file_meta = _file_meta(ENHANCED_MR_IMAGE_STORAGE, sop_uid)
    _common(ds, study, series, seq, spec, ENHANCED_MR_IMAGE_STORAGE)
    # classic-only attributes that the enhanced IOD keeps in functional groups
    for kw in ("ScanningSequence", "SequenceVariant", "ScanOptions", "SequenceName",
               "SliceThickness", "RepetitionTime", "EchoTime", "InversionTime",
               "NumberOfAverages", "EchoNumbers", "SpacingBetweenSlices", "EchoTrainLength",
               "AcquisitionMatrix", "InPlanePhaseEncodingDirection", "FlipAngle",
               "ImagingFrequency", "AngioFlag", "ProtocolName", "ReceiveCoilName",
               "TransmitCoilName", "AcquisitionNumber"):
        if kw in ds:
            delattr(ds, kw)
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.AcquisitionDateTime = study.study_date + series.series_time
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = "modic phantom"
    ds.ProtocolName = series.protocol_name
    ds.PulseSequenceName = series.sequence_name or series.description
    ds.EchoPulseSequence = "GRADIENT" if seq.kind == "gre" else "SPIN"
    ds.MultipleSpinEcho = "NO"
    ds.MultiPlanarExcitation = "YES"
    ds.PhaseContrast = "NO"
    ds.TimeOfFlightContrast = "NO"
    ds.SteadyStatePulseSequence = "NONE"
    ds.EchoPlanarPulseSequence = "NO"
    ds.SaturationRecovery = "NO"
    ds.SpectrallySelectedSuppression = "FAT" if seq.kind == "fse_fs" else "NONE"
    ds.OversamplingPhase = "NONE"
    ds.GeometryOfKSpaceTraversal = "RECTILINEAR"
    ds.SegmentedKSpaceTraversal = "PARTIAL" if seq.echo_train_length > 1 else "SINGLE"
    ds.RectilinearPhaseEncodeReordering = "LINEAR"
    ds.NumberOfTemporalPositions = 1
    ds.AcquisitionDuration = 180.0
    n = stack.n_slices
    ds.NumberOfFrames = n
    _pixel_module(ds, stack.rows, stack.cols, q, stored)
    wc, ww = _window(stored, q)
    dim_uid = deterministic_uid(series.series_uid, "dimension")
    ds.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=dim_uid)])
    ds.DimensionOrganizationType = "3D"
    ds.DimensionIndexSequence = DicomSequence([
        _item(DimensionOrganizationUID=dim_uid, DimensionIndexPointer=0x00209056,
              FunctionalGroupPointer=0x00209111, DimensionDescriptionLabel="Stack ID"),
        _item(DimensionOrganizationUID=dim_uid, DimensionIndexPointer=0x00209057,
              FunctionalGroupPointer=0x00209111,
              DimensionDescriptionLabel="In-Stack Position Number"),
    ])
    modifier = _item(InversionRecovery="YES" if seq.ti is not None else "NO",
                     FlowCompensation="NONE", T2Preparation="NO",
                     SpectrallySelectedExcitation="NONE", SpatialPresaturation="NONE",
                     PartialFourier="NO", ParallelAcquisition="NO")
    if seq.ti is not None:
        modifier.InversionTimes = [float(seq.ti)]
    shared = _item(
        PixelMeasuresSequence=DicomSequence([_item(
            PixelSpacing=_ds_list([stack.row_spacing, stack.col_spacing]),
            SliceThickness=_ds(stack.thickness), SpacingBetweenSlices=_ds(stack.spacing))]),
        PlaneOrientationSequence=DicomSequence([_item(
            ImageOrientationPatient=_ds_list(np.concatenate([stack.row_dir, stack.col_dir])))]),
        PixelValueTransformationSequence=DicomSequence([_item(
            RescaleIntercept=_ds(q.intercept), RescaleSlope=_ds(q.slope), RescaleType="US")]),
        FrameVOILUTSequence=DicomSequence([_item(WindowCenter=wc, WindowWidth=ww)]),
        MRTimingAndRelatedParametersSequence=DicomSequence([_item(
            RepetitionTime=float(seq.tr), FlipAngle=float(seq.flip_angle),
            EchoTrainLength=seq.echo_train_length, RFEchoTrainLength=seq.echo_train_length,
            GradientEchoTrainLength=0)]),
        MREchoSequence=DicomSequence([_item(EffectiveEchoTime=float(seq.te))]),
        MRModifierSequence=DicomSequence([modifier]),
        MRImagingModifierSequence=DicomSequence([_item(
            PixelBandwidth=200.0, MagnetizationTransfer="NONE", BloodSignalNulling="NO",
            Tagging="NONE", TransmitterFrequency=round(42.577478 * study.field_strength, 6))]),
        MRReceiveCoilSequence=DicomSequence([_item(
            ReceiveCoilName={"siemens": "SP", "ge": "CTL",
                             "philips": "dS Posterior"}[study.vendor],
            ReceiveCoilType="MULTICOIL", QuadratureReceiveCoil="NO")]),
        MRTransmitCoilSequence=DicomSequence([_item(TransmitCoilName="Body",
                                                    TransmitCoilType="BODY")]),
        MRFOVGeometrySequence=DicomSequence([_item(
            InPlanePhaseEncodingDirection="ROW" if spec.plane == "sagittal" else "COLUMN",
            MRAcquisitionFrequencyEncodingSteps=stack.rows,
            MRAcquisitionPhaseEncodingStepsInPlane=stack.cols,
            PercentSampling=100.0, PercentPhaseFieldOfView=100.0)]),
        MRAveragesSequence=DicomSequence([_item(NumberOfAverages=1.0)]),
        MRImageFrameTypeSequence=DicomSequence([_item(
            FrameType=["ORIGINAL", "PRIMARY", "VOLUME", "NONE"], PixelPresentation="MONOCHROME",
            VolumetricProperties="VOLUME", VolumeBasedCalculationTechnique="NONE",
            ComplexImageComponent="MAGNITUDE", AcquisitionContrast=series.acquisition_contrast)]),
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in range(n):
        per_frame.append(_item(
            FrameContentSequence=DicomSequence([_item(
                FrameAcquisitionDateTime=study.study_date + frame_times[k],
                FrameReferenceDateTime=study.study_date + frame_times[k],
                FrameAcquisitionDuration=180000.0 / n, StackID="1",
                InStackPositionNumber=k + 1, DimensionIndexValues=[1, k + 1])]),
            PlanePositionSequence=DicomSequence([_item(
                ImagePositionPatient=_ds_list(stack.image_position(k)))]),
        ))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    return ds


def encode(ds: Dataset, syntax: str) -> None:
    """Set the transfer syntax of ``ds`` (compressing its pixel data if needed).

    ``"rle"`` uses pydicom's own RLE encoder; ``"jpeg2000"`` needs pylibjpeg with
    pylibjpeg-openjpeg (``pip install modic[jpeg]``).  SOPInstanceUIDs are kept.
    """
    uid = TRANSFER_SYNTAXES[syntax]
    if syntax in ("explicit", "implicit"):
        ds.file_meta.TransferSyntaxUID = uid
        return
    kwargs: dict[str, Any] = {"generate_instance_uid": False}
    if syntax == "jpeg2000":
        kwargs["encoding_plugin"] = "pylibjpeg"
    ds.compress(uid, **kwargs)


def save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM file (with preamble and file meta) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
