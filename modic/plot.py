"""Figures of Modic results: one study's images, ratios and spine, and a cohort's tables.

Every function draws with matplotlib and returns the :class:`~matplotlib.figure.Figure`.
It draws into the ``ax`` (or ``fig``) it is given; without one it makes a new figure
through :mod:`matplotlib.pyplot`, imported only then (so that ``import modic.plot`` is
cheap and works on any backend). Save in PNG, SVG or PDF with :func:`save`, or with
``fig.savefig``.

Per study
---------
:func:`levels`
    The T1 / T2 / STIR at each abnormal disc level, ROIs outlined and filled by type and
    labelled with vertebra and endplate.
:func:`ratios`
    Each endplate's T1 ratio against its fluid-sensitive ratio (STIR, else T2), log axes,
    with its 95 % intervals, over the regions the classifier gives each type.
:func:`spine`
    A diagram of T12..S1, each endplate coloured by type, with the extent of a change and
    the levels that meet the basivertebral-nerve-ablation criterion when they are known.

Per cohort (a ``modic batch`` output folder, its ``results.csv``, a DataFrame of the
same columns, or :class:`~modic.results.ModicResults`)
--------------------------------------------------------------------------------------
:func:`prevalence`, :func:`ratio_distributions`, :func:`confidence`,
:func:`warnings_by_study`.

Colours are the annotator's (:mod:`modic.annotator.colors`: Okabe & Ito, colour-blind
safe; ``indeterminate`` is blue striped with white), and the type is always written too,
so colour is never the only cue. Levels are in anatomical order, head at the top.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import modic, modic.plot
>>> name = "siemens_15T_type1_type2"
>>> study = modic.load_study(modic.data.sample_study_path(name))
>>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
>>> results = modic.classify(study, rois)
>>> fig = modic.plot.levels(study, rois, results)      # the L4/L5 level, T1 / T2 / STIR
>>> [ax.get_title().split(" ")[0] for ax in fig.axes]
['L4/L5', 'L4/L5', 'L4/L5']
>>> fig = modic.plot.spine(results)
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import atomic_write_bytes
from .annotations import VERTEBRAE
from .annotator.colors import (
    INDETERMINATE_STRIPE,
    MODIC_COLORS,
    MODIC_NAMES,
    PENDING_COLOR,
    REFERENCE_COLOR,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from .annotations import ROI
    from .results import ModicResult, ModicResults
    from .study import LoadedStudy
    from .volume import Volume

__all__ = [
    "TYPE_ORDER",
    "LEVELS",
    "SPINE_VERTEBRAE",
    "FORMATS",
    "levels",
    "image_pane",
    "ratios",
    "spine",
    "prevalence",
    "ratio_distributions",
    "confidence",
    "warnings_by_study",
    "abnormal_levels",
    "results_path",
    "offscreen",
    "save",
    "figure_bytes",
]

#: Modic types in the order of every legend and stacked bar.
TYPE_ORDER: tuple[str, ...] = ("0", "1", "1/2", "2", "2/3", "3", "indeterminate")
#: Disc levels in anatomical order (head to foot), from :data:`modic.annotations.VERTEBRAE`.
ALL_LEVELS: tuple[str, ...] = tuple(f"{a}/{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:], strict=True))
#: The disc levels a lumbar study is read at, always shown in cohort figures.
LEVELS: tuple[str, ...] = ("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
#: The vertebrae of :func:`spine`, head to foot.
SPINE_VERTEBRAE: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: File formats of :func:`save`, by suffix.
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
#: Sequences in table order.
_SEQUENCES: tuple[str, ...] = ("T1", "T2", "STIR")
#: Identifier columns a batch run with --include-identifiers adds (kept, never drawn).
_IDENTIFIERS: tuple[str, ...] = ("study_folder", "study_instance_uid", "patient_id", "patient_name")
#: Fill opacity of an ROI over the image (the outline is opaque).
_FILL_ALPHA = 0.35
#: Image-pane background (the annotator's reading-room black).
_IMAGE_BG = "#000000"
#: Relative spread of the reference marrow assumed by the shaded regions of :func:`ratios`.
DECISION_REFERENCE_CV = 0.10


# ----------------------------------------------------------------------------------------
# rows: one endplate result, from a ModicResult, a table row or a results.jsonl dict
# ----------------------------------------------------------------------------------------
@dataclass
class _Row:
    study: str
    roi_id: str
    vertebra: str
    endplate: str
    level: str
    modic_type: str
    confidence: float | None
    sir: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    fat_ratio: dict[str, float] = field(default_factory=dict)
    extent: dict[str, Any] | None = None
    explanation: str = ""
    calls: dict[str, str] = field(default_factory=dict)
    series: dict[str, tuple[str, str, int | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def short(self) -> str:
        """``"L4 inf"``."""
        return f"{self.vertebra} {self.endplate[:3]}".strip()


def _num(value: Any) -> float | None:
    """A float from a table cell (``""``, None and NaN are missing)."""
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _int(value: Any) -> int | None:
    v = _num(value)
    return None if v is None else int(v)


def _text(value: Any) -> str:
    """Text from a table cell: None, NaN and ``"-"`` (how results files spell an empty text
    field, :data:`modic.columns.NO_TEXT`) are empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    return "" if text == "-" else text


