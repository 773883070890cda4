"""Each book page's headline, picked from the results the page has already computed.

A page records one headline with :func:`salrank.viz.report.headline`; the book's "Results at a
glance" page lists them. The functions here take a page's result tables (nothing is recomputed)
and return ``{"quantity", "ours", "paper"}``, with the paper's number from :mod:`salrank.paper`
where the paper prints one and ``None`` where it does not (a chart without numbers, a user study):

    headline("Fig. 12", **coverage_headline(study.curves, labels), settings=settings, protocol=...)

``ours`` is a number, or text where a page has no number of its own to show (a range, a count, or
why it was not computed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from salrank import paper

__all__ = [
    "coverage_headline",
    "detector_speed_headline",
    "detector_swap_headline",
    "efp_headline",
    "failure_headline",
    "offset_plateau_headline",
    "peer_headline",
    "pipeline_speed_headline",
    "planted_salience_headline",
    "splits_headline",
    "value_range",
    "weights_headline",
]


def _result(quantity: str, ours, paper_value=None) -> dict:
    return {"quantity": quantity, "ours": ours, "paper": paper_value}


def value_range(values, digits: int = 3) -> str | None:
    """``"lo-hi"`` of the finite ``values`` (one value alone when they are all equal), ``None`` when
    there is none."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = f"{v.min():.{digits}f}", f"{v.max():.{digits}f}"
    return lo if lo == hi else f"{lo}-{hi}"


def peer_headline(rows: Sequence[Mapping]) -> dict:
    """Table I: the SRCC of FOSRNet ranking a peer dataset's GT objects beside the paper's "Ours" on
    that dataset, from the page's rows (``dataset`` ``"ASSR"``/``"IRSR"``, ``ranker``, ``SRCC``).
    Without a FOSRNet row, the box-area baseline's SRCC (the paper has no such row); without any
    row, the paper's number on Siris' dataset with ours "not run"."""
    columns = [name for _, name in paper.TABLE1_DATASETS]
    labels = dict((name, label) for label, name in paper.TABLE1_DATASETS)

    def paper_srcc(dataset: str) -> float:
        return paper.TABLE1["Ours"][2 * columns.index(dataset.lower())]

    rows = list(rows)
    fosrnet = [r for r in rows if r["ranker"] == "FOSRNet"]
    if fosrnet:
        r = fosrnet[0]
        return _result(f"test SRCC, FOSRNet ranking the GT objects, {labels[r['dataset'].lower()]} ({r['dataset']})",
                       r["SRCC"], paper_srcc(r["dataset"]))
    if rows:
        r = rows[0]
        return _result(f"test SRCC, {r['ranker']} ranking the GT objects, {labels[r['dataset'].lower()]} "
                       f"({r['dataset']}); the paper has no such row", r["SRCC"])
    return _result(f"test SRCC, FOSRNet, {labels['assr']} (ASSR)", "not run: no peer dataset provided",
                   paper_srcc("assr"))


def detector_speed_headline(table: pd.DataFrame, paper_name: str = "EfficientDet") -> dict:
    """Table IV-B: images per second of the detector matched to ``paper_name`` in a
    :func:`salrank.analysis.detectors.with_paper_fps` table (the fastest when several are), beside
    the paper's FPS."""
    rows = table[(table["paper_name"] == paper_name) & table["images_per_s"].notna()]
    quantity = f"{paper_name} throughput, images/s"
    if rows.empty:
        return _result(quantity, "not timed", paper.TABLE4B_FPS[paper_name])
    row = rows.loc[rows["images_per_s"].idxmax()]
    return _result(f"{paper_name} ({row['detector']}) throughput, images/s", float(row["images_per_s"]),
                   paper.TABLE4B_FPS[paper_name])


def pipeline_speed_headline(stages: pd.DataFrame, record: str | None) -> dict:
    """Table IV: the whole pipeline's images per second in ``record`` (a row of
    :func:`salrank.bench.stage_frame`), beside the paper's (Table IV-A, proposals included)."""
    quantity = "end-to-end speed, images/s"
    rows = stages[(stages["record"] == record) & (stages["stage"] == "whole pipeline")]
    if rows.empty:
        return _result(quantity, "no benchmark record", paper.PIPELINE_FPS)
    return _result(quantity, float(rows["FPS"].iloc[0]), paper.PIPELINE_FPS)


def detector_swap_headline(table: pd.DataFrame, group: str) -> dict:
    """Table VI: the range (max - min) of test SRCC over the proposal sources in column group
    ``group`` of a :func:`salrank.analysis.proposal_sources.detector_swap_table`, beside the range of
    the paper's Table VI."""
    ours = table[(group, "SRCC")].to_numpy(dtype=np.float64)
    ours = ours[np.isfinite(ours)]
    srcc = [s for s, _ in paper.TABLE6.values()]
    return _result(f"range (max - min) of test SRCC over {len(ours)} proposal sources, {group}",
                   float(ours.max() - ours.min()) if len(ours) else "not run", max(srcc) - min(srcc))


