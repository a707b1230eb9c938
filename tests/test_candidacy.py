"""The FDA-clearance imaging criterion per study (modic.candidacy), on hand-made results.

The rules come from the clearances' indications for use (K153272, K190504: basivertebral
nerves of the L3 through S1 vertebrae, Type 1 or Type 2 Modic changes); tests on real
phantom DICOM are in test_extent.py.
"""

from __future__ import annotations

import json

import pytest

from modic.annotations import RoiLabel
from modic.candidacy import CRITERION_LEVELS, Candidacy, candidacy
from modic.criteria import ModicType
from modic.results import ModicResult, ModicResults


def result(label: str, modic_type: str, study: str = "study-a") -> ModicResult:
    lab = RoiLabel.parse(label)
    return ModicResult(
        roi_id=label.replace(" ", "-"),
        label=lab,
        modic_type=ModicType(modic_type),
        confidence=0.9,
        ratios={},
        fractions={},
        reference_label=RoiLabel.for_reference(lab.vertebra),
        reference_id="ref",
        series={},
        study_key=study,
    )


def test_levels_are_l3_l4_to_l5_s1() -> None:
    assert CRITERION_LEVELS == ("L3/L4", "L4/L5", "L5/S1")


def test_type_1_at_l4_l5_and_type_2_at_l1_l2() -> None:
    rs = [result("L1 inferior", "2"), result("L2 superior", "0"), result("L4 inferior", "1"),
          result("L5 superior", "0"), result("L3 inferior", "0")]
    c = candidacy(rs)
    assert c.levels == ("L4/L5",)
    assert c.vertebrae == ("L4", "L5")
    assert c.findings == {"L4/L5": ["L4 inferior: Modic 1"]}
    assert c.levels_read == ("L3/L4", "L4/L5")
    assert c.levels_not_read == ("L5/S1",)
    assert c.study == "study-a"
    assert "Not read: L5/S1." in c.text


def test_s1_superior_counts_as_l5_s1() -> None:
    c = candidacy([result("S1 superior", "2")])
    assert c.levels == ("L5/S1",) and c.vertebrae == ("L5", "S1")


def test_types_3_0_and_indeterminate_do_not_count() -> None:
    c = candidacy(
        [result("L3 inferior", "3"), result("L4 inferior", "indeterminate"), result("L5 inferior", "0")]
    )
    assert c.levels == () and c.vertebrae == ()
    assert not c.meets_imaging_criterion
    assert c.indeterminate == ("L4/L5",)
    assert "not met at the levels read (L3/L4, L4/L5, L5/S1)" in c.text
    assert "Indeterminate: L4/L5." in c.text


def test_mixed_types_and_neighbouring_levels() -> None:
    c = candidacy([result("L3 inferior", "1/2"), result("L4 superior", "2/3"), result("L5 inferior", "1")])
    assert c.levels == ("L3/L4", "L5/S1")
    assert c.vertebrae == ("L3", "L4", "L5", "S1")
    assert any("2/3" in n and "type-2" in n for n in c.notes)
    # an L2/L3 change (the L3 superior endplate) is outside the levels: noted, not counted
    c = candidacy([result("L3 superior", "1")])
    assert c.levels == () and c.levels_read == ()
    assert any("L2/L3" in n and "not counted" in n for n in c.notes)
    assert "cannot be judged" in c.text


def test_text_is_research_information_with_its_source() -> None:
    text = candidacy([result("L4 inferior", "1")]).text
    for needed in ("K153272", "K190504", "Intracept", "research information",
                   "not a treatment recommendation",
                   "at least 6 months", "conservative care"):
        assert needed.lower() in text.lower()


def test_round_trip_and_results_api() -> None:
    rs = ModicResults([result("L4 inferior", "1"), result("L5 superior", "2", study="study-b")])
    with pytest.raises(ValueError, match="per study"):
        _ = rs.candidacy
    per = rs.candidacies()
    assert per["study-a"].vertebrae == ("L4", "L5") and per["study-b"].levels == ("L4/L5",)
    c = per["study-a"]
    assert Candidacy.from_dict(json.loads(json.dumps(c.to_dict()))) == c
