"""The annotator's controls, in its two homes.

* :class:`FigureControls`: matplotlib widgets (buttons) in a side panel of the figure, a
  colour legend and a results table under the panes: the desktop window (TkAgg, QtAgg)
  and any non-interactive canvas (Agg, for pictures and tests).
* :class:`NotebookControls`: ipywidgets around the ipympl canvas (JupyterLab,
  ``%matplotlib widget``). ``ipywidgets`` comes with the ``notebook`` extra and is
  imported only here.

Both call the annotator's public methods and redraw themselves from its state in
``sync()``, so keyboard, mouse and controls always agree.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.widgets import Button

from ..annotations import VERTEBRAE
from ..criteria import ModicType
from ..errors import MissingDependencyError
from ..results import ModicResult
from ..sequence import Role
from .colors import ERROR_COLOR, MODIC_COLORS, PENDING_COLOR, THEME, legend_entries
from .labels import ALL_LABELS, label_kind, with_kind
from .panes import WINDOW_PRESETS
from .tools import TOOLS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .viewer import Annotator

__all__ = ["Controls", "FigureControls", "NotebookControls", "ResultRow", "result_rows"]

_ROLES = (Role.T1, Role.T2, Role.STIR)
_INSTALL_HINT = 'the annotator in Jupyter needs ipympl and ipywidgets: pip install "modic[notebook]"'


class Controls(Protocol):
    """What the annotator needs from its controls."""

    @property
    def widget(self) -> Any:
        """The ipywidgets box to display (None outside Jupyter)."""

    def sync(self) -> None:
        """Show the annotator's current state."""


@dataclass(frozen=True)
class ResultRow:
    """One endplate in the results table.

    Attributes
    ----------
    roi_id, level, label : str
    modic_type : str or None
        None when hidden (trainee mode) or not available.
    color : str
    ratios : str
        ``"T1 0.65  T2 1.19  STIR 4.27"``, or the reason there is no result.
    confidence : float or None
    note : str
        For an indeterminate result (badge ``"?"``), ``"indeterminate: <the reason>"``;
        before it, the ROI's anatomy warnings (``"anatomy: ..."``, :mod:`modic.anatomy`).
    extent : str
        The change's Udby height grade (``"A"``, ``"B"``, ``"C"``; :mod:`modic.extent`),
        shown beside the type; ``""`` when there is none.
    """

    roi_id: str
    level: str
    label: str
    modic_type: str | None
    color: str
    ratios: str
    confidence: float | None
    note: str = ""
    extent: str = ""


def result_rows(annotator: Annotator) -> list[ResultRow]:
    """The endplate ROIs of an annotator, head to foot, with their shown results."""
    rows = []
    results = annotator.results
    for roi in annotator.annotations.endplates():
        lab = roi.label
        res = results.get(roi.id)
        anatomy = "  ".join(annotator.anatomy_warnings(roi.id))  # modic.anatomy: "anatomy: ..."
        name = f"{lab.vertebra} {lab.endplate.value[:3] if lab.endplate else 'ref'}"
        level = lab.level or ""
        if not annotator.show_results:
            rows.append(ResultRow(roi.id, level, name, None, PENDING_COLOR, "drawn", None, anatomy))
        elif isinstance(res, ModicResult):
            ratios = "  ".join(f"{r.value} {res.ratios[r].ratio:4.2f}" for r in _ROLES if r in res.ratios)
            t = res.modic_type.value
            color = MODIC_COLORS[t]
            note = ""
            if res.modic_type is ModicType.INDETERMINATE:  # a short badge; the reason follows
                t, note = "?", f"indeterminate: {res.reason}"
            grade = "" if res.extent is None else res.extent.height_grade
            note = "   ".join(n for n in (anatomy, note) if n)
            rows.append(ResultRow(roi.id, level, name, t, color, ratios, res.confidence, note, grade))
        else:
            why = res if isinstance(res, str) else "not classified yet"
            rows.append(ResultRow(roi.id, level, name, "!", ERROR_COLOR, why, None, anatomy))
    return rows


