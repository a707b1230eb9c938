"""The columns of modic's result tables: name, type, unit, range and meaning.

One table per file (:data:`RESULT_COLUMNS` for ``results.csv``, :data:`LEVEL_COLUMNS` for
``levels.csv``, :data:`STUDY_COLUMNS` for ``studies.csv``), used three ways: to write the
CSV files so that a plain :func:`pandas.read_csv` gives every column the same dtype in every
cohort (:func:`csv_text`), to set the dtypes in :func:`modic.read_results`, and to write the
column tables of ``docs/results.md`` (``python -m modic.columns``). The JSON Schema of a
``results.jsonl`` record, of ``summary.json`` and of a results.csv row is :func:`schema_path`,
generated from these tables by :func:`results_schema` (``python -m modic.columns --schema``,
:data:`SCHEMA_COMMAND`): a new column is added here, and the schema written again.

How a CSV field is written (results format :data:`RESULTS_FORMAT`)
---------------------------------------------------------------------
- Text is never written empty: an empty text field holds ``-`` (:data:`NO_TEXT`).
  pandas reads an empty field as NaN, and a column that is empty in every row of a cohort
  (no warnings, no STIR) as float64; with ``-`` it is text in every cohort.
  :func:`modic.read_results` reads ``-`` back as ``""`` (free text) or missing (a category).
- Nothing that is text looks like a number: Modic types are written ``type 1`` ... ``type
  2/3`` and ``indeterminate`` (a bare ``1`` is read as int64 in a cohort without mixed
  types, as text in one with them), series as ``series 7.2``.
- Numbers: floats with a decimal point, empty when not measured (float64 in every
  cohort); integers without one.
- Booleans: ``True`` / ``False``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .annotations import VERTEBRAE

__all__ = [
    "RESULTS_FORMAT",
    "NO_TEXT",
    "DTYPES",
    "Column",
    "TYPE_LABELS",
    "LEVELS",
    "CALLS",
    "RESULT_COLUMNS",
    "IDENTIFIER_COLUMNS",
    "PROPOSE_COLUMNS",
    "LEVEL_COLUMNS",
    "STUDY_COLUMNS",
    "STUDY_LEVEL_COLUMNS",
    "columns_for",
    "csv_cell",
    "csv_text",
    "schema_path",
    "load_schema",
    "results_schema",
    "schema_text",
    "SCHEMA_COMMAND",
    "markdown_table",
]

#: Version of the results files (results.csv, results.jsonl, summary.json, levels.csv,
#: studies.csv). 1: modic 0.1 before issue 8 (bare type numbers, empty text fields);
#: 2: unambiguous text (``type 1``, ``series 7``, ``-``), extent columns, per-level and
#: per-study summaries.
RESULTS_FORMAT = 2
#: What an empty text field holds in a CSV file.
NO_TEXT = "-"
#: The column types: ``text`` (free text), ``category`` (one of ``values``), ``int``
#: (never empty), ``nullable int`` (empty when not measured), ``float`` (empty when not
#: measured), ``bool``.
DTYPES = ("text", "category", "int", "nullable int", "float", "bool")

#: How results files spell each Modic type (``ModicType.value`` -> label), in the order
#: tables list them.
TYPE_LABELS: dict[str, str] = {
    "0": "type 0",
    "1": "type 1",
    "2": "type 2",
    "3": "type 3",
    "1/2": "type 1/2",
    "2/3": "type 2/3",
    "indeterminate": "indeterminate",
}
#: Disc levels, head to foot (an endplate's level: L4 inferior and L5 superior are L4/L5).
LEVELS: tuple[str, ...] = tuple(f"{a}/{b}" for a, b in zip(("T10",) + VERTEBRAE[:-1], VERTEBRAE, strict=True))
#: Per-sequence signal calls.
CALLS: tuple[str, ...] = ("hypo", "iso", "hyper")
_TYPES = tuple(TYPE_LABELS.values())


@dataclass(frozen=True)
class Column:
    """One column of a result table.

    Attributes
    ----------
    name : str
    dtype : str
        One of :data:`DTYPES`.
    unit : str
        ``"mm"``, ``"ratio"``, ``"share"`` (0-1), ``"count"``, ``"index"``, or ``""``.
    range : str
        The values it takes, in words (``"0-1"``, ``"> 0"``, ``"hypo, iso, hyper"``).
    description : str
        Meaning and conventions (0- or 1-based, sign, what empty means).
    values : tuple of str, optional
        The categories, in order, for ``dtype="category"``.
    ordered : bool
        Whether the categories have a meaningful order (levels head to foot, grades).
    """

    name: str
    dtype: str
    unit: str
    range: str
    description: str
    values: tuple[str, ...] = ()
    ordered: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"Column {self.name}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if (self.dtype == "category") != bool(self.values):
            raise ValueError(f"Column {self.name}: a category column, and only one, lists its values")


def _c(
    name: str,
    dtype: str,
    unit: str,
    rng: str,
    description: str,
    values: Sequence[str] = (),
    ordered: bool = False,
) -> Column:
    return Column(name, dtype, unit, rng, description, tuple(values), ordered)


_SEQ_WORDS = {"t1": "T1", "t2": "T2", "stir": "STIR (or fat-suppressed T2)"}


def _sequence_columns(k: str) -> list[Column]:
    s = _SEQ_WORDS[k]
    unused = f"empty when no {s.split(' ')[0]} series was read"
    return [
        _c(
            f"{k}_sir",
            "float",
            "ratio",
            "> 0",
            f"Signal intensity ratio on {s}: median of the ROI / median of the reference ROI "
            f"(coil-corrected); {unused}.",
        ),
        _c(
            f"{k}_sir_low",
            "float",
            "ratio",
            "> 0",
            f"Lower end of the bootstrap 95 % interval of `{k}_sir` (includes the reference's "
            f"systematic uncertainty); {unused}.",
        ),
        _c(f"{k}_sir_high", "float", "ratio", "> 0", f"Upper end of that interval; {unused}."),
        _c(
            f"{k}_call",
            "category",
            "",
            "hypo, iso, hyper, -",
            f"The ROI's signal on {s} relative to the reference (outside 1 +/- the iso margin); "
            f"`-` when not read.",
            CALLS,
            True,
        ),
        _c(
            f"{k}_series",
            "text",
            "",
            "`series 7`, `series 7.2`, `series 3fa2b1`, -",
            f"The {s.split(' ')[0]} series measured: `series ` and its key (SeriesNumber, `.stack` "
            "when one series holds several stacks, or a 6-hex pseudonym when it has no "
            "SeriesNumber; `modic info` lists the keys, `--t1 KEY` chooses one); `-` when not read.",
        ),
        _c(
            f"{k}_slice",
            "nullable int",
            "index",
            ">= 0",
            "Slice of that series the ROI was measured on, **0-based** along the slice normal "
            "(not InstanceNumber; viewers and modic's warnings count from 1); empty when not read.",
        ),
        _c(
            f"{k}_distance_mm",
            "float",
            "mm",
            "about +/- half the slice spacing",
            "Signed distance from the ROI's centroid to that slice's plane, along the series' "
            "slice normal (row direction x column direction, LPS): positive when the ROI lies "
            "on the side of higher slice indices; empty when not read.",
        ),
    ]


RESULT_COLUMNS: tuple[Column, ...] = (
    _c(
        "study",
        "text",
        "",
        "10 hex digits",
        "Pseudonymous study key: the first 10 hex digits of the SHA-256 of the "
        "StudyInstanceUID (the same study always gets the same key; `summary.json` and "
        "`studies.csv` use it). About 1.6 % of keys are all digits or digits around one `e`: "
        'pass `dtype={"study": str}` to a plain `pandas.read_csv` of a one-study file.',
    ),
    _c(
        "roi_id",
        "text",
        "",
        "text",
        "Id of the endplate ROI in the annotation file (a uuid4 hex unless the file chose its own).",
    ),
    _c("vertebra", "category", "", "T11 ... S1", "Vertebra whose endplate the ROI marks.", VERTEBRAE, True),
    _c(
        "endplate",
        "category",
        "",
        "superior, inferior",
        "Which endplate of the vertebra: superior (towards the head) or inferior.",
        ("superior", "inferior"),
    ),
    _c(
        "level",
        "category",
        "",
        "T10/T11 ... L5/S1",
        "Disc level of the endplate: L4 inferior and L5 superior are both L4/L5; S1 has only "
        "a superior endplate (L5/S1).",
        LEVELS,
        True,
    ),
    _c(
        "modic_type",
        "category",
        "",
        "type 0 ... type 2/3, indeterminate",
        "Modic type of the endplate: `type 0` (no change), `type 1`, `type 2`, `type 3`, the mixed "
        "`type 1/2` and `type 2/3`, or `indeterminate` (the sequences contradict each other: "
        "`reason` says how; neither a change nor normal).",
        _TYPES,
    ),
    _c(
        "confidence",
        "float",
        "share",
        "0-1",
        "Calibrated probability that the type is right: the share of 200 bootstrap resamples of "
        "region and reference giving the same type, mapped through the calibration of "
        "docs/classifier.md.",
    ),
    *_sequence_columns("t1"),
    *_sequence_columns("t2"),
    *_sequence_columns("stir"),
    _c(
        "voxels",
        "int",
        "count",
        ">= 1",
        "Pixel centres sampled inside the ROI: the **largest** count over the sequences read (their "
        "pixel grids differ, so each samples a different number; per sequence in results.jsonl "
        "`series.<T1|T2|STIR>.voxels`).",
    ),
    _c(
        "reference_voxels",
        "int",
        "count",
        ">= 0",
        "Pixel centres of the reference ROI on T1 (0 when T1 gave no ratio).",
    ),
    _c(
        "fraction_0",
        "float",
        "share",
        "0-1",
        "Share of the ROI's voxels typed as normal marrow, voxel by voxel (the five fractions sum to 1).",
    ),
    _c("fraction_1", "float", "share", "0-1", "Share of voxels with the type-1 (oedema) pattern."),
    _c("fraction_2", "float", "share", "0-1", "Share of voxels with the type-2 (fat) pattern."),
    _c("fraction_3", "float", "share", "0-1", "Share of voxels with the type-3 (sclerosis) pattern."),
    _c(
        "fraction_unclassified",
        "float",
        "share",
        "0-1",
        "Share of voxels whose T1/T2/STIR signals fit no Modic pattern.",
    ),
    _c(
        "excluded_voxels",
        "int",
        "count",
        ">= 0",
        "Voxels left out as partial volume of the cortical endplate or the disc (not in `voxels`' "
        "fractions).",
    ),
    _c(
        "reference",
        "text",
        "",
        "e.g. `L4 reference`",
        "Label of the reference ROI the ratios are relative to.",
    ),
    _c(
        "reference_correction",
        "float",
        "ratio",
        "> 0",
        "Factor applied to the T1 reference level for the receive-coil gradient along the spine "
        "(1 = no correction).",
    ),
    _c(
        "t2_fat_ratio",
        "float",
        "ratio",
        "> 0",
        "The study's own fat signal / normal marrow signal on T2 (measured once per study); empty "
        "when not measured.",
    ),
    _c(
        "stir_fat_ratio",
        "float",
        "ratio",
        "> 0",
        "The same on STIR: well below 1 when fat is suppressed; empty without STIR.",
    ),
    _c(
        "fat_suppression",
        "category",
        "",
        "good, partial, poor, -",
        "How well STIR suppresses fat, from `stir_fat_ratio`: good < 0.6, partial 0.6-0.9, poor "
        ">= 0.9 (`modic.contrast.FAT_SUPPRESSION_LEVELS`); `-` without STIR.",
        ("good", "partial", "poor"),
        True,
    ),
    _c(
        "t1_snr",
        "float",
        "ratio",
        "> 0",
        "Signal-to-noise ratio of normal marrow on T1 (study-level); empty when not measured.",
    ),
    _c(
        "extent_height_mm",
        "float",
        "mm",
        ">= 0",
        "Greatest height the change reaches into the vertebral body, from the endplate along the "
        "body's head-foot axis; empty for type 0, indeterminate, or when not measurable.",
    ),
    _c(
        "body_height_mm",
        "float",
        "mm",
        "> 0",
        "Height of the vertebral body along the same axis (from a drawn body outline or estimated: "
        "`body_source`); empty when `extent_height_mm` is.",
    ),
    _c(
        "extent_height_fraction",
        "float",
        "share",
        "0-1",
        "`extent_height_mm / body_height_mm` (capped at 1); empty when not measured.",
    ),
    _c(
        "extent_grade",
        "category",
        "",
        "A, B, C, -",
        "Udby height grade (J Orthop Res 2022): A < 25 %, B 25-50 %, C > 50 % of the body height; "
        "`-` when not measured.",
        ("A", "B", "C"),
        True,
    ),
    _c(
        "extent_length_mm",
        "float",
        "mm",
        ">= 0",
        "Antero-posterior length of the endplate the change covers; empty when not measured.",
    ),
    _c(
        "endplate_length_mm",
        "float",
        "mm",
        "> 0",
        "Antero-posterior length of the endplate; empty when not measured.",
    ),
    _c(
        "extent_length_fraction",
        "float",
        "share",
        "0-1",
        "`extent_length_mm / endplate_length_mm` (capped at 1); empty when not measured.",
    ),
    _c(
        "extent_length_grade",
        "category",
        "",
        "small, medium, large, -",
        "Length grade over the endplate (Nordic Modic Consensus Group, Jensen 2007): small < 25 %, "
        "medium 25-50 %, large >= 50 %; `-` when not measured.",
        ("small", "medium", "large"),
        True,
    ),
    _c(
        "body_source",
        "category",
        "",
        "outline, estimated, -",
        "Where the body height came from: a drawn or imported body outline, or estimated from the "
        "image; `-` when not measured.",
        ("outline", "estimated"),
    ),
    _c(
        "extent_slice",
        "nullable int",
        "index",
        ">= 0",
        "Slice (**0-based**, of the series the ROI was drawn on) where the extent was measured; "
        "empty when not measured.",
    ),
    _c(
        "reason",
        "text",
        "",
        "text",
        "How the type was reached, or for `indeterminate` why it cannot be typed.",
    ),
    _c(
        "warnings",
        "text",
        "",
        "text, -",
        "Everything that may make the result less trustworthy, joined by ` | `; `-` when none "
        '(`modic.read_results` gives "").',
    ),
    _c(
        "explanation",
        "text",
        "",
        "text",
        "One line in plain words, e.g. `T1 0.64x, T2 1.17x and STIR 4.38x of L4 reference marrow: "
        "oedema pattern, Modic 1`.",
    ),
)

#: Columns that follow :data:`RESULT_COLUMNS` with ``include_identifiers`` (batch only).
IDENTIFIER_COLUMNS: tuple[Column, ...] = (
    _c("study_folder", "text", "", "path", "The study folder, relative to ROOT, `/`-separated."),
    _c("study_instance_uid", "text", "", "UID", "StudyInstanceUID."),
    _c(
        "patient_id",
        "text",
        "",
        "text, -",
        "PatientID (often digits with leading zeros: read it with `modic.read_results` or `dtype=str`).",
    ),
    _c("patient_name", "text", "", "text, -", "PatientName, DICOM `^`-separated."),
)

_WORST = (
    "The worst type among the typed endplates, in the order type 1 > type 1/2 > type 2 > type 2/3 "
    "> type 3 > type 0 (docs/results.md); `indeterminate` only when no endplate could be typed"
)

#: ``levels.csv``: one row per disc level read in the cohort, head to foot.
LEVEL_COLUMNS: tuple[Column, ...] = (
    _c("level", "category", "", "T10/T11 ... L5/S1", "Disc level.", LEVELS, True),
    _c("studies", "int", "count", ">= 1", "Studies with at least one endplate of this level read."),
    _c(
        "studies_changed",
        "int",
        "count",
        ">= 0",
        "Of those, studies with a Modic change (type 1, 2, 3, 1/2 or 2/3) at an endplate of this level.",
    ),
    _c("share", "float", "share", "0-1", "`studies_changed / studies`: the prevalence at this level."),
    *(
        _c(
            f"worst_{t.replace('type ', 'type_').replace('/', '_')}",
            "int",
            "count",
            ">= 0",
            f"Studies whose worst type at this level is `{t}`.",
        )
        for t in _TYPES
    ),
    _c(
        "indeterminate_endplates",
        "int",
        "count",
        ">= 0",
        "Endplates of this level (over all studies) that could not be typed.",
    ),
)

#: ``studies.csv``: one row per classified study, then its worst type at every level.
STUDY_COLUMNS: tuple[Column, ...] = (
    _c("study", "text", "", "10 hex digits", "Pseudonymous study key (as in results.csv)."),
    _c("endplates", "int", "count", ">= 1", "Endplates classified."),
    _c("levels", "int", "count", ">= 1", "Disc levels with at least one endplate read."),
    _c("levels_changed", "int", "count", ">= 0", "Levels with a Modic change at one of their endplates."),
    _c("indeterminate", "int", "count", ">= 0", "Endplates that could not be typed."),
    _c(
        "any_change",
        "bool",
        "",
        "True, False",
        "A Modic change at any endplate (False does not mean normal when `indeterminate` > 0).",
    ),
    _c(
        "worst_type",
        "category",
        "",
        "type 0 ... type 2/3, indeterminate",
        _WORST + ", over the study.",
        _TYPES,
    ),
    _c(
        "worst_levels",
        "text",
        "",
        "e.g. `L4/L5 L5/S1`, -",
        "The levels carrying `worst_type`, head to foot, space-separated; `-` when the worst type is type 0.",
    ),
    *(
        _c(
            level,
            "category",
            "",
            "type 0 ... type 2/3, indeterminate, -",
            f"Worst type at {level} (`-`: not read).",
            _TYPES,
        )
        for level in LEVELS
    ),
    _c(
        "bvn_levels",
        "text",
        "",
        "`L3/L4`, `L4/L5`, `L5/S1`, space-separated, -",
        "Levels from L3/L4 to L5/S1 meeting the imaging criterion of the FDA clearance of "
        "basivertebral nerve ablation (510(k) K153272, K190504: a Modic type 1 or 2 change at an "
        "endplate; 1/2 and 2/3 counted, `modic.candidacy`), head to foot; `-` when none. Research "
        "information about a regulatory criterion, not a treatment recommendation: the clearance also "
        "has clinical criteria that an image cannot show.",
    ),
    _c(
        "bvn_vertebrae",
        "text",
        "",
        "e.g. `L4 L5`, -",
        "The vertebral bodies next to those levels (both sides of each), head to foot; `-` when none.",
    ),
    _c(
        "bvn_not_read",
        "text",
        "",
        "levels, space-separated, -",
        "Levels of L3/L4 to L5/S1 without any endplate read: the criterion cannot be judged there; "
        "`-` when all were read.",
    ),
)

#: :func:`modic.summarize`'s ``study_levels``: one row per study and disc level read (not a file).
STUDY_LEVEL_COLUMNS: tuple[Column, ...] = (
    _c("study", "text", "", "10 hex digits", "Pseudonymous study key."),
    _c("level", "category", "", "T10/T11 ... L5/S1", "Disc level.", LEVELS, True),
    _c(
        "above",
        "category",
        "",
        "type 0 ... indeterminate, missing",
        "Type of the endplate above the disc (the inferior endplate of the upper vertebra: L4 "
        "inferior at L4/L5); missing when not read.",
        _TYPES,
    ),
    _c(
        "below",
        "category",
        "",
        "type 0 ... indeterminate, missing",
        "Type of the endplate below the disc (the superior endplate of the lower vertebra).",
        _TYPES,
    ),
    _c("endplates", "int", "count", "1-2", "Endplates of the level read."),
    _c("changes", "int", "count", ">= 0", "Of those, endplates with a Modic change."),
    _c("indeterminate", "int", "count", ">= 0", "Endplates that could not be typed."),
    _c("any_change", "bool", "", "True, False", "A Modic change at either endplate."),
    _c("worst_type", "category", "", "type 0 ... indeterminate", _WORST + ", at the level.", _TYPES),
)

#: Columns that follow the identifier columns in a ``modic batch --propose`` run only.
PROPOSE_COLUMNS: tuple[Column, ...] = (
    _c(
        "roi_origin",
        "text",
        "",
        "`drawn`, `proposed`, `derived`, `imported`",
        "Who made the row's endplate ROI: a person, or modic from the image (`proposed`: the study "
        "had no annotation file, its ROIs are in `OUTDIR/proposed/NAME.modic.json`), or from another "
        "tool's label map.",
    ),
)
_ROI_ORIGINS = ("drawn", "proposed", "derived", "imported")


# -- the JSON Schema of the results files ---------------------------------------------------
#: Where the shipped schema lives in a source tree, and how to write it again.
SCHEMA_COMMAND = f"python -m modic.columns --schema > modic/schemas/results-{RESULTS_FORMAT}.schema.json"
_SEQUENCES = ["T1", "T2", "STIR"]
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_SHARE: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}


def _json_type(col: Column) -> dict[str, Any]:
    """A CSV column as a JSON Schema property (as :func:`modic.read_results` gives the value)."""
    kind: dict[str, Any]
    if col.dtype == "category":
        kind = {"enum": [*col.values, None]}
    else:
        types: dict[str, dict[str, Any]] = {
            "text": {"type": "string"},
            "int": {"type": "integer"},
            "nullable int": {"type": ["integer", "null"]},
            "float": {"type": ["number", "null"]},
            "bool": {"type": "boolean"},
        }
        kind = types[col.dtype]
    unit = col.unit or "-"
    return {
        **kind,
        "description": f"{col.description} [unit: {unit}; range: {col.range}]",
        "x-dtype": col.dtype,
    }


def _object(required: Sequence[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A closed JSON object (no other keys) with ``required`` of ``properties``."""
    return {
        "type": "object",
        "additionalProperties": False,
        **extra,
        "required": list(required),
        "properties": properties,
    }


