"""The ``modic`` command line: a thin layer over the Python API.

Results go to standard output; diagnostics go to standard error through logging.
Exit codes: 0 success, 1 nothing usable found (or some inputs failed), 2 usage error.

Heavy modules (numpy, pydicom, matplotlib) are imported inside the sub-commands, so
that ``modic --help`` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["main", "build_parser", "command_of", "COMMAND_HELP"]

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2


def _role_override(text: str) -> tuple[str, str]:
    """argparse type for ``SERIES=ROLE``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected SERIES=ROLE (e.g. 5=T2), got {text!r}")
    key, role = text.split("=", 1)
    roles = ("T1", "T2", "STIR", "PD", "localizer", "other")
    if role.strip().casefold() not in {r.casefold() for r in roles}:
        raise argparse.ArgumentTypeError(f"unknown role {role!r} in {text!r}; choose from {', '.join(roles)}")
    return key.strip(), role.strip()


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("series selection (series number, stack key like 7.2, UID or description)")
    g.add_argument("--t1", metavar="SERIES", help="use this series as the sagittal T1")
    g.add_argument("--t2", metavar="SERIES", help="use this series as the sagittal T2")
    g.add_argument(
        "--stir", metavar="SERIES", help="use this series as the sagittal STIR / fat-suppressed T2"
    )
    g.add_argument(
        "--role",
        metavar="SERIES=ROLE",
        action="append",
        type=_role_override,
        default=[],
        help="override the detected role of a series (repeatable), e.g. --role 5=T2",
    )
    g.add_argument("--study", metavar="KEY", help="which study, when the folder holds several (key or UID)")


#: The sub-commands in the order ``modic --help`` lists them, with their line there
#: (``propose`` has none: it is listed only among the choices).
COMMAND_HELP: dict[str, str | None] = {
    "info": "list the studies and series found under a folder, with role, plane and why",
    "classify": "classify the annotated endplates of one study",
    "batch": "classify every annotated study under a folder, in parallel and resumably",
    "annotate": "draw and edit the endplate and reference ROIs of one study in a window",
    "teach": "teaching cases for trainees: author, list, run, grade, summary",
    "report": "write a self-contained HTML (or PDF) report of a study or of a batch output folder",
    "export": "write a study's ROIs and Modic results as DICOM SR and/or SEG",
    "import": "read the ROIs of a DICOM SR (modic, OHIF, 3D Slicer) into an annotation file",
    "propose": None,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``modic`` command.

    Parameters
    ----------
    command : str, optional
        Give only this sub-command its options (and import only its module); the others
        are there with their help line, for ``modic --help`` and the usage errors. What
        :func:`main` does, so that a command starts without building every other one.
        Default: every sub-command complete.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="modic",
        description="Classify Modic changes on lumbar spine MRI studies in DICOM.",
        epilog="Run 'modic COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"modic {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics on stderr")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    builders = {
        "info": _add_info_parser,
        "classify": _add_classify_parser,
        "batch": _add_batch_parser,
        "annotate": _add_annotate_parser,
        "teach": _add_teach_parser,
        "report": _add_report_parser,
        "export": _add_export_parser,
        "import": _add_import_parser,
        "propose": _add_propose_parser,
    }
    for name, help_line in COMMAND_HELP.items():
        if command is None or command == name:
            builders[name](sub)
        elif help_line is None:
            sub.add_parser(name)
        else:
            sub.add_parser(name, help=help_line)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command a command line runs: its first word that is not an option (the
    options before the command take no value); None when that is no command."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMAND_HELP else None
    return None


def _add_info_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    info = sub.add_parser(
        "info",
        help=COMMAND_HELP["info"],
        description=(
            "Scan PATH recursively and list every study and series: role (T1, T2, STIR, PD, "
            "localizer, other) and plane with the evidence for them, matrix, slices, spacing, "
            "TR/TE/TI, warnings, the series picked for Modic reading, and the files skipped and why."
        ),
    )
    info.add_argument(
        "path",
        metavar="PATH",
        help="folder (scanned recursively) or DICOM file, or a DICOMweb server dicomweb+http(s)://... "
        "with --study UID",
    )
    info.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    info.add_argument(
        "--include-identifiers",
        action="store_true",
        help="also show patient name and ID, study date and UIDs (hidden by default)",
    )
    _add_selection_options(info)
    _add_dicomweb_source_options(info)
    info.set_defaults(func=_run_info)


def _add_propose_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .propose import add_propose_parser

    add_propose_parser(sub, _add_selection_options)


def _export_kinds(text: str) -> tuple[str, ...]:
    """argparse type for ``--export sr,seg``."""
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("sr", "seg")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"expected sr, seg or sr,seg, got {text!r}")
    return kinds


