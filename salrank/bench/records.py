"""Reading and presenting suite records: the summary ``salrank bench`` prints, the records committed
in ``benchmarks/`` (:func:`load_records`) and the tables of the Table IV page.

A record is the JSON-able dict :func:`salrank.bench.suite.run_suite` returns (its layout: that
module's doc). The ``*_frame`` functions take ``{name: record}`` (as :func:`load_records` gives)
and return pandas DataFrames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from salrank import paper
from salrank.bench.stages import STAGE_LABELS, STAGES

__all__ = [
    "SCHEMA",
    "format_summary",
    "load_records",
    "ratios_frame",
    "record_label",
    "runs_frame",
    "stage_frame",
    "table4_frame",
    "targets_frame",
]

_SCHEMA_FAMILY = "salrank-bench/"
#: The record format written in ``meta.schema``; :func:`load_records` reads any ``salrank-bench/*``.
SCHEMA = _SCHEMA_FAMILY + "1"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_summary(record: Mapping) -> str:
    """A readable summary of a record: results, ratios, targets (PASS/FAIL) and failed benchmarks."""
    meta = record["meta"]
    lines = [f"salrank bench on {meta['device']} ({meta.get('device_name', '')}), "
             f"{'quick' if meta['quick'] else 'full'}, {meta['repeats']} repeats, AMP {meta.get('amp') or 'off'}, "
             f"{meta['date']}, {_fmt(meta.get('duration_s'))} s", ""]
    rows = [("result", "median", "IQR", "min", "max", "unit", "n")]
    for r in record["results"]:
        s = r["spread"]
        rows.append((r["name"], _fmt(r["median"]), _fmt(s["iqr"]), _fmt(s["min"]), _fmt(s["max"]), r["unit"],
                     str(r["repeats"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    if record["ratios"]:
        lines += ["", "ratios (measured in this run)"]
        for r in record["ratios"]:
            sp = r["spread"]
            extra = f"; per repeat {_fmt(sp['min'])} .. {_fmt(sp['max'])}" if sp else ""
            lines.append(f"  {r['name']:30s} {_fmt(r['value']):>8s}  {r['description']} "
                         f"(best runs {_fmt(r.get('best'))}{extra})")
    lines += ["", "targets"]
    for t in record["targets"]:
        value = f"{_fmt(t['value'])} {t['op']} {_fmt(t['threshold'])} {t['unit']}" if t["value"] is not None else ""
        lines.append(f"  {t['status'].upper():8s} {t['description']:72s} {value}")
    failed = {n: i["error"] for n, i in record.get("benchmarks", {}).items() if i.get("error")}
    notes = [(n, x) for n, i in record.get("benchmarks", {}).items() for x in i.get("notes", [])]
    if failed or notes:
        lines += ["", "notes"]
        lines += [f"  {n}: FAILED: {e}" for n, e in failed.items()]
        lines += [f"  {n}: {x}" for n, x in notes]
    mem = record.get("memory") or {}
    lines += ["", f"peak memory: {_fmt(mem.get('peak_rss_mib'))} MiB resident"
              + (f", {_fmt(mem['cuda_peak_mib'])} MiB CUDA" if mem.get("cuda_peak_mib") else "")]
    return "\n".join(lines)


def _result(record: Mapping, name: str) -> Mapping | None:
    return next((r for r in record["results"] if r["name"] == name), None)


def record_label(record: Mapping) -> str:
    """A short label of a record: ``CPU (2 cores, 2 torch threads) quick``, ``NVIDIA H100 full, bf16`` ..."""
    meta = record["meta"]
    device = meta.get("device_name") or meta["device"]
    amp = f", {meta['amp']}" if meta.get("amp") else ""
    return f"{device} {'quick' if meta['quick'] else 'full'}{amp}"


def runs_frame(records: Mapping[str, Mapping]):
    """One row per record: device, hardware, AMP, quick, repeats, date, duration, load average."""
    import pandas as pd

    rows = []
    for name, rec in records.items():
        m = rec["meta"]
        load = (m.get("load_average") or {}).get("start")
        rows.append({"record": name, "device": m["device"], "hardware": m.get("device_name"), "AMP": m.get("amp") or "off",
                     "quick": m["quick"], "repeats": m["repeats"], "date": m["date"][:10],
                     "duration (s)": m.get("duration_s"), "load average at start": load[0] if load else None,
                     "torch": m["versions"].get("torch")})
    return pd.DataFrame(rows)


def table4_frame(records: Mapping[str, Mapping]):
    """The paper's Table IV-A (rows SRCC, F1, FPS, Platform; a column per method) with a column per
    record: its end-to-end images/s (median) and platform; SRCC/F1 are not speed figures (blank)."""
    import pandas as pd

    table = pd.DataFrame(paper.TABLE4A).astype(object)
    table.columns = [f"{c} (paper)" for c in table.columns]
    for name, rec in records.items():
        e2e = _result(rec, "end_to_end.images_per_s")
        table[f"salrank: {name}"] = [None, None, None if e2e is None else e2e["median"], record_label(rec)]
    table.index.name = "metric"
    return table


def stage_frame(records: Mapping[str, Mapping]):
    """Long table of the end-to-end stages per record: ``record``, ``stage`` (label), ``ms/image``
    (median), ``share`` (median share of the whole call), ``FPS`` (1000 / ms) and ``paper FPS``
    (RTX 2080Ti: the whole pipeline, Table IV-A, and EfficientDet alone, Table IV-B). A row
    ``EfficientDet-D0 alone`` gives the ``detectors`` benchmark's figure when the record has it."""
    import pandas as pd

    rows = []
    for name, rec in records.items():
        e2e = _result(rec, "end_to_end.images_per_s")
        if e2e is not None:
            shares = e2e["details"]["stage_share"]
            for stage in STAGES:
                r = _result(rec, f"end_to_end.{stage}_ms")
                ms = r["median"] if r else None
                rows.append({"record": name, "stage": STAGE_LABELS[stage], "ms/image": ms,
                             "share": shares.get(stage), "FPS": 1000.0 / ms if ms else None, "paper FPS": None})
            rows.append({"record": name, "stage": "whole pipeline", "ms/image": 1000.0 / e2e["median"],
                         "share": 1.0, "FPS": e2e["median"], "paper FPS": paper.PIPELINE_FPS})
        det = _result(rec, "detectors.efficientdet_d0")
        if det is not None:
            rows.append({"record": name, "stage": "EfficientDet-D0 alone (detectors benchmark)",
                         "ms/image": 1000.0 / det["median"], "share": None, "FPS": det["median"],
                         "paper FPS": paper.TABLE4B_FPS["EfficientDet"]})
    return pd.DataFrame(rows, columns=["record", "stage", "ms/image", "share", "FPS", "paper FPS"])


