"""The attempt log: every graded attempt, per trainee, in JSON Lines and CSV.

``LOGDIR/attempts.jsonl``: one JSON object per attempt (:meth:`Grade.to_dict` without the
classifier details)::

    {"attempt": "9f0c...", "time": "2026-03-01T10:00:00.000Z", "trainee": "alice",
     "case": "case-01", "case_title": "...", "score": 0.9545, "n_endplates": 11,
     "n_missed": 0, "n_roi_compared": 2, "n_roi_match": 1, "modic_version": "...",
     "endplates": [{"endplate": "L4 inferior", "in_key": true, "key": "1", "answer": "1/2",
                    "credit": 0.5, "dice": 0.42, "roi_match": false}, ...]}

``LOGDIR/attempts.csv``: the same, one row per graded endplate (:data:`CSV_FIELDS`), for
spreadsheets and pandas. Neither holds patient identifiers or DICOM UIDs: a case is
named by its id. A log is never rewritten when a case is renamed: :func:`read_attempts`
reads a record that names a former id as naming the case's id now (the shipped cases'
former ids, :data:`~modic.teaching.SHIPPED_FORMER_IDS`, by default).

Appending is atomic: under a lock file (``LOGDIR/.attempts.lock``, POSIX ``flock``), each
file is read, extended and written back through a temporary file renamed over it
(:mod:`modic._io`), so a crash leaves the old or the new log, never half a line; the CSV
header of an existing file is checked first and a file with other columns is refused.

The default ``LOGDIR`` is a per-user data folder (:func:`default_log_dir`): never the
folder of the cases, which is input and may be read-only or shared.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes, output_error, utf8
from ..errors import OutputError
from .grading import Grade
from .shipped import SHIPPED_FORMER_IDS

__all__ = [
    "JSONL_NAME",
    "CSV_NAME",
    "CSV_FIELDS",
    "default_log_dir",
    "log_attempt",
    "read_attempts",
    "with_current_ids",
    "attempt_record",
]

logger = logging.getLogger(__name__)

JSONL_NAME = "attempts.jsonl"
CSV_NAME = "attempts.csv"
_LOCK_NAME = ".attempts.lock"
#: Columns of ``attempts.csv``: one row per graded endplate of an attempt.
CSV_FIELDS: tuple[str, ...] = (
    "attempt",
    "time",
    "trainee",
    "case",
    "score",
    "endplate",
    "in_key",
    "key",
    "answer",
    "credit",
    "dice",
    "roi_match",
)
_ENDPLATE_FIELDS = (
    "endplate",
    "in_key",
    "key",
    "answer",
    "credit",
    "key_extent",
    "answer_extent",
    "dice",
    "roi_match",
)


def default_log_dir() -> Path:
    """The per-user folder for attempt logs.

    ``$MODIC_TEACHING_LOG`` if set; else ``$XDG_DATA_HOME/modic/teaching``
    (``~/.local/share/modic/teaching``) on Linux, ``~/Library/Application Support/modic/teaching``
    on macOS, ``%APPDATA%\\modic\\teaching`` on Windows.
    """
    env = os.environ.get("MODIC_TEACHING_LOG")
    if env:
        return Path(env)
    if sys.platform == "win32":  # pragma: no cover
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":  # pragma: no cover
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "modic" / "teaching"


def attempt_record(grade: Grade) -> dict[str, Any]:
    """The JSON Lines record of an attempt (no classifier details, no identifiers)."""
    d = grade.to_dict()
    d.pop("notes", None)
    d["endplates"] = [{k: e[k] for k in _ENDPLATE_FIELDS} for e in d["endplates"]]
    return d


def _csv_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for e in record["endplates"]:
        rows.append(
            {
                "attempt": record["attempt"],
                "time": record["time"],
                "trainee": record["trainee"],
                "case": record["case"],
                "score": record["score"],
                "endplate": e["endplate"],
                "in_key": e["in_key"],
                "key": e["key"],
                "answer": "" if e["answer"] is None else e["answer"],
                "credit": e["credit"],
                "dice": "" if e["dice"] is None else e["dice"],
                "roi_match": "" if e["roi_match"] is None else e["roi_match"],
            }
        )
    return rows


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/.attempts.lock`` (POSIX); no lock where flock is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _check_not_inside(log_dir: Path, inputs: list[Path]) -> None:
    resolved = log_dir.resolve()
    for folder in inputs:
        f = folder.resolve()
        if resolved == f or f in resolved.parents:
            raise ValueError(
                f"{log_dir}: the attempt log must not be written inside the case folder {folder} "
                "(input); choose another --log-dir"
            )


def log_attempt(grade: Grade, log_dir: str | os.PathLike[str] | None = None) -> Path:
    """Append a graded attempt to ``LOGDIR/attempts.jsonl`` and ``LOGDIR/attempts.csv``.

    Parameters
    ----------
    grade : Grade
    log_dir : path-like, optional
        Default :func:`default_log_dir`. Created if missing. It may not lie inside the
        case's folder.

    Returns
    -------
    Path
        The log folder.

    Raises
    ------
    ValueError
        If ``log_dir`` lies inside the case folder, or ``attempts.csv`` has other columns.
    OutputError
        If the log cannot be written (a file in the way, a full disk...), naming the file.
    """
    folder = Path(log_dir) if log_dir is not None else default_log_dir()
    if grade.case.path is not None:
        _check_not_inside(folder, [grade.case.path])
    try:
        _append_attempt(folder, grade)
    except OSError as exc:
        err = output_error(exc, None, "cannot write the attempt log")
        raise OutputError(
            f"{err}; choose another --log-dir (or set MODIC_TEACHING_LOG)",
            errno=err.errno,
            filename=err.filename,
        ) from None
    logger.info(
        "logged attempt %s of %s at case %s to %s",
        grade.attempt_id,
        grade.trainee,
        grade.case.id,
        folder / JSONL_NAME,
    )
    return folder


def _append_attempt(folder: Path, grade: Grade) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = attempt_record(grade)
    line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    jsonl, csv_path = folder / JSONL_NAME, folder / CSV_NAME
    with _locked(folder):
        old_csv = csv_path.read_bytes() if csv_path.exists() else b""
        header = ",".join(CSV_FIELDS)
        if old_csv and old_csv.decode("utf-8").splitlines()[0].strip() != header:
            raise ValueError(
                f"{csv_path}: its columns are not those of this modic ({header}); "
                "move it away to start a new log"
            )
        old_jsonl = jsonl.read_bytes() if jsonl.exists() else b""
        if old_jsonl and not old_jsonl.endswith(b"\n"):
            old_jsonl += b"\n"
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
        if not old_csv:
            writer.writeheader()
        writer.writerows(_csv_rows(record))
        atomic_write_bytes(jsonl, old_jsonl + utf8(line))
        atomic_write_bytes(csv_path, old_csv + utf8(buf.getvalue()))


def read_attempts(
    log_dir: str | os.PathLike[str] | None = None, *, renamed: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The attempt records of ``LOGDIR/attempts.jsonl``, oldest first ([] when there is none).

    A line that is not a JSON object is skipped with a logged warning naming the line.

    Parameters
    ----------
    log_dir : path-like, optional
        Default :func:`default_log_dir`.
    renamed : mapping of str to str, optional
        Former case ids to the ids now (:func:`~modic.teaching.current_ids`); default
        :data:`~modic.teaching.SHIPPED_FORMER_IDS`. A record naming a former id is
        returned with ``"case"`` set to the id now (the file is not changed).
    """
    from ..errors import TeachingFormatError

    folder = Path(log_dir) if log_dir is not None else default_log_dir()
    if folder.exists() and not folder.is_dir():
        raise TeachingFormatError(
            f"is a file, not a folder: the attempt log is the folder that holds {JSONL_NAME} (--log-dir)",
            source=str(folder),
        )
    path = folder / JSONL_NAME
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TeachingFormatError(
            f"not UTF-8 text (bad byte at offset {e.start})", source=str(path)
        ) from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            logger.warning("%s: line %d is not JSON (%s); skipped", path, n, e.msg)
            continue
        if not isinstance(rec, dict) or not {"trainee", "case", "endplates"} <= set(rec):
            logger.warning("%s: line %d is not an attempt record; skipped", path, n)
            continue
        out.append(rec)
    return with_current_ids(out, renamed)


def with_current_ids(
    records: list[dict[str, Any]], renamed: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """``records`` with each former case id replaced by the id now (see :func:`read_attempts`)."""
    names = SHIPPED_FORMER_IDS if renamed is None else renamed
    for rec in records:
        if isinstance(rec.get("case"), str):
            rec["case"] = names.get(rec["case"], rec["case"])
    return records