def _type_text(value: Any) -> str:
    """A Modic type as :class:`~modic.criteria.ModicType` spells it (``"1"``, ``"1/2"``,
    ``"indeterminate"``), from ``"type 1"`` (results files since format 2), ``"1"`` or ``1``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _text(value)
    return text[5:] if text.startswith("type ") else text


def _series_text(value: Any) -> str:
    """A series key from ``"series 7"`` (results files since format 2) or ``"7"``."""
    text = _text(value)
    return text[7:] if text.startswith("series ") else text


def _extent_dict(extent: Any) -> dict[str, Any] | None:
    if extent is None:
        return None
    if isinstance(extent, Mapping):
        return dict(extent)
    names = ("height_fraction", "height_grade", "length_fraction", "length_grade", "body_source")
    return {n: getattr(extent, n, None) for n in names}


def _from_result(r: ModicResult) -> _Row:
    fat = r.contrast.fat_ratio if r.contrast is not None else {}
    return _Row(
        study=r.study_key,
        roi_id=r.roi_id,
        vertebra=r.label.vertebra,
        endplate=r.label.endplate.value if r.label.endplate else "",
        level=r.label.level or "",
        modic_type=r.modic_type.value,
        confidence=float(r.confidence),
        sir={role.value: (s.ratio, s.low, s.high) for role, s in r.ratios.items()},
        warnings=list(r.warnings),
        reason=r.reason,
        fat_ratio={role.value: float(v) for role, v in fat.items()},
        extent=_extent_dict(getattr(r, "extent", None)),
        explanation=r.explanation,
        calls={role.value: s.call.value for role, s in r.ratios.items()},
        series={
            role.value: (u.series_key, u.series_description, u.slice_index) for role, u in r.series.items()
        },
    )


def _from_dict(d: Mapping[str, Any]) -> _Row:
    """A :meth:`ModicResult.to_dict` (results.jsonl line)."""
    sir = {}
    for role, s in (d.get("ratios") or {}).items():
        low, high = s.get("ci95", (s["sir"], s["sir"]))
        sir[role] = (float(s["sir"]), float(low), float(high))
    contrast = d.get("contrast") or {}
    return _Row(
        study=_text(d.get("study")),
        roi_id=_text(d.get("roi_id")),
        vertebra=_text(d.get("vertebra")),
        endplate=_text(d.get("endplate")),
        level=_text(d.get("level")),
        modic_type=_type_text(d.get("modic_type")),
        confidence=_num(d.get("confidence")),
        sir=sir,
        warnings=[str(w) for w in d.get("warnings") or []],
        reason=_text(d.get("reason")),
        fat_ratio={k: float(v) for k, v in (contrast.get("fat_ratio") or {}).items()},
        extent=_extent_dict(d.get("extent")),
        explanation=_text(d.get("explanation")),
        calls={role: _text(s.get("call")) for role, s in (d.get("ratios") or {}).items()},
        series={
            role: (_series_text(u.get("series")), _text(u.get("description")), u.get("slice_index"))
            for role, u in (d.get("series") or {}).items()
        },
        extra={k: d[k] for k in _IDENTIFIERS if k in d},
    )


def _from_record(rec: Mapping[str, Any]) -> _Row:
    """A flat row of results.csv / :meth:`ModicResult.to_record` / a DataFrame."""
    sir = {}
    for role in _SEQUENCES:
        k = role.lower()
        v, lo, hi = (_num(rec.get(f"{k}_sir{s}")) for s in ("", "_low", "_high"))
        if v is not None:
            sir[role] = (v, v if lo is None else lo, v if hi is None else hi)
    fat = {r: v for r in ("T2", "STIR") if (v := _num(rec.get(f"{r.lower()}_fat_ratio"))) is not None}
    extent = None
    grade = _text(rec.get("extent_grade"))
    if grade:
        extent = {
            "height_grade": grade,
            "height_fraction": _num(rec.get("extent_height_fraction")),
            "length_grade": _text(rec.get("extent_length_grade")),
            "length_fraction": _num(rec.get("extent_length_fraction")),
        }
    warnings = _text(rec.get("warnings"))
    return _Row(
        study=_text(rec.get("study")),
        roi_id=_text(rec.get("roi_id")),
        vertebra=_text(rec.get("vertebra")),
        endplate=_text(rec.get("endplate")),
        level=_text(rec.get("level")),
        modic_type=_type_text(rec.get("modic_type")),
        confidence=_num(rec.get("confidence")),
        sir=sir,
        warnings=[w for w in warnings.split(" | ") if w],
        reason=_text(rec.get("reason")),
        fat_ratio=fat,
        extent=extent,
        explanation=_text(rec.get("explanation")),
        calls={r: c for r in _SEQUENCES if (c := _text(rec.get(f"{r.lower()}_call")))},
        series={
            r: (_series_text(rec.get(f"{r.lower()}_series")), "", _int(rec.get(f"{r.lower()}_slice")))
            for r in _SEQUENCES
            if _text(rec.get(f"{r.lower()}_series"))
        },
        extra={k: rec[k] for k in _IDENTIFIERS if k in rec},
    )


def _read_table(path: Path) -> list[_Row]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            return [_from_dict(json.loads(line)) for line in f if line.strip()]
    with path.open(encoding="utf-8", newline="") as f:
        return [_from_record(rec) for rec in csv.DictReader(f)]


def results_path(source: str | os.PathLike[str]) -> Path:
    """The results table of a ``modic batch`` output folder (``results.jsonl``, which has every
    detail, else ``results.csv``), or the file itself.

    Raises
    ------
    FileNotFoundError
        If the path does not exist or the folder holds neither table.
    """
    path = Path(source)
    if path.is_dir():
        for name in ("results.jsonl", "results.csv"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path}: no results.csv or results.jsonl in this folder; is it the output folder of "
            "'modic batch ROOT -o OUTDIR'?"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return path


def _typed_table(path: Path) -> Any:
    """``modic.read_results(path)`` (typed, levels head to foot) when it and pandas are
    installed, else None (the CSV / JSON lines are then read here)."""
    try:
        import pandas  # noqa: F401

        from .tables import read_results
    except ImportError:
        return None
    return read_results(path)


def _rows(source: Any) -> list[_Row]:
    """Endplate rows from any source the public functions take."""
    from .results import ModicResult, ModicResults

    if isinstance(source, (str, os.PathLike)):
        path = results_path(source)
        frame = _typed_table(Path(source))
        return _read_table(path) if frame is None else [_from_record(rec) for rec in frame.to_dict("records")]
    if isinstance(source, ModicResult):
        return [_from_result(source)]
    if isinstance(source, ModicResults):
        return [_from_result(r) for r in source]
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        return [_from_record(rec) for rec in source.to_dict("records")]
    rows = []
    for item in source:
        if isinstance(item, ModicResult):
            rows.append(_from_result(item))
        elif isinstance(item, _Row):
            rows.append(item)
        elif isinstance(item, Mapping):
            rows.append(_from_dict(item) if "ratios" in item else _from_record(item))
        else:
            raise TypeError(f"cannot plot a {type(item).__name__}: expected ModicResult or a table row")
    return rows


def abnormal_levels(results: Any) -> list[str]:
    """The disc levels with a Modic change or an indeterminate endplate, head to foot.

    Parameters
    ----------
    results : ModicResults, DataFrame, path or rows
        Any source :func:`spine` takes.
    """
    found = {r.level for r in _rows(results) if r.level and r.modic_type not in ("0", "")}
    return [lv for lv in ALL_LEVELS if lv in found]


# ----------------------------------------------------------------------------------------
# figure plumbing
# ----------------------------------------------------------------------------------------
_OFFSCREEN: list[bool] = []


@contextlib.contextmanager
def offscreen() -> Iterator[None]:
    """Inside, the functions of this module make plain :class:`~matplotlib.figure.Figure`
    objects that pyplot does not track (for reports and servers: nothing to close, no
    backend needed).

    Examples
    --------
    >>> with offscreen():
    ...     fig = confidence([])
    >>> type(fig).__name__
    'Figure'
    """
    _OFFSCREEN.append(True)
    try:
        yield
    finally:
        _OFFSCREEN.pop()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    if _OFFSCREEN:
        from matplotlib.figure import Figure

        return Figure(figsize=figsize, layout="constrained")
    import matplotlib.pyplot as plt  # lazily: only when the caller gave no figure

    return plt.figure(figsize=figsize, layout="constrained")


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(root=True) if _has_root() else ax.figure, ax  # type: ignore[return-value]
    fig = _new_figure(figsize)
    return fig, fig.add_subplot()


@functools.cache
def _has_root() -> bool:
    import inspect

    from matplotlib.artist import Artist

    return "root" in inspect.signature(Artist.get_figure).parameters


def _type_color(t: str) -> str:
    return MODIC_COLORS.get(t, PENDING_COLOR)


def _type_patch(t: str, *, alpha: float = 1.0) -> Any:
    """A legend handle for a type: filled swatch (striped for indeterminate)."""
    from matplotlib.patches import Patch

    if t == "indeterminate":
        return Patch(
            facecolor=MODIC_COLORS[t],
            edgecolor=INDETERMINATE_STRIPE,
            hatch="///",
            label=f"Modic {MODIC_NAMES[t]}",
            alpha=alpha,
        )
    return Patch(facecolor=_type_color(t), edgecolor="#333333", label=f"Modic {MODIC_NAMES[t]}", alpha=alpha)


def _present(types: Iterable[str]) -> list[str]:
    s = set(types)
    return [t for t in TYPE_ORDER if t in s]


def _log_ratio_axis(axis: Any, lo: float, hi: float) -> None:
    """Plain numbers at fixed ratios on a log axis, not 10^x."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10) if lo <= t <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_locator(NullLocator())


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: float = 150) -> Path:
    """Write a figure as PNG, SVG or PDF (from the suffix), atomically.

    The files carry no time stamp, so the same figure gives the same bytes.

    Parameters
    ----------
    fig : Figure
    path : path-like
        Ends in ``.png``, ``.svg`` or ``.pdf``.
    dpi : float
        Resolution of PNG files (and of images inside SVG / PDF).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For another suffix.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{path}: cannot save a figure as {path.suffix or 'no suffix'!r}; use .png, .svg or .pdf"
        )
    atomic_write_bytes(path, figure_bytes(fig, fmt, dpi=dpi))
    return path


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: float = 150) -> bytes:
    """A figure's file in memory (``"png"``, ``"svg"`` or ``"pdf"``), without time stamps."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None},
    }[fmt]
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, facecolor=fig.get_facecolor())
    return buf.getvalue()


