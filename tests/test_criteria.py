"""The Modic criteria on constructed regions whose statistics are known by construction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from modic.criteria import (
    DEFAULT_PARAMETERS,
    Call,
    ClassifierParameters,
    ModicType,
    SignalContext,
    body_departure,
    classify_samples,
)
from modic.errors import MeasurementError
from modic.sequence import Role

T1, T2, STIR = Role.T1, Role.T2, Role.STIR

# Signal of each tissue relative to normal marrow (= 100) on T1, T2 (FSE) and STIR,
# following the table of Modic 1988 / DOMAIN.md: oedema dark on T1 and bright on fluid
# sequences; fat bright on T1 and T2 FSE, dark on STIR; sclerosis dark everywhere.
TISSUE = {
    "0": (100, 100, 100),
    "1": (62, 150, 190),
    "2": (140, 118, 45),
    "3": (55, 58, 60),
}


def region(rng, kinds, n=200, sd=6.0, roles=(T1, T2, STIR)):
    """n voxels split evenly among tissue kinds, the same voxels on every sequence."""
    parts = np.array_split(np.arange(n), len(kinds))
    out = {r: np.empty(n) for r in roles}
    for kind, idx in zip(kinds, parts, strict=True):
        for j, r in enumerate((T1, T2, STIR)):
            if r in out:
                out[r][idx] = rng.normal(TISSUE[kind][j], sd, idx.size)
    return out


def reference(rng, n=300, sd=6.0, roles=(T1, T2, STIR)):
    return {r: rng.normal(100, sd, n) for r in roles}


@pytest.mark.parametrize("kind", ["0", "1", "2", "3"])
@pytest.mark.parametrize("roles", [(T1, T2, STIR), (T1, T2), (T1, STIR)], ids=["t1t2stir", "t1t2", "t1stir"])
def test_each_pure_type(kind, roles):
    rng = np.random.default_rng(1)
    d = classify_samples(region(rng, [kind], roles=roles), reference(rng, roles=roles))
    assert d.modic_type.value == kind
    assert d.agreement >= 0.9  # resampling stability; ``confidence`` is the calibrated probability
    assert d.fractions[kind] >= 0.9
    assert abs(sum(d.fractions.values()) - 1) < 1e-9


@pytest.mark.parametrize(("kinds", "expected"), [(["1", "2"], "1/2"), (["2", "3"], "2/3")])
def test_mixed_types(kinds, expected):
    rng = np.random.default_rng(2)
    d = classify_samples(region(rng, kinds, n=240), reference(rng))
    assert d.modic_type.value == expected
    a, b = expected.split("/")
    assert 0.4 <= d.fractions[a] <= 0.6 and 0.4 <= d.fractions[b] <= 0.6


def test_mixed_1_2_is_found_although_the_whole_roi_mean_is_near_iso():
    # half oedema (T1 0.62) and half fat (T1 1.40): the whole-region T1 mean is ~1.0,
    # so a whole-ROI ratio rule calls T1 iso; voxel-wise typing still finds both tissues
    rng = np.random.default_rng(3)
    reg = region(rng, ["1", "2"], n=200)
    assert 0.9 < reg[T1].mean() / 100 < 1.1
    d = classify_samples(reg, reference(rng))
    assert d.modic_type is ModicType.MIXED_1_2


def test_a_little_of_a_second_type_does_not_make_it_mixed():
    rng = np.random.default_rng(4)
    reg = region(rng, ["1"] * 9 + ["2"], n=200)  # 10 % fat inside an oedema region
    d = classify_samples(reg, reference(rng))
    assert d.modic_type is ModicType.TYPE1


def test_ratios_and_intervals_match_the_construction():
    rng = np.random.default_rng(5)
    reg, ref = region(rng, ["1"], n=400, sd=4), reference(rng, n=400, sd=4)
    d = classify_samples(reg, ref)
    t1, t2, stir = d.ratios[T1], d.ratios[T2], d.ratios[STIR]
    assert t1.ratio == pytest.approx(0.62, abs=0.02)
    assert t2.ratio == pytest.approx(1.50, abs=0.03)
    assert stir.ratio == pytest.approx(1.90, abs=0.04)
    # the interval holds the normal variation of marrow between places (tissue_sd = 8 %):
    # about +/- 2 x 8 % of the ratio, not only the sampling error of 400 voxels
    assert t1.low < t1.ratio < t1.high
    assert 0.1 < (t1.high - t1.low) / t1.ratio < 0.45
    sampling_only = classify_samples(reg, ref, parameters=replace(DEFAULT_PARAMETERS, tissue_sd=0.0)).ratios[
        T1
    ]
    assert sampling_only.high - sampling_only.low < 0.05
    assert (t1.call, t2.call, stir.call) == (Call.HYPO, Call.HYPER, Call.HYPER)
    assert t1.n_region == 400 and t1.n_reference == 400


def test_borderline_region_has_low_confidence():
    # an oedema patch filling exactly the abnormal-fraction threshold of a normal region:
    # resampling falls on either side, so the confidence must be far from certain
    rng = np.random.default_rng(6)
    share = DEFAULT_PARAMETERS.abnormal_fraction
    n = 200
    k = round(share * n)
    reg = region(rng, ["0"], n=n)
    patch = region(rng, ["1"], n=k)
    for r in reg:
        reg[r][:k] = patch[r]
    d = classify_samples(reg, reference(rng))
    assert d.modic_type in (ModicType.NONE, ModicType.TYPE1)
    assert 0.3 <= d.agreement <= 0.8 and d.confidence < 0.9
    clear = classify_samples(region(rng, ["1"], n=n), reference(rng))
    assert clear.agreement >= 0.95


def test_noise_level_matters_not_only_the_ratio():
    # the same T1 ratio of 0.8 is a clear change in a quiet image and noise in a noisy one
    rng = np.random.default_rng(7)
    quiet = classify_samples(
        {T1: rng.normal(80, 3, 200), T2: rng.normal(140, 3, 200)},
        {T1: rng.normal(100, 3, 300), T2: rng.normal(100, 3, 300)},
    )
    noisy = classify_samples(
        {T1: rng.normal(80, 25, 200), T2: rng.normal(140, 25, 200)},
        {T1: rng.normal(100, 25, 300), T2: rng.normal(100, 25, 300)},
    )
    assert quiet.modic_type is ModicType.TYPE1 and quiet.agreement > 0.95
    assert noisy.fractions["1"] < quiet.fractions["1"]


def test_tiny_region_warns_and_too_tiny_is_refused():
    rng = np.random.default_rng(8)
    d = classify_samples(region(rng, ["1"], n=8), reference(rng))
    assert d.modic_type is ModicType.TYPE1
    assert any("only 8 voxels" in w for w in d.warnings)
    with pytest.raises(MeasurementError, match="region has 4 voxels; at least 5"):
        classify_samples(region(rng, ["1"], n=4), reference(rng))


def test_fat_suppressed_t2_labelled_as_t2_is_flagged():
    # a type-2 region on a series called T2 but fat-suppressed: fat is dark on it. Bright T1
    # with dark fast spin-echo T2 fits no Modic pattern: indeterminate, and the warning says
    # what is probably wrong
    rng = np.random.default_rng(9)
    reg = {T1: rng.normal(140, 6, 200), T2: rng.normal(45, 6, 200)}
    d = classify_samples(reg, {T1: rng.normal(100, 6, 300), T2: rng.normal(100, 6, 300)})
    assert d.modic_type is ModicType.INDETERMINATE
    assert "fits no Modic" in d.reason or "contradict" in d.reason
    assert any("may be fat-suppressed" in w for w in d.warnings)


def test_missing_sequences_and_bad_reference_are_refused():
    rng = np.random.default_rng(10)
    with pytest.raises(MeasurementError, match="T1-weighted sequence is needed"):
        classify_samples({T2: rng.normal(100, 5, 50)}, {T2: rng.normal(100, 5, 50)})
    with pytest.raises(MeasurementError, match="T2-weighted or STIR sequence is needed"):
        classify_samples({T1: rng.normal(100, 5, 50)}, {T1: rng.normal(100, 5, 50)})
    with pytest.raises(MeasurementError, match="reference median on T1 is -1"):
        classify_samples(
            {T1: rng.normal(100, 5, 50), T2: rng.normal(100, 5, 50)},
            {T1: np.full(50, -1.0), T2: rng.normal(100, 5, 50)},
        )
    with pytest.raises(MeasurementError, match="same voxels on every sequence"):
        classify_samples(
            {T1: rng.normal(100, 5, 50), T2: rng.normal(100, 5, 40)},
            {T1: rng.normal(100, 5, 50), T2: rng.normal(100, 5, 50)},
        )


def test_result_is_reproducible_for_a_seed():
    rng = np.random.default_rng(11)
    reg, ref = region(rng, ["1", "2"]), reference(rng)
    a = classify_samples(reg, ref, seed=3)
    b = classify_samples(reg, ref, seed=3)
    assert a == b


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="abnormal_fraction must be between 0 and 1"):
        ClassifierParameters(abnormal_fraction=1.5)
    with pytest.raises(ValueError, match="confidence_calibration must be increasing"):
        ClassifierParameters(confidence_calibration=((0.5, 0.9), (0.4, 0.95)))


def test_dark_t1_with_iso_fluid_signal_is_still_a_change():
    # T1 clearly dark; T2 only slightly brighter than marrow (within its voxel threshold), as
    # when fat on a fast spin-echo T2 masks oedema: the change must not be called normal
    rng = np.random.default_rng(12)
    ref = {T1: rng.normal(100, 5, 300), T2: rng.normal(100, 5, 300)}
    oedema = classify_samples({T1: rng.normal(62, 5, 200), T2: rng.normal(106, 5, 200)}, ref)
    assert oedema.modic_type is ModicType.TYPE1
    sclerosis = classify_samples({T1: rng.normal(62, 5, 200), T2: rng.normal(94, 5, 200)}, ref)
    assert sclerosis.modic_type is ModicType.TYPE3


def _scaled(rng, ratios, n=150, cv=0.08):
    """n voxels per sequence at these ratios to a marrow of 100, relative noise cv."""
    return {r: rng.normal(100 * v, 100 * v * cv, n) for r, v in ratios.items()}


def test_strong_oedema_with_a_mild_t1_drop_is_type_1():
    # the independent cohort's missed type 1: T1 0.94, T2 1.77, STIR 1.83 was "0, confidence 1.0"
    rng = np.random.default_rng(20)
    reg = _scaled(rng, {T1: 0.94, T2: 1.77, STIR: 1.83})
    d = classify_samples(reg, _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300))
    assert d.modic_type is ModicType.TYPE1
    assert d.agreement >= 0.9


def test_poorly_suppressed_stir_keeps_fat_type_2_and_is_never_a_confident_normal():
    # the real 1.5 T band: T1 1.30, T2 1.45, TIRM 1.47 against marrow of the same vertebra,
    # on a TIRM whose fat is brighter than marrow
    rng = np.random.default_rng(21)
    reg = _scaled(rng, {T1: 1.30, T2: 1.45, STIR: 1.47})
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300)
    poor = SignalContext(fat_ratio={T1: 1.8, T2: 1.5, STIR: 2.3})
    d = classify_samples(reg, ref, context=poor)
    assert d.modic_type is ModicType.TYPE2
    # without knowing the STIR's fat contrast, bright T1 with bright STIR contradicts
    # Modic's table: indeterminate, and in no case a normal
    blind = classify_samples(reg, ref)
    assert blind.modic_type is ModicType.INDETERMINATE
    assert blind.reason
    good = SignalContext(fat_ratio={T1: 1.8, T2: 1.5, STIR: 0.3})
    assert classify_samples(reg, ref, context=good).modic_type is not ModicType.NONE


def test_t1_bright_voxels_are_never_oedema_or_sclerosis():
    rng = np.random.default_rng(22)
    reg = _scaled(rng, {T1: 1.35, T2: 1.6, STIR: 1.9})
    d = classify_samples(reg, _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300))
    # voxels whose own T1 is within noise may still read as oedema, never most of them
    assert d.fractions["1"] < 0.35 and d.fractions["3"] < 0.05
    assert d.modic_type is not ModicType.TYPE1


def test_weak_fatty_change_is_found_from_the_region_as_a_whole():
    # T1 1.15 and T2 1.25 (weak type 2): each voxel is within noise at 12 %, the region is not
    rng = np.random.default_rng(23)
    reg = _scaled(rng, {T1: 1.15, T2: 1.25, STIR: 0.75}, n=200, cv=0.12)
    d = classify_samples(reg, _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.12))
    assert d.modic_type is ModicType.TYPE2


def test_a_reference_of_uncertain_level_lowers_the_confidence_of_a_call_that_depends_on_it():
    # a T1 0.75 / T2 0.80 region: sclerosis against this reference, normal against one 25 %
    # darker. Measured against a reference from another vertebra whose level is uncertain
    # by 20 % (a coil gradient that could not be measured), it must not be certain
    rng = np.random.default_rng(24)
    reg = _scaled(rng, {T1: 0.75, T2: 0.80, STIR: 0.80}, n=300, cv=0.05)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.05)
    near = classify_samples(reg, ref)
    far = classify_samples(reg, ref, context=SignalContext(systematic={T1: 0.2, T2: 0.2, STIR: 0.2}))
    assert near.modic_type is ModicType.TYPE3
    assert far.confidence < 0.9
    assert far.agreement < near.agreement - 0.1 and far.confidence < near.confidence


def test_contradictory_sequences_are_indeterminate_with_a_reason():
    # T1 dark and STIR dark but T2 very bright: no Modic tissue looks like that
    rng = np.random.default_rng(25)
    reg = _scaled(rng, {T1: 0.6, T2: 1.8, STIR: 0.5})
    d = classify_samples(reg, _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300))
    assert d.modic_type is ModicType.INDETERMINATE
    assert "Modic" in d.reason
    assert not d.modic_type.is_change


def test_confidence_calibration_maps_the_agreement():
    rng = np.random.default_rng(26)
    reg, ref = region(rng, ["1"]), reference(rng)
    # a type-1 call follows the map for changes, not the one for normal calls
    p = replace(DEFAULT_PARAMETERS, change_calibration=((0.5, 0.2), (0.99, 0.6)), confidence_calibration=())
    d = classify_samples(reg, ref, parameters=p)
    assert d.modic_type is ModicType.TYPE1 and d.agreement >= 0.99
    assert d.confidence == pytest.approx(0.2 + (min(d.agreement, 0.99) - 0.5) / 0.49 * 0.4, abs=1e-9)
    q = replace(DEFAULT_PARAMETERS, change_calibration=(), confidence_calibration=((0.5, 0.2), (0.99, 0.6)))
    assert classify_samples(reg, ref, parameters=q).confidence == pytest.approx(d.agreement, abs=1e-9)


def test_a_weak_type_2_band_in_fatty_marrow_is_found():
    # fatty marrow: the study's own fat is only 1.3x the marrow on T1; a weak fat band at
    # T1 1.12, T2 1.15, STIR 0.75 (each voxel 1.5-3 units off in the fat direction)
    rng = np.random.default_rng(31)
    fatty = SignalContext(fat_ratio={T1: 1.3, T2: 1.5, STIR: 0.3})
    reg = _scaled(rng, {T1: 1.12, T2: 1.15, STIR: 0.75}, n=150, cv=0.05)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.05)
    assert classify_samples(reg, ref, context=fatty).modic_type is ModicType.TYPE2
    # modelling a fat-content variation of normal marrow (fat_sd, off by default) hides it
    hidden = classify_samples(reg, ref, context=fatty, parameters=replace(DEFAULT_PARAMETERS, fat_sd=0.06))
    assert hidden.modic_type is ModicType.NONE


def test_fat_content_variation_option_spares_lean_marrow_not_sclerosis():
    # without STIR, leaner marrow (T1 0.84, T2 0.76) points nearly the way sclerosis does
    # (its T1 is too faint for type 3: indeterminate); with fat_sd it is normal marrow,
    # while sclerosis (T1 0.6, T2 0.65) stays type 3
    rng = np.random.default_rng(32)
    p = replace(DEFAULT_PARAMETERS, fat_sd=0.1)
    fat = SignalContext(fat_ratio={T1: 1.6, T2: 2.0})
    ref = _scaled(rng, {T1: 1, T2: 1}, n=300, cv=0.03)
    lean = _scaled(rng, {T1: 0.84, T2: 0.76}, n=150, cv=0.03)
    sclerosis = _scaled(rng, {T1: 0.6, T2: 0.65}, n=150, cv=0.03)
    assert classify_samples(lean, ref, context=fat).modic_type is ModicType.INDETERMINATE
    assert classify_samples(lean, ref, context=fat, parameters=p).modic_type is ModicType.NONE
    assert classify_samples(sclerosis, ref, context=fat, parameters=p).modic_type is ModicType.TYPE3


def test_matched_filter_option_finds_a_pattern_spread_over_every_sequence():
    # oedema moving T1, T2 and STIR each by about 2 units (unit ~ 9 %): no single sequence
    # passes voxel_z = 2.5, their sum along the type-1 direction does
    rng = np.random.default_rng(33)
    reg = _scaled(rng, {T1: 0.84, T2: 1.19, STIR: 1.19}, n=150, cv=0.03)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.03)
    p = replace(DEFAULT_PARAMETERS, region_z=10.0)  # voxels only
    assert classify_samples(reg, ref, parameters=p).modic_type is ModicType.NONE
    on = classify_samples(reg, ref, parameters=replace(p, matched_filter=True))
    assert on.modic_type is ModicType.TYPE1


def test_a_departure_that_continues_into_the_body_is_patchy_marrow_not_a_change():
    # a fatty patch of normal marrow under the endplate (T1 1.17, T2 1.25, STIR 0.73,
    # 1.5-3 units): read alone it is type 2; the vertebra's marrow just beyond the band
    # departs the same way (the patch continues into the body), so it is normal marrow
    rng = np.random.default_rng(41)
    fatty = {T1: 1.17, T2: 1.25, STIR: 0.73}
    reg = _scaled(rng, fatty, n=150, cv=0.06)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.06)
    alone = classify_samples(reg, ref)
    assert alone.modic_type is ModicType.TYPE2
    beyond = SignalContext(body={r: 100.0 * v * 0.98 for r, v in fatty.items()})
    patchy = classify_samples(reg, ref, context=beyond)
    assert patchy.modic_type is ModicType.NONE
    assert "beyond" in patchy.reason
    assert any("continues into the vertebral body" in w for w in patchy.warnings)
    assert patchy.body_rule and not alone.body_rule
    # a judgement the bootstrap cannot test (the marrow beyond moves with it): never confident
    assert patchy.confidence < 0.7 < alone.confidence
    # the same band with normal marrow beyond it is anchored at the endplate: type 2
    anchored = SignalContext(body={T1: 101.0, T2: 99.0, STIR: 100.5})
    assert classify_samples(reg, ref, context=anchored).modic_type is ModicType.TYPE2
    # and with the rule off (body_ratio 0) the body marrow is not used
    off = replace(DEFAULT_PARAMETERS, body_ratio=0.0)
    assert classify_samples(reg, ref, context=beyond, parameters=off).modic_type is ModicType.TYPE2


def test_a_strong_change_is_a_change_however_deep_it_reaches():
    # oedema far beyond body_max_z (T1 0.6, STIR 2.5) that fills the marrow beyond the band
    # too (a deep change under a short band) stays type 1
    rng = np.random.default_rng(42)
    oedema = {T1: 0.6, T2: 1.6, STIR: 2.5}
    reg = _scaled(rng, oedema, n=150, cv=0.06)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.06)
    deep = SignalContext(body={r: 100.0 * v for r, v in oedema.items()})
    assert classify_samples(reg, ref, context=deep).modic_type is ModicType.TYPE1


def test_body_departure_reports_the_share_of_the_departure_found_beyond():
    rng = np.random.default_rng(43)
    reg = _scaled(rng, {T1: 1.2, T2: 1.2, STIR: 0.7}, n=150, cv=0.06)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.06)
    med = {r: float(np.median(v)) for r, v in reg.items()}
    rmed = {r: float(np.median(v)) for r, v in ref.items()}
    # beyond: half the region's log departure on every sequence -> ratio 0.5
    half = {r: rmed[r] * np.sqrt(med[r] / rmed[r]) for r in reg}
    ratio, size = body_departure(reg, ref, context=SignalContext(body=half))
    assert ratio == pytest.approx(0.5, abs=0.02)
    assert size > 2.0
    assert np.isnan(body_departure(reg, ref)[0])


def test_a_normal_call_with_a_quarter_of_its_voxels_abnormal_does_not_claim_certainty():
    # a band of 200 voxels of which 25 % are type-2 marrow (short of the 40 % that makes a
    # change) and 70 % normal: the bootstrap agrees on "normal" in every resample, but such
    # calls hide weak or small changes; the same band with no abnormal voxels is certain
    rng = np.random.default_rng(51)
    ref = region(rng, ["0"], n=300)
    clean = classify_samples(region(rng, ["0"], n=200), ref)
    assert clean.modic_type is ModicType.NONE and clean.confidence >= 0.98
    mixed = region(rng, ["0"], n=200)
    fat = region(rng, ["2"], n=50)
    for r in (T1, T2, STIR):
        mixed[r][:50] = fat[r]
    part = classify_samples(mixed, ref)
    assert part.modic_type is ModicType.NONE
    assert 0.2 <= part.fractions["2"] <= 0.3
    assert part.agreement >= 0.95  # the bootstrap alone would say "certain"
    assert part.confidence < 0.95
    assert "short of the 40% that makes a change" in part.reason
    assert "cannot be ruled out" in part.reason
    # with the cap off, the confidence is the agreement's alone
    off = replace(DEFAULT_PARAMETERS, normal_typed_calibration=())
    assert classify_samples(mixed, ref, parameters=off).confidence > 0.96


def test_normal_typed_calibration_must_not_rise_with_the_share():
    with pytest.raises(ValueError, match="non-increasing"):
        ClassifierParameters(normal_typed_calibration=((0.1, 0.9), (0.3, 0.95)))
    with pytest.raises(ValueError, match="body_explained_confidence"):
        ClassifierParameters(body_explained_confidence=0.0)


def test_a_band_dark_on_t2_and_stir_with_a_near_normal_t1_is_not_sclerosis():
    # a normal band 0-2 px from the endplate on a 4.5 mm real-style scan: T1 0.92, T2 0.75,
    # STIR 0.85 (denser subchondral bone, partial volume, a coil gradient): most voxels are
    # dark "on every sequence", but sclerosis is dark on T1 (Modic 1988). Not type 3: an
    # indeterminate call that says why. Real sclerosis (T1 0.55) stays type 3.
    rng = np.random.default_rng(52)
    ref = _scaled(rng, {T1: 1, T2: 1, STIR: 1}, n=300, cv=0.05)
    band = _scaled(rng, {T1: 0.92, T2: 0.75, STIR: 0.85}, n=150, cv=0.05)
    d = classify_samples(band, ref)
    assert d.modic_type is ModicType.INDETERMINATE
    assert d.fractions["3"] >= 0.4  # the voxels alone would have made it type 3
    assert "sclerosis (type 3) is dark on T1" in d.reason
    assert "T1 0.92x" in d.reason
    sclerosis = _scaled(rng, {T1: 0.55, T2: 0.6, STIR: 0.6}, n=150, cv=0.05)
    s = classify_samples(sclerosis, ref)
    assert s.modic_type is ModicType.TYPE3 and s.confidence >= 0.9
