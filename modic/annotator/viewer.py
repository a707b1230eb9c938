"""The annotator: T1, T2 and STIR side by side, linked in patient space, with live Modic results.

One :class:`Annotator` works in two homes: in JupyterLab with ipympl (``%matplotlib
widget``; its :attr:`~Annotator.widget` is an ipywidgets box with the canvas and the
controls) and as a desktop window (``modic annotate STUDY``, TkAgg or QtAgg), where the
controls are matplotlib widgets inside the figure. Both run the same code: panes
(:mod:`~modic.annotator.panes`), drawing tools built on matplotlib's selectors
(:mod:`~modic.annotator.tools`), undo history (:mod:`~modic.annotator.history`) and live
results (:mod:`~modic.annotator.live`).

Coordinates: every pane's data coordinates are the image coordinates of its series (``x`` =
column, ``y`` = row, top-left pixel corner at 0, as ROI shapes are stored); panes talk
to each other in patient coordinates (LPS mm). Slice indices in this API are 0-based
(the panes show them 1-based, as a reader counts).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backend_bases import Event, KeyEvent, MouseButton, MouseEvent
from numpy.typing import NDArray

from ..annotations import (
    ROI,
    Annotations,
    ImagePlane,
    Polygon,
    RoiLabel,
    Shape,
    annotation_path_for,
    read_annotations,
    write_annotations,
    xy_to_rowcol,
)
from ..errors import AnnotationFormatError
from ..results import ModicResult
from ..sequence import Role
from ..study import LoadedStudy
from .colors import THEME, roi_style
from .history import History, snapshot
from .keys import KEY_ACTIONS, help_text
from .labels import step_vertebra, suggest_next_label, with_kind
from .live import LiveResults
from .panes import WINDOW_PRESETS, Pane
from .tools import TOOLS, PaneTools, translate_shape

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from .controls import Controls

__all__ = ["Annotator", "WINDOW_PRESETS", "default_annotation_path", "offscreen_figure"]

logger = logging.getLogger(__name__)

_TOOL_ALIASES = {"lasso": "freehand", "rect": "rectangle", "poly": "polygon", "move": "select"}
#: Display pixels of right-drag per default window width (window/level sensitivity).
_WINDOW_DRAG_PX = 300.0
_DESKTOP_SIZE = (15.5, 8.6)
#: How each drawing tool is used (the bottom line says it while nothing is selected).
_HOW_TO_DRAW = {
    "polygon": "click the vertices, then click the first one to close",
    "rectangle": "drag a box",
    "ellipse": "drag its bounding box",
    "freehand": "drag around the region",
}
_NOTEBOOK_SIZE = (11.0, 5.0)
#: A left click this soon (seconds) after the window gained the keyboard focus, or while it
#: has not got it, only focuses the window: it starts no shape (a window manager hands the
#: focusing click on to the window; without this it placed a stray polygon vertex). About
#: twice the usual 150 ms between a window manager's FocusIn and the replayed click.
FOCUS_CLICK_S = 0.35
#: Level names (key V) are written this far in front of each body, mm (clear of ROI labels).
_LEVEL_NAME_MM = 45.0


def default_annotation_path(study: LoadedStudy) -> Path:
    """The sibling annotation file of the folder holding a study's files.

    The folder is the deepest one holding every file of the study;
    :func:`modic.annotations.annotation_path_for` names the file next to it (never inside).
    """
    paths = [os.fspath(f.path) for s in study.study.series for f in s.frames]
    if not paths:
        raise ValueError(f"study {study.key} has no files to place an annotation file next to; pass path=")
    folder = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return annotation_path_for(folder)


def _edited(roi: ROI, **changes: Any) -> ROI:
    """A copy of ``roi`` with ``changes``, edited now by a person: a proposed, derived or
    imported ROI becomes ``"drawn"`` (:meth:`ROI.touch`)."""
    new = replace(roi, **changes)
    new.touch(by_hand=True)
    return new


def _is_ipympl(canvas: Any) -> bool:
    return type(canvas).__module__.startswith("ipympl")


def _backend_is_ipympl() -> bool:
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    return "ipympl" in backend or backend == "widget"


def _backend_is_offscreen() -> bool:
    """Whether pyplot's backend cannot show a window (Agg, PDF, SVG ..., Jupyter's inline)."""
    import matplotlib
    from matplotlib.backends import BackendFilter, backend_registry

    backend = str(matplotlib.get_backend()).lower()
    return backend in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE) or "inline" in backend


def _fit_to_screen(fig: Figure, width: float = 0.96, height: float = 0.9) -> None:
    """Shrink a new window's figure (keeping its shape) to fit the screen (Tk and Qt windows)."""
    window: Any = getattr(fig.canvas.manager, "window", None)
    try:
        if hasattr(window, "winfo_screenwidth"):  # Tk
            sw, sh = float(window.winfo_screenwidth()), float(window.winfo_screenheight())
        elif hasattr(window, "screen"):  # Qt
            geometry = window.screen().availableGeometry()
            sw, sh = float(geometry.width()), float(geometry.height())
        else:
            return
    except Exception as exc:  # noqa: BLE001 -- a window toolkit we do not know: keep the size
        logger.debug("cannot read the screen size: %s", exc)
        return
    w, h = fig.get_size_inches() * fig.dpi
    scale = min(1.0, width * sw / w, height * sh / h)
    if scale < 1.0:
        fig.set_size_inches(fig.get_size_inches() * scale, forward=True)


def offscreen_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on an Agg canvas whose ``draw_idle`` does nothing.

    Nothing is on screen, and ``savefig`` renders the figure anyway; a plain Agg canvas
    would render the whole figure at every ``draw_idle`` (every selector update).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class _OffscreenCanvas(FigureCanvasAgg):
        def draw_idle(self, *args: Any, **kwargs: Any) -> None:
            pass

    fig = Figure(figsize=figsize)
    _OffscreenCanvas(fig)
    return fig


@dataclass
class _Drag:
    """A mouse drag the annotator handles itself (not a selector)."""

    kind: str  # "window", "pan", "move" or "focus" (a click that only focuses the window)
    role: Role
    x: float  # display pixels at the press
    y: float
    start: Any = None  # window (low, high); pan limits; move (LPS point, ROI)
    moved: ROI | None = None


@dataclass
class _Overlay:
    annotations: Annotations
    style: str
    results: dict[str, ModicResult | str]


