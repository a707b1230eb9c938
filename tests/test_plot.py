"""modic.plot: real figures on Agg, read back from their Axes and saved as PNG / SVG / PDF.

Expectations come from outside the code under test: the sample studies' ground truth
(``NAME.truth.json``), the annotation files, Modic's table (type 1 dark on T1 and bright on
STIR, type 2 the reverse) and the annotator's palette; never pixel hashes.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex, to_rgba  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

import modic  # noqa: E402
from modic import plot  # noqa: E402
from modic.annotations import RoiLabel  # noqa: E402
from modic.annotator.colors import MODIC_COLORS, REFERENCE_COLOR  # noqa: E402
from modic.criteria import ModicType  # noqa: E402

ANATOMICAL = ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _truth_levels(name: str) -> list[str]:
    """Disc levels with a Modic change in a sample study's ground truth, head to foot."""
    truth = json.loads(modic.data.sample_truth_path(name).read_text(encoding="utf-8"))
    found = {
        RoiLabel.for_endplate(e["vertebra"], e["endplate"]).level
        for e in truth["endplates"]
        if e["modic_type"] != "0"
    }
    return [lv for lv in ANATOMICAL if lv in found]


class Classified:
    def __init__(self, name: str) -> None:
        self.name = name
        self.study = modic.load_study(modic.data.sample_study_path(name))
        self.rois = modic.read_annotations(modic.data.sample_annotations_path(name))
        self.results = modic.classify(self.study, self.rois)


@pytest.fixture(scope="module")
def siemens() -> Classified:
    return Classified("siemens_15T_type1_type2")


@pytest.fixture(scope="module")
def ge() -> Classified:
    return Classified("ge_3T_type3_mixed12")


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    from modic.batch import run_batch

    out = tmp_path_factory.mktemp("plot-batch") / "out"
    summary = run_batch(modic.data.sample_data_dir(), out, workers=1)
    assert summary.n_ok == 4
    return out


def _roi_patches(ax) -> dict[str, object]:
    return {
        p.get_gid().split(":", 1)[1]: p for p in ax.patches if (p.get_gid() or "").startswith("modic-roi:")
    }


def _legend_texts(fig_or_ax) -> list[str]:
    legends = list(getattr(fig_or_ax, "legends", [])) + (
        [fig_or_ax.get_legend()] if hasattr(fig_or_ax, "get_legend") and fig_or_ax.get_legend() else []
    )
    return [t.get_text() for leg in legends for t in leg.get_texts()]


# -- per study: images ----------------------------------------------------------------------


def test_levels_shows_the_truths_abnormal_levels_on_every_sequence(siemens):
    fig = plot.levels(siemens.study, siemens.rois, siemens.results)
    expected = _truth_levels(siemens.name)
    assert expected == ["L4/L5"]
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == len(expected) * 3
    assert [t.split(" · ")[:2] for t in titles] == [
        [lv, seq] for lv in expected for seq in ("T1", "T2", "STIR")
    ]
    l4i = siemens.rois.find("L4", "inferior")[0]
    l5s = siemens.rois.find("L5", "superior")[0]
    ref = siemens.rois.find("L4", None)
    for ax in fig.axes:
        patches = _roi_patches(ax)
        # both changed endplates are on the level's slice of every series, filled by their type
        assert to_hex(patches[l4i.id].get_facecolor()) == MODIC_COLORS["1"].lower()
        assert to_hex(patches[l5s.id].get_facecolor()) == MODIC_COLORS["2"].lower()
        assert 0 < patches[l4i.id].get_facecolor()[3] < 1  # filled, the image still visible
        texts = [t.get_text() for t in ax.texts]
        assert "L4 inf · 1" in texts and "L5 sup · 2" in texts
        references = [r for r in ref if r.label.kind == "reference"]
        assert any(r.id in patches for r in references)
        for r in references:
            if r.id in patches:
                assert to_hex(patches[r.id].get_edgecolor()) == REFERENCE_COLOR.lower()
    legend = _legend_texts(fig)
    assert "Modic 1  oedema" in legend and "Modic 2  fatty" in legend and "reference marrow" in legend
    assert not any("sclerosis" in t for t in legend)  # only the types drawn


