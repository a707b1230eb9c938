"""The feedback figure: the trainee's ROIs and the revealed key side by side on the images.

One row per image the ROIs were drawn on (the key's image of each endplate), two panels
per row: left, the trainee's ROIs coloured by credit (green correct, orange partial
credit, red no credit); right, the key's ROIs coloured by Modic type, labelled with the
type and Udby extent. Reference marrow ROIs are dashed. A trainee ROI drawn on another
image is carried onto the key's image through patient coordinates (dotted when it lies
more than half a slice away).

Built on :class:`matplotlib.figure.Figure` without pyplot, so it works on any backend
(Agg included) and in notebooks.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..annotations import ROI, ImagePlane
from ..criteria import ModicType
from .grading import EndplateGrade, Grade
from .sheet import TYPE_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..study import LoadedStudy
    from ..volume import Volume

__all__ = ["feedback_figure", "CREDIT_COLOURS"]

#: Colours of the trainee's ROIs by credit.
CREDIT_COLOURS = {"correct": "#3CB44B", "partial": "#FF9F1A", "wrong": "#FF3B3B", "unanswered": "#9E9E9E"}
_SHORT = {"superior": "sup", "inferior": "inf"}


@dataclass
class _Panel:
    """The ROIs drawn on one image."""

    plane: ImagePlane
    rows: list[EndplateGrade] = field(default_factory=list)


def _short(row: EndplateGrade) -> str:
    ep = row.label.endplate.value if row.label.endplate else ""
    return f"{row.label.vertebra} {_SHORT.get(ep, ep)}"


def _credit_colour(row: EndplateGrade) -> str:
    if row.answer_type is None:
        return CREDIT_COLOURS["unanswered"]
    if row.credit >= 1.0:
        return CREDIT_COLOURS["correct"]
    return CREDIT_COLOURS["partial"] if row.credit > 0 else CREDIT_COLOURS["wrong"]


def _volume_for(study: LoadedStudy, plane: ImagePlane) -> Volume:
    for vol in study.volumes.values():
        if vol.series.series_uid == plane.series_instance_uid:
            return vol
    return study.t1


def _display_plane(vol: Volume, plane: ImagePlane) -> tuple[int, ImagePlane]:
    """The slice of ``vol`` nearest to ``plane``, and that slice's own plane."""
    index, _ = vol.geometry.nearest_slice(np.asarray(plane.position)[None, :])
    k = int(index[0])
    frame = vol.series.frames[k]
    shown = ImagePlane.from_geometry(
        vol.geometry, k, vol.series.series_uid, frame.sop_instance_uid, frame.frame_index + 1
    )
    return k, shown


def _outline_on(roi: ROI, plane: ImagePlane) -> tuple[NDArray[np.float64], float]:
    """``(N, 2)`` image ``(x, y)`` of an ROI's outline on ``plane``, and its distance from it (mm)."""
    outline = roi.patient_outline()
    distance = float(abs(plane.distance_to_plane(outline.mean(axis=0))[0]))
    return plane.patient_to_pixel(outline), distance


def _draw(
    ax: Axes, xy: NDArray[np.float64], colour: str, *, linestyle: str = "-", linewidth: float = 1.8
) -> None:
    from matplotlib.patches import Polygon as PolygonPatch

    # image (x, y) has the pixel corner at 0; imshow puts pixel centres at integers
    ax.add_patch(
        PolygonPatch(
            xy - 0.5, closed=True, fill=False, edgecolor=colour, linestyle=linestyle, linewidth=linewidth
        )
    )


def _label(ax: Axes, xy: NDArray[np.float64], text: str, colour: str) -> None:
    x = float(xy[:, 0].max()) + 1.0
    y = float(xy[:, 1].mean())
    ax.text(
        x - 0.5,
        y - 0.5,
        text,
        color=colour,
        fontsize=8,
        va="center",
        ha="left",
        fontweight="bold",
        bbox={"facecolor": "black", "alpha": 0.55, "edgecolor": "none", "pad": 1.0},
        clip_on=True,
    )


def _crop(
    extents: list[NDArray[np.float64]], rows: int, cols: int, margin: float = 14.0
) -> tuple[float, float, float, float]:
    pts = np.concatenate(extents, axis=0)
    x0, y0 = pts.min(axis=0) - margin
    x1, y1 = pts.max(axis=0) + margin
    x1 += 28.0  # room for the labels on the right
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, x1 = max(cx - side / 2, 0.0), min(cx + side / 2, float(cols))
    y0, y1 = max(cy - side / 2, 0.0), min(cy + side / 2, float(rows))
    return x0, x1, y0, y1


