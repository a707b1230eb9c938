"""Classify every annotated study under a folder, in parallel and resumably.

Layout
------
A batch is driven by annotation files. Every file named ``<name>.modic.json`` found under
ROOT (recursively; the output folder and symlinked folders are not searched) is one job,
and its study is the sibling folder ``<name>/`` next to it -- the layout that
:func:`modic.annotations.annotation_path_for` gives::

    ROOT/
      site-a/
        case7/                 <- DICOM files of one study (any layout inside)
        case7.modic.json       <- its annotations
      case8/
      case8.modic.json

An annotation file whose study folder is missing is reported as an error (stage
``"find"``); a study folder without annotation file is not a job and is not reported.
When the folder holds several studies, the one the annotations were drawn on
(``Annotations.study_instance_uid``) is read.

Outputs (in OUTDIR)
-------------------
Every column and key, with its unit, range and conventions: docs/results.md (results
format :data:`modic.columns.RESULTS_FORMAT`, JSON Schema :func:`modic.columns.schema_path`);
read them typed with :func:`modic.read_results`.

``results.csv``
    One row per endplate ROI, columns :data:`modic.results.RECORD_FIELDS`; ``study`` is the
    pseudonymous key. With ``include_identifiers`` the columns ``study_folder`` (relative
    to ROOT), ``study_instance_uid``, ``patient_id`` and ``patient_name`` follow.
``results.jsonl``
    The same results, one :meth:`ModicResult.to_dict` per line, in the same order.
``errors.csv``
    ``study, annotation_file, stage, message``: one row per study that failed (stage
    ``find``, ``fetch`` for a study a DICOMweb server could not deliver
    (:mod:`modic.dicomweb`), ``annotations``, ``load``, ``classify``, ``duplicate``, or
    ``worker`` when a worker process died) and per ROI that could not be measured (stage
    ``roi``; the study's other ROIs are still in the results). ``study`` is the
    pseudonymous key, as in results.csv (the two files join on it), whenever it is known
    -- from the images, or from the StudyInstanceUID the annotation file records -- and
    ``-`` otherwise; ``annotation_file`` is the annotation file's path relative to ROOT
    (the file or folder to fix).
``summary.json``
    Counts of studies and endplates per Modic type (``indeterminate`` on its own: neither
    a change nor normal), each study's measured contrast by its pseudonymous key
    (``"contrast": {key: StudyContrast.to_dict()}``: fat on every sequence, how well
    STIR suppresses it, marrow SNR), each study's candidacy by its key (``"candidacy":
    {key: Candidacy.to_dict()}``: the levels from L3/L4 to L5/S1 with a Modic 1 or 2
    change, the vertebral bodies they imply, the criterion of the FDA clearance of
    basivertebral nerve ablation with its source, as research information, not advice;
    :mod:`modic.candidacy`), any change and the worst type per disc level over
    the cohort (``by_level``) and per study (``by_study``, :mod:`modic.summary`), the
    results format and the modic version. No time stamps and no paths, so that equal
    inputs give byte-identical files.
``dicom/<key>/sr.dcm``, ``dicom/<key>/seg.dcm``
    With ``export``: each study's DICOM SR and SEG (:mod:`modic.sr`, :mod:`modic.seg`),
    in a folder named by its pseudonymous key. Unlike the tables, these DICOM objects
    carry the patient and study modules of the source images, as DICOM requires.
``levels.csv``, ``studies.csv``
    The cohort by disc level (studies read, with a change, the share, studies per worst
    type), and one row per study (any change, worst type, the worst type at every level).

Rows are ordered by annotation path (relative to ROOT), then as :func:`modic.classify`
returns them (head to foot).

Resuming
--------
Each finished study is stored as a shard ``OUTDIR/.modic-batch/<sha256 of its relative
annotation path>.json`` with its rows, its measured contrast and a fingerprint of its
inputs: the modic version, the classifier parameters, the options that change the rows,
the annotation file's size and modification time, and the relative path, size and
modification time of every file in the study folder. A rerun skips the studies whose
shard fingerprint matches and recomputes the others (``force=True`` recomputes all);
the output files are then assembled from the shards, read back one at a time in job
order and streamed into temporary files (summary.json's per-study sections spooled in
``.modic-batch``), so that the parent process holds counters, never the cohort's
records: its memory does not grow with the number of studies
(``benchmarks/bench_batch_memory.py``). Every file is written atomically (temporary
file, then :func:`os.replace`; a file that already holds the bytes is left alone), so a
run killed at any point leaves no half-written file under a final name, and an
interrupted run resumed with the same arguments ends with the same bytes as an
uninterrupted one (tested by SIGKILL at seeded random moments). The output files are
put in place one after the other, summary.json last: a run killed during that last
step can leave some files of the new run beside some of the previous one until it is
run again.

Patient name and ID, UIDs and folder names are kept out of every output, shards
included, unless ``include_identifiers`` is true (the relative annotation path in
``errors.csv`` excepted).

Examples
--------
>>> import tempfile, modic
>>> from modic.batch import run_batch
>>> out = tempfile.mkdtemp()
>>> summary = run_batch(modic.data.sample_data_dir(), out, workers=1)
>>> summary.n_ok, summary.n_failed, dict(summary.type_counts)
(4, 0, {'0': 37, '1': 2, '2': 3, '3': 1, '1/2': 1, '2/3': 0, 'indeterminate': 0})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import __version__
from ._io import _fsync_folder, _umask, atomic_write_text, output_error, utf8
from .errors import ClusterError, MissingDependencyError, ModicError, OutputFolderError

if TYPE_CHECKING:  # pragma: no cover
    from .annotations import ROI, Annotations
    from .series import ScanResult, Study

__all__ = [
    "ANNOTATION_SUFFIX",
    "IDENTIFIER_FIELDS",
    "ERROR_FIELDS",
    "STAGES",
    "EXPORTS",
    "EXPORT_DIR",
    "BatchJob",
    "BatchProgress",
    "BatchSummary",
    "OutputFolderError",
    "find_jobs",
    "check_outdir",
    "run_batch",
    "run_job",
    "study_for_annotations",
    "describe_roi_error",
]

logger = logging.getLogger(__name__)

#: Name ending of annotation files; ``case7.modic.json`` belongs to the folder ``case7/``.
ANNOTATION_SUFFIX = ".modic.json"
#: Columns added to ``results.csv`` (and keys to ``results.jsonl``) with ``include_identifiers``.
IDENTIFIER_FIELDS: tuple[str, ...] = ("study_folder", "study_instance_uid", "patient_id", "patient_name")
#: Columns of ``errors.csv``.
ERROR_FIELDS: tuple[str, ...] = ("study", "annotation_file", "stage", "message")
#: Stages at which a study (or one ROI) can fail, in the order they run.
#: ``fetch``: downloading the study from a DICOMweb server failed (:mod:`modic.dicomweb`).
STAGES: tuple[str, ...] = (
    "find",
    "fetch",
    "annotations",
    "load",
    "classify",
    "roi",
    "export",
    "worker",
    "duplicate",
)
#: DICOM objects ``run_batch(export=...)`` can write per study (:mod:`modic.sr`, :mod:`modic.seg`).
EXPORTS: tuple[str, ...] = ("sr", "seg")
#: Folder of OUTDIR holding the exported DICOM objects, one sub-folder per study key.
EXPORT_DIR = "dicom"

SHARD_DIR = ".modic-batch"
#: 2: shards carry the study's measured contrast (shards of format 1 are recomputed).
#: 3: rows of results format 2 (``type 1``, ``series 7``; docs/results.md).
#: 4: shards carry the study's candidacy (the FDA-clearance imaging criterion) and the
#: rows their extent (modic.extent, modic.candidacy).
#: 5: a study that fails to load is named by its key, from the annotation file's StudyInstanceUID.
SHARD_FORMAT = 5
OUTPUT_FILES: dict[str, str] = {
    "results": "results.csv",
    "results_jsonl": "results.jsonl",
    "errors": "errors.csv",
    "summary": "summary.json",
    "levels": "levels.csv",
    "studies": "studies.csv",
}
_TYPES = ("0", "1", "2", "3", "1/2", "2/3", "indeterminate")
_V = TypeVar("_V")


# -- finding the jobs ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchJob:
    """One study to classify: an annotation file and the study folder beside it.

    Attributes
    ----------
    annotation_path : Path
        Absolute path of ``<name>.modic.json``.
    study_dir : Path
        Absolute path of the sibling folder ``<name>/`` (it may not exist).
    relpath : str
        The annotation file's path relative to ROOT, with ``/`` separators: the job's
        name in logs and ``errors.csv``, and the sort key of the outputs.
    failure : (str, str) or None
        ``(stage, message)`` of a job that failed before it could run (e.g. a study
        that could not be fetched from a DICOMweb server): reported, never run.
    """

    annotation_path: Path
    study_dir: Path
    relpath: str
    failure: tuple[str, str] | None = None
    #: No annotation file: ROIs are proposed from the image (``modic batch --propose``)
    #: into ``annotation_path``, which lies in OUTDIR/proposed/.
    proposed: bool = False

    @property
    def study_relpath(self) -> str:
        """The study folder's path relative to ROOT, with ``/`` separators."""
        return self.relpath[: -len(ANNOTATION_SUFFIX)]

    @property
    def shard_name(self) -> str:
        """File name of the job's shard in ``OUTDIR/.modic-batch``."""
        return hashlib.sha256(utf8(self.relpath)).hexdigest() + ".json"


