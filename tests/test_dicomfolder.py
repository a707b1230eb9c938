"""Scanning folders: grouping, ordering, stacks, junk and broken files."""

from __future__ import annotations

import os
import random
import socket
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import write_lumbar_study
from dicomfactory import SAGITTAL, VENDORS, base_dataset, volume_pattern, write_enhanced, write_series

import modic
from modic.errors import DicomFileError, SeriesSelectionError
from modic.sequence import Plane, Role


def _one_series(result: modic.ScanResult, number: int) -> modic.Series:
    hits = [s for s in result.all_series() if s.number == number]
    assert len(hits) == 1, hits
    return hits[0]


def test_lumbar_study_is_grouped_with_roles_and_planes(lumbar_study):
    result = modic.scan(lumbar_study.root)
    assert len(result.studies) == 1
    study = result.studies[0]
    assert study.study_uid == lumbar_study.study_uid
    got = {(s.key, s.role, s.plane, s.shape) for s in study.series}
    # the 3-plane localizer (series 1) is split into three stacks, as dcm2niix does
    assert got == {
        ("1.1", Role.LOCALIZER, Plane.SAGITTAL, (1, 16, 16)),
        ("1.2", Role.LOCALIZER, Plane.CORONAL, (1, 16, 16)),
        ("1.3", Role.LOCALIZER, Plane.AXIAL, (1, 16, 16)),
        ("2", Role.T1, Plane.SAGITTAL, (9, 32, 32)),
        ("3", Role.T2, Plane.SAGITTAL, (8, 40, 40)),
        ("4", Role.STIR, Plane.SAGITTAL, (9, 32, 32)),
        ("5", Role.T2, Plane.AXIAL, (6, 24, 24)),
    }
    assert result.skipped == []
    assert result.n_files == 9 + 8 + 9 + 6 + 3


@pytest.mark.parametrize("vendor", ["siemens", "ge", "philips"])
@pytest.mark.parametrize("with_descriptions", [True, False])
def test_roles_across_vendors_with_and_without_descriptions(tmp_path, vendor, with_descriptions):
    write_lumbar_study(tmp_path, vendor, with_descriptions=with_descriptions)
    result = modic.scan(tmp_path)
    roles = {s.key: (s.role, s.plane) for s in result.all_series()}
    assert roles["2"] == (Role.T1, Plane.SAGITTAL)
    assert roles["3"] == (Role.T2, Plane.SAGITTAL)
    assert roles["4"] == (Role.STIR, Plane.SAGITTAL)
    assert roles["5"] == (Role.T2, Plane.AXIAL)
    for s in result.all_series():
        assert s.identity.reasons, s


def test_shuffled_nested_renamed_and_reversed_files_are_ordered_by_position(tmp_path):
    n = 7
    pixels = volume_pattern(n, 8, 10)
    # slice k is at x = 30 - 4k (the sagittal normal points to -x, so k increases along it);
    # files get opaque names in random nested folders, and InstanceNumbers run backwards
    rng = random.Random(4)
    names = [f"{rng.choice(['a', 'b/c', 'd/e/f'])}/{rng.getrandbits(40):x}" for _ in range(n)]
    write_series(
        tmp_path,
        pixels,
        origin=(30.0, 0.0, 0.0),
        orientation=SAGITTAL,
        slice_spacing=4.0,
        names=names,
        instance_numbers=list(range(n, 0, -1)),
        header=VENDORS["siemens"]["T1"],
    )
    result = modic.scan(tmp_path)
    (series,) = result.all_series()
    vol = modic.load_volume(series)
    assert vol.array.shape == (n, 8, 10)
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, pixels.astype(np.float32))
    xs = [f.position[0] for f in series.frames]
    assert xs == [30.0 - 4 * k for k in range(n)]
    assert series.warnings == []


