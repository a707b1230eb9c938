"""Drawing tools: matplotlib selectors that turn mouse gestures into ROI shapes.

Each pane gets one selector per drawing tool (PolygonSelector, RectangleSelector,
EllipseSelector, LassoSelector) and one more PolygonSelector that edits the vertices of
the selected polygon ROI. Switching tools only activates / deactivates selectors: they are
created once, kept referenced for the life of the annotator (an unreferenced selector is
garbage-collected and silently stops working) and never disconnected (disconnecting a
selector right after creating it is why polygon selection "does not work" in JupyterLab,
where ``plt.show()`` does not block).

Shapes come out in the pane's image coordinates (``x`` = column, ``y`` = row, top-left
pixel corner at 0; see :mod:`modic.annotator.panes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.widgets import EllipseSelector, LassoSelector, PolygonSelector, RectangleSelector
from numpy.typing import NDArray

from ..annotations import Ellipse, Polygon, Rectangle, Shape
from ..errors import AnnotationFormatError
from .colors import THEME
from .panes import Pane

__all__ = ["TOOLS", "DRAWING_TOOLS", "PaneTools", "simplify_path", "translate_shape"]

logger = logging.getLogger(__name__)

#: Tool names: ``"select"`` selects, moves and edits; the others draw.
TOOLS: tuple[str, ...] = ("select", "polygon", "rectangle", "ellipse", "freehand")
DRAWING_TOOLS: tuple[str, ...] = TOOLS[1:]
#: Smallest rectangle / ellipse side, in pixels, that makes an ROI (smaller is a click).
MIN_SIZE_PX = 1.0

_Selector = PolygonSelector | RectangleSelector | EllipseSelector | LassoSelector


def simplify_path(xy: Sequence[tuple[float, float]], min_step: float = 0.5) -> NDArray[np.float64]:
    """Drop the points of a freehand path closer than ``min_step`` pixels to the last kept one.

    Parameters
    ----------
    xy : sequence of (x, y)
        Image coordinates, as a LassoSelector reports them.
    min_step : float
        Pixels.

    Returns
    -------
    (N, 2) ndarray
        The kept points (the first always is; the closing point is dropped).

    Examples
    --------
    >>> simplify_path([(0, 0), (0.1, 0), (1, 0), (1, 1), (0, 0)]).tolist()
    [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    """
    pts = np.asarray([p for p in xy if p[0] is not None and p[1] is not None], dtype=float).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if pts.shape[0] == 0:
        return pts
    kept = [pts[0]]
    for p in pts[1:]:
        if np.hypot(*(p - kept[-1])) >= min_step:
            kept.append(p)
    if len(kept) > 1 and np.hypot(*(kept[-1] - kept[0])) < min_step:
        kept.pop()
    return np.asarray(kept, dtype=float)


class PaneTools:
    """The selectors of one pane.

    Parameters
    ----------
    pane : Pane
    on_shape : callable
        ``on_shape(pane, shape)``: a drawing tool finished a shape (image coordinates of
        the pane's current slice).
    on_vertices : callable
        ``on_vertices(pane, xy)``: the vertex editor moved vertices; ``xy`` is ``(N, 2)``.

    Attributes
    ----------
    selectors : dict of str to selector
        One per drawing tool.
    editor : PolygonSelector
        Edits the vertices of the selected polygon ROI (active with the select tool).
    """

    def __init__(
        self,
        pane: Pane,
        on_shape: Callable[[Pane, Shape], None],
        on_vertices: Callable[[Pane, NDArray[np.float64]], None],
    ) -> None:
        self.pane = pane
        self._on_shape = on_shape
        self._on_vertices = on_vertices
        ax = pane.ax
        draw = {"color": THEME["cursor"], "linewidth": 1.4, "alpha": 0.9}
        handles = {
            "markersize": 5,
            "markerfacecolor": THEME["cursor"],
            "markeredgecolor": "black",
            "zorder": 6,
        }
        # Rectangle / ellipse: shift keeps the square state; rotation (key 'r', our rectangle
        # tool), centring (ctrl, as in ctrl+z) and space-move are switched off.
        box_keys = {"move": "not-applicable", "center": "not-applicable", "rotate": "not-applicable"}
        box = {"facecolor": THEME["cursor"], "edgecolor": THEME["cursor"], "alpha": 0.25, "fill": True}
        # (matplotlib's stubs give PolygonSelector's onselect two arguments; it is called with one)
        polygon = PolygonSelector(
            ax,
            self._polygon_done,  # type: ignore[arg-type]
            useblit=False,
            props=draw,
            handle_props=handles,
            grab_range=8,
        )
        # No button filter on the polygon selectors: they track the mouse with no button
        # pressed. Right (window) and middle (pan) drags are kept from them by the annotator,
        # which holds the canvas's widget lock during those drags.
        self.polygon = polygon
        self.selectors: dict[str, _Selector] = {
            "polygon": polygon,
            "rectangle": RectangleSelector(
                ax,
                self._rectangle_done,
                useblit=False,
                props=box,
                button=MouseButton.LEFT,
                state_modifier_keys=box_keys,
            ),
            "ellipse": EllipseSelector(
                ax,
                self._ellipse_done,
                useblit=False,
                props=box,
                button=MouseButton.LEFT,
                state_modifier_keys=box_keys,
            ),
            "freehand": LassoSelector(
                ax, self._lasso_done, useblit=False, props=draw, button=MouseButton.LEFT
            ),
        }
        self.editor = PolygonSelector(
            ax,
            self._edited,  # type: ignore[arg-type]
            useblit=False,
            props={"linestyle": "none"},
            handle_props={
                "marker": "s",
                "markersize": 4,
                "markerfacecolor": "white",
                "markeredgecolor": "black",
                "alpha": 1.0,
                "zorder": 6,
            },
            grab_range=8,
        )
        for selector in (polygon, self.editor):
            # PolygonSelector takes no state_modifier_keys argument, and its ctrl state pops a
            # vertex at every key press that includes ctrl (ctrl+z, ctrl+s ...), raising
            # IndexError when none is left: switch its ctrl (move one vertex) and shift (move
            # all) states off. Vertices are dragged with the select tool; ROIs move with it.
            keys: dict[str, str] = cast(Any, selector)._state_modifier_keys  # no public setter
            keys.update(move_vertex="not-applicable", move_all="not-applicable")
        self._editing: NDArray[np.float64] | None = None
        for s in self.selectors.values():
            s.set_active(False)
        self.hide_editor()

    # -- switching -----------------------------------------------------------------------
    def activate(self, tool: str) -> None:
        """Make ``tool`` the active one on this pane (cancelling any shape in progress)."""
        for name, s in self.selectors.items():
            s.set_active(name == tool)
        self.cancel()

    def cancel(self) -> None:
        """Forget a polygon being drawn (rectangles, ellipses and lassos hide themselves on release)."""
        if self.drawing_in_progress():
            self.polygon.clear()
        self.polygon.set_visible(False)

    def drawing_in_progress(self) -> bool:
        """Whether a polygon has vertices placed but is not closed yet."""
        return bool(self.polygon.get_visible() and len(self.polygon.verts) >= 1)

    def show_polygon_cursor(self) -> None:
        """Show the polygon selector's lines again (hidden after each finished polygon)."""
        self.polygon.set_visible(True)

    # -- vertex editor -------------------------------------------------------------------
    def edit(self, xy: NDArray[np.float64]) -> None:
        """Show draggable handles on the vertices ``xy`` (N, 2) of the selected polygon."""
        self._editing = np.asarray(xy, dtype=float)
        self.editor.set_active(True)
        self.editor.verts = [(float(x), float(y)) for x, y in self._editing]

    def hide_editor(self) -> None:
        self._editing = None
        self.editor.set_active(False)
        self.editor.set_visible(False)

    @property
    def editing(self) -> bool:
        return self._editing is not None

    def near_vertex(self, event: MouseEvent) -> bool:
        """Whether a mouse event lies within grab range of a handle of the vertex editor."""
        if self._editing is None or event.x is None:
            return False
        disp = self.pane.ax.transData.transform(self._editing)
        d = np.hypot(disp[:, 0] - event.x, disp[:, 1] - event.y)
        return bool(d.size and d.min() < self.editor.grab_range)

    # -- selector callbacks --------------------------------------------------------------
    def _emit(self, make: Callable[[], Shape]) -> None:
        try:
            shape = make()
        except AnnotationFormatError as exc:
            logger.info("shape not kept: %s", exc)
            return
        self._on_shape(self.pane, shape)

    def _polygon_done(self, verts: Any) -> None:
        pts = simplify_path(verts, 1e-3)
        self.polygon.clear()
        self.polygon.set_visible(False)
        if pts.shape[0] >= 3:
            self._emit(lambda: Polygon(pts))

    def _extents(self, name: str) -> tuple[float, float, float, float] | None:
        selector = self.selectors[name]
        assert isinstance(selector, RectangleSelector)
        x0, x1, y0, y1 = (float(v) for v in selector.extents)
        selector.clear()
        if x1 - x0 < MIN_SIZE_PX or y1 - y0 < MIN_SIZE_PX:
            return None
        return x0, x1, y0, y1

    def _rectangle_done(self, eclick: Any, erelease: Any) -> None:
        ext = self._extents("rectangle")
        if ext is not None:
            x0, x1, y0, y1 = ext
            self._emit(lambda: Rectangle(x0, y0, x1, y1))

    def _ellipse_done(self, eclick: Any, erelease: Any) -> None:
        ext = self._extents("ellipse")
        if ext is not None:
            x0, x1, y0, y1 = ext
            self._emit(lambda: Ellipse((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2))

    def _lasso_done(self, verts: Any) -> None:
        pts = simplify_path(verts, 0.5)
        if pts.shape[0] >= 3:
            self._emit(lambda: Polygon(pts))

    def _edited(self, verts: Any) -> None:
        if self._editing is None:
            return
        xy = np.asarray(verts, dtype=float).reshape(-1, 2)
        if xy.shape[0] < 3:
            return
        if xy.shape == self._editing.shape and np.allclose(xy, self._editing, atol=1e-3):
            return  # a click that moved nothing
        self._editing = xy
        self._on_vertices(self.pane, xy)


def translate_shape(shape: Shape, dx: float, dy: float) -> Shape:
    """``shape`` moved by ``(dx, dy)`` image pixels (a mask moves by whole pixels).

    Raises
    ------
    AnnotationFormatError
        If a mask would leave the image's top or left edge.

    Examples
    --------
    >>> translate_shape(Rectangle(1, 1, 3, 3), 2, 0.5)
    Rectangle(x0=3.0, y0=1.5, x1=5.0, y1=3.5)
    """
    from ..annotations import Mask

    if isinstance(shape, Polygon):
        return Polygon(shape.points + np.array([dx, dy]))
    if isinstance(shape, Rectangle):
        return Rectangle(shape.x0 + dx, shape.y0 + dy, shape.x1 + dx, shape.y1 + dy)
    if isinstance(shape, Ellipse):
        return Ellipse(shape.cx + dx, shape.cy + dy, shape.rx, shape.ry, angle_deg=shape.angle_deg)
    if isinstance(shape, Mask):
        return Mask(shape.x0 + round(dx), shape.y0 + round(dy), shape.mask)
    raise TypeError(f"cannot move a {type(shape).__name__}")
