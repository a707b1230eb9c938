"""Write a whole phantom study: anatomy -> images -> DICOM files + ``truth.json``."""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .anatomy import Anatomy
from .build import build_anatomy
from .grid import Stack, stack_for_plane
from .render import render_stack
from .signal import (
    Quantisation,
    Sequence,
    add_rician_noise,
    coil_sensitivity,
    default_noise_scale,
    default_sequence,
    quantise,
    tissue_signal,
)
from .spec import SeriesSpec, StudySpec
from .tissue import fat_relaxation
from .truth import (
    GroundTruth,
    SeriesTruth,
    endplate_truths,
    vertebra_truth,
)
from .writer import (
    SeriesHeader,
    StudyHeader,
    classic_datasets,
    deterministic_uid,
    encode,
    enhanced_dataset,
    save,
    vendor_series_header,
)

__all__ = ["write_study", "series_stacks", "reference_t1_signal", "study_factors"]

FloatArray = NDArray[np.float64]


def series_stacks(anat: Anatomy, series: SeriesSpec) -> list[Stack]:
    """The imaging stacks of ``series`` placed on the anatomy (see :class:`SeriesSpec`)."""
    l3, l4, l5 = anat.vertebra("L3"), anat.vertebra("L4"), anat.vertebra("L5")
    offset = np.asarray(series.center_offset, dtype=float)
    mid = 0.5 * (l3.center + l4.center)
    fov = series.fov_mm
    thk, gap = series.slice_thickness, series.slice_gap
    if series.plane == "3plane":
        c = l3.center + np.array([0.0, 25.0, 0.0]) + offset
        return [stack_for_plane(p, c, series.rows, series.cols, fov, series.n_slices, thk, gap,
                                series.tilt_deg) for p in ("sagittal", "coronal", "axial")]
    if series.plane == "axial":
        disc_c = 0.5 * (l4.endplate_center(False) + l5.endplate_center(True))
        nrm = l4.axes[2] + l5.axes[2]
        nrm = nrm / np.linalg.norm(nrm)
        c = disc_c + np.array([0.0, 30.0, 0.0]) + offset
        st = stack_for_plane("axial", c, series.rows, series.cols, fov, series.n_slices, thk,
                             gap, series.tilt_deg, normal=nrm)
    elif series.plane == "coronal":
        c = mid + offset
        st = stack_for_plane("coronal", c, series.rows, series.cols, fov, series.n_slices, thk,
                             gap, series.tilt_deg)
    else:
        c = mid + np.array([0.0, 25.0, 0.0]) + offset
        st = stack_for_plane("sagittal", c, series.rows, series.cols, fov, series.n_slices,
                             thk, gap, series.tilt_deg)
    if series.slice_offset:
        st = Stack(center=st.center + series.slice_offset * st.normal, row_dir=st.row_dir,
                   col_dir=st.col_dir, rows=st.rows, cols=st.cols, row_spacing=st.row_spacing,
                   col_spacing=st.col_spacing, thickness=st.thickness, spacing=st.spacing,
                   n_slices=st.n_slices, plane=st.plane)
    return [st]


def reference_t1_signal(anat: Anatomy, seq: Sequence) -> float:
    """Mean noise-free T1 signal of normal L1-L5 marrow (the SNR reference)."""
    fat = fat_relaxation(anat.field_strength)
    vals = [tissue_signal(anat.tissues[anat.vertebra(n).marrow_code], seq, fat)
            for n in ("L1", "L2", "L3", "L4", "L5")]
    return float(np.mean(vals))


def _series_numbers(vendor: str, series: list[SeriesSpec]) -> list[int]:
    out = []
    for i, s in enumerate(series):
        if s.series_number is not None:
            out.append(s.series_number)
        elif vendor == "philips":
            out.append((i + 1) * 100 + 1)
        else:
            out.append(i + 1)
    if len(set(out)) != len(out):
        raise ValueError(f"StudySpec.series: duplicate series numbers {out}")
    return out


