"""``modic report`` and modic.report: the real CLI in a subprocess, the HTML parsed back,
and the page rendered in headless Chromium.

What the report must say is taken from outside the code under test: the DICOM headers
(read here with pydicom), the annotation files, the sample studies' ground truth and the
batch's own results.csv.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pydicom
import pytest
from conftest import write_lumbar_study

import modic

SIEMENS = "siemens_15T_type1_type2"
NOTICE = "Research tool, not a diagnosis"
CHROMIUM = Path("/usr/bin/chromium")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=300, env=env
    )


class Page(HTMLParser):
    """Tags, attributes, ids and visible text of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.text_parts: list[str] = []
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table_ids: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._skip = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag in ("style", "title"):
            self._skip += 1
        if tag == "table":
            self._table_ids.append(a.get("id", ""))
            self.tables.setdefault(a.get("id", ""), [])
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._skip -= 1
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._table_ids:
                self.tables[self._table_ids[-1]].append(self._row)
            self._row = None
        if tag == "table" and self._table_ids:
            self._table_ids.pop()

    def handle_data(self, data):
        if self._skip:
            return
        self.text_parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text_parts))


def assert_self_contained(page: Page, raw: str) -> None:
    """No network reference at all: every image a data URI, no scripts, links or frames."""
    imgs = [a for t, a in page.tags if t == "img"]
    assert imgs
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
        assert a.get("alt")
    for tag, a in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for name in ("src", "href", "action", "poster", "srcset", "data"):
            value = a.get(name)
            if value is not None:
                assert value.startswith("data:"), (tag, name, value[:80])
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", raw, re.I)
    assert "url(http" not in raw and "@import" not in raw


def dicom_headers(folder: Path) -> list[pydicom.Dataset]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            try:
                out.append(pydicom.dcmread(p, stop_before_pixels=True))
            except pydicom.errors.InvalidDicomError:
                pass
    return out


