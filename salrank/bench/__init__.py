"""The benchmark suite (``salrank bench``, the Table IV page): every stage's speed in one record.

:mod:`~salrank.bench.suite` runs the measurements and evaluates the targets; the stage timers live
beside it: :mod:`~salrank.bench.gt` (relabelling vs a per-point loop), :mod:`~salrank.bench.unisal`,
:mod:`~salrank.bench.detectors`. The library's model and data modules carry no timing code.
"""

from salrank.bench.suite import (
    BENCHMARKS,
    RATIOS,
    TARGETS,
    format_summary,
    load_records,
    run_suite,
)

__all__ = ["BENCHMARKS", "RATIOS", "TARGETS", "format_summary", "load_records", "run_suite"]
