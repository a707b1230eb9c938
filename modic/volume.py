"""Read the pixel data of a series into a volume with its patient-space geometry.

Uncompressed little- or big-endian pixel data is read straight from the byte offset
noted by the scan (no second header parse), which is as fast as reading the bytes can
be. Compressed frames in JPEG 2000 (HTJ2K too), JPEG-LS and JPEG (baseline, extended,
lossless) are decoded by imagecodecs when it is installed (the ``jpeg`` extra): each
file is read once, its codestreams are split out with :mod:`pydicom.encaps` and the
frames are decoded in a thread pool (imagecodecs releases the GIL), then given the
signedness pydicom gives them. Any other syntax, or any trouble on that path, and the
series is decoded frame by frame by pydicom's decoders, with the plugins of the ``jpeg``
/ ``gpl-license`` extras.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.uid import UID

from .errors import DicomFileError, GeometryError, MissingDependencyError
from .geometry import SliceGeometry
from .series import Frame, PixelEncoding, Series

__all__ = ["Volume", "load_volume", "decoder_status"]

logger = logging.getLogger(__name__)

# Which extra brings a decoder for each compressed transfer syntax (pydicom 3 plugins).
_JPEG_GPL = ("gpl-license", "pylibjpeg-libjpeg")
_JPEG2K = ("jpeg", "pylibjpeg-openjpeg")
_JPEGLS = ("jpeg", "pyjpegls")
_EXTRA_FOR: dict[str, tuple[str, str]] = {
    "1.2.840.10008.1.2.4.50": _JPEG_GPL,  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": _JPEG_GPL,  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": _JPEG_GPL,  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70": _JPEG_GPL,  # JPEG Lossless, First-Order Prediction (SV1)
    "1.2.840.10008.1.2.4.80": _JPEGLS,  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _JPEGLS,  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _JPEG2K,  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": _JPEG2K,  # JPEG 2000
    "1.2.840.10008.1.2.4.201": _JPEG2K,  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": _JPEG2K,  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _JPEG2K,  # HTJ2K
    "1.2.840.10008.1.2.5": ("jpeg", "pylibjpeg-rle"),  # RLE Lossless (pydicom decodes it natively too)
}

# The imagecodecs function that decodes each transfer syntax, and the family whose rules
# (pydicom's) turn its output into DICOM stored values (see _stored_values).
_J2K, _JLS, _JPEG = "JPEG 2000", "JPEG-LS", "JPEG"
_IMAGECODECS_DECODER: dict[str, tuple[str, str]] = {
    # libjpeg-turbo 3: 8/12-bit lossy and 2-16-bit lossless; bit-exact with GDCM's IJG
    # libjpeg on 12-bit extended frames (pylibjpeg-libjpeg differs from both by +-1).
    "1.2.840.10008.1.2.4.50": ("jpeg8_decode", _JPEG),  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": ("jpeg8_decode", _JPEG),  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": ("jpeg8_decode", _JPEG),  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": ("jpeg8_decode", _JPEG),  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": ("jpegls_decode", _JLS),  # JPEG-LS Lossless (CharLS)
    "1.2.840.10008.1.2.4.81": ("jpegls_decode", _JLS),  # JPEG-LS Near-Lossless
    # OpenJPEG, as pylibjpeg-openjpeg; it decodes HTJ2K and Part 1 codestreams alike
    "1.2.840.10008.1.2.4.90": ("jpeg2k_decode", _J2K),  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": ("jpeg2k_decode", _J2K),  # JPEG 2000
    "1.2.840.10008.1.2.4.201": ("jpeg2k_decode", _J2K),  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": ("jpeg2k_decode", _J2K),  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": ("jpeg2k_decode", _J2K),  # HTJ2K
}
# JPEG SOFn markers (not DHT C4, JPG C8, DAC CC) and JPEG-LS SOF55 (F7): where the precision is.
_SOF_MARKERS = frozenset([0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7])


@dataclass
class Volume:
    """The pixel data of one series, with where each voxel lies in the patient.

    Attributes
    ----------
    array : (n_slices, rows, columns) ndarray of float32
        Real values (after RescaleSlope / RescaleIntercept), slices ordered along the
        slice normal.
    geometry : SliceGeometry
        Voxel <-> patient (LPS mm) mapping; see :mod:`modic.geometry` for conventions.
    series : Series
        The header information of the series.
    warnings : list of str
        What the reader should know about the series (gaps, duplicates...).
    """

    array: NDArray[np.float32]
    geometry: SliceGeometry
    series: Series
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.array.shape != self.geometry.shape:
            raise GeometryError(
                f"series {self.series.label()}: array shape {self.array.shape} does not match "
                f"geometry {self.geometry.shape}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_slices, rows, columns)``."""
        return self.geometry.shape

    @property
    def affine(self) -> NDArray[np.float64]:
        """(4, 4) affine from ``(slice, row, col, 1)`` to LPS mm (regular-grid approximation)."""
        return self.geometry.affine

    @property
    def spacing(self) -> tuple[float, float, float]:
        """``(slice, row, column)`` spacing in mm."""
        ps = self.geometry.pixel_spacing
        return (self.geometry.slice_spacing, ps[0], ps[1])

    def index_to_patient(self, index: ArrayLike) -> NDArray[np.float64]:
        """LPS mm of ``(slice, row, col)`` indices; see :meth:`SliceGeometry.index_to_patient`."""
        return self.geometry.index_to_patient(index)

    def patient_to_index(self, points: ArrayLike) -> NDArray[np.float64]:
        """Continuous ``(slice, row, col)`` of LPS points; see :meth:`SliceGeometry.patient_to_index`."""
        return self.geometry.patient_to_index(points)

    def window(self, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
        """A display window from percentiles of the volume (MR has no standard units)."""
        lo, hi = np.percentile(self.array, [low, high])
        return float(lo), float(hi)

    def __repr__(self) -> str:
        n, r, c = self.shape
        s = self.spacing
        return (
            f"<Volume {self.series.label()!r} {self.series.role.value} {n}x{r}x{c} "
            f"spacing {s[0]:.2f}x{s[1]:.2f}x{s[2]:.2f} mm>"
        )


def decoder_status(transfer_syntax: str) -> str | None:
    """None if pixel data in this transfer syntax can be decoded here, else what to install.

    Parameters
    ----------
    transfer_syntax : str
        Transfer Syntax UID.

    Returns
    -------
    str or None
        An install hint such as ``'pip install "modic[jpeg]"'`` when no decoder plugin
        is available.
    """
    ts = UID(transfer_syntax)
    if not ts.is_encapsulated:
        return None
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError):
        return f"no decoder exists for transfer syntax {ts.name} ({ts})"
    if decoder.is_available:
        return None
    extra, package = _EXTRA_FOR.get(str(ts), ("jpeg", "pylibjpeg"))
    return (
        f"pixel data is compressed with {ts.name}, and no decoder is installed: "
        f'pip install "modic[{extra}]" (brings {package})'
    )