def test_slices_stored_in_reverse_spatial_order(tmp_path):
    n = 5
    pixels = volume_pattern(n, 6, 6)
    # written so that file IM1 (instance 1) is the slice furthest along the normal
    positions = [(-4.0 * (n - 1 - k), 0.0, 0.0) for k in range(n)]  # x = -16 ... 0
    write_series(
        tmp_path,
        pixels,
        origin=(0, 0, 0),
        positions=positions,
        orientation=SAGITTAL,
        header=VENDORS["ge"]["T2"],
    )
    vol = modic.load_volume(modic.scan(tmp_path).all_series()[0])
    # along the normal (-x) the order is x = 0, -4, ..., -16: the written order reversed
    np.testing.assert_array_equal(vol.array, pixels[::-1].astype(np.float32))
    np.testing.assert_allclose(vol.geometry.positions[:, 0], [0, -4, -8, -12, -16])


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    pixels = volume_pattern(3, 4, 4)
    write_series(
        tmp_path, pixels, origin=(0, 0, 0), slope=2.5, intercept=-100.0, header=VENDORS["philips"]["T1"]
    )
    vol = modic.load_volume(modic.scan(tmp_path).all_series()[0])
    np.testing.assert_allclose(vol.array, pixels * 2.5 - 100.0)


def test_gap_and_duplicate_are_reported_and_one_duplicate_kept(tmp_path):
    pixels = volume_pattern(6, 4, 4)
    # positions along x: 0, -4, -8, [-12 missing], -16, -20, and -8 again (a duplicate)
    xs = [0, -4, -8, -16, -20, -8]
    write_series(
        tmp_path,
        pixels,
        origin=(0, 0, 0),
        positions=[(x, 0, 0) for x in xs],
        instance_numbers=[1, 2, 3, 5, 6, 9],
        header=VENDORS["siemens"]["T1"],
    )
    (series,) = modic.scan(tmp_path).all_series()
    assert series.shape == (5, 4, 4)
    text = "\n".join(series.warnings)
    assert "gap of 8.00 mm" in text and "about 1 slice(s) missing" in text
    assert "duplicate slice position" in text
    # the lower InstanceNumber (3, file IM3) is kept, IM6 (instance 9) is ignored
    assert "kept" in text and "IM3" in text.split("ignored")[0] and "IM6" in text.split("ignored")[1]
    vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array[2], pixels[2])
    # geometry keeps the real positions: slice 3 is at x = -16
    np.testing.assert_allclose(vol.index_to_patient([3, 0, 0]), [-16, 0, 0])


def test_a_4d_series_reports_its_repeated_positions_in_one_line(tmp_path):
    """Five positions, each written three times (e.g. three b-values or echoes): one line."""
    pixels = volume_pattern(15, 4, 4)
    xs = [0, -4, -8, -12, -16] * 3
    write_series(
        tmp_path,
        pixels,
        origin=(0, 0, 0),
        positions=[(x, 0, 0) for x in xs],
        instance_numbers=list(range(1, 16)),
        header=VENDORS["siemens"]["T2"],
    )
    (series,) = modic.scan(tmp_path).all_series()
    assert series.shape == (5, 4, 4)
    repeated = [w for w in series.warnings if "slice position" in w]
    assert len(repeated) == 1
    assert repeated[0].startswith("10 images repeat a slice position already taken (15 images at 5 positions")
    assert "a 4-D series" in repeated[0] and "the first image of each position is kept" in repeated[0]
    # the first of each position is kept: instances 1-5, the pixels of the first five images
    vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array, pixels[:5].astype(np.float32))


def test_uneven_spacing_is_reported(tmp_path):
    xs = [0, -4, -8.4, -12, -16]
    write_series(
        tmp_path,
        volume_pattern(5, 4, 4),
        origin=(0, 0, 0),
        positions=[(x, 0, 0) for x in xs],
        header=VENDORS["siemens"]["T1"],
    )
    (series,) = modic.scan(tmp_path).all_series()
    assert any("uneven slice spacing" in w for w in series.warnings)


def test_enhanced_multiframe_with_frames_out_of_order(tmp_path):
    pixels = volume_pattern(6, 10, 12)
    order = [3, 0, 5, 1, 4, 2]
    write_enhanced(
        tmp_path / "enh.dcm",
        pixels,
        origin=(20.0, -10.0, 5.0),
        frame_order=order,
        pixel_spacing=(0.9, 0.7),
        slice_spacing=3.5,
        slope=1.5,
        intercept=2.0,
    )
    (series,) = modic.scan(tmp_path).all_series()
    assert series.role is Role.T1
    assert series.plane is Plane.SAGITTAL
    assert series.sequence.repetition_time == 550.0
    vol = modic.load_volume(series)
    np.testing.assert_allclose(vol.array, pixels * 1.5 + 2.0)
    np.testing.assert_allclose(vol.spacing, (3.5, 0.9, 0.7))
    np.testing.assert_allclose(vol.index_to_patient([2, 0, 0]), [20.0 - 7.0, -10.0, 5.0])


