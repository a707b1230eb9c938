"""Label maps written from a phantom's own truth, in the conventions and file formats of
TotalSpineSeg, SPINEPS and TotalSegmentator (NIfTI with nibabel, NRRD with pynrrd, DICOM
SEG with highdicom), for tests/test_labelmap.py.

The truth is the phantom's continuous anatomy (:mod:`modic.phantom.anatomy`): a point is in
vertebra V's *body* when it lies inside V's body section between its two endplate surfaces
(the rule the phantom paints the body with); it is in V's *whole vertebra* when it is in the
body, or is V's marrow (the neural arch is painted with V's marrow code), or is cortical
bone next to V's marrow. Label numbers are stated here by hand, from each tool's
documentation, independently of :data:`modic.labelmap.CONVENTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from modic.phantom import GroundTruth
from modic.phantom.anatomy import Anatomy, Vertebra
from modic.phantom.truth import anatomy_of

VERTS = ("T12", "L1", "L2", "L3", "L4", "L5")  # the sample studies' T1 cuts T11
SACRAL = ("S1", "S2", "S3", "S4")
# each tool's numbers, typed in from its documentation (see docs/labelmaps.md)
TOTALSPINESEG = {"T11": 31, "T12": 32, "L1": 41, "L2": 42, "L3": 43, "L4": 44, "L5": 45, "sacrum": 50}
VERTEBRAE_MR = {"sacrum": 1, "L5": 2, "L4": 3, "L3": 4, "L2": 5, "L1": 6, "T12": 7, "T11": 8}
SPINEPS = {"T11": 18, "T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24, "sacrum": 26}
TOTAL_MR = {"vertebrae": 19, "sacrum": 18}
SPINEPS_CORPUS_BORDER, SPINEPS_CORPUS, SPINEPS_ARCUS = 49, 50, 41


@dataclass
class TruthLabels:
    """Per point: 0 none, else an index into ``names`` (whole vertebra), and body flags."""

    whole: NDArray[np.int64]  # index + 1 into names, 0 = none
    body: NDArray[np.bool_]  # inside a vertebral body
    body_shell: NDArray[np.bool_]  # body cortex (outer 1.5 mm), for the SPINEPS semantic mask
    names: tuple[str, ...]


def in_body(v: Vertebra, local: NDArray[np.float64], inset: float = 0.0) -> NDArray[np.bool_]:
    """Points (body-local mm) inside the body of ``v`` (optionally shrunk by ``inset`` mm)."""
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    r = v.section(x, y, z, inset=inset)
    return np.asarray(
        (np.abs(z) <= v.height / 2)
        & (r <= 1.0)
        & (z <= v.z_surface(x, y, True) - inset)
        & (z >= v.z_surface(x, y, False) + inset),
        dtype=bool,
    )


def spine_box(truth: GroundTruth) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """LPS (lo, hi) box around the T12-S2 bodies and their posterior elements, mm."""
    anat = anatomy_of(truth)
    # T11 is left out (the sample studies' T1 cuts it); the neural arch is cut 45 mm behind
    # the bodies' centres (its spinous processes reach further)
    cs = np.array([anat.vertebra(n).center for n in (*VERTS, "S1", "S2")])
    lo = cs.min(axis=0) + [-27.0, -25.0, -20.0]
    hi = cs.max(axis=0) + [27.0, 45.0, 20.0]
    return lo, hi


def truth_labels(
    truth: GroundTruth, points: NDArray[np.float64], grid_shape: tuple[int, ...] | None = None
) -> TruthLabels:
    """The truth at LPS ``points`` ((N, 3)); with ``grid_shape`` (N = its product) cortical
    bone is given to the vertebra whose marrow is within 2 voxels (dilation on the grid)."""
    anat: Anatomy = anatomy_of(truth)
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    lo, hi = spine_box(truth)
    inbox = np.all((pts >= lo) & (pts <= hi), axis=1)
    names = (*VERTS, *SACRAL)
    whole = np.zeros(len(pts), dtype=np.int64)
    body = np.zeros(len(pts), dtype=bool)
    shell = np.zeros(len(pts), dtype=bool)
    idx = np.flatnonzero(inbox)
    tissue = np.zeros(len(pts), dtype=np.int64) - 1
    tissue[idx] = anat.labels(pts[idx])
    cortical = anat.code("cortical_bone")
    for k, name in enumerate(names, start=1):
        v = anat.vertebra(name)
        local = v.to_local(pts[idx])
        b = in_body(v, local)
        inner = in_body(v, local, inset=1.5)
        sel = idx[b]
        whole[sel] = k
        body[sel] = True
        shell[idx[b & ~inner]] = True
        marrow = (tissue == v.marrow_code) & (whole == 0)
        whole[marrow] = k
    if grid_shape is not None:
        w = whole.reshape(grid_shape)
        cort = (tissue == cortical).reshape(grid_shape) & (w == 0)
        for k in range(1, len(names) + 1):
            grown = ndimage.binary_dilation(w == k, iterations=2) & cort
            w[grown] = k
            cort &= ~grown
        whole = w.reshape(-1)
    return TruthLabels(whole, body, shell, names)


def encode(t: TruthLabels, convention: str, *, body_only: bool = False) -> NDArray[np.int64]:
    """Label values of each point in one tool's convention."""
    out = np.zeros(t.whole.shape, dtype=np.int64)
    table = {"totalspineseg": TOTALSPINESEG, "vertebrae_mr": VERTEBRAE_MR, "spineps": SPINEPS}.get(convention)
    for k, name in enumerate(t.names, start=1):
        sel = t.whole == k
        if body_only:
            sel &= t.body
        if convention == "total_mr":
            out[sel] = TOTAL_MR["sacrum"] if name in SACRAL else TOTAL_MR["vertebrae"]
            continue
        assert table is not None
        key = "sacrum" if name in SACRAL else name
        out[sel] = table[key]
    return out


