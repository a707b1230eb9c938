"""Time modic's folder indexing and T1 + T2 loading, next to SimpleITK and the byte floor.

This is a script that prints numbers, not a test. It needs SimpleITK, which is not a
dependency of modic::

    pip install SimpleITK
    python benchmarks/bench_load.py                   # 3 studies, 5 repeats, all variants
    python benchmarks/bench_load.py --studies 1 --repeats 3 --variants uncompressed,j2k
    python benchmarks/bench_load.py --json out/bench.json

Phantom studies (:mod:`modic.phantom`, default full-resolution protocol, 5 series) are
written once under ``benchmarks/_data/`` (git-ignored; ``--regenerate`` rewrites them) in
several transfer syntaxes. For each variant the contenders run interleaved in the same
process, after one warm-up round (page cache warm for all), and each is repeated
``--repeats`` times; the best and the median of the repeats are printed, per study.

What each side is given (each parses the headers of the files it reads itself):

- modic index: ``modic.scan(study_folder)`` (recursive; all 5 series' headers).
- modic load: ``load_volume`` of the sagittal T1 and T2, given that scan.
- modic end-to-end: scan + ``select_series`` T1 / T2 + ``load_volume`` of both.
- SimpleITK index: ``ImageSeriesReader.GetGDCMSeriesIDs`` on each series folder
  (``GetGDCMSeriesIDs`` is not recursive) after listing the study folder.
- SimpleITK load: given the T1 and T2 folders and their series ids,
  ``GetGDCMSeriesFileNames`` (parses and sorts the folder's headers) + ``Execute`` +
  ``GetArrayFromImage``.
- SimpleITK end-to-end: index + load, with the T1 and T2 folders given (SimpleITK has
  no notion of which series is the T1: modic finds that in its scan).
- floor: ``numpy.fromfile`` (uint8, whole file) of every T1 and T2 file; for end-to-end,
  of every file of the study.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("bench_load")

DATA_DIR = Path(__file__).resolve().parent / "_data"
#: Bump when the generated data changes; cached studies of another version are rewritten.
DATA_VERSION = 1
#: The vendor of study k is VENDORS[k % 3] (Philips headers carry a RescaleSlope != 1).
VENDORS = ("siemens", "ge", "philips")
STARTUP_LIMIT_S = 0.3
STARTUP_RUNS = 10


@dataclass(frozen=True)
class Variant:
    """One transfer syntax of the benchmark studies."""

    name: str
    label: str
    uid: str
    target: float  # the largest modic/SimpleITK ratio of the T1+T2 load that passes


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("uncompressed", "Explicit VR Little Endian", "1.2.840.10008.1.2.1", 0.3),
        Variant("j2k", "JPEG 2000 Lossless", "1.2.840.10008.1.2.4.90", 1.0),
        Variant("jpeg-lossless", "JPEG Lossless SV1 (process 14)", "1.2.840.10008.1.2.4.70", 1.0),
        Variant("jpegls", "JPEG-LS Lossless", "1.2.840.10008.1.2.4.80", 1.0),
    )
}
DEFAULT_VARIANTS = ("uncompressed", "j2k", "jpeg-lossless", "jpegls")


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def _study_dir(variant: str, seed: int) -> Path:
    return DATA_DIR / variant / f"study{seed:02d}"


def _marker(variant: str, seed: int) -> Path:
    return DATA_DIR / variant / f"study{seed:02d}.done.json"


def _is_cached(variant: str, seed: int) -> bool:
    try:
        info = json.loads(_marker(variant, seed).read_text())
    except (OSError, ValueError):
        return False
    return bool(info.get("version") == DATA_VERSION and _study_dir(variant, seed).is_dir())


def _clear(variant: str, seed: int) -> None:
    _marker(variant, seed).unlink(missing_ok=True)
    shutil.rmtree(_study_dir(variant, seed), ignore_errors=True)


def _write_phantom(variant: str, seed: int) -> None:
    from modic.phantom import default_study_spec, write_study

    syntax = {"uncompressed": "explicit", "j2k": "jpeg2000"}[variant]
    spec = default_study_spec(seed, vendor=VENDORS[seed % 3], transfer_syntax=syntax)
    write_study(spec, _study_dir(variant, seed), overwrite=True,
                truth_path=DATA_DIR / variant / f"study{seed:02d}.truth.json")


def _to_jpegls(ds: Any, tmp: Path) -> None:
    from pydicom.uid import JPEGLSLossless

    ds.compress(JPEGLSLossless, encoding_plugin="pyjpegls", generate_instance_uid=False)


def _to_jpeg_lossless(ds: Any, tmp: Path) -> None:
    """JPEG Lossless SV1 through SimpleITK's GDCM (pydicom cannot encode it)."""
    import pydicom
    import SimpleITK as sitk
    from pydicom.uid import JPEGLosslessSV1

    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(tmp))
    writer.UseCompressionOn()
    writer.SetCompressor("JPEG")  # GDCM: JPEG Lossless, process 14, selection value 1
    writer.Execute(sitk.GetImageFromArray(ds.pixel_array))
    out = pydicom.dcmread(tmp)
    if out.file_meta.TransferSyntaxUID != JPEGLosslessSV1:
        raise RuntimeError(f"SimpleITK wrote {out.file_meta.TransferSyntaxUID.name}, not JPEG Lossless SV1")
    ds.PixelData = out.PixelData  # encapsulated: offset table + one fragment
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1