def _positive_int(text: str) -> int:
    """argparse type for a count of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_classify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "classify",
        help=COMMAND_HELP["classify"],
        description=(
            "Load the sagittal T1, T2 and STIR series of the study in STUDY, read its annotations "
            "(endplate and reference ROIs) and print the Modic type of every endplate ROI with "
            "its signal intensity ratios (95 % intervals), voxels, the reference used, an "
            "explanation and warnings. ROIs that cannot be measured are listed on stderr (exit 1)."
        ),
    )
    p.add_argument(
        "study_dir",
        metavar="STUDY",
        help="study folder (scanned recursively), or a DICOMweb server dicomweb+http(s)://... with "
        "--study UID (ROIs from --annotations FILE, else from an SR on the server)",
    )
    p.add_argument(
        "--annotations",
        metavar="FILE",
        help="annotation file (default: the sibling file STUDY.modic.json)",
    )
    out_format = p.add_mutually_exclusive_group()
    out_format.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    out_format.add_argument(
        "--csv",
        action="store_true",
        help="the rows of a batch's results.csv on stdout (columns: docs/results.md)",
    )
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="also show patient name and ID and the StudyInstanceUID (hidden by default)",
    )
    p.add_argument(
        "--save-annotations",
        metavar="FILE",
        help="with --labels: write the annotations classified (yours and the derived ROIs) to FILE",
    )
    _add_selection_options(p)
    _add_dicomweb_source_options(p)
    from .labels import add_labels_arguments

    add_labels_arguments(p)
    p.set_defaults(func=_run_classify)


_BATCH_LAYOUT = """\
layout: every annotation file ROOT/**/NAME.modic.json is one job; its study is the
sibling folder NAME/ next to it (the layout 'modic' writes annotations in):

  ROOT/site-a/case7/             DICOM files of one study (any layout inside)
  ROOT/site-a/case7.modic.json   its annotations
  ROOT/case8/  ROOT/case8.modic.json

An annotation file without its study folder is an error (stage "find"); a study
folder without annotation file is not a job. OUTDIR may lie inside ROOT (it is not
searched) but never inside a study folder: input folders are never written to.

outputs in OUTDIR: results.csv (one row per endplate; 'study' is a pseudonymous key),
results.jsonl (the same, with every detail), errors.csv (study, stage, message),
summary.json (counts; no time stamps), levels.csv (by disc level: any change, worst
type) and studies.csv (per study); every column in docs/results.md, read them typed
with modic.read_results(OUTDIR). Patient name and ID, UIDs and folder names
appear only with --include-identifiers (errors.csv names the annotation file to fix).

