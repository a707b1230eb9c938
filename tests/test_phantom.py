"""Tests of modic.phantom: written studies are valid DICOM whose images obey MR physics.

The images are read back with plain pydicom and sampled at ground-truth points through
DICOM geometry computed here by hand (ImagePositionPatient, ImageOrientationPatient,
PixelSpacing), not through any modic loader.  Expected signal directions are MR physics
facts (Modic 1988; fat nulled by STIR; CSF long T1 and T2), not numbers from the code
under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.uid import RLELossless

from modic.phantom import (
    GroundTruth,
    LesionSpec,
    SeriesSpec,
    StudySpec,
    default_study_spec,
    lesion_mask,
    tissue_at,
    write_study,
)

MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


def _test_series() -> list[SeriesSpec]:
    return [
        SeriesSpec(role="localizer", plane="3plane", rows=64, cols=64, fov_mm=(420.0, 420.0),
                   n_slices=1, slice_thickness=8.0, slice_gap=0.0),
        SeriesSpec(role="t1", plane="sagittal", rows=128, cols=128, fov_mm=(260.0, 260.0),
                   n_slices=9, slice_thickness=4.0, slice_gap=0.4),
        SeriesSpec(role="t2", plane="sagittal", rows=144, cols=144, fov_mm=(280.0, 280.0),
                   n_slices=9, slice_thickness=4.0, slice_gap=0.4, slice_offset=1.8,
                   center_offset=(0.0, 4.0, -6.0), transfer_syntax="rle"),
        SeriesSpec(role="stir", plane="sagittal", rows=112, cols=112, fov_mm=(280.0, 280.0),
                   n_slices=9, slice_thickness=4.0, slice_gap=0.4, slice_offset=1.8,
                   enhanced=True),
        SeriesSpec(role="t2", plane="axial", rows=64, cols=64, fov_mm=(200.0, 200.0),
                   n_slices=4, slice_thickness=4.0, slice_gap=1.0),
    ]


def _test_spec(seed: int = 5) -> StudySpec:
    return StudySpec(
        seed=seed, vendor="philips", field_strength=1.5, snr=60.0, bias=0.2,
        lesions=[
            LesionSpec("L4", "inferior", "1", height_fraction=0.45, width_fraction=0.8,
                       depth_fraction=0.8),
            LesionSpec("L5", "superior", "2", height_fraction=0.4, width_fraction=0.8,
                       depth_fraction=0.8),
            LesionSpec("L2", "inferior", "3", height_fraction=0.35, width_fraction=0.8,
                       depth_fraction=0.8),
            LesionSpec("S1", "superior", "1/2", height_fraction=0.5, width_fraction=0.8,
                       depth_fraction=0.8, mix_fraction=0.5, mix_layout="layered"),
        ],
        series=_test_series())


@dataclass
class Volume:
    """A series read with pydicom: real-world values and hand-built geometry."""

    data: NDArray[np.float64]  # (slice, row, col)
    ipps: NDArray[np.float64]  # (slice, 3)
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    spacing: tuple[float, float]  # (row spacing, column spacing)
    thickness: float

    @property
    def normal(self) -> NDArray[np.float64]:
        return np.cross(self.row_dir, self.col_dir)

    def sample(self, point: list[float] | NDArray[np.float64], half: int = 1) -> float:
        """Median of the (2 half + 1)^2 pixels around the pixel containing ``point``."""
        p = np.asarray(point, dtype=float)
        dist = (p - self.ipps) @ self.normal
        k = int(np.argmin(np.abs(dist)))
        assert abs(dist[k]) <= self.thickness / 2 + 0.6, "point not in any slice"
        d = p - self.ipps[k]
        r = int(round(float(d @ self.col_dir) / self.spacing[0]))
        c = int(round(float(d @ self.row_dir) / self.spacing[1]))
        assert 0 <= r < self.data.shape[1] and 0 <= c < self.data.shape[2]
        patch = self.data[k, max(r - half, 0):r + half + 1, max(c - half, 0):c + half + 1]
        return float(np.median(patch))


def read_volume(root: Path, files: list[str]) -> Volume:
    dss = [pydicom.dcmread(root / f) for f in files]
    if len(dss) == 1 and "PerFrameFunctionalGroupsSequence" in dss[0]:
        ds = dss[0]
        shared = ds.SharedFunctionalGroupsSequence[0]
        iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
        pm = shared.PixelMeasuresSequence[0]
        pvt = shared.PixelValueTransformationSequence[0]
        data = ds.pixel_array * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
        ipps = np.array([f.PlanePositionSequence[0].ImagePositionPatient
                         for f in ds.PerFrameFunctionalGroupsSequence], float)
        spacing = (float(pm.PixelSpacing[0]), float(pm.PixelSpacing[1]))
        thickness = float(pm.SliceThickness)
    else:
        iop = np.array(dss[0].ImageOrientationPatient, float)
        ipps = np.array([d.ImagePositionPatient for d in dss], float)
        data = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
                         for d in dss])
        spacing = (float(dss[0].PixelSpacing[0]), float(dss[0].PixelSpacing[1]))
        thickness = float(dss[0].SliceThickness)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(ipps @ normal)  # by position along the normal, not file order
    return Volume(data=np.asarray(data, float)[order], ipps=ipps[order], row_dir=iop[:3],
                  col_dir=iop[3:], spacing=spacing, thickness=thickness)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    root = tmp_path_factory.mktemp("phantom") / "study"
    truth = write_study(_test_spec(), root)
    return root, truth


@pytest.fixture(scope="module")
def volumes(study: tuple[Path, GroundTruth]) -> dict[str, Volume]:
    root, truth = study
    out = {}
    for role in ("t1", "t2", "stir"):
        out[role] = read_volume(root, truth.series_by_role(role, "sagittal").files)
    return out


def _lesion_point(truth: GroundTruth, vertebra: str, endplate: str, depth: float = 0.5
                  ) -> NDArray[np.float64]:
    les = truth.endplate(vertebra, endplate).lesion
    assert les is not None
    g = les.geometry
    return (np.array(g["center_on_endplate"])
            + np.array(g["inward_normal"]) * depth * g["max_depth_mm"])


# ------------------------------------------------------------------ files and headers
def test_files_are_valid_dicom(study: tuple[Path, GroundTruth]) -> None:
    root, truth = study
    files = [p for p in (root / "dicom").rglob("*") if p.is_file()]
    assert len(files) == sum(len(s.files) for s in truth.series)
    studies, frames, numbers = set(), set(), set()
    for path in files:
        ds = pydicom.dcmread(path)  # no force=True: preamble and file meta must be valid
        assert ds.SOPClassUID in (MR, ENHANCED_MR)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "MR"
        assert str(ds.PatientName) == "PHANTOM^5"
        assert float(ds.MagneticFieldStrength) == 1.5
        assert ds.Manufacturer.startswith("Philips")
        studies.add(ds.StudyInstanceUID)
        frames.add(ds.FrameOfReferenceUID)
        numbers.add((ds.SeriesInstanceUID, ds.SeriesNumber))
    assert studies == {truth.study_instance_uid}
    assert frames == {truth.frame_of_reference_uid}
    assert len(numbers) == len(truth.series)
    assert (root / "truth.json").is_file()


def test_series_headers_describe_contrast(study: tuple[Path, GroundTruth]) -> None:
    root, truth = study
    t1 = pydicom.dcmread(root / truth.series_by_role("t1").files[0])
    assert t1.SeriesDescription == "sT1W_TSE"
    assert float(t1.RepetitionTime) < 1000 and float(t1.EchoTime) < 30
    assert float(t1.RescaleSlope) != 1.0  # Philips style
    t2 = pydicom.dcmread(root / truth.series_by_role("t2", "sagittal").files[0])
    assert float(t2.RepetitionTime) > 2000 and float(t2.EchoTime) > 80
    stir = pydicom.dcmread(root / truth.series_by_role("stir").files[0])
    mod = stir.SharedFunctionalGroupsSequence[0].MRModifierSequence[0]
    assert mod.InversionRecovery == "YES"
    ti = float(np.atleast_1d(mod.InversionTimes)[0])  # VM 1..n: one value reads as a float
    assert 130 <= ti <= 170  # 1.5 T STIR nulls fat (T1_fat ln 2)
    loc = [pydicom.dcmread(root / f) for f in truth.series_by_role("localizer").files]
    normals = {tuple(np.round(np.cross(np.array(d.ImageOrientationPatient[:3], float),
                                       np.array(d.ImageOrientationPatient[3:], float))))
               for d in loc}
    assert len(normals) == 3  # one series holding sagittal, coronal and axial images


def test_t1_and_t2_grids_differ(study: tuple[Path, GroundTruth],
                                volumes: dict[str, Volume]) -> None:
    t1, t2 = volumes["t1"], volumes["t2"]
    assert t1.data.shape[1:] != t2.data.shape[1:]
    assert not np.isclose(t1.spacing[0], t2.spacing[0])
    pos1 = t1.ipps @ t1.normal
    pos2 = t2.ipps @ t2.normal
    assert np.allclose(t1.normal, t2.normal)
    frac = (pos2[:, None] - pos1[None, :]) / (pos1[1] - pos1[0])
    nearest = np.min(np.abs(frac - np.round(frac)), axis=1)
    assert np.all(nearest > 0.3)  # every T2 slice falls between two T1 slices


def test_rle_and_enhanced_decode(study: tuple[Path, GroundTruth]) -> None:
    root, truth = study
    t2 = truth.series_by_role("t2", "sagittal")
    assert t2.transfer_syntax == "rle"
    ds = pydicom.dcmread(root / t2.files[0])
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    assert ds.pixel_array.shape == (144, 144)
    stir = truth.series_by_role("stir")
    assert stir.enhanced and len(stir.files) == 1
    ds = pydicom.dcmread(root / stir.files[0])
    assert ds.SOPClassUID == ENHANCED_MR
    assert int(ds.NumberOfFrames) == 9
    assert ds.pixel_array.shape == (9, 112, 112)
    positions = [f.PlanePositionSequence[0].ImagePositionPatient
                 for f in ds.PerFrameFunctionalGroupsSequence]
    assert len({tuple(p) for p in positions}) == 9
    stack_pos = [f.FrameContentSequence[0].InStackPositionNumber
                 for f in ds.PerFrameFunctionalGroupsSequence]
    assert stack_pos == list(range(1, 10))


# ------------------------------------------------------------------ determinism
def _tiny_spec(seed: int, vendor: str = "siemens", **kw: object) -> StudySpec:
    series = [
        SeriesSpec(role="t1", plane="sagittal", rows=48, cols=48, fov_mm=(280.0, 280.0),
                   n_slices=3, slice_thickness=4.0, slice_gap=0.4),
        SeriesSpec(role="stir", plane="sagittal", rows=40, cols=40, fov_mm=(280.0, 280.0),
                   n_slices=3, slice_thickness=4.0, slice_gap=0.4, enhanced=True,
                   transfer_syntax="rle"),
    ]
    return default_study_spec(seed, vendor=vendor, series=series, supersample=(2, 2, 2),
                              lesions=[LesionSpec("L4", "inferior", "1")], **kw)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    write_study(_tiny_spec(11), tmp_path / "a")
    write_study(_tiny_spec(11), tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                     if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                     if p.is_file())
    assert files_a == files_b and len(files_a) == 5
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_other_seed_gives_other_study(tmp_path: Path) -> None:
    ta = write_study(_tiny_spec(11), tmp_path / "a")
    tb = write_study(_tiny_spec(12), tmp_path / "b")
    assert ta.study_instance_uid != tb.study_instance_uid
    assert ta.vertebra("L3").center != tb.vertebra("L3").center


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_study(_tiny_spec(1), tmp_path / "x")
    write_study(_tiny_spec(1), tmp_path / "x", overwrite=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "user data"


@pytest.mark.parametrize("vendor", ["siemens", "ge", "philips"])
def test_vendor_conventions(tmp_path: Path, vendor: str) -> None:
    truth = write_study(_tiny_spec(3, vendor=vendor, field_strength=3.0), tmp_path / vendor)
    ds = pydicom.dcmread(tmp_path / vendor / truth.series_by_role("t1").files[0])
    expected = {"siemens": ("SIEMENS", "t1_tse_sag"), "ge": ("GE MEDICAL SYSTEMS", "SAG T1 FSE"),
                "philips": ("Philips Healthcare", "sT1W_TSE")}[vendor]
    assert (ds.Manufacturer, ds.SeriesDescription) == expected
    assert float(ds.MagneticFieldStrength) == 3.0
    assert ds.PixelRepresentation == (1 if vendor == "ge" else 0)
    assert (float(ds.RescaleSlope) != 1.0) == (vendor == "philips")
    if vendor == "siemens":
        assert ds.SequenceName == "*tse2d1_4"
    stir = pydicom.dcmread(tmp_path / vendor / truth.series_by_role("stir").files[0])
    mod = stir.SharedFunctionalGroupsSequence[0].MRModifierSequence[0]
    ti = float(np.atleast_1d(mod.InversionTimes)[0])
    assert 200 <= ti <= 240  # 3 T STIR


def test_implicit_syntax_and_tilted_stack(tmp_path: Path) -> None:
    spec = default_study_spec(6, transfer_syntax="implicit", supersample=(1, 1, 1), series=[
        SeriesSpec(role="t2", rows=64, cols=64, n_slices=3, tilt_deg=(4.0, -3.0))])
    truth = write_study(spec, tmp_path / "imp")
    ds = pydicom.dcmread(tmp_path / "imp" / truth.series[0].files[0])
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    iop = np.array(ds.ImageOrientationPatient, float)
    assert abs(iop[:3] @ iop[3:]) < 1e-6
    assert np.allclose(np.linalg.norm(iop.reshape(2, 3), axis=1), 1.0)
    normal = np.cross(iop[:3], iop[3:])
    assert 0.98 < abs(normal[0]) < 0.9999  # still sagittal, but oblique
    vol = read_volume(tmp_path / "imp", truth.series[0].files)
    v = truth.vertebra("L3")
    assert v.csf_point is not None and v.reference_marrow_point is not None
    # CSF stays bright against marrow on T2 when sampled through the oblique geometry
    assert vol.sample(v.csf_point, 0) > 1.5 * vol.sample(v.reference_marrow_point, 0)


def test_jpeg2000_lossless(tmp_path: Path) -> None:
    pytest.importorskip("openjpeg")
    spec = default_study_spec(4, series=[SeriesSpec(
        role="t1", rows=48, cols=48, n_slices=2, transfer_syntax="jpeg2000")],
        supersample=(1, 1, 1))
    truth = write_study(spec, tmp_path / "j2k")
    ds = pydicom.dcmread(tmp_path / "j2k" / truth.series[0].files[0])
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert ds.pixel_array.shape == (48, 48)


# ------------------------------------------------------------------ ground truth
def test_truth_json_round_trip(study: tuple[Path, GroundTruth]) -> None:
    root, truth = study
    path = root / "truth.json"
    loaded = GroundTruth.from_json(path)
    assert loaded == truth
    assert loaded.to_dict() == json.loads(path.read_text())
    assert loaded.study_spec == _test_spec()


def test_truth_lists_every_endplate(study: tuple[Path, GroundTruth]) -> None:
    _, truth = study
    keys = [(e.vertebra, e.endplate) for e in truth.endplates]
    assert len(keys) == 13 and ("S1", "inferior") not in keys
    types = {(e.vertebra, e.endplate): e.modic_type for e in truth.endplates}
    assert types[("L4", "inferior")] == "1"
    assert types[("L5", "superior")] == "2"
    assert types[("L2", "inferior")] == "3"
    assert types[("S1", "superior")] == "1/2"
    assert sum(t != "0" for t in types.values()) == 4
    les = truth.endplate("L4", "inferior").lesion
    assert les is not None and les.udby_grade == "B"
    assert abs(les.measured_height_fraction - 0.45) < 0.05
    mixed = truth.endplate("S1", "superior").lesion
    assert mixed is not None and set(mixed.fractions) == {"1", "2"}
    assert abs(sum(mixed.fractions.values()) - 1.0) < 1e-6
    assert abs(mixed.fractions["1"] - 0.5) < 0.1
    t1_number = truth.series_by_role("t1").series_number
    assert t1_number in truth.endplate("L4", "inferior").visible_in


def test_lesion_mask_at_truth_points(study: tuple[Path, GroundTruth]) -> None:
    _, truth = study
    pts = np.array([_lesion_point(truth, "L4", "inferior"),
                    _lesion_point(truth, "L5", "superior"),
                    _lesion_point(truth, "L2", "inferior"),
                    _lesion_point(truth, "S1", "superior", 0.2),  # layered: type 1 first
                    _lesion_point(truth, "S1", "superior", 0.8),
                    truth.vertebra("L3").reference_marrow_point])
    assert lesion_mask(truth, pts).tolist() == [1, 2, 3, 1, 2, 0]
    csf, ref = truth.vertebra("L3").csf_point, truth.vertebra("L3").reference_marrow_point
    assert csf is not None and ref is not None
    names = tissue_at(truth, [csf, ref])
    assert names.tolist() == ["csf", "marrow_L3"]
    # the change stays inside the body: just beyond the endplate lies disc, not lesion
    ep = truth.endplate("L4", "inferior")
    outside = np.array(ep.center) + 1.5 * np.array(ep.normal)
    assert lesion_mask(truth, outside[None, :]).tolist() == [0]


# ------------------------------------------------------------------ MR physics
def _ref(truth: GroundTruth, vertebra: str) -> list[float]:
    ref = truth.vertebra(vertebra).reference_marrow_point
    assert ref is not None
    return ref


def test_type1_is_hypo_t1_hyper_t2_and_stir(study: tuple[Path, GroundTruth],
                                            volumes: dict[str, Volume]) -> None:
    _, truth = study
    p, ref = _lesion_point(truth, "L4", "inferior"), _ref(truth, "L4")
    assert volumes["t1"].sample(p) < 0.85 * volumes["t1"].sample(ref)
    assert volumes["t2"].sample(p) > 1.15 * volumes["t2"].sample(ref)
    assert volumes["stir"].sample(p) > 1.5 * volumes["stir"].sample(ref)


def test_type2_is_hyper_t1_and_dark_on_stir(study: tuple[Path, GroundTruth],
                                            volumes: dict[str, Volume]) -> None:
    _, truth = study
    p, ref = _lesion_point(truth, "L5", "superior"), _ref(truth, "L5")
    assert volumes["t1"].sample(p) > 1.15 * volumes["t1"].sample(ref)
    assert volumes["t2"].sample(p) > 0.95 * volumes["t2"].sample(ref)  # iso or hyper
    assert volumes["stir"].sample(p) < 0.7 * volumes["stir"].sample(ref)


def test_type3_is_hypo_on_t1_and_t2(study: tuple[Path, GroundTruth],
                                    volumes: dict[str, Volume]) -> None:
    _, truth = study
    p, ref = _lesion_point(truth, "L2", "inferior"), _ref(truth, "L2")
    assert volumes["t1"].sample(p) < 0.7 * volumes["t1"].sample(ref)
    assert volumes["t2"].sample(p) < 0.7 * volumes["t2"].sample(ref)


def test_csf_and_fat(study: tuple[Path, GroundTruth], volumes: dict[str, Volume]) -> None:
    _, truth = study
    v = truth.vertebra("L3")
    assert v.csf_point is not None and v.fat_point is not None
    t1, t2, stir = volumes["t1"], volumes["t2"], volumes["stir"]
    ref = _ref(truth, "L3")
    # CSF: long T1 -> dark on T1; long T2 -> bright on T2 and STIR
    assert t1.sample(v.csf_point, 0) < 0.6 * t1.sample(ref)
    assert t2.sample(v.csf_point, 0) > 1.5 * t2.sample(ref)
    assert stir.sample(v.csf_point, 0) > 2.0 * stir.sample(ref)
    # fat: short T1 -> bright on T1; nulled by the inversion -> dark on STIR
    assert t1.sample(v.fat_point, 0) > 1.2 * t1.sample(ref)
    assert stir.sample(v.fat_point, 0) < 0.3 * stir.sample(v.csf_point, 0)


def test_background_noise_matches_truth_sigma(study: tuple[Path, GroundTruth],
                                              volumes: dict[str, Volume]) -> None:
    _, truth = study
    t1 = volumes["t1"]
    k = t1.data.shape[0] // 2
    rows, cols = np.meshgrid(np.arange(t1.data.shape[1]), np.arange(t1.data.shape[2]),
                             indexing="ij")
    pts = (t1.ipps[k] + cols[..., None] * t1.spacing[1] * t1.row_dir
           + rows[..., None] * t1.spacing[0] * t1.col_dir).reshape(-1, 3)
    air = tissue_at(truth, pts) == "air"
    assert air.sum() > 500
    # magnitude of pure complex Gaussian noise is Rayleigh: mean = sigma sqrt(pi / 2)
    sigma = truth.series_by_role("t1").noise_sigma
    mean_air = float(t1.data[k].ravel()[air].mean())
    assert mean_air == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.15)


# ------------------------------------------------------------------ validation
def test_specs_validate_arguments() -> None:
    with pytest.raises(ValueError, match="vertebra"):
        LesionSpec("L6", "superior", "1")
    with pytest.raises(ValueError, match="S1"):
        LesionSpec("S1", "inferior", "2")
    with pytest.raises(ValueError, match="modic_type"):
        LesionSpec("L4", "superior", "4")
    with pytest.raises(ValueError, match="field_strength"):
        StudySpec(seed=1, field_strength=7.0)
    with pytest.raises(ValueError, match="two lesions"):
        StudySpec(seed=1, lesions=[LesionSpec("L4", "superior", "1"),
                                   LesionSpec("L4", "superior", "2")])
    assert LesionSpec("L4", "superior", "2/1").canonical_type == "1/2"
    assert [LesionSpec("L4", "superior", "1", height_fraction=h).udby_grade
            for h in (0.2, 0.3, 0.6)] == ["A", "B", "C"]


# ------------------------------------------------------------------ realism options
# Studies loaded with modic.load_study; signals compared as medians over pixels whose
# 3 x 3 neighbourhood is one tissue (truth.tissue_at at the pixel centres), so partial
# volume at borders does not decide the outcome.  Expected directions are MR facts
# (fat bright on T1 and FSE T2, nulled by an exact STIR, oedema long T2) or the
# definition of the option under test, not numbers from the code.
import modic  # noqa: E402
from modic.phantom import HemangiomaSpec, SchmorlNodeSpec  # noqa: E402
from modic.phantom.anatomy import Vertebra  # noqa: E402
from modic.phantom.reader import ReaderStyle, reader_annotations  # noqa: E402
from modic.phantom.truth import anatomy_of  # noqa: E402


def _sag(role: str, rows: int = 160, n: int = 5, thickness: float = 4.0, fov: float = 240.0,
         **kw: object) -> SeriesSpec:
    return SeriesSpec(role=role, plane="sagittal", rows=rows, cols=rows, fov_mm=(fov, fov),
                      n_slices=n, slice_thickness=thickness, slice_gap=0.4,
                      **kw)  # type: ignore[arg-type]


def _slice_tissue(vol: modic.Volume, truth: GroundTruth, k: int
                  ) -> tuple[NDArray[np.str_], NDArray[np.float32]]:
    """Tissue names at the pixel centres of slice ``k`` and the slice's pixel values."""
    g = vol.geometry
    rr, cc = np.meshgrid(np.arange(g.rows), np.arange(g.columns), indexing="ij")
    pts = g.index_to_patient(np.column_stack([np.full(rr.size, k), rr.ravel(), cc.ravel()]))
    names = tissue_at(truth, pts).reshape(g.rows, g.columns)
    return names, vol.array[k]