@pytest.mark.parametrize(
    "syntax",
    [
        pytest.param("1.2.840.10008.1.2.5", id="rle"),
        pytest.param("1.2.840.10008.1.2.4.90", id="jpeg2000-lossless"),
        pytest.param("1.2.840.10008.1.2.4.80", id="jpeg-ls-lossless"),
    ],
)
def test_compressed_series_decode_to_the_same_values(tmp_path, syntax):
    if syntax.endswith(".90"):
        pytest.importorskip("openjpeg", reason="JPEG 2000 needs the 'jpeg' extra (pylibjpeg-openjpeg)")
    if syntax.endswith(".80"):
        pytest.importorskip("jpeg_ls", reason="JPEG-LS needs the 'jpeg' extra (pyjpegls)")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4000, size=(3, 64, 48), dtype=np.uint16)
    pixels[:, :, :3] = 0  # some structure for the codec
    write_series(tmp_path, pixels, origin=(0, 0, 0), compress=syntax, header=VENDORS["ge"]["T1"])
    (series,) = modic.scan(tmp_path).all_series()
    assert {f.encoding.transfer_syntax for f in series.frames} == {syntax}
    vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array, pixels.astype(np.float32))


def test_several_studies_in_one_folder(tmp_path):
    a = write_lumbar_study(tmp_path / "x" / "A", "siemens")
    b = write_lumbar_study(tmp_path / "x" / "B", "philips")
    result = modic.scan(tmp_path)
    assert {st.study_uid for st in result.studies} == {a.study_uid, b.study_uid}
    for st in result.studies:
        assert {s.key for s in st.series} == {"1.1", "1.2", "1.3", "2", "3", "4", "5"}


def test_junk_files_are_skipped_and_counted(lumbar_study):
    root = lumbar_study.root
    (root / "README.txt").write_text("exported by PACS\n")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(200))
    (root / "T1" / "key_image.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    (root / "empty").write_bytes(b"")
    # a DICOMDIR
    ds = base_dataset(
        study_uid="1.2.3",
        series_uid="1.2.4",
        series_number=1,
        sop_uid="1.2.5",
        sop_class="1.2.840.10008.1.3.10",
    )
    ds.DirectoryRecordSequence = []
    ds.save_as(root / "DICOMDIR", enforce_file_format=True)
    result = modic.scan(root)
    reasons = {f.path.name: f.reason for f in result.skipped}
    assert set(reasons) == {"README.txt", ".DS_Store", "key_image.jpg", "empty", "DICOMDIR"}
    assert reasons["DICOMDIR"].startswith("DICOMDIR")
    assert reasons["empty"] == "empty file"
    assert reasons["README.txt"].startswith("not DICOM")
    assert len(result.all_series()) == 7  # everything else still found


def test_special_files_are_skipped_never_opened(lumbar_study):
    """A FIFO with no writer would block a plain open() forever; a link to /dev/zero would
    read without end. Both are listed as skipped, and the study is found as before."""
    root = lumbar_study.root
    os.mkfifo(root / "T1" / "pipe")
    (root / "zero").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(root / "sock"))
    try:
        result = modic.scan(root)
    finally:
        sock.close()
    reasons = {f.path.name: f.reason for f in result.skipped}
    assert reasons == {
        "pipe": "a FIFO (named pipe): special files are never opened for reading",
        "zero": "a character device: special files are never opened for reading",
        "sock": "a socket: special files are never opened for reading",
    }
    assert len(result.all_series()) == 7