def test_levels_two_levels_in_anatomical_order(ge):
    fig = plot.levels(ge.study, ge.rois, ge.results)
    expected = _truth_levels(ge.name)
    assert expected == ["L3/L4", "L5/S1"]
    rows = [ax.get_title().split(" · ")[0] for ax in fig.axes]
    assert rows == [lv for lv in expected for _ in range(3)]
    s1 = ge.rois.find("S1", "superior")[0]
    lower = fig.axes[3:]
    assert all(to_hex(_roi_patches(ax)[s1.id].get_facecolor()) == MODIC_COLORS["1/2"].lower() for ax in lower)


def test_levels_indeterminate_is_striped_blue(siemens):
    changed = [
        dataclasses.replace(r, modic_type=ModicType.INDETERMINATE, reason="T1 and STIR disagree")
        if str(r.label) == "L4 inferior"
        else r
        for r in siemens.results
    ]
    fig = plot.levels(siemens.study, siemens.rois, changed, levels=["L4/L5"])
    l4i = siemens.rois.find("L4", "inferior")[0]
    ax = fig.axes[0]
    assert to_hex(_roi_patches(ax)[l4i.id].get_facecolor()) == MODIC_COLORS["indeterminate"].lower()
    hatch = [p for p in ax.patches if p.get_gid() == f"modic-hatch:{l4i.id}"]
    assert len(hatch) == 1 and hatch[0].get_hatch()
    assert "L4 inf · ?" in [t.get_text() for t in ax.texts]
    striped = [ln for ln in ax.lines if ln.get_gapcolor() is not None]
    assert striped and to_hex(striped[0].get_color()) == MODIC_COLORS["indeterminate"].lower()
    assert "Modic ?  indeterminate" in _legend_texts(fig)


def test_levels_of_a_normal_study_says_so(siemens):
    normal = [dataclasses.replace(r, modic_type=ModicType.NONE) for r in siemens.results]
    fig = plot.levels(siemens.study, siemens.rois, normal)
    assert len(fig.axes) == 1
    assert "No Modic change" in fig.axes[0].texts[0].get_text()


def test_levels_given_a_level_without_rois_is_an_error(siemens):
    with pytest.raises(ValueError, match="T11/T12"):
        plot.levels(siemens.study, siemens.rois, siemens.results, levels=["T11/T12"])


def test_levels_draws_into_a_given_figure(siemens):
    from matplotlib.figure import Figure

    fig = Figure()
    assert plot.levels(siemens.study, siemens.rois, siemens.results, fig=fig) is fig
    assert len(fig.axes) == 3


# -- per study: ratios ----------------------------------------------------------------------


def _region_type_at(ax, fluid: float, t1: float) -> str:
    """The colour of the shaded decision region at a point, as a Modic type."""
    import numpy as np

    (mesh,) = ax.collections[:1]
    coords = mesh.get_coordinates()  # (ny + 1, nx + 1, 2)
    xs, ys = coords[0, :, 0], coords[:, 0, 1]
    i = int(np.searchsorted(ys, t1)) - 1
    j = int(np.searchsorted(xs, fluid)) - 1
    value = np.asarray(mesh.get_array()).reshape(len(ys) - 1, len(xs) - 1)[i, j]
    rgba = mesh.cmap(mesh.norm(value))
    by_colour = {to_hex(to_rgba(c)): t for t, c in MODIC_COLORS.items()}
    return by_colour[to_hex(rgba)]


def test_ratios_log_axes_points_and_regions_follow_modics_table(siemens):
    fig = plot.ratios(siemens.results)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "STIR" in ax.get_xlabel() and ax.get_ylabel().startswith("T1")
    containers = ax.containers
    assert len(containers) == len(siemens.results)  # one point with its intervals per endplate
    # the point of L4 inferior (type 1) sits where T1 is dark and STIR bright
    l4 = next(r for r in siemens.results if str(r.label) == "L4 inferior")
    assert "L4 inf" in [t.get_text() for t in ax.texts]
    # Modic's table: dark T1 + bright STIR is oedema (1), bright T1 + dark STIR fat (2),
    # dark on both sclerosis (3), like reference marrow is type 0
    assert _region_type_at(ax, 3.0, 0.6) == "1"
    assert _region_type_at(ax, 0.45, 1.6) == "2"
    assert _region_type_at(ax, 0.45, 0.5) == "3"
    assert _region_type_at(ax, 1.0, 1.0) == "0"
    assert _region_type_at(ax, l4.ratios[modic.Role.STIR].ratio, l4.ratios[modic.Role.T1].ratio) == "1"
    assert {"Modic 0  no change", "Modic 1  oedema", "Modic 2  fatty"} <= set(_legend_texts(ax))


