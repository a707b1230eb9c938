"""The label numbers of the vertebra segmentation tools modic reads (:mod:`modic.labelmap`).

Plain data without numpy, so that the command line can list the conventions without
importing the label-map reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LabelConvention", "CONVENTIONS", "SPINEPS_BODY_LABELS", "SEGMENT_NAMES", "convention_names"]


@dataclass(frozen=True)
class LabelConvention:
    """How one tool numbers the vertebrae in its label maps.

    Attributes
    ----------
    name : str
        The name used in ``convention=`` and ``--labels-convention``.
    tool : str
        The tool, for :attr:`modic.annotations.ROI.source`.
    vertebrae : mapping of int to str
        Label value -> vertebra (``"T11"`` ... ``"L5"``; ``"S1"`` for a sacrum label). Other
        vertebrae (cervical, upper thoracic, L6, T13) are left out: modic does not name them.
    parts : mapping of int to str
        Further labels that belong to a vertebra's body (SPINEPS endplates ``200 + X``).
    sacrum : int or None
        The sacrum's label.
    all_vertebrae : int or None
        A single label for every vertebra (TotalSegmentator ``total_mr``).
    body_only : bool
        The labels hold the vertebral body only (no posterior elements).
    source : str
        Where the numbers come from (file and URL).
    """

    name: str
    tool: str
    vertebrae: Mapping[int, str]
    parts: Mapping[int, str] = field(default_factory=dict)
    sacrum: int | None = None
    all_vertebrae: int | None = None
    body_only: bool = False
    source: str = ""

    def values_of(self, vertebra: str) -> list[int]:
        """Every label value that belongs to ``vertebra``."""
        return sorted(
            [k for k, v in self.vertebrae.items() if v == vertebra]
            + [k for k, v in self.parts.items() if v == vertebra]
        )


_TSS_SOURCE = (
    "TotalSpineSeg README.md 'List of Classes' (step2_output), "
    "https://github.com/neuropoly/totalspineseg; also totalspineseg/resources/labels_maps/tss_map.json"
)
_TS_SOURCE = (
    "TotalSegmentator totalsegmentator/map_to_binary.py, class_map['{task}'], "
    "https://github.com/wasserth/TotalSegmentator"
)
_SPINEPS_SOURCE = (
    "SPINEPS README.md 'Labels' (instance mask: vertebrae 1-25, 100+X discs, 200+X endplates; semantic "
    "mask 49 Vertebra_Corpus_border, 50 Vertebra_Corpus), https://github.com/Hendrik-code/spineps; "
    "vertebra numbers from TPTBox v_idx2name (VerSe: 18 T11, 19 T12, 20-24 L1-L5, 25 L6, 26 S1, 28 T13)"
)

#: The label conventions modic reads, by name (aliases included).
CONVENTIONS: dict[str, LabelConvention] = {}


def _register(conv: LabelConvention, *aliases: str) -> None:
    for key in (conv.name, *aliases):
        CONVENTIONS[key] = conv


_register(
    LabelConvention(
        name="totalspineseg",
        tool="TotalSpineSeg",
        vertebrae={31: "T11", 32: "T12", 41: "L1", 42: "L2", 43: "L3", 44: "L4", 45: "L5", 50: "S1"},
        sacrum=50,
        source=_TSS_SOURCE,
    ),
)
_register(
    LabelConvention(
        name="totalsegmentator-vertebrae_mr",
        tool="TotalSegmentator vertebrae_mr",
        vertebrae={1: "S1", 2: "L5", 3: "L4", 4: "L3", 5: "L2", 6: "L1", 7: "T12", 8: "T11"},
        sacrum=1,
        source=_TS_SOURCE.format(task="vertebrae_mr"),
    ),
    "vertebrae_mr",
)
_register(
    LabelConvention(
        name="totalsegmentator-total_mr",
        tool="TotalSegmentator total_mr",
        vertebrae={18: "S1"},
        sacrum=18,
        all_vertebrae=19,
        source=_TS_SOURCE.format(task="total_mr"),
    ),
    "total_mr",
)
_register(
    LabelConvention(
        name="spineps",
        tool="SPINEPS",
        vertebrae={18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 26: "S1"},
        parts={
            200 + k: v
            for k, v in {18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5"}.items()
        },
        sacrum=26,
        source=_SPINEPS_SOURCE,
    ),
)
#: SPINEPS semantic ("seg-spine") labels of the vertebral body (corpus border, corpus).
SPINEPS_BODY_LABELS: tuple[int, ...] = (49, 50)
#: Name of the pseudo-convention of DICOM SEG files, whose segments are named.
SEGMENT_NAMES = "segment-names"


def convention_names() -> list[str]:
    """Every name ``--labels-convention`` accepts: conventions, their aliases, and
    :data:`SEGMENT_NAMES`, sorted."""
    return sorted({c.name for c in CONVENTIONS.values()} | set(CONVENTIONS) | {SEGMENT_NAMES})
