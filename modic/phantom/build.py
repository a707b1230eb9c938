"""Draw a study's anatomy from its seed: vertebrae on a spinal curve, discs, torso, lesions."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .anatomy import Anatomy, Disc, SchmorlNode, Segment, Vertebra, in_spheres
from .grid import rotation_about
from .lesion import Lesion, LesionMeasure, side_split
from .signal import default_sequence, tissue_signal
from .spec import (
    LESION_VERTEBRAE,
    VERTEBRAE,
    HemangiomaSpec,
    LesionSpec,
    SchmorlNodeSpec,
    SeriesSpec,
    StudySpec,
)
from .tissue import (
    Tissue,
    base_tissue,
    disc_nucleus,
    fat_relaxation,
    focal_fat_tissue,
    hemangioma_tissue,
    modic_tissue,
    normal_marrow,
)

__all__ = ["build_anatomy"]

FloatArray = NDArray[np.float64]

# --- nominal dimensions (mm): width (L-R), depth (A-P), height; canal half width, depth;
# tilt of the superior axis from vertical in the sagittal plane (deg, + = top posterior)
_NOMINAL: dict[str, tuple[float, float, float, float, float, float]] = {
    "T8": (32, 27, 20, 8.0, 14, 6), "T9": (33, 28, 21, 8.0, 14, 9),
    "T10": (35, 29, 22, 8.5, 14, 11), "T11": (37, 30, 23, 9.0, 15, 12),
    "T12": (40, 31, 24, 9.5, 15, 11), "L1": (42, 31, 25, 10.5, 16, 8),
    "L2": (44, 32, 26, 11.0, 16, 3), "L3": (46, 33, 26.5, 11.5, 15.5, -3),
    "L4": (48, 34, 26.5, 12.0, 15, -10), "L5": (50, 34, 26, 12.5, 15, -20),
    "S1": (50, 34, 27, 12.0, 12, -35), "S2": (40, 27, 22, 10.0, 9, -29),
    "S3": (32, 21, 18, 8.0, 7, -20), "S4": (24, 16, 15, 6.0, 5, -10),
}
# nominal disc heights at the centre (mm), by upper vertebra
_DISC_HEIGHT = {"T8": 5.0, "T9": 5.0, "T10": 5.5, "T11": 6.0, "T12": 7.0, "L1": 8.5,
                "L2": 9.5, "L3": 10.0, "L4": 10.5, "L5": 9.5, "S1": 2.0, "S2": 1.6, "S3": 1.3}

_TAGS = {"anatomy": 1, "texture": 2, "lesion": 3, "patch": 4, "islands": 5, "focal": 6,
         "surface": 7}
#: Amplitudes (FF units) of the marrow patches at marrow_heterogeneity = 1 (changes: half).
PATCH_AMPLITUDE = 0.12


def _rng(seed: int, purpose: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, _TAGS[purpose], *extra])


def build_anatomy(spec: StudySpec) -> Anatomy:
    """Draw the anatomy of study ``spec`` (deterministic in ``spec.seed``).

    Examples
    --------
    >>> from modic.phantom import default_study_spec
    >>> anat = build_anatomy(default_study_spec(1))
    >>> [v.name for v in anat.vertebrae][4:11]
    ['T12', 'L1', 'L2', 'L3', 'L4', 'L5', 'S1']
    """
    rng = _rng(spec.seed, "anatomy")
    anat = Anatomy(spec)
    fs = spec.field_strength
    for name in ("air", "skin", "subcutaneous_fat", "fascia_fat", "muscle", "viscera", "lung",
                 "flow_void", "cortical_bone", "ligament", "epidural_fat", "csf", "cord",
                 "cauda", "annulus", "cartilage", "disc_remnant"):
        anat.add_tissue(base_tissue(name, fs))
    viscera = anat.tissues[anat.code("viscera")]
    anat.tissues[anat.code("viscera")] = Tissue(viscera.name, viscera.pd, viscera.ff,
                                                viscera.water, texture=0.08)

    # ---- global shape parameters
    size = float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12))
    lordosis = float(np.clip(rng.normal(1.0, 0.15), 0.65, 1.35))
    pelvic = float(rng.normal(0.0, 3.0))
    base_ff = (spec.marrow_fat_fraction if spec.marrow_fat_fraction is not None
               else float(rng.uniform(0.35, 0.55)))
    lesion_levels = {les.vertebra for les in spec.lesions}

    # ---- vertebrae (frames) starting at L3, then up and down
    names = list(VERTEBRAE)
    i3 = names.index("L3")
    phi = {}
    for n in names:
        # lordosis scales the lumbar curve; thoracic kyphosis and the sacral curve follow
        anchor = n if n[0] == "L" or n == "S1" else ("T12" if n[0] == "T" else "S1")
        phi[n] = (_NOMINAL[n][5] + (lordosis - 1.0) * _NOMINAL[anchor][5] + pelvic
                  + float(rng.normal(0.0, 1.0)))
    dims = {}
    for n in names:
        w, d, h, cw, cd, _ = _NOMINAL[n]
        f = size * float(rng.normal(1.0, 0.025))
        dims[n] = (w * f, d * f, h * size * float(rng.normal(1.0, 0.03)),
                   cw * float(rng.normal(1.0, 0.05)), cd * float(rng.normal(1.0, 0.05)))
    disc_h = {}
    hydration = {}
    for n in names[:-1]:
        h = _DISC_HEIGHT[n] * size * float(rng.normal(1.0, 0.08))
        hyd = float(np.clip(rng.uniform(0.75, 1.0), 0, 1))
        lower = names[names.index(n) + 1]
        if n in ("L4", "L5"):
            hyd = float(rng.uniform(0.3, 0.95))
        if n in lesion_levels or lower in lesion_levels:
            hyd *= 0.5
            h *= 0.8
        disc_h[n] = h
        hydration[n] = hyd
    for name in spec.degenerated_discs:  # desiccated: dark nucleus, lower disc
        upper = name.split("/")[0]
        hydration[upper] = min(hydration[upper], 0.05)
        disc_h[upper] *= 0.75
    # lumbosacral transitional anatomy (opt-in, docs/phantom.md); no random draws, so the
    # rest of the study is the one drawn without it
    if spec.transitional == "sacralised_L5":  # L5/S1 a remnant, L5 on the sacral slope
        disc_h["L5"] = _DISC_HEIGHT["S1"] * size
        phi["L5"] = 0.5 * (phi["L5"] + phi["S1"])
    elif spec.transitional == "lumbarised_S1":  # a real S1/S2 disc, S1 tilted like a lumbar body
        disc_h["S1"] = 0.8 * _DISC_HEIGHT["L5"] * size
        hydration["S1"] = hydration["L5"]
        phi["S1"] = phi["L5"] - 8.0

    def frame(angle: float, lat: float, rot: float) -> FloatArray:
        t = np.deg2rad(angle)
        left = np.array([1.0, 0.0, 0.0])
        post = np.array([0.0, np.cos(t), -np.sin(t)])
        sup = np.array([0.0, np.sin(t), np.cos(t)])
        r = rotation_about(sup, rot) @ rotation_about(post, lat)
        return np.stack([r @ left, r @ post, r @ sup])

    axes = {}
    for n in names:
        lat = float(rng.normal(0, 1.5))
        rot = float(rng.normal(0, 2.0))
        if spec.scoliosis_deg:  # opt-in lateral curvature, T12 (f = 0) to S1 (f = 1)
            f = (names.index(n) - names.index("T12")) / (names.index("S1") - names.index("T12"))
            if 0.0 <= f <= 1.0:  # turning from one side to the other: a C curve, apex mid-lumbar
                lat += spec.scoliosis_deg * float(np.cos(np.pi * f))
        axes[n] = frame(phi[n], lat, rot)
    centers: dict[str, FloatArray] = {}
    centers["L3"] = np.array([rng.normal(0, 3.0), rng.normal(-10.0, 8.0), rng.normal(15.0, 10.0)])
    # upwards
    for j in range(i3, 0, -1):
        lo_n, up_n = names[j], names[j - 1]
        o_sup = centers[lo_n] + axes[lo_n][2] * dims[lo_n][2] / 2
        nrm = axes[lo_n][2] + axes[up_n][2]
        nrm /= np.linalg.norm(nrm)
        o_inf = o_sup + nrm * disc_h[up_n]
        centers[up_n] = o_inf + axes[up_n][2] * dims[up_n][2] / 2
    # downwards
    for j in range(i3, len(names) - 1):
        up_n, lo_n = names[j], names[j + 1]
        o_inf = centers[up_n] - axes[up_n][2] * dims[up_n][2] / 2
        nrm = axes[lo_n][2] + axes[up_n][2]
        nrm /= np.linalg.norm(nrm)
        o_sup = o_inf - nrm * disc_h[up_n]
        centers[lo_n] = o_sup - axes[lo_n][2] * dims[lo_n][2] / 2

    for j, n in enumerate(names):
        w, d, h, cw, cd = dims[n]
        ff = base_ff + 0.012 * (j - i3) + float(rng.normal(0.0, 0.02))
        if n.startswith("S"):
            ff += 0.05
        ff = float(np.clip(ff, 0.05, 0.85))
        v = Vertebra(name=n, center=centers[n], axes=axes[n], width=w, depth=d, height=h,
                     concavity_sup=float(rng.uniform(0.8, 1.8)),
                     concavity_inf=float(rng.uniform(1.2, 2.4)),
                     cortex=float(rng.uniform(0.9, 1.2)), endplate=float(rng.uniform(0.8, 1.1)),
                     canal_half_width=cw, canal_depth=cd, fat_fraction=ff,
                     exponent=float(rng.uniform(2.4, 2.9)))
        if n.startswith("S"):
            v.concavity_inf = 0.3
            if n != "S1":
                v.concavity_sup = 0.3
        v.marrow_code = anat.add_tissue(
            normal_marrow(f"marrow_{n}", ff, fs, texture=spec.marrow_texture,
                          patch=PATCH_AMPLITUDE * spec.marrow_heterogeneity))
        anat.vertebrae.append(v)
    for j, n in enumerate(names[:-1]):
        lower = names[j + 1]
        disc = Disc(name=f"{n}/{lower}", upper=j, lower=j + 1, height=disc_h[n],
                    hydration=hydration[n])
        disc.nucleus_code = anat.add_tissue(
            disc_nucleus(f"nucleus_{n}_{lower}", disc.hydration, fs))
        anat.discs.append(disc)

    _build_segments(anat)
    _build_torso(anat, rng)
    # landmarks along the canal
    anat.conus_s = anat._s_of("L1", float(rng.uniform(-0.3, 0.6)))
    anat.sac_end_s = anat._s_of("S2", float(rng.uniform(0.2, 0.8)))
    anat.bifurcation_s = anat._s_of("L4", float(rng.uniform(0.2, 0.8)))
    # marrow texture
    trng = _rng(spec.seed, "texture")
    n_waves = 24
    k = 2 * np.pi / trng.uniform(5.0, 30.0, size=n_waves)
    dirs = trng.normal(size=(n_waves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    anat.texture_waves = np.column_stack([dirs * k[:, None],
                                          trng.uniform(0, 2 * np.pi, n_waves)])
    if spec.marrow_heterogeneity > 0:
        prng = _rng(spec.seed, "patch")
        n_p = 16
        kp = 2 * np.pi / prng.uniform(6.0, 20.0, size=n_p)
        dp = prng.normal(size=(n_p, 3))
        dp /= np.linalg.norm(dp, axis=1, keepdims=True)
        anat.patch_waves = np.column_stack([dp * kp[:, None], prng.uniform(0, 2 * np.pi, n_p)])
    if spec.endplate_irregularity > 0:
        _add_surface_undulation(anat)
    if spec.marrow_fat_islands > 0:
        _add_focal_fat(anat)
    for hem in spec.hemangiomas:
        _add_hemangioma(anat, hem)
    for node in spec.schmorl_nodes:
        _add_schmorl_node(anat, node)
    # lesions
    for n_les, les_spec in enumerate(spec.lesions):
        anat.lesions.append(_make_lesion(anat, les_spec, n_les))
    for lesion in anat.lesions:
        _measure_lesion(anat, lesion)
    for n_les, lesion in enumerate(anat.lesions):
        if lesion.spec.fat_islands > 0:
            _add_lesion_islands(anat, lesion, n_les)
    return anat


def _add_surface_undulation(anat: Anatomy) -> None:
    """Smooth undulation of the endplates of T12-S1 (wavelength 6-16 mm)."""
    rng = _rng(anat.spec.seed, "surface")
    for name in LESION_VERTEBRAE:
        v = anat.vertebra(name)
        k = 2 * np.pi / rng.uniform(6.0, 16.0, size=(2, 3))
        ang = rng.uniform(0, 2 * np.pi, size=(2, 3))
        ph = rng.uniform(0, 2 * np.pi, size=(2, 3))
        v.surface_waves = np.stack([k * np.cos(ang), k * np.sin(ang), ph], axis=-1)
        if name == "S1":  # fused below: only the superior endplate undulates
            v.surface_waves[1] = [0.0, 0.0, np.pi / 2]  # cos(pi / 2) = 0
        v.surface_amp = anat.spec.endplate_irregularity
    anat._prim_cache.clear()


def _marrow_local(v: Vertebra, q: FloatArray) -> NDArray[np.bool_]:
    """Whether body-local points q ((n, 3)) lie in the marrow of ``v`` (no lesions)."""
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    zs, zi = v.z_surface(x, y, True), v.z_surface(x, y, False)
    out: NDArray[np.bool_] = ((v.section(x, y, z, inset=v.cortex) <= 1.0)
                              & (z <= zs - v.endplate) & (z >= zi + v.endplate)
                              & (np.abs(z) <= v.height / 2))
    return out


def _add_focal_fat(anat: Anatomy) -> None:
    """Poisson-many focal fat islands (radius 1.5-4 mm) in each vertebra T12-S1."""
    spec = anat.spec
    rng = _rng(spec.seed, "focal")
    for name in LESION_VERTEBRAE:
        v = anat.vertebra(name)
        n = int(rng.poisson(spec.marrow_fat_islands))
        spheres = []
        for _ in range(n):
            r = float(rng.uniform(1.5, 4.0))
            for _try in range(20):
                c = np.array([rng.uniform(-0.7, 0.7) * v.width / 2,
                              rng.uniform(-0.7, 0.7) * v.depth / 2,
                              rng.uniform(-0.5, 0.5) * v.height])
                if bool(_marrow_local(v, c[None, :])[0]):
                    spheres.append([*c, r])
                    break
        if spheres:
            v.focal_fat = np.array(spheres, dtype=float)
            v.focal_fat_code = anat.add_tissue(
                focal_fat_tissue(f"focalfat_{name}", spec.field_strength))


def _add_hemangioma(anat: Anatomy, h: HemangiomaSpec) -> None:
    """A hemangioma kept >= 2.5 mm (plus its radius) from both endplate surfaces."""
    v = anat.vertebra(h.vertebra)
    x, y = h.lr_position * v.width / 2, h.ap_position * v.depth / 2
    xa, ya = np.array([x]), np.array([y])
    zs, zi = float(v.z_surface(xa, ya, True)[0]), float(v.z_surface(xa, ya, False)[0])
    r = min(h.radius_mm, (zs - zi) / 2 - 2.5)
    z = float(np.clip(h.height_position * v.height / 2, zi + r + 2.5, zs - r - 2.5))
    k = len(v.hemangioma_codes)
    code = anat.add_tissue(hemangioma_tissue(f"hemangioma_{h.vertebra}{'' if k == 0 else k}",
                                             anat.field_strength, h.fat_fraction))
    v.hemangiomas = np.vstack([v.hemangiomas, [[x, y, z, r]]])
    v.hemangioma_codes = (*v.hemangioma_codes, code)


def _add_schmorl_node(anat: Anatomy, node: SchmorlNodeSpec) -> None:
    v = anat.vertebra(node.vertebra)
    superior = node.endplate == "superior"
    x0, y0 = node.lr_position * v.width / 2, node.ap_position * v.depth / 2
    xa, ya = np.array([x0]), np.array([y0])
    local_h = float(v.z_surface(xa, ya, True)[0] - v.z_surface(xa, ya, False)[0])
    code = anat.add_tissue(disc_nucleus(f"schmorl_{node.vertebra}_{node.endplate}", 0.9,
                                        anat.field_strength))
    v.schmorl_nodes.append(SchmorlNode(superior=superior, x0=x0, y0=y0,
                                       radius=node.radius_mm,
                                       depth=min(node.depth_mm, 0.35 * local_h), code=code))


def _weak_fat_fraction(anat: Anatomy, les: LesionSpec, v: Vertebra) -> float:
    """Fat fraction that gives a change of type ``les.modic_type`` T1 = t1_ratio x marrow."""
    assert les.t1_ratio is not None
    spec = anat.spec
    t1 = next((s for s in spec.resolved_series if s.role == "t1"), SeriesSpec(role="t1"))
    seq = default_sequence(t1, spec.vendor, spec.field_strength)
    fat = fat_relaxation(spec.field_strength)
    target = les.t1_ratio * tissue_signal(anat.tissues[v.marrow_code], seq, fat)
    s0 = tissue_signal(modic_tissue("x", les.modic_type, spec.field_strength, 0.0), seq, fat)
    s1 = tissue_signal(modic_tissue("x", les.modic_type, spec.field_strength, 1.0), seq, fat)
    return float(np.clip((target - s0) / (s1 - s0), 0.02, 0.98))


def _add_lesion_islands(anat: Anatomy, les: Lesion, n: int) -> None:
    """Fat islands (radius 1-2.5 mm) covering ``fat_islands`` of the type-1 part."""
    target = les.spec.fat_islands
    v = anat.vertebrae[les.vertebra]
    rng = _rng(anat.spec.seed, "islands", n)
    j1 = les.types.index("1")
    code1 = les.codes[j1]
    les.island_code = anat.add_tissue(focal_fat_tissue(
        f"modic1fat_{les.spec.vertebra}_{les.spec.endplate}", anat.field_strength))
    anat.lesion_type_of_code[les.island_code] = 1
    x, y, z = _lesion_grid(v, les)
    codes = anat._body_codes(les.vertebra, x, y, z)
    part = np.flatnonzero(codes == code1)
    if len(part) == 0:
        return
    volume = len(part) * _STEP ** 3
    mean_ball = 4.0 / 3.0 * np.pi * np.mean(rng.uniform(1.0, 2.5, 64) ** 3)
    spheres = np.zeros((0, 4))
    for _ in range(4):  # add islands until the covered share reaches the target
        covered = in_spheres(spheres, x[part], y[part], z[part]).mean() if len(spheres) else 0.0
        if covered >= 0.9 * target:
            break
        want = -np.log(max(1.0 - target, 1e-6)) + np.log(max(1.0 - covered, 1e-6))
        k = max(1, int(np.ceil(want * volume / mean_ball)))
        centres = part[rng.integers(0, len(part), size=k)]
        radii = rng.uniform(1.0, 2.5, size=k)
        spheres = np.vstack([spheres, np.column_stack([x[centres], y[centres], z[centres],
                                                       radii])])
    les.islands = spheres
    _measure_lesion(anat, les)


def _build_segments(anat: Anatomy) -> None:
    verts = anat.vertebrae
    segs: list[Segment] = []
    s = 0.0
    # bottom (S4) to top (T8)
    for j in range(len(verts) - 1, -1, -1):
        v = verts[j]
        o0, _ = v.plane(False)
        o1, _ = v.plane(True)
        dims = np.array([v.width / 2, v.depth / 2, v.canal_half_width, v.canal_depth])
        segs.append(Segment("body", v.name, j, o0, v.axes, o1, v.axes, s, s + v.height,
                             dims, dims.copy()))
        s += v.height
        if j > 0:
            up = verts[j - 1]
            disc = anat.discs[j - 1]
            oa, _ = v.plane(True)
            ob, _ = up.plane(False)
            h = float(np.linalg.norm(ob - oa))
            dims_up = np.array([up.width / 2, up.depth / 2, up.canal_half_width,
                                up.canal_depth])
            segs.append(Segment("disc", disc.name, j - 1, oa, v.axes, ob, up.axes, s, s + h,
                                 dims, dims_up))
            s += h
    for seg in segs:
        cs = []
        for o, f, d in ((seg.o0, seg.f0, seg.dims0), (seg.o1, seg.f1, seg.dims1)):
            for xx in (-95.0, 95.0):
                for yy in (-(d[1] + 35.0), d[1] + d[3] + 55.0):
                    cs.append(o + xx * f[0] + yy * f[1])
        arr = np.array(cs)
        seg.lo = arr.min(axis=0) - 1.0
        seg.hi = arr.max(axis=0) + 1.0
    anat._segments = segs


def _build_torso(anat: Anatomy, rng: np.random.Generator) -> None:
    anat.torso_ax = float(rng.uniform(140.0, 175.0))
    anat.torso_ay = float(rng.uniform(108.0, 128.0))
    anat.fat_thickness = float(rng.uniform(9.0, 28.0))
    zs, ys, depth = [], [], []
    for v in anat.vertebrae:
        if v.kind == "sacral":
            muscle = {"S1": 30.0, "S2": 14.0}.get(v.name, 6.0)
        elif v.kind == "thoracic":
            muscle = 42.0
        else:
            muscle = 52.0
        zs.append(v.center[2])
        ys.append(v.center[1])
        depth.append(v.depth / 2 + 1.5 + v.canal_depth + muscle + anat.fat_thickness + 2.0)
    order = np.argsort(zs)
    z_s, y_s, d_s = np.array(zs)[order], np.array(ys)[order], np.array(depth)[order]
    # smooth the piecewise-linear profiles (Gaussian, sigma 20 mm) on a 2 mm grid
    zg = np.arange(z_s[0] - 60.0, z_s[-1] + 60.0, 2.0)
    kern = np.exp(-0.5 * (np.arange(-30, 31) * 2.0 / 20.0) ** 2)
    kern /= kern.sum()

    def smooth(vals: FloatArray) -> FloatArray:
        g = np.interp(zg, z_s, vals)
        padded = np.concatenate([np.full(30, g[0]), g, np.full(30, g[-1])])
        out: FloatArray = np.convolve(padded, kern, mode="valid")
        return out

    anat.back_depth_table = (zg, smooth(y_s), smooth(d_s))


def _make_lesion(anat: Anatomy, les: LesionSpec, n: int) -> Lesion:
    i = anat.vertebra_index(les.vertebra)
    v = anat.vertebrae[i]
    rng = _rng(anat.spec.seed, "lesion", n)
    superior = les.endplate == "superior"
    x0 = les.lr_position * v.width / 2
    y0 = les.ap_position * v.depth / 2
    rx = les.width_fraction * v.width / 2
    ry = les.depth_fraction * v.depth / 2
    xa, ya = np.array([x0]), np.array([y0])
    local_h = float(v.z_surface(xa, ya, True)[0] - v.z_surface(xa, ya, False)[0])
    h0 = les.height_fraction * local_h
    k = 2 * np.pi / rng.uniform(8.0, 20.0, size=3)
    ang = rng.uniform(0, 2 * np.pi, size=3)
    waves = np.column_stack([k * np.cos(ang), k * np.sin(ang), rng.uniform(0, 2 * np.pi, 3)])
    types = les.types
    q = 3.0
    split = les.mix_fraction
    if len(types) == 2 and les.mix_layout == "side":
        split = side_split(q, les.mix_fraction)
    lesion = Lesion(spec=les, vertebra=i, superior=superior, x0=x0, y0=y0, rx=rx, ry=ry,
                    h0=h0, local_height=local_h, q=q, irregularity=les.irregularity,
                    waves=waves, types=types, split=split)
    codes = []
    for t in types:
        ff = les.fat_fraction if len(types) == 1 else None
        if les.t1_ratio is not None:
            ff = _weak_fat_fraction(anat, les, v)
        tis = modic_tissue(f"modic{t}_{les.vertebra}_{les.endplate}", t, anat.field_strength,
                           fat_fraction=ff, texture=anat.spec.marrow_texture,
                           patch=0.5 * PATCH_AMPLITUDE * anat.spec.marrow_heterogeneity)
        code = anat.add_tissue(tis)
        anat.lesion_type_of_code[code] = int(t)
        codes.append(code)
    lesion.codes = tuple(codes)
    return lesion


_STEP = 0.4  # mm, grid of the lesion measurements


def _lesion_grid(v: Vertebra, les: Lesion) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Body-local points of a 0.4 mm grid over the box that holds the change."""
    xs = np.arange(les.x0 - les.rx, les.x0 + les.rx + _STEP, _STEP)
    ys = np.arange(les.y0 - les.ry, les.y0 + les.ry + _STEP, _STEP)
    if les.superior:
        z_hi = v.height / 2
        z_lo = v.height / 2 - v.concavity_sup - v.surface_amp - les.h0 - 1.0
    else:
        z_lo = -v.height / 2
        z_hi = -v.height / 2 + v.concavity_inf + v.surface_amp + les.h0 + 1.0
    zs = np.arange(z_lo, z_hi + _STEP, _STEP)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    return X.ravel(), Y.ravel(), Z.ravel()