def test_ratios_from_a_table_with_t2_and_without_regions(batch_out):
    import csv

    with (batch_out / "results.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    fig = plot.ratios(rows, fluid="T2", regions=False)
    (ax,) = fig.axes
    assert ax.get_xlabel().startswith("T2")
    assert not ax.collections or all(type(c).__name__ != "QuadMesh" for c in ax.collections)
    assert len(ax.containers) == len(rows) == 44
    with pytest.raises(ValueError, match="fluid"):
        plot.ratios(rows, fluid="PD")


def test_ratios_into_a_given_axes(siemens):
    fig, ax = plt.subplots()
    assert plot.ratios(siemens.results, ax=ax) is fig


# -- per study: spine -----------------------------------------------------------------------


def _endplate_patch(ax, label: str):
    (p,) = [p for p in ax.patches if p.get_gid() == f"modic-endplate:{label}"]
    return p


def test_spine_levels_types_and_the_bvn_criterion(siemens):
    fig = plot.spine(siemens.results)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert to_hex(_endplate_patch(ax, "L4 inferior").get_facecolor()) == MODIC_COLORS["1"].lower()
    assert to_hex(_endplate_patch(ax, "L5 superior").get_facecolor()) == MODIC_COLORS["2"].lower()
    assert to_hex(_endplate_patch(ax, "L3 superior").get_facecolor()) == MODIC_COLORS["0"].lower()
    # endplates not annotated are white ("not read")
    assert to_hex(_endplate_patch(ax, "T12 superior").get_facecolor()) == "#ffffff"
    # L4/L5 carries type 1 and 2: the criterion of FDA K153272 / K190504 names L4 and L5
    bodies = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    widths = {
        lbl: b.get_linewidth()
        for lbl, b in zip(["T12", "L1", "L2", "L3", "L4", "L5", "S1"], bodies, strict=True)
    }
    assert widths["L4"] > widths["L3"] and widths["L5"] > widths["S1"] and widths["L4"] == widths["L5"]
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("◆ 1") for t in texts) and any(t.startswith("◆ 2") for t in texts)
    assert not any(t.startswith("◆ 0") for t in texts)  # type 0 endplates of L4 and L5 are not marked
    legend = " ".join(_legend_texts(ax))
    assert "K153272" in legend and "not advice" in legend and "not read" in legend


def test_spine_draws_the_extent_when_known(siemens):
    from modic.extent import Extent

    ext = Extent(
        height_mm=12.0,
        body_height_mm=30.0,
        height_fraction=0.4,
        height_grade="B",
        length_mm=20.0,
        endplate_length_mm=40.0,
        length_fraction=0.5,
        length_grade="large",
        body_source="outline",
    )
    with_extent = [
        dataclasses.replace(r, extent=ext) if str(r.label) == "L4 inferior" else r for r in siemens.results
    ]
    ax = plot.spine(with_extent).axes[0]
    band = _endplate_patch(ax, "L4 inferior")
    normal = _endplate_patch(ax, "L3 inferior")
    body = [p for p in ax.patches if isinstance(p, FancyBboxPatch)][0]
    assert band.get_height() == pytest.approx(0.4 * body.get_height())
    assert band.get_height() > 2 * normal.get_height()
    assert "◆ 1 · B, large" in [t.get_text() for t in ax.texts]


def test_spine_of_several_studies_is_refused(batch_out):
    with pytest.raises(ValueError, match="one study"):
        plot.spine(batch_out)


# -- per cohort -----------------------------------------------------------------------------