# ----------------------------------------------------------------------------------------
# per study: the images at each abnormal level
# ----------------------------------------------------------------------------------------
def _roi_outline_on(roi: ROI, vol: Any) -> tuple[np.ndarray, float] | None:
    """The ROI's outline as ``(x, y)`` image coordinates of ``vol`` and its slice index, or
    None when it lies outside the volume."""
    from .annotations import rowcol_to_xy

    try:
        idx = vol.geometry.patient_to_index(roi.patient_outline())  # (n, 3) (slice, row, col)
    except Exception:  # noqa: BLE001 -- an ROI that cannot be placed is simply not drawn
        return None
    return rowcol_to_xy(idx[:, 1:]), float(idx[:, 0].mean())


def _draw_roi(
    ax: Axes,
    roi: ROI,
    xy: np.ndarray,
    modic_type: str | None,
    right_edge: float = math.inf,
    units_per_inch: float = 0.0,
) -> None:
    """One ROI: outline, fill by type, label right of it (left of it when that would run
    past ``right_edge``, the pane's right limit in image x)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon

    kind = roi.label.kind
    if kind == "reference":
        ax.add_patch(
            Polygon(
                xy,
                closed=True,
                facecolor="none",
                edgecolor=REFERENCE_COLOR,
                linestyle="--",
                linewidth=1.3,
                gid=f"modic-roi:{roi.id}",
            )
        )
        text, fg, bg = f"{roi.label.vertebra} ref", REFERENCE_COLOR, _IMAGE_BG
    elif kind == "endplate":
        t = modic_type
        color = _type_color(t) if t is not None else PENDING_COLOR
        face = "none" if t is None else color
        alpha = 1.0 if t is None else (_FILL_ALPHA / 3 if t == "0" else _FILL_ALPHA)
        ax.add_patch(
            Polygon(
                xy,
                closed=True,
                facecolor=face,
                alpha=alpha,
                edgecolor="none",
                linewidth=0,
                gid=f"modic-roi:{roi.id}",
            )
        )
        if t == "indeterminate":  # white stripes over the blue fill
            ax.add_patch(
                Polygon(
                    xy,
                    closed=True,
                    facecolor="none",
                    edgecolor=INDETERMINATE_STRIPE,
                    hatch="////",
                    linewidth=0,
                    alpha=0.6,
                    gid=f"modic-hatch:{roi.id}",
                )
            )
        closed = np.vstack([xy, xy[:1]])
        ax.add_line(
            Line2D(
                closed[:, 0],
                closed[:, 1],
                color=color,
                linewidth=1.6,
                linestyle="--" if t == "indeterminate" else (":" if t is None else "-"),
                gapcolor=INDETERMINATE_STRIPE if t == "indeterminate" else None,
            )
        )
        shown = "?" if t == "indeterminate" else ("no result" if t is None else t)
        side = roi.label.endplate.value[:3] if roi.label.endplate else ""
        text, fg, bg = f"{roi.label.vertebra} {side} · {shown}", color, _IMAGE_BG
        if t == "indeterminate":
            fg, bg = INDETERMINATE_STRIPE, color
    else:  # body outlines and fat regions: faint context only
        closed = np.vstack([xy, xy[:1]])
        ax.add_line(Line2D(closed[:, 0], closed[:, 1], color="#888888", linewidth=0.8, linestyle=":"))
        return
    # a label is about 0.6 em per character; a pane is about 2.9 in wide (figure of levels())
    width = 0.6 * len(text) * 7.5 / 72 * units_per_inch
    x0, x1 = float(xy[:, 0].min()), float(xy[:, 0].max())
    left = x1 + 1.5 + width > right_edge
    ax.text(
        x0 - 1.5 if left else x1 + 1.5,
        float(xy[:, 1].mean()),
        text,
        color=fg,
        fontsize=7.5,
        fontweight="bold",
        ha="right" if left else "left",
        va="center",
        clip_on=True,
        bbox={"facecolor": bg, "alpha": 0.75, "edgecolor": "none", "pad": 1.2},
    )


def image_pane(ax: Axes, vol: Volume, centre: ArrayLike, half_mm: float = 32.0) -> tuple[int, float, float]:
    """Show the slice of ``vol`` nearest a point, zoomed on it, in image coordinates.

    Parameters
    ----------
    ax : Axes
    vol : Volume
        Slices ordered along the normal, (slice, row, column); windowed at its 1st-99th
        percentiles, with the pixel aspect of its spacing.
    centre : (3,) array_like
        The point, LPS mm.
    half_mm : float
        Half the width and height shown, mm.

    Returns
    -------
    k : int
        0-based index of the slice shown.
    x, y : float
        The point in the slice's image coordinates (origin at the top-left corner of the
        top-left pixel, :mod:`modic.annotations`), the centre of the view.
    """
    from .annotations import rowcol_to_xy

    c = np.asarray(centre, dtype=float).reshape(1, 3)
    g = vol.geometry
    (k,), _ = g.nearest_slice(c)
    k = int(k)
    _, rows, cols = vol.array.shape
    lo, hi = vol.window(1, 99)
    ax.imshow(
        vol.array[k],
        cmap="gray",
        vmin=lo,
        vmax=hi,
        extent=(0, cols, rows, 0),
        aspect=g.pixel_spacing[0] / g.pixel_spacing[1],
        interpolation="nearest",
    )
    ((x, y),) = rowcol_to_xy(g.patient_to_index(c)[:, 1:])
    hx, hy = half_mm / g.pixel_spacing[1], half_mm / g.pixel_spacing[0]
    ax.set_xlim(x - hx, x + hx)
    ax.set_ylim(y + hy, y - hy)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#555555")
    return k, float(x), float(y)


def levels(
    study: LoadedStudy,
    annotations: Iterable[ROI],
    results: ModicResults | Iterable[ModicResult],
    levels: Sequence[str] | None = None,
    *,
    fig: Figure | None = None,
    half_mm: float = 32.0,
    show_legend: bool = True,
) -> Figure:
    """The T1 / T2 / STIR at each abnormal disc level, with the ROIs drawn by type.

    One row per level, one column per loaded sequence. Each pane shows the slice of that
    series nearest the level's endplate ROIs (found through patient coordinates, never by
    slice number), zoomed on them; every ROI on that slice is outlined and filled in its
    type's colour (reference marrow dashed reddish purple; indeterminate blue, striped
    white) and labelled ``"L4 inf · 1"``.

    Parameters
    ----------
    study : LoadedStudy
    annotations : Annotations or iterable of ROI
        The ROIs the results were measured in.
    results : ModicResults or iterable of ModicResult
        From :func:`modic.classify` on ``study`` and ``annotations``.
    levels : sequence of str, optional
        Disc levels to show (``"L4/L5"``); default: :func:`abnormal_levels`.
    fig : Figure, optional
        Drawn into (its existing axes are kept). Default: a new pyplot figure.
    half_mm : float
        Half the width and height of each pane, in mm.
    show_legend : bool

    Returns
    -------
    Figure
        Axes titled ``"L4/L5 · T1 · <series> · slice k/n"`` (1-based ``k``), row by row;
        each ROI drawn is a patch with ``gid`` ``"modic-roi:<roi id>"``.
    """
    rois = list(annotations)
    res = list(results)
    types = {r.roi_id: r.modic_type.value for r in res}
    chosen = list(levels) if levels is not None else abnormal_levels(res)
    vols = study.volumes
    n_rows, n_cols = max(len(chosen), 1), len(vols)
    if fig is None:
        fig = _new_figure((3.2 * n_cols, 3.1 * n_rows + (0.7 if show_legend else 0.2)))
    fig.set_facecolor(_IMAGE_BG)
    if not chosen:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            "No Modic change and no indeterminate endplate\nat any level of this study",
            color="white",
            ha="center",
            va="center",
            fontsize=12,
            transform=ax.transAxes,
        )
        return fig
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, level in enumerate(chosen):
        at_level = [r for r in rois if r.label.kind == "endplate" and r.label.level == level]
        if not at_level:
            raise ValueError(f"no endplate ROI at level {level!r} among the annotations")
        centre = np.vstack([r.patient_outline() for r in at_level]).mean(axis=0)  # LPS mm
        for j, (role, vol) in enumerate(vols.items()):
            ax = axes[i, j]
            k, x, _ = image_pane(ax, vol, centre, half_mm)
            n_slices = vol.array.shape[0]
            hx = half_mm / vol.geometry.pixel_spacing[1]
            for roi in rois:
                placed = _roi_outline_on(roi, vol)
                if placed is None or abs(placed[1] - k) > 0.5:
                    continue
                _draw_roi(
                    ax, roi, placed[0], types.get(roi.id), right_edge=x + hx, units_per_inch=2 * hx / 2.9
                )
            desc = vol.series.description or f"series {vol.series.key}"
            ax.set_title(
                f"{level} · {role.value} · {desc} · slice {k + 1}/{n_slices}", color="white", fontsize=8.5
            )
    if show_legend:
        from matplotlib.lines import Line2D

        shown = _present(types.get(r.id, "") for r in rois if r.label.kind == "endplate")
        handles = [_type_patch(t) for t in shown]
        handles.append(
            Line2D([], [], color=REFERENCE_COLOR, linestyle="--", linewidth=1.5, label="reference marrow")
        )
        leg = fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 4),
            frameon=False,
            labelcolor="white",
            fontsize=8.5,
        )
        leg.set_gid("modic-legend")
    return fig


# ----------------------------------------------------------------------------------------
# per study: the ratios over the decision regions
# ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _decision_map(
    fluid: str, fat: tuple[tuple[str, float], ...], lim: tuple[float, float, float, float], n: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Types the classifier gives a uniform region at each point of a (T1, fluid) log grid.

    The reference is 60 fixed quantiles of a log-normal of relative spread
    :data:`DECISION_REFERENCE_CV`; the region is 12 voxels of exactly the grid's ratios
    (a uniform region: the decision does not depend on their number).
    Returns the grid edges (fluid, T1) and the types row by row (T1 rows, fluid columns).
    """
    from .criteria import DEFAULT_PARAMETERS, SignalContext, decide_codes, evidence
    from .sequence import Role

    roles = {"T1": Role.T1, "T2": Role.T2, "STIR": Role.STIR}
    normal = statistics.NormalDist()
    z = np.array([normal.inv_cdf((i + 0.5) / 60) for i in range(60)])
    ref_values = np.exp(DECISION_REFERENCE_CV * z)
    ref = {Role.T1: ref_values, roles[fluid]: ref_values}
    context = SignalContext(fat_ratio={roles[k]: v for k, v in fat})
    x0, x1, y0, y1 = lim
    xe = np.geomspace(x0, x1, n + 1)
    ye = np.geomspace(y0, y1, n + 1)
    xc, yc = np.sqrt(xe[1:] * xe[:-1]), np.sqrt(ye[1:] * ye[:-1])
    ones = np.ones(12)
    frac, sig, rtype = [], [], []
    for t1 in yc:
        for fl in xc:
            f, s, r = evidence(
                {Role.T1: t1 * ones, roles[fluid]: fl * ones}, ref, DEFAULT_PARAMETERS, context
            )
            frac.append(f)
            sig.append(s)
            rtype.append(r)
    codes = decide_codes(np.array(frac), np.array(sig), np.array(rtype), DEFAULT_PARAMETERS)
    return xe, ye, [c.value for c in codes]


