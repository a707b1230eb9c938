"""modic.propose: vertebrae found, named and outlined in the image; ROIs proposed from them.

Checked against the phantom's exact anatomy (modic.phantom.truth): every proposed body
lies in the truth body of the same name, its outline overlaps the truth body, its bands lie
next to the truth endplates and its reference inside the truth marrow. The CLI and the
batch runner are run in subprocesses.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicomfactory import write_series

import modic
from modic.annotations import (
    ROI,
    Annotations,
    Rectangle,
    RoiLabel,
    read_annotations,
    write_annotations,
)
from modic.data import sample_study_path, sample_truth_path
from modic.phantom import GroundTruth, SeriesSpec, default_study_spec, small_series, write_study
from modic.phantom.truth import anatomy_of
from modic.propose import ProposalError, merge_proposed, propose, relabel

SAMPLES = ["siemens_15T_type1_type2", "ge_3T_type3_mixed12", "philips_15T_mixed23_enhanced",
           "siemens_3T_rle_t2fs"]
LEVELS = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]


def _truth_body(anat, name: str, study, k: int) -> np.ndarray:
    """Pixel centres of T1 slice k inside the truth body (cortex included)."""
    g = study.t1.geometry
    rr, cc = np.mgrid[0:g.rows, 0:g.columns]
    pts = g.index_to_patient(np.stack([np.full(rr.size, k), rr.ravel(), cc.ravel()], axis=1))
    v = anat.vertebra(name)
    q = v.to_local(pts)
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    inside = (np.abs(z) <= v.height / 2) & (v.section(x, y, z) <= 1.0)
    inside &= (z <= v.z_surface(x, y, True)) & (z >= v.z_surface(x, y, False))
    return inside.reshape(g.rows, g.columns)


def _points(study, k: int, mask: np.ndarray) -> np.ndarray:
    r, c = np.nonzero(mask)
    return study.t1.geometry.index_to_patient(np.stack([np.full(r.size, k), r, c], axis=1))


class Case:
    def __init__(self, study_dir: Path, truth_path: Path) -> None:
        self.study_dir = study_dir
        self.study = modic.load_study(study_dir)
        self.truth = GroundTruth.from_json(truth_path)
        self.anat = anatomy_of(self.truth)
        self.proposal = propose(self.study, author="tester")


KNOWN_MISSES = {
    # the type 3 change is a layer 1-2 pixels thick at L3's inferior endplate, as dark on T1
    # as the cortex: it is left out of the outline and the band lies just above it (19 % of
    # the band in the change; docs/propose.md)
    "ge_3T_type3_mixed12": "T1-dark change at an endplate left out of the outline",
}


@pytest.fixture(scope="module", params=SAMPLES)
def sample_case(request) -> Case:
    return Case(sample_study_path(request.param), sample_truth_path(request.param))


@pytest.fixture(scope="module")
def tilted_case(tmp_path_factory) -> Case:
    """A study scanned with the slices tilted 6 degrees and shifted off the spine's centre,
    on a coarse grid (partial field of view at the top)."""
    series = small_series(stir=False)
    for i, s in enumerate(series):
        if s.plane == "sagittal":
            series[i] = SeriesSpec(**{**s.__dict__, "tilt_deg": (6.0, 2.0),
                                      "center_offset": (3.0, 5.0, -25.0)})
    spec = default_study_spec(4242, vendor="philips", field_strength=3.0, series=series,
                              supersample=(2, 2, 2))
    out = tmp_path_factory.mktemp("tilted")
    write_study(spec, out / "study", truth_path=out / "study.truth.json")
    return Case(out / "study", out / "study.truth.json")


@pytest.fixture(scope="module")
def scoliotic_case(tmp_path_factory) -> Case:
    """A lumbar spine bowed 15 degrees to the side (modic.phantom scoliosis_deg)."""
    spec = default_study_spec(5150, vendor="ge", field_strength=1.5, series=small_series(stir=False),
                              scoliosis_deg=15.0, supersample=(2, 2, 2))
    out = tmp_path_factory.mktemp("scoliotic")
    write_study(spec, out / "study", truth_path=out / "study.truth.json")
    return Case(out / "study", out / "study.truth.json")


def _check_case(case: Case, levels: list[str]) -> None:
    p = case.proposal
    assert p.levels == levels, p.warnings
    for b in p.bodies:
        tm = _truth_body(case.anat, b.name, case.study, b.slice_index)
        centre = case.anat.vertebra(b.name).to_local(b.centre[None])[0]
        v = case.anat.vertebra(b.name)
        assert abs(centre[2]) < v.height / 2, f"{b.name} centre {centre} outside the truth body"
        if any("outline doubtful" in n for n in b.notes):  # flagged: to be checked by the user
            assert b.confidence < 0.5
            continue
        dice = 2 * float((tm & b.mask).sum()) / float(tm.sum() + b.mask.sum())
        assert dice >= 0.7, f"{b.name}: Dice {dice:.2f}"
        reg = b.regions
        if reg is None:  # only a body cut by the edge of the image, and saying so
            assert any("edge of the image" in n for n in b.notes), b.notes
            assert b.mask[0].any() or b.mask[-1].any() or b.mask[:, 0].any() or b.mask[:, -1].any()
            continue
        # bands next to the truth endplates: depth under the truth endplate surface
        for ep in ("superior", "inferior"):
            band = getattr(reg, ep)
            if b.name == "S1" and ep == "inferior":
                continue
            assert band is not None and band.any()
            if case.truth.endplate(b.name, ep).modic_type != "0":
                # at a change on this slice the outline may stop at the changed marrow's edge;
                # what counts is that the band measures the change
                body_pts = _points(case.study, b.slice_index, tm)
                if (case.anat.lesion_labels(body_pts) > 0).any():
                    changed = case.anat.lesion_labels(_points(case.study, b.slice_index, band)) > 0
                    assert changed.mean() >= 0.2, f"{b.name} {ep}: band {changed.mean():.0%} in the change"
                    continue
            q = v.to_local(_points(case.study, b.slice_index, band))
            q = q[np.abs(q[:, 1]) < 0.3 * v.depth]  # the central 60 %: the rims are rounded
            px = max(case.study.t1.geometry.pixel_spacing)
            sup = ep == "superior"
            surface = v.z_surface(q[:, 0], q[:, 1], sup)
            depth = (surface - q[:, 2]) if sup else (q[:, 2] - surface)  # mm under the surface
            # hardly into the disc: the steep S1 endplate crosses 1.5 mm pixels in steps
            assert depth.min() > -3.0, f"{b.name} {ep}: band reaches {depth.min():.1f} mm into the disc"
            assert np.percentile(depth, 5) > -max(2.0, 1.8 * px), f"{b.name} {ep}: band in the disc"
            assert depth.max() < 1.0 + 5.0 + 3.0, f"{b.name} {ep}: band {depth.max():.1f} mm deep"
            # the band's middle 3.5 mm under the surface (inset 1 + half of 5), within a pixel
            # (S1's steep endplate, tilted by the sacral slope, crosses the pixels obliquely)
            tol = max(1.5, 1.25 * px) if b.name != "S1" else 2.5
            assert np.median(depth) == pytest.approx(1.0 + 2.5, abs=tol), f"{b.name} {ep}"
        # reference in the body's marrow, away from both endplates
        if reg.reference is not None:
            q = case.anat.vertebra(b.name).to_local(_points(case.study, b.slice_index, reg.reference))
            assert np.all(np.abs(q[:, 2]) < v.height / 2 - 3.0)
            assert np.all(v.section(q[:, 0], q[:, 1], q[:, 2]) < 1.0)


def test_sample_studies_levels_outlines_bands(sample_case: Case, request) -> None:
    reason = KNOWN_MISSES.get(sample_case.study_dir.name)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    _check_case(sample_case, LEVELS)


def test_sample_studies_levels(sample_case: Case) -> None:
    """Every sample study's levels, the known misses included."""
    assert sample_case.proposal.levels == LEVELS
    for b in sample_case.proposal.bodies:
        q = sample_case.anat.vertebra(b.name).to_local(b.centre[None])[0]
        assert abs(q[2]) < sample_case.anat.vertebra(b.name).height / 2, b.name


