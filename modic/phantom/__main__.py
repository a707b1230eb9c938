"""``python -m modic.phantom OUT_DIR``: write the sample data set (see :mod:`.samples`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .samples import SAMPLE_NAMES, sample_specs
from .study import write_study


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample studies into OUT_DIR/<name>/ (DICOM in dicom/, truth.json beside)."""
    parser = argparse.ArgumentParser(
        prog="python -m modic.phantom",
        description="Write synthetic lumbar spine MRI studies (DICOM + truth.json) with "
                    "known Modic changes: the project's sample data set.")
    parser.add_argument("out_dir", type=Path, help="folder receiving one sub-folder per study")
    parser.add_argument("--seed", type=_seed, default=1000,
                        help="base seed; study i uses seed + i (default 1000)")
    parser.add_argument("--only", nargs="+", choices=SAMPLE_NAMES, metavar="NAME",
                        help=f"write only these studies ({', '.join(SAMPLE_NAMES)})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the DICOM and truth.json of existing study folders")
    args = parser.parse_args(argv)
    specs = sample_specs(args.seed)
    names = args.only or list(SAMPLE_NAMES)
    total = 0
    for name in names:
        folder = args.out_dir / name
        t0 = time.perf_counter()
        try:
            truth = write_study(specs[name], folder, overwrite=args.overwrite)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        total += size
        lesions = ", ".join(f"{e.vertebra} {e.endplate} type {e.modic_type}"
                            for e in truth.endplates if e.modic_type != "0")
        print(f"{folder}  {len(truth.series)} series  {size / 1e6:.1f} MB  "
              f"{time.perf_counter() - t0:.1f} s  [{lesions}]")
    print(f"total {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
