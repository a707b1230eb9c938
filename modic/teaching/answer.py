"""A trainee's answer to a case: ROIs drawn, and a committed Modic type per endplate read.

Answer file (format ``modic-teaching-answer``, version 1.0), what ``modic teach grade``
reads and what a teaching session saves::

    {
      "format": "modic-teaching-answer",
      "version": "1.0",
      "case": "case-01",                    # optional: refused when grading another case
      "trainee": "alice",                   # optional
      "types": {"L4 inferior": "1/2", "L5 superior": "2", "L3 inferior": "0"},
      "extents": {"L4 inferior": "B"},      # optional Udby grades, reported, not scored
      "annotations": { ...a modic-annotations document... }
                     # or a path to an annotation file, relative to the answer file
    }

The ROIs are the annotation format itself (embedded, or beside the answer as the file
the annotator saves), so the same drawing tools and readers serve experts and trainees.
An endplate can be answered without an ROI (a type only); an ROI without a type is not
an answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._jsondoc import json_type
from ..annotations import Annotations, RoiLabel, read_annotations
from ..criteria import ModicType
from ._json import (
    TeachingFormatError,
    as_object,
    at,
    check_keys,
    check_version,
    dumps,
    get_str,
    in_file,
    read_json,
)
from .case import EXTENT_GRADES, parse_endplate, parse_modic_type

__all__ = ["ANSWER_FORMAT", "ANSWER_VERSION", "TraineeAnswer", "read_answer", "write_answer"]

ANSWER_FORMAT = "modic-teaching-answer"
ANSWER_VERSION = "1.0"
_MAJOR, _MINOR = 1, 0


@dataclass
class TraineeAnswer:
    """What a trainee submits for one case.

    Parameters
    ----------
    annotations : Annotations, optional
        The trainee's ROIs (endplates, and reference marrow if they drew any). Default none.
    types : mapping of RoiLabel or str to ModicType or str
        The committed type per endplate, e.g. ``{"L4 inferior": "1/2", "L5s": "2"}``;
        spellings as :meth:`RoiLabel.parse` and :func:`~modic.teaching.case.parse_modic_type`
        read them. Kept as ``{RoiLabel: ModicType}``, head to foot.
    extents : mapping, optional
        Udby grade (A/B/C) per endplate; reported next to the key's, not scored.
    trainee : str
    case_id : str
        The case answered ("" when unknown).

    Examples
    --------
    >>> a = TraineeAnswer(types={"L4i": "2/1", "L5 superior": 2})
    >>> {str(k): v.value for k, v in a.types.items()}
    {'L4 inferior': '1/2', 'L5 superior': '2'}
    """

    annotations: Annotations = field(default_factory=Annotations)
    types: Mapping[Any, Any] = field(default_factory=dict)
    extents: Mapping[Any, Any] = field(default_factory=dict)
    trainee: str = ""
    case_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.annotations, Annotations):
            raise TypeError(f"annotations must be Annotations, got {type(self.annotations).__name__}")
        types: dict[RoiLabel, ModicType] = {}
        for text, value in dict(self.types).items():
            name = f"types[{str(text)!r}]"
            label = parse_endplate(text, name)
            if label in types:
                raise TeachingFormatError(f"{label} is answered twice", field=name)
            types[label] = parse_modic_type(value, name)
        self.types = dict(sorted(types.items(), key=lambda kv: kv[0].sort_key))
        extents: dict[RoiLabel, str] = {}
        for text, value in dict(self.extents).items():
            name = f"extents[{str(text)!r}]"
            label = parse_endplate(text, name)
            if not isinstance(value, str) or value.strip().upper() not in EXTENT_GRADES:
                raise TeachingFormatError(
                    f"expected a Udby grade A, B or C, got {json_type(value)}", field=name
                )
            extents[label] = value.strip().upper()
        self.extents = extents
        for name in ("trainee", "case_id"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")

    def type_of(self, label: RoiLabel) -> ModicType | None:
        """The committed type of an endplate, None if not answered."""
        result: ModicType | None = self.types.get(label)
        return result

    def to_dict(self) -> dict[str, Any]:
        """The answer file document, with the ROIs embedded."""
        d: dict[str, Any] = {"format": ANSWER_FORMAT, "version": ANSWER_VERSION}
        if self.case_id:
            d["case"] = self.case_id
        if self.trainee:
            d["trainee"] = self.trainee
        d["types"] = {str(k): v.value for k, v in self.types.items()}
        if self.extents:
            d["extents"] = {str(k): v for k, v in self.extents.items()}
        d["annotations"] = self.annotations.to_dict()
        return d


def answer_from_dict(d: object, base: Path | None = None, source: str = "<dict>") -> TraineeAnswer:
    """Build an answer from its JSON document; errors name ``source`` and the field.

    ``base`` is the folder a relative ``annotations`` path is resolved against.
    """
    with in_file(source):
        doc = as_object(d, "(document)")
        strict = check_version(doc, ANSWER_FORMAT, _MAJOR, _MINOR, "a modic teaching answer")
        check_keys(
            doc, ("format", "version", "types"), ("case", "trainee", "extents", "annotations"), strict=strict
        )
        types = as_object(doc["types"], "types")
        extents = as_object(doc.get("extents", {}), "extents")
        annotations = Annotations()
        if "annotations" in doc:
            ann = doc["annotations"]
            if isinstance(ann, str):
                ann_path = (base or Path.cwd()) / ann
                if not ann_path.is_file():
                    raise TeachingFormatError(f"no annotation file at {ann_path}", field="annotations")
                annotations = read_annotations(ann_path)
            else:
                with at("annotations"):
                    annotations = Annotations.from_dict(as_object(ann), source="")
        return TraineeAnswer(
            annotations=annotations,
            types=types,
            extents=extents,
            trainee=get_str(doc, "trainee") if "trainee" in doc else "",
            case_id=get_str(doc, "case") if "case" in doc else "",
        )


def read_answer(path: str | os.PathLike[str]) -> TraineeAnswer:
    """Read an answer file (see the module docstring).

    Raises
    ------
    TeachingFormatError
        Naming the file and the field (``answer.json: types['L4 inferior']: unknown Modic type '4' ...``).
    """
    p = Path(path)
    return answer_from_dict(read_json(p), base=p.parent, source=os.fspath(path))


def write_answer(answer: TraineeAnswer, path: str | os.PathLike[str]) -> Path:
    """Write an answer file atomically, with the ROIs embedded."""
    return atomic_write_text(path, dumps(answer.to_dict()))