# ----------------------------------------------------------------------------------------
# matplotlib widgets (desktop window, Agg)
# ----------------------------------------------------------------------------------------
def _click(on_click: Callable[[str], object], value: str, event: object) -> None:
    on_click(value)


def _set_window(annotator: Annotator, role: Role, change: dict[str, Any]) -> None:
    low, high = change["new"]
    annotator.set_window(role, low, high)


class _ButtonRow:
    """Buttons in a grid inside ``rect`` (figure fractions); one of them can be highlighted."""

    def __init__(
        self,
        fig: Any,
        rect: tuple[float, float, float, float],
        labels: Sequence[str],
        values: Sequence[str],
        on_click: Callable[[str], object],
        *,
        cols: int | None = None,
        fontsize: float = 8,
    ) -> None:
        x, y, w, h = rect
        n = len(labels)
        cols = cols or n
        rows = math.ceil(n / cols)
        gap = 0.003
        bw = (w - gap * (cols - 1)) / cols
        bh = (h - gap * (rows - 1)) / rows
        self.values = list(values)
        self.buttons: list[Button] = []
        for i, label in enumerate(labels):
            r, c = divmod(i, cols)
            ax = fig.add_axes((x + c * (bw + gap), y + h - (r + 1) * bh - r * gap, bw, bh))
            b = Button(ax, label, color=THEME["button"], hovercolor=THEME["button_hover"])
            b.label.set_color(THEME["text"])
            b.label.set_fontsize(fontsize)
            for spine in ax.spines.values():
                spine.set_visible(False)
            b.on_clicked(functools.partial(_click, on_click, self.values[i]))
            self.buttons.append(b)

    def highlight(self, value: str | None) -> None:
        for b, v in zip(self.buttons, self.values, strict=True):
            color = THEME["button_active"] if v == value else THEME["button"]
            if b.color != color:
                b.color = color
                b.ax.set_facecolor(color)

    def enable(self, value: str, enabled: bool) -> None:
        b = self.buttons[self.values.index(value)]
        b.label.set_alpha(1.0 if enabled else 0.35)


