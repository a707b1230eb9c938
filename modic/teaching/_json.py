"""Strict JSON reading and field-by-field validation for the teaching files.

Every problem raises :class:`TeachingFormatError` naming the file and the JSON field
(``case.json: key['L4 inferior'].type: ...``), as :mod:`modic.annotations` does for
annotation files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import AnnotationFormatError

__all__ = ["TeachingFormatError"]

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$")


class TeachingFormatError(AnnotationFormatError):
    """A teaching case bundle or a trainee answer file is not valid.

    A :class:`~modic.errors.AnnotationFormatError` (so a ``ValueError``): the message reads
    ``"<file>: <field>: <problem>"``.
    """


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds: ``"2024-05-01T10:00:00.123Z"``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_type(value: object) -> str:
    """How a JSON value is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def join(prefix: str, name: str) -> str:
    """``"key"`` + ``"type"`` -> ``"key.type"``; ``"key"`` + ``"[2]"`` -> ``"key[2]"``."""
    if not prefix:
        return name
    if not name:
        return prefix
    return prefix + name if name.startswith("[") else f"{prefix}.{name}"


@contextmanager
def at(prefix: str) -> Iterator[None]:
    """Prefix the field of errors raised inside with ``prefix``."""
    try:
        yield
    except AnnotationFormatError as e:
        raise TeachingFormatError(e.problem, field=join(prefix, e.field), source=e.source) from None


@contextmanager
def in_file(source: str) -> Iterator[None]:
    """Name ``source`` in errors raised inside that do not name a file yet."""
    try:
        yield
    except AnnotationFormatError as e:
        raise TeachingFormatError(e.problem, field=e.field, source=e.source or source) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def read_json(path: str | os.PathLike[str]) -> object:
    """Parse a UTF-8 JSON file strictly (no NaN, no repeated keys).

    Raises
    ------
    TeachingFormatError
        Naming the file (and line and column for syntax errors).
    FileNotFoundError
    """
    name = os.fspath(path)
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TeachingFormatError(f"not UTF-8 text (bad byte at offset {e.start})", source=name) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise TeachingFormatError(
            f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", source=name
        ) from None
    except ValueError as e:
        raise TeachingFormatError(f"invalid JSON: {e}", source=name) from None


def dumps(doc: Mapping[str, Any]) -> str:
    """Pretty, stable JSON ending in a newline: 2-space indent, UTF-8, key order kept, and
    objects and arrays holding only numbers, strings, booleans and nulls on one line."""
    return _dumps(doc, 0) + "\n"


def _flat(value: object) -> bool:
    items: Iterable[object] = value.values() if isinstance(value, Mapping) else value  # type: ignore[assignment]
    return all(not isinstance(v, (Mapping, list, tuple)) for v in items)


def _dumps(value: object, level: int) -> str:
    def one(v: object) -> str:
        return json.dumps(v, ensure_ascii=False, allow_nan=False)

    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        if level > 0 and _flat(value):
            return "{" + ", ".join(f"{one(str(k))}: {one(v)}" for k, v in value.items()) + "}"
        body = ",\n".join(f"{inner}{one(str(k))}: {_dumps(v, level + 1)}" for k, v in value.items())
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if _flat(value):
            return "[" + ", ".join(one(v) for v in value) + "]"
        return "[\n" + ",\n".join(inner + _dumps(v, level + 1) for v in value) + "\n" + pad + "]"
    return one(value)


def as_object(value: object, name: str = "") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TeachingFormatError(f"expected an object, got {json_type(value)}", field=name)
    return value


def check_keys(
    d: Mapping[str, Any], required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = True
) -> None:
    """Required fields present; unknown fields are errors when ``strict``."""
    for key in required:
        if key not in d:
            raise TeachingFormatError("required field is missing", field=key)
    if strict:
        known = (*required, *optional)
        for key in d:
            if key not in known:
                raise TeachingFormatError(f"unknown field; expected only {', '.join(known)}", field=str(key))


def get_str(d: Mapping[str, Any], key: str, *, non_empty: bool = False) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise TeachingFormatError(f"expected a string, got {json_type(value)}", field=key)
    if non_empty and not value.strip():
        raise TeachingFormatError("must not be empty", field=key)
    return value


def get_timestamp(d: Mapping[str, Any], key: str) -> str:
    value = get_str(d, key)
    if not _TIMESTAMP_RE.match(value):
        raise TeachingFormatError(
            f"{value!r} is not an ISO 8601 date and time with a time zone, e.g. '2024-05-01T10:00:00Z'",
            field=key,
        )
    return value


def check_version(d: Mapping[str, Any], format_name: str, major: int, minor: int, what: str) -> bool:
    """Check ``format`` and ``version``; returns whether unknown fields are errors (1.0 documents)."""
    if d.get("format") != format_name:
        got = "missing" if "format" not in d else repr(d["format"])
        raise TeachingFormatError(f"expected {format_name!r}, got {got}: this is not {what}", field="format")
    if "version" not in d:
        raise TeachingFormatError("required field is missing", field="version")
    version = d["version"]
    m = _VERSION_RE.match(version) if isinstance(version, str) else None
    if m is None or int(m.group(1)) != major:
        raise TeachingFormatError(
            f"version {version!r} is not supported: this modic reads versions {major}.x; a newer modic may",
            field="version",
        )
    return int(m.group(2)) <= minor
