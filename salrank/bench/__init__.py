"""The benchmark suite (``salrank bench``, the Table IV page): every stage's speed in one record.

* :mod:`~salrank.bench.core`: figures, run settings, the one timing helper and the one generator
  of random inputs;
* :mod:`~salrank.bench.stages`: the suite's measurements (``bench_<name>``), on top of the stage
  timers :mod:`~salrank.bench.gt` (relabelling vs a per-point loop), :mod:`~salrank.bench.fixations`,
  :mod:`~salrank.bench.detectors` and :mod:`~salrank.bench.unisal`;
* :mod:`~salrank.bench.targets`: ratios and speed targets judged on a record;
* :mod:`~salrank.bench.suite`: :data:`BENCHMARKS` and :func:`run_suite`;
* :mod:`~salrank.bench.records`: the printed summary, the stored records and the Table IV tables.

The library's model and data modules carry no timing code.
"""

from salrank.bench.records import (
    format_summary,
    load_records,
    ratios_frame,
    record_label,
    runs_frame,
    stage_frame,
    table4_frame,
    targets_frame,
)
from salrank.bench.suite import BENCHMARKS, run_suite
from salrank.bench.targets import RATIOS, TARGETS

__all__ = [
    "BENCHMARKS",
    "RATIOS",
    "TARGETS",
    "format_summary",
    "load_records",
    "ratios_frame",
    "record_label",
    "run_suite",
    "runs_frame",
    "stage_frame",
    "table4_frame",
    "targets_frame",
]
