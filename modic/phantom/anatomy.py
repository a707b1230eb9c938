"""Analytic lumbar spine anatomy in patient coordinates (LPS mm).

The model is continuous: :meth:`Anatomy.labels` tells which tissue lies at any set of
points, so every imaging grid (sagittal T1, sagittal T2 on another grid, axial T2,
localizer) samples the same body.  Images get partial volume by averaging the signal of
several sub-samples per voxel (:mod:`modic.phantom.render`).

Geometry
--------
Vertebral bodies T8-S4 follow a lordotic (lumbar) / kyphotic (thoracic, sacral) curve in
the sagittal plane.  Each vertebra has a rigid frame: *left* (x), *posterior* (y) and
*superior* (z) unit axes, centred at the body centre.  A body is a rounded-box
(superellipse) cylinder, narrower at mid height (waist), with a slight posterior
concavity (kidney shape), a cortical shell, bony endplates and concave endplate surfaces.
Consecutive bodies are joined by discs (nucleus pulposus, annulus fibrosus, cartilage
endplates) whose wedge shape follows from the difference in tilt of the two bodies.

Soft tissues along the spine (discs, canal, muscles, vessels) are defined in *spine
coordinates*: the space between two consecutive endplate planes is a segment, and a point
in it gets a height fraction ``t`` (0 on the lower plane, 1 on the upper) and in-plane
coordinates interpolated between the frames of the two planes, continuous across segments.

Painter's order: torso (skin, subcutaneous fat, fat, abdominal wall, viscera, lungs),
kidneys, muscles and vessels, posterior elements and sacral alae, ligamentum flavum and
canal (epidural fat, thecal sac, cord, cauda equina), discs, vertebral bodies (cortex,
endplates, marrow, focal fat islands, hemangiomas, Modic changes and their fat islands,
Schmorl nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .lesion import Lesion
from .points import Points, SegmentPoints, slab_select
from .spec import StudySpec
from .tissue import Tissue

__all__ = ["Vertebra", "Disc", "Anatomy"]

_NO_POINTS = SegmentPoints.empty()

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: mm of slack in the cheap tests that skip points far from a structure (before its
#: exact test): far more than float rounding, so no point the exact test accepts is lost.
_EPS = 0.01

@dataclass
class Vertebra:
    """One vertebra: rigid frame, body dimensions and marrow.

    Attributes
    ----------
    name : str
        ``"T8"`` ... ``"S4"``.
    center : (3,) ndarray
        Body centre, LPS mm.
    axes : (3, 3) ndarray
        Rows: left, posterior and superior unit axes of the body, LPS.
    width, depth, height : float
        Body extent left-right, antero-posterior and cranio-caudal at the rim, mm.
    concavity_sup, concavity_inf : float
        Depth of the concave superior / inferior endplate surface at its centre, mm.
    cortex, endplate : float
        Thickness of the cortical shell and of the bony endplates, mm.
    canal_half_width, canal_depth : float
        Spinal canal half width and antero-posterior depth at this level, mm.
    fat_fraction : float
        Mean proton-density fat fraction of the normal marrow.
    """

    name: str
    center: FloatArray
    axes: FloatArray
    width: float
    depth: float
    height: float
    concavity_sup: float
    concavity_inf: float
    cortex: float
    endplate: float
    canal_half_width: float
    canal_depth: float
    fat_fraction: float
    exponent: float = 2.6
    waist: float = 0.06
    kidney: float = 0.08
    marrow_code: int = 0
    #: Amplitude (mm) of the undulation of the endplate surfaces (0 = smooth domes).
    surface_amp: float = 0.0
    #: (2, n, 3) waves (kx, ky, phase) of the superior [0] and inferior [1] surface.
    surface_waves: FloatArray = field(default_factory=lambda: np.zeros((2, 0, 3)))
    #: Focal fat islands of normal marrow: (n, 4) body-local centre (mm) and radius.
    focal_fat: FloatArray = field(default_factory=lambda: np.zeros((0, 4)))
    focal_fat_code: int = -1
    #: Hemangiomas: (n, 4) body-local centre and radius, mm, with their tissue codes.
    hemangiomas: FloatArray = field(default_factory=lambda: np.zeros((0, 4)))
    hemangioma_codes: tuple[int, ...] = ()
    #: Schmorl nodes, see :class:`SchmorlNode`.
    schmorl_nodes: list[SchmorlNode] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``"thoracic"``, ``"lumbar"`` or ``"sacral"``."""
        return {"T": "thoracic", "L": "lumbar", "S": "sacral"}[self.name[0]]

    def to_local(self, points: NDArray[np.floating]) -> FloatArray:
        """(N, 3) LPS points -> (N, 3) body-local (left, posterior, superior) mm."""
        q: FloatArray = (np.asarray(points, dtype=float) - self.center) @ self.axes.T
        return q

    def to_lps(self, local: NDArray[np.floating]) -> FloatArray:
        """(N, 3) or (3,) body-local points -> LPS mm."""
        p: FloatArray = np.asarray(local, dtype=float) @ self.axes + self.center
        return p

    def concavity(self, x: NDArray[np.floating], y: NDArray[np.floating],
                  superior: bool) -> NDArray[np.floating]:
        """Depth of the endplate surface below the rim plane at local (x, y), mm.

        ``c (1 - rho**2)`` (a dome; ``rho`` the normalised distance from the centre), or
        with an undulation ``max(0, (c + a n(x, y)) (1 - rho**2))``, ``n`` the mean of
        the surface's cosine waves (in [-1, 1]), ``a`` :attr:`surface_amp`.
        """
        rho2 = (x / (self.width / 2)) ** 2 + (y / (self.depth / 2)) ** 2
        cc = self.concavity_sup if superior else self.concavity_inf
        waves = self.surface_waves[0 if superior else 1]
        if self.surface_amp > 0 and len(waves):
            n = np.zeros(np.shape(x), dtype=np.float64)
            for kx, ky, ph in waves:
                n += np.cos(kx * x + ky * y + ph)
            depth = np.clip(cc + self.surface_amp * n / len(waves), 0.0, None)
            out_u: NDArray[np.floating] = (depth * np.clip(1.0 - rho2, 0.0, None)).astype(
                np.result_type(x, np.float32))
            return out_u
        out: NDArray[np.floating] = cc * np.clip(1.0 - rho2, 0.0, None)
        return out

    def z_surface(self, x: NDArray[np.floating], y: NDArray[np.floating],
                  superior: bool) -> NDArray[np.floating]:
        """Local z of the superior (or inferior) endplate surface over (x, y), mm."""
        if superior:
            return self.height / 2 - self.concavity(x, y, True)
        return -self.height / 2 + self.concavity(x, y, False)

    def section(self, x: NDArray[np.floating], y: NDArray[np.floating],
                z: NDArray[np.floating], inset: float = 0.0) -> NDArray[np.floating]:
        """Superellipse measure of the body cross-section (<= 1 inside), optionally inset."""
        zz = np.clip(2.0 * z / self.height, -1.0, 1.0)
        shrink = 1.0 - self.waist * (1.0 - zz * zz)
        a = self.width / 2 * shrink - inset
        b = self.depth / 2 * shrink - inset
        kid = 1.0 - self.kidney * np.exp(-((x / (0.45 * self.width / 2)) ** 2))
        b_eff = np.where(y > 0, b * kid, b)
        e = self.exponent
        r: NDArray[np.floating] = np.abs(x / a) ** e + np.abs(y / b_eff) ** e
        return r

    def plane(self, superior: bool) -> tuple[FloatArray, FloatArray]:
        """(origin, normal) of the rim plane of the superior / inferior endplate, LPS."""
        u = self.axes[2]
        sign = 1.0 if superior else -1.0
        return self.center + sign * u * self.height / 2, u.copy()

    def endplate_center(self, superior: bool) -> FloatArray:
        """Centre of the (concave) endplate surface, LPS mm."""
        cc = self.concavity_sup if superior else self.concavity_inf
        if self.surface_amp > 0:  # the undulating surface over the centre
            cc = float(self.concavity(np.zeros(1), np.zeros(1), superior)[0])
        sign = 1.0 if superior else -1.0
        c: FloatArray = self.center + sign * self.axes[2] * (self.height / 2 - cc)
        return c


