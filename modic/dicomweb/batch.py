"""``modic batch`` over the studies of a DICOMweb server.

Each study is fetched into the cache (:class:`~modic.dicomweb.StudyCache`) and then
classified like a local folder by :func:`modic.batch.run_batch`, with the same outputs,
resuming and error rows (a study that cannot be fetched is an error row of stage
``fetch``; the batch goes on with the next study).

Which studies, and their ROIs
-----------------------------
The ROIs of a study come from an annotation file (``*.modic.json``) in the folder given
as ``annotations``, matched by the StudyInstanceUID it records (the file names do not
matter; the layout ``modic annotate`` writes is fine). With no explicit study list,
every study named by an annotation file is processed. A study without annotation file
takes its ROIs from the newest SR on the server that holds some
(:mod:`modic.dicomweb.annotations`); a study with neither is reported (stage
``annotations``) and its images are not downloaded.

The jobs are named by the annotation file's path relative to the annotation folder, as
a local batch names them by their path under ROOT, so that the same annotation files
give the same tables whether the images come from a folder or from a server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch import ANNOTATION_SUFFIX, BatchJob, BatchProgress, BatchSummary, run_batch
from ..errors import DicomwebError
from .address import Credentials
from .cache import FetchedStudy, StudyCache
from .server import DicomwebServer, ServerUnavailableError, check_uid
from .store import StoredObject, dicom_outputs, store_outputs, write_store_report

__all__ = ["DicomwebBatch", "AnnotationIndex", "index_annotations", "read_study_list", "run_dicomweb_batch"]

logger = logging.getLogger(__name__)

#: Folder of the cache holding the annotation files read from SRs on the server.
SR_ANNOTATIONS = "annotations"


@dataclass
class AnnotationIndex:
    """Annotation files found under a folder, by the StudyInstanceUID they were drawn on.

    Attributes
    ----------
    root : Path or None
    files : dict of str to (Path, str)
        StudyInstanceUID -> (absolute path, path relative to ``root`` with ``/``).
    problems : list of (str, str)
        (relative path, message) for files that cannot be matched to a study:
        unreadable, naming no study, or a second file for the same study.
    """

    root: Path | None = None
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def index_annotations(folder: str | os.PathLike[str] | None) -> AnnotationIndex:
    """Every ``*.modic.json`` under a folder (or one file), by StudyInstanceUID.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    """
    from ..annotations import read_annotations

    index = AnnotationIndex()
    if folder is None:
        return index
    top = Path(os.path.abspath(os.fspath(folder)))
    if top.is_file():
        paths, index.root = [top], top.parent
    elif top.is_dir():
        paths, index.root = sorted(p for p in top.rglob("*" + ANNOTATION_SUFFIX) if p.is_file()), top
    else:
        raise FileNotFoundError(f"{folder}: no such annotation file or folder")
    for path in paths:
        rel = path.relative_to(index.root).as_posix()
        try:
            uid = read_annotations(path).study_instance_uid
        except Exception as exc:  # noqa: BLE001 -- reported as an error row of this file
            index.problems.append((rel, str(exc) or type(exc).__name__))
            continue
        if not uid:
            why = "the annotations name no StudyInstanceUID, so no study on a server matches them"
            index.problems.append((rel, why))
        elif uid in index.files:
            first = index.files[uid][1]
            index.problems.append(
                (rel, f"a second annotation file for the study of {first}; only {first} is used")
            )
        else:
            index.files[uid] = (path, rel)
    return index


def read_study_list(path: str | os.PathLike[str]) -> list[str]:
    """StudyInstanceUIDs from a text file: one per line, ``#`` starts a comment.

    Raises
    ------
    DicomwebError
        If a line is not a UID (naming the file and line).
    """
    uids = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                uids.append(check_uid(text, "StudyInstanceUID"))
            except DicomwebError as exc:
                raise DicomwebError(f"{path}, line {n}: {exc}") from None
    return uids


@dataclass
class DicomwebBatch:
    """What :func:`run_dicomweb_batch` did.

    Attributes
    ----------
    summary : BatchSummary
        As for a local batch (tables, counts, error stages).
    fetched : list of FetchedStudy
        The studies in the cache, with what was downloaded and what was reused.
    requests : dict of str to int
        Requests made to the server, by kind (``search``, ``retrieve``, ``store``).
    stored : list of StoredObject
        With ``store=True``: the DICOM objects of the output folder sent to the server.
    """

    summary: BatchSummary
    fetched: list[FetchedStudy] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    stored: list[StoredObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The batch succeeded and everything to store was stored."""
        return self.summary.ok and all(s.ok for s in self.stored)

    @property
    def downloaded(self) -> int:
        """Instances downloaded in this run."""
        return sum(f.downloaded for f in self.fetched)

    @property
    def cached(self) -> int:
        """Instances reused from the cache."""
        return sum(f.cached for f in self.fetched)


