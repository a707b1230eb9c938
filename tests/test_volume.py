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
    BLOCKED = {"openjpeg", "pylibjpeg", "libjpeg", "rle", "PIL", "gdcm", "jpeg_ls"}
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
    write_series(tmp_path, pixels, origin=(0, 0, 0), compress="1.2.840.10008.1.2.4.90",
                 header=VENDORS["siemens"]["T1"])
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
    write_series(tmp_path, pixels, origin=(0, 0, 0), compress="1.2.840.10008.1.2.4.90",
                 header=VENDORS["siemens"]["T1"])
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
