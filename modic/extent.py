"""How far a Modic change reaches: into the vertebral body, and along the endplate.

Two research gradings of a change's size are measured on the sagittal images:

- **Height** (Udby et al., J Orthop Res 2022): the greatest height the change reaches
  into the vertebral body, as a share of the body's height, graded **A** (< 25 %),
  **B** (25-50 %) or **C** (> 50 %).
- **Length along the endplate** (Jensen et al., Nordic Modic Consensus Group, Acta Radiol
  2007): the antero-posterior length of the endplate the change covers, as a share of the
  endplate's length, graded **small** (< 25 %), **medium** (25-50 %) or **large**
  (>= 50 %).

This module holds the result (:class:`Extent`), the two gradings, and the measurement
(:func:`measure_extent`), see its docstring for the method and its failure modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Extent",
    "HEIGHT_GRADES",
    "LENGTH_GRADES",
    "height_grade",
    "length_grade",
]

HeightGrade = Literal["A", "B", "C"]
LengthGrade = Literal["small", "medium", "large"]
BodySource = Literal["outline", "estimated"]

#: Udby height grades and their bounds (share of the vertebral body height): A < 0.25,
#: B 0.25-0.50, C > 0.50 (Udby et al., J Orthop Res 2022; the phantom's
#: :func:`modic.phantom.spec.udby_grade` uses the same rule: 0.25 is B, 0.50 is B).
HEIGHT_GRADES: tuple[str, ...] = ("A", "B", "C")
#: Length grades over the endplate (share of its antero-posterior length): small < 0.25,
#: medium 0.25-0.50, large >= 0.50 (Nordic Modic Consensus Group, Jensen et al. 2007).
LENGTH_GRADES: tuple[str, ...] = ("small", "medium", "large")


def height_grade(fraction: float) -> HeightGrade:
    """Udby grade of a change reaching ``fraction`` of the vertebral body height.

    Examples
    --------
    >>> height_grade(0.1), height_grade(0.25), height_grade(0.5), height_grade(0.51)
    ('A', 'B', 'B', 'C')
    """
    if not fraction >= 0:
        raise ValueError(f"height fraction must be >= 0, got {fraction!r}")
    if fraction < 0.25:
        return "A"
    if fraction <= 0.5:
        return "B"
    return "C"


def length_grade(fraction: float) -> LengthGrade:
    """Nordic length grade of a change covering ``fraction`` of the endplate's length.

    Examples
    --------
    >>> length_grade(0.2), length_grade(0.25), length_grade(0.49), length_grade(0.5)
    ('small', 'medium', 'medium', 'large')
    """
    if not fraction >= 0:
        raise ValueError(f"length fraction must be >= 0, got {fraction!r}")
    if fraction < 0.25:
        return "small"
    if fraction < 0.5:
        return "medium"
    return "large"


@dataclass(frozen=True)
class Extent:
    """The size of one Modic change, measured on a sagittal slice.

    Attributes
    ----------
    height_mm : float
        Greatest height of the change into the vertebral body, from the endplate along
        the body's head-foot axis (perpendicular to the endplate), mm.
    body_height_mm : float
        Height of the vertebral body along the same axis, mm (see :func:`measure_extent`).
    height_fraction : float
        ``height_mm / body_height_mm`` (capped at 1).
    height_grade : {"A", "B", "C"}
        Udby grade of ``height_fraction``.
    length_mm : float
        Antero-posterior length of the endplate the change covers, mm.
    endplate_length_mm : float
        Antero-posterior length of the endplate, mm.
    length_fraction : float
        ``length_mm / endplate_length_mm`` (capped at 1).
    length_grade : {"small", "medium", "large"}
        Nordic grade of ``length_fraction``.
    body_source : {"outline", "estimated"}
        ``"outline"``: the body was a drawn (or imported) body ROI; ``"estimated"``: found
        from the image.
    slice_index : int
        The slice (0-based, of the series the endplate ROI was drawn on) where the
        change was largest and was measured; -1 when unknown.
    slice_offset_mm : float
        That slice's distance from the endplate ROI's own slice (mm, along its normal).
    """

    height_mm: float
    body_height_mm: float
    height_fraction: float
    height_grade: HeightGrade
    length_mm: float
    endplate_length_mm: float
    length_fraction: float
    length_grade: LengthGrade
    body_source: BodySource
    slice_index: int = -1
    slice_offset_mm: float = 0.0

    def __post_init__(self) -> None:
        for name in ("height_mm", "body_height_mm", "length_mm", "endplate_length_mm"):
            v = getattr(self, name)
            if not v >= 0:
                raise ValueError(f"Extent.{name} must be >= 0, got {v!r}")
        for name in ("height_fraction", "length_fraction"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"Extent.{name} must be within 0-1, got {v!r}")
        if self.height_grade not in HEIGHT_GRADES:
            raise ValueError(f"Extent.height_grade must be one of {HEIGHT_GRADES}, got {self.height_grade!r}")
        if self.length_grade not in LENGTH_GRADES:
            raise ValueError(f"Extent.length_grade must be one of {LENGTH_GRADES}, got {self.length_grade!r}")
        if self.body_source not in ("outline", "estimated"):
            raise ValueError(f"Extent.body_source must be 'outline' or 'estimated', got {self.body_source!r}")

    @classmethod
    def from_measurements(
        cls,
        height_mm: float,
        body_height_mm: float,
        length_mm: float,
        endplate_length_mm: float,
        body_source: BodySource,
        slice_index: int = -1,
        slice_offset_mm: float = 0.0,
    ) -> Extent:
        """An extent from its four lengths: the fractions and grades follow."""
        hf = min(1.0, height_mm / body_height_mm) if body_height_mm > 0 else float("nan")
        lf = min(1.0, length_mm / endplate_length_mm) if endplate_length_mm > 0 else float("nan")
        return cls(
            height_mm=float(height_mm),
            body_height_mm=float(body_height_mm),
            height_fraction=float(hf),
            height_grade=height_grade(hf),
            length_mm=float(length_mm),
            endplate_length_mm=float(endplate_length_mm),
            length_fraction=float(lf),
            length_grade=length_grade(lf),
            body_source=body_source,
            slice_index=int(slice_index),
            slice_offset_mm=float(slice_offset_mm),
        )

    @property
    def summary(self) -> str:
        """One line, e.g. ``"grade B (38 % of the L4 body height), medium (45 % of the endplate)"``."""
        return (
            f"grade {self.height_grade} ({self.height_fraction:.0%} of the body height), "
            f"{self.length_grade} ({self.length_fraction:.0%} of the endplate length)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lengths in mm)."""
        return {
            "height_mm": round(self.height_mm, 2),
            "body_height_mm": round(self.body_height_mm, 2),
            "height_fraction": round(self.height_fraction, 4),
            "height_grade": self.height_grade,
            "length_mm": round(self.length_mm, 2),
            "endplate_length_mm": round(self.endplate_length_mm, 2),
            "length_fraction": round(self.length_fraction, 4),
            "length_grade": self.length_grade,
            "body_source": self.body_source,
            "slice_index": self.slice_index,
            "slice_offset_mm": round(self.slice_offset_mm, 2),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Extent:
        """Inverse of :meth:`to_dict`."""
        return cls(
            height_mm=float(d["height_mm"]),
            body_height_mm=float(d["body_height_mm"]),
            height_fraction=float(d["height_fraction"]),
            height_grade=d["height_grade"],
            length_mm=float(d["length_mm"]),
            endplate_length_mm=float(d["endplate_length_mm"]),
            length_fraction=float(d["length_fraction"]),
            length_grade=d["length_grade"],
            body_source=d["body_source"],
            slice_index=int(d.get("slice_index", -1)),
            slice_offset_mm=float(d.get("slice_offset_mm", 0.0)),
        )
