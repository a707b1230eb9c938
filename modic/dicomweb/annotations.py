"""A study's ROIs from a DICOM SR measurement report on the server.

When no annotation file is given for a study, the structured reports (Modality SR) of
the study on the server are read with :func:`modic.sr.read_sr`: modic's own reports
(``modic batch --export sr --store``) read back without loss, and the planar ROIs of
reports made in OHIF or 3D Slicer are imported. The newest report with at least one ROI
wins (ContentDate and ContentTime, then SeriesNumber and InstanceNumber). Its ROIs are
written as an ordinary annotation file in the cache, ``CACHE/annotations/<uid>.modic.json``
(rewritten only when they change, so that a rerun finds the study up to date).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cache import FetchedStudy
from .server import DicomwebServer, RemoteSeries

__all__ = ["annotations_from_sr"]

logger = logging.getLogger(__name__)


def _when(ds: Any) -> tuple[str, str, int, int]:
    def num(v: Any) -> int:
        try:
            return int(v)
        except (TypeError, ValueError):
            return 0

    return (
        str(getattr(ds, "ContentDate", "") or ""),
        str(getattr(ds, "ContentTime", "") or ""),
        num(getattr(ds, "SeriesNumber", None)),
        num(getattr(ds, "InstanceNumber", None)),
    )


def annotations_from_sr(
    server: DicomwebServer, study: FetchedStudy, sr_series: Sequence[RemoteSeries], folder: Path
) -> tuple[Path | None, str]:
    """Read the newest usable SR of a study from the server into an annotation file.

    Parameters
    ----------
    server : DicomwebServer
    study : FetchedStudy
        The study's images, already in the cache (they give the geometry the SR's 2-D
        image coordinates need).
    sr_series : sequence of RemoteSeries
        The study's SR series on the server.
    folder : Path
        Where to write ``<StudyInstanceUID>.modic.json``.

    Returns
    -------
    (Path or None, str)
        The annotation file and where its ROIs came from; or None and why there is none.

    Raises
    ------
    DicomwebError
        If the server fails while the reports are downloaded.
    """
    try:
        from ..sr import read_sr
    except ImportError as exc:  # the SR module, or highdicom, is missing
        return None, f"the study has SRs on the server, but they cannot be read here ({exc})"
    from ..annotations import read_annotations, write_annotations
    from ..dicomfolder import scan

    if not sr_series:
        return None, f"no annotation file for study {study.key}, and no SR on the server"
    scanned = scan(study.path)
    found: list[tuple[tuple[str, str, int, int], Any, str]] = []
    problems: list[str] = []
    for series in sr_series:
        for sop in server.instances_of(series):
            ds = server.retrieve_instance(series, sop)
            try:
                annotations = read_sr(ds, scanned)
            except Exception as exc:  # noqa: BLE001 -- not a report modic can read: look at the next
                problems.append(
                    f"{series.label()}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
                continue
            if annotations.rois:
                found.append((_when(ds), annotations, series.label()))
            else:
                problems.append(f"{series.label()}: no ROI modic can use")
    if not found:
        why = "; ".join(problems) or "no SR instance"
        return None, f"no annotation file for study {study.key}, and no SR on the server with ROIs ({why})"
    _, annotations, label = max(found, key=lambda f: f[0])
    path = folder / f"{study.study_uid}.modic.json"
    try:
        same = path.is_file() and read_annotations(path) == annotations
    except Exception:  # noqa: BLE001 -- an unreadable old copy is replaced
        same = False
    if not same:
        folder.mkdir(parents=True, exist_ok=True)
        write_annotations(annotations, path)
    source = f"the SR {label} on the server ({len(annotations.rois)} ROIs)"
    logger.info("study %s: ROIs from %s", study.key, source)
    return path, source
