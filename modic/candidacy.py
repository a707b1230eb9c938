"""The imaging criterion of the FDA clearance of basivertebral nerve ablation, per study.

**Research information about a regulatory criterion, not a treatment recommendation.**

The Intracept Intraosseous Nerve Ablation System (Relievant Medsystems) is cleared by the
US FDA (510(k) K153272, 2016; K190504, 2019) "for the ablation of basivertebral nerves of
the L3 through S1 vertebrae for the relief of chronic low back pain of at least six months
duration that has not responded to at least six months of conservative care, and is also
accompanied by" Type 1 or Type 2 Modic changes on an MRI (the clearances' Indications for
Use). modic can only check the imaging part: which endplate levels from L3/L4 to L5/S1
carry a Modic change of type 1 or 2, and which vertebral bodies that implies (the two
bodies whose endplates face each such disc: the clearance names vertebrae, a Modic change
is read at a level). The clinical criteria -- how long the pain
has lasted, what conservative care has been tried, and every other consideration of a
clinician -- are outside what an image shows.

Rules used here:

- A level is one of L3/L4, L4/L5, L5/S1; the S1 superior endplate belongs to L5/S1.
- It meets the imaging criterion when an endplate ROI of that level was classified as
  Modic 1, 2 or mixed 1/2; a mixed 2/3 change also holds type-2 marrow and is counted,
  with a note saying so. Types 0 and 3 do not count; an ``indeterminate`` result is listed
  apart (it can be neither counted nor ruled out).
- Levels of the range without any endplate ROI are listed as not read: the criterion
  cannot be judged there.
- A change at L2/L3 (the L3 superior endplate) is outside the levels and is noted, not
  counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .criteria import ModicType

if TYPE_CHECKING:
    from .results import ModicResult

__all__ = ["Candidacy", "candidacy", "CRITERION", "SOURCE", "DISCLAIMER", "CRITERION_LEVELS"]

#: The disc levels of the criterion (L3 through S1 vertebrae), head to foot.
CRITERION_LEVELS: tuple[str, ...] = ("L3/L4", "L4/L5", "L5/S1")
_COUNTED = {ModicType.TYPE1, ModicType.TYPE2, ModicType.MIXED_1_2, ModicType.MIXED_2_3}

#: The criterion in words.
CRITERION = (
    "Modic type 1 or type 2 change at an endplate of a level from L3/L4 to L5/S1 "
    "(the imaging part of the indications for use of basivertebral nerve ablation of the "
    "L3 through S1 vertebrae)"
)
#: Where the criterion comes from.
SOURCE = (
    "US FDA 510(k) K153272 (2016) and K190504 (2019), Intracept Intraosseous Nerve Ablation "
    "System (Relievant Medsystems), Indications for Use"
)
#: What the information is and is not.
DISCLAIMER = (
    "Research information about a regulatory criterion, not a treatment recommendation. "
    "The clearance also requires clinical criteria that modic cannot know: chronic low back "
    "pain of at least 6 months that has not responded to at least 6 months of conservative "
    "care. Only a clinician can judge whether a treatment is appropriate."
)


def _vertebrae_of(level: str) -> tuple[str, str]:
    upper, lower = level.split("/")
    return upper, lower


@dataclass(frozen=True)
class Candidacy:
    """Which levels of one study meet the imaging criterion of the FDA clearance.

    Attributes
    ----------
    levels : tuple of str
        Disc levels from L3/L4 to L5/S1 with a Modic 1, 2, 1/2 or 2/3 change, head to foot.
    vertebrae : tuple of str
        The vertebral bodies next to those levels (e.g. ``("L4", "L5")``), head to foot.
    criterion : str
        The criterion in words (:data:`CRITERION`).
    source : str
        Where it comes from (:data:`SOURCE`).
    findings : dict of str to list of str
        Per level in ``levels``, the endplates and their types, e.g.
        ``{"L4/L5": ["L4 inferior: Modic 1"]}``.
    levels_read : tuple of str
        Levels of the range with at least one classified endplate ROI.
    levels_not_read : tuple of str
        Levels of the range without one: the criterion cannot be judged there.
    indeterminate : tuple of str
        Levels whose only results in the range are ``indeterminate`` (or that hold one):
        neither counted nor ruled out.
    notes : tuple of str
    disclaimer : str
        :data:`DISCLAIMER`.
    study : str
        The pseudonymous study key.
    """

    levels: tuple[str, ...]
    vertebrae: tuple[str, ...]
    criterion: str = CRITERION
    source: str = SOURCE
    findings: dict[str, list[str]] = field(default_factory=dict)
    levels_read: tuple[str, ...] = ()
    levels_not_read: tuple[str, ...] = ()
    indeterminate: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    disclaimer: str = DISCLAIMER
    study: str = ""

    @property
    def meets_imaging_criterion(self) -> bool:
        """True when at least one level meets the imaging criterion."""
        return bool(self.levels)

    @property
    def text(self) -> str:
        """A short paragraph in plain words, with the source and the disclaimer."""
        if self.levels:
            found = "; ".join(f"{lv} ({', '.join(self.findings.get(lv, []))})" for lv in self.levels)
            head = (
                f"Imaging criterion of the FDA clearance of basivertebral nerve ablation met at {found}: "
                f"vertebral bodies {', '.join(self.vertebrae)}."
            )
        elif self.levels_read:
            head = (
                "Imaging criterion of the FDA clearance of basivertebral nerve ablation not met at the "
                f"levels read ({', '.join(self.levels_read)})."
            )
        else:
            head = "No level from L3/L4 to L5/S1 was read: the imaging criterion cannot be judged."
        parts = [head]
        if self.levels_not_read and self.levels_read:
            parts.append(f"Not read: {', '.join(self.levels_not_read)}.")
        if self.indeterminate:
            parts.append(f"Indeterminate: {', '.join(self.indeterminate)}.")
        parts.extend(self.notes)
        parts.append(f"Criterion: {self.criterion}. Source: {self.source}.")
        parts.append(self.disclaimer)
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "study": self.study,
            "meets_imaging_criterion": self.meets_imaging_criterion,
            "levels": list(self.levels),
            "vertebrae": list(self.vertebrae),
            "findings": {k: list(v) for k, v in self.findings.items()},
            "levels_read": list(self.levels_read),
            "levels_not_read": list(self.levels_not_read),
            "indeterminate": list(self.indeterminate),
            "notes": list(self.notes),
            "criterion": self.criterion,
            "source": self.source,
            "disclaimer": self.disclaimer,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidacy:
        """Inverse of :meth:`to_dict`."""
        return cls(
            levels=tuple(d["levels"]),
            vertebrae=tuple(d["vertebrae"]),
            criterion=d.get("criterion", CRITERION),
            source=d.get("source", SOURCE),
            findings={k: list(v) for k, v in d.get("findings", {}).items()},
            levels_read=tuple(d.get("levels_read", ())),
            levels_not_read=tuple(d.get("levels_not_read", ())),
            indeterminate=tuple(d.get("indeterminate", ())),
            notes=tuple(d.get("notes", ())),
            disclaimer=d.get("disclaimer", DISCLAIMER),
            study=d.get("study", ""),
        )


def candidacy(results: Iterable[ModicResult], study: str = "") -> Candidacy:
    """The imaging criterion of the FDA clearance, checked on one study's results.

    Parameters
    ----------
    results : iterable of ModicResult
        The endplate results of **one** study.
    study : str, optional
        Its key (default: the results' ``study_key``).

    Returns
    -------
    Candidacy

    Raises
    ------
    ValueError
        If the results come from more than one study.
    """
    rs = list(results)
    keys = {r.study_key for r in rs}
    if len(keys) > 1:
        raise ValueError(
            f"candidacy is judged per study; the results hold {len(keys)} studies "
            "(use ModicResults.candidacies())"
        )
    if not study and keys:
        study = next(iter(keys))
    findings: dict[str, list[str]] = {}
    read: set[str] = set()
    indeterminate: set[str] = set()
    notes: list[str] = []
    for r in rs:
        level = r.label.level
        if level is None:
            continue
        t = r.modic_type
        if level not in CRITERION_LEVELS:
            if level == "L2/L3" and t in _COUNTED:
                notes.append(
                    f"{r.label} (L2/L3) shows Modic {t.value}: outside the levels L3/L4 to L5/S1 of the "
                    "criterion, so not counted."
                )
            continue
        read.add(level)
        if t is ModicType.INDETERMINATE:
            indeterminate.add(level)
        elif t in _COUNTED:
            findings.setdefault(level, []).append(f"{r.label}: Modic {t.value}")
            if t is ModicType.MIXED_2_3:
                notes.append(f"{r.label} is mixed 2/3: counted because it holds type-2 (fatty) marrow.")
    levels = tuple(lv for lv in CRITERION_LEVELS if lv in findings)
    vertebrae: list[str] = []
    for lv in levels:
        for v in _vertebrae_of(lv):
            if v not in vertebrae:
                vertebrae.append(v)
    return Candidacy(
        levels=levels,
        vertebrae=tuple(vertebrae),
        findings={lv: findings[lv] for lv in levels},
        levels_read=tuple(lv for lv in CRITERION_LEVELS if lv in read),
        levels_not_read=tuple(lv for lv in CRITERION_LEVELS if lv not in read),
        indeterminate=tuple(lv for lv in CRITERION_LEVELS if lv in indeterminate and lv not in findings),
        notes=tuple(notes),
        study=study,
    )
