"""How often the anatomy checks warn on correct ROIs, how often they catch a misplaced one,
and how long they take (modic.anatomy.check_rois).

For each sample study, on the readers' ROIs (which are correct):

* false alarms: warnings on the unchanged ROIs, without and with the proposal's bodies;
* misplacements: every endplate ROI in turn is moved across its disc into the neighbouring
  vertebra (by the distance to the band on the other side of the disc, plus ``--depth`` mm
  further into that body). The move is caught when that ROI gets a warning;
* time per check_rois call.

Run::

    python benchmarks/anatomy.py               # the four sample studies, depth 6 mm
    python benchmarks/anatomy.py --depth 3
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import modic
from modic.anatomy import check_rois
from modic.annotations import Polygon, RoiLabel
from modic.propose import propose


def _other_side(label: RoiLabel) -> RoiLabel | None:
    """The band across the disc: L4 inferior <-> L5 superior."""
    from modic.annotations import VERTEBRAE

    i = VERTEBRAE.index(label.vertebra)
    if label.endplate is not None and label.endplate.value == "inferior":
        return RoiLabel.for_endplate(VERTEBRAE[i + 1], "superior") if i + 1 < len(VERTEBRAE) else None
    return RoiLabel.for_endplate(VERTEBRAE[i - 1], "inferior") if i > 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=float, default=6.0, help="mm beyond the other band (default 6)")
    args = ap.parse_args()
    total_moves = caught = caught_img = 0
    for name in modic.data.sample_study_names():
        study = modic.load_study(modic.data.sample_study_path(name))
        rois = modic.read_annotations(modic.data.sample_annotations_path(name))
        p = propose(study)
        t0 = time.perf_counter()
        geo = check_rois(study, rois)
        t_geo = time.perf_counter() - t0
        t0 = time.perf_counter()
        img = check_rois(study, rois, vertebrae=p)
        t_img = time.perf_counter() - t0
        fa = [f for f in geo if f.severity == "warning"]
        fa_img = [f for f in img if f.severity == "warning"]
        n = c = ci = 0
        for roi in rois.endplates():
            other_label = _other_side(roi.label)
            other = next((r for r in rois if r.label == other_label), None)
            if other is None or not isinstance(roi.shape, Polygon):
                continue
            d = other.shape.outline(64).mean(axis=0) - roi.shape.outline(64).mean(axis=0)
            d = d + d / np.linalg.norm(d) * args.depth / roi.image.pixel_spacing[0]
            moved = dataclasses.replace(roi, shape=Polygon(np.asarray(roi.shape.points) + d))
            doc = [moved if r.id == roi.id else r for r in rois]
            n += 1
            c += any(f.roi_id == roi.id and f.severity == "warning" for f in check_rois(study, doc))
            ci += any(
                f.roi_id == roi.id and f.severity == "warning" for f in check_rois(study, doc, vertebrae=p)
            )
        total_moves, caught, caught_img = total_moves + n, caught + c, caught_img + ci
        print(
            f"{name:32s} false alarms {len(fa)} / {len(fa_img)} (geometry / +image), "
            f"moves caught {c}/{n} / {ci}/{n}, check_rois {t_geo * 1000:.0f} ms / {t_img * 1000:.0f} ms"
        )
    print(
        f"all: moved across the disc + {args.depth:g} mm: caught {caught}/{total_moves} (geometry), "
        f"{caught_img}/{total_moves} (with the proposal's bodies)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