def _fluid_role(rows: Sequence[_Row]) -> str:
    return "STIR" if any("STIR" in r.sir for r in rows) else "T2"


def ratios(
    results: Any,
    *,
    ax: Axes | None = None,
    fluid: str | None = None,
    regions: bool = True,
    label_points: bool = True,
) -> Figure:
    """Each endplate's T1 ratio against its fluid ratio, with intervals, over the decision regions.

    Parameters
    ----------
    results : ModicResults, DataFrame, path or rows
        One study's results (or any rows: each endplate is one point).
    ax : Axes, optional
    fluid : {"STIR", "T2"}, optional
        The x axis; default STIR when any endplate has it, else T2.
    regions : bool
        Shade the type the classifier gives a *uniform* region at each point (voxel and
        region rules of :mod:`modic.criteria` with the default parameters, the study's own
        fat contrast when known (the first row's, for rows of several studies), and a reference spread of
        :data:`DECISION_REFERENCE_CV`). Real regions are not uniform: a point may lie in
        one region and carry another type (a mixed type, or a change in part of its voxels).
    label_points : bool
        Write ``"L4 inf"`` next to every changed or indeterminate endplate.

    Returns
    -------
    Figure
        x: ``"<fluid> signal ratio to reference marrow"``, y: ``"T1 signal ratio to
        reference marrow"``, both log. One error-bar container per endplate with both
        ratios.
    """
    rows = [r for r in _rows(results)]
    fl = fluid or _fluid_role(rows)
    if fl not in ("STIR", "T2"):
        raise ValueError(f"fluid must be 'STIR' or 'T2', got {fluid!r}")
    pts = [r for r in rows if "T1" in r.sir and fl in r.sir]
    fig, ax = _axes(ax, (6.0, 5.0))
    xs = [v for r in pts for v in r.sir[fl]] or [1.0]
    ys = [v for r in pts for v in r.sir["T1"]] or [1.0]
    x0, x1 = min(0.4, min(xs) / 1.2), max(2.5, max(xs) * 1.2)
    y0, y1 = min(0.4, min(ys) / 1.2), max(2.5, max(ys) * 1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if regions:
        fats = [r.fat_ratio for r in rows if r.fat_ratio]
        fat = fats[0] if fats else {}
        fat_key = tuple(sorted((k, round(v, 2)) for k, v in fat.items() if k in ("T1", fl)))
        lim = (round(x0, 3), round(x1, 3), round(y0, 3), round(y1, 3))
        xe, ye, codes = _decision_map(fl, fat_key, lim, 40)
        present = _present(codes)
        index = np.array([present.index(c) for c in codes]).reshape(len(ye) - 1, len(xe) - 1)
        from matplotlib.colors import ListedColormap

        cmap = ListedColormap([_type_color(t) for t in present])
        ax.pcolormesh(
            xe,
            ye,
            index,
            cmap=cmap,
            vmin=-0.5,
            vmax=len(present) - 0.5,
            alpha=0.22,
            shading="flat",
            rasterized=True,
            zorder=0,
            linewidth=0,
        )
        for t in present:  # the region's name where it is widest
            mask = index == present.index(t)
            if mask.sum() < 12:
                continue
            rr, cc = np.nonzero(mask)
            r_mid, c_mid = int(np.median(rr)), int(np.median(cc))
            if not mask[r_mid, c_mid]:
                r_mid, c_mid = rr[len(rr) // 2], cc[len(cc) // 2]
            ax.text(
                math.sqrt(xe[c_mid] * xe[c_mid + 1]),
                math.sqrt(ye[r_mid] * ye[r_mid + 1]),
                "indeterminate" if t == "indeterminate" else f"type {t}",
                ha="center",
                va="center",
                fontsize=9,
                color="#444444",
                alpha=0.8,
                zorder=1,
                style="italic",
            )
    ax.axhline(1, color="#777777", lw=0.8, zorder=1)
    ax.axvline(1, color="#777777", lw=0.8, zorder=1)
    for r in pts:
        (x, xl, xh), (y, yl, yh) = r.sir[fl], r.sir["T1"]
        t = r.modic_type
        ax.errorbar(
            [x],
            [y],
            xerr=[[x - xl], [xh - x]],
            yerr=[[y - yl], [yh - y]],
            fmt="o",
            color="#222222",
            ecolor="#222222",
            elinewidth=0.9,
            capsize=2,
            markerfacecolor=_type_color(t),
            markeredgecolor="#222222",
            markersize=6 if t == "0" else 9,
            zorder=3 if t != "0" else 2,
        )
        if label_points and t not in ("0", ""):
            ax.annotate(
                r.short if len({p.study for p in pts}) <= 1 else f"{r.study} {r.short}",
                (x, y),
                xytext=(6, 5),
                textcoords="offset points",
                fontsize=8,
                zorder=4,
            )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    _log_ratio_axis(ax.xaxis, x0, x1)
    _log_ratio_axis(ax.yaxis, y0, y1)
    name = "STIR (or fat-suppressed T2)" if fl == "STIR" else "T2"
    ax.set_xlabel(f"{name} signal ratio to reference marrow")
    ax.set_ylabel("T1 signal ratio to reference marrow")
    ax.set_title(
        f"Signal ratios of {len(pts)} endplate{'s' if len(pts) != 1 else ''} (bars: 95 % interval)",
        fontsize=10,
    )
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor=_type_color(t),
            markeredgecolor="#222222",
            markersize=8,
            color="#222222",
            label=f"Modic {MODIC_NAMES[t]}",
        )
        for t in _present(r.modic_type for r in pts)
    ]
    if handles:
        leg = ax.legend(
            handles=handles,
            loc="lower right",
            fontsize=8,
            framealpha=0.9,
            title="shaded: type of a uniform region" if regions else None,
            title_fontsize=7.5,
        )
        leg.set_gid("modic-legend")
    return fig