def test_prevalence_levels_in_anatomical_order_whatever_the_row_order(batch_out):
    import csv

    with (batch_out / "results.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    random.Random(3).shuffle(rows)
    rows.sort(key=lambda r: r["level"] != "T12/L1", reverse=True)  # T12/L1 last, as groupby sorts it
    for source in (rows, batch_out, batch_out / "results.csv"):
        ax = plot.prevalence(source).axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == ANATOMICAL
        # head at the top: T12/L1 drawn above L5/S1
        ticks = ax.get_yticks()
        assert ax.transData.transform((0, ticks[0]))[1] > ax.transData.transform((0, ticks[-1]))[1]
    # shares of each level add up to 100 %
    totals: dict[float, float] = {}
    for p in ax.patches:
        if (p.get_gid() or "").startswith("modic-type:"):
            y = round(p.get_y() + p.get_height() / 2, 3)
            totals[y] = totals.get(y, 0) + p.get_width()
    assert len(totals) == 6 and all(v == pytest.approx(100) for v in totals.values())
    # counts from the table itself: types at L5/S1 (ge: 1/2, siemens_3T: 2 and 1 at L5 inferior)
    at_l5s1 = sorted(r["modic_type"] for r in rows if r["level"] == "L5/S1" and r["modic_type"] != "type 0")
    legend = _legend_texts(ax)
    for t in at_l5s1:
        assert any(text.startswith(f"Modic {t.removeprefix('type ')} ") for text in legend)
    order = [text.split()[1] for text in legend]
    assert order == [t for t in plot.TYPE_ORDER if t in order]


def test_prevalence_counts_from_a_dataframe(batch_out):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(batch_out / "results.csv")
    ax = plot.prevalence(df.sample(frac=1, random_state=1), share=False).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ANATOMICAL
    widths = sum(p.get_width() for p in ax.patches if (p.get_gid() or "").startswith("modic-type:"))
    assert widths == len(df) == 44
    assert ax.get_xlabel() == "endplates"


def test_ratio_distributions_one_panel_per_sequence(batch_out):
    fig = plot.ratio_distributions(batch_out)
    assert [ax.get_title() for ax in fig.axes] == ["T1", "T2", "STIR"]
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "1/2", "2", "3"]
    assert fig.axes[0].get_ylabel() == "signal ratio to reference marrow"


def test_confidence_histogram(batch_out):
    ax = plot.confidence(batch_out).axes[0]
    assert ax.get_xlabel().startswith("confidence")
    assert len(ax.containers) == 5  # types 0, 1, 1/2, 2, 3 in the sample cohort
    assert sum(p.get_height() for c in ax.containers for p in c) == 44  # every endplate counted once


def test_warnings_by_study_lists_the_studies_with_warnings(batch_out):
    import csv

    with (batch_out / "results.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    warned = sorted({r["study"] for r in rows if r["warnings"] not in ("", "-")})
    assert warned  # the sample cohort has some
    ax = plot.warnings_by_study(batch_out).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == warned
    assert "endplates with a warning" in _legend_texts(ax)


def test_warnings_by_study_none(siemens):
    quiet = [dataclasses.replace(r, warnings=[]) for r in siemens.results]
    ax = plot.warnings_by_study(quiet).axes[0]
    assert ax.texts and ax.texts[0].get_text().startswith("No warnings")


def test_a_folder_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.csv"):
        plot.prevalence(tmp_path)


# -- files, pyplot ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml"), (".pdf", b"%PDF-")]
)
def test_save_png_svg_pdf(siemens, tmp_path, suffix, magic):
    fig = plot.spine(siemens.results)
    path = plot.save(fig, tmp_path / f"spine{suffix}")
    data = path.read_bytes()
    assert data.startswith(magic) and len(data) > 2000
    if suffix == ".svg":
        assert b"<svg" in data[:2000] and b"L4" in data  # text kept as text
    if suffix == ".pdf":
        assert b"CreationDate" not in data  # no time stamp


def test_save_refuses_other_formats(siemens, tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        plot.save(plot.spine(siemens.results), tmp_path / "spine.jpg")
    assert not (tmp_path / "spine.jpg").exists()


def test_pyplot_is_imported_only_when_a_figure_is_made():
    code = (
        "import sys, matplotlib; matplotlib.use('Agg'); import modic.plot as p; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported at import'; "
        "\nwith p.offscreen():\n    f = p.confidence([])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported offscreen'; "
        "p.confidence([]); assert 'matplotlib.pyplot' in sys.modules; print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_offscreen_figures_are_not_tracked_by_pyplot(siemens):
    before = plt.get_fignums()
    with plot.offscreen():
        fig = plot.spine(siemens.results)
    assert plt.get_fignums() == before
    assert fig.axes
