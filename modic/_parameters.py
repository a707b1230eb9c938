"""The thresholds of the Modic classifier (:mod:`modic.criteria`), as plain data.

Without numpy, so that a batch re-run (:mod:`modic.batch`), whose fingerprints hold the
parameters, does not import the classifier to find that nothing changed. Import them from
:mod:`modic.criteria`, which re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClassifierParameters", "DEFAULT_PARAMETERS"]


@dataclass(frozen=True)
class ClassifierParameters:
    """The thresholds of the classifier. See docs/classifier.md for their sources.

    Attributes
    ----------
    voxel_z : float
        A voxel is abnormal on a sequence when its log ratio to the reference lies more
        than this many units ``s`` (module docstring, step 1) from 0. Calibrated.
    tissue_sd : float
        Relative variation of normal marrow signal between places of one spine after the
        reference is matched (heterogeneity, residual coil sensitivity): the floor of the
        unit ``s``, so a quiet image cannot make a few percent "abnormal". Calibrated on
        the realistic phantom cohort, which has heterogeneous marrow and coil gradients.
    region_z : float
        The region's median departs from the reference on a sequence when its log ratio
        exceeds this many of its uncertainties (median standard errors of region and
        reference, ``tissue_sd`` and the systematic term). Calibrated.
    min_cosine : float
        A voxel or region takes the type whose signature is closest in direction, when the
        cosine is at least this; below it, its sequences contradict every Modic pattern
        (untyped). Calibrated.
    type_margin : float
        A voxel whose best two types are within this cosine of each other is ambiguous
        between them and takes the one that dominates the region. Design (0.1).
    sign_z : float
        Modic's table rules a type out for a voxel whose sequence lies beyond this many
        units on the wrong side (T1 brighter than marrow: not oedema or sclerosis; darker:
        not fat; fluid-bright: not sclerosis; STIR-dark: not oedema). Below the voxel
        threshold, so that a T1-bright voxel whose fluid signal is high is never oedema.
        Calibrated (1.0, among 1.0 / 1.5 / 2.0, 2026-12-03; it was 1.5 by design: 7 % of
        normal voxels by noise alone on one side, where 1.0 is 16 %; it only matters for
        voxels that are abnormal on another sequence).
    fat_sd : float
        Normal variation of marrow *fat content* from place to place (age, patches, focal
        fat), in log T1 units: a correlated variation along the fat direction of every
        sequence (the type-2 signature of the study), on top of the independent
        ``tissue_sd``. Patterns along that direction (fattier or leaner marrow, which
        without a STIR is nearly parallel to the sclerosis pattern) need to be larger to
        count; the bootstrap moves the reference along it. Calibrated.
    matched_filter : bool
        Besides any single sequence beyond ``voxel_z`` (``region_z``), a voxel (region) is
        abnormal when its deviations *along the direction of the best-fitting type*, all
        sequences together, exceed the threshold: the projection ``z . s / |s|`` of its
        pattern on that type's signature (a matched filter; for normal marrow it is a unit
        normal variate, like one sequence's ``z``). A weak change that moves T1, T2 and
        STIR each by 1.5-2.5 units in a Modic pattern is found; a single sequence off by
        the same amount in a pattern no type has is not. Calibrated (on / off).
    abnormal_fraction : float
        A region is typed from its voxels when at least this share of them is typed
        abnormal. Calibrated (0.4).
    mixed_fraction : float
        A region is mixed (1/2 or 2/3) when the second type makes up at least this share
        of its abnormal voxels. Held >= 0.15 (a visible share of the change), see
        docs/classifier.md.
    untyped_fraction : float
        A region of which at least this share is untyped, and that is not typed otherwise,
        is indeterminate ("too much of it cannot be typed"). Design (0.3 = the share that
        makes a region abnormal).
    iso_margin : float
        Per-sequence SIR call: ``iso`` within 1 +/- iso_margin. Explanatory only (the type
        comes from steps 3-5). Typical SIRs of Modic changes are 0.5-0.8 and 1.2-2 (Eur
        Radiol Exp 2017; Gao 2022). Design choice.
    n_bootstrap : int
        Resamples for the confidence and the SIR intervals (200: the 2.5/97.5 percentiles
        and a confidence to about +/- 0.03).
    min_voxels : int
        Fewer voxels than this in a region or reference is an error (5).
    small_voxels : int
        Fewer voxels than this gets a warning (20).
    cortex_level : float
        Partial volume at the endplate (modic.reading): the cortical endplate and the disc
        are where the smoothed T1 falls below this share of the reference marrow. Cortical
        bone gives no signal and disc is darker than marrow on T1, while Modic 1 and 3
        marrow keeps 0.5-0.9x (Eur Radiol Exp 2017; Gao 2022). Calibrated.
    pv_margin_px, pv_slab_fraction : float
        Region voxels closer to that boundary than ``pv_margin_px`` pixels plus
        ``pv_slab_fraction`` of the slice thickness (the in-plane blur of one to two
        pixels, and the through-plane reach of the endplate's curvature within a thick
        slab) are left out as partial volume. Calibrated.
    pv_max_share : float
        Never more than this share of a region is left out (the furthest voxels stay).
    focal_gap_mm : float
        A T1-bright voxel is part of a focus inside the body (hemangioma, focal fat; not a
        Modic change), and left out, when normal marrow separates it from the endplate
        over at least this distance (modic.reading.focal_lesion_mask). Design: about one
        pixel of a lumbar sagittal T1; the phantom keeps hemangiomas >= 2.5 mm from the
        endplate, and on real scans a hemangioma is well inside the body.
    body_ratio : float
        A change call is normal marrow after all when the vertebra's own marrow just
        beyond the region (:attr:`SignalContext.body`) departs from the reference in the
        same way at least this strongly: the projection of its departure on the region's,
        in units, over the region's squared length (1: the same departure, 0: none). A
        Modic change is a band anchored at the endplate, strongest there and fading into
        the body; patchy or fatty-with-age marrow is not organised by the endplate and
        continues past the band. Only for a region departure below ``body_max_z`` units on
        every sequence (a strong change is a change, wherever it reaches). 0: off.
        Calibrated (docs/classifier.md).
    body_max_z : float
        The largest region departure (units ``s``, any sequence) that ``body_ratio`` may
        explain as patchy marrow. Calibrated.
    far_reference_sd : float
        Uncertainty of a reference taken from another vertebra, per level of distance,
        when the study has no other references to measure its coil gradient. On a real
        1.5 T study (issue 7) the receive coil made L1 1.5x brighter than L4, ln(1.5) / 3 =
        0.135 per level, and the L1 reference read L2's normal marrow as 0.66x; 0.15 per
        level covers the first. It moves all sequences together (one coil), so it mostly
        blurs the "dark on everything" pattern of type 3 that a gradient mimics. Design
        value from those observations.
    confidence_calibration, change_calibration : tuple of (float, float)
        Piecewise-linear maps from the bootstrap agreement (0-1) to the reported confidence,
        as ``(agreement, probability)`` knots, for type-0 calls and for all other calls
        (a change or indeterminate), measured on the realistic calibration cohort (isotonic
        fit of being right on the raw agreement). Separate maps, because normal calls are
        the great majority and are right more often at a given agreement: one shared map
        would lend changes their confidence. Linear from (0, 0) through the knots and
        constant after the last one (so a change call never reaches more than the share
        of change calls that were right at the highest agreement). Identity when empty.
    normal_typed_calibration : tuple of (float, float)
        The most a type-0 call may claim, by the share of its voxels that depart in a
        Modic pattern (``typed``: 1, 2 and 3 voxels together), as ``(typed, probability)``
        knots, non-increasing; flat beyond the first and last knot. The bootstrap agrees
        on "normal" just as firmly when 35 % of the voxels are abnormal (short of
        ``abnormal_fraction``) as when none are, but such calls are wrong far more often:
        on the calibration cohort a weak change, or one mostly covered by normal marrow
        in a wide band, was called 0 at 0.99 there. Isotonic fit of being right on
        ``typed`` among the type-0 calls of the calibration cohort
        (benchmarks/calibrate_classifier.py). Empty: no cap.
    proposed_normal_typed_calibration : tuple of (float, float)
        ``normal_typed_calibration`` for an endplate ROI modic proposed (``origin=
        "proposed"``): a band over the whole endplate, placed without looking, more often
        misses a change or holds only its edge, so its type-0 calls earn less at the same
        typed share. Rule-of-succession shares of right type-0 calls per bin of the typed
        share on the development cohorts (benchmarks/calibrate_reference_flag.py
        ``--typed``), pooled where a bin earned more than the one before. Empty: use
        ``normal_typed_calibration``.
    partial_length_mm : float
        A type-0 call on a region whose voxels carry their position along the endplate
        (:attr:`SignalContext.along_mm`, every endplate ROI that :mod:`modic.reading`
        prepares) is checked for a *local* departure: the longest run along the endplate,
        in 1 mm columns across the region's depth, of columns in which at least
        ``partial_column_share`` of the voxels are typed 1-3, at least this long, whose
        voxels' median departs from the reference in a Modic pattern beyond ``region_z`` of
        its uncertainty. Such a call stays type 0 (on the development cohorts a local
        departure in a whole-endplate band was partial volume at the endplate, a Schmorl
        node or a band leaving the body more often than a change over part of the
        endplate) but claims at most ``partial_confidence``, and says where. 0: off.
    partial_column_share : float
        See ``partial_length_mm``: the share of a column's voxels (across the region's
        depth) typed 1-3 for the column to belong to a local departure; a majority, so
        that a thin layer of partial volume along the endplate (one or two voxels of a
        band's five or six) does not make one.
    partial_confidence : float
        The most a type-0 call with a local departure may claim: the rule-of-succession
        share of such calls that were right on the development cohorts
        (benchmarks/calibrate_proposed.py). 1: no cap.
    body_explained_confidence : float
        The most a call may claim when a change pattern was read as normal marrow because
        the marrow beyond the region departs as much (``body_ratio``): that reading is a
        judgement the bootstrap cannot test, since the marrow beyond moves with it in
        every resample. The rule-of-succession share of such calls that were right on the
        calibration cohort ((right + 1) / (n + 2)). 1: no cap.
    reference_flag_confidence, proposed_reference_flag_confidence : float
        The most a call may claim when its reference is flagged as holding part of a
        change or heterogeneous marrow (:mod:`modic.reading`: off the level the other
        references predict, or a T1 spread well above the noise): the spread the region is
        compared with is widened by it, so a change can hide in it, and a normal band can
        depart from a reference that holds a change. The first for a reference a person
        drew (or imported), the second for one modic proposed (``origin="proposed"``: placed
        in the middle of the body without looking, it holds part of a change more often).
        Each is the rule-of-succession share of such typed calls that were right on the
        development cohorts (benchmarks/calibrate_reference_flag.py). 1: no cap.
    """

    voxel_z: float = 2.5
    tissue_sd: float = 0.08
    region_z: float = 3.0
    min_cosine: float = 0.3
    type_margin: float = 0.1
    sign_z: float = 1.0
    matched_filter: bool = False
    fat_sd: float = 0.0
    abnormal_fraction: float = 0.40
    mixed_fraction: float = 0.20
    untyped_fraction: float = 0.30
    iso_margin: float = 0.10
    n_bootstrap: int = 200
    min_voxels: int = 5
    small_voxels: int = 20
    cortex_level: float = 0.5
    pv_margin_px: float = 1.0
    pv_slab_fraction: float = 0.15
    pv_max_share: float = 0.6
    focal_gap_mm: float = 1.0
    body_ratio: float = 0.5
    body_max_z: float = 6.0
    far_reference_sd: float = 0.15
    #: fitted by benchmarks/calibrate_classifier.py on the realistic calibration cohort
    #: (seeds 600000-600059, 660 endplates; run of 2026-12-04 with the thresholds above and
    #: the body-marrow rule and the faint-T1 rule for type 3; docs/classifier.md): normal
    #: calls were right 98.8 % of the time (569), the others 86.8 % (91), so the maps differ
    confidence_calibration: tuple[tuple[float, float], ...] = (
        (0.3, 0.333),
        (0.5, 0.333),
        (0.6, 0.529),
        (0.7, 0.905),
        (0.8, 0.935),
        (0.85, 0.95),
        (0.9, 0.965),
        (0.95, 0.98),
        (0.98, 0.989),
        (0.995, 0.991),
    )
    change_calibration: tuple[tuple[float, float], ...] = (
        (0.3, 0.462),
        (0.5, 0.569),
        (0.6, 0.622),
        (0.7, 0.653),
        (0.8, 0.665),
        (0.85, 0.709),
        (0.9, 0.765),
        (0.95, 0.852),
        (0.98, 0.935),
        (0.995, 0.966),
    )
    #: fitted by benchmarks/calibrate_classifier.py on the same cohort and run: type-0
    #: calls (the body-marrow rule's left out) with under 10 % typed voxels were right 354
    #: of 354 times, 10-20 %: 128 of 130, 20-30 %: 50 of 52, 30 % or more: 25 of 26
    #: (docs/classifier.md)
    normal_typed_calibration: tuple[tuple[float, float], ...] = (
        (0.05, 0.997),
        (0.15, 0.977),
        (0.25, 0.944),
        (0.35, 0.929),
    )
    #: proposed bands (docs/classifier.md, "Flagged references"): 0-20 % typed 1460 of 1508
    #: right, 20-30 %: 154 of 172, 30 % or more: 34 of 57
    proposed_normal_typed_calibration: tuple[tuple[float, float], ...] = (
        (0.05, 0.968),
        (0.15, 0.968),
        (0.25, 0.891),
        (0.35, 0.593),
    )
    #: the same run: 5 of the 7 calls the body-marrow rule turned to type 0 were right
    body_explained_confidence: float = 0.667
    #: a local departure in a type-0 region (docs/classifier.md, "Whole-endplate bands")
    partial_length_mm: float = 5.0
    partial_column_share: float = 0.5
    partial_confidence: float = 0.818
    #: a call against a flagged reference (docs/classifier.md, "Flagged references"):
    #: 136 of 144 right with the reader's references, 174 of 210 with proposed ones
    reference_flag_confidence: float = 0.938
    proposed_reference_flag_confidence: float = 0.825

    def __post_init__(self) -> None:
        for name in ("voxel_z", "region_z", "iso_margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClassifierParameters.{name} must be positive")
        if not self.tissue_sd >= 0:
            raise ValueError("ClassifierParameters.tissue_sd must be >= 0")
        if not -1 < self.min_cosine < 1:
            raise ValueError("ClassifierParameters.min_cosine must be between -1 and 1")
        for name in ("abnormal_fraction", "mixed_fraction", "untyped_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"ClassifierParameters.{name} must be between 0 and 1")
        if self.n_bootstrap < 20:
            raise ValueError("ClassifierParameters.n_bootstrap must be at least 20")
        for name in ("confidence_calibration", "change_calibration"):
            knots = getattr(self, name)
            xs = [k[0] for k in knots]
            ys = [k[1] for k in knots]
            if xs != sorted(xs) or ys != sorted(ys) or not all(0 <= v <= 1 for v in xs + ys):
                raise ValueError(f"ClassifierParameters.{name} must be increasing (x, y) knots in [0, 1]")
        for name in ("normal_typed_calibration", "proposed_normal_typed_calibration"):
            xs = [k[0] for k in getattr(self, name)]
            ys = [k[1] for k in getattr(self, name)]
            if xs != sorted(xs) or ys != sorted(ys, reverse=True) or not all(0 <= v <= 1 for v in xs + ys):
                raise ValueError(
                    f"ClassifierParameters.{name} must be (x, y) knots in [0, 1], x increasing and y "
                    "non-increasing"
                )
        if not self.partial_length_mm >= 0:
            raise ValueError("ClassifierParameters.partial_length_mm must be >= 0 (0: off)")
        if not 0 < self.partial_column_share <= 1:
            raise ValueError("ClassifierParameters.partial_column_share must be in (0, 1]")
        if not 0 < self.partial_confidence <= 1:
            raise ValueError("ClassifierParameters.partial_confidence must be in (0, 1]")
        if not 0 < self.body_explained_confidence <= 1:
            raise ValueError("ClassifierParameters.body_explained_confidence must be in (0, 1]")
        for name in ("reference_flag_confidence", "proposed_reference_flag_confidence"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"ClassifierParameters.{name} must be in (0, 1]")


DEFAULT_PARAMETERS = ClassifierParameters()