resuming: finished studies are kept in OUTDIR/.modic-batch/; running the same
command again computes only the studies whose files or options changed (--force:
all). Exit status: 0 all studies classified, 1 some study or ROI failed (or no
annotation file found), 2 usage error.
"""


def _add_batch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .dicomweb import DICOMWEB_EPILOG, add_dicomweb_arguments

    p = sub.add_parser(
        "batch",
        help=COMMAND_HELP["batch"],
        description=(
            "Classify every study under ROOT that has an annotation file, in parallel worker\n"
            "processes (or on a Dask cluster), and write the tables to OUTDIR."
        ),
        epilog=_BATCH_LAYOUT + "\n" + DICOMWEB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "root",
        metavar="ROOT",
        help="folder holding the studies and their NAME.modic.json files, or a DICOMweb server "
        "dicomweb+http(s)://HOST[:PORT]/PATH",
    )
    p.add_argument("-o", "--outdir", metavar="OUTDIR", required=True, help="output folder (created)")
    p.add_argument(
        "--workers",
        metavar="N",
        type=_positive_int,
        help="worker processes (default: the number of CPUs; 1 runs in this process)",
    )
    p.add_argument("--force", action="store_true", help="recompute every study, even those up to date")
    p.add_argument(
        "--propose",
        action="store_true",
        help="also classify study folders without an annotation file, with ROIs proposed from the image "
        "(written to OUTDIR/proposed/, never into ROOT; rows marked roi_origin 'proposed'; docs/propose.md)",
    )
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="add study_folder, study_instance_uid, patient_id and patient_name columns",
    )
    p.add_argument(
        "--header-index",
        metavar="PATH",
        help="keep the scanned DICOM headers in this SQLite file (e.g. OUTDIR/.modic-index.sqlite), so "
        "that studies scanned again parse only new or changed files; it holds the headers' UIDs and "
        "patient data: keep it as private as the images",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on the Dask cluster at ADDRESS (e.g. tcp://host:8786), or 'local' for a new "
        'local cluster; needs the dask extra: pip install "modic[dask]"',
    )
    p.add_argument(
        "--export",
        metavar="KINDS",
        type=_export_kinds,
        default=(),
        help="also write each study's DICOM SR and/or SEG into OUTDIR/dicom/<key>/ (comma-separated: "
        "sr,seg); they carry the patient and study modules of the source images; needs "
        'pip install "modic[export]"',
    )
    add_dicomweb_arguments(p)
    p.set_defaults(func=_run_batch)


def _add_teach_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .teach import add_teach_arguments

    p = sub.add_parser(
        "teach",
        help=COMMAND_HELP["teach"],
        description=(
            "Teaching cases: an expert builds a case (study + answer key) with 'author'; a trainee "
            "reads it blind with 'run' (or has a saved answer graded with 'grade'); 'summary' shows "
            "each trainee's agreement with the keys next to the expert range."
        ),
    )
    add_teach_arguments(p)
    p.set_defaults(func=_run_teach)


def _add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .report import REPORT_EPILOG, add_report_arguments

    p = sub.add_parser(
        "report",
        help=COMMAND_HELP["report"],
        description=(
            "Write one report a clinician can read: what was measured and on which series, the results "
            "in plain words, the figures, the warnings, the software version, and that modic is a "
            "research tool, not a diagnosis."
        ),
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_report_arguments(p)
    _add_selection_options(p)
    p.set_defaults(func=_run_report)


def _add_annotate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .annotate import add_annotate_arguments

    p = sub.add_parser(
        "annotate",
        help=COMMAND_HELP["annotate"],
        description=(
            "Open the annotator on the study in STUDY: sagittal T1, T2 and STIR side by side, linked in "
            "patient space, with polygon / rectangle / ellipse / freehand ROIs, live Modic results and "
            "autosave to the annotation file beside the study folder. Press h in the window for the "
            "shortcuts. Needs a display (Tk, or Qt); --screenshot renders a picture without one."
        ),
    )
    add_annotate_arguments(p)
    _add_selection_options(p)
    p.set_defaults(func=_run_annotate)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("modic: %(levelname)s: %(message)s"))
    root = logging.getLogger("modic")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .export import add_export_arguments

    p = sub.add_parser(
        "export",
        help=COMMAND_HELP["export"],
        description=(
            "Classify the annotated endplates of the study in STUDY and write, into DIR, a DICOM SR "
            "measurement report (--sr: TID 1500, one measurement group per ROI with its polygon, "
            "vertebra, ratios, extent and Modic type, in the form OHIF and 3D Slicer read) and/or a "
            "DICOM SEG "
            "(--seg: one segment per ROI). The DICOM objects carry the patient and study modules of "
            "the source images. See docs/dicom-export.md. Needs the export extra."
        ),
    )
    add_export_arguments(p)
    _add_selection_options(p)
    p.set_defaults(func=_run_export)


def _add_import_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .export import add_import_arguments

    p = sub.add_parser(
        "import",
        help=COMMAND_HELP["import"],
        description=(
            "Read the planar ROIs of the DICOM SR measurement report SR (written by modic export, "
            "OHIF or 3D Slicer) of the study in STUDY, label them from their finding site or label "
            "text ('L4 inferior', 'ref L4'), and write them as a modic annotation file to classify."
        ),
    )
    add_import_arguments(p)
    p.set_defaults(func=_run_import)


def _run_export(args: argparse.Namespace) -> int:
    from .export import run_export

    return run_export(args)


def _run_import(args: argparse.Namespace) -> int:
    from .export import run_import

    return run_import(args)


def _add_dicomweb_source_options(p: argparse.ArgumentParser) -> None:
    from .dicomweb import add_dicomweb_source_arguments

    add_dicomweb_source_arguments(p)


def _run_info(args: argparse.Namespace) -> int:
    from .dicomweb import fetch_study_argument
    from .info import run_info

    # a dicomweb+http(s):// PATH: the --study is fetched (all its series) and listed
    code = fetch_study_argument(args, "path", all_series=True)
    return run_info(args) if code is None else code


def _run_classify(args: argparse.Namespace) -> int:
    from .classify import run_classify
    from .dicomweb import fetch_study_argument

    # a dicomweb+http(s):// STUDY: the --study is fetched (what modic reads) and classified
    chosen = bool(args.t1 or args.t2 or args.stir or args.role)
    code = fetch_study_argument(args, "study_dir", all_series=chosen)
    return run_classify(args) if code is None else code


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch_command

    return run_batch_command(args)


def _run_annotate(args: argparse.Namespace) -> int:
    from .annotate import run_annotate

    return run_annotate(args)


def _run_report(args: argparse.Namespace) -> int:
    from .report import run_report

    return run_report(args)


def _run_teach(args: argparse.Namespace) -> int:
    from .teach import run_teach

    return run_teach(args)


#: Exit status when the reader of our output went away (``modic info | head``): 128 +
#: SIGPIPE, what a shell reports for Unix tools killed by it.
EXIT_CLOSED_PIPE = 141


def _closed_pipe() -> int:
    """End quietly when stdout's reader has closed the pipe (Python docs, "Note on SIGPIPE").

    Further writes, including the interpreter's final flush, go to /dev/null, so no
    ``BrokenPipeError`` traceback follows.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured)
        pass
    finally:
        os.close(devnull)
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``modic`` command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose, args.quiet)
    log = logging.getLogger("modic")
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except FileNotFoundError as exc:
        from .._io import os_error_text

        log.error("%s", os_error_text(exc) if exc.errno is not None else exc)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 -- modic errors become one clear line
        from .._io import os_error_text
        from ..errors import ModicError

        if isinstance(exc, (ModicError, ValueError)):
            log.error("%s", exc)
            return EXIT_NOTHING
        if isinstance(exc, OSError):  # a full disk, a file in the way...: the file and what is wrong
            log.error("%s", os_error_text(exc))
            return EXIT_NOTHING
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