def _resolve(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.fspath(path))).resolve()


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_jobs(root: str | os.PathLike[str], outdir: str | os.PathLike[str] | None = None) -> list[BatchJob]:
    """The annotation files under a folder, each with its study folder.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``*.modic.json`` (symlinked folders not followed).
    outdir : path-like, optional
        An output folder to leave out of the search when it lies inside ``root``.

    Returns
    -------
    list of BatchJob
        Sorted by the annotation file's path relative to ``root``. ``study_dir`` may not
        exist (see :func:`run_batch`, stage ``"find"``).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.

    Examples
    --------
    >>> import modic
    >>> [j.relpath for j in find_jobs(modic.data.sample_data_dir())][:2]
    ['ge_3T_type3_mixed12.modic.json', 'philips_15T_mixed23_enhanced.modic.json']
    """
    return _walk_root(root, outdir).jobs


@dataclass
class _Listing:
    """What a study folder holds, as the walk of ROOT found it (:func:`_walk_root`).

    Attributes
    ----------
    files : list of (str, int, int)
        ``(relative path, size, mtime_ns)`` of every entry that is not a folder, symlinks
        followed, in the order walked; those that cannot be stat-ed (a dangling symlink, a
        file removed meanwhile) are left out, as :func:`_folder_listing` leaves them.
    linked : bool
        It holds a symlink to a folder, which the walk does not follow (and
        :func:`_folder_listing` does).
    """

    files: list[tuple[str, int, int]] = field(default_factory=list)
    linked: bool = False


@dataclass
class _Tree:
    """ROOT walked once: the jobs, and what every study folder holds (its fingerprint's
    listing), so that a rerun walks each folder once, not once for the annotation files
    and again for the fingerprints."""

    jobs: list[BatchJob] = field(default_factory=list)
    #: absolute path of each study folder walked -> what it holds
    listings: dict[str, _Listing] = field(default_factory=dict)

    def listing(self, folder: Path) -> list[tuple[str, int, int]] | None:
        """:func:`_folder_listing` of a study folder, from the walk (no system call); None
        when the walk cannot give it (a study folder that is a symlink or holds one to a
        folder, or one the walk did not reach): :func:`_folder_listing` follows those."""
        found = self.listings.get(os.fspath(folder))
        if found is None or found.linked:
            return None
        return sorted(found.files)


def _is_symlink(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:  # as os.walk: walked into
        return False


def _walk_root(root: str | os.PathLike[str], outdir: str | os.PathLike[str] | None = None) -> _Tree:
    """Walk ``root`` once with :func:`os.scandir`: the jobs (as :func:`find_jobs` gives
    them), and the size and modification time of every file in each study folder.

    Symlinked folders are not followed, ``outdir`` is not entered, and a folder that
    cannot be read is skipped (as :func:`os.walk` does). Only the files inside study
    folders are stat-ed, each once (a study folder inside another one is listed in both).
    """
    top = _resolve(root)
    if not top.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    skip = None if outdir is None else os.fspath(_resolve(outdir))
    tree = _Tree()
    # (absolute path, its path relative to top with a trailing "/", the study folders it
    # lies in with its path relative to each); every folder walked is a real path under
    # the resolved top (symlinks are not followed)
    todo: list[tuple[str, str, tuple[tuple[_Listing, str], ...]]] = [(os.fspath(top), "", ())]
    while todo:
        path, rel, owners = todo.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        files: list[os.DirEntry[str]] = []
        folders: list[str] = []
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(e)
            elif _is_symlink(e):
                for listing, _ in owners:
                    listing.linked = True
            else:
                folders.append(e.name)
        studies = set()
        for e in files:
            name = e.name
            if name.endswith(ANNOTATION_SUFFIX) and name != ANNOTATION_SUFFIX:
                stem = name[: -len(ANNOTATION_SUFFIX)]
                studies.add(stem)
                tree.jobs.append(BatchJob(Path(path, name), Path(path, stem), rel + name))
        if owners:
            for e in files:
                try:
                    st = e.stat()  # follows symlinks, as os.stat
                except OSError:  # dangling symlink, or removed meanwhile
                    continue
                for listing, prefix in owners:
                    listing.files.append((prefix + e.name, st.st_size, st.st_mtime_ns))
        for d in folders:
            sub = os.path.join(path, d)
            if sub == skip:
                continue
            inner = tuple((listing, prefix + d + "/") for listing, prefix in owners)
            if d in studies:
                tree.listings[sub] = _Listing()
                inner += ((tree.listings[sub], ""),)
            todo.append((sub, rel + d + "/", inner))
    tree.jobs.sort(key=lambda j: j.relpath)
    return tree


def check_outdir(
    root: str | os.PathLike[str], outdir: str | os.PathLike[str], jobs: Sequence[BatchJob]
) -> None:
    """Refuse an output folder that would write into the inputs.

    Raises
    ------
    OutputFolderError
        If ``outdir`` is ``root`` itself, lies inside one of the jobs' study folders, or
        is an existing file.
    """
    out, top = _resolve(outdir), _resolve(root)
    if out == top:
        raise OutputFolderError(f"the output folder {outdir} is the input folder; choose a separate one")
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"the output folder {outdir} is a file; choose a folder")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputFolderError(
            f"the output folder {outdir} lies under {above}, which is a file; choose a folder"
        )
    # OUTDIR lies inside a study folder when the folder (symlinks followed) is OUTDIR or
    # one of its existing parents: the same folder, (st_dev, st_ino), one stat per job
    around = set()
    for p in (out, *out.parents):
        with contextlib.suppress(OSError):
            st = p.stat()
            around.add((st.st_dev, st.st_ino))
    for job in jobs:
        try:
            st = os.stat(job.study_dir)
        except OSError:  # no study folder: stage "find"
            continue
        if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) in around:
            raise OutputFolderError(
                f"the output folder {outdir} lies inside the study folder {job.study_dir}; modic never "
                "writes into input folders: choose an output folder outside it"
            )


# -- one job ----------------------------------------------------------------------------


def study_for_annotations(result: ScanResult, annotations: Annotations, choice: str | None = None) -> Study:
    """The study of a scan that a set of annotations was drawn on.

    Parameters
    ----------
    result : ScanResult
    annotations : Annotations
    choice : str, optional
        The user's choice (study key, StudyInstanceUID or AccessionNumber); wins.

    Returns
    -------
    Study
        The study whose StudyInstanceUID the annotations name; the only study when the
        annotations name none (or when there is a single study and no choice).

    Raises
    ------
    SeriesSelectionError
        If the annotations' study is not in the scan, or the choice matches none.
    """
    from .errors import SeriesSelectionError
    from .series import pseudonym
    from .study import select_study

    uid = annotations.study_instance_uid
    if not result.studies:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped_summary().items()))
        raise SeriesSelectionError(
            f"no DICOM images found under {result.root} ({result.n_files} files looked at"
            + (f"; skipped: {why})" if why else ")")
        )
    if choice is not None or not uid:
        return select_study(result, choice)
    for st in result.studies:
        if st.study_uid == uid:
            return st
    keys = ", ".join(st.key for st in result.studies) or "none"
    raise SeriesSelectionError(
        f"the annotations were drawn on study {pseudonym(uid)}, which is not under {result.root} "
        f"(studies found: {keys}); are the annotations next to the right folder?"
    )


def _error(study: str, stage: str, message: str) -> dict[str, str]:
    return {"study": study, "stage": stage, "message": message}