def _study_header(spec: StudySpec) -> StudyHeader:
    rng = np.random.default_rng([spec.seed, 11])
    day = _dt.date(2016, 1, 4) + _dt.timedelta(days=int(rng.integers(0, 3000)))
    minutes = int(rng.integers(7 * 60, 19 * 60))
    age = int(rng.integers(28, 76))
    birth = _dt.date(day.year - age, 1 + int(rng.integers(0, 12)), 1 + int(rng.integers(0, 28)))
    if spec.patient_age is not None:
        age = spec.patient_age
        birth = birth.replace(year=day.year - age)
        if (birth.month, birth.day) > (day.month, day.day):
            birth = birth.replace(year=birth.year - 1)
    elif (birth.month, birth.day) > (day.month, day.day):
        age -= 1
    study_uid = deterministic_uid("study", spec.seed)
    return StudyHeader(
        study_uid=study_uid,
        frame_of_reference_uid=deterministic_uid("frame-of-reference", spec.seed),
        patient_name=spec.patient_name or f"PHANTOM^{spec.seed}",
        patient_id=spec.patient_id or f"PHANTOM{spec.seed:06d}",
        patient_birth_date=birth.strftime("%Y%m%d"),
        patient_sex="F" if rng.random() < 0.5 else "M", patient_age=f"{age:03d}Y",
        study_date=day.strftime("%Y%m%d"), study_time=f"{minutes // 60:02d}{minutes % 60:02d}00",
        accession_number=f"A{spec.seed:08d}", study_id=str(1 + spec.seed % 9999),
        vendor=spec.vendor, field_strength=spec.field_strength)


def _time_plus(hhmmss: str, seconds: float) -> str:
    t = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6]) + seconds
    t = t % 86400
    frac = t - int(t)
    t_int = int(t)
    return f"{t_int // 3600:02d}{(t_int % 3600) // 60:02d}{t_int % 60:02d}.{int(frac * 1e6):06d}"


def _prepare_out_dir(out_dir: Path, dicom_subdir: str, truth_path: Path, overwrite: bool
                     ) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} is not empty; choose an empty folder or pass overwrite=True "
                f"(which replaces its {dicom_subdir}/ folder and truth file)")
        target = out_dir / dicom_subdir
        if target.is_dir():
            shutil.rmtree(target)
        if truth_path.exists():
            truth_path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _visible(stacks: list[Stack], p: FloatArray) -> bool:
    for st in stacks:
        d = p - st.center
        if (abs(d @ st.normal) <= st.n_slices * st.spacing / 2
                and abs(d @ st.row_dir) <= st.cols * st.col_spacing / 2
                and abs(d @ st.col_dir) <= st.rows * st.row_spacing / 2):
            return True
    return False


def _file_names(spec: StudySpec, numbers: list[int], counts: list[int],
                uids: list[list[str]]) -> list[list[str]]:
    """Relative (posix) file names of every image of every series."""
    if spec.file_naming == "nested":
        return [[f"SE{num:06d}/IM{i + 1:06d}" for i in range(n)]
                for num, n in zip(numbers, counts, strict=True)]
    if spec.file_naming == "uid":
        return [list(u) for u in uids]
    total = sum(counts)
    perm = np.random.default_rng([spec.seed, 13]).permutation(total)
    names, j = [], 0
    for n in counts:
        names.append([f"IM{int(perm[j + i]) + 1:06d}" for i in range(n)])
        j += n
    return names


