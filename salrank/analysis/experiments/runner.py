"""Running experiments: :func:`run_experiment` trains, tests and caches one, :func:`run_experiments` a
list as a table; :class:`ExperimentResult` is what they return (cache layout:
:mod:`salrank.analysis.experiments`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salrank.analysis.experiments.definitions import (
    Experiment,
    ExperimentSetup,
    _check_head,
    _experiment_spec,
    _train_config,
    _weights_identity,
    experiment_key,
    profile_setup,
)
from salrank.analysis.experiments.prepare import _split, shuffle_gt_within_images
from salrank.config import Settings, get_settings

#: test-set metric columns of :func:`run_experiments` (see :func:`salrank.metrics.ranking.evaluate`)
METRIC_COLUMNS = (
    "srcc",
    "f1",
    "plcc",
    "rmse",
    "acc_top1",
    "acc_top2",
    "acc_top3",
    "n_images",
    "n_constant_gt",
)


#: :data:`METRIC_COLUMNS` -> the ``official`` protocol's name of the same quantity
#: (:func:`salrank.metrics.official_protocol`); ``n_constant_gt`` has no official counterpart.
_OFFICIAL_NAMES = {"acc_top1": "acc_first", "acc_top2": "acc_second", "acc_top3": "acc_third", "n_images": "n_groups"}


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns (and caches).

    ``metrics``: test metrics under the ``official`` protocol (the authors' unit, the one beside the
    paper's numbers) when the model has 5-proposal sequences, with the ``acb`` protocol's (all n
    proposals) under ``metrics["acb"]``; else the ``acb`` ones (:func:`salrank.fosrnet.evaluate.headline_metrics`;
    ``metrics["protocol"]`` says which); ``history``: one dict per
    epoch (train_loss, val_srcc, val_f1, lr, time_s); per test image, in ``stems`` order:
    ``boxes`` (n, 4) proposals ``[x1, y1, x2, y2]`` pixels, ``pred_ranks`` (n,) 1 = most salient,
    ``gt_ranks`` (n,) RA-SRGT ranks (0 = no fixation), ``gt_scores`` (n,); ``dataset``/``split``
    name the test images (``open_scene_set(dataset, split, ...)``). ``train_s``: training time of
    the run that produced the result; ``cached``: whether this call read it from disk.
    """

    experiment: Experiment
    key: str
    directory: Path
    metrics: dict
    history: list[dict]
    summary: dict
    dataset: str
    split: str
    stems: list[str]
    boxes: list[np.ndarray]
    pred_ranks: list[np.ndarray]
    gt_ranks: list[np.ndarray]
    gt_scores: list[np.ndarray]
    train_s: float
    cached: bool = False

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint (:func:`salrank.fosrnet.train.load_checkpoint`)."""
        return self.directory / "run" / "best.pt"

    def load_model(self, device=None):
        """The trained model (eval mode)."""
        from salrank.fosrnet.train import load_checkpoint

        return load_checkpoint(self.checkpoint, device=device)[0]

    def image(self, key: int | str) -> dict:
        """One test image: stem, boxes, pred_ranks, gt_ranks, gt_scores."""
        i = self.stems.index(key) if isinstance(key, str) else int(key)
        return {
            "stem": self.stems[i],
            "boxes": self.boxes[i],
            "pred_ranks": self.pred_ranks[i],
            "gt_ranks": self.gt_ranks[i],
            "gt_scores": self.gt_scores[i],
        }

    def per_image(self) -> pd.DataFrame:
        """Per test image metrics (:func:`salrank.metrics.ranking.per_image_metrics`), indexed by stem."""
        from salrank.fosrnet.evaluate import gt_values, pred_values
        from salrank.metrics.ranking import per_image_metrics

        df = per_image_metrics(
            [pred_values(r) for r in self.pred_ranks], [gt_values(s) for s in self.gt_scores]
        )
        df.index = pd.Index(self.stems, name="stem")
        return df

    def row(self) -> dict:
        """The experiment's row of :func:`run_experiments`."""
        e = self.experiment
        cfg = e.model_config(8)
        row = {
            "experiment": e.name,
            "head": cfg.head_name,
            "gamma": e.gamma,
            "beta": e.beta,
            "detector": self.summary.get("detector"),
            "shuffle_gt": e.shuffle_gt,
            "seed": e.seed,
        }
        row["protocol"] = self.metrics.get("protocol", "acb")
        row.update({k: self.metrics.get(_OFFICIAL_NAMES.get(k, k) if row["protocol"] == "official" else k,
                                        float("nan")) for k in METRIC_COLUMNS})
        row.update(
            best_epoch=self.summary.get("best_epoch"),
            epochs=self.summary.get("epochs"),
            train_s=self.train_s,
            cached=self.cached,
            key=self.key,
        )
        return row