def test_scoliotic_study(scoliotic_case: Case) -> None:
    _check_case(scoliotic_case, LEVELS)
    # the bodies are not all outlined on one slice: the column leaves the midline
    assert len({b.slice_index for b in scoliotic_case.proposal.bodies}) >= 2


def _slices_off_centre(case: Case, s1: bool = False) -> dict[str, float]:
    """For each proposed body T12-L5 (and S1), how many slices its outline's slice lies
    from the truth body's centre (a reader draws a body's ROIs on its midline)."""
    g = case.study.t1.geometry
    out = {}
    for b in case.proposal.bodies:
        if s1 or b.name != "S1":
            k = g.patient_to_index(np.asarray(case.truth.vertebra(b.name).center)[None])[0, 0]
            out[b.name] = abs(b.slice_index - float(k))
    return out


@pytest.mark.parametrize("name", ["ge_3T_type3_mixed12", "philips_15T_mixed23_enhanced",
                                  "siemens_3T_rle_t2fs"])
def test_bodies_outlined_on_their_middle(name: str) -> None:
    """Each body is outlined on the slice through its middle or the next one (4 mm slices),
    not wherever the canal test happens to score lowest. (The fourth sample's L4 holds a
    type 1 change that breaks its marrow up on the central slices.)"""
    case = Case(sample_study_path(name), sample_truth_path(name))
    off = _slices_off_centre(case, s1=True)
    assert len(off) == 7
    assert max(off.values()) < 1.5, off  # the nearest slice or the next


def test_scoliotic_bodies_on_their_middle(scoliotic_case: Case) -> None:
    """In a scoliosis each lumbar body is outlined on its own middle (slices 2-6 of 4.4 mm
    here); S1, 2 slices beyond L5, stays where the column's course found it."""
    off = _slices_off_centre(scoliotic_case)
    assert len(off) == 6
    assert max(off.values()) < 1.5, off  # the nearest slice or the next