def load_volume(series: Series) -> Volume:
    """Read the pixel data of a series into a :class:`Volume`.

    Parameters
    ----------
    series : Series
        A series found by :func:`modic.scan`.

    Returns
    -------
    Volume

    Raises
    ------
    GeometryError
        If the series has inconsistent geometry (see ``series.problems``).
    MissingDependencyError
        If the pixel data is compressed and the decoder plugin is not installed; the
        message names the extra to install.
    DicomFileError
        If a file cannot be read or decoded (moved, truncated, corrupt).
    """
    if series.geometry is None or series.problems:
        raise GeometryError(f"series {series.label()} cannot be loaded: {'; '.join(series.problems)}")
    for ts in {f.encoding.transfer_syntax for f in series.frames}:
        hint = decoder_status(ts)
        if hint is not None:
            extra = _EXTRA_FOR.get(ts, ("jpeg", ""))[0]
            path = next(f.path for f in series.frames if f.encoding.transfer_syntax == ts)
            raise MissingDependencyError(f"series {series.label()} ({path}): {hint}", extra=extra)
    out = np.empty(series.geometry.shape, dtype=np.float32)

    def store(i: int, raw: NDArray[np.generic]) -> None:
        _store(out, i, series.frames[i], raw)

    if not _load_with_imagecodecs(series, store):
        for i, frame in enumerate(series.frames):
            store(i, _read_frame(frame))
    logger.debug("loaded series %s: %s", series.label(), out.shape)
    return Volume(array=out, geometry=series.geometry, series=series, warnings=list(series.warnings))


def _store(out: NDArray[np.float32], i: int, frame: Frame, raw: NDArray[np.generic]) -> None:
    """Put a frame's stored values, rescaled to real values, in slice ``i`` of ``out``."""
    if raw.shape != out.shape[1:]:
        expected = out.shape[1:]
        raise DicomFileError(str(frame.path), f"decoded frame has shape {raw.shape}, expected {expected}")
    if frame.rescale_slope == 1.0 and frame.rescale_intercept == 0.0:
        out[i] = raw
    else:
        np.multiply(raw, frame.rescale_slope, out=out[i], casting="unsafe")
        out[i] += np.float32(frame.rescale_intercept)


