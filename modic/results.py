"""Modic results per endplate, and their tables (records, CSV, JSON, pandas).

A :class:`ModicResult` carries the type and everything behind it: the signal intensity
ratios per sequence with their intervals, the voxel type fractions, the confidence, the
series and slices used, the reference, warnings, and a one-line explanation.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._io import atomic_write_text
from .annotations import RoiLabel
from .columns import RESULTS_FORMAT, TYPE_LABELS, csv_text
from .criteria import ModicType, SignalRatio

if TYPE_CHECKING:
    from .candidacy import Candidacy
    from .contrast import StudyContrast
    from .extent import Extent
from .sequence import Role

__all__ = ["SeriesUsed", "ModicResult", "ModicResults", "RECORD_FIELDS", "RESULTS_FORMAT", "TYPE_LABELS"]

_ROLES = (Role.T1, Role.T2, Role.STIR)


@dataclass(frozen=True)
class SeriesUsed:
    """Which series and slice a region was measured on, for one sequence."""

    role: Role
    series_key: str
    series_description: str
    slice_index: int
    distance_mm: float
    n_voxels: int


@dataclass
class ModicResult:
    """The Modic type of one endplate ROI, with the numbers behind it.

    Attributes
    ----------
    roi_id : str
    label : RoiLabel
    modic_type : ModicType
    confidence : float
        Share of bootstrap resamples of region and reference giving the same type.
    ratios : dict of Role to SignalRatio
    fractions : dict of str to float
        Share of voxels of each voxel type ("0".."3", "unclassified").
    reference_label : RoiLabel
        The reference ROI used.
    reference_id : str
    series : dict of Role to SeriesUsed
    warnings : list of str
    study_key : str
        Pseudonymous study key.
    reason : str
        How the type was reached, or for ``indeterminate`` why it cannot be typed.
    excluded_voxels : int
        Voxels left out as partial volume of the cortical endplate or disc.
    reference_correction : dict of Role to float
        Factor applied to the reference level for the coil gradient along the spine.
    contrast : StudyContrast or None
        The study's own contrast (fat on every sequence, noise).
    extent : Extent or None
        How far the change reaches into the vertebral body (Udby grade) and along the
        endplate (:mod:`modic.extent`); None for type 0, indeterminate, or a change whose
        extent cannot be measured (a warning says why).
    """

    roi_id: str
    label: RoiLabel
    modic_type: ModicType
    confidence: float
    ratios: dict[Role, SignalRatio]
    fractions: dict[str, float]
    reference_label: RoiLabel
    reference_id: str
    series: dict[Role, SeriesUsed]
    warnings: list[str] = field(default_factory=list)
    study_key: str = ""
    reason: str = ""
    excluded_voxels: int = 0
    reference_correction: dict[Role, float] = field(default_factory=dict)
    contrast: StudyContrast | None = None
    extent: Extent | None = None

    @property
    def explanation(self) -> str:
        """One line in plain language, e.g. ``"T1 0.71x and T2 1.62x of L4 reference marrow:
        oedema pattern, Modic 1"``."""
        parts = [f"{r.value} {self.ratios[r].ratio:.2f}x" for r in _ROLES if r in self.ratios]
        ratios = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        t = self.modic_type
        head = f"{ratios} of {self.reference_label.vertebra} reference marrow: {t.tissue}"
        if t is ModicType.NONE:
            return f"{head}, no Modic change"
        if t is ModicType.INDETERMINATE:
            return (
                f"{ratios} of {self.reference_label.vertebra} reference marrow: indeterminate, {self.reason}"
            )
        if t in (ModicType.MIXED_1_2, ModicType.MIXED_2_3):
            a, b = t.value.split("/")
            return (
                f"{head} ({self.fractions[a]:.0%} type-{a} and {self.fractions[b]:.0%} type-{b} voxels), "
                f"Modic {t.value}"
            )
        return f"{head}, Modic {t.value}"

    def to_record(self) -> dict[str, Any]:
        """A flat row for tables (see :data:`RECORD_FIELDS`; docs/results.md).

        The Modic type is spelled as in every results file (:data:`TYPE_LABELS`:
        ``"type 1"``, ``"indeterminate"``) and series as ``"series 7"``, so that no text
        column looks like a number; a sequence not read gives None.
        """
        rec: dict[str, Any] = {
            "study": self.study_key,
            "roi_id": self.roi_id,
            "vertebra": self.label.vertebra,
            "endplate": self.label.endplate.value if self.label.endplate else "",
            "level": self.label.level or "",
            "modic_type": TYPE_LABELS[self.modic_type.value],
            "confidence": round(self.confidence, 3),
        }
        for r in _ROLES:
            k = r.value.lower()
            sr = self.ratios.get(r)
            used = self.series.get(r)
            rec[f"{k}_sir"] = None if sr is None else round(sr.ratio, 4)
            rec[f"{k}_sir_low"] = None if sr is None else round(sr.low, 4)
            rec[f"{k}_sir_high"] = None if sr is None else round(sr.high, 4)
            rec[f"{k}_call"] = None if sr is None else sr.call.value
            rec[f"{k}_series"] = None if used is None else f"series {used.series_key}"
            rec[f"{k}_slice"] = None if used is None else used.slice_index
            rec[f"{k}_distance_mm"] = None if used is None else round(used.distance_mm, 2)
        rec["voxels"] = max((u.n_voxels for u in self.series.values()), default=0)
        rec["reference_voxels"] = self.ratios[Role.T1].n_reference if Role.T1 in self.ratios else 0
        for k in ("0", "1", "2", "3", "unclassified"):
            rec[f"fraction_{k}"] = round(self.fractions.get(k, 0.0), 4)
        rec["excluded_voxels"] = self.excluded_voxels
        rec["reference"] = str(self.reference_label)
        rec["reference_correction"] = round(self.reference_correction.get(Role.T1, 1.0), 4)
        fr = self.contrast.fat_ratio if self.contrast is not None else {}
        rn = self.contrast.relative_noise if self.contrast is not None else {}
        rec["t2_fat_ratio"] = round(fr[Role.T2], 4) if Role.T2 in fr else None
        rec["stir_fat_ratio"] = round(fr[Role.STIR], 4) if Role.STIR in fr else None
        rec["fat_suppression"] = (self.contrast.fat_suppression if self.contrast is not None else None) or ""
        rec["t1_snr"] = round(1.0 / rn[Role.T1], 2) if rn.get(Role.T1) else None
        ext = self.extent
        rec["extent_height_mm"] = None if ext is None else round(ext.height_mm, 2)
        rec["body_height_mm"] = None if ext is None else round(ext.body_height_mm, 2)
        rec["extent_height_fraction"] = None if ext is None else round(ext.height_fraction, 4)
        rec["extent_grade"] = "" if ext is None else ext.height_grade
        rec["extent_length_mm"] = None if ext is None else round(ext.length_mm, 2)
        rec["endplate_length_mm"] = None if ext is None else round(ext.endplate_length_mm, 2)
        rec["extent_length_fraction"] = None if ext is None else round(ext.length_fraction, 4)
        rec["extent_length_grade"] = "" if ext is None else ext.length_grade
        rec["body_source"] = "" if ext is None else ext.body_source
        rec["extent_slice"] = None if ext is None or ext.slice_index < 0 else ext.slice_index
        rec["reason"] = self.reason
        rec["warnings"] = " | ".join(self.warnings)
        rec["explanation"] = self.explanation
        return rec

    def to_dict(self) -> dict[str, Any]:
        """A nested JSON-able dict with everything, including per-sequence details."""
        return {
            "study": self.study_key,
            "roi_id": self.roi_id,
            "label": str(self.label),
            "vertebra": self.label.vertebra,
            "endplate": self.label.endplate.value if self.label.endplate else None,
            "level": self.label.level,
            "modic_type": TYPE_LABELS[self.modic_type.value],
            "confidence": self.confidence,
            "ratios": {
                r.value: {
                    "sir": s.ratio,
                    "ci95": [s.low, s.high],
                    "call": s.call.value,
                    "call_confidence": s.call_confidence,
                    "region_median": s.region_median,
                    "reference_median": s.reference_median,
                    "reference_spread": s.reference_spread,
                    "n_region": s.n_region,
                    "n_reference": s.n_reference,
                    "unit": s.unit,
                }
                for r, s in self.ratios.items()
            },
            "fractions": dict(self.fractions),
            "reference": {"label": str(self.reference_label), "roi_id": self.reference_id},
            "series": {
                r.value: {
                    "series": u.series_key,
                    "description": u.series_description,
                    "slice_index": u.slice_index,
                    "distance_mm": u.distance_mm,
                    "voxels": u.n_voxels,
                }
                for r, u in self.series.items()
            },
            "excluded_voxels": self.excluded_voxels,
            "reference_correction": {r.value: f for r, f in self.reference_correction.items()},
            "contrast": None if self.contrast is None else self.contrast.to_dict(),
            "extent": None if self.extent is None else self.extent.to_dict(),
            "reason": self.reason,
            "warnings": list(self.warnings),
            "explanation": self.explanation,
        }


