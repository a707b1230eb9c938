"""Sending modic's DICOM outputs (SR, SEG) back to the server they are about (STOW-RS).

Any DICOM file in an output folder that belongs to one of the studies asked for is
stored, one STOW-RS request per study. Files of other studies, non-DICOM files and
modic's own resume shards are left alone. Storing again is harmless: a DICOMweb server
keeps one copy of a SOPInstanceUID.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_text
from ..errors import DicomwebError
from .server import DicomwebServer

__all__ = ["StoredObject", "dicom_outputs", "store_outputs", "write_store_report", "STORE_REPORT"]

logger = logging.getLogger(__name__)

#: File in the output folder that lists what was stored (study key, file, modality, status).
STORE_REPORT = "stored.csv"


@dataclass(frozen=True)
class StoredObject:
    """One DICOM object sent to the server.

    Attributes
    ----------
    path : Path
    study_uid, sop_instance_uid, modality : str
    message : str
        Empty when the server stored it; otherwise why not.
    """

    path: Path
    study_uid: str
    sop_instance_uid: str
    modality: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.message


def dicom_outputs(folder: str | os.PathLike[str], study_uids: Iterable[str] | None = None) -> list[Path]:
    """The DICOM files under a folder (of these studies only, when given), sorted.

    Hidden files and folders (``.modic-batch`` shards, temporary files) are skipped.
    """
    import pydicom

    wanted = None if study_uids is None else set(study_uids)
    top = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
            except Exception:  # noqa: BLE001 -- not DICOM: not ours to send
                continue
            uid = str(getattr(ds, "StudyInstanceUID", ""))
            if uid and (wanted is None or uid in wanted):
                out.append(path)
    return out


def store_outputs(server: DicomwebServer, paths: Sequence[str | os.PathLike[str]]) -> list[StoredObject]:
    """Store DICOM files on the server, one STOW-RS request per study.

    Returns
    -------
    list of StoredObject
        One per file, in the order given; a failed request marks every file of its
        study with the server's message (the other studies are still sent).
    """
    import pydicom

    from ..series import pseudonym

    by_study: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    results: dict[Path, StoredObject] = {}
    for p in map(Path, paths):
        try:
            ds = pydicom.dcmread(p)
        except Exception as exc:  # noqa: BLE001
            results[p] = StoredObject(p, "", "", "", f"{p}: not a readable DICOM file ({exc})")
            continue
        by_study.setdefault(str(ds.StudyInstanceUID), []).append((p, ds))
    for uid, items in by_study.items():
        what = f"{len(items)} object{'s' if len(items) != 1 else ''} of study {pseudonym(uid)}"
        try:
            stored = set(server.store([ds for _, ds in items], what=what))
            message = ""
        except DicomwebError as exc:
            stored, message = set(), str(exc)
        for p, item in items:
            sop = str(item.SOPInstanceUID)
            why = message or ("" if sop in stored else "the server did not confirm it")
            results[p] = StoredObject(p, uid, sop, str(getattr(item, "Modality", "")), why)
        if message:
            logger.error("%s", message)
        else:
            logger.info("stored %s on %s", what, server.url)
    return [results[Path(p)] for p in paths]


def write_store_report(outdir: str | os.PathLike[str], stored: Sequence[StoredObject]) -> Path:
    """``stored.csv`` in the output folder: study key, file (relative), modality, status, message."""
    from ..series import pseudonym

    top = Path(outdir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["study", "file", "modality", "status", "message"])
    for s in stored:
        try:
            rel = s.path.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            rel = s.path.name
        w.writerow(
            [
                pseudonym(s.study_uid) if s.study_uid else "",
                rel,
                s.modality,
                "stored" if s.ok else "failed",
                s.message,
            ]
        )
    return atomic_write_text(top / STORE_REPORT, buf.getvalue())
