"""The annotator, driven like a person drives it: real MouseEvents and KeyEvents through the canvas.

Every test runs on the Agg backend (restored afterwards). Sample data is read-only: the
annotation files are copied to tmp_path before anything autosaves.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pydicom
import pytest
from matplotlib.backend_bases import KeyEvent, MouseButton, MouseEvent
from matplotlib.text import Text

import modic
from modic.annotations import ROI, Annotations, Ellipse, Polygon, Rectangle, RoiLabel, read_annotations
from modic.criteria import ModicType
from modic.results import ModicResult
from modic.sequence import Role

NAME = "siemens_15T_type1_type2"
L4I = RoiLabel.parse("L4 inferior")
L4R = RoiLabel.parse("ref L4")


# ----------------------------------------------------------------------------------------
# fixtures and helpers
# ----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def agg_backend() -> Iterator[None]:
    import matplotlib.pyplot as plt

    old = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    plt.close("all")
    matplotlib.use(old)


@pytest.fixture(scope="module")
def study() -> modic.LoadedStudy:
    return modic.load_study(modic.data.sample_study_path(NAME))


@pytest.fixture(scope="module")
def truth() -> Annotations:
    """The shipped reader ROIs: where the sample's changes and normal marrow are."""
    return read_annotations(modic.data.sample_annotations_path(NAME))


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    return Path(shutil.copy(modic.data.sample_annotations_path(NAME), tmp_path / "case.modic.json"))


def open_annotator(study: modic.LoadedStudy, path: Path, **kw: object) -> modic.annotator.Annotator:
    from modic.annotator import Annotator

    return Annotator(study, path=path, **kw)  # type: ignore[arg-type]


def t1_slice_of(study: modic.LoadedStudy, roi: ROI) -> int:
    """The T1 slice an ROI was drawn on, from its SOP instance (not from the annotator)."""
    return [f.sop_instance_uid for f in study.t1.series.frames].index(roi.image.sop_instance_uid)


class Driver:
    """Sends real matplotlib events to the annotator's canvas, in image coordinates of a pane."""

    def __init__(self, ann: modic.annotator.Annotator) -> None:
        self.ann = ann
        self.canvas = ann.figure.canvas

    def _xy(self, role: str, xy: tuple[float, float]) -> tuple[float, float]:
        x, y = self.ann.panes[Role(role)].ax.transData.transform(xy)
        return float(x), float(y)

    def mouse(
        self,
        name: str,
        role: str,
        xy: tuple[float, float],
        button: MouseButton | None = None,
        *,
        step: int = 0,
        key: str | None = None,
        display_offset: tuple[float, float] = (0.0, 0.0),
    ) -> MouseEvent:
        x, y = self._xy(role, xy)
        event = MouseEvent(
            name, self.canvas, x + display_offset[0], y + display_offset[1], button=button, step=step, key=key
        )
        self.canvas.callbacks.process(name, event)
        return event

    def move(self, role: str, xy: tuple[float, float]) -> None:
        self.mouse("motion_notify_event", role, xy)

    def click(self, role: str, xy: tuple[float, float], button: MouseButton = MouseButton.LEFT) -> None:
        self.move(role, xy)
        self.mouse("button_press_event", role, xy, button)
        self.mouse("button_release_event", role, xy, button)

    def drag(
        self,
        role: str,
        start: tuple[float, float],
        end: tuple[float, float],
        button: MouseButton = MouseButton.LEFT,
        steps: int = 4,
    ) -> None:
        self.move(role, start)
        self.mouse("button_press_event", role, start, button)
        for t in np.linspace(0, 1, steps + 1)[1:]:
            self.move(role, (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])))
        self.mouse("button_release_event", role, end, button)

    def key(self, key: str, role: str = "T1") -> None:
        x, y = self._xy(role, self.ann.panes[Role(role)].view_centre_xy())
        mods = [m for m in ("ctrl", "cmd") if key.startswith(m + "+")]
        if mods:  # as a keyboard sends it: the modifier, the key, then both released
            modifier = {"ctrl": "control"}.get(mods[0], mods[0])
            self.canvas.callbacks.process(
                "key_press_event", KeyEvent("key_press_event", self.canvas, modifier, x, y)
            )
        self.canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", self.canvas, key, x, y))
        self.canvas.callbacks.process(
            "key_release_event", KeyEvent("key_release_event", self.canvas, key, x, y)
        )
        if mods:
            self.canvas.callbacks.process(
                "key_release_event", KeyEvent("key_release_event", self.canvas, modifier, x, y)
            )


def file_rois(path: Path) -> dict[str, tuple[str, object]]:
    return {r.id: (str(r.label), r.shape) for r in read_annotations(path)}


def current_rois(ann: modic.annotator.Annotator) -> dict[str, tuple[str, object]]:
    return {r.id: (str(r.label), r.shape) for r in ann.annotations}


def interior_point(roi: ROI) -> tuple[float, float]:
    """The pixel centre inside an ROI farthest from its outline's vertices (image x, y)."""
    rr, cc = np.nonzero(roi.pixel_mask())
    centres = np.column_stack([cc + 0.5, rr + 0.5])
    verts = roi.shape.outline()
    d = np.linalg.norm(centres[:, None, :] - verts[None, :, :], axis=2).min(axis=1)
    x, y = centres[int(d.argmax())]
    return float(x), float(y)


