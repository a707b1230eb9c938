"""The answer sheet: a small figure where the trainee commits a Modic type per endplate.

One row per endplate of the case's key (head to foot), one column per type; a click on a
cell commits that type (a second click on it clears it). The arrow keys up/down move the
current row and the keys ``0``-``3`` commit a pure type on it and move to the next row.
**Submit** hands the types to the session, which grades them; :meth:`AnswerSheet.reveal`
then shows the key's type, the credit and the Dice of every row. **Close** (before
submitting: the draft is kept) / **Done** (after) hands over to ``on_close``.

Nothing on the sheet tells the answer before it is submitted: the case's title and tags
(which name the changes) appear only with the key; before, the header gives the
difficulty and the number of endplates, and the history.

Built on a plain :class:`matplotlib.figure.Figure` unless a (pyplot) figure is passed, so it
is driven the same way in tests (Agg), notebooks and windows.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..annotations import RoiLabel
from ..criteria import ModicType
from .case import TeachingCase, parse_endplate, parse_modic_type

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import Event
    from matplotlib.figure import Figure
    from matplotlib.widgets import Button

    from .grading import Grade

__all__ = ["AnswerSheet", "TYPE_ORDER", "sheet_size"]

#: The columns of the sheet.
TYPE_ORDER: tuple[ModicType, ...] = (
    ModicType.NONE,
    ModicType.TYPE1,
    ModicType.TYPE2,
    ModicType.TYPE3,
    ModicType.MIXED_1_2,
    ModicType.MIXED_2_3,
)
#: The annotator's palette (Okabe & Ito), so that a type has one colour everywhere.
TYPE_COLOURS: dict[ModicType, str] = {
    ModicType.NONE: "#BBBBBB",
    ModicType.TYPE1: "#D55E00",
    ModicType.MIXED_1_2: "#E69F00",
    ModicType.TYPE2: "#F0E442",
    ModicType.MIXED_2_3: "#009E73",
    ModicType.TYPE3: "#56B4E9",
    ModicType.INDETERMINATE: "#0072B2",  # only ever the classifier's own call, never an answer
}
_BG, _TEXT, _GRID, _CURRENT = "#1E1F22", "#E8EAED", "#5F6368", "#00E5FF"
_LABEL_W = 2.2  # width of the endplate column, in cell units


#: Where the trainee draws, as the instructions say it: ``where`` of :class:`AnswerSheet`.
WHERE_TO_DRAW: dict[str, str] = {
    "window": "In the annotator window (left)",
    "notebook": "Above, in the annotator",
    "": "In the annotator",
}


def sheet_size(n: int) -> tuple[float, float]:
    """The answer sheet's size in inches for ``n`` endplates (small enough to sit beside the annotator)."""
    return 7.5, 2.65 + 0.22 * n