# --------------------------------------------------------------------------------------
# compressed frames through imagecodecs, in threads
# --------------------------------------------------------------------------------------
class _NotForImagecodecs(Exception):
    """The series is not one the imagecodecs path takes (the message says why)."""


@functools.cache
def _imagecodecs() -> ModuleType | None:
    """The imagecodecs module, or None when it cannot be imported."""
    try:
        import imagecodecs
    except Exception as exc:  # not installed, or a build that does not load: pydicom decodes
        logger.debug("imagecodecs cannot be imported (%s: %s)", type(exc).__name__, exc)
        return None
    return imagecodecs


def _cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _load_with_imagecodecs(series: Series, store: Callable[[int, NDArray[np.generic]], None]) -> bool:
    """Decode a compressed series with imagecodecs; False (logged) when pydicom must do it."""
    if not any(UID(f.encoding.transfer_syntax).is_encapsulated for f in series.frames):
        return False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                how = _decode_with_imagecodecs(series.frames, store)
            finally:
                for w in caught:
                    logger.info("series %s: %s", series.label(), w.message)
    except _NotForImagecodecs as exc:
        logger.debug("series %s: %s; decoding with pydicom", series.label(), exc)
        return False
    except Exception as exc:  # anything at all: pydicom decodes the series, or says what is wrong
        logger.debug(
            "series %s: imagecodecs path failed (%s: %s); decoding with pydicom",
            series.label(),
            type(exc).__name__,
            exc,
        )
        return False
    logger.debug("series %s: %d frames decoded by %s", series.label(), len(series.frames), how)
    return True


def _decode_with_imagecodecs(
    frames: Sequence[Frame],
    sink: Callable[[int, NDArray[np.generic]], None],
    threads: int | None = None,
) -> str:
    """Decode compressed frames with imagecodecs, in a thread pool.

    Parameters
    ----------
    frames : sequence of Frame
        Frames in one transfer syntax that imagecodecs decodes; each file is read once.
    sink : callable
        ``sink(i, stored)`` is called, from the worker threads, with the ``(rows, columns)``
        stored values of ``frames[i]``, as pydicom's ``pixel_array`` gives them (integer
        dtype of the Pixel Representation, sign corrected as pydicom does).
    threads : int, optional
        Worker threads (default: the CPUs this process may use), never more than frames;
        with 1, or a single frame, the calling thread decodes.

    Returns
    -------
    str
        What decoded the frames, e.g. ``"imagecodecs.jpeg2k_decode, 2 threads"``.

    Raises
    ------
    _NotForImagecodecs
        If imagecodecs is not installed or does not take these frames.
    Exception
        Whatever reading the files or decoding raises, or ValueError if a decoded frame
        is not what the header describes.
    """
    codecs = _imagecodecs()
    if codecs is None:
        raise _NotForImagecodecs("imagecodecs is not installed")
    syntaxes = {f.encoding.transfer_syntax for f in frames}
    if len(syntaxes) != 1:
        raise _NotForImagecodecs(f"frames in {len(syntaxes)} transfer syntaxes")
    ts = UID(syntaxes.pop())
    if str(ts) not in _IMAGECODECS_DECODER:
        raise _NotForImagecodecs(f"{ts.name} is not decoded by imagecodecs here")
    name, family = _IMAGECODECS_DECODER[str(ts)]
    if family == _JPEG and not getattr(getattr(codecs, "JPEG8", None), "all_precisions", False):
        raise _NotForImagecodecs("imagecodecs' libjpeg-turbo decodes neither 12-bit nor lossless JPEG")
    for f in frames:
        enc = f.encoding
        if enc.offset is None or enc.samples_per_pixel != 1:
            raise _NotForImagecodecs(f"{f.name}: no pixel data offset, or not one sample per pixel")
        if enc.photometric_interpretation not in ("MONOCHROME1", "MONOCHROME2"):
            raise _NotForImagecodecs(f"{f.name}: photometric interpretation {enc.photometric_interpretation}")
    decode: Callable[[bytes], NDArray[Any]] = getattr(codecs, name)

    def decode_frame(i: int, stream: bytes) -> None:
        sink(i, _stored_values(decode(stream), stream, frames[i], family))

    def decode_file(indices: list[int]) -> None:
        for i, stream in zip(indices, _codestreams([frames[i] for i in indices]), strict=True):
            decode_frame(i, stream)

    # A single-frame file is read and decoded by one task, so that reading overlaps
    # decoding; a multi-frame (Enhanced) file is read once, here, and its frames decoded
    # by as many tasks.
    tasks: list[Callable[[], None]] = []
    by_file: dict[Any, list[int]] = {}
    for i, f in enumerate(frames):
        by_file.setdefault(f.path, []).append(i)
    for indices in by_file.values():
        if frames[indices[0]].encoding.number_of_frames == 1:
            tasks.append(functools.partial(decode_file, indices))
        else:
            streams = _codestreams([frames[i] for i in indices])
            tasks.extend(functools.partial(decode_frame, i, s) for i, s in zip(indices, streams, strict=True))

    n_threads = max(1, min(threads or _cpu_count(), len(tasks)))
    if n_threads == 1:
        for task in tasks:
            task()
    else:
        with ThreadPoolExecutor(n_threads, thread_name_prefix="modic-decode") as pool:
            futures = [pool.submit(task) for task in tasks]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return f"imagecodecs.{name}, {n_threads} thread{'s' if n_threads > 1 else ''}"