def _measure_lesion(anat: Anatomy, les: Lesion) -> None:
    """Volume, per-type volume fractions and maximum height of the painted change.

    Fat islands count as part of the type-1 component (and as ``island_fraction`` of it).
    """
    v = anat.vertebrae[les.vertebra]
    x, y, z = _lesion_grid(v, les)
    codes = anat._body_codes(les.vertebra, x, y, z)
    counts = {t: int(np.count_nonzero(codes == c))
              for t, c in zip(les.types, les.codes, strict=True)}
    n_islands = int(np.count_nonzero(codes == les.island_code)) if les.island_code >= 0 else 0
    if n_islands:
        counts["1"] += n_islands
    total = sum(counts.values())
    vol = total * _STEP ** 3
    all_codes = [*les.codes, *([les.island_code] if les.island_code >= 0 else [])]
    in_les = np.isin(codes, np.array(all_codes))
    if total:
        w = les.depth_below(v, x[in_les], y[in_les], z[in_les])
        local_h = (v.z_surface(x[in_les], y[in_les], True)
                   - v.z_surface(x[in_les], y[in_les], False))
        max_frac = float(np.max(w / local_h))
    else:
        max_frac = 0.0
    fractions = {t: (counts[t] / total if total else 0.0) for t in les.types}
    island_fraction = n_islands / counts["1"] if n_islands else 0.0
    les.measured = LesionMeasure(volume_mm3=float(vol), fractions=fractions,
                                 max_height_fraction=max_frac, island_fraction=island_fraction)
