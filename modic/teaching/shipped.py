"""The teaching cases shipped with modic, built from the sample studies.

Three cases in ``sample_data/teaching/``, each a bundle whose study is the sample
study folder next to it (``"study": {"path": "../../NAME"}``, so the DICOM is not
duplicated); the key is the sample study's reader ROIs, its types and Udby grades come
from the study's ground truth. Their ids (``case-01`` ...) are neutral, because the id is
shown before the blind read; the ids they had up to modic 2026-12 (``t1-decides`` ...,
which gave the answer away) are their ``former_ids``, so a trainee's log, drafts and
answer files that name them still count. Regenerate them, byte for byte, with::

    python -m modic.teaching            # into sample_data/teaching
    python -m modic.teaching DEST       # DEST must be SAMPLE_DATA/teaching for the links
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_text
from ..annotations import read_annotations
from ..data import sample_annotations_path, sample_data_dir, sample_truth_path
from .case import KeyEndplate, TeachingCase, parse_endplate, parse_modic_type, write_case

__all__ = ["SHIPPED_CASES", "SHIPPED_FORMER_IDS", "shipped_cases_dir", "write_teaching_cases"]

logger = logging.getLogger(__name__)

_CREATED = "2026-01-01T00:00:00.000Z"
_AUTHOR = "modic sample cases (key from the phantom's ground truth)"


@dataclass(frozen=True)
class _Spec:
    id: str
    former_id: str
    study: str
    title: str
    difficulty: str
    tags: tuple[str, ...]
    history: str
    discussion: str


_SPECS: tuple[_Spec, ...] = (
    _Spec(
        id="case-01",
        former_id="t1-decides",
        study="siemens_15T_type1_type2",
        title="Modic 1 vs 2 across one disc: the T1 decides",
        difficulty="beginner",
        tags=("type 1", "type 2", "L4/L5", "1.5 T"),
        history=(
            "48-year-old office worker with low back pain for two years, worse in the morning and "
            "after sitting, no leg pain, no red flags. MRI of the lumbar spine at 1.5 T: sagittal T1, "
            "T2 and STIR. Read every endplate from L1 superior to S1 superior."
        ),
        discussion=(
            "Both sides of the L4/L5 disc are abnormal, but not in the same way. Under the L4 inferior "
            "endplate the marrow is dark on T1 (about two thirds of normal L4 marrow) and bright on T2 "
            "and, strongly, on STIR: oedema, Modic 1, reaching about a third of the L4 body height "
            "(Udby B). Under the L5 superior endplate it is bright on T1 and dark on STIR: fat, "
            "Modic 2, a thin band (Udby A). On the fast spin-echo T2 both changes are bright, because "
            "fat keeps its signal there, so the T2 alone cannot tell them apart: the T1 decides, and "
            "the STIR confirms. Report each endplate on its own; type 1 is the change linked to "
            "inflammation and to vertebrogenic pain."
        ),
    ),
    _Spec(
        id="case-02",
        former_id="sclerosis-and-mixed",
        study="ge_3T_type3_mixed12",
        title="Dark on everything at L3, two layers at S1: type 3 and a mixed 1/2 change",
        difficulty="intermediate",
        tags=("type 3", "mixed 1/2", "L3/L4", "L5/S1", "3 T"),
        history=(
            "61-year-old with chronic low back pain and flares lasting weeks. MRI of the lumbar spine "
            "at 3 T: sagittal T1, T2 and STIR. Read every endplate from L1 superior to S1 superior."
        ),
        discussion=(
            "L3 inferior: the marrow under the endplate is dark on every sequence, T1, T2 and STIR "
            "(a fifth of normal marrow or less): sclerosis, Modic 3, a thin band (Udby A). Do not call "
            "it type 1 because it is dark on T1: type 1 is bright on STIR, this is dark. S1 superior: "
            "a large change (more than half the S1 body height, Udby C) in two layers: next to the "
            "endplate the marrow is dark on T1 and bright on STIR (oedema, type 1), deeper it is "
            "bright on T1 (fat, type 2). Averaged over the whole ROI the two layers cancel on T1 "
            "(about 1.15x, nearly normal): look at the parts, not the mean. The classifier types "
            "voxel by voxel and finds about as many type-1 as type-2 voxels. Research coding calls "
            "this Modic 1/2; calling it 1 or 2 earns half credit."
        ),
    ),
    _Spec(
        id="case-03",
        former_id="fat-saturated-t2",
        study="siemens_3T_rle_t2fs",
        title="No STIR but a fat-saturated T2: type 2 goes dark, mostly",
        difficulty="advanced",
        tags=("type 1", "type 2", "fat suppression", "L5/S1", "3 T"),
        history=(
            "39-year-old with low back pain since lifting a heavy load four months ago. MRI of the "
            "lumbar spine at 3 T: sagittal T1, T2 and a fat-saturated T2 (no STIR). Read every "
            "endplate from L1 superior to S1 superior."
        ),
        discussion=(
            "Both endplates of L5/S1 are abnormal. L5 inferior: dark on T1, bright on T2 and very "
            "bright on the fat-saturated T2: oedema, Modic 1, reaching more than half of the L5 body "
            "(Udby C). S1 superior: bright on T1 and on T2, and on the fat-saturated T2 only a little "
            "darker than normal marrow (about 0.9x) rather than clearly dark: fat suppression of a "
            "Modic 2 change is rarely complete (three quarters of type 2 changes did not fully "
            "suppress in one series, Spine 2016). Bright on T1 and not bright on the fat-saturated "
            "image is type 2. Read as if it were a plain T2, the fat-saturated image would make "
            "every change look alike; check the sequence (fat saturation in the scan options or 'fs' "
            "in the description) before you read it."
        ),
    ),
)

#: The ids of the shipped cases, easiest first.
SHIPPED_CASES: tuple[str, ...] = tuple(s.id for s in _SPECS)
#: The ids the shipped cases had before they were renamed, mapped to their ids now
#: (:func:`modic.teaching.summary` reads a log that names them as naming the new ids).
SHIPPED_FORMER_IDS: dict[str, str] = {s.former_id: s.id for s in _SPECS}
_CANON = {"2/1": "1/2", "3/2": "2/3"}


def _key_from_truth(name: str) -> dict[str, KeyEndplate]:
    truth = json.loads(sample_truth_path(name).read_text(encoding="utf-8"))
    key = {}
    for e in truth["endplates"]:
        label = parse_endplate(f"{e['vertebra']} {e['endplate']}")
        modic_type = parse_modic_type(_CANON.get(e["modic_type"], e["modic_type"]))
        extent = e["lesion"]["udby_grade"] if e.get("lesion") else None
        key[str(label)] = KeyEndplate(label, modic_type, extent)
    return key


def _build(spec: _Spec) -> TeachingCase:
    rois = read_annotations(sample_annotations_path(spec.study))
    truth_key = _key_from_truth(spec.study)
    # the key: the endplates the reader drew (L1 superior .. S1 superior), typed from the truth
    key = {r.label: truth_key[str(r.label)] for r in rois.endplates()}
    return TeachingCase(
        id=spec.id,
        title=spec.title,
        difficulty=spec.difficulty,
        key=key,
        rois=rois,
        study_ref=f"../../{spec.study}",
        tags=spec.tags,
        history=spec.history,
        discussion=spec.discussion,
        author=_AUTHOR,
        created=_CREATED,
        former_ids=(spec.former_id,),
    )


def write_teaching_cases(dest: str | Path | None = None, *, overwrite: bool = False) -> list[Path]:
    """Write the shipped teaching cases (deterministic: the same bytes every time).

    Parameters
    ----------
    dest : path-like, optional
        Default ``SAMPLE_DATA/teaching`` (:func:`modic.data.sample_data_dir`). The cases
        point at their studies as ``../../NAME``: they load where ``dest`` is the
        ``teaching`` folder inside the sample-data folder.
    overwrite : bool
        Replace existing case folders.

    Returns
    -------
    list of Path
        The case folders.
    """
    out = Path(dest) if dest is not None else sample_data_dir() / "teaching"
    for spec in _SPECS:
        if (out / spec.id).exists() and not overwrite:
            raise FileExistsError(
                f"{out / spec.id}: already exists; pass overwrite=True (--overwrite) to replace it"
            )
    written = []
    for spec in _SPECS:
        write_case(_build(spec), out / spec.id)
        written.append(out / spec.id)
        _remove_former(out / spec.former_id)
    atomic_write_text(out / "README.md", _readme())
    return written


def _remove_former(folder: Path) -> None:
    """Remove a shipped case written under its former id by an older modic (it is the same
    case again under its new id, and the two would clash); anything else there is kept."""
    try:
        doc = json.loads((folder / "case.json").read_text(encoding="utf-8"))
        shipped = doc.get("author") == _AUTHOR and doc.get("id") == folder.name
    except (OSError, ValueError, AttributeError):
        return
    if shipped and {p.name for p in folder.iterdir()} <= {"case.json", "key.json"}:
        logger.info("removing %s: the shipped case is now %s", folder, SHIPPED_FORMER_IDS[folder.name])
        for name in ("case.json", "key.json"):
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()


def _readme() -> str:
    rows = "\n".join(
        f"| `{s.id}` | {s.title} | {s.difficulty} | `{s.study}` | `{s.former_id}` |" for s in _SPECS
    )
    return _README.format(rows=rows)


_README = """\
# modic teaching cases

