"""Grade a trainee's answer against a case's key.

Per endplate of the key:

* **Type credit** (:func:`type_credit`): 1 for the exact type; for a near miss the share
  of the change's components both name (``|answer & key| / |answer | key|``, type 0
  naming none), which gives

  =========  =====  =====  =====  =====  =====  =====
  answer     key 0  key 1  key 2  key 3  1/2    2/3
  =========  =====  =====  =====  =====  =====  =====
  0          1      0      0      0      0      0
  1          0      1      0      0      1/2    0
  2          0      0      1      0      1/2    1/2
  3          0      0      0      1      0      1/2
  1/2        0      1/2    1/2    0      1      1/3
  2/3        0      0      1/2    1/2    1/3    1
  =========  =====  =====  =====  =====  =====  =====

  so calling a mixed change pure (or the reverse) earns half credit, confusing two pure
  types or a change with normal marrow earns none. An endplate of the key the trainee did
  not answer is *missed* (credit 0, listed). An answer on an endplate outside the key is
  graded against type 0 (the expert read the study and saw no change there).
* **ROI agreement** (:func:`roi_dice`): the Dice coefficient of the trainee's and the
  expert's ROI, both rasterised on the expert ROI's image (the trainee's ROI is carried
  there through patient coordinates); 0 with a note when they were drawn more than half
  a slice apart. Dice >= :data:`DICE_MATCH` (0.8) is a match. Reported, not scored.
  Below a match, :func:`shape_disagreement` says why in words: the trainee's ROI is taller
  or thinner than the key's band, lies away from the endplate or runs into the disc, or
  covers less (or more) of the endplate's length.
* **What the classifier measured** inside the trainee's ROI and inside the expert's
  (:func:`modic.reading.classify_roi`), side by side: the trainee's ROI against the
  trainee's reference marrow (or the key's, when the trainee drew none: the report says so).

The score is the mean credit over the graded endplates.
"""

from __future__ import annotations

import logging
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from .._jsondoc import utc_now
from ..annotations import ROI, ImagePlane, Polygon, RoiLabel
from ..criteria import ModicType
from ..errors import MeasurementError
from ..sequence import Role
from ._json import TeachingFormatError
from .answer import TraineeAnswer
from .case import TeachingCase

if TYPE_CHECKING:  # pragma: no cover
    from ..results import ModicResult
    from ..study import LoadedStudy

__all__ = [
    "DICE_MATCH",
    "type_credit",
    "roi_dice",
    "shape_disagreement",
    "EndplateGrade",
    "Grade",
    "grade",
]

logger = logging.getLogger(__name__)

#: Dice coefficient from which a trainee's ROI counts as matching the expert's.
DICE_MATCH = 0.8

_COMPONENTS: dict[ModicType, frozenset[str]] = {
    ModicType.NONE: frozenset(),
    ModicType.TYPE1: frozenset("1"),
    ModicType.TYPE2: frozenset("2"),
    ModicType.TYPE3: frozenset("3"),
    ModicType.MIXED_1_2: frozenset("12"),
    ModicType.MIXED_2_3: frozenset("23"),
    # never a key or an answer (parse_modic_type refuses it); no credit against anything else
    ModicType.INDETERMINATE: frozenset(),
}

#: Said once in the report when an ROI's shape disagreed with the key's band.
SHAPE_TIP = (
    "Tip: an endplate ROI is a thin band of marrow along the endplate, a few millimetres tall, not a box "
    "around the change. In the annotator, shift+P (propose) draws such bands from the image "
    "(modic.propose_rois); adjust them rather than drawing boxes."
)

#: What each type looks like, for feedback.
LOOKS: dict[ModicType, str] = {
    ModicType.NONE: "normal marrow, the same signal as the reference marrow on every sequence",
    ModicType.TYPE1: "oedema: dark on T1, bright on T2 and STIR",
    ModicType.TYPE2: "fatty marrow: bright on T1, bright on T2, dark on STIR or fat-suppressed T2",
    ModicType.TYPE3: "sclerosis: dark on T1, T2 and STIR",
    ModicType.MIXED_1_2: "oedema and fat side by side: parts dark and parts bright on T1",
    ModicType.MIXED_2_3: "fat and sclerosis side by side: parts bright and parts dark on T1, dark on STIR",
    ModicType.INDETERMINATE: "a signal pattern that fits no Modic type (the classifier's call, never a key)",
}


