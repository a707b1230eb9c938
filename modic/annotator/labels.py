"""Which ROI label comes next, and stepping through labels from the keyboard.

Readers mark the endplates head to foot, each vertebra's reference marrow with them:
after ``L4 inferior`` comes ``L5 superior``; after an endplate of a vertebra that has no
reference yet, its reference is suggested first.

Examples
--------
>>> from modic.annotations import RoiLabel
>>> str(suggest_next_label([], None))
'L1 superior'
>>> l4i = RoiLabel.parse("L4 inferior")
>>> str(suggest_next_label([l4i], l4i))
'L4 reference'
>>> str(suggest_next_label([l4i, RoiLabel.parse("ref L4")], l4i))
'L5 superior'
"""

from __future__ import annotations

from collections.abc import Iterable

from ..annotations import VERTEBRAE, Endplate, RoiLabel

__all__ = ["ENDPLATE_SEQUENCE", "ALL_LABELS", "suggest_next_label", "step_vertebra", "with_kind"]


def _endplates() -> tuple[RoiLabel, ...]:
    out = []
    for v in VERTEBRAE:
        out.append(RoiLabel.for_endplate(v, Endplate.SUPERIOR))
        if v != "S1":
            out.append(RoiLabel.for_endplate(v, Endplate.INFERIOR))
    return tuple(out)


#: Every endplate, head to foot (T11 superior ... S1 superior).
ENDPLATE_SEQUENCE: tuple[RoiLabel, ...] = _endplates()
#: Every label, in anatomical order (superior endplate, reference, inferior endplate per vertebra).
ALL_LABELS: tuple[RoiLabel, ...] = tuple(
    sorted(
        ENDPLATE_SEQUENCE
        + tuple(RoiLabel(kind, v) for v in VERTEBRAE for kind in ("reference", "body", "fat")),
        key=lambda x: x.sort_key,
    )
)
_FIRST = RoiLabel.for_endplate("L1", Endplate.SUPERIOR)


def suggest_next_label(
    present: Iterable[RoiLabel], last: RoiLabel | None, last_endplate: RoiLabel | None = None
) -> RoiLabel:
    """The label a reader most likely draws next.

    Parameters
    ----------
    present : iterable of RoiLabel
        Labels of the ROIs drawn so far.
    last : RoiLabel or None
        Label of the ROI drawn (or relabelled) last.
    last_endplate : RoiLabel or None
        The last endplate label drawn: after a reference of its vertebra, the endplates
        go on from there (``L4 inferior``, ``ref L4`` -> ``L5 superior``).

    Returns
    -------
    RoiLabel
        The reference of ``last``'s vertebra if ``last`` is an endplate and that
        vertebra has no reference; else the first endplate after ``last`` (or after
        ``last_endplate``, or from the superior endplate of a reference's vertebra), head
        to foot, that is not drawn; else the first lumbar endplate not drawn; else a
        missing reference of a vertebra with endplates; else the endplate after ``last``.
    """
    labels = set(present)
    refs = {lab.vertebra for lab in labels if lab.kind == "reference"}
    if last is not None and last.kind == "endplate" and last.vertebra not in refs:
        return RoiLabel.for_reference(last.vertebra)
    if last is None:
        start = ENDPLATE_SEQUENCE.index(_FIRST)
    elif last.kind == "endplate":
        start = ENDPLATE_SEQUENCE.index(last) + 1
    elif last_endplate is not None and last_endplate.vertebra == last.vertebra:
        start = ENDPLATE_SEQUENCE.index(last_endplate) + 1
    else:
        start = ENDPLATE_SEQUENCE.index(RoiLabel.for_endplate(last.vertebra, Endplate.SUPERIOR))
    for lab in ENDPLATE_SEQUENCE[start:]:
        if lab not in labels:
            return lab
    for lab in ENDPLATE_SEQUENCE[ENDPLATE_SEQUENCE.index(_FIRST) :]:
        if lab not in labels:
            return lab
    for v in VERTEBRAE:
        if v not in refs and any(lab.vertebra == v and lab.kind == "endplate" for lab in labels):
            return RoiLabel.for_reference(v)
    if last is not None and last.kind == "endplate":
        i = ENDPLATE_SEQUENCE.index(last)
        return ENDPLATE_SEQUENCE[min(i + 1, len(ENDPLATE_SEQUENCE) - 1)]
    return last if last is not None else _FIRST


def with_kind(label: RoiLabel, kind: str) -> RoiLabel:
    """The same vertebra as ``label`` with another kind: ``"superior"``, ``"inferior"``,
    ``"reference"``, ``"body"`` or ``"fat"``.

    S1 has no inferior endplate: asking for it gives S1 superior.

    Examples
    --------
    >>> str(with_kind(RoiLabel.parse("L4 inferior"), "reference"))
    'L4 reference'
    """
    if kind in ("reference", "body", "fat"):
        return RoiLabel(kind, label.vertebra)  # type: ignore[arg-type]
    if kind not in ("superior", "inferior"):
        raise ValueError(f"kind must be 'superior', 'inferior', 'reference', 'body' or 'fat', got {kind!r}")
    if label.vertebra == "S1":
        kind = "superior"
    return RoiLabel.for_endplate(label.vertebra, kind)


def label_kind(label: RoiLabel) -> str:
    """``"superior"``, ``"inferior"``, ``"reference"``, ``"body"`` or ``"fat"``."""
    return label.kind if label.endplate is None else label.endplate.value


def step_vertebra(label: RoiLabel, delta: int) -> RoiLabel:
    """Move ``label`` ``delta`` vertebrae towards the feet (negative: the head), keeping its kind.

    Examples
    --------
    >>> str(step_vertebra(RoiLabel.parse("L4 superior"), 1))
    'L5 superior'
    >>> str(step_vertebra(RoiLabel.parse("L5 inferior"), 1))
    'S1 superior'
    """
    i = min(max(VERTEBRAE.index(label.vertebra) + int(delta), 0), len(VERTEBRAE) - 1)
    v = VERTEBRAE[i]
    if label.endplate is None:
        return RoiLabel(label.kind, v)
    return with_kind(RoiLabel.for_reference(v), label_kind(label))
