"""How well modic.propose finds, names and outlines the vertebrae of phantom studies.

For every study of the cohort it measures, against the phantom's exact anatomy:

* **levels**: every proposed body's centre lies in the truth body of the same name (study
  right when all are); with one confirming click (``anchor=("L5", truth L5 centre)``) again.
  With transitional anatomy, both namings count as right: counted from the sacrum (the last
  mobile body is L5) and the anatomical one; the summary says which;
* **Dice** of each body outline with the truth body on the same T1 slice (pixel centres
  inside the body's cortex, the truth's superellipse body between its endplate surfaces);
* **endplate position**: in the central strip of the body (|posterior| < 3 mm in the truth
  vertebra's frame), the highest (lowest) proposed pixel against the truth's, along the
  truth body's axis, mm;
* **bands inside**: share of band pixels within 0-8 mm of their truth endplate surface,
  and of reference pixels inside the truth marrow;
* **time** per study (``propose`` only, the study already loaded), seconds;
* with ``--classify``: the share of endplates typed right with proposed ROIs and with the
  reader's truth ROIs (phantom classic reader).

Usage::

    python benchmarks/propose.py                 # the default cohort (see COHORT below)
    python benchmarks/propose.py --n 40 --classify
    python benchmarks/propose.py --seeds 600000-600010 --realistic

Prints one line per study and a summary (numbers quoted in docs/propose.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import modic  # noqa: E402
from modic.phantom import GroundTruth  # noqa: E402
from modic.phantom.truth import anatomy_of  # noqa: E402
from modic.propose import propose  # noqa: E402

STRIP_MM = 3.0


def truth_body_mask(anat: Any, name: str, study: Any, k: int) -> np.ndarray:
    """(rows, cols) pixel centres of T1 slice k inside the truth body ``name``."""
    g = study.t1.geometry
    rows, cols = g.rows, g.columns
    rr, cc = np.mgrid[0:rows, 0:cols]
    idx = np.stack([np.full(rr.size, k), rr.ravel(), cc.ravel()], axis=1)
    pts = g.index_to_patient(idx)
    v = anat.vertebra(name)
    q = v.to_local(pts)
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    inside = (np.abs(z) <= v.height / 2) & (v.section(x, y, z) <= 1.0)
    inside &= (z <= v.z_surface(x, y, True)) & (z >= v.z_surface(x, y, False))
    return inside.reshape(rows, cols)


def _local(anat: Any, name: str, study: Any, k: int, mask: np.ndarray) -> np.ndarray:
    g = study.t1.geometry
    r, c = np.nonzero(mask)
    pts = g.index_to_patient(np.stack([np.full(r.size, k), r, c], axis=1))
    return anat.vertebra(name).to_local(pts)


def endplate_errors(anat: Any, name: str, study: Any, k: int, prop: np.ndarray,
                    truth: np.ndarray) -> dict[str, float]:
    out = {}
    qp = _local(anat, name, study, k, prop)
    qt = _local(anat, name, study, k, truth)
    sp_ = np.abs(qp[:, 1]) < STRIP_MM
    st = np.abs(qt[:, 1]) < STRIP_MM
    if sp_.any() and st.any():
        out["superior"] = float(qp[sp_, 2].max() - qt[st, 2].max())
        if name != "S1":
            out["inferior"] = float(qt[st, 2].min() - qp[sp_, 2].min())
    return out


def which_body(anat: Any, study: Any, k: int, rc: tuple[float, float]) -> str | None:
    g = study.t1.geometry
    p = g.index_to_patient([k, rc[0], rc[1]])
    for v in anat.vertebrae:
        q = v.to_local(p[None, :])[0]
        if abs(q[2]) <= v.height / 2 + 0.5 and v.section(q[:1], q[1:2], q[2:3])[0] <= 1.05:
            return str(v.name)
    return None


def evaluate(study_dir: Path, truth: GroundTruth, classify: bool = False) -> dict[str, Any]:
    study = modic.load_study(study_dir)
    anat = anatomy_of(truth)
    t0 = time.perf_counter()
    try:
        prop = propose(study)
    except modic.errors.ModicError as e:
        return {"error": str(e)}
    dt = time.perf_counter() - t0
    res: dict[str, Any] = {"time": dt, "levels": prop.levels, "warnings": prop.warnings,
                           "dice": {}, "endplate": {}, "wrong": []}
    ok = True
    shift = TRANSITIONAL_SHIFT[truth.spec.get("transitional", "")]
    res["transitional"] = truth.spec.get("transitional", "")
    got_names = []
    for b in prop.bodies:
        r, c = np.nonzero(b.mask)
        got_names.append(which_body(anat, study, b.slice_index, (float(r.mean()), float(c.mean()))))
    # transitional anatomy: the anatomical names are right too (a lumbar MRI alone cannot
    # tell them from the count from the sacrum; both are in clinical use and the proposal
    # says to confirm): then the Dice and endplates are measured on the anatomical bodies
    anatomical = bool(shift) and all(gn == b.name for gn, b in zip(got_names, prop.bodies, strict=True))
    res["transitional_named"] = ("anatomical" if anatomical else "counted") if shift else ""
    if anatomical:
        shift = 0
    for b, got in zip(prop.bodies, got_names, strict=True):
        if got != _counted(b.name, shift):
            ok = False
            res["wrong"].append(f"{b.name}->{got}")
            continue
        tname = _counted(b.name, shift)
        tm = truth_body_mask(anat, tname, study, b.slice_index)
        inter = float((tm & b.mask).sum())
        res["dice"][tname] = 2 * inter / float(tm.sum() + b.mask.sum())
        # how far the slice it is outlined on lies from the truth body's centre, in slices
        # (0: the nearest slice; a reader draws on the body's midline)
        if tname in {v.name for v in truth.vertebrae}:
            k_true = float(study.t1.geometry.patient_to_index(np.asarray(truth.vertebra(tname).center)[None])[0, 0])
            res.setdefault("off_slices", {})[tname] = abs(b.slice_index - k_true)
        for ep, err in endplate_errors(anat, tname, study, b.slice_index, b.mask, tm).items():
            res["endplate"][f"{tname} {ep}"] = err
    expected = [v for v in ("T12", "L1", "L2", "L3", "L4", "L5", "S1")]
    res["missing"] = [v for v in expected if v not in prop.levels]
    res["levels_right"] = ok
    # one confirming click: the truth L5 centre ("this is L5", the click of transitional anatomy)
    try:
        p1 = propose(study, anchor=("L5", truth.vertebra("L5").center))
        ok1 = True
        for b in p1.bodies:
            r, c = np.nonzero(b.mask)
            if which_body(anat, study, b.slice_index, (float(r.mean()), float(c.mean()))) != b.name:
                ok1 = False
        res["levels_right_click"] = ok1
    except (modic.errors.ModicError, ValueError):
        res["levels_right_click"] = False
    if classify:
        res.update(_classify(study, truth, prop.annotations))
    return res


#: Transitional anatomy: the truth vertebra that counting from the sacrum names ``N`` is
#: ``shift`` levels from ``N`` (a sacralised L5 is the first fused segment, so it is called
#: S1 and the truth L4 is called L5; a lumbarised S1 is the last mobile one, called L5).
#: That is "right" without a click (docs/propose.md); with the click "this is L5" on the
#: truth L5, the anatomical names are.
TRANSITIONAL_SHIFT = {"": 0, "sacralised_L5": -1, "lumbarised_S1": +1}
_ORDER = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2", "S3")


def _counted(name: str, shift: int) -> str:
    if shift == 0 or name not in _ORDER:
        return name
    k = _ORDER.index(name) + shift
    return _ORDER[k] if 0 <= k < len(_ORDER) else "?"


def _classify(study: Any, truth: GroundTruth, proposed: Any) -> dict[str, Any]:
    import cohort

    from modic.phantom.reader import reader_annotations

    types = cohort.truth_types(truth)
    wanted = {k for k in types if k[0] in ("L1", "L2", "L3", "L4", "L5", "S1")}
    out: dict[str, Any] = {}
    for name, ann in (("proposed", proposed), ("truth", reader_annotations(truth, study))):
        errors: list[Any] = []  # an ROI that cannot be measured counts as wrong
        res = modic.classify(study, ann, errors=errors)
        right = 0
        calls = {}
        for r in res:
            key = (r.label.vertebra, str(r.label.endplate))
            if key in wanted:
                right += int(_canon(r) == types[key])
                calls[" ".join(key)] = [_canon(r), types[key], round(float(r.confidence), 3)]
        out[f"right_{name}"] = right
        out[f"calls_{name}"] = calls  # "L4 inferior": [call, truth, confidence] (--json)
        out[f"total_{name}"] = len(wanted)  # every truth endplate L1-S1, proposed or not
    return out


def _canon(r: Any) -> str:
    t = getattr(r, "modic_type", None)
    v = getattr(t, "value", t)
    s = str(v).replace("type ", "").strip()
    return {"0": "0", "normal": "0"}.get(s, s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seeds", help="A-B range of seeds (default: the first --n of the cohort)")
    ap.add_argument("--realistic", action="store_true", help="the realistic cohort (cohort.py)")
    ap.add_argument("--widened", action="store_true", help="the widened cohort (propose_spec)")
    ap.add_argument("--classify", action="store_true")
    ap.add_argument("--json", help="write every study's numbers to this file")
    args = ap.parse_args(argv)
    import cohort

    if args.seeds:
        a, b = (int(x) for x in args.seeds.split("-"))
        seeds = list(range(a, b + 1))
    else:
        base = cohort.REALISTIC_CALIBRATION_BASE if args.realistic else PROPOSE_BASE
        seeds = list(range(base, base + args.n))
    if args.widened or not args.realistic:
        studies = generate_widened(seeds)
    else:
        studies = cohort.generate(seeds, realistic=True)
    rows = []
    for st in studies:
        truth = GroundTruth.from_json(st.truth_path)
        r = evaluate(st.folder, truth, args.classify)
        r["seed"] = truth.seed
        rows.append(r)
        if "error" in r:
            print(f"{truth.seed}: ERROR {r['error']}")
            continue
        dice = list(r["dice"].values())
        print(f"{truth.seed}: {'ok ' if r['levels_right'] else 'BAD'} {' '.join(r['levels'])} "
              f"dice {min(dice) if dice else 0:.2f}-{max(dice) if dice else 0:.2f} "
              f"{r['time']:.2f}s {'; '.join(r['wrong'])} {'; '.join(r['warnings'])[:160]}")
    summarize(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


def summarize(rows: list[dict[str, Any]]) -> None:
    good = [r for r in rows if "error" not in r]
    n = len(rows)
    print(f"studies: {n}, errors: {n - len(good)}")
    if not good:
        return
    lev = sum(r["levels_right"] for r in good)
    click = sum(r["levels_right_click"] for r in good)
    print(f"levels right, no click: {lev}/{n} = {100 * lev / n:.1f} %")
    print(f"levels right, one click: {click}/{n} = {100 * click / n:.1f} %")
    tr = [r for r in good if r.get("transitional")]
    if tr:
        anat = sum(r["levels_right"] and r.get("transitional_named") == "anatomical" for r in tr)
        print(f"  of which transitional: {len(tr)}, right {sum(r['levels_right'] for r in tr)} "
              f"({anat} with the anatomical names, the others counted from the sacrum), "
              f"with the click {sum(r['levels_right_click'] for r in tr)}")
        plain = [r for r in good if not r.get("transitional")]
        print(f"  without transitional anatomy: {sum(r['levels_right'] for r in plain)}/{len(plain)}")
    warned = [r for r in good if not r["levels_right"] and r["warnings"]]
    print(f"  wrong levels with a warning: {len(warned)} of {len(good) - lev}")
    # a study is wrong when a body's outline centre falls in another truth body, or in none
    # (an outline off its body, not a name off by a level): the second kind counted apart
    off_only = [r for r in good if not r["levels_right"] and r["wrong"]
                and all(w.endswith("->None") for w in r["wrong"])]
    print(f"  wrong only by outlines whose centre lies in no truth body: {len(off_only)} of {len(good) - lev}")
    dice = np.array([d for r in good for d in r["dice"].values()])
    print(f"body Dice: median {np.median(dice):.3f}, mean {dice.mean():.3f}, 5th pct "
          f"{np.percentile(dice, 5):.3f}, min {dice.min():.3f} (n={dice.size})")
    err = np.array([abs(e) for r in good for e in r["endplate"].values()])
    sgn = np.array([e for r in good for e in r["endplate"].values()])
    print(f"endplate position error: median {np.median(err):.2f} mm, 95th pct "
          f"{np.percentile(err, 95):.2f} mm, mean signed {sgn.mean():+.2f} mm (n={err.size})")
    missing = sum(len(r["missing"]) for r in good)
    print(f"bodies T12-S1 missing: {missing} of {7 * len(good)}")
    off = np.array([v for r in good for v in r.get("off_slices", {}).values()])
    if off.size:
        print(f"outline slice from the truth body's centre: median {np.median(off):.2f} slices, "
              f"95th pct {np.percentile(off, 95):.2f}; off the nearest slice: {int((off > 0.5).sum())} "
              f"of {off.size} bodies, 1.5 slices or more: {int((off >= 1.5).sum())}")
    t = np.array([r["time"] for r in good])
    print(f"time per study: median {np.median(t):.2f} s, max {t.max():.2f} s")
    if "right_proposed" in good[0]:
        rp = sum(r["right_proposed"] for r in good)
        tp = sum(r["total_proposed"] for r in good)
        rt = sum(r["right_truth"] for r in good)
        tt = sum(r["total_truth"] for r in good)
        print(f"classification right: proposed ROIs {rp}/{tp} = {100 * rp / max(tp, 1):.1f} %, "
              f"truth ROIs {rt}/{tt} = {100 * rt / max(tt, 1):.1f} %")
        ok = [r for r in good if r["levels_right"]]
        rp = sum(r["right_proposed"] for r in ok)
        tp = sum(r["total_proposed"] for r in ok)
        rt = sum(r["right_truth"] for r in ok)
        tt = sum(r["total_truth"] for r in ok)
        print(f"  on the {len(ok)} studies with their levels right: proposed {100 * rp / max(tp, 1):.1f} %, "
              f"truth {100 * rt / max(tt, 1):.1f} %")


# ----------------------------------------------------------------------------------------
# the widened cohort
# ----------------------------------------------------------------------------------------
#: Seeds of the widened cohort (realistic_spec of these seeds, widened).
PROPOSE_BASE = 700_000
DATA_WIDENED = Path(__file__).resolve().parent / "_data" / "propose"


def generate_widened(seeds: list[int]) -> list[Any]:
    """Generate (or reuse) the widened studies of these seeds in ``_data/propose/``."""
    from concurrent.futures import ProcessPoolExecutor

    DATA_WIDENED.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        return list(pool.map(_gen_one, seeds))


def propose_spec(seed: int) -> Any:
    """The realistic cohort's study of ``seed`` (all vendors, 1.5 / 3 T, 192-256 matrices,
    3-5 mm slices, slices tilted up to 4 degrees, every realism factor), widened for
    finding vertebrae (docs/propose.md): in 40 % of studies a scoliosis of 8-20 degrees to
    either side (``StudySpec.scoliosis_deg``), in 25 % a field of view moved 20-40 mm to
    the head or the feet (the sacrum or T12 at the edge of the image, or out of it), in 10 %
    transitional anatomy (``StudySpec.transitional``: a sacralised L5 or a lumbarised S1)."""
    import dataclasses

    import cohort

    spec = cohort.realistic_spec(seed)
    rng = np.random.default_rng([seed, 20261203])
    if rng.random() < 0.4:
        spec = dataclasses.replace(spec, scoliosis_deg=float(rng.choice([-1, 1]) * rng.uniform(8, 20)))
    if rng.random() < 0.25:
        dz = float(rng.choice([-1, 1]) * rng.uniform(20, 40))
        series = [dataclasses.replace(s, center_offset=(s.center_offset[0], s.center_offset[1],
                                                        s.center_offset[2] + dz))
                  if s.plane == "sagittal" else s for s in spec.resolved_series]
        spec = dataclasses.replace(spec, series=series)
    # drawn after the others, so the rest of every study is as before
    if rng.random() < 0.1:  # lumbosacral transitional anatomy (about 10 % of people)
        spec = dataclasses.replace(spec, transitional=str(rng.choice(["sacralised_L5", "lumbarised_S1"])))
    return spec


def _gen_one(seed: int) -> Any:
    import cohort

    d = DATA_WIDENED / f"s{seed}"
    tp = DATA_WIDENED / f"s{seed}.truth.json"
    spec = propose_spec(seed)
    if not tp.exists() or json.loads(tp.read_text())["spec"] != json.loads(json.dumps(spec.to_dict())):
        modic.phantom.write_study(spec, d, truth_path=tp, overwrite=True, dicom_subdir=".")
    return cohort.CohortStudy(seed, d, tp, True)


if __name__ == "__main__":
    raise SystemExit(main())