def describe_roi_error(roi: ROI, message: str) -> str:
    """An ROI's measurement error as ``"ROI L4 inferior (<id>): <what is wrong>"``.

    The label is not repeated when the message already starts with it.
    """
    head = f"ROI {roi.label}"
    if message.startswith(head + " ("):
        return message
    message = message[len(head) + 2 :] if message.startswith(head + ": ") else message
    return f"{head} ({roi.id}): {message}"


def _relative(text: str, root: str) -> str:
    """Paths in a message made relative to ROOT: shorter, and the same wherever ROOT is."""
    return text.replace(root.rstrip(os.sep) + os.sep, "")


def _message(exc: BaseException, root: str) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, ModicError | OSError):
        text = f"{type(exc).__name__}: {text}"
    return _relative(text, root)


class _QuietLogs:
    """Silence modic's own warnings during a job (they become error rows or result warnings)."""

    def __enter__(self) -> None:
        self._log = logging.getLogger("modic")
        self._level = self._log.level
        self._log.setLevel(max(logging.ERROR, self._level))

    def __exit__(self, *exc: object) -> None:
        self._log.setLevel(self._level)


def _for_file(outcome: Mapping[str, Any], relpath: str) -> Mapping[str, Any]:
    """The outcome with ``annotation_file`` on every error row, and a ``study`` that was only
    the path (the key unknown) emptied: errors.csv joins results.csv on ``study``."""
    errors = [
        {**e, "study": None if e.get("study") == relpath else e.get("study"), "annotation_file": relpath}
        for e in outcome["errors"]
    ]
    return {**outcome, "errors": errors}


def run_job(
    annotation_path: str,
    study_dir: str,
    root: str,
    relpath: str,
    include_identifiers: bool = False,
    export: Sequence[str] = (),
    export_dir: str = "",
    propose: bool = False,
    with_origin: bool = False,
    index_path: str = "",
) -> dict[str, Any]:
    """Classify one study; the worker function of :func:`run_batch`.

    Never raises for a bad study: every failure becomes an error row. Takes and returns
    plain data, so that it runs in another process or on a Dask worker.

    Parameters
    ----------
    annotation_path, study_dir : str
        Absolute paths of the annotation file and the study folder.
    root : str
        Absolute path of the batch's root folder (messages give paths relative to it).
    relpath : str
        The annotation file's path relative to ``root`` (names the study in error rows
        until its key is known).
    include_identifiers : bool
        Add :data:`IDENTIFIER_FIELDS` to the rows.
    propose : bool
        The study has no annotation file: propose its ROIs (:func:`modic.propose.propose`),
        write them to ``annotation_path`` (in OUTDIR) and classify them (stage ``"propose"``
        when no spine is found).
    with_origin : bool
        Add ``roi_origin`` (drawn / proposed / derived / imported) to every row.
    index_path : str
        The header index (:mod:`modic.index`) to scan the study with; "" for none.

    Returns
    -------
    dict
        ``study`` (key or None), ``ok`` (no study-level error), ``records`` (list of
        :meth:`ModicResult.to_record` dicts), ``dicts`` (:meth:`ModicResult.to_dict`),
        ``contrast`` (the study's :meth:`StudyContrast.to_dict`, or None), ``errors``
        (list of ``{"study", "stage", "message"}``).
    """
    out: dict[str, Any] = {
        "study": None,
        "ok": False,
        "records": [],
        "dicts": [],
        "contrast": None,
        "candidacy": None,
        "errors": [],
    }
    with _QuietLogs():
        if propose:
            proposed = _propose_job(annotation_path, study_dir, root, relpath)
            if isinstance(proposed, dict):
                out["errors"].append(proposed)
                return out
            annotations = proposed
        else:
            try:
                from .annotations import read_annotations

                annotations = read_annotations(annotation_path)
            except Exception as exc:  # noqa: BLE001 -- every failure becomes an error row
                out["errors"].append(_error(relpath, "annotations", _message(exc, root)))
                return out
        from .series import pseudonym

        uid = annotations.study_instance_uid
        known = pseudonym(uid) if uid else relpath  # the key of the study the ROIs were drawn on
        try:
            from .dicomfolder import scan
            from .study import load_study

            study = load_study(study_for_annotations(scan(study_dir, index=index_path or None), annotations))
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(_error(known, "load", _message(exc, root)))
            return out
        key = study.key
        out["study"] = key
        roi_errors: list[tuple[ROI, str]] = []
        try:
            from .reading import classify

            results = classify(study, annotations, errors=roi_errors)
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(_error(key, "classify", _message(exc, root)))
            return out
    extra: dict[str, Any] = {}
    if include_identifiers:
        st = study.study
        extra = {
            "study_folder": relpath[: -len(ANNOTATION_SUFFIX)],
            "study_instance_uid": st.study_uid,
            "patient_id": st.patient_id,
            "patient_name": st.patient_name,
        }
    origin: dict[str, str] = {}
    if with_origin:
        origin = {roi.id: roi.origin for roi in annotations.rois}
        out["proposed"] = propose
    out["ok"] = True
    out["records"] = [{**r.to_record(), **extra, **_origin(r, origin, with_origin)} for r in results]
    out["dicts"] = [{**r.to_dict(), **extra, **_origin(r, origin, with_origin)} for r in results]
    out["contrast"] = None if results.contrast is None else results.contrast.to_dict()
    out["candidacy"] = results.candidacy.to_dict() if len(results) else None
    out["errors"] = [
        _error(key, "roi", _relative(describe_roi_error(roi, msg), root)) for roi, msg in roi_errors
    ]
    if export:
        out["errors"] += _export(study, annotations, results, export, Path(export_dir) / key, key, root)
    return out


def _origin(result: Any, origin: Mapping[str, str], with_origin: bool) -> dict[str, str]:
    """``{"roi_origin": ...}`` of a result's endplate ROI (only in ``--propose`` batches)."""
    if not with_origin:
        return {}
    return {"roi_origin": origin.get(result.roi_id, "drawn")}


def _propose_job(annotation_path: str, study_dir: str, root: str, relpath: str) -> Any:
    """Proposed annotations of an unannotated study, written to ``annotation_path``
    (in OUTDIR, never the input); an error row when they cannot be proposed."""
    try:
        from .annotations import write_annotations
        from .dicomfolder import scan
        from .propose import propose_rois
        from .study import load_study, select_study

        study = load_study(select_study(scan(study_dir), None))
        annotations = propose_rois(study)
        Path(annotation_path).parent.mkdir(parents=True, exist_ok=True)
        write_annotations(annotations, annotation_path)
    except Exception as exc:  # noqa: BLE001 -- every failure becomes an error row
        return _error(relpath, "propose", _message(exc, root))
    return annotations


#: Folder of OUTDIR holding the annotation files proposed by ``modic batch --propose``.
PROPOSED_DIR = "proposed"


def _looks_like_dicom(folder: Path, limit: int = 200) -> bool:
    """Whether a folder holds a DICOM file (the 'DICM' preamble) among its first files."""
    seen = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            if seen > limit:
                return False
            try:
                with open(os.path.join(dirpath, name), "rb") as fh:
                    head = fh.read(132)
            except OSError:
                continue
            if head[128:132] == b"DICM" or name == "DICOMDIR":
                return True
    return False


def find_unannotated(
    root: str | os.PathLike[str], outdir: str | os.PathLike[str], jobs: Sequence[BatchJob]
) -> list[BatchJob]:
    """Study folders without an annotation file, as jobs whose ROIs are proposed.

    A study folder is a folder directly under ``root``, or beside an annotated study
    folder, that holds DICOM files (at any depth) and has no ``NAME.modic.json`` beside
    it. Its proposed annotation file is ``OUTDIR/proposed/<relpath>.modic.json``.
    """
    top = _resolve(root)
    out = _resolve(outdir)
    annotated = {j.study_dir.resolve() for j in jobs}
    parents = {top} | {j.study_dir.resolve().parent for j in jobs}
    found = []
    for parent in sorted(parents):
        if not parent.is_dir():
            continue
        for child in sorted(parent.iterdir()):
            if not child.is_dir() or child.is_symlink():
                continue
            c = child.resolve()
            if c in annotated or _is_within(out, c) or _is_within(c, out) or c.name.startswith("."):
                continue
            if (parent / (child.name + ANNOTATION_SUFFIX)).exists() or not _looks_like_dicom(c):
                continue
            rel = c.relative_to(top).as_posix() + ANNOTATION_SUFFIX
            found.append(BatchJob(out / PROPOSED_DIR / rel, c, rel, proposed=True))
    return found


