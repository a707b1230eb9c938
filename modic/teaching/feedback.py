"""The feedback figure: the trainee's ROIs against the revealed key, on every sequence.

One row per graded disc level (the levels with a change in the key, a mistake, or a
trainee ROI that misses the key's), one column per sequence the case has (T1, T2, STIR,
side by side: the point is often "the STIR confirms"), and, when a level holds a mixed
change, a last column with the classifier's **voxel-type map** inside the key's ROI (each
pixel coloured by the type :mod:`modic.criteria` gave that voxel; the parts of a mixed
change side by side). On every pane the key's ROIs are dash-dotted in their Modic type's
colour (as the key is overlaid on the annotator) and the trainee's are solid, coloured by
credit (green correct, orange partial credit, red none); reference marrow is dashed. Each
row's heading says, per endplate, the answer, the key, the credit, the Dice and, below a
match, why the shapes disagree.

The panes follow :func:`modic.plot.levels` (the report's figure): the slice of each series
nearest the level's ROIs, found through patient coordinates, the same zoom in mm on every
sequence, and its colours (``modic.plot.MODIC_COLORS``).

Built on :class:`matplotlib.figure.Figure` without pyplot, so it works on any backend
(Agg included) and in notebooks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..annotations import ROI
from ..criteria import ModicType
from ..errors import MeasurementError
from .grading import DICE_MATCH, EndplateGrade, Grade
from .sheet import TYPE_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from ..study import LoadedStudy
    from ..volume import Volume

__all__ = ["feedback_figure", "feedback_size", "voxel_type_map", "CREDIT_COLOURS", "VOXEL_COLOURS"]

logger = logging.getLogger(__name__)

#: Colours of the trainee's ROIs by credit.
CREDIT_COLOURS = {"correct": "#3CB44B", "partial": "#FF9F1A", "wrong": "#FF3B3B", "unanswered": "#9E9E9E"}
#: Colours of the voxel-type map: the voxel types of :mod:`modic.criteria` (0 normal, 1-3
#: Modic, 4 untyped: abnormal but fitting no Modic pattern) and 5, left out of the
#: classification (partial volume of the cortical endplate or disc, a focal lesion).
VOXEL_COLOURS = {
    0: "#BBBBBB",
    1: TYPE_COLOURS[ModicType.TYPE1],
    2: TYPE_COLOURS[ModicType.TYPE2],
    3: TYPE_COLOURS[ModicType.TYPE3],
    4: "#FFFFFF",
    5: "#000000",
}
VOXEL_NAMES = {0: "normal", 1: "type 1", 2: "type 2", 3: "type 3", 4: "untyped", 5: "left out"}
_MIXED = (ModicType.MIXED_1_2, ModicType.MIXED_2_3)
_SHORT = {"superior": "sup", "inferior": "inf"}
_HALF_MM = 24.0  # half the width and height of each pane, mm
_BG = "#000000"


def _short(row: EndplateGrade) -> str:
    ep = row.label.endplate.value if row.label.endplate else ""
    return f"{row.label.vertebra} {_SHORT.get(ep, ep)}"


def _credit_colour(row: EndplateGrade) -> str:
    if row.answer_type is None:
        return CREDIT_COLOURS["unanswered"]
    if row.credit >= 1.0:
        return CREDIT_COLOURS["correct"]
    return CREDIT_COLOURS["partial"] if row.credit > 0 else CREDIT_COLOURS["wrong"]


def _graded_levels(grade: Grade, key_rois: dict[str, ROI], trainee_rois: dict[str, ROI]) -> list[str]:
    """Disc levels worth showing, head to foot: a change in the key, a mistake, or a trainee
    ROI that does not match the key's; else every level with a trainee ROI."""
    keep: list[str] = []
    drawn: list[str] = []
    for row in grade.rows:
        level = row.label.level
        if level is None:
            continue
        has_roi = row.key_roi_id in key_rois or row.trainee_roi_id in trainee_rois
        if not has_roi:
            continue
        if row.trainee_roi_id in trainee_rois and level not in drawn:
            drawn.append(level)
        mistake = row.answer_type is not None and row.credit < 1.0
        poor = row.dice is not None and row.dice < DICE_MATCH
        if (row.key_type is not ModicType.NONE or mistake or poor) and level not in keep:
            keep.append(level)
    return keep or drawn