# ----------------------------------------------------------------------------------------
# per study: the spine diagram
# ----------------------------------------------------------------------------------------
_BODY_H = 0.72  # vertebral body height in diagram units (one vertebra + disc = 1)
_BAND_H = 0.11  # endplate band height when the extent is not known


def _candidacy_of(results: Any, rows: Sequence[_Row]) -> Any:
    """The study's :class:`~modic.candidacy.Candidacy`: from ``ModicResults.candidacy``, else
    judged by :func:`modic.candidacy.candidacy` on the rows (a table of one study)."""
    from types import SimpleNamespace

    from .annotations import RoiLabel
    from .candidacy import candidacy
    from .criteria import ModicType

    direct = getattr(results, "candidacy", None)
    if direct is not None and not callable(direct):
        return direct
    if len({r.study for r in rows}) > 1:
        raise ValueError("the spine diagram is of one study; the rows hold several (select one study's rows)")
    items = []
    for r in rows:
        if not (r.vertebra and r.endplate and r.modic_type):
            continue
        label = RoiLabel.for_endplate(r.vertebra, r.endplate)
        items.append(SimpleNamespace(label=label, modic_type=ModicType(r.modic_type), study_key=r.study))
    return candidacy(items)  # type: ignore[arg-type]


def _candidacy_marks(cand: Any) -> tuple[set[str], set[str], str]:
    """Endplates (``"L4 inferior"``) and vertebrae meeting the criterion, and its source."""
    if cand is None:
        return set(), set(), ""
    endplates = {f.split(":")[0] for lv in cand.levels for f in cand.findings.get(lv, [])}
    return endplates, set(cand.vertebrae), cand.source