def _unique(uids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for uid in uids:
        seen.setdefault(check_uid(uid, "StudyInstanceUID"), None)
    return list(seen)


def run_dicomweb_batch(
    address: str,
    outdir: str | os.PathLike[str],
    *,
    studies: Sequence[str] = (),
    annotations: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    credentials: Credentials | None = None,
    workers: int | None = None,
    force: bool = False,
    include_identifiers: bool = False,
    dask_address: str | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    store: bool = False,
    **batch_options: Any,
) -> DicomwebBatch:
    """Fetch studies from a DICOMweb server into the cache and classify them.

    Parameters
    ----------
    address : str
        ``dicomweb+http(s)://HOST[:PORT]/PATH``.
    outdir : path-like
        Output folder, as for :func:`modic.batch.run_batch`.
    studies : sequence of str
        StudyInstanceUIDs to process; default: every study an annotation file names.
    annotations : path-like, optional
        Folder searched recursively for ``*.modic.json`` (or one file), matched to the
        studies by StudyInstanceUID.
    cache : path-like, optional
        Cache folder (default :func:`~modic.dicomweb.default_cache_dir`).
    config, credentials :
        Where the credentials come from (see :class:`~modic.dicomweb.DicomwebServer`).
    workers, force, include_identifiers, dask_address, progress :
        As for :func:`modic.batch.run_batch` (with Dask, the workers must see the cache
        at the same path).
    store : bool
        After the batch, store every DICOM object in ``outdir`` that belongs to one of
        the studies (the exported SR and SEG) on the server (STOW-RS), and list them in
        ``outdir/stored.csv``.
    **batch_options
        Further options of :func:`modic.batch.run_batch` (e.g. what to export), passed on.

    Returns
    -------
    DicomwebBatch

    Raises
    ------
    DicomwebError
        If the address is not usable.
    ValueError
        If there is nothing to do (no study list and no annotation file).
    FileNotFoundError
        If ``annotations`` or ``config`` does not exist.
    """
    server = DicomwebServer(address, credentials=credentials, config=config)
    local = StudyCache() if cache is None else StudyCache(Path(cache))
    index = index_annotations(annotations)
    uids = _unique(studies) if studies else list(index.files)
    if not uids and not index.problems:
        raise ValueError(
            "no study to process: name studies with --study UID or --studies FILE, or give "
            "--annotations DIR holding .modic.json files drawn on the server's studies"
        )
    logger.info(
        "%d stud%s on %s (%s)",
        len(uids),
        "y" if len(uids) == 1 else "ies",
        server.url,
        server.credentials.describe(),
    )
    from ..series import pseudonym

    jobs: list[BatchJob] = []
    fetched: list[FetchedStudy] = []
    unreachable: str | None = None
    for rel, message in index.problems:
        if studies:  # a study list decides what runs; a bad file is only worth a warning
            logger.warning("%s: %s", rel, message)
        else:
            path = (index.root or local.folder) / rel
            jobs.append(BatchJob(path, local.folder / "-", rel, ("annotations", message)))
    for uid in uids:
        study_dir = local.study_dir(uid)
        own = index.files.get(uid)
        # a study without annotation file is named by its key; its ROIs may come from an SR
        annotation_path, rel = own or (
            local.folder / SR_ANNOTATIONS / f"{uid}{ANNOTATION_SUFFIX}",
            pseudonym(uid) + ANNOTATION_SUFFIX,
        )
        failure: tuple[str, str] | None = None
        if unreachable is not None:
            failure = ("fetch", f"not tried: {unreachable}")
        else:
            try:
                failure, from_sr = _fetch(server, local, uid, own is None, annotations, fetched)
                annotation_path = from_sr or annotation_path
            except ServerUnavailableError as exc:
                unreachable = str(exc)
                failure = ("fetch", str(exc))
            except DicomwebError as exc:
                failure = ("fetch", str(exc))
            except OSError as exc:  # the cache cannot be written: disk full, permissions
                failure = ("fetch", f"cannot write the study into the cache {local.folder}: {exc}")
        jobs.append(BatchJob(annotation_path, study_dir, rel, failure))
    summary = run_batch(
        local.folder,
        outdir,
        workers=workers,
        force=force,
        include_identifiers=include_identifiers,
        dask_address=dask_address,
        progress=progress,
        jobs=jobs,
        **batch_options,
    )
    stored: list[StoredObject] = []
    if store:
        outputs = [
            p
            for p in dicom_outputs(outdir, [f.study_uid for f in fetched])
            if local.folder not in p.resolve().parents
        ]
        stored = store_outputs(server, outputs)
        write_store_report(outdir, stored)
        if not outputs:
            logger.warning(
                "--store: no DICOM object of these studies in %s to store (export them with --export sr,seg)",
                os.fspath(outdir),
            )
    return DicomwebBatch(summary, fetched, dict(server.requests), stored)


def _fetch(
    server: DicomwebServer,
    local: StudyCache,
    uid: str,
    from_sr: bool,
    annotations: str | os.PathLike[str] | None,
    fetched: list[FetchedStudy],
) -> tuple[tuple[str, str] | None, Path | None]:
    """Fetch one study, and its ROIs from an SR when ``from_sr``.

    Returns ``(failure, annotation file read from an SR)``, either None.
    """
    from .annotations import annotations_from_sr

    listing = server.series_of(uid)
    reports = [s for s in listing if s.modality.upper() == "SR"]
    if from_sr and not reports:  # nothing to read the ROIs from: do not download the images
        return ("annotations", _no_annotations(uid, annotations)), None
    study = local.fetch(server, uid, listing=listing)
    fetched.append(study)
    if not from_sr:
        return None, None
    found, why = annotations_from_sr(server, study, reports, local.folder / SR_ANNOTATIONS)
    return (None, found) if found is not None else (("annotations", why), None)


def _no_annotations(uid: str, folder: str | os.PathLike[str] | None) -> str:
    from ..series import pseudonym

    where = f"under {os.fspath(folder)}" if folder is not None else "(no --annotations folder given)"
    return (
        f"no annotation file for study {pseudonym(uid)} {where}, and no SR on the server: draw its "
        "ROIs (modic annotate) and give the folder of its .modic.json file with --annotations"
    )