def _mixed_at(rows: Sequence[EndplateGrade]) -> list[EndplateGrade]:
    """Rows whose key, answer or classifier (in the key's ROI) is a mixed type, with a key ROI."""
    return [
        r
        for r in rows
        if r.key_roi_id
        and (
            r.key_type in _MIXED
            or r.answer_type in _MIXED
            or (r.key_result is not None and r.key_result.modic_type in _MIXED)
        )
    ]


def voxel_type_map(
    study: LoadedStudy, roi: ROI, references: Sequence[ROI]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int8]]:
    """The classifier's type of each voxel of an endplate ROI, on the ROI's own image.

    The voxels are typed by the classifier's own voxel rule (:mod:`modic.criteria`, as
    :func:`modic.extent` uses it) against the reference :func:`modic.reading.classify_roi`
    would choose, with the study's contrast and the coil-gradient correction; the voxels
    the classifier leaves out (partial volume of the cortical endplate or the disc, a
    T1-bright focus) are code 5.

    Returns
    -------
    rows, cols : (n,) int ndarray
        Pixel indices (row, col) of the ROI's voxels on ``roi.image``.
    codes : (n,) int8 ndarray
        0 normal, 1-3 Modic type, 4 untyped, 5 left out (:data:`VOXEL_NAMES`).

    Raises
    ------
    MeasurementError
        If the ROI or its reference cannot be measured.
    """
    from ..criteria import voxel_type_map
    from ..reading import prepare_region

    prep = prepare_region(study, roi, list(references))
    images = {role: s.values[None, :] for role, s in prep.region.items()}
    types, _ = voxel_type_map(images, prep.reference_values, prep.context)
    codes = np.asarray(types[0], dtype=np.int8).copy()
    codes[~prep.keep] = 5
    rr, cc = np.nonzero(roi.pixel_mask())  # the order roi_points samples them in
    return rr, cc, codes


def feedback_size(grade: Grade, study: LoadedStudy | None = None) -> tuple[float, float]:
    """The feedback figure's size in inches: about 3 in per pane."""
    study = study or grade.study
    n_seq = len(study.volumes) if study is not None else 3
    key_rois = {r.id: r for r in grade.case.rois}
    trainee_rois = {r.id: r for r in grade.answer.annotations}
    levels = _graded_levels(grade, key_rois, trainee_rois)
    mixed = bool(_mixed_at(grade.rows))
    cols = n_seq + (1 if mixed else 0)
    return 2.9 * cols + 0.4, 3.35 * max(1, len(levels)) + 0.9


def _pane(ax: Axes, vol: Volume, centre: NDArray[np.float64]) -> tuple[int, float, float]:
    """Show the slice of ``vol`` nearest ``centre`` (LPS mm), zoomed on it; ``(k, x, y)``."""
    from ..plot import image_pane

    return image_pane(ax, vol, centre, _HALF_MM)


