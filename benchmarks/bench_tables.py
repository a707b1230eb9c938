"""How long reading and summarising a large results table takes.

Run:  python benchmarks/bench_tables.py [--studies 2000] [--repeats 3]

Classifies the four sample studies once, then writes a cohort of ``--studies`` studies
(the 44 sample rows repeated under new study keys, 11 endplates per study) as
results.csv and results.jsonl in a temporary folder, and prints the median wall time of:
a plain ``pandas.read_csv``, ``modic.read_results`` of the CSV and of the JSONL,
``modic.summarize`` of the frame, and the batch's own summaries (levels.csv, studies.csv,
summary.json sections, from the records, without pandas).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import modic
from modic.columns import csv_text
from modic.results import RECORD_FIELDS
from modic.summary import level_rows, study_rows, summary_sections


def _time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import pandas as pd

    records: list[dict[str, Any]] = []
    dicts: list[dict[str, Any]] = []
    for name in modic.data.sample_study_names():
        res = modic.classify(
            modic.load_study(modic.data.sample_study_path(name)),
            modic.read_annotations(modic.data.sample_annotations_path(name)),
        )
        records += res.to_records()
        dicts += [r.to_dict() for r in res]
    per = len(records) // 4
    big_rec, big_dict = [], []
    for i in range(args.studies):
        key = f"s{i:09d}"
        lo = (i % 4) * per
        big_rec += [{**r, "study": key} for r in records[lo : lo + per]]
        big_dict += [{**d, "study": key} for d in dicts[lo : lo + per]]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "results.csv").write_text(csv_text(RECORD_FIELDS, big_rec))
        (out / "results.jsonl").write_text("".join(json.dumps(d) + "\n" for d in big_dict))
        size = (out / "results.csv").stat().st_size / 1e6
        print(f"{args.studies} studies, {len(big_rec)} rows, results.csv {size:.1f} MB; median of {args.repeats}")
        df = modic.read_results(out / "results.csv")
        rows = [
            ("pandas.read_csv(results.csv)", lambda: pd.read_csv(out / "results.csv")),
            ("modic.read_results(results.csv)", lambda: modic.read_results(out / "results.csv")),
            ("modic.read_results(results.jsonl)", lambda: modic.read_results(out / "results.jsonl")),
            ("modic.summarize(df)", lambda: modic.summarize(df)),
            ("levels + studies + summary.json", lambda: (
                level_rows(big_rec), study_rows(big_rec), summary_sections(big_rec)
            )),
        ]  # fmt: skip
        for label, fn in rows:
            print(f"  {label:36} {_time(fn, args.repeats):7.2f} s")


if __name__ == "__main__":
    main()
