"""A teaching case: a study, the expert's answer key, and what the trainee is told.

Bundle layout (one folder per case)::

    CASE/
      case.json     metadata and the key's Modic type (and Udby extent) per endplate
      key.json      the expert's ROIs, in the modic annotation format
      study/        the DICOM files (``modic teach author`` copies them in), or ...

``case.json`` (format ``modic-teaching-case``, version 1.1)::

    {
      "format": "modic-teaching-case",
      "version": "1.1",
      "id": "case-01",                        # [a-z0-9][a-z0-9._-]*, unique in a course;
                                              # shown before the read: keep it neutral
      "former_ids": ["t1-decides"],           # optional (1.1): ids the case had before
      "title": "Modic 1 vs 2 across one disc: the T1 decides",
      "difficulty": "beginner",               # beginner | intermediate | advanced
      "tags": ["type 1", "type 2"],
      "history": "52-year-old ...",           # shown before reading (may be "")
      "discussion": "...",                    # shown with the key (may be "")
      "author": "",                           # optional
      "created": "2026-01-01T00:00:00.000Z",  # ISO 8601 with a time zone
      "study": {"path": "study"},             # relative to CASE/, or "../../NAME"
      "key": {
        "L4 inferior": {"type": "1", "extent": "B"},   # extent optional: Udby A/B/C
        "L5 superior": {"type": "2"},
        "L3 inferior": {"type": "0"}
      }
    }

Rules checked on load (errors name the file and the field):

* every endplate ROI in ``key.json`` has a type in ``key`` (an endplate the expert typed
  may have no ROI: it is graded on type only);
* at most one ROI per endplate in ``key.json``; reference ROIs (normal marrow) are
  welcome and are what the classifier compares against;
* ``extent`` only with a Modic change (type other than 0);
* ``study.path`` names an existing folder.

A case that is renamed keeps its old ids in ``former_ids``: an attempt log, a draft or an
answer file that names an old id is read as naming the case (nothing is rewritten), and
``modic teach run --case OLD`` still finds it.

The key file is deliberately not called ``*.modic.json``: ``modic batch`` treats every
such file as a study to classify.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_text
from .._jsondoc import json_type, utc_now
from ..annotations import ROI, Annotations, RoiLabel, read_annotations, write_annotations
from ..criteria import ModicType
from ..errors import AnnotationFormatError
from ._json import (
    TeachingFormatError,
    as_object,
    at,
    check_keys,
    check_version,
    dumps,
    get_str,
    get_timestamp,
    in_file,
    read_json,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..study import LoadedStudy

__all__ = [
    "CASE_FORMAT",
    "CASE_VERSION",
    "CASE_FILE",
    "KEY_FILE",
    "DIFFICULTIES",
    "EXTENT_GRADES",
    "KeyEndplate",
    "TeachingCase",
    "parse_modic_type",
    "parse_endplate",
    "load_case",
    "list_cases",
    "current_ids",
    "write_case",
    "author_case",
]

logger = logging.getLogger(__name__)

CASE_FORMAT = "modic-teaching-case"
CASE_VERSION = "1.1"
_MAJOR, _MINOR = 1, 1
CASE_FILE = "case.json"
KEY_FILE = "key.json"
#: Difficulty levels, easiest first.
DIFFICULTIES: tuple[str, ...] = ("beginner", "intermediate", "advanced")
#: Udby height grades: A < 25 %, B 25-50 %, C > 50 % of the vertebral body height.
EXTENT_GRADES: tuple[str, ...] = ("A", "B", "C")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TYPE_ALIASES = {"2/1": "1/2", "3/2": "2/3", "1-2": "1/2", "2-3": "2/3", "none": "0", "normal": "0"}


def parse_modic_type(value: object, name: str = "type") -> ModicType:
    """A Modic type as people write it: ``"1"``, ``"1/2"``, ``"2/1"``, ``"Modic 2"``, ``"type 3"``, ``"0"``.

    ``indeterminate`` is refused: it is the classifier's "cannot type this region", never
    a reading, so neither an expert key nor a trainee's answer can say it.

    Raises
    ------
    TeachingFormatError
        Naming ``name``, and listing the types to choose from.

    Examples
    --------
    >>> parse_modic_type("2/1").value, parse_modic_type("Modic 1").value, parse_modic_type(3).value
    ('1/2', '1', '3')
    >>> parse_modic_type("indeterminate", "answer")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    modic.errors.TeachingFormatError: answer: 'indeterminate' ...; choose one of 0, 1, 2, 3, 1/2, 2/3
    """
    choices = ", ".join(t.value for t in ModicType if t is not ModicType.INDETERMINATE)
    if isinstance(value, ModicType):
        t = value
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TeachingFormatError(f"expected a Modic type as a string, got {json_type(value)}", field=name)
    else:
        text = re.sub(r"^(modic|type)\s*", "", str(value).strip().lower()).replace(" ", "")
        try:
            t = ModicType(_TYPE_ALIASES.get(text, text))
        except ValueError:
            raise TeachingFormatError(
                f"unknown Modic type {value!r}; choose one of {choices}", field=name
            ) from None
    if t is ModicType.INDETERMINATE:
        raise TeachingFormatError(
            f"{t.value!r} is the classifier's 'cannot type this region', not a reading; "
            f"choose one of {choices}",
            field=name,
        )
    return t


def parse_endplate(value: object, name: str = "endplate") -> RoiLabel:
    """An endplate label from text (``"L4 inferior"``, ``"L4i"``, ``"L4-inf"``) or a :class:`RoiLabel`.

    Raises
    ------
    TeachingFormatError
        If it is not an endplate (a reference label, or unreadable), naming ``name``.
    """
    if isinstance(value, RoiLabel):
        label = value
    elif isinstance(value, str):
        try:
            label = RoiLabel.parse(value)
        except AnnotationFormatError as e:
            raise TeachingFormatError(e.problem, field=name) from None
    else:
        raise TeachingFormatError(
            f"expected an endplate such as 'L4 inferior', got {json_type(value)}", field=name
        )
    if label.kind != "endplate":
        raise TeachingFormatError(f"{str(label)!r} is not an endplate; write e.g. 'L4 inferior'", field=name)
    return label


def _check_extent(value: object, modic_type: ModicType, name: str = "extent") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().upper() not in EXTENT_GRADES:
        raise TeachingFormatError(
            f"expected a Udby grade A (< 25 %), B (25-50 %) or C (> 50 %), got {json_type(value)}", field=name
        )
    if modic_type is ModicType.NONE:
        raise TeachingFormatError("an extent needs a Modic change; type 0 has none", field=name)
    return value.strip().upper()


@dataclass(frozen=True)
class KeyEndplate:
    """The expert's answer for one endplate.

    Parameters
    ----------
    label : RoiLabel
        An endplate label.
    modic_type : ModicType
    extent : {"A", "B", "C"}, optional
        Udby height grade of the change (only with a type other than 0).
    """

    label: RoiLabel
    modic_type: ModicType
    extent: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", parse_endplate(self.label, "label"))
        object.__setattr__(self, "modic_type", parse_modic_type(self.modic_type, "modic_type"))
        object.__setattr__(self, "extent", _check_extent(self.extent, self.modic_type))

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "1", "extent": "B"}`` (extent left out when unknown)."""
        d: dict[str, Any] = {"type": self.modic_type.value}
        if self.extent is not None:
            d["extent"] = self.extent
        return d