def write_study(spec: StudySpec, out_dir: str | Path, *, truth_path: str | Path | None = None,
                overwrite: bool = False, dicom_subdir: str = "dicom") -> GroundTruth:
    """Synthesise study ``spec`` and write it as DICOM plus ``truth.json``.

    Parameters
    ----------
    spec : StudySpec
        The study (deterministic in ``spec.seed``).
    out_dir : str or Path
        Folder to write; must be empty or absent unless ``overwrite``.
    truth_path : str or Path, optional
        Where to write the ground truth JSON (default ``out_dir / "truth.json"``).
    overwrite : bool
        Allow a non-empty ``out_dir``; its ``dicom_subdir`` folder and truth file are
        replaced, nothing else is touched.
    dicom_subdir : str
        Sub-folder of ``out_dir`` receiving the DICOM files.

    Returns
    -------
    GroundTruth
        Also written to ``truth_path``.

    See the example in :mod:`modic.phantom`.
    """
    out_dir = Path(out_dir)
    tpath = Path(truth_path) if truth_path is not None else out_dir / "truth.json"
    _prepare_out_dir(out_dir, dicom_subdir, tpath, overwrite)
    anat = build_anatomy(spec)
    study = _study_header(spec)
    series_list = spec.resolved_series
    numbers = _series_numbers(spec.vendor, series_list)
    seqs = [default_sequence(s, spec.vendor, spec.field_strength) for s in series_list]
    stacks = [series_stacks(anat, s) for s in series_list]

    # SNR reference: the study's first T1 series (or the default T1 protocol)
    t1_seq = next((q for s, q in zip(series_list, seqs, strict=True)
                   if s.role == "t1"),
                  default_sequence(SeriesSpec(role="t1"), spec.vendor, spec.field_strength))
    sigma_t1 = reference_t1_signal(anat, t1_seq) / spec.snr

    # render, sharing the labelling between series on identical grids
    images: list[list[NDArray[np.float32]]] = [[] for _ in series_list]
    groups: dict[tuple[float, ...], list[tuple[int, int]]] = {}
    for i, sts in enumerate(stacks):
        for j, st in enumerate(sts):
            groups.setdefault(st.key(), []).append((i, j))
    for members in groups.values():
        i0, j0 = members[0]
        outs = render_stack(anat, stacks[i0][j0], [seqs[i] for i, _ in members],
                            spec.supersample, spec.bias, spec.coil_gradient)
        for (i, j), vol in zip(members, outs, strict=True):
            while len(images[i]) <= j:
                images[i].append(np.empty(0, dtype=np.float32))
            images[i][j] = vol

    headers: list[SeriesHeader] = []
    stored_all: list[NDArray[np.integer]] = []
    quants: list[Quantisation] = []
    sigmas: list[float] = []
    t = 0.0
    for i, (s, seq) in enumerate(zip(series_list, seqs, strict=True)):
        if s.noise_scale is not None:
            sigma = sigma_t1 * s.noise_scale
        elif s.role == "localizer":
            # fast gradient-echo localizers have tiny signal; give them a marrow SNR of
            # half the study's
            sigma = reference_t1_signal(anat, seq) / (0.5 * spec.snr)
        else:
            sigma = sigma_t1 * default_noise_scale(s.role)
        rng = np.random.default_rng([spec.seed, 17, numbers[i]])
        vol = np.concatenate(images[i], axis=0)
        noisy = add_rician_noise(vol, sigma, rng)
        stored, q = quantise(noisy, spec.vendor, spec.seed, numbers[i])
        stored_all.append(stored)
        quants.append(q)
        sigmas.append(sigma)
        headers.append(vendor_series_header(s, seq, spec.vendor, study, numbers[i],
                                            _time_plus(study.study_time, t)[:6] + ".000000"))
        t += 240.0

    # DICOM files
    dicom_root = out_dir / dicom_subdir
    series_truths: list[SeriesTruth] = []
    all_datasets = []
    for i, s in enumerate(series_list):
        hdr, q, stored = headers[i], quants[i], stored_all[i]
        syntax = s.transfer_syntax or spec.transfer_syntax
        if s.enhanced:
            st = stacks[i][0]
            times = [_time_plus(hdr.series_time[:6], 180.0 * k / st.n_slices)
                     for k in range(st.n_slices)]
            datasets = [enhanced_dataset(study, hdr, s, seqs[i], st, stored, q, times)]
        else:
            datasets = classic_datasets(study, hdr, s, seqs[i], stacks[i], stored, q)
        for ds in datasets:
            encode(ds, syntax)
        series_truths.append(SeriesTruth(
            series_instance_uid=hdr.series_uid, series_number=hdr.series_number,
            description=hdr.description, role=s.role, plane=s.plane,
            fat_suppressed=s.fat_suppressed, enhanced=s.enhanced, transfer_syntax=syntax,
            n_images=int(stored.shape[0]), rows=s.rows, cols=s.cols, files=[],
            sequence=seqs[i].to_dict(), noise_sigma=round(sigmas[i] * q.gain, 6),
            signal_gain=q.gain, rescale_slope=q.slope, rescale_intercept=q.intercept))
        all_datasets.append(datasets)
    names = _file_names(spec, numbers, [len(d) for d in all_datasets],
                        [[str(ds.SOPInstanceUID) for ds in d] for d in all_datasets])
    for s_truth, datasets, fnames in zip(series_truths, all_datasets, names,
                                         strict=True):
        for ds, name in zip(datasets, fnames, strict=True):
            save(ds, dicom_root / name)
        s_truth.files = [f"{dicom_subdir}/{n}" for n in fnames]

    # ground truth
    visible: dict[tuple[str, str], list[int]] = {}
    for v in anat.vertebrae:
        for superior, ep in ((True, "superior"), (False, "inferior")):
            p = v.endplate_center(superior)
            visible[(v.name, ep)] = [numbers[i] for i, sts in enumerate(stacks)
                                     if series_list[i].role != "localizer" and _visible(sts, p)]
    truth = GroundTruth(
        seed=spec.seed, vendor=spec.vendor, field_strength=spec.field_strength, snr=spec.snr,
        bias=spec.bias, study_instance_uid=study.study_uid,
        frame_of_reference_uid=study.frame_of_reference_uid, patient_id=study.patient_id,
        spec=spec.to_dict(), series=series_truths,
        vertebrae=[vertebra_truth(anat, anat.vertebra(n))
                   for n in ("T12", "L1", "L2", "L3", "L4", "L5", "S1")],
        endplates=endplate_truths(anat, visible, with_factors=spec.uses_realism),
        dicom_dir=dicom_subdir,
        factors=study_factors(anat, series_list, numbers, study) if spec.uses_realism else None)
    truth.to_json(tpath)
    return truth


