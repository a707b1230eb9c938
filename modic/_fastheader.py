"""A small header parser for the common case, for the scan (:mod:`modic.dicomfolder`).

It reads a file with a DICM preamble and file meta, in implicit or explicit VR little
endian (every uncompressed and compressed transfer syntax but big endian and deflate),
walks the top-level elements up to Pixel Data with defined lengths, and converts the
values of the elements the scan reads (:data:`modic.dicomfolder.SCAN_KEYWORDS`) with
pydicom's own value conversion (:func:`pydicom.values.convert_value`), so that the values
are those of ``pydicom.dcmread``. Anything else raises :class:`Unusual`, and the scan
hands the file to pydicom: no preamble, big endian, deflate, an unknown transfer syntax,
an undefined length (a sequence or encapsulated data before Pixel Data), an element
beyond the end of the buffer, an unknown or ambiguous VR (or UN), an implicit-VR file
whose data set looks explicit (pydicom switches then), the Enhanced MR functional groups,
a DICOMDIR, or a value pydicom's conversion refuses.

``tests/test_header_scan.py`` checks that the scan gives the same frames, values,
sequence evidence and skip reasons with this parser as with pydicom's full parse.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.uid import UID
from pydicom.valuerep import IS, DSfloat
from pydicom.values import convert_value

__all__ = ["FastHeader", "Unusual", "parse"]

_UNPACK_TAG = struct.Struct("<HH").unpack_from
_UNPACK_U16 = struct.Struct("<H").unpack_from
_UNPACK_U32 = struct.Struct("<I").unpack_from

#: VRs whose explicit-VR header has a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_KNOWN_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS",
     "ST", "TM", "UI", "UL", "US"} | _LONG_VRS
)  # fmt: skip
_IMPLICIT_LE = "1.2.840.10008.1.2"
_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
_CHARSET = 0x00080005
#: Sequences the scan reads: their files go to pydicom.
_SEQUENCES = frozenset(
    int(tag_for_keyword(k) or 0)
    for k in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "DirectoryRecordSequence")
)


class Unusual(Exception):
    """The file is not the common case this parser reads; pydicom reads it."""


class FileMeta:
    """The file meta elements the scan reads (``get`` and ``in``, as a pydicom Dataset)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get(self, keyword: str, default: Any = None) -> Any:
        return self._values.get(keyword, default)

    def __contains__(self, keyword: object) -> bool:
        return keyword in self._values


class FastHeader:
    """The converted values of the elements the scan reads, by keyword.

    Answers ``get(keyword, default)``, ``keyword in header`` and ``header.Keyword`` as a
    pydicom Dataset does for those elements; ``file_meta`` and ``original_encoding`` too.
    """

    def __init__(self, values: dict[str, Any], meta: dict[str, Any], implicit: bool) -> None:
        self._values = values
        self.file_meta = FileMeta(meta)
        self.original_encoding = (implicit, True)

    def get(self, keyword: str, default: Any = None) -> Any:
        return self._values.get(keyword, default)

    def __contains__(self, keyword: object) -> bool:
        return keyword in self._values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None


@functools.lru_cache(maxsize=8)
def _wanted(keywords: tuple[str, ...]) -> dict[int, str]:
    out = {}
    for k in keywords:
        tag = tag_for_keyword(k)
        if tag is not None:
            out[int(tag)] = k
    return out


#: Converted values already seen, by (tag, VR, raw bytes, implicit, character set): most
#: elements repeat from file to file of a series (descriptions, UIDs of the study and
#: series, timing, spacing). Only immutable results are kept (str, UID, int, float and
#: pydicom's DSfloat / IS); lists (MultiValue) and PersonName are converted each time, so
#: no file's value can change another's. Cleared when it reaches :data:`_CACHE_SIZE`.
_CACHE: dict[tuple[int, str, bytes, bool, Any], Any] = {}
_CACHE_SIZE = 1 << 16
_CACHEABLE = frozenset({str, int, float, UID, DSfloat, IS})


def _convert(tag: int, vr: str, raw: bytes, tell: int, implicit: bool, encoding: Any) -> Any:
    key = (tag, vr, raw, implicit, encoding if isinstance(encoding, str) else tuple(encoding or ()))
    try:
        return _CACHE[key]
    except KeyError:
        pass
    elem = RawDataElement(tag, vr, len(raw), raw, tell, implicit, True, True, False)  # type: ignore[arg-type]
    try:
        value = convert_value(vr, elem, encoding)
    except Exception as exc:  # pydicom's own path decides what a bad value becomes
        raise Unusual(f"value of {tag:08X} not converted: {exc}") from None
    if type(value) in _CACHEABLE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = value
    return value


