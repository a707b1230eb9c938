"""The persistent header index (:mod:`modic.index`): the same scan with and without it,
only new or changed files parsed again, rows of deleted files removed, a corrupt index
rebuilt with a warning, and several processes writing one index at once."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import write_lumbar_study

import modic
import modic.dicomfolder as dicomfolder
from modic.index import HeaderIndex


def _summary(result: modic.ScanResult) -> list[object]:
    out: list[object] = [(f.path, f.reason, f.study_uid) for f in result.skipped]
    for st in result.studies:
        out.append(
            (
                st.study_uid,
                st.description,
                st.date,
                st.patient_name,
                st.patient_id,
                st.accession_number,
                st.folders,
            )
        )
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
                    s.number,
                    s.modality,
                    s.manufacturer,
                    s.frame_of_reference_uid,
                    s.sop_class_uid,
                )
            )
            if s.geometry is not None:
                out.append(np.asarray(s.geometry.positions).tolist())
    return out


class _Counter:
    """Wraps dicomfolder.read_header, counting the files parsed."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self._read = dicomfolder.read_header

    def __call__(self, path: Path, **kwargs: object) -> object:
        self.paths.append(Path(path))
        return self._read(path, **kwargs)


@pytest.fixture
def counted(monkeypatch):
    counter = _Counter()
    monkeypatch.setattr(dicomfolder, "read_header", counter)
    return counter


def test_scan_with_the_index_is_the_scan_without(tmp_path, counted):
    sample = modic.data.sample_data_dir()
    index = tmp_path / "out" / "index.sqlite"
    plain = _summary(modic.scan(sample))
    n_calls = len(counted.paths)  # every file, and the first of each stack again (by pydicom)
    assert len(set(counted.paths)) > 200
    first = _summary(modic.scan(sample, index=index))  # fills the index
    assert len(counted.paths) == 2 * n_calls
    second = _summary(modic.scan(sample, index=index))  # all from the index
    assert len(counted.paths) == 2 * n_calls
    assert first == plain
    assert second == plain


def test_only_new_and_changed_files_are_parsed_again(tmp_path, counted):
    write_lumbar_study(tmp_path / "study", "ge")
    index = tmp_path / "out" / "index.sqlite"
    before = modic.scan(tmp_path / "study", index=index)
    files = sorted(p for p in (tmp_path / "study").rglob("*") if p.is_file())
    assert sorted(set(counted.paths)) == files

    counted.paths.clear()
    modic.scan(tmp_path / "study", index=index)
    assert counted.paths == []  # unchanged: nothing parsed

    # a changed file (same size, new content and mtime), a new file, a replaced file (new inode)
    t1 = [s for s in before.all_series() if s.role is modic.Role.T1][0]
    changed = t1.frames[0].path
    raw = bytearray(changed.read_bytes())
    raw[-1] ^= 0xFF  # a pixel
    changed.write_bytes(bytes(raw))
    os.utime(changed, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns + 10**9))
    new = changed.parent / "copy_of_first"
    shutil.copy(t1.frames[1].path, new)
    replaced = t1.frames[2].path
    st = os.stat(replaced)
    tmp = replaced.with_name("tmp")
    shutil.copy(replaced, tmp)
    os.replace(tmp, replaced)
    os.utime(replaced, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, new inode
    assert os.stat(replaced).st_ino != st.st_ino

    counted.paths.clear()
    after = modic.scan(tmp_path / "study", index=index)
    assert set(counted.paths) == {changed, new, replaced}
    counted.paths.clear()
    assert _summary(after) == _summary(modic.scan(tmp_path / "study"))


def test_rows_of_deleted_files_are_removed_and_a_truncated_file_is_read_again(tmp_path, counted):
    write_lumbar_study(tmp_path / "study", "siemens")
    index = tmp_path / "index.sqlite"
    first = modic.scan(tmp_path / "study", index=index)
    t1 = [s for s in first.all_series() if s.role is modic.Role.T1][0]
    gone = t1.frames[0].path
    gone.unlink()
    truncated = t1.frames[1].path
    truncated.write_bytes(truncated.read_bytes()[:-100])
    counted.paths.clear()
    result = modic.scan(tmp_path / "study", index=index)
    # the truncated file, and the T1's new first file: the header of the series now, whose
    # sequence evidence (worked out only for the first file of each stack) was not indexed
    assert set(counted.paths) == {truncated, t1.frames[2].path}
    reasons = {f.path: f.reason for f in result.skipped}
    assert reasons[truncated].startswith("truncated file")
    rows = {r[0] for r in sqlite3.connect(index).execute("SELECT path FROM headers")}
    assert str(gone) not in rows and str(truncated) in rows
    # the skip reason comes from the index too
    counted.paths.clear()
    again = modic.scan(tmp_path / "study", index=index)
    assert counted.paths == []
    assert {f.path: f.reason for f in again.skipped} == reasons


def test_a_corrupt_index_is_rebuilt_with_a_warning(tmp_path, counted, caplog):
    write_lumbar_study(tmp_path / "study", "philips")
    index = tmp_path / "index.sqlite"
    index.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="modic.index"):
        result = modic.scan(tmp_path / "study", index=index)
    assert any("cannot be read" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "index.sqlite.corrupt").read_bytes().startswith(b"this is not")
    assert _summary(result) == _summary(modic.scan(tmp_path / "study"))
    counted.paths.clear()
    modic.scan(tmp_path / "study", index=index)
    assert counted.paths == []  # the rebuilt index serves the next scan


