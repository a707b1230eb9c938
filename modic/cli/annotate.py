"""``modic annotate``: draw and edit the ROIs of one study in a desktop window.

The window is the same :class:`modic.annotator.Annotator` a notebook shows: T1, T2 and
STIR side by side, live Modic results, autosave to the annotation file beside the study
folder. ``--screenshot OUT.png`` renders the annotator off-screen and exits (for docs,
reports and CI machines without a display).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import atomic_write_bytes, output_error
from ..errors import MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import Annotations, RoiLabel

__all__ = ["run_annotate", "choose_backend"]

logger = logging.getLogger(__name__)

_QT_BINDINGS = ("PyQt6", "PySide6", "PyQt5", "PySide2")


def _has_tk() -> bool:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(preference: str | None = None) -> str:
    """The matplotlib backend for the desktop window: ``"TkAgg"``, else ``"QtAgg"``.

    Parameters
    ----------
    preference : {"tk", "qt"}, optional
        Insist on one toolkit.

    Raises
    ------
    MissingDependencyError
        If there is no display or no GUI toolkit (the message says what to install).
    """
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise MissingDependencyError(
            "no display to open a window on (DISPLAY is not set); run on a desktop, over ssh -X, "
            "under xvfb-run, or render a picture with --screenshot OUT.png"
        )
    tk = _has_tk()
    qt = any(importlib.util.find_spec(name) is not None for name in _QT_BINDINGS)
    if preference == "tk" or (preference is None and tk):
        if not tk:
            raise MissingDependencyError(
                "Tk is not available to this Python: install it (Debian/Ubuntu: apt install python3-tk) "
                "or use --backend qt"
            )
        return "TkAgg"
    if qt:
        return "QtAgg"
    raise MissingDependencyError(
        "no GUI toolkit for the annotator window: install Tk (apt install python3-tk) or Qt "
        "(pip install PySide6); or render a picture with --screenshot OUT.png"
    )


def _label(text: str) -> RoiLabel:
    from ..annotations import RoiLabel

    try:
        return RoiLabel.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_annotate_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``modic annotate`` (the selection options are added by the caller)."""
    p.add_argument("study_dir", metavar="STUDY", help="study folder (scanned recursively)")
    p.add_argument(
        "--annotations",
        metavar="FILE",
        help="annotation file to open and autosave to (default: the sibling file STUDY.modic.json; "
        "created on the first change)",
    )
    p.add_argument(
        "--author", metavar="NAME", default="", help="your name or initials, stored in each new ROI"
    )
    p.add_argument(
        "--hide-results",
        "--trainee",
        dest="hide_results",
        action="store_true",
        help="trainee mode: do not show the Modic type and signal ratios of the ROIs",
    )
    p.add_argument(
        "--no-autosave", action="store_true", help="write the file only on ctrl+s / the save button"
    )
    p.add_argument(
        "--select",
        metavar="LABEL",
        type=_label,
        help="open with this ROI selected and its slice shown, e.g. 'L4 inferior'",
    )
    p.add_argument("--backend", choices=("tk", "qt"), help="GUI toolkit of the window (default: Tk, else Qt)")
    p.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="render the annotator to a picture (PNG, SVG, PDF) without opening a window, and exit",
    )
    from .labels import add_labels_arguments

    add_labels_arguments(p)


def run_annotate(args: argparse.Namespace) -> int:
    """Run ``modic annotate``; returns the exit code."""
    from ..annotations import annotation_path_for, read_annotations
    from ..batch import study_for_annotations
    from ..dicomfolder import scan
    from ..study import load_study, select_study

    study_dir = Path(args.study_dir)
    if not study_dir.is_dir():
        raise FileNotFoundError(f"{study_dir}: no such folder")
    if args.screenshot and _is_within(Path(args.screenshot), study_dir):
        logger.error(
            "%s: the screenshot would be written into the study folder %s; modic never writes into "
            "input folders: choose a file outside it",
            args.screenshot,
            study_dir,
        )
        return 2
    path = Path(args.annotations) if args.annotations else annotation_path_for(study_dir)
    initial: Annotations | None = read_annotations(path) if path.is_file() else None
    if initial is None:
        logger.info("no annotation file at %s yet: it is created on the first change", path)
    result = scan(study_dir, roles=dict(args.role) if args.role else None)
    found = (
        study_for_annotations(result, initial, args.study)
        if initial is not None
        else select_study(result, args.study)
    )
    study = load_study(found, t1=args.t1, t2=args.t2, stir=args.stir)
    initial, derived = _with_derived(args, study, initial, path, study_dir)
    options = {
        "path": path,
        "author": args.author,
        "show_results": not args.hide_results,
        "autosave": not args.no_autosave,
    }
    if args.screenshot:
        from ..annotator import Annotator, offscreen_figure

        out = Path(args.screenshot)

        ann = Annotator(
            study, initial, figure=offscreen_figure((15.5, 8.6)), **{**options, "autosave": False}
        )
        _select(ann, args.select)
        buf = io.BytesIO()
        fmt = out.suffix.lstrip(".").lower() or "png"
        try:
            ann.figure.savefig(buf, format=fmt, facecolor=ann.figure.get_facecolor())
        except ValueError as exc:  # an unknown image format
            logger.error("%s: %s", out, exc)
            return 2
        finally:
            ann.close()
        try:
            atomic_write_bytes(out, buf.getvalue(), make_parents=False)
        except OSError as exc:  # an OutputError or a missing folder: the file and what is wrong
            logger.error("%s", output_error(exc, out, "cannot write the screenshot") if exc.errno else exc)
            return 1
        sys.stdout.write(f"{out}\n")
        return 0
    try:
        backend = choose_backend(args.backend)
    except MissingDependencyError as exc:
        logger.error("%s", exc)
        return 2
    import matplotlib

    matplotlib.use(backend)
    from ..annotator import Annotator

    if derived and initial is not None:
        from ..annotations import write_annotations

        write_annotations(initial, path)
        logger.info("annotations with the derived ROIs written to %s", path)

    ann = Annotator(study, initial, **options)
    _select(ann, args.select)
    logger.info("annotating %s in a %s window; annotations: %s (press h for help)", study_dir, backend, path)
    ann.show()  # blocks until the window is closed (closing with unsaved changes logs a warning)
    return 0


def _with_derived(
    args: argparse.Namespace, study: object, initial: Annotations | None, path: Path, study_dir: Path
) -> tuple[Annotations | None, bool]:
    """``--labels``: the annotations with the derived ROIs merged in, and whether any were
    (the caller writes them to the annotation file when the window opens: beside the study
    folder, never in it; a ``--screenshot`` writes nothing)."""
    from ..study import LoadedStudy
    from .labels import check_outside, derived_annotations

    assert isinstance(study, LoadedStudy)
    merged = derived_annotations(args, study, initial)
    if merged is None:
        return initial, False
    if not args.screenshot:
        check_outside(path, study_dir)
    return merged, True


def _select(ann: object, label: RoiLabel | None) -> None:
    from ..annotator import Annotator

    assert isinstance(ann, Annotator)
    if label is None:
        return
    hits = [r for r in ann.annotations if r.label == label]
    if not hits:
        logger.warning("no %s ROI in the annotations to select", label)
        return
    ann.set_tool("select")
    ann.show_roi(hits[0].id)
    ann.select(hits[0].id)


def _is_within(path: Path, folder: Path) -> bool:
    """``path`` (which need not exist) lies inside ``folder``, links resolved."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
