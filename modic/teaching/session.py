"""A trainee's attempt at one case around the annotator: start -> draw and commit -> submit -> feedback.

In a notebook (JupyterLab with ipympl, ``%matplotlib widget``)::

    from modic.teaching import TeachingSession, load_case, shipped_cases_dir
    session = TeachingSession(load_case(shipped_cases_dir() / "case-01"), "alice")
    session.start()       # the annotator (results hidden) and the answer sheet
    # ... draw ROIs, click a type per endplate, press Submit (or call session.submit())
    print(session.grade.to_text())
    session.feedback      # your ROIs next to the key; the key is also overlaid on the annotator

On the command line, ``modic teach run CASES_DIR`` does the same in windows.

The drawing is autosaved as a draft in ``LOGDIR/drafts/TRAINEE/CASE.rois.json`` (the
annotation format) and the committed types in ``LOGDIR/drafts/TRAINEE/CASE.types.json``,
so an interrupted attempt resumes where it stopped; both are removed on submit. A draft
saved under one of the case's ``former_ids`` is renamed to the case's id when the session
starts (and resumed). Nothing is written into the case folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_text
from .answer import TraineeAnswer
from .case import TeachingCase
from .feedback import feedback_figure, feedback_size
from .grading import Grade, grade
from .log import _check_not_inside, default_log_dir, log_attempt
from .sheet import AnswerSheet, sheet_size

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..annotator import Annotator
    from ..study import LoadedStudy

__all__ = ["TeachingSession"]

logger = logging.getLogger(__name__)


def _offscreen() -> bool:
    """Whether pyplot cannot show windows (Agg, PDF ..., Jupyter's inline)."""
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        return backend in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE) or "inline" in backend
    except ImportError:  # pragma: no cover - matplotlib < 3.9
        return backend in ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template") or "inline" in backend


def _new_figure(figsize: tuple[float, float], title: str, dpi: float | None = None) -> Figure:
    """A pyplot figure (a window, or an ipympl canvas), or an off-screen Agg figure.

    ``dpi`` (windows only) scales a window to the screen with the figure's layout kept.
    """
    if _offscreen():
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig
    import matplotlib.pyplot as plt

    with plt.ioff(), plt.rc_context({"toolbar": "None"}):  # pan/zoom buttons would only confuse
        fig = plt.figure(figsize=figsize, dpi=dpi)
    canvas: Any = fig.canvas
    if type(canvas).__module__.startswith("ipympl"):
        # ipympl draws its toolbar over the top-left corner of the figure (the sheet's title)
        # and a "Figure N" header above it: neither is wanted on the sheet or the feedback
        canvas.header_visible = False
        canvas.toolbar_visible = False
        canvas.footer_visible = False
        canvas.resizable = False
    manager = fig.canvas.manager
    if manager is not None:
        manager.set_window_title(title)
    return fig


def _where(fig: Figure) -> str:
    """Where the annotator is, as the sheet's instructions say it (see ``WHERE_TO_DRAW``)."""
    if type(fig.canvas).__module__.startswith("ipympl"):
        return "notebook"
    return "window" if getattr(fig.canvas.manager, "window", None) is not None else ""


#: Share of the screen's width the right-hand column may take: the answer sheet while
#: reading, the sheet and the feedback after Submit (the annotator is then only looked at).
_COLUMN = 0.40
_FEEDBACK_COLUMN = 0.55
_GAP = 6  # pixels between windows
_TITLE_BAR = 32  # pixels a window manager may add above each window


def _tk_window(fig: Figure | None) -> Any:
    window: Any = getattr(getattr(fig, "canvas", None), "manager", None)
    window = getattr(window, "window", None)
    return window if hasattr(window, "winfo_screenwidth") else None


def _screen(fig: Figure) -> tuple[int, int] | None:
    """The screen size in pixels of a Tk window's screen, or None (not a Tk window)."""
    window = _tk_window(fig)
    if window is None:
        return None
    try:
        return int(window.winfo_screenwidth()), int(window.winfo_screenheight())
    except Exception as exc:  # noqa: BLE001 -- no screen to ask: leave sizes alone
        logger.debug("cannot read the screen size: %s", exc)
        return None


def _fitting_dpi(figsize: tuple[float, float], width: float, height: float) -> float:
    """Dots per inch (at most matplotlib's default) at which ``figsize`` fits ``width`` x ``height`` px."""
    import matplotlib

    default = float(matplotlib.rcParams["figure.dpi"])
    return max(40.0, min(default, width / figsize[0], height / figsize[1]))


def _column(screen: tuple[int, int], submitted: bool) -> int:
    """Width in pixels of the right-hand column: the sheet's, and after Submit room for the feedback."""
    return int((_FEEDBACK_COLUMN if submitted else _COLUMN) * screen[0])


