"""The paper's FOSRNet ablations as experiment grids, with the paper's reported numbers beside ours.

* Table II (component ablation): the 7 rows of :data:`salrank.paper.TABLE2_ROWS` (PSE, LF, GF,
  PE, TEB, HA switches), :func:`run_table2` and :func:`table2_table`;
* Table III-C (heads FC / GCN / ViT and the RA-SRGT threshold gamma), :func:`run_heads_gamma` and
  :func:`heads_table`, :func:`gamma_table`;
* "Ours (Reg.)" vs the classification model (Sec. IV-C), :func:`run_reg_vs_cls`,
  :func:`reg_vs_cls_table` and :func:`reg_gain_readings`.

Every ``run_*`` function runs (or reads from the cache) :func:`salrank.analysis.experiments.run_experiment`
for each design point and seed and returns the long table of
:func:`salrank.analysis.experiments.run_experiments` with the design columns added; the ``*_table``
functions average over seeds (mean, and the standard deviation when there are several) and put the
paper's numbers beside ours. All numbers are test-set means over images (SRCC excludes images
with constant GT, see :mod:`salrank.fosrnet.evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from salrank.analysis.experiments import Experiment, ExperimentSetup, run_experiments
from salrank.config import Settings
from salrank.paper import (
    DEFAULT_GAMMA,
    GAMMAS,
    REG_GAIN,
    TABLE2,
    TABLE2_ROWS,
    TABLE2_SWITCHES,
    TABLE3C_GAMMA,
    TABLE3C_HEADS,
)

__all__ = [
    "HEAD_LABELS",
    "gamma_table",
    "heads_table",
    "reg_gain_readings",
    "reg_vs_cls_table",
    "run_heads_gamma",
    "run_reg_vs_cls",
    "run_table2",
    "summarise",
    "table2_table",
]

#: display names of the heads
HEAD_LABELS = {"fc": "FC", "gcn": "GCN", "vit": "ViT", "reg": "Ours (Reg.)"}

_METRICS = ("srcc", "f1")


def _seeds(seeds: int | Iterable[int]) -> list[int]:
    out = [int(seeds)] if isinstance(seeds, int | np.integer) else [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds: one or more distinct integers expected, got {seeds!r}")
    return out


def _run(design: list[tuple[dict, Experiment]], settings, setup, progress) -> pd.DataFrame:
    df = run_experiments([e for _, e in design], settings, setup=setup, progress=progress)
    extra = pd.DataFrame([d for d, _ in design], index=df.index)
    return pd.concat([extra, df.drop(columns=[c for c in extra.columns if c in df.columns])], axis=1)


def _suffix(seed: int, seeds: Sequence[int]) -> str:
    return f" (seed {seed})" if len(seeds) > 1 else ""


def run_table2(
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    seeds: int | Iterable[int] = 0,
    rows: Iterable[int] | None = None,
    gamma: float = DEFAULT_GAMMA,
    progress: bool = False,
) -> pd.DataFrame:
    """Table II: the full model with parts switched off (``rows``: default all 7), per seed.

    Returns the experiment table with a ``row`` column.
    """
    seeds = _seeds(seeds)
    rows = sorted(TABLE2_ROWS) if rows is None else [int(r) for r in rows]
    bad = sorted(set(rows) - set(TABLE2_ROWS))
    if bad:
        raise ValueError(f"rows: unknown Table II rows {bad}; expected a subset of {sorted(TABLE2_ROWS)}")
    design = [
        ({"row": r}, Experiment(f"row {r}{_suffix(s, seeds)}", TABLE2_ROWS[r], gamma=gamma, seed=s))
        for r in rows
        for s in seeds
    ]
    return _run(design, settings, setup, progress)


def run_heads_gamma(
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    heads: Iterable[str] = ("fc", "gcn", "vit"),
    gammas: Iterable[float] = GAMMAS,
    seeds: int | Iterable[int] = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Table III-C: every head at every gamma (the rest of the model is the full one), per seed."""
    seeds = _seeds(seeds)
    design = [
        (
            {},
            Experiment(
                f"{HEAD_LABELS.get(h, h)}, gamma {g:g}{_suffix(s, seeds)}", {"head": h}, gamma=g, seed=s
            ),
        )
        for h in heads
        for g in gammas
        for s in seeds
    ]
    return _run(design, settings, setup, progress)


def run_reg_vs_cls(
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    gammas: Iterable[float] = GAMMAS,
    seeds: int | Iterable[int] = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """The ``reg`` head vs the ``vit`` classification head at each gamma, per seed.

    Adds a ``model`` column: ``"Ours (Cls.)"`` or ``"Ours (Reg.)"``.
    """
    seeds = _seeds(seeds)
    design = [
        (
            {"model": label},
            Experiment(f"{label}, gamma {g:g}{_suffix(s, seeds)}", {"head": h}, gamma=g, seed=s),
        )
        for h, label in (("vit", "Ours (Cls.)"), ("reg", "Ours (Reg.)"))
        for g in gammas
        for s in seeds
    ]
    return _run(design, settings, setup, progress)


def summarise(results: pd.DataFrame, by: str | list[str], metrics: Sequence[str] = _METRICS) -> pd.DataFrame:
    """Mean over seeds of ``metrics`` per ``by`` group (columns ``<metric>``), plus ``<metric>_sd``
    (sample standard deviation, NaN for one seed) and ``n_seeds``; groups in order of appearance."""
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, *metrics] if c not in results.columns]
    if missing:
        raise KeyError(f"summarise: missing columns {missing}")
    g = results.groupby(by, sort=False)
    out = g[list(metrics)].mean()
    for m in metrics:
        out[f"{m}_sd"] = g[m].std(ddof=1)
    out["n_seeds"] = g.size()
    if "protocol" in results.columns:  # the evaluation protocol beside the numbers
        out["protocol"] = g["protocol"].agg(lambda s: "/".join(dict.fromkeys(s)))
    return out