@dataclass
class TeachingCase:
    """A teaching case: study, answer key and metadata (see the module docstring).

    Parameters
    ----------
    id : str
        ``[a-z0-9][a-z0-9._-]*`` (at most 64 characters); logs refer to the case by it.
    title : str
    difficulty : {"beginner", "intermediate", "advanced"}
    key : dict of RoiLabel to KeyEndplate
        The type of every endplate the expert read; kept head -> foot.
    rois : Annotations
        The expert's ROIs (endplates and reference marrow).
    study_ref : str
        The study folder as written in ``case.json``: relative to the case folder.
    tags : sequence of str
    history, discussion, author : str
    created : str
        ISO 8601 with a time zone; default now.
    path : Path, optional
        The case folder (None for a case not yet written).
    former_ids : sequence of str
        Ids the case had before it was renamed (same form as ``id``): logs, drafts and
        answers that name one are read as naming this case.
    """

    id: str
    title: str
    difficulty: str
    key: dict[RoiLabel, KeyEndplate]
    rois: Annotations
    study_ref: str = "study"
    tags: tuple[str, ...] = ()
    history: str = ""
    discussion: str = ""
    author: str = ""
    created: str = field(default_factory=utc_now)
    path: Path | None = None
    former_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.match(self.id):
            raise TeachingFormatError(
                f"a case id is 1-64 characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit, "
                f"got {self.id!r}",
                field="id",
            )
        self.former_ids = tuple(self.former_ids)
        for i, old in enumerate(self.former_ids):
            if not isinstance(old, str) or not _ID_RE.match(old) or old == self.id:
                raise TeachingFormatError(
                    f"expected an earlier id of the case (a-z, 0-9, '.', '_', '-'; not the id itself), "
                    f"got {old!r}",
                    field=f"former_ids[{i}]",
                )
        if not isinstance(self.title, str) or not self.title.strip():
            raise TeachingFormatError("a case needs a title", field="title")
        if self.difficulty not in DIFFICULTIES:
            raise TeachingFormatError(
                f"expected one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}", field="difficulty"
            )
        self.tags = tuple(self.tags)
        for i, tag in enumerate(self.tags):
            if not isinstance(tag, str) or not tag.strip():
                raise TeachingFormatError(f"expected a non-empty string, got {tag!r}", field=f"tags[{i}]")
        for name in ("history", "discussion", "author", "study_ref"):
            if not isinstance(getattr(self, name), str):
                raise TeachingFormatError(
                    f"expected a string, got {json_type(getattr(self, name))}", field=name
                )
        if not self.study_ref:
            raise TeachingFormatError("must name the study folder", field="study.path")
        if not isinstance(self.rois, Annotations):
            raise TeachingFormatError(f"expected Annotations, got {type(self.rois).__name__}", field="rois")
        key: dict[RoiLabel, KeyEndplate] = {}
        for label, entry in self.key.items():
            if not isinstance(entry, KeyEndplate):
                raise TeachingFormatError(
                    f"expected a KeyEndplate, got {type(entry).__name__}", field=f"key[{label}]"
                )
            if entry.label != label:
                raise TeachingFormatError(f"holds the entry of {entry.label}", field=f"key[{label}]")
            key[entry.label] = entry
        if not key:
            raise TeachingFormatError("the key gives no endplate a type", field="key")
        self.key = dict(sorted(key.items(), key=lambda kv: kv[0].sort_key))
        _check_rois_against_key(self.rois, self.key)

    # -- what the case holds ---------------------------------------------------------
    def known_as(self, case_id: str) -> bool:
        """Whether ``case_id`` names this case: its id or one of its :attr:`former_ids`."""
        return case_id == self.id or case_id in self.former_ids

    @property
    def study_path(self) -> Path:
        """The study folder (resolved against :attr:`path`)."""
        if self.path is None:
            raise ValueError(f"case {self.id!r} has no folder yet; write it with write_case() first")
        return (self.path / self.study_ref).resolve()

    def key_roi(self, label: RoiLabel) -> ROI | None:
        """The expert's ROI of an endplate, or None if the expert typed it without drawing one."""
        for roi in self.rois.endplates():
            if roi.label == label:
                return roi
        return None

    def references(self) -> list[ROI]:
        """The expert's reference ROIs (normal marrow)."""
        return self.rois.references()

    def changes(self) -> list[KeyEndplate]:
        """The key's endplates with a Modic change (type other than 0), head to foot."""
        return [k for k in self.key.values() if k.modic_type is not ModicType.NONE]

    def load_study(self) -> LoadedStudy:
        """Load the case's study (sagittal T1, T2, STIR), checking it is the study of the key.

        Raises
        ------
        TeachingFormatError
            If the study folder holds another study than ``key.json`` was drawn on.
        """
        from ..study import load_study

        uid = self.rois.study_instance_uid or None
        study = load_study(self.study_path, study=uid)
        if uid and study.study.study_uid != uid:  # pragma: no cover - load_study selects by uid
            raise TeachingFormatError(
                "the study folder holds another study than key.json was drawn on",
                field="study.path",
                source=str(self.path / CASE_FILE) if self.path else "",
            )
        return study

    def __repr__(self) -> str:
        changes = ", ".join(f"{k.label} {k.modic_type.value}" for k in self.changes()) or "no change"
        return f"<TeachingCase {self.id}: {self.title!r} ({self.difficulty}; {changes})>"

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ``case.json`` document."""
        return {
            "format": CASE_FORMAT,
            "version": CASE_VERSION,
            "id": self.id,
            **({"former_ids": list(self.former_ids)} if self.former_ids else {}),
            "title": self.title,
            "difficulty": self.difficulty,
            "tags": list(self.tags),
            "history": self.history,
            "discussion": self.discussion,
            "author": self.author,
            "created": self.created,
            "study": {"path": self.study_ref},
            "key": {str(label): entry.to_dict() for label, entry in self.key.items()},
        }


def _check_rois_against_key(rois: Annotations, key: Mapping[RoiLabel, KeyEndplate]) -> None:
    seen: dict[RoiLabel, int] = {}
    for i, roi in enumerate(rois.rois):
        if roi.label.kind != "endplate":
            continue
        where = f"{KEY_FILE}: rois[{i}]"
        if roi.label in seen:
            raise TeachingFormatError(
                f"a second ROI for {roi.label} (the first is rois[{seen[roi.label]}]); keep one per endplate",
                field=f"rois[{i}].label",
                source=KEY_FILE,
            )
        seen[roi.label] = i
        if roi.label not in key:
            raise TeachingFormatError(
                f"{where} is an ROI of {roi.label}, but the key gives that endplate no type; add "
                f'"{roi.label}": {{"type": "0"}} (or the type you read) to key in {CASE_FILE}',
                field="key",
            )


def _key_from_dict(d: object, strict: bool) -> dict[RoiLabel, KeyEndplate]:
    obj = as_object(d, "")
    out: dict[RoiLabel, KeyEndplate] = {}
    for text, value in obj.items():
        name = f"[{text!r}]"
        with at(name):
            label = parse_endplate(text, "")
            if label in out:
                raise TeachingFormatError(f"{label} appears twice in the key", field="")
            entry = as_object(value)
            check_keys(entry, ("type",), ("extent",), strict=strict)
            modic_type = parse_modic_type(entry["type"], "type")
            extent = _check_extent(entry.get("extent"), modic_type)
        out[label] = KeyEndplate(label, modic_type, extent)
    return out


def case_from_dict(
    d: object, rois: Annotations, path: Path | None, strict_default: bool = True
) -> TeachingCase:
    """Build a case from its ``case.json`` document and its key ROIs (errors name the field)."""
    doc = as_object(d, "(document)")
    strict = check_version(doc, CASE_FORMAT, _MAJOR, _MINOR, "a modic teaching case (case.json)")
    if not strict:
        logger.warning(
            "case.json of version %s is newer than %s: unknown fields ignored", doc["version"], CASE_VERSION
        )
    check_keys(
        doc,
        ("format", "version", "id", "title", "difficulty", "study", "key"),
        ("former_ids", "tags", "history", "discussion", "author", "created"),
        strict=strict,
    )
    with at("study"):
        study = as_object(doc["study"])
        check_keys(study, ("path",), strict=strict)
        study_ref = get_str(study, "path", non_empty=True)
    tags = doc.get("tags", [])
    if not isinstance(tags, list):
        raise TeachingFormatError(f"expected an array of strings, got {json_type(tags)}", field="tags")
    former_ids = doc.get("former_ids", [])
    if not isinstance(former_ids, list):
        raise TeachingFormatError(
            f"expected an array of strings, got {json_type(former_ids)}", field="former_ids"
        )
    with at("key"):
        key = _key_from_dict(doc["key"], strict)
    kwargs: dict[str, Any] = {}
    if "created" in doc:
        kwargs["created"] = get_timestamp(doc, "created")
    return TeachingCase(
        id=get_str(doc, "id"),
        title=get_str(doc, "title"),
        difficulty=get_str(doc, "difficulty"),
        key=key,
        rois=rois,
        study_ref=study_ref,
        tags=tuple(tags),
        history=get_str(doc, "history") if "history" in doc else "",
        discussion=get_str(doc, "discussion") if "discussion" in doc else "",
        author=get_str(doc, "author") if "author" in doc else "",
        path=path,
        former_ids=tuple(former_ids),
        **kwargs,
    )


def load_case(path: str | os.PathLike[str]) -> TeachingCase:
    """Read and validate a case bundle.

    Parameters
    ----------
    path : path-like
        The case folder (or its ``case.json``).

    Returns
    -------
    TeachingCase

    Raises
    ------
    TeachingFormatError
        Naming the file (``case.json`` or ``key.json``) and the field, e.g.
        ``CASE/case.json: key['L4 inferior'].type: unknown Modic type '4' ...``.
    FileNotFoundError
        If the folder has no ``case.json`` or no ``key.json``.

    Examples
    --------
    >>> from modic.teaching import load_case, shipped_cases_dir
    >>> case = load_case(shipped_cases_dir() / "case-01")
    >>> case.title
    'Modic 1 vs 2 across one disc: the T1 decides'
    >>> [(str(k.label), k.modic_type.value, k.extent) for k in case.changes()]
    [('L4 inferior', '1', 'B'), ('L5 superior', '2', 'A')]
    """
    p = Path(path)
    folder = p.parent if p.name == CASE_FILE and p.is_file() else p
    case_file, key_file = folder / CASE_FILE, folder / KEY_FILE
    if not case_file.is_file():
        raise FileNotFoundError(
            f"{case_file}: no such file; a teaching case is a folder with {CASE_FILE} and {KEY_FILE} "
            "(make one with 'modic teach author')"
        )
    doc = read_json(case_file)
    if not key_file.is_file():
        raise FileNotFoundError(f"{key_file}: no such file; the expert's ROIs of the case are missing")
    with in_file(str(key_file)):
        rois = read_annotations(key_file)
    try:
        case = case_from_dict(doc, rois, folder.resolve())
    except AnnotationFormatError as e:
        source = str(key_file) if e.source == KEY_FILE else str(case_file)
        raise TeachingFormatError(e.problem, field=e.field, source=source) from None
    if not case.study_path.is_dir():
        raise TeachingFormatError(
            f"no study folder at {case.study_path} ({case.study_ref!r} relative to the case folder)",
            field="study.path",
            source=str(case_file),
        )
    return case


def list_cases(
    folder: str | os.PathLike[str], *, errors: list[tuple[Path, str]] | None = None
) -> list[TeachingCase]:
    """Every case bundle under a folder (any depth), easiest first, then by id.

    Parameters
    ----------
    folder : path-like
    errors : list, optional
        When given, bundles that do not load are appended as ``(folder, message)`` and the
        others are still returned; otherwise the first error is raised.

    Raises
    ------
    TeachingFormatError
        If a bundle is not valid (without ``errors``), or two cases share an id.
    FileNotFoundError
        If ``folder`` does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of teaching cases")
    cases: list[TeachingCase] = []
    for case_file in sorted(root.rglob(CASE_FILE)):
        try:
            cases.append(load_case(case_file.parent))
        except (AnnotationFormatError, FileNotFoundError) as e:
            if errors is None:
                raise
            logger.warning("%s", e)
            errors.append((case_file.parent, str(e)))
    by_id: dict[str, TeachingCase] = {}
    for case in cases:
        for name in (case.id, *case.former_ids):
            if name in by_id:
                raise TeachingFormatError(
                    f"case id {name!r} is also used by {by_id[name].path}; ids (and former ids) "
                    "must be unique",
                    field="id" if name == case.id else "former_ids",
                    source=str(Path(case.path or "") / CASE_FILE),
                )
            by_id[name] = case
    return sorted(cases, key=lambda c: (DIFFICULTIES.index(c.difficulty), c.id))


