"""Endplate bands, body outlines and references proposed from the image itself.

Nobody has to draw 17 shapes per study: :func:`propose` finds the lumbar vertebral bodies
on the sagittal T1, names them by counting up from the sacrum, outlines each on its own
midline slice and hands every outline to :func:`modic.bands.endplate_bands`, the same step
that turns another tool's segmentation into ROIs (:mod:`modic.labelmap`), so both doors
give annotations of the same form. Every ROI is marked ``origin="proposed"`` and can be
accepted or edited in the annotator like a drawn one; :func:`merge_proposed` adds them to
an annotation file without touching what a person drew.

How the bodies are found (classical image analysis, no model weights)
----------------------------------------------------------------------
1. **Marrow candidates.** On every sagittal T1 slice (smoothed, sigma 0.6 pixel), the
   pixels within ``MARROW_BAND`` (0.72-1.35) of a trial marrow level are kept, opened with
   a 1.5 mm disc (cutting the thin bridges through partial-volume cortex) and split into
   4-connected pieces. Trial levels are percentiles of the slice's tissue (pixels above a
   tenth of its 99th percentile), so no intensity scale is assumed. A piece is a *body
   candidate* when it is 200-2800 mm2, at least 12 mm across, and solid (solidity >= 0.8):
   vertebral marrow is walled by a dark cortex and dark (on T1) discs, and fat, viscera and
   muscle around the spine do not form chains of such blocks.
2. **The column.** Candidates are chained head to foot (consecutive centres 20-55 mm
   apart, within 50 degrees of the head-foot direction, turning less than 35 degrees per
   step: lordosis and scoliosis bend the chain, they do not break it); the chain with the
   largest total area wins (dynamic programming). The slice and marrow level whose chain
   is largest are the column's; the **midline slice** is the middle of the run of slices
   whose chain is at least 85 % of the best (bodies are left-right symmetric, and several
   slices through a 40-50 mm wide body look alike), and each body is then outlined on the
   middle of its own run of slices (a scoliotic or rotated spine has no single midline).
3. **Discs, the sacral slope and the sacrum.** Along the line joining consecutive centres
   the gap between two bodies is measured (mm outside both). A real disc gap is at least
   ``DISC_GAP_FRACTION`` of the median gap of the chain and 4 mm; the fused sacral
   segments are separated by remnants of 1-3 mm or not at all. **S1** is, by the discs,
   the highest body whose gap below is not a real disc (and no ordinary disc follows), and
   by the slope, the body whose superior endplate is the most tilted from the upper lumbar
   axis (``S1_TILT_DEG``-``S1_TILT_MAX_DEG``); conflicts are settled by the size of the body
   below (S2 is smaller than S1) and said in a warning (:func:`_find_s1`). Where the chain
   ends on its S1, the column is followed below it on the other slices
   (:func:`_extend_below`) and the sacrum is looked for below it (:func:`_sacral_mass`);
   bodies the midline chain missed are taken from neighbouring slices (:func:`_fill_missed`). The
   L5/S1 disc is the last lumbar disc, and the bodies above are L5, L4 ... T12. When no
   sacrum is seen (partial field of view), the labels are
   counted from the lowest body as S1 *and flagged uncertain*: a warning in the proposal and
   in every ROI comment, never a silent wrong label. A user's one click ("this is L5",
   ``anchor=``) or a shift (:func:`relabel`) settles transitional anatomy.
4. **Outline.** The marrow piece is re-thresholded at half way between its marrow and its
   discs (the half-maximum edge), holes are filled (hemangiomas, fat islands, Schmorl
   nodes), deep notches are closed from the convex hull (a T1-dark type 1 or type 3 change
   at an endplate would otherwise be cut out of the body and the band moved off it), and
   the outline is grown by the cortical shell, ``CORTEX_MM`` = 1.0 mm (cortex and bony
   endplate are dark on every sequence, so the edge found is the marrow's; the vertebral
   cortical shell is 0.4-1.2 mm thick on micro-CT, Silva et al. 1994, Edwards et al. 2001;
   the phantom's cortex is 0.9-1.2 mm and its bony endplate 0.8-1.1 mm). A pixel joins the
   shell when its centre lies within that distance of the marrow's edge. Parts of the
   piece thinner than ``THIN_MM`` in front of or behind the body are left out, and the
   outline never grows across a thin dark line (the epidural fat behind the posterior
   wall: :func:`_drop_thin`, :func:`_outline`); where the outline ran through a gap in a
   bony endplate into the disc, its marrow core is taken (:func:`_trim_leaks`).
5. **ROIs.** :func:`modic.bands.endplate_bands` places the bands (``height_mm`` 5,
   ``inset_mm`` 1 from the endplate surface: the marrow next to the endplate of the
   Nordic Modic Consensus Group, Jensen et al. 2007, and Udby et al. 2022; see
   :mod:`modic.bands` for every default and its source) and the central reference. S1 gets
   its superior band, body and reference only (its lower side is no disc endplate).

Each body gets a confidence in [0, 1] (shape, size against its neighbours, disc gaps, and
the evidence for the sacrum), and each proposal a list of warnings.

Coordinates: masks are ``(rows, columns)`` in the T1 slice's pixel grid; points are LPS mm.

Examples
--------
::

    study = modic.load_study("case7/")
    proposal = modic.propose.propose(study)
    proposal.levels            # ['T12', 'L1', ..., 'S1']
    proposal.warnings          # [] or what is uncertain
    ann = proposal.annotations # Annotations, every ROI origin="proposed"
    ann = modic.relabel(ann, shift=+1)     # every label one vertebra down (L4 -> L5)
    ann = modic.propose_rois(study)        # the annotations only (warnings logged)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bands import BandError, BandSettings, BodyRegions, endplate_bands, image_direction
from .errors import ProposalError

__all__ = [
    "ProposalError",
    "ProposedBody",
    "Proposal",
    "propose",
    "propose_rois",
    "relabel",
    "merge_proposed",
    "LEVEL_ORDER",
]

logger = logging.getLogger(__name__)

#: Vertebrae modic proposes ROIs for, head to foot.
PROPOSED_LEVELS: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: The order used to count and shift labels (from T8 to S1).
LEVEL_ORDER: tuple[str, ...] = ("T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4",
                                "L5", "S1")
#: Marrow band around a trial marrow level (share of the level).
MARROW_BAND = (0.65, 1.45)
#: A pixel on a thin dark line deeper than this share of the marrow level is a wall.
DARK_LINE = 0.12
#: Percentiles of a slice's tissue tried as the marrow level.
LEVEL_PERCENTILES = (30, 40, 50, 60, 70, 80)
#: Body candidate: area (mm2), smallest size across (mm), solidity.
BODY_AREA_MM2 = (200.0, 2800.0)
BODY_MIN_MM = 12.0
BODY_SOLIDITY = 0.8
#: Chain: centre distance (mm), angle from head-foot (deg), turn per step (deg).
CHAIN_STEP_MM = (24.0, 55.0)
CHAIN_ANGLE_DEG = 50.0
CHAIN_TURN_DEG = 35.0
#: A piece counts at most this area (mm2) in a chain's score: a lumbar body's sagittal
#: section is 600-1100 mm2, so a chain of bodies outscores a few big blobs of muscle or
#: bowel that pass the shape test.
CHAIN_AREA_CAP_MM2 = 1000.0
#: Slices are searched outwards until two in a row hold less than this share of the best.
STOP_SHARE = 0.6
#: A slice's chain within this share of the best counts for the midline run.
MIDLINE_SHARE = 0.85
#: A real disc gap: at least this share of the chain's median gap, and DISC_GAP_MIN_MM.
DISC_GAP_FRACTION = 0.5
DISC_GAP_MIN_MM = 4.0
#: Ordinary steps of the chain, as shares of its median step (the local pitch is their
#: median): neighbouring lumbar pitches (body + disc) differ by < 15 % (the phantom's
#: nominal 31.5-36.8 mm T12/L1-L5/S1, after Panjabi et al. 1992 and Zhou et al. 2000).
PITCH_BAND = (0.8, 1.2)
#: Steps of this many pitches around a piece mean a piece across a disc (left out).
STRADDLE_RATIO = (1.3, 1.7)
#: A step counts as two levels (a body missed) only from 1.5 + this many pitches.
MISSED_MARGIN = 0.1
#: A chain piece whose median T1 is below this share of its neighbours' is no marrow
#: (calibration seeds 700000-700029: such pieces, at 0.5-0.6, lay on discs).
DARK_PIECE = 0.7
#: S1's superior endplate is tilted by the sacral slope: it is the most tilted endplate of
#: the chain, at least S1_TILT_DEG from the axis of the upper lumbar bodies and
#: S1_TILT_STEP_DEG more than L5's, and at most S1_TILT_MAX_DEG (sacral slope 30-50
#: degrees, L5's superior endplate 10-25 degrees from the upper lumbar axis: Legaye et al.
#: 1998, Roussouly et al. 2005; a piece turned further is no body). The step of 5 degrees
#: and the most-tilted rule were chosen on development seeds 600000-600059, 700000-700039
#: and 710000-710039 (the largest step, with 10 degrees, named L5 as S1 in 9 of them).
S1_TILT_DEG = 25.0
S1_TILT_STEP_DEG = 5.0
S1_TILT_MAX_DEG = 70.0
#: A gap after a sacral "remnant" within these shares of the chain's median disc is an
#: ordinary disc, so the remnant was none (lumbar discs differ by < 30 % between levels;
#: a gap beyond 1.6 is a body the chain missed, or tissue below the sacrum).
DISC_AFTER_REMNANT = (0.6, 1.6)
#: A body smaller than this share of the one above it is S2 rather than S1 (S2's sagittal
#: section is about 0.65 of S1's; S1's is about L5's: the phantom's nominal dimensions,
#: after Panjabi et al. 1992 and Zhou et al. 2000).
S2_AREA_SHARE = 0.75
#: A turn this large between neighbouring endplates is the lumbosacral angle whatever the
#: disc gaps say (lumbosacral angle 20-40 degrees; between lumbar bodies 5-15).
S1_TILT_STRONG_DEG = 20.0
#: The sacrum below the chain's last body is searched within this angle of the chain's last
#: step: the lumbosacral angle turns the column by 20-40 degrees at L5/S1 (see S1_TILT_DEG).
SACRUM_CONE_DEG = 60.0
#: The sacrum's sagittal section (S1-S5 and the coccyx) is at most this many times the
#: last lumbar body's: a bigger marrow-like piece below it is soft tissue joined up.
SACRUM_MAX_BODIES = 6.0
#: A body is outlined on a slice at most this many slices from the column's midline
#: (S1 always on the midline: the sacral alae are as big as S1 off the midline).
OWN_SLICE_REACH = 2
#: Behind a body on the slices through the spinal canal, at most this share of the strip
#: 3-12 mm behind its posterior wall is marrow-like (CSF and epidural fat: 0.17-0.67 on
#: the canal slices of the development studies printed, 600001, 600003, 700000 and the
#: sample studies; beside the pedicles 0.7-1.0, sometimes as low as 0.6). The body is outlined
#: on the slice through the canal nearest its lateral middle (:func:`_body_middle`,
#: sections followed within ``LATERAL_REACH_MM`` of its centre).
CANAL_SHARE = 0.7
LATERAL_REACH_MM = 10.0
#: Slices a body's outline is tried on before the best of them is kept (each try is one
#: outline, about 10 ms).
OUTLINE_TRIES = 3
#: Normal marrow of the vertebrae differs by less than this share on T1 at the middle of
#: the body once the receive coil's gradient along the spine (up to 1.6x over L1-S1) is
#: taken out (heterogeneous marrow moves a 10 x 12 mm region's median by a few per cent,
#: noise by 1-2 %); the classifier's
#: reference check flags 15 % (docs/classifier.md). A central reference further off is
#: moved to one of REF_ALTERNATIVES ((position along the height from the inferior
#: endplate, share of the height); outside the bands, whose 1-6 mm reach 0.3 of a 20 mm
#: body) when that is REF_GAIN (log ratio, 5 %) nearer its neighbours' level.
REF_OFF = 0.10
REF_ALTERNATIVES = ((0.35, 0.25), (0.65, 0.25))
REF_GAIN = 0.05
#: A body missed on the midline slice is taken from a neighbouring slice when its centre is
#: within this share of a pitch of the place the distances expect it (a lumbar body is
#: 0.7-0.8 of a pitch high, so a candidate that far off would straddle a disc).
FILL_REACH = 0.25
#: The column is followed below the midline chain's end on slices this many slices either
#: side of where its course across the slices leads, for at most ``EXTEND_MAX`` bodies (a
#: scoliosis: development seeds 700005, 700028, 710000, 710005 have S1 2-7 slices off the
#: midline; :func:`_extend_below`).
EXTEND_REACH = 2
EXTEND_MAX = 2
#: An outline out of line with its neighbours (height share, axis turn in degrees).
HEIGHT_TOLERANCE = 0.3
AXIS_TOLERANCE_DEG = 20.0
#: A body cut by the image edge shows at most its whole section; one whose outline is
#: larger than this share of the median outline of the bodies the edge does not cut has
#: joined tissue along the edge (T12 or L1 outlines of 1.7-3.8x: development seeds 710018,
#: 710070, seeds 710261 and 710263 read after the evaluation of 710240-710279) and is left
#: out; 1.6 is the largest ratio between bodies that is not flagged (the area check of the
#: outline step). The sample study philips_15T_mixed23_enhanced's cut T12 is 1.3x.
CUT_AREA_MAX = 1.6
#: An outline this much higher than its marrow core may have run into a disc (mm;
#: :func:`_trim_leaks`).
LEAK_MIN_MM = 2.0
#: ... and the core is taken only within this share of its neighbours' height: lumbar
#: bodies differ by < 10 % between neighbouring levels (Panjabi et al. 1992, Zhou et al.
#: 2000), core heights by up to 17 % on the development seeds (710001: L4 against L2, L3,
#: L5); the sample study siemens_3T_rle_t2fs's L5 core is 32 % short, a T1-dark change at
#: its endplate lost with the disc.
LEAK_CORE_SHARE = 0.2
#: Parts of a marrow piece thinner than this in front of or behind the body are no vertebral
#: body (mm; :func:`_drop_thin`): the strips of epidural fat joined to the pieces on the
#: development seeds were 3-4.5 mm wide, a body's sagittal section is >= 20 mm across.
THIN_MM = 5.0
#: Cortical shell added around the marrow outline, mm.
CORTEX_MM = 1.0


@dataclass(frozen=True)
class ProposedBody:
    """One vertebral body found in the image.

    Attributes
    ----------
    name : str
        Its level (``"L4"``), counted from the sacrum (or from the anchor).
    slice_index : int
        0-based T1 slice it is outlined on (its own midline).
    mask : (rows, columns) ndarray of bool
        The body outline on that slice (cortex included).
    centre : (3,) ndarray
        Centre of the outline, LPS mm.
    confidence : float
        In [0, 1]: how sure the outline and the level are.
    regions : BodyRegions or None
        Bands and reference from :func:`modic.bands.endplate_bands` (None when they could
        not be placed; see ``notes``).
    notes : list of str
    """

    name: str
    slice_index: int
    mask: NDArray[np.bool_]
    centre: NDArray[np.float64]
    confidence: float
    regions: BodyRegions | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Proposal:
    """What :func:`propose` found.

    Attributes
    ----------
    bodies : list of ProposedBody
        Head to foot, T12-S1 (only those in view).
    midline_slice : int
        0-based T1 slice of the column's midline.
    sacrum_found : bool
        Whether the sacrum was recognised (else the labels are counted from the lowest body).
    label_confidence : float
        In [0, 1]: how sure the level names are.
    warnings : list of str
        What a reader must check (uncertain levels, a body left out, ...).
    annotations : Annotations
        The ROIs, ``origin="proposed"``.
    """

    bodies: list[ProposedBody]
    midline_slice: int
    sacrum_found: bool
    label_confidence: float
    warnings: list[str]
    annotations: Any

    @property
    def levels(self) -> list[str]:
        """Names of the bodies found, head to foot."""
        return [b.name for b in self.bodies]


# ----------------------------------------------------------------------------------------
# candidates and chains
# ----------------------------------------------------------------------------------------
@dataclass
class _Piece:
    mask: NDArray[np.bool_]  # full-slice mask
    area: float  # mm2
    centre: NDArray[np.float64]  # (2,) mm (row mm, col mm)
    solidity: float
    bbox: tuple[int, int, int, int]
    level: float = 0.0  # the trial marrow level it was found at
    spacing: tuple[float, float] = (1.0, 1.0)
    extent: Any = None  # cache of _extent_along
    s1: bool = False  # recognised as S1 by the sacrum below it (or cut out of the sacrum)
    value: float = 0.0  # median T1 of the piece on its slice (0: not measured)
    slice_index: int = -1  # the T1 slice it was found on (-1: the chain's own)


@dataclass
class _Chain:
    pieces: list[_Piece]
    score: float
    level: float
    slice_index: int
    image: NDArray[np.float32]
    candidates: list[_Piece] = field(default_factory=list)  # every body candidate of the slice


def _smooth(img: NDArray[np.float32]) -> NDArray[np.float32]:
    from scipy import ndimage

    out: NDArray[np.float32] = ndimage.gaussian_filter(img.astype(np.float32), 0.8)
    return out


def _disk(radius_px: float) -> NDArray[np.bool_]:
    r = max(1, int(math.floor(radius_px)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    out: NDArray[np.bool_] = (yy * yy + xx * xx) <= radius_px * radius_px + 1e-9
    return out


def _pieces(mask: NDArray[np.bool_], sp: tuple[float, float]) -> list[_Piece]:
    from skimage.measure import label, regionprops

    lab = label(mask, connectivity=1)
    px = sp[0] * sp[1]
    out: list[_Piece] = []
    for rp in regionprops(lab):
        area = rp.area * px
        if not BODY_AREA_MM2[0] <= area <= BODY_AREA_MM2[1]:
            continue
        r0, c0, r1, c1 = rp.bbox
        if min((r1 - r0) * sp[0], (c1 - c0) * sp[1]) < BODY_MIN_MM:
            continue
        if rp.solidity < BODY_SOLIDITY:
            continue
        m = np.zeros(mask.shape, dtype=bool)
        m[r0:r1, c0:c1] = rp.image
        cy, cx = rp.centroid
        out.append(_Piece(m, area, np.array([cy * sp[0], cx * sp[1]]), float(rp.solidity),
                          (r0, c0, r1, c1), spacing=sp))
    return out


def _best_chain(pieces: list[_Piece], head: NDArray[np.float64]) -> tuple[list[int], float]:
    """Indices (head to foot) of the chain of pieces with the largest total area."""
    if not pieces:
        return [], 0.0
    foot = -head
    order = sorted(range(len(pieces)), key=lambda i: float(pieces[i].centre @ head), reverse=True)
    n = len(order)
    best = [min(pieces[i].area, CHAIN_AREA_CAP_MM2) for i in order]
    prev = [-1] * n
    step_dir: list[NDArray[np.float64] | None] = [None] * n
    cos_a = math.cos(math.radians(CHAIN_ANGLE_DEG))
    cos_t = math.cos(math.radians(CHAIN_TURN_DEG))
    for j in range(n):
        pj = pieces[order[j]]
        for i in range(j):
            pi = pieces[order[i]]
            d = pj.centre - pi.centre
            dist = float(np.linalg.norm(d))
            if not CHAIN_STEP_MM[0] <= dist <= CHAIN_STEP_MM[1]:
                continue
            u = d / dist
            if float(u @ foot) < cos_a:
                continue
            sd = step_dir[i]
            if sd is not None and float(u @ sd) < cos_t:
                continue
            if _overlap_along(pi, pj, u):
                continue
            score = best[i] + min(pj.area, CHAIN_AREA_CAP_MM2)
            if score > best[j]:
                best[j] = score
                prev[j] = i
                step_dir[j] = u
    j = int(np.argmax(best))
    chain = []
    while j >= 0:
        chain.append(order[j])
        j = prev[j]
    chain.reverse()
    return chain, float(best[int(np.argmax(best))]) if len(chain) > 1 else 0.0


def _dark_lines(sm: NDArray[np.float32], sp: tuple[float, float]) -> NDArray[np.float32]:
    """Black top-hat (grey closing minus image, 2.5 mm disc): thin dark lines such as the
    cortex and the bony endplates, darker than the tissue on both sides even where partial
    volume leaves them inside the marrow's intensity band."""
    from scipy import ndimage

    out: NDArray[np.float32] = ndimage.grey_closing(sm, footprint=_disk(2.5 / min(sp))) - sm
    return out


