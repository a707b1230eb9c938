"""Reading pixel data: values, dtypes, and what happens without a decoder."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from dicomfactory import VENDORS, write_series

import modic

# Run in a fresh interpreter in which the compression plugins cannot be imported, as on a
# machine where the extras are not installed.
_WITHOUT_CODECS = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {"openjpeg", "pylibjpeg", "libjpeg", "rle", "PIL", "gdcm", "jpeg_ls", "imagecodecs"}
    class _Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _Absent())
    """
)


def test_missing_jpeg2000_decoder_names_the_extra(tmp_path):
    pytest.importorskip("openjpeg", reason="writing the JPEG 2000 test file needs the 'jpeg' extra")
    pixels = np.random.default_rng(1).integers(0, 3000, size=(2, 64, 64), dtype=np.uint16)
    write_series(
        tmp_path, pixels, origin=(0, 0, 0), compress="1.2.840.10008.1.2.4.90", header=VENDORS["siemens"]["T1"]
    )
    code = _WITHOUT_CODECS + textwrap.dedent(
        f"""
        import modic
        (series,) = modic.scan({str(tmp_path)!r}).all_series()
        try:
            modic.load_volume(series)
        except modic.errors.MissingDependencyError as exc:
            print("EXTRA", exc.extra)
            print(exc)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "EXTRA jpeg" in r.stdout
    assert 'pip install "modic[jpeg]"' in r.stdout
    assert "JPEG 2000" in r.stdout
    assert "IM1" in r.stdout  # names a file of the series


def test_headers_of_compressed_series_are_listed_without_decoder(tmp_path):
    pytest.importorskip("openjpeg", reason="writing the JPEG 2000 test file needs the 'jpeg' extra")
    pixels = np.random.default_rng(1).integers(0, 3000, size=(2, 64, 64), dtype=np.uint16)
    write_series(
        tmp_path, pixels, origin=(0, 0, 0), compress="1.2.840.10008.1.2.4.90", header=VENDORS["siemens"]["T1"]
    )
    code = _WITHOUT_CODECS + f"import modic; print(modic.scan({str(tmp_path)!r}).all_series()[0].role.value)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "T1"


def test_signed_pixels_and_negative_intercept(tmp_path):
    pixels = np.array([[[-5, 0], [7, -32000]]], dtype=np.int16)
    write_series(tmp_path, pixels, origin=(0, 0, 0), intercept=-10.0, header=VENDORS["ge"]["T1"])
    vol = modic.load_volume(modic.scan(tmp_path).all_series()[0])
    np.testing.assert_array_equal(vol.array[0], [[-15, -10], [-3, -32010]])


def test_volume_repr_and_window(tmp_path):
    pixels = np.arange(2 * 10 * 10, dtype=np.uint16).reshape(2, 10, 10)
    write_series(tmp_path, pixels, origin=(0, 0, 0), series_number=7, header=VENDORS["siemens"]["T1"])
    vol = modic.load_volume(modic.scan(tmp_path).all_series()[0])
    assert "t1_tse_sag" in repr(vol) and "2x10x10" in repr(vol)
    lo, hi = vol.window(0, 100)
    assert (lo, hi) == (0.0, 199.0)


# --------------------------------------------------------------------------------------
# compressed frames decoded by imagecodecs in threads, checked against pydicom's decoding
# --------------------------------------------------------------------------------------
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"  # process 14, any predictor
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEGLS_LOSSLESS = "1.2.840.10008.1.2.4.80"
# which pydicom plugin module decodes each syntax (the reference); imagecodecs encodes ljpeg
_REFERENCE_MODULE = {
    J2K_LOSSLESS: "openjpeg",
    HTJ2K_LOSSLESS: "openjpeg",
    JPEG_LOSSLESS: "libjpeg",
    JPEG_LOSSLESS_SV1: "libjpeg",
    JPEGLS_LOSSLESS: "jpeg_ls",
}


def _encode(frame: np.ndarray, ts: str, bits_stored: int, coded_signed: bool | None = None) -> bytes:
    """One frame's codestream. ``coded_signed``: JPEG 2000 only, code the samples with this
    signedness whatever the array's (as some encoders do, see J2K_pixelrep_mismatch)."""
    signed = frame.dtype.kind == "i"
    pattern = (frame.astype(np.int64) & ((1 << bits_stored) - 1)).astype(np.uint16)  # stored bits
    if ts in (J2K_LOSSLESS, HTJ2K_LOSSLESS) and coded_signed is not None and coded_signed != signed:
        codecs = pytest.importorskip("imagecodecs")
        if coded_signed:  # the stored bits read as a signed number of bits_stored bits
            half = 1 << (bits_stored - 1)
            values = np.where(pattern >= half, pattern.astype(np.int32) - 2 * half, pattern).astype(np.int16)
        else:
            values = pattern
        return bytes(codecs.jpeg2k_encode(values, level=0, codecformat="J2K", bitspersample=bits_stored))
    if ts == HTJ2K_LOSSLESS:
        return bytes(pytest.importorskip("imagecodecs").htj2k_encode(frame))
    if ts in (JPEG_LOSSLESS, JPEG_LOSSLESS_SV1):  # pydicom cannot encode JPEG: imagecodecs' libjpeg-turbo
        predictor = 1 if ts == JPEG_LOSSLESS_SV1 else 5
        codecs = pytest.importorskip("imagecodecs")
        return bytes(
            codecs.jpeg8_encode(pattern, lossless=True, predictor=predictor, bitspersample=bits_stored)
        )
    from pydicom.pixels import get_encoder

    return bytes(
        get_encoder(ts).encode(
            np.ascontiguousarray(frame),
            rows=frame.shape[0],
            columns=frame.shape[1],
            samples_per_pixel=1,
            bits_allocated=16,
            bits_stored=bits_stored,
            pixel_representation=int(signed),
            photometric_interpretation="MONOCHROME2",
            number_of_frames=1,
        )
    )


def _compress_file(
    path,
    frames: np.ndarray,
    ts: str,
    *,
    bits_stored: int = 16,
    fragments: int = 1,
    offsets: str = "basic",
    coded_signed: bool | None = None,
) -> None:
    """Rewrite an uncompressed file (from dicomfactory) with ``frames`` compressed in ``ts``.

    ``offsets``: "basic" (Basic Offset Table filled), "empty" (empty BOT), "extended"
    (Extended Offset Table, empty BOT; one fragment per frame).
    """
    import pydicom
    from pydicom.encaps import encapsulate, encapsulate_extended

    ds = pydicom.dcmread(path)
    streams = [_encode(f, ts, bits_stored, coded_signed) for f in frames]
    if offsets == "extended":
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(streams)
    else:
        ds.PixelData = encapsulate(streams, fragments_per_frame=fragments, has_bot=offsets == "basic")
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = ts
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(frames.dtype.kind == "i")
    ds.save_as(path, enforce_file_format=True)


def _pixels(n: int, rows: int, cols: int, signed: bool, bits_stored: int, seed: int = 0) -> np.ndarray:
    """Smooth-ish values that use the whole range of ``bits_stored`` (negatives when signed)."""
    rng = np.random.default_rng(seed)
    half = 1 << (bits_stored - 1)
    lo, hi = (-half, half - 1) if signed else (0, 2 * half - 1)
    s, r, c = np.meshgrid(np.arange(n), np.arange(rows), np.arange(cols), indexing="ij")
    base = lo + (s * 997 + r * 131 + c * 61) % (hi - lo + 1)
    noisy = base + rng.integers(-50, 50, size=base.shape)
    out = np.clip(noisy, lo, hi)
    out.flat[0], out.flat[1] = lo, hi  # both extremes appear
    return out.astype(np.int16 if signed else np.uint16)


def _pydicom_frames(path) -> np.ndarray:
    """pydicom's decoding of every frame of a file: (n, rows, cols); the reference."""
    import pydicom

    arr = pydicom.dcmread(path).pixel_array
    return arr.reshape((-1, *arr.shape[-2:]))


def _decode_fast(series) -> list[np.ndarray]:
    """The stored values of every frame through modic's imagecodecs path (no fallback)."""
    from modic.volume import _decode_with_imagecodecs

    out: list[np.ndarray] = [np.empty(0)] * len(series.frames)

    def sink(i, arr):
        out[i] = arr

    _decode_with_imagecodecs(series.frames, sink)
    return out


def _check_against_pydicom(series, caplog) -> None:
    """The imagecodecs path gives pydicom's stored values, and load_volume uses it."""
    fast = _decode_fast(series)
    cache: dict = {}
    for frame, got in zip(series.frames, fast, strict=True):
        if frame.path not in cache:
            cache[frame.path] = _pydicom_frames(frame.path)
        expected = cache[frame.path][frame.frame_index]
        assert got.dtype == expected.dtype, frame.name
        np.testing.assert_array_equal(got, expected, err_msg=frame.name)
    with caplog.at_level("DEBUG", logger="modic.volume"):
        vol = modic.load_volume(series)
    assert any("decoded by imagecodecs" in r.getMessage() for r in caplog.records), caplog.text
    for i, f in enumerate(series.frames):
        real = cache[f.path][f.frame_index] * np.float32(f.rescale_slope) + np.float32(f.rescale_intercept)
        np.testing.assert_array_equal(vol.array[i], real, err_msg=f.name)


SINGLE_FRAME_CASES = [
    # (transfer syntax, signed, bits stored, coded signedness for J2K or None)
    pytest.param(J2K_LOSSLESS, False, 16, None, id="j2k-u16"),
    pytest.param(J2K_LOSSLESS, True, 16, None, id="j2k-s16"),
    pytest.param(J2K_LOSSLESS, True, 13, False, id="j2k-s13-coded-unsigned"),
    pytest.param(J2K_LOSSLESS, False, 12, True, id="j2k-u12-coded-signed"),
    pytest.param(HTJ2K_LOSSLESS, True, 16, None, id="htj2k-s16"),
    pytest.param(JPEGLS_LOSSLESS, False, 16, None, id="jpegls-u16"),
    pytest.param(JPEGLS_LOSSLESS, True, 16, None, id="jpegls-s16"),
    pytest.param(JPEGLS_LOSSLESS, True, 12, None, id="jpegls-s12"),
    pytest.param(JPEG_LOSSLESS_SV1, False, 12, None, id="jpeg-lossless-sv1-u12"),
    pytest.param(JPEG_LOSSLESS_SV1, True, 16, None, id="jpeg-lossless-sv1-s16"),
    pytest.param(JPEG_LOSSLESS_SV1, True, 12, None, id="jpeg-lossless-sv1-s12"),
    pytest.param(JPEG_LOSSLESS, True, 16, None, id="jpeg-lossless-p14-s16"),
]


@pytest.mark.parametrize(("ts", "signed", "bits_stored", "coded_signed"), SINGLE_FRAME_CASES)
def test_imagecodecs_single_frame_files_match_pydicom(
    tmp_path, caplog, ts, signed, bits_stored, coded_signed
):
    pytest.importorskip("imagecodecs")
    pytest.importorskip(_REFERENCE_MODULE[ts], reason="pydicom's reference decoder is not installed")
    pixels = _pixels(4, 40, 36, signed, bits_stored)
    paths = write_series(tmp_path, pixels, origin=(0, 0, 0), intercept=-3.0, header=VENDORS["ge"]["T1"])
    for path, frame in zip(paths, pixels, strict=True):
        _compress_file(path, frame[None], ts, bits_stored=bits_stored, coded_signed=coded_signed)
    (series,) = modic.scan(tmp_path).all_series()
    _check_against_pydicom(series, caplog)
    vol = modic.load_volume(series)  # and the values are the written ones
    np.testing.assert_array_equal(vol.array, pixels.astype(np.float32) - 3.0)


@pytest.mark.parametrize(
    ("ts", "fragments", "offsets"),
    [
        pytest.param(J2K_LOSSLESS, 1, "basic", id="j2k-bot"),
        pytest.param(J2K_LOSSLESS, 3, "basic", id="j2k-bot-3-fragments"),
        pytest.param(J2K_LOSSLESS, 3, "empty", id="j2k-no-bot-3-fragments"),
        pytest.param(J2K_LOSSLESS, 1, "extended", id="j2k-extended-offsets"),
        pytest.param(JPEGLS_LOSSLESS, 2, "empty", id="jpegls-no-bot-2-fragments"),
        pytest.param(JPEG_LOSSLESS_SV1, 2, "basic", id="jpeg-lossless-bot-2-fragments"),
    ],
)
def test_imagecodecs_enhanced_multiframe_matches_pydicom(tmp_path, caplog, ts, fragments, offsets):
    from dicomfactory import write_enhanced

    pytest.importorskip("imagecodecs")
    pytest.importorskip(_REFERENCE_MODULE[ts], reason="pydicom's reference decoder is not installed")
    pixels = _pixels(5, 48, 40, True, 16, seed=2)
    order = [3, 0, 4, 1, 2]  # frames stored out of spatial order
    path = write_enhanced(tmp_path / "enh.dcm", pixels.view(np.uint16), origin=(0, 0, 0), frame_order=order)
    _compress_file(path, pixels[order], ts, fragments=fragments, offsets=offsets)
    (series,) = modic.scan(tmp_path).all_series()
    assert [f.frame_index for f in series.frames] == [order.index(k) for k in range(5)]
    _check_against_pydicom(series, caplog)
    np.testing.assert_array_equal(modic.load_volume(series).array, pixels.astype(np.float32))


def test_imagecodecs_threads_give_the_same_frames(tmp_path):
    from modic.volume import _decode_with_imagecodecs

    pytest.importorskip("imagecodecs")
    pytest.importorskip("openjpeg")
    pixels = _pixels(6, 32, 32, True, 16, seed=4)
    paths = write_series(tmp_path, pixels, origin=(0, 0, 0), header=VENDORS["siemens"]["T1"])
    for path, frame in zip(paths, pixels, strict=True):
        _compress_file(path, frame[None], J2K_LOSSLESS)
    (series,) = modic.scan(tmp_path).all_series()
    for threads in (1, 3):
        got: dict[int, np.ndarray] = {}
        how = _decode_with_imagecodecs(series.frames, got.__setitem__, threads=threads)
        assert how.startswith("imagecodecs.jpeg2k_decode, ") and f"{threads} thread" in how
        np.testing.assert_array_equal(np.stack([got[i] for i in range(6)]), pixels)


def _loadable_copy(name: str, folder):
    """A copy of one of pydicom's test files with what modic's scan needs to make a series
    of it (position, orientation, spacing, UIDs), the pixel data untouched; None if absent."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    path = get_testdata_file(name, download=False)
    if path is None:
        return None
    ds = pydicom.dcmread(path)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not ds.get(keyword):
            setattr(ds, keyword, generate_uid(entropy_srcs=[name, keyword]))
    if "ImagePositionPatient" not in ds:
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.0, 1.0]
    if "SOPClassUID" not in ds:
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    folder.mkdir()
    out = folder / "image"
    ds.save_as(out, enforce_file_format=True)
    return out


PYDICOM_TEST_FILES = [
    # (file, pydicom plugin module used as the reference, largest difference allowed)
    ("MR_small_jp2klossless.dcm", "openjpeg", 0),
    ("J2K_pixelrep_mismatch.dcm", "openjpeg", 0),  # PixelRepresentation 1, coded unsigned
    ("693_J2KI.dcm", "openjpeg", 0),  # lossy JPEG 2000, signed 16-bit CT
    ("JPEG2000.dcm", "openjpeg", 0),
    ("MR_small_jpeg_ls_lossless.dcm", "jpeg_ls", 0),  # signed 16-bit
    ("JPEGLSNearLossless_08.dcm", "jpeg_ls", 0),
    ("JPEGLSNearLossless_16.dcm", "jpeg_ls", 0),
    # 12-bit lossy JPEG Extended: libjpeg-turbo (imagecodecs) gives exactly what GDCM's IJG
    # libjpeg gives; pylibjpeg-libjpeg's IDCT rounds 3612 of its pixels the other way
    ("JPGExtended.dcm", "libjpeg", 1),
]


@pytest.mark.parametrize(("name", "module", "tolerance"), PYDICOM_TEST_FILES)
def test_pydicom_test_files_load_as_pydicom_decodes_them(tmp_path, caplog, name, module, tolerance):
    pytest.importorskip(module, reason="pydicom's reference decoder is not installed")
    path = _loadable_copy(name, tmp_path / "copy")
    if path is None:
        pytest.skip(f"{name} is not in the installed pydicom's data")
    import pydicom

    ds = pydicom.dcmread(path)
    reference = _pydicom_frames(path)[0].astype(np.float64)
    expected = reference * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    (series,) = modic.scan(tmp_path).all_series()
    with caplog.at_level("DEBUG", logger="modic.volume"):
        vol = modic.load_volume(series)
    np.testing.assert_allclose(
        vol.array[0], expected, rtol=0, atol=tolerance * float(ds.get("RescaleSlope", 1) or 1)
    )
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return
    assert any("decoded by imagecodecs" in r.getMessage() for r in caplog.records), caplog.text
    if tolerance == 0:  # and the stored values, dtype included, are pydicom's
        (got,) = _decode_fast(series)
        assert got.dtype == _pydicom_frames(path)[0].dtype
        np.testing.assert_array_equal(got, _pydicom_frames(path)[0])


class _BrokenCodecs:
    """Stands for imagecodecs with a JPEG 2000 decoder that misbehaves."""

    def __init__(self, decode):
        self.jpeg2k_decode = decode


def _failing_decode(data: bytes) -> np.ndarray:
    raise RuntimeError("opj_decode failed")


@pytest.mark.parametrize(
    "decode",
    [
        pytest.param(_failing_decode, id="raises"),
        pytest.param(lambda data: np.zeros((3, 3), np.int16), id="wrong-shape"),
        pytest.param(lambda data: np.zeros((32, 32), np.float32), id="wrong-dtype"),
        pytest.param(lambda data: np.zeros((32, 32), np.uint16), id="wrong-signedness"),
    ],
)
def test_imagecodecs_trouble_falls_back_to_pydicom(tmp_path, monkeypatch, caplog, decode):
    from modic import volume

    pytest.importorskip("openjpeg", reason="writing the JPEG 2000 test file needs the 'jpeg' extra")
    pixels = _pixels(2, 32, 32, True, 16, seed=5)
    write_series(tmp_path, pixels, origin=(0, 0, 0), compress=J2K_LOSSLESS, header=VENDORS["siemens"]["T1"])
    monkeypatch.setattr(volume, "_imagecodecs", lambda: _BrokenCodecs(decode))
    (series,) = modic.scan(tmp_path).all_series()
    with caplog.at_level("DEBUG", logger="modic.volume"):
        vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array, pixels.astype(np.float32))
    assert any("imagecodecs path failed" in r.getMessage() for r in caplog.records), caplog.text


def test_without_imagecodecs_pydicom_decodes(tmp_path, monkeypatch, caplog):
    from modic import volume

    pytest.importorskip("openjpeg", reason="writing the JPEG 2000 test file needs the 'jpeg' extra")
    pixels = _pixels(2, 32, 32, False, 16, seed=6)
    write_series(tmp_path, pixels, origin=(0, 0, 0), compress=J2K_LOSSLESS, header=VENDORS["siemens"]["T1"])
    monkeypatch.setattr(volume, "_imagecodecs", lambda: None)
    (series,) = modic.scan(tmp_path).all_series()
    with caplog.at_level("DEBUG", logger="modic.volume"):
        vol = modic.load_volume(series)
    np.testing.assert_array_equal(vol.array, pixels.astype(np.float32))
    assert any("imagecodecs is not installed" in r.getMessage() for r in caplog.records), caplog.text


def test_uncompressed_series_skip_imagecodecs(tmp_path, monkeypatch):
    from modic import volume

    def fail() -> None:
        raise AssertionError("imagecodecs asked for an uncompressed series")

    monkeypatch.setattr(volume, "_imagecodecs", fail)
    pixels = _pixels(2, 8, 8, True, 16)
    write_series(tmp_path, pixels, origin=(0, 0, 0), header=VENDORS["siemens"]["T1"])
    (series,) = modic.scan(tmp_path).all_series()
    np.testing.assert_array_equal(modic.load_volume(series).array, pixels.astype(np.float32))


def test_jpeg_precision_reads_the_frame_header():
    from modic.volume import _jpeg_precision

    sof3 = b"\xff\xc3\x00\x0b\x0c\x00\x02\x00\x02\x01\x01\x11\x00"  # lossless, P=12
    jfif = b"\xff\xe0\x00\x04\x00\x00"  # an APPn segment first
    assert _jpeg_precision(b"\xff\xd8" + jfif + sof3) == 12
    assert _jpeg_precision(b"\xff\xd8\xff\xf7\x00\x0b\x10") == 16  # JPEG-LS SOF55
    assert _jpeg_precision(b"\xff\xd8\xff\xc4\x00\x02\xff\xda\x00\x02") is None  # DHT, then scan
    assert _jpeg_precision(b"\xff\x4f\xff\x51") is None  # a JPEG 2000 codestream
