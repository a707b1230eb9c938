"""A persistent index of DICOM headers, so that a re-scan parses only what changed.

The index is one SQLite file (the standard library's :mod:`sqlite3`), e.g. beside the
outputs (``modic batch --header-index OUTDIR/.modic-index.sqlite``), never in an input
folder. A row maps a file (its absolute path) and its ``stat`` (size, ``mtime_ns``,
inode) to the scan's record of its header (:class:`modic.dicomfolder.FileHeader`, or the
reason it is skipped) as JSON. A file whose size, mtime or inode changed is parsed again
and its row replaced; a new file is parsed and added; the rows of files that are gone
are removed when their folder is scanned again. The records hold no pixel data; they do
hold the file paths and the header values the scan keeps (UIDs, patient name and ID among
them, as the scan's result does): the index is as private as the images, which is why
``modic batch`` writes one only when asked (its other outputs are pseudonymous).

Rows are also keyed by :data:`RECORD_VERSION`, the modic version and the header elements
the scan reads, so that a modic that reads headers differently never uses another's rows.

Concurrency: every process (the batch's parent and its workers) opens its own connection
in WAL mode with a busy timeout, reads the rows it needs in one query and writes the rows
of the files it parsed in one transaction, so workers scanning different studies neither
block each other for long nor lose rows; SQLite serialises the writers. An index that
cannot be read (a corrupt or foreign file, a locked-out database) is moved aside and
rebuilt, with a warning; if even that fails the scan goes on without an index. Do not put
the index on a network file system (SQLite's locking is unreliable there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import __version__
from .dicomfolder import SCAN_KEYWORDS, FileHeader
from .sequence import SequenceInfo
from .series import Frame, PixelEncoding, SkippedFile

__all__ = ["HeaderIndex", "INDEX_NAME", "RECORD_VERSION"]

logger = logging.getLogger(__name__)

#: Suggested file name of the index in a batch's output folder.
INDEX_NAME = ".modic-index.sqlite"
#: Version of the records' JSON layout; raise it when FileHeader's meaning changes.
RECORD_VERSION = 1
#: Seconds a connection waits for another process's write to finish.
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS headers (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    reader TEXT NOT NULL,
    record TEXT NOT NULL
)
"""