def _overlap_along(a: _Piece, b: _Piece, u: NDArray[np.float64]) -> bool:
    """Whether two pieces overlap along the direction ``u`` from ``a`` to ``b`` (the same
    body found twice, or a body and a piece of it), judged by their bounding boxes."""
    ext_a = _extent_along(a, u)
    ext_b = _extent_along(b, u)
    return bool(ext_a[1] > ext_b[0] + 1.0)


def _extent_along(p: _Piece, u: NDArray[np.float64]) -> tuple[float, float]:
    if p.extent is None or p.extent[0] is not u:
        r, c = np.nonzero(p.mask[p.bbox[0]:p.bbox[2], p.bbox[1]:p.bbox[3]])
        sp = p.spacing
        t = ((r + p.bbox[0]) * sp[0]) * u[0] + ((c + p.bbox[1]) * sp[1]) * u[1]
        p.extent = (u, (float(t.min()), float(t.max())))
    return p.extent[1]


def _slice_chain(img: NDArray[np.float32], sp: tuple[float, float], head: NDArray[np.float64],
                 k: int) -> _Chain | None:
    """The best chain of body candidates on one slice, over every trial marrow level.

    Pieces of every level compete in one chain (the same body at two levels is one
    candidate twice, and two of them are never 20 mm apart), so a coil gradient along the
    spine, which makes the lower bodies darker than the upper ones, does not break it.
    """
    from scipy import ndimage

    sm = _smooth(img)
    hi = float(np.percentile(sm, 99))
    tissue = sm[sm > 0.1 * hi]
    if tissue.size < 100:
        return None
    levels = np.percentile(tissue, LEVEL_PERCENTILES)
    opener = _disk(1.5 / min(sp))
    lines = _dark_lines(sm, sp)
    pcs: list[_Piece] = []
    for lv in levels:
        m = (sm > MARROW_BAND[0] * lv) & (sm < MARROW_BAND[1] * lv) & (lines < DARK_LINE * lv)
        m = ndimage.binary_opening(m, structure=opener)
        for pc in _pieces(m, sp):
            pc.level = float(lv)
            pc.slice_index = k
            pcs.append(pc)
    idx, score = _best_chain(pcs, head)
    if len(idx) < 2:
        return None
    return _Chain([pcs[i] for i in idx], score, float(np.median([pcs[i].level for i in idx])), k, sm, pcs)


# ----------------------------------------------------------------------------------------
# gaps, sacrum, names
# ----------------------------------------------------------------------------------------
def _gap_mm(a: _Piece, b: _Piece, sp: tuple[float, float]) -> float:
    """Length (mm) of the segment between two centres that lies outside both pieces."""
    d = b.centre - a.centre
    dist = float(np.linalg.norm(d))
    n = max(2, int(dist / (0.25 * min(sp))))
    t = np.linspace(0.0, 1.0, n)
    pts = a.centre[None, :] + t[:, None] * d[None, :]
    r = np.clip(np.rint(pts[:, 0] / sp[0]).astype(int), 0, a.mask.shape[0] - 1)
    c = np.clip(np.rint(pts[:, 1] / sp[1]).astype(int), 0, a.mask.shape[1] - 1)
    inside = a.mask[r, c] | b.mask[r, c]
    return float(dist * (1.0 - inside.mean()))


