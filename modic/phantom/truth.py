"""Ground truth of a phantom study: what is where, in LPS millimetres, as JSON.

Everything needed to score a Modic classifier is here: per endplate its Modic type
(``"0"`` = normal) and for changes their geometry, height (Udby grade) and per-type
volume fractions; per vertebra its frame, endplate centres and normals and a
reference-marrow point; per series its UID, role and the noise and scaling used.
:func:`lesion_mask` and :func:`tissue_at` rebuild the exact continuous anatomy from the
recorded spec, so any patient point can be asked for its tissue or Modic type.

Studies that use the realism options of :class:`~modic.phantom.StudySpec` also carry
``factors`` -- per study (:attr:`GroundTruth.factors`: coil gradient and the measured
L1 / S1 sensitivity ratio, fat-suppression efficiency per series, slice thickness,
marrow fat fraction and heterogeneity, focal fat islands, endplate irregularity,
degenerated discs, hemangiomas, Schmorl nodes) and per endplate
(:attr:`EndplateTruth.factors`: weak change, fat islands in the change, Schmorl node,
hemangioma in the vertebra, focal fat islands near the endplate, disc degeneration) --
so an evaluation can report accuracy per factor.  None of them changes a Modic type:
hemangiomas, Schmorl nodes and focal fat islands are not Modic changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .anatomy import Anatomy, Vertebra
from .build import build_anatomy
from .lesion import Lesion
from .spec import LESION_VERTEBRAE, StudySpec, udby_grade

__all__ = [
    "SeriesTruth",
    "LesionTruth",
    "EndplateTruth",
    "VertebraTruth",
    "GroundTruth",
    "lesion_mask",
    "tissue_at",
    "anatomy_of",
    "NOISE_DEFINITION",
]

#: How the study's ``snr`` and each series' ``noise_sigma`` are defined.
NOISE_DEFINITION = (
    "snr = mean noise-free signal of normal L1-L5 marrow on the sagittal T1 (coil "
    "sensitivity 1) / sigma_T1; each series adds complex Gaussian noise of sigma = "
    "sigma_T1 * noise_scale and keeps the magnitude (Rician). noise_sigma is given in "
    "real-world units (stored * RescaleSlope + RescaleIntercept); model signal = "
    "real-world value / signal_gain."
)

Vec = list[float]


def _vec(a: NDArray[np.floating] | Vec) -> Vec:
    return [round(float(v), 6) for v in np.asarray(a, dtype=float).ravel()]


@dataclass
class SeriesTruth:
    """One written series."""

    series_instance_uid: str
    series_number: int
    description: str
    role: str
    plane: str
    fat_suppressed: bool
    enhanced: bool
    transfer_syntax: str
    n_images: int
    rows: int
    cols: int
    files: list[str]
    sequence: dict[str, Any]
    noise_sigma: float
    signal_gain: float
    rescale_slope: float
    rescale_intercept: float


@dataclass
class LesionTruth:
    """A Modic change.

    ``geometry`` holds, in LPS mm, everything needed to rebuild it (see
    :class:`modic.phantom.anatomy.Lesion` for the rule); ``fractions`` are the measured
    volume fractions of each component type (one entry for a single type).
    """

    modic_type: str
    types: list[str]
    layout: str | None
    fractions: dict[str, float]
    volume_mm3: float
    height_fraction: float
    measured_height_fraction: float
    udby_grade: str
    width_fraction: float
    depth_fraction: float
    geometry: dict[str, Any]


@dataclass
class EndplateTruth:
    """One endplate: ``vertebra`` + ``endplate`` (``"superior"``/``"inferior"``)."""

    vertebra: str
    endplate: str
    disc: str
    modic_type: str
    center: Vec
    normal: Vec
    visible_in: list[int]
    lesion: LesionTruth | None = None
    #: Realism factors of this endplate (``None`` for studies without realism options):
    #: ``weak`` (bool), ``t1_ratio`` (target T1 SIR of a weak change or None),
    #: ``fat_islands`` (measured share of the type-1 part that is fat islands),
    #: ``schmorl`` (bool), ``hemangioma`` (bool: one in this vertebra),
    #: ``focal_fat_islands`` (normal fat islands of the vertebra within 10 mm of this
    #: endplate), ``disc_degenerated`` (bool) and ``disc_hydration`` (0-1) of its disc.
    factors: dict[str, Any] | None = None


@dataclass
class VertebraTruth:
    """One vertebral body (T12 ... S1).

    ``axes`` rows are the body's left, posterior and superior unit vectors (LPS);
    endplate normals point out of the body; ``reference_marrow_point`` is normal marrow
    >= 4 mm from any cortex, endplate or Modic change (None if the body has none).
    """

    name: str
    center: Vec
    axes: list[Vec]
    width: float
    depth: float
    height: float
    marrow_fat_fraction: float
    superior_endplate_center: Vec
    superior_normal: Vec
    inferior_endplate_center: Vec
    inferior_normal: Vec
    reference_marrow_point: Vec | None
    csf_point: Vec | None
    fat_point: Vec | None


@dataclass
class GroundTruth:
    """Everything known about a written phantom study."""

    seed: int
    vendor: str
    field_strength: float
    snr: float
    bias: float
    study_instance_uid: str
    frame_of_reference_uid: str
    patient_id: str
    spec: dict[str, Any]
    series: list[SeriesTruth] = field(default_factory=list)
    vertebrae: list[VertebraTruth] = field(default_factory=list)
    endplates: list[EndplateTruth] = field(default_factory=list)
    noise_definition: str = NOISE_DEFINITION
    dicom_dir: str = "dicom"
    format_version: int = 1
    #: Realism factors of the study (``None`` when it uses no realism option); see the
    #: module docstring and :func:`modic.phantom.study.study_factors`.
    factors: dict[str, Any] | None = None

    # ---------------------------------------------------------------- lookup
    def endplate(self, vertebra: str, endplate: str) -> EndplateTruth:
        """The endplate ``vertebra`` ``endplate``, e.g. ``("L4", "inferior")``."""
        for e in self.endplates:
            if e.vertebra == vertebra and e.endplate == endplate:
                return e
        raise KeyError(f"no endplate {vertebra} {endplate} in the ground truth")

    def vertebra(self, name: str) -> VertebraTruth:
        """The vertebra ``name``."""
        for v in self.vertebrae:
            if v.name == name:
                return v
        raise KeyError(f"no vertebra {name!r} in the ground truth")

    def series_by_role(self, role: str, plane: str | None = None) -> SeriesTruth:
        """The first series of ``role`` (and ``plane``)."""
        for s in self.series:
            if s.role == role and (plane is None or s.plane == plane):
                return s
        raise KeyError(f"no {role} series (plane {plane}) in the ground truth")

    @property
    def study_spec(self) -> StudySpec:
        """The :class:`StudySpec` that produced the study."""
        return StudySpec.from_dict(self.spec)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``factors`` left out where ``None``, as in older files)."""
        d = asdict(self)
        if d["factors"] is None:
            del d["factors"]
        for e in d["endplates"]:
            if e["factors"] is None:
                del e["factors"]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["series"] = [SeriesTruth(**s) for s in d.get("series", [])]
        d["vertebrae"] = [VertebraTruth(**v) for v in d.get("vertebrae", [])]
        eps = []
        for e in d.get("endplates", []):
            e = dict(e)
            if e.get("lesion") is not None:
                e["lesion"] = LesionTruth(**e["lesion"])
            eps.append(EndplateTruth(**e))
        d["endplates"] = eps
        return cls(**d)

    def to_json(self, path: str | Path) -> Path:
        """Write to ``path`` atomically (temporary file + ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".truth-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> GroundTruth:
        """Read a ``truth.json`` written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