# ----------------------------------------------------------------------------------------
# opening
# ----------------------------------------------------------------------------------------
def test_opens_with_panes_windows_and_a_first_label(study, tmp_path):
    ann = open_annotator(study, tmp_path / "new.modic.json")
    assert list(ann.panes) == [Role.T1, Role.T2, Role.STIR]
    for role, vol in study.volumes.items():
        lo, hi = np.percentile(vol.array, [1, 99])
        assert ann.window(role) == pytest.approx((lo, hi))
        assert ann.current_slice(role) == vol.shape[0] // 2
    assert str(ann.next_label()) == "L1 superior" == str(ann.label)
    assert ann.tool == "polygon" and ann.widget is None
    assert len(ann.annotations) == 0 and ann.results == {}
    assert not (tmp_path / "new.modic.json").exists()  # nothing is written until something changes
    ann.close()


def test_default_annotation_file_is_beside_the_study_folder(study):
    from modic.annotator import default_annotation_path

    folder = modic.data.sample_study_path(NAME)
    path = default_annotation_path(study)
    assert path == modic.annotation_path_for(folder).resolve()
    assert folder.resolve() not in path.parents


# ----------------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------------
def test_polygon_by_clicks_gets_the_label_is_autosaved_and_suggests_the_reference(study, truth, tmp_path):
    path = tmp_path / "case.modic.json"
    ann = open_annotator(study, path, author="tester")
    drive = Driver(ann)
    gc.collect()  # selectors are referenced by the annotator: they must survive this
    target = truth.find("L4", "inferior")[0]
    ann.set_slice("T1", t1_slice_of(study, target))
    # zoom in so that vertices one pixel apart are several screen pixels apart (as a reader would)
    centre = tuple(target.shape.points.mean(axis=0))
    ann.zoom(6.0, "T1", centre_xy=centre)
    drive.key("p")
    ann.set_label("L4 inferior")
    for x, y in target.shape.points:
        drive.click("T1", (x, y))
    assert len(ann.annotations) == 0  # not closed yet
    drive.click("T1", tuple(target.shape.points[0]))  # the closing click on the first vertex
    (roi,) = ann.annotations.rois
    assert roi.label == L4I and roi.author == "tester"
    assert isinstance(roi.shape, Polygon)
    np.testing.assert_allclose(roi.shape.points, target.shape.points, atol=1e-3)
    assert roi.image.sop_instance_uid == target.image.sop_instance_uid
    assert file_rois(path) == current_rois(ann)  # autosaved
    assert isinstance(ann.results[roi.id], str) and "no reference" in ann.results[roi.id]
    assert ann.label == L4R == ann.next_label()  # an endplate without its vertebra's reference
    assert ann.selected == roi.id


def test_rectangle_and_ellipse_by_drag_give_modic_1_at_l4_inferior(study, truth, tmp_path, monkeypatch):
    import modic.annotator.live as live

    calls: list[str] = []
    real = live.classify_roi
    monkeypatch.setattr(
        live,
        "classify_roi",
        lambda st, roi, refs, **kw: calls.append(str(roi.label)) or real(st, roi, refs, **kw),
    )
    path = tmp_path / "case.modic.json"
    ann = open_annotator(study, path)
    drive = Driver(ann)
    endplate, reference = truth.find("L4", "inferior")[0], truth.find("L4", kind="reference")[0]
    ann.set_slice("T1", t1_slice_of(study, endplate))
    ann.set_label("L4 inferior")
    drive.key("r")
    x0, y0 = endplate.shape.points.min(axis=0)
    x1, y1 = endplate.shape.points.max(axis=0)
    drive.drag("T1", (x0, y0), (x1, y1))
    (rect,) = ann.annotations.rois
    assert rect.shape == Rectangle(x0, y0, x1, y1) and rect.label == L4I
    assert isinstance(ann.results[rect.id], str)
    assert ann.label == L4R  # suggested
    drive.key("e")
    a0, b0 = reference.shape.points.min(axis=0) + 0.5
    a1, b1 = reference.shape.points.max(axis=0) - 0.5
    drive.drag("T1", (a0, b0), (a1, b1))
    ell = ann.annotations.rois[1]
    assert ell.label == L4R and ell.shape == Ellipse(
        (a0 + a1) / 2, (b0 + b1) / 2, (a1 - a0) / 2, (b1 - b0) / 2
    )
    result = ann.results[rect.id]
    assert isinstance(result, ModicResult) and result.modic_type is ModicType.TYPE1
    assert result.reference_id == ell.id and set(result.ratios) == {Role.T1, Role.T2, Role.STIR}
    assert str(ann.label) == "L5 superior"  # after L4 inferior with its reference
    # the label on the panes says it, in the type-1 colour
    line, text = ann.panes[Role.T1].rois[rect.id]
    assert (
        text.get_text().startswith("L4 inf \u00b7 1")  # then its Udby grade, if measured
        and line.get_color() == modic.annotator.colors.MODIC_COLORS["1"]
    )
    # only the changed ROI is classified again: an unrelated endplate leaves L4 alone
    calls.clear()
    ann.add_roi(ROI(RoiLabel.parse("L2 superior"), Rectangle(70, 40, 85, 44), rect.image))
    assert calls == ["L2 superior"]
    assert ann.results[rect.id] is result