@dataclass
class SchmorlNode:
    """A Schmorl node in its vertebra's local frame (mm).

    Disc material fills the dome ``0 <= w <= depth * sqrt(1 - rho**2)`` (``w`` the depth
    below the endplate surface, ``rho`` the distance from ``(x0, y0)`` over ``radius``),
    rimmed by ``rim`` mm of sclerotic cortex.
    """

    superior: bool
    x0: float
    y0: float
    radius: float
    depth: float
    code: int
    rim: float = 0.7


@dataclass
class Disc:
    """An intervertebral disc between ``upper`` and ``lower`` (indices into vertebrae)."""

    name: str
    upper: int
    lower: int
    height: float
    hydration: float
    nucleus_code: int = 0


@dataclass
class Segment:
    """Space between two consecutive endplate planes (a body or a disc)."""

    kind: str  # "body" | "disc"
    name: str
    index: int  # vertebra index (body) or disc index (disc)
    o0: FloatArray  # lower plane origin, LPS
    f0: FloatArray  # lower frame rows (left, posterior, superior)
    o1: FloatArray
    f1: FloatArray
    s0: float  # arc length of the lower plane origin
    s1: float
    dims0: FloatArray  # (half width, half depth, canal half width, canal depth) at bottom
    dims1: FloatArray
    lo: FloatArray = field(default_factory=lambda: np.zeros(3))
    hi: FloatArray = field(default_factory=lambda: np.zeros(3))

    _affine: tuple[F32, F32] | None = None

    @property
    def affine(self) -> tuple[F32, F32]:
        """(3, 6) matrix and (6,) offset: ``P @ M + off`` = (d0, d1, x0, y0, x1, y1).

        ``d0``/``d1``: distance above the lower / below the upper plane; ``x0, y0`` and
        ``x1, y1``: in-plane coordinates in the lower / upper plane's frame.
        """
        if self._affine is None:
            M = np.stack([self.f0[2], -self.f1[2], self.f0[0], self.f0[1],
                          self.f1[0], self.f1[1]], axis=1)
            origins = np.stack([self.o0, self.o1, self.o0, self.o0, self.o1, self.o1], axis=1)
            off = -np.einsum("ij,ij->j", M, origins)
            self._affine = (M.astype(np.float32), off.astype(np.float32))
        return self._affine