def type_credit(answer: ModicType | str, key: ModicType | str) -> float:
    """Credit of an answered type against the key's (the table in the module docstring).

    Examples
    --------
    >>> type_credit("1/2", "1"), type_credit("2", "2/3"), type_credit("1", "2"), type_credit("0", "1")
    (0.5, 0.5, 0.0, 0.0)
    >>> round(type_credit("1/2", "2/3"), 3), type_credit("0", "0")
    (0.333, 1.0)
    """
    a, k = ModicType(answer), ModicType(key)
    if a is k:
        return 1.0
    ca, ck = _COMPONENTS[a], _COMPONENTS[k]
    if not ca or not ck:
        return 0.0
    return len(ca & ck) / len(ca | ck)


def _credit_words(credit: float) -> str:
    if credit == 1.0:
        return "correct"
    if credit == 0.5:
        return "half credit"
    if credit == 0.0:
        return "no credit"
    if abs(credit - 1 / 3) < 1e-9:
        return "a third of the credit"
    return f"{credit:.2f} credit"  # pragma: no cover - not in the table


def _same_plane(a: ImagePlane, b: ImagePlane) -> bool:
    return (
        (a.rows, a.columns) == (b.rows, b.columns)
        and np.allclose(a.orientation, b.orientation, atol=1e-6)
        and np.allclose(a.position, b.position, atol=1e-3)
        and np.allclose(a.pixel_spacing, b.pixel_spacing, rtol=1e-6)
    )


def roi_dice(trainee: ROI, expert: ROI, *, max_distance_mm: float) -> tuple[float, str]:
    """Dice coefficient of two ROIs, on the expert ROI's image.

    Both ROIs are rasterised on the expert ROI's pixel grid (pixel centres inside, as
    :meth:`ROI.pixel_mask`): the expert's directly; the trainee's directly when drawn on
    the same image, otherwise its outline is taken to patient coordinates
    (:meth:`ROI.patient_outline`), projected onto the expert's image
    (:meth:`ImagePlane.patient_to_pixel`) and rasterised there.

    Parameters
    ----------
    trainee, expert : ROI
    max_distance_mm : float
        When the trainee's ROI lies further than this from the expert's image plane (its
        outline's centroid, along the normal), the two were drawn on different slices:
        Dice 0 with a note. Usually half the slice spacing of the expert's series.

    Returns
    -------
    dice : float
        ``2 |A & B| / (|A| + |B|)`` in 0..1.
    note : str
        Why the Dice is 0 without overlap computed, else "".

    Examples
    --------
    >>> from modic.annotations import ImagePlane, Rectangle
    >>> plane = ImagePlane("1.2", "1.2.3", 1, 32, 32, (0, 0, 0), (0, 1, 0, 0, 0, -1), (1.0, 1.0))
    >>> key = ROI(RoiLabel.parse("L4i"), Rectangle(4, 4, 12, 8), plane)
    >>> shifted = ROI(RoiLabel.parse("L4i"), Rectangle(8, 4, 16, 8), plane)  # half its width
    >>> roi_dice(shifted, key, max_distance_mm=2.0)
    (0.5, '')
    """
    plane = expert.image
    expert_mask = expert.pixel_mask()
    if _same_plane(trainee.image, plane):
        mask = trainee.pixel_mask()
    else:
        outline = trainee.patient_outline()
        distance = float(abs(plane.distance_to_plane(outline.mean(axis=0))[0]))
        if distance > max_distance_mm:
            return 0.0, (
                f"drawn {distance:.1f} mm from the key's slice (more than half a slice, "
                f"{max_distance_mm:.1f} mm): on another slice"
            )
        mask = Polygon(plane.patient_to_pixel(outline)).rasterize(plane.rows, plane.columns)
    total = int(mask.sum()) + int(expert_mask.sum())
    if total == 0:  # pragma: no cover - an expert ROI always covers pixels
        return 0.0, "neither ROI covers a pixel centre"
    return 2.0 * int(np.count_nonzero(mask & expert_mask)) / total, ""


