"""Draw ROIs on a phantom study the way a careful reader would, from its ground truth.

Used for the sample data's shipped annotations and for the accuracy benchmark: the
classifier is given the regions an expert would mark, and graded on the type.

* **Changed endplate**: on the sagittal T1 slice where the change is largest, a polygon
  around the abnormal signal (the change's pixels, one pixel in from its border, as a
  reader avoids the blurred edge), smoothed as a hand-drawn outline is.
* **Normal endplate**: on the T1 slice through the endplate's centre, a band of marrow
  1-6 mm under the endplate over the middle half of its depth, where a change would be.
* **Reference**: per vertebra, normal marrow in mid-body (an ellipse of about 12 x 8 mm
  around the truth's reference point), away from endplates and changes.

That is the *classic* reader, the default.  A :class:`ReaderStyle` draws the way readers
differ (``reader_annotations(truth, study, style=ReaderStyle.realistic(seed))``):

* normal endplates: a band hugging the endplate, its outer edge 0-3 T1 pixels in from the
  bony surface (0 = the band starts on the endplate and holds the dark cortical line) and
  3-8 mm tall, over the middle half to four fifths of the body's depth;
* changed endplates: one of the outline one pixel inside the change (classic), the whole
  change, or such a band over the change's antero-posterior extent;
* references anywhere in the vertebra's normal marrow (ellipses of 8-16 x 5-10 mm on the
  mid-body slice or a neighbour, off changes, fat islands, hemangiomas and the 2 mm next
  to the endplates), and some missing (the classifier then uses a neighbour's).

Every choice is drawn from the style's seed, per vertebra and endplate, so a style gives
the same ROIs every time; :meth:`ReaderStyle.draw` tells what was drawn for an endplate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from skimage.measure import approximate_polygon, label
from skimage.morphology import erosion

from ..annotations import ROI, VERTEBRAE, Annotations, ImagePlane, Mask, Polygon, RoiLabel
from ..study import LoadedStudy
from .truth import EndplateTruth, GroundTruth, VertebraTruth, anatomy_of, tissue_at

__all__ = ["reader_annotations", "ReaderStyle", "EndplateDraw"]

AUTHOR = "phantom reader (ground truth)"
#: Fixed time stamp of generated annotations, so that regenerating gives the same bytes.
GENERATED = "2026-01-01T00:00:00.000Z"
#: Smallest change, in T1 pixels, that a reader outlines on one slice.
MIN_PIXELS = 6


_KINDS = ("inside", "whole", "band")


@dataclass(frozen=True)
class EndplateDraw:
    """What the reader draws at one endplate.

    Attributes
    ----------
    kind : str
        ``"classic"`` (normal endplate, 1-6 mm band), ``"inside"`` (one pixel inside the
        change), ``"whole"`` (the whole change) or ``"band"``.
    inset_px : int or None
        Band only: T1 pixels between the endplate's bony surface and the band.
    height_mm : float or None
        Band only: its height into the body, mm.
    ap_fraction : float or None
        Band over a normal endplate: its antero-posterior half extent as a fraction of the
        body's depth.
    """

    kind: str
    inset_px: int | None = None
    height_mm: float | None = None
    ap_fraction: float | None = None


@dataclass(frozen=True)
class ReaderStyle:
    """How the simulated reader draws ROIs; the default is the classic reader.

    Attributes
    ----------
    normal : str
        Normal endplates: ``"classic"`` (marrow 1-6 mm under the endplate over the middle
        half of the depth) or ``"band"`` (see :class:`EndplateDraw`).
    change : str
        Changed endplates: ``"inside"`` (one pixel inside the border), ``"whole"``,
        ``"band"``, or ``"any"`` (each endplate draws one of the three).
    inset_px : tuple of int
        Inclusive range of band insets, T1 pixels from the endplate's bony surface.
    height_mm : tuple of float
        Range of band heights, mm.
    reference : str
        ``"mid-body"`` (classic, around the truth's reference point) or ``"anywhere"`` in
        the vertebra's normal marrow, at least 2 mm from the endplates.
    missing_reference : float
        Chance that a vertebra's reference ROI is not drawn (at least one is always drawn).
    seed : int
        Seed of every draw (use the study's seed).

    Examples
    --------
    >>> style = ReaderStyle.realistic(600001)
    >>> d = style.draw("L4", "inferior", changed=False)
    >>> d.kind, 0 <= d.inset_px <= 3, 3.0 <= d.height_mm <= 8.0
    ('band', True, True)
    >>> d == ReaderStyle.realistic(600001).draw("L4", "inferior", changed=False)
    True
    """

    normal: str = "classic"
    change: str = "inside"
    inset_px: tuple[int, int] = (0, 3)
    height_mm: tuple[float, float] = (3.0, 8.0)
    reference: str = "mid-body"
    missing_reference: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.normal not in ("classic", "band"):
            raise ValueError(f"ReaderStyle.normal must be 'classic' or 'band', got {self.normal!r}")
        if self.change not in (*_KINDS, "any"):
            raise ValueError(f"ReaderStyle.change must be one of {(*_KINDS, 'any')}, "
                             f"got {self.change!r}")
        if self.reference not in ("mid-body", "anywhere"):
            raise ValueError("ReaderStyle.reference must be 'mid-body' or 'anywhere', "
                             f"got {self.reference!r}")
        lo, hi = self.inset_px
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= 10):
            raise ValueError(f"ReaderStyle.inset_px must be ints 0 <= lo <= hi <= 10, "
                             f"got {self.inset_px!r}")
        if not 0.5 <= self.height_mm[0] <= self.height_mm[1] <= 20.0:
            raise ValueError(f"ReaderStyle.height_mm must be 0.5 <= lo <= hi <= 20, "
                             f"got {self.height_mm!r}")
        if not 0.0 <= self.missing_reference < 1.0:
            raise ValueError(f"ReaderStyle.missing_reference must be in [0, 1), "
                             f"got {self.missing_reference!r}")

    @classmethod
    def realistic(cls, seed: int, missing_reference: float = 0.2) -> ReaderStyle:
        """Bands at normal endplates, any of the three at changes, references anywhere."""
        return cls(normal="band", change="any", reference="anywhere",
                   missing_reference=missing_reference, seed=seed)

    def _rng(self, tag: int, vertebra: str, *extra: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, tag, VERTEBRAE.index(vertebra), *extra])

    def draw(self, vertebra: str, endplate: str, changed: bool) -> EndplateDraw:
        """What this reader draws at ``vertebra`` ``endplate`` (changed or normal)."""
        rng = self._rng(4242, vertebra, 0 if endplate == "superior" else 1)
        u_kind = float(rng.random())
        inset = int(rng.integers(self.inset_px[0], self.inset_px[1] + 1))
        height = round(float(rng.uniform(*self.height_mm)), 2)
        ap = round(float(rng.uniform(0.25, 0.4)), 3)
        if not changed:
            if self.normal == "classic":
                return EndplateDraw("classic")
            return EndplateDraw("band", inset, height, ap)
        kind = self.change if self.change != "any" else _KINDS[min(int(u_kind * 3), 2)]
        if kind == "band":
            return EndplateDraw("band", inset, height)
        return EndplateDraw(kind)

    def reference_missing(self, vertebra: str) -> bool:
        """Whether this reader leaves out the reference ROI of ``vertebra``."""
        if self.missing_reference == 0.0:
            return False
        return bool(self._rng(4243, vertebra).random() < self.missing_reference)

    @property
    def is_classic(self) -> bool:
        """Whether this is the classic reader (``change`` inside or whole)."""
        return (self.normal == "classic" and self.change in ("inside", "whole")
                and self.reference == "mid-body" and self.missing_reference == 0.0)


def _slice_points(
    study: LoadedStudy, k: int, centre: NDArray[np.float64], half_mm: float
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Pixel indices and LPS centres of T1 slice ``k`` within ``half_mm`` of ``centre``."""
    g = study.t1.geometry
    idx = g.patient_to_index(centre)
    r0, c0 = idx[1], idx[2]
    hr, hc = half_mm / g.pixel_spacing[0], half_mm / g.pixel_spacing[1]
    rows = np.arange(max(0, int(r0 - hr)), min(g.rows, int(r0 + hr) + 1))
    cols = np.arange(max(0, int(c0 - hc)), min(g.columns, int(c0 + hc) + 1))
    grid_r, grid_c = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = grid_r.ravel(), grid_c.ravel()
    pts = g.index_to_patient(np.column_stack([np.full(rr.size, k), rr, cc]))
    return rr, cc, pts


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    lab = label(mask, connectivity=1)
    if lab.max() <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.asarray(lab == sizes.argmax())


def _polygon(mask: NDArray[np.bool_]) -> Polygon | Mask:
    """A smoothed hand-drawn outline of a mask (or the mask itself when tiny)."""
    m = Mask.from_image_mask(mask)
    outline = np.asarray(m.outline())
    smooth = approximate_polygon(outline, tolerance=0.6)
    if len(smooth) > 3 and np.array_equal(smooth[0], smooth[-1]):
        smooth = smooth[:-1]
    if len(smooth) < 3:
        return m
    poly = Polygon(smooth)
    rows, cols = mask.shape
    return poly if poly.rasterize(rows, cols).sum() >= MIN_PIXELS else m


def _plane(study: LoadedStudy, k: int) -> ImagePlane:
    return ImagePlane.from_series(study.t1.series, k)


def _roi(truth: GroundTruth, label: RoiLabel, shape: Polygon | Mask, plane: ImagePlane, comment: str) -> ROI:
    """An ROI with an id and time stamps derived from the study, not from chance or the clock."""
    rid = hashlib.sha256(f"{truth.study_instance_uid}|{label}".encode()).hexdigest()[:32]
    return ROI(
        label, shape, plane, id=rid, author=AUTHOR, created=GENERATED, modified=GENERATED, comment=comment
    )


def _lesion_roi(study: LoadedStudy, truth: GroundTruth, e: EndplateTruth, erode: bool = True) -> ROI | None:
    found = _change_on_t1(study, truth, e)
    if found is None:
        return None
    k, mask = found
    eroded = (
        mask
        if not erode
        else erosion(mask, footprint=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool))
    )
    if eroded.sum() >= 12:
        mask = _largest_component(eroded)
    label = RoiLabel.for_endplate(e.vertebra, e.endplate)
    return _roi(truth, label, _polygon(mask), _plane(study, k), f"around the Modic {e.modic_type} change")


def _change_on_t1(
    study: LoadedStudy, truth: GroundTruth, e: EndplateTruth
) -> tuple[int, NDArray[np.bool_]] | None:
    """The T1 slice where the change at ``e`` is largest, and its pixels there."""
    g = study.t1.geometry
    name_tail = f"_{e.vertebra}_{e.endplate}"
    best: tuple[int, int, NDArray[np.bool_]] | None = None
    centre = np.asarray(e.center, dtype=float)
    for k in range(g.shape[0]):
        # project the endplate centre onto slice k
        p = centre - ((centre - g.positions[k]) @ g.normal) * g.normal
        rr, cc, pts = _slice_points(study, k, p, 40.0)
        names = tissue_at(truth, pts)
        inside = np.char.startswith(names, "modic") & np.char.endswith(names, name_tail)
        if inside.sum() < MIN_PIXELS:
            continue
        mask = np.zeros((g.rows, g.columns), dtype=bool)
        mask[rr[inside], cc[inside]] = True
        mask = _largest_component(mask)
        if best is None or mask.sum() > best[1]:
            best = (k, int(mask.sum()), mask)
    if best is None:
        return None
    return best[0], best[2]


def _band_roi(
    study: LoadedStudy, truth: GroundTruth, e: EndplateTruth, v: VertebraTruth, draw: EndplateDraw
) -> ROI | None:
    """A band hugging the endplate: ``inset_px`` in from the bony surface, ``height_mm`` tall.

    Over a normal endplate on the slice through its centre, across ``ap_fraction`` of the
    depth either side of the centre; over a change on the slice where it is largest,
    across the change's antero-posterior extent there.
    """
    assert draw.inset_px is not None and draw.height_mm is not None
    g = study.t1.geometry
    va = anatomy_of(truth).vertebra(e.vertebra)
    superior = e.endplate == "superior"
    centre = np.asarray(e.center, dtype=float)
    if e.modic_type != "0":
        found = _change_on_t1(study, truth, e)
        if found is None:
            return None
        k, change = found
        cr, cc_ = np.nonzero(change)
        y_change = va.to_local(g.index_to_patient(np.column_stack([np.full(cr.size, k), cr, cc_])))[:, 1]
        y_lo, y_hi = float(y_change.min()), float(y_change.max())
        what = f"over the Modic {e.modic_type} change"
    else:
        (k,), _ = g.nearest_slice(centre[None])
        k = int(k)
        assert draw.ap_fraction is not None
        y_hi = draw.ap_fraction * v.depth
        y_lo = -y_hi
        what = "under a normal endplate"
    p = centre - ((centre - g.positions[k]) @ g.normal) * g.normal
    rr, cc, pts = _slice_points(study, k, p, 30.0)
    q = va.to_local(pts)
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    w = (va.z_surface(x, y, True) - z) if superior else (z - va.z_surface(x, y, False))
    inset = draw.inset_px * g.pixel_spacing[0]
    keep = (
        (va.section(x, y, z) <= 1.0)
        & (w >= inset)
        & (w <= inset + draw.height_mm)
        & (y >= max(y_lo, -0.45 * v.depth))
        & (y <= min(y_hi, 0.45 * v.depth))
    )
    if keep.sum() < MIN_PIXELS:
        return None
    mask = np.zeros((g.rows, g.columns), dtype=bool)
    mask[rr[keep], cc[keep]] = True
    mask = _largest_component(mask)
    label = RoiLabel.for_endplate(e.vertebra, e.endplate)
    comment = f"band {draw.inset_px} px from the endplate, {draw.height_mm:g} mm tall, {what}"
    return _roi(truth, label, _polygon(mask), _plane(study, k), comment)


def _normal_roi(study: LoadedStudy, truth: GroundTruth, e: EndplateTruth, v: VertebraTruth) -> ROI | None:
    g = study.t1.geometry
    centre = np.asarray(e.center, dtype=float)
    (k,), _ = g.nearest_slice(centre[None])
    rr, cc, pts = _slice_points(study, int(k), centre, 30.0)
    inward = -np.asarray(e.normal, dtype=float)
    ap_axis = np.asarray(v.axes, dtype=float)[1]
    d = pts - centre
    depth = d @ inward
    ap = d @ ap_axis
    names = tissue_at(truth, pts)
    keep = (
        (names == f"marrow_{e.vertebra}") & (depth >= 1.0) & (depth <= 6.0) & (np.abs(ap) <= 0.25 * v.depth)
    )
    if keep.sum() < MIN_PIXELS:
        return None
    mask = np.zeros((g.rows, g.columns), dtype=bool)
    mask[rr[keep], cc[keep]] = True
    mask = _largest_component(mask)
    label = RoiLabel.for_endplate(e.vertebra, e.endplate)
    return _roi(truth, label, _polygon(mask), _plane(study, int(k)), "marrow under a normal endplate")


def _reference_roi(study: LoadedStudy, truth: GroundTruth, v: VertebraTruth) -> ROI | None:
    g = study.t1.geometry
    if v.reference_marrow_point is None:  # changes fill the body: no normal marrow to mark
        return None
    centre = np.asarray(v.reference_marrow_point, dtype=float)
    (k,), dist = g.nearest_slice(centre[None])
    if abs(dist[0]) > g.slice_spacing:
        return None
    rr, cc, pts = _slice_points(study, int(k), centre, 15.0)
    axes = np.asarray(v.axes, dtype=float)
    d = pts - centre
    ap, si = d @ axes[1], d @ axes[2]
    ellipse = (ap / 6.0) ** 2 + (si / 4.0) ** 2 <= 1.0
    keep = ellipse & (tissue_at(truth, pts) == f"marrow_{v.name}")
    if keep.sum() < MIN_PIXELS:
        return None
    mask = np.zeros((g.rows, g.columns), dtype=bool)
    mask[rr[keep], cc[keep]] = True
    shape = _polygon(_largest_component(mask))
    return _roi(
        truth, RoiLabel.for_reference(v.name), shape, _plane(study, int(k)), "normal marrow, mid-body"
    )


def _reference_anywhere(
    study: LoadedStudy, truth: GroundTruth, v: VertebraTruth, style: ReaderStyle
) -> ROI | None:
    """An ellipse of normal marrow anywhere in the body (>= 2 mm from the endplates).

    On the T1 slice nearest the body centre or a neighbour; its pixels are marrow of the
    vertebra at least one pixel from any other tissue (changes, fat islands, hemangiomas,
    cortex).  Falls back to the classic mid-body reference when no place fits.
    """
    g = study.t1.geometry
    rng = style._rng(4244, v.name)
    centre = np.asarray(v.center, dtype=float)
    (k0,), _ = g.nearest_slice(centre[None])
    k = int(np.clip(int(k0) + int(rng.choice([-1, 0, 0, 1])), 0, g.shape[0] - 1))
    p = centre - ((centre - g.positions[k]) @ g.normal) * g.normal
    rr, cc, pts = _slice_points(study, k, p, 32.0)
    va = anatomy_of(truth).vertebra(v.name)
    q = va.to_local(pts)
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    ok = (
        (tissue_at(truth, pts) == f"marrow_{v.name}")
        & (va.z_surface(x, y, True) - z >= 2.0)
        & (z - va.z_surface(x, y, False) >= 2.0)
    )
    img = np.zeros((g.rows, g.columns), dtype=bool)
    img[rr[ok], cc[ok]] = True
    img = erosion(img, footprint=np.ones((3, 3), dtype=bool))
    eligible = img[rr, cc]
    candidates = np.flatnonzero(eligible)
    for _ in range(40):
        if len(candidates) == 0:
            break
        c = int(candidates[rng.integers(0, len(candidates))])
        a, b = float(rng.uniform(4.0, 8.0)), float(rng.uniform(2.5, 5.0))
        ellipse = ((y - y[c]) / a) ** 2 + ((z - z[c]) / b) ** 2 <= 1.0
        keep = ellipse & eligible
        if keep.sum() >= max(MIN_PIXELS, 0.8 * ellipse.sum()):
            mask = np.zeros((g.rows, g.columns), dtype=bool)
            mask[rr[keep], cc[keep]] = True
            shape = _polygon(_largest_component(mask))
            return _roi(truth, RoiLabel.for_reference(v.name), shape, _plane(study, k), "normal marrow")
    return _reference_roi(study, truth, v)


def reader_annotations(
    truth: GroundTruth,
    study: LoadedStudy,
    *,
    vertebrae: tuple[str, ...] | None = None,
    erode: bool = True,
    style: ReaderStyle | None = None,
) -> Annotations:
    """The ROIs a careful reader would draw on a phantom study.

    Parameters
    ----------
    truth : GroundTruth
        The study's ground truth (:func:`modic.phantom.write_study`).
    study : LoadedStudy
        The same study loaded with :func:`modic.load_study`; ROIs are drawn on its T1.
    vertebrae : tuple of str, optional
        Which vertebrae to read (default: L1 to S1).
    erode : bool
        Outline changes one pixel inside their border (default), as a reader who avoids the
        blurred edge does; False outlines the whole change, border included.  Only for
        the classic reader (no ``style``).
    style : ReaderStyle, optional
        How to draw (default: the classic reader, ``ReaderStyle(change="inside")``, or
        ``"whole"`` with ``erode=False``); e.g. ``ReaderStyle.realistic(truth.seed)``.

    Returns
    -------
    Annotations
        An endplate ROI for every endplate of those vertebrae (S1: superior only) and a
        reference ROI per vertebra (some left out if the style misses references).
    """
    if style is None:
        style = ReaderStyle(change="inside" if erode else "whole")
    elif not erode:
        raise ValueError("reader_annotations: give erode=False or a style, not both "
                         "(ReaderStyle(change='whole') outlines the whole change)")
    wanted = vertebrae or ("L1", "L2", "L3", "L4", "L5", "S1")
    missing = {name for name in wanted if style.reference_missing(name)}
    if missing == set(wanted):  # at least one reference is always drawn
        missing.discard(wanted[len(wanted) // 2])
    rois: list[ROI] = []
    for name in wanted:
        v = truth.vertebra(name)
        if name not in missing:
            ref = (
                _reference_roi(study, truth, v)
                if style.reference == "mid-body"
                else _reference_anywhere(study, truth, v, style)
            )
            if ref is not None:
                rois.append(ref)
        for side in ("superior", "inferior"):
            if name == "S1" and side == "inferior":
                continue
            e = truth.endplate(name, side)
            draw = style.draw(name, side, changed=e.modic_type != "0")
            roi: ROI | None
            if draw.kind == "classic":
                roi = _normal_roi(study, truth, e, v)
            elif draw.kind == "band":
                roi = _band_roi(study, truth, e, v, draw)
            else:
                roi = _lesion_roi(study, truth, e, draw.kind == "inside")
            if roi is not None:
                rois.append(roi)
    rois.sort(key=lambda r: (VERTEBRAE.index(r.label.vertebra), r.label.sort_key))
    return Annotations(
        rois=rois,
        study_instance_uid=truth.study_instance_uid,
        frame_of_reference_uid=truth.frame_of_reference_uid,
        description=(
            f"phantom seed {truth.seed}: ROIs drawn from the ground truth"
            + ("" if style.is_classic else f" (reader style {_describe(style)})")
        ),
        created=GENERATED,
        modified=GENERATED,
    )


def _describe(style: ReaderStyle) -> str:
    return (
        f"normal {style.normal}, change {style.change}, insets {style.inset_px[0]}-{style.inset_px[1]} px, "
        f"heights {style.height_mm[0]:g}-{style.height_mm[1]:g} mm, reference {style.reference}, "
        f"missing {style.missing_reference:g}, seed {style.seed}"
    )