def targets_frame(records: Mapping[str, Mapping]):
    """Targets (rows) x records (columns): ``PASS 97.9`` / ``FAIL 742`` / ``n/a`` / ``not run``."""
    import pandas as pd

    table = {}
    for name, rec in records.items():
        col = {}
        for t in rec["targets"]:
            value = "" if t["value"] is None else f" ({_fmt(t['value'])})"
            col[t["description"]] = t["status"].upper() + value if t["status"] in ("pass", "fail") else t["status"]
        table[name] = col
    return pd.DataFrame(table).rename_axis("target")


def ratios_frame(records: Mapping[str, Mapping]):
    """Ratios (rows) x records (columns): the ratio of the medians measured in that run."""
    import pandas as pd

    return pd.DataFrame({name: {r["description"]: r["value"] for r in rec["ratios"]}
                         for name, rec in records.items()}).rename_axis("ratio (same run)")


def load_records(directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{file stem: record}`` of the ``*.json`` records in ``directory`` (default: the first of
    ``./benchmarks``, ``../benchmarks`` and the source checkout's ``benchmarks/`` that exists),
    sorted by name. Files that are not bench records (no ``meta.schema``) are skipped."""
    if directory is None:
        candidates = [Path.cwd() / "benchmarks", Path.cwd().parent / "benchmarks",
                      Path(__file__).resolve().parents[2] / "benchmarks"]
        directory = next((c for c in candidates if c.is_dir()), candidates[-1])
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no benchmark records folder")
    out = {}
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(record, dict) and str(record.get("meta", {}).get("schema", "")).startswith(_SCHEMA_FAMILY):
            out[path.stem] = record
    return out