def _arrange_windows(annotator: Figure, sheet: Figure, feedback: Figure | None = None) -> None:
    """Tile the Tk windows on the screen: the annotator on the left, the answer sheet at the
    top of a right-hand column and the feedback below it, none on top of another.

    The annotator's window is narrowed to leave the column free (its panes follow the
    window); the sheet and the feedback were made at dots per inch that fit the column
    (:func:`_fitting_dpi`). Qt, ipympl and other canvases are left to their window manager.
    """
    window = _tk_window(sheet)
    screen = _screen(sheet)
    if window is None or screen is None:
        return
    sw, sh = screen
    try:
        column = max(_column(screen, feedback is not None), int(sheet.get_figwidth() * sheet.dpi))
        w, h = (int(v) for v in sheet.get_size_inches() * sheet.dpi)
        left = sw - column  # the column's left edge: the windows line up beside the annotator
        window.wm_geometry(f"{w}x{h}+{left}+0")
        ann = _tk_window(annotator)
        if ann is not None:
            ann.wm_geometry(f"{max(400, sw - column - _GAP)}x{max(300, sh - _TITLE_BAR)}+0+0")
        fb = _tk_window(feedback)
        if feedback is not None and fb is not None:
            fw, fh = (int(v) for v in feedback.get_size_inches() * feedback.dpi)
            fb.wm_geometry(f"{fw}x{fh}+{left}+{h + _GAP + _TITLE_BAR}")
    except Exception as exc:  # noqa: BLE001 -- a window we cannot place stays where it is
        logger.debug("cannot arrange the teaching windows: %s", exc)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "trainee"


