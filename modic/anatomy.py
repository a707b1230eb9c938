"""Anatomical checks on ROIs: is each one where its label says?

A polygon meant for "L4 inferior" that lands inside L5 (the other side of the L4/L5 disc)
measures L5's marrow and is typed, confidently, as if it were L4's. :func:`check_rois`
looks at every ROI, drawn or proposed, and says in plain words when its place does not fit
its label. :func:`modic.classify` attaches the findings to each result as warnings and caps
the confidence (:data:`CONFIDENCE_CAP`); the annotator shows them live (a "!" badge).

Two layers of checks
--------------------
**Geometry only** (no image analysis; always run):

* ``order``: labels run in anatomical order along the spine. Every endplate, reference and
  body ROI is put at its centroid (LPS mm) and projected on the column's axis (the first
  principal axis of the centroids, head up; the patient's head-foot axis when fewer than
  three vertebrae are marked). Head to foot the order is L4 superior, L4 reference/body,
  L4 inferior, L5 superior ... S1 superior. A pair counts as out of order when the one that
  should be lower lies more than :data:`ORDER_MARGIN_MM` (3 mm) *above* the other: next
  to one disc, the two bands are 10-15 mm apart centre to centre (two 5 mm bands 1 mm from
  the endplates and a disc of 8-12 mm), so 3 mm is far beyond drawing jitter yet well
  short of a band put across the disc. The ROI out of order with most others is flagged;
  when two are out of order only with each other, both are, unless another check faults
  just one of them (then only that one).
* ``overlap``: two endplate ROIs of different labels, or a reference and an endplate ROI,
  share pixels (a warning on both endplate ROIs; on a reference, a warning when at least
  :data:`REFERENCE_OVERLAP_WARN` (half) of it is covered, else a note, and a warning on an
  endplate ROI that overlaps *another* vertebra's reference). Shapes on planes less than
  :data:`SAME_PLANE_MM` (2 mm) apart are compared
  after mapping one onto the other's pixel grid (pixel centres, LPS); a share of at least
  :data:`OVERLAP_SHARE` (10 %) of the smaller ROI is flagged. Bands on two sides of a disc
  never share marrow; a few edge pixels of hand-drawn shapes that touch are tolerated.
* With **body outlines** (ROIs of kind ``"body"``, drawn, derived or proposed): an
  endplate ROI must lie in its own vertebra's body (at least :data:`INSIDE_SHARE`, half,
  of its pixels within the outline grown by :data:`BODY_MARGIN_MM`, 2 mm, for the cortex
  and the drawing), at the right end (``wrong_end``: a superior band's centroid in the
  upper part of the body, above :data:`END_FRACTION` = 0.4 of the body's height along the
  axis, an inferior one below 0.6); a reference in its body (``reference_place``: at least
  80 % of it inside the outline, centroid within the middle 0.2-0.8 of the height, away
  from the endplates where changes are).

**From the image** (``vertebrae=``, the bodies :func:`modic.propose.propose` finds):
the same inside / end / reference checks against the body each ROI *lies in*, found by
location, not by name (the proposal's level names can be off by one in transitional
anatomy, so a disagreement about names alone is only a ``note``):

* ``outside_body``: an endplate ROI with less than a third of it inside any body found
  (in a disc, or off the spine);
* ``wrong_body``: an ROI whose label's vertebra, counted against the body it lies in,
  disagrees with what most of the other ROIs say (the ROI for L4 lies in the body where
  the other ROIs put L5);
* ``level_names`` (note): the labels agree with one another but not with the proposal's
  count from the sacrum (shown only when the proposal found the sacrum without doubts).

A check that cannot decide (too few ROIs, planes too far apart, no body in reach) says
nothing: a false alarm on a correct annotation teaches people to ignore the warnings.

Severity: ``"warning"`` (the ROI may not be where its label says: the result's confidence
is capped) or ``"note"`` (shown, confidence kept).

Coordinates: centroids and axes in LPS mm; masks ``(rows, columns)`` on an ROI's own image.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .annotations import ROI, VERTEBRAE, Annotations
from .measure import mask_indices

__all__ = [
    "AnatomyFinding",
    "check_rois",
    "findings_by_roi",
    "apply_findings",
    "finding_text",
    "CONFIDENCE_CAP",
    "ORDER_MARGIN_MM",
    "OVERLAP_SHARE",
]

Severity = Literal["warning", "note"]

#: Largest confidence a result keeps when its ROI (or its reference) has an anatomy
#: warning. The bootstrap confidence says how stable the type is *for the marrow measured*;
#: when that marrow may belong to another endplate or vertebra, it says nothing about the
#: endplate named, so the result must not look sure: 0.5 is "as likely wrong as right".
CONFIDENCE_CAP = 0.5
#: A pair of ROIs is out of order when the lower one lies this far above the other (mm).
ORDER_MARGIN_MM = 3.0
#: Shapes on planes closer than this (mm) are compared pixel by pixel.
SAME_PLANE_MM = 2.0
#: Share of the smaller ROI that another ROI may cover before it is an overlap.
OVERLAP_SHARE = 0.10
#: A body outline is compared with ROIs on planes at most this far (mm): about half the
#: width of a lumbar body (40-50 mm), so that an ROI on the next sagittal slice still counts.
BODY_REACH_MM = 15.0
#: A body outline is grown by this much (mm) before asking whether an endplate ROI lies in
#: it (cortex 0.4-1.2 mm, and a hand-drawn band that touches the endplate line).
BODY_MARGIN_MM = 2.0
#: Share of an endplate ROI that must lie in its body.
INSIDE_SHARE = 0.5
#: Below this share inside any body found in the image, an endplate ROI is outside the bodies.
OUTSIDE_SHARE = 1.0 / 3.0
#: A superior endplate ROI's centroid lies above this fraction of its body's height (0 the
#: lowest point of the body along the axis, 1 the highest); an inferior one below 1 - this.
END_FRACTION = 0.4
#: A reference's centroid lies within this central share of the body's height...
REFERENCE_RANGE = (0.2, 0.8)
#: ... and this share of its pixels inside the body outline.
REFERENCE_INSIDE = 0.8

#: A proposed body the proposal is less sure of than this is not used to judge ROIs (the
#: proposal gives 0.25-0.3 to outlines cut by the image edge or turned against their
#: neighbours, 0.5 and more to sound ones on the sample studies).
MIN_BODY_CONFIDENCE = 0.4
#: A reference sharing less than this with an endplate ROI is a note, more a warning: the
#: reference level is a median, which the band's marrow cannot move while it holds less
#: than half the reference's voxels.
REFERENCE_OVERLAP_WARN = 0.5

_KIND_ORDER = ("endplate", "reference", "body")


@dataclass(frozen=True)
class AnatomyFinding:
    """One way an ROI does not fit its label.

    Attributes
    ----------
    roi_id : str
        The ROI at fault.
    problem : str
        ``"order"``, ``"overlap"``, ``"outside_body"``, ``"wrong_end"``, ``"wrong_body"``,
        ``"reference_place"`` or ``"level_names"``.
    message : str
        In plain words, starting with the ROI's label.
    severity : {"warning", "note"}
        A warning caps a result's confidence (:data:`CONFIDENCE_CAP`); a note does not.
    others : tuple of str
        Ids of the other ROIs involved (the one it overlaps, is out of order with...).
    """

    roi_id: str
    problem: str
    message: str
    severity: Severity = "warning"
    others: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"anatomy: {self.message}"


@dataclass
class _Roi:
    roi: ROI
    mask: NDArray[np.bool_]
    points: NDArray[np.float64]  # (N, 3) LPS of the mask's pixel centres
    centroid: NDArray[np.float64]
    rank: float = 0.0
    proj: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    planes: dict[Any, tuple[float, NDArray[np.intp], NDArray[np.intp], tuple[int, int, int, int]]] = field(
        default_factory=dict
    )
    box: tuple[int, int, int, int] = (0, -1, 0, -1)  # its mask's first and last row and column

    @property
    def name(self) -> str:
        return str(self.roi.label)

    def on_plane(
        self, plane: Any
    ) -> tuple[float, NDArray[np.intp], NDArray[np.intp], tuple[int, int, int, int]]:
        """The centroid's distance from ``plane`` (mm), the (row, col) pixel each pixel
        centre falls in on its grid, ``(N,)`` each, and their first and last row and
        column; computed once per plane (the ROIs of a study lie on a few planes and every
        pair is checked)."""
        got = self.planes.get(plane)
        if got is None:
            xy = plane.patient_to_pixel(self.points)
            r, c = np.floor(xy[:, 1]).astype(int), np.floor(xy[:, 0]).astype(int)
            bounds = (int(r.min()), int(r.max()), int(c.min()), int(c.max()))
            got = (float(plane.distance_to_plane(self.centroid)[0]), r, c, bounds)
            self.planes[plane] = got
        return got


def _prepare(roi: ROI) -> _Roi | None:
    mask = roi.pixel_mask()
    rows, cols = mask_indices(mask)
    if rows.size == 0:
        return None
    pts = roi.image.pixel_to_patient(np.stack([cols + 0.5, rows + 0.5], axis=1))
    box = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))
    return _Roi(roi, mask, pts, pts.mean(axis=0), box=box)


def _rank(roi: ROI) -> float:
    """Head -> foot position implied by the label: vertebra, then superior 0, middle 1, inferior 2."""
    lab = roi.label
    within = 1.0 if lab.endplate is None else (0.0 if lab.endplate.value == "superior" else 2.0)
    return VERTEBRAE.index(lab.vertebra) * 3.0 + within


def _axis(items: Sequence[_Roi]) -> NDArray[np.float64]:
    """Unit vector along the column, pointing to the head (LPS +z is superior)."""
    head = np.array([0.0, 0.0, 1.0])
    if len({it.roi.label.vertebra for it in items}) < 3:
        return head
    c = np.array([it.centroid for it in items])
    c = c - c.mean(axis=0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    if s[0] / math.sqrt(len(items)) < 10.0:  # rms spread under 10 mm: no column to follow
        return head
    u = vt[0]
    if abs(u @ head) < math.cos(math.radians(60)):  # not a head-foot column: use the patient's axis
        return head
    return u if u @ head > 0 else -u


def _share_inside(
    a: _Roi,
    mask: NDArray[np.bool_],
    plane: Any,
    reach_mm: float,
    box: tuple[int, int, int, int] | None = None,
) -> float | None:
    """Share of ``a``'s pixel centres that fall in ``mask`` (on ``plane``'s grid); None when
    ``a`` lies farther than ``reach_mm`` from the plane. ``box``: the mask's first and last
    row and column, when known (0 without looking when ``a`` lies outside it)."""
    distance, r, c, (r0, r1, c0, c1) = a.on_plane(plane)
    if abs(distance) > reach_mm:
        return None
    if box is not None and (r1 < box[0] or r0 > box[1] or c1 < box[2] or c0 > box[3]):
        return 0.0
    ok = (r >= 0) & (r < mask.shape[0]) & (c >= 0) & (c < mask.shape[1])
    inside = np.zeros(len(r), dtype=bool)
    inside[ok] = mask[r[ok], c[ok]]
    return float(inside.mean())


def _grow(mask: NDArray[np.bool_], mm: float, spacing: tuple[float, float]) -> NDArray[np.bool_]:
    from scipy import ndimage

    if mm <= 0:
        return mask
    d = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return np.asarray(d <= mm)


@dataclass
class _Body:
    name: str
    roi: ROI
    mask: NDArray[np.bool_]
    grown: NDArray[np.bool_]
    lo: float
    hi: float
    proposed: bool


def _body(it: _Roi, axis: NDArray[np.float64], proposed: bool) -> _Body:
    pr = it.points @ axis
    sp = (float(it.roi.image.pixel_spacing[0]), float(it.roi.image.pixel_spacing[1]))
    return _Body(
        it.roi.label.vertebra,
        it.roi,
        it.mask,
        _grow(it.mask, BODY_MARGIN_MM, sp),
        float(pr.min()),
        float(pr.max()),
        proposed,
    )


def _fraction(it: _Roi, body: _Body, axis: NDArray[np.float64]) -> float:
    """Where ``it``'s centroid lies along ``body``'s height: 0 its lowest point, 1 its highest."""
    return (float(it.centroid @ axis) - body.lo) / max(body.hi - body.lo, 1e-6)


def _order_findings(items: list[_Roi]) -> list[AnatomyFinding]:
    n = len(items)
    bad: dict[int, set[int]] = {i: set() for i in range(n)}
    for i in range(n):
        for j in range(n):
            a, b = items[i], items[j]
            if a.rank < b.rank and b.proj - a.proj > ORDER_MARGIN_MM:  # b should be lower, is higher
                bad[i].add(j)
                bad[j].add(i)
    out: list[AnatomyFinding] = []
    alive = set(range(n))
    while True:
        counts = {i: len(bad[i] & alive) for i in alive}
        top = max(counts.values(), default=0)
        if top == 0:
            break
        culprits = sorted(i for i, c in counts.items() if c == top)
        for i in culprits:
            a = items[i]
            others = sorted(bad[i] & alive, key=lambda k: items[k].rank)
            if len(culprits) == 2 and top == 1 and others and others[0] in culprits:
                b = items[others[0]]
                where = "above" if a.proj > b.proj else "below"
                msg = (
                    f"{a.name} lies {abs(a.proj - b.proj):.0f} mm {where} {b.name}, against the order of "
                    "the labels: one of the two is on the wrong side of a disc, or the labels are swapped"
                )
            else:
                parts = []
                for k in others[:3]:
                    b = items[k]
                    where = "above" if a.proj > b.proj else "below"
                    parts.append(f"{abs(a.proj - b.proj):.0f} mm {where} {b.name}")
                msg = (
                    f"{a.name} lies {', '.join(parts)}{' ...' if len(others) > 3 else ''}, against the "
                    "order of the labels: on the wrong side of a disc, or the wrong label?"
                )
            out.append(
                AnatomyFinding(a.roi.id, "order", msg, "warning", tuple(items[k].roi.id for k in others))
            )
        alive -= set(culprits)
    return out


def _overlap_findings(items: list[_Roi]) -> list[AnatomyFinding]:
    out: list[AnatomyFinding] = []
    cand = [it for it in items if it.roi.label.kind in ("endplate", "reference")]
    for i, a in enumerate(cand):
        for b in cand[i + 1 :]:
            ka, kb = a.roi.label.kind, b.roi.label.kind
            if ka == "reference" and kb == "reference" or a.roi.label == b.roi.label:
                continue
            s_ab = _share_inside(a, b.mask, b.roi.image, SAME_PLANE_MM, b.box)
            if s_ab is None:
                continue
            s_ba = _share_inside(b, a.mask, a.roi.image, SAME_PLANE_MM, a.box)
            if s_ba is None:
                continue
            share = max(s_ab, s_ba)  # of the smaller one, roughly
            if share < OVERLAP_SHARE:
                continue
            if ka == "endplate" and kb == "endplate":
                for x, y in ((a, b), (b, a)):
                    out.append(
                        AnatomyFinding(
                            x.roi.id,
                            "overlap",
                            f"{x.name} overlaps {y.name} ({share:.0%} of the smaller ROI): bands of two "
                            "endplates never share marrow",
                            "warning",
                            (y.roi.id,),
                        )
                    )
            else:
                ref, ep = (a, b) if ka == "reference" else (b, a)
                inref = s_ab if ka == "reference" else s_ba
                sev: Severity = "warning" if inref >= REFERENCE_OVERLAP_WARN else "note"
                out.append(
                    AnatomyFinding(
                        ref.roi.id,
                        "overlap",
                        f"{ref.name} overlaps the endplate ROI {ep.name} ({inref:.0%} of the reference): "
                        "reference marrow should lie away from the endplates",
                        sev,
                        (ep.roi.id,),
                    )
                )
                if ep.roi.label.vertebra != ref.roi.label.vertebra:
                    out.append(
                        AnatomyFinding(
                            ep.roi.id,
                            "overlap",
                            f"{ep.name} overlaps {ref.name} ({share:.0%} of the smaller ROI): it lies in the "
                            f"{ref.roi.label.vertebra} body, not next to the endplate named?",
                            "warning",
                            (ref.roi.id,),
                        )
                    )
    return out


def _body_findings(items: list[_Roi], bodies: list[_Body], axis: NDArray[np.float64]) -> list[AnatomyFinding]:
    """Checks against body outlines the annotations hold (matched by label)."""
    out: list[AnatomyFinding] = []
    by_name: dict[str, list[_Body]] = {}
    for b in bodies:
        by_name.setdefault(b.name, []).append(b)
    for it in items:
        kind = it.roi.label.kind
        if kind not in ("endplate", "reference"):
            continue
        own = _shares(it, by_name.get(it.roi.label.vertebra, []))
        if not own:
            continue
        body, share = max(own, key=lambda t: t[1])
        v = it.roi.label.vertebra
        if kind == "endplate":
            if share < INSIDE_SHARE:
                elsewhere = _best_other(it, bodies, v)
                tail = f"; it lies in the {elsewhere} body" if elsewhere else ""
                out.append(
                    AnatomyFinding(
                        it.roi.id,
                        "outside_body",
                        f"only {share:.0%} of {it.name} lies in the {v} body outline{tail}",
                        "warning",
                        (body.roi.id,),
                    )
                )
                continue
            out.extend(_end_finding(it, body, axis, f"the {v} body"))
        else:
            inner = _share_inside(it, body.mask, body.roi.image, BODY_REACH_MM) or 0.0
            out.extend(_reference_finding(it, body, axis, inner, f"the {v} body"))
    return out


def _shares(it: _Roi, bodies: Iterable[_Body]) -> list[tuple[_Body, float]]:
    """``(body, share of it inside the grown outline)`` for the bodies within reach."""
    out = []
    for b in bodies:
        share = _share_inside(it, b.grown, b.roi.image, BODY_REACH_MM)
        if share is not None:
            out.append((b, share))
    return out


def _best_other(it: _Roi, bodies: list[_Body], not_name: str) -> str | None:
    best, name = INSIDE_SHARE, None
    for b in bodies:
        if b.name == not_name:
            continue
        s = _share_inside(it, b.grown, b.roi.image, BODY_REACH_MM)
        if s is not None and s >= best:
            best, name = s, b.name
    return name


def _end_finding(it: _Roi, body: _Body, axis: NDArray[np.float64], what: str) -> list[AnatomyFinding]:
    ep = it.roi.label.endplate
    if ep is None:
        return []
    f = _fraction(it, body, axis)
    if ep.value == "superior" and f < END_FRACTION:
        return [
            AnatomyFinding(
                it.roi.id,
                "wrong_end",
                f"{it.name} lies in the lower part of {what} ({f:.0%} of its height): "
                "that is the inferior endplate's marrow",
                "warning",
                (body.roi.id,),
            )
        ]
    if ep.value == "inferior" and f > 1.0 - END_FRACTION:
        return [
            AnatomyFinding(
                it.roi.id,
                "wrong_end",
                f"{it.name} lies in the upper part of {what} ({f:.0%} of its height): "
                "that is the superior endplate's marrow, across the disc from the "
                "endplate named",
                "warning",
                (body.roi.id,),
            )
        ]
    return []


def _reference_finding(
    it: _Roi, body: _Body, axis: NDArray[np.float64], inner: float, what: str
) -> list[AnatomyFinding]:
    f = _fraction(it, body, axis)
    lo, hi = REFERENCE_RANGE
    if inner < REFERENCE_INSIDE:
        return [
            AnatomyFinding(
                it.roi.id,
                "reference_place",
                f"{it.name}: only {inner:.0%} of it lies inside {what}; reference marrow "
                "must lie inside a vertebral body",
                "warning",
                (body.roi.id,),
            )
        ]
    if not lo <= f <= hi:
        end = "inferior" if f < lo else "superior"
        return [
            AnatomyFinding(
                it.roi.id,
                "reference_place",
                f"{it.name} lies near the {end} endplate of {what} ({f:.0%} of its height): "
                "reference marrow should be central, away from the endplates where changes "
                "are",
                "warning",
                (body.roi.id,),
            )
        ]
    return []


def _image_findings(
    items: list[_Roi], bodies: list[_Body], axis: NDArray[np.float64], names_reliable: bool
) -> list[AnatomyFinding]:
    """Checks against the bodies found in the image, matched by location."""
    out: list[AnatomyFinding] = []
    placed: list[tuple[_Roi, _Body, int]] = []
    for it in items:
        kind = it.roi.label.kind
        if kind not in ("endplate", "reference"):
            continue
        shares = _shares(it, bodies)
        if not shares:
            continue
        body, share = max(shares, key=lambda t: t[1])
        if share < OUTSIDE_SHARE:
            if kind == "endplate" and _between_neighbours(it, bodies, axis):
                out.append(
                    AnatomyFinding(
                        it.roi.id,
                        "outside_body",
                        f"{it.name}: only {share:.0%} of it lies in a vertebral body modic "
                        "finds in the image (in a disc, or off the spine?)",
                        "warning",
                    )
                )
            continue
        if share < INSIDE_SHARE:
            continue  # cannot decide which body it is in
        placed.append((it, body, VERTEBRAE.index(it.roi.label.vertebra) - VERTEBRAE.index(body.name)))
        if kind == "endplate":
            out.extend(_end_finding(it, body, axis, "its vertebral body"))
        else:
            inner = _share_inside(it, body.mask, body.roi.image, BODY_REACH_MM) or 0.0
            out.extend(_reference_finding(it, body, axis, inner, "its vertebral body"))
    if not placed:
        return out
    counts = Counter(off for _, _, off in placed)
    mode, n_mode = counts.most_common(1)[0]
    if n_mode * 2 <= len(placed) and len(placed) > 1:
        return out  # no majority: cannot tell which labels are right
    for it, body, off in placed:
        if off == mode:
            continue
        k = VERTEBRAE.index(body.name) + mode
        meant = VERTEBRAE[k] if 0 <= k < len(VERTEBRAE) else "another vertebra"
        out.append(
            AnatomyFinding(
                it.roi.id,
                "wrong_body",
                f"{it.name} lies in the vertebral body that the other ROIs' labels make "
                f"{meant}, not {it.roi.label.vertebra}",
                "warning",
                (body.roi.id,),
            )
        )
    if names_reliable and mode != 0:
        word = "lower" if mode < 0 else "higher"
        for it, body, off in placed:
            if off == mode and it.roi.label.kind == "endplate":
                out.append(
                    AnatomyFinding(
                        it.roi.id,
                        "level_names",
                        f"{it.name}: modic counts this vertebra as {body.name} from the sacrum, "
                        f"{abs(mode)} level(s) {word} than the labels; check the levels "
                        "(transitional anatomy?)",
                        "note",
                        (body.roi.id,),
                    )
                )
    return out


def _between_neighbours(it: _Roi, bodies: list[_Body], axis: NDArray[np.float64]) -> bool:
    """Whether ``it`` lies between two bodies found that are neighbours (no body left out
    between them), or beside one of the two ends of an unbroken chain: only then is an ROI
    outside every body really outside, not in a body the proposal could not outline."""
    p = float(it.centroid @ axis)
    above = [b for b in bodies if (b.lo + b.hi) / 2 > p]
    below = [b for b in bodies if (b.lo + b.hi) / 2 <= p]
    if not above or not below:
        return False
    a = min(above, key=lambda b: b.lo + b.hi)
    b = max(below, key=lambda b: b.lo + b.hi)
    return VERTEBRAE.index(b.name) - VERTEBRAE.index(a.name) == 1


def _vertebrae_bodies(vertebrae: Any) -> tuple[list[ROI], bool]:
    """Body ROIs out of a Proposal, Annotations or iterable of ROI; and whether the names are sure.

    Of a :class:`~modic.propose.Proposal`, bodies under :data:`MIN_BODY_CONFIDENCE` (an
    outline the proposal itself doubts) are left out.
    """
    reliable = False
    keep: set[str] | None = None
    if all(hasattr(vertebrae, a) for a in ("bodies", "annotations", "sacrum_found")):  # a Proposal
        reliable = (
            bool(vertebrae.sacrum_found)
            and float(vertebrae.label_confidence) >= 0.8
            and not any("level" in w for w in vertebrae.warnings)
        )
        keep = {b.name for b in vertebrae.bodies if b.confidence >= MIN_BODY_CONFIDENCE}
        vertebrae = vertebrae.annotations
    rois = [r for r in vertebrae if isinstance(r, ROI) and r.label.kind == "body"]
    if keep is not None:
        rois = [r for r in rois if r.label.vertebra in keep]
    return rois, reliable


def check_rois(
    study: Any,
    annotations: Annotations | Iterable[ROI],
    *,
    vertebrae: Any = None,
) -> list[AnatomyFinding]:
    """Check that every ROI lies where its label says (see the module docstring).

    Parameters
    ----------
    study : LoadedStudy or None
        Unused by the geometry checks (every ROI carries its image plane); kept so that
        the image-based checks can grow without a new signature.
    annotations : Annotations or iterable of ROI
        Endplate, reference, body (and fat, ignored) ROIs, drawn or proposed.
    vertebrae : Proposal, Annotations or iterable of ROI, optional
        Vertebral bodies found in the image (:func:`modic.propose.propose`, or its
        ``annotations``; their body ROIs are used): the image-based checks. Omitted, only
        the geometry checks (and checks against body ROIs in ``annotations``) run.

    Returns
    -------
    list of AnatomyFinding
        Empty when nothing is wrong; at most one finding per ROI and problem.

    Examples
    --------
    >>> import modic
    >>> from modic.anatomy import check_rois
    >>> name = "siemens_15T_type1_type2"
    >>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
    >>> check_rois(None, rois)
    []
    """
    del study
    rois = list(annotations)
    items = [it for it in (_prepare(r) for r in rois if r.label.kind in _KIND_ORDER) if it is not None]
    findings: list[AnatomyFinding] = []
    if items:
        axis = _axis(items)
        for it in items:
            it.rank = _rank(it.roi)
            it.proj = float(it.centroid @ axis)
        findings += _order_findings(items)
        findings += _overlap_findings(items)
        drawn_bodies = [_body(it, axis, False) for it in items if it.roi.label.kind == "body"]
        if drawn_bodies:
            findings += _body_findings(items, drawn_bodies, axis)
        if vertebrae is not None:
            body_rois, reliable = _vertebrae_bodies(vertebrae)
            found = [b for b in (_prepare(r) for r in body_rois) if b is not None]
            if found:
                bodies = [_body(b, axis, True) for b in found]
                findings += _image_findings(
                    [it for it in items if it.roi.label.kind != "body"], bodies, axis, reliable
                )
    findings = _settle_ties(findings)
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.roi_id, f.problem) not in seen:
            seen.add((f.roi_id, f.problem))
            out.append(f)
    return out


def _settle_ties(findings: list[AnatomyFinding]) -> list[AnatomyFinding]:
    """Two ROIs out of order only with each other: when other checks fault one of them and
    not the other, the order finding of the other is dropped (it is the innocent one)."""
    strong = {f.roi_id for f in findings if f.problem != "order" and f.severity == "warning"}
    pair = {f.roi_id: f.others[0] for f in findings if f.problem == "order" and len(f.others) == 1}
    drop = {a for a, b in pair.items() if pair.get(b) == a and b in strong and a not in strong}
    return [f for f in findings if not (f.problem == "order" and f.roi_id in drop)]


def findings_by_roi(findings: Iterable[AnatomyFinding]) -> dict[str, list[AnatomyFinding]]:
    """The findings grouped by ROI id."""
    out: dict[str, list[AnatomyFinding]] = {}
    for f in findings:
        out.setdefault(f.roi_id, []).append(f)
    return out


def finding_text(f: AnatomyFinding, *, of_reference: bool = False) -> str:
    """The finding as a result warning: ``"anatomy: ..."`` or ``"anatomy (note): ..."``."""
    head = "anatomy" if f.severity == "warning" else "anatomy (note)"
    return f"{head}: {'its reference: ' if of_reference else ''}{f.message}"


def apply_findings(results: Iterable[Any], findings: Iterable[AnatomyFinding]) -> None:
    """Attach each result's anatomy findings (its ROI's and its reference's) as warnings, and
    cap the confidence at :data:`CONFIDENCE_CAP` when one is a warning.

    Parameters
    ----------
    results : iterable of ModicResult
        Changed in place: ``warnings`` gets the findings' text, ``confidence`` is capped and
        ``reason`` says so.
    findings : iterable of AnatomyFinding
    """
    by_roi = findings_by_roi(findings)
    for r in results:
        own = by_roi.get(r.roi_id, [])
        ref = by_roi.get(r.reference_id, []) if r.reference_id != r.roi_id else []
        texts = [finding_text(f) for f in own] + [finding_text(f, of_reference=True) for f in ref]
        if not texts:
            continue
        r.warnings.extend(texts)
        if any(f.severity == "warning" for f in own + ref) and r.confidence > CONFIDENCE_CAP:
            r.warnings.append(
                f"confidence capped at {CONFIDENCE_CAP:.2f} (measured {r.confidence:.2f}): the ROI may not "
                "be where its label says (see the anatomy warnings)"
            )
            r.confidence = CONFIDENCE_CAP
            r.reason = (r.reason + "; " if r.reason else "") + "confidence capped by an anatomy warning"
