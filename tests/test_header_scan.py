"""The scan's fast header parse (only :data:`modic.dicomfolder.SCAN_KEYWORDS`) against
pydicom's full parse, the reference: the same frames, the same values of every element the
scan reads, the same sequence evidence and the same skip reasons, file by file, on the sample
data, pydicom's own test files (GDCM, DCMTK, vendors) and files written by the test factory
(classic and Enhanced MR of every vendor)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_lumbar_study
from dicomfactory import volume_pattern, write_enhanced
from pydicom.data import get_testdata_files

import modic
import modic.dicomfolder as dicomfolder
from modic._fastheader import FastHeader
from modic.sequence import SequenceInfo


def _read(path: Path, full: bool, fast: bool = False) -> tuple[object, object]:
    """(header or None, frames or the skip reason), parsing all elements when ``full``,
    with modic's own parser for the common case when ``fast``."""
    saved = dicomfolder._SCAN_TAGS
    if full:
        dicomfolder._SCAN_TAGS = None
    try:
        ds, frames = dicomfolder._read_frames(path, fast=fast)
    except dicomfolder._Skip as exc:
        return None, f"skipped: {exc} (study {exc.study_uid!r})"
    finally:
        dicomfolder._SCAN_TAGS = saved
    return ds, frames


def _assert_same(path: Path) -> None:
    ref_ds, ref = _read(path, full=True)
    for fast in (False, True):  # pydicom with specific_tags; modic's parser (or pydicom)
        got_ds, got = _read(path, full=False, fast=fast)
        assert got == ref, (path, fast)
        if ref_ds is None:
            continue
        own = isinstance(got_ds, FastHeader)
        for keyword in dicomfolder._FAST_KEYWORDS if own else dicomfolder.SCAN_KEYWORDS:
            assert (keyword in got_ds) == (keyword in ref_ds), (path, keyword)
            assert got_ds.get(keyword) == ref_ds.get(keyword), (path, keyword)
            assert type(got_ds.get(keyword)) is type(ref_ds.get(keyword)), (path, keyword)
        assert tuple(got_ds.original_encoding[:2]) == tuple(ref_ds.original_encoding[:2]), path
        if not own:
            assert got_ds.get(0x20011003) == ref_ds.get(0x20011003), path
            assert SequenceInfo.from_dataset(got_ds) == SequenceInfo.from_dataset(ref_ds), path
    # the scan's record, its sequence evidence included
    header = dicomfolder.read_header(path)
    if ref_ds is None:
        assert header == dicomfolder.SkippedFile(
            path, ref.split("skipped: ", 1)[1].rsplit(" (study ", 1)[0], header.study_uid
        )
        return
    assert header.sequence == SequenceInfo.from_dataset(ref_ds), path
    assert header == dicomfolder.FileHeader.from_dataset(ref_ds, ref), path


def _files(folder: Path) -> list[Path]:
    return sorted(Path(d) / n for d, _, names in os.walk(folder) for n in names)


def test_sample_data_reads_the_same_as_a_full_parse():
    files = _files(modic.data.sample_data_dir())
    assert len(files) > 200
    for f in files:
        _assert_same(f)


def test_pydicoms_test_files_read_the_same_as_a_full_parse():
    files = [Path(p) for p in get_testdata_files()]
    assert len(files) > 50
    n_read = 0
    for f in files:
        _assert_same(f)
        n_read += _read(f, full=False)[0] is not None
    assert n_read > 10  # MR_small in its encodings, CT, emri, ...


@pytest.mark.parametrize("vendor", ["siemens", "ge", "philips"])
def test_factory_studies_read_the_same_as_a_full_parse(tmp_path, vendor):
    write_lumbar_study(tmp_path / "classic", vendor)
    write_enhanced(
        tmp_path / "enhanced.dcm",
        volume_pattern(5, 16, 16),
        origin=(10.0, -20.0, 30.0),
        frame_order=[4, 2, 0, 1, 3],
    )
    files = _files(tmp_path)
    assert len(files) > 30
    for f in files:
        _assert_same(f)