def test_a_reference_holding_part_of_a_change_is_moved_into_normal_marrow() -> None:
    """The sample ge_3T_type3_mixed12's S1 change (mixed 1/2 at its superior endplate)
    reaches into the middle of the body, where the central reference lies: that reference
    reads off the other vertebrae's level on T1, and is moved towards the other endplate,
    into marrow the change does not reach. The other bodies keep their central ones."""
    from modic.bands import endplate_bands

    name = "ge_3T_type3_mixed12"
    case = Case(sample_study_path(name), sample_truth_path(name))
    s1 = next(b for b in case.proposal.bodies if b.name == "S1")
    assert any(n.startswith("reference moved toward the inferior endplate") for n in s1.notes)
    sp = tuple(case.study.t1.geometry.pixel_spacing)
    head = modic.bands.image_direction((0.0, 0.0, 1.0), case.study.t1.geometry.orientation)
    central = endplate_bands(s1.mask, sp, head).reference
    assert central is not None and s1.regions is not None and s1.regions.reference is not None
    changed = case.anat.lesion_labels(_points(case.study, s1.slice_index, central)) > 0
    assert changed.mean() > 0.2  # the central one holds the change
    moved = case.anat.lesion_labels(_points(case.study, s1.slice_index, s1.regions.reference)) > 0
    assert not moved.any()
    # inside the body, away from both endplates (the anatomy checks' rule)
    q = case.anat.vertebra("S1").to_local(_points(case.study, s1.slice_index, s1.regions.reference))
    assert np.all(np.abs(q[:, 2]) < case.anat.vertebra("S1").height / 2 - 3.0)
    others = [b for b in case.proposal.bodies if b.name != "S1"]
    assert not any(n.startswith("reference moved") for b in others for n in b.notes)


def test_tilted_partial_study_levels(tilted_case: Case) -> None:
    """Scanned tilted 6 degrees and moved 25 mm to the feet: the levels are counted right
    (they were one off before S1 was taken as the most tilted endplate)."""
    levels = tilted_case.proposal.levels
    assert levels[-4:] == ["L3", "L4", "L5", "S1"]
    for b in tilted_case.proposal.bodies:
        q = tilted_case.anat.vertebra(b.name).to_local(b.centre[None])[0]
        assert abs(q[2]) < tilted_case.anat.vertebra(b.name).height / 2, b.name


def test_tilted_partial_study(tilted_case: Case) -> None:
    # the field of view is moved 25 mm to the feet: T12 may be cut at the top
    levels = tilted_case.proposal.levels
    assert levels[-4:] == ["L3", "L4", "L5", "S1"]
    _check_case(tilted_case, levels)


# ----------------------------------------------------------------------------------------
# S1 from the chain of bodies: drawn rectangles, so every angle and gap is known
# ----------------------------------------------------------------------------------------
_HEAD = np.array([-1.0, 0.0])  # (d_row, d_col): the head is up the image