def _interior(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    from scipy.ndimage import binary_erosion

    return np.asarray(binary_erosion(mask, structure=np.ones((3, 3), dtype=bool)))


def _median_of(vol: modic.Volume, truth: GroundTruth, k: int, tissue: str,
               interior: bool = True) -> float:
    names, img = _slice_tissue(vol, truth, k)
    mask = names == tissue
    if interior:
        mask = _interior(mask)
    assert mask.sum() >= 5, f"{tissue}: {int(mask.sum())} pixels on slice {k}"
    return float(np.median(img[mask]))


def _mid_slice(vol: modic.Volume, point: list[float] | NDArray[np.float64]) -> int:
    (k,), _ = vol.geometry.nearest_slice(np.asarray(point, dtype=float)[None])
    return int(k)


def _realism_spec() -> StudySpec:
    big = dict(height_fraction=0.45, width_fraction=0.8, depth_fraction=0.8)
    return StudySpec(
        seed=31, vendor="siemens", field_strength=1.5, snr=80.0, bias=0.0,
        lesions=[LesionSpec("L4", "inferior", "1", t1_ratio=0.88, **big),
                 LesionSpec("L1", "inferior", "2", t1_ratio=1.2, **big),
                 LesionSpec("L5", "superior", "1", fat_islands=0.15, **big)],
        hemangiomas=[HemangiomaSpec("L2", radius_mm=6.0, ap_position=-0.15)],
        schmorl_nodes=[SchmorlNodeSpec("L3", "superior", radius_mm=4.0, depth_mm=4.0)],
        degenerated_discs=["L4/L5"], endplate_irregularity=1.2, marrow_fat_islands=1.0,
        series=[_sag("t1", thickness=5.0), _sag("t2"), _sag("stir")], supersample=(5, 3, 3))


@pytest.fixture(scope="module")
def realism(tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[GroundTruth, modic.LoadedStudy]:
    root = tmp_path_factory.mktemp("realism") / "study"
    truth = write_study(_realism_spec(), root)
    return truth, modic.load_study(root)


def _ratio(study: modic.LoadedStudy, truth: GroundTruth, role: str, tissue: str,
           vertebra: str) -> float:
    vol = getattr(study, role)
    v = truth.vertebra(vertebra)
    k = _mid_slice(vol, v.center)
    return _median_of(vol, truth, k, tissue) / _median_of(vol, truth, k, f"marrow_{vertebra}")


def test_weak_type1_is_mildly_dark_on_t1_and_bright_on_t2_and_stir(realism) -> None:
    truth, study = realism
    t1 = _ratio(study, truth, "t1", "modic1_L4_inferior", "L4")
    assert 0.8 <= t1 <= 0.95
    assert _ratio(study, truth, "t2", "modic1_L4_inferior", "L4") > 1.2
    assert _ratio(study, truth, "stir", "modic1_L4_inferior", "L4") > 1.2
    e = truth.endplate("L4", "inferior")
    assert e.modic_type == "1" and e.factors is not None and e.factors["weak"] is True


def test_weak_type2_is_mildly_bright_on_t1_and_dark_on_stir(realism) -> None:
    truth, study = realism
    assert 1.1 <= _ratio(study, truth, "t1", "modic2_L1_inferior", "L1") <= 1.3
    assert _ratio(study, truth, "stir", "modic2_L1_inferior", "L1") < 0.9
    assert truth.endplate("L1", "inferior").modic_type == "2"


def test_fat_islands_in_oedema_are_bright_on_t1_and_stay_type1(realism) -> None:
    truth, study = realism
    e = truth.endplate("L5", "superior")
    assert e.modic_type == "1" and e.factors is not None
    assert 0.1 <= e.factors["fat_islands"] <= 0.2  # share of the change asked for: 0.15
    vol = study.t1
    k = _mid_slice(vol, e.center)
    names, img = _slice_tissue(vol, truth, k)
    islands = names == "modic1fat_L5_superior"
    oedema = _interior(names == "modic1_L5_superior")
    assert islands.sum() >= 3 and oedema.sum() >= 5
    assert np.median(img[islands]) > 1.2 * np.median(img[oedema])
    # the islands belong to the change: typed 1 in the lesion mask
    les_pts = vol.geometry.index_to_patient(
        np.column_stack([np.full(int(islands.sum()), k), *np.nonzero(islands)]))
    assert set(lesion_mask(truth, les_pts).tolist()) == {1}


def test_hemangioma_is_bright_on_t1_and_t2_and_not_a_modic_change(realism) -> None:
    truth, study = realism
    assert _ratio(study, truth, "t1", "hemangioma_L2", "L2") > 1.1
    assert _ratio(study, truth, "t2", "hemangioma_L2", "L2") > 1.3
    stir = _ratio(study, truth, "stir", "hemangioma_L2", "L2")
    fat = _ratio(study, truth, "stir", "subcutaneous_fat", "L2")
    csf = _ratio(study, truth, "stir", "csf", "L2")
    assert fat < stir < csf  # intermediate: fat suppressed, vascular water kept
    assert truth.factors is not None and [h["vertebra"] for h in truth.factors["hemangiomas"]] == ["L2"]
    for side in ("superior", "inferior"):
        e = truth.endplate("L2", side)
        assert e.modic_type == "0" and e.factors is not None and e.factors["hemangioma"]
    centre = truth.factors["hemangiomas"][0]["center"]
    assert lesion_mask(truth, [centre]).tolist() == [0]


def test_schmorl_node_is_a_t1_dark_t2_bright_notch_with_truth_0(realism) -> None:
    truth, study = realism
    e = truth.endplate("L3", "superior")
    assert e.modic_type == "0" and e.factors is not None and e.factors["schmorl"]
    assert truth.factors is not None
    node = truth.factors["schmorl_nodes"][0]
    p = np.array(node["center_on_endplate"]) - 2.0 * np.array(e.normal)  # 2 mm into the body
    assert tissue_at(truth, [p]).tolist() == ["schmorl_L3_superior"]
    ref = truth.vertebra("L3").reference_marrow_point
    assert ref is not None

    def at(role: str, q: list[float] | NDArray[np.float64]) -> float:
        vol = getattr(study, role)
        idx = np.rint(vol.geometry.patient_to_index(np.asarray(q, float))).astype(int)
        return float(np.median(vol.array[idx[0], idx[1] - 1:idx[1] + 2, idx[2] - 1:idx[2] + 2]))

    assert at("t1", p) < 0.85 * at("t1", ref)
    assert at("t2", p) > 1.2 * at("t2", ref)


def test_degenerated_disc_is_dark_on_t2(realism) -> None:
    truth, study = realism
    assert truth.endplate("L4", "inferior").factors["disc_degenerated"]  # type: ignore[index]
    assert truth.endplate("L2", "inferior").factors["disc_hydration"] > 0.7  # type: ignore[index]
    v4, v2 = truth.vertebra("L4"), truth.vertebra("L2")
    k4, k2 = _mid_slice(study.t2, v4.center), _mid_slice(study.t2, v2.center)
    dark = _median_of(study.t2, truth, k4, "nucleus_L4_L5", interior=False)
    healthy = _median_of(study.t2, truth, k2, "nucleus_L2_L3", interior=False)
    assert dark < 0.6 * healthy
    assert dark < _median_of(study.t2, truth, k4, "marrow_L4")


def test_thick_slab_partial_volume_darkens_the_endplate_band(realism) -> None:
    truth, study = realism
    assert study.t1.geometry.slice_thickness == pytest.approx(5.0)
    e, v = truth.endplate("L3", "inferior"), truth.vertebra("L3")
    va = anatomy_of(truth).vertebra("L3")
    # the cortical endplate: dark bone 0.5-1.2 mm thick under the bony surface
    depths = np.arange(0.1, 2.0, 0.1)
    line = np.array(e.center)[None, :] - depths[:, None] * np.array(e.normal)[None, :]
    bone = depths[tissue_at(truth, line) == "cortical_bone"]
    assert 0.5 <= bone.max() + 0.05 <= 1.2
    vol = study.t1
    k = _mid_slice(vol, e.center)
    g = vol.geometry
    rr, cc = np.meshgrid(np.arange(g.rows), np.arange(g.columns), indexing="ij")
    pts = g.index_to_patient(np.column_stack([np.full(rr.size, k), rr.ravel(), cc.ravel()]))
    q = va.to_local(pts)
    w = q[:, 2] - va.z_surface(q[:, 0], q[:, 1], False)
    central = np.abs(q[:, 1]) <= 0.3 * v.depth
    band = central & (w >= 0.0) & (w <= 2.0)
    mid = central & (np.abs(q[:, 2]) <= 3.0)
    img = vol.array[k].ravel()
    assert band.sum() >= 10
    assert img[band].mean() < 0.85 * np.median(img[mid])
    # the slab is integrated through its thickness: near the undulating endplates, pixels
    # whose centre lies in marrow but whose 5 mm slab also holds cortex or disc (tissue
    # sampled through the slab here) are darker than pixels with marrow all through
    mixed, pure = [], []
    for vert, side in (("L1", "superior"), ("L2", "superior"), ("L2", "inferior"),
                       ("L3", "inferior"), ("L4", "superior"), ("L5", "inferior")):
        ep, va = truth.endplate(vert, side), anat_vertebra(truth, vert)
        k0 = _mid_slice(vol, ep.center)
        for k in (k0 - 1, k0, k0 + 1):
            pts = g.index_to_patient(np.column_stack([np.full(rr.size, k), rr.ravel(), cc.ravel()]))
            q = va.to_local(pts)
            w = (va.z_surface(q[:, 0], q[:, 1], True) - q[:, 2] if side == "superior"
                 else q[:, 2] - va.z_surface(q[:, 0], q[:, 1], False))
            sel = np.flatnonzero((tissue_at(truth, pts) == f"marrow_{vert}") & (w >= 0.8)
                                 & (w <= 3.0) & (np.abs(q[:, 1]) <= 0.35 * va.depth))
            frac = np.mean([tissue_at(truth, pts[sel] + o * g.normal) == f"marrow_{vert}"
                            for o in np.linspace(-2.5, 2.5, 11)], axis=0)
            img_k = vol.array[k].ravel()[sel]
            mixed += list(img_k[frac <= 0.8])
            pure += list(img_k[frac == 1.0])
    assert len(mixed) >= 5 and len(pure) >= 50
    assert np.mean(mixed) < 0.85 * np.mean(pure)


def anat_vertebra(truth: GroundTruth, name: str) -> Vertebra:
    return anatomy_of(truth).vertebra(name)


def test_reader_styles_draw_bands_at_their_insets(realism) -> None:
    truth, study = realism
    classic = reader_annotations(truth, study)
    assert reader_annotations(truth, study, style=ReaderStyle()).to_dict() == classic.to_dict()
    g = study.t1.geometry
    px = g.pixel_spacing[0]
    anat = anatomy_of(truth)
    insets: dict[int, set[int]] = {}
    for seed in (3, 4, 5):
        style = ReaderStyle.realistic(seed)
        ann = reader_annotations(truth, study, style=style)
        assert len(ann.references()) >= 1
        for roi in ann.endplates():
            vert, side = roi.label.vertebra, roi.label.endplate.value
            e = truth.endplate(vert, side)
            draw = style.draw(vert, side, changed=e.modic_type != "0")
            if e.modic_type != "0" or draw.kind != "band":
                continue
            assert draw.inset_px is not None and draw.height_mm is not None
            insets.setdefault(seed, set()).add(draw.inset_px)
            mask = roi.shape.rasterize(g.rows, g.columns)
            k = _mid_slice(study.t1, roi.image.position)
            r, c = np.nonzero(mask)
            pts = g.index_to_patient(np.column_stack([np.full(r.size, k), r, c]))
            va = anat.vertebra(vert)
            q = va.to_local(pts)
            w = (va.z_surface(q[:, 0], q[:, 1], True) - q[:, 2] if side == "superior"
                 else q[:, 2] - va.z_surface(q[:, 0], q[:, 1], False))
            # the outline's closest pixel sits at the inset (within a pixel of smoothing)
            assert abs(float(np.min(w)) - draw.inset_px * px) <= 1.2 * px, (seed, vert, side)
            assert float(np.max(w)) <= draw.inset_px * px + draw.height_mm + 1.2 * px
    assert len(set().union(*insets.values())) >= 3  # styles differ in how close they draw
    missing = ReaderStyle(missing_reference=0.6, seed=9)
    refs = reader_annotations(truth, study, style=missing).references()
    assert 1 <= len(refs) < 6


def _pair(tmp_path: Path, name: str, series: list[SeriesSpec], **kw: object
          ) -> tuple[GroundTruth, modic.LoadedStudy]:
    spec = StudySpec(seed=41, snr=60.0, supersample=(2, 2, 2), series=series,
                     **kw)  # type: ignore[arg-type]
    truth = write_study(spec, tmp_path / name)
    return truth, modic.load_study(tmp_path / name)


def _l1_over_s1(study: modic.LoadedStudy, truth: GroundTruth, role: str) -> float:
    vol = getattr(study, role)
    out = []
    for name in ("L1", "S1"):
        c = truth.vertebra(name).center
        out.append(_median_of(vol, truth, _mid_slice(vol, c), f"marrow_{name}"))
    return out[0] / out[1]


def test_coil_gradient_scales_l1_over_s1_on_every_sequence(tmp_path: Path) -> None:
    series = [_sag("t1", rows=96, n=3, fov=280.0), _sag("t2", rows=96, n=3, fov=280.0)]
    flat_truth, flat = _pair(tmp_path, "flat", series, bias=0.0)
    coil_truth, coil = _pair(tmp_path, "coil", series, bias=0.0, coil_gradient=1.6)
    assert flat_truth.factors is None  # no realism option: truth as before
    assert coil_truth.factors is not None
    assert coil_truth.factors["coil_ratio_L1_S1"] == pytest.approx(1.6, rel=0.01)
    for role in ("t1", "t2"):  # one coil: the same gradient on every series
        ratio = _l1_over_s1(coil, coil_truth, role) / _l1_over_s1(flat, flat_truth, role)
        assert ratio == pytest.approx(1.6, rel=0.1), role


def test_incomplete_stir_fat_suppression_brightens_fat(tmp_path: Path) -> None:
    def fat_over_muscle(eff: float | None) -> tuple[float, float]:
        truth, study = _pair(tmp_path, f"stir{eff}", [
            _sag("t1", rows=96, n=3, fov=300.0),
            _sag("stir", rows=96, n=3, fov=300.0, stir_efficiency=eff)])
        assert study.stir is not None
        k = _mid_slice(study.stir, truth.vertebra("L3").center)
        fat = _median_of(study.stir, truth, k, "subcutaneous_fat")
        muscle = _median_of(study.stir, truth, k, "muscle")
        ti = study.stir.series.sequence.inversion_time
        assert ti is not None
        return fat / muscle, ti

    full, ti_full = fat_over_muscle(None)
    poor, ti_poor = fat_over_muscle(0.3)
    assert full < 0.5  # nulled by the inversion time
    assert poor > 2.0 and poor > 4 * full  # 30 % efficiency: fat well above muscle
    assert ti_poor == ti_full  # the header still says STIR at the fat null


def test_heterogeneous_marrow_is_patchier_and_focal_fat_is_normal(tmp_path: Path) -> None:
    series = [_sag("t1", rows=128, n=3, fov=260.0), _sag("t2", rows=48, n=3, fov=260.0)]
    _, plain = _pair(tmp_path, "plain", series)
    truth, het = _pair(tmp_path, "het", series, marrow_heterogeneity=1.0, marrow_fat_islands=4.0)

    def spread(study: modic.LoadedStudy) -> float:
        values = []
        for name in ("L1", "L2", "L3", "L4", "L5"):
            c = truth.vertebra(name).center
            k = _mid_slice(study.t1, c)
            names, img = _slice_tissue(study.t1, truth, k)
            m = img[_interior(names == f"marrow_{name}")]
            values.append(float(np.percentile(m, 90) - np.percentile(m, 10)) / float(np.median(m)))
        return float(np.mean(values))

    assert spread(het) > 1.5 * spread(plain)
    assert truth.factors is not None and truth.factors["focal_fat_islands"] >= 5
    assert all(e.modic_type == "0" for e in truth.endplates)  # focal fat is normal marrow
    bright = []
    for name in ("L1", "L2", "L3", "L4", "L5", "S1"):
        k = _mid_slice(het.t1, truth.vertebra(name).center)
        names, img = _slice_tissue(het.t1, truth, k)
        island = names == f"focalfat_{name}"
        if island.sum() >= 2:
            bright.append(float(np.median(img[island]) / np.median(img[names == f"marrow_{name}"])))
    assert bright and max(bright) > 1.15  # T1-bright like a small type 2


def test_realism_specs_round_trip_and_validate(realism) -> None:
    truth, study = realism
    assert truth.study_spec == _realism_spec()
    assert GroundTruth.from_dict(json.loads(json.dumps(truth.to_dict()))) == truth
    plain = default_study_spec(3)
    assert not plain.uses_realism and _realism_spec().uses_realism
    new_keys = {"coil_gradient", "marrow_heterogeneity", "marrow_fat_islands",
                "endplate_irregularity", "degenerated_discs", "hemangiomas",
                "schmorl_nodes", "patient_age"}
    assert not new_keys & set(plain.to_dict())
    assert all("stir_efficiency" not in s for s in _tiny_spec(1).to_dict()["series"])
    with pytest.raises(ValueError, match="t1_ratio"):
        LesionSpec("L4", "superior", "1", t1_ratio=1.1)
    with pytest.raises(ValueError, match="t1_ratio"):
        LesionSpec("L4", "superior", "3", t1_ratio=0.9)
    with pytest.raises(ValueError, match="fat_islands"):
        LesionSpec("L4", "superior", "2", fat_islands=0.1)
    with pytest.raises(ValueError, match="stir_efficiency"):
        SeriesSpec(role="t2", stir_efficiency=0.5)
    with pytest.raises(ValueError, match="coil_gradient"):
        StudySpec(seed=1, coil_gradient=3.0)
    with pytest.raises(ValueError, match="degenerated_discs"):
        StudySpec(seed=1, degenerated_discs=["L6/S1"])
    with pytest.raises(ValueError, match="S1"):
        SchmorlNodeSpec("S1", "inferior")
    with pytest.raises(ValueError, match="radius_mm"):
        HemangiomaSpec("L3", radius_mm=20.0)
    with pytest.raises(ValueError, match="style"):
        reader_annotations(truth, study, erode=False, style=ReaderStyle())


def test_cli_writes_a_cohort_one_seed_per_study(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "cohort"
    cmd = [sys.executable, "-m", "modic.phantom", str(out), "--count", "2", "--seed", "41", "--small",
           "--annotations"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "study_000041", "study_000041.modic.json", "study_000041.truth.json",
        "study_000042", "study_000042.modic.json", "study_000042.truth.json",
    ]
    assert f"{out}: 2 studies (seeds 41 to 42)" in r.stdout
    result = modic.scan(out)
    assert len(result.studies) == 2
    assert sorted(f.path.name for f in result.skipped) == sorted(p.name for p in out.glob("*.json"))
    truths = [json.loads((out / f"study_0000{s}.truth.json").read_text()) for s in (41, 42)]
    assert [t["seed"] for t in truths] == [41, 42]
    assert {t["study_instance_uid"] for t in truths} == {s.study_uid for s in result.studies}
    for s in (41, 42):  # ROIs of the study beside them
        ann = modic.annotations.read_annotations(out / f"study_0000{s}.modic.json")
        assert ann.study_instance_uid == truths[s - 41]["study_instance_uid"] and len(ann.rois) > 5
    # a cohort folder that holds something is refused
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and f"{out} exists and is not an empty folder" in r.stderr


def _disc_label(spec, upper: str, lower: str) -> str:
    """The tissue painted half-way between two vertebrae's facing endplate centres."""
    from modic.phantom.build import build_anatomy

    anat = build_anatomy(spec)
    a = anat.vertebra(upper).endplate_center(superior=False)
    b = anat.vertebra(lower).endplate_center(superior=True)
    code = int(anat.labels(((a + b) / 2)[None])[0])
    return anat.tissue_names[code]


def test_transitional_anatomy_fuses_or_frees_the_lumbosacral_disc() -> None:
    base = default_study_spec(4242)
    # without transitional anatomy: a real L5/S1 disc, S1/S2 a remnant of the fused sacrum
    assert _disc_label(base, "L5", "S1").startswith(("nucleus", "annulus"))
    assert _disc_label(base, "S1", "S2") == "disc_remnant"
    sacralised = default_study_spec(4242, transitional="sacralised_L5")
    assert _disc_label(sacralised, "L5", "S1") == "disc_remnant"
    lumbarised = default_study_spec(4242, transitional="lumbarised_S1")
    assert _disc_label(lumbarised, "S1", "S2").startswith(("nucleus", "annulus"))
    assert _disc_label(lumbarised, "L5", "S1").startswith(("nucleus", "annulus"))
    # the vertebrae above keep their place: nothing else is drawn differently
    from modic.phantom.build import build_anatomy

    for spec in (sacralised, lumbarised):
        assert np.allclose(build_anatomy(spec).vertebra("L3").center,
                           build_anatomy(base).vertebra("L3").center, atol=1e-6)
    with pytest.raises(ValueError, match="transitional must be one of"):
        default_study_spec(4242, transitional="L6")