def _codestreams(frames: Sequence[Frame]) -> list[bytes]:
    """The codestream of each of some frames of one file, read once.

    Frames are split out as pydicom does (:func:`pydicom.encaps.generate_frames`): by the
    Basic Offset Table when it has entries, else one fragment per frame when the counts
    match (always so with an Extended Offset Table, which allows one fragment per frame,
    PS3.3 C.7.6.3.1.8), else all fragments for a single frame, else at the JPEG EOI / J2K
    EOC marker ending each frame's last fragment.
    """
    from pydicom.encaps import generate_frames

    path, enc = frames[0].path, frames[0].encoding
    with open(path, "rb") as fp:
        fp.seek(enc.offset or 0)
        value = fp.read()
    found = list(generate_frames(value, number_of_frames=enc.number_of_frames))
    if len(found) != enc.number_of_frames:
        n = enc.number_of_frames
        raise ValueError(f"{path}: {len(found)} frames in the pixel data, NumberOfFrames {n}")
    return [found[f.frame_index] for f in frames]


def _stored_values(arr: NDArray[Any], stream: bytes, frame: Frame, family: str) -> NDArray[np.generic]:
    """imagecodecs' output as the stored values pydicom gives (its DecodeRunner's rules).

    - JPEG 2000: the container is the decoded one (sized by the codestream's precision, as
      pylibjpeg-openjpeg's); when the codestream's signedness differs from the Pixel
      Representation (``J2K_pixelrep_mismatch``), the precision's bits are reinterpreted:
      sign-extended, or the sign bits cleared (pydicom's ``apply_j2k_sign_correction``).
    - JPEG-LS codes no sign: with Pixel Representation 1 the precision's bits are
      sign-extended (``apply_jls_sign_correction``).
    - JPEG: the container is Bits Allocated; the bits above Bits Stored are replaced by
      the sign (or cleared) (``correct_unused_bits``).
    """
    enc = frame.encoding
    expected = (frame.rows, frame.columns)
    if arr.shape != expected:
        raise ValueError(f"{frame.name}: decoded frame has shape {arr.shape}, expected {expected}")
    if arr.dtype.kind not in "iu" or arr.dtype.itemsize not in (1, 2, 4):
        raise ValueError(f"{frame.name}: decoded to {arr.dtype}")
    bits = 8 * arr.dtype.itemsize
    signed = enc.pixel_representation == 1
    shift = 0
    if family == _J2K:
        from pydicom.pixels.utils import get_j2k_parameters

        info = get_j2k_parameters(stream)
        coded_signed = bool(info.get("is_signed", signed))
        precision = int(info.get("precision", enc.bits_stored))
        if coded_signed != (arr.dtype.kind == "i"):
            raise ValueError(f"{frame.name}: decoded to {arr.dtype}; codestream signed={coded_signed}")
        if coded_signed != signed:
            shift = bits - precision
    elif family == _JLS:
        if signed:
            jls_precision = _jpeg_precision(stream)
            if jls_precision is None:
                raise ValueError(f"{frame.name}: no JPEG-LS frame header (SOF55) found")
            shift = bits - jls_precision
    else:
        if bits != enc.bits_allocated:
            raise ValueError(f"{frame.name}: decoded to {arr.dtype}, BitsAllocated is {enc.bits_allocated}")
        shift = enc.bits_allocated - enc.bits_stored
    if not 0 <= shift < bits:
        raise ValueError(f"{frame.name}: cannot fit the codestream's precision in {arr.dtype}")
    stored: NDArray[np.generic] = arr.view(np.dtype(f"{'i' if signed else 'u'}{arr.dtype.itemsize}"))
    if shift:
        np.left_shift(stored, shift, out=stored)
        np.right_shift(stored, shift, out=stored)
    return stored