def _turned(v: np.ndarray, deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([v[0] * np.cos(a) - v[1] * np.sin(a), v[0] * np.sin(a) + v[1] * np.cos(a)])


def _column(tilts: list[float], heights: list[float], widths: list[float], discs: list[float]):
    """Bodies T12 ... drawn as rectangles on 1 mm pixels down a lordotic column: body i
    turned by ``tilts[i]`` degrees from the head direction, ``heights[i]`` x ``widths[i]``
    mm, ``discs[i]`` mm of disc below it on the line between the centres."""
    from skimage.draw import polygon

    from modic.propose import _Piece

    shape = (420, 300)
    pieces = []
    centre = np.array([40.0, 120.0])
    for i, (t, h, w) in enumerate(zip(tilts, heights, widths, strict=True)):
        up = _turned(_HEAD, t)
        across = np.array([-up[1], up[0]])
        corners = [centre + a * h / 2 * up + b * w / 2 * across
                   for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
        rr, cc = polygon([c[0] for c in corners], [c[1] for c in corners], shape)
        mask = np.zeros(shape, dtype=bool)
        mask[rr, cc] = True
        pieces.append(_Piece(mask, float(mask.sum()), np.array([rr.mean(), cc.mean()]), 1.0,
                             (int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1),
                             1.0, spacing=(1.0, 1.0)))
        if i + 1 < len(tilts):
            down = -_turned(_HEAD, 0.5 * (t + tilts[i + 1]))
            centre = centre + down * (h / 2 + discs[i] + heights[i + 1] / 2)
    return pieces


def _s1_of(pieces):
    from modic.propose import _find_s1, _gap_mm

    gaps = [_gap_mm(pieces[i], pieces[i + 1], (1.0, 1.0)) for i in range(len(pieces) - 1)]
    return _find_s1(pieces, gaps, (1.0, 1.0), _HEAD, list(range(len(pieces))))


#: T12 ... S2: heights and widths (mm) after the phantom's nominal bodies; S2 is smaller.
_HEIGHTS = [24.0, 25.0, 26.0, 27.0, 28.0, 27.0, 28.0, 20.0]
_WIDTHS = [38.0, 40.0, 42.0, 44.0, 46.0, 46.0, 46.0, 34.0]


def test_s1_where_the_sacral_slope_and_the_discs_agree() -> None:
    pieces = _column([0, 2, 5, 9, 14, 24, 40, 44], _HEIGHTS, _WIDTHS, [10, 10, 11, 11, 11, 11, 2])
    s1, sacrum, conf, notes, evidence = _s1_of(pieces)
    assert (s1, sacrum, evidence, notes) == (6, True, "both", [])
    assert conf >= 0.85


def test_a_thin_l5_s1_disc_is_not_taken_for_the_sacral_remnant() -> None:
    """A degenerated L5/S1 disc (2.5 mm) looks like the remnant below S1, and L5 turns more
    against L4 than S1 against L5: S1 is still the most tilted endplate, with the small S2
    below it, and the conflict is said; never L5 named S1 with confidence."""
    pieces = _column([0, 2, 5, 9, 12, 30, 40, 42], _HEIGHTS, _WIDTHS, [10, 10, 11, 11, 11, 3.5, 2])
    s1, sacrum, conf, notes, evidence = _s1_of(pieces)
    assert s1 == 6
    assert evidence == "conflict" and conf <= 0.6
    assert len(notes) == 1 and "check the levels" in notes[0] and "1 level(s) higher" in notes[0]


def test_the_column_is_followed_off_the_midline_to_the_sacrum() -> None:
    """A scoliosis takes L5, S1 and S2 off the midline slice: the midline chain ends on L5,
    which turns enough to be taken for S1 by the slope alone. Followed where the column's
    course across the slices leads (L5's middle is 1.5 slices past L4's), the chain of the
    slices holding S1 gives it, with the remnant and S2 below, and S1 is named by both
    pieces of evidence; a piece below L5 on the nearest slice on the other side (a sacral
    ala beside a displaced S1) is not taken."""
    import dataclasses

    from modic.propose import _Chain, _extend_below, _find_s1, _gap_mm

    bodies = _column([0, 2, 5, 9, 14, 27, 42, 46], _HEIGHTS, _WIDTHS, [10, 10, 11, 11, 11, 11, 2])
    middle = [4.0, 4.0, 4.0, 4.0, 4.0, 5.5, 7.0, 7.5]  # each body's middle slice
    n_slices, mid = 11, 4

    def on(k: int, p):
        return dataclasses.replace(p, slice_index=k, extent=None)

    chains = []
    for k in range(n_slices):
        pcs = [on(k, p) for p, m in zip(bodies, middle, strict=True) if abs(k - m) <= 2.0]
        if k == 3:  # beside L5, the other way: an ala-like piece where S1 would be
            pcs = [on(3, p) for p in bodies[:6]] + [on(3, bodies[6])]
        chains.append(_Chain(pcs, 1.0, 1.0, k, np.zeros((420, 300), np.float32), list(pcs))
                      if len(pcs) >= 2 else None)
    midline = chains[mid].pieces
    assert len(midline) == 6  # T12 ... L5
    sp = (1.0, 1.0)

    def s1(pieces):
        gaps = [_gap_mm(pieces[i], pieces[i + 1], sp) for i in range(len(pieces) - 1)]
        return _find_s1(pieces, gaps, sp, _HEAD, list(range(len(pieces))))

    assert s1(midline)[0] == 5 and s1(midline)[4] != "both"  # L5 would be taken for S1
    more, positions = _extend_below(midline, list(range(6)), chains)
    assert positions == list(range(8))
    assert [p.slice_index for p in more[6:]] != [3, 3]
    assert min(p.slice_index for p in more[6:]) >= 5
    np.testing.assert_allclose(more[6].centre, bodies[6].centre)
    np.testing.assert_allclose(more[7].centre, bodies[7].centre)
    i, sacrum, conf, notes, evidence = s1(more)
    assert (i, evidence, notes) == (6, "both", [])


def test_a_body_cut_by_the_image_edge_counts_a_missed_body_next_to_it() -> None:
    """The top of the image cuts T12 (9 of its 24 mm show) and the chain missed L1: the
    step from T12's visible middle to L2 is short of two pitches by half the cut-off
    height, and taken at face value T12 falls half way and is dropped with the missed body
    (the levels above L2 lost). The cut piece's centre moved out to where the whole body's
    would be, the step is two pitches: T12 is kept and L1 counted as missed."""
    import dataclasses

    from modic.propose import _positions

    rows = 44  # image rows cut off at the top
    cropped = []
    for p in _column([0, 2, 5, 9, 14, 24, 40], _HEIGHTS[:7], _WIDTHS[:7], [10, 10, 11, 11, 11, 11]):
        mask = p.mask[rows:]
        rr, cc = np.nonzero(mask)
        cropped.append(dataclasses.replace(
            p, mask=mask, area=float(mask.sum()), centre=np.array([rr.mean(), cc.mean()]),
            bbox=(int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1), extent=None))
    assert cropped[0].bbox[0] == 0 and 8 <= cropped[0].bbox[2] <= 10  # T12: 9 mm of it
    pieces = [cropped[0], *cropped[2:]]  # L1 missed
    kept, positions, _ = _positions(pieces, np.full(pieces[0].mask.shape, 100.0, np.float32))
    assert len(kept) == 6 and kept[0] is pieces[0]
    assert positions == [0, 2, 3, 4, 5, 6]


# ----------------------------------------------------------------------------------------
# outlines on drawn slices: bodies, discs, endplates and fat of known place (1 mm pixels)
# ----------------------------------------------------------------------------------------
_TOP, _H, _DISC, _LEFT, _W = 10, 24, 9, 30, 40  # first body's top row, heights, first column


def _drawn_column(n: int = 5, marrow: float = 1000.0, disc: float = 650.0):
    """A sagittal slice of ``n`` bodies (``_H`` x ``_W`` mm marrow, head up, anterior left)
    walled by a 1 mm cortex (400) with discs (``disc``) between them, in soft tissue (300),
    and each body's marrow rectangle ``(r0, r1, c0, c1)``."""
    img = np.full((_TOP + n * (_H + _DISC) + 20, _LEFT + _W + 40), 300.0, np.float32)
    boxes = []
    for i in range(n):
        r0 = _TOP + i * (_H + _DISC)
        img[r0 - 1:r0 + _H + 1, _LEFT - 1:_LEFT + _W + 1] = 400.0  # cortex, bony endplates
        img[r0:r0 + _H, _LEFT:_LEFT + _W] = marrow
        if i + 1 < n:
            img[r0 + _H + 1:r0 + _H + _DISC - 1, _LEFT - 1:_LEFT + _W + 1] = disc
        boxes.append((r0, r0 + _H, _LEFT, _LEFT + _W))
    return img, boxes


def _piece_of(mask: np.ndarray):
    from modic.propose import _Piece

    rr, cc = np.nonzero(mask)
    return _Piece(mask, float(mask.sum()), np.array([rr.mean(), cc.mean()]), 0.9,
                  (int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1), 800.0,
                  spacing=(1.0, 1.0))


def _box_mask(shape, box) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[box[0]:box[1], box[2]:box[3]] = True
    return m


def _outlines_of(img: np.ndarray, pieces):
    """The outlines of a drawn column as propose() makes them: each piece refined against
    its neighbours (``_outline``), then outline or core by the neighbours' heights."""
    from modic.propose import CORTEX_MM, _dilate, _outline, _smooth, _trim_leaks

    sm = _smooth(img)
    outlines, cores = [], []
    for j, p in enumerate(pieces):
        others = np.zeros_like(p.mask)
        for q in pieces[max(0, j - 1):j] + pieces[j + 1:j + 2]:
            others |= _dilate(q.mask, CORTEX_MM + 0.5, (1.0, 1.0))
        full, core = _outline(p, sm, p.level, others & ~p.mask, (1.0, 1.0), np.array([1.0, 0.0]))
        outlines.append((f"L{j + 1}", 0, full, 1.0, []))
        cores.append(core)
    return _trim_leaks(outlines, cores, (1.0, 1.0))


def test_an_outline_that_ran_into_a_disc_is_trimmed_to_its_marrow_core() -> None:
    """A marrow piece found at a low trial level runs through an 8 mm gap in L3's inferior
    endplate into the disc below (T1 0.65 of the marrow's): its outline is a disc's height
    too tall. Its core (the marrow above the half-maximum edge) is as high as the
    neighbours, so it is taken, and said."""
    img, boxes = _drawn_column()
    r0, r1, c0, c1 = boxes[2]
    img[r1:r1 + 1, c0 + 16:c0 + 24] = 1000.0  # the gap in the bony endplate
    masks = [_box_mask(img.shape, b) for b in boxes]
    masks[2][r1:r1 + 7, c0 + 6:c1 - 6] = True  # the piece in the disc below
    pieces = [_piece_of(m) for m in masks]
    out = _outlines_of(img, pieces)
    for (name, _k, mask, _c, _notes), (b0, b1, _, _) in zip(out, boxes, strict=True):
        # the marrow and its 1 mm bony endplates; under the 8 mm gap the blurred edge pokes
        # 1-3 mm out (the piece ran 7 mm into the disc across 28 mm: about 200 pixels)
        beyond = mask[:b0 - 1].sum() + mask[b1 + 1:].sum()
        assert beyond <= 40, (name, beyond)
    assert any("trimmed to its marrow core" in n for n in out[2][4])
    assert not any(out[j][4] for j in (0, 1, 3, 4))


def test_a_t1_dark_change_at_an_endplate_stays_in_the_outline() -> None:
    """A T1-dark change over L3's whole inferior endplate (6 mm, 0.55 of the marrow) is in
    its marrow piece; the core above the half-maximum edge loses it and is 6 mm short of
    the neighbours: the outline keeps the change (its band is to measure it)."""
    img, boxes = _drawn_column()
    r0, r1, c0, c1 = boxes[2]
    img[r1 - 6:r1, c0:c1] = 550.0
    pieces = [_piece_of(_box_mask(img.shape, b)) for b in boxes]
    out = _outlines_of(img, pieces)
    mask = out[2][2]
    assert mask[r1 - 6:r1, c0 + 2:c1 - 2].all()
    assert not out[2][4]


def test_epidural_fat_behind_the_posterior_wall_is_left_out() -> None:
    """Behind L3's posterior wall (a 1 mm cortex that the smoothing leaves at 0.76 of the
    marrow, above the half-maximum edge) lies a 3 mm strip of epidural fat, brighter than
    the marrow, which the marrow band joined to the body around its lower corner: the
    outline stops at the wall. Thin
    marrow beside a mixed change at the endplate (3 mm pillars, within the body's
    width) stays."""
    from modic.propose import _drop_thin

    img, boxes = _drawn_column()
    r0, r1, c0, c1 = boxes[2]
    img[r0 - 1:r1 + 1, c1:c1 + 1] = 400.0  # the posterior wall
    img[r0 - 4:r1 + 4, c1 + 1:c1 + 4] = 1250.0  # epidural fat
    masks = [_box_mask(img.shape, b) for b in boxes]
    masks[2][r0:r1 + 2, c1 + 1:c1 + 4] = True  # the fat in the piece ...
    masks[2][r1 - 2:r1 + 2, c1 - 2:c1 + 4] = True  # ... joined round the corner
    pieces = [_piece_of(m) for m in masks]
    mask = _outlines_of(img, pieces)[2][2]
    cols = np.flatnonzero(mask[r0 + 2:r1 - 2].any(axis=0))
    assert cols.max() <= c1 + 1, cols.max()  # the marrow and its cortex, not the fat
    assert mask[r0 + 2:r1 - 2, c1 - 1].all()
    # a mixed change in the middle of the inferior endplate leaves 3 mm of marrow each side
    piece = _box_mask(img.shape, boxes[2])
    piece[r1 - 8:r1, c0 + 3:c1 - 3] = False
    kept = _drop_thin(piece, (1.0, 1.0), np.array([1.0, 0.0]))
    assert kept[r1 - 8:r1, c0:c0 + 3].all() and kept[r1 - 8:r1, c1 - 3:c1].all()


def test_the_cortical_shell_of_s1_cut_out_of_the_sacrum() -> None:
    """S1 cut out of the sacral marrow is clipped to its piece and the cortical shell: on
    1.25 mm pixels the ring of pixels next to the marrow (centres 1.25 mm from the outer
    marrow centres, so 0.6 mm beyond the marrow's edge) is in it, the next ring is not."""
    from modic.propose import _with_shell

    marrow = np.zeros((40, 40), dtype=bool)
    marrow[10:30, 10:30] = True
    shell = _with_shell(marrow, (1.25, 1.25))
    assert shell[9, 10:30].all() and shell[30, 10:30].all() and shell[10:30, 9].all()
    assert not shell[8].any() and not shell[:, 31].any()


def test_a_body_whose_own_slice_shows_no_body_is_outlined_where_the_chain_found_it() -> None:
    """A scoliosis: the slice where the canal lies behind L3 (two slices off the midline)
    shows, near L3's centre, a tall narrow bright strip (fat beside the body), no
    vertebral body. Its outline takes no endplate bands (its axis is across the column's),
    so L3 is outlined on the midline slice the chain found it on, as a body; where the
    other slice shows the body itself, it is outlined there."""
    import dataclasses

    from skimage.draw import polygon

    from modic.bands import BandSettings
    from modic.propose import _Chain, _outline_body, _Piece

    shape, sp = (200, 160), (1.0, 1.0)
    head = np.array([-1.0, 0.0])

    def piece(mask: np.ndarray, k: int) -> _Piece:
        rr, cc = np.nonzero(mask)
        return _Piece(mask, float(mask.sum()), np.array([rr.mean(), cc.mean()]), 0.95,
                      (int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1),
                      500.0, spacing=sp, value=1000.0, slice_index=k)

    def box(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        m = np.zeros(shape, bool)
        m[r0:r1, c0:c1] = True
        return m

    bodies = [box(30, 55, 60, 100), box(66, 92, 60, 100), box(103, 129, 60, 100)]  # L2, L3, L4
    midline = np.full(shape, 200.0, np.float32)
    for m in bodies:
        midline[m] = 1000.0
    lumbar = [piece(m, -1) for m in bodies]  # the midline chain's own pieces
    # 12 x 34 mm, its long side turned 15 degrees from the column: no body
    strip = np.zeros(shape, bool)
    up = _turned(_HEAD, 75.0)
    across = np.array([up[1], -up[0]])
    corners = [np.array([79.0, 80.0]) + a * 6.0 * up + b * 17.0 * across
               for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    rr, cc = polygon([c[0] for c in corners], [c[1] for c in corners], shape)
    strip[rr, cc] = True
    lateral = np.full(shape, 200.0, np.float32)
    lateral[strip] = 1000.0
    q = piece(strip, 0)
    mid = 2
    chains: list = [None] * 5
    chains[mid] = _Chain(list(lumbar), 1.0, 500.0, mid, midline, list(lumbar))
    chains[0] = _Chain([q], 0.2, 500.0, 0, lateral, [q])
    column = -head  # the bands' axis of the bodies above: along the column
    args = (1, lumbar, lumbar, 2, "L3", chains, float(np.median([p.area for p in lumbar])), sp, head,
            BandSettings(), column)

    k, mask, _, _, _ = _outline_body([(0, q, lateral, 500.0)], mid, *args)
    assert k == mid
    inside = mask & bodies[1]
    assert inside.sum() >= 0.9 * bodies[1].sum() and (mask & ~bodies[1]).sum() <= 0.25 * bodies[1].sum()

    # the body itself on the other slice: outlined there
    shifted = box(67, 93, 61, 101)
    other = np.full(shape, 200.0, np.float32)
    other[shifted] = 1000.0
    p1 = dataclasses.replace(piece(shifted, 1))
    chains[1] = _Chain([p1], 0.9, 500.0, 1, other, [p1])
    k, mask, _, _, _ = _outline_body([(1, p1, other, 500.0)], mid, *args)
    assert k == 1 and (mask & shifted).sum() >= 0.9 * shifted.sum()


def test_a_body_cut_by_the_edge_and_joined_along_it_is_left_out() -> None:
    """A body cut by the top of the image shows at most its whole section: a T12 outline
    that ran along the edge into other tissue (here 2.8x a body's area) is no body and is
    left out, while a body the edge cuts in half, and a whole body away from the edge of
    twice the median area (flagged elsewhere, not left out), are kept."""
    from modic.propose import _joined_along_edge

    shape, sp = (200, 160), (1.0, 1.0)
    med_area = 40.0 * 26.0  # mm2: a lumbar body's sagittal section

    def box(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        m = np.zeros(shape, bool)
        m[r0:r1, c0:c1] = True
        return m

    half = box(0, 13, 60, 100)  # the lower half of T12
    assert _joined_along_edge(half, sp, med_area) is None
    joined = half | box(0, 20, 0, 60) | box(0, 20, 100, 160)  # and the tissue along the edge
    ratio = _joined_along_edge(joined, sp, med_area)
    assert ratio == pytest.approx((13 * 40 + 20 * 120) / med_area)  # 2.8x
    big = box(60, 112, 60, 100)  # twice a body, off the edge
    assert _joined_along_edge(big, sp, med_area) is None
    assert _joined_along_edge(half, (2.0, 2.0), med_area) is not None  # 2 mm pixels: 4x the area


def test_rois_are_proposed_and_complete(sample_case: Case) -> None:
    ann = sample_case.proposal.annotations
    assert {r.origin for r in ann.rois} == {"proposed"}
    assert {r.author for r in ann.rois} == {"tester"}
    labels = {str(r.label) for r in ann.rois}
    cut = {b.name for b in sample_case.proposal.bodies if b.regions is None}
    assert cut <= {"T12"}  # only a body at the top edge of the image lacks its bands
    for v in LEVELS:
        assert f"{v} body" in labels
        if v in cut:
            assert any(w.startswith(f"{v}: cut by the edge") for w in sample_case.proposal.warnings)
            continue
        assert f"{v} superior" in labels
        assert (f"{v} inferior" in labels) == (v != "S1")
    assert len(ann.references()) >= 6
    assert all("modic propose" in r.source for r in ann.rois)
    # the document is valid and reads back
    assert Annotations.from_dict(ann.to_dict()).to_dict()["rois"] == ann.to_dict()["rois"]


def test_anchor_names_the_clicked_body() -> None:
    case_dir = sample_study_path("ge_3T_type3_mixed12")
    study = modic.load_study(case_dir)
    truth = GroundTruth.from_json(sample_truth_path("ge_3T_type3_mixed12"))
    # the user says the body that is really L5 is "L4" (a transitional spine read as 6 lumbar)
    p = propose(study, anchor=("L4", truth.vertebra("L5").center))
    anat = anatomy_of(truth)
    named = {b.name: b for b in p.bodies}
    q = anat.vertebra("L5").to_local(named["L4"].centre[None])[0]
    assert abs(q[2]) < anat.vertebra("L5").height / 2
    assert "S1" not in named or abs(anat.vertebra("S1").to_local(named["L5"].centre[None])[0][2]) < 15
    assert any("anchor" in w for w in p.warnings)
    with pytest.raises(ValueError, match="anchor level"):
        propose(study, anchor=("X9", truth.vertebra("L5").center))
    with pytest.raises(ValueError, match="click inside a vertebral body"):
        propose(study, anchor=("L5", np.array(truth.vertebra("L5").center) + [0, -80.0, 0]))


def _drawn(ann: Annotations, label: str) -> ROI:
    plane = ann.rois[0].image
    return ROI(RoiLabel.parse(label), Rectangle(10, 10, 20, 14), plane, author="reader")


def test_relabel_shifts_proposed_only() -> None:
    study = modic.load_study(sample_study_path("ge_3T_type3_mixed12"))
    ann = propose(study).annotations
    drawn = _drawn(ann, "L4 inferior")
    mixed = Annotations([*ann.rois, drawn], study_instance_uid=ann.study_instance_uid)
    down = relabel(mixed, +1)
    before = {r.id: str(r.label) for r in mixed.rois}
    after = {r.id: str(r.label) for r in down.rois}
    assert after[drawn.id] == "L4 inferior"
    for rid, text in after.items():
        if rid == drawn.id:
            continue
        old = before[rid].split()
        order = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
        assert text.split()[0] == order[order.index(old[0]) + 1]
    # L5 inferior would become S1 inferior (no disc below S1), the S1 ROIs leave the range
    assert not [t for t in after.values() if t == "S1 inferior"]
    assert "S1 superior" in after.values() and "S1 body" in after.values()
    back = relabel(down, -1)
    assert sorted(str(r.label) for r in back.rois if r.origin == "proposed") == sorted(
        t for rid, t in before.items() if rid != drawn.id and not t.startswith(("S1", "L5 inferior")))
    with pytest.raises(ValueError, match="shift"):
        relabel(ann, 1.5)  # type: ignore[arg-type]


def test_merge_keeps_drawn_rois() -> None:
    study = modic.load_study(sample_study_path("ge_3T_type3_mixed12"))
    ann = propose(study).annotations
    drawn = _drawn(ann, "L4 inferior")
    existing = Annotations([drawn], study_instance_uid=ann.study_instance_uid)
    merged, report = merge_proposed(existing, ann)
    l4 = [r for r in merged.rois if str(r.label) == "L4 inferior"]
    assert l4 == [drawn]
    assert report.kept_drawn == ["L4 inferior"]
    assert len(merged.rois) == len(ann.rois)  # every other proposed ROI added
    assert existing.rois == [drawn]  # not modified
    # proposing again replaces the earlier proposed ROIs, never the drawn one
    again, report2 = merge_proposed(merged, propose(study).annotations)
    assert [r for r in again.rois if str(r.label) == "L4 inferior"] == [drawn]
    assert len(again.rois) == len(merged.rois) and report2.replaced


def _noise_study(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    study_uid = "1.2.826.0.1.3680043.8.498.77"
    for number, (tr, te, desc) in enumerate(((500, 10, "t1_tse_sag"), (4000, 100, "t2_tse_sag")), 1):
        pix = rng.integers(0, 400, size=(9, 96, 96)).astype(np.uint16)
        write_series(folder / f"s{number}", pix, origin=(-16.0, -100.0, 100.0), pixel_spacing=(2.5, 2.5),
                     study_uid=study_uid, series_number=number,
                     header={"RepetitionTime": tr, "EchoTime": te, "SeriesDescription": desc,
                             "ScanningSequence": "SE"})
    return folder


def test_no_spine_in_view_is_a_clear_error(tmp_path: Path) -> None:
    study = modic.load_study(_noise_study(tmp_path / "noise"))
    with pytest.raises(ProposalError, match="no vertebral column found on the sagittal T1"):
        propose(study)


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modic", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def _copy_sample(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(sample_study_path(name), target)
    return target


def _listing(folder: Path) -> list[tuple[str, int]]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in files)


def test_cli_writes_beside_the_study_and_refuses_to_overwrite(tmp_path: Path) -> None:
    study = _copy_sample("ge_3T_type3_mixed12", tmp_path)
    inside = _listing(study)
    r = _run("propose", str(study))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "ge_3T_type3_mixed12.modic.json"
    ann = read_annotations(out)
    assert {x.origin for x in ann.rois} == {"proposed"}
    assert "T12" in r.stdout and "S1" in r.stdout and str(out) in r.stdout
    assert _listing(study) == inside  # nothing written into the study folder
    # a file with a drawn ROI is not overwritten without --merge
    drawn = _drawn(ann, "L3 superior")
    write_annotations(Annotations([drawn], study_instance_uid=ann.study_instance_uid), out)
    text = out.read_text()
    r = _run("propose", str(study))
    assert r.returncode == 1 and "--merge" in r.stderr
    assert out.read_text() == text
    r = _run("propose", str(study), "--merge", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["merge"]["kept_drawn"] == ["L3 superior"]
    assert [b["vertebra"] for b in doc["bodies"]] == LEVELS
    merged = read_annotations(out)
    assert [x for x in merged.rois if str(x.label) == "L3 superior"] == [drawn]
    assert len(merged.rois) == len(ann.rois)
    # -o FILE elsewhere, shifted labels, other band settings; never inside the study folder
    other = tmp_path / "other.modic.json"
    r = _run("propose", str(study), "-o", str(other), "--shift", "-1", "--band-height", "3")
    assert r.returncode == 0, r.stderr
    names = {str(x.label) for x in read_annotations(other).rois}
    assert "T11 superior" in names and "L5 superior" in names and "S1 superior" not in names
    r = _run("propose", str(study), "-o", str(study / "x.modic.json"))
    assert r.returncode == 1 and "inside the study folder" in r.stderr
    assert _listing(study) == inside


def test_cli_bad_input(tmp_path: Path) -> None:
    r = _run("propose", str(_noise_study(tmp_path / "noise")), "-o", str(tmp_path / "n.json"))
    assert r.returncode == 1
    assert "no vertebral column found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "n.json").exists()
    r = _run("propose", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such file or folder" in r.stderr


def test_batch_propose_classifies_unannotated_studies(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _copy_sample("siemens_15T_type1_type2", root)
    _copy_sample("ge_3T_type3_mixed12", root)
    shutil.copy(sample_study_path("ge_3T_type3_mixed12").with_suffix(".modic.json"), root)
    before = _listing(root)
    out = tmp_path / "out"
    r = _run("batch", str(root), "-o", str(out), "--propose", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert _listing(root) == before  # nothing written into the input
    assert (out / "proposed" / "siemens_15T_type1_type2.modic.json").is_file()
    import csv

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    origin = {(row["study"], row["roi_origin"]) for row in rows}
    summary = json.loads((out / "summary.json").read_text())
    (proposed_key,) = summary["proposed_studies"]
    assert {o for k, o in origin if k == proposed_key} == {"proposed"}
    assert {o for k, o in origin if k != proposed_key} == {"drawn"}
    assert sum(1 for row in rows if row["study"] == proposed_key) == 13  # T12 ... S1 superior
    assert summary["studies"]["ok"] == 2
    dicts = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {d["roi_origin"] for d in dicts if d["study"] == proposed_key} == {"proposed"}
    # a batch without --propose leaves the unannotated study out, as before
    r = _run("batch", str(root), "-o", str(tmp_path / "out2"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    rows2 = list(csv.DictReader(io.StringIO((tmp_path / "out2" / "results.csv").read_text())))
    assert {row["study"] for row in rows2} == {k for k, _ in origin if k != proposed_key}
    assert "roi_origin" not in rows2[0]