def _flatten(arrays: Sequence[np.ndarray], dtype, width: int | None = None) -> np.ndarray:
    shape = (0,) if width is None else (0, width)
    return np.concatenate([np.asarray(a, dtype) for a in arrays]) if len(arrays) else np.zeros(shape, dtype)


def _save_predictions(path: Path, stems, boxes, pred, gt_ranks, gt_scores) -> None:
    from salrank.io import atomic_output

    offsets = np.concatenate([[0], np.cumsum([len(b) for b in boxes], dtype=np.int64)])
    with atomic_output(path, "wb") as f:
        np.savez(
            f,
            stems=np.array(stems, dtype=str),
            offsets=offsets,
            boxes=_flatten(boxes, np.float64, 4),
            pred_ranks=_flatten(pred, np.int64),
            gt_ranks=_flatten(gt_ranks, np.int64),
            gt_scores=_flatten(gt_scores, np.float64),
        )


def _load_result(directory: Path, exp: Experiment, key: str) -> ExperimentResult:
    info = json.loads((directory / "result.json").read_text(encoding="utf-8"))
    with np.load(directory / "predictions.npz", allow_pickle=False) as z:
        off = z["offsets"]

        def split(a):
            return [a[s:e] for s, e in zip(off[:-1], off[1:], strict=True)]

        stems = [str(s) for s in z["stems"]]
        boxes, pred, gtr, gts = (split(z[k]) for k in ("boxes", "pred_ranks", "gt_ranks", "gt_scores"))
    return ExperimentResult(
        exp,
        key,
        directory,
        info["metrics"],
        info["history"],
        info["summary"],
        info["dataset"],
        info["split"],
        stems,
        boxes,
        pred,
        gtr,
        gts,
        float(info["train_s"]),
        cached=True,
    )


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_experiment(
    exp: Experiment,
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    progress: bool = False,
) -> ExperimentResult:
    """Train ``exp`` on ``setup`` (default :func:`profile_setup`), test it, cache the result.

    A complete cached result is returned without touching data or models; an interrupted run
    resumes from its last epoch. ``progress``: tqdm bars and the training log.
    """
    from salrank.fosrnet.evaluate import evaluate_model, evaluate_ranks, headline_metrics
    from salrank.fosrnet.train import Trainer, load_checkpoint
    from salrank.io import atomic_write_json
    from salrank.metrics.official import OFFICIAL_GROUP

    if not isinstance(exp, Experiment):
        raise TypeError(f"run_experiment: expected an Experiment, got {type(exp).__name__}")
    settings = settings or get_settings()
    setup = setup or profile_setup(settings)
    key = experiment_key(exp, setup, settings)
    directory = settings.cache_dir / "experiments" / key
    if (directory / "result.json").is_file() and (directory / "predictions.npz").is_file():
        from salrank.cache import read_cache_entry

        # a damaged result is discarded (result.json removed, with a warning) and recomputed
        cached = read_cache_entry(directory / "result.json", lambda _: _load_result(directory, exp, key),
                                  what="experiment cache")
        if cached is not None:
            return cached

    from tqdm.auto import tqdm

    log = tqdm.write if progress else None
    detector = exp.detector or setup.detector
    with _torch_threads(setup.threads):
        train, val, test = (
            _split(setup, settings, role, detector, exp.gamma, exp.beta, progress, log) for role in range(3)
        )
        if exp.shuffle_gt:
            train = shuffle_gt_within_images(train, exp.seed, stream=0)
            val = shuffle_gt_within_images(val, exp.seed, stream=1)
        model_config = exp.model_config(train.features.appearance_dim, setup.head_kwargs, setup.normalize)
        _check_head(model_config)
        meta = {
            **train.features.meta,
            "dataset_name": setup.dataset,
            "detector": detector,
            "top_n": setup.top_n,
            "gamma": exp.gamma,
            "beta": exp.beta,
        }
        t0 = time.perf_counter()
        trainer = Trainer(
            model_config,
            _train_config(exp, setup),
            train,
            val,
            directory / "run",
            feature_meta=meta,
            progress=progress,
            device=setup.device,
            log=log,
        )
        summary = trainer.fit(resume=True)
        train_s = time.perf_counter() - t0
        model, _ = load_checkpoint(trainer.best_path, device=setup.device)
        pred = model.predict_ranks(test.images(), max_sequences=8192) if len(test) else []
        acb = evaluate_ranks(pred, test, setup.nan_policy, protocol="acb")  # records "protocol"
        official = None
        if model.config.k == OFFICIAL_GROUP:  # the authors' unit on the same test images
            official = evaluate_model(model, test, protocol="official")
        metrics = headline_metrics(acb, official)
    history = summary.pop("history")
    summary = {
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "best_val_srcc": summary["best_val_srcc"],
        "detector": detector,
    }
    boxes = [test.features.image(i)["boxes"] for i in range(len(test))]
    _save_predictions(
        directory / "predictions.npz", test.features.stems, boxes, pred, test.gt_ranks, test.gt_scores
    )
    atomic_write_json(
        directory / "result.json",
        {
            "experiment": {**asdict(exp)},
            "spec": _experiment_spec(exp, setup),
            "setup": setup.spec(),
            "weights": _weights_identity(setup, settings),
            "metrics": metrics,
            "history": history,
            "summary": summary,
            "dataset": setup.dataset,
            "split": setup.splits[2],
            "train_s": train_s,
        },
        indent=1,
        default=str,
    )
    result = _load_result(directory, exp, key)
    result.cached = False
    return result


