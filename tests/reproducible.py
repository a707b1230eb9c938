"""Compare generated files with the shipped ones the way they are reproducible on any CPU.

Floating-point results differ in their last bits from one CPU to another: numpy picks
SIMD versions of ``exp``, ``log``, ``arctan`` ... at run time (AVX-512, AVX2, SSE2, NEON)
and OpenBLAS a matrix kernel per CPU. Generated files therefore cannot be compared byte
for byte. What is reproducible, and what these helpers assert:

* DICOM: every data element but PixelData equal by value, file meta included (the UIDs
  too: the phantom derives them from the seed and integers, never from floats); the
  display window, which the phantom takes from percentiles of the stored pixels, within
  the pixels' tolerance; decoded pixel arrays within one stored unit (a value rounded the
  other way). Comparing decoded arrays also covers RLE and JPEG 2000 series, whose bytes
  change when a pixel does although they decode losslessly.
* JSON: equal after parsing, numbers within rounding (:data:`JSON_ABS_TOL`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.tag import Tag

PIXEL_DATA = Tag(0x7FE0, 0x0010)
#: Set by the phantom from the 1st and 99.5th percentiles of the stored pixels, rounded to
#: 0.01: a pixel one unit off may shift either end by one stored unit.
WINDOW = {Tag(0x0028, 0x1050), Tag(0x0028, 0x1051)}  # WindowCenter, WindowWidth

#: Absolute tolerance for JSON numbers, in pixels or mm. The files hold rounded values:
#: ROI vertices at 3 decimals (``modic.annotations.PIXEL_DECIMALS``), LPS outlines at 4,
#: truth geometry at 3-6. The vertices are corners of pixel masks, so they agree exactly
#: unless a mask pixel falls the other way, which moves or adds a vertex by half a pixel or
#: more and fails here, as it should. Any other value may move by one unit of its last
#: decimal when the unrounded value differs in its last bit, i.e. by 1e-3 at most;
#: 1.5e-3 allows for that difference not being exact in binary, and is still a thousandth
#: of a pixel or mm, well under anything a reader or the classifier can see.
JSON_ABS_TOL = 1.5e-3
JSON_REL_TOL = 1e-6


def assert_json_close(
    new: object,
    old: object,
    where: str = "$",
    *,
    rel_tol: float = JSON_REL_TOL,
    abs_tol: float = JSON_ABS_TOL,
) -> None:
    """Parsed JSON equal: same keys, lengths, strings, integers and booleans; floats close.

    Parameters
    ----------
    new, old : object
        Parsed JSON (``json.loads``).
    where : str
        Where ``new`` is, for the failure message (e.g. the file name).
    rel_tol, abs_tol : float
        As in :func:`math.isclose`, for pairs where either number is a float.
    """
    if isinstance(new, dict) and isinstance(old, dict):
        assert new.keys() == old.keys(), f"{where}: keys {sorted(new)} != {sorted(old)}"
        for k in new:
            assert_json_close(new[k], old[k], f"{where}.{k}", rel_tol=rel_tol, abs_tol=abs_tol)
    elif isinstance(new, list) and isinstance(old, list):
        assert len(new) == len(old), f"{where}: {len(new)} items != {len(old)}"
        for i, (x, y) in enumerate(zip(new, old, strict=True)):
            assert_json_close(x, y, f"{where}[{i}]", rel_tol=rel_tol, abs_tol=abs_tol)
    elif _is_number(new) and _is_number(old) and (isinstance(new, float) or isinstance(old, float)):
        assert math.isclose(new, old, rel_tol=rel_tol, abs_tol=abs_tol), f"{where}: {new!r} != {old!r}"  # type: ignore[arg-type]
    else:
        assert type(new) is type(old) and new == old, f"{where}: {new!r} != {old!r}"


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _max_slope(ds: Dataset) -> float:
    """The largest RescaleSlope anywhere in ``ds`` (functional groups included), else 1."""
    slopes = [1.0]
    for elem in ds.iterall():
        if elem.keyword == "RescaleSlope" and elem.value is not None:
            slopes.append(float(elem.value))
    return max(slopes)


def _assert_same_elements(new: Dataset, old: Dataset, where: str, window_tol: float) -> None:
    tags_new = {e.tag for e in new if e.tag != PIXEL_DATA}
    tags_old = {e.tag for e in old if e.tag != PIXEL_DATA}
    assert tags_new == tags_old, f"{where}: elements {sorted(tags_new ^ tags_old)} in only one file"
    for tag in sorted(tags_new):
        a, b = new[tag], old[tag]
        at = f"{where} {a.keyword or a.tag}"
        assert a.VR == b.VR, f"{at}: VR {a.VR} != {b.VR}"
        if a.VR == "SQ":
            assert len(a.value) == len(b.value), f"{at}: {len(a.value)} items != {len(b.value)}"
            for i, (x, y) in enumerate(zip(a.value, b.value, strict=True)):
                _assert_same_elements(x, y, f"{at}[{i}]", window_tol)
        elif tag in WINDOW:
            va, vb = np.atleast_1d(np.asarray(a.value, float)), np.atleast_1d(np.asarray(b.value, float))
            assert va.shape == vb.shape and np.all(np.abs(va - vb) <= window_tol), (
                f"{at}: {a.value} != {b.value}"
            )
        else:
            assert a.value == b.value, f"{at}: {a.value!r} != {b.value!r}"


def assert_same_dicom(new: Path, old: Path, where: str = "") -> None:
    """Two DICOM files equal in every header element, pixels within one stored unit.

    Parameters
    ----------
    new, old : Path
        The regenerated and the reference file.
    where : str
        Name for failure messages (default ``str(new)``).
    """
    where = where or str(new)
    a, b = pydicom.dcmread(new), pydicom.dcmread(old)
    # the window may move by one stored unit at either end, in real-world units, plus
    # its rounding to 0.01
    window_tol = 2 * _max_slope(b) + 0.0101
    _assert_same_elements(a.file_meta, b.file_meta, f"{where} file meta", window_tol)
    _assert_same_elements(a, b, where, window_tol)
    assert (PIXEL_DATA in a) == (PIXEL_DATA in b), f"{where}: PixelData in only one file"
    if PIXEL_DATA not in a:
        return
    pa, pb = a.pixel_array.astype(np.int64), b.pixel_array.astype(np.int64)
    assert pa.shape == pb.shape, f"{where}: pixel array {pa.shape} != {pb.shape}"
    diff = np.abs(pa - pb)
    worst = int(diff.max(initial=0))
    assert worst <= 1, (
        f"{where}: {int((diff > 1).sum())} of {diff.size} pixels differ by more than one stored unit "
        f"(at most {worst}, first at {tuple(int(i) for i in np.argwhere(diff > 1)[0])})"
    )