class Annotator:
    """Draw and edit endplate and reference ROIs on a study, with live Modic results.

    Parameters
    ----------
    study : LoadedStudy
        From :func:`modic.load_study`.
    annotations : Annotations, optional
        Where to start. Default: the file at ``path`` if it exists, else an empty document.
    path : str or Path, optional
        The annotation file: read when ``annotations`` is None, written by :meth:`save`
        and autosave. Default: the sibling file of the study folder
        (:func:`default_annotation_path`), never inside the DICOM folder.
    author : str
        Written into every new ROI.
    show_results : bool
        Show the Modic type and ratios of each endplate ROI as soon as it and a reference
        exist. False (trainee mode) hides them; :attr:`results` is still kept.
    autosave : bool
        Write the annotation file (atomically) after every change.
    figure : Figure, optional
        Draw into this figure (its canvas decides the home: an ipympl canvas gets
        ipywidgets controls, any other gets matplotlib widgets in the figure). Default: a
        new pyplot figure (a window on the desktop, an ipympl canvas in Jupyter); with a
        non-interactive backend (Agg ...) an off-screen figure to ``savefig``.
    on_change : callable, optional
        Called with the annotator after every change of the annotations (not of the view).

    Attributes
    ----------
    figure : Figure
    panes : dict of Role to Pane
    path : Path
    author : str
    autosave : bool

    Examples
    --------
    >>> import modic
    >>> from modic.annotator import Annotator, offscreen_figure
    >>> study = modic.load_study(modic.data.sample_study_path("siemens_15T_type1_type2"))
    >>> ann = Annotator(study, path="unused.modic.json", figure=offscreen_figure((15.5, 8.6)))
    >>> [r.value for r in ann.panes], ann.current_slice("T1"), str(ann.next_label())
    (['T1', 'T2', 'STIR'], 6, 'L1 superior')
    >>> ann.close()
    """

    def __init__(
        self,
        study: LoadedStudy,
        annotations: Annotations | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        author: str = "",
        show_results: bool = True,
        autosave: bool = True,
        figure: Figure | None = None,
        on_change: Callable[[Annotator], None] | None = None,
    ) -> None:
        if not isinstance(study, LoadedStudy):
            raise TypeError(
                f"study must be a LoadedStudy (from modic.load_study), got {type(study).__name__}"
            )
        if annotations is not None and not isinstance(annotations, Annotations):
            raise TypeError(f"annotations must be Annotations or None, got {type(annotations).__name__}")
        self.study = study
        self.path = Path(path) if path is not None else default_annotation_path(study)
        self.author = str(author)
        self.autosave = bool(autosave)
        self.on_change = on_change
        self._show_results = bool(show_results)
        if annotations is None:
            annotations = read_annotations(self.path) if self.path.is_file() else self._new_document()
        uid = annotations.study_instance_uid
        if uid and uid != study.study.study_uid:
            logger.warning(
                "the annotations (%s) were drawn on another study than %s; their ROIs may not fall "
                "on its images",
                self.path.name,
                study.key,
            )
        self._annotations = snapshot(annotations)
        self._history = History(self._annotations)
        self._live = LiveResults(study)
        self._live.refresh_all(self._annotations)
        self._overlays: list[_Overlay] = []
        self._tool = "polygon"
        self._selected: str | None = None
        rois = sorted(self._annotations.rois, key=lambda r: r.created)
        self._last_label: RoiLabel | None = rois[-1].label if rois else None
        endplates = [r.label for r in rois if r.label.kind == "endplate"]
        self._last_endplate: RoiLabel | None = endplates[-1] if endplates else None
        self._label = self.next_label()
        self._preset = "default"
        self._drag: _Drag | None = None
        self._mapped: dict[tuple[str, Role], tuple[ROI, NDArray[np.float64], int, bool]] = {}
        self._save_state = "opened" if self.path.is_file() else "not saved yet"
        self._dirty = False
        self._closed = False
        self._proposal: Any = None  # modic.propose.Proposal, made on the first propose
        self._show_levels = False
        self._propose_one = False  # key O: the next left click proposes the vertebra under it
        self._level_artists: list[Any] = []

        self.figure = figure if figure is not None else self._new_figure()
        self._notebook = _is_ipympl(self.figure.canvas)
        self.figure.set_facecolor(THEME["figure"])
        # Our handlers first: they must run before the selectors' (to lock them out of drags).
        self._cids = self._connect()
        self._has_focus = True  # until the window toolkit says otherwise
        self._focus_time = -math.inf
        self._bind_focus()
        self.panes: dict[Role, Pane] = {}
        self._layout()
        self._tools = {
            role: PaneTools(p, self._on_shape, self._on_vertices) for role, p in self.panes.items()
        }
        self._active_role = next(iter(self.panes))
        self._controls = self._make_controls()
        self._redraw_rois()
        self.set_tool(self._tool)
        self._refresh_texts()

    # ------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------
    def _new_document(self) -> Annotations:
        t1 = self.study.t1.series
        return Annotations(
            study_instance_uid=self.study.study.study_uid,
            frame_of_reference_uid=t1.frame_of_reference_uid,
            description=self.study.study.description,
        )

    def _new_figure(self) -> Figure:
        import matplotlib.pyplot as plt

        if _backend_is_offscreen():
            if "inline" in str(plt.get_backend()):
                logger.warning(
                    "the inline backend shows a still picture; for the interactive annotator in "
                    'Jupyter: pip install "modic[notebook]" and run %matplotlib widget first'
                )
            return offscreen_figure(_DESKTOP_SIZE)
        if _backend_is_ipympl():
            with plt.ioff():
                fig = plt.figure(figsize=_NOTEBOOK_SIZE)
            canvas: Any = fig.canvas
            canvas.header_visible = False
            canvas.toolbar_visible = False
            canvas.footer_visible = False
            canvas.capture_scroll = True
            canvas.resizable = False
            return fig
        with plt.rc_context({"toolbar": "None"}):
            fig = plt.figure(figsize=_DESKTOP_SIZE)
        manager = fig.canvas.manager
        if manager is not None:
            manager.set_window_title(f"modic annotate - study {self.study.key}")
            _fit_to_screen(fig)
        return fig

    def _connect(self) -> list[int]:
        canvas = self.figure.canvas
        manager = canvas.manager
        if manager is not None:
            # matplotlib's default keys (p = pan, s = save, f = fullscreen, arrows = history,
            # ctrl+wheel = zoom) would fight ours
            for name in ("key_press_handler_id", "scroll_handler_id", "button_press_handler_id"):
                cid = getattr(manager, name, None)
                if cid is not None:
                    canvas.mpl_disconnect(cid)
        return [
            canvas.mpl_connect("button_press_event", self._on_press),
            canvas.mpl_connect("button_release_event", self._on_release),
            canvas.mpl_connect("motion_notify_event", self._on_motion),
            canvas.mpl_connect("scroll_event", self._on_scroll),
            canvas.mpl_connect("key_press_event", self._on_key),
            canvas.mpl_connect("figure_leave_event", self._on_leave),
            canvas.mpl_connect("close_event", self._on_close),
            canvas.mpl_connect("resize_event", self._on_resize),
        ]

    def _bind_focus(self) -> None:
        """Follow the keyboard focus of a Tk window (other canvases have no focus events)."""
        window: Any = getattr(self.figure.canvas.manager, "window", None)
        if not hasattr(window, "bind"):
            return
        try:
            window.bind("<FocusIn>", lambda _e: self.focus_changed(True), add="+")
            window.bind("<FocusOut>", lambda _e: self.focus_changed(False), add="+")
        except Exception as exc:  # noqa: BLE001 -- no focus events: every click draws
            logger.debug("cannot follow the window's focus: %s", exc)

    def focus_changed(self, focused: bool) -> None:
        """The window gained (True) or lost the keyboard focus: a left click within
        :data:`FOCUS_CLICK_S` of gaining it, or while it is lost, draws nothing."""
        if focused and not self._has_focus:
            self._focus_time = time.monotonic()
        self._has_focus = bool(focused)

    def _focus_click(self) -> bool:
        return not self._has_focus or time.monotonic() - self._focus_time < FOCUS_CLICK_S

    def _layout(self) -> None:
        """Place panes, sliders, texts (and, on the desktop, the control panel)."""
        from matplotlib.widgets import Slider

        fig = self.figure
        side = 0.0 if self._notebook else 0.19
        fw, fh = fig.get_size_inches()
        vols = self.study.volumes
        n = len(vols)
        left, right, gap = 0.008, 1.0 - side - 0.012, 0.008
        width = (right - left - gap * (n - 1)) / n
        top = 0.86 if self._notebook else 0.915
        aspect = max(
            (v.geometry.rows * v.geometry.pixel_spacing[0])
            / (v.geometry.columns * v.geometry.pixel_spacing[1])
            for v in vols.values()
        )
        bottom_min = 0.17 if self._notebook else 0.34
        height = min(top - bottom_min, width * fw / fh * aspect)
        bottom = top - height
        for i, (role, vol) in enumerate(vols.items()):
            x = left + i * (width + gap)
            ax = fig.add_axes((x, bottom, width, height))
            pane = Pane(ax, role, vol)
            # the value text ("slice 13 / 13") goes right of the slider: keep it inside the pane's width
            sax = fig.add_axes((x + 0.04 * width, bottom - 0.045, 0.66 * width, 0.022))
            sax.set_facecolor(THEME["panel"])
            slider = Slider(
                sax,
                "",
                1,
                pane.n_slices,
                valinit=pane.index + 1,
                valstep=1,
                valfmt=f"slice %d / {pane.n_slices}",
                initcolor="none",
                track_color=THEME["button"],
                color=THEME["button_active"],
            )
            slider.label.set_color(THEME["muted"])
            slider.label.set_fontsize(8)
            slider.valtext.set_color(THEME["text"])
            slider.valtext.set_fontsize(8)
            slider.on_changed(functools.partial(self._on_slider, role))
            pane.slider = slider
            self.panes[role] = pane
        self._panes_bottom = bottom - 0.06
        self._panes_right = right
        text: dict[str, Any] = {"color": THEME["text"], "fontsize": 9}
        self._title: Text = fig.text(0.008, 0.985, "", ha="left", va="top", fontweight="bold", **text)
        self._state_text: Text = fig.text(right, 0.985, "", ha="right", va="top", **text)
        self._status: Text = fig.text(
            0.008, 0.008, "", ha="left", va="bottom", color=THEME["muted"], fontsize=8
        )
        self._info: Text = fig.text(
            0.008, 0.035 if self._notebook else 0.03, "", ha="left", va="bottom", **{**text, "fontsize": 8.5}
        )
        self._help: Text = fig.text(
            0.5,
            0.5,
            help_text() + "\n\n(h or ? closes this help)",
            ha="center",
            va="center",
            family="monospace",
            multialignment="left",
            fontsize=8.5 if self._notebook else 9.5,
            color=THEME["text"],
            zorder=100,
            visible=False,
            bbox={
                "boxstyle": "round,pad=0.8",
                "facecolor": THEME["panel"],
                "edgecolor": THEME["muted"],
                "alpha": 0.97,
            },
        )

    def _make_controls(self) -> Controls:
        from .controls import FigureControls, NotebookControls

        if self._notebook:
            return NotebookControls(self)
        return FigureControls(
            self,
            panel=(self._panes_right + 0.012, 0.02, 0.995 - self._panes_right - 0.012, 0.955),
            results=(0.008, 0.06, self._panes_right - 0.008, max(0.05, self._panes_bottom - 0.07)),
        )

    # ------------------------------------------------------------------------------------
    # public state
    # ------------------------------------------------------------------------------------
    @property
    def annotations(self) -> Annotations:
        """The current annotations (change them through :meth:`add_roi`, :meth:`delete_roi` ...)."""
        return self._annotations

    @property
    def results(self) -> dict[str, ModicResult | str]:
        """Modic result (or the reason there is none) of every endplate ROI, by ROI id."""
        return dict(self._live.results)

    def anatomy_warnings(self, roi_id: str) -> list[str]:
        """The anatomy warnings and notes of an ROI (and of an endplate's reference), as shown
        on screen and in the results (:mod:`modic.anatomy`)."""
        return self._live.anatomy_warnings(roi_id)

    @property
    def anatomy(self) -> dict[str, list[Any]]:
        """Anatomy findings by ROI id (:class:`modic.anatomy.AnatomyFinding`)."""
        return {k: list(v) for k, v in self._live.anatomy.items()}

    @property
    def overlay_results(self) -> list[dict[str, ModicResult | str]]:
        """The results of each overlay's endplate ROIs (for ``style="key"`` overlays)."""
        return [dict(o.results) for o in self._overlays]

    @property
    def tool(self) -> str:
        """The current tool: ``"select"``, ``"polygon"``, ``"rectangle"``, ``"ellipse"`` or ``"freehand"``."""
        return self._tool

    @property
    def label(self) -> RoiLabel:
        """The label the next drawn ROI gets."""
        return self._label

    @property
    def selected(self) -> str | None:
        """Id of the selected ROI, or None."""
        return self._selected

    @property
    def show_results(self) -> bool:
        """Whether live Modic results are shown (False: trainee mode)."""
        return self._show_results

    @show_results.setter
    def show_results(self, value: bool) -> None:
        self._show_results = bool(value)
        self._redraw_rois()
        self._refresh_texts()
        self._controls.sync()
        self._draw()

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    @property
    def widget(self) -> Any:
        """In Jupyter with ipympl: an ipywidgets box with the canvas and the controls; else None."""
        return self._controls.widget

    @property
    def save_state(self) -> str:
        """What the last save did, e.g. ``"autosaved 10:04:05"``."""
        return self._save_state

    def window(self, role: Role | str) -> tuple[float, float]:
        """The display window ``(low, high)`` of a pane."""
        return self._pane(role).window

    def current_slice(self, role: Role | str) -> int:
        """The slice (0-based) a pane shows."""
        return self._pane(role).index

    def help(self) -> str:
        """The keyboard and mouse shortcuts, as text (also logged at INFO by the h key)."""
        return help_text()

    # ------------------------------------------------------------------------------------
    # slices, windows, views
    # ------------------------------------------------------------------------------------
    def _pane(self, role: Role | str) -> Pane:
        if isinstance(role, str) and not isinstance(role, Role):
            hits = [r for r in self.panes if r.value.casefold() == role.casefold()]
            if hits:
                role = hits[0]
        if role not in self.panes:
            shown = ", ".join(r.value for r in self.panes)
            raise KeyError(f"no {getattr(role, 'value', role)} pane in this study (panes: {shown})")
        return self.panes[Role(role)]

    def set_slice(self, role: Role | str, index: int) -> None:
        """Show slice ``index`` (0-based) on one pane; the others follow to their slice
        nearest the same patient position (the centre of the pane's view)."""
        pane = self._pane(role)
        pane.show_slice(index)
        here = pane.view_centre_lps()
        for other in self.panes.values():
            if other is not pane:
                other.show_slice(other.nearest_slice(here)[0])
        self._after_view_change()

    def scroll(self, role: Role | str, delta: int) -> None:
        """Move one pane ``delta`` slices (the others follow, see :meth:`set_slice`)."""
        pane = self._pane(role)
        self.set_slice(pane.role, pane.index + int(delta))

    def set_window(self, role: Role | str, low: float, high: float) -> None:
        """Display ``low`` as black and ``high`` as white on one pane."""
        self._pane(role).set_window(low, high)
        self._preset = "custom"
        self._controls.sync()
        self._draw()

    def set_window_preset(self, name: str, role: Role | str | None = None) -> None:
        """Apply a window preset (:data:`WINDOW_PRESETS`) to one pane or all."""
        if name not in WINDOW_PRESETS:
            raise ValueError(f"unknown window preset {name!r}; choose from {', '.join(WINDOW_PRESETS)}")
        panes = self.panes.values() if role is None else [self._pane(role)]
        for pane in panes:
            lo, hi = pane.default_window
            c, w = (lo + hi) / 2, (hi - lo) * WINDOW_PRESETS[name]
            pane.set_window(c - w / 2, c + w / 2)
        self._preset = name
        self._controls.sync()
        self._draw()

    @property
    def window_preset(self) -> str:
        """The last preset applied (``"default"`` after :meth:`reset_view`), or ``"custom"``
        after a window was set by hand (right-drag, :meth:`set_window`)."""
        return self._preset

    def reset_view(self) -> None:
        """Whole image and default window (1st-99th percentile) on every pane."""
        for pane in self.panes.values():
            pane.reset_view()
            pane.set_window(*pane.default_window)
        self._preset = "default"
        self._controls.sync()
        self._draw()

    def zoom(
        self, factor: float, role: Role | str | None = None, centre_xy: tuple[float, float] | None = None
    ) -> None:
        """Zoom one pane by ``factor`` (> 1 magnifies) about ``centre_xy``; the others show the
        same patient region."""
        pane = self._pane(role if role is not None else self._active_role)
        pane.zoom(factor, centre_xy)
        self._sync_views(pane)

    def _sync_views(self, source: Pane) -> None:
        centre = source.view_centre_lps()
        hw, hh = source.view_half_size_mm()
        for pane in self.panes.values():
            if pane is not source:
                pane.set_view(centre, hw, hh)
        self._draw()

    # ------------------------------------------------------------------------------------
    # tools and labels
    # ------------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        """Choose the tool: ``"select"`` (select, move, edit vertices), ``"polygon"``,
        ``"rectangle"``, ``"ellipse"`` or ``"freehand"`` (alias ``"lasso"``)."""
        tool = _TOOL_ALIASES.get(str(name).lower(), str(name).lower())
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; choose from {', '.join(TOOLS)}")
        self._tool = tool
        for tools in self._tools.values():
            tools.activate(tool)
        self._refresh_editors()
        self._refresh_texts()
        self._controls.sync()
        self._draw()

    def set_label(self, label: RoiLabel | str) -> None:
        """Choose the label of the next ROI drawn (``RoiLabel`` or text such as ``"L4 inferior"``)."""
        self._label = label if isinstance(label, RoiLabel) else RoiLabel.parse(label)
        self._refresh_texts()
        self._controls.sync()
        self._draw()

    def next_label(self) -> RoiLabel:
        """The label most likely drawn next (see :func:`modic.annotator.labels.suggest_next_label`)."""
        return suggest_next_label((r.label for r in self._annotations), self._last_label, self._last_endplate)

    def _note_label(self, label: RoiLabel) -> None:
        self._last_label = label
        if label.kind == "endplate":
            self._last_endplate = label

    def apply_label(self, label: RoiLabel | str | None = None) -> None:
        """Give the selected ROI ``label`` (default: the current label)."""
        if self._selected is None:
            logger.info("no ROI selected: select one (tool v, click inside it) to relabel it")
            return
        new_label = (
            self._label
            if label is None
            else (label if isinstance(label, RoiLabel) else RoiLabel.parse(label))
        )
        roi = self._annotations.get(self._selected)
        if roi.label == new_label:
            return
        self._note_label(new_label)
        self._replace(_edited(roi, label=new_label))
        self._label = self.next_label()
        self._refresh_texts()
        self._controls.sync()

    # ------------------------------------------------------------------------------------
    # proposed ROIs and level names (modic.propose), anatomy (modic.anatomy)
    # ------------------------------------------------------------------------------------
    def proposal(self) -> Any:
        """The study's :class:`modic.propose.Proposal` (found on first use, about 1-2 s, then
        kept); the live anatomy checks use its bodies from then on."""
        if self._proposal is None:
            from ..propose import propose

            self._proposal = propose(self.study, author=self.author)
            self._status_text(f"vertebrae found: {', '.join(self._proposal.levels)}")
            for w in self._proposal.warnings:
                logger.warning("proposal: %s", w)
            self._live.vertebrae = self._proposal
            self._live.check_anatomy(self._annotations)
        return self._proposal

    def propose(self, point: Any = None) -> list[str]:
        """Add the ROIs modic proposes from the image, ``origin="proposed"``; a person's
        ROIs are never replaced (:func:`modic.propose.merge_proposed`).

        Parameters
        ----------
        point : (3,) array_like, optional
            LPS mm of a point inside one vertebral body: only that vertebra's ROIs.
            Default: every vertebra found.

        Returns
        -------
        list of str
            Labels of the ROIs added (or replacing earlier proposed ones), e.g. ``["L4 body", ...]``.
        """
        from ..errors import ModicError
        from ..propose import merge_proposed

        try:
            proposal = self.proposal()
        except (ModicError, ValueError) as exc:
            self._status_text(f"no proposal: {exc}")
            logger.warning("no proposal: %s", exc)
            return []
        rois = list(proposal.annotations)
        if point is not None:
            name = self._body_at(np.asarray(point, dtype=float))
            if name is None:
                self._status_text("no vertebral body found at that point: press O and click inside a body")
                return []
            rois = [r for r in rois if r.label.vertebra == name]
        part = Annotations(rois, study_instance_uid=self._annotations.study_instance_uid)
        merged, report = merge_proposed(self._annotations, part)
        added = report.added + report.replaced
        kept = len(report.kept_drawn)
        self._status_text(
            f"proposed {len(added)} ROIs" + (f"; {kept} kept as drawn" if kept else "")
            + ("; " + "; ".join(proposal.warnings) if proposal.warnings else "")
        )
        if added:
            self._commit(merged)
        else:
            self._draw_levels()
            self._draw()
        return added

    def _body_at(self, lps: NDArray[np.float64]) -> str | None:
        """Name of the proposed body whose outline holds the point (on its own slice)."""
        from ..annotations import ImagePlane

        for b in self._proposal.bodies:
            plane = ImagePlane.from_series(self.study.t1.series, b.slice_index)
            if abs(float(plane.distance_to_plane(lps)[0])) > 15.0:
                continue
            x, y = plane.patient_to_pixel(lps)
            r, c = int(math.floor(y)), int(math.floor(x))
            if 0 <= r < b.mask.shape[0] and 0 <= c < b.mask.shape[1] and b.mask[r, c]:
                return str(b.name)
        return None

    @property
    def show_levels(self) -> bool:
        """Whether the level names of the proposal are shown beside the spine."""
        return self._show_levels

    @show_levels.setter
    def show_levels(self, value: bool) -> None:
        self._show_levels = bool(value)
        if self._show_levels:
            from ..errors import ModicError

            try:
                self.proposal()
            except (ModicError, ValueError) as exc:
                self._show_levels = False
                self._status_text(f"no level names: {exc}")
        self._draw_levels()
        self._draw()

    def toggle_levels(self) -> None:
        """Show / hide the level names beside the spine (key V)."""
        self.show_levels = not self._show_levels

    def _draw_levels(self) -> None:
        for artist in self._level_artists:
            artist.remove()
        self._level_artists = []
        if not self._show_levels or self._proposal is None:
            return
        from ..annotations import ImagePlane

        for b in self._proposal.bodies:
            plane = ImagePlane.from_series(self.study.t1.series, b.slice_index)
            rr, cc = np.nonzero(b.mask)
            if rr.size == 0:
                continue
            # in front of the body (LPS -y is anterior), clear of the ROI labels beside it
            mid = rr.mean() + 0.5
            ends = plane.pixel_to_patient([[cc.min() + 0.5, mid], [cc.max() + 0.5, mid]])
            front = ends[0] if ends[0][1] < ends[1][1] else ends[1]
            spot = front + np.array([0.0, -_LEVEL_NAME_MM, 0.0])
            sure = b.confidence >= 0.4 and self._proposal.sacrum_found
            for pane in self.panes.values():
                xy, _ = pane.project(spot[None, :])
                self._level_artists.append(pane.ax.text(
                    xy[0, 0], xy[0, 1], b.name + ("" if sure else "?"), color="#FFD54F",
                    fontsize=9, fontweight="bold", ha="center", va="center",
                    clip_on=True, zorder=6,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.6,
                          "edgecolor": "none"},
                ))

    def _status_text(self, text: str) -> None:
        self._status.set_text(text)
        logger.info("%s", text)

    # ------------------------------------------------------------------------------------
    # changing the annotations
    # ------------------------------------------------------------------------------------
    def add_roi(self, roi: ROI) -> ROI:
        """Add an ROI (drawn or made in code), select it and suggest the next label."""
        if not isinstance(roi, ROI):
            raise TypeError(f"expected an ROI, got {type(roi).__name__}")
        new = snapshot(self._annotations)
        new.add(roi)
        self._note_label(roi.label)
        self._commit(new)
        self._label = self.next_label()
        self.select(roi.id)
        return roi

    def delete_roi(self, roi_id: str) -> None:
        """Delete an ROI; ``KeyError`` if there is none with this id."""
        new = snapshot(self._annotations)
        new.remove(roi_id)
        if self._selected == roi_id:
            self._selected = None
        self._commit(new)

    def delete_selected(self) -> None:
        """Delete the selected ROI, if any."""
        if self._selected is not None:
            self.delete_roi(self._selected)

    def select(self, roi_id: str | None) -> None:
        """Select an ROI (its outline thickens; a polygon shows draggable vertices) or none."""
        if roi_id is not None:
            self._annotations.get(roi_id)  # KeyError if unknown
        self._selected = roi_id
        self._redraw_rois()
        self._refresh_editors()
        self._refresh_texts()
        self._controls.sync()
        self._draw()

    def select_next(self, step: int = 1) -> None:
        """Select the next ROI in anatomical order and move the panes to its slice."""
        rois = sorted(self._annotations.rois, key=lambda r: (r.label.sort_key, r.id))
        if not rois:
            return
        ids = [r.id for r in rois]
        i = (ids.index(self._selected) + step) % len(ids) if self._selected in ids else 0
        self.show_roi(ids[i])
        self.select(ids[i])

    def show_roi(self, roi_id: str) -> None:
        """Move the panes to the slice an ROI lies on."""
        roi = self._annotations.get(roi_id)
        pane = next(
            (p for p in self.panes.values() if p.volume.series.series_uid == roi.image.series_instance_uid),
            next(iter(self.panes.values())),
        )
        k, _ = pane.nearest_slice(roi.patient_outline().mean(axis=0))
        self.set_slice(pane.role, k)

    def undo(self) -> bool:
        """Undo the last change; False when there is nothing to undo."""
        state = self._history.undo()
        if state is None:
            return False
        self._restore(state)
        return True

    def redo(self) -> bool:
        """Redo the last undone change; False when there is nothing to redo."""
        state = self._history.redo()
        if state is None:
            return False
        self._restore(state)
        return True

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the annotations (atomically) to ``path`` (default :attr:`path`); returns the path.

        Saving elsewhere does not change :attr:`path`, where autosave keeps writing.
        """
        target = Path(path) if path is not None else self.path
        write_annotations(self._annotations, target)
        when = datetime.now().strftime("%H:%M:%S")
        self._save_state = f"saved {when}" if path is None or target == self.path else f"saved a copy {when}"
        if target == self.path:
            self._dirty = False
        logger.info("annotations saved to %s (%d ROIs)", target, len(self._annotations))
        self._refresh_texts()
        self._draw()
        return target

    def overlay(
        self, annotations: Annotations | Iterable[ROI] | str | os.PathLike[str], style: str = "key"
    ) -> None:
        """Draw another set of ROIs, read-only, in a distinct (dash-dotted) style.

        Parameters
        ----------
        annotations : Annotations, iterable of ROI, or path of an annotation file
            E.g. an expert key (teaching mode reveals it with this).
        style : str
            ``"key"``: labels are prefixed "key" and its endplates are classified (their
            types shown when :attr:`show_results`); any other string just draws outlines.
        """
        if isinstance(annotations, Annotations):
            ann = annotations
        elif isinstance(annotations, (str, os.PathLike)):
            ann = read_annotations(annotations)
        else:
            ann = Annotations(rois=list(annotations))
        results: dict[str, ModicResult | str] = {}
        if style == "key":
            live = LiveResults(self.study)
            live.refresh_all(ann)
            results = live.results
        self._overlays.append(_Overlay(snapshot(ann), str(style), results))
        self._redraw_rois()
        self._controls.sync()
        self._draw()

    def clear_overlays(self) -> None:
        """Remove every overlay."""
        self._overlays.clear()
        self._redraw_rois()
        self._controls.sync()
        self._draw()

    def show(self) -> None:
        """Show the annotator: a desktop window (blocks until closed), or :attr:`widget` in Jupyter."""
        if self.widget is not None:
            from IPython.display import display

            display(self.widget)
            return
        if self.figure.canvas.manager is None:
            raise RuntimeError(
                "this figure has no window; create the Annotator without figure= (pyplot makes one) "
                "to show it on the desktop, or save a picture with annotator.figure.savefig(...)"
            )
        import matplotlib.pyplot as plt

        plt.show(block=True)

    def close(self) -> None:
        """Close the figure (pyplot forgets it) and disconnect the annotator's handlers."""
        if self._closed:
            return
        import matplotlib.pyplot as plt

        for cid in self._cids:
            self.figure.canvas.mpl_disconnect(cid)
        self._closed = True
        plt.close(self.figure)

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a Jupyter front end
        from IPython.display import display

        display(self.widget if self.widget is not None else self.figure)

    def toggle_help(self) -> None:
        """Show or hide the shortcut overlay."""
        visible = not self._help.get_visible()
        self._help.set_visible(visible)
        if visible:
            logger.info("annotator shortcuts:\n%s", help_text())
        self._draw()

    # -- the one way changes go in -----------------------------------------------------------
    def _replace(self, roi: ROI) -> None:
        new = snapshot(self._annotations)
        i = next(i for i, r in enumerate(new.rois) if r.id == roi.id)
        new.rois[i] = roi
        new.modified = roi.modified
        self._commit(new)

    def _commit(self, new: Annotations) -> None:
        before = self._annotations
        self._annotations = new
        self._history.push(new)
        self._after_change(before)

    def _restore(self, state: Annotations) -> None:
        before = self._annotations
        self._annotations = state
        if self._selected is not None and not any(r.id == self._selected for r in state):
            self._selected = None
        self._after_change(before)

    def _after_change(self, before: Annotations) -> None:
        self._live.update(before, self._annotations)
        self._dirty = True
        if self.autosave:
            try:
                write_annotations(self._annotations, self.path)
            except OSError as exc:
                logger.error("autosave to %s failed: %s", self.path, exc)
                self._save_state = f"AUTOSAVE FAILED: {exc.strerror or exc}"
            else:
                self._dirty = False
                self._save_state = f"autosaved {datetime.now().strftime('%H:%M:%S')}"
        self._redraw_rois()
        self._draw_levels()
        self._refresh_editors()
        self._refresh_texts()
        self._controls.sync()
        if self.on_change is not None:
            self.on_change(self)
        self._draw()

    # ------------------------------------------------------------------------------------
    # drawing ROIs on the panes
    # ------------------------------------------------------------------------------------
    def _mapping(self, roi: ROI, pane: Pane) -> tuple[NDArray[np.float64], int, bool]:
        """An ROI's outline on a pane: image ``xy``, its nearest slice, and whether it lies
        within half a slice spacing of that slice."""
        cached = self._mapped.get((roi.id, pane.role))
        if cached is not None and cached[0] is roi:
            return cached[1], cached[2], cached[3]
        outline = roi.patient_outline()
        xy, _ = pane.project(outline)
        k, d = pane.nearest_slice(outline.mean(axis=0))
        ok = abs(d) <= pane.half_spacing + 1e-6
        self._mapped[(roi.id, pane.role)] = (roi, xy, k, ok)
        return xy, k, ok

    def _roi_text(self, roi: ROI, result: ModicResult | str | None, prefix: str = "") -> str:
        lab = roi.label
        # "!" badge: the ROI may not lie where its label says (modic.anatomy), in every mode
        warned = any(f.severity == "warning" for f in self._live.anatomy.get(roi.id, []))
        bad = " !" if warned and not prefix else ""
        if lab.endplate is None:
            return f"{prefix}{lab.vertebra} {'ref' if lab.kind == 'reference' else lab.kind}{bad}"
        text = f"{prefix}{lab.vertebra} {lab.endplate.value[:3]}"
        if bad:
            return text + bad
        if self._show_results and isinstance(result, ModicResult):
            t = result.modic_type.value
            text += " \u00b7 ?" if t == "indeterminate" else f" \u00b7 {t}"
            if result.extent is not None and result.modic_type.is_change:  # the Udby height grade
                text += f" {result.extent.height_grade}"
        elif self._show_results and isinstance(result, str):
            text += " \u00b7 !"
        return text

    def _draw_one(self, pane: Pane, roi: ROI, key: str, result: Any, overlay: str | None = None) -> None:
        xy, k, ok = self._mapping(roi, pane)
        on_slice = ok and k == pane.index
        modic = result.modic_type.value if (self._show_results and isinstance(result, ModicResult)) else None
        style = roi_style(
            roi.label.kind,
            modic,
            error=self._show_results and isinstance(result, str),
            on_slice=on_slice,
            selected=overlay is None and roi.id == self._selected,
            overlay=overlay,
        )
        endplate = roi.label.kind == "endplate"
        side = ("left" if endplate else "right") if overlay is None else ("right" if endplate else "left")
        text = self._roi_text(roi, result, prefix=f"{overlay} " if overlay else "")
        pane.draw_roi(key, xy, style, text, text_color=style.color, side=side)

    def _redraw_rois(self) -> None:
        results = self._live.results
        keys: set[str] = set()
        for pane in self.panes.values():
            for roi in self._annotations:
                self._draw_one(pane, roi, roi.id, results.get(roi.id))
                keys.add(roi.id)
            for n, ov in enumerate(self._overlays):
                for roi in ov.annotations:
                    key = f"overlay{n}:{roi.id}"
                    self._draw_one(pane, roi, key, ov.results.get(roi.id), overlay=ov.style)
                    keys.add(key)
            for key in [k for k in pane.rois if k not in keys]:
                pane.remove_roi(key)
        live = {r.id for r in self._annotations} | {r.id for ov in self._overlays for r in ov.annotations}
        self._mapped = {k: v for k, v in self._mapped.items() if k[0] in live}

    def _preview(self, roi: ROI) -> None:
        """Draw a moving ROI (not yet committed) on every pane."""
        for pane in self.panes.values():
            self._draw_one(pane, roi, roi.id, self._live.results.get(roi.id))

    def _on_slice_ids(self, pane: Pane) -> list[str]:
        out = []
        for roi in self._annotations:
            _, k, ok = self._mapping(roi, pane)
            if ok and k == pane.index:
                out.append(roi.id)
        return out

    def _refresh_editors(self) -> None:
        """Vertex handles for the selected polygon, on the panes showing its slice (select tool)."""
        roi = None
        if self._selected is not None and self._tool == "select":
            roi = next((r for r in self._annotations if r.id == self._selected), None)
        for role, tools in self._tools.items():
            pane = self.panes[role]
            if roi is not None and isinstance(roi.shape, Polygon) and roi.id in self._on_slice_ids(pane):
                xy, _, _ = self._mapping(roi, pane)
                tools.edit(xy)
            elif tools.editing:
                tools.hide_editor()

    # ------------------------------------------------------------------------------------
    # texts
    # ------------------------------------------------------------------------------------
    def _refresh_texts(self) -> None:
        n_end = len(self._annotations.endplates())
        n_ref = len(self._annotations.references())
        mode = "" if self._show_results else "   [trainee mode: results hidden]"
        self._title.set_text(
            f"modic annotate   study {self.study.key}   {n_end} endplate + {n_ref} reference ROIs{mode}"
        )
        self._state_text.set_text(f"{self.path.name}: {self._save_state}     h: help")
        self._info.set_text(self._selected_text())

    def _selected_text(self) -> str:
        if self._selected is None:
            return (
                f"Draw the {self._label} ROI with the {self._tool} tool: {_HOW_TO_DRAW.get(self._tool, '')}."
                "   Tools: p r e f; label: [ ] s i n (or the buttons); h: all keys."
                if self._tool != "select"
                else "Click inside an ROI to select it; drag to move; drag a polygon's vertices to reshape."
            )
        roi = next((r for r in self._annotations if r.id == self._selected), None)
        if roi is None:
            return ""
        head = f"selected: {roi.label} ({roi.shape.type}, {roi.image.series_description or 'series'} slice "
        head += f"{self._image_slice(roi)})"
        result = self._live.results.get(roi.id)
        anatomy = self._live.anatomy_warnings(roi.id)
        if anatomy:
            more = f"  (+{len(anatomy) - 1} more in the results)" if len(anatomy) > 1 else ""
            head += "   " + anatomy[0] + more
        if not self._show_results or roi.label.kind == "reference":
            return head
        if isinstance(result, ModicResult):
            return f"{head}   {result.explanation}"
        if isinstance(result, str):
            return f"{head}   no result: {result}"
        return head

    def _image_slice(self, roi: ROI) -> str:
        for pane in self.panes.values():
            if pane.volume.series.series_uid == roi.image.series_instance_uid:
                k, _ = pane.nearest_slice(roi.image.pixel_to_patient([0.5, 0.5]))
                return str(k + 1)
        return "?"

    def _draw(self) -> None:
        if not self._closed:
            self.figure.canvas.draw_idle()

    def _after_view_change(self) -> None:
        for pane in self.panes.values():
            slider = pane.slider
            if slider is not None and int(slider.val) != pane.index + 1:
                slider.eventson = False
                slider.set_val(pane.index + 1)
                slider.eventson = True
            pane.show_cursor(None)
        self._redraw_rois()
        self._refresh_editors()
        self._controls.sync()
        self._draw()

    # ------------------------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------------------------
    def _pane_at(self, event: Event) -> Pane | None:
        inaxes = getattr(event, "inaxes", None)
        if inaxes is None:
            return None
        return next((p for p in self.panes.values() if p.ax is inaxes), None)

    def _lock(self) -> None:
        lock = self.figure.canvas.widgetlock
        if lock.available(self):
            lock(self)

    def _unlock(self) -> None:
        lock = self.figure.canvas.widgetlock
        if lock.isowner(self):
            lock.release(self)

    def _on_press(self, event: Event) -> None:
        assert isinstance(event, MouseEvent)
        pane = self._pane_at(event)
        if pane is None or self._drag is not None:
            return
        self._active_role = pane.role
        if event.button == MouseButton.RIGHT:
            self._drag = _Drag("window", pane.role, event.x, event.y, start=pane.window)
            self._lock()
        elif event.button == MouseButton.MIDDLE:
            self._drag = _Drag(
                "pan", pane.role, event.x, event.y, start=(pane.ax.get_xlim(), pane.ax.get_ylim())
            )
            self._lock()
        elif event.button == MouseButton.LEFT and event.xdata is not None and event.ydata is not None:
            if self._propose_one:  # key O: this click names the vertebra to propose
                self._propose_one = False
                self._drag = _Drag("focus", pane.role, event.x, event.y)
                self._lock()
                self.propose(pane.xy_to_lps(event.xdata, event.ydata))
                return
            if self._tool != "select" and self._focus_click():
                # the click that focuses the window: hold the selectors off until its release
                self._drag = _Drag("focus", pane.role, event.x, event.y)
                self._lock()
                self._has_focus, self._focus_time = True, -math.inf
                return
            if self._tool != "select":
                for role, tools in self._tools.items():
                    if role is not pane.role and tools.drawing_in_progress():
                        tools.cancel()
                return
            if self._tools[pane.role].near_vertex(event):
                return  # the vertex editor takes it
            key = pane.roi_at(event.xdata, event.ydata, self._on_slice_ids(pane))
            self.select(key)
            if key is not None:
                start = pane.xy_to_lps(event.xdata, event.ydata)
                self._drag = _Drag(
                    "move", pane.role, event.x, event.y, start=(start, self._annotations.get(key))
                )
                self._lock()

    def _on_motion(self, event: Event) -> None:
        assert isinstance(event, MouseEvent)
        drag = self._drag
        if drag is not None:
            pane = self.panes[drag.role]
            if drag.kind == "window":
                lo0, hi0 = drag.start
                dlo, dhi = pane.default_window
                scale = (dhi - dlo) / _WINDOW_DRAG_PX
                width = max((hi0 - lo0) + (event.x - drag.x) * scale, (dhi - dlo) * 0.01)
                centre = (lo0 + hi0) / 2 + (event.y - drag.y) * scale
                pane.set_window(centre - width / 2, centre + width / 2)
                self._preset = "custom"
                self._draw()
            elif drag.kind == "pan":
                (x0, x1), (y0, y1) = drag.start
                inv = pane.ax.transData.inverted()
                (ax0, ay0), (ax1, ay1) = inv.transform([(drag.x, drag.y), (event.x, event.y)])
                pane.ax.set_xlim(x0 - (ax1 - ax0), x1 - (ax1 - ax0))
                pane.ax.set_ylim(y0 - (ay1 - ay0), y1 - (ay1 - ay0))
                self._sync_views(pane)
            elif (
                drag.kind == "move"
                and event.inaxes is pane.ax
                and event.xdata is not None
                and event.ydata is not None
            ):
                start, roi = drag.start
                now = pane.xy_to_lps(event.xdata, event.ydata)
                d = roi.image.patient_to_pixel(now) - roi.image.patient_to_pixel(start)
                try:
                    drag.moved = replace(roi, shape=translate_shape(roi.shape, float(d[0]), float(d[1])))
                except AnnotationFormatError:
                    return
                self._preview(drag.moved)
                self._draw()
            return
        here = self._pane_at(event)
        if here is None or event.xdata is None or event.ydata is None:
            self._hide_cursor()
            return
        pane = here
        self._active_role = pane.role
        if self._tool == "polygon":
            self._tools[pane.role].show_polygon_cursor()
        self._show_cursor(pane, event.xdata, event.ydata)

    def _on_release(self, event: Event) -> None:
        drag = self._drag
        if drag is None:
            return
        self._drag = None
        self._unlock()
        if drag.kind == "move" and drag.moved is not None:
            roi: ROI = drag.moved
            self._replace(_edited(roi))
        elif drag.kind == "move":
            self._redraw_rois()
        self._refresh_editors()
        self._controls.sync()
        self._draw()

    def _on_scroll(self, event: Event) -> None:
        assert isinstance(event, MouseEvent)
        pane = self._pane_at(event)
        if pane is None:
            return
        step = float(event.step) if event.step else (1.0 if event.button == "up" else -1.0)
        zoom = event.key in ("control", "ctrl", "shift", "cmd")
        if zoom and event.xdata is not None and event.ydata is not None:
            pane.zoom(1.2**step, (event.xdata, event.ydata))
            self._sync_views(pane)
        else:  # a wheel notch is one slice; a trackpad's fraction of a notch still moves one
            self.scroll(pane.role, int(np.sign(step)) * max(1, round(abs(step))))

    def _on_key(self, event: Event) -> None:
        assert isinstance(event, KeyEvent)
        action = KEY_ACTIONS.get(event.key or "")
        if action is None:
            return
        pane = self._pane_at(event) or self.panes[self._active_role]
        verb, _, arg = action.partition(":")
        if verb == "tool":
            self.set_tool(arg)
        elif verb == "cancel":
            self._propose_one = False
            for tools in self._tools.values():
                tools.hide_editor()
                tools.cancel()
            self.select(None)
        elif verb == "slice":
            self.scroll(pane.role, int(arg))
        elif verb == "zoom":
            self.zoom(1.25 if arg == "in" else 1 / 1.25, pane.role)
        elif verb == "reset":
            self.reset_view()
        elif verb == "window":
            names = list(WINDOW_PRESETS)
            i = names.index(self._preset) if self._preset in names else 0
            self.set_window_preset(names[(i + 1) % len(names)])
        elif verb == "label":
            if arg == "apply":
                self.apply_label()
            elif arg in ("up", "down"):
                self.set_label(step_vertebra(self._label, -1 if arg == "up" else 1))
            else:
                self.set_label(with_kind(self._label, arg))
        elif verb == "select":
            self.select_next()
        elif verb == "delete":
            self.delete_selected()
        elif verb == "undo":
            self.undo()
        elif verb == "redo":
            self.redo()
        elif verb == "save":
            self.save()
        elif verb == "help":
            self.toggle_help()
        elif verb == "propose" and arg == "one":
            self._propose_one = True
            self._status_text("propose one vertebra: click inside its body (esc cancels)")
            self._draw()
        elif verb == "propose":
            self.propose()
        elif verb == "levels":
            self.toggle_levels()

    def _on_slider(self, role: Role, value: float) -> None:
        if int(round(value)) - 1 != self.panes[role].index:
            self.set_slice(role, int(round(value)) - 1)

    def _on_leave(self, event: Event) -> None:
        self._hide_cursor()

    def _on_resize(self, event: Event) -> None:
        for pane in self.panes.values():
            pane.fit_to_box()

    def _on_close(self, event: Event) -> None:
        if self._dirty:
            logger.warning("closing the annotator with unsaved changes (autosave is off); call save()")
        self._closed = True

    # -- cross-reference cursor -------------------------------------------------------------
    def _show_cursor(self, pane: Pane, x: float, y: float) -> None:
        lps = pane.xy_to_lps(x, y)
        for other in self.panes.values():
            other.show_cursor(lps, here=other is pane)
        r, c = xy_to_rowcol([x, y])
        ri, ci = int(np.floor(r + 0.5)), int(np.floor(c + 0.5))
        value = ""
        if 0 <= ri < pane.geometry.rows and 0 <= ci < pane.geometry.columns:
            value = f"   value {pane.volume.array[pane.index, ri, ci]:.0f}"
        self._status.set_text(
            f"{pane.role.value} slice {pane.index + 1}   x {x:.1f}  y {y:.1f} px   "
            f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm{value}   "
            f"window {pane.window[0]:.0f}-{pane.window[1]:.0f}"
        )
        self._draw()

    def _hide_cursor(self) -> None:
        if any(p.cursor.get_xdata() is not None and len(p.cursor.get_xdata()) for p in self.panes.values()):  # type: ignore[arg-type]
            for p in self.panes.values():
                p.show_cursor(None)
            self._draw()

    # -- selector callbacks -----------------------------------------------------------------
    def _on_shape(self, pane: Pane, shape: Shape) -> None:
        plane = ImagePlane.from_series(pane.volume.series, pane.index)
        roi = ROI(self._label, shape, plane, author=self.author)
        self.add_roi(roi)

    def _on_vertices(self, pane: Pane, xy: NDArray[np.float64]) -> None:
        if self._selected is None:
            return
        roi = self._annotations.get(self._selected)
        rc = xy_to_rowcol(xy)
        lps = pane.geometry.index_to_patient(np.column_stack([np.full(len(rc), pane.index), rc]))
        try:
            shape = Polygon(roi.image.patient_to_pixel(lps))
        except AnnotationFormatError as exc:
            logger.info("vertex edit not kept: %s", exc)
            return
        self._replace(_edited(roi, shape=shape))