#: Shape feedback tolerances. Heights and lengths are compared as ratios: a trainee ROI
#: 1.5x as tall as the key's band (or under 2/3 of it) is "taller"/"thinner"; one covering
#: under 60 % (or over 130 %) of the band's length along the endplate is "shorter"/"longer".
#: Positions: an edge more than ``_SHAPE_MM`` (2 mm, about one pixel of a 1.5 T lumbar T1
#: at 0.6-1 mm plus a drawing's wobble) from the key's is "away from the endplate". Teaching
#: thresholds for words, not diagnostic constants: they change what the feedback says, not
#: any grade.
_TALLER, _THINNER, _SHORTER, _LONGER, _SHAPE_MM = 1.5, 2 / 3, 0.6, 1.3, 2.0


def _in_plane_mm(roi: ROI, plane: ImagePlane) -> NDArray[np.float64]:
    """``(N, 2)`` in-plane mm (along image x, along image y) of an ROI's outline on ``plane``."""
    rel = roi.patient_outline() - np.asarray(plane.position, dtype=float)
    return np.column_stack([rel @ plane.row_cosine, rel @ plane.column_cosine])


def shape_disagreement(trainee: ROI, expert: ROI) -> str:
    """Why a trainee's endplate ROI overlaps the expert's band poorly, in words ("" when
    nothing stands out).

    Both outlines are taken to the expert ROI's image plane in mm. The band's long axis
    (the principal axis of its outline) runs along the endplate, its short axis across it,
    oriented towards the disc (towards the feet for an inferior endplate, the head for a
    superior one); the band's edge on the disc side is the endplate. Compared: the heights
    across the endplate, the distance of the trainee's disc-side edge from the endplate,
    and the lengths along it (thresholds in ``_TALLER`` ...).

    Returns
    -------
    str
        E.g. ``"your ROI is 14 mm tall; the expected band is 5 mm next to the endplate"``.

    Examples
    --------
    >>> from modic.annotations import ImagePlane, Rectangle
    >>> plane = ImagePlane("1.2", "1.2.3", 1, 64, 64, (0, 0, 0), (0, 1, 0, 0, 0, -1), (1.0, 1.0))
    >>> band = ROI(RoiLabel.parse("L4i"), Rectangle(10, 30, 40, 35), plane)  # 5 mm, endplate at y 35
    >>> box = ROI(RoiLabel.parse("L4i"), Rectangle(10, 21, 40, 35), plane)  # 14 mm tall
    >>> shape_disagreement(box, band)
    'your ROI is 14 mm tall; the expected band is 5 mm next to the endplate'
    """
    plane = expert.image
    k, t = _in_plane_mm(expert, plane), _in_plane_mm(trainee, plane)
    centred = k - k.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    along, across = vt[0], vt[1]
    if sv[0] < 1.5 * max(sv[1], 1e-9):  # not a band: measure across the image's head-foot axis
        head = np.array([plane.row_cosine[2], plane.column_cosine[2]])  # +S in-plane
        across = head / max(float(np.linalg.norm(head)), 1e-9)
        along = np.array([across[1], -across[0]])
    # towards the disc: the feet (-S) for an inferior endplate, the head (+S) for a superior one
    to_head = across[0] * plane.row_cosine[2] + across[1] * plane.column_cosine[2]
    inferior = trainee.label.endplate is not None and trainee.label.endplate.value == "inferior"
    if (to_head > 0) == inferior:
        across = -across
    ka, ta = k @ across, t @ across
    kl, tl = k @ along, t @ along
    key_h, mine_h = float(ka.max() - ka.min()), float(ta.max() - ta.min())
    key_l, mine_l = float(kl.max() - kl.min()), float(tl.max() - tl.min())
    gap = float(ka.max() - ta.max())  # > 0: the trainee's disc-side edge stops short of the endplate
    words: list[str] = []
    if mine_h > _TALLER * key_h:
        words.append(
            f"your ROI is {mine_h:.0f} mm tall; the expected band is {key_h:.0f} mm next to the endplate"
        )
    elif mine_h < _THINNER * key_h:
        words.append(f"your ROI is {mine_h:.0f} mm tall; the expected band is {key_h:.0f} mm")
    if gap > _SHAPE_MM:
        words.append(f"its edge lies {gap:.0f} mm from the endplate (the band starts at the endplate)")
    elif gap < -_SHAPE_MM:
        words.append(f"it reaches {-gap:.0f} mm past the endplate, into the disc")
    if mine_l < _SHORTER * key_l:
        words.append(f"it covers {mine_l:.0f} mm of the band's {key_l:.0f} mm along the endplate")
    elif mine_l > _LONGER * key_l:
        words.append(f"it is {mine_l:.0f} mm long; the band runs {key_l:.0f} mm along the endplate")
    if not words:
        shift = float(tl.mean() - kl.mean())
        if abs(shift) > _SHAPE_MM:
            words.append(f"it is shifted {abs(shift):.0f} mm along the endplate from the band")
    return "; ".join(words)


