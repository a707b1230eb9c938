"""modic.dicomweb and ``modic batch dicomweb+http://...`` against a real Orthanc server.

Orthanc (Debian's ``orthanc`` with ``orthanc-dicomweb``) is started on 127.0.0.1 once per
session (:mod:`orthanc`), with HTTP basic authentication, and the four sample studies are
uploaded to it through Orthanc's own REST API. modic runs as a real command in a
subprocess; what it fetched, stored and wrote is checked with pydicom, with Orthanc's own
REST API and with a proxy that counts the requests (and can cut a download half-way).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from orthanc import PASSWORD, USER, CountingProxy, Orthanc, clean_environment, free_port, missing

import modic
from modic.dicomweb import (
    Credentials,
    DicomwebError,
    RemoteSeries,
    check_uid,
    parse_address,
    read_credentials,
    redact,
    series_needed,
)
from modic.series import pseudonym

pytest.importorskip("dicomweb_client")

SAMPLES = (
    "ge_3T_type3_mixed12",
    "philips_15T_mixed23_enhanced",
    "siemens_15T_type1_type2",
    "siemens_3T_rle_t2fs",
)
OUTPUTS = ("results.csv", "results.jsonl", "errors.csv", "summary.json")
#: The series of each sample study that modic reads (sample_data/README.md: sagittal
#: T1, T2 and STIR / fat-suppressed T2; the localizer and the axial T2 are not needed).
SAGITTAL = {
    "ge_3T_type3_mixed12": {"SAG T1 FSE", "SAG T2 FSE", "SAG STIR"},
    "philips_15T_mixed23_enhanced": {"sT1W_TSE", "sT2W_TSE", "sSTIR"},
    "siemens_15T_type1_type2": {"t1_tse_sag", "t2_tse_sag", "t2_tirm_sag"},
    "siemens_3T_rle_t2fs": {"t1_tse_sag", "t2_tse_sag", "t2_tse_fs_sag"},
}


def study_uid(name: str) -> str:
    return str(modic.read_annotations(modic.data.sample_annotations_path(name)).study_instance_uid)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    why = missing()
    if why is not None:
        pytest.skip(why)
    with Orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        for name in SAMPLES:
            assert server.upload_folder(modic.data.sample_study_path(name)) > 0
        yield server


@pytest.fixture
def proxy(orthanc: Orthanc) -> CountingProxy:
    with CountingProxy(orthanc.port) as p:
        yield p


@pytest.fixture(scope="session")
def local_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``modic batch sample_data`` on the local folder: what the server run must equal."""
    out = tmp_path_factory.mktemp("local") / "out"
    r = modic_run("batch", str(modic.data.sample_data_dir()), "-o", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    return out


@dataclass(frozen=True)
class ServerBatch:
    """``modic batch ADDRESS`` as most tests below run it: ``[-vv] batch ADDRESS OPTIONS
    --annotations DIR --cache TMP/CACHE -o TMP/OUT [--workers 1]``, where DIR holds the
    sample annotation files of ``names`` (no ``--annotations`` without names) and the
    environment holds the test's credentials (``creds_env``) unless ``env`` is given."""

    tmp: Path

    def __call__(
        self,
        address: str,
        *names: str,
        options: Sequence[str] = (),
        cache: str = "cache",
        out: str = "out",
        workers: bool = True,
        verbose: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args = [*(["-vv"] if verbose else []), "batch", address, *options]
        if names:
            args += ["--annotations", str(annotations_of(self.tmp, *names))]
        args += ["--cache", str(self.tmp / cache), "-o", str(self.tmp / out)]
        if workers:
            args += ["--workers", "1"]
        return modic_run(*args, env=creds_env(self.tmp) if env is None else env)


@pytest.fixture
def server_batch(tmp_path: Path) -> ServerBatch:
    """:class:`ServerBatch` in the test's ``tmp_path``."""
    return ServerBatch(tmp_path)


def annotations_of(tmp: Path, *names: str) -> Path:
    """A folder holding the sample annotation files of these studies (and nothing else).

    A file already there is left as it is: a rerun (:class:`ServerBatch` asks for the
    folder at every run) must see the same annotation file, modification time included,
    or the batch's fingerprint would call the study changed."""
    folder = tmp / "annotations"
    folder.mkdir(exist_ok=True)
    for name in names:
        target = folder / f"{name}.modic.json"
        if not target.exists():
            shutil.copy(modic.data.sample_annotations_path(name), target)
    return folder


def modic_run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def creds_env(tmp: Path, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return clean_environment(tmp, MODIC_DICOMWEB_USER=user, MODIC_DICOMWEB_PASSWORD=password)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def rows_of(path: Path, key: str) -> list[dict[str, str]]:
    return [r for r in read_csv(path) if r["study"] == key]


def cached_instances(cache: Path, uid: str) -> list[Path]:
    return sorted((cache / uid).glob("*/*.dcm"))


def all_text(*folders: Path) -> str:
    """Every file under the folders, as text (binary files decoded with replacement)."""
    parts = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                parts.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


# -- addresses and credentials (no server) ---------------------------------------------


def test_address_is_parsed_and_credentials_in_it_are_refused() -> None:
    assert parse_address("dicomweb+http://127.0.0.1:8042/dicom-web/") == "http://127.0.0.1:8042/dicom-web"
    assert parse_address("dicomweb+https://pacs.example.org/wado") == "https://pacs.example.org/wado"
    with pytest.raises(DicomwebError) as exc:
        parse_address("dicomweb+http://bob:hunter2@127.0.0.1:8042/dicom-web")
    assert "hunter2" not in str(exc.value) and "bob" not in str(exc.value)
    assert "MODIC_DICOMWEB_USER" in str(exc.value)
    assert redact("dicomweb+http://bob:hunter2@h/x") == "dicomweb+http://***@h/x"
    for bad in (
        "dicomweb+ftp://h/x",
        "dicomweb+http:///x",
        "dicomweb+http://h:99999/x",
        "dicomweb+http://h/x?a=1",
    ):
        with pytest.raises(DicomwebError):
            parse_address(bad)


def test_credentials_from_environment_then_config_file(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8042/dicom-web"
    env = {"MODIC_DICOMWEB_USER": "ann", "MODIC_DICOMWEB_PASSWORD": "envpw"}
    c = read_credentials(url, environ=env)
    assert (c.user, c.password, c.source) == ("ann", "envpw", "the environment")
    assert "envpw" not in repr(c) and "envpw" not in c.describe()
    cfg = tmp_path / "dicomweb.ini"
    cfg.write_text(
        "[http://127.0.0.1:8042]\nuser = wide\npassword = widepw\n\n"
        "[dicomweb+http://127.0.0.1:8042/dicom-web/]\nuser = exact\npassword = exactpw\n\n"
        "[https://other]\ntoken = tok\n"
    )
    cfg.chmod(0o600)
    c = read_credentials(url, environ={"XDG_CONFIG_HOME": str(tmp_path / "none")}, config=cfg)
    assert (c.user, c.password) == ("exact", "exactpw")  # the longest matching section
    c = read_credentials("http://127.0.0.1:8042/other", config=cfg, environ={})
    assert c.user == "wide"
    c = read_credentials("https://other/dicom-web", config=cfg, environ={})
    assert c.token == "tok" and not c.user and "tok" not in repr(c)
    assert not read_credentials("http://elsewhere", config=cfg, environ={})
    # the default file is $XDG_CONFIG_HOME/modic/dicomweb.ini, read when it exists
    (tmp_path / "modic").mkdir()
    shutil.copy(cfg, tmp_path / "modic" / "dicomweb.ini")
    assert read_credentials(url, environ={"XDG_CONFIG_HOME": str(tmp_path)}).user == "exact"
    with pytest.raises(FileNotFoundError):
        read_credentials(url, config=tmp_path / "nope.ini", environ={})


def test_a_config_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tmp_path / "dicomweb.ini"
    cfg.write_text("[http://h]\nuser = ann\npassword = pw\n")
    cfg.chmod(0o644)
    with caplog.at_level("WARNING", logger="modic.dicomweb"):
        assert read_credentials("http://h/dicom-web", config=cfg, environ={}).user == "ann"
    assert "chmod 600" in caplog.text and "pw\n" not in caplog.text
    caplog.clear()
    cfg.chmod(0o600)
    with caplog.at_level("WARNING", logger="modic.dicomweb"):
        read_credentials("http://h/dicom-web", config=cfg, environ={})
    assert not caplog.text


def test_incomplete_or_broken_credentials_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DicomwebError, match="no password"):
        read_credentials("http://h", environ={"MODIC_DICOMWEB_USER": "ann"})
    with pytest.raises(DicomwebError, match="not both"):
        read_credentials(
            "http://h",
            environ={"MODIC_DICOMWEB_TOKEN": "t", "MODIC_DICOMWEB_USER": "a", "MODIC_DICOMWEB_PASSWORD": "p"},
        )
    cfg = tmp_path / "bad.ini"
    cfg.write_text("user = ann\npassword = leaky-secret-1\n")  # no section header
    with pytest.raises(DicomwebError) as exc:
        read_credentials("http://h", config=cfg, environ={})
    assert "leaky-secret-1" not in str(exc.value) and str(cfg) in str(exc.value)
    cfg.write_text("[http://h]\nuser = ann\npasswd = leaky-secret-2\n")
    with pytest.raises(DicomwebError, match="passwd") as exc:
        read_credentials("http://h", config=cfg, environ={})
    assert "leaky-secret-2" not in str(exc.value)


def test_uids_that_could_escape_the_cache_are_refused() -> None:
    assert check_uid("1.2.840.113619.2.55") == "1.2.840.113619.2.55"
    for bad in ("../etc", "1.2/3", "", "1." + "2" * 70, "1..2"):
        with pytest.raises(DicomwebError):
            check_uid(bad)


def _series(**attrs: object) -> RemoteSeries:
    from pydicom import Dataset

    ds = Dataset()
    for k, v in attrs.items():
        setattr(ds, k, v)
    return RemoteSeries(
        "1.2",
        "1.2.3",
        1,
        str(attrs.get("SeriesDescription", "")),
        str(attrs.get("Modality", "")),
        None,
        ds.to_json_dict(),
    )


def test_series_needed_skips_only_what_cannot_be_read() -> None:
    sag = [0, 1, 0, 0, 0, -1]
    axial = [1, 0, 0, 0, 1, 0]
    assert series_needed(_series(Modality="MR", SeriesDescription="SAG T1", ImageOrientationPatient=sag))[0]
    need, why = series_needed(
        _series(Modality="MR", SeriesDescription="AX T2", ImageOrientationPatient=axial)
    )
    assert not need and "axial" in why
    need, why = series_needed(
        _series(Modality="MR", SeriesDescription="3-PLANE LOC", ImageOrientationPatient=sag)
    )
    assert not need and "localizer" in why
    need, why = series_needed(_series(Modality="SR"))
    assert not need and "SR" in why
    # nothing said about the orientation (e.g. Enhanced MR, or a terse server): fetched
    assert series_needed(_series(Modality="MR", SeriesDescription="T1"))[0]
    assert series_needed(_series())[0]


# -- against Orthanc ----------------------------------------------------------------------


def test_orthanc_fixture_serves_the_samples(orthanc: Orthanc) -> None:
    found = {s["0020000D"]["Value"][0] for s in orthanc.qido("/studies")}
    assert {study_uid(n) for n in SAMPLES} <= found


def test_batch_from_server_gives_the_same_tables_as_the_local_folder(
    orthanc: Orthanc, local_batch: Path, tmp_path: Path, server_batch: ServerBatch
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    worklist = tmp_path / "worklist.txt"  # two studies named with --study, two in a list
    worklist.write_text("".join(f"{study_uid(n)}  # {n}\n" for n in SAMPLES[2:]))
    studies = ["--study", study_uid(SAMPLES[0]), "--study", study_uid(SAMPLES[1]), "--studies", str(worklist)]
    r = server_batch(orthanc.dicomweb, *SAMPLES, options=studies)
    assert r.returncode == 0, r.stderr
    assert "4 studies classified, 0 failed" in r.stdout
    tables = sorted(p.name for p in local_batch.iterdir() if p.is_file())
    assert set(OUTPUTS) <= set(tables)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == tables
    for name in tables:  # results, errors, summary, and whatever tables a batch writes
        assert (out / name).read_bytes() == (local_batch / name).read_bytes(), name
    # the cache holds the sagittal series only, as ordinary DICOM files named by UID
    for name in SAMPLES:
        uid = study_uid(name)
        files = cached_instances(cache, uid)
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
        assert {h.SeriesDescription for h in headers} == SAGITTAL[name]
        for p, h in zip(files, headers, strict=True):
            assert (h.StudyInstanceUID, p.parent.name, p.stem) == (uid, h.SeriesInstanceUID, h.SOPInstanceUID)
    # compressed instances are kept as stored (RLE), not transcoded
    rle = cached_instances(cache, study_uid("siemens_3T_rle_t2fs"))[0]
    assert pydicom.dcmread(rle, stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"
    # the fetched folder is what modic.load_study reads
    study = modic.load_study(cache / study_uid("siemens_15T_type1_type2"))
    assert study.key == pseudonym(study_uid("siemens_15T_type1_type2"))


def test_rerun_reuses_the_cache_without_downloading(
    proxy: CountingProxy, tmp_path: Path, server_batch: ServerBatch
) -> None:
    name = "siemens_15T_type1_type2"
    out, cache = tmp_path / "out", tmp_path / "cache"
    r = server_batch(proxy.dicomweb, name)
    assert r.returncode == 0, r.stderr
    n_files = len(cached_instances(cache, study_uid(name)))
    assert n_files > 0
    # one WADO-RS request per series (3 series), not per instance; the other two series not fetched
    assert proxy.counts["retrieve-series"] == 3 and proxy.counts["retrieve-instance"] == 0
    before = {p: p.stat().st_mtime_ns for p in cached_instances(cache, study_uid(name))}
    tables = {n: (out / n).read_bytes() for n in OUTPUTS}
    proxy.reset()
    r = server_batch(proxy.dicomweb, name)
    assert r.returncode == 0, r.stderr
    assert proxy.counts["retrieve-series"] == 0 and proxy.counts["retrieve-instance"] == 0
    assert proxy.counts["search"] > 0  # the server is still asked what the study holds
    assert f"0 instances downloaded, {n_files} from the cache" in r.stderr
    assert "(0 computed, 1 up to date)" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in cached_instances(cache, study_uid(name))} == before
    assert {n: (out / n).read_bytes() for n in OUTPUTS} == tables
    # files a power cut left empty or short (they are written without fsync) are fetched again
    files = cached_instances(cache, study_uid(name))
    whole = {p: p.read_bytes() for p in files[:2]}
    files[0].write_bytes(b"")
    files[1].write_bytes(whole[files[1]][:-100])
    # a temporary file left by a killed write is removed; a fresh one (another modic
    # writing into the same cache) is left alone
    stale, fresh = files[2].parent / ".x.dcm.0a1b.tmp", files[2].parent / ".y.dcm.2c3d.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    proxy.reset()
    r = server_batch(proxy.dicomweb, name)
    assert r.returncode == 0, r.stderr
    assert proxy.counts["retrieve-instance"] == 2 and proxy.counts["retrieve-series"] == 0
    assert f"2 instances downloaded, {n_files - 2} from the cache" in r.stderr
    assert all(p.read_bytes() == data for p, data in whole.items())
    assert not stale.exists() and fresh.exists()
    assert {n: (out / n).read_bytes() for n in OUTPUTS} == tables


def test_interrupted_download_is_reported_and_resumed(
    proxy: CountingProxy, local_batch: Path, tmp_path: Path, server_batch: ServerBatch
) -> None:
    name = "ge_3T_type3_mixed12"
    uid = study_uid(name)
    out, cache = tmp_path / "out", tmp_path / "cache"
    proxy.cut_next_series = 0.6  # the first series download stops after 60 % of its bytes
    r = server_batch(proxy.dicomweb, name)
    assert r.returncode == 1
    [err] = read_csv(out / "errors.csv")
    assert err["stage"] == "fetch" and err["annotation_file"] == f"{name}.modic.json"
    assert "cut" in err["message"] and "run again" in err["message"]
    assert "Traceback" not in r.stderr
    partial = cached_instances(cache, uid)
    [series_dir] = {p.parent for p in partial}
    n_partial = len(partial)
    in_series = len(orthanc_instances(proxy, uid, series_dir.name))
    assert 0 < n_partial < in_series
    for p in partial:  # what arrived is whole
        pydicom.dcmread(p).pixel_array  # noqa: B018
    assert not list(cache.rglob("*.tmp"))
    proxy.reset()
    r = server_batch(proxy.dicomweb, name)
    assert r.returncode == 0, r.stderr
    n_total = len(cached_instances(cache, uid))
    assert len(list(series_dir.glob("*.dcm"))) == in_series
    # the rest of the cut series one instance at a time, the other two series whole
    assert proxy.counts["retrieve-instance"] == in_series - n_partial
    assert proxy.counts["retrieve-series"] == 2
    assert f"{n_total - n_partial} instances downloaded, {n_partial} from the cache" in r.stderr
    assert rows_of(out / "results.csv", pseudonym(uid)) == rows_of(
        local_batch / "results.csv", pseudonym(uid)
    )


def orthanc_instances(proxy: CountingProxy, study: str, series: str) -> list[str]:
    """SOPInstanceUIDs of a series, asked of Orthanc directly (not through modic)."""
    import urllib.request

    from orthanc import _auth_header

    url = f"http://127.0.0.1:{proxy.upstream_port}/dicom-web/studies/{study}/series/{series}/instances"
    req = urllib.request.Request(url)
    req.add_header("Authorization", _auth_header(USER, PASSWORD))
    with urllib.request.urlopen(req, timeout=30) as resp:
        return [s["00080018"]["Value"][0] for s in json.loads(resp.read())]


def test_wrong_password_fails_clearly_and_never_shows_it(
    orthanc: Orthanc, proxy: CountingProxy, tmp_path: Path, server_batch: ServerBatch
) -> None:
    wrong = "wrong-pw-Hq4SECRET-77"
    out, cache = tmp_path / "out", tmp_path / "cache"
    names = ("siemens_15T_type1_type2", "ge_3T_type3_mixed12")
    r = server_batch(proxy.dicomweb, *names, verbose=True, env=creds_env(tmp_path, password=wrong))
    assert r.returncode == 1
    rows = read_csv(out / "errors.csv")
    assert [row["stage"] for row in rows] == ["fetch", "fetch"]
    assert "HTTP 401" in rows[0]["message"] and f"user '{USER}'" in rows[0]["message"]
    assert rows[1]["message"].startswith("not tried: ")  # one refusal is enough
    assert proxy.counts["search"] == 1
    everything = r.stdout + r.stderr + all_text(out) + "\n".join(proxy.seen)
    assert wrong not in everything and PASSWORD not in everything
    assert not cache.exists() or not list(cache.rglob("*.dcm"))


def test_a_token_is_sent_as_a_bearer_header_and_never_shown(
    proxy: CountingProxy, tmp_path: Path, server_batch: ServerBatch
) -> None:
    token = "tok-Yb81SECRET-e5"
    out = tmp_path / "out"
    env = clean_environment(tmp_path, MODIC_DICOMWEB_TOKEN=token)
    r = server_batch(
        proxy.dicomweb, "siemens_15T_type1_type2", cache="c", workers=False, verbose=True, env=env
    )
    assert r.returncode == 1  # Orthanc knows no tokens
    assert proxy.authorization == [f"Bearer {token}"]
    [row] = read_csv(out / "errors.csv")
    assert "refused a bearer token from the environment (HTTP 401" in row["message"]
    assert token not in r.stdout + r.stderr + all_text(out)


def test_no_credentials_says_how_to_give_them(
    orthanc: Orthanc, tmp_path: Path, server_batch: ServerBatch
) -> None:
    out = tmp_path / "out"
    env = clean_environment(tmp_path)
    r = server_batch(orthanc.dicomweb, "siemens_15T_type1_type2", cache="c", workers=False, env=env)
    assert r.returncode == 1
    [row] = read_csv(out / "errors.csv")
    assert "HTTP 401" in row["message"] and "MODIC_DICOMWEB_USER" in row["message"]


def test_credentials_from_a_config_file_and_a_good_run_leaks_nothing(
    orthanc: Orthanc, tmp_path: Path, server_batch: ServerBatch
) -> None:
    name = "siemens_3T_rle_t2fs"
    cfg = tmp_path / "pacs.ini"
    cfg.write_text(f"[{orthanc.url}/dicom-web]\nuser = {USER}\npassword = {PASSWORD}\n")
    cfg.chmod(0o600)
    out = tmp_path / "out"
    r = server_batch(
        orthanc.dicomweb,
        name,
        options=["--dicomweb-config", str(cfg)],
        verbose=True,
        env=clean_environment(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert f"user '{USER}' from {cfg}" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr + all_text(out)
    # the same from the default config file, $XDG_CONFIG_HOME/modic/dicomweb.ini
    (tmp_path / "config-home" / "modic").mkdir(parents=True)
    shutil.copy(cfg, tmp_path / "config-home" / "modic" / "dicomweb.ini")
    r = server_batch(orthanc.dicomweb, name, workers=False, env=clean_environment(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "(0 computed, 1 up to date)" in r.stdout


def test_address_with_a_password_is_refused_before_anything_runs(orthanc: Orthanc, tmp_path: Path) -> None:
    address = orthanc.dicomweb.replace("://", f"://{USER}:{PASSWORD}@")
    r = modic_run(
        "batch",
        address,
        "--study",
        study_uid(SAMPLES[0]),
        "-o",
        str(tmp_path / "out"),
        env=clean_environment(tmp_path),
    )
    assert r.returncode == 2
    assert "never takes credentials in an address" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()


def test_server_down_wrong_url_and_unknown_study_are_one_line_errors(
    orthanc: Orthanc, tmp_path: Path, server_batch: ServerBatch
) -> None:
    names = ("siemens_15T_type1_type2", "ge_3T_type3_mixed12")
    # nothing listens on this port
    down = f"dicomweb+http://127.0.0.1:{free_port()}/dicom-web"
    r = server_batch(down, *names, cache="c", out="down", workers=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    rows = read_csv(tmp_path / "down" / "errors.csv")
    assert "connection refused" in rows[0]["message"] and rows[1]["message"].startswith("not tried")
    # a server without DICOMweb at this path
    wrong = f"{orthanc.dicomweb[: -len('/dicom-web')]}/dicomweb"
    r = server_batch(wrong, *names, cache="c", out="wrong", workers=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    rows = read_csv(tmp_path / "wrong" / "errors.csv")
    assert all("HTTP 404" in row["message"] and "DICOMweb root" in row["message"] for row in rows)


def test_unknown_study_fails_alone_and_the_batch_goes_on(
    orthanc: Orthanc, local_batch: Path, tmp_path: Path, server_batch: ServerBatch
) -> None:
    ann = annotations_of(tmp_path, "siemens_15T_type1_type2")  # the folder server_batch passes
    doc = json.loads(modic.data.sample_annotations_path("ge_3T_type3_mixed12").read_text())
    doc["study"]["study_instance_uid"] = "1.2.826.0.1.3680043.8.498.1"
    (ann / "elsewhere.modic.json").write_text(json.dumps(doc))
    (ann / "broken.modic.json").write_text("{not json")
    out = tmp_path / "out"
    r = server_batch(orthanc.dicomweb, "siemens_15T_type1_type2", cache="c")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "1 study classified, 2 failed" in r.stdout
    rows = {row["annotation_file"]: row for row in read_csv(out / "errors.csv")}
    assert rows["elsewhere.modic.json"]["stage"] == "fetch"
    assert (
        f"has no study {pseudonym('1.2.826.0.1.3680043.8.498.1')}" in rows["elsewhere.modic.json"]["message"]
    )
    assert rows["broken.modic.json"]["stage"] == "annotations"
    key = pseudonym(study_uid("siemens_15T_type1_type2"))
    assert rows_of(out / "results.csv", key) == rows_of(local_batch / "results.csv", key)


def test_study_list_without_annotations_is_reported_not_downloaded(
    orthanc: Orthanc, tmp_path: Path, server_batch: ServerBatch
) -> None:
    uids = tmp_path / "studies.txt"
    uids.write_text(f"# from the PACS worklist\n{study_uid('ge_3T_type3_mixed12')}\n")
    out = tmp_path / "out"
    r = server_batch(orthanc.dicomweb, options=["--studies", str(uids)], cache="c", workers=False)
    assert r.returncode == 1
    [row] = read_csv(out / "errors.csv")
    assert row["stage"] == "annotations" and "--annotations" in row["message"]
    assert not list((tmp_path / "c").rglob("*.dcm"))


def test_dicomweb_options_need_a_dicomweb_root(tmp_path: Path) -> None:
    r = modic_run(
        "batch", str(modic.data.sample_data_dir()), "--cache", str(tmp_path), "-o", str(tmp_path / "o")
    )
    assert r.returncode == 2 and "--cache: only with a DICOMweb ROOT" in r.stderr
    r = modic_run("batch", "http://127.0.0.1:8042/dicom-web", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "dicomweb+http://127.0.0.1:8042/dicom-web" in r.stderr
    r = modic_run("batch", "dicomweb+http://127.0.0.1:1/x", "--study", "../etc", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "not a DICOM UID" in r.stderr


def test_credentials_object_checks_itself() -> None:
    with pytest.raises(DicomwebError):
        Credentials(user="a", source="test")
    assert Credentials(token="t").describe() == "a bearer token from none"


# -- storing results back (STOW-RS) --------------------------------------------------------


def write_text_sr(path: Path, study_folder: Path, text: str) -> pydicom.Dataset:
    """A Basic Text SR of a study, written with pydicom (header copied from one of its images)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    image = next(
        pydicom.dcmread(p, stop_before_pixels=True)
        for p in sorted(study_folder.rglob("*"))
        if p.is_file() and p.suffix != ".json"
    )
    ds = Dataset()
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
    ):
        setattr(ds, kw, getattr(image, kw, ""))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "SR", 901, 1, "modic tests"
    ds.ContentDate, ds.ContentTime = "20261203", "090000"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = (
        "18748-4",
        "LN",
        "Diagnostic imaging report",
    )
    ds.ConceptNameCodeSequence = Sequence([title])
    item = Dataset()
    item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", text
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = Sequence([name])
    ds.ContentSequence = Sequence([item])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_store_sends_the_dicom_outputs_back_and_they_round_trip(
    orthanc: Orthanc, tmp_path: Path, server_batch: ServerBatch
) -> None:
    name = "philips_15T_mixed23_enhanced"
    uid = study_uid(name)
    out = tmp_path / "out"
    sr = write_text_sr(
        out / "sr" / "finding.dcm", modic.data.sample_study_path(name), "L4 inferior: Modic 2/3"
    )
    (out / "notes.txt").write_text("not DICOM: not sent")
    other = write_text_sr(
        out / "sr" / "other-study.dcm", modic.data.sample_study_path("siemens_3T_rle_t2fs"), "x"
    )
    r = server_batch(orthanc.dicomweb, name, options=["--store"])
    assert r.returncode == 0, r.stderr
    assert "stored on " in r.stdout and ": 1 DICOM object (stored.csv)" in r.stdout
    [row] = read_csv(out / "stored.csv")
    assert row == {
        "study": pseudonym(uid),
        "file": "sr/finding.dcm",
        "modality": "SR",
        "status": "stored",
        "message": "",
    }
    # the server (asked directly) has it in the study, and only it
    found = orthanc.qido(f"/studies/{uid}/instances?SOPInstanceUID={sr.SOPInstanceUID}")
    assert len(found) == 1 and found[0]["00080060"]["Value"] == ["SR"]
    assert not orthanc.qido(f"/instances?SOPInstanceUID={other.SOPInstanceUID}")
    # and it reads back as it was written
    from modic.dicomweb import DicomwebServer
    from modic.dicomweb.address import Credentials as C

    server = DicomwebServer(orthanc.dicomweb, credentials=C(USER, PASSWORD, source="test"))
    [(series, sop)] = server.search_instances(uid, "SR")
    back = server.retrieve_instance(series, sop)
    assert back.ContentSequence[0].TextValue == "L4 inferior: Modic 2/3"
    assert back.SOPInstanceUID == sr.SOPInstanceUID and back.SeriesInstanceUID == sr.SeriesInstanceUID


def test_store_failure_is_reported(orthanc: Orthanc, tmp_path: Path) -> None:
    from modic.dicomweb import DicomwebServer, store_outputs
    from modic.dicomweb.address import Credentials as C

    path = tmp_path / "sr.dcm"
    write_text_sr(path, modic.data.sample_study_path("siemens_15T_type1_type2"), "x")
    server = DicomwebServer(orthanc.dicomweb, credentials=C(USER, "not-the-password", source="test"))
    [res] = store_outputs(server, [path])
    assert not res.ok and "HTTP 401" in res.message
    assert not orthanc.qido(f"/instances?SOPInstanceUID={pydicom.dcmread(path).SOPInstanceUID}")


# -- modic info / classify on a server's study ---------------------------------------------


def test_info_and_classify_read_a_study_on_the_server(
    orthanc: Orthanc, local_batch: Path, tmp_path: Path
) -> None:
    name = "siemens_15T_type1_type2"
    uid = study_uid(name)
    env, cache = creds_env(tmp_path), tmp_path / "cache"
    r = modic_run("info", orthanc.dicomweb, "--study", uid, "--cache", str(cache), "--json", env=env)
    assert r.returncode == 0, r.stderr
    local = modic_run("info", str(modic.data.sample_study_path(name)), "--json", env=env)
    got, want = json.loads(r.stdout), json.loads(local.stdout)
    # info fetches every series: the same series, roles and planes as the local folder
    assert [(s["key"], s["role"], s["plane"]) for st in got["studies"] for s in st["series"]] == [
        (s["key"], s["role"], s["plane"]) for st in want["studies"] for s in st["series"]
    ]
    r = modic_run(
        "classify",
        orthanc.dicomweb,
        "--study",
        uid,
        "--cache",
        str(cache),
        "--json",
        "--annotations",
        str(modic.data.sample_annotations_path(name)),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    lines = (local_batch / "results.jsonl").read_text().splitlines()
    assert json.loads(r.stdout) == [d for d in map(json.loads, lines) if d["study"] == pseudonym(uid)]
    assert "0 instances downloaded" in r.stderr  # info fetched it all already
    r = modic_run("classify", orthanc.dicomweb, "--study", uid, "--cache", str(cache), env=env)
    assert r.returncode == 1 and "no SR on the server" in r.stderr and "--annotations FILE" in r.stderr
    r = modic_run("classify", orthanc.dicomweb, "--annotations", "x.json", env=env)
    assert r.returncode == 2 and "--study UID" in r.stderr
    r = modic_run("info", f"http://{USER}:{PASSWORD}@127.0.0.1:1/dicom-web", env=env)
    assert r.returncode == 2 and "dicomweb+http://***@127.0.0.1:1/dicom-web" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr


def test_sr_stored_back_is_found_again_and_gives_the_rois(
    orthanc: Orthanc, local_batch: Path, tmp_path: Path, server_batch: ServerBatch
) -> None:
    """``--export sr,seg --store``: the SR and SEG land in the study; the SR gives the ROIs back."""
    pytest.importorskip("highdicom")
    name = "siemens_3T_rle_t2fs"
    uid, key = study_uid(name), pseudonym(study_uid(name))
    env, cache, out = creds_env(tmp_path), tmp_path / "cache", tmp_path / "out"
    r = server_batch(orthanc.dicomweb, name, options=["--export", "sr,seg", "--store"])
    assert r.returncode == 0, r.stderr
    assert ": 2 DICOM objects (stored.csv)" in r.stdout
    stored = read_csv(out / "stored.csv")
    assert sorted((row["modality"], row["status"]) for row in stored) == [("SEG", "stored"), ("SR", "stored")]
    # both landed in the study (asked of Orthanc directly), and read back as written
    from modic.dicomweb import DicomwebServer

    server = DicomwebServer(orthanc.dicomweb, credentials=Credentials(USER, PASSWORD, source="test"))
    for row in stored:
        written = pydicom.dcmread(out / row["file"])
        found = orthanc.qido(f"/studies/{uid}/instances?SOPInstanceUID={written.SOPInstanceUID}")
        assert len(found) == 1 and found[0]["00080060"]["Value"] == [row["modality"]]
        [(series, sop)] = server.search_instances(uid, row["modality"])
        back = server.retrieve_instance(series, sop)
        assert back == written  # every data element
    # a batch without annotation file reads the ROIs from the SR: the rows of the local folder
    again = tmp_path / "again"
    r = server_batch(orthanc.dicomweb, options=["--study", uid], out="again")
    assert r.returncode == 0, r.stderr
    assert f"study {key}: ROIs from the SR series" in r.stderr
    assert "modality SR, not MR images" in r.stderr and "modality SEG, not MR images" in r.stderr
    assert len({p.parent.name for p in cached_instances(cache, uid)}) == 3  # the SR and SEG are not images
    assert rows_of(again / "results.csv", key) == rows_of(local_batch / "results.csv", key)
    rois = modic.read_annotations(modic.data.sample_annotations_path(name))
    assert modic.read_annotations(cache / "annotations" / f"{uid}.modic.json") == rois
    r = server_batch(orthanc.dicomweb, options=["--study", uid], out="again")
    assert r.returncode == 0 and "(0 computed, 1 up to date)" in r.stdout
    # modic classify of the study on the server, ROIs from the same SR
    r = modic_run("classify", orthanc.dicomweb, "--study", uid, "--json", "--cache", str(cache), env=env)
    assert r.returncode == 0, r.stderr
    lines = (local_batch / "results.jsonl").read_text().splitlines()
    assert json.loads(r.stdout) == [d for d in map(json.loads, lines) if d["study"] == key]


def test_the_newest_sr_with_rois_gives_the_annotations(tmp_path: Path) -> None:
    """Of a study's SRs, the newest one modic can read ROIs from wins; others are passed over."""
    sr_module = pytest.importorskip("modic.sr")
    pytest.importorskip("highdicom")
    import dataclasses

    from modic.dicomweb.annotations import annotations_from_sr
    from modic.dicomweb.cache import FetchedStudy

    name = "ge_3T_type3_mixed12"
    folder = modic.data.sample_study_path(name)
    study = modic.load_study(folder)
    rois = modic.read_annotations(modic.data.sample_annotations_path(name))
    few = dataclasses.replace(rois, rois=list(rois.rois[:3]))
    older = sr_module.build_sr(study, rois, None, series_number=801)
    older.ContentDate, older.ContentTime = "20250101", "120000"
    newer = sr_module.build_sr(study, few, None, series_number=802)
    newer.ContentDate, newer.ContentTime = "20260101", "080000"
    text = write_text_sr(tmp_path / "text.dcm", folder, "not ROIs")  # the newest, but no ROI
    text.ContentDate = "20270101"
    reports = {str(ds.SeriesInstanceUID): ds for ds in (older, text, newer)}

    class Server:  # the two calls annotations_from_sr makes, answered from memory
        def instances_of(self, series: RemoteSeries) -> list[str]:
            return [str(reports[series.series_uid].SOPInstanceUID)]

        def retrieve_instance(self, series: RemoteSeries, sop: str) -> pydicom.Dataset:
            return reports[series.series_uid]

    listing = [
        RemoteSeries(study.study.study_uid, uid, int(ds.SeriesNumber), "", "SR", 1, {})
        for uid, ds in reports.items()
    ]
    path, source = annotations_from_sr(
        Server(),
        FetchedStudy(study.study.study_uid, folder),
        listing,
        tmp_path / "ann",
    )
    assert path is not None and "series 802" in source and "(3 ROIs)" in source
    assert [r.label for r in modic.read_annotations(path).rois] == [r.label for r in few.rois]
    mtime = path.stat().st_mtime_ns
    annotations_from_sr(Server(), FetchedStudy(study.study.study_uid, folder), listing, tmp_path / "ann")
    assert path.stat().st_mtime_ns == mtime  # the same ROIs: the file is not rewritten
    none, why = annotations_from_sr(
        Server(),
        FetchedStudy(study.study.study_uid, folder),
        listing[1:2],
        tmp_path / "ann",
    )
    assert none is None and "no SR on the server with ROIs" in why
    assert "series 901: <dataset>: not a DICOM SR measurement report" in why  # says why not