def _per_sequence(value: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """An object keyed by sequence (T1, T2, STIR)."""
    d: dict[str, Any] = {"type": "object"}
    if description:
        d["description"] = description
    return {**d, "propertyNames": {"enum": _SEQUENCES}, "additionalProperties": value}


def _type_counts(description: str) -> dict[str, Any]:
    out = _object(_TYPES, {t: _COUNT for t in _TYPES})
    return {**out, "description": description}


def _contrast(nullable: bool) -> dict[str, Any]:
    fields = {
        "source": {"enum": ["automatic", "fat ROI"]},
        "fat_voxels": _COUNT,
        "fat_ratio": _per_sequence({"type": "number"}, "fat / marrow signal per sequence"),
        "marrow_snr": _per_sequence({"type": "number"}, "marrow signal-to-noise ratio per sequence"),
        "fat_suppression": {"enum": [*_column("fat_suppression").values, None]},
        "notes": {"type": "array", "items": {"type": "string"}},
    }
    out = _object(list(fields), fields)
    out["type"] = ["object", "null"] if nullable else "object"
    return out


def _column(name: str) -> Column:
    return next(c for c in RESULT_COLUMNS if c.name == name)


def _record_schema() -> dict[str, Any]:
    ratio = _object(
        [
            "sir",
            "ci95",
            "call",
            "call_confidence",
            "region_median",
            "reference_median",
            "reference_spread",
            "n_region",
            "n_reference",
            "unit",
        ],
        {
            "sir": {"type": "number", "description": "median(region) / median(reference), unitless"},
            "ci95": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
                "description": "bootstrap 95 % interval [low, high] of sir",
            },
            "call": {"enum": list(CALLS)},
            "call_confidence": _SHARE,
            "region_median": {"type": "number"},
            "reference_median": {"type": "number"},
            "reference_spread": {"type": "number", "description": "1.4826 x MAD of the reference"},
            "n_region": _COUNT,
            "n_reference": _COUNT,
            "unit": {"type": "number", "description": "the sequence's relative unit of deviation"},
        },
    )
    series = _object(
        ["series", "description", "slice_index", "distance_mm", "voxels"],
        {
            "series": {
                "type": "string",
                "description": "series key (SeriesNumber[.stack] or a 6-hex pseudonym); results.csv writes "
                "it 'series KEY'",
            },
            "description": {"type": "string"},
            "slice_index": {"type": "integer", "minimum": 0, "description": "0-based along the slice normal"},
            "distance_mm": {
                "type": "number",
                "description": "signed ROI centroid - slice plane along the slice normal, mm",
            },
            "voxels": _COUNT,
        },
    )
    extent_fields = {
        "height_mm": {"type": "number", "minimum": 0},
        "body_height_mm": {"type": "number", "minimum": 0},
        "height_fraction": _SHARE,
        "height_grade": {"enum": list(_column("extent_grade").values)},
        "length_mm": {"type": "number", "minimum": 0},
        "endplate_length_mm": {"type": "number", "minimum": 0},
        "length_fraction": _SHARE,
        "length_grade": {"enum": list(_column("extent_length_grade").values)},
        "body_source": {"enum": list(_column("body_source").values)},
        "slice_index": {"type": "integer", "minimum": -1, "description": "0-based; -1 when unknown"},
        "slice_offset_mm": {"type": "number"},
    }
    extent = _object(list(extent_fields)[:9], extent_fields)
    extent["type"] = ["object", "null"]
    properties: dict[str, Any] = {
        "study": {"type": "string", "description": "pseudonymous study key"},
        "roi_id": {"type": "string"},
        "label": {"type": "string", "description": "e.g. 'L4 inferior'"},
        "vertebra": {"enum": list(VERTEBRAE)},
        "endplate": {"enum": list(_column("endplate").values)},
        "level": {"enum": list(LEVELS)},
        "modic_type": {"enum": list(_TYPES)},
        "confidence": _SHARE,
        "ratios": _per_sequence(ratio, "signal intensity ratio per sequence read"),
        "fractions": _object(
            ["0", "1", "2", "3", "unclassified"], dict.fromkeys(["0", "1", "2", "3", "unclassified"], _SHARE)
        ),
        "reference": _object(
            ["label", "roi_id"], {"label": {"type": "string"}, "roi_id": {"type": "string"}}
        ),
        "series": _per_sequence(series, "series and slice measured per sequence"),
        "excluded_voxels": _COUNT,
        "reference_correction": _per_sequence(
            {"type": "number"}, "coil-gradient factor on the reference level per sequence"
        ),
        "contrast": _contrast(nullable=True),
        "extent": extent,
        "reason": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "explanation": {"type": "string"},
    }
    required = list(properties)
    for c in IDENTIFIER_COLUMNS:
        properties[c.name] = {"type": "string", "description": c.description}
    properties["roi_origin"] = {"enum": list(_ROI_ORIGINS), "description": PROPOSE_COLUMNS[0].description}
    return _object(
        required,
        properties,
        description="One line of results.jsonl (ModicResult.to_dict); also each item of "
        "`modic classify --json`.",
    )