def _fields() -> list[str]:
    f = ["study", "roi_id", "vertebra", "endplate", "level", "modic_type", "confidence"]
    for r in _ROLES:
        k = r.value.lower()
        f += [
            f"{k}_sir",
            f"{k}_sir_low",
            f"{k}_sir_high",
            f"{k}_call",
            f"{k}_series",
            f"{k}_slice",
            f"{k}_distance_mm",
        ]
    f += ["voxels", "reference_voxels"]
    f += [f"fraction_{k}" for k in ("0", "1", "2", "3", "unclassified")]
    f += ["excluded_voxels", "reference", "reference_correction"]
    f += ["t2_fat_ratio", "stir_fat_ratio", "fat_suppression", "t1_snr"]
    f += [
        "extent_height_mm",
        "body_height_mm",
        "extent_height_fraction",
        "extent_grade",
        "extent_length_mm",
        "endplate_length_mm",
        "extent_length_fraction",
        "extent_length_grade",
        "body_source",
        "extent_slice",
    ]
    f += ["reason", "warnings", "explanation"]
    return f


#: Column order of :meth:`ModicResults.to_csv` and :meth:`ModicResult.to_record`.
RECORD_FIELDS: tuple[str, ...] = tuple(_fields())


class ModicResults:
    """The results of one or more studies, as a list with table conversions."""

    def __init__(self, results: Iterable[ModicResult] = (), contrast: StudyContrast | None = None) -> None:
        self._results = list(results)
        #: The study's measured contrast (for the results of one study), else None.
        self.contrast = contrast

    def __iter__(self) -> Iterator[ModicResult]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> ModicResult:
        return self._results[i]

    def __repr__(self) -> str:
        return f"<ModicResults {len(self)} endplates: {dict(self.type_counts())}>"

    @property
    def candidacy(self) -> Candidacy:
        """The imaging criterion of the FDA clearance of basivertebral nerve ablation.

        Research information about a regulatory criterion, not a treatment
        recommendation (:mod:`modic.candidacy`). For the results of one study; see
        :meth:`candidacies` for several.

        Raises
        ------
        ValueError
            If the results hold more than one study.
        """
        from .candidacy import candidacy

        return candidacy(self._results)

    def candidacies(self) -> dict[str, Candidacy]:
        """:attr:`candidacy` per study key, for results of several studies."""
        from .candidacy import candidacy

        by: dict[str, list[ModicResult]] = {}
        for r in self._results:
            by.setdefault(r.study_key, []).append(r)
        return {k: candidacy(v, study=k) for k, v in by.items()}

    def type_counts(self) -> Counter[str]:
        """How many endplates of each Modic type."""
        return Counter(r.modic_type.value for r in self._results)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per endplate ROI (columns: :data:`RECORD_FIELDS`)."""
        return [r.to_record() for r in self._results]

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """CSV text of :meth:`to_records`; written atomically to ``path`` when given.

        Results format :data:`RESULTS_FORMAT` (docs/results.md): an empty text field is
        written ``-``, so that a plain ``pandas.read_csv`` reads every column with the
        same dtype in every cohort; :func:`modic.read_results` reads it back typed.
        """
        text = csv_text(RECORD_FIELDS, self.to_records())
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text (a list of :meth:`ModicResult.to_dict`); written atomically when ``path``."""
        text = json.dumps([r.to_dict() for r in self._results], indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_records`, typed as :func:`modic.read_results` types
        a results file (levels as ordered categoricals head to foot; needs pandas, the
        ``notebook`` extra)."""
        from .tables import frame_from_records

        return frame_from_records(self.to_records())