def coverage_headline(curves: pd.DataFrame | None, labels: Sequence[str] | None = None, *, column: str = "detector",
                      threshold: float = 0.5, top_k: int = 5) -> dict:
    """Fig. 12 (and Tables VII-VIII): the coverage of the reference's top-``top_k`` proposals at IoU
    ``threshold`` by the others' (rows of ``curves`` whose ``column`` is in ``labels``; default all),
    as the range over them; "not computed" when ``curves`` is ``None`` or has no such row. The
    paper prints Fig. 12 as a chart: no paper number."""
    quantity = f"top-{top_k} coverage of the reference's proposals at IoU {threshold:g}"
    if curves is None:
        return _result(quantity, "not computed")
    rows = curves[(curves["top_k"] == top_k) & np.isclose(curves["threshold"], threshold)]
    if labels is not None:
        rows = rows[rows[column].isin(list(labels))]
    names = list(dict.fromkeys(rows[column]))
    if not names:
        return _result(quantity, "not computed")
    which = ", ".join(names) if len(names) <= 2 else f"range over {len(names)} {column}s"
    return _result(f"{quantity} ({which})", value_range(rows["coverage"]))


def efp_headline(best: pd.DataFrame, model: str, dataset: str, gamma: float = paper.DEFAULT_GAMMA) -> dict:
    """Fig. 9: ``model``'s SRCC at its best lambda (a :func:`salrank.analysis.efp.best_lambda` row)
    on ``dataset`` at GT threshold ``gamma``. The paper prints no EFP model's number (its Fig. 9
    quotes only FOSRNet's SRCC, which every EFP model stays below)."""
    rows = best[(best["model"] == model) & (best["dataset"] == dataset) & np.isclose(best["gamma"], gamma)]
    quantity = f"best SRCC over lambda, {model} map ranked by eq. 12, gamma {gamma:g}, {dataset}"
    if rows.empty:
        return _result(quantity, "not computed")
    row = rows.iloc[0]
    return _result(f"{quantity} (lambda {row['lambda']:g})", float(row["srcc"]))


def failure_headline(summary: pd.DataFrame, n_worst: int) -> dict:
    """Fig. 14: the failure type most over-represented among the ``n_worst`` images (the largest
    ``lift`` > 1 of a :func:`salrank.analysis.qualitative.failure_summary`), with its shares."""
    quantity = f"failure type most over-represented among the {n_worst} worst test images"
    over = summary[summary["lift"] > 1]
    if over.empty:
        return _result(quantity, "none")
    name = over["lift"].idxmax()
    row = over.loc[name]
    return _result(quantity, f"{name}: {row['worst']:.0%} of the worst vs {row['all']:.0%} of all")


def offset_plateau_headline(offsets: pd.DataFrame, ranges: pd.DataFrame) -> dict:
    """Fig. 11-B: the relative spread (max - min) / mean of the gamma offsets over each range of
    ``ranges`` (:func:`salrank.gt.offset_range_summary`; 0 = flat, the paper's plateaus) on the
    dataset of ``offsets`` (:func:`salrank.gt.offset_sweeps`) with the most boxes. The paper prints
    no number ("essentially the same")."""
    sizes = offsets.groupby("dataset", sort=False)["boxes"].first()
    dataset = sizes.idxmax()
    rows = ranges[(ranges["dataset"] == dataset) & (ranges["parameter"] == "gamma")]
    return _result(f"relative spread (max - min) / mean of the gamma offsets per range of gamma ({dataset})",
                   ", ".join(f"{r}: {s:.2f}" for r, s in zip(rows["range"], rows["spread"], strict=True))
                   or "not computed")


def splits_headline(summary: pd.DataFrame) -> dict:
    """Data overview: the images in the train / val / test splits of a
    :func:`salrank.data.scenes.summary_table` (its last dataset with all three), beside the paper's
    SALICON division (Sec. IV-A)."""
    splits = ("train", "val", "test")
    counts: dict[str, dict[str, int]] = {}
    for dataset, split, images in zip(summary["dataset"], summary["split"], summary["images"], strict=True):
        counts.setdefault(dataset, {})[split] = int(images)
    complete = [d for d, c in counts.items() if all(s in c for s in splits)]
    if not complete:
        raise ValueError("summary has no dataset with train, val and test splits")
    dataset = complete[-1]
    return _result(f"images in the train / val / test splits ({dataset})",
                   " / ".join(f"{counts[dataset][s]:,}" for s in splits),
                   " / ".join(f"{n:,}" for n in (paper.TRAIN_SIZE, paper.VAL_SIZE, paper.TEST_SIZE)))


def planted_salience_headline(summary: pd.DataFrame | None, method: str = "ra-srgt") -> dict:
    """GT page: ``method``'s mean Spearman rho with SynthSal's planted salience (an
    :func:`salrank.gt.agreement_summary` against it) and its place among the methods. The paper's
    counterpart is a user study (Fig. 11-A) without printed numbers."""
    quantity = f"mean Spearman rho of {'RA-SRGT' if method == 'ra-srgt' else method} with the planted salience (SynthSal)"
    if summary is None or summary.empty:
        return _result(quantity, "n/a: no planted salience on this profile")
    dataset = summary["dataset"].iloc[0]
    part = summary[summary["dataset"] == dataset].sort_values("mean", ascending=False).reset_index(drop=True)
    place = int(part.index[part["method"] == method][0]) + 1
    return _result(f"{quantity}, {dataset}; place {place} of {len(part)} methods",
                   float(part.loc[place - 1, "mean"]))


def weights_headline(weights: pd.DataFrame) -> dict:
    """Reproducibility page: how many of the registered pretrained files were found (a
    :func:`salrank.provenance.weights_table`); the paper's numbers need all of them."""
    found = int((weights["found at"] != "missing").sum())
    return _result("pretrained weight files found", f"{found} of {len(weights)}")
