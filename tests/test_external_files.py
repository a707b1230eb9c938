"""Files written by other generators: the DICOM test files that ship with pydicom (from
GDCM, DCMTK, vendors), read by modic and checked against pydicom's own decoding."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import modic

MR_SMALL_ENCODINGS = [
    "MR_small.dcm",  # explicit VR little endian
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_bigendian.dcm",  # explicit VR big endian (retired)
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",  # trailing padding after pixel data
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
]


@pytest.mark.parametrize("name", MR_SMALL_ENCODINGS)
def test_mr_small_in_every_encoding_matches_pydicom(name, tmp_path):
    if name.endswith("jp2klossless.dcm"):
        pytest.importorskip("openjpeg", reason="JPEG 2000 needs the 'jpeg' extra")
    if name.endswith("jpeg_ls_lossless.dcm"):
        pytest.importorskip("jpeg_ls", reason="JPEG-LS needs the 'jpeg' extra")
    path = get_testdata_file(name)
    shutil.copy(path, tmp_path / "image")  # no extension, as in archives
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():  # pydicom notes the padding of MR_small_padded
        warnings.simplefilter("ignore")
        reference = ds.pixel_array
    expected = reference.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0)
    )
    (series,) = modic.scan(tmp_path).all_series()
    vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array[0], expected)
    np.testing.assert_allclose(series.frames[0].position, [float(v) for v in ds.ImagePositionPatient])
    assert series.plane is modic.Plane.AXIAL  # MR_small is an axial slice


def test_scanning_pydicoms_test_files_skips_the_unusable_with_reasons():
    folder = Path(get_testdata_file("MR_small.dcm")).parent
    result = modic.scan(folder)
    reasons = {f.path.name: f.reason for f in result.skipped}
    assert reasons["MR_truncated.dcm"].startswith("truncated file")
    assert reasons["rtplan.dcm"].startswith("not an image: RTPLAN")
    assert reasons["README.txt"].startswith("not DICOM")
    assert reasons["DICOMDIR"].startswith("DICOMDIR")
    assert reasons["SC_rgb_rle.dcm"].startswith("not a greyscale MR image")
    # every MR_small copy is the same SOP instance: one series, duplicates reported
    mr = [s for s in result.all_series() if s.frames[0].path.name == "MR_small.dcm"]
    assert len(mr) == 1 and mr[0].shape == (1, 64, 64)
    assert any("the same SOP instance twice" in w for w in mr[0].warnings)
