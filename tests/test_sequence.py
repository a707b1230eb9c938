"""Tests for modic.sequence: what each MR series is, from header evidence.

Every expected value is written by hand from DICOM and MR facts (vendor naming, TR/TE/TI
ranges, direction cosines), never computed by the code under test. Headers are real
pydicom datasets; the vendor catalogue goes through a file write and read back.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import (
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from modic.sequence import Plane, Role, SequenceInfo, SeriesIdentity, identify, plane_of

# Direction cosines (LPS): row then column.
SAGITTAL = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # rows run anterior->posterior, columns head->feet
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
CORONAL = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]


def _rad(degrees: float) -> float:
    return math.radians(degrees)


# A sagittal stack turned 8 degrees about the S-I axis (normal 8 degrees off L-R).
SAGITTAL_8 = [math.sin(_rad(8)), math.cos(_rad(8)), 0.0, 0.0, 0.0, -1.0]
# An axial stack angled 20 degrees along a disc (rotated about L-R; normal 20 degrees off S-I).
AXIAL_20 = [1.0, 0.0, 0.0, 0.0, math.cos(_rad(20)), -math.sin(_rad(20))]
# Halfway between sagittal and coronal: 45 degrees from both L-R and A-P.
OBLIQUE_45 = [math.cos(_rad(45)), math.sin(_rad(45)), 0.0, 0.0, 0.0, -1.0]


def mr_dataset(sop_class: str = MRImageStorage, **attributes: Any) -> Dataset:
    """A classic MR header with the given attributes (keyword=value)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "MR"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def round_trip(ds: Dataset, directory: Path) -> Dataset:
    """Write ``ds`` as a DICOM file and read its header back."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path, stop_before_pixels=True)


def checked(identity: SeriesIdentity) -> SeriesIdentity:
    """The identity, after checking that it gives reasons."""
    assert identity.reasons, "reasons must never be empty"
    assert all(isinstance(r, str) and r.strip() for r in identity.reasons)
    return identity


def identify_ds(**attributes: Any) -> SeriesIdentity:
    return checked(identify(SequenceInfo.from_dataset(mr_dataset(**attributes))))


def reasons_text(identity: SeriesIdentity) -> str:
    return " | ".join(identity.reasons)


# ---------------------------------------------------------------------------------------
# Vendor catalogue: realistic headers of a lumbar spine study from each vendor.
# (id, attributes, role, plane, fat_suppressed, fragment expected in the reasons)
# ---------------------------------------------------------------------------------------

SIEMENS = {"Manufacturer": "SIEMENS", "MagneticFieldStrength": 1.5,
           "ImageType": ["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"]}
GE = {"Manufacturer": "GE MEDICAL SYSTEMS", "MagneticFieldStrength": 1.5,
      "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"]}
PHILIPS = {"Manufacturer": "Philips Medical Systems", "MagneticFieldStrength": 3.0,
           "ImageType": ["ORIGINAL", "PRIMARY", "M_SE", "M", "SE"]}

VENDOR_CASES: list[tuple[str, dict[str, Any], Role, Plane, bool, str]] = [
    ("siemens-t1", {**SIEMENS, "SeriesDescription": "t1_tse_sag", "ProtocolName": "t1_tse_sag",
                    "ScanningSequence": "SE", "SequenceVariant": ["SK", "SP", "OSP"],
                    "SequenceName": "*tse2d1_3", "RepetitionTime": 550, "EchoTime": 11,
                    "FlipAngle": 150, "ImageOrientationPatient": SAGITTAL_8},
     Role.T1, Plane.SAGITTAL, False, "T1-weighted timing"),
    ("siemens-t2", {**SIEMENS, "SeriesDescription": "t2_tse_sag", "ScanningSequence": "SE",
                    "SequenceVariant": ["SK", "SP", "OSP"], "SequenceName": "*tse2d1_17",
                    "RepetitionTime": 3500, "EchoTime": 101, "FlipAngle": 150,
                    "ImageOrientationPatient": SAGITTAL},
     Role.T2, Plane.SAGITTAL, False, "T2-weighted timing"),
    ("siemens-tirm", {**SIEMENS, "SeriesDescription": "t2_tirm_sag",
                      "ScanningSequence": ["SE", "IR"], "SequenceVariant": ["SK", "SP", "MP", "OSP"],
                      "ScanOptions": "IR", "SequenceName": "*tir2d1_11", "RepetitionTime": 4000,
                      "EchoTime": 41, "InversionTime": 160, "FlipAngle": 150,
                      "ImageOrientationPatient": SAGITTAL},
     Role.STIR, Plane.SAGITTAL, True, "TIRM (Siemens STIR)"),
    ("siemens-localizer", {**SIEMENS, "SeriesDescription": "localizer", "ScanningSequence": "GR",
                           "SequenceVariant": ["SP", "OSP"], "SequenceName": "*fl2d1",
                           "RepetitionTime": 8.6, "EchoTime": 4.0, "FlipAngle": 20,
                           "ImageOrientationPatient": SAGITTAL},
     Role.LOCALIZER, Plane.SAGITTAL, False, "names a localizer"),
    ("siemens-ax-t2", {**SIEMENS, "SeriesDescription": "t2_tse_tra", "ScanningSequence": "SE",
                       "SequenceVariant": ["SK", "SP", "OSP"], "SequenceName": "*tse2d1_15",
                       "RepetitionTime": 4200, "EchoTime": 98, "FlipAngle": 150,
                       "ImageOrientationPatient": AXIAL_20},
     Role.T2, Plane.AXIAL, False, "S-I: axial, tilted 20.0 degrees"),
    ("ge-t1", {**GE, "SeriesDescription": "SAG T1 FSE", "ScanningSequence": "SE",
               "SequenceVariant": "SK", "ScanOptions": ["FAST_GEMS", "SAT_GEMS", "FILTERED_GEMS"],
               "RepetitionTime": 567, "EchoTime": 9.6, "FlipAngle": 90,
               "ImageOrientationPatient": SAGITTAL},
     Role.T1, Plane.SAGITTAL, False, "SAT_GEMS is a GE spatial saturation band"),
    ("ge-t2", {**GE, "SeriesDescription": "SAG T2 FSE", "ScanningSequence": "SE",
               "SequenceVariant": "SK",
               "ScanOptions": ["FAST_GEMS", "EDR_GEMS", "SAT_GEMS", "TRF_GEMS", "FILTERED_GEMS"],
               "RepetitionTime": 3000, "EchoTime": 102, "FlipAngle": 90,
               "ImageOrientationPatient": SAGITTAL},
     Role.T2, Plane.SAGITTAL, False, "T2-weighted timing"),
    ("ge-stir", {**GE, "SeriesDescription": "SAG STIR", "ScanningSequence": ["SE", "IR"],
                 "SequenceVariant": "SK", "ScanOptions": ["FAST_GEMS", "IR_GEMS", "SAT_GEMS"],
                 "RepetitionTime": 3516, "EchoTime": 42, "InversionTime": 150, "FlipAngle": 90,
                 "ImageOrientationPatient": SAGITTAL},
     Role.STIR, Plane.SAGITTAL, True, "typical STIR TI 130-170 ms at 1.5 T"),
    ("ge-ax-t2", {**GE, "SeriesDescription": "AX T2 FRFSE", "ScanningSequence": "SE",
                  "SequenceVariant": "SK", "ScanOptions": ["FAST_GEMS", "SAT_GEMS", "FR_GEMS"],
                  "RepetitionTime": 4000, "EchoTime": 110, "FlipAngle": 90,
                  "ImageOrientationPatient": AXIAL_20},
     Role.T2, Plane.AXIAL, False, "T2-weighted timing"),
    ("ge-localizer", {**GE, "SeriesDescription": "3-PLANE LOC", "ScanningSequence": "GR",
                      "SequenceVariant": "SS", "ScanOptions": ["FAST_GEMS"],
                      "RepetitionTime": 5.1, "EchoTime": 1.6, "FlipAngle": 30,
                      "ImageOrientationPatient": CORONAL},
     Role.LOCALIZER, Plane.CORONAL, False, "names a localizer ('loc')"),
    ("ge-t1-flair", {**GE, "SeriesDescription": "Sag T1 FLAIR", "ScanningSequence": ["SE", "IR"],
                     "SequenceVariant": "SK",
                     "ScanOptions": ["FAST_GEMS", "IR_GEMS", "T1FLAIR_GEMS", "SAT_GEMS"],
                     "RepetitionTime": 2200, "EchoTime": 9, "InversionTime": 860,
                     "FlipAngle": 90, "ImageOrientationPatient": SAGITTAL},
     Role.T1, Plane.SAGITTAL, False, "inversion-recovery T1 (T1 FLAIR)"),
    ("philips-t1", {**PHILIPS, "SeriesDescription": "sT1W_TSE", "ProtocolName": "sT1W_TSE",
                    "ScanningSequence": "SE", "SequenceVariant": "SK", "RepetitionTime": 500,
                    "EchoTime": 8, "FlipAngle": 90, "ImageOrientationPatient": SAGITTAL},
     Role.T1, Plane.SAGITTAL, False, "names T1 ('st1w')"),
    ("philips-t2", {**PHILIPS, "SeriesDescription": "sT2W_TSE", "ScanningSequence": "SE",
                    "SequenceVariant": "SK", "RepetitionTime": 3000, "EchoTime": 120,
                    "FlipAngle": 90, "ImageOrientationPatient": SAGITTAL},
     Role.T2, Plane.SAGITTAL, False, "names T2 ('st2w')"),
    ("philips-stir", {**PHILIPS, "SeriesDescription": "sSTIR", "ScanningSequence": "IR",
                      "SequenceVariant": "SK", "RepetitionTime": 4500, "EchoTime": 60,
                      "InversionTime": 210, "FlipAngle": 90,
                      "ImageOrientationPatient": SAGITTAL},
     Role.STIR, Plane.SAGITTAL, True, "typical STIR TI 180-230 ms at 3 T"),
    ("philips-stir-longtr", {**PHILIPS, "SeriesDescription": "STIR_longTR",
                             "ScanningSequence": "IR", "SequenceVariant": "SK",
                             "RepetitionTime": 6000, "EchoTime": 60, "InversionTime": 200,
                             "FlipAngle": 90, "ImageOrientationPatient": SAGITTAL},
     Role.STIR, Plane.SAGITTAL, True, "names STIR"),
    ("philips-survey", {**PHILIPS, "SeriesDescription": "Survey", "ScanningSequence": "GR",
                        "SequenceVariant": "SP", "RepetitionTime": 11, "EchoTime": 4.6,
                        "FlipAngle": 15, "ImageOrientationPatient": AXIAL},
     Role.LOCALIZER, Plane.AXIAL, False, "names a localizer ('survey')"),
    # SPAIR is a spectral inversion pulse: Philips stores a TI but no IR in ScanningSequence.
    ("philips-t2-spair", {**PHILIPS, "SeriesDescription": "T2W_SPAIR", "ScanningSequence": "SE",
                          "SequenceVariant": "SK", "ScanOptions": "FS", "RepetitionTime": 3000,
                          "EchoTime": 80, "InversionTime": 110, "FlipAngle": 90,
                          "ImageOrientationPatient": SAGITTAL},
     Role.STIR, Plane.SAGITTAL, True, "ScanOptions FS: fat saturation"),
    ("philips-ax-t2", {**PHILIPS, "SeriesDescription": "T2W_TSE ax", "ScanningSequence": "SE",
                       "SequenceVariant": "SK", "RepetitionTime": 3200, "EchoTime": 100,
                       "FlipAngle": 90, "ImageOrientationPatient": AXIAL},
     Role.T2, Plane.AXIAL, False, "T2-weighted timing"),
]


@pytest.mark.parametrize(
    ("attributes", "role", "plane", "fat_suppressed", "fragment"),
    [case[1:] for case in VENDOR_CASES],
    ids=[case[0] for case in VENDOR_CASES],
)
def test_vendor_series_after_file_round_trip(
    tmp_path: Path,
    attributes: dict[str, Any],
    role: Role,
    plane: Plane,
    fat_suppressed: bool,
    fragment: str,
) -> None:
    header = round_trip(mr_dataset(**attributes), tmp_path)
    identity = checked(identify(SequenceInfo.from_dataset(header)))
    assert (identity.role, identity.plane, identity.fat_suppressed) == (
        role, plane, fat_suppressed)
    assert fragment in reasons_text(identity)
    assert "disagrees" not in reasons_text(identity)


def test_siemens_header_values_are_read_as_upper_case_tuples(tmp_path: Path) -> None:
    attributes = VENDOR_CASES[2][1]
    info = SequenceInfo.from_dataset(round_trip(mr_dataset(**attributes), tmp_path))
    assert info.scanning_sequence == ("SE", "IR")
    assert info.sequence_variant == ("SK", "SP", "MP", "OSP")
    assert info.scan_options == ("IR",)
    assert info.sequence_name == "*tir2d1_11"
    assert info.repetition_time == 4000.0
    assert info.echo_time == 41.0
    assert info.inversion_time == 160.0
    assert info.flip_angle == 150.0
    assert info.field_strength == 1.5
    assert info.manufacturer == "SIEMENS"
    assert info.image_type == ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D")
    assert info.orientation == (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    assert (info.acquisition_contrast, info.fat_suppression_tag, info.inversion_recovery_tag) == (
        "", "", "")


# ---------------------------------------------------------------------------------------
# Timing only, description only, nothing
# ---------------------------------------------------------------------------------------

def test_t1_from_timing_without_description() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=520, EchoTime=11,
                           ImageOrientationPatient=SAGITTAL)
    assert identity.role is Role.T1
    assert "TR 520 ms and TE 11 ms: T1-weighted timing" in reasons_text(identity)


def test_t2_from_timing_without_description() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=4200, EchoTime=95,
                           ImageOrientationPatient=SAGITTAL)
    assert identity.role is Role.T2
    assert not identity.fat_suppressed


def test_pd_from_timing() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=2500, EchoTime=30)
    assert identity.role is Role.PD
    assert "proton-density timing" in reasons_text(identity)


@pytest.mark.parametrize(
    ("description", "role", "fat_suppressed"),
    [
        ("SAG T2 FSE", Role.T2, False),
        ("t1_tse_sag", Role.T1, False),
        ("sT1W_TSE", Role.T1, False),
        ("T2W", Role.T2, False),
        ("PDW sag", Role.PD, False),
        ("DP FS sag", Role.PD, True),  # French: densite de protons, fat-saturated
        ("SAG STIR", Role.STIR, True),
        ("t2_tirm_sag", Role.STIR, True),
        ("T2W_SPAIR", Role.STIR, True),
        ("sag T2 SPIR", Role.STIR, True),
        ("T2 FS", Role.STIR, True),
        ("SAG T2 FATSAT", Role.STIR, True),
        ("t2_tse_dixon_sag_W", Role.STIR, True),
        ("WATER: SAG T2 FSE IDEAL", Role.STIR, True),
        ("t1_tse_fs_sag", Role.T1, True),
        ("Sag T1 FLAIR", Role.T1, False),
    ],
)
def test_role_from_description_when_timing_is_missing(
    description: str, role: Role, fat_suppressed: bool
) -> None:
    identity = identify_ds(SeriesDescription=description)
    assert (identity.role, identity.fat_suppressed) == (role, fat_suppressed)
    assert "the description decides" in reasons_text(identity)


def test_protocol_name_is_used_when_series_description_is_missing() -> None:
    identity = identify_ds(ProtocolName="t2_tse_sag")
    assert identity.role is Role.T2
    assert "protocol 't2_tse_sag'" in reasons_text(identity)


def test_dixon_opposed_phase_is_not_fat_suppressed() -> None:
    identity = identify_ds(SeriesDescription="t2_tse_dixon_sag_opp")
    assert identity.role is Role.T2
    assert not identity.fat_suppressed
    assert "without a water marker" in reasons_text(identity)


def test_nothing_known_gives_other_with_reasons() -> None:
    identity = identify_ds()
    assert identity.role is Role.OTHER
    assert identity.plane is Plane.OBLIQUE
    assert identity.tilt_degrees is None
    text = reasons_text(identity)
    assert "no timing and no recognisable description" in text
    assert "orientation (ImageOrientationPatient) missing" in text


def test_missing_orientation_reports_the_description_plane() -> None:
    identity = identify_ds(SeriesDescription="sT2W_TSE")
    assert identity.plane is Plane.OBLIQUE
    assert "the description suggests sagittal" in reasons_text(identity)


# ---------------------------------------------------------------------------------------
# Conflicts and vertebra names
# ---------------------------------------------------------------------------------------

def test_timing_wins_over_a_conflicting_description() -> None:
    identity = identify_ds(SeriesDescription="t1_tse_sag", ScanningSequence="SE",
                           RepetitionTime=4000, EchoTime=100, ImageOrientationPatient=SAGITTAL)
    assert identity.role is Role.T2
    assert ("description says T1 but TR 4000 ms / TE 100 ms are T2 timing"
            in reasons_text(identity))


def test_inversion_time_wins_over_a_description_saying_t1() -> None:
    identity = identify_ds(SeriesDescription="SAG T1", ScanningSequence=["SE", "IR"],
                           RepetitionTime=3500, EchoTime=40, InversionTime=150,
                           MagneticFieldStrength=1.5)
    assert identity.role is Role.STIR
    assert "description says T1 but inversion recovery with TI 150 ms is STIR" in reasons_text(
        identity)


def test_stir_description_with_long_tr_timing_and_no_ir_flag_is_stir() -> None:
    # Some exports drop the IR flag; long TR and TE do not contradict a STIR.
    identity = identify_ds(SeriesDescription="SAG STIR", ScanningSequence="SE",
                           RepetitionTime=4000, EchoTime=70)
    assert identity.role is Role.STIR
    assert identity.fat_suppressed
    assert "disagrees" not in reasons_text(identity)


def test_stir_description_with_t1_timing_is_t1() -> None:
    identity = identify_ds(SeriesDescription="SAG STIR", ScanningSequence="SE",
                           RepetitionTime=500, EchoTime=10)
    assert identity.role is Role.T1
    assert not identity.fat_suppressed
    assert "description says STIR" in reasons_text(identity)


@pytest.mark.parametrize(
    "description", ["T12-S1", "sag T12-S1", "Th12/L1 sag", "L1-S1", "C7-T1 sag", "T1-S1"]
)
def test_vertebral_range_is_not_a_weighting(description: str) -> None:
    identity = identify_ds(SeriesDescription=description)
    assert identity.role is Role.OTHER
    assert "no timing and no recognisable description" in reasons_text(identity)


@pytest.mark.parametrize(
    ("description", "role"),
    [("SAG T2 T12-S1", Role.T2), ("L1-S1 T1 sag", Role.T1), ("sag_T1_T12-S1", Role.T1)],
)
def test_weighting_beside_a_vertebral_range(description: str, role: Role) -> None:
    assert identify_ds(SeriesDescription=description).role is role


def test_t2_timing_with_vertebral_range_description_is_no_conflict() -> None:
    identity = identify_ds(SeriesDescription="T12-S1 sag", ScanningSequence="SE",
                           RepetitionTime=3000, EchoTime=100)
    assert identity.role is Role.T2
    assert "disagrees" not in reasons_text(identity)


def test_description_plane_disagreeing_with_orientation_is_reported() -> None:
    identity = identify_ds(SeriesDescription="t2_tse_tra", ImageOrientationPatient=SAGITTAL)
    assert identity.plane is Plane.SAGITTAL
    assert "suggests axial but the orientation is sagittal" in reasons_text(identity)


# ---------------------------------------------------------------------------------------
# Inversion recovery and fat suppression
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("field_strength", "inversion_time", "typical"),
    [(1.5, 150, "130-170 ms at 1.5 T"), (3.0, 220, "180-230 ms at 3 T")],
)
def test_short_ti_inversion_recovery_is_stir(
    field_strength: float, inversion_time: float, typical: str
) -> None:
    identity = identify_ds(ScanningSequence=["SE", "IR"], RepetitionTime=4000, EchoTime=50,
                           InversionTime=inversion_time, MagneticFieldStrength=field_strength)
    assert identity.role is Role.STIR
    assert identity.fat_suppressed
    assert typical in reasons_text(identity)


@pytest.mark.parametrize("description", ["", "t2_tirm_sag_dark-fluid", "SAG T2 FLAIR"])
def test_long_ti_inversion_recovery_is_flair_not_stir(description: str) -> None:
    attributes: dict[str, Any] = {"ScanningSequence": ["SE", "IR"], "RepetitionTime": 9000,
                                  "EchoTime": 120, "InversionTime": 2500}
    if description:
        attributes["SeriesDescription"] = description
    identity = identify_ds(**attributes)
    assert identity.role is Role.OTHER
    assert not identity.fat_suppressed
    assert "FLAIR" in reasons_text(identity)


def test_fat_saturated_t2_from_scan_options_is_stir() -> None:
    identity = identify_ds(ScanningSequence="SE", ScanOptions=["FS", "PFP"],
                           RepetitionTime=3800, EchoTime=85)
    assert identity.role is Role.STIR
    assert identity.fat_suppressed
    assert "ScanOptions FS: fat saturation" in reasons_text(identity)


def test_fat_saturated_t1_stays_t1() -> None:
    identity = identify_ds(SeriesDescription="t1_tse_fs_sag", ScanningSequence="SE",
                           ScanOptions="FS", RepetitionTime=600, EchoTime=10,
                           ImageOrientationPatient=SAGITTAL)
    assert identity.role is Role.T1
    assert identity.fat_suppressed


def test_ge_fs_scan_option_with_t2_timing_is_stir() -> None:
    identity = identify_ds(Manufacturer="GE MEDICAL SYSTEMS", SeriesDescription="SAG T2 FS",
                           ScanningSequence="SE",
                           ScanOptions=["FAST_GEMS", "SAT_GEMS", "FILTERED_GEMS", "FS"],
                           RepetitionTime=3200, EchoTime=85)
    assert identity.role is Role.STIR
    assert identity.fat_suppressed


def test_ge_sat_gems_alone_is_not_fat_saturation() -> None:
    identity = identify_ds(ScanningSequence="SE", ScanOptions=["FAST_GEMS", "SAT_GEMS"],
                           RepetitionTime=3200, EchoTime=100)
    assert identity.role is Role.T2
    assert not identity.fat_suppressed


# ---------------------------------------------------------------------------------------
# Gradient echo, ambiguous timing, echo planar
# ---------------------------------------------------------------------------------------

def test_spoiled_gradient_echo_with_large_flip_is_t1() -> None:
    identity = identify_ds(ScanningSequence="GR", SequenceVariant=["SP"], RepetitionTime=250,
                           EchoTime=4.8, FlipAngle=70)
    assert identity.role is Role.T1
    assert "spoiled gradient-echo T1" in reasons_text(identity)


def test_small_flip_gradient_echo_is_other_without_description() -> None:
    identity = identify_ds(ScanningSequence="GR", RepetitionTime=600, EchoTime=20, FlipAngle=20)
    assert identity.role is Role.OTHER
    assert "timing is ambiguous" in reasons_text(identity)


def test_small_flip_gradient_echo_follows_its_description() -> None:
    identity = identify_ds(SeriesDescription="t1_vibe_sag", ScanningSequence="GR",
                           RepetitionTime=4.5, EchoTime=2.0, FlipAngle=10)
    assert identity.role is Role.T1
    assert "the description decides" in reasons_text(identity)


def test_t2_star_description_is_not_t2() -> None:
    identity = identify_ds(SeriesDescription="T2* MEDIC sag")
    assert identity.role is Role.OTHER


@pytest.mark.parametrize(("description", "role"), [("", Role.OTHER), ("PD sag", Role.PD)])
def test_intermediate_spin_echo_timing_is_decided_by_the_description(
    description: str, role: Role
) -> None:
    attributes: dict[str, Any] = {"ScanningSequence": "SE", "RepetitionTime": 2500,
                                  "EchoTime": 50}
    if description:
        attributes["SeriesDescription"] = description
    identity = identify_ds(**attributes)
    assert identity.role is role
    assert "fit no weighting clearly" in reasons_text(identity)


def test_echo_planar_diffusion_is_other() -> None:
    identity = identify_ds(SeriesDescription="ep2d_diff_tra", ScanningSequence=["EP", "SE"],
                           RepetitionTime=5000, EchoTime=80)
    assert identity.role is Role.OTHER


# ---------------------------------------------------------------------------------------
# Series that never hold a T1, T2 or STIR: diffusion, field maps, phase, mosaics
# (seen on real exports, dcm2niix's validation sets: a Philips dti_ax given T2 from its
# timing, a Philips B0 map given T1 from AcquisitionContrast, Siemens mosaics)
# ---------------------------------------------------------------------------------------

def _philips_private_b_value(ds: Dataset, b: float) -> Dataset:
    ds.add_new(Tag(0x2001, 0x0010), "LO", "Philips Imaging DD 001")
    ds.add_new(Tag(0x2001, 0x1003), "FL", b)
    return ds


@pytest.mark.parametrize("b_value", [2000.0, 0.0])
def test_philips_dti_with_t2_timing_is_not_t2(tmp_path: Path, b_value: float) -> None:
    """Both the b = 2000 and the b = 0 images of a Philips DTI: the b = 0 header has T2
    timing and nothing but the description says diffusion."""
    ds = mr_dataset(Manufacturer="Philips Medical Systems", SeriesDescription="dti_ax",
                    ProtocolName="WIP dti_ax SENSE", ScanningSequence="SE", SequenceVariant="SK",
                    RepetitionTime=7000.0, EchoTime=90.0, ImageOrientationPatient=AXIAL,
                    ImageType=["ORIGINAL", "PRIMARY", "M_SE", "M", "SE"])
    _philips_private_b_value(ds, b_value)
    info = SequenceInfo.from_dataset(round_trip(ds, tmp_path))
    assert info.diffusion_b_value == b_value
    identity = checked(identify(info))
    assert identity.role is Role.OTHER
    text = reasons_text(identity)
    if b_value:
        assert "b-value 2000 s/mm2: a diffusion-weighted series" in text
    else:
        assert "names diffusion imaging ('dti')" in text
    assert "this wins over the timing (T2)" in text


def test_philips_private_b_value_zero_on_a_t1_keeps_it_t1(tmp_path: Path) -> None:
    """Philips writes b = 0 on every MR image: alone it says nothing."""
    ds = mr_dataset(Manufacturer="Philips Medical Systems", SeriesDescription="T1W_TSE_SAG",
                    ScanningSequence="SE", RepetitionTime=550.0, EchoTime=10.0,
                    ImageOrientationPatient=SAGITTAL)
    _philips_private_b_value(ds, 0.0)
    assert checked(identify(SequenceInfo.from_dataset(round_trip(ds, tmp_path)))).role is Role.T1


def test_diffusion_b_value_zero_with_directionality_none_is_not_diffusion() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=3500, EchoTime=100,
                           DiffusionBValue=0.0, DiffusionDirectionality="NONE")
    assert identity.role is Role.T2


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"DiffusionBValue": 800.0}, "b-value 800 s/mm2"),
        ({"DiffusionDirectionality": "ISOTROPIC"}, "DiffusionDirectionality ISOTROPIC"),
        ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, "ImageType contains ADC"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW"]}, "ImageType contains DIFFUSION"),
        ({"SequenceName": "*ep_b1000t"}, "SequenceName '*ep_b1000t': Siemens diffusion EPI"),
        ({"SeriesDescription": "DWI_SAG b50-800"}, "names diffusion imaging ('dwi')"),
    ],
)
def test_diffusion_evidence_wins_over_t2_timing(attributes: dict[str, Any], reason: str) -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=4000, EchoTime=90, **attributes)
    assert identity.role is Role.OTHER
    assert reason in reasons_text(identity)


def test_enhanced_mr_acquisition_contrast_diffusion_wins_over_timing(tmp_path: Path) -> None:
    shared = _item(
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime=4000.0, FlipAngle=90.0)],
        MREchoSequence=[_item(EffectiveEchoTime=85.0)],
        MRDiffusionSequence=[_item(DiffusionBValue=1000.0, DiffusionDirectionality="DIRECTIONAL")],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=SAGITTAL)],
    )
    frames = [_item(MRImageFrameTypeSequence=[_item(
        FrameType=["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"], AcquisitionContrast="DIFFUSION")])]
    info = SequenceInfo.from_dataset(round_trip(enhanced_mr(shared, frames), tmp_path))
    assert info.diffusion_b_value == 1000.0 and info.diffusion_directionality == "DIRECTIONAL"
    identity = checked(identify(info))
    assert identity.role is Role.OTHER
    assert "AcquisitionContrast DIFFUSION" in reasons_text(identity)


def test_philips_b0_field_map_with_acquisition_contrast_t1_is_not_t1(tmp_path: Path) -> None:
    shared = _item(
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime=12.0, FlipAngle=25.0)],
        MREchoSequence=[_item(EffectiveEchoTime=3.1)],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=SAGITTAL)],
    )
    frames = [_item(MRImageFrameTypeSequence=[_item(
        FrameType=["ORIGINAL", "PRIMARY", "B0 MAP", "NONE"], AcquisitionContrast="T1")])]
    ds = enhanced_mr(shared, frames, SeriesDescription="B0_shim", ScanningSequence="GR")
    identity = checked(identify(SequenceInfo.from_dataset(round_trip(ds, tmp_path))))
    assert identity.role is Role.OTHER
    assert "ImageType contains B0 MAP: a phase, real/imaginary or field-map image" in reasons_text(identity)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"]}, "ImageType contains P"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "B0", "B0"]}, "ImageType contains B0"),
        ({"ComplexImageComponent": "PHASE"}, "ComplexImageComponent PHASE"),
        ({"SequenceName": "*fm2d2r"}, "Siemens gradient-echo field map"),
        ({"SeriesDescription": "gre_field_mapping"}, "names a field map ('field mapping')"),
        ({"ProtocolName": "B0map sag"}, "names a field map ('b0map')"),
    ],
)
def test_field_maps_and_phase_images_are_never_t1(attributes: dict[str, Any], reason: str) -> None:
    identity = identify_ds(ScanningSequence="GR", RepetitionTime=400, EchoTime=4.9, FlipAngle=60,
                           **attributes)
    assert identity.role is Role.OTHER
    assert reason in reasons_text(identity)


def test_a_magnitude_image_type_is_not_a_phase_image() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=500, EchoTime=10,
                           ImageType=["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"])
    assert identity.role is Role.T1


def test_siemens_mosaic_is_flagged_and_never_a_t2() -> None:
    identity = identify_ds(ScanningSequence="SE", RepetitionTime=5000, EchoTime=95,
                           ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"],
                           SeriesDescription="t2_tse_sag")
    assert identity.role is Role.OTHER
    assert "a Siemens mosaic (several slices tiled into one image" in reasons_text(identity)


# ---------------------------------------------------------------------------------------
# Localizers
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "description",
    ["localizer", "Localizer_haste", "AAHead_Scout", "3-PLANE LOC", "3pl loc", "Survey",
     "tri-pilot", "SCOUT", "loc"],
)
def test_localizer_names(description: str) -> None:
    assert identify_ds(SeriesDescription=description).role is Role.LOCALIZER


def test_localizer_image_type_without_description() -> None:
    identity = identify_ds(ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], ScanningSequence="GR",
                           RepetitionTime=8.6, EchoTime=4.0, FlipAngle=20)
    assert identity.role is Role.LOCALIZER
    assert "ImageType contains LOCALIZER" in reasons_text(identity)


def test_localizer_wins_over_timing() -> None:
    identity = identify_ds(SeriesDescription="localizer", ScanningSequence="SE",
                           RepetitionTime=500, EchoTime=10)
    assert identity.role is Role.LOCALIZER
    assert "localizer wins over the timing (T1)" in reasons_text(identity)


# ---------------------------------------------------------------------------------------
# Enhanced MR (multi-frame) with functional groups
# ---------------------------------------------------------------------------------------

def _item(**attributes: Any) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def enhanced_mr(shared: Dataset, frames: list[Dataset], **attributes: Any) -> Dataset:
    ds = mr_dataset(EnhancedMRImageStorage, Manufacturer="Philips", **attributes)
    ds.NumberOfFrames = len(frames)
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = frames
    return ds


def test_enhanced_mr_stir_from_functional_groups(tmp_path: Path) -> None:
    shared = _item(
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime=4500.0, FlipAngle=90.0)],
        MREchoSequence=[_item(EffectiveEchoTime=60.0)],
        MRModifierSequence=[_item(InversionRecovery="YES", InversionTimes=[210.0])],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=SAGITTAL_8)],
    )
    frames = [
        _item(MRImageFrameTypeSequence=[_item(
            FrameType=["ORIGINAL", "PRIMARY", "M", "NONE"], AcquisitionContrast="STIR")],
            PlanePositionSequence=[_item(ImagePositionPatient=[z, -120.0, 100.0])])
        for z in (-4.0, 0.0)
    ]
    ds = enhanced_mr(shared, frames, MagneticFieldStrength=3.0, PulseSequenceName="TSE")
    info = SequenceInfo.from_dataset(round_trip(ds, tmp_path))
    assert info.repetition_time == 4500.0
    assert info.echo_time == 60.0
    assert info.inversion_time == 210.0
    assert info.flip_angle == 90.0
    assert info.inversion_recovery_tag == "YES"
    assert info.acquisition_contrast == "STIR"
    assert info.sequence_name == "TSE"
    assert info.image_type == ("ORIGINAL", "PRIMARY", "M", "NONE")
    assert info.orientation is not None
    assert info.orientation[:2] == pytest.approx((math.sin(_rad(8)), math.cos(_rad(8))))
    identity = checked(identify(info))
    assert (identity.role, identity.plane, identity.fat_suppressed) == (
        Role.STIR, Plane.SAGITTAL, True)
    assert identity.tilt_degrees == pytest.approx(8.0)
    assert "InversionRecovery YES with TI 210 ms" in reasons_text(identity)


def test_enhanced_mr_fat_suppressed_t2_with_per_frame_orientation(tmp_path: Path) -> None:
    shared = _item(
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime=3000.0, FlipAngle=90.0)],
        MREchoSequence=[_item(EffectiveEchoTime=90.0)],
        MRModifierSequence=[_item(InversionRecovery="NO")],
    )
    frames = [_item(PlaneOrientationSequence=[_item(ImageOrientationPatient=AXIAL)])]
    ds = enhanced_mr(shared, frames, AcquisitionContrast="T2",
                     SpectrallySelectedSuppression="FAT")
    info = SequenceInfo.from_dataset(round_trip(ds, tmp_path))
    assert (info.fat_suppression_tag, info.inversion_recovery_tag) == ("FAT", "NO")
    assert info.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    identity = checked(identify(info))
    assert (identity.role, identity.plane, identity.fat_suppressed) == (
        Role.STIR, Plane.AXIAL, True)
    assert "SpectrallySelectedSuppression FAT" in reasons_text(identity)


def test_enhanced_mr_acquisition_contrast_alone_decides() -> None:
    frames = [_item(MRImageFrameTypeSequence=[_item(AcquisitionContrast="T1")])]
    identity = checked(identify(SequenceInfo.from_dataset(enhanced_mr(Dataset(), frames))))
    assert identity.role is Role.T1
    assert "AcquisitionContrast T1" in reasons_text(identity)


# ---------------------------------------------------------------------------------------
# Robust header reading
# ---------------------------------------------------------------------------------------

def test_empty_header_gives_empty_info() -> None:
    assert SequenceInfo.from_dataset(Dataset()) == SequenceInfo()


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def test_malformed_attributes_never_raise(tmp_path: Path) -> None:
    ds = mr_dataset(SeriesDescription="t2_tse_sag")
    ds[0x00180080] = _raw(0x00180080, "DS", b"abc ")  # RepetitionTime: not a number
    ds[0x00180081] = _raw(0x00180081, "DS", b"")  # EchoTime: empty
    ds[0x00200037] = _raw(0x00200037, "DS", b"1\\0\\0\\0 ")  # 4 cosines instead of 6
    ds[0x00180022] = _raw(0x00180022, "CS", b"fast_gems\\ SAT_GEMS ")  # lower case, spaces
    ds[0x00180087] = _raw(0x00180087, "DS", b"15000 ")  # field strength in gauss
    info = SequenceInfo.from_dataset(round_trip(ds, tmp_path))
    assert info.repetition_time is None
    assert info.echo_time is None
    assert info.orientation is None
    assert info.scan_options == ("FAST_GEMS", "SAT_GEMS")
    assert info.field_strength == 1.5
    identity = checked(identify(info))
    assert identity.role is Role.T2
    assert identity.plane is Plane.OBLIQUE


def test_zero_inversion_time_means_no_inversion() -> None:
    # GE writes InversionTime 0 for sequences without an inversion pulse.
    info = SequenceInfo.from_dataset(mr_dataset(InversionTime=0))
    assert info.inversion_time is None


# ---------------------------------------------------------------------------------------
# Planes
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("orientation", "plane", "tilt"),
    [
        (SAGITTAL, Plane.SAGITTAL, 0.0),
        (SAGITTAL_8, Plane.SAGITTAL, 8.0),
        (AXIAL, Plane.AXIAL, 0.0),
        (AXIAL_20, Plane.AXIAL, 20.0),
        (CORONAL, Plane.CORONAL, 0.0),
        (OBLIQUE_45, Plane.OBLIQUE, 45.0),
    ],
    ids=["sagittal", "sagittal-8", "axial", "axial-20-along-disc", "coronal", "oblique-45"],
)
def test_plane_of(orientation: list[float], plane: Plane, tilt: float) -> None:
    found, found_tilt = plane_of(orientation)
    assert found is plane
    assert found_tilt == pytest.approx(tilt, abs=1e-6)


def test_identity_reports_plane_and_tilt() -> None:
    identity = identify_ds(ImageOrientationPatient=OBLIQUE_45)
    assert identity.plane is Plane.OBLIQUE
    assert identity.tilt_degrees == pytest.approx(45.0)
    assert "more than 30: oblique" in reasons_text(identity)


@pytest.mark.parametrize(
    ("orientation", "problem"),
    [
        ([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], "parallel"),
        ([0.0, 0.0, 0.0, 0.0, 1.0, 0.0], "row direction cosine has zero length"),
        ([1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "column direction cosine has zero length"),
        ([1.0, 0.0, 0.0, 0.5, math.sqrt(3) / 2, 0.0], "not perpendicular"),
        ([1.0, 0.0, 0.0, 0.0, 1.0], "6 numbers"),
        ([1.0, 0.0, float("nan"), 0.0, 1.0, 0.0], "non-finite"),
    ],
    ids=["parallel", "zero-row", "zero-column", "60-degrees", "five-values", "nan"],
)
def test_degenerate_orientation_raises_value_error(orientation: list[float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        plane_of(orientation)


def test_degenerate_orientation_in_a_header_gives_oblique_with_reason() -> None:
    identity = identify_ds(SeriesDescription="t2_tse_sag",
                           ImageOrientationPatient=[1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    assert identity.plane is Plane.OBLIQUE
    assert identity.tilt_degrees is None
    assert "orientation unusable" in reasons_text(identity)
    assert "parallel" in reasons_text(identity)


def test_enums_are_strings() -> None:
    assert Role.STIR == "STIR"
    assert Role.LOCALIZER.value == "localizer"
    assert Plane.SAGITTAL == "sagittal"