def feedback_figure(
    grade: Grade, *, study: LoadedStudy | None = None, figure: Figure | None = None
) -> Figure:
    """Draw the trainee's ROIs and the key side by side on the images they were drawn on.

    Parameters
    ----------
    grade : Grade
        From :func:`~modic.teaching.grade`.
    study : LoadedStudy, optional
        Default ``grade.study`` (loaded from the case when that is None too).
    figure : matplotlib Figure, optional
        Drawn into (cleared first); default a new :class:`matplotlib.figure.Figure`,
        which needs no GUI (save it with ``fig.savefig("feedback.png")``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    study = study or grade.study or grade.case.load_study()
    trainee_rois = {r.id: r for r in grade.answer.annotations}
    key_rois = {r.id: r for r in grade.case.rois}

    panels: dict[tuple[str, int], _Panel] = {}
    for row in grade.rows:
        roi = key_rois.get(row.key_roi_id or "") or trainee_rois.get(row.trainee_roi_id or "")
        if roi is None:
            continue
        vol = _volume_for(study, roi.image)
        k, shown = _display_plane(vol, roi.image)
        panels.setdefault((vol.series.series_uid, k), _Panel(shown)).rows.append(row)
    if figure is None:
        figure = Figure(figsize=(11, 5.5 * max(1, len(panels))), layout="constrained")
    else:
        figure.clear()
        figure.set_layout_engine("constrained")
    n = max(1, len(panels))
    axes = figure.subplots(n, 2, squeeze=False)
    who = grade.trainee or "trainee"
    figure.suptitle(
        f"{grade.case.title}\n{who}: score {grade.score:.0%}   "
        "(your ROIs: green correct, orange partial credit, red no credit)",
        fontsize=11,
    )
    if not panels:
        for ax in axes[0]:
            ax.set_axis_off()
        axes[0][0].text(0.5, 0.5, "no ROI to show", ha="center", va="center", transform=axes[0][0].transAxes)
        return figure
    for (ax_you, ax_key), ((series_uid, k), panel) in zip(axes, panels.items(), strict=True):
        vol = next(v for v in study.volumes.values() if v.series.series_uid == series_uid)
        image = vol.array[k]
        plane = panel.plane
        extents: list[NDArray[np.float64]] = []  # what the view must show
        everything: list[NDArray[np.float64]] = []
        for ax in (ax_you, ax_key):
            ax.set_axis_off()
        # the key: endplates by type, references dashed
        for row in panel.rows:
            roi = key_rois.get(row.key_roi_id or "")
            if roi is None:
                continue
            xy, _ = _outline_on(roi, plane)
            everything.append(xy)
            if row.key_type is not ModicType.NONE or (row.answer_type is not None and row.credit < 1.0):
                extents.append(xy)
            colour = TYPE_COLOURS[row.key_type]
            _draw(ax_key, xy, colour, linewidth=2.2 if row.key_type is not ModicType.NONE else 1.2)
            extent = f" ({row.key_extent})" if row.key_extent else ""
            _label(ax_key, xy, f"{_short(row)}: {row.key_type.value}{extent}", colour)
        for ref in grade.case.references():
            xy, distance = _outline_on(ref, plane)
            if distance <= vol.geometry.slice_spacing / 2:
                _draw(ax_key, xy, "white", linestyle="--", linewidth=1.0)
        # the trainee: endplates by credit
        for row in panel.rows:
            roi = trainee_rois.get(row.trainee_roi_id or "")
            colour = _credit_colour(row)
            answer = "-" if row.answer_type is None else row.answer_type.value
            if roi is None:
                continue
            xy, distance = _outline_on(roi, plane)
            extents.append(xy)
            far = distance > vol.geometry.slice_spacing / 2
            _draw(ax_you, xy, colour, linestyle=":" if far else "-")
            dice = "" if row.dice is None else f"  Dice {row.dice:.2f}"
            _label(ax_you, xy, f"{_short(row)}: {answer}{dice}" + (" (other slice)" if far else ""), colour)
        for ref in grade.answer.annotations.references():
            xy, distance = _outline_on(ref, plane)
            if distance <= vol.geometry.slice_spacing / 2:
                _draw(ax_you, xy, "white", linestyle="--", linewidth=1.0)
        # zoom on the changes, the mistakes and the trainee's ROIs (else on everything)
        x0, x1, y0, y1 = _crop(extents or everything, image.shape[0], image.shape[1])
        vmin, vmax = np.percentile(image, (0.5, 99.5))
        description = vol.series.description or vol.series.role.value
        for ax, title in ((ax_you, "Your ROIs and types"), (ax_key, "Key")):
            ax.imshow(image, cmap="gray", vmin=float(vmin), vmax=float(vmax), interpolation="nearest")
            ax.set_xlim(x0 - 0.5, x1 - 0.5)
            ax.set_ylim(y1 - 0.5, y0 - 0.5)
            ax.set_title(f"{title}: {description}, slice {k + 1}", fontsize=10)
        shown_types = sorted(
            {r.key_type for r in panel.rows if r.key_roi_id}, key=lambda t: list(ModicType).index(t)
        )
        ax_key.legend(
            handles=[
                Line2D([], [], color=TYPE_COLOURS[t], linewidth=2, label=f"Modic {t.value}")
                for t in shown_types
            ],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
        )
        # answers without an ROI on this image: list them under the trainee's panel
        no_roi = [
            f"{_short(r)} " + ("not answered" if r.answer_type is None else f"said {r.answer_type.value}")
            for r in panel.rows
            if r.trainee_roi_id is None and r.credit < 1.0
        ]
        if no_roi:
            ax_you.text(
                0.01,
                0.01,
                textwrap.fill("also not full credit (no ROI drawn): " + ", ".join(no_roi), 60),
                transform=ax_you.transAxes,
                color="white",
                fontsize=8,
                va="bottom",
                bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"},
            )
    return figure
