"""Results as pandas DataFrames: :func:`read_results` and :func:`summarize`.

Needs pandas (the ``notebook`` extra: ``pip install "modic[notebook]"``), imported when
a function is called. The columns, their dtypes and meanings are those of
:mod:`modic.columns` (and docs/results.md); the summaries and the order of "worst" types
are those of :mod:`modic.summary`.

Examples
--------
>>> import tempfile, modic
>>> from modic.batch import run_batch
>>> out = tempfile.mkdtemp()
>>> _ = run_batch(modic.data.sample_data_dir(), out, workers=1)
>>> df = modic.read_results(out)
>>> str(df["level"].dtype), df["level"].cat.categories[:3].tolist()
('category', ['T10/T11', 'T11/T12', 'T12/L1'])
>>> modic.summarize(df).levels[["level", "studies", "studies_changed"]].tail(2).to_string(index=False)
'level  studies  studies_changed\\nL4/L5        4                2\\nL5/S1        4                2'
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .columns import (
    IDENTIFIER_COLUMNS,
    LEVEL_COLUMNS,
    NO_TEXT,
    RESULT_COLUMNS,
    STUDY_COLUMNS,
    STUDY_LEVEL_COLUMNS,
    TYPE_LABELS,
    Column,
)
from .errors import MissingDependencyError, ResultsFileError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .results import ModicResults

__all__ = [
    "ResultsFileError",
    "Summary",
    "read_results",
    "summarize",
    "frame_from_records",
    "record_from_dict",
]

_ROLES = ("T1", "T2", "STIR")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError(
            'modic.read_results and modic.summarize need pandas: pip install "modic[notebook]"',
            extra="notebook",
        ) from None
    return pd


def _r(x: Any, nd: int) -> float | None:
    return None if x is None else round(float(x), nd)


def record_from_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    """The flat record (a row of results.csv) of one results.jsonl line.

    Parameters
    ----------
    d : mapping
        :meth:`modic.ModicResult.to_dict` as written to results.jsonl (format 1 or 2).

    Returns
    -------
    dict
        The columns of :meth:`modic.ModicResult.to_record`, rounded the same way, and the
        identifier columns when ``d`` has them.
    """
    mt = str(d["modic_type"])
    rec: dict[str, Any] = {
        "study": d.get("study", ""),
        "roi_id": d["roi_id"],
        "vertebra": d["vertebra"],
        "endplate": d.get("endplate") or "",
        "level": d.get("level") or "",
        "modic_type": TYPE_LABELS.get(mt, mt),
        "confidence": _r(d["confidence"], 3),
    }
    ratios = d.get("ratios") or {}
    series = d.get("series") or {}
    for role in _ROLES:
        k = role.lower()
        sr, used = ratios.get(role), series.get(role)
        rec[f"{k}_sir"] = None if sr is None else _r(sr["sir"], 4)
        rec[f"{k}_sir_low"] = None if sr is None else _r(sr["ci95"][0], 4)
        rec[f"{k}_sir_high"] = None if sr is None else _r(sr["ci95"][1], 4)
        rec[f"{k}_call"] = None if sr is None else sr["call"]
        rec[f"{k}_series"] = None if used is None else f"series {used['series']}"
        rec[f"{k}_slice"] = None if used is None else int(used["slice_index"])
        rec[f"{k}_distance_mm"] = None if used is None else _r(used["distance_mm"], 2)
    rec["voxels"] = max((int(u["voxels"]) for u in series.values()), default=0)
    rec["reference_voxels"] = int(ratios["T1"]["n_reference"]) if "T1" in ratios else 0
    fractions = d.get("fractions") or {}
    for k in ("0", "1", "2", "3", "unclassified"):
        rec[f"fraction_{k}"] = _r(fractions.get(k, 0.0), 4)
    rec["excluded_voxels"] = int(d.get("excluded_voxels", 0))
    rec["reference"] = (d.get("reference") or {}).get("label", "")
    rec["reference_correction"] = _r((d.get("reference_correction") or {}).get("T1", 1.0), 4)
    contrast = d.get("contrast") or {}
    fat = contrast.get("fat_ratio") or {}
    rec["t2_fat_ratio"] = _r(fat.get("T2"), 4)
    rec["stir_fat_ratio"] = _r(fat.get("STIR"), 4)
    rec["fat_suppression"] = contrast.get("fat_suppression") or ""
    rec["t1_snr"] = _r((contrast.get("marrow_snr") or {}).get("T1"), 2)
    ext = d.get("extent")
    rec["extent_height_mm"] = None if not ext else _r(ext["height_mm"], 2)
    rec["body_height_mm"] = None if not ext else _r(ext["body_height_mm"], 2)
    rec["extent_height_fraction"] = None if not ext else _r(ext["height_fraction"], 4)
    rec["extent_grade"] = "" if not ext else ext["height_grade"]
    rec["extent_length_mm"] = None if not ext else _r(ext["length_mm"], 2)
    rec["endplate_length_mm"] = None if not ext else _r(ext["endplate_length_mm"], 2)
    rec["extent_length_fraction"] = None if not ext else _r(ext["length_fraction"], 4)
    rec["extent_length_grade"] = "" if not ext else ext["length_grade"]
    rec["body_source"] = "" if not ext else ext["body_source"]
    rec["extent_slice"] = None if not ext or ext.get("slice_index", -1) < 0 else int(ext["slice_index"])
    rec["reason"] = d.get("reason", "")
    rec["warnings"] = " | ".join(d.get("warnings") or [])
    rec["explanation"] = d.get("explanation", "")
    for c in IDENTIFIER_COLUMNS:
        if c.name in d:
            rec[c.name] = d[c.name]
    return rec


def _convert(pd: Any, raw: Any, col: Column, where: str) -> Any:
    """One column (a Series of CSV strings, or of record values) as its pandas dtype."""
    ser = raw.astype(object)
    empty = ser.isna() | ser.isin(["", NO_TEXT])
    if col.dtype == "text":
        return ser.where(~empty, "").astype(str)
    if col.dtype == "category":
        vals = ser.where(~empty, None).map(lambda v: v if v is None else str(v))
        bad = sorted(set(vals[~empty & ~vals.isin(col.values)]))
        if bad:
            raise ResultsFileError(
                f"{where}: column {col.name} holds {', '.join(map(repr, bad[:3]))}, not one of "
                f"{', '.join(col.values)}"
            )
        return pd.Series(pd.Categorical(vals, categories=list(col.values), ordered=col.ordered))
    if col.dtype == "bool":
        text = ser.map(str)
        bad = sorted(set(text[~text.isin(["True", "False"])]))
        if bad:
            raise ResultsFileError(f"{where}: column {col.name} holds {bad[0]!r}, not True or False")
        return text == "True"
    try:
        num = pd.to_numeric(ser.where(~empty, None), errors="raise")
    except (ValueError, TypeError) as exc:
        raise ResultsFileError(f"{where}: column {col.name} is not numeric ({exc})") from None
    if col.dtype == "float":
        return num.astype("float64")
    if col.dtype == "int" and num.isna().any():
        raise ResultsFileError(f"{where}: column {col.name} has empty fields; it never should")
    try:
        return num.astype("int64" if col.dtype == "int" else "Int64")
    except (ValueError, TypeError):
        raise ResultsFileError(f"{where}: column {col.name} holds numbers that are not whole") from None


def _frame(rows: Sequence[Mapping[str, Any]] | Any, columns: Sequence[Column], where: str) -> Any:
    """A DataFrame with one column per known column in ``rows`` (in their order), typed."""
    pd = _pandas()
    raw = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    raw = raw.reset_index(drop=True)
    known = {c.name: c for c in columns}
    names = [c.name for c in columns if c.name in raw.columns] + [n for n in raw.columns if n not in known]
    data = {
        name: _convert(pd, raw[name], known[name], where) if name in known else raw[name] for name in names
    }
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))


def frame_from_records(records: Iterable[Mapping[str, Any]], where: str = "results") -> pd.DataFrame:
    """Result records (:meth:`modic.ModicResult.to_record`) as a typed DataFrame.

    The same dtypes as :func:`read_results`; every column of
    :data:`modic.columns.RESULT_COLUMNS` is present (empty tables included).
    """
    pd = _pandas()
    recs = list(records)
    frame = pd.DataFrame(recs) if recs else pd.DataFrame(columns=[c.name for c in RESULT_COLUMNS])
    return _frame(frame, RESULT_COLUMNS + IDENTIFIER_COLUMNS, where)


def _results_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("results.csv", "results.jsonl"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path}: no results.csv or results.jsonl in this folder (a modic batch output?)"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return path


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read modic results into a DataFrame with the right dtypes.

    Parameters
    ----------
    path : path-like
        A ``modic batch`` output folder (its results.csv, else results.jsonl), a
        results.csv (:meth:`ModicResults.to_csv`), or a results.jsonl / the JSON list of
        ``modic classify --json``. Results format 1 (modic 0.1, bare type numbers) is
        read too, its values spelled as in format 2.

    Returns
    -------
    pandas.DataFrame
        One row per endplate, the columns of docs/results.md in file order: ``vertebra``
        and ``level`` ordered categoricals head to foot (``T11`` ... ``S1``, ``T10/T11``
        ... ``L5/S1``, so ``groupby`` and ``sort_values`` follow the spine), ``modic_type``
        a categorical of all seven labels (``type 0`` ... ``type 2/3``, ``indeterminate``,
        in that order, unordered: see :mod:`modic.summary` for "worst"), calls and grades
        categoricals, free text as ``str`` with ``""`` where the file has ``-`` (no
        warnings read as ``""``), integer counts ``int64``, slices ``Int64`` (missing
        where a sequence was not read), the rest ``float64``.

    Raises
    ------
    FileNotFoundError
        If there is no such file, or the folder holds no results.
    ResultsFileError
        If the file is not a modic results file, or a value fits no column.
    MissingDependencyError
        If pandas is not installed (the ``notebook`` extra).

    Examples
    --------
    See the module docstring; ``pd.crosstab(df["level"], df["modic_type"])`` gives the
    types per level head to foot.
    """
    pd = _pandas()
    p = _results_file(Path(path))
    where = str(p)
    if p.suffix in (".jsonl", ".json"):
        try:
            text = p.read_text(encoding="utf-8")
            docs = (
                json.loads(text)
                if p.suffix == ".json"
                else [json.loads(x) for x in text.splitlines() if x.strip()]
            )
            rows = [record_from_dict(d) for d in docs]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ResultsFileError(
                f"{where}: not a modic results file ({type(exc).__name__}: {exc})"
            ) from None
        return frame_from_records(rows, where)
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{where}: cannot read as CSV ({exc})") from None
    missing = [c for c in ("study", "roi_id", "level", "modic_type") if c not in raw.columns]
    if missing:
        raise ResultsFileError(
            f"{where}: not a modic results table (no column {', '.join(missing)}); "
            "expected results.csv of modic batch or ModicResults.to_csv"
        )
    bare = [t for t in TYPE_LABELS if t != "indeterminate"]
    if raw["modic_type"].isin(bare).any():  # format 1: bare "0", "1", ...; series "7"
        raw["modic_type"] = raw["modic_type"].map(lambda t: TYPE_LABELS.get(t, t))
        for k in ("t1", "t2", "stir"):
            if f"{k}_series" in raw.columns:
                raw[f"{k}_series"] = raw[f"{k}_series"].map(lambda s: f"series {s}" if s else s)
    return _frame(raw, RESULT_COLUMNS + IDENTIFIER_COLUMNS, where)