def test_a_scan_is_the_same_with_the_full_parse(monkeypatch):
    """Series, roles, reasons, warnings and skipped files of the sample data's scan."""

    def summary(result: modic.ScanResult) -> list[object]:
        out: list[object] = [(f.path, f.reason, f.study_uid) for f in result.skipped]
        for st in result.studies:
            out.append((st.study_uid, st.description, st.date, st.patient_id, st.accession_number))
            for s in st.series:
                out.append(
                    (
                        s.key,
                        s.series_uid,
                        s.role,
                        s.plane,
                        s.identity,
                        s.sequence,
                        s.frames,
                        s.warnings,
                        s.problems,
                        s.description,
                        s.image_type,
                    )
                )
                if s.geometry is not None:
                    out.append(np.asarray(s.geometry.positions).tolist())
        return out

    fast = summary(modic.scan(modic.data.sample_data_dir()))
    monkeypatch.setattr(dicomfolder, "_SCAN_TAGS", None)
    assert fast == summary(modic.scan(modic.data.sample_data_dir()))


def test_the_fast_parser_reads_the_common_case_and_hands_the_rest_to_pydicom():
    from pydicom.data import get_testdata_file

    from modic._fastheader import FastHeader

    def kind(path: Path) -> str:
        with open(path, "rb") as fp:
            parsed = dicomfolder._fast_parse(fp, path.stat().st_size)
        if parsed is None:
            return "pydicom"
        assert isinstance(parsed[0], FastHeader)
        return "fast"

    sample = modic.data.sample_data_dir()
    classic = [f for f in _files(sample / "siemens_15T_type1_type2") if f.name != "README.md"]
    assert {kind(f) for f in classic} == {"fast"}  # explicit VR little endian, classic MR
    enhanced = _files(sample / "philips_15T_mixed23_enhanced")
    assert "pydicom" in {kind(f) for f in enhanced}  # Enhanced MR functional groups
    assert kind(Path(get_testdata_file("MR_small_implicit.dcm"))) == "fast"
    for name in ["MR_small_bigendian.dcm", "image_dfl.dcm"]:  # big endian, deflate
        assert kind(Path(get_testdata_file(name))) == "pydicom"


def test_repeated_values_are_shared_only_when_immutable_and_never_across_character_sets(tmp_path):
    # the parser keeps converted values that repeat from file to file; a list (MultiValue)
    # or a PersonName must be each file's own, and the same bytes under another character
    # set must be converted again
    import pydicom

    import modic._fastheader as fh

    write_lumbar_study(tmp_path / "study", "siemens")
    files = sorted((tmp_path / "study").rglob("*.dcm")) or sorted(
        p for p in (tmp_path / "study").rglob("*") if p.is_file()
    )
    fh._CACHE.clear()
    (h1, _), (h2, _) = (_read(f, full=False, fast=True) for f in files[:2])
    assert isinstance(h1, FastHeader) and isinstance(h2, FastHeader)
    assert h1.get("SeriesInstanceUID") == h2.get("SeriesInstanceUID")
    assert h1.get("ImageType") == h2.get("ImageType") and h1.get("ImageType") is not h2.get("ImageType")
    assert h1.get("PatientName") is not h2.get("PatientName")
    assert fh._CACHE  # something was kept
    # the same raw bytes decoded as Latin-1 and as ISO 2022 IR 100 / UTF-8 differ
    ds = pydicom.dcmread(files[0])
    raw = "Müller".encode("latin-1")
    for charset, text in (("ISO_IR 100", "Müller"), ("ISO_IR 192", raw.decode("utf-8", "replace"))):
        ds.SpecificCharacterSet = charset
        ds[0x00081030].value = raw  # StudyDescription, as its stored bytes
        path = tmp_path / f"{charset}.dcm"
        ds.save_as(path)
        header, _ = _read(path, full=False, fast=True)
        reference, _ = _read(path, full=True)
        assert header.get("StudyDescription") == reference.get("StudyDescription")
        assert header.get("StudyDescription") == text