def test_a_tampered_record_is_read_again(tmp_path, counted, caplog):
    write_lumbar_study(tmp_path / "study", "ge")
    index = tmp_path / "index.sqlite"
    modic.scan(tmp_path / "study", index=index)
    with sqlite3.connect(index) as db:
        (path,) = db.execute("SELECT path FROM headers LIMIT 1").fetchone()
        db.execute("UPDATE headers SET record = '{\"frames\": 3}' WHERE path = ?", (path,))
    counted.paths.clear()
    with caplog.at_level(logging.WARNING, logger="modic.index"):
        result = modic.scan(tmp_path / "study", index=index)
    assert set(counted.paths) == {Path(path)}
    assert any("unreadable record" in r.getMessage() for r in caplog.records)
    assert _summary(result) == _summary(modic.scan(tmp_path / "study"))


def _scan_in_process(args: tuple[str, str]) -> tuple[int, int]:
    folder, index = args
    with HeaderIndex(index) as idx:
        files = dicomfolder._list_files(folder)[1]
        idx.headers(files, dicomfolder.read_header)
        return idx.parsed, idx.reused


def test_processes_writing_one_index_at_once_lose_no_rows(tmp_path):
    folders = []
    for i, vendor in enumerate(["siemens", "ge", "philips", "siemens"]):
        write_lumbar_study(tmp_path / f"s{i}", vendor)
        folders.append(str(tmp_path / f"s{i}"))
    index = str(tmp_path / "out" / "index.sqlite")
    n_files = sum(len(dicomfolder._list_files(f)[1]) for f in folders)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.map(_scan_in_process, [(f, index) for f in folders])
    assert sum(p for p, _ in counts) == n_files
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.map(_scan_in_process, [(f, index) for f in folders])
    assert counts == [(0, len(dicomfolder._list_files(f)[1])) for f in folders]


def _batch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    sample = modic.data.sample_data_dir()
    for name in ["siemens_15T_type1_type2", "ge_3T_type3_mixed12"]:
        shutil.copytree(sample / name, root / name)
        shutil.copy(modic.data.sample_annotations_path(name), root / f"{name}.modic.json")
    return root


def test_batch_with_a_header_index_rescans_an_edited_study_without_parsing(tmp_path, counted):
    from modic.batch import run_batch

    root = _batch_root(tmp_path)
    plain = run_batch(root, tmp_path / "plain", workers=1)
    n_files = len(counted.paths)
    assert plain.n_failed == 0 and plain.n_ok == 2
    index = tmp_path / "out" / ".modic-index.sqlite"
    run_batch(root, tmp_path / "out", workers=1, header_index=index)
    assert len(counted.paths) == 2 * n_files  # the same files read, as often
    assert (tmp_path / "out" / "results.csv").read_bytes() == (
        tmp_path / "plain" / "results.csv"
    ).read_bytes()
    # an edited annotation file: its study is classified again, its headers come from the index
    ann = root / "ge_3T_type3_mixed12.modic.json"
    ann.write_text(ann.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    counted.paths.clear()
    again = run_batch(root, tmp_path / "out", workers=1, header_index=index)
    assert (again.n_computed, again.n_up_to_date) == (1, 1)
    assert counted.paths == []
    assert (tmp_path / "out" / "results.csv").read_bytes() == (
        tmp_path / "plain" / "results.csv"
    ).read_bytes()


def test_batch_refuses_a_header_index_inside_a_study_folder(tmp_path):
    from modic.batch import OutputFolderError, run_batch

    root = _batch_root(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(OutputFolderError, match=r"--header-index .*idx.sqlite: .* inside the study folder"):
        run_batch(root, tmp_path / "out", workers=1, header_index=root / "ge_3T_type3_mixed12" / "idx.sqlite")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_a_folder_name_that_is_not_utf8_is_indexed_and_reused(tmp_path, counted):
    # a name with the Latin-1 byte 0xE9: Python holds it as a surrogate, which SQLite
    # cannot store as text (under LC_ALL=C with UTF-8 mode off every non-ASCII name is
    # held that way): every study of such a folder failed at "load" with a
    # UnicodeEncodeError when the batch used a header index
    write_lumbar_study(tmp_path / "ascii" / "study", "siemens")
    root = tmp_path / os.fsdecode(b"\xe9tude")
    (tmp_path / "ascii").rename(root)
    index = tmp_path / "out" / "index.sqlite"
    plain = _summary(modic.scan(root))
    n_calls = len(counted.paths)
    first = _summary(modic.scan(root, index=index))
    assert len(counted.paths) == 2 * n_calls
    second = _summary(modic.scan(root, index=index))
    assert len(counted.paths) == 2 * n_calls  # every header from the index
    assert first == plain and second == plain
    rows = sqlite3.connect(index).execute("SELECT path FROM headers").fetchall()
    assert rows and all(r[0].startswith(os.path.join(str(tmp_path), "\\xe9tude") + os.sep) for r in rows)