class FigureControls:
    """Buttons, legend and results table drawn in the annotator's own figure.

    Parameters
    ----------
    annotator : Annotator
    panel : (x, y, width, height)
        Figure fractions of the side panel (tools, label, edit, window, legend).
    results : (x, y, width, height)
        Figure fractions of the results table (under the panes).
    """

    widget = None

    def __init__(
        self,
        annotator: Annotator,
        panel: tuple[float, float, float, float],
        results: tuple[float, float, float, float],
    ) -> None:
        self.annotator = annotator
        fig = annotator.figure
        self.figure = fig
        x, y, w, h = panel
        top = y + h
        text: dict[str, Any] = {"color": THEME["muted"], "fontsize": 8, "fontweight": "bold", "va": "bottom"}

        def header(name: str) -> None:
            nonlocal top
            top -= 0.026
            fig.text(x, top + 0.004, name, **text)

        def rect(height: float) -> tuple[float, float, float, float]:
            nonlocal top
            top -= height
            r = (x, top, w, height)
            top -= 0.006
            return r

        a = annotator
        header("TOOL")
        self.tools = _ButtonRow(fig, rect(0.04), [t for t in TOOLS], list(TOOLS), a.set_tool, fontsize=7.5)
        header("LABEL OF THE NEXT ROI")
        top -= 0.032
        self.label_text: Text = fig.text(
            x, top + 0.006, "", color=THEME["text"], fontsize=11, fontweight="bold"
        )
        self.vertebrae = _ButtonRow(
            fig, rect(0.078), list(VERTEBRAE), list(VERTEBRAE), self._vertebra, cols=4, fontsize=8
        )
        kinds = ["superior", "inferior", "reference", "body", "fat"]
        self.kinds = _ButtonRow(fig, rect(0.04), kinds, kinds, self._kind, fontsize=8)
        self.apply = _ButtonRow(
            fig,
            rect(0.04),
            ["apply label to selected ROI (l)"],
            ["apply"],
            lambda v: a.apply_label(),
            fontsize=8,
        )
        top -= 0.006
        header("EDIT")
        actions: dict[str, Callable[[], object]] = {
            "undo": a.undo,
            "redo": a.redo,
            "delete": a.delete_selected,
            "save": a.save,
            "reset view": a.reset_view,
            "help": a.toggle_help,
            "propose (P)": a.propose,
            "levels (V)": a.toggle_levels,
        }
        self.edit = _ButtonRow(
            fig, rect(0.084), list(actions), list(actions), lambda v: actions[v](), cols=4, fontsize=7.5
        )
        top -= 0.006
        header("WINDOW (right-drag: width / level)")
        presets = list(WINDOW_PRESETS)
        self.presets = _ButtonRow(fig, rect(0.04), presets, presets, a.set_window_preset, fontsize=8)
        top -= 0.006
        header("LEGEND")
        self.legend_ax: Axes = fig.add_axes((x, y, w, max(0.05, top - y - 0.004)))
        self.legend_ax.set_axis_off()
        self._legend_state: tuple[bool, bool] | None = None
        rx, ry, rw, rh = results
        fig.text(
            rx, ry + rh + 0.004, "RESULTS  (endplate, Modic type, signal ratios to reference marrow)", **text
        )
        self.results_ax: Axes = fig.add_axes(results)
        self.results_ax.set_axis_off()
        self._result_artists: list[Text] = []
        self.sync()

    # -- callbacks ------------------------------------------------------------------------
    def _vertebra(self, vertebra: str) -> None:
        a = self.annotator
        kind = label_kind(a.label)
        from ..annotations import RoiLabel

        a.set_label(with_kind(RoiLabel.for_reference(vertebra), kind))

    def _kind(self, kind: str) -> None:
        a = self.annotator
        a.set_label(with_kind(a.label, kind))

    # -- state -----------------------------------------------------------------------------
    def sync(self) -> None:
        a = self.annotator
        self.tools.highlight(a.tool)
        self.vertebrae.highlight(a.label.vertebra)
        self.kinds.highlight(label_kind(a.label))
        self.label_text.set_text(str(a.label))
        self.edit.enable("undo", a.can_undo)
        self.edit.enable("redo", a.can_redo)
        self.edit.enable("delete", a.selected is not None)
        self.apply.enable("apply", a.selected is not None)
        self.presets.highlight(a.window_preset)
        state = (a.show_results, bool(a.overlay_results))
        if state != self._legend_state:
            self._draw_legend(*state)
            self._legend_state = state
        self._draw_results()

    def _draw_legend(self, show_results: bool, overlay: bool) -> None:
        ax = self.legend_ax
        for artist in list(ax.lines) + list(ax.texts):
            artist.remove()
        rows = legend_entries(show_results, overlay)
        row_h = 19.0 / max(ax.get_window_extent().height, 1.0) * self.figure.dpi / 100
        for i, (name, color, ls, gap) in enumerate(rows):
            x0 = 0.0
            yy = 1 - (i + 0.5) * row_h
            line: Any = {"color": color, "linestyle": ls, "linewidth": 2, "gapcolor": gap}
            ax.add_line(Line2D([x0 + 0.01, x0 + 0.1], [yy, yy], **line))
            ax.text(x0 + 0.13, yy, name, color=THEME["text"], fontsize=7.5, va="center", ha="left")

    def _draw_results(self) -> None:
        for artist in self._result_artists:
            artist.remove()
        self._result_artists = []
        rows = result_rows(self.annotator)
        ax = self.results_ax
        if not rows:
            self._result_artists.append(
                ax.text(
                    0,
                    1,
                    "No endplate ROI yet: draw one (p, r, e or f), and a reference ROI of normal marrow.",
                    color=THEME["muted"],
                    fontsize=8,
                    va="top",
                )
            )
            return
        bbox = ax.get_window_extent()
        size = 8.5
        px = size / 72 * self.figure.dpi
        line = 1.45 * px / max(bbox.height, 1.0)  # axes fraction per line
        char = 0.602 * px / max(bbox.width, 1.0)  # DejaVu Sans Mono advance, axes fraction
        per_col = max(1, int(1 / line))
        n_cols = max(1, math.ceil(len(rows) / per_col))
        mono: dict[str, Any] = {"family": "monospace", "fontsize": size, "va": "top"}
        selected = self.annotator.selected
        graded = any(row.extent for row in rows)
        for i, row in enumerate(rows):
            col, r = divmod(i, per_col)
            x0 = col / n_cols
            yy = 1 - r * line
            weight = "bold" if row.roi_id == selected else "normal"
            head = f"{row.level:<7}{row.label:<7} "
            badge = "" if row.modic_type is None else f"{row.modic_type:<4}"
            if graded and row.modic_type is not None:  # the Udby grade beside the type: "1 C"
                badge = (f"{row.modic_type} {row.extent}" if row.extent else row.modic_type).ljust(6)
            width = int(1 / n_cols / char) - len(head) - len(badge) - 2
            rest = row.ratios
            if row.confidence is not None:
                rest += f"   conf {row.confidence:.2f}"
            if row.note:
                rest += f"   {row.note}"
            if len(rest) > width:
                rest = rest[: max(width - 1, 0)] + "\u2026"
            t1 = ax.text(x0, yy, head, color=THEME["text"], fontweight=weight, **mono)
            if row.modic_type == "?":  # indeterminate: white on its blue, as its ROI label
                box = {"boxstyle": "square,pad=0.05", "facecolor": row.color, "edgecolor": "none"}
                t2 = ax.text(
                    x0 + len(head) * char, yy, "?", color="white", fontweight="bold", bbox=box, **mono
                )
            else:
                t2 = ax.text(x0 + len(head) * char, yy, badge, color=row.color, fontweight="bold", **mono)
            t3 = ax.text(
                x0 + (len(head) + len(badge)) * char,
                yy,
                rest,
                color=THEME["muted"] if row.modic_type in (None, "!") else THEME["text"],
                **mono,
            )
            self._result_artists += [t1, t2, t3]


