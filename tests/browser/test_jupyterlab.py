"""The annotation notebook in a real JupyterLab, driven in headless Chromium with real mouse clicks.

A JupyterLab server (127.0.0.1, a free port, a token, everything Jupyter writes kept in
``tmp_path``) serves a copy of ``notebooks/02-annotate.ipynb``; Debian's Chromium, driven
by Playwright (its Python wheel carries the driver; the browser is ``/usr/bin/chromium``,
never a downloaded one), opens it and runs the cells with Shift+Enter as a reader would.
On the ipympl canvas the test picks the polygon tool and the ``L4 inferior`` label in the
ipywidgets controls, clicks the vertices of a polygon around the L4 inferior endplate on
the T1 pane and closes it on the first vertex, then runs the rest of the notebook. It
checks the annotation file the annotator autosaved (a new polygon ROI labelled L4 inferior,
its vertices where the clicks were, in image coordinates) and that the notebook's last
cells found the Python API and ``modic classify --json`` in agreement on that file.

Where to click: the copy of the notebook gets one extra cell, after the one opening the
annotator, that writes the target points (image coordinates on the T1, inside the sample
reader's L4 inferior ROI) and where they lie on the figure (figure fractions, through the
T1 axes' transforms) to a JSON file; the test turns them into page positions with the
canvas's bounding box.

Screenshots go to ``tmp_path``, or, when ``MODIC_SCREENSHOT_DIR`` is set (e.g. to
``docs/img``), to ``jupyterlab-annotate.png`` and ``jupyterlab-quickstart.png`` there.

Skipped only when ``/usr/bin/chromium`` is missing (``apt-get install chromium``; .ci/run
installs it). About 30 s.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from test_notebooks import NOTEBOOKS_DIR, jupyter_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANNOTATE = NOTEBOOKS_DIR / "02-annotate.ipynb"
QUICKSTART = NOTEBOOKS_DIR / "01-quickstart.ipynb"
LABEL = "L4 inferior"
#: Seconds: server start, page load, kernel start, each notebook step.
TIMEOUT = 60
#: Image pixels a saved vertex may lie from where the test clicked.
VERTEX_TOLERANCE_PX = 0.6

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser test needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)

#: Added to the test's copy of the notebook after the cell that opens the annotator.
TARGETS_CELL = r"""
# Added by tests/browser/test_jupyterlab.py: where the test will click (not in the notebook).
import json as _json
import numpy as _np

_pane = next(p for role, p in ann.panes.items() if role.value == "T1")
_outline = reader_l4_inferior.shape.outline()          # image (x, y) on the T1
_centre = _outline.mean(axis=0)
_u, _v = _np.linalg.svd(_outline - _centre)[2]          # along and across the endplate band
_a, _b = (_outline - _centre) @ _u, (_outline - _centre) @ _v
_da, _db = _a.max() - _a.min(), _b.max() - _b.min()
_a0, _a1 = _a.min() + 0.15 * _da, _a.max() - 0.15 * _da          # inside the band's extent
_b0, _b1 = _b.min() + 0.2 * _db, _b.max() - 0.2 * _db
_ab = [(_a0, _b0), (_a1, _b0), (_a1, _b1), ((_a0 + _a1) / 2, _b.max() - 0.05 * _db), (_a0, _b1)]
_xy = _np.array([_centre + _s * _u + _t * _v for _s, _t in _ab])  # 4 corners and one side's middle
_xy = _xy[_np.argsort(_np.arctan2(*(_xy - _centre).T[::-1]))]   # by angle: a simple polygon
_display = _pane.ax.transData.transform(_xy)
(out / "browser-targets.json").write_text(_json.dumps({
    "xy": _xy.tolist(),
    "figure_fraction": ann.figure.transFigure.inverted().transform(_display).tolist(),
    "slice": _pane.index,
    "series_instance_uid": _pane.volume.series.series_uid,
    "annotation_file": str(ann_path),
}))
"""

#: True once JupyterLab shows the notebook with its kernel started and idle.
NOTEBOOK_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(kernel && w.sessionContext.isReady && kernel.status === 'idle' && w.content.widgets.length > 3);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lab_settings(env: dict[str, str]) -> None:
    """JupyterLab settings for a quiet, predictable page: no news or update checks,
    every cell rendered (no windowing), so that outputs exist in the page."""
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab"
    files = {
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in files.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value), encoding="utf-8")


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, str]]:
    """Run ``jupyter lab`` on ``root``; yields its base URL and token. The server and its
    kernels are stopped (their process group killed if they linger) on exit."""
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",  # CI runs as root
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: to wait for the kernel
    ]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        status = f"http://127.0.0.1:{port}/api/status?token={token}"
        deadline = time.monotonic() + TIMEOUT
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(status, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer in {TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()  # the server shuts its kernels down
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        try:  # kernels left behind share the server's process group
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def chromium(folder: Path) -> Iterator[object]:
    """A Playwright page in Debian's headless Chromium with a fresh profile in ``folder``
    (its other files, e.g. dconf's, go there too, not to the home folder)."""
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "XDG_CONFIG_HOME": str(folder / "config"), "XDG_CACHE_HOME": str(folder / "cache")}
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(folder / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env=env,
            viewport={"width": 1400, "height": 1100},
            device_scale_factor=1,  # one canvas pixel per CSS pixel
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT * 1000)
            yield page
        finally:
            context.close()