class Anatomy:
    """The continuous phantom body of one study.

    Build it with :func:`build_anatomy`.  Attributes: :attr:`vertebrae` (top to bottom),
    :attr:`discs`, :attr:`lesions`, :attr:`tissues` (label code -> :class:`Tissue`).
    """

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self.field_strength = spec.field_strength
        self.vertebrae: list[Vertebra] = []
        self.discs: list[Disc] = []
        self.lesions: list[Lesion] = []
        self.tissues: list[Tissue] = []
        self._code: dict[str, int] = {}
        self._segments: list[Segment] = []
        self.lesion_type_of_code: dict[int, int] = {}
        # torso parameters (set by build)
        self.torso_ax = 160.0
        self.torso_ay = 120.0
        self.fat_thickness = 18.0
        self.back_depth_table: tuple[FloatArray, FloatArray, FloatArray] = (
            np.zeros(2), np.zeros(2), np.zeros(2))
        self.conus_s = 0.0
        self.sac_end_s = 0.0
        self.bifurcation_s = 0.0
        self.texture_waves = np.zeros((0, 4))
        self.patch_waves = np.zeros((0, 4))
        self._prim_cache: dict[int, list[tuple[str, tuple[float, ...], FloatArray,
                                               FloatArray]]] = {}

    # ------------------------------------------------------------------ tissues
    def add_tissue(self, tissue: Tissue) -> int:
        """Register ``tissue``; returns its label code."""
        if tissue.name in self._code:
            return self._code[tissue.name]
        self.tissues.append(tissue)
        self._code[tissue.name] = len(self.tissues) - 1
        return len(self.tissues) - 1

    def code(self, name: str) -> int:
        """Label code of tissue ``name``."""
        return self._code[name]

    @property
    def tissue_names(self) -> list[str]:
        """Tissue names indexed by label code."""
        return [t.name for t in self.tissues]

    def vertebra(self, name: str) -> Vertebra:
        """The vertebra called ``name``."""
        for v in self.vertebrae:
            if v.name == name:
                return v
        raise KeyError(f"no vertebra {name!r}; known: {[v.name for v in self.vertebrae]}")

    def vertebra_index(self, name: str) -> int:
        """Index of vertebra ``name`` in :attr:`vertebrae`."""
        return [v.name for v in self.vertebrae].index(name)

    # ------------------------------------------------------------------ spine curve
    def centreline_y(self, z: NDArray[np.floating]) -> NDArray[np.floating]:
        """LPS y of the vertebral-body axis at height z (interpolated; clamped at ends)."""
        zs, ys, _ = self.back_depth_table
        out: NDArray[np.floating] = np.interp(z, zs, ys)
        return out

    def back_y(self, z: NDArray[np.floating]) -> NDArray[np.floating]:
        """LPS y of the posterior skin surface in the midline at height z."""
        zs, ys, depth = self.back_depth_table
        out: NDArray[np.floating] = np.interp(z, zs, ys) + np.interp(z, zs, depth)
        return out

    # ------------------------------------------------------------------ painting
    def labels(self, points: NDArray[np.floating]) -> NDArray[np.uint16]:
        """Tissue label code at each of ``points`` ((N, 3) LPS mm) -> (N,) codes."""
        P = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 3))
        pts = Points(P, np.zeros(len(P), dtype=np.uint16))
        self.paint(pts)
        return pts.lab

    def lesion_labels(self, points: NDArray[np.floating]) -> NDArray[np.int8]:
        """Modic type (1, 2, 3) at each point, 0 where there is no Modic change."""
        lab = self.labels(points)
        table = np.zeros(len(self.tissues), dtype=np.int8)
        for code, t in self.lesion_type_of_code.items():
            table[code] = t
        out: NDArray[np.int8] = table[lab]
        return out

    def paint(self, pts: Points) -> None:
        """Paint all structures into ``pts.lab`` (painter's order, see module docstring)."""
        self._paint_torso(pts)
        self._paint_kidneys(pts)
        self._spine_coordinates(pts)
        for k in range(len(self._segments)):
            self._paint_segment_soft(pts, k)
        for i in range(len(self.vertebrae)):
            self._paint_posterior(pts, i)
        for k in range(len(self._segments)):
            self._paint_canal(pts, k)
        for k, seg in enumerate(self._segments):
            if seg.kind == "disc":
                self._paint_disc(pts, k)
        for i in range(len(self.vertebrae)):
            self._paint_body(pts, i)

    # torso ---------------------------------------------------------------
    def _paint_torso(self, pts: Points) -> None:
        """Skin, subcutaneous fat, fat, abdominal wall, viscera and lungs (global shapes).

        The axial cross-section is an ellipse (half axes ``torso_ax``, ``torso_ay``) whose
        posterior edge follows the back; layers are concentric insets of it.
        """
        P, lab = pts.P, pts.lab
        x, y, z = P[:, 0], P[:, 1], P[:, 2]
        zs, ys_tab, depth = self.back_depth_table
        z64 = z.astype(np.float64)  # what np.interp converts to, once for both
        yc = np.interp(z64, zs, ys_tab).astype(np.float32)
        yb = yc + np.interp(z64, zs, depth).astype(np.float32)
        v = y - (yb - np.float32(self.torso_ay))
        u2 = x * x
        v2 = v * v

        def inside(shrink: float) -> BoolArray:
            ax = np.float32(1.0 / (self.torso_ax - 1.2 * shrink) ** 2)
            ay = np.float32(1.0 / (self.torso_ay - shrink) ** 2)
            out: BoolArray = u2 * ax + v2 * ay <= 1.0
            return out

        lab[inside(0.0)] = self.code("skin")
        lab[inside(2.0)] = self.code("subcutaneous_fat")
        inner = inside(self.fat_thickness)
        lab[inner] = self.code("fascia_fat")
        cavity = inside(self.fat_thickness + 11.0)
        lab[inner & ~cavity & (y < yc + 25.0)] = self.code("muscle")  # abdominal wall
        ycav = yc - 39.0 + np.minimum(45.0, 0.012 * x * x)
        visc = cavity & (y < ycav)
        lab[visc] = self.code("viscera")
        t11 = self.vertebra("T11")
        lung = visc & (z > t11.center[2] + 5.0) & (np.abs(x) > 28.0)
        lab[lung] = self.code("lung")

    def _paint_kidneys(self, pts: Points) -> None:
        t12, l2 = self.vertebra("T12"), self.vertebra("L2")
        for side, dz in ((1.0, 10.0), (-1.0, -8.0)):  # left kidney higher
            zc = 0.5 * (t12.center[2] + l2.center[2]) + dz
            yc = float(self.centreline_y(np.array([zc]))[0]) + 12.0
            c = np.array([side * 78.0 + self.vertebra("L1").center[0], yc, zc])
            r = np.array([26.0, 20.0, 52.0])
            idx = pts.select(c - r, c + r)
            if len(idx) == 0:
                continue
            q = (pts.P.take(idx, axis=0) - c) / r
            inside = np.sum(q * q, axis=1) <= 1.0
            allowed = self._soft(pts.lab[idx])
            pts.lab[idx[inside & allowed]] = self.code("viscera")

    def _soft(self, lab: NDArray[np.uint16]) -> BoolArray:
        """Labels that soft tissues inside the torso may overwrite."""
        table = np.zeros(len(self.tissues), dtype=bool)
        for name in ("fascia_fat", "viscera", "muscle", "lung"):
            table[self.code(name)] = True
        out: BoolArray = table[lab]
        return out

    # spine coordinates ----------------------------------------------------
    def _spine_coordinates(self, pts: Points) -> None:
        """Spine coordinates of the points in every segment, cached in ``pts.segments``."""
        pts.segments = {}
        for k, seg in enumerate(self._segments):
            idx = slab_select(pts, seg.lo, seg.hi, seg.o0, seg.f0[2], seg.o1, seg.f1[2])
            if len(idx) == 0:
                continue
            M, off = seg.affine
            P = pts.P.take(idx, axis=0)  # take: much faster than P[idx] on (n, 3)
            D = P @ np.ascontiguousarray(M[:, :2])  # a slice of M takes a slower BLAS path
            D += off[:2]
            m = (D[:, 0] >= 0) & (D[:, 1] > 0)
            if not m.any():
                continue
            if not m.all():
                w = np.flatnonzero(m)
                idx, D, P = idx[w], D.take(w, axis=0), P.take(w, axis=0)
            A = P @ np.ascontiguousarray(M[:, 2:])  # x0, y0, x1, y1
            A += off[2:]
            hb, ht = D[:, 0], D[:, 1]
            t = hb / (hb + ht)
            x = A[:, 0] + t * (A[:, 2] - A[:, 0])
            y = A[:, 1] + t * (A[:, 3] - A[:, 1])
            s = np.float32(seg.s0) + t * np.float32(seg.s1 - seg.s0)
            d0 = seg.dims0.astype(np.float32)[:, None]
            dims = d0 + (seg.dims1.astype(np.float32)[:, None] - d0) * t
            f32 = np.float32
            pts.segments[k] = SegmentPoints(idx, np.asarray(x, f32), np.asarray(y, f32),
                                            np.asarray(t, f32), np.asarray(s, f32),
                                            np.asarray(dims, f32), hb, ht)

    def _seg_coords(self, pts: Points, k: int) -> SegmentPoints:
        """Points of segment k with their spine coordinates (float32)."""
        return pts.segments.get(k, _NO_POINTS)

    # muscles and vessels ------------------------------------------------------
    def _paint_segment_soft(self, pts: Points, k: int) -> None:
        sp = self._seg_coords(pts, k)
        idx, x, y, s, dims = sp.idx, sp.x, sp.y, sp.s, sp.dims
        if len(idx) == 0:
            return
        seg = self._segments[k]
        a, b, cw, cd = dims
        lab = pts.lab
        allowed = self._soft(lab[idx])
        muscle = self.code("muscle")
        s_l1 = self._s_of("L1", 0.0)
        s_s1 = self._s_of("S1", 0.0)
        s_s2 = self._s_of("S2", 0.0)
        s_t12 = self._s_of("T12", 0.0)
        s_l4 = self._s_of("L4", 0.0)
        bif = self.bifurcation_s

        def spans(lo: float, hi: float) -> bool:
            return seg.s1 > lo and seg.s0 < hi
        # paraspinal (erector spinae + multifidus), smaller over the sacrum; both lie
        # behind y = b + cd + 1
        near = np.flatnonzero(y >= b + cd + 0.5)
        if len(near):
            xn, yn, sn, bn, cdn = x[near], y[near], s[near], b[near], cd[near]
            idn, aln = idx[near], allowed[near]
            scale = np.where(sn > s_l1, 0.8, 1.0) * np.clip(1.0 - (s_s1 - sn) / 120.0, 0.35,
                                                           1.0)
            for side in (-1.0, 1.0):
                rx, ry = 27.0 * scale, 26.0 * scale
                cx = side * (3.0 + rx)
                cy = bn + cdn + 1.0 + ry
                m = ((xn - cx) / rx) ** 2 + ((yn - cy) / ry) ** 2 <= 1.0
                lab[idn[m & aln]] = muscle
        # psoas: from L1 growing to L5, leaving laterally in the pelvis; it lies in
        # front of y = 15.4 and lateral of |x| = a - 4.6
        if spans(s_s2 - 30.0, s_l1 + 5.0):
            near = np.flatnonzero((y <= 16.0) & (np.abs(x) >= a - 5.0))
            if len(near):
                self._paint_psoas(pts, idx[near], x[near], y[near], s[near], a[near],
                                  b[near], allowed[near], s_l1, s_s1, s_s2)
        # quadratus lumborum, T12 - L4, lateral of |x| = cw + 39
        if spans(s_l4, s_t12):
            near = np.flatnonzero(np.abs(x) >= cw + 38.0)
            if len(near):
                xn, yn, sn, bn, cdn, cwn = x[near], y[near], s[near], b[near], cd[near], cw[near]
                idn, aln = idx[near], allowed[near]
                ql = (sn < s_t12) & (sn > s_l4)
                for side in (-1.0, 1.0):
                    cx = side * (cwn + 52.0)
                    cy = bn + 0.5 * cdn
                    m = ql & (((xn - cx) / 13.0) ** 2 + ((yn - cy) / 9.0) ** 2 <= 1.0)
                    lab[idn[m & aln]] = muscle
        # aorta (left of midline) and its bifurcation into the common iliac arteries; IVC;
        # all in front of the bodies (y < -b + 1)
        if not spans(bif - 70.0, np.inf):
            return
        front = np.flatnonzero(y < -b + 1.0)
        if len(front) == 0:
            return
        idx, x, y, s, b = idx[front], x[front], y[front], s[front], b[front]
        void = self.code("flow_void")
        above = s > bif
        ra = 10.0
        cy = -(b + ra + 2.0)
        m = above & (((x - 12.0) ** 2 + (y - cy) ** 2) <= ra * ra)
        below = (s <= bif) & (s > bif - 70.0)
        spread = 12.0 + 0.45 * (bif - s)
        m |= below & (((x - spread) ** 2 + (y + b + 8.0) ** 2) <= 36.0)
        m |= below & (((x + spread - 6.0) ** 2 + (y + b + 8.0) ** 2) <= 36.0)
        above_v = s > bif - 15.0
        m |= above_v & (((x + 20.0) / 13.0) ** 2 + ((y + b + 8.0) / 8.0) ** 2 <= 1.0)
        keep = m & self._soft(lab[idx])
        lab[idx[keep]] = void

    def _paint_psoas(self, pts: Points, idx: IntArray, x: F32, y: F32, s: F32, a: F32,
                     b: F32, allowed: BoolArray, s_l1: float, s_s1: float, s_s2: float
                     ) -> None:
        muscle = self.code("muscle")
        lab = pts.lab
        grow = np.clip((s_l1 - s) / (s_l1 - s_s1), 0.0, 1.0)
        rp = 4.0 + 18.0 * grow
        present = (s < s_l1 + 5.0) & (s > s_s2 - 30.0)
        lateral = np.clip((s_s1 - s) / 40.0, 0.0, 1.0) * 25.0
        for side in (-1.0, 1.0):
            cx = side * (a + 0.7 * rp + 2.0 + lateral)
            cy = -0.15 * b - 0.2 * rp - 0.5 * lateral
            m = present & (((x - cx) / rp) ** 2 + ((y - cy) / (0.9 * rp)) ** 2 <= 1.0)
            lab[idx[m & allowed]] = muscle

    def _s_of(self, name: str, t: float) -> float:
        """Arc length at fraction ``t`` of the height of vertebra ``name`` (0 = inferior)."""
        for seg in self._segments:
            if seg.kind == "body" and seg.name == name:
                return float(seg.s0 + t * (seg.s1 - seg.s0))
        raise KeyError(name)

    # posterior elements ----------------------------------------------------
    def _posterior_primitives(self, v: Vertebra) -> list[tuple[str, tuple[float, ...]]]:
        """Bony primitives of the neural arch of ``v`` in its local frame (mm).

        Kinds: ``("ellipsoid", cx, cy, cz, rx, ry, rz)``, ``("box", cx, cy, cz, rx, ry, rz,
        slope)`` (superellipsoid, exponent 4, z sheared by ``slope * (y - cy)``) and
        ``("capsule", x0, y0, x1, y1, radius, z0, z1)`` (a slab around a segment in x-y).
        """
        H, D, cw, cd = v.height, v.depth, v.canal_half_width, v.canal_depth
        yb = D / 2
        prims: list[tuple[str, tuple[float, ...]]] = []
        kind = v.kind
        if kind != "sacral":
            lp = cd * 0.7 + 4.0
            ltp = {"thoracic": 18.0, "lumbar": 24.0}[kind] + (4.0 if v.name == "L3" else 0.0)
            ytp = yb + 0.55 * cd + (6.0 if kind == "thoracic" else 0.0)
            for sd in (-1.0, 1.0):
                prims.append(("box", (sd * (cw + 4.5), yb + lp / 2 - 3.0, 0.15 * H,
                                      4.5, lp / 2, 7.0, 0.0)))
                prims.append(("capsule", (sd * (cw + 3.0), yb + cd * 0.7, 0.0, yb + cd + 3.5,
                                          3.6, -0.55 * H - 3.0, 0.3 * H)))
                prims.append(("box", (sd * (cw + 6.0 + ltp / 2), ytp, 0.1 * H,
                                      ltp / 2, 4.0, 5.0, 0.0)))
                prims.append(("ellipsoid", (sd * (cw + 5.0), yb + cd * 0.85, H / 2 + 2.0,
                                            5.0, 6.0, 8.0)))
                prims.append(("ellipsoid", (sd * (cw + 3.0), yb + cd + 3.0, -H / 2 - 2.0,
                                            5.0, 6.0, 8.0)))
            lsp = 30.0 if kind == "lumbar" else 34.0
            hs = 18.0 if kind == "lumbar" else 12.0
            slope = 0.25 if kind == "lumbar" else 0.9
            zsp = -0.15 * H - (0.0 if kind == "lumbar" else 8.0)
            prims.append(("box", (0.0, yb + cd + 3.0 + lsp / 2, zsp, 4.0, lsp / 2, hs / 2,
                                  slope)))
        else:
            # fused sacral arch: laminae and a low median crest spanning the segment
            for sd in (-1.0, 1.0):
                prims.append(("capsule", (sd * (cw + 2.0), yb + cd * 0.5, 0.0, yb + cd + 3.0,
                                          3.6, -H / 2 - 2.0, H / 2 + 2.0)))
            prims.append(("box", (0.0, yb + cd + 6.0, 0.0, 3.5, 5.0, H / 2, 0.0)))
            if v.name == "S1":
                for sd in (-1.0, 1.0):
                    prims.append(("ellipsoid", (sd * (cw + 5.0), yb + cd * 0.85, H / 2 + 2.0,
                                                5.0, 6.0, 8.0)))
            if v.name in ("S1", "S2"):
                wing = 46.0 if v.name == "S1" else 34.0
                for sd in (-1.0, 1.0):
                    prims.append(("box", (sd * (v.width / 2 + wing / 2 - 8.0), 0.15 * D,
                                          -0.05 * H, wing / 2 + 8.0, D / 2 + 5.0, H / 2 + 5.0,
                                          0.0)))
        return prims

    def _posterior_cache(self, i: int
                         ) -> list[tuple[str, tuple[float, ...], FloatArray, FloatArray]]:
        """Primitives of vertebra i with their LPS bounding boxes (computed once)."""
        if i in self._prim_cache:
            return self._prim_cache[i]
        v = self.vertebrae[i]
        out = []
        for kind, prm in self._posterior_primitives(v):
            if kind == "capsule":
                x0, y0, x1, y1, rad, z0, z1 = prm
                lo = (min(x0, x1) - rad, min(y0, y1) - rad, z0)
                hi = (max(x0, x1) + rad, max(y0, y1) + rad, z1)
            else:
                cx, cy, cz, rx, ry, rz = prm[:6]
                slope = prm[6] if kind == "box" else 0.0
                dz = abs(slope) * ry
                lo = (cx - rx, cy - ry, cz - rz - dz)
                hi = (cx + rx, cy + ry, cz + rz + dz)
            corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                                for c in (lo[2], hi[2])])
            lps = v.to_lps(corners)
            out.append((kind, prm, lps.min(axis=0), lps.max(axis=0)))
        self._prim_cache[i] = out
        return out

    def _paint_posterior(self, pts: Points, i: int) -> None:
        v = self.vertebrae[i]
        t = 1.1  # cortex of the posterior elements, mm
        for kind, prm, lo_lps, hi_lps in self._posterior_cache(i):
            idx = pts.select(lo_lps, hi_lps)
            if len(idx) == 0:
                continue
            if kind == "capsule":
                x0, y0, x1, y1, rad, z0, z1 = prm
            else:
                cx, cy, cz, rx, ry, rz = prm[:6]
                slope = prm[6] if kind == "box" else 0.0
            q = ((pts.P.take(idx, axis=0) - v.center.astype(np.float32))
                 @ v.axes.T.astype(np.float32))
            x, y, z = q[:, 0], q[:, 1], q[:, 2]
            if kind == "ellipsoid":
                ex, ey, ez = (x - cx) ** 2, (y - cy) ** 2, (z - cz) ** 2
                outer = ex / rx ** 2 + ey / ry ** 2 + ez / rz ** 2 <= 1.0
                inner = ex / (rx - t) ** 2 + ey / (ry - t) ** 2 + ez / (rz - t) ** 2 <= 1.0
            elif kind == "box":
                ax_, ay_ = (x - cx) ** 2, (y - cy) ** 2
                zz = z - cz + slope * (y - cy)
                az_ = zz * zz
                outer = (ax_ * ax_ / rx ** 4 + ay_ * ay_ / ry ** 4 + az_ * az_ / rz ** 4) <= 1.0
                inner = (ax_ * ax_ / (rx - t) ** 4 + ay_ * ay_ / (ry - t) ** 4
                         + az_ * az_ / (rz - t) ** 4) <= 1.0
            else:
                dx, dy = x1 - x0, y1 - y0
                L2 = dx * dx + dy * dy
                tt = np.clip(((x - x0) * dx + (y - y0) * dy) / L2, 0.0, 1.0)
                px, py = x - x0 - tt * dx, y - y0 - tt * dy
                d2 = px * px + py * py
                outer = (d2 <= rad * rad) & (z >= z0) & (z <= z1)
                inner = (d2 <= (rad - t) ** 2) & (z >= z0 + t) & (z <= z1 - t)
            lab = pts.lab
            lab[idx[outer & ~inner]] = self.code("cortical_bone")
            lab[idx[inner]] = v.marrow_code

    # canal -------------------------------------------------------------------
    def _paint_canal(self, pts: Points, k: int) -> None:
        sp = self._seg_coords(pts, k)
        idx, x, y, s, dims = sp.idx, sp.x, sp.y, sp.s, sp.dims
        if len(idx) == 0:
            return
        _, b, cw, cd = dims
        # every structure below lies within |x| <= cw + 2 and b + 1.5 <= y <= b + cd + 25.5
        near = np.flatnonzero((np.abs(x) <= cw + 2.5) & (y >= b + 1.0) & (y <= b + cd + 26.0))
        if len(near) == 0:
            return
        idx, x, y, s, dims = idx[near], x[near], y[near], s[near], dims.take(near, axis=1)
        _, b, cw, cd = dims
        lab = pts.lab
        yc = b + 1.5 + cd / 2
        half = cd / 2
        # ligamentum flavum: a 3 mm layer behind the canal, where there is no bone
        lf = ((np.abs(x) / (cw + 2.0)) ** 2.2 + (np.abs(y - yc) / (half + 3.0)) ** 2.2 <= 1.0) \
            & (y > yc)
        bone = self._is_bone(lab[idx])
        lab[idx[lf & ~bone]] = self.code("ligament")
        # interspinous ligament between the lumbar spinous processes (midline)
        isl = ((np.abs(x) < 2.0) & (y > yc + half) & (y < yc + half + 24.0)
               & (s > self._s_of("S1", 0.8)) & (s < self._s_of("T12", 0.0)))
        lab[idx[isl & ~bone]] = self.code("ligament")
        canal = (np.abs(x) / cw) ** 2.2 + (np.abs(y - yc) / half) ** 2.2 <= 1.0
        lab[idx[canal]] = self.code("epidural_fat")
        # thecal sac, with more posterior epidural fat at the lower lumbar levels
        s_l3 = self._s_of("L3", 0.5)
        pf = np.clip((s_l3 - s) / 60.0, 0.0, 1.0) * 2.0
        sa = cw - 1.6
        sb = half - 1.2 - pf
        ys = yc - pf
        taper = np.clip((s - self.sac_end_s) / 12.0, 0.0, 1.0)
        sa_t, sb_t = sa * np.sqrt(taper), sb * np.sqrt(taper)
        sac = (taper > 0) & ((x / np.maximum(sa_t, 1e-3)) ** 2
                             + ((y - ys) / np.maximum(sb_t, 1e-3)) ** 2 <= 1.0)
        lab[idx[sac]] = self.code("csf")
        # cord down to the conus, then the cauda equina lying posteriorly (supine)
        rc = 4.5 * np.clip((s - self.conus_s) / 15.0, 0.0, 1.0)
        cord = (rc > 0.3) & ((x ** 2 + (y - ys - 0.8) ** 2) <= rc ** 2) & sac
        lab[idx[cord]] = self.code("cord")
        cauda_t = np.clip((s - self.sac_end_s - 5.0) / 40.0, 0.0, 1.0) \
            * (s < self.conus_s + 8.0)
        ca, cb = 0.5 * sa_t * np.sqrt(cauda_t), 0.32 * sb_t * np.sqrt(cauda_t)
        cauda = (cauda_t > 0) & sac & ~cord & (
            (x / np.maximum(ca, 1e-3)) ** 2 + ((y - ys - 0.5 * sb_t) / np.maximum(cb, 1e-3)) ** 2
            <= 1.0)
        lab[idx[cauda]] = self.code("cauda")

    def _is_bone(self, lab: NDArray[np.uint16]) -> BoolArray:
        table = np.zeros(len(self.tissues), dtype=bool)
        table[self.code("cortical_bone")] = True
        for v in self.vertebrae:
            table[v.marrow_code] = True
            if v.focal_fat_code >= 0:
                table[v.focal_fat_code] = True
            for c in v.hemangioma_codes:
                table[c] = True
        for les in self.lesions:
            for c in les.codes:
                table[c] = True
            if les.island_code >= 0:
                table[les.island_code] = True
        out: BoolArray = table[lab]
        return out

    # discs ---------------------------------------------------------------------
    def _disc_section(self, d: Disc, x: NDArray[np.floating], y: NDArray[np.floating],
                      t: NDArray[np.floating], a: NDArray[np.floating],
                      b: NDArray[np.floating]) -> tuple[BoolArray, BoolArray]:
        """(inside disc, inside nucleus) at disc-segment coordinates."""
        bulge = (1.0 + 2.0 * (1.0 - d.hydration)) * np.sin(np.pi * np.clip(t, 0, 1))
        a_e = a + 0.6 * bulge
        b_e = np.where(y > 0, b + 1.0 * bulge, b + 0.6 * bulge)
        disc = np.abs(x / a_e) ** 2.6 + np.abs(y / b_e) ** 2.6 <= 1.0
        size = 0.75 + 0.25 * d.hydration
        ra, rb = 0.58 * a * size, 0.48 * b * size
        tt = np.abs(2.0 * t - 1.0)
        nuc = (x / ra) ** 2 + ((y - 0.1 * b) / rb) ** 2 + tt ** 4 <= 1.0
        return disc, nuc

    def _paint_disc(self, pts: Points, k: int) -> None:
        seg = self._segments[k]
        d = self.discs[seg.index]
        sp = self._seg_coords(pts, k)
        idx, x, y, t, dims = sp.idx, sp.x, sp.y, sp.t, sp.dims
        if len(idx) == 0:
            return
        a, b = dims[0], dims[1]
        disc, nuc = self._disc_section(d, x, y, t, a, b)
        lab = pts.lab
        if self.is_remnant(d):
            lab[idx[disc]] = self.code("disc_remnant")
            return
        lab[idx[disc]] = self.code("annulus")
        lab[idx[disc & nuc]] = d.nucleus_code
        # cartilage endplates where the bony surface is within 0.7 mm
        lo_v, up_v = self.vertebrae[d.lower], self.vertebrae[d.upper]
        hb, ht = sp.hb, sp.ht
        rho_lo = (x / (lo_v.width / 2)) ** 2 + (y / (lo_v.depth / 2)) ** 2
        rho_up = (x / (up_v.width / 2)) ** 2 + (y / (up_v.depth / 2)) ** 2
        cart = disc & (((hb + lo_v.concavity(x, y, True) < 0.7) & (rho_lo < 0.9))
                       | ((ht + up_v.concavity(x, y, False) < 0.7) & (rho_up < 0.9)))
        lab[idx[cart]] = self.code("cartilage")

    # bodies ------------------------------------------------------------------------
    def _paint_body(self, pts: Points, i: int) -> None:
        v = self.vertebrae[i]
        ext = np.array([v.width / 2 + 1.0, v.depth / 2 + 1.0, v.height / 2 + 0.5])
        corners = np.array([[sx * ext[0], sy * ext[1], sz * ext[2]]
                            for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        lps = v.to_lps(corners)
        idx = pts.select(lps.min(axis=0), lps.max(axis=0))
        if len(idx) == 0:
            return
        q = v.to_local(pts.P.take(idx, axis=0))
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        # _body_codes paints only inside the body (|z| <= h / 2, section <= 1, so
        # |x| <= w / 2 and |y| <= d / 2): skip the points of the box outside it
        near = np.flatnonzero((np.abs(z) <= v.height / 2) & (np.abs(x) <= v.width / 2 + _EPS)
                              & (np.abs(y) <= v.depth / 2 + _EPS))
        if len(near) == 0:
            return
        idx = idx[near]
        codes = self._body_codes(i, x[near], y[near], z[near])
        m = codes >= 0
        pts.lab[idx[m]] = codes[m].astype(np.uint16)

    def _body_codes(self, i: int, x: FloatArray, y: FloatArray, z: FloatArray) -> IntArray:
        """Label codes inside the body slab of vertebra i at local (x, y, z); -1 = none."""
        v = self.vertebrae[i]
        out = np.full(len(x), -1, dtype=np.int64)
        slab = np.abs(z) <= v.height / 2
        r = v.section(x, y, z)
        body = slab & (r <= 1.0)
        zs = v.z_surface(x, y, True)
        zi = v.z_surface(x, y, False)
        core = body & (z <= zs) & (z >= zi)
        out[core] = self.code("cortical_bone")
        r_in = v.section(x, y, z, inset=v.cortex)
        marrow = core & (r_in <= 1.0) & (z <= zs - v.endplate) & (z >= zi + v.endplate)
        out[marrow] = v.marrow_code
        # focal fat islands and hemangiomas of normal marrow
        if len(v.focal_fat) or len(v.hemangiomas):
            wm = np.flatnonzero(marrow)
            xm, ym, zm = x[wm], y[wm], z[wm]
            if len(v.focal_fat):
                out[wm[in_spheres(v.focal_fat, xm, ym, zm)]] = v.focal_fat_code
            for sphere, code in zip(v.hemangiomas, v.hemangioma_codes, strict=True):
                out[wm[in_spheres(sphere[None, :], xm, ym, zm)]] = code
        # Modic changes
        for les in self.lesions:
            if les.vertebra != i:
                continue
            comp = les.classify(v, x, y, z)
            for j, c in enumerate(les.codes):
                out[marrow & (comp == j)] = c
            if les.island_code >= 0 and len(les.islands):
                j1 = les.types.index("1")
                sel = marrow & (comp == j1)
                if sel.any():
                    ws = np.flatnonzero(sel)
                    inside = in_spheres(les.islands, x[ws], y[ws], z[ws])
                    out[ws[inside]] = les.island_code
        # Schmorl nodes: disc material through the endplate, with a sclerotic rim
        for node in v.schmorl_nodes:
            w = (zs - z) if node.superior else (z - zi)
            d2 = (x - node.x0) ** 2 + (y - node.y0) ** 2
            rho2 = d2 / node.radius ** 2
            dome = core & (w >= 0) & (rho2 < 1.0) & (
                w <= node.depth * np.sqrt(np.clip(1.0 - rho2, 0.0, None)))
            ro = node.radius + node.rim
            rho2o = d2 / ro ** 2
            rim = core & (w >= 0) & (rho2o < 1.0) & (
                w <= (node.depth + node.rim) * np.sqrt(np.clip(1.0 - rho2o, 0.0, None)))
            out[rim & ~dome] = self.code("cortical_bone")
            out[dome] = node.code
        # concave part of the disc above / below the rim planes
        for superior in (True, False):
            zsurf = zs if superior else zi
            conc = body & ((z > zs) if superior else (z < zi))
            if not conc.any():
                continue
            disc = self._disc_next_to(i, superior)
            if disc is None:
                continue
            if self.is_remnant(disc):
                out[conc] = self.code("disc_remnant")
                continue
            ra = 0.58 * v.width / 2 * (0.75 + 0.25 * disc.hydration)
            rb = 0.48 * v.depth / 2 * (0.75 + 0.25 * disc.hydration)
            nuc = (x / ra) ** 2 + ((y - 0.1 * v.depth / 2) / rb) ** 2 <= 1.0
            out[conc] = self.code("annulus")
            out[conc & nuc] = disc.nucleus_code
            cart = conc & (np.abs(z - zsurf) < 0.7)
            out[cart] = self.code("cartilage")
        return out

    def is_remnant(self, d: Disc) -> bool:
        """Whether disc ``d`` is a remnant between fused segments: between two sacral
        vertebrae, L5/S1 in a sacralised L5, never S1/S2 in a lumbarised S1
        (``StudySpec.transitional``)."""
        upper = self.vertebrae[d.upper]
        t = getattr(self.spec, "transitional", "")
        if t == "sacralised_L5" and upper.name == "L5":
            return True
        if t == "lumbarised_S1" and upper.name == "S1":
            return False
        return upper.kind == "sacral" and self.vertebrae[d.lower].kind == "sacral"

    def _disc_next_to(self, i: int, superior: bool) -> Disc | None:
        for d in self.discs:
            if (superior and d.lower == i) or (not superior and d.upper == i):
                return d
        return None

    # texture ---------------------------------------------------------------------
    def texture(self, points: NDArray[np.floating]) -> F32:
        """Smooth zero-mean, unit-std field (N,) used to vary marrow fat fraction."""
        P = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        acc = np.zeros(len(P), dtype=np.float32)
        for kx, ky, kz, ph in self.texture_waves:
            acc += np.cos(P @ np.array([kx, ky, kz], dtype=np.float32) + np.float32(ph))
        acc *= np.float32(np.sqrt(2.0 / max(len(self.texture_waves), 1)))
        return acc

    def patchiness(self, points: NDArray[np.floating]) -> F32:
        """Blotchy zero-mean field (N,) in (-1, 1) of heterogeneous marrow.

        ``tanh(1.5 g)`` of a unit-std sum of cosines ``g`` (patches 6-20 mm): flat-topped
        patches of fattier and leaner marrow rather than a gentle ripple.
        """
        P = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        acc = np.zeros(len(P), dtype=np.float32)
        for kx, ky, kz, ph in self.patch_waves:
            acc += np.cos(P @ np.array([kx, ky, kz], dtype=np.float32) + np.float32(ph))
        acc *= np.float32(np.sqrt(2.0 / max(len(self.patch_waves), 1)))
        out: F32 = np.tanh(np.float32(1.5) * acc)
        return out


def in_spheres(spheres: NDArray[np.floating], x: NDArray[np.floating],
                y: NDArray[np.floating], z: NDArray[np.floating]) -> BoolArray:
    """Whether local points (x, y, z) lie in any of ``spheres`` ((n, 4): centre, radius)."""
    out = np.zeros(np.shape(x), dtype=bool)
    for cx, cy, cz, r in spheres:
        out |= (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r * r
    return out