def protocol_label(*results) -> str:
    """The evaluation protocol(s) of ``results`` for a caption: each a :func:`run_experiments` table
    (its ``protocol`` column) or a metrics dict (``metrics["protocol"]``); ``"official"``,
    ``"acb"`` or ``"official/acb"`` when they differ (the book's conventions page, conv-protocols)."""
    seen = []
    for r in results:
        values = list(r["protocol"]) if isinstance(r, pd.DataFrame) else [r.get("protocol", "acb")]
        seen += [v for v in values if v not in seen]
    return "/".join(seen) or "acb"


def run_experiments(
    exps: Sequence[Experiment],
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`run_experiment` for each of ``exps`` (names must differ); one row per experiment.

    Columns: experiment, head, gamma, beta, detector, shuffle_gt, seed, protocol (of the metrics:
    ``official`` when computed, see :class:`ExperimentResult`), the test metrics
    :data:`METRIC_COLUMNS`, best_epoch, epochs, train_s, cached, key.
    """
    from tqdm.auto import tqdm

    exps = list(exps)
    names = [e.name for e in exps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"run_experiments: duplicate experiment names {dupes}")
    settings = settings or get_settings()
    setup = setup or profile_setup(settings)
    rows = [
        run_experiment(e, settings, setup=setup, progress=False).row()
        for e in tqdm(exps, desc="experiments", unit="exp", disable=not progress)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "experiment",
            "head",
            "gamma",
            "beta",
            "detector",
            "shuffle_gt",
            "seed",
            "protocol",
            *METRIC_COLUMNS,
            "best_epoch",
            "epochs",
            "train_s",
            "cached",
            "key",
        ],
    )