@dataclass
class EndplateGrade:
    """The grade of one endplate.

    Attributes
    ----------
    label : RoiLabel
    key_type : ModicType
        The key's type (type 0 for an answer outside the key, ``in_key`` False).
    answer_type : ModicType or None
        None when the trainee did not answer (missed).
    credit : float
        0..1, see :func:`type_credit`.
    in_key : bool
    key_extent, answer_extent : str or None
        Udby grades.
    dice : float or None
        None when one of the two ROIs is missing.
    roi_note : str
        Why there is no Dice, or why it is 0.
    shape_note : str
        Below a match (Dice < :data:`DICE_MATCH`): why, from the shapes
        (:func:`shape_disagreement`), e.g. "your ROI is 14 mm tall; the expected band is 5 mm
        next to the endplate"; else "".
    trainee_roi_id, key_roi_id : str or None
    trainee_result, key_result : ModicResult or None
        The classifier inside the trainee's ROI and inside the expert's.
    trainee_result_note, key_result_note : str
        Why a result is missing (the measurement error), or how it was measured.
    """

    label: RoiLabel
    key_type: ModicType
    answer_type: ModicType | None
    credit: float
    in_key: bool = True
    key_extent: str | None = None
    answer_extent: str | None = None
    dice: float | None = None
    roi_note: str = ""
    shape_note: str = ""
    trainee_roi_id: str | None = None
    key_roi_id: str | None = None
    trainee_result: ModicResult | None = None
    key_result: ModicResult | None = None
    trainee_result_note: str = ""
    key_result_note: str = ""

    @property
    def missed(self) -> bool:
        """The trainee did not answer this endplate of the key."""
        return self.answer_type is None

    @property
    def extent_agrees(self) -> bool | None:
        """The trainee's Udby grade equals the key's; None when either gives none."""
        if self.key_extent is None or self.answer_extent is None:
            return None
        return self.key_extent == self.answer_extent

    @property
    def roi_match(self) -> bool | None:
        """Dice >= 0.8; None when there is no Dice."""
        return None if self.dice is None else self.dice >= DICE_MATCH

    @property
    def verdict(self) -> str:
        """``"correct"``, ``"half credit"``, ``"a third of the credit"``, ``"no credit"`` or ``"missed"``."""
        return "missed" if self.missed else _credit_words(self.credit)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (classifier results as type, confidence and ratios)."""
        return {
            "endplate": str(self.label),
            "level": self.label.level,
            "in_key": self.in_key,
            "key": self.key_type.value,
            "answer": None if self.answer_type is None else self.answer_type.value,
            "credit": round(self.credit, 4),
            "verdict": self.verdict,
            "key_extent": self.key_extent,
            "answer_extent": self.answer_extent,
            "extent_agrees": self.extent_agrees,
            "dice": None if self.dice is None else round(self.dice, 4),
            "roi_match": self.roi_match,
            "roi_note": self.roi_note,
            "roi_shape": self.shape_note,
            "classifier_in_your_roi": _result_dict(self.trainee_result, self.trainee_result_note),
            "classifier_in_key_roi": _result_dict(self.key_result, self.key_result_note),
        }


def _result_dict(result: ModicResult | None, note: str) -> dict[str, Any] | None:
    if result is None and not note:
        return None
    if result is None:
        return {"note": note}
    return {
        "modic_type": result.modic_type.value,
        "confidence": round(result.confidence, 3),
        "sir": {r.value: round(s.ratio, 4) for r, s in result.ratios.items()},
        "explanation": result.explanation,
        # how far the change reaches (modic.extent: Udby grade, share of the body height), or None
        "extent": None if result.extent is None else result.extent.to_dict(),
        # how the type was reached; for "indeterminate" why the classifier cannot type it
        "reason": result.reason,
        "note": note,
    }


def _ratios(result: ModicResult) -> str:
    roles = [r for r in (Role.T1, Role.T2, Role.STIR) if r in result.ratios]
    return ", ".join(f"{r.value} {result.ratios[r].ratio:.2f}x" for r in roles)


@dataclass
class Grade:
    """The graded attempt of one trainee at one case.

    Attributes
    ----------
    case : TeachingCase
    answer : TraineeAnswer
    rows : list of EndplateGrade
        The key's endplates head to foot, then answers outside the key.
    trainee : str
    time : str
        When it was graded, ISO 8601 UTC.
    attempt_id : str
        A new uuid4 hex per grading.
    notes : list of str
        About the answer as a whole (ROIs without a type, duplicate ROIs...).
    study : LoadedStudy or None
        The study the classifier measured (for :func:`~modic.teaching.feedback_figure`).
    """

    case: TeachingCase
    answer: TraineeAnswer
    rows: list[EndplateGrade]
    trainee: str = ""
    time: str = field(default_factory=utc_now)
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    notes: list[str] = field(default_factory=list)
    study: LoadedStudy | None = field(default=None, repr=False)

    @property
    def score(self) -> float:
        """Mean credit over the graded endplates (0..1)."""
        return sum(r.credit for r in self.rows) / len(self.rows) if self.rows else 0.0

    @property
    def missed(self) -> list[RoiLabel]:
        """Endplates of the key the trainee did not answer."""
        return [r.label for r in self.rows if r.missed]

    def row(self, label: RoiLabel | str) -> EndplateGrade:
        """The grade of one endplate (``"L4 inferior"``, ``"L4i"``...)."""
        want = label if isinstance(label, RoiLabel) else RoiLabel.parse(label)
        for r in self.rows:
            if r.label == want:
                return r
        raise KeyError(f"{want} is not graded in case {self.case.id}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of the whole attempt (no patient identifiers)."""
        compared = [r for r in self.rows if r.dice is not None]
        return {
            "attempt": self.attempt_id,
            "time": self.time,
            "trainee": self.trainee,
            "case": self.case.id,
            "case_title": self.case.title,
            "score": round(self.score, 4),
            "n_endplates": len(self.rows),
            "n_missed": len(self.missed),
            "n_roi_compared": len(compared),
            "n_roi_match": sum(1 for r in compared if r.roi_match),
            "modic_version": __version__,
            "notes": list(self.notes),
            "endplates": [r.to_dict() for r in self.rows],
        }

    def to_text(self, width: int = 100) -> str:
        """The feedback report in plain language (what ``modic teach grade`` prints)."""
        case = self.case
        total = sum(r.credit for r in self.rows)
        compared = [r for r in self.rows if r.dice is not None]
        lines = [
            f"Case {case.id}: {case.title} ({case.difficulty})",
            f"Trainee: {self.trainee or '(unnamed)'}, graded {self.time}",
            f"Score: {self.score:.0%} ({_num(total)} of {len(self.rows)} endplates)",
        ]
        if compared:
            lines.append(
                f"ROIs matching the key's (Dice >= {DICE_MATCH:.1f}): "
                f"{sum(1 for r in compared if r.roi_match)} of {len(compared)} compared"
            )
        lines.append("")
        for r in self.rows:
            lines.extend(_row_text(r, width))
        if self.missed:
            lines.append("")
            lines.append("Not answered: " + ", ".join(str(m) for m in self.missed))
        for note in self.notes:
            lines.append(f"Note: {note}")
        if any(r.shape_note for r in self.rows):
            lines.extend(textwrap.wrap(SHAPE_TIP, width, subsequent_indent="    "))
        if case.discussion:
            lines.append("")
            lines.extend(textwrap.wrap("Discussion: " + case.discussion, width))
        return "\n".join(lines) + "\n"