def spine(
    results: Any,
    *,
    ax: Axes | None = None,
    show_extent: bool = True,
    show_candidacy: bool = True,
    title: str | None = None,
) -> Figure:
    """A diagram of T12..S1 with each endplate coloured by its Modic type.

    Vertebral bodies are drawn head (top) to foot; each read endplate is a band at the top
    (superior) or bottom (inferior) of its body in its type's colour, with the type
    written beside it. Endplates not read are left white with a dotted edge. When the
    results carry the extent of a change (``ModicResult.extent``: Udby height grade
    A/B/C, share of the endplate length), the band reaches that share of the body height
    and the grade is written. When they carry the basivertebral-nerve-ablation criterion
    (``ModicResults.candidacy``), the vertebrae it names are outlined and marked: research
    information with its source, not advice.

    Parameters
    ----------
    results : ModicResults, DataFrame, path or rows
        One study's results.
    ax : Axes, optional
    show_extent, show_candidacy : bool
    title : str, optional

    Returns
    -------
    Figure
        y tick labels are the vertebrae head to foot; each endplate band is a patch with
        ``gid`` ``"modic-endplate:<vertebra> <endplate>"``.
    """
    from matplotlib.patches import FancyBboxPatch, Rectangle

    rows = _rows(results)
    by_endplate: dict[tuple[str, str], _Row] = {}
    for row in rows:
        by_endplate.setdefault((row.vertebra, row.endplate), row)
    verts = list(SPINE_VERTEBRAE)
    if any(v == "T11" for v, _ in by_endplate) or ("T12", "superior") in by_endplate:
        verts.insert(0, "T11")
    fig, ax = _axes(ax, (4.0, 7.0))
    cand = _candidacy_of(results, rows) if show_candidacy else None
    cand_endplates, cand_verts, cand_source = _candidacy_marks(cand)
    width = 1.0
    for i, v in enumerate(verts):
        top = i + (1 - _BODY_H) / 2
        marked = v in cand_verts
        ax.add_patch(
            FancyBboxPatch(
                (0, top),
                width,
                _BODY_H,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor="#F4F4F4",
                edgecolor="#000000" if marked else "#888888",
                linewidth=2.4 if marked else 1.0,
                zorder=1,
            )
        )
        for endplate in ("superior", "inferior"):
            if v == "S1" and endplate == "inferior":
                continue
            r: _Row | None = by_endplate.get((v, endplate))
            ext = r.extent if (r is not None and show_extent) else None
            frac = _num(ext.get("height_fraction")) if ext else None
            h = _BAND_H if frac is None else max(_BAND_H, min(1.0, frac) * _BODY_H)
            y = top if endplate == "superior" else top + _BODY_H - h
            t = r.modic_type if r is not None else None
            face = "#FFFFFF" if t is None else _type_color(t)
            ax.add_patch(
                Rectangle(
                    (0, y),
                    width,
                    h,
                    facecolor=face,
                    edgecolor="#333333" if t else "#999999",
                    linestyle="-" if t else ":",
                    linewidth=0.8,
                    zorder=2,
                    gid=f"modic-endplate:{v} {endplate}",
                    hatch="///" if t == "indeterminate" else None,
                )
            )
            if t is None:
                continue
            words = "?" if t == "indeterminate" else t
            if ext and ext.get("height_grade"):
                words += f" · {ext['height_grade']}"
                if ext.get("length_grade"):
                    words += f", {ext['length_grade']}"
            mark = f"{v} {endplate}" in cand_endplates
            ax.text(
                width + 0.08,
                y + h / 2,
                ("◆ " if mark else "") + words,
                va="center",
                ha="left",
                fontsize=8.5,
                fontweight="bold" if t != "0" else "normal",
                color="#000000" if t != "0" else "#666666",
            )
    ax.set_xlim(-0.15, 2.3)
    ax.set_ylim(len(verts), 0)
    ax.set_yticks([i + 0.5 for i in range(len(verts))], verts)
    ax.set_xticks([])
    ax.set_aspect("auto")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "Modic type of each endplate", fontsize=10)
    handles = [_type_patch(t) for t in _present(r.modic_type for r in rows)]
    from matplotlib.patches import Patch

    handles.append(Patch(facecolor="#FFFFFF", edgecolor="#999999", linestyle=":", label="not read"))
    if cand_verts and show_candidacy:
        handles.append(
            Patch(
                facecolor="#F4F4F4",
                edgecolor="#000000",
                linewidth=2.4,
                label=(
                    "bold: vertebrae of levels meeting the imaging\ncriterion of FDA K153272 / K190504 (◆)\n"
                    "(research information, not advice)"
                ),
            )
        )
    leg = ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.02), ncols=1, fontsize=7.5, frameon=False
    )
    leg.set_gid("modic-legend")
    return fig


