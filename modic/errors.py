"""The few exceptions modic raises on purpose.

Every message names the file, series or argument at fault and says what is wrong, so
that a user can act on it without reading a traceback. All of them derive from
:class:`ModicError`, and from the built-in exception that fits, so that ``except
ValueError`` keeps working for callers who do not know modic (as nibabel's
``AffineError(ValueError)`` does).
"""

from __future__ import annotations

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
    "ClusterError",
    "OutputError",
]


class ModicError(Exception):
    """Base class of every error modic raises on purpose."""


class DicomFileError(ModicError, ValueError):
    """A DICOM file cannot be used: unreadable, truncated, or missing a required attribute.

    Parameters
    ----------
    path : str
        The file at fault.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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
        # keep field and source when the error crosses a process boundary (batch runs)
        return (_rebuild_annotation_error, (self.problem, self.field, self.source))


def _rebuild_annotation_error(problem: str, field: str, source: str) -> AnnotationFormatError:
    return AnnotationFormatError(problem, field=field, source=source)


class DicomwebError(ModicError, OSError):
    """A DICOMweb server cannot be used: unreachable, refusing the credentials, or without
    the study asked for; or a download was cut short (see :mod:`modic.dicomweb`).

    The message names the server (never with credentials) and says what to do.
    """


class ClusterError(ModicError, OSError):
    """The Dask scheduler given to ``modic batch --dask ADDRESS`` cannot be reached (or the
    address is not one); the message names the address and what to check."""


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
