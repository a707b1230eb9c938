"""The sample studies: synthetic lumbar MRI with known Modic changes, and their annotations.

Layout of the sample data folder (``sample_data/`` in the repository)::

    sample_data/
      siemens_15T_type1_type2/            DICOM files of the study (any layout inside)
      siemens_15T_type1_type2.modic.json  endplate and reference ROIs (modic annotations)
      siemens_15T_type1_type2.truth.json  ground truth: Modic type per endplate, geometry
      ...

which is the layout ``modic batch`` reads (an annotation file beside its study folder).

Code reaches the files through these functions, never through hard-coded paths:

>>> import modic
>>> modic.data.sample_study_names()[:2]
['siemens_15T_type1_type2', 'ge_3T_type3_mixed12']
>>> study = modic.load_study(modic.data.sample_study_path("ge_3T_type3_mixed12"))

The folder is found in this order: the ``MODIC_SAMPLE_DATA`` environment variable; the
``sample_data/`` folder of a source checkout; else a per-user cache, where the studies are
generated on first use (they are deterministic: :func:`write_sample_data` writes the
same bytes every time). Regenerate the repository's copy with
``python -m modic.data sample_data``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._io import atomic_write_text

__all__ = [
    "sample_data_dir",
    "sample_study_names",
    "sample_study_path",
    "sample_annotations_path",
    "sample_truth_path",
    "write_sample_data",
]

logger = logging.getLogger(__name__)

#: The sample studies, in the order they are described in sample_data/README.md.
SAMPLE_STUDIES: tuple[str, ...] = (
    "siemens_15T_type1_type2",
    "ge_3T_type3_mixed12",
    "philips_15T_mixed23_enhanced",
    "siemens_3T_rle_t2fs",
)

_REPO_SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def _complete(folder: Path) -> bool:
    return all(
        (folder / n).is_dir()
        and (folder / f"{n}.modic.json").is_file()
        and (folder / f"{n}.truth.json").is_file()
        for n in SAMPLE_STUDIES
    )


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else None
    )
    root = Path(base) if base else Path.home() / ("Library/Caches" if sys.platform == "darwin" else ".cache")
    return root / "modic" / f"sample_data-{__version__}"


def sample_data_dir() -> Path:
    """The folder holding the sample studies (generated into a cache on first use if needed)."""
    env = os.environ.get("MODIC_SAMPLE_DATA")
    if env:
        return Path(env)
    if _complete(_REPO_SAMPLE_DATA):
        return _REPO_SAMPLE_DATA
    cache = _cache_dir()
    if not _complete(cache):
        logger.warning("generating the sample studies into %s (first use; about 15 s)", cache)
        write_sample_data(cache, overwrite=True)
    return cache


def sample_study_names() -> list[str]:
    """Names of the sample studies."""
    return list(SAMPLE_STUDIES)


def _check(name: str) -> str:
    if name not in SAMPLE_STUDIES:
        raise ValueError(f"unknown sample study {name!r}; choose one of: {', '.join(SAMPLE_STUDIES)}")
    return name


def sample_study_path(name: str) -> Path:
    """The DICOM folder of a sample study."""
    return sample_data_dir() / _check(name)


def sample_annotations_path(name: str) -> Path:
    """The annotation file (ROIs) of a sample study."""
    return sample_data_dir() / f"{_check(name)}.modic.json"


def sample_truth_path(name: str) -> Path:
    """The ground-truth JSON of a sample study (read it with ``modic.phantom.GroundTruth.from_json``)."""
    return sample_data_dir() / f"{_check(name)}.truth.json"


def write_sample_data(
    dest: str | os.PathLike[str], *, overwrite: bool = False, names: Sequence[str] | None = None
) -> list[Path]:
    """Generate the sample studies with their annotations and ground truth into ``dest``.

    Deterministic: the same files, byte for byte, every time.

    Parameters
    ----------
    dest : path-like
    overwrite : bool
        Replace existing sample studies in ``dest``.
    names : sequence of str, optional
        Only these studies.

    Returns
    -------
    list of Path
        The study folders written.
    """
    from .annotations import write_annotations
    from .phantom import sample_specs, write_study
    from .phantom.reader import reader_annotations
    from .study import load_study

    dest = Path(dest)
    specs = sample_specs()
    written = []
    for name in names or SAMPLE_STUDIES:
        folder = dest / _check(name)
        truth_path = dest / f"{name}.truth.json"
        truth = write_study(specs[name], folder, truth_path=truth_path, overwrite=overwrite, dicom_subdir=".")
        annotations = reader_annotations(truth, load_study(folder))
        write_annotations(annotations, dest / f"{name}.modic.json")
        written.append(folder)
    readme = dest / "README.md"
    if not readme.exists() or overwrite:
        atomic_write_text(readme, _README)
    return written


_README = """\
# modic sample data

Synthetic lumbar spine MRI studies written as real DICOM by `modic.phantom` (physically
based: tissue T1/T2/proton density, spin-echo and STIR signal equations, Rician noise,
coil bias), with known Modic changes. Regenerate, byte for byte, with

    python -m modic.data sample_data --overwrite

- `siemens_15T_type1_type2`: Siemens naming, 1.5 T; L4 inferior type 1, L5 superior type 2.
- `ge_3T_type3_mixed12`: GE naming, 3 T; L3 inferior type 3, S1 superior type 1/2; signed
  pixels.
- `philips_15T_mixed23_enhanced`: Philips naming, 1.5 T; L4 inferior type 2/3; the T1 is
  one Enhanced MR multi-frame object; RescaleSlope != 1; files named by UID.
- `siemens_3T_rle_t2fs`: Siemens naming, 3 T; L5 inferior type 1, S1 superior type 2;
  RLE compressed; fat-saturated T2; flat, shuffled file names.

Beside each study folder:

- `NAME.modic.json`: the ROIs a careful reader would draw (endplate ROIs around the
  changes and under normal endplates, a reference ROI of normal marrow per vertebra),
  drawn from the ground truth by `modic.phantom.reader`. `modic batch sample_data -o out`
  classifies them.
- `NAME.truth.json`: the ground truth (Modic type per endplate, lesion geometry in LPS mm,
  Udby height grade, the noise and scaling of each series).

Each study has a sagittal T1, T2 (on a different grid: matrix, field of view, slice
positions), STIR or fat-suppressed T2, an axial T2 and a localizer. The patient names and
IDs in the headers are synthetic.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modic.data [DEST] [--overwrite]``: write the sample data."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m modic.data", description="Write modic's sample studies.")
    p.add_argument(
        "dest",
        nargs="?",
        type=Path,
        default=_REPO_SAMPLE_DATA,
        help="folder (default: the repository's sample_data)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing sample studies")
    p.add_argument("--only", nargs="+", choices=SAMPLE_STUDIES, metavar="NAME", help="only these studies")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        folders = write_sample_data(args.dest, overwrite=args.overwrite, names=args.only)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for f in folders:
        size = sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
        print(f"{f}  {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
