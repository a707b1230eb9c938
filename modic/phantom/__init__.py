"""Synthetic lumbar spine MRI studies with exact ground truth, written as real DICOM.

A continuous, seeded anatomy (vertebral bodies T8-S4 on a lordotic curve, discs, canal,
posterior elements, muscles, fat, viscera) in patient LPS millimetres is sampled with
partial volume on any imaging grid; tissues are two-compartment water + fat mixtures with
literature relaxation times at 1.5 T and 3 T; spin-echo, STIR, fat-saturated and
gradient-echo signal equations, coil sensitivity and Rician noise give vendor-style
sagittal T1 / T2 / STIR, axial T2 and localizer series.  Modic changes of type 1, 2, 3
and mixed 1/2, 2/3 are placed at chosen endplates.

Opt-in realism (all off by default): weak changes and fat islands in oedema
(:class:`LesionSpec` ``t1_ratio``, ``fat_islands``), incomplete STIR fat nulling
(:class:`SeriesSpec` ``stir_efficiency``), a head-foot receive-coil gradient, patchy
fatty marrow with focal fat islands, undulating endplates for partial volume in thick
slices, degenerated discs, hemangiomas and Schmorl nodes (:class:`StudySpec`); the
ground truth then records these factors.  :mod:`modic.phantom.reader` draws ROIs in
several reader styles (:class:`~modic.phantom.reader.ReaderStyle`).

Quick start
-----------
>>> from modic.phantom import (LesionSpec, default_study_spec, lesion_mask, small_series,
...                           write_study)
>>> spec = default_study_spec(
...     7, vendor="ge", field_strength=3.0, series=small_series(),
...     lesions=[LesionSpec("L4", "inferior", "1", height_fraction=0.4),
...              LesionSpec("L5", "superior", "1/2", mix_layout="side")])
>>> spec.lesions[0].udby_grade        # height 40 % of the body: Udby grade B
'B'

Writing it takes a few seconds::

    truth = write_study(spec, "out/ge_3T")      # DICOM in out/ge_3T/dicom, truth.json
    truth.endplate("L4", "inferior").modic_type  # '1'
    lesion_mask(truth, points_lps)               # Modic type at any patient point

``python -m modic.phantom OUT_DIR --lesion L4:inferior:1`` writes one study from the command
line; ``python -m modic.data`` writes the project's sample data set.

Conventions: patient coordinates are DICOM LPS millimetres; image volumes are
``(slice, row, col)``.
"""

from __future__ import annotations

from .anatomy import Anatomy
from .build import build_anatomy
from .samples import SAMPLE_NAMES, sample_specs
from .signal import Sequence, default_sequence
from .spec import (
    LESION_VERTEBRAE,
    MODIC_TYPES,
    HemangiomaSpec,
    LesionSpec,
    SchmorlNodeSpec,
    SeriesSpec,
    StudySpec,
    default_series,
    default_study_spec,
    small_series,
)
from .study import write_study
from .truth import (
    EndplateTruth,
    GroundTruth,
    LesionTruth,
    SeriesTruth,
    VertebraTruth,
    lesion_mask,
    tissue_at,
)

__all__ = [
    "LesionSpec",
    "HemangiomaSpec",
    "SchmorlNodeSpec",
    "SeriesSpec",
    "StudySpec",
    "default_study_spec",
    "default_series",
    "small_series",
    "write_study",
    "GroundTruth",
    "SeriesTruth",
    "EndplateTruth",
    "LesionTruth",
    "VertebraTruth",
    "lesion_mask",
    "tissue_at",
    "Anatomy",
    "build_anatomy",
    "Sequence",
    "default_sequence",
    "LESION_VERTEBRAE",
    "MODIC_TYPES",
    "SAMPLE_NAMES",
    "sample_specs",
]