@pytest.fixture(scope="module")
def study_report(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("report-study")
    html, pdf = out / "report.html", out / "report.pdf"
    r = run("report", str(modic.data.sample_study_path(SIEMENS)), "-o", str(html), "--pdf", str(pdf))
    return html, pdf, r


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    from modic.batch import run_batch

    out = tmp_path_factory.mktemp("report-batch") / "out"
    summary = run_batch(modic.data.sample_data_dir(), out, workers=1, include_identifiers=True)
    assert summary.n_ok == 4
    return out


def _results(outdir: Path) -> list[dict[str, str]]:
    with (outdir / "results.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# -- one study ----------------------------------------------------------------------------


def test_study_report_is_self_contained_and_says_what_was_measured(study_report):
    html, _, r = study_report
    assert r.returncode == 0, r.stderr
    assert f"wrote {html}" in r.stdout
    raw = html.read_text(encoding="utf-8")
    page = Page(raw)
    assert_self_contained(page, raw)
    text = page.text
    assert NOTICE in text and "not a medical device" in text
    assert f"modic {modic.__version__}" in text
    key = modic.scan(modic.data.sample_study_path(SIEMENS)).studies[0].key
    for ident in (
        "summary",
        f"measured-{key}",
        f"results-{key}",
        f"figures-{key}",
        f"candidacy-{key}",
        f"warnings-{key}",
        "method",
        "software",
        "research-notice",
    ):
        assert ident in page.ids, ident
    assert {f"images-{key}", f"spine-{key}", f"ratios-{key}"} <= page.ids
    # on which series: the sagittal series' descriptions, straight from the DICOM headers
    headers = dicom_headers(modic.data.sample_study_path(SIEMENS))
    sagittal = {h.SeriesDescription for h in headers if "sag" in str(h.SeriesDescription).lower()}
    assert len(sagittal) == 3
    series_rows = page.tables[f"series-{key}"][1:]
    assert {row[2] for row in series_rows} == sagittal
    # one row per endplate ROI of the annotation file, in plain words
    doc = json.loads(modic.data.sample_annotations_path(SIEMENS).read_text(encoding="utf-8"))
    endplates = [r for r in doc["rois"] if r["label"]["kind"] == "endplate"]
    rows = page.tables[f"results-{key}"]
    assert rows[0][:3] == ["Level", "Endplate", "Finding"]
    assert len(rows) - 1 == len(endplates) == 11
    by_endplate = {row[1]: row for row in rows[1:]}
    truth = json.loads(modic.data.sample_truth_path(SIEMENS).read_text(encoding="utf-8"))
    words = {"0": "No Modic change", "1": "Modic type 1: oedema", "2": "Modic type 2: fatty"}
    for e in truth["endplates"]:
        name = f"{e['vertebra']} {e['endplate']}"
        if name in by_endplate:
            assert by_endplate[name][2].startswith(words[e["modic_type"]]), (name, by_endplate[name])
    assert [row[0] for row in rows[1:]] == sorted((row[0] for row in rows[1:]), key=_level_order)
    # the criterion of the FDA clearance, as research information with its source
    assert "K153272" in text and "K190504" in text and "not a treatment recommendation" in text
    assert "not advice" in text


def _level_order(level: str) -> int:
    return ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"].index(level)


def test_study_report_has_no_patient_identifiers_unless_asked(study_report, tmp_path):
    html, _, r = study_report
    assert r.returncode == 0, r.stderr
    raw = html.read_text(encoding="utf-8")
    header = dicom_headers(modic.data.sample_study_path(SIEMENS))[0]
    name, pid = str(header.PatientName), str(header.PatientID)
    assert name and pid
    assert name not in raw and pid not in raw and str(header.StudyInstanceUID) not in raw
    assert str(header.StudyDescription) in raw  # the description is what names the study
    shown = tmp_path / "shown.html"
    r2 = run("report", str(modic.data.sample_study_path(SIEMENS)), "-o", str(shown), "--show-patient")
    assert r2.returncode == 0, r2.stderr
    assert pid in shown.read_text(encoding="utf-8")


def test_study_report_pdf(study_report):
    _, pdf, r = study_report
    assert r.returncode == 0, r.stderr
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 4  # text, images, spine, ratios


# -- a batch ------------------------------------------------------------------------------


def test_batch_report_has_the_cohort_and_every_study(batch_out, tmp_path):
    html = tmp_path / "cohort.html"
    figs = tmp_path / "figures"
    r = run(
        "report",
        str(batch_out),
        "-o",
        str(html),
        "--figures",
        str(figs),
        "--format",
        "svg",
        "--format",
        "png",
    )
    assert r.returncode == 0, r.stderr
    raw = html.read_text(encoding="utf-8")
    page = Page(raw)
    assert_self_contained(page, raw)
    assert {
        "summary",
        "cohort",
        "prevalence",
        "distributions",
        "confidence",
        "warnings",
        "method",
    } <= page.ids
    rows = _results(batch_out)
    keys = {row["study"] for row in rows}
    assert len(keys) == 4
    for key in keys:
        assert f"study-{key}" in page.ids
        table = page.tables[f"results-{key}"]
        assert len(table) - 1 == sum(1 for row in rows if row["study"] == key)
    assert "errors" not in page.ids  # errors.csv has no rows
    # each study's criterion in its own section: the siemens sample has type 1 and 2 at L4/L5
    siemens_key = modic.scan(modic.data.sample_study_path(SIEMENS)).studies[0].key
    start = raw.index(f'id="candidacy-{siemens_key}"')
    assert "met at L4/L5" in raw[start : raw.index("</section>", start)]
    # every figure also as its own file, in each format asked for
    for name in ("prevalence", "distributions", "confidence", "warnings"):
        assert (figs / f"{name}.svg").read_bytes().startswith(b"<?xml")
        assert (figs / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    for key in keys:
        assert (figs / f"{key}-spine.svg").is_file() and (figs / f"{key}-ratios.png").is_file()
    assert len(list(figs.iterdir())) == 2 * (4 + 2 * len(keys))
    assert NOTICE in page.text and "44 endplates" in page.text
    # the batch kept identifiers (include_identifiers), the report does not show them
    ids = {row["patient_id"] for row in rows}
    assert ids and all(i and i not in raw for i in ids)
    assert all(row["patient_name"] not in raw for row in rows)
    shown = tmp_path / "shown.html"
    assert run("report", str(batch_out), "-o", str(shown), "--show-patient").returncode == 0
    assert all(i in shown.read_text(encoding="utf-8") for i in ids)


def test_batch_report_lists_the_errors(batch_out, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_bytes((batch_out / "summary.json").read_bytes())
    lines = (batch_out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])["study"]  # one study is enough here
    (out / "results.jsonl").write_text(
        "\n".join(line for line in lines if json.loads(line)["study"] == first) + "\n", encoding="utf-8"
    )
    (out / "errors.csv").write_text(
        "study,stage,message\nsite-b/case9.modic.json,load,no sagittal T1 series found\n", encoding="utf-8"
    )
    html = tmp_path / "with-errors.html"
    r = run("report", str(out), "-o", str(html))
    assert r.returncode == 0, r.stderr
    page = Page(html.read_text(encoding="utf-8"))
    assert page.tables["errors"][1] == ["site-b/case9.modic.json", "load", "no sagittal T1 series found"]


# -- bad input ----------------------------------------------------------------------------


def test_a_folder_with_nothing_to_report_on(tmp_path):
    r = run("report", str(tmp_path), "-o", str(tmp_path.parent / "x.html"))
    assert r.returncode == 1
    assert "nothing to report on" in r.stderr and "Traceback" not in r.stderr


def test_an_output_folder_without_results(batch_out, tmp_path):
    only_summary = tmp_path / "a"
    only_summary.mkdir()
    (only_summary / "summary.json").write_bytes((batch_out / "summary.json").read_bytes())
    r = run("report", str(only_summary), "-o", str(tmp_path / "a.html"))
    assert r.returncode == 1 and "no results.csv" in r.stderr and "Traceback" not in r.stderr
    empty = tmp_path / "b"
    empty.mkdir()
    header = (batch_out / "results.csv").read_text(encoding="utf-8").splitlines()[0]
    (empty / "results.csv").write_text(header + "\n", encoding="utf-8")
    r = run("report", str(empty), "-o", str(tmp_path / "b.html"))
    assert r.returncode == 1 and "no endplate results" in r.stderr
    assert not (tmp_path / "a.html").exists() and not (tmp_path / "b.html").exists()


def test_a_study_without_annotations(tmp_path):
    study = tmp_path / "case1"
    write_lumbar_study(study, "siemens")
    r = run("report", str(study), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 1
    assert "annotation file is missing" in r.stderr and str(tmp_path / "case1.modic.json") in r.stderr
    assert not (tmp_path / "r.html").exists()


def test_never_written_into_the_study_folder(tmp_path):
    study = tmp_path / "case1"
    write_lumbar_study(study, "siemens")
    before = sorted(p.name for p in study.rglob("*"))
    r = run("report", str(study), "-o", str(study / "report.html"))
    assert r.returncode == 2 and "never writes into input folders" in r.stderr
    assert sorted(p.name for p in study.rglob("*")) == before


def test_usage_errors(tmp_path):
    r = run("report", str(tmp_path), "-o", str(tmp_path / "r.docx"))
    assert r.returncode == 2 and ".html or .pdf" in r.stderr
    r = run("report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "no such file or folder" in r.stderr


# -- the page in a browser ----------------------------------------------------------------


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="rendering the report needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_report_renders_in_headless_chromium(study_report, tmp_path):
    from playwright.sync_api import sync_playwright

    html, _, r = study_report
    assert r.returncode == 0, r.stderr
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            env=env,
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda req: requests.append(req.url))
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            visible = page.inner_text("body")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            notice_box = page.locator("#research-notice").bounding_box()
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith("data:")] == [html.as_uri()]  # nothing from a network
    assert NOTICE in visible and "Modic type 1: oedema pattern" in visible
    assert "What was measured, on which series" in visible and "Warnings" in visible
    assert len(images) == 3 and all(ok and w > 300 and h > 200 for ok, w, h in images)
    assert notice_box is not None and notice_box["y"] < 300 and notice_box["height"] > 30  # on top, visible
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000


def test_the_extent_and_criterion_in_words():
    """A study's report from the Python API: the extent of a change in the results table,
    the criterion's levels in its own section."""
    import dataclasses

    from modic.extent import Extent
    from modic.report import render_html, study_report

    study = modic.load_study(modic.data.sample_study_path(SIEMENS))
    rois = modic.read_annotations(modic.data.sample_annotations_path(SIEMENS))
    results = modic.classify(study, rois)
    ext = Extent(
        height_mm=12.0,
        body_height_mm=30.0,
        height_fraction=0.4,
        height_grade="B",
        length_mm=30.0,
        endplate_length_mm=40.0,
        length_fraction=0.75,
        length_grade="large",
        body_source="estimated",
    )
    changed = modic.ModicResults(
        [dataclasses.replace(r, extent=ext) if str(r.label) == "L4 inferior" else r for r in results],
        contrast=results.contrast,
    )
    page = Page(render_html(study_report(study, rois, changed)))
    (row,) = [r for r in page.tables[f"results-{study.key}"] if r[1] == "L4 inferior"]
    assert "grade B (40% of body height)" in row[4] and "large (75% of endplate length)" in row[4]
    assert "estimated" in row[4]
    assert "met at L4/L5" in page.text and "vertebral bodies L4, L5" in page.text


def test_a_folder_of_annotated_studies_says_to_run_batch_first(tmp_path):
    r = run("report", str(modic.data.sample_data_dir()), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 1
    assert "modic batch" in r.stderr and "then run 'modic report OUTDIR" in r.stderr
    r = run("report", str(tmp_path), "-o", str(tmp_path.parent / "r.html"), "--format", "svg")
    assert r.returncode == 2 and "--figures" in r.stderr