# ----------------------------------------------------------------------------------------
# per cohort
# ----------------------------------------------------------------------------------------
def _cohort_levels(rows: Sequence[_Row]) -> list[str]:
    found = {r.level for r in rows if r.level}
    return [lv for lv in ALL_LEVELS if lv in LEVELS or lv in found]


def prevalence(source: Any, *, ax: Axes | None = None, share: bool = True) -> Figure:
    """The Modic types found at each disc level, head at the top.

    Parameters
    ----------
    source : path, DataFrame, ModicResults or rows
        A ``modic batch`` output folder (or its results.csv / results.jsonl), a DataFrame
        of the same columns (e.g. ``modic.read_results``), or results.
    ax : Axes, optional
    share : bool
        Bars as the share of the level's endplates (%); False: counts.

    Returns
    -------
    Figure
        Horizontal stacked bars, one per level (y tick labels in anatomical order, head at
        the top), one bar container per type in :data:`TYPE_ORDER` present.
    """
    rows = _rows(source)
    lv = _cohort_levels(rows)
    counts = {level: Counter(r.modic_type for r in rows if r.level == level) for level in lv}
    present = _present(r.modic_type for r in rows)
    fig, ax = _axes(ax, (7.5, 0.45 * len(lv) + 1.8))
    left = np.zeros(len(lv))
    totals = np.array([sum(counts[level].values()) for level in lv], dtype=float)
    for t in present:
        n = np.array([counts[level][t] for level in lv], dtype=float)
        w = np.divide(100 * n, totals, out=np.zeros_like(n), where=totals > 0) if share else n
        bars = ax.barh(
            lv,
            w,
            left=left,
            color=_type_color(t),
            edgecolor="#222222",
            linewidth=0.5,
            label=f"Modic {MODIC_NAMES[t]}",
            hatch="///" if t == "indeterminate" else None,
        )
        for bar in bars:
            bar.set_gid(f"modic-type:{t}")
        left += w
    for i, n in enumerate(totals):
        ax.text(left[i] + (1 if share else 0.2), i, f"n={int(n)}", va="center", fontsize=8, color="#444444")
    ax.set_yticks(range(len(lv)), lv)
    ax.invert_yaxis()  # head at the top, as on a sagittal image
    ax.set_xlabel("share of the level's endplates (%)" if share else "endplates")
    ax.set_ylabel("disc level")
    if share:
        ax.set_xlim(0, 112)
    n_studies = len({r.study for r in rows})
    ax.set_title(
        f"Modic type by level ({n_studies} stud{'ies' if n_studies != 1 else 'y'}, {len(rows)} endplates)",
        fontsize=10,
    )
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    leg.set_gid("modic-legend")
    return fig


