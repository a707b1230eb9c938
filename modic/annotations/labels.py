"""What an ROI marks: :class:`RoiLabel` (an endplate, reference marrow, a vertebral body
outline or a fat region, at a vertebra) and the vertebrae modic knows."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from .._jsondoc import (
    as_object,
    check_keys,
    get_str,
    json_type,
)
from ..errors import AnnotationFormatError

logger = logging.getLogger(__name__)

#: Vertebrae an ROI can be labelled with, ordered head -> foot.
VERTEBRAE: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


class Endplate(str, Enum):
    """Which endplate of a vertebra: the superior one (towards the head) or the inferior one."""

    SUPERIOR = "superior"
    INFERIOR = "inferior"

    def __str__(self) -> str:
        return self.value


RoiKind = Literal["endplate", "reference", "body", "fat"]
#: The kinds of ROI (format 1.1 added "body" and "fat").
_KINDS = ("endplate", "reference", "body", "fat")
#: Kinds that name a vertebra but no endplate.
_NO_ENDPLATE = ("reference", "body", "fat")
# T10 only names the disc level above T11's superior endplate.
_LEVEL_NAMES = ("T10",) + VERTEBRAE
_PARSE_RE = re.compile(r"(?:([a-z ]+?)\s+)?(t1[12]|l[1-5]|s1)\s*([a-z ]*)")
_ENDPLATE_WORDS: dict[str, Endplate] = {
    "s": Endplate.SUPERIOR,
    "sup": Endplate.SUPERIOR,
    "superior": Endplate.SUPERIOR,
    "i": Endplate.INFERIOR,
    "inf": Endplate.INFERIOR,
    "inferior": Endplate.INFERIOR,
}
_KIND_WORDS: dict[str, str] = {
    "r": "reference",
    "ref": "reference",
    "reference": "reference",
    "body": "body",
    "vertebral body": "body",
    "vb": "body",
    "fat": "fat",
}


@dataclass(frozen=True)
class RoiLabel:
    """What an ROI marks, and in which vertebra.

    Parameters
    ----------
    kind : {"endplate", "reference", "body", "fat"}
        ``"endplate"``: the marrow next to an endplate, where a Modic change is looked
        for. ``"reference"``: normal-appearing marrow that signal is compared with.
        ``"body"`` (format 1.1): the outline of the vertebral body on a sagittal slice
        (its height is what the extent of a change is measured against).
        ``"fat"`` (format 1.1): subcutaneous or paraspinal fat at the level of the vertebra,
        which tells how bright fat is on each sequence (fat suppression).
    vertebra : str
        One of :data:`VERTEBRAE` (``"T11"`` ... ``"S1"``), upper case. For a fat region,
        the vertebra at whose head-foot level it lies.
    endplate : Endplate or str, optional
        Required for an endplate ROI, ``None`` for the other kinds. S1 has only a superior
        endplate (the lower side of the L5/S1 disc).

    Raises
    ------
    AnnotationFormatError
        Naming the bad argument (``kind``, ``vertebra`` or ``endplate``).

    Examples
    --------
    >>> RoiLabel("endplate", "L4", Endplate.INFERIOR).level
    'L4/L5'
    >>> str(RoiLabel.parse("ref L4")), str(RoiLabel.parse("L3 body")), str(RoiLabel.parse("fat L5"))
    ('L4 reference', 'L3 body', 'L5 fat')
    """

    kind: RoiKind
    vertebra: str
    endplate: Endplate | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise AnnotationFormatError(
                f"must be one of {', '.join(repr(k) for k in _KINDS)}, got {self.kind!r}", field="kind"
            )
        if not isinstance(self.vertebra, str) or self.vertebra not in VERTEBRAE:
            raise AnnotationFormatError(
                f"must be one of {', '.join(VERTEBRAE)}, got {self.vertebra!r}", field="vertebra"
            )
        if self.kind in _NO_ENDPLATE:
            if self.endplate is not None:
                raise AnnotationFormatError(
                    f"a {self.kind} ROI has no endplate (got {str(self.endplate)!r}); leave it null",
                    field="endplate",
                )
            return
        if self.endplate is None:
            raise AnnotationFormatError("an endplate ROI needs 'superior' or 'inferior'", field="endplate")
        try:
            endplate = Endplate(self.endplate)
        except ValueError:
            raise AnnotationFormatError(
                f"must be 'superior' or 'inferior', got {self.endplate!r}", field="endplate"
            ) from None
        if self.vertebra == "S1" and endplate is Endplate.INFERIOR:
            raise AnnotationFormatError(
                "S1 has only a superior endplate (the L5/S1 level) in the lumbar spine", field="endplate"
            )
        object.__setattr__(self, "endplate", endplate)

    @classmethod
    def for_endplate(cls, vertebra: str, endplate: Endplate | str) -> RoiLabel:
        """The label of an endplate ROI, e.g. ``RoiLabel.for_endplate("L4", "inferior")``."""
        return cls("endplate", vertebra, Endplate(endplate))

    @classmethod
    def for_reference(cls, vertebra: str) -> RoiLabel:
        """The label of a reference ROI in ``vertebra``."""
        return cls("reference", vertebra)

    @classmethod
    def for_body(cls, vertebra: str) -> RoiLabel:
        """The label of the outline of ``vertebra``'s body."""
        return cls("body", vertebra)

    @classmethod
    def for_fat(cls, vertebra: str) -> RoiLabel:
        """The label of a fat region (subcutaneous or paraspinal) at ``vertebra``'s level."""
        return cls("fat", vertebra)

    @classmethod
    def parse(cls, text: str) -> RoiLabel:
        """Read a label as people type it (command line, annotation UI).

        Case, spaces, ``-`` and ``_`` do not matter. Accepted spellings::

            "L4 inferior", "L4 inf", "L4-inf", "L4i", "L4 inferior endplate"
            "L5 superior", "L5-sup", "L5s"
            "ref L4", "reference L4", "L4 ref", "L4 reference", "L4r"
            "L4 body", "body L4", "L4 vertebral body", "L4vb"
            "L4 fat", "fat L4"

        Parameters
        ----------
        text : str

        Returns
        -------
        RoiLabel

        Raises
        ------
        AnnotationFormatError
            If the text names no known vertebra, no endplate, or an endplate that does not
            exist (S1 inferior).

        Examples
        --------
        >>> RoiLabel.parse("L4-inf") == RoiLabel.for_endplate("L4", "inferior")
        True
        """
        hint = (
            "write e.g. 'L4 inferior', 'L4-inf', 'L4i', 'L5 superior', 'ref L4', 'L4 body' or 'L4 fat' "
            f"(vertebrae {', '.join(VERTEBRAE)})"
        )
        if not isinstance(text, str):
            raise AnnotationFormatError(f"an ROI label must be text, got {type(text).__name__}; {hint}")
        s = re.sub(r"[\s_\-:,/]+", " ", text.strip().lower()).strip()
        s = re.sub(r"\s+(endplate|ep)$", "", s)
        m = _PARSE_RE.fullmatch(s)
        if m is None:
            raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {hint}")
        prefix, vertebra, word = m.group(1) or "", m.group(2).upper(), m.group(3).strip()
        if (prefix and prefix not in _KIND_WORDS) or (
            word and word not in _KIND_WORDS and word not in _ENDPLATE_WORDS
        ):
            raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {hint}")
        kinds = {_KIND_WORDS[w] for w in (prefix, word) if w in _KIND_WORDS}
        try:
            if len(kinds) > 1 or (kinds and word in _ENDPLATE_WORDS):
                raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {hint}")
            if kinds:
                return cls(kinds.pop(), vertebra)  # type: ignore[arg-type]
            if not word:
                raise AnnotationFormatError(
                    f"{text!r} does not say which endplate: write '{vertebra} superior' or "
                    f"'{vertebra} inferior' (or 'ref {vertebra}' for a reference region)"
                )
            return cls("endplate", vertebra, _ENDPLATE_WORDS[word])
        except AnnotationFormatError as e:
            if not e.field:
                raise
            raise AnnotationFormatError(f"cannot read {text!r} as an ROI label: {e.problem}") from None

    def __str__(self) -> str:
        if self.endplate is None:
            return f"{self.vertebra} {self.kind}"
        return f"{self.vertebra} {self.endplate.value}"

    @property
    def level(self) -> str | None:
        """Disc level of an endplate: ``"L4/L5"`` for L4 inferior and L5 superior; None for a reference."""
        if self.endplate is None:
            return None
        i = _LEVEL_NAMES.index(self.vertebra)
        if self.endplate is Endplate.SUPERIOR:
            return f"{_LEVEL_NAMES[i - 1]}/{self.vertebra}"
        return f"{self.vertebra}/{_LEVEL_NAMES[i + 1]}"

    @property
    def sort_key(self) -> tuple[int, int]:
        """Head -> foot order: by vertebra, then superior endplate, reference, inferior endplate."""
        within = {"body": 1, "reference": 2, "fat": 3}.get(
            self.kind, 0 if self.endplate is Endplate.SUPERIOR else 4
        )
        return (VERTEBRAE.index(self.vertebra), within)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"kind", "vertebra", "endplate"}`` (endplate null for a reference)."""
        return {
            "kind": self.kind,
            "vertebra": self.vertebra,
            "endplate": None if self.endplate is None else self.endplate.value,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> RoiLabel:
        """Build from the JSON form; errors name the field (``"vertebra"``, ...).

        ``strict=False`` ignores unknown fields (documents of a later 1.x version).
        """
        d = as_object(d)
        check_keys(d, ("kind", "vertebra"), ("endplate",), strict=strict)
        kind = get_str(d, "kind")
        vertebra = get_str(d, "vertebra")
        endplate = d.get("endplate")
        if endplate is not None and not isinstance(endplate, str):
            raise AnnotationFormatError(
                f"expected a string or null, got {json_type(endplate)}", field="endplate"
            )
        return cls(kind, vertebra, endplate)  # type: ignore[arg-type]