def _summary_schema() -> dict[str, Any]:
    from .candidacy import CRITERION_LEVELS

    bvn = {"enum": list(CRITERION_LEVELS)}
    candidacy_fields = {
        "study": {"type": "string"},
        "meets_imaging_criterion": {"type": "boolean"},
        "levels": {"type": "array", "items": bvn},
        "findings": {
            "type": "object",
            "propertyNames": bvn,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "per level met, its endplates and types in words",
        },
        "criterion": {"type": "string"},
        "source": {"type": "string"},
        "disclaimer": {"type": "string"},
        "vertebrae": {"type": "array", "items": {"enum": list(VERTEBRAE)}},
        "levels_read": {"type": "array", "items": bvn},
        "levels_not_read": {"type": "array", "items": bvn},
        "indeterminate": {"type": "array", "items": bvn},
        "notes": {"type": "array", "items": {"type": "string"}},
    }
    candidacy_required = [
        "study",
        "meets_imaging_criterion",
        "levels",
        "vertebrae",
        "findings",
        "levels_read",
        "levels_not_read",
        "indeterminate",
        "notes",
        "criterion",
        "source",
        "disclaimer",
    ]
    level_names = {"enum": list(LEVELS)}
    properties: dict[str, Any] = {
        "modic_version": {"type": "string"},
        "results_format": {"const": RESULTS_FORMAT},
        "studies": _object(["total", "ok", "failed"], dict.fromkeys(["total", "ok", "failed"], _COUNT)),
        "endplates": _COUNT,
        "type_counts": _type_counts("endplates per Modic type"),
        "contrast": {
            "type": "object",
            "additionalProperties": _contrast(nullable=True),
            "description": "each classified study's measured contrast, by study key",
        },
        "errors": {
            "type": "object",
            "additionalProperties": _COUNT,
            "description": "error rows per stage (only stages with errors)",
        },
        "include_identifiers": {"type": "boolean"},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "by_level": {
            "type": "object",
            "propertyNames": level_names,
            "description": "the cohort per disc level, head to foot",
            "additionalProperties": _object(
                ["studies", "studies_changed", "worst_type", "indeterminate_endplates"],
                {
                    "studies": _COUNT,
                    "studies_changed": _COUNT,
                    "worst_type": _type_counts("studies per worst type at the level"),
                    "indeterminate_endplates": _COUNT,
                },
            ),
        },
        "by_study": {
            "type": "object",
            "description": "per study key",
            "additionalProperties": _object(
                ["any_change", "worst_type", "worst_levels", "indeterminate", "levels"],
                {
                    "any_change": {"type": "boolean"},
                    "worst_type": {"enum": list(_TYPES)},
                    "worst_levels": {"type": "array", "items": level_names},
                    "indeterminate": _COUNT,
                    "levels": {
                        "type": "object",
                        "propertyNames": level_names,
                        "additionalProperties": {"enum": list(_TYPES)},
                        "description": "worst type per level read",
                    },
                },
            ),
        },
        "candidacy": {
            "type": "object",
            "additionalProperties": _object(
                candidacy_required,
                candidacy_fields,
                description="the study's levels meeting the imaging criterion of the FDA clearance of "
                "basivertebral nerve ablation (modic.candidacy)",
            ),
            "description": "per study key: the imaging criterion of the FDA clearance of basivertebral "
            "nerve ablation (modic.candidacy.Candidacy.to_dict): research information, not a treatment "
            "recommendation",
        },
        "proposed_studies": {
            "type": "array",
            "items": {"type": "string"},
            "description": "only with `modic batch --propose`: the study keys whose ROIs were proposed "
            "from the image",
        },
    }
    required = [k for k in properties if k not in ("candidacy", "proposed_studies")]
    return _object(required, properties, description="summary.json of a modic batch output folder.")


