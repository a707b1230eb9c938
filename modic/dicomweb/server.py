"""Talking to a DICOMweb server: QIDO-RS to find, WADO-RS to fetch, STOW-RS to store.

A thin layer over ``dicomweb-client`` (the ``dicomweb`` extra) that turns every failure
of the network or the server into one :class:`~modic.errors.DicomwebError` line naming
the server and saying what to do, and that never puts a password or token in a message,
a log line or an exception chain.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DicomwebError, MissingDependencyError, ServerUnavailableError
from .address import _HOW, Credentials, parse_address, read_credentials

if TYPE_CHECKING:  # pragma: no cover
    import pydicom

__all__ = ["DicomwebServer", "RemoteSeries", "ServerUnavailableError", "check_uid", "SERIES_FIELDS"]

logger = logging.getLogger(__name__)

#: Attributes asked for in the series search (QIDO-RS ``includefield``): those modic uses
#: to tell what a series is (:class:`modic.sequence.SequenceInfo`). A server that does
#: not return them gets its series fetched ("when in doubt, fetch").
SERIES_FIELDS: tuple[str, ...] = (
    "00080008",  # ImageType
    "00080060",  # Modality
    "00080070",  # Manufacturer
    "0008103E",  # SeriesDescription
    "00180020",  # ScanningSequence
    "00180021",  # SequenceVariant
    "00180022",  # ScanOptions
    "00180024",  # SequenceName
    "00180080",  # RepetitionTime
    "00180081",  # EchoTime
    "00180082",  # InversionTime
    "00180087",  # MagneticFieldStrength
    "00181030",  # ProtocolName
    "00181314",  # FlipAngle
    "00200011",  # SeriesNumber
    "00200037",  # ImageOrientationPatient
    "00201209",  # NumberOfSeriesRelatedInstances
)

#: Ask for instances in the transfer syntax they are stored in (no transcoding).
_AS_STORED = (("application/dicom", "*"),)
_ACCEPT_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: Bytes read at a time from a download: a series arrives (and is written) instance by
#: instance rather than in large gulps.
_CHUNK = 2**18
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class _NotFound(DicomwebError):
    """HTTP 404."""


def check_uid(uid: object, what: str = "UID") -> str:
    """A DICOM UID (digits and dots, at most 64 characters), or a DicomwebError.

    UIDs name folders and files of the cache, so nothing else may pass.

    Examples
    --------
    >>> check_uid("1.2.840.10008.1.2")
    '1.2.840.10008.1.2'
    """
    if not isinstance(uid, str) or len(uid) > 64 or not _UID.match(uid):
        raise DicomwebError(f"{what} {uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return uid


@dataclass(frozen=True)
class RemoteSeries:
    """One series of a study on the server, as the series search describes it.

    Attributes
    ----------
    study_uid, series_uid : str
    number : int or None
        SeriesNumber.
    description : str
        SeriesDescription.
    modality : str
        ``"MR"``, ``"SR"``, ``"SEG"``...; "" when the server did not say.
    n_instances : int or None
        NumberOfSeriesRelatedInstances, when given.
    attributes : dict
        The search result in DICOM JSON (PS3.18 F.2), for :func:`pydicom.Dataset.from_json`.
    """

    study_uid: str
    series_uid: str
    number: int | None
    description: str
    modality: str
    n_instances: int | None
    attributes: dict[str, Any]

    def label(self) -> str:
        """``"series 3 'SAG T2'"`` (number and description, never the UID)."""
        number = "?" if self.number is None else str(self.number)
        return f"series {number}" + (f" {self.description!r}" if self.description else "")

    def dataset(self) -> pydicom.Dataset | None:
        """The search result as a pydicom Dataset (None if the server's JSON is malformed)."""
        import pydicom

        try:
            return pydicom.Dataset.from_json(self.attributes)
        except Exception:  # noqa: BLE001 -- a malformed answer only means "fetch to see"
            return None


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or []
    return values[0] if values else None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


class DicomwebServer:
    """A DICOMweb server, with the credentials modic found for it.

    Parameters
    ----------
    address : str
        ``dicomweb+http(s)://HOST[:PORT]/PATH`` (see :func:`~modic.dicomweb.parse_address`).
    credentials : Credentials, optional
        Default: :func:`~modic.dicomweb.read_credentials` (environment, else config file).
    config : path-like, optional
        Config file to read the credentials from.
    timeout : float or (float, float)
        Seconds to wait to connect, and for each answer (requests' convention).

    Raises
    ------
    DicomwebError
        If the address is not usable (see :func:`~modic.dicomweb.parse_address`).
    MissingDependencyError
        If dicomweb-client is not installed (the ``dicomweb`` extra), on first use.

    Examples
    --------
    >>> server = DicomwebServer("dicomweb+http://127.0.0.1:8042/dicom-web",
    ...                         credentials=Credentials())
    >>> server.url
    'http://127.0.0.1:8042/dicom-web'
    """

    def __init__(
        self,
        address: str,
        *,
        credentials: Credentials | None = None,
        config: str | os.PathLike[str] | None = None,
        timeout: float | tuple[float, float] = (10.0, 120.0),
    ) -> None:
        self.url = parse_address(address)
        self.credentials = read_credentials(self.url, config) if credentials is None else credentials
        self.timeout = timeout
        self._client: Any = None
        self._session: Any = None
        #: Requests made, by kind ("search", "retrieve", "store"): for progress and tests.
        self.requests: dict[str, int] = {"search": 0, "retrieve": 0, "store": 0}

    def __repr__(self) -> str:
        return f"<DicomwebServer {self.url} ({self.credentials.describe()})>"

    # -- plumbing ---------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``dicomweb_client.DICOMwebClient`` (made on first use)."""
        if self._client is None:
            try:
                import requests
                from dicomweb_client.api import DICOMwebClient
            except ImportError:
                raise MissingDependencyError(
                    'reading from a DICOMweb server needs dicomweb-client: pip install "modic[dicomweb]"',
                    extra="dicomweb",
                ) from None
            session = requests.Session()
            # a busy server (429, 503, 504) is asked again, up to 3 times, backing off from
            # 0.5 s (honouring Retry-After); a refused connection is not (it fails at once)
            from urllib3.util.retry import Retry

            retry = Retry(
                total=3,
                connect=0,
                read=0,
                status_forcelist=(429, 503, 504),
                backoff_factor=0.5,
                allowed_methods=None,
                raise_on_status=False,
            )
            for prefix in ("http://", "https://"):
                session.mount(prefix, requests.adapters.HTTPAdapter(max_retries=retry))
            creds = self.credentials
            if creds.token:
                session.headers["Authorization"] = f"Bearer {creds.token}"
            elif creds.user:
                session.auth = (creds.user, creds.password)
            self._session = session
            self._client = DICOMwebClient(self.url, session=session, timeout=self.timeout, chunk_size=_CHUNK)
            self._client.set_http_retry_params(retry=False)  # its retries wait 30 s on any error
        return self._client

    @contextmanager
    def _talking(self, what: str, not_found: str | None = None) -> Iterator[None]:
        """Turn the failures of one exchange with the server into a DicomwebError."""
        import requests

        try:
            yield
        except requests.HTTPError as exc:
            code = getattr(exc.response, "status_code", 0)
            error = {401: ServerUnavailableError, 404: _NotFound}.get(code, DicomwebError)
            raise error(self._http_message(exc.response, what, not_found)) from None
        except requests.Timeout:
            raise ServerUnavailableError(
                f"{self.url}: no answer in time while {what} (timeout {self.timeout} s); "
                "the server may be overloaded: try again later"
            ) from None
        except requests.ConnectionError as exc:
            problem, unreachable = _connection_problem(exc)
            error = ServerUnavailableError if unreachable else DicomwebError
            raise error(f"{self.url}: {problem} while {what}") from None
        except requests.RequestException as exc:
            # ChunkedEncodingError, ContentDecodingError...: the answer was cut or garbled
            raise DicomwebError(
                f"{self.url}: the answer was cut short or garbled while {what} ({type(exc).__name__}); "
                "run again to resume"
            ) from None
        except (ValueError, KeyError) as exc:
            raise DicomwebError(f"{self.url}: unexpected answer while {what}: {_short(exc)}") from None

    def _http_message(self, response: Any, what: str, not_found: str | None) -> str:
        code = getattr(response, "status_code", 0)
        reason = getattr(response, "reason", "") or ""
        status = f"HTTP {code} {reason}".strip()
        if code == 401:
            hint = (
                "check the user name and password (or token)"
                if self.credentials
                else f"the server asks for credentials: {_HOW}"
            )
            return f"{self.url} refused {self.credentials.describe()} ({status}) while {what}: {hint}"
        if code == 403:
            return f"{self.url}: access denied to {self.credentials.describe()} ({status}) while {what}"
        if code == 404:
            return not_found or (
                f"{self.url}: nothing there ({status}) while {what}; is this the server's DICOMweb "
                "root (for Orthanc: http://HOST:8042/dicom-web)?"
            )
        return f"{self.url}: {status} while {what}"

    def _count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    # -- QIDO-RS ----------------------------------------------------------------------

    def check(self) -> None:
        """Ask for one study, to see that the address and the credentials work.

        Raises
        ------
        DicomwebError
            With what is wrong (unreachable, not DICOMweb, 401...).
        """
        self._count("search")
        with self._talking("checking the server (searching for a study)"):
            self.client.search_for_studies(limit=1)

    def series_of(self, study_uid: str) -> list[RemoteSeries]:
        """The series of a study (QIDO-RS), with :data:`SERIES_FIELDS`.

        Raises
        ------
        DicomwebError
            If the server has no study with this StudyInstanceUID, or cannot be used.
        """
        from ..series import pseudonym

        check_uid(study_uid, "StudyInstanceUID")
        missing = f"{self.url} has no study {pseudonym(study_uid)} (the StudyInstanceUID asked for)"
        self._count("search")
        try:
            with self._talking(f"searching the series of study {pseudonym(study_uid)}"):
                found = self.client.search_for_series(
                    study_uid, fields=list(SERIES_FIELDS), get_remaining=True
                )
        except _NotFound:
            self.check()  # a 404 there too: not a DICOMweb root (its own message)
            found = []
        if not found:
            raise DicomwebError(missing)
        out = []
        for item in found:
            uid = check_uid(_value(item, "0020000E"), "SeriesInstanceUID from the server")
            out.append(
                RemoteSeries(
                    study_uid=study_uid,
                    series_uid=uid,
                    number=_int_or_none(_value(item, "00200011")),
                    description=str(_value(item, "0008103E") or ""),
                    modality=str(_value(item, "00080060") or ""),
                    n_instances=_int_or_none(_value(item, "00201209")),
                    attributes=item,
                )
            )
        out.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
        return out

    def instances_of(self, series: RemoteSeries) -> list[str]:
        """The SOPInstanceUIDs of a series (QIDO-RS), in the server's order."""
        self._count("search")
        with self._talking(f"listing the instances of {series.label()}"):
            found = self.client.search_for_instances(
                series.study_uid, series.series_uid, fields=["00080018"], get_remaining=True
            )
        return [check_uid(_value(item, "00080018"), "SOPInstanceUID from the server") for item in found]

    # -- WADO-RS ----------------------------------------------------------------------

    def _get_files(self, path: str) -> Iterator[bytes]:
        """The DICOM files of a WADO-RS answer, as the server sends them (multipart/related)."""
        self.client  # noqa: B018 -- makes the session
        response = self._session.get(
            self.url + path, headers={"Accept": _ACCEPT_AS_STORED}, stream=True, timeout=self.timeout
        )
        with response:
            response.raise_for_status()
            yield from multipart_parts(response, _CHUNK)

    def iter_series_files(self, series: RemoteSeries) -> Iterator[bytes]:
        """Every instance of a series as the bytes of its DICOM file, streamed (WADO-RS).

        The files are those the server holds, in their transfer syntax (no transcoding,
        nothing re-encoded), each yielded as soon as it has arrived.
        """
        self._count("retrieve")
        with self._talking(f"downloading {series.label()}"):
            yield from self._get_files(f"/studies/{series.study_uid}/series/{series.series_uid}")

    def retrieve_instance_file(self, series: RemoteSeries, sop_uid: str) -> bytes:
        """One instance as the bytes of its DICOM file (WADO-RS), as stored."""
        self._count("retrieve")
        gone = f"{self.url}: an instance of {series.label()} is no longer on the server (HTTP 404)"
        path = f"/studies/{series.study_uid}/series/{series.series_uid}/instances/{check_uid(sop_uid)}"
        with self._talking(f"downloading an instance of {series.label()}", not_found=gone):
            files = list(self._get_files(path))
        if len(files) != 1:
            raise DicomwebError(f"{self.url}: {len(files)} files sent for one instance of {series.label()}")
        return files[0]

    def retrieve_instance(self, series: RemoteSeries, sop_uid: str) -> pydicom.Dataset:
        """One instance (WADO-RS) as a pydicom Dataset, in the transfer syntax it is stored in."""
        self._count("retrieve")
        gone = f"{self.url}: an instance of {series.label()} is no longer on the server (HTTP 404)"
        with self._talking(f"downloading an instance of {series.label()}", not_found=gone):
            return self.client.retrieve_instance(
                series.study_uid, series.series_uid, sop_uid, media_types=_AS_STORED
            )

    # -- STOW-RS ----------------------------------------------------------------------

    def store(self, datasets: Sequence[pydicom.Dataset], what: str = "instances") -> list[str]:
        """Store instances on the server (STOW-RS).

        Parameters
        ----------
        datasets : sequence of pydicom.Dataset
            Complete DICOM instances (with file meta information).
        what : str
            What they are, for messages (``"the SR of study 3f2a..."``).

        Returns
        -------
        list of str
            The SOPInstanceUIDs the server says it stored.

        Raises
        ------
        DicomwebError
            If the request fails, or the server lists failed instances (with its
            reasons) or fewer instances than were sent.
        """
        if not datasets:
            return []
        self._count("store")
        with self._talking(f"storing {what}"):
            answer = self.client.store_instances(list(datasets))
        failed = list(getattr(answer, "FailedSOPSequence", []) or [])
        stored = [
            str(it.ReferencedSOPInstanceUID) for it in getattr(answer, "ReferencedSOPSequence", []) or []
        ]
        if failed:
            reasons = sorted({str(getattr(it, "FailureReason", "?")) for it in failed})
            raise DicomwebError(
                f"{self.url} refused {len(failed)} of {len(datasets)} {what} "
                f"(failure reason {', '.join(reasons)}, PS3.18 table I.2-1)"
            )
        sent = {str(ds.SOPInstanceUID) for ds in datasets}
        if answer is not None and stored and not sent <= set(stored):
            raise DicomwebError(f"{self.url} stored {len(set(stored) & sent)} of {len(sent)} {what}")
        return stored or sorted(sent)

    def search_instances(
        self, study_uid: str, modality: str, accept: Callable[[RemoteSeries], bool] | None = None
    ) -> list[tuple[RemoteSeries, str]]:
        """The instances of a study's series of one modality (e.g. ``"SR"``).

        Returns
        -------
        list of (RemoteSeries, SOPInstanceUID)
            Empty when the study has no such series.
        """
        hits: list[tuple[RemoteSeries, str]] = []
        for s in self.series_of(study_uid):
            if s.modality.upper() != modality.upper() or (accept is not None and not accept(s)):
                continue
            hits.extend((s, uid) for uid in self.instances_of(s))
        return hits


def multipart_parts(response: Any, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    r"""The bodies of a ``multipart/related`` answer (RFC 2046), streamed, each whole.

    Parameters
    ----------
    response : requests.Response
        Opened with ``stream=True``. A single ``application/dicom`` body (which some
        servers send, against PS3.18) is yielded as it is.
    chunk_size : int
        Bytes read at a time.

    Raises
    ------
    ValueError
        For another media type, or a multipart answer without boundary.

    Examples
    --------
    >>> class R:
    ...     headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=XY'}
    ...     def iter_content(self, n):
    ...         body = b"--XY\r\nContent-Type: application/dicom\r\n\r\nONE\r\n--XY\r\n\r\nTWO\r\n--XY--"
    ...         return (body[i:i + n] for i in range(0, len(body), n))
    >>> list(multipart_parts(R(), chunk_size=5))
    [b'ONE', b'TWO']
    """
    media, _, params = str(response.headers.get("Content-Type", "")).partition(";")
    media = media.strip().lower()
    if media == "application/dicom":
        yield b"".join(response.iter_content(chunk_size))
        return
    if media != "multipart/related":
        raise ValueError(f"expected multipart/related DICOM files, got {media or 'no media type'}")
    boundary = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise ValueError("a multipart/related answer without boundary")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    buf = bytearray(b"\r\n")  # the first delimiter may open the body without a line break
    seen_first, start = False, 0
    for chunk in response.iter_content(chunk_size):
        buf += chunk
        while True:
            i = buf.find(delimiter, start)
            if i < 0:
                start = max(0, len(buf) - len(delimiter) + 1)
                break
            part = bytes(buf[:i])
            del buf[: i + len(delimiter)]
            start = 0
            if seen_first:
                head, sep, body = part.partition(b"\r\n\r\n")
                yield body if sep else part
            seen_first = True
            if buf.startswith(b"--"):  # the closing delimiter
                return


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _connection_problem(exc: BaseException) -> tuple[str, bool]:
    """What a requests ConnectionError means, in a few words (its text is long and nested),
    and whether the server is unreachable (rather than a connection cut half-way)."""
    text = str(exc)
    if any(
        s in text
        for s in ("Connection reset", "RemoteDisconnected", "aborted", "IncompleteRead", "Connection broken")
    ):
        return "the connection was cut by the server; run again to resume", False
    if "refused" in text.lower():
        return "connection refused (is the server running, and are the host and port right?)", True
    if any(
        s in text
        for s in (
            "Name or service not known",
            "Failed to resolve",
            "nodename nor servname",
            "getaddrinfo failed",
            "No address associated",
            "Temporary failure in name",
        )
    ):
        return "unknown host name (check the address)", True
    if "timed out" in text.lower():
        return "no answer in time (connection timed out)", True
    return "cannot connect", True
