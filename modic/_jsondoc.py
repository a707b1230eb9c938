"""Strict reading, field-by-field checking and stable writing of modic's versioned JSON files.

One implementation for the annotation files (:mod:`modic.annotations`) and the teaching
files (:mod:`modic.teaching`). Every problem raises :class:`~modic.errors.AnnotationFormatError`
with the JSON field at fault (``rois[2].shape.points``) and, once known, the file;
:func:`at` builds the field path while a document is walked. The teaching files re-raise
as their subclass ``TeachingFormatError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import NotARegularFileError, open_regular_file
from .errors import AnnotationFormatError

__all__ = [
    "as_object",
    "at",
    "check_keys",
    "check_timestamp",
    "check_version",
    "dumps",
    "get_str",
    "join",
    "json_type",
    "read_json",
    "utc_now",
]

logger = logging.getLogger(__name__)

_TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$"
)
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")

#: Largest JSON file modic reads (bytes). An annotation file of a study is tens of kB;
#: 1000 ROIs of 1000 points each stay under 64 MiB.
MAX_JSON_BYTES = 64 * 1024 * 1024


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------
def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a UTF-8 JSON file strictly: no NaN or Infinity, no key twice in one object.

    A UTF-8 byte order mark is allowed.

    Returns
    -------
    Any
        The JSON value, usually an object (check it with :func:`as_object`).

    Only regular files are read: a FIFO, a device (a link to ``/dev/zero``), a socket or a
    folder is refused without waiting on it, and so is a file larger than
    :data:`MAX_JSON_BYTES`. Nesting deeper than Python's parser allows (about 1000 levels;
    modic's documents need 6) is refused too.

    Raises
    ------
    AnnotationFormatError
        Naming the file, and the line and column of a syntax error.
    FileNotFoundError
        If there is no such file.
    """
    name = os.fspath(path)
    raw = _read_regular_file(Path(path), MAX_JSON_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnnotationFormatError(f"not UTF-8 text (bad byte at offset {e.start})", source=name) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise AnnotationFormatError(
            f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", source=name
        ) from None
    except RecursionError:
        raise AnnotationFormatError(
            "JSON nested too deeply (arrays or objects more than about 1000 levels deep; modic's "
            "documents need 6)",
            source=name,
        ) from None
    except ValueError as e:
        raise AnnotationFormatError(f"invalid JSON: {e}", source=name) from None


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else a clear error."""
    name = os.fspath(path)
    try:
        fh, size = open_regular_file(path)
    except NotARegularFileError as e:
        raise AnnotationFormatError(f"is {e.kind}, not a regular file: not read", source=name) from None
    with fh:
        if size > limit:
            raise AnnotationFormatError(
                f"is {size / 2**20:.1f} MiB, more than the {limit / 2**20:g} MiB a modic JSON file may have",
                source=name,
            )
        raw = fh.read(limit + 1)
    if len(raw) > limit:  # grew while being read
        raise AnnotationFormatError(
            f"is more than the {limit / 2**20:g} MiB a modic JSON file may have", source=name
        )
    return raw


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------
# naming fields and values in errors
# ----------------------------------------------------------------------------------------
def json_type(value: object) -> str:
    """How a JSON value is named in error messages.

    Examples
    --------
    >>> json_type(None), json_type([1, 2]), json_type(2.5)
    ('null', 'an array', 'a number (2.5)')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def join(prefix: str, name: str) -> str:
    """The path of field ``name`` inside field ``prefix``.

    Examples
    --------
    >>> join("rois[2]", "shape"), join("rois", "[2]"), join("", "shape"), join("shape", "")
    ('rois[2].shape', 'rois[2]', 'shape', 'shape')
    """
    if not name:
        return prefix
    if not prefix:
        return name
    return prefix + name if name.startswith("[") else f"{prefix}.{name}"


@contextmanager
def at(
    prefix: str, *, source: str = "", error: type[AnnotationFormatError] = AnnotationFormatError
) -> Iterator[None]:
    """Re-raise the AnnotationFormatErrors raised inside as ``error``, their field put inside ``prefix``.

    ``source`` names the file in those that do not name one yet.
    """
    try:
        yield
    except AnnotationFormatError as e:
        raise error(e.problem, field=join(prefix, e.field), source=e.source or source) from None


# ----------------------------------------------------------------------------------------
# checking a document field by field
# ----------------------------------------------------------------------------------------
def as_object(value: object, name: str = "") -> Mapping[str, Any]:
    """``value`` if it is a JSON object; else an error naming field ``name``."""
    if not isinstance(value, Mapping):
        raise AnnotationFormatError(f"expected an object, got {json_type(value)}", field=name)
    return value


def check_keys(
    d: Mapping[str, Any], required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = True
) -> None:
    """Check that the ``required`` fields are present and, when ``strict``, that there are no others.

    Without ``strict``, unknown fields (of a newer minor version) are logged at debug level.
    """
    for key in required:
        if key not in d:
            raise AnnotationFormatError("required field is missing", field=key)
    known = (*required, *optional)
    unknown = [k for k in d if k not in known]
    if unknown and strict:
        raise AnnotationFormatError(f"unknown field; expected only {', '.join(known)}", field=str(unknown[0]))
    for key in unknown:
        logger.debug("ignoring unknown field %r (written by a newer version?)", key)


def get_str(d: Mapping[str, Any], key: str, *, non_empty: bool = False) -> str:
    """``d[key]``, a string (with ``non_empty``, one with more than white space)."""
    value = d[key]
    if not isinstance(value, str):
        raise AnnotationFormatError(f"expected a string, got {json_type(value)}", field=key)
    if non_empty and not value.strip():
        raise AnnotationFormatError("must not be empty", field=key)
    return value


def check_version(
    d: Mapping[str, Any],
    format_name: str,
    major: int,
    minor: int,
    what: str,
    *,
    missing_format: str = "",
    unsupported: str = "",
) -> bool:
    """Check the ``format`` and ``version`` fields of a document.

    Parameters
    ----------
    d : mapping
        The document.
    format_name : str
        The expected value of ``format``.
    major, minor : int
        The version this modic knows: every ``"<major>.x"`` is read.
    what : str
        What the document is, for the message when ``format`` is wrong: ``"a modic annotation file"``.
    missing_format, unsupported : str, optional
        The message when ``format`` is missing, and what follows ``"version '2.0' is not supported: "``,
        instead of the default wording.

    Returns
    -------
    bool
        Whether unknown fields are errors: true up to version ``<major>.<minor>``; a later
        minor version may hold fields this modic does not know.
    """
    if "format" not in d:
        problem = missing_format or f"expected {format_name!r}, got missing: this is not {what}"
        raise AnnotationFormatError(problem, field="format")
    if d["format"] != format_name:
        raise AnnotationFormatError(
            f"expected {format_name!r}, got {d['format']!r}: this is not {what}", field="format"
        )
    if "version" not in d:
        raise AnnotationFormatError("required field is missing", field="version")
    version = d["version"]
    m = _VERSION_RE.match(version) if isinstance(version, str) else None
    if m is None or int(m.group(1)) != major:
        reads = unsupported or f"this modic reads versions {major}.x; a newer modic may"
        raise AnnotationFormatError(f"version {version!r} is not supported: {reads}", field="version")
    return int(m.group(2)) <= minor


# ----------------------------------------------------------------------------------------
# timestamps
# ----------------------------------------------------------------------------------------
def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds: ``"2024-05-01T10:00:00.123Z"``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_timestamp(value: object, name: str, *, calendar: bool = True) -> str:
    """``value`` if it is an ISO 8601 date and time with a time zone, e.g. ``"2024-05-01T10:00:00Z"``.

    With ``calendar``, the date, the time and the zone offset must also exist (no 30 February,
    no hour 25); without, only the form is checked.
    """
    if not isinstance(value, str):
        raise AnnotationFormatError(
            f"expected an ISO 8601 time as a string, got {json_type(value)}", field=name
        )
    m = _TIMESTAMP_RE.match(value)
    ok = m is not None
    if m is not None and calendar:
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        try:
            datetime(y, mo, d, h, mi, s)
        except ValueError:
            ok = False
        zone = m.group(8)
        if zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:6]) > 59):
            ok = False
    if not ok:
        raise AnnotationFormatError(
            f"{value!r} is not an ISO 8601 date and time with a time zone, e.g. '2024-05-01T10:00:00Z'",
            field=name,
        )
    return value


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------
def dumps(doc: Mapping[str, Any], *, flat_objects: bool = False) -> str:
    """Pretty, stable JSON ending in a newline, so that the same document gives the same bytes.

    Two-space indent, key order kept, non-ASCII characters kept (write the text as UTF-8),
    NaN and infinities refused. An object has one key per line, and an array holding only
    numbers, strings, booleans and nulls stands on one line; with ``flat_objects`` so does
    such an object (the document itself excepted).

    Examples
    --------
    >>> print(dumps({"a": [1, 2], "b": {"c": "é"}}), end="")
    {
      "a": [1, 2],
      "b": {
        "c": "é"
      }
    }
    >>> print(dumps({"a": [1, 2], "b": {"c": "é"}}, flat_objects=True), end="")
    {
      "a": [1, 2],
      "b": {"c": "é"}
    }
    """
    return _dumps(doc, 0, flat_objects) + "\n"


def _dumps(value: object, level: int, flat_objects: bool) -> str:
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        if flat_objects and level > 0 and _flat(value.values()):
            return "{" + ", ".join(f"{_scalar(str(k))}: {_scalar(v)}" for k, v in value.items()) + "}"
        items = (f"{inner}{_scalar(str(k))}: {_dumps(v, level + 1, flat_objects)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if _flat(value):
            return "[" + ", ".join(_scalar(v) for v in value) + "]"
        elements = (inner + _dumps(v, level + 1, flat_objects) for v in value)
        return "[\n" + ",\n".join(elements) + "\n" + pad + "]"
    return _scalar(value)


def _flat(values: Iterable[object]) -> bool:
    return all(not isinstance(v, (Mapping, list, tuple)) for v in values)


def _scalar(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