def spineps_semantic(t: TruthLabels) -> NDArray[np.int64]:
    """SPINEPS semantic mask: body cortex 49, body interior 50, the rest of a vertebra 41."""
    out = np.zeros(t.whole.shape, dtype=np.int64)
    out[(t.whole > 0)] = SPINEPS_ARCUS
    out[t.body] = SPINEPS_CORPUS
    out[t.body & t.body_shell] = SPINEPS_CORPUS_BORDER
    out[np.isin(t.whole, [t.names.index(s) + 1 for s in SACRAL])] = 26
    return out


@dataclass
class Grid:
    """A regular grid: ``affine_lps`` maps (i, j, k, 1) to LPS mm; ``shape`` (I, J, K)."""

    affine_lps: NDArray[np.float64]
    shape: tuple[int, int, int]

    def points(self) -> NDArray[np.float64]:
        ijk = np.stack(np.meshgrid(*(np.arange(n) for n in self.shape), indexing="ij"), axis=-1).reshape(
            -1, 3
        )
        return np.asarray(ijk @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3], dtype=float)


def ras_grid(truth: GroundTruth, spacing: tuple[float, float, float] = (3.0, 1.0, 1.0)) -> Grid:
    """A grid whose axes run to the patient's Right, Anterior and Superior (RAS+, as
    TotalSegmentator's resampling writes), covering :func:`spine_box`."""
    lo, hi = spine_box(truth)
    # RAS: i -> right (-x LPS), j -> anterior (-y LPS), k -> superior (+z)
    a = np.eye(4)
    a[:3, :3] = np.diag([-spacing[0], -spacing[1], spacing[2]])
    a[:3, 3] = [hi[0], hi[1], lo[2]]
    shape = tuple(int(np.floor((hi[d] - lo[d]) / spacing[d])) + 1 for d in range(3))
    return Grid(a, shape)  # type: ignore[arg-type]


def write_nifti(path: Path, data: NDArray[np.int64], grid: Grid) -> Path:
    """NIfTI with a RAS affine (nibabel), sform and qform set, uint8 labels."""
    import nibabel as nib

    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine_lps
    img = nib.Nifti1Image(data.reshape(grid.shape).astype(np.uint8), ras)
    img.set_sform(ras, code=1)
    img.set_qform(ras, code=1)
    nib.save(img, str(path))
    return path


