"""Point sets being labelled: image grids, tiles of pixels, or arbitrary points.

Selecting the points inside a structure's bounding box is the inner loop of the
phantom; for tensor grids it uses index ranges, for tiles per-tile boxes, so that a
structure only ever touches the points near it.  All coordinates are LPS mm, float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Points", "SegmentPoints", "slab_select"]

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
IntArray = NDArray[np.int64]

#: mm added to a tile's reach across a slab plane: far more than the float32 rounding
#: of the points' plane distances, so no tile with a point in the slab is dropped.
_SLAB_MARGIN = 0.01


@dataclass(frozen=True)
class SegmentPoints:
    """The points of one spine segment and their spine coordinates (float32, mm).

    ``idx`` indexes :attr:`Points.P`; ``x``, ``y``: left and posterior in-plane
    coordinates; ``t``: height fraction in the segment; ``s``: arc length along the
    spine; ``dims``: (4, n) interpolated half width, half depth, canal half width and
    canal depth; ``hb``, ``ht``: distances to the lower and upper plane.
    """

    idx: IntArray
    x: F32
    y: F32
    t: F32
    s: F32
    dims: F32
    hb: F32
    ht: F32

    @classmethod
    def empty(cls) -> SegmentPoints:
        """No points."""
        z = np.empty(0, dtype=np.float32)
        return cls(np.empty(0, dtype=np.int64), z, z, z, z, np.empty((4, 0), np.float32), z, z)


class Points:
    """A set of points being painted: flat (M, 3) float32 coordinates and labels.

    For image grids the points form a tensor grid ``origin + a*axn + b*axb + c*axc``
    (flattened in (a, b, c) order) and bounding-box selection uses index ranges (fast);
    for arbitrary points it uses a mask.  Spine coordinates of the points are cached per
    segment in :attr:`segments`.
    """

    def __init__(self, points: F32, labels: NDArray[np.uint16], *,
                 bbox: tuple[FloatArray, FloatArray] | None = None) -> None:
        self.P = points
        self.lab = labels
        self.origin: FloatArray | None = None
        self.axes: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self.coords: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self.tile_size = 0
        self.tile_lo: F32 | None = None
        self.tile_hi: F32 | None = None
        if bbox is not None:
            self.lo, self.hi = bbox
        elif len(points):
            self.lo = points.min(axis=0).astype(np.float64)
            self.hi = points.max(axis=0).astype(np.float64)
        else:
            self.lo = np.full(3, np.inf)
            self.hi = np.full(3, -np.inf)
        self.segments: dict[int, SegmentPoints] = {}

    @classmethod
    def from_grid(cls, origin: FloatArray, axn: FloatArray, axb: FloatArray,
                  axc: FloatArray, a: FloatArray, b: FloatArray, c: FloatArray) -> Points:
        """Points ``origin + a*axn + b*axb + c*axc`` over the tensor grid (a, b, c).

        ``a``, ``b``, ``c`` must be sorted ascending.
        """
        o = origin.astype(np.float32)
        pa = a.astype(np.float32)[:, None, None, None] * axn.astype(np.float32)
        pb = b.astype(np.float32)[None, :, None, None] * axb.astype(np.float32)
        pc = c.astype(np.float32)[None, None, :, None] * axc.astype(np.float32)
        P = (o + pa + pb + pc).reshape(-1, 3)
        corners = np.array([origin + aa * axn + bb * axb + cc * axc
                            for aa in (a[0], a[-1]) for bb in (b[0], b[-1])
                            for cc in (c[0], c[-1])])
        pts = cls(P, np.zeros(len(P), dtype=np.uint16),
                  bbox=(corners.min(axis=0) - 1e-3, corners.max(axis=0) + 1e-3))
        pts.origin = origin
        pts.axes = (axn, axb, axc)
        pts.coords = (a, b, c)
        return pts

    @classmethod
    def from_tiles(cls, points: F32, tile_size: int, tile_lo: F32 | None = None,
                   tile_hi: F32 | None = None) -> Points:
        """Points stored as consecutive tiles of ``tile_size`` points (selection per tile).

        ``tile_lo``/``tile_hi`` ((n_tiles, 3)) are the tiles' bounding boxes, computed from
        the points when not given.
        """
        if tile_lo is None or tile_hi is None:
            tiles = points.reshape(-1, tile_size, 3)
            tile_lo, tile_hi = tiles.min(axis=1), tiles.max(axis=1)
        pts = cls(points, np.zeros(len(points), dtype=np.uint16),
                  bbox=(tile_lo.min(axis=0).astype(np.float64),
                        tile_hi.max(axis=0).astype(np.float64)))
        pts.tile_size = tile_size
        pts.tile_lo, pts.tile_hi = tile_lo, tile_hi
        return pts

    def overlaps(self, lo: FloatArray, hi: FloatArray) -> bool:
        """Whether the LPS box [lo, hi] meets the points' bounding box."""
        slo, shi = self.lo, self.hi
        return bool(hi[0] >= slo[0] and hi[1] >= slo[1] and hi[2] >= slo[2]
                    and lo[0] <= shi[0] and lo[1] <= shi[1] and lo[2] <= shi[2])

    def select(self, lo: FloatArray, hi: FloatArray) -> IntArray:
        """Flat indices of the points inside the LPS box [lo, hi] (a superset for grids)."""
        if not self.overlaps(lo, hi):
            return np.empty(0, dtype=np.int64)
        if self.tile_lo is not None and self.tile_hi is not None:
            hit = np.all((self.tile_hi >= lo) & (self.tile_lo <= hi), axis=1)
            tiles = np.flatnonzero(hit)
            t = self.tile_size
            out_t: IntArray = (tiles[:, None] * t + np.arange(t)[None, :]).ravel()
            return out_t
        if self.origin is None or self.axes is None or self.coords is None:
            P = self.P
            m = np.ones(len(P), dtype=bool)
            for d in range(3):
                m &= (P[:, d] >= lo[d]) & (P[:, d] <= hi[d])
            return np.flatnonzero(m)
        ranges = self.grid_ranges(lo, hi)
        if ranges is None:
            return np.empty(0, dtype=np.int64)
        nb, nc = len(self.coords[1]), len(self.coords[2])
        ia, ib, ic = (np.arange(i0, i1) for i0, i1 in ranges)
        idx = (ia[:, None, None] * nb + ib[None, :, None]) * nc + ic[None, None, :]
        out: IntArray = idx.ravel()
        return out

    def grid_ranges(self, lo: FloatArray, hi: FloatArray
                    ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
        """Index ranges ``(start, stop)`` along (a, b, c) of the grid points near [lo, hi].

        The ranges span the projections of the box's corners on the grid axes; None when
        one is empty.  Only for image grids (:meth:`from_grid`).
        """
        assert self.origin is not None and self.axes is not None and self.coords is not None
        corners = np.array([[xx, yy, zz] for xx in (lo[0], hi[0]) for yy in (lo[1], hi[1])
                            for zz in (lo[2], hi[2])]) - self.origin
        ranges = []
        for ax, coords in zip(self.axes, self.coords, strict=True):
            proj = corners @ ax
            i0 = int(np.searchsorted(coords, proj.min(), "left"))
            i1 = int(np.searchsorted(coords, proj.max(), "right"))
            if i1 <= i0:
                return None
            ranges.append((i0, i1))
        return ranges[0], ranges[1], ranges[2]


def slab_select(pts: Points, lo: FloatArray, hi: FloatArray, o0: FloatArray,
                 u0: FloatArray, o1: FloatArray, u1: FloatArray) -> IntArray:
    """Indices of points in the box [lo, hi] that may lie in the slab between two planes.

    The slab is ``(P - o0) . u0 >= 0`` and ``(o1 - P) . u1 > 0``.  Returns a superset
    (callers test exactly); for grids the test is exact per grid row, for tiles per tile.
    """
    if not pts.overlaps(lo, hi):
        return np.empty(0, dtype=np.int64)
    if pts.tile_lo is not None and pts.tile_hi is not None:
        tl, th = pts.tile_lo, pts.tile_hi
        hit = np.all((th >= lo) & (tl <= hi), axis=1)
        tiles = np.flatnonzero(hit)
        c = 0.5 * (tl[tiles] + th[tiles]).astype(np.float64)
        h = 0.5 * (th[tiles] - tl[tiles]).astype(np.float64)
        r = np.linalg.norm(h, axis=1)
        # a box reaches h . |u| along u from its centre, at most its half diagonal r
        d0, d1 = (c - o0) @ u0, (o1 - c) @ u1
        keep = ((d0 >= -r) & (d1 >= -r) & (d0 >= -(h @ np.abs(u0)) - _SLAB_MARGIN)
                & (d1 >= -(h @ np.abs(u1)) - _SLAB_MARGIN))
        tiles = tiles[keep]
        t = pts.tile_size
        out_t: IntArray = (tiles[:, None] * t + np.arange(t)[None, :]).ravel()
        return out_t
    if pts.origin is None or pts.axes is None or pts.coords is None:
        return pts.select(lo, hi)
    ranges = pts.grid_ranges(lo, hi)
    if ranges is None:
        return np.empty(0, dtype=np.int64)
    (ia0, ia1), (ib0, ib1), (ic0, ic1) = ranges
    a, b, c = pts.coords
    axn, axb, axc = pts.axes
    nb, nc = len(b), len(c)
    # d = base + a*ga + b*gb + c*gc for both planes; per (a, b) row an interval of c
    aa = a[ia0:ia1][:, None]
    bb = b[ib0:ib1][None, :]
    cc = c[ic0:ic1]
    lo_c = np.full((ia1 - ia0, ib1 - ib0), -np.inf)
    hi_c = np.full((ia1 - ia0, ib1 - ib0), np.inf)
    for o, u, sign in ((o0, u0, 1.0), (o1, u1, -1.0)):
        base = sign * float((pts.origin - o) @ u)
        ga, gb, gc = (sign * float(axn @ u), sign * float(axb @ u), sign * float(axc @ u))
        row = base + aa * ga + bb * gb  # need row + c * gc >= 0
        if abs(gc) < 1e-12:
            hi_c = np.where(row >= -1e-6, hi_c, -np.inf)
        elif gc > 0:
            lo_c = np.maximum(lo_c, -row / gc - 1e-6)
        else:
            hi_c = np.minimum(hi_c, -row / gc + 1e-6)
    start = np.searchsorted(cc, lo_c, "left")
    stop = np.searchsorted(cc, hi_c, "right")
    counts = np.clip(stop - start, 0, None).ravel()
    if counts.sum() == 0:
        return np.empty(0, dtype=np.int64)
    ia_g, ib_g = np.meshgrid(np.arange(ia0, ia1), np.arange(ib0, ib1), indexing="ij")
    row_base = ((ia_g * nb + ib_g) * nc + ic0).ravel() + start.ravel()
    rep = np.repeat(row_base - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    out: IntArray = rep + np.arange(int(counts.sum()))
    return out
