"""Numbers and validation helpers shared by the annotation modules (private)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._jsondoc import (
    as_object,
    at,
    json_type,
)
from ..errors import AnnotationFormatError

logger = logging.getLogger(__name__)

#: Shape coordinates (pixels) are kept to this many decimals.
PIXEL_DECIMALS = 3
#: ``outline_lps`` (mm) is written with this many decimals.
MM_DECIMALS = 4
#: Points of an ellipse outline unless told otherwise.
DEFAULT_OUTLINE_POINTS = 64

# Limits on what an annotation document may hold, so that a hostile or broken file costs
# seconds and megabytes, not hours and gigabytes. A study's document holds tens of ROIs of
# tens of points on images of at most 1024 x 1024 pixels; the limits are far above that.
#: Largest magnitude of any number in a document (pixels or mm): far beyond any image or
#: scanner, small enough that geometry on it cannot overflow.
MAX_MAGNITUDE = 1.0e9
#: Most ROIs in one document.
MAX_ROIS = 2000
#: Most points of one polygon (and of a stored ``outline_lps``).
MAX_SHAPE_POINTS = 20000
#: Largest rows or columns of the image an ROI was drawn on (DICOM allows 65535).
MAX_IMAGE_SIDE = 16384
#: Largest rows x columns of that image (4096 x 4096): a mask of it is 16 MiB.
MAX_IMAGE_PIXELS = 4096 * 4096


def _last_axis(values: ArrayLike, n: int, name: str) -> NDArray[np.float64]:
    a = np.asarray(values, dtype=float)
    if a.ndim == 0 or a.shape[-1] != n:
        raise ValueError(f"{name} must have {n} values along its last axis, got shape {a.shape}")
    return a


def _round(value: float, decimals: int) -> float:
    return round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def _check_type(d: Mapping[str, Any], expected: str) -> None:
    if d["type"] != expected:
        raise AnnotationFormatError(f"expected {expected!r}, got {d['type']!r}", field="type")


def _get_object(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return as_object(d[key], key)


def _get_int(d: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = d[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's "integer" accepts 2.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationFormatError(f"expected an integer, got {json_type(value)}", field=key)
    return _as_int(value, key, minimum=minimum)


def _get_number(d: Mapping[str, Any], key: str) -> float:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationFormatError(f"expected a number, got {json_type(value)}", field=key)
    return _as_float(value, key)


def _get_numbers(d: Mapping[str, Any], key: str, n: int) -> tuple[float, ...]:
    value = d[key]
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} values" if isinstance(value, list) else json_type(value)
        raise AnnotationFormatError(f"expected an array of {n} numbers, got {got}", field=key)
    with at(key):
        return tuple(_get_number({f"[{i}]": v}, f"[{i}]") for i, v in enumerate(value))


def _get_points(d: Mapping[str, Any], key: str, dim: int) -> list[tuple[float, ...]]:
    value = d[key]
    if not isinstance(value, list):
        raise AnnotationFormatError(f"expected an array of points, got {json_type(value)}", field=key)
    _check_point_count(len(value), key)
    with at(key):
        return [_get_numbers({f"[{i}]": p}, f"[{i}]", dim) for i, p in enumerate(value)]


def _as_int(value: object, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AnnotationFormatError(f"must be an integer, got {value!r}", field=name)
    v = int(value)
    if minimum is not None and v < minimum:
        raise AnnotationFormatError(f"must be >= {minimum}, got {v}", field=name)
    return v


def _as_float(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AnnotationFormatError(f"must be a number, got {value!r}", field=name)
    try:
        v = float(value)
    except OverflowError:
        raise AnnotationFormatError("must be a finite number, got a too large integer", field=name) from None
    if not math.isfinite(v):
        raise AnnotationFormatError(f"must be a finite number, got {v}", field=name)
    if abs(v) > MAX_MAGNITUDE:
        raise AnnotationFormatError(f"must be within +-{MAX_MAGNITUDE:g}, got {v:g}", field=name)
    return v


def _as_floats(values: object, name: str, n: int) -> tuple[float, ...]:
    try:
        seq = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise AnnotationFormatError(f"must be {n} numbers, got {values!r}", field=name) from None
    if len(seq) != n:
        raise AnnotationFormatError(f"must be {n} numbers, got {len(seq)}", field=name)
    with at(name):
        return tuple(_as_float(v, f"[{i}]") for i, v in enumerate(seq))


def _check_point_count(n: int, name: str) -> None:
    if n > MAX_SHAPE_POINTS:
        raise AnnotationFormatError(
            f"{n} points, more than the {MAX_SHAPE_POINTS} a shape may have (simplify the outline)",
            field=name,
        )


def _as_point_array(points: object, name: str, dim: int) -> NDArray[np.float64]:
    try:
        a = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise AnnotationFormatError(f"must be an (N, {dim}) array of numbers", field=name) from None
    if a.ndim != 2 or a.shape[1] != dim:
        raise AnnotationFormatError(
            f"must be an (N, {dim}) array of numbers, got shape {a.shape}", field=name
        )
    if not np.all(np.isfinite(a)):
        raise AnnotationFormatError("must hold finite numbers only", field=name)
    if a.size and float(np.abs(a).max()) > MAX_MAGNITUDE:
        raise AnnotationFormatError(f"must hold numbers within +-{MAX_MAGNITUDE:g}", field=name)
    return a
