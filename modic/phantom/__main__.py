"""``python -m modic.phantom OUT_DIR``: write one synthetic study with known Modic changes.

Example::

    python -m modic.phantom /tmp/case7 --seed 7 --vendor ge --field 3 \\
        --lesion L4:inferior:1 --lesion L5:superior:2/3 --snr 15 --annotations

writes ``/tmp/case7/`` (DICOM) and, beside it, ``/tmp/case7.truth.json`` and (with
``--annotations``) ``/tmp/case7.modic.json``. A cohort in one call::

    python -m modic.phantom /tmp/cohort --count 200 --seed 1000 --small --annotations

writes ``/tmp/cohort/study_001000/`` ... ``study_001199/``, one seed per study (seed, seed +
1, ...), each with its truth and annotation files beside it, as ``modic batch`` expects.
The project's sample data set is written by ``python -m modic.data``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .spec import MODIC_TYPES, LesionSpec, default_study_spec, small_series
from .study import write_study


def _lesion(text: str) -> LesionSpec:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"expected VERTEBRA:ENDPLATE:TYPE (e.g. L4:inferior:1), got {text!r}"
        )
    try:
        return LesionSpec(parts[0], parts[1], parts[2])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Write one phantom study; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m modic.phantom",
        description="Write a synthetic lumbar spine MRI study (DICOM) with known Modic changes.",
    )
    p.add_argument(
        "out_dir",
        type=Path,
        help="study folder to create (with --count: the cohort's folder); must be empty or absent",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (anatomy, noise, UIDs); default 0")
    p.add_argument(
        "--count",
        type=_positive,
        metavar="N",
        help="write N studies into OUT_DIR/study_<seed>/, seeds SEED, SEED+1, ... (a cohort in one call)",
    )
    p.add_argument("--vendor", choices=("siemens", "ge", "philips"), default="siemens")
    p.add_argument("--field", type=float, choices=(1.5, 3.0), default=1.5, help="field strength in tesla")
    p.add_argument("--snr", type=float, default=25.0, help="marrow SNR on the T1 (default 25)")
    p.add_argument(
        "--lesion",
        type=_lesion,
        action="append",
        default=[],
        metavar="V:E:T",
        help=f"a Modic change, e.g. L4:inferior:1 (types {', '.join(MODIC_TYPES)}); repeatable",
    )
    p.add_argument("--small", action="store_true", help="small matrices (as the sample data)")
    p.add_argument(
        "--annotations", action="store_true", help="also write the ROIs a careful reader would draw"
    )
    args = p.parse_args(argv)
    if args.count is None:
        return _write_one(args, args.seed, args.out_dir)
    cohort = args.out_dir
    if cohort.exists() and (not cohort.is_dir() or any(cohort.iterdir())):
        print(f"error: {cohort} exists and is not an empty folder", file=sys.stderr)
        return 1
    for seed in range(args.seed, args.seed + args.count):
        code = _write_one(args, seed, cohort / f"study_{seed:06d}")
        if code:
            return code
    print(f"{cohort}: {args.count} studies (seeds {args.seed} to {args.seed + args.count - 1})")
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _write_one(args: argparse.Namespace, seed: int, out: Path) -> int:
    """Write the study of ``seed`` to ``out`` (truth and annotations beside it)."""
    overrides = dict(vendor=args.vendor, field_strength=args.field, snr=args.snr, lesions=args.lesion)
    if args.small:
        overrides["series"] = small_series()
    spec = default_study_spec(seed, **overrides)
    truth_path = out.with_name(out.name + ".truth.json")
    try:
        truth = write_study(spec, out, truth_path=truth_path, dicom_subdir=".")
    except (FileExistsError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {len(truth.series)} series; truth {truth_path}")
    if args.annotations:
        from ..annotations import write_annotations
        from ..study import load_study
        from .reader import reader_annotations

        ann_path = out.with_name(out.name + ".modic.json")
        write_annotations(reader_annotations(truth, load_study(out)), ann_path)
        print(f"annotations {ann_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
