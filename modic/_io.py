"""Atomic file writes (every output modic writes goes through here), and reading only
regular files (never blocking on a FIFO or reading a device).

A file is written to a temporary file in the same folder, flushed to disk, given the
mode an ordinary new file would have (or the mode of the file it replaces), and then
renamed over the target with :func:`os.replace`. A reader, or a crash, sees either the
old file or the complete new one, never a partial file.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "open_regular_file",
    "NotARegularFileError",
    "os_error_text",
    "output_error",
]

#: What an ``OSError`` of a write means, in words a user can act on (by ``errno`` name).
_WRITE_PROBLEMS = {
    "ENOSPC": "no space left on the disk",
    "EDQUOT": "the disk quota is exceeded",
    "EFBIG": "the file is larger than the limit on file sizes (ulimit -f, or the file system's)",
    "EROFS": "the file system is read-only",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "ENOTDIR": "a part of this path is a file, not a folder",
    "EEXIST": "a file is in the way where a folder is needed",
    "EISDIR": "is a folder, where a file is needed",
    "ENOENT": "no such file or folder",
    "ENAMETOOLONG": "the path, or one of its names, is too long for the file system",
    "ELOOP": "too many levels of symbolic links",
}


def _name_and_problem(exc: OSError, path: str | os.PathLike[str] | None) -> tuple[str | None, str]:
    import errno as _errno

    name = path if path is not None else (exc.filename2 if exc.filename2 is not None else exc.filename)
    code = _errno.errorcode.get(exc.errno if exc.errno is not None else -1, "")
    problem = _WRITE_PROBLEMS.get(code) or exc.strerror or str(exc)
    return (os.fsdecode(name) if name is not None else None), problem


def os_error_text(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """``"PATH: what is wrong"`` for an ``OSError``, in words and without errno numbers.

    ``path`` (default: the error's own file name) is the file to name; for a failed
    rename the target (``filename2``) is named rather than a temporary file.
    """
    name, problem = _name_and_problem(exc, path)
    return f"{name}: {problem}" if name is not None else problem


def output_error(exc: OSError, path: str | os.PathLike[str] | None = None, what: str = "") -> OSError:
    """An :class:`modic.errors.OutputError` for ``exc``: ``"PATH: WHAT: what is wrong"``, naming
    ``path`` (default: the error's file) and saying what could not be done
    (``"cannot write the attempt log"``)."""
    from .errors import OutputError

    if isinstance(exc, OutputError) and (not what or exc.errno is None):
        return exc  # already in words (a device in the way has no errno to say it again)
    name, problem = _name_and_problem(exc, path)
    text = ": ".join(part for part in (name, what, problem) if part)
    return OutputError(text, errno=exc.errno, filename=name)


class NotARegularFileError(OSError):
    """The path is a FIFO, device, socket or folder: modic never opens those for reading.

    ``kind`` says which, in words (``"a FIFO (named pipe)"``).
    """

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path}: is {kind}, not a regular file: not read")
        self.path = path
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words."""
    for test, what in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def open_regular_file(path: str | os.PathLike[str]) -> tuple[BinaryIO, int]:
    """Open a regular file for reading in binary mode; return it and its size.

    The file is opened without blocking (a FIFO with no writer would otherwise wait
    forever) and checked with ``fstat`` on the open descriptor, so the check and the read
    see the same file; a symbolic link is followed (a link to ``/dev/zero`` is a device).

    Raises
    ------
    NotARegularFileError
        For a FIFO, device, socket or folder.
    OSError
        As :func:`open` (``FileNotFoundError``, ``PermissionError``...).
    """
    name = os.fspath(path)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(name, flags)
    except OSError:
        # a folder (EISDIR), a socket (ENXIO)...: say what it is when it is not a file
        try:
            mode = os.stat(name).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(name, file_kind(mode)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(name, file_kind(info.st_mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return fh, info.st_size


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); harmless where folders cannot be opened."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, make_parents: bool = True, durable: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : path-like
    data : bytes
    make_parents : bool
        Create missing parent folders (default); otherwise a missing folder is an error.
    durable : bool
        Flush the file before, and its folder after, the rename (``fsync``), so that the
        new file also survives a power cut (default). False keeps the atomicity (a reader
        or a crashed process sees the old file or the whole new one) without the flushes,
        for a cache that checks the files it reuses (:mod:`modic.dicomweb.cache`: about
        10 ms per file saved on a local disk).

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    folder = target.parent
    try:
        mode_now: int | None = target.stat().st_mode
    except OSError:
        mode_now = None
    if mode_now is not None and not stat.S_ISREG(mode_now):
        # never rename over a device (/dev/full), FIFO, socket or folder
        from .errors import OutputError

        raise OutputError(
            f"{target}: is {file_kind(mode_now)}, not a regular file: not written", filename=str(target)
        )
    if make_parents:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(exc, exc.filename, "cannot create the folder") from None
    elif not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to write {target.name} in")
    tmp = folder / f".{target.name}.{os.urandom(6).hex()}.tmp"  # secrets.token_hex, without its imports
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise output_error(exc, target, "cannot write") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise output_error(exc, target, "cannot write") from None
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_folder(folder)
    return target


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, with the undecodable bytes of file names given back as they were.

    Python holds a file-name byte it cannot decode as a lone surrogate (U+DC80-U+DCFF,
    PEP 383): every non-ASCII name under ``LC_ALL=C`` with UTF-8 mode off, or a name that
    is not UTF-8 anywhere. Strict UTF-8 refuses them; ``surrogateescape`` writes the
    original bytes, so a name shows as it is on disk and the bytes do not depend on the
    locale.
    """
    return text.encode("utf-8", "surrogateescape")


def atomic_write_text(path: str | os.PathLike[str], text: str, *, make_parents: bool = True) -> Path:
    """Write UTF-8 ``text`` (:func:`utf8`) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, utf8(text), make_parents=make_parents)
