"""Sample the anatomy on an imaging grid: partial volume, texture, coil sensitivity.

For each slice the anatomy is labelled at ``ms x mr x mc`` sub-samples per voxel
(through the slice *thickness* and across the pixel), each sub-sample's signal is looked
up from its tissue and the voxel signal is their mean -- the partial-volume average of
the signed signals, as the scanner sums magnetisation within a voxel.

Speed: a coarse pass labels ``ms`` samples through the thickness at each pixel centre;
pixels whose coarse labels, and those of their 8 neighbours, are all one tissue are
filled with that tissue, and only the other pixels are supersampled.
The marrow fat-fraction texture (and the patches of heterogeneous marrow) and the coil
sensitivity are smooth and evaluated at pixel centres.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._blas import single_blas_thread
from .anatomy import Anatomy
from .grid import Stack
from .points import Points
from .signal import (
    Sequence,
    coil_sensitivity,
    tissue_signal,
    tissue_signal_patch_slope,
    tissue_signal_slope,
)
from .tissue import fat_relaxation

__all__ = ["render_stack", "label_stack"]

_GROUP = 16
_MAX_POINTS = 1_500_000  # sub-samples labelled per call (memory ~100 MB)


def _voxel_centres(stack: Stack, k: int) -> NDArray[np.float64]:
    r, c = np.meshgrid(np.arange(stack.rows, dtype=float), np.arange(stack.cols, dtype=float),
                       indexing="ij")
    out: NDArray[np.float64] = stack.pixel_to_lps(k, r, c).reshape(-1, 3)
    return out


def label_stack(anatomy: Anatomy, stack: Stack, supersample: tuple[int, int, int] = (1, 1, 1)
                ) -> NDArray[np.uint16]:
    """Tissue labels of all sub-samples of ``stack`` (no shortcut).

    Returns
    -------
    (n_slices * ms, rows * mr, cols * mc) ndarray of uint16
        Label codes (:attr:`Anatomy.tissues`); with the default ``(1, 1, 1)`` one label
        per voxel centre, ``(slice, row, col)``.
    """
    ms, mr, mc = supersample
    a, b, c = stack.fine_axes(supersample)
    out = np.empty((stack.n_slices * ms, stack.rows * mr, stack.cols * mc), dtype=np.uint16)
    for k in range(stack.n_slices):
        pts = Points.from_grid(stack.center, stack.normal, stack.col_dir, stack.row_dir,
                                a[k * ms:(k + 1) * ms], b, c)
        anatomy.paint(pts)
        out[k * ms:(k + 1) * ms] = pts.lab.reshape(ms, stack.rows * mr, stack.cols * mc)
    return out


def _dilate_minmax(lmin: NDArray[np.uint16], lmax: NDArray[np.uint16]
                   ) -> tuple[NDArray[np.uint16], NDArray[np.uint16]]:
    """3 x 3 grey erosion of ``lmin`` and dilation of ``lmax`` (edge-replicated)."""
    pmin = np.pad(lmin, 1, mode="edge")
    pmax = np.pad(lmax, 1, mode="edge")
    rows, cols = lmin.shape
    omin, omax = lmin.copy(), lmax.copy()
    for dr in range(3):
        for dc in range(3):
            np.minimum(omin, pmin[dr:dr + rows, dc:dc + cols], out=omin)
            np.maximum(omax, pmax[dr:dr + rows, dc:dc + cols], out=omax)
    return omin, omax


def _subsample_points(stack: Stack, ka: NDArray[np.float64], br: NDArray[np.float64],
                      bc: NDArray[np.float64]) -> NDArray[np.float32]:
    """LPS points (float32) ``center + ka * normal + br * col_dir + bc * row_dir``.

    Parameters
    ----------
    stack : Stack
        The grid.
    ka, br, bc : (n, ms), (n, mr), (n, mc) ndarray
        Offsets (mm) of each pixel's sub-samples along the normal, column and row
        directions.

    Returns
    -------
    (n * ms * mr * mc, 3) ndarray of float32
        Layout (pixel, s, qr, qc). Summed in float64 in that order and rounded once, one
        coordinate at a time over long runs (a broadcast over the last axis of length 3
        is several times slower).
    """
    n, ms = ka.shape
    mr, mc = br.shape[1], bc.shape[1]
    P = np.empty((n * ms * mr * mc, 3), dtype=np.float32)
    for d in range(3):
        head = ((stack.center[d] + ka * stack.normal[d])[:, :, None]
                + (br * stack.col_dir[d])[:, None, :])  # (n, ms, mr)
        tail = np.broadcast_to((bc * stack.row_dir[d])[:, None, :], (n, ms * mr, mc))
        np.add(np.repeat(head.ravel(), mc), tail.reshape(-1), out=P[:, d])
    return P


def _chunk_labels(anatomy: Anatomy, stack: Stack, k0: int, k1: int,
                  supersample: tuple[int, int, int]
                  ) -> tuple[NDArray[np.uint16], NDArray[np.int64], NDArray[np.uint16]]:
    """Labels of slices ``k0 .. k1 - 1``.

    Returns
    -------
    coarse : (k1 - k0, ms, rows, cols) uint16
        Labels at ``ms`` through-thickness samples of every pixel centre.
    mixed : (n,) int64
        Flat voxel indices ``(k - k0) * rows * cols + r * cols + c`` that are supersampled
        (those whose 3 x 3 in-plane neighbourhood of coarse labels holds more than one
        tissue).
    fine : (n, ms * mr * mc) uint16
        Their sub-sample labels.
    """
    ms, mr, mc = supersample
    m = ms * mr * mc
    a, _, _ = stack.fine_axes(supersample)
    nk = k1 - k0
    a_c = a[k0 * ms:k1 * ms]
    rows, cols = stack.rows, stack.cols
    rr = (np.arange(rows, dtype=np.float64) - (rows - 1) / 2.0) * stack.row_spacing
    cc = (np.arange(cols, dtype=np.float64) - (cols - 1) / 2.0) * stack.col_spacing
    coarse_pts = Points.from_grid(stack.center, stack.normal, stack.col_dir, stack.row_dir,
                                  a_c, rr, cc)
    anatomy.paint(coarse_pts)
    coarse = coarse_pts.lab.reshape(nk, ms, rows, cols)
    empty = (np.empty(0, dtype=np.int64), np.empty((0, m), dtype=np.uint16))
    if supersample == (1, 1, 1):
        return coarse, *empty
    k_list, r_list, c_list = [], [], []
    for j in range(nk):
        lmin, lmax = _dilate_minmax(coarse[j].min(axis=0), coarse[j].max(axis=0))
        r_mix, c_mix = np.nonzero(lmin != lmax)
        # group spatially close pixels (raster order within bands of 4 rows)
        order = np.lexsort((c_mix, r_mix // 4))
        k_list.append(np.full(len(r_mix), j))
        r_list.append(r_mix[order])
        c_list.append(c_mix[order])
    k_mix, r_mix, c_mix = (np.concatenate(k_list), np.concatenate(r_list),
                           np.concatenate(c_list))
    n = len(r_mix)
    if n == 0:
        return coarse, *empty
    n_pad = -(-n // _GROUP) * _GROUP
    pad = n_pad - n
    k_all = np.concatenate([k_mix, np.full(pad, k_mix[-1])])
    r_all = np.concatenate([r_mix, np.full(pad, r_mix[-1])])
    c_all = np.concatenate([c_mix, np.full(pad, c_mix[-1])])
    sub_r = ((np.arange(mr) + 0.5) / mr - 0.5) * stack.row_spacing
    sub_c = ((np.arange(mc) + 0.5) / mc - 0.5) * stack.col_spacing
    half = (np.abs(stack.normal) * stack.thickness / 2 + np.abs(stack.col_dir)
            * stack.row_spacing / 2 + np.abs(stack.row_dir) * stack.col_spacing / 2 + 1e-3)
    fine = np.empty((n_pad, m), dtype=np.uint16)
    step = _GROUP * max(1, _MAX_POINTS // (_GROUP * m))  # pixels per paint call
    for p0 in range(0, n_pad, step):
        sl = slice(p0, min(p0 + step, n_pad))
        ka = a_c.reshape(nk, ms)[k_all[sl]]  # (np, ms)
        br = rr[r_all[sl]][:, None] + sub_r[None, :]  # (np, mr)
        bc = cc[c_all[sl]][:, None] + sub_c[None, :]  # (np, mc)
        P = _subsample_points(stack, ka, br, bc)
        # tile boxes from the voxel centres plus half a voxel
        centres = (stack.center + ka.mean(axis=1)[:, None] * stack.normal
                   + rr[r_all[sl]][:, None] * stack.col_dir
                   + cc[c_all[sl]][:, None] * stack.row_dir).reshape(-1, _GROUP, 3)
        fine_pts = Points.from_tiles(P, _GROUP * m,
                                     (centres.min(axis=1) - half).astype(np.float32),
                                     (centres.max(axis=1) + half).astype(np.float32))
        anatomy.paint(fine_pts)
        fine[sl] = fine_pts.lab.reshape(-1, m)
    flat = (k_mix * rows + r_mix) * cols + c_mix
    return coarse, flat, fine[:n]


def render_stack(anatomy: Anatomy, stack: Stack, sequences: list[Sequence],
                 supersample: tuple[int, int, int], bias: float, gradient: float = 1.0
                 ) -> list[NDArray[np.float32]]:
    """Noise-free signed signal of ``stack`` for each of ``sequences``.

    Parameters
    ----------
    anatomy : Anatomy
        The body.
    stack : Stack
        The grid.
    sequences : list of Sequence
        Contrasts to compute on this grid (the labelling is shared).
    supersample : tuple of int
        ``(ms, mr, mc)`` sub-samples per voxel.
    bias : float
        Coil-sensitivity strength (see :func:`modic.phantom.signal.coil_sensitivity`).
    gradient : float
        Head-foot coil gradient, L1 over S1 (see
        :func:`modic.phantom.signal.coil_gradient_profile`).

    Returns
    -------
    list of (n_slices, rows, cols) float32 ndarray
        One volume per sequence, ``(slice, row, col)``; signed (magnitude is taken after
        noise is added).
    """
    with single_blas_thread():
        return _render_stack(anatomy, stack, sequences, supersample, bias, gradient)


def _render_stack(anatomy: Anatomy, stack: Stack, sequences: list[Sequence],
                  supersample: tuple[int, int, int], bias: float, gradient: float
                  ) -> list[NDArray[np.float32]]:
    fat = fat_relaxation(anatomy.field_strength)
    tables = [np.array([tissue_signal(t, seq, fat) for t in anatomy.tissues], dtype=np.float32)
              for seq in sequences]
    slopes = [np.array([tissue_signal_slope(t, seq, fat) for t in anatomy.tissues],
                       dtype=np.float32) for seq in sequences]
    textured = any(bool(np.any(s != 0)) for s in slopes)
    patch_slopes = [np.array([tissue_signal_patch_slope(t, seq, fat) for t in anatomy.tissues],
                             dtype=np.float32) for seq in sequences]
    patched = any(bool(np.any(s != 0)) for s in patch_slopes)
    rows, cols = stack.rows, stack.cols
    outs = [np.empty((stack.n_slices, rows, cols), dtype=np.float32) for _ in sequences]
    per_chunk = max(1, _MAX_POINTS // (supersample[0] * rows * cols))
    for k0 in range(0, stack.n_slices, per_chunk):
        k1 = min(k0 + per_chunk, stack.n_slices)
        coarse, mixed, fine = _chunk_labels(anatomy, stack, k0, k1, supersample)
        centres = np.concatenate([_voxel_centres(stack, k) for k in range(k0, k1)])
        sens = coil_sensitivity(centres, anatomy, bias, gradient)
        tex = anatomy.texture(centres) if textured else None
        patch = anatomy.patchiness(centres) if patched else None
        for out, table, slope, pslope in zip(outs, tables, slopes, patch_slopes, strict=True):
            img = table[coarse].mean(axis=1, dtype=np.float32).ravel()
            img[mixed] = table[fine].mean(axis=1, dtype=np.float32)
            if tex is not None:
                dimg = slope[coarse].mean(axis=1, dtype=np.float32).ravel()
                dimg[mixed] = slope[fine].mean(axis=1, dtype=np.float32)
                img = img + tex * dimg
            if patch is not None:
                dimg = pslope[coarse].mean(axis=1, dtype=np.float32).ravel()
                dimg[mixed] = pslope[fine].mean(axis=1, dtype=np.float32)
                img = img + patch * dimg
            out[k0:k1] = (img * sens).reshape(k1 - k0, rows, cols)
    return outs
