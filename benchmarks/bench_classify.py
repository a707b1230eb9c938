"""How long classifying one study takes, stage by stage, on the bundled sample studies.

Run:  python benchmarks/bench_classify.py [--repeats 5]

Prints, per sample study (11 endplate ROIs, 6 references, T1 + T2 + STIR), the median wall
time of: measuring the study's contrast (fat on every sequence, noise), fitting the
reference levels along the spine, and classifying every endplate (sampling, partial-volume
check, bootstrap of 200 resamples); loading the DICOM is left out (see bench_load.py).
The stages run one after another in one process, so their ratios are comparable within a
run even on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import modic
from modic.contrast import measure_contrast
from modic.reading import ReferenceModel, classify


def _time(fn, repeats: int, cpu: list[float] | None = None) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls; their median CPU time (this process) appended to ``cpu``."""
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    if cpu is not None:
        cpu.append(statistics.median(cpus))
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"median of {args.repeats} runs")
    print(f"cores: {os.cpu_count()}; load average at the start {os.getloadavg()[0]:.1f}")
    print(
        f"{'study':34} {'contrast':>9} {'references':>11} {'classify':>9} {'CPU':>7} {'ROIs':>5} {'per ROI':>8}"
    )
    totals, cpus = [], []
    for name in modic.data.sample_study_names():
        study = modic.load_study(modic.data.sample_study_path(name))
        ann = modic.read_annotations(modic.data.sample_annotations_path(name))
        refs = list(ann.references())
        t_con, _ = _time(lambda: measure_contrast(study, refs), args.repeats)  # noqa: B023
        t_ref, _ = _time(lambda: ReferenceModel.fit(study, refs), args.repeats)  # noqa: B023
        t_all, res = _time(lambda: classify(study, ann), args.repeats, cpus)  # noqa: B023
        n = len(res)  # type: ignore[arg-type]
        totals.append(t_all)
        print(
            f"{name:34} {t_con:8.3f}s {t_ref:10.3f}s {t_all:8.3f}s {cpus[-1]:6.3f}s {n:5d} {t_all / n * 1000:6.1f}ms"
        )
    print(
        f"whole study (contrast + references + every ROI): median {statistics.median(totals):.3f} s wall, "
        f"{statistics.median(cpus):.3f} s CPU (CPU < wall: other processes had the cores)"
    )


if __name__ == "__main__":
    main()