def _export(
    study: Any, annotations: Any, results: Any, export: Sequence[str], folder: Path, key: str, root: str
) -> list[dict[str, str]]:
    """Write a study's SR / SEG into ``folder`` (``OUTDIR/dicom/<key>/``); error rows."""
    errors = []
    for kind in export:
        try:
            if kind == "sr":
                from .sr import write_sr

                write_sr(study, annotations, results, folder / "sr.dcm")
            else:
                from .seg import write_seg

                write_seg(study, annotations, folder / "seg.dcm")
        except Exception as exc:  # noqa: BLE001 -- the study's results stand; the export failed
            errors.append(_error(key, "export", f"{kind.upper()}: {_message(exc, root)}"))
    return errors


# -- fingerprints and shards ------------------------------------------------------------


def _folder_listing(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under a folder (symlinks followed once)."""
    out = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        here = Path(os.path.relpath(dirpath, folder)).as_posix()  # once per folder, not per file
        prefix = "" if here == "." else here + "/"
        for name in filenames:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:  # dangling symlink, or removed meanwhile
                continue
            out.append((prefix + name, st.st_size, st.st_mtime_ns))
    return sorted(out)


def _options(include_identifiers: bool, export: Sequence[str] = ()) -> dict[str, Any]:
    """The options that change a study's rows or files (part of its fingerprint)."""
    from ._parameters import DEFAULT_PARAMETERS  # not modic.criteria: no numpy to find nothing changed

    options: dict[str, Any] = {
        "include_identifiers": include_identifiers,
        "parameters": repr(DEFAULT_PARAMETERS),
        "seed": 0,
    }
    if export:  # only when asked, so that the shards of runs without export stay valid
        options["export"] = list(export)
    return options


def input_fingerprint(
    job: BatchJob, options: Mapping[str, Any], listing: Sequence[tuple[str, int, int]] | None = None
) -> str:
    """SHA-256 of everything a job's rows depend on (see the module docstring).

    Only the digest is stored, so that file names of the study folder stay out of the
    outputs.

    Parameters
    ----------
    job : BatchJob
    options : mapping
        The options that change the rows (:func:`_options`).
    listing : sequence of (str, int, int), optional
        The study folder's sorted ``(relative path, size, mtime_ns)`` as the walk of ROOT
        found them (:meth:`_Tree.listing`); listed here when not given.
    """
    if job.proposed:  # proposed anew whenever the study changes
        annotation: list[Any] = [job.relpath, "proposed"]
    else:
        st = job.annotation_path.stat()
        annotation = [job.relpath, st.st_size, st.st_mtime_ns]
    doc = {
        "format": SHARD_FORMAT,
        "modic": __version__,
        "options": dict(options),
        "annotation": annotation,
        "study_files": _folder_listing(job.study_dir) if listing is None else list(listing),
    }
    # names as their bytes on disk (utf8), so that the digest does not depend on the locale
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(utf8(text)).hexdigest()


def _write(path: Path, text: str) -> None:
    """Write atomically (:func:`atomic_write_text`), unless it already holds the text.

    A file that already holds ``text`` is left alone (a rerun with nothing to do changes
    nothing, modification times included).
    """
    try:
        if path.read_bytes() == utf8(text):
            return
    except OSError:
        pass
    atomic_write_text(path, text)


def _read_shard(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != SHARD_FORMAT:
        return None
    # a shard edited by hand (or by another tool) is recomputed, never trusted half-way
    kinds = {"ok": bool, "records": list, "dicts": list, "errors": list}
    if not all(isinstance(data.get(k), t) for k, t in kinds.items()) or not isinstance(
        data.get("study"), (str, type(None))
    ):
        logger.warning(
            "%s: not a result this modic wrote (fields missing or of the wrong type); recomputed", path
        )
        return None
    return data


def _write_shard(path: Path, fingerprint: str, outcome: Mapping[str, Any]) -> dict[str, Any]:
    data = {"format": SHARD_FORMAT, "fingerprint": fingerprint, **outcome}
    if path.is_dir() and not path.is_symlink():  # a folder in the way of one study's shard
        import shutil

        shutil.rmtree(path)
    _write(path, json.dumps(data, indent=1) + "\n")  # a full disk stops the run (OutputError)
    return data


def _remove_stale_temporaries(outdir: Path) -> None:
    """Temporary files left by a run killed while writing (``atomic_write_text`` names)."""
    names = tuple(f".{n}." for n in OUTPUT_FILES.values())
    for folder in (outdir, outdir / SHARD_DIR):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.endswith(".tmp") and (folder != outdir or p.name.startswith(names)):
                p.unlink(missing_ok=True)


# -- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchProgress:
    """One finished study, as reported to a ``progress`` callback.

    Attributes
    ----------
    done, total : int
        Studies finished so far, and to do, in this run (up-to-date studies not counted).
    relpath : str
        The annotation file's path relative to ROOT.
    study : str or None
        Pseudonymous key, when the study was loaded.
    ok : bool
        False when the study failed as a whole.
    endplates : int
        Endplates classified.
    roi_errors : int
        ROIs that could not be measured.
    stage, message : str
        Where and why the study failed (empty when ``ok``).
    """

    done: int
    total: int
    relpath: str
    study: str | None
    ok: bool
    endplates: int = 0
    roi_errors: int = 0
    stage: str = ""
    message: str = ""

    def line(self) -> str:
        """The parseable log line: ``study 3/12 ok <key> endplates=11``."""
        head = f"study {self.done}/{self.total}"
        if self.ok:
            tail = f" roi_errors={self.roi_errors}" if self.roi_errors else ""
            return f"{head} ok {self.study} endplates={self.endplates}{tail}"
        first = self.message.splitlines()[0] if self.message else ""
        return f"{head} failed {self.relpath} stage={self.stage}: {first}"

    def text(self) -> str:
        """:meth:`line` with the whole message: its further lines follow, indented."""
        rest = self.message.splitlines()[1:] if not self.ok else []
        return "\n    ".join([self.line(), *rest])


@dataclass
class BatchSummary:
    """What a batch run did and where its files are.

    Attributes
    ----------
    n_ok, n_failed : int
        Studies classified, and studies that failed as a whole.
    type_counts : dict of str to int
        Endplates per Modic type (``"0"``, ``"1"``, ``"2"``, ``"3"``, ``"1/2"``, ``"2/3"``),
        and ``"indeterminate"``: those the classifier could not type.
    paths : dict of str to Path
        The output files: ``results``, ``results_jsonl``, ``errors``, ``summary``.
    n_jobs : int
        Annotation files found.
    n_computed, n_up_to_date : int
        Studies computed in this run, and taken from up-to-date shards.
    n_roi_errors : int
        ROIs that could not be measured (in studies that otherwise succeeded).
    stages : dict of str to int
        Error rows per stage (see :data:`STAGES`), only the stages with errors.
    contrast : dict of str to dict
        Each classified study's measured contrast (:meth:`StudyContrast.to_dict`), by
        its pseudonymous key: ``summary.json``'s ``contrast``, read from the file when
        first asked (the run does not hold it, so that its memory stays flat in the
        cohort's size).
    elapsed_s : float
        Wall-clock seconds the run took.
    """

    n_ok: int
    n_failed: int
    type_counts: dict[str, int]
    paths: dict[str, Path]
    n_jobs: int = 0
    n_computed: int = 0
    n_up_to_date: int = 0
    n_roi_errors: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    _contrast: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def contrast(self) -> dict[str, dict[str, Any]]:
        """summary.json's ``contrast``: each classified study's measured contrast by key."""
        if self._contrast is None:
            data = json.loads(self.paths["summary"].read_text(encoding="utf-8"))
            self._contrast = dict(data.get("contrast", {}))
        return self._contrast

    @property
    def n_endplates(self) -> int:
        """Endplates classified."""
        return sum(self.type_counts.values())

    @property
    def ok(self) -> bool:
        """True when there was something to do and nothing failed (no study, no ROI)."""
        clean = self.n_failed == 0 and self.n_roi_errors == 0 and not self.stages.get("export")
        return self.n_jobs > 0 and clean


_Task = tuple[BatchJob, tuple[Any, ...]]
#: What an executor yields per job: run_job's outcome, or the exception of a lost worker.
_Done = tuple[BatchJob, dict[str, Any] | Exception]


def _run_in_process(tasks: Sequence[_Task]) -> Iterator[_Done]:
    for job, args in tasks:
        yield job, run_job(*args)


def _run_in_pool(tasks: Sequence[_Task], workers: int) -> Iterator[_Done]:
    import concurrent.futures
    import multiprocessing

    # spawn: the same on every platform, and safe when the caller runs threads
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_job, *args): job for job, args in tasks}
        try:
            for fut in concurrent.futures.as_completed(futures):
                try:
                    outcome: dict[str, Any] | Exception = fut.result()
                except Exception as exc:  # noqa: BLE001 -- a worker died (run_job itself never raises)
                    outcome = exc
                # forget the future (it holds the outcome), so that finished ones do not pile up
                yield futures.pop(fut), outcome
                del fut, outcome
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _import_dask() -> tuple[Any, Any, Any]:
    """``Client``, ``LocalCluster`` and ``as_completed`` of dask.distributed, or an install hint."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise MissingDependencyError(
            'running on a Dask cluster needs dask.distributed: pip install "modic[dask]"', extra="dask"
        ) from None
    return Client, LocalCluster, as_completed


#: Seconds to wait for a Dask scheduler to answer before giving up with one clear line.
DASK_CONNECT_TIMEOUT = 5.0


def _connect_dask(address: str, workers: int) -> tuple[Any, Any]:
    """A Client (and its LocalCluster for ``"local"``); a scheduler that does not answer
    within :data:`DASK_CONNECT_TIMEOUT` seconds is a :class:`ClusterError`."""
    Client, LocalCluster, _ = _import_dask()
    if address == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    if "://" not in address:
        raise ClusterError(
            f"--dask {address!r} is not a scheduler address: give tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786) "
            "or 'local'"
        )
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {DASK_CONNECT_TIMEOUT:g} s ({reason}); "
            "is it running, and is the address (host and port) right?"
        ) from None
    link = getattr(client, "dashboard_link", None)
    n = len(client.scheduler_info().get("workers", {}))
    logger.info("Dask scheduler %s: %d worker(s)%s", address, n, f", dashboard {link}" if link else "")
    if n == 0:
        logger.warning("the Dask scheduler at %s has no workers yet: studies wait until one joins", address)
    return client, None


def _run_on_dask(tasks: Sequence[_Task], address: str, workers: int) -> Iterator[_Done]:
    """Connect now (so that an unreachable scheduler fails at once), then yield as studies finish."""
    client, cluster = _connect_dask(address, workers)
    return _dask_results(tasks, client, cluster)


def _dask_results(tasks: Sequence[_Task], client: Any, cluster: Any) -> Iterator[_Done]:
    _, _, as_completed = _import_dask()
    try:
        futures = {client.submit(run_job, *args, pure=False): job for job, args in tasks}
        for fut in as_completed(futures):
            try:
                outcome: dict[str, Any] | Exception = fut.result()
            except Exception as exc:  # noqa: BLE001 -- worker lost
                outcome = exc
            yield futures.pop(fut), outcome  # released: the cluster forgets the result
            del fut, outcome
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _execute(tasks: Sequence[_Task], workers: int, dask_address: str | None) -> Iterator[_Done]:
    if not tasks:
        return iter(())
    if dask_address is not None:
        return _run_on_dask(tasks, dask_address, workers)
    if min(workers, len(tasks)) <= 1:
        return _run_in_process(tasks)
    return _run_in_pool(tasks, min(workers, len(tasks)))


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes (False when ``b`` is missing)."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


class _StreamedFile:
    """An output file written piece by piece into a temporary file beside it (named as
    :func:`modic._io.atomic_write_bytes` names them), then renamed over the final name
    (:meth:`commit`): a reader or a crash sees the old file or the whole new one. A file
    that already holds the same bytes is left alone, modification time included."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except OSError as exc:  # a full disk, a read-only folder: in words (modic.errors.OutputError)
            raise output_error(exc, path, "cannot write") from None
        self.fh = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115 -- closed in commit / discard

    def write(self, text: str) -> None:
        try:
            self.fh.write(text)
        except OSError as exc:
            raise output_error(exc, self.path, "cannot write") from None

    def commit(self) -> None:
        try:
            self._commit()
        except OSError as exc:
            raise output_error(exc, self.path, "cannot write") from None

    def _commit(self) -> None:
        self.fh.flush()
        if _same_bytes(self.tmp, self.path):
            self.discard()
            return
        os.fsync(self.fh.fileno())
        self.fh.close()
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(self.tmp, mode)
        os.replace(self.tmp, self.path)
        _fsync_folder(self.path.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # closing flushes: it fails again on a full disk
            self.fh.close()
        self.tmp.unlink(missing_ok=True)


#: summary.json's sections with one entry per study: spooled to temporary files in the
#: shard folder while the studies stream by, and copied into summary.json at the end.
_SPOOLED = ("contrast", "candidacy", "by_study")


class _Assembly:
    """The output files, written study by study in job order (:meth:`add`), and put in
    place together by :meth:`commit`.

    Only counters are held (per Modic type, stage and disc level): the rows go to
    temporary files as they come, so the memory of the batch's parent does not grow with
    the number of studies. The bytes are those the tables of the whole cohort give at once
    (:func:`modic.columns.csv_text`, :func:`modic.summary.summary_sections`).
    """

    def __init__(self, outdir: Path, spool_dir: Path, include_identifiers: bool, propose: bool) -> None:
        import csv

        from .columns import LEVEL_COLUMNS, STUDY_COLUMNS, TYPE_LABELS
        from .results import RECORD_FIELDS
        from .summary import LevelTally

        self.include_identifiers = include_identifiers
        self.propose = propose
        self.fields = list(RECORD_FIELDS) + (list(IDENTIFIER_FIELDS) if include_identifiers else [])
        if propose:  # modic batch --propose: where each row's ROIs came from
            self.fields.append("roi_origin")
        self.level_fields = [c.name for c in LEVEL_COLUMNS]
        self.study_fields = [c.name for c in STUDY_COLUMNS]
        self.paths = {k: outdir / v for k, v in OUTPUT_FILES.items()}
        self.files: dict[str, _StreamedFile] = {}
        try:
            for k in ("results", "results_jsonl", "errors", "studies", "levels", "summary"):
                self.files[k] = _StreamedFile(self.paths[k])
            for k in _SPOOLED:
                self.files[k] = _StreamedFile(spool_dir / k)
        except BaseException:
            self.discard()
            raise
        self.results = csv.writer(self.files["results"], lineterminator="\n")
        self.results.writerow(self.fields)
        self.errors = csv.DictWriter(
            self.files["errors"], fieldnames=list(ERROR_FIELDS), lineterminator="\n", extrasaction="ignore"
        )
        self.errors.writeheader()
        self.studies = csv.writer(self.files["studies"], lineterminator="\n")
        self.studies.writerow(self.study_fields)
        self.counts = {TYPE_LABELS[t]: 0 for t in _TYPES}
        self.stages = {s: 0 for s in STAGES}
        self.levels = LevelTally()
        self.n_total = self.n_ok = self.n_endplates = 0
        self.n_spooled = dict.fromkeys(_SPOOLED, 0)
        self.proposed: list[str] = []

    def _spool(self, section: str, key: str, value: Any) -> None:
        # an entry of a section of summary.json (json.dumps(summary, indent=2)): at depth 2
        sep = "," if self.n_spooled[section] else ""
        text = json.dumps(value, indent=2).replace("\n", "\n    ")
        self.files[section].write(f"{sep}\n    {json.dumps(key)}: {text}")
        self.n_spooled[section] += 1

    def add(self, o: Mapping[str, Any]) -> None:
        """One job's outcome (after :func:`_for_file`), in job order."""
        from .columns import csv_cell
        from .summary import by_study_entry, study_level_rows, study_rows

        self.n_total += 1
        self.n_ok += bool(o["ok"])
        records = o["records"]
        self.n_endplates += len(records)
        for r in records:
            t = str(r["modic_type"])
            self.counts[t] = self.counts.get(t, 0) + 1
            self.results.writerow([csv_cell(k, r.get(k), "results.csv") for k in self.fields])
        for d in o["dicts"]:
            self.files["results_jsonl"].write(json.dumps(d) + "\n")
        for e in o["errors"]:
            self.stages[e["stage"]] = self.stages.get(e["stage"], 0) + 1
            row = {**e, "study": e.get("study") or "-"}
            self.errors.writerow({k: "" if row.get(k) is None else row[k] for k in ERROR_FIELDS})
        if o["ok"] and o.get("contrast") is not None:
            self._spool("contrast", o["study"], o["contrast"])
        if o["ok"] and o.get("candidacy") is not None:
            self._spool("candidacy", o["study"], o["candidacy"])
        if records:  # one study (duplicates are gone): its rows of levels.csv, studies.csv, by_study
            per = study_level_rows(records)
            self.levels.add(per)
            for row in study_rows(records):
                self.studies.writerow([csv_cell(k, row.get(k), "studies.csv") for k in self.study_fields])
                self._spool("by_study", row["study"], by_study_entry(row, per))
        if self.propose and o.get("proposed") and o["study"]:
            self.proposed.append(o["study"])

    def summary(self) -> dict[str, Any]:
        """summary.json's content, the per-study sections as placeholders (:data:`_SPOOLED`)."""
        from .columns import RESULTS_FORMAT
        from .summary import by_level_entry

        summary: dict[str, Any] = {
            "modic_version": __version__,
            "results_format": RESULTS_FORMAT,
            "studies": {"total": self.n_total, "ok": self.n_ok, "failed": self.n_total - self.n_ok},
            "endplates": self.n_endplates,
            "type_counts": self.counts,
            # each study's own contrast (fat per sequence, fat suppression, marrow SNR), by study key
            "contrast": _placeholder("contrast"),
            # per study key: which levels meet the imaging criterion of the FDA clearance of
            # basivertebral nerve ablation -- research information with its source, not advice
            "candidacy": _placeholder("candidacy"),
            "errors": {s: n for s, n in self.stages.items() if n},
            "include_identifiers": self.include_identifiers,
            "files": {k: v for k, v in OUTPUT_FILES.items() if k != "summary"},
            # any change and the worst type, per disc level over the cohort and per study (modic.summary)
            "by_level": {row["level"]: by_level_entry(row) for row in self.levels.rows()},
            "by_study": _placeholder("by_study"),
        }
        if self.propose:
            summary["proposed_studies"] = sorted(self.proposed)
        return summary

    def commit(self) -> tuple[dict[str, Path], dict[str, Any]]:
        """Finish the files and put them in place (results first, summary.json last)."""
        import shutil

        from .columns import csv_text

        try:
            self.files["levels"].write(csv_text(self.level_fields, self.levels.rows(), "levels.csv"))
            summary = self.summary()
            text = json.dumps(summary, indent=2) + "\n"
            out = self.files["summary"]
            for section in _SPOOLED:
                head, text = text.split(json.dumps(_placeholder(section)), 1)
                out.write(head)
                spool = self.files[section]
                spool.fh.close()
                if self.n_spooled[section]:
                    out.write("{")
                    with open(spool.tmp, encoding="utf-8", newline="") as fh:
                        shutil.copyfileobj(fh, out.fh)
                    out.write("\n  }")
                else:
                    out.write("{}")
            out.write(text)
            for k in ("results", "results_jsonl", "errors", "levels", "studies", "summary"):
                self.files[k].commit()
        finally:
            self.discard()
        for section in _SPOOLED:  # only in the file
            del summary[section]
        return self.paths, summary

    def discard(self) -> None:
        """Remove the temporary files not yet put in place."""
        for f in self.files.values():
            with contextlib.suppress(OSError):
                f.discard()


def _placeholder(section: str) -> str:
    return f"@@modic-batch-{section}@@"


def _assemble(
    outdir: Path,
    outcomes: Iterable[tuple[BatchJob, Mapping[str, Any]]],
    include_identifiers: bool,
    propose: bool = False,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write the output files (atomically) from the jobs' outcomes, streamed in job order.

    Returns the paths and summary.json's content without its per-study sections
    (``contrast``, ``candidacy``, ``by_study``: they are only in the file).
    """
    assembly = _Assembly(outdir, outdir / SHARD_DIR, include_identifiers, propose)
    try:
        for job, outcome in _without_duplicates(outcomes):
            assembly.add(_for_file(outcome, job.relpath))
    except BaseException:
        assembly.discard()
        raise
    return assembly.commit()


def _without_duplicates(
    outcomes: Iterable[tuple[BatchJob, Mapping[str, Any]]],
) -> Iterator[tuple[BatchJob, Mapping[str, Any]]]:
    """The jobs' outcomes, in the order given, each study counted once.

    Exports copied twice (the same StudyInstanceUID under several folders, each with its
    annotation file) would otherwise be counted as separate studies, with their ROIs twice.
    The first in path order is kept; each later copy becomes one ``duplicate`` error row
    naming the kept one, and logs a warning.
    """
    first: dict[str, str] = {}  # key -> relpath: a few bytes per study
    for job, outcome in outcomes:
        key = outcome.get("study")
        if not key or not outcome.get("ok"):
            yield job, outcome
            continue
        if key not in first:
            first[key] = job.relpath
            yield job, outcome
            continue
        message = (
            f"the same study (StudyInstanceUID, key {key}) as {first[key]}: a second copy of it, "
            "counted once (remove one copy, or give the copies their own UIDs if they differ)"
        )
        logger.warning("%s: %s", job.relpath, message)
        error = _error(key, "duplicate", f"{job.relpath}: {message}")
        dropped = {"ok": False, "records": [], "dicts": [], "candidacy": None, "contrast": None}
        yield job, {**outcome, **dropped, "errors": [error]}


def _type_labels() -> dict[str, str]:
    from .columns import TYPE_LABELS

    return {t: TYPE_LABELS[t] for t in _TYPES}


def _worker_error(job: BatchJob, exc: Exception) -> dict[str, Any]:
    msg = f"the worker process running this study was lost ({type(exc).__name__}: {exc})"
    return {
        "study": None,
        "ok": False,
        "records": [],
        "dicts": [],
        "contrast": None,
        "errors": [_error(job.relpath, "worker", msg)],
    }


def _find_error(job: BatchJob) -> dict[str, Any]:
    stage, msg = job.failure or (
        "find",
        f"no study folder {job.study_relpath}/ beside the annotation file {job.relpath}",
    )
    return {
        "study": None,
        "ok": False,
        "records": [],
        "dicts": [],
        "contrast": None,
        "errors": [_error(job.relpath, stage, msg)],
    }


def run_batch(
    root: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    force: bool = False,
    include_identifiers: bool = False,
    dask_address: str | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    jobs: Sequence[BatchJob] | None = None,
    export: Sequence[str] = (),
    propose: bool = False,
    header_index: str | os.PathLike[str] | None = None,
) -> BatchSummary:
    """Classify every annotated study under ``root``; write the tables to ``outdir``.

    See the module docstring for the folder layout, the output files and how reruns
    resume.

    Parameters
    ----------
    root : path-like
        Folder holding ``<name>.modic.json`` annotation files beside ``<name>/`` study
        folders, at any depth.
    outdir : path-like
        Output folder (created). It may lie inside ``root`` (it is not searched) but not
        inside a study folder.
    workers : int, optional
        Worker processes (default :func:`os.cpu_count`); 1 runs in this process. With
        ``dask_address="local"``, the number of Dask workers.
    force : bool
        Recompute every study, even those with an up-to-date shard.
    include_identifiers : bool
        Add the study folder, StudyInstanceUID, patient ID and name to the rows.
    dask_address : str, optional
        Run on the Dask cluster at this scheduler address (``"tcp://host:8786"``), or on
        a new local cluster with ``"local"``. Needs the ``dask`` extra, and modic
        installed on the workers; ROOT must be reachable by the workers at the same path.
    progress : callable, optional
        Called with a :class:`BatchProgress` after each study; when not given, one log
        line per study is logged (INFO) instead.
    jobs : sequence of BatchJob, optional
        The jobs to run instead of those found under ``root`` (e.g. studies fetched
        from a DICOMweb server into a cache, :func:`modic.dicomweb.run_dicomweb_batch`);
        ``root`` is then the folder that messages give paths relative to.
    export : sequence of {"sr", "seg"}, optional
        Also write each classified study's DICOM SR measurement report
        (``OUTDIR/dicom/<key>/sr.dcm``, :func:`modic.sr.write_sr`) and / or DICOM SEG
        (``seg.dcm``, :func:`modic.seg.write_seg`). They carry the patient and study
        modules of the source images (DICOM requires them). A failed export is an error
        row of stage ``"export"``; the study's results stand. Needs the ``export`` extra.
    propose : bool
        Also classify the study folders that have no annotation file
        (:func:`find_unannotated`), with ROIs proposed from the image
        (:func:`modic.propose.propose`), written to ``OUTDIR/proposed/<name>.modic.json``
        (never into the input). Every row then has ``roi_origin``, and summary.json lists
        the studies whose ROIs were proposed (``proposed_studies``).
    header_index : path-like, optional
        Keep the scanned DICOM headers in this SQLite file (:mod:`modic.index`; e.g.
        ``OUTDIR/.modic-index.sqlite``), so that studies scanned again (an edited
        annotation file, a changed study folder) parse only their new or changed files.
        It holds the headers' UIDs and patient data: keep it as private as the images.
        Not inside a study folder; ignored on Dask (the workers may not reach it).

    Returns
    -------
    BatchSummary

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    OutputFolderError
        If ``outdir`` lies inside a study folder or is ``root``.
    MissingDependencyError
        If ``dask_address`` is given and dask.distributed is not installed.
    """
    started = time.monotonic()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if dask_address is not None:
        _import_dask()  # fail before any work when the extra is missing
    top = _resolve(root)
    out = _resolve(outdir)
    tree = _walk_root(top, out) if jobs is None else _Tree()  # one walk: the jobs and their listings
    jobs = tree.jobs if jobs is None else sorted(jobs, key=lambda j: j.relpath)
    if propose:
        jobs = sorted([*jobs, *find_unannotated(top, out, jobs)], key=lambda j: j.relpath)
    check_outdir(top, out, jobs)
    index_path = ""
    if header_index is not None and dask_address is None:
        index_path = str(_resolve(header_index))
        try:
            check_outdir(top, Path(index_path).parent, jobs)  # never in ROOT itself or a study folder
        except OutputFolderError as exc:
            raise OutputFolderError(f"--header-index {header_index}: {exc}") from None
    shard_dir = out / SHARD_DIR
    shard_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    export = _check_export(export)
    options = _options(include_identifiers, export)
    if propose:  # only when asked, so that the shards of other runs stay valid
        options["propose"] = True

    # the outcomes without shard (no study folder, a lost worker): small, no records
    unsharded: dict[str, dict[str, Any]] = {}
    n_up_to_date = 0
    fingerprints: dict[str, str] = {}
    tasks: list[_Task] = []
    missing: list[BatchJob] = []
    listings = {j.relpath: tree.listing(j.study_dir) for j in jobs if j.failure is None}
    inputs = _inputs_digest(jobs, listings, options)
    if not force and inputs is not None:
        # the inputs of the last assembly, file by file: nothing to fingerprint study by study
        unchanged = _unchanged_outputs(out, shard_dir, jobs, inputs=inputs)
        if unchanged is not None:
            _log_plan(len(jobs), len(jobs), 0, 0, top)
            return replace(unchanged, elapsed_s=time.monotonic() - started)
    current: dict[str, str] = {}
    for job in jobs:
        if job.failure is not None:
            continue
        listing = listings[job.relpath]
        if listing is not None or job.study_dir.is_dir():
            current[job.relpath] = input_fingerprint(job, options, listing)
    digest = _run_digest(jobs, current, options)
    if not force and len(current) == len(jobs):
        # nothing changed since the outputs were last assembled from these very shards
        unchanged = _unchanged_outputs(out, shard_dir, jobs, digest)
        if unchanged is not None:
            _log_plan(len(jobs), len(jobs), 0, 0, top)
            return replace(unchanged, elapsed_s=time.monotonic() - started)
    for job in jobs:
        if job.relpath not in current:
            missing.append(job)
            continue
        fp = current[job.relpath]
        shard = None if force else _read_shard(shard_dir / job.shard_name)
        if shard is not None and shard.get("fingerprint") == fp:
            n_up_to_date += 1  # read again, in turn, when the outputs are assembled
            continue
        fingerprints[job.relpath] = fp
        tasks.append(
            (
                job,
                (
                    str(job.annotation_path),
                    str(job.study_dir),
                    str(top),
                    job.relpath,
                    include_identifiers,
                    export,
                    str(out / EXPORT_DIR),
                    job.proposed,
                    propose,
                    index_path,
                ),
            )
        )
    _log_plan(len(jobs), n_up_to_date, len(tasks), len(missing), top)

    total = len(missing) + len(tasks)
    done = 0

    def report(job: BatchJob, outcome: Mapping[str, Any]) -> None:
        nonlocal done
        done += 1
        errs = outcome["errors"]
        failure = next((e for e in errs if e["stage"] != "roi"), None)
        p = BatchProgress(
            done=done,
            total=total,
            relpath=job.relpath,
            study=outcome["study"],
            ok=bool(outcome["ok"]),
            endplates=len(outcome["records"]),
            roi_errors=sum(1 for e in errs if e["stage"] == "roi"),
            stage="" if failure is None else failure["stage"],
            message="" if failure is None else failure["message"],
        )
        if progress is not None:
            progress(p)
        elif p.ok:
            logger.info("%s", p.line())
        else:
            logger.warning("%s", p.text())

    for job in missing:
        unsharded[job.relpath] = _find_error(job)
        report(job, unsharded[job.relpath])
    n_workers = workers or os.cpu_count() or 1
    for job, result in _execute(tasks, n_workers, dask_address):
        if isinstance(result, Exception):  # no shard: the study is retried on the next run
            unsharded[job.relpath] = _worker_error(job, result)
            report(job, unsharded[job.relpath])
        else:  # the shard holds the outcome; it is read again, in job order, by _assemble
            report(job, _write_shard(shard_dir / job.shard_name, fingerprints[job.relpath], result))
        del result

    _prune_shards(shard_dir, jobs)
    paths, summary = _assemble(
        out, _outcomes_in_order(jobs, shard_dir, unsharded), include_identifiers, propose
    )
    if export:
        paths["dicom"] = out / EXPORT_DIR
    run_summary = BatchSummary(
        n_ok=summary["studies"]["ok"],
        n_failed=summary["studies"]["failed"],
        type_counts={t: summary["type_counts"][label] for t, label in _type_labels().items()},
        paths=paths,
        n_jobs=len(jobs),
        n_computed=len(tasks),
        n_up_to_date=n_up_to_date,
        n_roi_errors=summary["errors"].get("roi", 0),
        stages=dict(summary["errors"]),
        elapsed_s=time.monotonic() - started,
    )
    # every outcome in a shard: the next run with nothing changed can keep these outputs
    _write_manifest(out, shard_dir, jobs, digest if not unsharded else None, run_summary, inputs)
    return run_summary


# -- the outputs manifest ----------------------------------------------------------------
#: ``OUTDIR/.modic-batch/outputs.manifest`` (JSON; not ``*.json``, the shards' pattern): the
#: digest of the jobs and fingerprints the output files were assembled from, the SHA-256
#: of each output file and of the shards, and the run's counts. A run whose jobs and
#: fingerprints give the same digest, over output files and shards that still hold those
#: bytes, has nothing to do: it parses no shard and rewrites nothing. Its bytes depend
#: only on the outputs (a resumed run writes the same manifest as an uninterrupted one).
#:
#: It also holds a digest of the inputs themselves (:func:`_inputs_digest`: the walk's
#: listings, hashed without JSON), so that a rerun with nothing changed need not
#: fingerprint each study to find it.
#:
#: Its modification time seals the files: the run that writes it (or finds it holding
#: the bytes already) leaves it newer than the status change (``st_ctime_ns``) of every
#: output file and shard. Writing, truncating, renaming or linking a file sets its ctime
#: to the present (and no user can set it otherwise), so a file whose ctime is still
#: older than the manifest's mtime holds the bytes the manifest was made from: the rerun
#: reads no byte of it. A file changed since is hashed and compared, as all of them are
#: when the manifest is not newer (a file system with coarse timestamps, a clock set
#: back, a ``touch`` of the manifest cannot make it accept a changed file other than one
#: changed while the clock stood behind the manifest's time; ``--force`` rebuilds).
MANIFEST = "outputs.manifest"


def _run_digest(jobs: Sequence[BatchJob], fingerprints: Mapping[str, str], options: Mapping[str, Any]) -> str:
    doc = {
        "format": SHARD_FORMAT,
        "options": dict(options),
        "jobs": [[j.relpath, fingerprints.get(j.relpath)] for j in jobs],
    }
    return hashlib.sha256(utf8(json.dumps(doc, sort_keys=True, ensure_ascii=False))).hexdigest()


def _inputs_digest(
    jobs: Sequence[BatchJob],
    listings: Mapping[str, Sequence[tuple[str, int, int]] | None],
    options: Mapping[str, Any],
) -> str | None:
    """SHA-256 of all that the jobs' fingerprints are made of (:func:`input_fingerprint`:
    the format, the version, the options, each annotation file's size and mtime and each
    study folder's listing), without their JSON: equal digests mean equal fingerprints,
    so a rerun whose digest is the manifest's need not fingerprint study by study.

    None when a job's listing is not known from the walk (no study folder, a symlink), or
    it failed before running or has proposed ROIs: those runs fingerprint each study.
    """
    from array import array

    h = hashlib.sha256()
    h.update(utf8(json.dumps([SHARD_FORMAT, __version__, dict(options)], sort_keys=True, ensure_ascii=False)))
    try:
        for job in jobs:
            listing = listings.get(job.relpath)
            if listing is None or job.failure is not None or job.proposed:
                return None
            st = job.annotation_path.stat()
            # no file name holds a NUL, and the counts make the fields unambiguous
            h.update(utf8(f"\0{job.relpath}\0{st.st_size}\0{st.st_mtime_ns}\0{len(listing)}\0"))
            names, sizes, mtimes = zip(*listing, strict=True) if listing else ((), (), ())
            h.update(utf8("\0".join(names)))
            h.update(array("q", sizes).tobytes())
            h.update(array("q", mtimes).tobytes())
    except (OSError, OverflowError):  # an annotation file gone; a size or time beyond 64 bits
        return None
    return h.hexdigest()


def _file_digest(path: Path) -> str | None:
    """SHA-256 of a regular file (never a FIFO or device), None when there is none."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _shards_digest(shard_dir: Path, jobs: Sequence[BatchJob]) -> str | None:
    """SHA-256 over the jobs' shard files' bytes (None when one is missing): a shard that
    was edited, replaced or removed since the outputs were assembled shows here."""
    h = hashlib.sha256()
    for j in jobs:
        d = _file_digest(shard_dir / j.shard_name)
        if d is None:
            return None
        h.update(f"{j.shard_name} {d}\n".encode())
    return h.hexdigest()


def _write_manifest(
    out: Path,
    shard_dir: Path,
    jobs: Sequence[BatchJob],
    digest: str | None,
    result: BatchSummary,
    inputs: str | None = None,
) -> None:
    """Record what the outputs were made from (no digest: remove the record); ``inputs``:
    the :func:`_inputs_digest` of the run."""
    path = shard_dir / MANIFEST
    if digest is None:
        path.unlink(missing_ok=True)
        return
    files = sorted(p.name for p in result.paths.values() if p.parent == out and p.is_file())
    doc = {
        "digest": digest,
        "inputs": inputs,
        "shards": _shards_digest(shard_dir, jobs),
        "files": {name: _file_digest(out / name) for name in files},
        "paths": {name: p.relative_to(out).as_posix() for name, p in result.paths.items()},
        "n_ok": result.n_ok,
        "n_failed": result.n_failed,
        "type_counts": result.type_counts,
        "n_roi_errors": result.n_roi_errors,
        "stages": result.stages,
    }
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    _write(path, text)
    _seal(path, [out / name for name in files] + [shard_dir / j.shard_name for j in jobs])


def _newest_change(paths: Iterable[Path]) -> int | None:
    """The latest ``st_ctime_ns`` of regular files (None when one is missing or not a file)."""
    newest = 0
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        newest = max(newest, st.st_ctime_ns)
    return newest


def _seal(manifest: Path, paths: Sequence[Path]) -> None:
    """Leave the manifest's mtime after the last status change of ``paths`` (see
    :data:`MANIFEST`): touched when it is not, a few times at most (a file system whose
    timestamps are coarser than the run gives up: its reruns hash the files)."""
    newest = _newest_change(paths)
    if newest is None:
        return
    for attempt in range(4):
        try:
            if manifest.stat().st_mtime_ns > newest:
                return
            if attempt:
                time.sleep(0.005)
            os.utime(manifest)
        except OSError:  # the folder is read-only, or the manifest gone: reruns hash the files
            return


def _sealed(manifest_mtime_ns: int, paths: Iterable[Path]) -> bool:
    """Whether no file of ``paths`` changed since the manifest was sealed (:func:`_seal`)."""
    newest = _newest_change(paths)
    return newest is not None and newest < manifest_mtime_ns


def _unchanged_outputs(
    out: Path, shard_dir: Path, jobs: Sequence[BatchJob], digest: str | None = None, inputs: str | None = None
) -> BatchSummary | None:
    """The summary of the last run when its outputs still stand for these jobs, else None.

    The jobs are those of the last run when their fingerprints give its ``digest``
    (:func:`_run_digest`) or, cheaper, when their inputs give its ``inputs``
    (:func:`_inputs_digest`); one of the two is given.
    """
    try:
        manifest = shard_dir / MANIFEST
        with manifest.open("rb") as fh:
            sealed_at = os.fstat(fh.fileno()).st_mtime_ns
            doc = json.loads(fh.read().decode("utf-8"))
        if (digest is None or doc.get("digest") != digest) and (
            inputs is None or doc.get("inputs") != inputs
        ):
            return None
        files = doc["files"]
        if not files or doc["shards"] is None:
            return None
        outputs = [out / name for name in files]
        if not _sealed(sealed_at, [*outputs, *(shard_dir / j.shard_name for j in jobs)]):
            # a file changed since the manifest was written: do its bytes still match?
            if any(_file_digest(p) != files[p.name] for p in outputs):
                return None  # an output was removed, edited or replaced
            if _shards_digest(shard_dir, jobs) != doc["shards"]:
                return None  # a shard is gone or was changed: read them all again
        # in the order a run that assembles gives them (the manifest holds them sorted)
        counts = {str(k): int(v) for k, v in doc["type_counts"].items()}
        stages = {str(k): int(v) for k, v in doc["stages"].items()}
        paths = {name: out / rel for name, rel in doc["paths"].items()}
        return BatchSummary(
            n_ok=int(doc["n_ok"]),
            n_failed=int(doc["n_failed"]),
            type_counts=_in_order(counts, _TYPES),
            paths=_in_order(paths, (*OUTPUT_FILES, "dicom")),
            n_jobs=len(jobs),
            n_computed=0,
            n_up_to_date=len(jobs),
            n_roi_errors=int(doc["n_roi_errors"]),
            stages=_in_order(stages, STAGES),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no manifest, or not one this version wrote: assemble


def _in_order(mapping: Mapping[str, _V], order: Sequence[str]) -> dict[str, _V]:
    """``mapping`` with the keys of ``order`` first, in that order, then the others sorted."""
    rank = {k: i for i, k in enumerate(order)}
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: (rank.get(k, len(rank)), k))}


def _outcomes_in_order(
    jobs: Sequence[BatchJob], shard_dir: Path, unsharded: Mapping[str, dict[str, Any]]
) -> Iterator[tuple[BatchJob, Mapping[str, Any]]]:
    """Each job's outcome in job order, read from its shard one at a time."""
    for job in jobs:
        outcome = unsharded.get(job.relpath) or _read_shard(shard_dir / job.shard_name)
        if outcome is None:  # written or checked a moment ago: the output folder was changed meanwhile
            msg = (
                f"its result ({SHARD_DIR}/{job.shard_name}) was removed or changed during the run; "
                "run the batch again to recompute it"
            )
            outcome = {**_worker_error(job, RuntimeError()), "errors": [_error(job.relpath, "worker", msg)]}
        yield job, outcome


def _check_export(export: Sequence[str]) -> tuple[str, ...]:
    """The export kinds, in :data:`EXPORTS` order; a ValueError names an unknown one.

    Exporting needs highdicom (the ``export`` extra): checked before any work.
    """
    kinds = tuple(k.strip().lower() for k in export if k.strip())
    unknown = [k for k in kinds if k not in EXPORTS]
    if unknown:
        raise ValueError(f"unknown export {unknown[0]!r}: choose from {', '.join(EXPORTS)}")
    if kinds:
        from .sr import _hd

        _hd()
    return tuple(k for k in EXPORTS if k in kinds)


def _log_plan(n_jobs: int, n_up_to_date: int, n_tasks: int, n_missing: int, root: Path) -> None:
    if n_jobs == 0:
        logger.info("no annotation files (*%s) found under %s", ANNOTATION_SUFFIX, root)
        return
    if n_tasks == 0 and n_missing == 0:
        logger.info("all %d studies up to date; nothing to compute (use --force to recompute)", n_jobs)
        return
    parts = [f"{n_tasks} to compute"]
    if n_up_to_date:
        parts.append(f"{n_up_to_date} up to date")
    if n_missing:
        parts.append(f"{n_missing} without study folder or not fetched")
    logger.info("%d annotated studies: %s", n_jobs, ", ".join(parts))


def _prune_shards(shard_dir: Path, jobs: Sequence[BatchJob]) -> None:
    """Remove shards of annotation files that are gone, so the folder does not grow."""
    keep = {j.shard_name for j in jobs}
    for p in shard_dir.glob("*.json"):
        if p.name not in keep:
            p.unlink(missing_ok=True)