def _jpeg_precision(stream: bytes) -> int | None:
    """Sample precision in the frame header of a JPEG or JPEG-LS codestream; None if not found."""
    if stream[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 5 <= len(stream):
        if stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF_MARKERS:
            return stream[pos + 4]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + int.from_bytes(stream[pos + 2 : pos + 4], "big")
    return None


def _native_dtype(enc: PixelEncoding, little: bool) -> np.dtype[np.generic]:
    kind = "i" if enc.pixel_representation == 1 else "u"
    return np.dtype(f"{'<' if little else '>'}{kind}{enc.bits_allocated // 8}")


def _read_frame(frame: Frame) -> NDArray[np.generic]:
    """One frame's stored values; pydicom's warnings are logged with the file, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read_frame_unguarded(frame)
        finally:
            for w in caught:
                logger.info("%s: %s", frame.path, w.message)


def _read_frame_unguarded(frame: Frame) -> NDArray[np.generic]:
    enc = frame.encoding
    ts = UID(enc.transfer_syntax)
    try:
        if not ts.is_encapsulated and not ts.is_deflated and enc.offset is not None:
            dtype = _native_dtype(enc, ts.is_little_endian)
            count = frame.rows * frame.columns
            offset = enc.offset + frame.frame_index * count * dtype.itemsize
            arr = np.fromfile(frame.path, dtype=dtype, count=count, offset=offset)
            if arr.size != count:
                raise DicomFileError(
                    str(frame.path), f"truncated file: frame {frame.frame_index + 1} is incomplete"
                )
            arr = arr.reshape(frame.rows, frame.columns)
            if enc.pixel_representation == 1 and enc.bits_stored < enc.bits_allocated:
                shift = enc.bits_allocated - enc.bits_stored
                arr = (arr << shift) >> shift  # sign-extend the stored bits
            return arr
        return _decode(frame, ts)
    except OSError as exc:
        raise DicomFileError(str(frame.path), f"cannot read pixel data: {exc.strerror or exc}") from None


#: The fastest installed pydicom plugin first, per transfer syntax, as measured by
#: benchmarks/bench_load.py (used when imagecodecs is not installed or falls back):
#: pyjpegls decodes JPEG-LS ~4x faster than pylibjpeg (libjpeg); gdcm decodes JPEG Lossless
#: ~1.7x faster than pylibjpeg but JPEG 2000 ~1.15x slower. Others: pydicom's own order.
_PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.4.57": ("gdcm", "pylibjpeg"),  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": ("gdcm", "pylibjpeg"),  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": ("pyjpegls", "gdcm", "pylibjpeg"),  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": ("pyjpegls", "gdcm", "pylibjpeg"),  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": ("pylibjpeg", "pillow", "gdcm"),  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": ("pylibjpeg", "pillow", "gdcm"),  # JPEG 2000
}


def _decode(frame: Frame, ts: UID) -> NDArray[np.generic]:
    """Decode one compressed (or deflated) frame with pydicom's decoders."""
    from pydicom.pixels import get_decoder, pixel_array

    enc = frame.encoding
    try:
        if ts.is_deflated or enc.offset is None:
            arr: NDArray[np.generic] = pixel_array(str(frame.path), index=frame.frame_index)
            return arr
        options: dict[str, Any] = dict(
            rows=frame.rows,
            columns=frame.columns,
            samples_per_pixel=enc.samples_per_pixel,
            bits_allocated=enc.bits_allocated,
            bits_stored=enc.bits_stored,
            pixel_representation=enc.pixel_representation,
            photometric_interpretation=enc.photometric_interpretation,
            number_of_frames=enc.number_of_frames,
        )
        preferred = _PREFERRED_PLUGINS.get(str(ts), ())
        decoder = get_decoder(ts)
        available = decoder.available_plugins
        plugin = next((name for name in preferred if name in available), "")
        with open(frame.path, "rb") as fp:
            fp.seek(enc.offset)
            try:
                arr, _ = decoder.as_array(fp, index=frame.frame_index, decoding_plugin=plugin, **options)
            except OSError:
                raise
            except Exception as exc:
                if not plugin:
                    raise
                # a plugin may reject a stream another one decodes: try them all
                logger.debug("%s: plugin %s failed (%s); trying pydicom's order", frame.path, plugin, exc)
                fp.seek(enc.offset)
                arr, _ = decoder.as_array(fp, index=frame.frame_index, **options)
        return arr
    except OSError:
        raise
    except Exception as exc:  # decoders raise RuntimeError/ValueError on corrupt streams
        raise DicomFileError(
            str(frame.path), f"cannot decode {ts.name} pixel data ({type(exc).__name__}: {exc})"
        ) from None