def _csv_row_schema() -> dict[str, Any]:
    columns = RESULT_COLUMNS + IDENTIFIER_COLUMNS + PROPOSE_COLUMNS
    out = _object(
        [c.name for c in RESULT_COLUMNS],
        {c.name: _json_type(c) for c in columns},
        description="A row of results.csv as modic.read_results gives it (one JSON object per row: empty "
        "numbers and '-' categories null, '-' text ''). In the file, an empty text field is written '-'.",
    )
    out["x-column-order"] = [c.name for c in RESULT_COLUMNS]
    return out


def results_schema() -> dict[str, Any]:
    """The JSON Schema of the results files, built from the column tables above.

    ``$defs``: ``record`` (a results.jsonl line), ``summary`` (summary.json) and ``csv_row``
    (a row of results.csv as :func:`modic.read_results` gives it: one property per column of
    :data:`RESULT_COLUMNS`, :data:`IDENTIFIER_COLUMNS` and :data:`PROPOSE_COLUMNS`). The
    schema shipped with the package (:func:`schema_path`) is this one, written by
    :data:`SCHEMA_COMMAND` (a test checks they are equal).
    """
    name = f"results-{RESULTS_FORMAT}.schema.json"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://github.com/modic-project/modic/schemas/{name}",
        "title": f"modic results, format {RESULTS_FORMAT}",
        "description": "Records of results.jsonl, summary.json, and the rows of results.csv of modic "
        "(docs/results.md). Validate a results.jsonl line against #/$defs/record, summary.json against "
        "#/$defs/summary.",
        "$defs": {"record": _record_schema(), "summary": _summary_schema(), "csv_row": _csv_row_schema()},
    }