class AnswerSheet:
    """Commit a Modic type per endplate, then submit.

    Parameters
    ----------
    case : TeachingCase
        Its key's endplates are the rows (their types are not shown until :meth:`reveal`).
    types : mapping, optional
        Types already committed (e.g. a draft), ``{"L4 inferior": "1"}``.
    figure : matplotlib Figure, optional
        Drawn into; default a new :class:`matplotlib.figure.Figure`.
    on_change : callable, optional
        Called with the sheet after every change of a type.
    on_submit : callable, optional
        Called with the sheet when Submit is pressed.
    on_close : callable, optional
        Called with the sheet when Close / Done is pressed (without it there is no such button).
    where : {"window", "notebook", ""}
        Where the annotator is, for the instructions (:data:`WHERE_TO_DRAW`).
    notice : str
        A line for the trainee at the top right, e.g. that a draft was resumed.

    Examples
    --------
    >>> from modic.teaching import load_case, shipped_cases_dir
    >>> sheet = AnswerSheet(load_case(shipped_cases_dir() / "case-01"))
    >>> sheet.set_type("L4 inferior", "1")
    >>> {str(k): v.value for k, v in sheet.types.items()}
    {'L4 inferior': '1'}
    """

    def __init__(
        self,
        case: TeachingCase,
        *,
        types: Mapping[Any, Any] | None = None,
        figure: Figure | None = None,
        on_change: Callable[[AnswerSheet], None] | None = None,
        on_submit: Callable[[AnswerSheet], None] | None = None,
        on_close: Callable[[AnswerSheet], None] | None = None,
        where: str = "",
        notice: str = "",
    ) -> None:
        from matplotlib.figure import Figure
        from matplotlib.widgets import Button

        if where not in WHERE_TO_DRAW:
            raise ValueError(f"where must be one of {sorted(WHERE_TO_DRAW)}, got {where!r}")
        self.case = case
        self.on_close = on_close
        self.labels: list[RoiLabel] = list(case.key)
        self.types: dict[RoiLabel, ModicType] = {}
        self.current = 0
        self.on_change = on_change
        self.on_submit = on_submit
        self.grade: Grade | None = None
        for label, value in (types or {}).items():
            lab = parse_endplate(label)
            if lab in self.labels:
                self.types[lab] = parse_modic_type(value)
        n = len(self.labels)
        if figure is None:
            figure = Figure(figsize=sheet_size(n))
        self.figure: Figure = figure
        figure.set_facecolor(_BG)
        height = figure.get_figheight()
        top = 1.0 - 1.65 / height
        bottom = 0.55 / height
        self.ax: Axes = figure.add_axes((0.03, bottom, 0.94, top - bottom))
        self.button_ax: Axes = figure.add_axes((0.74, 0.08 / height, 0.23, 0.36 / height))
        self.button: Button = Button(self.button_ax, "Submit answer", color="#1A73E8", hovercolor="#4285F4")
        self.button.label.set_color(_TEXT)
        self.button.on_clicked(lambda _event: self.submit())
        self.close_button_ax: Axes | None = None
        self.close_button: Button | None = None
        if on_close is not None:
            self.close_button_ax = figure.add_axes((0.56, 0.08 / height, 0.16, 0.36 / height))
            self.close_button = Button(self.close_button_ax, "Close", color="#3C4043", hovercolor="#5F6368")
            self.close_button.label.set_color(_TEXT)
            self.close_button.on_clicked(lambda _event: self.close())
        self._cids = [
            figure.canvas.mpl_connect("button_press_event", self._on_click),
            figure.canvas.mpl_connect("key_press_event", self._on_key),
        ]
        history = textwrap.fill(case.history, 100) if case.history else ""
        # before Submit: nothing that names the changes (the title and tags do)
        self.header = figure.text(
            0.03,
            0.985,
            self._blind_header(),
            color=_TEXT,
            fontsize=9.5,
            va="top",
            ha="left",
            fontweight="bold",
        )
        self.notice = figure.text(0.03, 0.985 - 1.3 / height, notice, color="#FDD663", fontsize=8.5, va="top")
        figure.text(0.03, 0.985 - 0.3 / height, history, color=_TEXT, fontsize=8.5, va="top")
        self.instructions = figure.text(
            0.03,
            0.985 - 0.92 / height,
            f"{WHERE_TO_DRAW[where]}: draw an ROI on every endplate you call abnormal, and on\nreference "
            "marrow. Here: commit a Modic type for every endplate, then press Submit answer.",
            color=_CURRENT,
            fontsize=8.5,
            va="top",
        )
        self.status = figure.text(
            0.03, 0.26 / height, "", color="#BDC1C6", fontsize=8.5, va="center", linespacing=1.4
        )
        self.draw()

    # -- state -----------------------------------------------------------------------
    @property
    def submitted(self) -> bool:
        return self.grade is not None

    def set_type(self, label: RoiLabel | str, modic_type: ModicType | str | None) -> None:
        """Commit (or, with None, clear) the type of one endplate of the key.

        Raises
        ------
        ValueError
            If the endplate is not on the sheet, or after the sheet was submitted.
        """
        lab = parse_endplate(label)
        if lab not in self.labels:
            raise ValueError(f"{lab} is not on the answer sheet of case {self.case.id}")
        if self.submitted:
            raise ValueError("the answer was submitted; start a new attempt to answer again")
        if modic_type is None:
            self.types.pop(lab, None)
        else:
            self.types[lab] = parse_modic_type(modic_type)
        self.current = self.labels.index(lab)
        self.draw()
        if self.on_change is not None:
            self.on_change(self)

    def submit(self) -> None:
        """Hand the answer to ``on_submit`` (once)."""
        if self.submitted:
            return
        if self.on_submit is not None:
            self.on_submit(self)

    def close(self) -> None:
        """Hand over to ``on_close`` (the session closes its windows; a draft is kept)."""
        if self.on_close is not None:
            self.on_close(self)

    def texts(self) -> list[str]:
        """Every text the sheet shows (figure, table, buttons): what a trainee can read on it."""
        out = [t.get_text() for t in self.figure.texts] + [t.get_text() for t in self.ax.texts]
        out.append(self.button.label.get_text())
        if self.close_button is not None:
            out.append(self.close_button.label.get_text())
        return [t for t in out if t]

    def _blind_header(self) -> str:
        n = len(self.labels)
        article = "an" if self.case.difficulty[:1] in "aeiou" else "a"
        return f"Blind read: {article} {self.case.difficulty} case, {n} endplate{'s' if n != 1 else ''}"

    def reveal(self, grade: Grade) -> None:
        """Show the key's type, the credit and the Dice of every row, and the case's title
        and tags; editing ends."""
        self.grade = grade
        self.button.label.set_text(f"Score {grade.score:.0%}")
        self.header.set_text(textwrap.shorten(self.case.title, 92, placeholder=" ..."))
        self.notice.set_text("")
        tags = f"Tags: {', '.join(self.case.tags)}.  " if self.case.tags else ""
        self.instructions.set_text(
            f"{tags}The key is dash-dotted on the annotator's images;\nthe feedback figure shows your ROIs "
            "and the key on every sequence. Done closes the case."
        )
        if self.close_button is not None:
            self.close_button.label.set_text("Done")
        self.draw()

    def disconnect(self) -> None:
        """Stop listening to the figure's events."""
        for cid in self._cids:
            self.figure.canvas.mpl_disconnect(cid)
        self._cids = []

    # -- events ----------------------------------------------------------------------
    def cell_at(self, x: float, y: float) -> tuple[int, ModicType | None] | None:
        """The ``(row, type)`` under a point in the sheet's data coordinates (type None: label column)."""
        row = int(y)
        if not 0 <= row < len(self.labels) or y < 0:
            return None
        if x < _LABEL_W:
            return row, None
        col = int(x - _LABEL_W)
        if not 0 <= col < len(TYPE_ORDER):
            return None
        return row, TYPE_ORDER[col]

    def cell_centre(self, label: RoiLabel | str, modic_type: ModicType | str) -> tuple[float, float]:
        """Data coordinates of the centre of a cell (for tests and scripted clicks)."""
        row = self.labels.index(parse_endplate(label))
        col = TYPE_ORDER.index(parse_modic_type(modic_type))
        return _LABEL_W + col + 0.5, row + 0.5

    def _on_click(self, event: Event) -> None:
        if getattr(event, "inaxes", None) is not self.ax or self.submitted:
            return
        x, y = getattr(event, "xdata", None), getattr(event, "ydata", None)
        if x is None or y is None:
            return
        hit = self.cell_at(float(x), float(y))
        if hit is None:
            return
        row, t = hit
        label = self.labels[row]
        if t is None:
            self.current = row
            self.draw()
            return
        self.set_type(label, None if self.types.get(label) is t else t)

    def _on_key(self, event: Event) -> None:
        key = getattr(event, "key", None)
        if self.submitted or key is None:
            return
        if key == "up":
            self.current = max(0, self.current - 1)
            self.draw()
        elif key == "down":
            self.current = min(len(self.labels) - 1, self.current + 1)
            self.draw()
        elif key in ("0", "1", "2", "3"):
            row = self.current
            self.set_type(self.labels[row], key)
            if row + 1 < len(self.labels):  # on to the next endplate, as a reader goes head to foot
                self.current = row + 1
                self.draw()

    # -- drawing ---------------------------------------------------------------------
    def draw(self) -> None:
        """Redraw the sheet from its state."""
        from matplotlib.patches import Rectangle

        ax = self.ax
        ax.clear()
        ax.set_facecolor(_BG)
        n = len(self.labels)
        extra = 3 if self.grade is not None else 0
        width = _LABEL_W + len(TYPE_ORDER) + extra
        ax.set_xlim(0, width)
        ax.set_ylim(n, -1)
        ax.set_axis_off()
        ax.text(0.1, -0.5, "endplate", color="#9AA0A6", va="center", fontsize=8.5)
        for j, t in enumerate(TYPE_ORDER):
            head = "normal" if t is ModicType.NONE else f"type {t.value}" if j < 4 else t.value
            ax.text(_LABEL_W + j + 0.5, -0.5, head, color=_TEXT, ha="center", va="center", fontsize=8.5)
        if self.grade is not None:
            for j, head in enumerate(("key", "credit", "Dice")):
                x = _LABEL_W + len(TYPE_ORDER) + j + 0.5
                ax.text(x, -0.5, head, color=_TEXT, ha="center", va="center", fontsize=9)
        rows = {r.label: r for r in self.grade.rows} if self.grade is not None else {}
        for i, label in enumerate(self.labels):
            current = i == self.current and self.grade is None
            ax.text(
                0.1,
                i + 0.5,
                str(label),
                color=_CURRENT if current else _TEXT,
                va="center",
                fontsize=9,
                fontweight="bold" if current else "normal",
            )
            chosen = self.types.get(label)
            for j, t in enumerate(TYPE_ORDER):
                on = chosen is t
                ax.add_patch(
                    Rectangle(
                        (_LABEL_W + j + 0.08, i + 0.12),
                        0.84,
                        0.76,
                        facecolor=TYPE_COLOURS[t] if on else "none",
                        edgecolor=TYPE_COLOURS[t] if on else _GRID,
                        linewidth=1.0,
                    )
                )
            row = rows.get(label)
            if row is not None:
                x = _LABEL_W + len(TYPE_ORDER)
                ax.add_patch(
                    Rectangle(
                        (x + 0.08, i + 0.12),
                        0.84,
                        0.76,
                        facecolor=TYPE_COLOURS[row.key_type],
                        edgecolor="none",
                    )
                )
                ax.text(
                    x + 0.5, i + 0.5, row.key_type.value, color="black", ha="center", va="center", fontsize=9
                )
                credit = (
                    "-"
                    if row.missed
                    else f"{row.credit:g}"
                    if row.credit in (0.0, 0.5, 1.0)
                    else f"{row.credit:.2f}"
                )
                colour = "#3CB44B" if row.credit >= 1 else "#FF9F1A" if row.credit > 0 else "#FF3B3B"
                ax.text(x + 1.5, i + 0.5, credit, color=colour, ha="center", va="center", fontsize=9)
                dice = "" if row.dice is None else f"{row.dice:.2f}"
                ax.text(x + 2.5, i + 0.5, dice, color=_TEXT, ha="center", va="center", fontsize=9)
        answered = sum(1 for label in self.labels if label in self.types)
        if self.grade is None:
            self.status.set_text(
                f"{answered} of {n} answered. Click a box to commit that type\n"
                "(again: clear; or keys 0-3 and up/down), then Submit answer."
            )
        else:
            self.status.set_text(
                f"Submitted: score {self.grade.score:.0%}. Key, credit and Dice: right-hand\n"
                "columns; the key is dash-dotted on the images."
            )
        self.figure.canvas.draw_idle()
