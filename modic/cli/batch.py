"""``modic batch``: classify every annotated study under a folder (see :mod:`modic.batch`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..batch import BatchProgress, BatchSummary, OutputFolderError, run_batch

__all__ = ["run_batch_command", "ProgressBar", "format_summary"]

logger = logging.getLogger(__name__)

EXIT_USAGE = 2


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn in place with ``\\r``, with the rate
    (studies per minute) and the time left.

    Failures are written whole, on their own lines above the bar, so they stay visible.

    Parameters
    ----------
    stream : text stream
        A terminal (usually ``sys.stderr``).
    width : int
        Characters of the bar itself.
    clock : callable, optional
        Seconds, monotonic (default :func:`time.monotonic`); the rate and the time left
        are measured from the bar's creation.
    """

    def __init__(self, stream: TextIO, width: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.width = width
        self.failed = 0
        self._clock = clock
        self._start = clock()
        self._drawn = False

    def __call__(self, p: BatchProgress) -> None:
        if not p.ok:
            self.failed += 1
            self._clear()
            self.stream.write(f"modic: WARNING: {p.text()}\n")
        filled = self.width * p.done // max(p.total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r\033[Kmodic: [{bar}] {p.done}/{p.total} studies{failed}{self._pace(p)}")
        self.stream.flush()
        self._drawn = True

    def _pace(self, p: BatchProgress) -> str:
        """``", 42.0/min, 1:05 left, 0:30 elapsed"`` once a study is done."""
        elapsed = self._clock() - self._start
        if p.done <= 0 or elapsed <= 0:
            return ""
        rate = p.done / elapsed
        left = (p.total - p.done) / rate
        tail = f", {_clock_text(left)} left" if p.done < p.total else ""
        return f", {rate * 60:.1f}/min{tail}, {_clock_text(elapsed)} elapsed"

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _clock_text(seconds: float) -> str:
    """``"1:05"``, ``"1:02:03"``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_summary(summary: BatchSummary) -> str:
    """The final report on stdout: studies ok/failed, endplates per type, the files."""
    s = summary
    studies = f"{s.n_ok} stud{'y' if s.n_ok == 1 else 'ies'} classified, {s.n_failed} failed"
    if s.n_roi_errors:
        studies += f", {s.n_roi_errors} ROI{'s' if s.n_roi_errors != 1 else ''} not measurable"
    done = f"({s.n_computed} computed, {s.n_up_to_date} up to date)"
    types = ", ".join(
        f"indeterminate: {n}" if t == "indeterminate" else f"type {t}: {n}" for t, n in s.type_counts.items()
    )
    width = max(len(k) for k in s.paths) + 1
    lines = [
        f"{studies} {done} in {_clock_text(s.elapsed_s)}",
        f"{s.n_endplates} endplate{'s' if s.n_endplates != 1 else ''}: {types}",
        *(f"{k + ':':<{width}} {p}" for k, p in s.paths.items()),
    ]
    return "\n".join(lines) + "\n"


def run_batch_command(args: argparse.Namespace) -> int:
    """Run ``modic batch``; returns the exit code."""
    from .dicomweb import dicomweb_options_given, run_dicomweb_batch_command

    # the modic.dicomweb package (and what it imports) only for a root that may be a
    # server: a re-run over a folder imports nothing it does not need
    root_text = str(args.root).lower()
    if root_text.startswith("dicomweb+"):
        from ..dicomweb.address import is_dicomweb_address

        if is_dicomweb_address(args.root):
            return run_dicomweb_batch_command(args)
    if root_text.startswith(("http://", "https://")):
        from ..dicomweb.address import redact

        shown = redact(args.root)
        logger.error("%s: a DICOMweb server is written dicomweb+%s", shown, shown)
        return EXIT_USAGE
    given = dicomweb_options_given(args)
    if given:
        logger.error("%s: only with a DICOMweb ROOT (dicomweb+http://HOST[:PORT]/PATH)", ", ".join(given))
        return EXIT_USAGE
    if not args.quiet and args.verbose == 0:
        # the per-study lines are the command's progress: shown unless -q
        logging.getLogger("modic.batch").setLevel(logging.INFO)
    bar = ProgressBar(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    try:
        summary = run_batch(
            args.root,
            args.outdir,
            workers=args.workers,
            force=args.force,
            include_identifiers=args.include_identifiers,
            dask_address=args.dask,
            progress=bar,
            export=getattr(args, "export", ()),
            propose=getattr(args, "propose", False),
            header_index=getattr(args, "header_index", None),
        )
    except OutputFolderError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    sys.stdout.write(format_summary(summary))
    if summary.n_jobs == 0:
        logger.error(
            "no annotation files (NAME.modic.json beside a study folder NAME/) under %s; "
            "see 'modic batch --help' for the layout",
            os.fspath(args.root),
        )
        return 1
    return 0 if summary.ok else 1
