"""The notebooks in notebooks/: stored without outputs, and each one runs from top to bottom.

Every notebook is executed with nbclient in a fresh kernel of this test run's Python: a
kernel spec naming ``sys.executable`` is written into a temporary ``JUPYTER_DATA_DIR``, so
the notebooks' ``python3`` kernel is this interpreter whatever else is installed. The
Jupyter and IPython folders and ``MODIC_NOTEBOOK_OUT`` (where the notebooks write) all lie
in ``tmp_path``: nothing is written to the home folder, ``notebooks/`` or the sample data
(checked). The interactive notebooks run headless: nobody draws or clicks, and they say
in their text what they do instead. tests/browser/ runs the annotation notebook in
JupyterLab with real mouse clicks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
NEEDS_TEST = 'executing the notebooks needs nbclient and ipykernel: pip install -e ".[test]"'
NEEDS_NOTEBOOK = 'the notebooks need ipympl and pandas: pip install -e ".[notebook]"'

#: Text each executed notebook must print (outputs are otherwise only checked for errors).
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "01-quickstart": ["L4 inferior  Modic 1 ", "L5 superior  Modic 2 ", "oedema pattern"],
    "02-annotate": [
        "No L4 inferior ROI was drawn: adding the sample reader's",
        "agree on all 11 endplates: True",
    ],
    "03-teaching": [
        "Case case-01 (beginner, 11 endplates)",
        "Score: 91% (10 of 11 endplates)",
        "L5 superior: you said 1, the key says 2",
    ],
    "04-cohort": [
        "4 studies classified, 0 failed",
        "44 endplates",
        "4 studies, fat suppression:",
        "computed 0, up to date 4",
        "agrees with the ground truth on 98% of 44 endplates",  # one known miss (docs/classifier.md)
    ],
}
#: Files each notebook must leave in its output folder (MODIC_NOTEBOOK_OUT/<name>/).
EXPECTED_FILES: dict[str, list[str]] = {
    "01-quickstart": ["quickstart/siemens_15T_type1_type2.results.csv", "quickstart/l4-l5.png"],
    "02-annotate": ["annotate/siemens_15T_type1_type2.modic.json"],
    "03-teaching": ["teaching/log/attempts.jsonl", "teaching/log/attempts.csv", "teaching/feedback.png"],
    "04-cohort": [
        "cohort/batch/results.csv",
        "cohort/batch/levels.csv",
        "cohort/types-per-level.png",
        "cohort/sir-t1-t2.png",
        "cohort/confidence.png",
    ],
}


def jupyter_environment(folder: Path) -> dict[str, str]:
    """Environment variables that keep Jupyter and IPython inside ``folder``.

    Config, data, runtime, IPython and JupyterLab settings / workspaces folders are made
    in ``folder``; the data folder holds a ``python3`` kernel spec that runs
    ``sys.executable``, which finds this Python's ipykernel, modic and extensions.
    ``MODIC_NOTEBOOK_OUT`` is ``folder / "out"``.
    """
    env = {"JUPYTER_PLATFORM_DIRS": "1", "MODIC_NOTEBOOK_OUT": str(folder / "out")}
    for name in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "IPYTHONDIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
    ):
        path = folder / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    kernel = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "python3"
    kernel.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (kernel / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return env


def _tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _output_text(cell: Mapping[str, object]) -> str:
    parts = []
    for out in cell.get("outputs", []):  # type: ignore[union-attr]
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_every_notebook_is_listed():
    assert [p.stem for p in NOTEBOOKS] == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nbformat = pytest.importorskip("nbformat", reason=NEEDS_TEST)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata, "saved widget state: clear it (Edit > Clear Outputs of All Cells)"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
        assert not cell.get("attachments"), f"{path.name} cell {i} has attachments"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_headless(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason=NEEDS_TEST)
    nbclient = pytest.importorskip("nbclient", reason=NEEDS_TEST)
    pytest.importorskip("ipykernel", reason=NEEDS_TEST)
    pytest.importorskip("ipympl", reason=NEEDS_NOTEBOOK)
    pytest.importorskip("pandas", reason=NEEDS_NOTEBOOK)
    for name, value in jupyter_environment(tmp_path / "jupyter").items():
        monkeypatch.setenv(name, value)
    out = Path(os.environ["MODIC_NOTEBOOK_OUT"])
    workdir = tmp_path / "cwd"  # the kernel's working folder: a relative path written there stays in tmp
    workdir.mkdir()
    before = _tree_state(SAMPLE_DATA)
    notebooks_before = _tree_state(NOTEBOOKS_DIR)

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        startup_timeout=60,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

    assert _tree_state(SAMPLE_DATA) == before, "a notebook wrote into sample_data/"
    assert _tree_state(NOTEBOOKS_DIR) == notebooks_before, "a notebook wrote into notebooks/"
    text = "".join(_output_text(c) for c in nb.cells if c.cell_type == "code")
    for expected in EXPECTED_OUTPUT[path.stem]:
        assert expected in text, f"{path.name}: expected {expected!r} in the outputs"
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                assert "Warning" not in output.get("text", ""), f"{path.name}: {output['text']}"
    for name in EXPECTED_FILES[path.stem]:
        assert (out / name).is_file(), f"{path.name} did not write {name} into MODIC_NOTEBOOK_OUT"
