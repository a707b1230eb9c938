"""Live Modic results: re-classify only the endplate ROIs a change can affect.

An endplate's result depends on its own ROI and on the reference it is compared with
(:func:`modic.measure.choose_reference`: the same vertebra's, else the nearest). So after
a change only these are classified again (:func:`modic.reading.classify_roi`):

* endplate ROIs that were added or changed (shape, label, image);
* when a reference changes, appears or goes: the endplates of its vertebra (old and new
  label), those that used it, those without a reference of their own vertebra (the
  nearest may now be another) and those that failed (perhaps for want of a reference);
* when a vertebral body outline changes, appears or goes: the endplates of its vertebra
  (their extent is measured against it, :mod:`modic.extent`).

After every change the anatomy of the whole document is checked again
(:func:`modic.anatomy.check_rois`, 0.05-0.2 s; with the bodies of a proposal
once the annotator has one, :attr:`LiveResults.vertebrae`): :attr:`LiveResults.anatomy`
holds each ROI's findings and :attr:`LiveResults.results` the results as
:func:`modic.classify` gives them, warnings attached and confidence capped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from ..anatomy import AnatomyFinding, apply_findings, check_rois, findings_by_roi
from ..annotations import ROI, Annotations
from ..errors import ModicError
from ..reading import classify_roi
from ..results import ModicResult
from ..study import LoadedStudy

__all__ = ["LiveResults", "changed_ids"]

logger = logging.getLogger(__name__)


def _key(roi: ROI) -> tuple[object, ...]:
    return (roi.label, roi.shape, roi.image)


def changed_ids(before: Iterable[ROI], after: Iterable[ROI]) -> tuple[set[str], set[str]]:
    """``(added or changed, removed)`` ROI ids between two versions of a document."""
    old = {r.id: _key(r) for r in before}
    new = {r.id: _key(r) for r in after}
    changed = {i for i, k in new.items() if old.get(i) != k}
    removed = set(old) - set(new)
    return changed, removed


class LiveResults:
    """The Modic result (or the reason there is none) of every endplate ROI of a document.

    Parameters
    ----------
    study : LoadedStudy
        The volumes the ROIs are measured on.

    Attributes
    ----------
    results : dict of str to ModicResult or str
        By ROI id: the result, or the message saying why the ROI cannot be classified;
        with its anatomy warnings and capped confidence (:func:`modic.anatomy.apply_findings`).
    anatomy : dict of str to list of AnatomyFinding
        By ROI id (every kind), what does not fit its label.
    vertebrae : Proposal or None
        Bodies found in the image, for the image-based anatomy checks.
    """

    def __init__(self, study: LoadedStudy) -> None:
        self.study = study
        self._raw: dict[str, ModicResult | str] = {}
        self.results: dict[str, ModicResult | str] = {}
        self.anatomy: dict[str, list[AnatomyFinding]] = {}
        self.vertebrae: Any = None

    def check_anatomy(self, annotations: Annotations) -> None:
        """Check every ROI's anatomy again and rebuild :attr:`results` from the raw results."""
        try:
            findings = check_rois(self.study, annotations, vertebrae=self.vertebrae)
        except (ModicError, ValueError) as exc:  # a check must never stop the drawing
            logger.warning("anatomy checks failed: %s", exc)
            findings = []
        self.anatomy = findings_by_roi(findings)
        shown: dict[str, ModicResult | str] = dict(self._raw)
        for i, r in self._raw.items():  # copies only of the results that get findings
            if isinstance(r, ModicResult) and (i in self.anatomy or r.reference_id in self.anatomy):
                shown[i] = dataclasses.replace(r, warnings=list(r.warnings))
        apply_findings([r for i, r in shown.items() if isinstance(r, ModicResult) and r is not self._raw[i]],
                       findings)
        self.results = shown

    def anatomy_warnings(self, roi_id: str) -> list[str]:
        """Texts of the anatomy findings of an ROI (and, for an endplate, of its reference)."""
        from ..anatomy import finding_text

        out = [finding_text(f) for f in self.anatomy.get(roi_id, [])]
        res = self._raw.get(roi_id)
        if isinstance(res, ModicResult) and res.reference_id != roi_id:
            out += [finding_text(f, of_reference=True) for f in self.anatomy.get(res.reference_id, [])]
        return out

    def classify(self, roi: ROI, references: list[ROI], bodies: Iterable[ROI] = ()) -> ModicResult | str:
        """The result of one endplate ROI, or the error message (its extent against the body
        outline of its vertebra among ``bodies``, else the body estimated from the image)."""
        body = next((b for b in bodies if b.label.vertebra == roi.label.vertebra), None)
        try:
            return classify_roi(self.study, roi, references, body=body)
        except (ModicError, ValueError) as exc:
            logger.debug("ROI %s (%s): %s", roi.label, roi.id, exc)
            return str(exc)

    def refresh_all(self, annotations: Annotations) -> set[str]:
        """Classify every endplate ROI; returns their ids."""
        refs = annotations.references()
        bodies = annotations.bodies()
        self._raw = {r.id: self.classify(r, refs, bodies) for r in annotations.endplates()}
        self.check_anatomy(annotations)
        return set(self._raw)

    def update(self, before: Annotations, after: Annotations) -> set[str]:
        """Bring the results from ``before`` to ``after``; returns the ids classified again.

        Parameters
        ----------
        before, after : Annotations
            The document before and after a change (or an undo / redo).
        """
        changed, removed = changed_ids(before, after)
        old_rois = {r.id: r for r in before}
        rois = {r.id: r for r in after}
        for i in removed | changed:
            if i not in rois or rois[i].label.kind != "endplate":
                self._raw.pop(i, None)
        touched_refs = {
            i for i in changed | removed if (i in old_rois and old_rois[i].label.kind == "reference")
        } | {i for i in changed if rois[i].label.kind == "reference"}
        ref_vertebrae = {old_rois[i].label.vertebra for i in touched_refs if i in old_rois} | {
            rois[i].label.vertebra for i in touched_refs if i in rois
        }
        todo: set[str] = {i for i in changed if rois[i].label.kind == "endplate"}
        if touched_refs:
            for roi in after.endplates():
                res = self._raw.get(roi.id)
                if (
                    roi.label.vertebra in ref_vertebrae
                    or not isinstance(res, ModicResult)
                    or res.reference_id in touched_refs
                    or res.reference_label.vertebra != roi.label.vertebra
                ):
                    todo.add(roi.id)
        body_vertebrae = {
            r.label.vertebra
            for i in changed | removed
            for r in (old_rois.get(i), rois.get(i))
            if r is not None and r.label.kind == "body"
        }
        todo |= {roi.id for roi in after.endplates() if roi.label.vertebra in body_vertebrae}
        refs = after.references()
        bodies = after.bodies()
        for i in todo:
            self._raw[i] = self.classify(rois[i], refs, bodies)
        self.check_anatomy(after)
        return todo

    def types(self) -> dict[str, str]:
        """Modic type value by ROI id, for the ROIs that have a result."""
        return {i: r.modic_type.value for i, r in self.results.items() if isinstance(r, ModicResult)}
