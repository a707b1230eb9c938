"""The few exceptions modic raises on purpose.

Every message names the file, series or argument at fault and says what is wrong, so
that a user can act on it without reading a traceback. All of them derive from
:class:`ModicError`, and from the built-in exception that fits, so that ``except
ValueError`` keeps working for callers who do not know modic (as nibabel's
``AffineError(ValueError)`` does).

Every class is defined here (the modules that raise them re-export theirs, so
``modic.labelmap.LabelMapError`` is this module's class). The errors about one place
(:class:`DicomFileError`, :class:`LabelMapError`, :class:`ProposalError`) share one
constructor, ``(where, problem)``, and a message ``"<where>: <problem>"``. Every error
survives a pickle round trip with its fields (a batch worker's error reaches the parent
process whole).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "ModicError",
    "DicomFileError",
    "GeometryError",
    "OutsideVolumeError",
    "SeriesSelectionError",
    "MeasurementError",
    "MissingDependencyError",
    "AnnotationFormatError",
    "DicomwebError",
    "ServerUnavailableError",
    "ClusterError",
    "LabelMapError",
    "BandError",
    "ProposalError",
    "SRExportError",
    "ResultsFileError",
    "NoResultsError",
    "OutputFolderError",
    "TeachingFormatError",
    "OutputError",
]


class ModicError(Exception):
    """Base class of every error modic raises on purpose."""


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseException:
    """``cls(*args, **kwargs)``: how the errors below are unpickled."""
    return cls(*args, **kwargs)


class _PlaceError(ModicError):
    """An error at one place (a file, a study): ``"<where>: <problem>"``.

    Parameters
    ----------
    where : str or path-like
        The file, folder or study at fault.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, where: str | os.PathLike[str], problem: str) -> None:
        self.where = os.fspath(where) if isinstance(where, os.PathLike) else str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        # the class and both fields, whatever the subclass (a batch worker's error)
        return (_rebuild, (type(self), (self.where, self.problem), {}))


class DicomFileError(_PlaceError, ValueError):
    """A DICOM file cannot be used: unreadable, truncated, or missing a required attribute.

    Parameters
    ----------
    path : str
        The file at fault (also :attr:`where`).
    problem : str
        What is wrong, in words a user can act on.
    """

    @property
    def path(self) -> str:
        """The file at fault."""
        return self.where


class GeometryError(ModicError, ValueError):
    """A series' geometry is inconsistent (orientation, pixel spacing, slice positions)."""


class OutsideVolumeError(GeometryError):
    """A point or region falls outside the series it is mapped to."""


class SeriesSelectionError(ModicError, LookupError):
    """No series, or more than one, fits what was asked for (e.g. the sagittal T1)."""


class MeasurementError(ModicError, ValueError):
    """A region cannot be measured or classified (too few voxels, outside a series, no reference)."""


class MissingDependencyError(ModicError, ImportError):
    """An optional dependency is needed for this operation; the message says which extra."""

    def __init__(self, message: str, extra: str | None = None) -> None:
        self.extra = extra
        super().__init__(message)


class AnnotationFormatError(ModicError, ValueError):
    """An annotation document, or a part of one (label, shape, image plane), is not valid.

    Parameters
    ----------
    problem : str
        What is wrong, in words a user can act on.
    field : str, optional
        Path of the offending JSON field, e.g. ``"rois[2].shape.points"``, or the name of
        the constructor argument at fault.
    source : str, optional
        The file (or ``"<dict>"``) the document came from.

    The message reads ``"<source>: <field>: <problem>"``, leaving out what is empty.
    """

    def __init__(self, problem: str, *, field: str = "", source: str = "") -> None:
        self.problem = problem
        self.field = field
        self.source = source
        super().__init__(": ".join(part for part in (source, field, problem) if part))

    def __reduce__(self) -> tuple[object, ...]:
        # keep the class, field and source when the error crosses a process boundary (batch runs)
        return (_rebuild, (type(self), (self.problem,), {"field": self.field, "source": self.source}))


class TeachingFormatError(AnnotationFormatError):
    """A teaching case bundle or a trainee answer file is not valid (:mod:`modic.teaching`).

    A :class:`AnnotationFormatError` (so a ``ValueError``): the message reads
    ``"<file>: <field>: <problem>"``.
    """


class DicomwebError(ModicError, OSError):
    """A DICOMweb server cannot be used: unreachable, refusing the credentials, or without
    the study asked for; or a download was cut short (see :mod:`modic.dicomweb`).

    The message names the server (never with credentials) and says what to do.
    """


class ServerUnavailableError(DicomwebError):
    """The server cannot be used at all: connection refused, unknown host, time-out, or
    credentials refused (HTTP 401).

    A batch stops asking the server after this error (the other studies are reported as
    not tried), rather than failing the same way for each in turn.
    """


class ClusterError(ModicError, OSError):
    """The Dask scheduler given to ``modic batch --dask ADDRESS`` cannot be reached (or the
    address is not one); the message names the address and what to check."""


class LabelMapError(_PlaceError, ValueError):
    """A label map cannot be used: unreadable, 4-D, empty, in another frame of reference,
    not overlapping the study, or in an unknown convention (:mod:`modic.labelmap`).

    Parameters
    ----------
    path : str or path-like
        The label map at fault (also :attr:`where`).
    problem : str
        What is wrong, and what to do.
    """

    @property
    def path(self) -> str:
        """The label map at fault."""
        return self.where


class BandError(MeasurementError):
    """A body mask from which no bands can be derived (empty, too small, no surface;
    :mod:`modic.bands`)."""


class ProposalError(_PlaceError, ValueError):
    """No spine could be found: no sagittal T1, or no chain of vertebral bodies in it
    (:mod:`modic.propose`).

    Parameters
    ----------
    where : str
        The study (folder or key).
    problem : str
        What is wrong and what to do.
    """


class SRExportError(ModicError, ValueError):
    """The SR (or SEG) cannot be written: an ROI's image is not part of the study given, or
    there is no ROI (:mod:`modic.sr`, :mod:`modic.seg`)."""


class ResultsFileError(ModicError, ValueError):
    """A results file that cannot be read: not modic's, or a value that fits no column
    (:mod:`modic.tables`)."""


class NoResultsError(ModicError, ValueError):
    """A folder holds no results to report on (:mod:`modic.report`)."""


class OutputFolderError(ModicError, ValueError):
    """The output folder of ``modic batch`` cannot be used (it lies inside a study folder,
    or is ROOT itself)."""


class OutputError(ModicError, OSError):
    """An output cannot be written: the disk is full, a file size limit is reached, a file
    stands where a folder must be (or under it), the folder is read-only, or the target is
    a device or a folder.

    The message names the file or folder at fault and says what is wrong in words (no
    errno numbers); ``errno`` and ``filename`` are those of the underlying ``OSError``.
    """

    def __init__(self, message: str, *, errno: int | None = None, filename: str | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.filename = filename

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[object, ...]:
        # errno and filename are OSError's own slots, which pickling would otherwise drop
        return (_rebuild, (type(self), (str(self),), {"errno": self.errno, "filename": self.filename}))
