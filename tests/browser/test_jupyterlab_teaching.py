"""The teaching notebook in a real JupyterLab (headless Debian Chromium via Playwright).

``notebooks/03-teaching.ipynb`` is run cell by cell as a trainee would, with one extra cell
after the one that opens the trainee's session: it prints what the answer sheet says
(read back from its figure's texts). The test checks, in the page:

- before Submit, nothing on the sheet or in the notebook's outputs names the case's changes
  (no title, no telling tag), and the sheet says where the annotator is in a notebook
  ("Above, in the annotator"), not "In the annotator window";
- no ipympl toolbar is shown over any figure (it covered the sheet's title after Submit),
  and after the prepared answer is submitted the sheet's and the feedback's canvases are
  there, with the title now shown.

Screenshots go to ``tmp_path``, or, when ``MODIC_SCREENSHOT_DIR`` is set (e.g. to
``docs/img``), to ``jupyterlab-teaching.png`` there. Skipped only when ``/usr/bin/chromium``
is missing (``apt-get install chromium``; .ci/run installs it).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from test_jupyterlab import (
    CHROMIUM,
    _cells,
    _lab_settings,
    _open_notebook,
    _output,
    _run_cells,
    chromium,
    jupyter_lab,
)
from test_notebooks import NOTEBOOKS_DIR, jupyter_environment

TEACHING = NOTEBOOKS_DIR / "03-teaching.ipynb"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser test needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)

#: Added to the test's copy of the notebook after the cell that opens the trainee's session.
SHEET_CELL = r"""
# Added by tests/browser/test_jupyterlab_teaching.py (not in the notebook).
print("SHEET SAYS: " + " | ".join(t.replace("\n", " ") for t in session.sheet.texts()))
"""


def test_teaching_notebook_in_jupyterlab(tmp_path: Path) -> None:
    import nbformat

    from modic.teaching import load_case, shipped_cases_dir

    case = load_case(shipped_cases_dir() / "case-01")
    telling = [t for t in case.tags if not re.fullmatch(r"[\d.]+ T", t)]
    env = {**os.environ, **jupyter_environment(tmp_path / "jupyter")}
    _lab_settings(env)
    shots = Path(os.environ.get("MODIC_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(TEACHING, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    (opening,) = [i for i in code if nb.cells[i].source.startswith("session = TeachingSession(")]
    nb.cells.insert(opening + 1, nbformat.v4.new_code_cell(SHEET_CELL.strip(), id="browser-test-sheet"))
    (shown,) = [i for i, c in enumerate(nb.cells) if "display(demo.sheet.figure.canvas)" in c.source]
    nbformat.write(nb, str(root / TEACHING.name))

    log = tmp_path / "jupyter-lab.log"
    with jupyter_lab(root, env, log) as (base, token), chromium(tmp_path / "chromium") as page:
        try:
            _open_notebook(page, base, token, TEACHING.name)
            _run_cells(page, opening + 2)  # up to the sheet cell: the trainee's blind read
            said = _output(page, "SHEET SAYS:")
            said.wait_for()
            text = said.inner_text()
            assert "Above, in the annotator" in text and "In the annotator window" not in text
            assert "Blind read: a beginner case, 11 endplates" in text
            # nothing in the page's outputs so far names the answer (the sheet's own texts
            # hold the column heads "type 1" ...: the title is looked for there, tags elsewhere)
            assert case.title not in text
            texts = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").all_inner_texts()
            outputs = " ".join(t for t in texts if "SHEET SAYS:" not in t)
            assert case.title not in outputs
            for tag in telling:
                assert tag not in outputs, tag
            assert "case-01" in outputs  # the id is shown (it is what picks the case)
            # the rest: the prepared answer is submitted
            _run_cells_from(page, opening + 2)
            _output(page, "L5 superior: you said 1, the key says 2").wait_for()
            _output(page, "The case, now that it is submitted: " + case.title).wait_for()
            canvases = page.locator(".jp-NotebookPanel:visible .jupyter-matplotlib-canvas-div canvas")
            assert canvases.count() >= 4  # two annotators, the sheets, the feedback
            time.sleep(1.0)
            toolbars = page.locator(".jp-NotebookPanel:visible .jupyter-matplotlib-toolbar")
            assert all(not t.is_visible() for t in toolbars.all()), "an ipympl toolbar is shown"
            headers = page.locator(".jp-NotebookPanel:visible .jupyter-matplotlib-header")
            assert all(not h.is_visible() for h in headers.all())
            # the screenshots: the trainee's sheet (blind), and the demo's after Submit
            blind = _cells(page).nth(opening).locator("canvas").last
            blind.evaluate("e => e.scrollIntoView({block: 'start'})")
            time.sleep(1.5)
            page.screenshot(path=str(shots / "jupyterlab-teaching-blind.png"))
            demo = _cells(page).nth(shown).locator("canvas").last
            demo.evaluate("e => e.scrollIntoView({block: 'start'})")
            time.sleep(1.5)
            page.screenshot(path=str(shots / "jupyterlab-teaching.png"))
        except Exception:
            try:
                page.screenshot(path=str(tmp_path / "failure.png"))
            finally:
                print(f"screenshot of the failure: {tmp_path / 'failure.png'}; server log: {log}")
            raise


def _run_cells_from(page, index: int) -> None:
    """Run the cell at ``index`` and every cell below it (Shift+Enter, as a reader)."""
    n = _cells(page).count()
    _cells(page).nth(index).click()
    page.keyboard.press("Escape")
    for _ in range(n - index):
        page.keyboard.press("Shift+Enter")