def test_declared_sizes_are_checked_before_any_allocation(tmp_path):
    """Headers that lie about the image size are skipped with the reason, never decoded
    (a RLE file declaring 65535 x 65535 asked numpy for 208 GiB)."""
    rle = "1.2.840.10008.1.2.5"
    paths = write_series(
        tmp_path / "s",
        volume_pattern(4, 16, 16),
        origin=(0, 0, 0),
        compress=rle,
        header=VENDORS["siemens"]["T1"],
    )
    ds = pydicom.dcmread(paths[0])
    ds.Rows = ds.Columns = 65535
    ds.save_as(paths[0])
    ds = pydicom.dcmread(paths[1])
    ds.Rows = ds.Columns = 4096  # 32 MiB declared in a file of a few kB: a wrong header
    ds.save_as(paths[1])
    ds = pydicom.dcmread(paths[2])
    ds.Rows = None  # present but empty
    ds.save_as(paths[2])
    result = modic.scan(tmp_path)
    reasons = {f.path.name: f.reason for f in result.skipped}
    assert reasons[paths[0].name] == (
        "Rows is 65535, more than the 8192 pixels modic reads (MR images have ~1024)"
    )
    assert reasons[paths[1].name].startswith("declares 32 MiB of pixels in a 0.00 MiB file: more than 1000:1")
    assert reasons[paths[2].name] == "Rows is empty or not a number (None)"
    (series,) = result.all_series()
    assert series.shape == (1, 16, 16)


def test_a_multiframe_file_declaring_gigabytes_is_skipped(tmp_path):
    paths = write_series(
        tmp_path / "s", volume_pattern(2, 16, 16), origin=(0, 0, 0), header=VENDORS["siemens"]["T1"]
    )
    ds = pydicom.dcmread(paths[0])
    ds.NumberOfFrames = 5_000_000  # x 512 bytes = 2.4 GiB
    ds.save_as(paths[0])
    reasons = {f.path.name: f.reason for f in modic.scan(tmp_path).skipped}
    assert reasons[paths[0].name] == (
        "declares 5000000 frame(s) of 16x16 pixels at 16 bits (2.4 GiB), more than the 2 GiB modic "
        "reads from one file"
    )


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        ("RescaleSlope", 0, "invalid RescaleSlope 0: every pixel would have the same value"),
        ("RescaleSlope", -1, "invalid RescaleSlope -1: MR signal cannot be negative"),
        ("RescaleSlope", "NaN", "invalid RescaleSlope: 'NaN' is not a finite number"),
        ("RescaleIntercept", "inf", "invalid RescaleIntercept: 'inf' is not a finite number"),
        (
            "ImagePositionPatient",
            [1e30, 0, 0],
            "invalid ImagePositionPatient (0020,0032): more than 100000 mm from the origin, "
            "not a position in a scanner",
        ),
        (
            "PixelSpacing",
            [0, 0.5],
            "invalid PixelSpacing (0028,0030): each must be > 0 and <= 100 mm, got 0, 0.5",
        ),
    ],
)
def test_impossible_header_values_skip_the_file_with_the_reason(tmp_path, keyword, value, reason):
    paths = write_series(
        tmp_path / "s", volume_pattern(3, 8, 8), origin=(0, 0, 0), header=VENDORS["siemens"]["T1"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid DS values we write
        ds = pydicom.dcmread(paths[0])
        setattr(ds, keyword, value)
        ds.save_as(paths[0])
    result = modic.scan(tmp_path)
    (skipped,) = result.skipped
    assert skipped.path == paths[0] and skipped.reason == reason
    (series,) = result.all_series()
    assert series.shape[0] == 2
    (study,) = result.studies
    assert study.skipped == [skipped] and skipped.study_uid == study.study_uid


def test_a_study_whose_t1_files_are_broken_says_why_there_is_no_t1(lumbar_study):
    """Not only "no sagittal T1": the broken files of the study and their reason."""
    t1_files = sorted(p for p in (lumbar_study.root / "T1").iterdir())
    for p in t1_files:
        ds = pydicom.dcmread(p)
        ds.RescaleSlope = 0
        ds.save_as(p)
    with pytest.raises(SeriesSelectionError) as info:
        modic.load_study(lumbar_study.root)
    text = str(info.value)
    assert "T1: no sagittal T1 series in the study" in text
    assert f"{len(t1_files)} file(s) of this study could not be used:" in text
    assert f"{len(t1_files)} x invalid RescaleSlope 0: every pixel would have the same value (e.g. " in text


def _write_t1(folder: Path, n: int = 4) -> list[Path]:
    return write_series(folder, volume_pattern(n, 8, 8), origin=(0, 0, 0), header=VENDORS["siemens"]["T1"])


def test_each_kind_of_broken_file_is_skipped_with_its_reason(tmp_path):
    paths = _write_t1(tmp_path / "s", n=8)
    # IM2 truncated in the pixel data
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-50])
    # 2 truncated inside the header
    paths[2].write_bytes(paths[2].read_bytes()[:300])
    # 3 no ImagePositionPatient
    ds = pydicom.dcmread(paths[3])
    del ds.ImagePositionPatient
    ds.save_as(paths[3])
    # 4 no PixelSpacing
    ds = pydicom.dcmread(paths[4])
    del ds.PixelSpacing
    ds.save_as(paths[4])
    # 5 garbage orientation
    ds = pydicom.dcmread(paths[5])
    ds.ImageOrientationPatient = [1, 0]
    ds.save_as(paths[5])
    # 6 a structured report (not an image) in the same series
    sr = base_dataset(
        study_uid=ds.StudyInstanceUID,
        series_uid="1.2.9",
        series_number=99,
        sop_uid="1.2.9.1",
        sop_class="1.2.840.10008.5.1.4.1.1.88.22",
    )
    sr.Modality = "SR"
    sr.save_as(tmp_path / "s" / "report", enforce_file_format=True)
    result = modic.scan(tmp_path)
    reasons = {f.path.name: f.reason for f in result.skipped}
    assert reasons["IM2"].startswith("truncated file: pixel data has")
    assert "IM3" in reasons  # a header cut at 300 bytes cannot be used
    assert reasons["IM4"] == "missing ImagePositionPatient (0020,0032)"
    assert reasons["IM5"] == "missing PixelSpacing (0028,0030)"
    assert reasons["IM6"].startswith("invalid ImageOrientationPatient")
    assert reasons["report"].startswith("not an image: SR")
    (series,) = result.all_series()
    assert series.shape == (3, 8, 8)
    # the dropped slices leave a gap, which is reported
    assert any("gap" in w for w in series.warnings)