Teaching cases for radiology trainees, built from the sample studies one folder up: the
key is the study's reader ROIs, its Modic types and Udby grades come from the study's
ground truth. Each case is a folder with `case.json` (metadata and the key's types) and
`key.json` (the expert's ROIs); its study is `../../NAME`. See docs/teaching.md.

For the teacher: the titles below give the answers away. Trainees choose a case by its
neutral id in `modic teach list`, which shows a title only after their first attempt.

| id | title | difficulty | study | former id |
|---|---|---|---|---|
{rows}

    modic teach list sample_data/teaching
    modic teach run sample_data/teaching --case case-01

Regenerate them, byte for byte, with `python -m modic.teaching --overwrite`.
"""


def shipped_cases_dir() -> Path:
    """The folder of the shipped teaching cases, ``SAMPLE_DATA/teaching`` (written on first use)."""
    folder = sample_data_dir() / "teaching"
    if not all((folder / s.id / "case.json").is_file() for s in _SPECS):
        logger.warning("writing the shipped teaching cases into %s (first use)", folder)
        write_teaching_cases(folder, overwrite=True)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modic.teaching [DEST] [--overwrite]``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m modic.teaching", description="Write modic's shipped teaching cases."
    )
    p.add_argument("dest", nargs="?", type=Path, help="folder (default: SAMPLE_DATA/teaching)")
    p.add_argument("--overwrite", action="store_true", help="replace existing case folders")
    args = p.parse_args(argv)
    try:
        folders = write_teaching_cases(args.dest, overwrite=args.overwrite)
    except FileExistsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for f in folders:
        sys.stdout.write(f"{f}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
