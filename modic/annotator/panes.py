"""One image pane of the annotator: a series shown slice by slice, in its own pixel grid.

Coordinates
-----------
A pane's data coordinates are the annotation **image coordinates** of its series
(:mod:`modic.annotations`): ``x`` along a row (column index), ``y`` down a column (row
index), with the top-left corner of the top-left pixel at ``(0, 0)``. The image is drawn
with ``extent=(0, columns, rows, 0)``, so the centre of pixel ``(row r, col c)`` sits at
``(c + 0.5, r + 0.5)``, exactly where a shape drawn over it is stored. Points move
between panes through patient coordinates (LPS mm): :meth:`Pane.xy_to_lps` and
:meth:`Pane.project` (via :meth:`modic.geometry.SliceGeometry.index_to_patient` /
``patient_to_index``), never through pixel indices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from numpy.typing import ArrayLike, NDArray

from ..annotations import rowcol_to_xy, xy_to_rowcol
from ..sequence import Role
from ..volume import Volume
from .colors import THEME, RoiStyle

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.widgets import Slider

__all__ = ["Pane", "direction_letter", "WINDOW_PRESETS"]

#: Window presets: width relative to the default (1st-99th percentile) window, same centre.
WINDOW_PRESETS: dict[str, float] = {"default": 1.0, "wide": 1.6, "narrow": 0.6}

_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # LPS: -x R, +x L; -y A, +y P; -z I, +z S


def direction_letter(vector: ArrayLike) -> str:
    """The patient direction a vector points to most: ``"L"``, ``"R"``, ``"P"``, ``"A"``, ``"S"`` or ``"I"``.

    Examples
    --------
    >>> direction_letter([0, 1, 0]), direction_letter([0, 0, -1])
    ('P', 'I')
    """
    v = np.asarray(vector, dtype=float)
    axis = int(np.argmax(np.abs(v)))
    return _LETTERS[axis][int(v[axis] > 0)]


class Pane:
    """A series in one Axes: image, slice, window, view, ROI outlines and the cross-reference cursor.

    Parameters
    ----------
    ax : Axes
        Where the image goes (its navigation toolbar is switched off: the annotator
        handles zoom and pan itself).
    role : Role
    volume : Volume
        ``(slice, row, col)`` array with its geometry.

    Attributes
    ----------
    index : int
        Current slice (0-based, along the slice normal).
    window : (float, float)
        Display window ``(low, high)`` in the volume's units.
    default_window : (float, float)
        The 1st-99th percentiles of the volume.
    slider : Slider or None
        Its slice slider, set by the annotator.
    """

    def __init__(self, ax: Axes, role: Role, volume: Volume) -> None:
        self.ax = ax
        self.role = role
        self.volume = volume
        self.geometry = volume.geometry
        n, rows, cols = volume.shape
        self.index = n // 2
        self.default_window = volume.window(1.0, 99.0)
        self.window = self.default_window
        self.slider: Slider | None = None
        row_spacing, col_spacing = self.geometry.pixel_spacing
        ax.set_facecolor(THEME["image_background"])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_navigate(False)
        for spine in ax.spines.values():
            spine.set_color(THEME["button"])
        self.image = ax.imshow(
            volume.array[self.index],
            cmap="gray",
            vmin=self.window[0],
            vmax=self.window[1],
            extent=(0.0, float(cols), float(rows), 0.0),
            origin="upper",
            interpolation="bilinear",
            aspect=row_spacing / col_spacing,
        )
        ax.set_adjustable("datalim")
        self.reset_view()
        (self.cursor,) = ax.plot([], [], linestyle="none", marker="+", markersize=16, zorder=6)
        self.cursor.set_markeredgewidth(1.6)
        self.cursor.set_color(THEME["cursor"])
        self.note = ax.text(
            0.02,
            0.02,
            "",
            transform=ax.transAxes,
            fontsize=8,
            color=THEME["warning"],
            va="bottom",
            ha="left",
            zorder=7,
        )
        rc, cc = self.geometry.row_cosine, self.geometry.column_cosine
        style: dict[str, Any] = {
            "transform": ax.transAxes,
            "fontsize": 9,
            "color": THEME["text"],
            "zorder": 7,
            "bbox": {"boxstyle": "round,pad=0.2", "facecolor": "black", "edgecolor": "none", "alpha": 0.5},
        }
        ax.text(0.01, 0.5, direction_letter(-rc), ha="left", va="center", **style)
        ax.text(0.99, 0.5, direction_letter(rc), ha="right", va="center", **style)
        ax.text(0.5, 0.99, direction_letter(-cc), ha="center", va="top", **style)
        ax.text(0.5, 0.01, direction_letter(cc), ha="center", va="bottom", **style)
        self.title = ax.set_title("", fontsize=9, color=THEME["text"], loc="left")
        self.rois: dict[str, tuple[Line2D, Text]] = {}
        self.update_title()

    # -- slices ------------------------------------------------------------------------
    @property
    def n_slices(self) -> int:
        return int(self.volume.shape[0])

    @property
    def half_spacing(self) -> float:
        """Half the slice spacing (mm): how far a point may lie from a slice and be on it."""
        return self.geometry.slice_spacing / 2

    def show_slice(self, index: int) -> int:
        """Show slice ``index`` (clipped to the stack); returns the slice shown."""
        k = int(min(max(int(index), 0), self.n_slices - 1))
        if k != self.index:
            self.index = k
            self.image.set_data(self.volume.array[k])
        self.update_title()
        return k

    def update_title(self) -> None:
        centre = self.slice_centre_lps()
        axis = int(np.argmax(np.abs(self.geometry.normal)))
        letter = _LETTERS[axis][int(centre[axis] > 0)]
        series = self.volume.series
        self.title.set_text(
            f"{self.role.value}  {series.label()}\n"
            f"slice {self.index + 1}/{self.n_slices}   {letter} {abs(centre[axis]):.1f} mm"
        )

    def slice_centre_lps(self, index: int | None = None) -> NDArray[np.float64]:
        """(3,) LPS mm of the centre of the image on slice ``index`` (default: current)."""
        k = self.index if index is None else index
        return self.geometry.index_to_patient(
            [k, (self.geometry.rows - 1) / 2, (self.geometry.columns - 1) / 2]
        )

    # -- coordinates ---------------------------------------------------------------------
    def xy_to_lps(self, x: float, y: float) -> NDArray[np.float64]:
        """(3,) LPS mm of image point ``(x, y)`` on the current slice."""
        r, c = xy_to_rowcol([float(x), float(y)])
        return self.geometry.index_to_patient([self.index, r, c])

    def project(self, points: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Image ``(x, y)`` of LPS points, and their continuous slice index.

        Parameters
        ----------
        points : (N, 3) array_like
            LPS mm.

        Returns
        -------
        xy : (N, 2) ndarray
            Projected onto the slice planes (in-plane position).
        slice : (N,) ndarray
            Continuous slice index (may lie outside ``0 .. n_slices - 1``).
        """
        idx = self.geometry.patient_to_index(np.asarray(points, dtype=float).reshape(-1, 3))
        return rowcol_to_xy(idx[:, 1:]), idx[:, 0]

    def distance_to_slice(self, points: ArrayLike, index: int | None = None) -> NDArray[np.float64]:
        """(N,) signed distance (mm) of LPS points from slice ``index`` (default: current)."""
        k = self.index if index is None else index
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        return np.asarray(p @ self.geometry.normal - self.geometry.slice_coordinates[k], dtype=float)

    def nearest_slice(self, point: ArrayLike) -> tuple[int, float]:
        """The slice nearest to an LPS point and the point's distance (mm) from it."""
        (k,), (d,) = self.geometry.nearest_slice(np.asarray(point, dtype=float).reshape(1, 3))
        return int(k), float(d)

    # -- window ------------------------------------------------------------------------
    def set_window(self, low: float, high: float) -> tuple[float, float]:
        """Display ``low`` as black and ``high`` as white; returns the window used."""
        lo, hi = float(low), float(high)
        if not np.isfinite(lo) or not np.isfinite(hi):
            raise ValueError(f"window limits must be finite, got ({low}, {high})")
        if hi <= lo:
            hi = lo + max(1e-6, 1e-3 * abs(lo))
        self.window = (lo, hi)
        self.image.set_clim(lo, hi)
        return self.window

    # -- view ----------------------------------------------------------------------------
    def reset_view(self) -> None:
        """Show the whole image."""
        cols, rows = float(self.geometry.columns), float(self.geometry.rows)
        self._show(cols / 2, rows / 2, cols / 2, rows / 2)

    def _show(self, xc: float, yc: float, half_w: float, half_h: float) -> None:
        """Show at least ``xc +- half_w``, ``yc +- half_h`` (image units), widening one of
        them so that the view has the shape of the Axes box (square pixels in mm, no
        limits for matplotlib to override)."""
        row_spacing, col_spacing = self.geometry.pixel_spacing
        bbox = self.ax.bbox
        box = bbox.width / bbox.height if bbox.height > 0 else 1.0
        if half_w * col_spacing < box * half_h * row_spacing:
            half_w = box * half_h * row_spacing / col_spacing
        else:
            half_h = half_w * col_spacing / (box * row_spacing)
        self.ax.set_xlim(xc - half_w, xc + half_w)
        self.ax.set_ylim(yc + half_h, yc - half_h)

    def fit_to_box(self) -> None:
        """Keep the view's centre and scale after the Axes changed shape (window resized)."""
        (xc, yc), (x0, x1), (y0, y1) = self.view_centre_xy(), self.ax.get_xlim(), self.ax.get_ylim()
        self._show(xc, yc, abs(x1 - x0) / 2, abs(y1 - y0) / 2)

    def view_centre_xy(self) -> tuple[float, float]:
        x0, x1 = self.ax.get_xlim()
        y0, y1 = self.ax.get_ylim()
        return (x0 + x1) / 2, (y0 + y1) / 2

    def view_centre_lps(self) -> NDArray[np.float64]:
        """(3,) LPS mm of the centre of the view, on the current slice."""
        return self.xy_to_lps(*self.view_centre_xy())

    def view_half_size_mm(self) -> tuple[float, float]:
        """Half the width and height of the view, in mm."""
        x0, x1 = self.ax.get_xlim()
        y0, y1 = self.ax.get_ylim()
        row_spacing, col_spacing = self.geometry.pixel_spacing
        return abs(x1 - x0) * col_spacing / 2, abs(y1 - y0) * row_spacing / 2

    def set_view(self, centre_lps: ArrayLike, half_width_mm: float, half_height_mm: float) -> None:
        """Centre the view on an LPS point, showing at least ``2 * half_width_mm`` across and
        ``2 * half_height_mm`` down."""
        ((x, y),), _ = self.project(centre_lps)
        row_spacing, col_spacing = self.geometry.pixel_spacing
        self._show(float(x), float(y), half_width_mm / col_spacing, half_height_mm / row_spacing)

    def zoom(self, factor: float, centre_xy: tuple[float, float] | None = None) -> None:
        """Magnify by ``factor`` (> 1 zooms in), keeping ``centre_xy`` where it is on screen."""
        cx, cy = centre_xy if centre_xy is not None else self.view_centre_xy()
        x0, x1 = self.ax.get_xlim()
        y0, y1 = self.ax.get_ylim()
        x0, x1 = cx + (x0 - cx) / factor, cx + (x1 - cx) / factor
        y0, y1 = cy + (y0 - cy) / factor, cy + (y1 - cy) / factor
        self._show((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2)

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by ``(dx, dy)`` image units."""
        x0, x1 = self.ax.get_xlim()
        y0, y1 = self.ax.get_ylim()
        self.ax.set_xlim(x0 + dx, x1 + dx)
        self.ax.set_ylim(y0 + dy, y1 + dy)

    # -- cursor -------------------------------------------------------------------------
    def show_cursor(self, lps: NDArray[np.float64] | None, *, here: bool = False) -> None:
        """Mark where an LPS point falls on this pane, and say when it is off the current slice."""
        if lps is None:
            self.cursor.set_data([], [])
            self.note.set_text("")
            return
        (xy,), _ = self.project(lps)
        d = float(self.distance_to_slice(lps)[0])
        self.cursor.set_data([xy[0]], [xy[1]])
        off = abs(d) > self.half_spacing + 1e-6
        self.cursor.set_marker("o" if off else "+")
        self.cursor.set_markerfacecolor("none")
        self.cursor.set_alpha(0.55 if off else (0.5 if here else 1.0))
        if off and not here:
            k, _ = self.nearest_slice(lps)
            self.note.set_text(f"cursor {abs(d):.1f} mm off this slice (on slice {k + 1})")
        else:
            self.note.set_text("")

    # -- ROI outlines -------------------------------------------------------------------
    def draw_roi(
        self,
        key: str,
        xy: NDArray[np.float64],
        style: RoiStyle,
        text: str,
        *,
        text_color: str,
        side: str = "left",
    ) -> None:
        """Draw (or update) a closed outline and its label.

        Parameters
        ----------
        key : str
            Identifies the outline on this pane (ROI id, prefixed for overlays).
        xy : (N, 2) ndarray
            Outline in this pane's image coordinates.
        style : RoiStyle
        text : str
            Label, shown only when ``style.show_label``.
        text_color : str
            Label colour, on a dark box; for a striped outline (``style.gapcolor``) the
            label is drawn in the gap colour on a box of the outline's colour instead.
        side : {"left", "right"}
            Where the label goes: left (anterior on standard sagittal images) for
            endplates, right for references.
        """
        closed = np.vstack([xy, xy[:1]])
        if key in self.rois:
            line, label = self.rois[key]
            line.set_data(closed[:, 0], closed[:, 1])
        else:
            (line,) = self.ax.plot(closed[:, 0], closed[:, 1], zorder=4)
            label = self.ax.text(
                0,
                0,
                "",
                fontsize=7.5,
                zorder=5,
                clip_on=True,
                va="center",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "edgecolor": "none", "alpha": 0.6},
            )
            self.rois[key] = (line, label)
        line.set(**style.line_kwargs())
        if side == "left":
            label.set_position((float(xy[:, 0].min()) - 1.5, float(xy[:, 1].mean())))
            label.set_horizontalalignment("right")
        else:
            label.set_position((float(xy[:, 0].max()) + 1.5, float(xy[:, 1].mean())))
            label.set_horizontalalignment("left")
        label.set_text(text)
        box = label.get_bbox_patch()
        if style.gapcolor is not None:  # a striped outline: its label in the stripes' colours
            label.set_color(style.gapcolor)
            if box is not None:
                box.set(facecolor=style.color, alpha=0.9)
        else:
            label.set_color(text_color)
            if box is not None:
                box.set(facecolor="black", alpha=0.6)
        label.set_visible(style.show_label and bool(text))

    def remove_roi(self, key: str) -> None:
        artists = self.rois.pop(key, None)
        if artists is not None:
            for artist in artists:
                artist.remove()

    def roi_at(self, x: float, y: float, keys: list[str]) -> str | None:
        """The smallest outline among ``keys`` that contains image point ``(x, y)``."""
        best: tuple[float, str] | None = None
        for key in keys:
            if key not in self.rois:
                continue
            xd, yd = self.rois[key][0].get_data()
            pts = np.column_stack([np.asarray(xd, dtype=float), np.asarray(yd, dtype=float)])
            if MplPath(pts).contains_point((x, y)):
                area = 0.5 * abs(
                    float(
                        np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(np.roll(pts[:, 0], -1), pts[:, 1])
                    )
                )
                if best is None or area < best[0]:
                    best = (area, key)
        return None if best is None else best[1]
