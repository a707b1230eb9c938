"""Read the pixel data of a series into a volume with its patient-space geometry.

Uncompressed little- or big-endian pixel data is read straight from the byte offset
noted by the scan (no second header parse), which is as fast as reading the bytes can
be; compressed transfer syntaxes are decoded by pydicom's decoders, with the plugins of
the ``jpeg`` / ``gpl-license`` extras.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
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
    n, rows, cols = series.geometry.shape
    out = np.empty((n, rows, cols), dtype=np.float32)
    for i, frame in enumerate(series.frames):
        raw = _read_frame(frame)
        if raw.shape != (rows, cols):
            raise DicomFileError(
                str(frame.path), f"decoded frame has shape {raw.shape}, expected {(rows, cols)}"
            )
        if frame.rescale_slope == 1.0 and frame.rescale_intercept == 0.0:
            out[i] = raw
        else:
            np.multiply(raw, frame.rescale_slope, out=out[i], casting="unsafe")
            out[i] += np.float32(frame.rescale_intercept)
    logger.debug("loaded series %s: %s", series.label(), out.shape)
    return Volume(array=out, geometry=series.geometry, series=series, warnings=list(series.warnings))


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
        # The fastest installed plugin first, as measured by benchmarks/bench_load.py:
        # pyjpegls decodes JPEG-LS ~4x faster than pylibjpeg (libjpeg), gdcm decodes JPEG
        # Lossless ~1.6x faster than pylibjpeg but JPEG 2000 ~1.15x slower than it. Other
        # syntaxes, or none of these installed: pydicom's own order.
        preferred = {
            "1.2.840.10008.1.2.4.57": ("gdcm", "pylibjpeg"),  # JPEG Lossless (Process 14)
            "1.2.840.10008.1.2.4.70": ("gdcm", "pylibjpeg"),  # JPEG Lossless SV1
            "1.2.840.10008.1.2.4.80": ("pyjpegls", "gdcm", "pylibjpeg"),  # JPEG-LS Lossless
            "1.2.840.10008.1.2.4.81": ("pyjpegls", "gdcm", "pylibjpeg"),  # JPEG-LS Near-Lossless
            "1.2.840.10008.1.2.4.90": ("pylibjpeg", "pillow", "gdcm"),  # JPEG 2000 Lossless
            "1.2.840.10008.1.2.4.91": ("pylibjpeg", "pillow", "gdcm"),  # JPEG 2000
        }.get(str(ts), ())
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
