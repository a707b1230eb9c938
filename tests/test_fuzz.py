"""Mutation and property-based fuzzing of the three readers that take files from users:
the DICOM header reader (:func:`modic.dicomfolder.read_frames` through :func:`modic.scan`),
the pixel reader (:func:`modic.load_volume`) and the annotation reader
(:func:`modic.annotations.read_annotations`).

Every input either reads or fails with one of modic's own errors (:class:`modic.errors.ModicError`)
naming the file; nothing else may escape (no ``TypeError`` from deep inside numpy, no
``RecursionError``, no ``MemoryError``). Each test is bounded: a fixed number of examples,
derandomised (the same inputs on every run and every machine), small files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from dicomfactory import VENDORS, volume_pattern, write_series
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modic
from modic.annotations import read_annotations
from modic.dicomfolder import read_frames
from modic.errors import AnnotationFormatError, DicomFileError, ModicError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


# ----------------------------------------------------------------------------------------
# DICOM: byte mutations of a real file
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dicom_bytes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One small native and one RLE-compressed T1 slice, as written by pydicom."""
    out = {}
    for name, compress in (("native", None), ("rle", "1.2.840.10008.1.2.5")):
        folder = tmp_path_factory.mktemp(name)
        paths = write_series(
            folder, volume_pattern(1, 12, 10), origin=(0, 0, 0), compress=compress, header=VENDORS["ge"]["T1"]
        )
        out[name] = paths[0].read_bytes()
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random edits: flipped bytes, a truncation, an insertion or a deletion, a
    length field blown up (the kind of damage real transfers and tools do)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(("flip", "flip", "truncate", "insert", "delete", "ff"))
        i = rng.randrange(len(b)) if b else 0
        if op == "flip" and b:
            b[i] = rng.randrange(256)
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == "delete":
            del b[i : i + rng.randint(1, 16)]
        elif op == "ff" and len(b) > i + 4:
            b[i : i + 4] = b"\xff\xff\xff\x7f"  # a huge 32-bit length
    return bytes(b)


@pytest.mark.parametrize("kind", ["native", "rle"])
@FUZZ
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_damaged_dicom_file_reads_or_fails_with_modics_error(
    tmp_path: Path, dicom_bytes: dict[str, bytes], kind: str, seed: int
) -> None:
    path = tmp_path / f"IM{seed}"
    path.write_bytes(_mutate(dicom_bytes[kind], random.Random(seed)))
    try:
        read_frames(path)
    except DicomFileError as e:
        assert str(path) in str(e)
    result = modic.scan(path)  # the scan skips what read_frames refuses, with a reason
    assert len(result.skipped) + sum(len(s.frames) for s in result.all_series()) >= 1
    assert all(f.reason for f in result.skipped)
    for series in result.all_series():
        try:
            vol = modic.load_volume(series)
        except ModicError as e:
            assert str(e)
        else:
            assert vol.array.dtype == np.float32 and vol.array.size <= 12 * 10 * 4


# ----------------------------------------------------------------------------------------
# annotations: structural mutations of a valid document, and arbitrary JSON
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def annotation_doc() -> dict:
    path = modic.data.sample_annotations_path("siemens_15T_type1_type2")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["rois"] = doc["rois"][:3]
    return doc


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _replace(obj: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        return {**obj, head: _replace(obj[head], rest, value)}
    assert isinstance(obj, list)
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(obj)]


@FUZZ
@given(data=st.data())
def test_a_mutated_annotation_document_reads_or_fails_with_modics_error(
    tmp_path: Path, annotation_doc: dict, data: st.DataObject
) -> None:
    doc: object = annotation_doc
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        where = data.draw(st.sampled_from(paths))
        doc = _replace(doc, where, data.draw(_JSON))
    path = tmp_path / "case.modic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        read_annotations(path)
    except AnnotationFormatError as e:
        assert str(path) in str(e)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_as_an_annotation_file_fail_with_modics_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "case.modic.json"
    path.write_bytes(raw)
    with pytest.raises(AnnotationFormatError):
        read_annotations(path)
