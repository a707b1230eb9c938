"""Endplate, body and reference ROIs derived from another tool's vertebra segmentation.

Researchers often hold a segmentation of the spine already, made by TotalSpineSeg,
SPINEPS or TotalSegmentator, or drawn in 3D Slicer / ITK-SNAP. :func:`rois_from_labelmap`
reads it (NIfTI, NRRD or DICOM SEG), puts its voxel grid in the study's patient space,
resamples each vertebra onto the sagittal T1 slices, picks the vertebra's midline slice,
and derives there, with :func:`modic.bands.endplate_bands`, the superior and inferior
endplate bands, the body outline and a reference ROI in central marrow. The ROIs are
marked ``origin="derived"`` with their ``source`` (tool, file, label) and can be edited in
the annotator like drawn ones; :func:`merge_derived` adds them to an annotation file
without ever replacing an ROI a person drew.

Coordinates
-----------
* NIfTI affines map voxel indices to **RAS** mm (nibabel's ``img.affine``, from the sform,
  else the qform); modic works in DICOM **LPS**, so x and y change sign:
  ``A_lps = diag(-1, -1, 1, 1) @ A_ras`` (:func:`ras_to_lps_affine`).
* NRRD names its ``space`` (``left-posterior-superior`` is LPS; ``right-anterior-superior``
  is RAS, ``left-anterior-superior`` LAS) and gives ``space directions`` (one row per array
  axis) and ``space origin``; the axes named right or anterior change sign. Arrays are read
  in the file's axis order (pynrrd ``index_order="F"``), so array axis ``i`` goes with
  direction row ``i``.
* DICOM SEG frames carry their own ImagePositionPatient (Plane Position Sequence) in LPS,
  with the shared orientation and pixel spacing; the SEG must share the study's
  FrameOfReferenceUID.
* Each T1 pixel centre is looked up in the label volume by nearest neighbour: its LPS
  point is taken to the label volume's continuous voxel index and rounded.

Which slice and which piece
---------------------------
* **Midline slice**: the T1 slice nearest to the left-right centre of mass of the
  vertebra's label (vertebrae are left-right symmetric, so this is their midsagittal
  plane even when the label includes the posterior elements, and when the patient is
  slightly off-centre).
* **Body**: a label of the whole vertebra (TotalSpineSeg, TotalSegmentator, the SPINEPS
  instance mask) holds the posterior elements too. On the midsagittal slice the spinal
  canal separates them from the body, so the body is the most anterior of the label's
  4-connected pieces there (among pieces at least 30 % the size of the largest). With the
  SPINEPS semantic mask (``semantic=``), only its vertebral-body labels (49 corpus border,
  50 corpus) are kept first.
* **S1** from a sacrum label: the sacrum label does not separate S1 from S2-S5, so only
  S1's superior endplate band is derived: the most anterior piece of the sacrum on S1's
  midline slice, cut to its upper part (one L5 body height, or 30 mm, below its top along
  L5's axis), with the endplate's tilt fitted from that upper surface alone. No S1 body or
  reference is derived from a sacrum.
* **TotalSegmentator ``total_mr``** has a single ``vertebrae`` class: on the T1 slice
  through the label's left-right centre of mass its pieces are the bodies (separated by the
  discs) and the posterior elements (behind the canal, dropped: a piece with another piece
  more than 10 mm anterior to it over 40 % of its height); the bodies are then named by counting
  up from the sacrum (the lowest body above the sacrum is L5). This needs the sacrum in the
  label map.

Label numbers of each tool: :data:`CONVENTIONS` and docs/labelmaps.md (with their sources).

Examples
--------
::

    study = modic.load_study("case7/")
    derived = modic.rois_from_labelmap(study, "case7_seg.nii.gz", convention="totalspineseg")
    merged, report = modic.labelmap.merge_derived(existing, derived)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bands import BandError, BandSettings, BodyRegions, endplate_bands, image_direction
from .errors import LabelMapError, MissingDependencyError, ModicError
from .geometry import SliceGeometry
from .labelconventions import CONVENTIONS, SEGMENT_NAMES, SPINEPS_BODY_LABELS, LabelConvention

__all__ = [
    "CONVENTIONS",
    "LabelConvention",
    "LabelMapError",
    "LabelVolume",
    "VertebraRegions",
    "MergeReport",
    "read_labelmap",
    "derive_regions",
    "rois_from_labelmap",
    "merge_derived",
    "ras_to_lps_affine",
]

logger = logging.getLogger(__name__)

#: SOP classes of DICOM Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
#: A piece of a whole-vertebra label smaller than this share of the largest is not a body.
MIN_PIECE_FRACTION = 0.3
#: ``total_mr``: a piece with another piece this far (mm) in front of it is posterior.
POSTERIOR_GAP_MM = 10.0
#: How deep below the sacrum's top S1 is cut out when L5's height is not known, mm.
S1_DEPTH_MM = 30.0


_NAME_RE = re.compile(
    r"^(?:vertebrae?|vertebral body|vertebra body|corpus)?[\s_\-]*(T1[0-2]|T[1-9]|L[1-6]|S1|C[1-7])"
    r"(?:[\s_\-]*(?:vertebrae?|vertebral body|body|corpus))?$",
    re.IGNORECASE,
)


def get_convention(
    name: str | LabelConvention, path: str | os.PathLike[str] = "<label map>"
) -> LabelConvention:
    """The convention called ``name`` (case-insensitive); LabelMapError listing them if unknown."""
    if isinstance(name, LabelConvention):
        return name
    key = str(name).strip().lower()
    if key in CONVENTIONS:
        return CONVENTIONS[key]
    names = sorted({c.name for c in CONVENTIONS.values()})
    aliases = sorted(set(CONVENTIONS) - set(names))
    raise LabelMapError(
        path,
        f"unknown label convention {name!r}: use one of {', '.join(names)} "
        f"(aliases {', '.join(aliases)}), or {SEGMENT_NAMES!r} for a DICOM SEG with named segments",
    )


def vertebra_from_name(text: str) -> str | None:
    """The vertebra a segment name means (``"vertebrae_L4"``, ``"L4"``, ``"L4 vertebra"``,
    ``"sacrum"`` -> ``"S1"``), or None.

    Examples
    --------
    >>> vertebra_from_name("vertebrae_L4"), vertebra_from_name("Sacrum"), vertebra_from_name("disc_L4_L5")
    ('L4', 'S1', None)
    """
    t = str(text).strip()
    low = re.sub(r"[\s_\-]+", " ", t.lower())
    if "sacrum" in low.split() or low in ("os sacrum", "vertebrae s1", "s1"):
        return "S1"
    m = _NAME_RE.match(t)
    return m.group(1).upper() if m else None


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------
def ras_to_lps_affine(affine: ArrayLike) -> NDArray[np.float64]:
    """A (4, 4) voxel -> RAS affine (NIfTI) as a voxel -> LPS affine: x and y change sign.

    Examples
    --------
    >>> ras_to_lps_affine(np.diag([2.0, 2.0, 3.0, 1.0]))[:3, :3].diagonal()
    array([-2., -2.,  3.])
    """
    a = np.asarray(affine, dtype=float).reshape(4, 4)
    return np.asarray(np.diag([-1.0, -1.0, 1.0, 1.0]) @ a, dtype=float)


@dataclass
class LabelVolume:
    """A label map in patient space.

    Attributes
    ----------
    array : (I, J, K) ndarray of int
        Label values (0 background). For a DICOM SEG: ``(plane, row, col)``, planes ordered
        along the normal, values the segment numbers.
    affine : (4, 4) ndarray or None
        Voxel index ``(i, j, k, 1)`` -> LPS mm (NIfTI, NRRD).
    planes : SliceGeometry or None
        The planes of a DICOM SEG (instead of an affine: they need not be evenly spaced).
    path : Path
    kind : {"nifti", "nrrd", "dicom-seg"}
    frame_of_reference_uid : str
        DICOM SEG only.
    names : dict of int to str
        Named segments: DICOM SEG segment number -> SegmentLabel; 3D Slicer ``.seg.nrrd``
        ``SegmentN_LabelValue`` -> ``SegmentN_Name``.
    """

    array: NDArray[np.int64]
    affine: NDArray[np.float64] | None
    path: Path
    kind: str
    planes: SliceGeometry | None = None
    frame_of_reference_uid: str = ""
    names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.affine is None) == (self.planes is None):
            raise ValueError("a LabelVolume needs either an affine or planes")
        if self.affine is not None:
            try:
                self._inverse = np.linalg.inv(self.affine)
            except np.linalg.LinAlgError:
                raise LabelMapError(self.path, "its voxel-to-patient matrix is singular") from None
            if not np.all(np.isfinite(self._inverse)):
                raise LabelMapError(self.path, "its voxel-to-patient matrix is not finite")

    @property
    def values(self) -> list[int]:
        """The non-zero label values present."""
        v = np.unique(self.array)
        return [int(x) for x in v if x != 0]

    def index_of(self, points: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Nearest voxel ``(N, 3)`` of LPS points and whether it lies in the volume."""
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        shape = np.array(self.array.shape)
        if self.affine is not None:
            ijk = p @ self._inverse[:3, :3].T + self._inverse[:3, 3]
            idx = np.rint(ijk).astype(np.intp)
            inside = np.all((idx >= 0) & (idx < shape), axis=1)
            return idx, inside
        g = self.planes
        assert g is not None
        k, dist = g.nearest_slice(p)
        src = g.patient_to_index(p)
        rc = np.rint(src[:, 1:]).astype(np.intp)
        idx = np.column_stack([k, rc])
        inside = (np.abs(dist) <= 0.5 * g.slice_spacing + 1e-6) & np.all((rc >= 0) & (rc < shape[1:]), axis=1)
        return idx, inside

    def labels_at(self, points: ArrayLike) -> NDArray[np.int64]:
        """(N,) label value at LPS points (nearest voxel; 0 outside the volume)."""
        idx, inside = self.index_of(points)
        out = np.zeros(len(idx), dtype=np.int64)
        ii = idx[inside]
        out[inside] = self.array[ii[:, 0], ii[:, 1], ii[:, 2]]
        return out

    def voxel_points(self, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """(N, 3) LPS centres of the voxels set in ``mask`` (same shape as :attr:`array`)."""
        idx = np.argwhere(mask)
        if self.affine is not None:
            return np.asarray(idx @ self.affine[:3, :3].T + self.affine[:3, 3], dtype=float)
        assert self.planes is not None
        return self.planes.index_to_patient(idx.astype(float))

    def bounds(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """LPS (min, max) corners of the volume's voxel centres."""
        n = np.array(self.array.shape) - 1
        corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], dtype=float)
        if self.affine is not None:
            pts = corners @ self.affine[:3, :3].T + self.affine[:3, 3]
        else:
            assert self.planes is not None
            pts = self.planes.index_to_patient(corners)
        return pts.min(axis=0), pts.max(axis=0)