def study_factors(anat: Anatomy, series: list[SeriesSpec], numbers: list[int],
                  header: StudyHeader | None = None) -> dict[str, Any]:
    """The realism factors of a study, as recorded in :attr:`GroundTruth.factors`.

    Keys: ``coil_gradient`` (requested head-foot sensitivity ratio L1 / S1),
    ``coil_gradient_strength`` (``max(g, 1 / g)``), ``coil_ratio_L1_S1`` (the whole
    receive sensitivity, posterior ``bias`` included, at the L1 over the S1 body centre),
    ``bias``; ``fat_sat_efficiency`` (lowest over the sagittal fat-suppressed series, None
    without one); ``slice_thickness`` (sagittal T1) and ``slice_thickness_max`` (any
    sagittal series), mm; ``series`` (per series: number, role, plane, thickness,
    fat-suppression efficiency); ``marrow_fat_fraction`` (mean of L1-L5),
    ``marrow_heterogeneity``, ``marrow_texture``, ``marrow_fat_islands`` (the mean asked
    for) and ``focal_fat_islands`` (the number placed in T12-S1); ``endplate_irregularity``
    (mm); ``degenerated_discs``; ``hemangiomas`` and ``schmorl_nodes`` (with LPS centres);
    ``weak_changes`` and ``changes_with_fat_islands`` (counts); ``patient_age``;
    ``supersample``; ``snr``.
    """
    spec = anat.spec
    l1, s1 = anat.vertebra("L1").center, anat.vertebra("S1").center
    sens = coil_sensitivity(np.stack([l1, s1]), anat, spec.bias, spec.coil_gradient)
    sag = [s for s in series if s.plane == "sagittal"]
    effs = [e for s in sag if (e := s.fat_suppression_efficiency) is not None]
    t1 = next((s for s in sag if s.role == "t1"), None)
    hem = []
    for v in anat.vertebrae:
        for x, y, z, r in v.hemangiomas:
            hem.append({"vertebra": v.name, "center": _round(v.to_lps(np.array([x, y, z]))),
                        "radius_mm": round(float(r), 4)})
    nodes = []
    for v in anat.vertebrae:
        for n in v.schmorl_nodes:
            xa, ya = np.array([n.x0]), np.array([n.y0])
            zc = float(v.z_surface(xa, ya, n.superior)[0])
            nodes.append({"vertebra": v.name, "endplate": "superior" if n.superior else "inferior",
                          "center_on_endplate": _round(v.to_lps(np.array([n.x0, n.y0, zc]))),
                          "radius_mm": n.radius, "depth_mm": round(n.depth, 4)})
    g = spec.coil_gradient
    return {
        "coil_gradient": g,
        "coil_gradient_strength": round(max(g, 1.0 / g), 6),
        "coil_ratio_L1_S1": round(float(sens[0] / sens[1]), 6),
        "bias": spec.bias,
        "fat_sat_efficiency": min(effs) if effs else None,
        "slice_thickness": t1.slice_thickness if t1 is not None else None,
        "slice_thickness_max": max((s.slice_thickness for s in sag), default=None),
        "series": [{"series_number": num, "role": s.role, "plane": s.plane,
                    "slice_thickness": s.slice_thickness,
                    "fat_sat_efficiency": s.fat_suppression_efficiency}
                   for s, num in zip(series, numbers, strict=True)],
        "marrow_fat_fraction": round(float(np.mean(
            [anat.vertebra(n).fat_fraction for n in ("L1", "L2", "L3", "L4", "L5")])), 4),
        "marrow_heterogeneity": spec.marrow_heterogeneity,
        "marrow_texture": spec.marrow_texture,
        "marrow_fat_islands": spec.marrow_fat_islands,
        "focal_fat_islands": int(sum(len(v.focal_fat) for v in anat.vertebrae)),
        "endplate_irregularity": spec.endplate_irregularity,
        "degenerated_discs": list(spec.degenerated_discs),
        "hemangiomas": hem,
        "schmorl_nodes": nodes,
        "weak_changes": sum(les.weak for les in spec.lesions),
        "changes_with_fat_islands": sum(les.fat_islands > 0 for les in spec.lesions),
        "patient_age": int(header.patient_age[:3]) if header is not None else spec.patient_age,
        "supersample": list(spec.supersample),
        "snr": spec.snr,
    }


def _round(a: NDArray[np.floating]) -> list[float]:
    return [round(float(x), 6) for x in np.asarray(a).ravel()]