def _outline(ax: Axes, roi: ROI, vol: Volume, k: int, colour: str, linestyle: Any, width: float) -> Any:
    """Draw ``roi`` on slice ``k`` of ``vol`` (image x, y); its ``(N, 2)`` outline, or None
    when it lies on another slice."""
    from ..plot import _roi_outline_on

    placed = _roi_outline_on(roi, vol)
    if placed is None or abs(placed[1] - k) > 0.5:
        return None
    xy = placed[0]
    closed = np.vstack([xy, xy[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color=colour, linestyle=linestyle, linewidth=width)
    return xy


def _tag(ax: Axes, xy: NDArray[np.float64], text: str, colour: str, *, above: bool) -> None:
    """Label an outline, centred on it, just above (the trainee's) or below it (the key's):
    beside it a label would run out of a pane zoomed on the ROIs."""
    ax.text(
        float(xy[:, 0].mean()),
        float(xy[:, 1].min()) - 1.0 if above else float(xy[:, 1].max()) + 1.0,
        text,
        color=colour,
        fontsize=7.5,
        fontweight="bold",
        ha="center",
        va="bottom" if above else "top",
        clip_on=True,
        bbox={"facecolor": _BG, "alpha": 0.7, "edgecolor": "none", "pad": 1.0},
    )


def _row_heading(rows: Sequence[EndplateGrade], width: int) -> str:
    """A line per endplate worth a word (a change, a mistake or an ROI drawn), wrapped."""
    import textwrap

    lines = []
    for r in rows:
        if r.key_type is ModicType.NONE and r.credit >= 1.0 and r.trainee_roi_id is None:
            continue
        answer = "not answered" if r.answer_type is None else f"you {r.answer_type.value}"
        extent = f" ({r.key_extent})" if r.key_extent else ""
        line = f"{r.label}: {answer}, key {r.key_type.value}{extent} ({r.verdict})"
        if r.dice is not None:
            line += f", Dice {r.dice:.2f}"
        elif r.trainee_roi_id is None and r.key_roi_id and r.answer_type is not None:
            line += ", no ROI drawn"
        if r.shape_note:
            line += f": {r.shape_note}"
        lines.append(textwrap.fill(line, width, subsequent_indent="    "))
    return "\n".join(lines)


def _draw_level(
    sub: Figure | SubFigure,
    grade: Grade,
    study: LoadedStudy,
    level: str,
    rows: list[EndplateGrade],
    key_rois: dict[str, ROI],
    trainee_rois: dict[str, ROI],
    map_column: bool,
) -> None:
    anchors = [key_rois[r.key_roi_id] for r in rows if r.key_roi_id in key_rois] or [
        trainee_rois[r.trainee_roi_id] for r in rows if r.trainee_roi_id in trainee_rois
    ]
    centre = np.vstack([a.patient_outline() for a in anchors]).mean(axis=0)
    vols = list(study.volumes.items())
    axes = sub.subplots(1, len(vols) + (1 if map_column else 0), squeeze=False)[0]
    sub.set_facecolor(_BG)
    width = int(sub.get_figure(root=True).get_figwidth() * 72 / (8.5 * 0.55))  # characters per line
    sub.suptitle(_row_heading(rows, width), color="white", fontsize=8.5, ha="left", x=0.01)
    references = list(grade.case.references()) + list(grade.answer.annotations.references())
    for j, (role, vol) in enumerate(vols):
        ax = axes[j]
        k, _, _ = _pane(ax, vol, centre)
        first = j == 0
        for ref in references:
            _outline(ax, ref, vol, k, "#CC79A7", "--", 1.0)
        for r in rows:
            key = key_rois.get(r.key_roi_id or "")
            if key is not None:
                xy = _outline(ax, key, vol, k, TYPE_COLOURS[r.key_type], "-.", 2.0)
                if xy is not None and first:
                    extent = f" ({r.key_extent})" if r.key_extent else ""
                    _tag(
                        ax,
                        xy,
                        f"key {_short(r)}: {r.key_type.value}{extent}",
                        TYPE_COLOURS[r.key_type],
                        above=False,
                    )
            mine = trainee_rois.get(r.trainee_roi_id or "")
            if mine is not None:
                colour = _credit_colour(r)
                xy = _outline(ax, mine, vol, k, colour, "-", 1.6)
                if xy is None:  # drawn on another slice: show where, dotted
                    from ..plot import _roi_outline_on

                    placed = _roi_outline_on(mine, vol)
                    if placed is not None:
                        xy = placed[0]
                        closed = np.vstack([xy, xy[:1]])
                        ax.plot(closed[:, 0], closed[:, 1], color=colour, linestyle=":", linewidth=1.4)
                if xy is not None and first:
                    answer = "-" if r.answer_type is None else r.answer_type.value
                    dice = "" if r.dice is None else f" · Dice {r.dice:.2f}"
                    _tag(ax, xy, f"you {_short(r)}: {answer}{dice}", colour, above=True)
        n = vol.array.shape[0]
        desc = vol.series.description or f"series {vol.series.key}"
        ax.set_title(f"{level} · {role.value} · {desc} · slice {k + 1}/{n}", color="white", fontsize=8)
    if map_column:
        _draw_voxel_map(axes[-1], grade, study, level, rows, key_rois, centre)


def _draw_voxel_map(
    ax: Axes,
    grade: Grade,
    study: LoadedStudy,
    level: str,
    rows: list[EndplateGrade],
    key_rois: dict[str, ROI],
    centre: NDArray[np.float64],
) -> None:
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    mixed = _mixed_at(rows)
    if not mixed:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no mixed change\nat this level", color="#9AA0A6", ha="center", va="center",
                fontsize=8, transform=ax.transAxes)  # fmt: skip
        return
    first_roi = key_rois[mixed[0].key_roi_id or ""]
    vol = next(
        (v for v in study.volumes.values() if v.series.series_uid == first_roi.image.series_instance_uid),
        study.t1,
    )
    k, _, _ = _pane(ax, vol, centre)
    overlay = np.zeros((*vol.array.shape[1:], 4))
    present: set[int] = set()
    notes = []
    for r in mixed:
        roi = key_rois[r.key_roi_id or ""]
        if roi.image.series_instance_uid != vol.series.series_uid:
            continue
        try:
            rr, cc, codes = voxel_type_map(study, roi, grade.case.references())
        except MeasurementError as exc:
            notes.append(f"{_short(r)}: {exc}")
            continue
        for code in np.unique(codes):
            present.add(int(code))
        colours = np.array([to_rgba(VOXEL_COLOURS[int(c)], 0.85) for c in codes])
        overlay[rr, cc] = colours
    _, rows_, cols_ = vol.array.shape
    ax.imshow(
        overlay,
        extent=(0, cols_, rows_, 0),
        interpolation="nearest",
        aspect=ax.get_aspect(),
        gid="modic-voxel-types",
    )
    for r in mixed:
        _outline(ax, key_rois[r.key_roi_id or ""], vol, k, TYPE_COLOURS[r.key_type], "-.", 1.2)
    ax.set_title(
        f"{level} · voxel types in the key's ROI · {vol.series.role.value}", color="white", fontsize=8
    )
    handles = [
        Patch(facecolor=VOXEL_COLOURS[c], edgecolor="#555555", label=VOXEL_NAMES[c]) for c in sorted(present)
    ]
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=6.5, ncols=2, framealpha=0.7, borderpad=0.3)
    if notes:
        ax.text(0.02, 0.98, "\n".join(notes), transform=ax.transAxes, color="white", fontsize=7, va="top")