def read_labelmap(path: str | os.PathLike[str]) -> LabelVolume:
    """Read a label map: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or DICOM SEG.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    LabelVolume

    Raises
    ------
    LabelMapError
        Naming the file: not readable, 4-D (more than one volume), non-integer labels, no
        position in patient space, or a DICOM file that is not a segmentation.
    MissingDependencyError
        If nibabel (NIfTI) or pynrrd (NRRD) is not installed: ``pip install "modic[labels]"``.
    FileNotFoundError
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such label map")
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _read_nifti(p)
    if name.endswith((".nrrd", ".nhdr")):
        return _read_nrrd(p)
    return _read_seg(p)


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f'reading {what} label maps needs {module}: pip install "modic[labels]"', extra="labels"
        ) from None


def _integer_labels(path: Path, data: NDArray[Any]) -> NDArray[np.int64]:
    a = np.asarray(data)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise LabelMapError(path, "holds non-integer values: a label map must hold whole label numbers")
    elif a.dtype.kind not in "iu":
        raise LabelMapError(path, f"holds {a.dtype} values: a label map must hold whole label numbers")
    return a.astype(np.int64)


def _three_d(path: Path, data: NDArray[Any], what: str) -> NDArray[Any]:
    a = np.asarray(data)
    while a.ndim > 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 3:
        raise LabelMapError(
            path,
            f"is {a.ndim}-D (shape {a.shape}): a label map must be one 3-D volume "
            f"({what}); save each volume on its own, or merge the segments into one label volume",
        )
    return a


def _read_nifti(path: Path) -> LabelVolume:
    nib = _need("nibabel", "NIfTI")
    try:
        img = nib.load(str(path))
    except Exception as e:  # nibabel raises several kinds
        raise LabelMapError(path, f"is not a readable NIfTI file ({e})") from None
    header = img.header
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise LabelMapError(
            path, "has neither an sform nor a qform: where its voxels lie in the patient is unknown"
        )
    data = _three_d(path, np.asanyarray(img.dataobj), "one label per voxel")
    return LabelVolume(_integer_labels(path, data), ras_to_lps_affine(img.affine), path, "nifti")


_NRRD_SPACES = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}


def _read_nrrd(path: Path) -> LabelVolume:
    nrrd = _need("nrrd", "NRRD")
    try:
        data, header = nrrd.read(str(path), index_order="F")
    except Exception as e:
        raise LabelMapError(path, f"is not a readable NRRD file ({e})") from None
    space = str(header.get("space", "")).strip().lower()
    if space not in _NRRD_SPACES:
        raise LabelMapError(
            path,
            f"its NRRD 'space' is {header.get('space')!r}: modic needs a patient space "
            "(left-posterior-superior, right-anterior-superior or left-anterior-superior)",
        )
    if "space directions" not in header or "space origin" not in header:
        raise LabelMapError(
            path, "lacks 'space directions' or 'space origin': its position in the patient is unknown"
        )
    dirs = np.asarray(header["space directions"], dtype=float)
    spatial = np.all(np.isfinite(dirs), axis=1) if dirs.ndim == 2 else np.zeros(0, dtype=bool)
    arr = np.asarray(data)
    if arr.ndim != len(spatial):
        raise LabelMapError(path, f"has {arr.ndim} axes but {len(spatial)} 'space directions'")
    # non-spatial axes (a 'list' of layers or a time axis) must be of size 1
    for ax in np.flatnonzero(~spatial)[::-1]:
        if arr.shape[ax] != 1:
            raise LabelMapError(
                path,
                f"is 4-D (shape {arr.shape}, axis {ax} holds {arr.shape[ax]} layers or time points): a label "
                "map must be one 3-D volume; export it as a single labelmap volume",
            )
        arr = np.take(arr, 0, axis=ax)
    dirs = dirs[spatial]
    arr = _three_d(path, arr, "one label per voxel")
    if dirs.shape != (3, 3):
        raise LabelMapError(path, f"has {dirs.shape[0]} spatial axes; a label map needs 3")
    flip = np.asarray(_NRRD_SPACES[space])
    affine = np.eye(4)
    affine[:3, :3] = (dirs * flip).T  # column i: direction of array axis i, in LPS
    affine[:3, 3] = np.asarray(header["space origin"], dtype=float) * flip
    # a 3D Slicer segmentation (.seg.nrrd) names its segments: SegmentN_Name, SegmentN_LabelValue
    names: dict[int, str] = {}
    for key, value in header.items():
        m = re.fullmatch(r"Segment(\d+)_Name", str(key))
        if m:
            raw = header.get(f"Segment{m.group(1)}_LabelValue", int(m.group(1)) + 1)
            try:
                names[int(str(raw).strip())] = str(value)
            except ValueError:
                continue
    return LabelVolume(_integer_labels(path, arr), affine, path, "nrrd", names=names)


def _read_seg(path: Path) -> LabelVolume:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError, ValueError) as e:
        raise LabelMapError(
            path,
            f"is neither NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) nor a DICOM file ({e})",
        ) from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_SOP_CLASSES:
        raise LabelMapError(path, f"is a DICOM file but not a Segmentation (SOP class {sop or 'missing'})")
    try:
        shared = ds.SharedFunctionalGroupsSequence[0]
        orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
        spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
        frames = ds.PerFrameFunctionalGroupsSequence
        positions = np.array(
            [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in frames]
        )
        labelmap = sop == SEG_SOP_CLASSES[1]
        segment_of = (
            [int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber) for f in frames]
            if not labelmap
            else [0] * len(frames)
        )
        names = {int(s.SegmentNumber): str(s.get("SegmentLabel", "")) for s in ds.SegmentSequence}
        pixels = np.asarray(ds.pixel_array)
    except (AttributeError, IndexError, KeyError, ValueError, TypeError) as e:
        raise LabelMapError(path, f"is a DICOM SEG without the plane geometry modic needs ({e})") from None
    if pixels.ndim == 2:
        pixels = pixels[None]
    if str(ds.get("SegmentationType", "BINARY")) == "FRACTIONAL":
        pixels = pixels >= 0.5 * float(ds.get("MaximumFractionalValue", 255))
    from .geometry import slice_normal

    normal = slice_normal(orientation)
    coord = positions @ normal
    order = np.argsort(coord, kind="stable")
    uniq: list[int] = []  # frame index of the first frame on each distinct plane
    plane_of = np.empty(len(frames), dtype=int)
    for i in order:
        if uniq and abs(coord[i] - coord[uniq[-1]]) < 1e-3:
            plane_of[i] = len(uniq) - 1
        else:
            uniq.append(int(i))
            plane_of[i] = len(uniq) - 1
    rows, cols = int(ds.Rows), int(ds.Columns)
    arr = np.zeros((len(uniq), rows, cols), dtype=np.int64)
    for i in range(len(frames)):
        px = pixels[i]
        if labelmap:
            sel = px != 0
            arr[plane_of[i]][sel] = px[sel]
        else:
            arr[plane_of[i]][px.astype(bool)] = segment_of[i]
    try:
        planes = SliceGeometry(positions[uniq], np.asarray(orientation), (spacing[0], spacing[1]), rows, cols)
    except ModicError as e:
        raise LabelMapError(path, f"its frames have an inconsistent geometry: {e}") from None
    return LabelVolume(
        arr,
        None,
        path,
        "dicom-seg",
        planes=planes,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        names=names,
    )


# ----------------------------------------------------------------------------------------
# deriving
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VertebraRegions:
    """The regions derived for one vertebra on one T1 slice.

    Attributes
    ----------
    vertebra : str
    slice_index : int
        0-based T1 slice (along the normal).
    regions : BodyRegions
        Masks in that slice's ``(rows, columns)`` grid.
    labels : tuple of int
        The label values used.
    from_sacrum : bool
        S1 cut out of a sacrum label (superior band only).
    """

    vertebra: str
    slice_index: int
    regions: BodyRegions
    labels: tuple[int, ...]
    from_sacrum: bool = False


def _t1_labels(study: Any, vol: LabelVolume) -> NDArray[np.int64]:
    """(slices, rows, cols) label of every T1 pixel centre (nearest neighbour)."""
    g: SliceGeometry = study.t1.geometry
    n, rows, cols = g.shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    offs = (
        cc.reshape(-1, 1) * g.pixel_spacing[1] * g.row_cosine
        + rr.reshape(-1, 1) * g.pixel_spacing[0] * g.column_cosine
    )
    out = np.zeros((n, rows, cols), dtype=np.int64)
    for s in range(n):
        out[s] = vol.labels_at(g.positions[s] + offs).reshape(rows, cols)
    return out


def _pieces(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], int]:
    from skimage.measure import label

    lab, n = label(mask, connectivity=1, return_num=True)
    return np.asarray(lab, dtype=np.int64), int(n)


def _most_anterior_piece(
    mask: NDArray[np.bool_], anterior: NDArray[np.float64], sp: tuple[float, float]
) -> NDArray[np.bool_]:
    """The most anterior 4-connected piece among those >= 30 % of the largest."""
    lab, n = _pieces(mask)
    if n <= 1:
        return mask
    counts = np.bincount(lab.ravel())[1:]
    big = [i + 1 for i in range(n) if counts[i] >= MIN_PIECE_FRACTION * counts.max()]
    best, best_a = big[0], -np.inf
    for k in big:
        r, c = np.nonzero(lab == k)
        a = float(np.mean(r * sp[0] * anterior[0] + c * sp[1] * anterior[1]))
        if a > best_a:
            best, best_a = k, a
    return np.asarray(lab == best, dtype=bool)


def _centre_slice(vol: LabelVolume, values: Sequence[int], g: SliceGeometry) -> int | None:
    """T1 slice nearest the left-right centre of mass of the voxels with these labels."""
    m = np.isin(vol.array, values)
    if not m.any():
        return None
    pts = vol.voxel_points(m)
    centre = pts.mean(axis=0)
    (k,), (d,) = g.nearest_slice(centre[None])
    if abs(d) > g.slice_spacing:
        return None
    return int(k)


def derive_regions(
    study: Any,
    path: str | os.PathLike[str],
    convention: str | LabelConvention | None = None,
    *,
    semantic: str | os.PathLike[str] | None = None,
    settings: BandSettings | None = None,
    vertebrae: Iterable[str] | None = None,
) -> tuple[list[VertebraRegions], LabelConvention, LabelVolume]:
    """The regions of every vertebra of a label map on the study's sagittal T1.

    Parameters
    ----------
    study : LoadedStudy
    path : str or PathLike
        NIfTI, NRRD or DICOM SEG label map.
    convention : str or LabelConvention, optional
        A name of :data:`CONVENTIONS`. Required for NIfTI and unnamed NRRD; a DICOM SEG or
        a 3D Slicer ``.seg.nrrd`` is read by its segment names unless a convention is given
        (then its segment or label numbers are the tool's labels).
    semantic : str or PathLike, optional
        SPINEPS only: its semantic mask (``seg-spine``); the body is then the vertebra's
        label inside the semantic body labels (49, 50).
    settings : BandSettings, optional
    vertebrae : iterable of str, optional
        Only these vertebrae (default every one found that modic names).

    Returns
    -------
    regions : list of VertebraRegions
        Head to foot.
    convention : LabelConvention
    volume : LabelVolume

    Raises
    ------
    LabelMapError
        Naming the file: unknown convention, no vertebra label, another frame of reference,
        no overlap with the study's T1, a body too small for bands.
    """
    from .annotations import VERTEBRAE

    vol = read_labelmap(path)
    conv = _resolve_convention(vol, convention)
    g: SliceGeometry = study.t1.geometry
    t1_series = study.t1.series
    if (
        vol.kind == "dicom-seg"
        and vol.frame_of_reference_uid
        and t1_series.frame_of_reference_uid
        and (vol.frame_of_reference_uid != t1_series.frame_of_reference_uid)
    ):
        raise LabelMapError(
            vol.path,
            f"is in frame of reference {vol.frame_of_reference_uid}, but the study's T1 (series "
            f"{t1_series.label()}) is in {t1_series.frame_of_reference_uid}: it was made on another study "
            "or another scan session",
        )
    present = set(vol.values)
    known = set(conv.vertebrae) | set(conv.parts) | ({conv.all_vertebrae} - {None})
    if not present & known:
        shown = ", ".join(str(v) for v in sorted(present)[:20]) or "none (every voxel is 0)"
        raise LabelMapError(
            vol.path,
            f"holds no vertebra label of the {conv.tool} convention ({conv.name}: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(conv.vertebrae.items()))}); label values present: "
            f"{shown}. Is it another tool's label map (--labels-convention), or empty?",
        )
    body_filter: NDArray[np.bool_] | None = None
    sem_vol: LabelVolume | None = None
    if semantic is not None:
        if conv.name != "spineps":
            raise LabelMapError(
                semantic, f"a semantic mask goes with the spineps convention, not {conv.name}"
            )
        sem_vol = read_labelmap(semantic)
    t1_lab = _t1_labels(study, vol)
    if sem_vol is not None:
        body_filter = np.isin(_t1_labels(study, sem_vol), SPINEPS_BODY_LABELS)
        if not body_filter.any():
            raise LabelMapError(
                sem_vol.path,
                f"has no vertebral-body label ({', '.join(map(str, SPINEPS_BODY_LABELS))}) on the study's T1",
            )
    on_t1 = set(int(v) for v in np.unique(t1_lab)) & known
    if not on_t1:
        lo, hi = vol.bounds()
        n = g.shape[0] - 1
        corners = g.index_to_patient(
            [[s, r, c] for s in (0, n) for r in (0, g.rows - 1) for c in (0, g.columns - 1)]
        )
        tlo, thi = corners.min(axis=0), corners.max(axis=0)
        raise LabelMapError(
            vol.path,
            "does not overlap the study's T1: none of its vertebra labels falls on a T1 slice. It covers "
            f"LPS {_box(lo, hi)} mm, the T1 {_box(tlo, thi)} mm; was it made on another study, or is its "
            "affine in another convention?",
        )
    anterior = image_direction((0.0, -1.0, 0.0), g.orientation)
    head = image_direction((0.0, 0.0, 1.0), g.orientation)
    sp = (float(g.pixel_spacing[0]), float(g.pixel_spacing[1]))
    wanted = None if vertebrae is None else {str(v).upper() for v in vertebrae}
    out: list[VertebraRegions] = []
    problems: list[str] = []
    if conv.all_vertebrae is not None:
        named = _name_bodies_by_count(vol, conv, t1_lab, g, anterior, head, sp)
    else:
        named = {}
        for v in dict.fromkeys(conv.vertebrae.values()):
            if v == "S1" or v not in VERTEBRAE:
                continue
            found_values = [x for x in conv.values_of(v) if x in present]
            if not found_values:
                continue
            k = _centre_slice(vol, found_values, g)
            if k is None:
                continue
            m = np.isin(t1_lab[k], found_values)
            if body_filter is not None:
                m &= body_filter[k]
            if not m.any():
                continue
            named[v] = (k, _most_anterior_piece(m, anterior, sp), tuple(found_values))
    for v in sorted(named, key=VERTEBRAE.index):
        if wanted is not None and v not in wanted:
            continue
        k, mask, values = named[v]
        if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
            logger.warning(
                "%s: %s (label %s) reaches the edge of T1 slice %d: its endplates may lie outside the "
                "field of view, so no ROIs are derived for it",
                vol.path.name,
                v,
                ", ".join(map(str, values)),
                k + 1,
            )
            continue
        try:
            regions = endplate_bands(mask, sp, head, settings)
        except BandError as e:
            problems.append(f"{v} (label {', '.join(map(str, values))}) on T1 slice {k + 1}: {e}")
            logger.warning("%s: no ROIs for %s", vol.path.name, problems[-1])
            continue
        out.append(VertebraRegions(v, k, regions, values))
    if conv.sacrum is not None and conv.sacrum in present and (wanted is None or "S1" in wanted):
        s1 = _s1_from_sacrum(vol, conv.sacrum, t1_lab, g, out, anterior, head, sp, settings)
        if s1 is not None:
            out.append(s1)
    if not out:
        why = "; ".join(problems) or "every vertebra found reaches the edge of the T1's field of view"
        raise LabelMapError(
            vol.path, f"none of its vertebrae (T11-S1) could be placed on the study's T1: {why}"
        )
    return out, conv, vol


def _box(lo: NDArray[np.float64], hi: NDArray[np.float64]) -> str:
    return " x ".join(f"[{a:.0f}, {b:.0f}]" for a, b in zip(lo, hi, strict=True))


def _resolve_convention(vol: LabelVolume, convention: str | LabelConvention | None) -> LabelConvention:
    if convention is not None and not (isinstance(convention, str) and convention.lower() == SEGMENT_NAMES):
        return get_convention(convention, vol.path)
    if not vol.names:
        if convention is not None:
            raise LabelMapError(
                vol.path,
                f"{SEGMENT_NAMES!r} is for files whose segments are named (DICOM SEG, a 3D Slicer "
                ".seg.nrrd); this one names none",
            )
        names = sorted({c.name for c in CONVENTIONS.values()})
        raise LabelMapError(
            vol.path,
            f"say which tool made it: its label numbers mean different vertebrae in each tool; "
            f"pass convention= (--labels-convention) one of {', '.join(names)}",
        )
    mapping: dict[int, str] = {}
    for number, text in vol.names.items():
        v = vertebra_from_name(text)
        if v is not None:
            mapping[number] = v
    if not mapping:
        listing = "; ".join(f"{k}: {t!r}" for k, t in sorted(vol.names.items())) or "no segments"
        raise LabelMapError(
            vol.path,
            f"none of its segments is named as a vertebra ({listing}); name them e.g. 'L4' or "
            "'vertebrae_L4', or give the tool's convention",
        )
    sacrum = next((k for k, v in mapping.items() if v == "S1"), None)
    return LabelConvention(
        name=SEGMENT_NAMES,
        tool="DICOM SEG" if vol.kind == "dicom-seg" else "3D Slicer segmentation",
        vertebrae=mapping,
        sacrum=sacrum,
        source="the SegmentLabel of each segment",
    )


def _name_bodies_by_count(
    vol: LabelVolume,
    conv: LabelConvention,
    t1_lab: NDArray[np.int64],
    g: SliceGeometry,
    anterior: NDArray[np.float64],
    head: NDArray[np.float64],
    sp: tuple[float, float],
) -> dict[str, tuple[int, NDArray[np.bool_], tuple[int, ...]]]:
    """``total_mr``: the bodies of the single ``vertebrae`` label, named up from the sacrum."""
    from .annotations import VERTEBRAE

    assert conv.all_vertebrae is not None
    if conv.sacrum is None or conv.sacrum not in vol.values:
        raise LabelMapError(
            vol.path,
            f"{conv.tool} labels every vertebra {conv.all_vertebrae}: modic names them by counting up from "
            f"the sacrum (label {conv.sacrum}), which is not in the label map",
        )
    k = _centre_slice(vol, [conv.all_vertebrae], g)
    if k is None:
        raise LabelMapError(vol.path, "its vertebrae do not lie on the study's T1 slices")
    lab, n = _pieces(t1_lab[k] == conv.all_vertebrae)
    pieces = []
    for i in range(1, n + 1):
        r, c = np.nonzero(lab == i)
        if len(r) < 20:
            continue
        pm = np.stack([r * sp[0], c * sp[1]], axis=1)
        h = pm @ head
        pieces.append((i, float((pm @ anterior).mean()), float(h.mean()), float(h.min()), float(h.max())))
    bodies = []
    for p in pieces:
        in_front = [
            q
            for q in pieces
            if q is not p
            and q[1] > p[1] + POSTERIOR_GAP_MM
            and min(p[4], q[4]) - max(p[3], q[3]) > 0.4 * min(p[4] - p[3], q[4] - q[3])
        ]
        if not in_front:
            bodies.append(p)
    sac = t1_lab[k] == conv.sacrum
    if not sac.any():
        raise LabelMapError(
            vol.path, f"the sacrum (label {conv.sacrum}) is not on the T1 slice {k + 1} of the vertebrae"
        )
    r, c = np.nonzero(sac)
    sac_top = float((np.stack([r * sp[0], c * sp[1]], axis=1) @ head).max())
    above = sorted((p for p in bodies if p[2] > sac_top - 10.0), key=lambda p: p[2])
    names = ["L5", "L4", "L3", "L2", "L1", "T12", "T11"]
    out: dict[str, tuple[int, NDArray[np.bool_], tuple[int, ...]]] = {}
    for name, p in zip(names, above, strict=False):
        if name in VERTEBRAE:
            out[name] = (k, np.asarray(lab == p[0], dtype=bool), (conv.all_vertebrae,))
    return out


def _s1_from_sacrum(
    vol: LabelVolume,
    sacrum: int,
    t1_lab: NDArray[np.int64],
    g: SliceGeometry,
    done: list[VertebraRegions],
    anterior: NDArray[np.float64],
    head: NDArray[np.float64],
    sp: tuple[float, float],
    settings: BandSettings | None,
) -> VertebraRegions | None:
    k = _centre_slice(vol, [sacrum], g)
    l5 = next((r for r in done if r.vertebra == "L5"), None)
    if l5 is not None:
        k = l5.slice_index if k is None or abs(k - l5.slice_index) > 1 else k
    if k is None:
        return None
    m = t1_lab[k] == sacrum
    if not m.any():
        return None
    piece = _most_anterior_piece(m, anterior, sp)
    up = l5.regions.axis if l5 is not None else head
    depth = l5.regions.body_height_mm if l5 is not None else S1_DEPTH_MM
    r, c = np.nonzero(piece)
    v = np.stack([r * sp[0], c * sp[1]], axis=1) @ up
    keep = v >= v.max() - depth
    top = np.zeros_like(piece)
    top[r[keep], c[keep]] = True
    try:
        regions = endplate_bands(top, sp, up, settings, surfaces=("superior",), reference=False)
    except BandError as e:
        raise LabelMapError(
            vol.path, f"S1 (the top of the sacrum, label {sacrum}) on T1 slice {k + 1}: {e}"
        ) from None
    return VertebraRegions("S1", k, regions, (sacrum,), from_sacrum=True)


# ----------------------------------------------------------------------------------------
# ROIs
# ----------------------------------------------------------------------------------------
def _shape_of(mask: NDArray[np.bool_]) -> Any:
    """A polygon tracing the mask's pixels exactly when it is one piece without holes
    (editable vertex by vertex in the annotator), else the mask itself."""
    from skimage.measure import approximate_polygon

    from .annotations import Mask, Polygon

    m = Mask.from_image_mask(mask)
    lab, n = _pieces(m.mask)
    from scipy import ndimage

    if n == 1 and bool(np.array_equal(ndimage.binary_fill_holes(m.mask), m.mask)):
        outline = m.outline()
        closed = np.vstack([outline, outline[:1]])
        simple = approximate_polygon(closed, tolerance=0.45)[:-1]
        for pts in (simple, outline):
            if len(pts) >= 3:
                poly = Polygon(pts)
                if np.array_equal(poly.rasterize(*mask.shape), mask):
                    return poly
    return m


def rois_from_labelmap(
    study: Any,
    path: str | os.PathLike[str],
    convention: str | LabelConvention | None = None,
    *,
    semantic: str | os.PathLike[str] | None = None,
    settings: BandSettings | None = None,
    vertebrae: Iterable[str] | None = None,
    author: str = "",
    check_references: bool = True,
) -> Any:
    """Endplate bands, body outlines and references derived from a vertebra label map.

    Parameters
    ----------
    study : LoadedStudy
        The study the label map was made on (its sagittal T1 receives the ROIs).
    path : str or PathLike
        NIfTI, NRRD or DICOM SEG.
    convention : str, optional
        Which tool made it: ``"totalspineseg"``, ``"spineps"``,
        ``"totalsegmentator-vertebrae_mr"`` (``"vertebrae_mr"``),
        ``"totalsegmentator-total_mr"`` (``"total_mr"``); a DICOM SEG may be read by its
        segment names instead (the default for DICOM SEG and 3D Slicer ``.seg.nrrd``).
    semantic : str or PathLike, optional
        SPINEPS's semantic mask, to take the vertebral body from it.
    settings : BandSettings, optional
        Band height and inset, reference placement (:mod:`modic.bands`).
    vertebrae : iterable of str, optional
        Only these vertebrae.
    author : str
    check_references : bool
        Leave out a derived reference whose level on the study's images is far off the
        trend of the other references (it likely holds part of a change that reaches the
        middle of the body; the classifier then uses the nearest other vertebra's), by the
        classifier's own rule (:class:`modic.reading.ReferenceModel`, with four or more
        references). Logged as a warning.

    Returns
    -------
    Annotations
        Per vertebra (T11-L5): its body (``"L4 body"``), superior and inferior endplate
        bands and a reference; for S1 from a sacrum label its superior band. Each ROI has
        ``origin="derived"`` and ``source`` naming the tool, the file and the label.

    Raises
    ------
    LabelMapError, MissingDependencyError, FileNotFoundError
        See :func:`read_labelmap` and :func:`derive_regions`.
    """
    from .annotations import ROI, Annotations, ImagePlane, RoiLabel

    found, conv, vol = derive_regions(
        study, path, convention, semantic=semantic, settings=settings, vertebrae=vertebrae
    )
    series = study.t1.series
    rois: list[ROI] = []
    s = settings or BandSettings()
    for vr in found:
        plane = ImagePlane.from_series(series, vr.slice_index)
        src = f"{conv.tool} {vol.path.name} label {', '.join(map(str, vr.labels))}"
        if semantic is not None:
            src += f" (body from {Path(semantic).name})"
        reg = vr.regions
        parts: list[tuple[Any, NDArray[np.bool_] | None, str]] = []
        if not vr.from_sacrum:
            parts.append((RoiLabel.for_body(vr.vertebra), reg.body, "vertebral body"))
        parts.append(
            (
                RoiLabel.for_endplate(vr.vertebra, "superior"),
                reg.superior,
                f"band {s.inset_mm:g}-{s.inset_mm + s.height_mm:g} mm under the endplate",
            )
        )
        if vr.vertebra != "S1":
            parts.append(
                (
                    RoiLabel.for_endplate(vr.vertebra, "inferior"),
                    reg.inferior,
                    f"band {s.inset_mm:g}-{s.inset_mm + s.height_mm:g} mm above the endplate",
                )
            )
        if not vr.from_sacrum:
            parts.append((RoiLabel.for_reference(vr.vertebra), reg.reference, "central marrow"))
        for label, mask, what in parts:
            if mask is None or not mask.any():
                continue
            rois.append(
                ROI(
                    label,
                    _shape_of(mask),
                    plane,
                    author=author,
                    origin="derived",
                    source=src,
                    comment=f"{what}, derived on the midline T1 slice {vr.slice_index + 1}",
                )
            )
        for note in reg.notes:
            logger.info("%s %s: %s", vol.path.name, vr.vertebra, note)
    if check_references:
        rois = _drop_odd_references(study, rois, vol.path.name)
    return Annotations(
        rois,
        study_instance_uid=study.study.study_uid,
        frame_of_reference_uid=series.frame_of_reference_uid,
    )


def _drop_odd_references(study: Any, rois: list[Any], name: str) -> list[Any]:
    """Leave out derived references that the classifier's reference model flags.

    A reference derived in central marrow holds part of the change when a change reaches
    past the middle of the body (Udby grade C). :class:`modic.reading.ReferenceModel` fits
    the level of every reference along the spine and flags one far off the trend of the
    others (the rule the classifier warns with); such a reference is left out, so that the
    endplates of that vertebra are compared with the nearest other vertebra's reference.
    """
    from .reading import ReferenceModel

    refs = [r for r in rois if r.label.kind == "reference"]
    if len(refs) < 4:
        return rois
    try:
        flagged = ReferenceModel.fit(study, refs).flagged
    except ModicError:
        return rois
    for r in refs:
        if r.id in flagged:
            logger.warning("%s: the derived %s is left out: %s", name, r.label, flagged[r.id])
    return [r for r in rois if r.id not in flagged]


@dataclass
class MergeReport:
    """What :func:`merge_derived` did, by ROI label text."""

    added: list[str] = field(default_factory=list)
    kept_drawn: list[str] = field(default_factory=list)
    kept_derived: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.added)} derived ROI{'s' if len(self.added) != 1 else ''} added"]
        if self.replaced:
            parts.append(f"{len(self.replaced)} earlier derived replaced")
        if self.kept_drawn:
            parts.append(
                f"{len(self.kept_drawn)} left out where a drawn ROI exists ({', '.join(self.kept_drawn)})"
            )
        if self.kept_derived:
            parts.append(f"{len(self.kept_derived)} left out where an earlier derived ROI exists")
        return "; ".join(parts)


def merge_derived(existing: Any, derived: Any, *, replace_derived: bool = False) -> tuple[Any, MergeReport]:
    """Add derived ROIs to an annotation document without touching what a person drew.

    Every ROI of ``existing`` is kept. A derived ROI is added only where ``existing`` has no
    ROI of the same label (e.g. ``"L4 inferior"``); where it has one that was drawn
    (any origin but ``"derived"``: drawn, proposed, imported, or derived and then edited by
    hand) the derived one is left out; where it has an earlier derived one, that one is
    kept unless ``replace_derived`` (then it is replaced).

    Parameters
    ----------
    existing : Annotations or None
        The annotation file's document (not modified); None for a new one.
    derived : Annotations
        From :func:`rois_from_labelmap`.
    replace_derived : bool

    Returns
    -------
    merged : Annotations
        A new document (``existing``'s study, timestamps and ROIs, plus the additions).
    report : MergeReport
    """
    from .annotations import Annotations

    report = MergeReport()
    if existing is None:
        merged = Annotations(
            [],
            study_instance_uid=derived.study_instance_uid,
            frame_of_reference_uid=derived.frame_of_reference_uid,
        )
    else:
        merged = Annotations(
            list(existing.rois),
            study_instance_uid=existing.study_instance_uid,
            frame_of_reference_uid=existing.frame_of_reference_uid or derived.frame_of_reference_uid,
            description=existing.description,
            created=existing.created,
            modified=existing.modified,
            tool=dict(existing.tool),
        )
    for roi in derived.rois:
        same = [r for r in merged.rois if r.label == roi.label]
        text = str(roi.label)
        if any(r.origin != "derived" for r in same):
            report.kept_drawn.append(text)
            continue
        if same and not replace_derived:
            report.kept_derived.append(text)
            continue
        for r in same:
            merged.remove(r.id)
        if same:
            report.replaced.append(text)
        else:
            report.added.append(text)
        merged.add(roi)
    return merged, report