class TeachingSession:
    """One trainee reading one case, in the annotator with the classifier's results hidden.

    Parameters
    ----------
    case : TeachingCase
    trainee : str
        The name the attempt is logged under.
    log_dir : path-like, optional
        Where the attempt is logged and the drafts kept (default
        :func:`~modic.teaching.default_log_dir`); never inside the case folder.
    study : LoadedStudy, optional
        The case's study, if already loaded.
    on_submit : callable, optional
        Called with the :class:`~modic.teaching.Grade` after a submission (the command line
        prints it).

    Attributes
    ----------
    annotator : Annotator or None
        After :meth:`start`.
    sheet : AnswerSheet or None
        After :meth:`start`.
    grade : Grade or None
        After :meth:`submit`.
    feedback : Figure or None
        The feedback figure, after :meth:`submit`.
    resumed : str
        After :meth:`start`: "Resumed your draft of <time>: N ROIs, M types" when a draft
        was resumed (also shown on the sheet and logged), else "".
    """

    def __init__(
        self,
        case: TeachingCase,
        trainee: str,
        log_dir: str | os.PathLike[str] | None = None,
        *,
        study: LoadedStudy | None = None,
        on_submit: Callable[[Grade], None] | None = None,
    ) -> None:
        if not isinstance(case, TeachingCase):
            raise TypeError(f"case must be a TeachingCase (from load_case), got {type(case).__name__}")
        if not isinstance(trainee, str) or not trainee.strip():
            raise ValueError("trainee must be a non-empty name (it names the attempts in the log)")
        self.case = case
        self.trainee = trainee.strip()
        self.log_dir = Path(log_dir) if log_dir is not None else default_log_dir()
        if case.path is not None:
            _check_not_inside(self.log_dir, [case.path])
        self.study = study
        self.on_submit = on_submit
        self.annotator: Annotator | None = None
        self.sheet: AnswerSheet | None = None
        self.grade: Grade | None = None
        self.feedback: Figure | None = None
        self.resumed = ""

    # -- files -----------------------------------------------------------------------
    @property
    def draft_paths(self) -> tuple[Path, Path]:
        """``(ROIs, types)`` draft files of this trainee and case."""
        folder = self.log_dir / "drafts" / _safe(self.trainee)
        return folder / f"{self.case.id}.rois.json", folder / f"{self.case.id}.types.json"

    def _adopt_former_draft(self) -> None:
        """Rename a draft saved under a former id of the case (before it was renamed) to
        :attr:`draft_paths`, when there is no draft under the case's id; kept as it is."""
        if any(p.is_file() for p in self.draft_paths):
            return
        folder = self.draft_paths[0].parent
        for old in self.case.former_ids:
            found = [(folder / f"{old}{p.name[len(self.case.id) :]}", p) for p in self.draft_paths]
            found = [(src, dst) for src, dst in found if src.is_file()]
            if found:
                for src, dst in found:
                    os.replace(src, dst)
                logger.info("case %s was called %s: its draft in %s is renamed", self.case.id, old, folder)
                return

    def _save_types(self, sheet: AnswerSheet) -> None:
        types_path = self.draft_paths[1]
        doc = {str(k): v.value for k, v in sheet.types.items()}
        atomic_write_text(types_path, json.dumps(doc, indent=2) + "\n")

    def _draft_types(self) -> dict[str, Any]:
        path = self.draft_paths[1]
        if not path.is_file():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("%s: cannot read the draft types (%s); starting afresh", path, exc)
            return {}
        return doc if isinstance(doc, dict) else {}

    # -- the flow --------------------------------------------------------------------
    def start(self) -> TeachingSession:
        """Open the annotator (results hidden) and the answer sheet; resume a draft if there is one.

        Returns the session (so that a notebook cell ``TeachingSession(...).start()`` shows it).
        """
        from ..annotator import Annotator

        if self.annotator is not None:
            return self
        if self.study is None:
            self.study = self.case.load_study()
        rois_path, types_path = self.draft_paths
        rois_path.parent.mkdir(parents=True, exist_ok=True)
        self._adopt_former_draft()
        drafts = [p for p in (rois_path, types_path) if p.is_file()]
        self.annotator = Annotator(
            self.study,
            None,
            path=rois_path,
            author=self.trainee,
            show_results=False,
            autosave=True,
        )
        types = self._draft_types()
        self.resumed = ""
        if drafts:
            when = max(p.stat().st_mtime for p in drafts)
            stamp = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            n_rois, n_types = len(self.annotator.annotations), len(types)
            self.resumed = (
                f"Resumed your draft of {stamp}: {n_rois} ROI{'s' if n_rois != 1 else ''}, "
                f"{n_types} type{'s' if n_types != 1 else ''}"
            )
            logger.info("%s (%s)", self.resumed, rois_path.parent)
        n = len(self.case.key)
        # the window title is on screen before the blind read: no title, tags or case id
        size = sheet_size(n)
        screen = _screen(self.annotator.figure)
        dpi = None if screen is None else _fitting_dpi(size, _column(screen, False), 0.45 * screen[1])
        fig = _new_figure(size, "modic teach - answer sheet", dpi)
        self.sheet = AnswerSheet(
            self.case,
            types=types,
            figure=fig,
            on_change=self._save_types,
            on_submit=lambda _sheet: self._submit_from_sheet(),
            on_close=lambda _sheet: self.close(),
            where=_where(self.annotator.figure),
            notice=self.resumed,
        )
        _arrange_windows(self.annotator.figure, fig)
        return self

    def set_type(self, endplate: str, modic_type: str | None) -> None:
        """Commit (None: clear) the type of an endplate, as a click on the answer sheet does."""
        self._started().set_type(endplate, modic_type)

    def answer(self) -> TraineeAnswer:
        """The answer as it stands: the annotator's ROIs and the sheet's types."""
        sheet = self._started()
        assert self.annotator is not None
        return TraineeAnswer(
            self.annotator.annotations, types=dict(sheet.types), trainee=self.trainee, case_id=self.case.id
        )

    def submit(self) -> Grade:
        """Grade the answer, log the attempt, reveal the key and draw the feedback.

        After submitting: the key's ROIs are overlaid on the annotator (dash-dotted) and the
        classifier's results are shown on every ROI; the sheet shows the key's types, the
        credits and the Dice; :attr:`feedback` holds the feedback figure. The drafts are
        removed. Submitting twice returns the first grade.
        """
        if self.grade is not None:
            return self.grade
        answer = self.answer()
        assert self.annotator is not None and self.sheet is not None
        result = grade(self.case, answer, self.study, trainee=self.trainee)
        log_attempt(result, self.log_dir)
        self.grade = result
        self.annotator.overlay(self.case.rois, style="key")
        self.annotator.show_results = True
        self.sheet.reveal(result)
        size = feedback_size(result, self.study)
        screen = _screen(self.annotator.figure)
        dpi = None
        if screen is not None:  # below the sheet, in the right-hand column
            room = (
                screen[1] - self.sheet.figure.get_figheight() * self.sheet.figure.dpi - 2 * _TITLE_BAR - _GAP
            )
            dpi = _fitting_dpi(size, _column(screen, True), room)
        fig = _new_figure(size, f"modic teach - feedback - {self.case.id}", dpi)
        self.feedback = feedback_figure(result, study=self.study, figure=fig)
        _arrange_windows(self.annotator.figure, self.sheet.figure, self.feedback)
        for path in self.draft_paths:
            path.unlink(missing_ok=True)
        logger.info("case %s: %s scored %.0f%%", self.case.id, self.trainee, 100 * result.score)
        if self.on_submit is not None:
            self.on_submit(result)
        if self.feedback.canvas.manager is not None and not _offscreen():
            self.feedback.show()
        return result

    def _submit_from_sheet(self) -> None:
        try:
            self.submit()
        except Exception as exc:  # noqa: BLE001 -- a button callback must not kill the window
            logger.error("submitting failed: %s", exc)

    def show(self) -> None:
        """Show the annotator and the answer sheet (a notebook displays them; a desktop opens windows)."""
        sheet = self._started()
        assert self.annotator is not None
        if self.annotator.widget is not None:
            from IPython.display import display

            display(self.annotator.widget)
            display(sheet.figure.canvas)
            return
        import matplotlib.pyplot as plt

        plt.show(block=True)

    def close(self) -> None:
        """Close the annotator's, the sheet's and the feedback's figures (the Close / Done
        button). Before submitting, the drawing and the types stay as a draft."""
        if self.annotator is not None:
            self.annotator.close()
        import matplotlib.pyplot as plt

        for fig in (self.sheet.figure if self.sheet else None, self.feedback):
            if fig is not None:
                plt.close(fig)

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a Jupyter front end
        self.show()

    def _started(self) -> AnswerSheet:
        if self.sheet is None:
            raise RuntimeError("call start() first")
        return self.sheet