def current_ids(cases: Iterable[TeachingCase]) -> dict[str, str]:
    """Every id and former id of ``cases``, mapped to the case's id (old names to new ones).

    Examples
    --------
    >>> from modic.teaching import list_cases, shipped_cases_dir
    >>> current_ids(list_cases(shipped_cases_dir()))["t1-decides"]
    'case-01'
    """
    cases = list(cases)
    out: dict[str, str] = {}
    for case in cases:
        out.update(dict.fromkeys(case.former_ids, case.id))
    for case in cases:  # an id wins over another case's former id
        out[case.id] = case.id
    return out


def write_case(case: TeachingCase, folder: str | os.PathLike[str]) -> Path:
    """Write ``case.json`` and ``key.json`` into ``folder`` (created), atomically each.

    The study is not touched: ``case.study_ref`` must already lead from ``folder`` to it.
    Writing the same case twice gives the same bytes. Sets ``case.path``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_annotations(case.rois, out / KEY_FILE)
    atomic_write_text(out / CASE_FILE, dumps(case.to_dict()))
    case.path = out.resolve()
    return out


def _study_files(study_dir: Path, study_uid: str | None) -> list[Path]:
    """The DICOM files of one study under a folder (not the junk beside them).

    Logs a warning when their headers carry a patient name or ID.
    """
    from ..dicomfolder import scan
    from ..study import select_study

    study = select_study(scan(study_dir), study_uid)
    if study.patient_name or study.patient_id:
        logger.warning(
            "the DICOM headers of the study carry a patient name or ID, and the case copies them as "
            "they are: de-identify the study before sharing the case"
        )
    return sorted({frame.path for series in study.series for frame in series.frames})


def author_case(
    study_dir: str | os.PathLike[str],
    annotations: Annotations,
    out: str | os.PathLike[str],
    *,
    types: Mapping[RoiLabel | str, ModicType | str],
    extents: Mapping[RoiLabel | str, str] | None = None,
    case_id: str | None = None,
    title: str,
    difficulty: str = "intermediate",
    tags: Sequence[str] = (),
    history: str = "",
    discussion: str = "",
    author: str = "",
    link: bool = False,
    created: str | None = None,
) -> TeachingCase:
    """Build a case bundle from a study and the expert's ROIs and types.

    Parameters
    ----------
    study_dir : path-like
        The study's DICOM folder.
    annotations : Annotations
        The expert's ROIs (endplates and reference marrow) on that study.
    out : path-like
        The case folder to create; it must not exist (or be empty).
    types : mapping
        Modic type per endplate, e.g. ``{"L4 inferior": "1", "L5 superior": "2"}``: every
        endplate ROI needs one; endplates typed without an ROI are graded on type only.
    extents : mapping, optional
        Udby grade (A/B/C) per endplate with a change.
    case_id : str, optional
        Default: the name of ``out`` (lower-cased, other characters replaced by ``-``).
    title, difficulty, tags, history, discussion, author : metadata
    link : bool
        Store a relative path to ``study_dir`` instead of copying its DICOM files into
        ``out/study/`` (the default, which makes the bundle self-contained).
    created : str, optional
        ISO 8601 time; default now.

    Returns
    -------
    TeachingCase

    Notes
    -----
    The DICOM files are copied as they are: de-identify the study before sharing a
    bundle (a warning is logged when the headers carry a patient name or ID).
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise FileNotFoundError(f"{study_dir}: no such study folder")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target}: already exists and is not empty; choose another case folder")
    key: dict[RoiLabel, KeyEndplate] = {}
    for text, value in types.items():
        label = parse_endplate(text, f"types[{text!r}]")
        modic_type = parse_modic_type(value, f"types[{text!r}]")
        key[label] = KeyEndplate(label, modic_type)
    for text, grade in (extents or {}).items():
        label = parse_endplate(text, f"extents[{text!r}]")
        if label not in key:
            raise TeachingFormatError(f"{label} has an extent but no type", field=f"extents[{text!r}]")
        key[label] = KeyEndplate(label, key[label].modic_type, _check_extent(grade, key[label].modic_type))
    missing = [str(r.label) for r in annotations.endplates() if r.label not in key]
    if missing:
        raise TeachingFormatError(
            f"no type for {', '.join(missing)}: give every endplate ROI of the key a Modic type "
            "(0 for normal)",
            field="types",
        )
    if case_id is None:
        case_id = re.sub(r"[^a-z0-9._-]+", "-", target.resolve().name.lower()).strip("-._") or "case"
    study_ref = os.path.relpath(study_dir.resolve(), target.resolve()) if link else "study"
    case = TeachingCase(
        id=case_id,
        title=title,
        difficulty=difficulty,
        key=key,
        rois=annotations,
        study_ref=Path(study_ref).as_posix(),
        tags=tuple(tags),
        history=history,
        discussion=discussion,
        author=author,
        created=created or utc_now(),
    )
    if link:
        write_case(case, target)
        return load_case(target)
    # build next to the target and rename, so that a failed copy leaves nothing half-made
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        files = _study_files(study_dir, annotations.study_instance_uid or None)
        for f in files:
            dest = tmp / "study" / f.resolve().relative_to(study_dir.resolve())
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        write_case(case, tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote case %s to %s (%d DICOM files copied)", case.id, target, len(files))
    return load_case(target)