def _num(x: float) -> str:
    return f"{x:g}" if abs(x * 2 - round(x * 2)) < 1e-9 else f"{x:.2f}"


def _row_text(r: EndplateGrade, width: int) -> list[str]:
    key = r.key_type.value
    if r.missed:
        head = f"{r.label}: not answered; the key says {key} (no credit)"
    elif not r.in_key:
        answered = r.answer_type.value if r.answer_type else "?"
        head = f"{r.label}: you said {answered}; not in the key, so no change there ({r.verdict})"
    else:
        assert r.answer_type is not None
        head = f"{r.label}: you said {r.answer_type.value}, the key says {key} ({r.verdict})"
    if r.credit < 1.0:
        looks = LOOKS[r.key_type]
        head += f": Modic {key} is {looks}" if r.key_type is not ModicType.NONE else f": {looks}"
    out = textwrap.wrap(head, width, subsequent_indent="    ")
    details: list[str] = []
    important = r.credit < 1.0 or r.key_type is not ModicType.NONE
    if important:
        if r.key_result is not None:
            details.append(
                f"key's ROI: {r.key_result.explanation} (classifier confidence {r.key_result.confidence:.2f})"
            )
        elif r.key_result_note:
            details.append(f"key's ROI: {r.key_result_note}")
    if r.trainee_result is not None:
        res = r.trainee_result
        text = f"your ROI: {res.explanation} (classifier confidence {res.confidence:.2f})"
        details.append(text + (f"; {r.trainee_result_note}" if r.trainee_result_note else ""))
    elif r.trainee_result_note:
        details.append(f"your ROI: {r.trainee_result_note}")
    if r.dice is not None:
        match = "a match" if r.roi_match else f"a match needs {DICE_MATCH:.1f}"
        details.append(
            f"your ROI overlaps the key's with Dice {r.dice:.2f} ({match})"
            + (f": {r.roi_note}" if r.roi_note else "")
        )
    elif r.roi_note and important:
        details.append(r.roi_note)
    if r.shape_note:
        details.append(f"why: {r.shape_note}")
    if r.key_extent or r.answer_extent:
        if r.answer_extent is None:
            details.append(f"extent: the key grades it Udby {r.key_extent}")
        else:
            agree = " (agrees)" if r.key_extent == r.answer_extent else ""
            details.append(
                f"extent (Udby): you said {r.answer_extent}, the key says {r.key_extent or '-'}{agree}"
            )
        measured = [
            f"{who} {res.extent.height_grade} ({res.extent.height_fraction:.0%} of the body height)"
            for who, res in (("in the key's ROI", r.key_result), ("in yours", r.trainee_result))
            if res is not None and res.extent is not None
        ]
        if measured:
            details.append("extent measured by modic: " + ", ".join(measured))
    for d in details:
        out.extend(textwrap.wrap(d, width, initial_indent="    ", subsequent_indent="      "))
    return out


