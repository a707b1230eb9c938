"""A local copy of the studies fetched from DICOMweb servers.

Layout: one folder per study, one per series, one file per instance, named by UID::

    CACHE/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm

A study's folder is an ordinary DICOM folder (:func:`modic.load_study` reads it). Each
file is written atomically (temporary file, then rename), so an interrupted download
leaves complete files only, and the next fetch downloads just the instances still
missing. A fetch asks the server for the study's series and their instance lists every
time (a few small QIDO-RS requests), so that instances added or removed on the server
are seen; instances already in the cache are never downloaded again.

Only the series modic can use are fetched: a series is skipped when its search result
says it is not MR (SR, SEG, KO...), a localizer, or axial or coronal. When the server does
not give these attributes the series is fetched, and the loader decides as for a local
folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write_bytes
from ..errors import DicomwebError
from .server import DicomwebServer, RemoteSeries, check_uid

__all__ = ["FetchedStudy", "StudyCache", "default_cache_dir", "series_needed"]

logger = logging.getLogger(__name__)

INSTANCE_SUFFIX = ".dcm"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/modic/dicomweb``, else ``~/.cache/modic/dicomweb``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modic" / "dicomweb"


def series_needed(series: RemoteSeries) -> tuple[bool, str]:
    """Whether modic needs a series, judged from its search result, and why.

    Returns
    -------
    (bool, str)
        False with the reason for a series that cannot be a sagittal T1, T2 or STIR:
        not MR, a localizer (by name or ImageType, :func:`modic.sequence.identify`), or
        slices that are axial or coronal (ImageOrientationPatient). True otherwise,
        including when the server did not say (the loader decides once it is fetched).
    """
    from ..sequence import Plane, Role, SequenceInfo, identify

    modality = series.modality.upper()
    if modality and modality != "MR":
        return False, f"modality {modality}, not MR images"
    ds = series.dataset()
    if ds is None:
        return True, "the server's description of it is unreadable: fetched to look"
    info = SequenceInfo.from_dataset(ds)
    identity = identify(info)
    if identity.role is Role.LOCALIZER:
        return False, f"a localizer ({identity.reasons[0]})"
    if info.orientation is not None and identity.plane in (Plane.AXIAL, Plane.CORONAL):
        return False, f"{identity.plane.value} slices"
    if info.orientation is None:
        return True, "no orientation in the search result: fetched to look"
    return True, f"{identity.plane.value} {identity.role.value}"


@dataclass(frozen=True)
class FetchedStudy:
    """A study copied into the cache, and what it took.

    Attributes
    ----------
    study_uid : str
    path : Path
        The study's folder in the cache (an ordinary DICOM folder).
    fetched : tuple of (RemoteSeries, str)
        Series in the folder, with why each was fetched.
    skipped : tuple of (RemoteSeries, str)
        Series left on the server, with why.
    downloaded, cached : int
        Instances downloaded in this fetch, and found already in the cache.
    removed : int
        Files dropped from the cache because the server no longer has them. Series
        fetched before (e.g. by ``modic info``, which fetches every series) and skipped now
        stay in the folder.
    """

    study_uid: str
    path: Path
    fetched: tuple[tuple[RemoteSeries, str], ...] = ()
    skipped: tuple[tuple[RemoteSeries, str], ...] = ()
    downloaded: int = 0
    cached: int = 0
    removed: int = 0

    @property
    def key(self) -> str:
        """The study's pseudonymous key (as in modic's outputs)."""
        from ..series import pseudonym

        return pseudonym(self.study_uid)

    def line(self) -> str:
        """``"study 3f2a... : 3 of 5 series (skipped: ...), 39 instances downloaded, 0 cached"``."""
        total = len(self.fetched) + len(self.skipped)
        skipped = "; ".join(f"{s.label()}: {why}" for s, why in self.skipped)
        return (
            f"study {self.key}: {len(self.fetched)} of {total} series"
            + (f" (skipped {skipped})" if skipped else "")
            + f", {self.downloaded} instances downloaded, {self.cached} from the cache"
            + (f", {self.removed} no longer on the server removed" if self.removed else "")
        )


@dataclass
class StudyCache:
    """The folder holding the studies fetched from DICOMweb servers.

    Parameters
    ----------
    folder : path-like, optional
        Default :func:`default_cache_dir`. Created on first use.

    Examples
    --------
    >>> import tempfile
    >>> cache = StudyCache(tempfile.mkdtemp())
    >>> cache.study_dir("1.2.3").name
    '1.2.3'
    """

    folder: Path = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        self.folder = Path(os.path.abspath(os.fspath(self.folder)))

    def study_dir(self, study_uid: str) -> Path:
        """Where a study lives in the cache (it may not exist yet)."""
        return self.folder / check_uid(study_uid, "StudyInstanceUID")

    def fetch(
        self,
        server: DicomwebServer,
        study_uid: str,
        *,
        all_series: bool = False,
        progress: Callable[[int], None] | None = None,
        listing: Sequence[RemoteSeries] | None = None,
    ) -> FetchedStudy:
        """Copy what modic needs of a study into the cache; reuse what is there.

        Parameters
        ----------
        server : DicomwebServer
        study_uid : str
            StudyInstanceUID.
        all_series : bool
            Fetch every series, also those :func:`series_needed` would skip.
        progress : callable, optional
            Called with the number of instances written so far.
        listing : sequence of RemoteSeries, optional
            The study's series, if just asked for (:meth:`DicomwebServer.series_of`).

        Returns
        -------
        FetchedStudy

        Raises
        ------
        DicomwebError
            If the server is unreachable, refuses the credentials, has no such study,
            or a download is cut short (what arrived is kept: run again to resume).
        """
        folder = self.study_dir(study_uid)
        listing = server.series_of(study_uid) if listing is None else listing
        fetched, skipped = [], []
        downloaded = cached = removed = 0
        for series in listing:
            need, why = (True, "all series asked for") if all_series else series_needed(series)
            if not need:
                skipped.append((series, why))
                continue
            fetched.append((series, why))
            logger.debug("study %s: %s (%s)", _key(study_uid), series.label(), why)
            got, had, dropped = self._fetch_series(server, series, folder / series.series_uid, progress)
            downloaded += got
            cached += had
            removed += dropped
        on_server = {s.series_uid for s in listing}
        for old in _series_folders(folder):  # series the server no longer has
            if old.name not in on_server:
                removed += sum(1 for _ in old.glob("*" + INSTANCE_SUFFIX))
                shutil.rmtree(old, ignore_errors=True)
        out = FetchedStudy(study_uid, folder, tuple(fetched), tuple(skipped), downloaded, cached, removed)
        logger.info("%s", out.line())
        return out

    def _fetch_series(
        self,
        server: DicomwebServer,
        series: RemoteSeries,
        folder: Path,
        progress: Callable[[int], None] | None,
    ) -> tuple[int, int, int]:
        """(downloaded, already cached, removed) for one series."""
        wanted = server.instances_of(series)
        _remove_temporaries(folder)
        have = {p.name[: -len(INSTANCE_SUFFIX)] for p in folder.glob("*" + INSTANCE_SUFFIX) if _is_whole(p)}
        removed = 0
        for uid in have - set(wanted):
            (folder / (uid + INSTANCE_SUFFIX)).unlink(missing_ok=True)
            removed += 1
        missing = [uid for uid in wanted if uid not in have]
        if not missing:
            return 0, len(wanted), removed
        written = 0
        todo = set(missing)

        def keep(data: bytes) -> None:
            nonlocal written
            uid = self._write_instance(series, folder, data, todo)
            if uid is not None:
                todo.discard(uid)
                written += 1
                if progress is not None:
                    progress(written)

        if len(missing) == len(wanted):  # nothing yet: the whole series in one stream
            for data in server.iter_series_files(series):
                keep(data)
        else:  # resuming: only what is missing
            for uid in missing:
                keep(server.retrieve_instance_file(series, uid))
        if todo:
            raise DicomwebError(
                f"{server.url}: the download of {series.label()} of study {_key(series.study_uid)} "
                f"stopped after {len(wanted) - len(todo)} of {len(wanted)} instances; run again to "
                "fetch the rest"
            )
        return written, len(wanted) - len(missing), removed

    def _write_instance(
        self, series: RemoteSeries, folder: Path, data: bytes, wanted: set[str]
    ) -> str | None:
        """Write one downloaded DICOM file as it came, atomically, if it is one still wanted.

        Its header is read first, to check that it is a DICOM file of this series.
        Returns its SOPInstanceUID, or None when it was not wanted (already there).
        """
        import io

        import pydicom

        try:
            ds = pydicom.dcmread(
                io.BytesIO(data),
                stop_before_pixels=True,
                specific_tags=["SOPInstanceUID", "SeriesInstanceUID"],
            )
        except Exception as exc:  # noqa: BLE001
            raise DicomwebError(
                f"the server sent something that is not a DICOM file for {series.label()} of study "
                f"{_key(series.study_uid)} ({type(exc).__name__})"
            ) from None
        uid = check_uid(str(getattr(ds, "SOPInstanceUID", "")), "SOPInstanceUID of a downloaded instance")
        if str(getattr(ds, "SeriesInstanceUID", "")) != series.series_uid:
            raise DicomwebError(
                f"the server sent an instance of another series for {series.label()} "
                f"of study {_key(series.study_uid)}"
            )
        if uid not in wanted:
            return None
        # atomic, not flushed to disk: a file a power cut left empty or cut is found by
        # _is_whole on the next fetch and downloaded again
        atomic_write_bytes(folder / (uid + INSTANCE_SUFFIX), data, durable=False)
        return uid


def _key(uid: str) -> str:
    from ..series import pseudonym

    return pseudonym(uid)


def _series_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir()]


def _is_whole(path: Path) -> bool:
    """A cached image file that is whole: ``DICM`` after the preamble, a header that
    parses, and pixel data that reach the end their length gives.

    Cache files are written without ``fsync`` (atomically, but a power cut can leave a
    file empty or short); such a file is not reused but downloaded again. The check reads
    the header only (well under a millisecond per file).
    """
    import struct

    import pydicom

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if fh.read(132)[128:] != b"DICM":
                return False
            fh.seek(0)
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            pos = fh.tell()
            head = fh.read(12)
            if size - fh.tell() >= 8:
                fh.seek(size - 8)
            tail = fh.read(8)
    except Exception:  # noqa: BLE001 -- whatever is wrong with it, fetch it again
        return False
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if head[:4] != b"\xe0\x7f\x10\x00":  # (7FE0,0010) Pixel Data, little endian
        return syntax == pydicom.uid.ExplicitVRBigEndian  # not checked; else: no pixels
    if syntax == pydicom.uid.ImplicitVRLittleEndian:
        start, (length,) = pos + 8, struct.unpack("<I", head[4:8])
    else:
        start, (length,) = pos + 12, struct.unpack("<I", head[8:12])
    if length == 0xFFFFFFFF:  # encapsulated: ends with the sequence delimitation item
        return tail == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return start + length <= size


#: A temporary file older than this (seconds) was left by a write killed half-way; a
#: younger one may be another modic process writing into the same cache right now.
STALE_TEMPORARY = 3600.0


def _remove_temporaries(folder: Path) -> None:
    """Temporary files of writes killed half-way (``atomic_write_bytes`` names them .NAME.x.tmp)."""
    import time

    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            try:
                if time.time() - p.stat().st_mtime > STALE_TEMPORARY:
                    p.unlink(missing_ok=True)
            except OSError:  # gone meanwhile
                pass