# ---------------------------------------------------------------- anatomy access
@lru_cache(maxsize=8)
def _anatomy_from_json(spec_json: str) -> Anatomy:
    return build_anatomy(StudySpec.from_dict(json.loads(spec_json)))


def anatomy_of(source: GroundTruth | StudySpec | Anatomy) -> Anatomy:
    """The continuous anatomy behind a ground truth, spec or anatomy (cached)."""
    if isinstance(source, Anatomy):
        return source
    spec = source.study_spec if isinstance(source, GroundTruth) else source
    return _anatomy_from_json(json.dumps(spec.to_dict(), sort_keys=True))


def lesion_mask(source: GroundTruth | StudySpec | Anatomy,
                points_lps: ArrayLike) -> NDArray[np.int8]:
    """Modic type at patient points.

    Parameters
    ----------
    source : GroundTruth, StudySpec or Anatomy
        The study.
    points_lps : (N, 3) array_like
        Points in LPS millimetres.

    Returns
    -------
    (N,) ndarray of int8
        1, 2 or 3 inside a Modic change of that type (the local component of a mixed
        change), 0 elsewhere.
    """
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    return anatomy_of(source).lesion_labels(pts)


def tissue_at(source: GroundTruth | StudySpec | Anatomy,
              points_lps: ArrayLike) -> NDArray[np.str_]:
    """Tissue name at patient points ((N, 3) LPS mm) -> (N,) str array.

    Names: ``"csf"``, ``"marrow_L3"``, ``"modic1_L4_inferior"``, ``"nucleus_L4_L5"``,
    ``"annulus"``, ``"cortical_bone"``, ``"subcutaneous_fat"``, ``"muscle"``, ...
    """
    anat = anatomy_of(source)
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    names = np.array(anat.tissue_names)
    out: NDArray[np.str_] = names[anat.labels(pts)]
    return out