def _transcode(variant: str, seed: int) -> None:
    """Rewrite every file of the uncompressed study in the variant's transfer syntax."""
    import pydicom

    encode = {"jpegls": _to_jpegls, "jpeg-lossless": _to_jpeg_lossless}[variant]
    src_root, dst_root = _study_dir("uncompressed", seed), _study_dir(variant, seed)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir) / "frame.dcm"
        for src in sorted(p for p in src_root.rglob("*") if p.is_file()):
            ds = pydicom.dcmread(src)
            reference = ds.pixel_array.copy()
            encode(ds, tmp)
            dst = dst_root / src.relative_to(src_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(dst, enforce_file_format=True)
            back = pydicom.dcmread(dst).pixel_array
            if not np.array_equal(back, reference):
                raise RuntimeError(f"{dst}: the {variant} round trip changed the pixel values")


def ensure_data(variants: Sequence[str], n_studies: int, regenerate: bool) -> dict[str, list[Path]]:
    """Write (or reuse) the studies; return the study folders of each variant written.

    A variant whose encoder is missing (JPEG-LS needs pyjpegls; JPEG Lossless needs a
    SimpleITK whose GDCM writes it) is left out, and the reason printed.
    """
    seeds = range(1, n_studies + 1)
    needed = list(variants)
    if any(v in ("jpegls", "jpeg-lossless") for v in variants) and "uncompressed" not in needed:
        needed.insert(0, "uncompressed")  # the source of the transcoded variants
    produced = []
    for variant in needed:
        try:
            _ensure_variant(variant, seeds, regenerate)
        except Exception as exc:
            if variant in ("uncompressed", "j2k"):
                raise
            print(f"cannot produce the {variant} studies ({type(exc).__name__}: {exc}); "
                  "that variant is not measured", flush=True)
            continue
        produced.append(variant)
    return {v: [_study_dir(v, s) for s in seeds] for v in variants if v in produced}


def _ensure_variant(variant: str, seeds: range, regenerate: bool) -> None:
    """Write the studies of one variant that are not cached (all with ``regenerate``)."""
    for seed in seeds:
        if regenerate:
            _clear(variant, seed)
        if _is_cached(variant, seed):
            continue
        _clear(variant, seed)
        print(f"writing {variant} study {seed} under {_study_dir(variant, seed)} ...", flush=True)
        t0 = time.perf_counter()
        if variant in ("uncompressed", "j2k"):
            _write_phantom(variant, seed)
        else:
            _transcode(variant, seed)
        _marker(variant, seed).write_text(json.dumps(
            {"version": DATA_VERSION, "seed": seed, "vendor": VENDORS[seed % 3],
             "seconds": round(time.perf_counter() - t0, 1)}))


# --------------------------------------------------------------------------------------
# one study, as each contender sees it
# --------------------------------------------------------------------------------------
@dataclass
class Case:
    """A study folder with what the 'load' contenders are given (found once, untimed)."""

    folder: Path
    t1: Any  # modic Series
    t2: Any
    t1_dir: str
    t2_dir: str
    t1_sitk_id: str
    t2_sitk_id: str
    t1_t2_files: list[str]
    all_files: list[str]
    n_series: int
    series_shapes: list[tuple[str, str, tuple[int, int, int]]]
    n_bytes: int
    n_bytes_t1_t2: int


def _only_folder(study_folder: Path, series: Any) -> str:
    folders = {str(f.path.parent) for f in series.frames}
    if len(folders) != 1:
        raise RuntimeError(f"{study_folder}: series {series.label()} spans folders {sorted(folders)}")
    return folders.pop()


def make_case(folder: Path) -> Case:
    import SimpleITK as sitk

    import modic
    from modic import Role, select_series

    result = modic.scan(folder)
    (study,) = result.studies
    t1 = select_series(study, Role.T1).series
    t2 = select_series(study, Role.T2).series
    if t1 is None or t2 is None:
        raise RuntimeError(f"{folder}: no sagittal T1 / T2 found")
    t1_dir, t2_dir = (_only_folder(folder, s) for s in (t1, t2))
    ids = {d: sitk.ImageSeriesReader.GetGDCMSeriesIDs(d) for d in (t1_dir, t2_dir)}
    for d, found in ids.items():
        if len(found) != 1:
            raise RuntimeError(f"{d}: SimpleITK finds {len(found)} series")
    t1_t2_files = [str(f.path) for s in (t1, t2) for f in s.frames]
    all_files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    return Case(
        folder=folder, t1=t1, t2=t2, t1_dir=t1_dir, t2_dir=t2_dir,
        t1_sitk_id=ids[t1_dir][0], t2_sitk_id=ids[t2_dir][0],
        t1_t2_files=t1_t2_files, all_files=all_files,
        n_series=len({s.series_uid for s in study.series}),
        series_shapes=[(s.role.value, s.plane.value, s.shape) for s in study.series],
        n_bytes=sum(os.path.getsize(f) for f in all_files),
        n_bytes_t1_t2=sum(os.path.getsize(f) for f in t1_t2_files),
    )


def modic_index(case: Case) -> None:
    import modic

    modic.scan(case.folder)


def modic_load(case: Case) -> None:
    from modic import load_volume

    load_volume(case.t1)
    load_volume(case.t2)


def modic_end_to_end(case: Case) -> None:
    import modic
    from modic import Role, load_volume, select_series

    study = modic.scan(case.folder).studies[0]
    for role in (Role.T1, Role.T2):
        series = select_series(study, role).series
        assert series is not None
        load_volume(series)


def _sitk_series_folders(case: Case) -> list[str]:
    return sorted(e.path for e in os.scandir(case.folder / "dicom") if e.is_dir())


def sitk_index(case: Case) -> dict[str, tuple[str, ...]]:
    import SimpleITK as sitk

    return {d: sitk.ImageSeriesReader.GetGDCMSeriesIDs(d) for d in _sitk_series_folders(case)}


def _sitk_read(folder: str, series_id: str) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, series_id))
    image = reader.Execute()
    arr: np.ndarray = sitk.GetArrayFromImage(image)
    return arr