def _positions(pieces: list[_Piece], image: NDArray[np.float32]
               ) -> tuple[list[_Piece], list[int], list[str]]:
    """Count the levels along the chain from the distances between its bodies.

    Consecutive vertebral bodies are one *pitch* apart (body plus disc: 30-42 mm in the
    lumbar spine, within 15 % of each other between neighbouring levels). The local pitch
    is the median of the chain's ordinary steps (within ``PITCH_BAND`` of the median step)
    nearest each step; each piece's level position is its arc length along the chain
    divided by the local pitch, rounded. So a body the chain missed (a step of about two
    pitches, or two steps of one and a half around a piece lying across a disc) does not
    shift the names of the bodies above it. A piece whose position falls half way between
    two levels (a piece straddling a disc) or on the level of a bigger piece is left out,
    and so is a piece much darker than its neighbours in the chain (median below
    ``DARK_PIECE`` of theirs: a disc or soft tissue picked up at a low trial level, not
    marrow; a vertebra whose whole section is T1-dark is then counted as a missed body).

    Returns
    -------
    pieces : list of _Piece
        The pieces kept, head to foot.
    positions : list of int
        Their level positions, increasing by 1 per vertebra (0 for the first kept piece).
    notes : list of str
    """
    notes: list[str] = []
    if len(pieces) < 3:
        return pieces, list(range(len(pieces))), notes

    def step_ratios(pcs: list[_Piece]) -> tuple[NDArray[np.float64], list[float]] | None:
        st = _steps(pcs)
        md = float(np.median(st))
        ok = np.flatnonzero((st >= PITCH_BAND[0] * md) & (st <= PITCH_BAND[1] * md))
        if ok.size < 2:
            return None
        return st, [float(np.median(st[ok[np.argsort(np.abs(ok - i), kind="stable")[:4]]]))
                    for i in range(len(st))]

    first = step_ratios(pieces)
    if first is None:
        return pieces, list(range(len(pieces))), notes
    value = [float(np.median(image[p.mask])) for p in pieces]
    for p, v in zip(pieces, value, strict=True):
        p.value = v
    bright = []
    for i in range(len(pieces)):
        near = [value[j] for j in (i - 1, i + 1) if 0 <= j < len(pieces)]
        if value[i] < DARK_PIECE * float(np.median(near)):
            # a dark piece that is a body (a T1-dark change over much of it) sits one level
            # from its neighbours; a disc or soft tissue sits between levels
            span = [first[0][j] / first[1][j] for j in (i - 1, i) if 0 <= j < len(first[0])]
            if (len(span) == 2 and sum(span) >= 2.5) or (len(span) == 1 and span[0] >= STRADDLE_RATIO[0]):
                notes.append("a marrow piece much darker than its neighbours, between two levels, "
                             "was left out")
                continue
        bright.append(pieces[i])
    if len(bright) >= 3:
        pieces = bright
    steps = _steps(pieces)
    med = float(np.median(steps))
    ordinary = (steps >= PITCH_BAND[0] * med) & (steps <= PITCH_BAND[1] * med)
    if ordinary.sum() < 2:
        return pieces, list(range(len(pieces))), notes
    idx = np.flatnonzero(ordinary)
    pitch = [float(np.median(steps[idx[np.argsort(np.abs(idx - i), kind="stable")[:4]]]))
             for i in range(len(steps))]
    ratio = [float(st / pt) for st, pt in zip(steps, pitch, strict=True)]
    lo, hi = STRADDLE_RATIO
    keep = list(range(len(pieces)))
    # a piece across a disc: the steps on both sides are about one and a half pitches
    i = 0
    while i < len(ratio) - 1:
        if lo <= ratio[i] <= hi and lo <= ratio[i + 1] <= hi and len(keep) > 3:
            notes.append("a marrow piece half way between two levels (across a disc?) was left out")
            del keep[i + 1]
            ratio[i:i + 2] = [ratio[i] + ratio[i + 1]]
        i += 1
    # at either end of the chain, a piece one and a half pitches from the next one
    if len(keep) > 3 and lo <= ratio[-1] <= hi:
        notes.append("the last marrow piece lies half way between two levels: left out")
        del keep[-1]
        ratio.pop()
    if len(keep) > 3 and lo <= ratio[0] <= hi:
        notes.append("the first marrow piece lies half way between two levels: left out")
        del keep[0]
        ratio.pop(0)
    out = [pieces[i] for i in keep]
    positions = [0]
    for r in ratio:  # one level per step unless the step is clearly longer (a missed body)
        positions.append(positions[-1] + max(1, int(math.floor(r + 0.5 - MISSED_MARGIN))))
    return out, positions, notes


def _steps(pieces: list[_Piece]) -> NDArray[np.float64]:
    """Distances (mm) between consecutive centres, those of the two end pieces moved out to
    where a whole body's centre would be when the image's edge cuts them: a body cut by the
    edge has its visible centre shifted away from the edge by half of what is cut off (its
    extent along the step short of the median of the uncut bodies'), which made a step over
    a missed body look like 1.5 pitches (development seed 710007)."""
    centres = [p.centre for p in pieces]
    n = len(pieces)
    whole = [i for i in range(n) if not _cut_by_edge(pieces[i])]
    if n >= 3 and len(whole) >= 2:
        for end, nb in ((0, 1), (n - 1, n - 2)):
            if end in whole:
                continue
            u = pieces[end].centre - pieces[nb].centre
            u = u / max(float(np.linalg.norm(u)), 1e-9)
            lo, hi = _extent_along(pieces[end], u)
            h = float(np.median([np.subtract(*_extent_along(pieces[i], u)[::-1]) for i in whole]))
            if hi - lo < h:
                centres[end] = pieces[end].centre + 0.5 * (h - (hi - lo)) * u
    return np.array([float(np.linalg.norm(centres[i + 1] - centres[i])) for i in range(n - 1)])


def _missed_notes(positions: Sequence[int]) -> list[str]:
    """A note for every step of the chain over bodies it did not find."""
    return [f"{b - a - 1} vertebral bod{'y' if b - a == 2 else 'ies'} between two found ones not "
            "outlined (levels counted from the distance between them)"
            for a, b in zip(positions[:-1], positions[1:], strict=True) if b - a > 1]