@dataclass(frozen=True)
class Summary:
    """Per-level and per-study summaries of results (see :mod:`modic.summary`).

    Attributes
    ----------
    levels : pandas.DataFrame
        The cohort by disc level, head to foot (``levels.csv``): studies read, with a
        change, the share, studies per worst type, indeterminate endplates.
    studies : pandas.DataFrame
        One row per study (``studies.csv``): any change, worst type, worst levels, the
        worst type at every level.
    study_levels : pandas.DataFrame
        One row per study and level read: the type above and below the disc, any change,
        worst type.
    """

    levels: pd.DataFrame
    studies: pd.DataFrame
    study_levels: pd.DataFrame


def summarize(results: pd.DataFrame | ModicResults | str | os.PathLike[str]) -> Summary:
    """Per-level and per-study summaries: any change, and the worst type.

    Parameters
    ----------
    results : DataFrame, ModicResults or path-like
        :func:`read_results`' frame (or one with at least ``study``, ``level``,
        ``endplate`` and ``modic_type``), results of :func:`modic.classify`, or a path
        :func:`read_results` accepts.

    Returns
    -------
    Summary
        ``levels``, ``studies`` and ``study_levels`` DataFrames, levels as ordered
        categoricals head to foot.
    """
    from . import summary as s

    pd = _pandas()
    if isinstance(results, str | os.PathLike):
        results = read_results(results)
    if isinstance(results, pd.DataFrame):
        cols = ["study", "level", "endplate", "modic_type"]
        missing = [c for c in cols if c not in results.columns]
        if missing:
            raise ValueError(f"summarize needs the columns {', '.join(cols)}; missing {', '.join(missing)}")
        if "vertebra" in results.columns:  # then the studies carry the BVN-ablation imaging criterion
            cols.append("vertebra")
        records = [
            dict(zip(cols, row, strict=True)) for row in results[cols].astype(str).itertuples(index=False)
        ]
    else:
        records = results.to_records()

    def frame(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> Any:
        if not rows:
            return _frame(pd.DataFrame(columns=[c.name for c in columns]), columns, "summary")
        return _frame(rows, columns, "summary")

    return Summary(
        levels=frame(s.level_rows(records), LEVEL_COLUMNS),
        studies=frame(s.study_rows(records), STUDY_COLUMNS),
        study_levels=frame(s.study_level_rows(records), STUDY_LEVEL_COLUMNS),
    )