def sitk_load(case: Case) -> None:
    _sitk_read(case.t1_dir, case.t1_sitk_id)
    _sitk_read(case.t2_dir, case.t2_sitk_id)


def sitk_end_to_end(case: Case) -> None:
    ids = sitk_index(case)
    for folder in (case.t1_dir, case.t2_dir):
        _sitk_read(folder, ids[folder][0])


def floor_t1_t2(case: Case) -> None:
    for f in case.t1_t2_files:
        np.fromfile(f, dtype=np.uint8)


def floor_all(case: Case) -> None:
    for f in case.all_files:
        np.fromfile(f, dtype=np.uint8)


CONTENDERS: dict[str, Callable[[Case], Any]] = {
    "modic index": modic_index,
    "SimpleITK index": sitk_index,
    "modic load T1+T2": modic_load,
    "SimpleITK load T1+T2": sitk_load,
    "floor T1+T2 files": floor_t1_t2,
    "modic end-to-end": modic_end_to_end,
    "SimpleITK end-to-end": sitk_end_to_end,
    "floor all files": floor_all,
}


# --------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------
def time_interleaved(
    contenders: dict[str, Callable[[Case], Any]], cases: Sequence[Case], repeats: int
) -> dict[str, dict[str, Any]]:
    """Wall and CPU time per study of each contender, one number per repeat.

    One warm-up round comes first. In every round each study is given to every
    contender, in an order rotated from study to study and from round to round. The CPU
    time (``time.process_time``, all threads of this process) tells how much of the wall
    time other processes on a shared machine took, and whether a contender uses threads.
    """
    names = list(contenders)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for rnd in range(repeats + 1):  # round 0 warms up (imports, page cache)
        spent_wall = dict.fromkeys(names, 0.0)
        spent_cpu = dict.fromkeys(names, 0.0)
        for k, case in enumerate(cases):
            shift = (rnd + k) % len(names)
            for name in names[shift:] + names[:shift]:
                gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                contenders[name](case)
                spent_wall[name] += time.perf_counter() - t0
                spent_cpu[name] += time.process_time() - c0
        if rnd:
            for n in names:
                wall[n].append(spent_wall[n] / len(cases))
                cpu[n].append(spent_cpu[n] / len(cases))
    return {n: _summary(wall[n], cpu[n]) for n in names}