def test_read_frames_raises_a_clear_error_naming_the_file(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DicomFileError, match=r"notes\.txt: not DICOM"):
        modic.dicomfolder.read_frames(bad)


def test_inconsistent_pixel_spacing_makes_the_stack_unusable(tmp_path):
    paths = _write_t1(tmp_path)
    ds = pydicom.dcmread(paths[1])
    ds.PixelSpacing = [0.5, 0.5]
    ds.save_as(paths[1])
    (series,) = modic.scan(tmp_path).all_series()
    assert not series.usable
    assert "inconsistent PixelSpacing" in series.problems[0]
    assert "IM2" in series.problems[0]
    with pytest.raises(modic.errors.GeometryError, match="inconsistent PixelSpacing"):
        modic.load_volume(series)


def test_file_deleted_after_scan_gives_an_error_naming_it(tmp_path):
    paths = _write_t1(tmp_path)
    (series,) = modic.scan(tmp_path).all_series()
    paths[2].unlink()
    with pytest.raises(DicomFileError, match="IM3"):
        modic.load_volume(series)


def test_file_without_preamble_is_read(tmp_path):
    write_series(
        tmp_path,
        volume_pattern(3, 4, 4),
        origin=(0, 0, 0),
        header=VENDORS["siemens"]["T1"],
        transfer_syntax="1.2.840.10008.1.2",
        preamble=False,
    )
    assert (tmp_path / "IM1").read_bytes()[128:132] != b"DICM"
    (series,) = modic.scan(tmp_path).all_series()
    vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array, volume_pattern(3, 4, 4))


def test_role_override_by_number_and_description(lumbar_study):
    result = modic.scan(lumbar_study.root, roles={"4": "T2", "t1_tse_sag": "PD"})
    roles = {s.key: s.role for s in result.all_series()}
    assert roles["4"] is Role.T2
    assert roles["2"] is Role.PD
    s4 = _one_series(result, 4)
    assert "by the user" in s4.identity.reasons[0]
    with pytest.raises(ValueError, match="no series matches"):
        modic.scan(lumbar_study.root, roles={"77": "T1"})


def test_scan_of_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        modic.scan(tmp_path / "nope")


def test_input_folder_is_not_modified(lumbar_study):
    before = {p: p.read_bytes() for p in lumbar_study.root.rglob("*") if p.is_file()}
    modic.load_study(lumbar_study.root)
    after = {p: p.read_bytes() for p in lumbar_study.root.rglob("*") if p.is_file()}
    assert before == after
