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
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray
from skimage.measure import approximate_polygon, label
from skimage.morphology import erosion

from ..annotations import ROI, VERTEBRAE, Annotations, ImagePlane, Mask, Polygon, RoiLabel
from ..study import LoadedStudy
from .truth import EndplateTruth, GroundTruth, VertebraTruth, tissue_at

__all__ = ["reader_annotations"]

AUTHOR = "phantom reader (ground truth)"
#: Fixed time stamp of generated annotations, so that regenerating gives the same bytes.
GENERATED = "2026-01-01T00:00:00.000Z"
#: Smallest change, in T1 pixels, that a reader outlines on one slice.
MIN_PIXELS = 6


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
    k, _, mask = best
    eroded = (
        mask
        if not erode
        else erosion(mask, footprint=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool))
    )
    if eroded.sum() >= 12:
        mask = _largest_component(eroded)
    label = RoiLabel.for_endplate(e.vertebra, e.endplate)
    return _roi(truth, label, _polygon(mask), _plane(study, k), f"around the Modic {e.modic_type} change")


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


def reader_annotations(
    truth: GroundTruth, study: LoadedStudy, *, vertebrae: tuple[str, ...] | None = None, erode: bool = True
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
        blurred edge does; False outlines the whole change, border included.

    Returns
    -------
    Annotations
        An endplate ROI for every endplate of those vertebrae (S1: superior only) and a
        reference ROI per vertebra.
    """
    wanted = vertebrae or ("L1", "L2", "L3", "L4", "L5", "S1")
    rois: list[ROI] = []
    for name in wanted:
        v = truth.vertebra(name)
        ref = _reference_roi(study, truth, v)
        if ref is not None:
            rois.append(ref)
        for side in ("superior", "inferior"):
            if name == "S1" and side == "inferior":
                continue
            e = truth.endplate(name, side)
            roi = (
                _lesion_roi(study, truth, e, erode)
                if e.modic_type != "0"
                else _normal_roi(study, truth, e, v)
            )
            if roi is not None:
                rois.append(roi)
    rois.sort(key=lambda r: (VERTEBRAE.index(r.label.vertebra), r.label.sort_key))
    return Annotations(
        rois=rois,
        study_instance_uid=truth.study_instance_uid,
        frame_of_reference_uid=truth.frame_of_reference_uid,
        description=f"phantom seed {truth.seed}: ROIs drawn from the ground truth",
        created=GENERATED,
        modified=GENERATED,
    )