def _check(v: bool) -> str:
    return "✔" if v else "✘"


def table2_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table II laid out like the paper: switch check marks, our SRCC/F1 (mean over seeds), the paper's."""
    s = summarise(results, "row")
    rows = []
    for r, m in s.iterrows():
        row = {
            "row": int(r),
            **{col: _check(TABLE2_ROWS[int(r)][sw]) for col, sw in TABLE2_SWITCHES.items()},
            "SRCC (ours)": m["srcc"],
            "F1 (ours)": m["f1"],
            "SRCC (paper)": TABLE2[int(r)][0],
            "F1 (paper)": TABLE2[int(r)][1],
        }
        if m["n_seeds"] > 1:
            row.update({"SRCC sd": m["srcc_sd"], "F1 sd": m["f1_sd"]})
        rows.append(row)
    return pd.DataFrame(rows).set_index("row")


def heads_table(results: pd.DataFrame, gamma: float = DEFAULT_GAMMA) -> pd.DataFrame:
    """Table III-C-a: per head at ``gamma``, our SRCC/F1 and the paper's (printed at gamma 0.2)."""
    sub = results[np.isclose(results["gamma"], gamma)]
    if sub.empty:
        raise ValueError(f"heads_table: no results at gamma {gamma}")
    s = summarise(sub, "head")
    out = pd.DataFrame(
        {
            "head": [HEAD_LABELS.get(h, h) for h in s.index],
            "SRCC (ours)": s["srcc"].to_numpy(),
            "F1 (ours)": s["f1"].to_numpy(),
            "SRCC (paper)": [TABLE3C_HEADS.get(h, (np.nan, np.nan))[0] for h in s.index],
            "F1 (paper)": [TABLE3C_HEADS.get(h, (np.nan, np.nan))[1] for h in s.index],
        }
    )
    return out.set_index("head")


def gamma_table(results: pd.DataFrame, head: str = "vit") -> pd.DataFrame:
    """Table III-C-b: per gamma with ``head`` (the full model: ``vit``), our SRCC/F1 and the paper's."""
    sub = results[results["head"] == head]
    if sub.empty:
        raise ValueError(f"gamma_table: no results with head {head!r}")
    s = summarise(sub, "gamma")
    paper = [TABLE3C_GAMMA.get(round(float(g), 6), (np.nan, np.nan)) for g in s.index]
    out = pd.DataFrame(
        {
            "gamma": s.index.to_numpy(),
            "SRCC (ours)": s["srcc"].to_numpy(),
            "F1 (ours)": s["f1"].to_numpy(),
            "SRCC (paper)": [p[0] for p in paper],
            "F1 (paper)": [p[1] for p in paper],
        }
    )
    return out.set_index("gamma")


def reg_vs_cls_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per gamma: our Cls. and Reg. SRCC/F1, the gain Cls. - Reg. (absolute, and relative in % of
    Reg.), and the paper's Cls. numbers (Table III-C-b). A last row ``mean`` averages *our* columns
    over the gammas; its paper columns stay empty: the paper prints no such mean and no
    Reg. numbers, only a stated mean gain (:func:`reg_gain_readings`)."""
    s = summarise(results, ["gamma", "model"])
    rows = []
    for g in dict.fromkeys(results["gamma"]):
        try:
            cls, reg = s.loc[(g, "Ours (Cls.)")], s.loc[(g, "Ours (Reg.)")]
        except KeyError:
            raise ValueError(f"reg_vs_cls_table: gamma {g} lacks a Cls. or a Reg. result") from None
        paper = TABLE3C_GAMMA.get(round(float(g), 6), (np.nan, np.nan))
        row: dict = {"gamma": f"{g:g}"}
        for name, m in (("SRCC", "srcc"), ("F1", "f1")):
            gain = cls[m] - reg[m]
            row.update({f"{name} Cls. (ours)": cls[m], f"{name} Reg. (ours)": reg[m], f"{name} gain (ours)": gain,
                        f"{name} gain % (ours)": 100 * gain / reg[m] if reg[m] else np.nan})
        row.update({"SRCC Cls. (paper)": paper[0], "F1 Cls. (paper)": paper[1]})
        rows.append(row)
    out = pd.DataFrame(rows)
    ours = [c for c in out.columns if c.endswith("(ours)")]
    mean = {"gamma": "mean", **out[ours].mean().to_dict()}
    out = pd.concat([out, pd.DataFrame([mean])], ignore_index=True)
    return out.set_index("gamma")


def reg_gain_readings(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's stated mean gain of Cls. over Reg. (Sec. IV-C: "1.8% and 4%", :data:`REG_GAIN`)
    beside ours under both readings, since the paper does not say which it means: *absolute* (SRCC
    points: +0.018) or *relative* (% of the Reg. value: +1.8%). ``table`` is
    :func:`reg_vs_cls_table`'s; rows SRCC and F1, columns ``paper (as absolute)``, ``ours
    (absolute)``, ``paper (as relative %)``, ``ours (relative %)`` (our means over the gammas)."""
    mean = table.loc["mean"]
    rows = {}
    for name, m in (("SRCC", "srcc"), ("F1", "f1")):
        rows[name] = {"paper (as absolute)": REG_GAIN[m], "ours (absolute)": mean[f"{name} gain (ours)"],
                      "paper (as relative %)": 100 * REG_GAIN[m], "ours (relative %)": mean[f"{name} gain % (ours)"]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")