# ----------------------------------------------------------------------------------------
# ipywidgets (JupyterLab with ipympl)
# ----------------------------------------------------------------------------------------
def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError:
        raise MissingDependencyError(_INSTALL_HINT, extra="notebook") from None
    return ipywidgets


class NotebookControls:
    """ipywidgets controls around an ipympl canvas: :attr:`widget` is what Jupyter displays.

    Raises
    ------
    MissingDependencyError
        If ipywidgets is not installed (``pip install "modic[notebook]"``).
    """

    def __init__(self, annotator: Annotator) -> None:
        W = _ipywidgets()
        self.annotator = annotator
        a = annotator
        self._syncing = False
        self.tool = W.ToggleButtons(
            options=[(t, t) for t in TOOLS],
            value=a.tool,
            tooltips=[
                "select / move / edit (v)",
                "polygon (p)",
                "rectangle (r)",
                "ellipse (e)",
                "freehand (f)",
            ],
            style={"button_width": "92px"},
        )
        self.tool.observe(self._guard(lambda ch: a.set_tool(ch["new"])), names="value")
        self.label = W.Dropdown(
            options=[str(lab) for lab in ALL_LABELS],
            value=str(a.label),
            description="label",
            layout=W.Layout(width="210px"),
        )
        self.label.observe(self._guard(lambda ch: a.set_label(ch["new"])), names="value")
        self.apply = W.Button(description="apply to selected (l)", layout=W.Layout(width="160px"))
        self.apply.on_click(lambda b: a.apply_label())
        self.buttons: dict[str, Any] = {}
        for name, icon, action in (
            ("undo", "undo", a.undo),
            ("redo", "redo", a.redo),
            ("delete", "trash", a.delete_selected),
            ("save", "save", a.save),
            ("reset view", "refresh", a.reset_view),
            ("help", "question", a.toggle_help),
            ("propose (P)", "magic", a.propose),
            ("levels (V)", "list-ol", a.toggle_levels),
        ):
            b = W.Button(description=name, icon=icon, layout=W.Layout(width="auto", min_width="112px"))
            b.on_click(lambda btn, action=action: action())
            self.buttons[name] = b
        self.preset = W.ToggleButtons(options=list(WINDOW_PRESETS), value=None)
        self.preset.observe(self._guard(self._preset_chosen), names="value")
        self.windows: dict[Role, Any] = {}
        for role, pane in a.panes.items():
            lo, hi = float(pane.volume.array.min()), float(pane.volume.array.max())
            s = W.FloatRangeSlider(
                value=pane.window,
                min=lo,
                max=max(hi, lo + 1.0),
                step=max((hi - lo) / 500, 1e-6),
                description=f"{role.value} window",
                readout_format=".0f",
                continuous_update=True,
                layout=W.Layout(width="330px"),
                style={"description_width": "90px"},
            )
            s.observe(self._guard(functools.partial(_set_window, a, role)), names="value")
            self.windows[role] = s
        self.results = W.HTML()
        self.legend = W.HTML()
        self.widget = W.VBox(
            [
                W.HBox([self.tool, self.label, self.apply]),
                W.HBox([*self.buttons.values(), self.preset]),
                a.figure.canvas,
                W.HBox(list(self.windows.values())),
                W.HBox([self.results, self.legend]),
            ]
        )
        self.sync()

    def _preset_chosen(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.annotator.set_window_preset(change["new"])

    def _guard(self, fn: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], None]:
        def call(change: dict[str, Any]) -> None:
            if not self._syncing:
                fn(change)

        return call

    def sync(self) -> None:
        a = self.annotator
        self._syncing = True
        try:
            self.tool.value = a.tool
            self.label.value = str(a.label)
            self.apply.disabled = a.selected is None
            self.buttons["undo"].disabled = not a.can_undo
            self.buttons["redo"].disabled = not a.can_redo
            self.buttons["delete"].disabled = a.selected is None
            self.preset.value = a.window_preset if a.window_preset in WINDOW_PRESETS else None
            for role, s in self.windows.items():
                lo, hi = a.window(role)
                s.value = (max(lo, s.min), min(hi, s.max))
            self.results.value = self._results_html()
            self.legend.value = self._legend_html()
        finally:
            self._syncing = False

    def _results_html(self) -> str:
        rows = result_rows(self.annotator)
        if not rows:
            return "<i>No endplate ROI yet: draw one, and a reference ROI of normal marrow.</i>"
        out = ["<table style='font-family:monospace;font-size:12px'>"]
        out.append(
            "<tr><th align=left>level</th><th align=left>endplate</th><th>type</th>"
            "<th title='Udby height grade: A &lt; 25 %, B 25-50 %, C &gt; 50 % of the body height'>"
            "extent</th>"
            "<th align=left>signal ratio to reference</th><th>conf.</th></tr>"
        )
        for r in rows:
            badge = (
                ""
                if r.modic_type is None
                else (
                    f"<span style='background:{r.color};color:{'white' if r.modic_type == '?' else 'black'};"
                    "padding:0 4px;border-radius:3px'>"
                    f"{html.escape(r.modic_type)}</span>"
                )
            )
            conf = "" if r.confidence is None else f"{r.confidence:.2f}"
            ratios = html.escape(r.ratios) + (f"<br><i>{html.escape(r.note)}</i>" if r.note else "")
            weight = "font-weight:bold;" if r.roi_id == self.annotator.selected else ""
            out.append(
                f"<tr style='{weight}'><td>{html.escape(r.level)}</td><td>{html.escape(r.label)}</td>"
                f"<td align=center>{badge}</td><td align=center>{html.escape(r.extent)}</td>"
                f"<td>{ratios}</td><td>{conf}</td></tr>"
            )
        out.append("</table>")
        return "".join(out)

    def _legend_html(self) -> str:
        a = self.annotator
        items = []
        for name, color, ls, gap in legend_entries(a.show_results, bool(a.overlay_results)):
            style = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dashed"}[ls]
            stripes = f"background:{gap};" if gap else ""  # shows through the dashes' gaps
            items.append(
                f"<div><span style='display:inline-block;width:24px;border-top:3px {style} {color};"
                f"{stripes}vertical-align:middle;margin-right:6px'></span>{html.escape(name)}</div>"
            )
        return (
            "<div style='font-size:12px;margin-left:24px;padding:4px;background:#444;color:#eee'>"
            + "".join(items)
            + "</div>"
        )
