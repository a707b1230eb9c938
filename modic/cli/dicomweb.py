"""``modic batch dicomweb+http(s)://...``: the batch over a DICOMweb server's studies.

The options are added to ``modic batch`` by :func:`add_dicomweb_arguments`; they are
refused with a local ROOT. See :mod:`modic.dicomweb` and ``docs/dicomweb.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = [
    "add_dicomweb_arguments",
    "dicomweb_options_given",
    "run_dicomweb_batch_command",
    "DICOMWEB_EPILOG",
]

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
_OPTIONS = ("study", "studies", "annotations", "cache", "dicomweb_config", "store")

DICOMWEB_EPILOG = """\
a DICOMweb server as ROOT: dicomweb+http://HOST[:PORT]/PATH (or dicomweb+https://):
the studies named with --study/--studies, else every study an annotation file under
--annotations DIR names (matched by the StudyInstanceUID in the file), are fetched
into the cache (QIDO-RS, WADO-RS; only sagittal MR series that are not localizers;
reused on reruns, resumed after an interruption) and classified as local folders.
A study without annotation file takes its ROIs from the newest SR on the server that
holds ROIs (modic's own, OHIF, 3D Slicer). --export sr,seg --store sends each study's
SR and SEG back (STOW-RS). Credentials: MODIC_DICOMWEB_USER and MODIC_DICOMWEB_PASSWORD
(or MODIC_DICOMWEB_TOKEN), or a config file (--dicomweb-config, default
~/.config/modic/dicomweb.ini) with a section [http://HOST:PORT/PATH] holding
user = / password = (or token =); never in the address. See docs/dicomweb.md.
"""


def _uid(text: str) -> str:
    """argparse type for a StudyInstanceUID."""
    from ..dicomweb.server import check_uid
    from ..errors import DicomwebError

    try:
        return check_uid(text.strip(), "StudyInstanceUID")
    except DicomwebError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_dicomweb_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``modic batch`` for a DICOMweb ROOT."""
    g = p.add_argument_group("DICOMweb server as ROOT (dicomweb+http(s)://HOST[:PORT]/PATH)")
    g.add_argument(
        "--study",
        metavar="UID",
        action="append",
        type=_uid,
        default=[],
        help="StudyInstanceUID of a study to process (repeatable)",
    )
    g.add_argument(
        "--studies", metavar="FILE", help="text file of StudyInstanceUIDs, one per line (# comments)"
    )
    g.add_argument(
        "--annotations",
        metavar="DIR",
        help="folder (searched recursively) or file of NAME.modic.json annotations, matched to the "
        "studies by their StudyInstanceUID",
    )
    g.add_argument(
        "--cache",
        metavar="DIR",
        help="where fetched studies are kept and reused (default ~/.cache/modic/dicomweb)",
    )
    g.add_argument(
        "--dicomweb-config",
        metavar="FILE",
        help="INI file with the server's credentials (default $MODIC_DICOMWEB_CONFIG, else "
        "~/.config/modic/dicomweb.ini)",
    )
    g.add_argument(
        "--store",
        action="store_true",
        help="store the DICOM objects written to OUTDIR for these studies (the exported SR / SEG) "
        "back on the server (STOW-RS); listed in OUTDIR/stored.csv",
    )


def dicomweb_options_given(args: argparse.Namespace) -> list[str]:
    """The DICOMweb options given on the command line (as ``--name``)."""
    return [f"--{name.replace('_', '-')}" for name in _OPTIONS if getattr(args, name, None)]


def run_dicomweb_batch_command(args: argparse.Namespace) -> int:
    """Run ``modic batch dicomweb+http(s)://...``; returns the exit code."""
    from ..batch import OutputFolderError
    from ..dicomweb import STORE_REPORT, DicomwebError, parse_address, read_study_list, run_dicomweb_batch
    from .batch import ProgressBar, format_summary

    try:
        parse_address(args.root)
    except DicomwebError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    if not args.quiet and args.verbose == 0:
        for name in ("modic.batch", "modic.dicomweb"):
            logging.getLogger(name).setLevel(logging.INFO)
    studies = list(args.study)
    if args.studies:
        studies += read_study_list(args.studies)
    bar = ProgressBar(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    # options of modic batch itself that run_batch takes (--export sr,seg)
    extra: dict[str, Any] = {"export": tuple(args.export)} if getattr(args, "export", None) else {}
    try:
        run = run_dicomweb_batch(
            args.root,
            args.outdir,
            studies=studies,
            annotations=args.annotations,
            cache=args.cache,
            config=args.dicomweb_config,
            workers=args.workers,
            force=args.force,
            include_identifiers=args.include_identifiers,
            dask_address=args.dask,
            progress=bar,
            store=args.store,
            **extra,
        )
    except OutputFolderError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    summary = run.summary
    logging.getLogger("modic.dicomweb").info(
        "from %s: %d instances downloaded, %d reused from the cache (%s requests)",
        parse_address(args.root),
        run.downloaded,
        run.cached,
        ", ".join(f"{n} {kind}" for kind, n in run.requests.items() if n) or "no",
    )
    sys.stdout.write(format_summary(summary))
    if args.store:
        ok = sum(1 for s in run.stored if s.ok)
        failed = len(run.stored) - ok
        sys.stdout.write(
            f"stored on {parse_address(args.root)}: {ok} DICOM object{'s' if ok != 1 else ''}"
            + (f", {failed} failed" if failed else "")
            + (f" ({STORE_REPORT})\n" if run.stored else "\n")
        )
    return 0 if run.ok else 1


# -- modic info / modic classify on a server's study -----------------------------------------


def add_dicomweb_source_arguments(p: argparse.ArgumentParser) -> None:
    """``--cache`` and ``--dicomweb-config`` for a command that reads one study (info, classify)."""
    g = p.add_argument_group("DICOMweb server as the study (dicomweb+http(s)://HOST[:PORT]/PATH --study UID)")
    g.add_argument(
        "--cache",
        metavar="DIR",
        help="where fetched studies are kept and reused (default ~/.cache/modic/dicomweb)",
    )
    g.add_argument(
        "--dicomweb-config",
        metavar="FILE",
        help="INI file with the server's credentials (default ~/.config/modic/dicomweb.ini)",
    )


def fetch_study_argument(args: argparse.Namespace, attr: str, *, all_series: bool) -> int | None:
    """Replace a ``dicomweb+http(s)://`` address in ``args.<attr>`` by the fetched study's folder.

    The study is the one ``--study UID`` names. A command with ``--annotations`` not
    given (classify) takes the ROIs from the newest SR on the server that holds some
    (:func:`modic.dicomweb.annotations.annotations_from_sr`). Returns an exit code when
    the command cannot go on (the error is logged), else None (``args`` now names a
    local folder, or named one already).
    """
    from ..dicomweb import DicomwebError, DicomwebServer, StudyCache, check_uid, is_dicomweb_address, redact

    address = getattr(args, attr)
    if str(address).lower().startswith(("http://", "https://")):
        shown = redact(str(address))  # never repeat a password typed into it
        logger.error("%s: a DICOMweb server is written dicomweb+%s", shown, shown)
        return EXIT_USAGE
    if not is_dicomweb_address(address):
        if getattr(args, "cache", None) or getattr(args, "dicomweb_config", None):
            logger.error("--cache and --dicomweb-config: only with a DICOMweb address (dicomweb+http://...)")
            return EXIT_USAGE
        return None
    if not args.study:
        logger.error("a DICOMweb address needs --study UID (the StudyInstanceUID of the study to read)")
        return EXIT_USAGE
    try:
        uid = check_uid(args.study, "--study")
        server = DicomwebServer(address, config=args.dicomweb_config)
    except DicomwebError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    cache = StudyCache() if args.cache is None else StudyCache(args.cache)
    if not args.quiet:
        logging.getLogger("modic.dicomweb").setLevel(min(logging.INFO, logging.getLogger("modic").level))
    try:
        fetched = cache.fetch(server, uid, all_series=all_series)
        if hasattr(args, "annotations") and not args.annotations:
            from ..dicomweb.annotations import annotations_from_sr
            from ..dicomweb.batch import SR_ANNOTATIONS

            reports = [s for s, _ in fetched.fetched + fetched.skipped if s.modality.upper() == "SR"]
            found, why = annotations_from_sr(server, fetched, reports, cache.folder / SR_ANNOTATIONS)
            if found is None:
                logger.error("%s: give the ROIs drawn on it with --annotations FILE", why)
                return 1
            args.annotations = str(found)
    except DicomwebError as exc:
        logger.error("%s", exc)
        return 1
    setattr(args, attr, str(fetched.path))
    return None