def parse(buf: bytes, keywords: Iterable[str]) -> tuple[FastHeader, int]:
    """Parse the header in ``buf`` (the start of a file, up to past Pixel Data's header).

    Parameters
    ----------
    buf : bytes
        The file's first bytes: preamble, file meta, data set, the Pixel Data element's
        header (and any of its value).
    keywords : iterable of str
        The elements to convert (others are skipped).

    Returns
    -------
    header : FastHeader
    pixel_tell : int
        Offset of the Pixel Data element (or of Float / Double Float Pixel Data).

    Raises
    ------
    Unusual
        For anything but the common case (see the module docstring).
    """
    n = len(buf)
    if n < 144 or buf[128:132] != b"DICM":
        raise Unusual("no DICM preamble")
    pos = 132
    meta: dict[str, Any] = {}
    while pos + 8 <= n:
        group, elem = _UNPACK_TAG(buf, pos)
        if group != 0x0002:
            break
        vr = buf[pos + 4 : pos + 6].decode("latin-1")
        if vr not in _KNOWN_VRS or vr == "SQ":
            raise Unusual("file meta VR")
        if vr in _LONG_VRS:
            (length,) = _UNPACK_U32(buf, pos + 8)
            vpos = pos + 12
        else:
            (length,) = _UNPACK_U16(buf, pos + 6)
            vpos = pos + 8
        if length == 0xFFFFFFFF or vpos + length > n:
            raise Unusual("file meta length")
        tag = (group << 16) | elem
        if tag in (0x00020002, 0x00020010):
            meta[keyword_for_tag(tag)] = _convert(tag, vr, buf[vpos : vpos + length], vpos, False, None)
        pos = vpos + length
    ts = str(meta.get("TransferSyntaxUID", "") or "")
    if not ts:
        raise Unusual("no TransferSyntaxUID")
    uid = UID(ts)
    if not uid.is_transfer_syntax or not uid.is_little_endian or uid.is_deflated:
        raise Unusual(f"transfer syntax {ts}")
    implicit = uid.is_implicit_VR
    if pos + 8 > n:
        raise Unusual("no data set")
    looks_explicit = buf[pos + 4 : pos + 6].decode("latin-1") in _KNOWN_VRS
    if implicit == looks_explicit:  # pydicom follows the data, not the transfer syntax
        raise Unusual("VR encoding differs from the transfer syntax")

    wanted = _wanted(tuple(keywords))
    raws: dict[int, tuple[str, int, int]] = {}
    last = -1
    pixel_tell = -1
    while pos + 8 <= n:
        group, elem = _UNPACK_TAG(buf, pos)
        tag = (group << 16) | elem
        if tag in _PIXEL_TAGS:
            pixel_tell = pos
            break
        if tag <= last or group == 0xFFFE or group == 0x0002:
            raise Unusual("element order")
        last = tag
        if implicit:
            (length,) = _UNPACK_U32(buf, pos + 4)
            vpos = pos + 8
            vr = ""
        else:
            vr = buf[pos + 4 : pos + 6].decode("latin-1")
            if vr not in _KNOWN_VRS:
                raise Unusual("VR")
            if vr in _LONG_VRS:
                (length,) = _UNPACK_U32(buf, pos + 8)
                vpos = pos + 12
            else:
                (length,) = _UNPACK_U16(buf, pos + 6)
                vpos = pos + 8
        if length == 0xFFFFFFFF or vpos + length > n:
            raise Unusual("undefined length or beyond the buffer")
        if tag in wanted or tag == _CHARSET:
            if tag in _SEQUENCES:
                raise Unusual("a sequence the scan reads")
            raws[tag] = (vr, vpos, length)
        pos = vpos + length
    if pixel_tell < 0:
        raise Unusual("no Pixel Data in the buffer")

    encoding: Any = default_encoding
    values: dict[str, Any] = {}
    for tag in sorted(raws):
        vr, vpos, length = raws[tag]
        if not vr:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                raise Unusual("tag not in the dictionary") from None
        if vr not in _KNOWN_VRS or vr == "UN" or vr == "SQ":
            raise Unusual("VR")
        value = _convert(tag, vr, buf[vpos : vpos + length], vpos, implicit, encoding)
        if tag == _CHARSET:
            if value:
                encoding = convert_encodings(value)
            continue
        values[wanted[tag]] = value
    return FastHeader(values, meta, implicit), pixel_tell
