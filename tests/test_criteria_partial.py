"""A change over part of a whole-endplate band (``partial_length_mm``), on real phantom DICOM.

One phantom study (written as DICOM, read back with modic.load_study) holds a type 1 change
under the anterior fifth of L3's inferior endplate. Every endplate ROI is a band over the
central 80 % of its endplate, 1 px in from the bony surface and 5 mm tall, as
``modic propose`` and Nordic readers draw it, whether the endplate is changed or not. The
change fills under a third of the L3 band, short of the 40 % that types a region from its
voxels, so the band is read as normal; the rule must say where the change lies and keep
that normal call from claiming more than ``partial_confidence``. The normal bands must not
be touched.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from modic.annotations import ROI
from modic.criteria import DEFAULT_PARAMETERS, ModicType
from modic.phantom import GroundTruth, LesionSpec, default_study_spec, small_series, write_study
from modic.phantom.reader import EndplateDraw, _band_roi, _change_on_t1, reader_annotations
from modic.phantom.truth import anatomy_of
from modic.reading import classify
from modic.results import ModicResults
from modic.study import LoadedStudy, load_study

ENDPLATES = [("L2", "inferior"), ("L3", "superior"), ("L3", "inferior"), ("L4", "superior")]
#: a band over the central 80 % of the endplate (half extent 0.4 of the depth)
WHOLE = EndplateDraw("band", inset_px=1, height_mm=5.0, ap_fraction=0.4)


class Case:
    def __init__(self, truth: GroundTruth, study: LoadedStudy, rois: list[ROI]) -> None:
        self.truth, self.study, self.rois = truth, study, rois
        self.on = classify(study, rois)
        off = dataclasses.replace(DEFAULT_PARAMETERS, partial_length_mm=0.0)
        self.off = classify(study, rois, parameters=off)


def _result(results: ModicResults, vertebra: str, endplate: str):  # noqa: ANN202
    return next(r for r in results if str(r.label) == f"{vertebra} {endplate}")


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    root = tmp_path_factory.mktemp("partial") / "study"
    spec = default_study_spec(
        7,
        series=small_series(),
        lesions=[
            LesionSpec(
                "L3", "inferior", "1", height_fraction=0.3, width_fraction=0.6, depth_fraction=0.2,
                ap_position=-0.45,
            )
        ],
    )
    truth = write_study(spec, root)
    study = load_study(root / "dicom")
    rois = list(reader_annotations(truth, study).references())
    for vertebra, endplate in ENDPLATES:
        e = truth.endplate(vertebra, endplate)
        # drawn as over a normal endplate: the whole band, wherever the change lies
        roi = _band_roi(study, truth, dataclasses.replace(e, modic_type="0"), truth.vertebra(vertebra), WHOLE)
        assert roi is not None
        rois.append(roi)
    return Case(truth, study, rois)


def _local(r) -> list[str]:  # noqa: ANN001
    return [w for w in r.warnings if "along the endplate depart" in w]


def test_the_band_is_whole_and_the_change_fills_under_a_third_of_it(case: Case) -> None:
    r = _result(case.on, "L3", "inferior")
    typed = r.fractions["1"] + r.fractions["2"] + r.fractions["3"]
    assert 0.1 < typed < DEFAULT_PARAMETERS.abnormal_fraction
    assert r.modic_type is ModicType.NONE  # the whole band reads as normal


def test_a_change_over_part_of_the_band_is_located_and_caps_the_normal_call(case: Case) -> None:
    on, off = _result(case.on, "L3", "inferior"), _result(case.off, "L3", "inferior")
    assert on.modic_type is off.modic_type is ModicType.NONE  # the rule changes no call
    assert off.confidence > 0.9  # without it: a confident normal on a visible change
    assert on.confidence <= DEFAULT_PARAMETERS.partial_confidence + 1e-9
    assert not _local(off)
    (warning,) = _local(on)
    assert "type 1 pattern" in warning
    assert "part of the endplate" in on.reason
    # the departure found is as long as the change is along the endplate on the ROI's
    # slice (the phantom's own anatomy: the change's pixels in the vertebra's frame)
    found = _change_on_t1(case.study, case.truth, case.truth.endplate("L3", "inferior"))
    assert found is not None
    k, change = found
    g = case.study.t1.geometry
    rr, cc = np.nonzero(change)
    pts = g.index_to_patient(np.column_stack([np.full(rr.size, k), rr, cc]))
    y = anatomy_of(case.truth).vertebra("L3").to_local(pts)[:, 1]
    length = float(y.max() - y.min()) + float(min(g.pixel_spacing))
    reported = float(re.match(r"(\d+) mm of the region", warning).group(1))  # type: ignore[union-attr]
    assert abs(reported - length) <= 3.0


@pytest.mark.parametrize("endplate", [e for e in ENDPLATES if e != ("L3", "inferior")])
def test_normal_whole_bands_are_left_alone(case: Case, endplate: tuple[str, str]) -> None:
    assert case.truth.endplate(*endplate).modic_type == "0"
    on, off = _result(case.on, *endplate), _result(case.off, *endplate)
    assert on.modic_type is ModicType.NONE
    assert not _local(on)
    assert abs(on.confidence - off.confidence) < 1e-9


def test_a_band_no_longer_than_the_minimum_has_no_part_to_locate(case: Case) -> None:
    p = dataclasses.replace(DEFAULT_PARAMETERS, partial_length_mm=40.0)
    r = _result(classify(case.study, case.rois, parameters=p), "L3", "inferior")
    assert not _local(r)
    with pytest.raises(ValueError, match="partial_length_mm"):
        dataclasses.replace(DEFAULT_PARAMETERS, partial_length_mm=-1.0)