def write_nrrd(path: Path, data: NDArray[np.int64], grid: Grid, space: str) -> Path:
    """NRRD (pynrrd) in ``space`` "left-posterior-superior" or "right-anterior-superior"."""
    import nrrd

    flip = {
        "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
        "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
    }[space]
    header = {
        "space": space,
        "space directions": (grid.affine_lps[:3, :3].T * flip),
        "space origin": grid.affine_lps[:3, 3] * flip,
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    nrrd.write(str(path), data.reshape(grid.shape).astype(np.uint8), header, index_order="F")
    return path


#: SNOMED CT codes of the lumbar vertebrae and the sacrum (issue 8, item 5).
SNOMED = {
    "L1": ("66794005", "First lumbar vertebra"),
    "L2": ("14293000", "Second lumbar vertebra"),
    "L3": ("36470004", "Third lumbar vertebra"),
    "L4": ("11994002", "Fourth lumbar vertebra"),
    "L5": ("49668003", "Fifth lumbar vertebra"),
    "sacrum": ("54735007", "Sacrum"),
}


def volume_points(geometry: object) -> NDArray[np.float64]:
    """(slices * rows * cols, 3) LPS centres of every pixel of a modic SliceGeometry, C order."""
    g = geometry
    n, rows, cols = g.shape  # type: ignore[attr-defined]
    rr, cc = np.mgrid[0:rows, 0:cols]
    offs = (
        cc.reshape(-1, 1) * g.pixel_spacing[1] * g.row_cosine  # type: ignore[attr-defined]
        + rr.reshape(-1, 1) * g.pixel_spacing[0] * g.column_cosine
    )  # type: ignore[attr-defined]
    return np.concatenate([g.positions[s] + offs for s in range(n)])  # type: ignore[attr-defined]


def write_seg(
    path: Path, volume: object, t: TruthLabels, segment_label: str = "{name}", seg_type: str = "BINARY"
) -> Path:
    """A DICOM SEG (highdicom, BINARY or LABELMAP) on the planes of ``volume`` (a modic Volume, e.g. the
    T2), one segment per lumbar vertebra and the sacrum, named ``segment_label`` (``{name}``
    is "L4" or "sacrum", ``{tool}`` style names such as "vertebrae_L4" work too)."""
    import highdicom as hd
    from pydicom import dcmread
    from pydicom.sr.coding import Code

    series = volume.series  # type: ignore[attr-defined]
    sources = [dcmread(f.path) for f in series.frames]
    n, rows, cols = volume.geometry.shape  # type: ignore[attr-defined]
    order = ["L1", "L2", "L3", "L4", "L5", "sacrum"]
    arr = np.zeros(t.whole.shape, dtype=np.uint8)
    for k, name in enumerate(t.names, start=1):
        key = "sacrum" if name in SACRAL else name
        if key in order:
            arr[t.whole == k] = order.index(key) + 1
    arr = arr.reshape(n, rows, cols)
    algo = hd.AlgorithmIdentificationSequence(
        name="phantom truth", family=Code("123109", "DCM", "Manual Processing"), version="1"
    )
    descs = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=segment_label.format(name=name),
            segmented_property_category=Code("91723000", "SCT", "Anatomical Structure"),
            segmented_property_type=Code(SNOMED[name][0], "SCT", SNOMED[name][1]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for i, name in enumerate(order)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=arr,
        segmentation_type=hd.seg.SegmentationTypeValues[seg_type],
        segment_descriptions=descs,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="modic tests",
        manufacturer_model_name="labelmaps.py",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(str(path))
    return path


def write_slicer_seg_nrrd(path: Path, data: NDArray[np.int64], grid: Grid, names: dict[int, str]) -> Path:
    """A 3D Slicer segmentation as Slicer writes one layer of it (``.seg.nrrd``): a leading
    ``list`` axis of size 1, RAS space, and ``SegmentN_Name`` / ``SegmentN_LabelValue``
    key/value pairs naming each label value."""
    import nrrd

    flip = np.array([-1.0, -1.0, 1.0])
    dirs = np.vstack([np.full(3, np.nan), grid.affine_lps[:3, :3].T * flip])
    header: dict[str, object] = {
        "space": "right-anterior-superior",
        "space directions": dirs,
        "space origin": grid.affine_lps[:3, 3] * flip,
        "kinds": ["list", "domain", "domain", "domain"],
        "encoding": "gzip",
    }
    for i, (value, name) in enumerate(sorted(names.items())):
        header[f"Segment{i}_Name"] = name
        header[f"Segment{i}_LabelValue"] = str(value)
        header[f"Segment{i}_Layer"] = "0"
    nrrd.write(str(path), data.reshape((1, *grid.shape)).astype(np.uint8), header, index_order="F")
    return path
