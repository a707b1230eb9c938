"""Strict JSON reading and field-by-field validation for the teaching files.

The machinery is :mod:`modic._jsondoc`'s, shared with :mod:`modic.annotations`; here every
problem raises :class:`TeachingFormatError` naming the file and the JSON field
(``case.json: key['L4 inferior'].type: ...``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

from .. import _jsondoc
from ..errors import TeachingFormatError

__all__ = ["TeachingFormatError"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def at(prefix: str) -> AbstractContextManager[None]:
    """Prefix the field of errors raised inside with ``prefix``; raise them as TeachingFormatError."""
    return _jsondoc.at(prefix, error=TeachingFormatError)


def in_file(source: str) -> AbstractContextManager[None]:
    """Name ``source`` in errors raised inside that do not name a file yet; raise them as
    TeachingFormatError."""
    return _jsondoc.at("", source=source, error=TeachingFormatError)


def _teaching(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """``func`` of :mod:`modic._jsondoc`, raising TeachingFormatError."""

    @functools.wraps(func)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with in_file(""):
            return func(*args, **kwargs)

    return checked


as_object = _teaching(_jsondoc.as_object)
check_keys = _teaching(_jsondoc.check_keys)
check_version = _teaching(_jsondoc.check_version)
get_str = _teaching(_jsondoc.get_str)
read_json = _teaching(_jsondoc.read_json)


def get_timestamp(d: Mapping[str, Any], key: str) -> str:
    """``d[key]``, a string of the form of an ISO 8601 date and time with a time zone.

    Only the form is checked, not the calendar (``"2024-02-30T10:00:00Z"`` passes).
    """
    with in_file(""):
        return _jsondoc.check_timestamp(_jsondoc.get_str(d, key), key, calendar=False)


def dumps(doc: Mapping[str, Any]) -> str:
    """Pretty, stable JSON ending in a newline (:func:`modic._jsondoc.dumps`), with objects and
    arrays holding only numbers, strings, booleans and nulls on one line."""
    return _jsondoc.dumps(doc, flat_objects=True)