def feedback_figure(
    grade: Grade, *, study: LoadedStudy | None = None, figure: Figure | None = None
) -> Figure:
    """Draw the trainee's ROIs against the key on every sequence, at each graded level.

    Parameters
    ----------
    grade : Grade
        From :func:`~modic.teaching.grade`.
    study : LoadedStudy, optional
        Default ``grade.study`` (loaded from the case when that is None too).
    figure : matplotlib Figure, optional
        Drawn into (cleared first); default a new :class:`matplotlib.figure.Figure` of
        :func:`feedback_size`, which needs no GUI (``fig.savefig("feedback.png")``).

    Returns
    -------
    matplotlib.figure.Figure
        One subfigure per graded level (its heading: a line per endplate), its axes
        titled ``"L4/L5 · T1 · <series> · slice k/n"`` per sequence, then
        ``"L4/L5 · voxel types in the key's ROI · T1"`` when the level holds a mixed change
        (the map is an image with ``gid`` ``"modic-voxel-types"``). On the first pane of a
        row the key's ROIs are labelled ``"key L4 inf: 1 (B)"`` and the trainee's
        ``"you L4 inf: 1/2 · Dice 0.41"``.
    """
    from matplotlib.figure import Figure

    study = study or grade.study or grade.case.load_study()
    trainee_rois = {r.id: r for r in grade.answer.annotations}
    key_rois = {r.id: r for r in grade.case.rois}
    levels = _graded_levels(grade, key_rois, trainee_rois)
    if figure is None:
        figure = Figure(figsize=feedback_size(grade, study), layout="constrained")
    else:
        figure.clear()
        figure.set_layout_engine("constrained")
    figure.set_facecolor(_BG)
    who = grade.trainee or "trainee"
    figure.suptitle(
        f"{grade.case.title}\n{who}: score {grade.score:.0%}.  Key dash-dotted in its type's colour; "
        "your ROIs solid: green correct, orange partial credit, red no credit",
        fontsize=10,
        color="white",
    )
    if not levels:
        ax = figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no ROI to show", ha="center", va="center", color="white", transform=ax.transAxes)
        return figure
    map_column = bool(_mixed_at(grade.rows))
    subs = figure.subfigures(len(levels), 1, squeeze=False)[:, 0]
    for sub, level in zip(subs, levels, strict=True):
        rows = [r for r in grade.rows if r.label.level == level and (r.key_roi_id or r.trainee_roi_id)]
        _draw_level(sub, grade, study, level, rows, key_rois, trainee_rois, map_column)
    return figure
