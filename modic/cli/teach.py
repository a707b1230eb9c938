"""``modic teach``: teaching cases for radiology trainees (see :mod:`modic.teaching`).

Sub-commands::

    modic teach author STUDY -o CASE [--annotations KEYFILE --type L4i=1 ...] [--link]
    modic teach list CASES_DIR [--trainee NAME] [--log-dir D] [--reveal] [--json]
    modic teach run CASES_DIR [--trainee NAME] [--case ID] [--log-dir D]
    modic teach grade CASE --answer ANSWER.json [--trainee NAME] [--log-dir D] [--json]
    modic teach summary [--log-dir D] [--json]

Only argparse is imported at module level, so that ``modic --help`` stays fast.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import Annotations
    from ..teaching import TeachingCase

__all__ = ["add_teach_arguments", "run_teach"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_EPILOG = """\
a case bundle is a folder: CASE/case.json (title, difficulty, tags, history, discussion,
the key's Modic type and Udby extent per endplate, the study folder), CASE/key.json (the
expert's ROIs, modic annotation format) and CASE/study/ (the DICOM) unless case.json
points at a study folder elsewhere. Attempts are logged to LOGDIR/attempts.jsonl and
LOGDIR/attempts.csv; LOGDIR defaults to a per-user data folder: $MODIC_TEACHING_LOG, else
$XDG_DATA_HOME/modic/teaching (~/.local/share/modic/teaching). See docs/teaching.md.
"""


def _label_value(text: str) -> tuple[str, str]:
    """argparse type for ``LABEL=VALUE`` (``L4i=1``, ``"L4 inferior=1/2"``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"expected ENDPLATE=VALUE (e.g. 'L4 inferior=1' or L4i=1), got {text!r}"
        )
    label, value = text.rsplit("=", 1)
    return label.strip(), value.strip()


def add_teach_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``modic teach`` sub-commands to its parser."""
    p.epilog = _EPILOG
    if p.description:
        p.description = textwrap.fill(p.description, 88)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="teach_command", metavar="SUBCOMMAND")

    a = sub.add_parser(
        "author",
        help="build a teaching case from a study and the expert's ROIs and types",
        description=(
            "Build a case bundle CASE from the study in STUDY. With --annotations, from an existing "
            "annotation file and --type options, without asking anything; otherwise the annotator "
            "opens so that you draw the key, then the types and the metadata are asked on the terminal."
        ),
    )
    a.add_argument("study", metavar="STUDY", help="the study's DICOM folder")
    a.add_argument("-o", "--output", metavar="CASE", required=True, help="the case folder to create")
    a.add_argument("--annotations", metavar="KEYFILE", help="the expert's ROIs (a modic annotation file)")
    a.add_argument(
        "--type",
        metavar="ENDPLATE=TYPE",
        action="append",
        type=_label_value,
        default=[],
        help="the key's Modic type of an endplate (repeatable), e.g. --type L4i=1 --type 'S1 superior=1/2'",
    )
    a.add_argument(
        "--extent",
        metavar="ENDPLATE=GRADE",
        action="append",
        type=_label_value,
        default=[],
        help="Udby extent A/B/C of a change (repeatable), e.g. --extent L4i=B",
    )
    a.add_argument(
        "--normal-rest",
        action="store_true",
        help="endplate ROIs given no --type are type 0 (otherwise their type is required)",
    )
    a.add_argument("--id", dest="case_id", metavar="ID", help="case id (default: the name of CASE)")
    a.add_argument("--title", help="case title (required with --annotations)")
    a.add_argument(
        "--difficulty", choices=("beginner", "intermediate", "advanced"), help="default intermediate"
    )
    a.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    a.add_argument("--history", help="clinical history shown before reading")
    a.add_argument("--discussion", help="teaching discussion shown with the key")
    a.add_argument("--author", default=None, help="the expert's name")
    a.add_argument(
        "--link",
        action="store_true",
        help="refer to STUDY by a relative path instead of copying its DICOM files into CASE/study/",
    )
    a.set_defaults(teach_func=_author)

    ls = sub.add_parser(
        "list",
        help="list the teaching cases under a folder",
        description=(
            "List the cases in CASES_DIR, easiest first. A case's title and tags tell its answer, so "
            "they are shown only for cases the trainee has submitted (found in the attempt log), or "
            "for every case with --reveal (for the teacher)."
        ),
    )
    ls.add_argument("cases_dir", metavar="CASES_DIR")
    ls.add_argument(
        "--trainee", metavar="NAME", help="whose attempts reveal titles (default: your login name)"
    )
    ls.add_argument("--log-dir", metavar="D", help="the attempt log folder (default above)")
    ls.add_argument("--reveal", action="store_true", help="show every case's title and tags (spoilers)")
    ls.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    ls.set_defaults(teach_func=_list)

    r = sub.add_parser(
        "run",
        help="read a case as a trainee in the annotator, then get graded and see the key",
        description=(
            "List the cases in CASES_DIR, open one (--case ID, or chosen at the prompt) in the "
            "annotator without the classifier's results; draw your ROIs, give each endplate a type "
            "on the answer sheet and press Submit. The grade is printed, the feedback figure shown "
            "and the key overlaid on the images; the attempt is logged."
        ),
    )
    r.add_argument("cases_dir", metavar="CASES_DIR")
    r.add_argument("--trainee", metavar="NAME", help="your name in the log (default: your login name)")
    r.add_argument("--case", dest="case_id", metavar="ID", help="the case to read")
    r.add_argument("--log-dir", metavar="D", help="where attempts are logged (default above)")
    r.set_defaults(teach_func=_run)

    g = sub.add_parser(
        "grade",
        help="grade a saved answer file against a case, print the feedback and log the attempt",
        description=(
            "Grade ANSWER (format modic-teaching-answer: the committed type per endplate and the "
            "ROIs, see docs/teaching.md) against the key of CASE; print the feedback and log the attempt."
        ),
    )
    g.add_argument("case", metavar="CASE", help="the case folder")
    g.add_argument("--answer", metavar="ANSWER.json", required=True, help="the trainee's answer file")
    g.add_argument("--trainee", metavar="NAME", help="default: the answer's trainee, else your login name")
    g.add_argument("--log-dir", metavar="D", help="where attempts are logged (default above)")
    g.add_argument("--no-log", action="store_true", help="do not log the attempt")
    g.add_argument("--figure", metavar="PNG", help="also write the feedback figure to this file")
    g.add_argument("--json", action="store_true", help="the grade as JSON on stdout")
    g.set_defaults(teach_func=_grade)

    s = sub.add_parser(
        "summary",
        help="per-trainee scores and kappa against the keys, and the cases most often missed",
    )
    s.add_argument("--log-dir", metavar="D", help="the attempt log folder (default above)")
    s.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    s.set_defaults(teach_func=_summary)


def run_teach(args: argparse.Namespace) -> int:
    """Run ``modic teach SUBCOMMAND``; returns the exit code."""
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "teach_func", None)
    if func is None:
        sys.stderr.write(
            "modic teach: choose a sub-command: author, list, run, grade or summary (see --help)\n"
        )
        return EXIT_USAGE
    return func(args)


def _log_dir(args: argparse.Namespace) -> Path:
    from ..teaching.log import default_log_dir

    return Path(args.log_dir) if getattr(args, "log_dir", None) else default_log_dir()


def _trainee(name: str | None, fallback: str = "") -> str:
    if name:
        return name
    if fallback:
        return fallback
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 -- no login name: anonymous
        return "trainee"


def _write(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


# -- author --------------------------------------------------------------------------
def _author(args: argparse.Namespace) -> int:
    from ..annotations import read_annotations
    from ..teaching.case import author_case

    study = Path(args.study)
    if not study.is_dir():
        raise FileNotFoundError(f"{study}: no such study folder")
    types = dict(args.type)
    extents = dict(args.extent)
    if args.annotations:
        if not args.title:
            logger.error("--title is required with --annotations (nothing is asked on the terminal)")
            return EXIT_USAGE
        rois = read_annotations(args.annotations)
    else:
        if not sys.stdin.isatty():
            logger.error(
                "without --annotations, 'modic teach author' opens the annotator and asks questions: "
                "run it in a terminal, or pass --annotations KEYFILE with --type and --title"
            )
            return EXIT_USAGE
        drawn = _draw_key(study, Path(args.output), author=args.author or "")
        if drawn is None:
            logger.error("no endplate ROI was drawn: nothing to build a key from")
            return EXIT_FAILED
        rois = drawn
        for r in rois.endplates():
            if str(r.label) not in {str(_parse(k)) for k in types} and not args.normal_rest:
                types[str(r.label)] = _ask_type(str(r.label))
        if not args.title:
            args.title = _ask("Title: ", Path(args.output).name)
        if not args.difficulty:
            args.difficulty = _ask("Difficulty [beginner, intermediate, advanced]: ", "intermediate")
        if args.history is None:
            args.history = _ask("Clinical history (one line): ", "")
        if args.discussion is None:
            args.discussion = _ask("Teaching discussion (one line): ", "")
    given = {str(_parse(k)) for k in types}
    untyped = [str(r.label) for r in rois.endplates() if str(r.label) not in given]
    if untyped and not args.normal_rest:
        logger.error(
            "no --type for %s: give each endplate ROI of the key a type (--type 'L1 superior=0'), "
            "or pass --normal-rest to make the endplates without --type type 0",
            ", ".join(untyped),
        )
        return EXIT_USAGE
    types.update({label: "0" for label in untyped})
    case = author_case(
        study,
        rois,
        args.output,
        types=types,
        extents=extents,
        case_id=args.case_id,
        title=args.title,
        difficulty=args.difficulty or "intermediate",
        tags=args.tag,
        history=args.history or "",
        discussion=args.discussion or "",
        author=args.author or "",
        link=args.link,
    )
    if not args.annotations:
        _key_draft(Path(args.output)).unlink(missing_ok=True)
    changes = ", ".join(f"{k.label} {k.modic_type.value}" for k in case.changes()) or "no Modic change"
    _write(
        sys.stdout,
        f"Case {case.id} written to {case.path}\n"
        f"  {case.title} ({case.difficulty}); key: {len(case.key)} endplates, {changes}\n"
        f"  study: {case.study_ref}\n",
    )
    return EXIT_OK


def _parse(text: str) -> object:
    from ..teaching.case import parse_endplate

    return parse_endplate(text)


def _ask(prompt: str, default: str) -> str:
    """A line from the terminal; ``default`` when it is empty or there is no terminal."""
    if not sys.stdin.isatty():
        return default
    try:
        answer = input(prompt).strip()
    except EOFError:
        return default
    return answer or default


def _ask_type(label: str) -> str:
    """Ask the Modic type of an endplate until it reads as one (0 without a terminal)."""
    from ..teaching.case import parse_modic_type

    while True:
        text = _ask(f"Modic type of {label} [0, 1, 2, 3, 1/2, 2/3; empty = 0]: ", "0")
        try:
            return parse_modic_type(text).value
        except ValueError as exc:
            _write(sys.stderr, f"{exc}\n")


def _draw_key(study: Path, output: Path, *, author: str) -> Annotations | None:
    """Open the annotator so that the expert draws the key; returns the Annotations (or None)."""
    from ..annotations import annotation_path_for, read_annotations
    from ..study import load_study

    try:
        from ..annotator import Annotator
    except ImportError as exc:  # pragma: no cover - the annotator ships with modic
        raise ImportError(
            f"the annotator is not available ({exc}); pass --annotations KEYFILE instead"
        ) from exc
    import matplotlib.pyplot as plt

    loaded = load_study(study)
    start = annotation_path_for(study)
    draft = _key_draft(output)
    initial = (
        read_annotations(draft) if draft.is_file() else read_annotations(start) if start.is_file() else None
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    _write(sys.stderr, "Draw the key: endplate ROIs and reference marrow; close the window when done.\n")
    ann = Annotator(loaded, initial, path=draft, author=author, show_results=True, autosave=True)
    plt.show()
    rois = ann.annotations
    if not rois.endplates():
        return None
    ann.save()
    return rois


def _key_draft(output: Path) -> Path:
    """Where the key being drawn is autosaved: a hidden file beside the case folder."""
    return output.parent / f".{output.name}.key-draft.json"


# -- list ----------------------------------------------------------------------------
def _best_scores(log_dir: Path, trainee: str, cases: list[TeachingCase]) -> dict[str, float]:
    """The trainee's best score per case id, from the attempt log (former ids count as the
    case's id now)."""
    from ..teaching import SHIPPED_FORMER_IDS, current_ids
    from ..teaching.log import read_attempts

    best: dict[str, float] = {}
    for rec in read_attempts(log_dir, renamed=SHIPPED_FORMER_IDS | current_ids(cases)):
        if rec["trainee"] == trainee:
            best[rec["case"]] = max(best.get(rec["case"], 0.0), float(rec["score"]))
    return best


def _list(args: argparse.Namespace) -> int:
    from ..teaching.case import list_cases

    errors: list[tuple[Path, str]] = []
    cases = list_cases(args.cases_dir, errors=errors)
    best = _best_scores(_log_dir(args), _trainee(args.trainee), cases)
    revealed = {c.id for c in cases} if args.reveal else set(best)
    if args.json:
        doc = {
            "cases": [_case_dict(c, c.id in revealed) for c in cases],
            "errors": [{"folder": str(f), "message": m} for f, m in errors],
        }
        _write(sys.stdout, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        _write(sys.stdout, _case_listing(cases, best, revealed))
        if len(revealed) < len(cases):
            _write(
                sys.stderr,
                "Titles and tags are shown after your first submitted attempt at a case "
                "(they give the answer away); --reveal shows them all.\n",
            )
    if not cases:
        logger.error("no teaching case (a folder with case.json and key.json) under %s", args.cases_dir)
        return EXIT_FAILED
    return EXIT_FAILED if errors else EXIT_OK


def _case_dict(case: TeachingCase, revealed: bool) -> dict[str, object]:
    """A case for ``list --json``: the title and tags only when ``revealed`` (they are spoilers)."""
    doc: dict[str, object] = {"id": case.id, "difficulty": case.difficulty, "revealed": revealed}
    if revealed:
        doc.update(title=case.title, tags=list(case.tags))
    doc.update(endplates=len(case.key), folder=str(case.path))
    return doc


def _case_listing(
    cases: list[TeachingCase], scores: dict[str, float] | None = None, revealed: set[str] | None = None
) -> str:
    """One line per case; the title and tags only for the ids in ``revealed``."""
    lines = []
    for i, c in enumerate(cases, start=1):
        shown = revealed is not None and c.id in revealed
        tags = f"  [{', '.join(c.tags)}]" if c.tags and shown else ""
        title = f"  {c.title}" if shown else ""
        best = f"  best score {scores[c.id]:.0%}" if scores and c.id in scores else ""
        lines.append(f"{i:>2}. {c.id}{title}  ({c.difficulty}, {len(c.key)} endplates){tags}{best}")
    return "\n".join(lines) + ("\n" if lines else "")


# -- run -----------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from ..teaching.case import list_cases

    cases_dir = Path(args.cases_dir)
    log_dir = _log_dir(args)
    _check_log_dir(log_dir, cases_dir)
    trainee = _trainee(args.trainee)
    cases = list_cases(cases_dir, errors=[])
    if not cases:
        logger.error("no teaching case under %s", cases_dir)
        return EXIT_FAILED
    best = _best_scores(log_dir, trainee, cases)
    if args.case_id:
        # a former id (the case was renamed) still finds it; list_cases keeps them all unique
        chosen = [c for c in cases if c.known_as(args.case_id)]
        if not chosen:
            logger.error(
                "no case %r in %s; the cases are:\n%s",
                args.case_id,
                cases_dir,
                _case_listing(cases, best, set(best)),
            )
            return EXIT_USAGE
        case = chosen[0]
    else:
        _write(sys.stdout, _case_listing(cases, best, set(best)))
        if not sys.stdin.isatty():
            logger.error("choose a case with --case ID")
            return EXIT_USAGE
        pick = _ask(f"Case to read [1-{len(cases)}]: ", "")
        if not pick.isdigit() or not 1 <= int(pick) <= len(cases):
            logger.error("no case chosen")
            return EXIT_USAGE
        case = cases[int(pick) - 1]
    return _run_case(case, trainee, log_dir)


def _check_log_dir(log_dir: Path, cases_dir: Path) -> None:
    resolved, cases = log_dir.resolve(), cases_dir.resolve()
    if resolved == cases or cases in resolved.parents:
        raise ValueError(
            f"--log-dir {log_dir} lies inside the case folder {cases_dir}, which is input: choose another"
        )


def _run_case(case: TeachingCase, trainee: str, log_dir: Path) -> int:
    import matplotlib.pyplot as plt

    from ..teaching.session import TeachingSession

    # the title and tags tell the answer: only the id, the difficulty and the history before reading
    _write(sys.stdout, f"\nCase {case.id} ({case.difficulty}, {len(case.key)} endplates)\n")
    if case.history:
        _write(sys.stdout, f"History: {case.history}\n")
    _write(
        sys.stdout,
        "Draw your endplate ROIs (and reference marrow) in the annotator, give every endplate a type "
        "on the answer sheet, then press Submit.\n",
    )
    session = TeachingSession(
        case, trainee, log_dir, on_submit=lambda g: _write(sys.stdout, "\n" + g.to_text())
    )
    session.start()
    plt.show()
    if session.grade is None:
        if session.answer().types and _ask("Submit your answer now? [y/N] ", "n").lower().startswith("y"):
            session.submit()  # prints the grade
            plt.show()  # the feedback figure
        else:
            _write(sys.stdout, "Not submitted: your ROIs and types are kept as a draft for the next run.\n")
            return EXIT_FAILED
    _write(sys.stdout, f"Attempt logged in {log_dir}\n")
    return EXIT_OK


# -- grade ---------------------------------------------------------------------------
def _grade(args: argparse.Namespace) -> int:
    from ..teaching.answer import read_answer
    from ..teaching.case import load_case
    from ..teaching.feedback import feedback_figure
    from ..teaching.grading import grade
    from ..teaching.log import log_attempt

    case = load_case(args.case)
    if not args.no_log and case.path is not None:
        _check_log_dir(_log_dir(args), case.path)
    answer = read_answer(args.answer)
    result = grade(case, answer, trainee=_trainee(args.trainee, answer.trainee))
    if not args.no_log:
        log_dir = _log_dir(args)
        log_attempt(result, log_dir)
        logger.info("attempt logged in %s", log_dir)
    if args.figure:
        fig = feedback_figure(result)
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=110)
    if args.json:
        _write(sys.stdout, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        _write(sys.stdout, result.to_text())
    return EXIT_OK


# -- summary -------------------------------------------------------------------------
def _summary(args: argparse.Namespace) -> int:
    from ..teaching.summary import summary

    log_dir = _log_dir(args)
    s = summary(log_dir)
    s.source = os.fspath(log_dir)
    if args.json:
        _write(sys.stdout, json.dumps(s.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        _write(sys.stdout, s.to_text())
    return EXIT_OK