def _summary(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    return {"best_ms": 1e3 * min(wall), "median_ms": 1e3 * statistics.median(wall),
            "cpu_median_ms": 1e3 * statistics.median(cpu),
            "runs_ms": [round(1e3 * s, 3) for s in wall]}


# --------------------------------------------------------------------------------------
# decoding plugins
# --------------------------------------------------------------------------------------
def _decoder_options(frame: Any) -> dict[str, Any]:
    enc = frame.encoding
    return dict(rows=frame.rows, columns=frame.columns, samples_per_pixel=enc.samples_per_pixel,
                bits_allocated=enc.bits_allocated, bits_stored=enc.bits_stored,
                pixel_representation=enc.pixel_representation,
                photometric_interpretation=enc.photometric_interpretation,
                number_of_frames=enc.number_of_frames)


def decode_frames(frames: Sequence[Any], plugin: str) -> list[np.ndarray]:
    """Decode frames as ``modic.volume._decode`` does, with one plugin ('' = pydicom's order)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    out = []
    for fr in frames:
        decoder = get_decoder(UID(fr.encoding.transfer_syntax))
        with open(fr.path, "rb") as fp:
            fp.seek(fr.encoding.offset)
            arr, _ = decoder.as_array(fp, index=fr.frame_index, decoding_plugin=plugin,
                                      **_decoder_options(fr))
        out.append(arr)
    return out


@contextlib.contextmanager
def record_plugins() -> Iterator[set[str]]:
    """The names of the pydicom decoding plugins that decode frames inside the block."""
    from pydicom.pixels.decoders.base import DecodeRunner

    used: set[str] = set()
    original = DecodeRunner._decode_frame

    def recording(self: Any, src: bytes) -> Any:
        out = original(self, src)
        used.add(self._previous[0])
        return out

    DecodeRunner._decode_frame = recording  # type: ignore[method-assign]
    try:
        yield used
    finally:
        DecodeRunner._decode_frame = original  # type: ignore[method-assign]


def _decoding(cases: Sequence[Case], frames: Sequence[Sequence[Any]], plugin: str
              ) -> Callable[[Case], Any]:
    """A contender decoding the T1+T2 frames of a case with ``plugin``."""
    by_case = {id(c): fs for c, fs in zip(cases, frames, strict=True)}

    def run(case: Case) -> list[np.ndarray]:
        return decode_frames(by_case[id(case)], plugin)

    return run


@contextlib.contextmanager
def record_modic_decoder() -> Iterator[list[str]]:
    """What ``load_volume`` says decoded each series inside the block (its debug log)."""
    said: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "decoded by " in message:
                said.append(message.split("decoded by ", 1)[1])

    log = logging.getLogger("modic.volume")
    handler, level, propagate = Recorder(logging.DEBUG), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # the debug lines are recorded, not printed
    try:
        yield said
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _imagecodecs_decoding(cases: Sequence[Case], threads: int) -> Callable[[Case], Any]:
    """A contender decoding the T1 and T2 frames as modic's imagecodecs path does."""
    from modic.volume import _decode_with_imagecodecs

    def run(case: Case) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for series in (case.t1, case.t2):
            got: dict[int, np.ndarray] = {}
            _decode_with_imagecodecs(series.frames, got.__setitem__, threads=threads)
            out.extend(got[i] for i in range(len(series.frames)))
        return out

    return run


def time_plugins(variant: Variant, cases: Sequence[Case], repeats: int) -> dict[str, Any]:
    """Decode time of the T1+T2 frames with every available plugin (and pydicom's default),
    and with modic's imagecodecs path (1 thread, and one per CPU as ``load_volume`` runs it)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    from modic import load_volume

    decoder = get_decoder(UID(variant.uid))
    plugins = list(decoder.available_plugins)
    frames = [[f for s in (c.t1, c.t2) for f in s.frames] for c in cases]
    reference = [decode_frames(fs, "") for fs in frames]
    contenders: dict[str, Callable[[Case], Any]] = {}
    errors: dict[str, str] = {}
    for plugin in plugins:
        try:
            got = [decode_frames(fs, plugin) for fs in frames]
        except Exception as exc:  # a plugin that cannot decode this data is reported
            errors[plugin] = f"{type(exc).__name__}: {exc}"
            continue
        same = all(np.array_equal(a, b) for g, r in zip(got, reference, strict=True)
                   for a, b in zip(g, r, strict=True))
        if not same:
            errors[plugin] = "decodes to other values than pydicom's default plugin"
            continue
        contenders[plugin] = _decoding(cases, frames, plugin)
    contenders["(pydicom default order)"] = _decoding(cases, frames, "")
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        errors["imagecodecs"] = "not installed"
    else:
        n_cpu = os.cpu_count() or 1
        for threads in sorted({1, n_cpu}):
            name = f"imagecodecs, {threads} thread{'s' if threads > 1 else ''}"
            run = _imagecodecs_decoding(cases, threads)
            try:
                got = [run(c) for c in cases]
            except Exception as exc:  # modic would fall back to pydicom: reported
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            same = all(np.array_equal(a, b) for g, r in zip(got, reference, strict=True)
                       for a, b in zip(g, r, strict=True))
            if not same:
                errors[name] = "decodes to other values than pydicom's default plugin"
                continue
            contenders[name] = run
    times = time_interleaved(contenders, cases, repeats)
    with record_plugins() as used_default:
        decode_frames(frames[0][:1], "")
    with record_plugins() as used_by_modic, record_modic_decoder() as modic_said:
        load_volume(cases[0].t1)
    used_by_modic.update(modic_said)
    return {
        "available": plugins,
        "pydicom_default": sorted(used_default),
        "used_by_modic": sorted(used_by_modic),
        "errors": errors,
        "times": times,
    }


# --------------------------------------------------------------------------------------
# correctness
# --------------------------------------------------------------------------------------
def check_against_sitk(cases: Sequence[Case]) -> float:
    """Assert that modic's T1 and T2 arrays equal SimpleITK's; return the largest difference.

    SimpleITK's array is ``(z, y, x)``, i.e. ``(slice, row, col)`` like modic's, with
    the slices in its own order: slices are matched by the patient position of their
    first pixel. Both apply RescaleSlope / RescaleIntercept.
    """
    from modic import load_volume

    worst = 0.0
    for case in cases:
        for series, folder, sid in ((case.t1, case.t1_dir, case.t1_sitk_id),
                                    (case.t2, case.t2_dir, case.t2_sitk_id)):
            import SimpleITK as sitk

            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, sid))
            image = reader.Execute()
            theirs = sitk.GetArrayFromImage(image).astype(np.float64)
            ours = load_volume(series).array.astype(np.float64)
            assert theirs.shape == ours.shape, (series.label(), theirs.shape, ours.shape)
            their_pos = np.array([image.TransformIndexToPhysicalPoint((0, 0, k))
                                  for k in range(theirs.shape[0])])
            for i, frame in enumerate(series.frames):
                d = np.linalg.norm(their_pos - np.asarray(frame.position), axis=1)
                k = int(np.argmin(d))
                assert d[k] < 0.01, f"{series.label()} slice {i}: no SimpleITK slice at {frame.position}"
                diff = float(np.max(np.abs(ours[i] - theirs[k])))
                scale = max(1.0, float(np.max(np.abs(theirs[k]))))
                assert diff <= 1e-5 * scale, f"{series.label()} slice {i}: differs by {diff}"
                worst = max(worst, diff)
    return worst


# --------------------------------------------------------------------------------------
# start-up
# --------------------------------------------------------------------------------------
def time_startup(runs: int) -> dict[str, dict[str, float]]:
    commands = {"python -c pass (floor)": [sys.executable, "-c", "pass"],
                "python -m modic --help": [sys.executable, "-m", "modic", "--help"]}
    script = Path(sys.executable).parent / "modic"
    if script.exists():
        commands["modic --help (console script)"] = [str(script), "--help"]
    seconds: dict[str, list[float]] = {k: [] for k in commands}
    for rnd in range(runs + 1):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if rnd:
                seconds[name].append(time.perf_counter() - t0)
    return {k: {"min_s": min(v), "median_s": statistics.median(v)} for k, v in seconds.items()}


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
def _verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else f"MISS (by {ratio / target:.2f}x)"


def report_variant(variant: Variant, cases: Sequence[Case], times: dict[str, Any],
                   plugins: dict[str, Any] | None, worst: float) -> dict[str, Any]:
    c0 = cases[0]
    print(f"\n=== {variant.name}: {variant.label} ({variant.uid}) ===")
    print(f"{len(cases)} studies x {c0.n_series} series ({len(c0.series_shapes)} stacks: the "
          f"localizer has 3 planes); per study "
          f"{len(c0.all_files)} files, {c0.n_bytes / 1e6:.1f} MB; T1+T2 "
          f"{len(c0.t1_t2_files)} files, {c0.n_bytes_t1_t2 / 1e6:.1f} MB")
    print("series (slices x rows x cols): " + ", ".join(
        f"{plane} {role} {n}x{r}x{c}" for role, plane, (n, r, c) in c0.series_shapes))
    print(f"\n{'ms per study':<24}{'best':>10}{'median':>10}{'CPU median':>12}")
    for name, t in times.items():
        print(f"{name:<24}{t['best_ms']:>10.1f}{t['median_ms']:>10.1f}{t['cpu_median_ms']:>12.1f}")

    def med(name: str) -> float:
        return float(times[name]["median_ms"])

    def best(name: str) -> float:
        return float(times[name]["best_ms"])

    def cpu(name: str) -> float:
        return float(times[name]["cpu_median_ms"])

    def ratio(ours: str, theirs: str, floor: str) -> dict[str, float]:
        return {"vs_sitk_median": med(ours) / med(theirs), "vs_sitk_best": best(ours) / best(theirs),
                "vs_sitk_cpu_median": cpu(ours) / cpu(theirs), "vs_floor_median": med(ours) / med(floor)}

    ratios = {
        "load": ratio("modic load T1+T2", "SimpleITK load T1+T2", "floor T1+T2 files"),
        "end_to_end": ratio("modic end-to-end", "SimpleITK end-to-end", "floor all files"),
        "index": ratio("modic index", "SimpleITK index", "floor all files"),
    }
    print(f"\n{'ratio':<14}{'modic/SimpleITK (median; best; CPU)':>37}{'modic/floor':>13}  target (median)")
    for key, label, target in (("load", "load T1+T2", variant.target),
                               ("end_to_end", "end-to-end", None),
                               ("index", "index", None)):
        r = ratios[key]
        sitk_col = f"{r['vs_sitk_median']:.2f}x; {r['vs_sitk_best']:.2f}x; {r['vs_sitk_cpu_median']:.2f}x"
        goal = (f"<= {target:.1f}x  {_verdict(r['vs_sitk_median'], target)}"
                if target is not None else "-")
        print(f"{label:<14}{sitk_col:>37}{r['vs_floor_median']:>12.1f}x  {goal}")
    print("(floor of the load: the T1+T2 files; of index and end-to-end: all files of the study)")
    sitk_load = times["SimpleITK load T1+T2"]
    if sitk_load["cpu_median_ms"] > 1.1 * sitk_load["median_ms"]:
        print(f"SimpleITK used more than one core: {sitk_load['cpu_median_ms']:.0f} ms CPU in "
              f"{sitk_load['median_ms']:.0f} ms (GDCM decodes JPEG 2000 with OpenJPEG threads)")
    print(f"arrays agree: modic == SimpleITK for T1 and T2 of {len(cases)} studies "
          f"(slices matched by position; max abs difference {worst:g})")
    out: dict[str, Any] = {"label": variant.label, "transfer_syntax": variant.uid,
                           "target_load_ratio": variant.target, "times": times,
                           "ratios": ratios,
                           "load_verdict": _verdict(ratios["load"]["vs_sitk_median"], variant.target),
                           "series": [[r, p, list(s)] for r, p, s in c0.series_shapes]}
    if plugins is not None:
        print(f"\ndecoding plugins available: {', '.join(plugins['available'])}; pydicom's default "
              f"order uses {', '.join(plugins['pydicom_default'])}; modic used "
              f"{', '.join(plugins['used_by_modic'])}")
        print(f"{'decode T1+T2 frames, ms/study':<32}{'best':>10}{'median':>10}{'CPU median':>12}")
        for name, t in plugins["times"].items():
            print(f"  {name:<30}{t['best_ms']:>10.1f}{t['median_ms']:>10.1f}{t['cpu_median_ms']:>12.1f}")
        for name, err in plugins["errors"].items():
            print(f"  {name:<30}  not usable: {err}")
        out["plugins"] = plugins
    return out


def _versions() -> dict[str, str]:
    import pydicom
    import SimpleITK as sitk

    import modic

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "pydicom": pydicom.__version__, "SimpleITK": sitk.Version.VersionString(),
           "modic": modic.__version__}
    for dist in ("pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pyjpegls", "pillow",
                 "imagecodecs", "python-gdcm"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            out[dist] = version(dist)
    return out


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def _variants(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in VARIANTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown variant(s) {', '.join(bad) or text!r}; choose from {', '.join(VARIANTS)}")
    return names


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=_positive, default=3, help="studies per variant (3)")
    parser.add_argument("--repeats", type=_positive, default=5,
                        help="timed rounds after one warm-up round (5)")
    parser.add_argument("--variants", type=_variants, default=list(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)} (all)")
    parser.add_argument("--regenerate", action="store_true",
                        help=f"rewrite the cached studies under {DATA_DIR}")
    parser.add_argument("--startup-runs", type=_positive, default=STARTUP_RUNS,
                        help=f"runs of each start-up command ({STARTUP_RUNS})")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        print("this benchmark needs SimpleITK, which modic does not depend on: pip install SimpleITK",
              file=sys.stderr)
        return 2

    t_start = time.perf_counter()
    folders = ensure_data(args.variants, args.studies, args.regenerate)
    versions = _versions()
    print(f"modic load benchmark, {dt.datetime.now().isoformat(timespec='minutes')}; "
          f"{platform.platform()}, {os.cpu_count()} CPUs (timings are wall clock; the machine may be "
          "shared and noisy)")
    print(", ".join(f"{k} {v}" for k, v in versions.items()))
    vendors = ", ".join(VENDORS[s % 3] for s in range(1, args.studies + 1))
    print(f"{args.studies} studies per variant (vendors {vendors}), "
          f"{args.repeats} timed rounds after 1 warm-up round, contenders interleaved, page cache warm; "
          "times are per study")
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "versions": versions, "studies": args.studies,
        "repeats": args.repeats, "variants": {}}
    for name in folders:
        variant = VARIANTS[name]
        cases = [make_case(f) for f in folders[name]]
        worst = check_against_sitk(cases)
        times = time_interleaved(CONTENDERS, cases, args.repeats)
        plugins = time_plugins(variant, cases, args.repeats) if name != "uncompressed" else None
        results["variants"][name] = report_variant(variant, cases, times, plugins, worst)

    startup = time_startup(args.startup_runs)
    print(f"\n=== start-up: {args.startup_runs} runs each (target: modic --help < {STARTUP_LIMIT_S} s) ===")
    print(f"{'command':<34}{'min s':>8}{'median s':>10}")
    for name, t in startup.items():
        verdict = "" if "floor" in name else (
            "  PASS" if t["median_s"] < STARTUP_LIMIT_S else "  MISS")
        print(f"{name:<34}{t['min_s']:>8.3f}{t['median_s']:>10.3f}{verdict}")
    results["startup"] = startup
    if "jpeg-lossless" not in folders:
        print("\n(jpeg-lossless not measured; it is written with SimpleITK's GDCM, as pydicom cannot "
              "encode it)")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
