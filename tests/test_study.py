"""Picking the sagittal T1 / T2 / STIR for Modic reading, and loading them."""

from __future__ import annotations

import pytest
from conftest import write_lumbar_study
from dicomfactory import SAGITTAL, VENDORS, volume_pattern, write_series

import modic
from modic.errors import SeriesSelectionError
from modic.sequence import Role


def test_load_study_picks_sagittal_t1_t2_stir(lumbar_study):
    st = modic.load_study(lumbar_study.root)
    assert st.t1.series.key == "2"
    assert st.t2 is not None and st.t2.series.key == "3"
    assert st.stir is not None and st.stir.series.key == "4"
    assert st.t1.shape == (9, 32, 32)
    assert st.t2.shape == (8, 40, 40)
    assert "only sagittal T1" in st.selections[Role.T1].reason
    assert set(st.volumes) == {Role.T1, Role.T2, Role.STIR}


def test_stir_is_optional(tmp_path):
    write_lumbar_study(tmp_path, "ge", with_stir=False)
    st = modic.load_study(tmp_path)
    assert st.stir is None
    assert "no sagittal STIR" in st.selections[Role.STIR].reason


def test_two_candidate_t1_series_ask_the_user(lumbar_study):
    write_series(
        lumbar_study.root / "T1b",
        volume_pattern(9, 32, 32),
        origin=lumbar_study.t1_origin,
        orientation=SAGITTAL,
        study_uid=lumbar_study.study_uid,
        series_number=12,
        header=VENDORS["siemens"]["T1"],
    )
    with pytest.raises(SeriesSelectionError) as err:
        modic.load_study(lumbar_study.root)
    msg = str(err.value)
    assert "2 sagittal T1 series fit" in msg
    assert "2 t1_tse_sag" in msg and "12 t1_tse_sag" in msg
    assert "t1=SERIES" in msg
    # the user chooses, by number or by UID
    assert modic.load_study(lumbar_study.root, t1=12).t1.series.number == 12
    assert modic.load_study(lumbar_study.root, t1="2").t1.series.number == 2


def test_user_choice_by_description(lumbar_study):
    st = modic.load_study(lumbar_study.root, t2="t2_tirm_sag")
    assert st.t2.series.key == "4"
    assert "detected as STIR" in st.selections[Role.T2].reason


def test_unknown_choice_lists_the_series(lumbar_study):
    with pytest.raises(SeriesSelectionError, match=r"matches no series(.|\n)*t2_tse_sag"):
        modic.load_study(lumbar_study.root, t1="99")


def test_no_sagittal_t1(tmp_path):
    write_series(tmp_path, volume_pattern(4, 8, 8), origin=(0, 0, 0), header=VENDORS["siemens"]["T2"])
    with pytest.raises(SeriesSelectionError, match="no sagittal T1 series"):
        modic.load_study(tmp_path)


def test_several_studies_need_a_choice(tmp_path):
    a = write_lumbar_study(tmp_path / "A", "siemens")
    write_lumbar_study(tmp_path / "B", "ge")
    with pytest.raises(SeriesSelectionError, match="2 studies found"):
        modic.load_study(tmp_path)
    result = modic.scan(tmp_path)
    key = next(st.key for st in result.studies if st.study_uid == a.study_uid)
    st = modic.load_study(result, study=key)
    assert st.study.study_uid == a.study_uid


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(SeriesSelectionError, match="no DICOM images found"):
        modic.load_study(tmp_path)