def _half_slice(study: LoadedStudy, plane: ImagePlane) -> float:
    for vol in study.volumes.values():
        if vol.series.series_uid == plane.series_instance_uid:
            return float(vol.geometry.slice_spacing) / 2
    return float(study.t1.geometry.slice_spacing) / 2


def _classify(study: LoadedStudy, roi: ROI, references: Sequence[ROI]) -> tuple[ModicResult | None, str]:
    from ..reading import classify_roi

    try:
        return classify_roi(study, roi, list(references)), ""
    except MeasurementError as e:
        return None, f"not measurable: {e}"


def grade(
    case: TeachingCase,
    answer: TraineeAnswer,
    study: LoadedStudy | None = None,
    *,
    trainee: str | None = None,
) -> Grade:
    """Grade an answer against a case's key.

    Parameters
    ----------
    case : TeachingCase
    answer : TraineeAnswer
    study : LoadedStudy, optional
        The case's study, already loaded (loaded from the case when None).
    trainee : str, optional
        Default ``answer.trainee``.

    Returns
    -------
    Grade

    Raises
    ------
    TeachingFormatError
        If the answer names another case (``answer.case_id`` is neither the case's id nor
        one of its former ids).

    Examples
    --------
    >>> from modic.teaching import load_case, shipped_cases_dir, TraineeAnswer
    >>> case = load_case(shipped_cases_dir() / "case-01")
    >>> types = {str(label): entry.modic_type.value for label, entry in case.key.items()}
    >>> answer = TraineeAnswer(types=types | {"L4 inferior": "1/2"})
    >>> g = grade(case, answer, trainee="alice")
    >>> g.row("L4 inferior").verdict, f"{g.score:.3f}"
    ('half credit', '0.955')
    """
    if answer.case_id and not case.known_as(answer.case_id):
        raise TeachingFormatError(f"the answer is for case {answer.case_id!r}, not {case.id!r}", field="case")
    if study is None:
        study = case.load_study()
    notes: list[str] = []
    trainee_rois: dict[RoiLabel, ROI] = {}
    for roi in answer.annotations.endplates():
        if roi.label in trainee_rois:
            notes.append(f"you drew more than one ROI for {roi.label}; the first one is graded")
            continue
        trainee_rois[roi.label] = roi
    for label in trainee_rois:
        if label not in answer.types:
            notes.append(f"you drew an ROI for {label} but gave it no type: it is not an answer")
    trainee_refs = answer.annotations.references()
    key_refs = case.references()

    rows: list[EndplateGrade] = []
    labels = list(case.key) + [label for label in answer.types if label not in case.key]
    for label in labels:
        entry = case.key.get(label)
        key_type = entry.modic_type if entry is not None else ModicType.NONE
        answer_type = answer.type_of(label)
        row = EndplateGrade(
            label=label,
            key_type=key_type,
            answer_type=answer_type,
            credit=0.0 if answer_type is None else type_credit(answer_type, key_type),
            in_key=entry is not None,
            key_extent=entry.extent if entry is not None else None,
            answer_extent=answer.extents.get(label),
        )
        mine, theirs = trainee_rois.get(label), case.key_roi(label)
        row.trainee_roi_id = mine.id if mine else None
        row.key_roi_id = theirs.id if theirs else None
        if mine is not None and theirs is not None:
            row.dice, row.roi_note = roi_dice(mine, theirs, max_distance_mm=_half_slice(study, theirs.image))
            if row.dice < DICE_MATCH and not row.roi_note:
                row.shape_note = shape_disagreement(mine, theirs)
        elif theirs is not None and answer_type is not None and trainee_rois:
            row.roi_note = "you drew no ROI here"
        elif mine is not None and theirs is None:
            row.roi_note = "the key has no ROI here to compare yours with"
        if theirs is not None:
            row.key_result, row.key_result_note = _classify(study, theirs, key_refs)
        if mine is not None:
            if trainee_refs:
                row.trainee_result, row.trainee_result_note = _classify(study, mine, trainee_refs)
            else:
                row.trainee_result, note = _classify(study, mine, key_refs)
                row.trainee_result_note = note or "you drew no reference marrow: measured against the key's"
        rows.append(row)
    if answer.types and not trainee_rois and case.rois.endplates():
        notes.append("you drew no ROI: the types are graded, the ROIs cannot be compared")
    return Grade(
        case=case,
        answer=answer,
        rows=rows,
        trainee=answer.trainee if trainee is None else trainee,
        notes=notes,
        study=study,
    )