def _open_notebook(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_function(NOTEBOOK_READY, timeout=TIMEOUT * 1000)
    # the file browser takes room the canvas needs; close it, as a reader would
    if page.locator("#filebrowser").is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()


def _cells(page):
    """The cells of the notebook on show (other notebooks' tabs stay in the page, hidden)."""
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")


def _run_cells(page, n: int) -> None:
    """Shift+Enter ``n`` times from the first cell, as a reader runs a notebook."""
    _cells(page).first.click()
    page.keyboard.press("Escape")  # command mode
    for _ in range(n):
        page.keyboard.press("Shift+Enter")


def _run_menu(page, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()


def _output(page, text: str):
    """The cell output holding ``text`` (not the cell's source, which may hold it too)."""
    return page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output", has_text=text)


def _saved_rois(path: Path) -> list[dict]:
    try:
        return [r for r in json.loads(path.read_text(encoding="utf-8"))["rois"] if _label(r) == LABEL]
    except (OSError, ValueError, KeyError):
        return []  # not written yet (it is written atomically, so never half)


def _label(roi: dict) -> str:
    label = roi.get("label", {})
    return f"{label.get('vertebra')} {label.get('endplate') or label.get('kind')}"


def _wait_for(predicate, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def test_draw_polygon_in_jupyterlab(tmp_path):
    import modic

    env = {**os.environ, **jupyter_environment(tmp_path / "jupyter")}
    _lab_settings(env)
    out = Path(env["MODIC_NOTEBOOK_OUT"])
    shots = Path(os.environ.get("MODIC_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "lab"
    root.mkdir()

    # the test's copy of the notebook, with the targets cell after the annotator's
    import nbformat

    nb = nbformat.read(ANNOTATE, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    (opening,) = [i for i in code if "modic.annotate(" in nb.cells[i].source]
    nb.cells.insert(opening + 1, nbformat.v4.new_code_cell(TARGETS_CELL.strip(), id="browser-test-targets"))
    nbformat.write(nb, str(root / ANNOTATE.name))
    shutil.copy(QUICKSTART, root / QUICKSTART.name)

    log = tmp_path / "jupyter-lab.log"
    with jupyter_lab(root, env, log) as (base, token), chromium(tmp_path / "chromium") as page:
        try:
            _open_notebook(page, base, token, ANNOTATE.name)
            _run_cells(page, opening + 2)  # up to the targets cell
            targets = _wait_for(
                lambda: (
                    (out / "annotate" / "browser-targets.json").is_file()
                    and json.loads((out / "annotate" / "browser-targets.json").read_text())
                ),
                "the targets cell",
            )
            canvas = page.locator(".jp-NotebookPanel:visible .jupyter-matplotlib-canvas-div canvas").last
            canvas.wait_for(state="visible")
            annotation_file = Path(targets["annotation_file"])
            assert annotation_file.parent == out / "annotate" and not _saved_rois(annotation_file)

            # the controls above the canvas: the polygon tool and the label
            page.locator(".widget-toggle-button", has_text="polygon").click()
            page.locator(".widget-dropdown select").select_option(LABEL)
            canvas.scroll_into_view_if_needed()
            time.sleep(0.5)  # let the scroll settle before reading positions
            box = canvas.bounding_box()
            assert box is not None
            points = [
                (box["x"] + fx * box["width"], box["y"] + (1.0 - fy) * box["height"])
                for fx, fy in targets["figure_fraction"]
            ]
            gaps = [np.hypot(p[0] - q[0], p[1] - q[1]) for i, p in enumerate(points) for q in points[:i]]
            assert min(gaps) > 10, f"targets {min(gaps):.0f} px apart: a click within 8 px closes the polygon"
            # real mouse clicks on the canvas: one per vertex, then the first vertex again
            for x, y in [*points, points[0]]:
                page.mouse.move(x, y, steps=4)
                page.mouse.click(x, y)
                time.sleep(0.25)
            rois = _wait_for(lambda: _saved_rois(annotation_file), f"an autosaved {LABEL} ROI")

            # run the rest of the notebook from the cell after the targets cell
            _cells(page).nth(opening + 2).click()
            _run_menu(page, "Run Selected Cell and All Below")
            _output(page, "agree on all 11 endplates: True").wait_for()
            _output(page, "the annotator showed the same type while you drew: True").wait_for()
            assert _output(page, "No L4 inferior ROI was drawn").count() == 0  # the notebook saw the drawing

            # the screenshot for docs/notebooks.md: the annotator with the new ROI selected
            canvas.evaluate("e => e.closest('.jp-Cell').scrollIntoView({block: 'start'})")
            time.sleep(0.5)
            box = canvas.bounding_box()
            assert box is not None
            centre = np.mean(targets["figure_fraction"], axis=0)  # the cross-reference cursor
            page.mouse.move(box["x"] + centre[0] * box["width"], box["y"] + (1 - centre[1]) * box["height"])
            time.sleep(1.0)
            page.screenshot(path=str(shots / "jupyterlab-annotate.png"))
            if os.environ.get("MODIC_SCREENSHOT_DIR"):
                _quickstart_screenshot(page, base, token, shots / "jupyterlab-quickstart.png")
        except Exception:
            try:
                page.screenshot(path=str(tmp_path / "failure.png"))
            finally:
                print(f"screenshot of the failure: {tmp_path / 'failure.png'}; server log: {log}")
            raise

    # the saved file: one new polygon, labelled L4 inferior, where the clicks were
    (roi,) = rois
    assert roi["shape"]["type"] == "polygon"
    assert roi["author"] == "you"
    assert roi["image"]["series_instance_uid"] == targets["series_instance_uid"]
    vertices = np.asarray(roi["shape"]["points"], dtype=float)
    expected = np.asarray(targets["xy"], dtype=float)
    assert vertices.shape == expected.shape, (vertices, expected)
    assert np.abs(vertices - expected).max() < VERTEX_TOLERANCE_PX, (vertices, expected)

    # the same results from the saved file in Python and on the command line
    folder = modic.data.sample_study_path("siemens_15T_type1_type2")
    annotations = modic.read_annotations(annotation_file)
    assert len(annotations) == 17
    in_python = modic.classify(modic.load_study(folder), annotations)
    command = ["classify", str(folder), "--annotations", str(annotation_file), "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "modic", *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    assert json.loads(in_python.to_json()) == json.loads(run.stdout)
    (drawn,) = [r for r in in_python if r.roi_id == roi["id"]]
    assert drawn.modic_type.value == "1", drawn.explanation


def _quickstart_screenshot(page, base: str, token: str, path: Path) -> None:
    """The quick start run in JupyterLab, at its figure of L4/L5 (only for the docs)."""
    _open_notebook(page, base, token, QUICKSTART.name)
    _run_cells(page, _cells(page).count())
    figure = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output img").first
    figure.wait_for()
    page.wait_for_function(NOTEBOOK_READY, timeout=TIMEOUT * 1000)
    figure.evaluate("e => e.closest('.jp-Cell').scrollIntoView({block: 'start'})")
    time.sleep(0.5)
    page.screenshot(path=str(path))