def _angle(u: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    c = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _find_s1(pieces: list[_Piece], gaps: list[float], sp: tuple[float, float],
             head: NDArray[np.float64], positions: Sequence[int] | None = None
             ) -> tuple[int, bool, float, list[str], str]:
    """Index of S1 in the chain, whether a sacrum was seen, label confidence, notes, and
    the evidence it rests on (``"both"``, ``"slope"``, ``"discs"``, ``"conflict"``,
    ``"none"``).

    Two pieces of evidence (module docstring, step 3): the **sacral slope** (S1 is the
    body whose superior endplate is the most tilted from the axis of the chain's upper
    bodies, by ``S1_TILT_DEG`` to ``S1_TILT_MAX_DEG``, and at least ``S1_TILT_STEP_DEG``
    more than the body's above it; each endplate is fitted from the direction to the body
    above it) and the **discs** (S1 is the highest body with a real disc above it and none below,
    or with the rest of the sacrum right below it). When both agree the level is sure;
    when they disagree, the slope wins (thin remnants and degenerated discs make gaps
    unreliable) and a warning says so.
    """
    notes: list[str] = []
    n = len(pieces)
    if n < 2:
        return n - 1, False, 0.2, ["only one body found"], "none"
    by_gap: int | None = None
    # a gap across a body the chain missed is no disc height: left out of the reference
    single = [positions is None or positions[i + 1] - positions[i] == 1 for i in range(n - 1)]
    for i in range(n - 1, 0, -1):  # from the foot: the sacral remnants lie below S1
        above = [gp for gp, one in zip(gaps[:i], single[:i], strict=True) if one]
        ref = float(np.median(above)) if len(above) >= 2 else float(np.median(gaps))
        below_real = i < n - 1 and gaps[i] >= max(DISC_GAP_MIN_MM, DISC_GAP_FRACTION * ref)
        above_real = gaps[i - 1] >= max(DISC_GAP_MIN_MM, DISC_GAP_FRACTION * ref)
        # below the sacral remnants no ordinary disc follows: a thin "remnant" with a disc of
        # the chain's usual height after it is a body leaking into its disc
        disc_after = i + 1 < n - 1 and single[i + 1] and (
            DISC_AFTER_REMNANT[0] * ref <= gaps[i + 1] <= DISC_AFTER_REMNANT[1] * ref)
        if above_real and (pieces[i].s1 or (i < n - 1 and not below_real and not disc_after)):
            by_gap = i
            break
    # each body's endplate fitted from the direction to the body above it: from the image's
    # head direction the fit of a square S1 turned by 40 degrees stalls on its corner
    ups = [head] + [pieces[i - 1].centre - pieces[i].centre for i in range(1, n)]
    axes = [_body_axis(p, sp, up / np.linalg.norm(up)) for p, up in zip(pieces, ups, strict=True)]
    # the upper lumbar axis from the three highest bodies whose section the image holds whole
    # (the fit of a body cut by the image's edge is turned by the cut)
    top = [a for a, p in zip(axes, pieces, strict=True) if a is not None and not _cut_by_edge(p)][:3]
    by_tilt: int | None = None
    best_step = 0.0
    if top:
        ref_axis = np.mean(top, axis=0)
        tilts = [None if a is None else _angle(a, ref_axis) for a in axes]
        best_tilt = 0.0
        med_gap = float(np.median(gaps))
        for i in range(2, n):
            t, t_above = tilts[i], tilts[i - 1]
            if t is None or t_above is None:
                continue
            if single[i - 1] and gaps[i - 1] > DISC_AFTER_REMNANT[1] * med_gap:
                continue  # no disc above it but a wide gap: tissue below the sacrum
            if (S1_TILT_DEG <= t <= S1_TILT_MAX_DEG and t - t_above >= S1_TILT_STEP_DEG
                    and t > best_tilt):
                by_tilt, best_tilt, best_step = i, t, t - t_above
    if by_tilt is not None and by_gap is not None:
        if by_tilt == by_gap:
            return by_tilt, True, 0.97 if by_tilt >= 4 else 0.85, notes, "both"
        # a strong lumbosacral angle outweighs the gaps (a body that leaks into its disc
        # makes a disc look like a remnant); a weak one does not
        pick = by_tilt if best_step >= S1_TILT_STRONG_DEG else by_gap
        if abs(by_tilt - by_gap) == 1:
            # one level apart: the disc pattern (a real disc above, a remnant below) is the
            # surer one; S1's tilt measured on a partial section, or S2's, is often off
            # (calibration seeds 700000-700029: the discs were right in 8 of 8 such cases)
            pick = by_gap
            vals = [p.value for p in pieces if p.value > 0]
            lo_v = DARK_PIECE * float(np.median(vals)) if vals else 0.0
            if best_step >= S1_TILT_STRONG_DEG and any(
                    0 < pieces[j].value < lo_v for j in (by_gap, by_gap + 1) if j < n):
                # a T1-dark body (a change at the endplate) beside the "remnant": the disc
                # there may be thin or hidden by it, so the strong turn decides
                pick = by_tilt
            drop = {i: i + 1 < n and pieces[i + 1].area < S2_AREA_SHARE * pieces[i].area
                    for i in (by_tilt, by_gap)}
            if drop[by_tilt] != drop[by_gap]:
                # S2 is much smaller than S1 while S1 is not smaller than L5: the body with
                # the small one below it is S1 (a thin, degenerated L5/S1 disc looks like a
                # remnant; development seeds: the drop was right in 5 of 5 such conflicts)
                pick = by_tilt if drop[by_tilt] else by_gap
        elif abs(by_tilt - by_gap) >= 2:  # a "remnant" high up is a body leaking into its disc
            pick = max(by_tilt, by_gap)
        other = by_gap if pick == by_tilt else by_tilt
        if pick >= 2 and pieces[pick].area < S2_AREA_SHARE * pieces[pick - 1].area and other == pick - 1:
            pick = other  # S2 is much smaller than S1 (and S1 not smaller than L5)
            other = by_gap if pick == by_tilt else by_tilt
        notes.append(f"S1 by the {'sacral slope' if pick == by_tilt else 'discs'}, but the "
                     f"{'discs' if pick == by_tilt else f'sacral slope (a turn of {best_step:.0f} degrees)'} "
                     "suggest it is "
                     f"{abs(pick - other)} level(s) {'higher' if other < pick else 'lower'}: "
                     "check the levels")
        return pick, True, 0.6, notes, "conflict"
    if by_tilt is not None:
        return by_tilt, True, 0.85 if by_tilt >= 4 else 0.75, notes, "slope"
    if by_gap is not None:
        notes.append("S1 recognised by the discs only (no sacral slope seen): check the levels")
        return by_gap, True, 0.7, notes, "discs"
    notes.append("no sacrum found: the lowest body found was taken as S1, so every level "
                 "may be off by one or more (confirm a level with one click)")
    return n - 1, False, 0.3, notes, "none"


def _cut_by_edge(p: _Piece) -> bool:
    """Whether a piece touches the border of its slice."""
    r0, c0, r1, c1 = p.bbox
    return r0 == 0 or c0 == 0 or r1 >= p.mask.shape[0] or c1 >= p.mask.shape[1]


def _body_axis(p: _Piece, sp: tuple[float, float], head: NDArray[np.float64]
               ) -> NDArray[np.float64] | None:
    """Normal of a piece's superior endplate, ``(d_row, d_col)`` mm components."""
    try:
        reg = endplate_bands(p.mask, sp, head, surfaces=("superior",), reference=False)
    except (BandError, ValueError):
        return None
    return np.asarray(reg.axis, dtype=float)


# ----------------------------------------------------------------------------------------
# outline
# ----------------------------------------------------------------------------------------
def _outline(piece: _Piece, img: NDArray[np.float32], level: float, others: NDArray[np.bool_],
             sp: tuple[float, float], axis: NDArray[np.float64] | None = None
             ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Refine a marrow piece to the body outline (see the module docstring, step 4).

    Returns the outline grown from the whole piece and the outline of its *core* alone
    (the piece re-thresholded at the half-maximum edge, the one part of it that holds most
    of the piece): a piece found at a low trial marrow level can run through a gap in the
    bony endplate into a disc whose T1 is 0.6-0.8 of the marrow's, which the core leaves
    out; the piece keeps a T1-dark change at the endplate, which the core can lose.
    :func:`_trim_leaks` picks one of the two by the heights of the neighbouring bodies.
    """
    # on a box 12 mm around the piece (everything below reaches < 8 mm beyond it)
    r0, c0, r1, c1 = piece.bbox
    m = int(math.ceil(12.0 / min(sp)))
    box = (slice(max(0, r0 - m), r1 + m), slice(max(0, c0 - m), c1 + m))
    full, core = _outline_in(piece.mask[box], img[box], level, others[box], sp, axis)
    out = (np.zeros_like(piece.mask), np.zeros_like(piece.mask))
    out[0][box], out[1][box] = full, core
    return out


def _outline_in(piece_mask: NDArray[np.bool_], img: NDArray[np.float32], level: float,
                others: NDArray[np.bool_], sp: tuple[float, float], axis: NDArray[np.float64] | None
                ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    from scipy import ndimage

    base = piece_mask if axis is None else _drop_thin(piece_mask, sp, axis)
    near = ndimage.binary_dilation(base, structure=_disk(2.0 / min(sp)))
    ring = ndimage.binary_dilation(base, structure=_disk(4.0 / min(sp))) & ~near & ~others
    marrow = float(np.median(img[base]))
    dark = float(np.percentile(img[ring], 25)) if ring.any() else MARROW_BAND[0] * level
    edge = 0.5 * (marrow + min(dark, marrow))
    above = near & (img > edge) & (img < MARROW_BAND[1] * 1.15 * marrow) & ~others
    # grown never across a thin dark line (the cortex of the posterior wall, a bony
    # endplate), even where partial volume leaves it above the edge: behind the posterior
    # wall lies the bright epidural fat. The line's own pixels next to the body are its.
    wall = _dark_lines(img, sp) >= DARK_LINE * marrow
    grown = (above & ~wall) | base
    lab, n = ndimage.label(grown)
    if n > 1:
        keep = np.unique(lab[base])
        grown = np.isin(lab, keep[keep > 0])
    grown |= above & wall & ndimage.binary_dilation(grown)
    grown = ndimage.binary_opening(grown, structure=_disk(1.0 / min(sp))) | base
    if axis is not None:  # the epidural fat just behind the wall, grown into
        grown = _drop_thin(grown, sp, axis)
    full = _finish(grown, others, sp)
    # the core: the part above the edge, opened (cutting the thin bridges through a
    # partial-volume endplate), the one component holding most of the piece
    core = ndimage.binary_opening(above, structure=_disk(1.0 / min(sp)))
    lab, n = ndimage.label(core)
    if n == 0:
        return full, full
    counts = np.bincount(lab[base & core], minlength=n + 1)
    counts[0] = 0
    if counts.max() == 0:
        return full, full
    core = lab == int(np.argmax(counts))
    return full, _finish(core if axis is None else _drop_thin(core, sp, axis), others, sp)


def _drop_thin(mask: NDArray[np.bool_], sp: tuple[float, float], axis: NDArray[np.float64]
               ) -> NDArray[np.bool_]:
    """A marrow piece without its parts thinner than ``THIN_MM`` that lie in front of or
    behind the body (a strip of epidural fat behind the posterior wall, which the marrow
    band joined to the body around a corner).

    The piece is opened by a disc of that diameter; the component holding most of it is
    the body. The pixels the opening took are given back within ``(sqrt(2) - 1) *
    THIN_MM / 2`` of it (what the opening takes from a right-angled corner), and wherever
    they lie within the body's extent across ``axis`` (the column's direction, (d_row,
    d_col)): a thin layer at an endplate (marrow beside a mixed change) is the body's.
    """
    from scipy import ndimage

    # opened in mm (a pixel's centre more than r from the piece's edge, which runs half a
    # pixel beyond the outer pixels' centres): a disc of pixels is too coarse on 1.5 mm ones
    r = 0.5 * THIN_MM
    t = r + 0.5 * min(sp)
    inner = ndimage.distance_transform_edt(mask, sampling=sp) > t
    opened = mask & (ndimage.distance_transform_edt(~inner, sampling=sp) <= t)
    lab, n = ndimage.label(opened)
    if n == 0:
        return mask
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    kept = lab == int(np.argmax(counts))
    across = np.array([-axis[1], axis[0]])
    rr, cc = np.nonzero(kept)
    a = rr * sp[0] * across[0] + cc * sp[1] * across[1]
    rows, cols = np.indices(mask.shape)
    ag = rows * sp[0] * across[0] + cols * sp[1] * across[1]
    inside = (ag >= a.min() - 0.5 * min(sp)) & (ag <= a.max() + 0.5 * min(sp))
    out: NDArray[np.bool_] = mask & (inside | _dilate(kept, (math.sqrt(2.0) - 1.0) * r + 0.5 * min(sp), sp))
    return out


def _finish(grown: NDArray[np.bool_], others: NDArray[np.bool_], sp: tuple[float, float]
            ) -> NDArray[np.bool_]:
    """Holes filled, deep notches closed from the convex hull, the cortical shell added."""
    from scipy import ndimage
    from skimage.morphology import convex_hull_image

    grown = ndimage.binary_fill_holes(grown)
    hull = convex_hull_image(grown)
    notch = ndimage.binary_opening(hull & ~grown, structure=_disk(1.5 / min(sp)))
    body = grown | notch
    # cortical shell
    # a pixel joins the shell when its centre lies within CORTEX_MM of the marrow's edge,
    # which runs half a pixel beyond the centres of the marrow's outer pixels
    dist = ndimage.distance_transform_edt(~body, sampling=sp)
    body = body | ((dist <= CORTEX_MM + 0.5 * min(sp) + 1e-6) & ~others)
    out: NDArray[np.bool_] = ndimage.binary_fill_holes(body)
    return out


def _trim_leaks(outlines: list[tuple[str, int, NDArray[np.bool_], float, list[str]]],
                cores: list[NDArray[np.bool_]], sp: tuple[float, float]
                ) -> list[tuple[str, int, NDArray[np.bool_], float, list[str]]]:
    """Each body's outline or its core's (:func:`_outline`), whichever height is nearer
    its neighbours'.

    A body's height is the extent of its outline along the chain across its central
    12 mm; the neighbours' is the median of the core heights of up to two bodies on each
    side (S1 and bodies cut by the image's edge left out). The core is taken when the
    outline is at least ``LEAK_MIN_MM`` higher than it and its height is the nearer
    (neighbouring lumbar bodies differ in height by < 10 %: the phantom's nominal
    dimensions, after Panjabi et al. 1992 and Zhou et al. 2000): an outline that ran into
    a disc is then a disc's height too tall, one that holds a T1-dark change at its
    endplate is as high as its neighbours and its core is not.
    """
    n = len(outlines)
    if n < 3:
        return outlines

    def centre(m: NDArray[np.bool_]) -> NDArray[np.float64]:
        r, c = np.nonzero(m)
        return np.array([r.mean() * sp[0], c.mean() * sp[1]])

    def height(m: NDArray[np.bool_], u: NDArray[np.float64], c0: NDArray[np.float64]) -> float:
        r, c = np.nonzero(m)
        pts = np.stack([r * sp[0], c * sp[1]], axis=1) - c0
        across = np.abs(pts @ np.array([-u[1], u[0]])) < 6.0
        t = pts[across] @ u
        return float(np.ptp(t)) if t.size else 0.0

    cs = [centre(o[2]) for o in outlines]
    hs, hc = [], []
    for i in range(n):
        j0, j1 = max(0, i - 1), min(n - 1, i + 1)
        u = cs[j1] - cs[j0]
        u = u / max(float(np.linalg.norm(u)), 1e-9)
        c0 = centre(cores[i])
        hs.append(height(outlines[i][2], u, c0))
        hc.append(height(cores[i], u, c0))
    ok = [o[0] != "S1" and not _touches_edge(o[2]) for o in outlines]
    out = []
    for i, o in enumerate(outlines):
        near = [hc[j] for j in (i - 2, i - 1, i + 1, i + 2) if 0 <= j < n and ok[j]]
        if not ok[i] or len(near) < 2 or hs[i] - hc[i] < LEAK_MIN_MM:
            out.append(o)
            continue
        h = float(np.median(near))
        if abs(hc[i] - h) < abs(hs[i] - h) and abs(hc[i] - h) <= LEAK_CORE_SHARE * h:
            o = (o[0], o[1], cores[i], o[3], [*o[4], f"outline trimmed to its marrow core: "
                                              f"{hs[i]:.0f} mm high against its neighbours' "
                                              f"{h:.0f} mm (ran into a disc?)"])
        out.append(o)
    return out


def _joined_along_edge(mask: NDArray[np.bool_], sp: tuple[float, float], med_area: float) -> float | None:
    """The outline's area over the median body outline's (``med_area``, mm2) when it
    touches the image edge and is more than ``CUT_AREA_MAX`` of it (a cut body joined to
    other tissue along the edge: no body), else None."""
    if not _touches_edge(mask) or med_area <= 0:
        return None
    ratio = float(mask.sum()) * sp[0] * sp[1] / med_area
    return ratio if ratio > CUT_AREA_MAX else None


def _touches_edge(m: NDArray[np.bool_]) -> bool:
    """Whether a mask touches the border of its slice (:func:`_cut_by_edge` for a piece)."""
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


# ----------------------------------------------------------------------------------------
# the proposal
# ----------------------------------------------------------------------------------------
def _study_name(study: Any) -> str:
    try:
        return str(study.key)
    except Exception:  # noqa: BLE001 - a name for a message only
        return "<study>"


def propose(
    study: Any,
    *,
    settings: BandSettings | None = None,
    anchor: tuple[str, ArrayLike] | None = None,
    vertebrae: Iterable[str] | None = None,
    author: str = "",
) -> Proposal:
    """Find, name and outline the lumbar vertebral bodies and propose their ROIs.

    Parameters
    ----------
    study : LoadedStudy
        With a sagittal T1 (:func:`modic.load_study`).
    settings : BandSettings, optional
        Band height and inset, reference placement (:mod:`modic.bands`).
    anchor : (str, (3,) array_like), optional
        A level and an LPS point inside that body (one click "this is L5"): the body
        nearest to the point gets that name and the others are counted from it.
    vertebrae : iterable of str, optional
        Only ROIs of these vertebrae.
    author : str
        Written into every ROI's ``author``.

    Returns
    -------
    Proposal

    Raises
    ------
    ProposalError
        No sagittal T1, or no chain of at least two vertebral bodies in it.
    ValueError
        A bad anchor (unknown level, point not on the T1).
    """
    from .annotations import ROI, Annotations, ImagePlane, RoiLabel
    from .labelmap import _shape_of

    where = _study_name(study)
    t1 = getattr(study, "t1", None)
    if t1 is None:
        raise ProposalError(where, "has no sagittal T1 series: ROIs are proposed on the sagittal T1 "
                                   "(pick one with --t1 SERIES, or check 'modic info')")
    g = t1.geometry
    sp = (float(g.pixel_spacing[0]), float(g.pixel_spacing[1]))
    head = image_direction((0.0, 0.0, 1.0), g.orientation)
    s = settings or BandSettings()
    if anchor is not None:
        a_name = str(anchor[0]).upper()
        if a_name not in LEVEL_ORDER:
            raise ValueError(f"anchor level must be one of {', '.join(LEVEL_ORDER)}, got {anchor[0]!r}")
        a_point = np.asarray(anchor[1], dtype=float).reshape(3)

    arr = t1.array
    chains = _chains(arr, sp, head)
    scores = np.array([c.score if c is not None else 0.0 for c in chains])
    if scores.max() <= 0 or max(len(c.pieces) for c in chains if c is not None) < 2:
        raise ProposalError(where, f"no vertebral column found on the sagittal T1 (series "
                                   f"{t1.series.label()}): no chain of two or more vertebral bodies; is the "
                                   "lumbar spine in view?")
    kbest = int(np.argmax(scores))
    run = [k for k in range(len(scores)) if scores[k] >= MIDLINE_SHARE * scores[kbest]]
    # the contiguous run around the best slice
    lo = hi = kbest
    while lo - 1 in run:
        lo -= 1
    while hi + 1 in run:
        hi += 1
    post = image_direction((0.0, 1.0, 0.0), g.orientation)
    # the column's midline: among the slices of the run whose chain is nearly as long as
    # the best, the one with the spinal canal behind its bodies
    run_ks = [k for k in range(lo, hi + 1) if chains[k] is not None
              and len(chains[k].pieces) >= len(chains[kbest].pieces) - 1]  # type: ignore[union-attr]
    canal = {k: float(np.median([_behind(q, chains[k], post, head, sp)  # type: ignore[arg-type]
                                 for q in chains[k].pieces]))  # type: ignore[union-attr]
             for k in run_ks}
    low = min(canal.values())
    near = [k for k in run_ks if canal[k] <= low + 0.1]
    mid = min(near, key=lambda k: abs(k - 0.5 * (lo + hi)))
    chain = chains[mid]
    assert chain is not None
    pieces = chain.pieces
    pieces, positions, _ = _positions(list(pieces), chain.image)
    pieces, positions = _fill_missed(pieces, positions, chains, mid)
    gaps = [_gap_mm(pieces[i], pieces[i + 1], sp) for i in range(len(pieces) - 1)]
    s1_i, sacrum, label_conf, notes, evidence = _find_s1(pieces, gaps, sp, head, positions)
    if s1_i == len(pieces) - 1 and evidence != "both":
        # the chain ends on the S1 it suggests, unsure: a scoliosis may take the column below
        # it off the midline slice
        more, more_pos = _extend_below(pieces, positions, chains)
        if len(more) > len(pieces):
            more_gaps = [_gap_mm(more[i], more[i + 1], sp) for i in range(len(more) - 1)]
            found = _find_s1(more, more_gaps, sp, head, more_pos)
            if found[4] != "none":  # the column followed to a sacrum
                pieces, positions, gaps = more, more_pos, more_gaps
                s1_i, sacrum, label_conf, notes, evidence = found
    s1_cut: _Piece | str | None = None
    if s1_i == len(pieces) - 1 and evidence != "both":
        # the chain ends on the S1 it suggests: it may end above the sacrum (a lordotic L5
        # turns like S1), or on S1 with the sacrum right below it
        k_last = pieces[-1].slice_index
        s1_cut = _sacral_mass(pieces, chains[k_last] or chain if k_last >= 0 else chain, sp, head)
        if isinstance(s1_cut, _Piece):
            pieces.append(s1_cut)
            positions.append(positions[-1] + 1)
            gaps.append(_gap_mm(pieces[-2], pieces[-1], sp))
        elif s1_cut == "below":
            pieces[-1] = dataclasses.replace(pieces[-1], s1=True)
        if s1_cut is not None:
            s1_i, sacrum, label_conf, notes, evidence = _find_s1(pieces, gaps, sp, head, positions)
    if evidence == "slope" and s1_cut is None and s1_i == len(pieces) - 1:
        notes.append("S1 by the sacral slope only, with no sacrum seen below it (a lordotic L5 "
                     "turns like S1): check the levels")
        label_conf = min(label_conf, 0.6)
    warnings = list(notes) + _missed_notes(positions)  # what the neighbouring slices did not fill
    # with an anchor the click names the bodies, whatever S1 the chain suggested
    lumbar = pieces[: s1_i + 1] if anchor is None else list(pieces)
    # names, from the level positions (a body the chain missed keeps its name free)
    i_s1 = LEVEL_ORDER.index("S1")
    names = [LEVEL_ORDER[i_s1 - (positions[s1_i] - positions[j])]
             if 0 <= i_s1 - (positions[s1_i] - positions[j]) < len(LEVEL_ORDER) else "?"
             for j in range(len(lumbar))]
    if anchor is not None:
        names, label_conf, msg = _apply_anchor(lumbar, positions, names, a_name, a_point, g, mid, sp)
        warnings = [w for w in warnings if "S1" not in w and "sacrum" not in w]
        if msg:
            warnings.append(msg)
    others_vol = [v for v in (getattr(study, "t2", None), getattr(study, "stir", None)) if v is not None]

    def covered(k: int, q: _Piece) -> bool:
        """Whether the T2 / STIR have a slice within half their spacing of the piece's centre
        on T1 slice k (else its ROIs cannot be measured on them)."""
        pt = g.index_to_patient([k, q.centre[0] / sp[0], q.centre[1] / sp[1]])
        for v in others_vol:
            _, dist = v.geometry.nearest_slice(pt[None, :])
            if abs(float(dist[0])) > 0.5 * v.geometry.slice_spacing:
                return False
        return True

    # outline each body on its own midline slice
    bodies: list[ProposedBody] = []
    outlines: list[tuple[str, int, NDArray[np.bool_], float, list[str]]] = []
    cores: list[NDArray[np.bool_]] = []
    med_area = float(np.median([p.area for p in lumbar]))
    middles = _column_middles(lumbar, names, chains, mid)
    axes: list[NDArray[np.float64]] = []
    wanted = None if vertebrae is None else {str(v).upper() for v in vertebrae}
    for j, (p, name) in enumerate(zip(lumbar, names, strict=True)):
        if name not in PROPOSED_LEVELS:
            continue
        if wanted is not None and name not in wanted:
            continue
        own = _own_slices(p, chains, mid, chain, post, head, sp, sacral=name == "S1", covered=covered,
                          centre=middles[j])
        # the column's direction: the band axes of the (up to two) bodies outlined above
        column = None if name == "S1" or not axes else np.mean(axes[-2:], axis=0)
        k, mask, core, piece, axis = _outline_body(own, mid, j, lumbar, pieces, s1_i, name, chains,
                                                   med_area, sp, head, s, column)
        if axis is not None and name != "S1":
            axes.append(axis)
        body_notes: list[str] = []
        conf = label_conf * min(1.0, piece.solidity / 0.95)
        ratio = p.area / med_area
        if not 0.55 <= ratio <= 1.6 and name != "S1":
            conf *= 0.6
            body_notes.append(f"its area is {ratio:.1f}x the median of the bodies found")
        outlines.append((name, k, mask, conf, body_notes))
        cores.append(core)
    outlines = _trim_leaks(outlines, cores, sp)
    # the median outline of the bodies the edge does not cut (cortex included, as the outlines)
    whole_areas = [float(o[2].sum()) * sp[0] * sp[1] for o in outlines if not _touches_edge(o[2])]
    med_outline = float(np.median(whole_areas)) if whole_areas else med_area
    for name, k, mask, conf, body_notes in outlines:
        regions: BodyRegions | None = None
        edge = _touches_edge(mask)
        joined = None if name == "S1" else _joined_along_edge(mask, sp, med_outline)  # S1 may join the sacrum
        if joined is not None:
            warnings.append(f"{name}: cut by the edge of the image and {joined:.1f}x the median "
                            "area of the bodies found (joined to tissue along the edge): left out")
            continue
        if edge:
            body_notes.append("cut by the edge of the image: outline only, no bands or reference")
            conf *= 0.5
        else:
            try:
                regions = endplate_bands(mask, sp, head, s, reference=True)
            except BandError as e:
                body_notes.append(f"no bands: {e}")
                conf *= 0.5
        rr, cc = np.nonzero(mask)
        centre = g.index_to_patient([k, float(rr.mean()), float(cc.mean())])
        bodies.append(ProposedBody(name, k, mask, np.asarray(centre, dtype=float),
                                   round(float(conf), 3), regions, body_notes))
    bodies = _normal_references(bodies, arr, sp, head, s)
    bodies = _check_shapes(bodies)
    for b in bodies:
        for nt in b.notes:
            warnings.append(f"{b.name}: {nt}")
    if not bodies:
        raise ProposalError(where, "vertebral bodies were found, but none of T12-S1 could be named")
    ann = _annotations(study, bodies, s, label_conf, sacrum, warnings, author, ROI, Annotations,
                       ImagePlane, RoiLabel, _shape_of)
    return Proposal(bodies, mid, sacrum, round(float(label_conf), 3), warnings, ann)


def _chains(arr: NDArray[np.float32], sp: tuple[float, float], head: NDArray[np.float64]
            ) -> list[_Chain | None]:
    """The chain of every slice, searched from the central slice outwards: a side is left
    once two slices in a row hold less than ``STOP_SHARE`` of the best chain so far (the
    column is a few slices wide; lateral slices show ribs, psoas and iliac wings)."""
    n = arr.shape[0]
    chains: list[_Chain | None] = [None] * n
    centre = n // 2
    chains[centre] = _slice_chain(arr[centre], sp, head, centre)
    best = chains[centre].score if chains[centre] is not None else 0.0
    for step in (-1, 1):
        weak = 0
        k = centre + step
        while 0 <= k < n and weak < 2:
            c = _slice_chain(arr[k], sp, head, k)
            chains[k] = c
            score = c.score if c is not None else 0.0
            best = max(best, score)
            weak = weak + 1 if score < STOP_SHARE * best else 0
            k += step
    return chains


def _normal_references(bodies: list[ProposedBody], t1: NDArray[Any], sp: tuple[float, float],
                       head: NDArray[np.float64], s: BandSettings) -> list[ProposedBody]:
    """Each body's reference in normal marrow. A central reference whose median T1 lies
    more than ``REF_OFF`` from the level the other bodies' central references predict
    (their median, after the coil gradient along the spine: the Theil-Sen slope of log T1
    per level; ``t1``: the T1 array, slices first) holds part of a change or a focus (a
    change reaches 15-60 % of the body's height from its endplate, so into the middle:
    development seeds 600009, 600042, the sample ge_3T_type3_mixed12's S1). It is moved to
    the one of ``REF_ALTERNATIVES`` nearest that level when that is at least ``REF_GAIN``
    (log ratio) nearer, never towards an endplate whose band reads off the level too, and
    the body's note says so."""
    def value(k: int, m: NDArray[np.bool_] | None) -> float | None:
        if m is None or int(m.sum()) < 10:
            return None
        v = float(np.median(t1[k][m]))
        return v if v > 0 else None

    vals = [value(b.slice_index, b.regions.reference if b.regions is not None else None) for b in bodies]
    known = [(i, math.log(x)) for i, x in enumerate(vals) if x]
    if len(known) < 4:
        return bodies
    # the coil gradient along the spine: the median of the pairwise slopes of log T1 per
    # level (Theil-Sen), robust to the one or two references a change holds
    slope = float(np.median([(b2 - b1) / (i2 - i1) for n, (i1, b1) in enumerate(known)
                             for i2, b2 in known[n + 1:]]))
    out = []
    for j, b in enumerate(bodies):
        v, reg = vals[j], b.regions
        if v is None or reg is None:
            out.append(b)
            continue
        level = math.exp(float(np.median([x - slope * (i - j) for i, x in known if i != j])))
        off = abs(math.log(v / level))
        if off <= math.log(1.0 + REF_OFF):
            out.append(b)
            continue
        bands = _dilate((reg.superior if reg.superior is not None else np.zeros_like(b.mask))
                        | (reg.inferior if reg.inferior is not None else np.zeros_like(b.mask)), 1.0, sp)
        best: tuple[float, NDArray[np.bool_], float] | None = None
        for pos, hf in REF_ALTERNATIVES:
            # never towards an endplate whose band itself reads off the level (a change
            # there reaches towards the middle: seed 710002's L2, a type 1 at its superior
            # endplate, and a central reference read bright)
            vb = value(b.slice_index, reg.superior if pos > 0.5 else reg.inferior)
            if vb is not None and abs(math.log(vb / level)) > math.log(1.0 + REF_OFF):
                continue
            try:
                alt = endplate_bands(b.mask, sp, head, dataclasses.replace(
                    s, reference_position=pos, reference_height_fraction=hf), reference=True).reference
            except (BandError, ValueError):
                continue
            if alt is None:
                continue
            alt = alt & ~bands
            va = value(b.slice_index, alt)
            if va is None or int(alt.sum()) < 0.4 * int(reg.reference.sum()):  # type: ignore[union-attr]
                continue
            d = abs(math.log(va / level))
            if best is None or d < best[0]:
                best = (d, alt, pos)
        if best is None or best[0] > off - REF_GAIN:
            out.append(b)
            continue
        toward = "superior" if best[2] > 0.5 else "inferior"
        note = (f"reference moved toward the {toward} endplate: the central marrow reads {v / level:.2f}x "
                "the level of the other vertebrae's on T1 (part of a change or a focus in it?)")
        out.append(dataclasses.replace(b, regions=dataclasses.replace(reg, reference=best[1]),
                                       notes=[*b.notes, note]))
    return out


def _check_shapes(bodies: list[ProposedBody]) -> list[ProposedBody]:
    """Flag outlines out of line with their neighbours: a body height off by more than
    ``HEIGHT_TOLERANCE`` from the median of its two neighbours on each side, or an axis
    turned more than ``AXIS_TOLERANCE_DEG`` from theirs (a body merged with a change of
    its neighbour across a thin disc, or cut in two): confidence halved, and said so."""
    out = []
    for i, b in enumerate(bodies):
        reg = b.regions
        near = [x.regions for x in bodies[max(0, i - 2): i] + bodies[i + 1: i + 3]
                if x.regions is not None and x.name != "S1"]
        if reg is None or len(near) < 2 or b.name == "S1":
            out.append(b)
            continue
        h = float(np.median([r.body_height_mm for r in near]))
        axis = np.mean([r.axis for r in near], axis=0)
        turn = _angle(reg.axis, axis)
        notes = list(b.notes)
        if not (1 - HEIGHT_TOLERANCE) * h <= reg.body_height_mm <= (1 + HEIGHT_TOLERANCE) * h:
            notes.append(f"outline doubtful: {reg.body_height_mm:.0f} mm tall, its neighbours "
                         f"{h:.0f} mm; check its bands")
        elif turn > AXIS_TOLERANCE_DEG:
            notes.append(f"outline doubtful: its axis is turned {turn:.0f} degrees from its "
                         "neighbours'; check its bands")
        if len(notes) > len(b.notes):
            b = dataclasses.replace(b, confidence=round(b.confidence * 0.5, 3), notes=notes)
        out.append(b)
    return out


def _outline_body(own: list[tuple[int, _Piece, NDArray[np.float32], float]], mid: int, j: int,
                  lumbar: list[_Piece], pieces: list[_Piece], s1_i: int, name: str,
                  chains: Sequence[_Chain | None], med_area: float, sp: tuple[float, float],
                  head: NDArray[np.float64], s: Any, column: NDArray[np.float64] | None
                  ) -> tuple[int, NDArray[np.bool_], NDArray[np.bool_], _Piece, NDArray[np.float64] | None]:
    """Body ``j`` of ``lumbar`` outlined on the first of its slices ``own``
    (:func:`_own_slices`) whose outline takes endplate bands (:func:`_band_axis`) with an
    axis within ``AXIS_TOLERANCE_DEG`` of the ``column``'s direction there (the bands'
    axes of the bodies above; None: any axis fits), else on the slice the chain found it
    on (``mid`` for the midline chain's own pieces) when that is better in line, else on
    the first. A scoliosis puts the psoas or the fat beside the body on the slice where
    the canal lies behind it (fresh seeds 710257, 710261 of the widened cohort: no bands
    fit); a body joins a change of its neighbour across the disc on one slice (the sample
    siemens_3T_rle_t2fs's L5 on its midline: turned 33 degrees). An outline cut by the
    image edge takes no bands and is kept. Returns the slice, outline, core and piece
    (:func:`_outline_on`) and the outline's band axis."""
    p = lumbar[j]
    found = p.slice_index if 0 <= p.slice_index < len(chains) else mid
    c = chains[found]
    options = list(own)
    if c is not None and all(o[0] != found for o in options):
        options.insert(1, (found, p, c.image, p.level if p.level else c.level))
    tried = []
    for at in options[:OUTLINE_TRIES]:
        k, mask, core, piece = _outline_on(at, j, lumbar, pieces, s1_i, name, chains, med_area, sp, head)
        if _touches_edge(mask):
            return k, mask, core, piece, None
        axis = _band_axis(mask, sp, head, s)
        turn = math.inf if axis is None else (0.0 if column is None else _angle(axis, column))
        if turn <= AXIS_TOLERANCE_DEG:
            return k, mask, core, piece, axis
        tried.append((turn, (k, mask, core, piece, axis)))
    return min(tried, key=lambda t: t[0])[1]


def _band_axis(mask: NDArray[np.bool_], sp: tuple[float, float], head: NDArray[np.float64], s: Any
               ) -> NDArray[np.float64] | None:
    """The axis of the endplate bands an outline takes (band settings ``s``), ``(d_row,
    d_col)`` towards the head; None when no bands fit it."""
    try:
        reg = endplate_bands(mask, sp, head, s, reference=False)
    except (BandError, ValueError):
        return None
    return np.asarray(reg.axis, dtype=float)


def _outline_on(own: tuple[int, _Piece, NDArray[np.float32], float], j: int, lumbar: list[_Piece],
                pieces: list[_Piece], s1_i: int, name: str, chains: Sequence[_Chain | None],
                med_area: float, sp: tuple[float, float], head: NDArray[np.float64]
                ) -> tuple[int, NDArray[np.bool_], NDArray[np.bool_], _Piece]:
    """Body ``j`` of ``lumbar`` (named ``name``) outlined on slice ``own = (k, piece, image,
    level)``: its slice, outline, marrow core and the piece grown to the whole body."""
    k, piece, img, level = own
    p = lumbar[j]
    others = np.zeros_like(piece.mask)
    for q in (lumbar[j - 1] if j > 0 else None, lumbar[j + 1] if j + 1 < len(lumbar) else None):
        if q is not None:
            others |= _dilate(q.mask, CORTEX_MM + 0.5, sp)
    if name == "S1" and j + 1 >= len(lumbar) and s1_i + 1 < len(pieces):
        others |= _dilate(pieces[s1_i + 1].mask, 1.0, sp)
    if not piece.s1:
        piece = _whole(piece, chains[k], others, med_area, sp)
        level = piece.level
    # the column's direction through the body (from the body above to the one below)
    above_q = lumbar[j - 1] if j > 0 else p
    below_q = lumbar[j + 1] if j + 1 < len(lumbar) else p
    axis = below_q.centre - above_q.centre if below_q is not above_q else -head
    mask, core = _outline(piece, img, level, others & ~piece.mask, sp, axis / np.linalg.norm(axis))
    if piece.s1:  # S1 next to the rest of the sacrum: do not grow into S2
        mask &= _with_shell(piece.mask, sp)
        core = mask
    return k, mask, core, piece


def _whole(p: _Piece, chain: _Chain | None, others: NDArray[np.bool_], med_area: float,
           sp: tuple[float, float]) -> _Piece:
    """The largest candidate of the slice (any marrow level) that holds the piece's centre,
    stays off its neighbours and is not oversized: the whole body where the chain found a
    part of it (heterogeneous marrow, a change, a Schmorl node)."""
    if chain is None:
        return p
    r = int(round(p.centre[0] / sp[0]))
    c = int(round(p.centre[1] / sp[1]))
    best = p
    for q in chain.candidates:
        if q.area <= best.area or q.area > 1.6 * med_area or q.solidity < 0.85:
            continue
        if not (0 <= r < q.mask.shape[0] and 0 <= c < q.mask.shape[1]) or not q.mask[r, c]:
            continue
        if (q.mask & others).any():
            continue
        best = q
    return best


def _with_shell(marrow: NDArray[np.bool_], sp: tuple[float, float]) -> NDArray[np.bool_]:
    """The marrow and its cortical shell: the pixels whose centres lie within ``CORTEX_MM`` of
    the marrow's edge, which runs half a pixel beyond the centres of its outer pixels (as in
    :func:`_finish`; 1 mm from the outer centres alone adds nothing on pixels over 1 mm)."""
    return _dilate(marrow, CORTEX_MM + 0.5 * min(sp) + 1e-6, sp)


def _dilate(mask: NDArray[np.bool_], mm: float, sp: tuple[float, float]) -> NDArray[np.bool_]:
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~mask, sampling=sp)
    out: NDArray[np.bool_] = dist <= mm
    return out


def _sacral_mass(pieces: list[_Piece], chain: _Chain, sp: tuple[float, float],
                 head: NDArray[np.float64]) -> _Piece | str | None:
    """S1 cut out of the fused sacrum below the chain's last body, if there is one.

    At the last body's marrow level (the marrow test of :func:`_slice_chain`, thin dark
    lines included), the marrow piece with the most pixels in a cone below the last body
    (within ``SACRUM_CONE_DEG`` of the chain's last step, 0.3-1.3 chain steps from the
    body's centre, towards the feet) is the sacrum, when those pixels cover at least half
    the last body's area. The cone turns with the lumbosacral angle; fat around the
    sacrum, which the marrow band may join to it, lies outside it. S1 is the mass's part
    within one body height (the median height of the chain's last three bodies) of its top,
    measured along the line from the last body's centre to the mass (``s1`` set). When the
    line between the last body's centre and S1's crosses no disc (< ``DISC_GAP_MIN_MM``
    outside both: a remnant, or S2 fused to S1), or crosses a thin one to a piece smaller than
    ``S2_AREA_SHARE`` of the last body (the next sacral segment), the last body is S1 and
    ``"below"`` is returned. The disc is measured by :func:`_disc_between`.
    """
    from scipy import ndimage

    last = pieces[-1]
    u = last.centre - pieces[-2].centre
    u = u / np.linalg.norm(u)
    pitch = float(np.median([np.linalg.norm(pieces[i + 1].centre - pieces[i].centre)
                             for i in range(max(0, len(pieces) - 4), len(pieces) - 1)]))
    sm = chain.image
    cos_cone = math.cos(math.radians(SACRUM_CONE_DEG))
    lines = _dark_lines(sm, sp)
    found = None
    # at the last body's marrow level, else at the chain's (a coil gradient or the sacrum's
    # fattier marrow can take it out of the first band); a piece many bodies big is the
    # abdomen's texture joined up, not the sacrum
    for lv in dict.fromkeys((last.level, chain.level)):
        m = (sm > MARROW_BAND[0] * lv) & (sm < MARROW_BAND[1] * lv) & (lines < DARK_LINE * lv)
        m = ndimage.binary_opening(m, structure=_disk(1.5 / min(sp)))
        m &= ~_dilate(last.mask, 1.0, sp)
        lab, n = ndimage.label(m)
        if n == 0:
            continue
        rows, cols = np.nonzero(lab)
        pts = np.stack([rows * sp[0], cols * sp[1]], axis=1)
        d = pts - last.centre
        dist = np.linalg.norm(d, axis=1)
        near = ((dist > 0.3 * pitch) & (dist < 1.3 * pitch) & (d @ u > cos_cone * dist)
                & (d @ -head > 0.0))
        if not near.any():
            continue
        sizes = np.bincount(lab[rows, cols])
        ids, counts = np.unique(lab[rows[near], cols[near]], return_counts=True)
        fit = sizes[ids] * sp[0] * sp[1] <= SACRUM_MAX_BODIES * last.area
        if not fit.any():
            continue
        ids, counts = ids[fit], counts[fit]
        if counts.max() * sp[0] * sp[1] >= 0.5 * last.area:
            found = (rows, cols, pts, d, dist, near, lab, int(ids[int(np.argmax(counts))]))
            break
    if found is None:
        return None
    rows, cols, pts, d, dist, near, lab, best = found
    sel = lab[rows, cols] == best
    w = pts[sel & near].mean(axis=0) - last.centre
    w = w / np.linalg.norm(w)
    across = np.array([-w[1], w[0]])
    t = d @ w
    a = np.abs(d @ across)
    heights = []
    for p in pieces[-3:]:
        r, c = np.nonzero(p.mask)
        tt = np.stack([r * sp[0], c * sp[1]], axis=1) @ u
        heights.append(float(tt.max() - tt.min()))
    h = float(np.median(heights))
    central = sel & near & (a < 10.0)
    if not central.any():
        return None
    t0 = float(t[central].min())
    cut = (sel & (t >= t0 - 0.25 * h) & (t <= t0 + h) & (a < 25.0) & (dist < 1.6 * pitch)
           & (d @ u > cos_cone * dist))
    mask = np.zeros(sm.shape, dtype=bool)
    mask[rows[cut], cols[cut]] = True
    lab2, n2 = ndimage.label(mask)
    if n2 > 1:
        counts2 = np.bincount(lab2.ravel())
        counts2[0] = 0
        mask = lab2 == int(np.argmax(counts2))
    area = float(mask.sum()) * sp[0] * sp[1]
    if area < BODY_AREA_MM2[0]:
        return None
    r, c = np.nonzero(mask)
    top = _Piece(mask, area, np.array([r.mean() * sp[0], c.mean() * sp[1]]), 1.0,
                 (int(r.min()), int(c.min()), int(r.max()) + 1, int(c.max()) + 1), last.level,
                 spacing=sp, s1=True, slice_index=chain.slice_index)
    disc = _disc_between(last, lab == best, w, sp)
    med_gap = float(np.median([_gap_mm(pieces[i], pieces[i + 1], sp)
                               for i in range(max(0, len(pieces) - 4), len(pieces) - 1)]))
    small = top.area < S2_AREA_SHARE * last.area
    if disc < DISC_GAP_MIN_MM or (disc < DISC_GAP_FRACTION * med_gap and small):
        return "below"  # across no disc, or a thin one to the next sacral segment (smaller than S1)
    return top


def _disc_between(last: _Piece, mass: NDArray[np.bool_], w: NDArray[np.float64],
                  sp: tuple[float, float]) -> float:
    """Height (mm) of what lies between a body and a mass below it, along ``w``: the median,
    over lines parallel to ``w`` through the body's central 12 mm, of the run outside both from
    where the line leaves the body to where it enters the mass (0 when no line does both).
    The median keeps a sliver of tissue joined to the mass beside the disc from counting."""
    across = np.array([-w[1], w[0]])
    step = 0.25 * min(sp)
    t = np.arange(0.0, 60.0, step)
    runs = []
    for o in np.arange(-6.0, 6.0 + 1e-9, 1.0):
        pts = last.centre[None, :] + o * across[None, :] + t[:, None] * w[None, :]
        r = np.rint(pts[:, 0] / sp[0]).astype(int)
        c = np.rint(pts[:, 1] / sp[1]).astype(int)
        ok = (r >= 0) & (r < mass.shape[0]) & (c >= 0) & (c < mass.shape[1])
        r, c = np.clip(r, 0, mass.shape[0] - 1), np.clip(c, 0, mass.shape[1] - 1)
        in_body = last.mask[r, c] & ok
        in_mass = mass[r, c] & ok
        if not in_body[0] or not in_mass.any():
            continue
        leave = int(np.argmin(in_body))  # first sample outside the body
        enter = int(np.argmax(in_mass))
        if enter >= leave:
            runs.append((enter - leave) * step)
    return float(np.median(runs)) if runs else 0.0


def _behind(p: _Piece, c: _Chain, post: NDArray[np.float64], head: NDArray[np.float64],
            sp: tuple[float, float]) -> float:
    """Share of marrow-like pixels 3-12 mm behind a body's posterior wall, over the middle
    of its height: low on the midline (the spinal canal: CSF, epidural fat), high off it
    (the pedicles carry marrow straight behind the body)."""
    r0, c0, r1, c1 = p.bbox
    rr, cc = np.nonzero(p.mask[r0:r1, c0:c1])
    pts = np.stack([(rr + r0) * sp[0], (cc + c0) * sp[1]], axis=1)
    t_post = pts @ post
    t_head = pts @ head
    wall = float(np.percentile(t_post, 98))
    h_lo, h_hi = np.percentile(t_head, [25, 75])
    R, C = c.image.shape
    grid_r, grid_c = np.mgrid[0:R, 0:C]
    # a box around the body, enough to hold the strip behind it
    m = int(14.0 / min(sp)) + 2
    rs = slice(max(0, r0 - m), min(R, r1 + m))
    cs = slice(max(0, c0 - m), min(C, c1 + m))
    g = np.stack([grid_r[rs, cs].ravel() * sp[0], grid_c[rs, cs].ravel() * sp[1]], axis=1)
    tp = g @ post - wall
    th = g @ head
    strip = (tp > 3.0) & (tp < 12.0) & (th > h_lo) & (th < h_hi)
    if not strip.any():
        return 1.0
    vals = c.image[rs, cs].ravel()[strip]
    lv = p.level if p.level > 0 else c.level
    inside = (vals > MARROW_BAND[0] * lv) & (vals < MARROW_BAND[1] * lv)
    return float(inside.mean())


def _fill_missed(pieces: list[_Piece], positions: list[int], chains: Sequence[_Chain | None], mid: int
                 ) -> tuple[list[_Piece], list[int]]:
    """Bodies the midline chain missed, taken from the neighbouring slices.

    Where two bodies of the chain are two or more level positions apart (a body between
    them not found on the midline slice: a scoliosis takes it off the slice, or a change
    darkens it), the body candidate of a slice within ``OWN_SLICE_REACH`` of the midline
    whose centre lies within ``FILL_REACH`` of a pitch of the expected place, and that
    overlaps neither neighbour along the step, is put in its place (the largest one when
    several are). The level positions stay as counted from the distances.
    """
    out: list[_Piece] = [pieces[0]]
    pos: list[int] = [positions[0]]
    for a, b, pa, pb in zip(pieces[:-1], pieces[1:], positions[:-1], positions[1:], strict=True):
        m = pb - pa
        step = b.centre - a.centre
        dist = float(np.linalg.norm(step))
        u = step / dist
        for j in range(1, m):
            want = a.centre + step * (j / m)
            best: _Piece | None = None
            for k in range(max(0, mid - OWN_SLICE_REACH), min(len(chains), mid + OWN_SLICE_REACH + 1)):
                c = chains[k]
                if c is None or k == mid:
                    continue
                for q in c.candidates:
                    if float(np.linalg.norm(q.centre - want)) > FILL_REACH * dist / m:
                        continue
                    if _overlap_along(a, q, u) or _overlap_along(q, b, u):
                        continue
                    if best is None or q.area > best.area:
                        best = q
            if best is not None:
                out.append(best)
                pos.append(pa + j)
        out.append(b)
        pos.append(pb)
    return out, pos


def _lateral_centre(p: _Piece, chains: Sequence[_Chain | None], reach: float) -> float | None:
    """The slice (fractional) through the middle of a body: the middle of the run of slices
    where its section is at least 0.9 of its largest. The section on a slice is the largest
    body candidate within ``reach`` mm of the body's centre and at most 1.5 times its area
    (larger: joined to a sacral ala or a rib); the run is followed out from the body's own
    slice while the section stays above half the body's area. A body's section is nearly
    constant over its central slices and falls off at its sides."""
    k0 = p.slice_index
    if not 0 <= k0 < len(chains):
        return None

    def section(k: int) -> float:
        c = chains[k]
        if c is None:
            return 0.0
        return max((q.area for q in c.candidates if q.area <= 1.5 * p.area
                    and float(np.linalg.norm(q.centre - p.centre)) <= reach), default=0.0)

    areas = {k0: max(section(k0), p.area)}
    for step in (-1, 1):
        k = k0 + step
        while 0 <= k < len(chains):
            a = section(k)
            if a < 0.5 * p.area:
                break
            areas[k] = a
            k += step
    top = max(areas.values())
    ks = [k for k, a in areas.items() if a >= 0.9 * top]
    return 0.5 * (min(ks) + max(ks))


def _extend_below(pieces: list[_Piece], positions: list[int], chains: Sequence[_Chain | None]
                  ) -> tuple[list[_Piece], list[int]]:
    """The column followed below the midline chain's last body on the other slices.

    A scoliosis takes the lower lumbar bodies and the sacrum off the midline slice (3-7
    slices of 4-5 mm in the development seeds), so the midline chain stops above S1 and its
    last body would be taken for S1. The column's course across the slices is followed
    from the middle slices of its last two bodies (:func:`_lateral_centre`): on the slices
    within ``EXTEND_REACH`` of where it leads, nearest first, a chain that holds the last
    body (a piece whose centre is within ``FILL_REACH`` of a pitch of it) and goes on below
    it gives its next body, if that lies 0.6-1.5 pitches below the last one and does not
    overlap it along the step. Then again from that body, at most ``EXTEND_MAX`` bodies.
    (The nearest slice alone leads into the sacral ala beside a displaced S1.)
    """
    out, pos = list(pieces), list(positions)
    steps = [float(np.linalg.norm(out[i + 1].centre - out[i].centre)) / max(1, pos[i + 1] - pos[i])
             for i in range(len(out) - 1)]
    if not steps:
        return out, pos
    pitch = float(np.median(steps))
    reach = FILL_REACH * pitch
    lat = [_lateral_centre(q, chains, reach) for q in out[-2:]]
    for _ in range(EXTEND_MAX):
        if lat[-1] is None or lat[-2] is None:
            break
        drift = float(np.clip(lat[-1] - lat[-2], -2.0, 2.0))
        expect = lat[-1] + drift
        last = out[-1]
        found: _Piece | None = None
        for k in sorted(range(len(chains)), key=lambda k: abs(k - expect)):
            c = chains[k]
            if c is None or abs(k - expect) > EXTEND_REACH:
                continue
            near = [j for j, q in enumerate(c.pieces)
                    if float(np.linalg.norm(q.centre - last.centre)) <= reach]
            if not near or near[-1] + 1 >= len(c.pieces):
                continue
            q = c.pieces[near[-1] + 1]
            d = q.centre - last.centre
            dist = float(np.linalg.norm(d))
            if not 0.6 * pitch <= dist <= 1.5 * pitch or _overlap_along(last, q, d / dist):
                continue
            found = q
            break
        if found is None:
            break
        out.append(found)
        pos.append(pos[-1] + 1)
        lat = [lat[-1], _lateral_centre(found, chains, reach)]
    return out, pos


def _own_slices(p: _Piece, chains: Sequence[_Chain | None], mid: int, chain: _Chain,
                post: NDArray[np.float64], head: NDArray[np.float64], sp: tuple[float, float],
                sacral: bool = False, covered: Any = None, centre: float | None = None
                ) -> list[tuple[int, _Piece, NDArray[np.float32], float]]:
    """The slices to outline a body on, ``(k, piece, image, level)``, best first: of the
    slices within ``OWN_SLICE_REACH`` of the column's midline ``mid`` or within one slice
    of the body's lateral middle ``centre`` (:func:`_column_middles`; ``mid`` when not
    given) that show the body, and of those the other sagittal series cover
    (``covered(k, piece)``) when any is, those with the spinal canal behind the body
    (:func:`_behind` at most ``CANAL_SHARE``, or within 0.1 of the lowest), nearest
    ``centre`` first, then nearest ``mid``. S1: one slice (:func:`_s1_slice`)."""
    if p.s1:  # found with the sacrum below it, on the slice it was found on
        if 0 <= p.slice_index != mid and chains[p.slice_index] is not None:
            c = chains[p.slice_index]
            assert c is not None
            return [_s1_slice((p.slice_index, p, c.image, c.level), chains, mid, centre, covered)]
        return [_s1_slice((mid, p, chain.image, chain.level), chains, mid, centre, covered)]
    if sacral:
        k0, c0 = mid, chain
        if p.slice_index >= 0 and p.slice_index != mid and chains[p.slice_index] is not None:
            k0, c0 = p.slice_index, chains[p.slice_index]  # type: ignore[assignment]
        return [_s1_slice((k0, p, c0.image, p.level or c0.level), chains, mid, centre, covered)]
    if p.slice_index >= 0 and p.slice_index != mid and chains[p.slice_index] is not None:
        # a body the midline chain missed, taken from a neighbouring slice
        mid, chain = p.slice_index, chains[p.slice_index]  # type: ignore[assignment]
    cands: dict[int, tuple[_Piece, _Chain]] = {mid: (p, chain)}
    if centre is None:
        centre = float(mid)
    for k in range(len(chains)):
        c = chains[k]
        if c is None or k == mid or (abs(k - mid) > OWN_SLICE_REACH and abs(k - centre) > 1.0):
            continue
        best = None
        # the chain's piece there; else a candidate of the body's size (the chain of a
        # slice through the canal can miss a body that the slices beside it hold)
        for q in c.pieces:
            if float(np.linalg.norm(q.centre - p.centre)) < 10.0:
                if best is None or q.area > best.area:
                    best = q
        if best is None:
            for q in c.candidates:
                if (float(np.linalg.norm(q.centre - p.centre)) < 10.0 and q.area <= 1.5 * p.area
                        and (best is None or q.area > best.area)):
                    best = q
        if best is not None and best.area >= MIDLINE_SHARE * p.area:
            cands[k] = (best, c)
    if covered is not None:  # slices the T2 / STIR also cover, where the ROIs can be measured
        ok = {k: v for k, v in cands.items() if covered(k, v[0])}
        if ok:
            cands = ok
    score = {k: _behind(q, c, post, head, sp) for k, (q, c) in cands.items()}
    low = min(score.values())
    # not beside the pedicles (marrow behind the wall); among the others the slice nearest
    # the body's lateral middle (the share behind the wall varies by 0.2-0.3 between
    # neighbouring slices in the canal, so its lowest value alone picks a slice at random)
    ks = sorted((k for k in cands if score[k] <= max(low + 0.1, CANAL_SHARE)),
                key=lambda k: (abs(k - centre), abs(k - mid), score[k]))
    return [(k, cands[k][0], cands[k][1].image, cands[k][0].level) for k in ks]


def _s1_slice(found: tuple[int, _Piece, NDArray[np.float32], float], chains: Sequence[_Chain | None],
              mid: int, centre: float | None, covered: Any) -> tuple[int, _Piece, NDArray[np.float32], float]:
    """S1 on the slice it was found on (``found = (k, piece, image, level)``), unless that
    is the column's midline slice ``mid`` and L5's lateral middle (``centre``) lies more
    than one slice from it (the midline chain ran along the side of a straight column:
    development seeds 600003, 600022 and the sample siemens_15T_type1_type2, whose T1-dark
    changes break the bodies up on the central slices): then on the slice nearest that
    middle, within one slice of it, that holds a candidate of 0.85-1.5 times S1's area
    within 10 mm of its centre (S1 alone, not joined to the sacrum; the sacral alae beside
    S1 lie further out), when there is one. An S1 that the column's course below the
    midline chain or the sacrum search found on another slice (a scoliosis, which can
    carry S1 2-3 slices beyond L5's middle) stays there."""
    k0, p = found[0], found[1]
    if centre is None or k0 != mid or abs(k0 - centre) <= 1.0:
        return found
    best: tuple[int, _Piece, NDArray[np.float32], float] | None = None
    for k in sorted(range(len(chains)), key=lambda k: abs(k - centre)):
        c = chains[k]
        if c is None or k == k0 or abs(k - centre) > 1.0:
            continue
        qs = [q for q in [*c.pieces, *c.candidates]
              if float(np.linalg.norm(q.centre - p.centre)) < 10.0
              and MIDLINE_SHARE * p.area <= q.area <= 1.5 * p.area]
        if not qs:
            continue
        q = max(qs, key=lambda q: q.area)
        if covered is not None and not covered(k, q):
            continue
        best = (k, q, c.image, q.level or c.level)
        break
    return found if best is None else best


def _body_middle(p: _Piece, chains: Sequence[_Chain | None], mid: int) -> float | None:
    """The slice (fractional) through a body's lateral middle: halfway between the first
    and the last slice that show it, followed out from slice ``mid`` (a slice without a
    candidate of 0.5-1.5 times the body's area within ``LATERAL_REACH_MM`` of its centre
    shows none; one such slice between two that show it is passed over). None when the
    run reaches the first or last slice (the series does not cover the whole body) or
    holds fewer than three slices (a change that darkens the body breaks its marrow up).

    The body's section is nearly constant over its central slices, but the marrow pieces
    found there vary by 10-30 % with the trial levels; its sides are where it ends.
    """
    seen: dict[int, bool] = {}

    def shows(k: int) -> bool:
        if k not in seen:
            c = chains[k]
            seen[k] = c is not None and any(
                0.5 * p.area <= q.area <= 1.5 * p.area
                and float(np.linalg.norm(q.centre - p.centre)) <= LATERAL_REACH_MM for q in c.candidates)
        return seen[k]

    n = len(chains)
    ends = []
    for step in (-1, 1):
        last, k = mid, mid + step
        while 0 <= k < n and (shows(k) or (0 <= k + step < n and shows(k + step))):
            if shows(k):
                last = k
            k += step
        if last in (0, n - 1):
            return None
        ends.append(last)
    if ends[1] - ends[0] < 2:
        return None
    return 0.5 * (ends[0] + ends[1])


def _column_middles(lumbar: list[_Piece], names: list[str], chains: Sequence[_Chain | None], mid: int
                    ) -> list[float]:
    """Each body's lateral middle (:func:`_body_middle`), as the median of its own and its
    two neighbours' (a body whose middle cannot be measured takes its neighbours'; in the
    15-degree scoliosis of the tests the truth middles move by 0.4-1.4 slices per level,
    and the median of three stays within 0.7 slice of them); the column's midline
    slice ``mid`` where none is known. S1 counts for none (the sacral alae beside it); its
    own is L5's."""
    own = [None if q.s1 or name == "S1"
           else _body_middle(q, chains, q.slice_index if q.slice_index >= 0 else mid)
           for q, name in zip(lumbar, names, strict=True)]
    out = []
    for j in range(len(lumbar)):
        near = [m for m in own[max(0, j - 1):j + 2] if m is not None]
        out.append(float(np.median(near)) if near else float(mid))
    return out


def _apply_anchor(lumbar: list[_Piece], positions: list[int], names: list[str], a_name: str,
                  a_point: NDArray[np.float64], g: Any, mid: int, sp: tuple[float, float]
                  ) -> tuple[list[str], float, str]:
    idx = g.patient_to_index(a_point[None, :])[0]
    rc = np.array([idx[1] * sp[0], idx[2] * sp[1]])
    d = [float(np.linalg.norm(p.centre - rc)) for p in lumbar]
    j = int(np.argmin(d))
    if d[j] > 60.0:
        raise ValueError(f"the anchor point {a_point.tolist()} is {d[j]:.0f} mm from the nearest body found; "
                         "click inside a vertebral body")
    # the clicked level position: the click projected on the chain between the bodies
    # found (it may lie on a body the chain missed)
    click = float(positions[j])
    best = d[j]
    for i in range(len(lumbar) - 1):
        a, b = lumbar[i].centre, lumbar[i + 1].centre
        u = b - a
        t = float((rc - a) @ u / (u @ u))
        if 0.0 <= t <= 1.0:
            dist = float(np.linalg.norm(a + t * u - rc))
            if dist < best:
                best = dist
                click = positions[i] + t * (positions[i + 1] - positions[i])
    ia = LEVEL_ORDER.index(a_name)
    out = []
    for i in range(len(lumbar)):
        k = ia + int(round(positions[i] - click))
        out.append(LEVEL_ORDER[k] if 0 <= k < len(LEVEL_ORDER) else "?")
    msg = "" if out == names else f"levels set by the anchor ({a_name}), not by counting from the sacrum"
    return out, 0.99, msg


def _annotations(study: Any, bodies: list[ProposedBody], s: BandSettings, label_conf: float,
                 sacrum: bool, warnings: list[str], author: str, ROI: Any, Annotations: Any,
                 ImagePlane: Any, RoiLabel: Any, shape_of: Any) -> Any:
    series = study.t1.series
    rois = []
    band = f"band {s.inset_mm:g}-{s.inset_mm + s.height_mm:g} mm from the endplate"
    for b in bodies:
        plane = ImagePlane.from_series(series, b.slice_index)
        src = (f"modic propose: T1 slice {b.slice_index + 1}, confidence {b.confidence:.2f}"
               + ("" if sacrum else ", levels uncertain (no sacrum found)"))
        parts: list[tuple[Any, NDArray[np.bool_] | None, str]] = [
            (RoiLabel.for_body(b.name), b.mask, "vertebral body outline")]
        reg = b.regions
        if reg is not None:
            parts.append((RoiLabel.for_endplate(b.name, "superior"), reg.superior, band))
            if b.name != "S1":
                parts.append((RoiLabel.for_endplate(b.name, "inferior"), reg.inferior, band))
            parts.append((RoiLabel.for_reference(b.name), reg.reference, "central marrow"))
        for label, mask, what in parts:
            if mask is None or not mask.any():
                continue
            comment = f"{what}, proposed on T1 slice {b.slice_index + 1}"
            if b.notes:
                comment += "; " + "; ".join(b.notes)
            rois.append(ROI(label, shape_of(mask), plane, author=author, origin="proposed",
                            source=src, comment=comment))
    desc = "proposed by modic" + (": " + "; ".join(warnings) if warnings else "")
    return Annotations(rois, study_instance_uid=study.study.study_uid,
                       frame_of_reference_uid=series.frame_of_reference_uid, description=desc)


def propose_rois(study: Any, **kwargs: Any) -> Any:
    """The proposed ROIs of :func:`propose` (an :class:`~modic.annotations.Annotations`).

    Keyword arguments are those of :func:`propose`; warnings are logged and written into
    the document's description.
    """
    p = propose(study, **kwargs)
    for w in p.warnings:
        logger.warning("%s: %s", _study_name(study), w)
    return p.annotations


# ----------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------
def relabel(annotations: Any, shift: int, *, only_proposed: bool = True) -> Any:
    """Shift the vertebra of every (proposed) ROI by ``shift`` levels.

    ``shift=+1`` moves every label one vertebra down (L4 -> L5, L5 -> S1): what a user does
    after seeing that the body called L4 is the last lumbar one. ROIs that would leave the
    named range (beyond S1, or S1's inferior endplate, which faces no disc) are dropped.

    Parameters
    ----------
    annotations : Annotations
    shift : int
    only_proposed : bool
        Leave ROIs a person drew (any origin but "proposed") as they are (default).

    Returns
    -------
    Annotations
        A new document; ``annotations`` is not modified.
    """
    import dataclasses

    from .annotations import VERTEBRAE, Annotations, RoiLabel

    if not isinstance(shift, int) or isinstance(shift, bool):
        raise ValueError(f"shift must be an integer, got {shift!r}")
    rois = []
    for roi in annotations.rois:
        if only_proposed and roi.origin != "proposed" or shift == 0:
            rois.append(roi)
            continue
        v = roi.label.vertebra
        k = LEVEL_ORDER.index(v) + shift if v in LEVEL_ORDER else -1
        if not 0 <= k < len(LEVEL_ORDER) or LEVEL_ORDER[k] not in VERTEBRAE:
            continue
        nv = LEVEL_ORDER[k]
        if roi.label.kind == "endplate":
            if nv == "S1" and str(roi.label.endplate) == "inferior":
                continue
            label = RoiLabel.for_endplate(nv, roi.label.endplate)
        else:
            label = dataclasses.replace(roi.label, vertebra=nv)
        rois.append(dataclasses.replace(roi, label=label))
    return Annotations(rois, study_instance_uid=annotations.study_instance_uid,
                       frame_of_reference_uid=annotations.frame_of_reference_uid,
                       description=annotations.description, created=annotations.created,
                       tool=dict(annotations.tool))


def merge_proposed(existing: Any, proposed: Any, *, replace_proposed: bool = True) -> tuple[Any, Any]:
    """Add proposed ROIs to an annotation document, never replacing what a person drew.

    Every ROI of ``existing`` that is not proposed is kept. A proposed ROI is added where
    ``existing`` has no ROI of the same label; where it has a drawn (or derived, imported)
    one, the proposed one is left out; an earlier proposed one is replaced
    (``replace_proposed``) or kept.

    Returns
    -------
    merged : Annotations
    report : modic.labelmap.MergeReport
        ``added``, ``replaced``, ``kept_drawn`` (left out where a person's ROI exists).
    """
    from .annotations import Annotations
    from .labelmap import MergeReport

    report = MergeReport()
    if existing is None:
        merged = Annotations([], study_instance_uid=proposed.study_instance_uid,
                             frame_of_reference_uid=proposed.frame_of_reference_uid,
                             description=proposed.description)
    else:
        merged = Annotations(list(existing.rois), study_instance_uid=existing.study_instance_uid,
                             frame_of_reference_uid=existing.frame_of_reference_uid
                             or proposed.frame_of_reference_uid,
                             description=existing.description, created=existing.created,
                             modified=existing.modified, tool=dict(existing.tool))
    for roi in proposed.rois:
        same = [r for r in merged.rois if r.label == roi.label]
        text = str(roi.label)
        if any(r.origin != "proposed" for r in same):
            report.kept_drawn.append(text)
            continue
        if same and not replace_proposed:
            report.kept_derived.append(text)
            continue
        for r in same:
            merged.remove(r.id)
        (report.replaced if same else report.added).append(text)
        merged.add(roi)
    return merged, report