def _reader_key() -> str:
    """What decides a record: the layout, modic's version, the fields and the elements read."""
    fields = [f.name for f in dataclasses.fields(FileHeader)] + [
        f.name for f in dataclasses.fields(SequenceInfo)
    ]
    text = json.dumps([RECORD_VERSION, __version__, fields, list(SCAN_KEYWORDS)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- records as JSON --------------------------------------------------------------------


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "dataset"}


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _dump(record: FileHeader | SkippedFile) -> str:
    if isinstance(record, SkippedFile):
        return json.dumps({"skipped": record.reason, "study_uid": record.study_uid})
    doc = _plain(record)
    known = record.known_sequence  # the first file of each stack's; the others' stay unknown
    doc["known_sequence"] = None if known is None else _plain(known)
    doc["frames"] = []
    for fr in record.frames:
        d = _plain(fr)
        d["path"] = str(fr.path)
        d["encoding"] = _plain(fr.encoding)
        doc["frames"].append(d)
    return json.dumps(doc)


def _load(text: str, path: Path) -> FileHeader | SkippedFile:
    doc = json.loads(text)
    if "skipped" in doc:
        return SkippedFile(path, doc["skipped"], doc["study_uid"])
    frames = []
    for d in doc["frames"]:
        enc = PixelEncoding(**d.pop("encoding"))
        d["path"] = path  # the path asked for, as a fresh scan gives it
        frames.append(Frame(**_tuples(d), encoding=enc))
    known = doc.pop("known_sequence")
    doc["frames"] = tuple(frames)
    return FileHeader(
        **_tuples(doc), known_sequence=None if known is None else SequenceInfo(**_tuples(known))
    )


def _key(path: str | os.PathLike[str]) -> str:
    """The absolute path as the index stores it: text SQLite can hold (UTF-8). A name that
    is not UTF-8 (or any name under a non-UTF-8 locale, where Python keeps the bytes as
    surrogates) has its other bytes written as ``\\xNN``; a folder's key is a prefix of
    its files' keys either way."""
    return os.fsencode(os.path.abspath(path)).decode("utf-8", "backslashreplace")


# -- the index --------------------------------------------------------------------------


class HeaderIndex:
    """An open header index (a context manager; see the module docstring).

    Parameters
    ----------
    path : path-like
        The SQLite file, created with its folder if absent.

    Attributes
    ----------
    parsed : int
        Files parsed (not found in the index, or changed) by this connection.
    reused : int
        Files whose record came from the index.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.parsed = 0
        self.reused = 0
        self._reader = _reader_key()
        Key = tuple[str, int, int, int]
        self._pending: list[tuple[Key, FileHeader | SkippedFile]] = []
        self._unknown: list[tuple[Key, FileHeader]] = []
        self._gone: list[str] = []
        self._db: sqlite3.Connection | None = self._open()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            db.execute("SELECT path, size, mtime_ns, inode, reader, record FROM headers LIMIT 1").fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection | None:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            logger.warning("header index %s cannot be read (%s): rebuilding it", self.path, exc)
        except OSError as exc:
            logger.warning("header index %s cannot be opened (%s): scanning without it", self.path, exc)
            return None
        try:
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.path) + suffix)
                if p.exists():
                    os.replace(p, str(p) + ".corrupt")
            return self._connect()
        except (sqlite3.DatabaseError, OSError) as exc:
            logger.warning("header index %s cannot be rebuilt (%s): scanning without it", self.path, exc)
            return None

    def close(self) -> None:
        """Write the records read (see :meth:`headers`) and close the connection."""
        if self._db is None:
            return
        rows = [(*key, self._reader, _dump(record)) for key, record in self._pending]
        rows += [
            (*key, self._reader, _dump(record))
            for key, record in self._unknown
            if record.known_sequence is not None
        ]
        self._write(rows, self._gone)
        self._pending, self._unknown, self._gone = [], [], []
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> HeaderIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def headers(
        self, files: Sequence[Path], read: Callable[[Path], FileHeader | SkippedFile]
    ) -> list[FileHeader | SkippedFile]:
        """The record of each file: from the index when the file is unchanged, else ``read(file)``.

        When the index is closed, the records read are written to it (with the sequence
        evidence of those that became a series' header by then), records from the index
        whose sequence evidence was worked out meanwhile are updated, and rows of files
        under the folders of ``files`` that are no longer there are removed.
        """
        keys: list[tuple[str, int, int, int] | None] = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError:
                keys.append(None)
                continue
            # only regular files are indexed (a FIFO or device is skipped by the reader)
            keys.append(
                (_key(f), st.st_size, st.st_mtime_ns, st.st_ino) if stat.S_ISREG(st.st_mode) else None
            )
        stored = self._stored(files)
        out: list[FileHeader | SkippedFile] = []
        for f, key in zip(files, keys, strict=True):
            row = stored.get(key[0]) if key is not None else None
            if key is not None and row is not None and row[:3] == key[1:]:
                try:
                    loaded = _load(row[3], f)
                    out.append(loaded)
                    self.reused += 1
                    if isinstance(loaded, FileHeader) and loaded.known_sequence is None:
                        self._unknown.append((key, loaded))
                    continue
                except (ValueError, TypeError, KeyError) as exc:
                    logger.warning(
                        "header index %s: unreadable record of %s (%s): read again", self.path, f, exc
                    )
            record = read(f)
            self.parsed += 1
            out.append(record)
            if key is not None:
                self._pending.append((key, record))
        present = {k[0] for k in keys if k is not None}
        self._gone.extend(p for p in stored if p not in present)
        return out

    def _folders(self, files: Sequence[Path]) -> list[str]:
        return sorted({os.path.dirname(os.path.abspath(f)) for f in files})

    def _stored(self, files: Sequence[Path]) -> dict[str, tuple[int, int, int, str]]:
        """path -> (size, mtime_ns, inode, record) of the rows under the files' folders."""
        if self._db is None or not files:
            return {}
        top = _key(os.path.commonpath(self._folders(files)))
        prefix = top.rstrip(os.sep) + os.sep
        try:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, inode, record FROM headers "
                "WHERE reader = ? AND path >= ? AND path < ?",
                (self._reader, prefix, prefix[:-1] + chr(ord(os.sep) + 1)),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            logger.warning("header index %s cannot be read (%s): scanning without it", self.path, exc)
            self.close()
            return {}
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def _write(self, rows: list[tuple[str, int, int, int, str, str]], paths_gone: list[str]) -> None:
        if self._db is None:
            return
        gone = [(p,) for p in paths_gone]
        if not rows and not gone:
            return
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO headers VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("DELETE FROM headers WHERE path = ?", gone)
        except sqlite3.DatabaseError as exc:
            logger.warning(
                "header index %s cannot be written (%s): the next scan parses these files again",
                self.path,
                exc,
            )