def ratio_distributions(source: Any, *, fig: Figure | None = None) -> Figure:
    """The signal ratios of each Modic type, on T1, T2 and STIR (one panel each, log scale).

    Parameters
    ----------
    source : path, DataFrame, ModicResults or rows
    fig : Figure, optional

    Returns
    -------
    Figure
        One axes per sequence present (titled ``"T1"``, ``"T2"``, ``"STIR"``), x tick
        labels the types present in :data:`TYPE_ORDER`; every endplate a point, each type a
        box of its quartiles.
    """
    rows = _rows(source)
    seqs = [s for s in _SEQUENCES if any(s in r.sir for r in rows)]
    present = _present(r.modic_type for r in rows)
    if fig is None:
        fig = _new_figure((3.4 * max(len(seqs), 1) + 0.6, 4.2))
    axes = fig.subplots(1, max(len(seqs), 1), squeeze=False, sharey=True)[0]
    rng = np.random.default_rng(0)  # jitter only: the same figure every time
    allv = [r.sir[s][0] for r in rows for s in seqs if s in r.sir] or [1.0]
    lo, hi = min(0.3, min(allv) / 1.2), max(3.0, max(allv) * 1.2)
    for ax, s in zip(axes, seqs, strict=False):
        data = [[r.sir[s][0] for r in rows if r.modic_type == t and s in r.sir] for t in present]
        pos = [i for i, d in enumerate(data) if d]
        if pos:
            box = ax.boxplot(
                [data[i] for i in pos],
                positions=pos,
                widths=0.55,
                showfliers=False,
                patch_artist=True,
                medianprops={"color": "#000000"},
            )
            for patch, i in zip(box["boxes"], pos, strict=True):
                patch.set_facecolor(_type_color(present[i]))
                patch.set_alpha(0.45)
        for i, d in enumerate(data):
            if d:
                ax.scatter(
                    i + rng.uniform(-0.18, 0.18, len(d)),
                    d,
                    s=14,
                    color=_type_color(present[i]),
                    edgecolor="#222222",
                    linewidth=0.5,
                    zorder=3,
                )
        ax.axhline(1, color="#777777", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        _log_ratio_axis(ax.yaxis, lo, hi)
        ax.set_xticks(range(len(present)), ["?" if t == "indeterminate" else t for t in present])
        ax.set_xlim(-0.6, len(present) - 0.4)
        ax.set_title(s, fontsize=10)
        ax.set_xlabel("Modic type")
    axes[0].set_ylabel("signal ratio to reference marrow")
    fig.suptitle(f"Signal ratios by Modic type ({len(rows)} endplates)", fontsize=10)
    return fig


def confidence(source: Any, *, ax: Axes | None = None) -> Figure:
    """How confident the classifier was, per type: a stacked histogram of the confidence.

    Returns
    -------
    Figure
        x label ``"confidence ..."``, one bar container per type present.
    """
    rows = [r for r in _rows(source) if r.confidence is not None]
    present = _present(r.modic_type for r in rows)
    fig, ax = _axes(ax, (7.0, 3.6))
    # from 0.5 (or the lowest confidence) to 1, in steps of 0.025
    lowest = min((float(r.confidence) for r in rows if r.confidence is not None), default=0.5)
    start = min(0.5, math.floor(lowest * 20) / 20)
    bins = np.linspace(start, 1.0, int(round((1.0 - start) / 0.025)) + 1)
    if present:
        ax.hist(
            [[float(r.confidence or 0.0) for r in rows if r.modic_type == t] for t in present],
            bins=list(bins),
            stacked=True,
            color=[_type_color(t) for t in present],
            edgecolor="#222222",
            linewidth=0.5,
            label=[f"Modic {MODIC_NAMES[t]}" for t in present],
        )
        leg = ax.legend(fontsize=8, loc="upper left")
        leg.set_gid("modic-legend")
    low = sum(1 for r in rows if r.confidence is not None and r.confidence < 0.9)
    ax.set_xlim(start, 1)
    ax.set_xlabel("confidence (calibrated probability that the type is right)")
    ax.set_ylabel("endplates")
    ax.set_title(f"Confidence of {len(rows)} types ({low} below 0.9: look again)", fontsize=10)
    return fig


def warnings_by_study(source: Any, *, ax: Axes | None = None, errors: Any = None) -> Figure:
    """The studies with warnings: per study, its endplates with a warning and the
    indeterminate ones.

    Parameters
    ----------
    source : path, DataFrame, ModicResults or rows
    ax : Axes, optional
    errors : path or iterable of dict, optional
        ``errors.csv`` of the batch (or its rows): studies or ROIs that failed are added
        as a third bar. Default: the ``errors.csv`` beside a results folder given as
        ``source``.

    Returns
    -------
    Figure
        Horizontal bars, one y tick per study with something to look at.
    """
    rows = _rows(source)
    failed: Counter[str] = Counter()
    if errors is None and isinstance(source, (str, os.PathLike)):
        folder = Path(source) if Path(source).is_dir() else Path(source).parent
        errors = folder / "errors.csv" if (folder / "errors.csv").is_file() else None
    if isinstance(errors, (str, os.PathLike)):
        with Path(errors).open(encoding="utf-8", newline="") as f:
            errors = list(csv.DictReader(f))
    for e in errors or ():
        failed[_text(e.get("study"))] += 1
    warned = Counter(r.study for r in rows if r.warnings)
    indet = Counter(r.study for r in rows if r.modic_type == "indeterminate")
    studies = sorted(set(warned) | set(indet) | set(failed))
    fig, ax = _axes(ax, (7.0, 0.42 * max(len(studies), 1) + 1.6))
    if not studies:
        ax.text(
            0.5,
            0.5,
            f"No warnings, indeterminate endplates or errors in {len({r.study for r in rows})} studies",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("Studies with warnings", fontsize=10)
        return fig
    y = np.arange(len(studies))
    h = 0.27
    ax.barh(
        y - h,
        [warned[s] for s in studies],
        height=h,
        color="#E69F00",
        edgecolor="#222222",
        linewidth=0.5,
        label="endplates with a warning",
    )
    ax.barh(
        y,
        [indet[s] for s in studies],
        height=h,
        color=MODIC_COLORS["indeterminate"],
        hatch="///",
        edgecolor=INDETERMINATE_STRIPE,
        linewidth=0.5,
        label="indeterminate endplates",
    )
    ax.barh(
        y + h,
        [failed[s] for s in studies],
        height=h,
        color="#444444",
        edgecolor="#222222",
        linewidth=0.5,
        label="errors (study or ROI not measured)",
    )
    ax.set_yticks(y, studies, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("count")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(
        f"Studies with warnings ({len(studies)} of {len({r.study for r in rows} | set(failed))})", fontsize=10
    )
    leg = ax.legend(fontsize=8, loc="lower right")
    leg.set_gid("modic-legend")
    return fig