# ---------------------------------------------------------------- building
def _lesion_truth(anat: Anatomy, les: Lesion) -> LesionTruth:
    v = anat.vertebrae[les.vertebra]
    spec = les.spec
    x0, y0 = np.array([les.x0]), np.array([les.y0])
    z0 = float(v.z_surface(x0, y0, les.superior)[0])
    centre = v.to_lps(np.array([les.x0, les.y0, z0]))
    inward = -v.axes[2] if les.superior else v.axes[2]
    measured = les.measured
    assert measured is not None
    geometry = {
        "rule": ("marrow points with 0 <= w <= h(x, y), w = depth below the endplate "
                 "surface along the inward normal, (x, y) = body-local left/posterior "
                 "coordinates; h = max_depth_mm * (1 - rho**q)**(1/q) * (1 - irregularity "
                 "* (1 + n) / 2), rho**2 = ((x-x0)/rx)**2 + ((y-y0)/ry)**2, n = mean of "
                 "cos(kx x + ky y + phase) over waves; mixed: layered -> first type where "
                 "w <= split * h, side -> first type where (y - y0)/ry < split"),
        "vertebra_center": _vec(v.center),
        "axes": [_vec(a) for a in v.axes],
        "center_on_endplate": _vec(centre),
        "inward_normal": _vec(inward),
        "center_local_mm": [round(les.x0, 6), round(les.y0, 6)],
        "radii_mm": [round(les.rx, 6), round(les.ry, 6)],
        "max_depth_mm": round(les.h0, 6),
        "local_body_height_mm": round(les.local_height, 6),
        "profile_exponent": les.q,
        "irregularity": les.irregularity,
        "waves": [_vec(w) for w in les.waves],
        "split": round(les.split, 6),
    }
    mixed = len(les.types) > 1
    fractions = {k: round(val, 6) for k, val in measured.fractions.items()}
    return LesionTruth(
        modic_type=spec.canonical_type, types=list(les.types),
        layout=spec.mix_layout if mixed else None, fractions=fractions,
        volume_mm3=round(measured.volume_mm3, 3), height_fraction=spec.height_fraction,
        measured_height_fraction=round(measured.max_height_fraction, 6),
        udby_grade=udby_grade(spec.height_fraction), width_fraction=spec.width_fraction,
        depth_fraction=spec.depth_fraction, geometry=geometry)


def _find_point(anat: Anatomy, v: Vertebra, candidates: list[tuple[float, float, float]],
                ok: NDArray[np.bool_], radius: float) -> Vec | None:
    """First body-local candidate whose ball of ``radius`` has only labels with ``ok``."""
    offs = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1],
                     [0, 0, -1], [0.6, 0.6, 0.6], [-0.6, -0.6, -0.6], [0.6, -0.6, 0.6],
                     [-0.6, 0.6, -0.6]], dtype=float) * radius
    for cand in candidates:
        local = np.asarray(cand, dtype=float)[None, :] + offs
        lab = anat.labels(v.to_lps(local))
        if bool(np.all(ok[lab])):
            return _vec(v.to_lps(local[0]))
    return None