def test_freehand_lasso_makes_a_polygon(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    drive.key("f")
    ann.set_label("L3 reference")
    t = np.linspace(0, 2 * np.pi, 24)
    path = [(80 + 5 * np.cos(a), 90 + 3 * np.sin(a)) for a in t]
    drive.move("T1", path[0])
    drive.mouse("button_press_event", "T1", path[0], MouseButton.LEFT)
    for xy in path[1:]:
        drive.move("T1", xy)
    drive.mouse("button_release_event", "T1", path[-1], MouseButton.LEFT)
    (roi,) = ann.annotations.rois
    assert isinstance(roi.shape, Polygon) and roi.label == RoiLabel.parse("L3 reference")
    assert len(roi.shape.points) >= 12
    np.testing.assert_allclose(roi.shape.points.min(axis=0), [75, 87], atol=0.2)
    np.testing.assert_allclose(roi.shape.points.max(axis=0), [85, 93], atol=0.2)


def test_a_click_without_drag_makes_no_rectangle(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    drive.key("r")
    drive.click("T1", (50, 50))
    drive.drag("T1", (50, 50), (50.4, 50.3))
    assert len(ann.annotations) == 0 and not (tmp_path / "case.modic.json").exists()


# ----------------------------------------------------------------------------------------
# editing, history, saving
# ----------------------------------------------------------------------------------------
def test_edit_vertex_move_undo_redo_delete_with_autosave(study, shipped_copy):
    ann = open_annotator(study, shipped_copy)
    drive = Driver(ann)
    roi = ann.annotations.find("L4", kind="reference")[0]
    original = roi.shape.points.copy()
    ann.set_slice("T1", t1_slice_of(study, roi))
    ann.zoom(4.0, "T1", centre_xy=tuple(original.mean(axis=0)))
    drive.key("v")
    inside = interior_point(roi)
    drive.click("T1", inside)
    assert ann.selected == roi.id
    saved = shipped_copy.read_bytes()  # selecting is not a change
    # drag vertex 0 of the polygon by (1.5, 0.5) pixels
    v0 = tuple(original[0])
    drive.drag("T1", v0, (v0[0] + 1.5, v0[1] + 0.5))
    edited = ann.annotations.get(roi.id).shape.points
    np.testing.assert_allclose(edited[0], original[0] + [1.5, 0.5], atol=1e-3)
    np.testing.assert_allclose(edited[1:], original[1:], atol=1e-3)
    assert file_rois(shipped_copy) == current_rois(ann) and shipped_copy.read_bytes() != saved
    # move the whole ROI by dragging from inside it
    drive.drag("T1", inside, (inside[0] + 3, inside[1] + 2))
    moved = ann.annotations.get(roi.id).shape.points
    np.testing.assert_allclose(moved, edited + [3, 2], atol=1e-3)
    assert file_rois(shipped_copy) == current_rois(ann)
    # undo twice (ctrl+z), redo once (ctrl+y); the file follows every step
    drive.key("ctrl+z")
    np.testing.assert_allclose(ann.annotations.get(roi.id).shape.points, edited, atol=1e-3)
    assert file_rois(shipped_copy) == current_rois(ann)
    assert ann.undo() and not ann.can_undo
    np.testing.assert_allclose(ann.annotations.get(roi.id).shape.points, original)
    assert file_rois(shipped_copy) == current_rois(ann)
    drive.key("ctrl+y")
    np.testing.assert_allclose(ann.annotations.get(roi.id).shape.points, edited, atol=1e-3)
    assert file_rois(shipped_copy) == current_rois(ann)
    # delete the selected ROI with the Delete key; the L4 endplates lose their reference
    drive.click("T1", tuple(edited[1:].mean(axis=0)))
    assert ann.selected == roi.id
    l4i = ann.annotations.find("L4", "inferior")[0]
    assert ann.results[l4i.id].reference_id == roi.id  # type: ignore[union-attr]
    drive.key("delete")
    assert roi.id not in current_rois(ann) and roi.id not in file_rois(shipped_copy)
    assert ann.selected is None
    result = ann.results[l4i.id]
    assert isinstance(result, ModicResult) and result.reference_label.vertebra != "L4"
    assert any("no reference marrow in L4" in w for w in result.warnings)
    assert ann.undo() and roi.id in file_rois(shipped_copy)
    assert ann.results[l4i.id].reference_id == roi.id  # type: ignore[union-attr]


def test_relabel_selected_roi_from_the_keyboard(study, shipped_copy):
    ann = open_annotator(study, shipped_copy)
    drive = Driver(ann)
    roi = ann.annotations.find("L5", "superior")[0]
    ann.select(roi.id)
    assert str(ann.label) == "S1 reference"  # everything is drawn: the last ROI's label
    drive.key("s")
    assert str(ann.label) == "S1 superior"
    drive.key("[")  # a vertebra up, towards the head
    drive.key("[")
    assert str(ann.label) == "L4 superior"
    drive.key("]")
    drive.key("[")
    drive.key("i")
    drive.key("l")
    assert ann.annotations.get(roi.id).label == L4I
    assert read_annotations(shipped_copy).get(roi.id).label == L4I
    drive.key("n")
    assert ann.label.kind == "reference"


def test_save_and_reopen_restores_everything(study, truth, tmp_path):
    path = tmp_path / "case.modic.json"
    ann = open_annotator(study, path, autosave=False)
    for roi in truth.rois[:5]:
        ann.add_roi(ROI(roi.label, roi.shape, roi.image, id=roi.id))
    assert not path.exists()  # autosave off
    Driver(ann).key("ctrl+s")
    assert path.is_file() and "saved" in ann.save_state
    copy = ann.save(tmp_path / "copy.modic.json")
    assert copy.is_file() and ann.path == path
    reopened = open_annotator(study, path)
    assert current_rois(reopened) == current_rois(ann)
    assert [r.id for r in reopened.annotations] == [r.id for r in truth.rois[:5]]
    assert reopened.results.keys() == ann.results.keys()


# ----------------------------------------------------------------------------------------
# panes: linked slices, window, view
# ----------------------------------------------------------------------------------------
def _normal_positions(series: modic.Series) -> np.ndarray:
    """Slice positions along the normal, read from the DICOM headers, in slice order."""
    out = []
    for frame in series.frames:
        ds = pydicom.dcmread(frame.path, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        out.append(float(np.array(ds.ImagePositionPatient, dtype=float) @ normal))
    return np.sort(np.array(out))


def _expected(source: np.ndarray, k: int, target: np.ndarray) -> int:
    return int(np.argmin(np.abs(target - source[k])))


def test_scrolling_one_pane_moves_the_others_to_the_same_position(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    z = {role: _normal_positions(vol.series) for role, vol in study.volumes.items()}
    k0 = ann.current_slice("T1")
    drive.mouse("scroll_event", "T1", (96, 96), step=1)  # mouse wheel up one notch
    assert ann.current_slice("T1") == k0 + 1
    for role in (Role.T2, Role.STIR):
        assert ann.current_slice(role) == _expected(z[Role.T1], k0 + 1, z[role])
    drive.key("down")
    assert ann.current_slice("T1") == k0
    for k in range(study.t1.shape[0]):
        ann.set_slice("T1", k)
        assert ann.current_slice("T2") == _expected(z[Role.T1], k, z[Role.T2])
        assert ann.current_slice("STIR") == _expected(z[Role.T1], k, z[Role.STIR])
    # the T2 pane's slider drives the others too
    ann.panes[Role.T2].slider.set_val(3)  # 1-based, as shown
    assert ann.current_slice("T2") == 2
    assert ann.current_slice("T1") == _expected(z[Role.T2], 2, z[Role.T1])


def test_linked_scrolling_between_stacks_with_other_spacing(lumbar_study, tmp_path):
    st = modic.load_study(lumbar_study.root)
    assert st.t1.shape[0] != st.t2.shape[0]
    ann = open_annotator(st, tmp_path / "x.modic.json")
    z1, z2 = _normal_positions(st.t1.series), _normal_positions(st.t2.series)
    expected = [_expected(z1, k, z2) for k in range(st.t1.shape[0])]
    assert len(set(expected)) > 1 and expected != list(range(st.t1.shape[0]))  # not the same index
    for k in range(st.t1.shape[0]):
        ann.scroll("T1", k - ann.current_slice("T1"))
        assert ann.current_slice("T1") == k
        assert ann.current_slice("T2") == expected[k]


def test_window_by_right_drag_presets_and_reset(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    lo, hi = ann.window("T1")
    scale = (hi - lo) / 300  # the default width per 300 screen pixels
    start = (96.0, 96.0)
    drive.move("T1", start)
    drive.mouse("button_press_event", "T1", start, MouseButton.RIGHT)
    drive.mouse("motion_notify_event", "T1", start, display_offset=(60, 30))
    drive.mouse("button_release_event", "T1", start, MouseButton.RIGHT, display_offset=(60, 30))
    new_lo, new_hi = ann.window("T1")
    assert new_hi - new_lo == pytest.approx(hi - lo + 60 * scale)  # right: wider
    assert (new_lo + new_hi) / 2 == pytest.approx((lo + hi) / 2 + 30 * scale)  # up: higher level
    assert ann.window("T2") == pytest.approx(study.t2.window())  # the other panes keep theirs
    assert len(ann.annotations) == 0  # a right drag draws nothing
    ann.set_window("T2", 10, 500)
    assert ann.window("T2") == (10, 500) and ann.panes[Role.T2].image.get_clim() == (10, 500)
    drive.key("w")
    assert ann.window_preset == "wide"
    w_lo, w_hi = ann.window("STIR")
    d_lo, d_hi = study.stir.window()
    assert w_hi - w_lo == pytest.approx(1.6 * (d_hi - d_lo))
    ann.zoom(2.0, "T1")
    drive.key("home")
    assert ann.window("T2") == pytest.approx(study.t2.window()) and ann.window_preset == "default"
    assert ann.panes[Role.T1].ax.get_xlim() == pytest.approx((0.0, 192.0))


def test_zoom_and_pan_keep_the_panes_on_the_same_patient_region(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    drive.mouse("scroll_event", "T1", (80.0, 110.0), step=2, key="control")  # ctrl+wheel zooms
    t1, t2 = ann.panes[Role.T1], ann.panes[Role.T2]
    assert t1.view_half_size_mm()[0] == pytest.approx(study.t1.shape[2] * study.t1.spacing[2] / 2 / 1.44)
    np.testing.assert_allclose(t1.view_half_size_mm(), t2.view_half_size_mm())
    c1, c2 = t1.view_centre_lps(), t2.view_centre_lps()
    np.testing.assert_allclose(c1[1:], c2[1:], atol=1e-6)  # same in-plane point (A-P, S-I)
    drive.drag("T1", (80.0, 110.0), (90.0, 100.0), button=MouseButton.MIDDLE)  # pan
    np.testing.assert_allclose(t1.view_centre_lps()[1:], t2.view_centre_lps()[1:], atol=1e-6)
    assert not np.allclose(t1.view_centre_lps(), c1)
    drive.key("+")
    drive.key("-")
    np.testing.assert_allclose(t1.view_half_size_mm(), t2.view_half_size_mm())


def test_cross_reference_cursor_marks_the_point_on_every_pane(study, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    drive.move("T1", (100.5, 80.5))
    t1 = ann.panes[Role.T1]
    lps = study.t1.index_to_patient([t1.index, 80.0, 100.0])
    for role, pane in ann.panes.items():
        (x,), (y,) = pane.cursor.get_data()
        s, r, c = study.volumes[role].patient_to_index(lps)
        assert (x, y) == pytest.approx((c + 0.5, r + 0.5))
        assert pane.note.get_text() == ""  # T2 / STIR slices are 1.8 mm away: on the slice
    ann.set_slice("T2", 0)
    ann.set_slice("T1", 6)  # T2 follows, then move T2 away again without linking back
    ann.panes[Role.T2].show_slice(2)
    drive.move("T1", (100.5, 80.5))
    assert "off this slice" in ann.panes[Role.T2].note.get_text()
    figure_leave = MouseEvent("figure_leave_event", ann.figure.canvas, 0, 0)
    ann.figure.canvas.callbacks.process("figure_leave_event", figure_leave)
    assert len(t1.cursor.get_xdata()) == 0  # type: ignore[arg-type]


def test_rois_show_on_every_pane_faint_off_their_slice(study, shipped_copy):
    ann = open_annotator(study, shipped_copy)
    roi = ann.annotations.find("L4", "inferior")[0]
    k = t1_slice_of(study, roi)
    ann.set_slice("T1", k)
    for pane in ann.panes.values():
        line, text = pane.rois[roi.id]
        assert line.get_alpha() == 1.0 and text.get_visible()
        xy = np.column_stack(line.get_data())[:-1]
        s, r, c = study.volumes[pane.role].patient_to_index(roi.patient_outline()).T
        np.testing.assert_allclose(xy, np.column_stack([c + 0.5, r + 0.5]), atol=1e-9)
    ann.set_slice("T1", k + 2)
    for pane in ann.panes.values():
        line, text = pane.rois[roi.id]
        assert line.get_alpha() < 0.5 and line.get_linestyle() == "--" and not text.get_visible()


# ----------------------------------------------------------------------------------------
# modes: trainee, key overlay, help
# ----------------------------------------------------------------------------------------
def _texts(ann: modic.annotator.Annotator) -> str:
    return "\n".join(t.get_text() for t in ann.figure.findobj(Text) if t.get_visible())


def test_trainee_mode_hides_the_live_result(study, shipped_copy):
    ann = open_annotator(study, shipped_copy, show_results=False)
    roi = ann.annotations.find("L4", "inferior")[0]
    ann.set_slice("T1", t1_slice_of(study, roi))
    ann.select(roi.id)
    line, text = ann.panes[Role.T1].rois[roi.id]
    assert text.get_text() == "L4 inf" and line.get_color() == modic.annotator.colors.PENDING_COLOR
    shown = _texts(ann)
    assert "oedema" not in shown and "\u00b7 1" not in shown and "STIR 4.38" not in shown
    assert "trainee mode" in shown
    ann.show_results = True  # the reveal
    # the type, then the Udby height grade: the sample's change reaches 35 % of L4 (grade B)
    assert ann.panes[Role.T1].rois[roi.id][1].get_text() == "L4 inf \u00b7 1 B"
    assert "oedema pattern, Modic 1" in _texts(ann)


def test_overlay_of_a_key_is_drawn_read_only_in_its_own_style(study, truth, tmp_path):
    path = tmp_path / "trainee.modic.json"
    ann = open_annotator(study, path, show_results=False)
    ann.overlay(truth, style="key")
    roi = truth.find("L4", "inferior")[0]
    ann.set_slice("T1", t1_slice_of(study, roi))
    key = f"overlay0:{roi.id}"
    line, text = ann.panes[Role.T2].rois[key]
    assert line.get_linestyle() == "-." and text.get_text() == "key L4 inf"
    assert len(ann.annotations) == 0 and not path.exists()  # not part of the trainee's ROIs
    ann.show_results = True
    assert ann.panes[Role.T2].rois[key][1].get_text() == "key L4 inf \u00b7 1 B"  # grade B: 35 %
    assert ann.overlay_results[0][roi.id].modic_type is ModicType.TYPE1  # type: ignore[union-attr]
    ann.clear_overlays()
    assert key not in ann.panes[Role.T2].rois


def test_help_lists_every_shortcut_and_the_docs_do_too(study, tmp_path):
    from modic.annotator.keys import KEY_ACTIONS, SHORTCUTS

    ann = open_annotator(study, tmp_path / "case.modic.json")
    Driver(ann).key("h")
    assert ann._help.get_visible()  # noqa: SLF001 - the overlay itself
    Driver(ann).key("?")
    assert not ann._help.get_visible()  # noqa: SLF001
    text = ann.help()
    for keys, what in SHORTCUTS:
        assert keys in text and what in text
    docs = (Path(__file__).resolve().parent.parent / "docs" / "annotator.md").read_text(encoding="utf-8")
    for keys, _ in SHORTCUTS:
        assert f"`{keys}`" in docs, keys
    actions = set(KEY_ACTIONS.values())
    assert {"undo", "redo", "save", "delete", "help", "tool:polygon", "tool:freehand"} <= actions


def test_ctrl_keys_while_drawing_a_polygon_keep_its_vertices(study, tmp_path):
    # matplotlib's PolygonSelector pops a vertex at every key press with ctrl (and raises
    # IndexError when none is left); the annotator switches that state off
    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    ann.set_label("L2 reference")
    drive.key("ctrl+z")  # nothing to undo, nothing drawn
    square = [(60.0, 60.0), (70.0, 60.0), (70.0, 70.0), (60.0, 70.0)]
    for xy in square[:2]:
        drive.click("T1", xy)
    drive.key("ctrl+z")
    drive.key("ctrl+s")
    for xy in [*square[2:], square[0]]:
        drive.click("T1", xy)
    (roi,) = ann.annotations.rois
    np.testing.assert_allclose(roi.shape.points, square)


def test_escape_cancels_a_polygon_in_progress_and_deselects(study, shipped_copy):
    ann = open_annotator(study, shipped_copy)
    drive = Driver(ann)
    n = len(ann.annotations)
    ann.select(ann.annotations.rois[0].id)
    for xy in [(20, 20), (40, 20), (40, 40)]:
        drive.click("T1", xy)
    drive.key("escape")
    assert ann.selected is None
    drive.click("T1", (20, 20))
    assert len(ann.annotations) == n  # the half-drawn polygon is gone; nothing was added


# ----------------------------------------------------------------------------------------
# labels, history (pure logic)
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("present", "last", "expected"),
    [
        ([], None, "L1 superior"),
        (["L4 inferior"], "L4 inferior", "L4 reference"),
        (["L4 inferior", "ref L4"], "L4 inferior", "L5 superior"),
        (["L4 superior", "ref L4"], "ref L4", "L4 inferior"),
        (["ref L4"], "ref L4", "L4 superior"),
        (["L5 inferior", "ref L5"], "L5 inferior", "S1 superior"),
        (["S1 superior", "ref S1"], "S1 superior", "L1 superior"),
    ],
)
def test_next_label(present, last, expected):
    from modic.annotator.labels import suggest_next_label

    labels = [RoiLabel.parse(p) for p in present]
    assert str(suggest_next_label(labels, RoiLabel.parse(last) if last else None)) == expected


def test_next_label_after_a_reference_goes_on_from_the_last_endplate():
    from modic.annotator.labels import suggest_next_label

    labels = [L4I, L4R]
    assert str(suggest_next_label(labels, L4R, last_endplate=L4I)) == "L5 superior"


def test_history_keeps_copies():
    from modic.annotator.history import History

    doc = Annotations(study_instance_uid="1.2")
    h = History(doc, limit=3)
    for i in range(5):
        h.push(Annotations(study_instance_uid="1.2", description=str(i)))
    assert len(h) == 3
    back = h.undo()
    assert back is not None and back.description == "3"
    back.description = "changed by a caller"
    assert h.redo().description == "4" and h.undo().description == "3"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------
# the command line, and Jupyter
# ----------------------------------------------------------------------------------------
def test_cli_screenshot_renders_and_writes_nothing(shipped_copy, tmp_path):
    from modic.cli import main

    before = shipped_copy.read_bytes()
    out = tmp_path / "annotator.png"
    code = main(
        [
            "annotate",
            str(modic.data.sample_study_path(NAME)),
            "--annotations",
            str(shipped_copy),
            "--select",
            "L4 inferior",
            "--screenshot",
            str(out),
        ]
    )
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    assert shipped_copy.read_bytes() == before


def test_cli_screenshot_never_writes_into_the_study_folder(shipped_copy, tmp_path, capsys):
    from modic.cli import main

    study = tmp_path / "study"
    shutil.copytree(modic.data.sample_study_path(NAME), study)
    before = sorted(p.relative_to(study) for p in study.rglob("*"))
    args = ["annotate", str(study), "--annotations", str(shipped_copy), "--screenshot"]
    assert main([*args, str(study / "SE000001" / "shot.png")]) == 2
    err = capsys.readouterr().err
    assert "the screenshot would be written into the study folder" in err and "modic never writes" in err
    assert sorted(p.relative_to(study) for p in study.rglob("*")) == before
    # a folder it cannot write to: a message, not a traceback
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main([*args, str(locked / "shot.png")])
    finally:
        locked.chmod(0o700)
    if os.geteuid() != 0:  # root may write anyway
        assert code == 1 and "cannot write the screenshot" in capsys.readouterr().err


def test_cli_without_a_display_says_what_to_do(shipped_copy, monkeypatch, capsys):
    from modic.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    code = main(["annotate", str(modic.data.sample_study_path(NAME)), "--annotations", str(shipped_copy)])
    assert code == 2
    assert "no display" in capsys.readouterr().err


def test_modic_annotate_is_a_lazy_export(study, shipped_copy):
    ann = modic.annotate(study, shipped_copy)
    assert ann.path == shipped_copy and len(ann.annotations) == len(read_annotations(shipped_copy))
    assert isinstance(ann, modic.annotator.Annotator)


def test_jupyter_widget_with_ipympl(study, shipped_copy):
    pytest.importorskip("ipywidgets")
    ipympl_backend = pytest.importorskip("ipympl.backend_nbagg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5))
    ipympl_backend.Canvas(fig)
    ann = open_annotator(study, shipped_copy, figure=fig)
    widget = ann.widget
    assert widget is not None and fig.canvas in widget.children
    controls = ann._controls  # noqa: SLF001 - the ipywidgets
    controls.tool.value = "rectangle"
    assert ann.tool == "rectangle"
    ann.set_tool("ellipse")
    assert controls.tool.value == "ellipse"
    controls.label.value = "L5 superior"
    assert str(ann.label) == "L5 superior"
    controls.windows[Role.T1].value = (100.0, 400.0)
    assert ann.window("T1") == pytest.approx((100.0, 400.0))
    assert ann.window_preset == "custom" and controls.preset.value is None
    controls.preset.value = "narrow"
    assert ann.window_preset == "narrow"
    l4 = ann.results[ann.annotations.find("L4", "inferior")[0].id]
    assert isinstance(l4, ModicResult)
    assert (
        "L4/L5" in controls.results.value and f"T1 {l4.ratios[Role.T1].ratio:4.2f}" in controls.results.value
    )


INDETERMINATE_WHY = "the sequences contradict each other: 60% of the voxels fit no Modic pattern"


@pytest.fixture
def indeterminate_l4(monkeypatch: pytest.MonkeyPatch) -> str:
    """The classifier behind the annotator calls L4 inferior indeterminate (its real result,
    with the type replaced); returns the reason it gives."""
    import dataclasses

    import modic.annotator.live as live

    real = live.classify_roi

    def classify_roi(st, roi, refs, **kw):
        res = real(st, roi, refs, **kw)
        if roi.label == L4I:
            res = dataclasses.replace(  # an indeterminate result has no extent
                res, modic_type=ModicType.INDETERMINATE, reason=INDETERMINATE_WHY, extent=None
            )
        return res

    monkeypatch.setattr(live, "classify_roi", classify_roi)
    return INDETERMINATE_WHY


def test_an_indeterminate_result_is_striped_blue_with_a_badge_and_its_reason(
    study, shipped_copy, tmp_path, indeterminate_l4
):
    from modic.annotator.colors import (
        INDETERMINATE_STRIPE,
        MODIC_COLORS,
        REFERENCE_COLOR,
        legend_entries,
    )
    from modic.annotator.controls import result_rows

    why = indeterminate_l4
    ann = open_annotator(study, shipped_copy)
    roi = ann.annotations.find("L4", "inferior")[0]
    assert ann.results[roi.id].modic_type is ModicType.INDETERMINATE
    ann.set_slice("T1", t1_slice_of(study, roi))
    ann.select(roi.id)
    # its own colour, striped white, that no type and not the reference has
    blue = MODIC_COLORS["indeterminate"]
    assert len(set(MODIC_COLORS.values())) == len(MODIC_COLORS) and blue != REFERENCE_COLOR
    line, text = ann.panes[Role.T1].rois[roi.id]
    assert line.get_color() == blue and line.get_gapcolor() == INDETERMINATE_STRIPE
    assert text.get_text() == "L4 inf \u00b7 ?" and text.get_color() == INDETERMINATE_STRIPE
    assert matplotlib.colors.same_color(text.get_bbox_patch().get_facecolor()[:3], blue)
    # a Modic 1 next to it keeps the plain style (the style is reset per ROI)
    l5 = ann.annotations.find("L5", "superior")[0]
    assert ann.panes[Role.T1].rois[l5.id][0].get_gapcolor() is None
    # the results table: badge "?", the reason after the ratios
    row = next(r for r in result_rows(ann) if r.roi_id == roi.id)
    assert (row.modic_type, row.color) == ("?", blue) and row.note == f"indeterminate: {why}"
    assert row.ratios.startswith("T1 0.6")
    (legend,) = [e for e in legend_entries() if "indeterminate" in e[0]]
    assert legend == ("Modic ?  indeterminate", blue, "--", INDETERMINATE_STRIPE)
    shown = _texts(ann)
    assert "Modic ?  indeterminate" in shown  # the legend
    assert f"reference marrow: indeterminate, {why}" in shown  # the selected ROI's explanation
    assert f"indeterminate: {why[:30]}" in shown  # its row
    out = tmp_path / "indeterminate.png"
    ann.figure.savefig(out)
    assert out.stat().st_size > 10_000


def test_jupyter_widget_shows_an_indeterminate_result(study, shipped_copy, indeterminate_l4):
    pytest.importorskip("ipywidgets")
    ipympl_backend = pytest.importorskip("ipympl.backend_nbagg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5))
    ipympl_backend.Canvas(fig)
    ann = open_annotator(study, shipped_copy, figure=fig)
    assert ann.widget is not None
    controls = ann._controls  # noqa: SLF001 - the ipywidgets
    table = controls.results.value
    assert ">?</span>" in table and f"<i>indeterminate: {indeterminate_l4}</i>" in table
    assert "Modic ?  indeterminate" in controls.legend.value and "background:#FFFFFF" in controls.legend.value


def test_results_show_the_udby_grade_and_a_body_outline_reclassifies_its_vertebra(study, shipped_copy):
    from modic.annotations import Mask
    from modic.annotator.controls import result_rows
    from modic.annotator.live import LiveResults
    from modic.phantom import GroundTruth, tissue_at

    ann = open_annotator(study, shipped_copy)
    roi = ann.annotations.find("L4", "inferior")[0]
    row = next(r for r in result_rows(ann) if r.roi_id == roi.id)
    assert (row.modic_type, row.extent) == ("1", "B")  # the sample's change reaches 35 % of L4
    assert "1 B" in _texts(ann)  # the badge of its row in the results table: type, then grade
    # an L4 body outline (the phantom's L4 marrow on the ROI's slice) is measured against
    im = roi.image
    rr, cc = np.mgrid[0 : im.rows, 0 : im.columns]
    xy = np.column_stack([cc.ravel() + 0.5, rr.ravel() + 0.5])
    truth = GroundTruth.from_json(modic.data.sample_truth_path(NAME))
    names = tissue_at(truth, im.pixel_to_patient(xy)).reshape(im.rows, im.columns)
    in_change = np.char.startswith(names, "modic") & (np.char.find(names, "_L4_") >= 0)
    inside = (names == "marrow_L4") | in_change
    body = ROI(RoiLabel.for_body("L4"), Mask.from_image_mask(inside), im)
    live = LiveResults(study)
    before = ann.annotations
    live.refresh_all(before)
    after = Annotations([*before, body], study_instance_uid=before.study_instance_uid)
    todo = live.update(before, after)
    assert todo == {r.id for r in after.endplates() if r.label.vertebra == "L4"}
    res = live.results[roi.id]
    assert isinstance(res, ModicResult) and res.extent is not None
    assert res.extent.body_source == "outline" and res.extent.height_grade == "B"


def test_the_click_that_focuses_the_window_places_no_polygon_vertex(study, tmp_path, monkeypatch):
    """A window manager hands the click that focuses a window on to it: that click (while the
    window has not got the focus, or within FOCUS_CLICK_S of gaining it) draws nothing; the
    next one places the polygon's first vertex."""
    from modic.annotator import viewer

    ann = open_annotator(study, tmp_path / "case.modic.json")
    drive = Driver(ann)
    drive.key("p")
    polygon = ann._tools[Role.T1].polygon
    now = [1000.0]
    monkeypatch.setattr(viewer.time, "monotonic", lambda: now[0])
    ann.focus_changed(False)  # the trainee worked in another window (the answer sheet)
    ann.focus_changed(True)  # ... and clicks on the annotator: focus in, then the click
    drive.click("T1", (30, 30))
    assert len(polygon.verts) == 0 and not ann._tools[Role.T1].drawing_in_progress()
    now[0] += 1.0
    drive.click("T1", (30, 30))
    assert len(polygon.verts) == 1  # the first real click starts the polygon
    # lost focus (the click arrives before the focus-in): also only focuses
    ann._tools[Role.T1].cancel()
    ann.focus_changed(False)
    drive.click("T1", (40, 40))
    assert len(polygon.verts) == 0
    now[0] += viewer.FOCUS_CLICK_S + 0.01
    for xy in [(40, 40), (60, 40), (60, 60), (40, 40)]:
        drive.click("T1", xy)
    assert len(ann.annotations) == 1  # a whole polygon, drawn after the focusing click


# ----------------------------------------------------------------------------------------
# proposed ROIs, level names, anatomy warnings (issue 9)
# ----------------------------------------------------------------------------------------
def test_the_propose_key_adds_proposed_rois_and_keeps_every_drawn_one(study, shipped_copy):
    ann = open_annotator(study, shipped_copy)
    before = {r.id: (r.label, r.shape, r.image, r.origin) for r in ann.annotations}
    drawn_labels = {r.label for r in ann.annotations}
    Driver(ann).key("P")
    after = {r.id: r for r in ann.annotations}
    for i, (label, shape, image, origin) in before.items():
        r = after[i]
        assert (r.label, r.shape, r.image, r.origin) == (label, shape, image, origin)
    added = [r for i, r in after.items() if i not in before]
    assert len(added) >= 7  # at least the seven body outlines T12-S1, which nobody drew
    assert all(r.origin == "proposed" for r in added)
    assert not {r.label for r in added} & drawn_labels  # never a second ROI where a person drew one
    assert {str(r.label) for r in added} >= {f"{v} body" for v in ("L1", "L2", "L3", "L4", "L5", "S1")}
    assert read_annotations(shipped_copy).rois[-1].origin == "proposed"  # autosaved
    Driver(ann).key("ctrl+z")  # one change, one undo
    assert set(r.id for r in ann.annotations) == set(before)


def test_key_o_then_a_click_inside_a_body_proposes_that_vertebra_only(study, truth, tmp_path):
    ann = open_annotator(study, tmp_path / "case.modic.json")
    ref = next(r for r in truth if str(r.label) == "L3 reference")
    ann.set_slice("T1", t1_slice_of(study, ref))
    drive = Driver(ann)
    centre = tuple(ref.shape.outline(64).mean(axis=0))  # the reader's central L3 marrow
    drive.key("O")
    drive.click("T1", centre)
    rois = list(ann.annotations)
    assert rois and {r.label.vertebra for r in rois} == {"L3"}
    assert {str(r.label) for r in rois} == {"L3 superior", "L3 inferior", "L3 reference", "L3 body"}
    assert all(r.origin == "proposed" for r in rois)
    drive.click("T1", centre)  # the mode is over: a click starts a polygon, proposes nothing
    assert {r.label.vertebra for r in ann.annotations} == {"L3"}


def test_level_names_beside_the_spine_and_a_warning_badge_on_a_misplaced_roi(study, truth, tmp_path):
    import dataclasses

    from modic.annotator.controls import result_rows

    l4i = next(r for r in truth if str(r.label) == "L4 inferior")
    l5s = next(r for r in truth if str(r.label) == "L5 superior")
    shift = l5s.shape.outline(64).mean(axis=0) - l4i.shape.outline(64).mean(axis=0) + [0.0, 4.0]
    moved = dataclasses.replace(l4i, shape=Polygon(np.asarray(l4i.shape.points) + shift))
    rois = [moved if r.id == l4i.id else r for r in truth]
    doc = Annotations(rois, study_instance_uid=truth.study_instance_uid)
    ann = open_annotator(study, tmp_path / "case.modic.json", annotations=doc)
    ann.set_slice("T1", t1_slice_of(study, moved))
    names = {"T12", "L1", "L2", "L3", "L4", "L5", "S1"}
    on_t1 = lambda: {t.get_text().rstrip("?") for t in ann.panes[Role.T1].ax.texts if t.get_visible()}  # noqa: E731
    assert not on_t1() & names
    Driver(ann).key("V")
    assert on_t1() >= names - {"T12"}
    # the misplaced ROI: "!" on its outline label, its warning in the results, a capped confidence
    label = next(t.get_text() for t in ann.panes[Role.T1].ax.texts if t.get_text().startswith("L4 inf"))
    assert label.endswith("!")
    row = next(r for r in result_rows(ann) if r.roi_id == moved.id)
    assert "anatomy: L4 inferior" in row.note and row.confidence is not None and row.confidence <= 0.5
    assert "anatomy: L4 inferior" in _texts(ann)
    out = tmp_path / "anatomy.png"
    ann.figure.savefig(out, dpi=60)
    assert out.stat().st_size > 10_000
    Driver(ann).key("V")
    assert not on_t1() & names
    # moved back where the reader drew it, the warning goes
    ann.select(moved.id)
    ann._replace(dataclasses.replace(moved, shape=l4i.shape))  # noqa: SLF001 - as a drag would
    row = next(r for r in result_rows(ann) if r.roi_id == moved.id)
    assert "anatomy" not in row.note