def schema_text() -> str:
    """:func:`results_schema` as the text of the shipped file (2-space indent, a final newline)."""
    return json.dumps(results_schema(), indent=2, ensure_ascii=False) + "\n"


_TABLES: dict[str, tuple[Column, ...]] = {
    "results.csv": RESULT_COLUMNS,
    "levels.csv": LEVEL_COLUMNS,
    "studies.csv": STUDY_COLUMNS,
}


def columns_for(table: str, include_identifiers: bool = False) -> tuple[Column, ...]:
    """The columns of ``"results.csv"``, ``"levels.csv"`` or ``"studies.csv"``, in order."""
    try:
        cols = _TABLES[table]
    except KeyError:
        raise ValueError(f"table must be one of {', '.join(_TABLES)}, got {table!r}") from None
    return cols + IDENTIFIER_COLUMNS if include_identifiers and table == "results.csv" else cols


_KINDS: dict[str, dict[str, str]] = {
    table: {c.name: c.dtype for c in cols + (IDENTIFIER_COLUMNS if table == "results.csv" else ())}
    for table, cols in _TABLES.items()
}


def csv_cell(name: str, value: Any, table: str = "results.csv") -> str | int | float:
    """How a value of column ``name`` is written to a CSV file (see the module docstring).

    Examples
    --------
    >>> csv_cell("warnings", ""), csv_cell("t2_sir", None), csv_cell("t1_slice", 7), csv_cell("confidence", 1)
    ('-', '', 7, 1.0)
    """
    kind = _KINDS[table].get(name, "text")
    if kind in ("text", "category"):
        return NO_TEXT if value is None or value == "" else str(value)
    if value is None:
        return ""
    if kind == "float":
        return float(value)
    if kind == "bool":
        return "True" if value else "False"
    return int(value)


def csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, Any]], table: str = "results.csv") -> str:
    """CSV text of ``rows`` (dicts; missing keys are empty) with the columns ``fields``.

    ``table`` (``"results.csv"``, ``"levels.csv"``, ``"studies.csv"``) says how each
    column is written (:func:`csv_cell`); unknown columns are written as text.
    """
    if table not in _KINDS:
        raise ValueError(f"table must be one of {', '.join(_KINDS)}, got {table!r}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for row in rows:
        w.writerow([csv_cell(k, row.get(k), table) for k in fields])
    return buf.getvalue()


def schema_path() -> Path:
    """The JSON Schema of this results format (``$defs``: ``record``, ``summary``, ``csv_row``)."""
    return Path(str(resources.files("modic.schemas").joinpath(f"results-{RESULTS_FORMAT}.schema.json")))


def load_schema() -> dict[str, Any]:
    """The parsed :func:`schema_path`."""
    data: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return data


def markdown_table(columns: Sequence[Column]) -> str:
    """A Markdown table of ``columns`` (name, type, unit, range, meaning), as in docs/results.md."""
    lines = ["| column | type | unit | range | meaning |", "|---|---|---|---|---|"]
    for c in columns:
        desc = c.description.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.range} | {desc} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modic.columns``: the column tables of docs/results.md; with ``--schema``,
    the JSON Schema of the results files (:func:`schema_text`), as shipped."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m modic.columns", description=main.__doc__)
    p.add_argument("--schema", action="store_true", help="print the JSON Schema instead of the tables")
    args = p.parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    for name, cols in _TABLES.items():
        sys.stdout.write(f"### {name}\n\n{markdown_table(cols)}\n")
    sys.stdout.write(f"### identifier columns\n\n{markdown_table(IDENTIFIER_COLUMNS)}\n")
    sys.stdout.write(f"### with --propose\n\n{markdown_table(PROPOSE_COLUMNS)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