def vertebra_truth(anat: Anatomy, v: Vertebra) -> VertebraTruth:
    """Ground truth of vertebra ``v`` (landmarks checked against the painted anatomy)."""
    n_t = len(anat.tissues)
    ok_marrow = np.zeros(n_t, dtype=bool)
    ok_marrow[v.marrow_code] = True
    H, D = v.height, v.depth
    cands = [(0.0, 0.0, 0.0)]
    for dz in (0.1, -0.1, 0.2, -0.2, 0.28, -0.28):
        for dy in (0.0, -0.2, 0.2):
            cands.append((0.0, dy * D, dz * H))
    ref = _find_point(anat, v, cands, ok_marrow, 4.0)
    ok_csf = np.zeros(n_t, dtype=bool)
    ok_csf[anat.code("csf")] = True
    yc = D / 2 + 1.5 + v.canal_depth / 2
    csf_cands = [(0.0, yc + f * v.canal_depth, 0.0) for f in (-0.3, -0.2, -0.35, -0.1, 0.0)]
    csf_cands += [(sx * 0.45 * v.canal_half_width, yc - 0.1 * v.canal_depth, 0.0)
                  for sx in (1.0, -1.0)]
    csf = _find_point(anat, v, csf_cands, ok_csf, 1.0)
    ok_fat = np.zeros(n_t, dtype=bool)
    ok_fat[anat.code("subcutaneous_fat")] = True
    z = float(v.center[2])
    yb = float(anat.back_y(np.array([z]))[0])
    fat = None
    for depth in (0.5, 0.4, 0.6, 0.3, 0.7):
        p = np.array([v.center[0], yb - 2.0 - depth * (anat.fat_thickness - 2.0), z])
        local = v.to_local(p[None, :])[0]
        fat = _find_point(anat, v, [tuple(local)], ok_fat, min(2.0, anat.fat_thickness / 5))
        if fat is not None:
            break
    return VertebraTruth(
        name=v.name, center=_vec(v.center), axes=[_vec(a) for a in v.axes],
        width=round(v.width, 4), depth=round(v.depth, 4), height=round(v.height, 4),
        marrow_fat_fraction=round(v.fat_fraction, 4),
        superior_endplate_center=_vec(v.endplate_center(True)), superior_normal=_vec(v.axes[2]),
        inferior_endplate_center=_vec(v.endplate_center(False)),
        inferior_normal=_vec(-v.axes[2]), reference_marrow_point=ref, csf_point=csf,
        fat_point=fat)


def endplate_factors(anat: Anatomy, i: int, superior: bool) -> dict[str, Any]:
    """The realism factors of one endplate (see :attr:`EndplateTruth.factors`)."""
    v = anat.vertebrae[i]
    les = next((x for x in anat.lesions if x.vertebra == i and x.superior == superior), None)
    islands = 0.0
    if les is not None and les.measured is not None:
        islands = round(les.measured.island_fraction, 4)
    near = 0
    for cx, cy, cz, r in v.focal_fat:
        xa, ya = np.array([cx]), np.array([cy])
        zsurf = float(v.z_surface(xa, ya, superior)[0])
        gap = (zsurf - cz) if superior else (cz - zsurf)
        near += int(gap - r <= 10.0)
    disc = anat._disc_next_to(i, superior)
    return {
        "weak": bool(les is not None and les.spec.weak),
        "t1_ratio": les.spec.t1_ratio if les is not None else None,
        "fat_islands": islands,
        "schmorl": any(n.superior == superior for n in v.schmorl_nodes),
        "hemangioma": len(v.hemangioma_codes) > 0,
        "focal_fat_islands": near,
        "disc_degenerated": bool(disc is not None
                                 and disc.name in anat.spec.degenerated_discs),
        "disc_hydration": round(disc.hydration, 4) if disc is not None else None,
    }


def endplate_truths(anat: Anatomy, visible: dict[tuple[str, str], list[int]],
                    with_factors: bool = False) -> list[EndplateTruth]:
    """Ground truth of every endplate of T12 ... S1 facing a disc (top to bottom).

    ``with_factors``: also record each endplate's realism :func:`endplate_factors`.
    """
    out = []
    for name in LESION_VERTEBRAE:
        v = anat.vertebra(name)
        i = anat.vertebra_index(name)
        for superior in (True, False):
            if name == "S1" and not superior:
                continue
            ep = "superior" if superior else "inferior"
            other = anat.vertebrae[i - 1 if superior else i + 1].name
            disc = f"{other}/{name}" if superior else f"{name}/{other}"
            les = next((x for x in anat.lesions if x.vertebra == i and x.superior == superior),
                       None)
            lt = _lesion_truth(anat, les) if les is not None else None
            normal = v.axes[2] if superior else -v.axes[2]
            out.append(EndplateTruth(
                vertebra=name, endplate=ep, disc=disc,
                modic_type=lt.modic_type if lt is not None else "0",
                center=_vec(v.endplate_center(superior)), normal=_vec(normal),
                visible_in=visible.get((name, ep), []), lesion=lt,
                factors=endplate_factors(anat, i, superior) if with_factors else None))
    return out
