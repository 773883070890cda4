"""Table III-B: detection and ranking trained together (multi-task) vs detection -> ranking.

The paper (Sec. IV-F2, Table III-B) retrains PPA [11] in two ways, with its detection branch
trained together with the ranking branch ("Detection + Ranking") and with offline proposals and a
ranking-only model ("Detection -> Ranking"), and finds the single-task model as good or better.

salrank's FOSRNet works on cached features of offline proposals, so a detector cannot be trained
end to end with it here. The closest honest proxy, :class:`MultiTaskTrainer`, keeps the proposals
and features fixed and adds a **detection head** on the ranking transformer's tokens, trained at the
same time as the ranking head and sharing the transformer with it:

* objectness: does the proposal cover a reference object (IoU >= ``iou_threshold``), binary
  cross-entropy on every real proposal;
* box refinement: the offsets from the proposal to its best-IoU reference box,
  ``((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph))`` (centres and sizes, pixels),
  smooth-L1 on the positive proposals.

The loss is ``ranking loss (eq. 11) + detection_weight * (objectness + box)``; only the ranking
head is kept and tested, with the same protocol as every other FOSRNet experiment. So the proxy
asks the paper's question, "does a detection task sharing the network help the ranking?", not
"do proposals from a jointly trained detector rank better?". Boxes ``[x1, y1, x2, y2]`` pixels.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from salrank.analysis.experiments import Experiment, ExperimentSetup, experiment_key, profile_setup
from salrank.analysis.experiments.definitions import _train_config
from salrank.analysis.experiments.prepare import _split
from salrank.analysis.experiments.runner import _torch_threads
from salrank.config import Settings, get_settings
from salrank.fosrnet.losses import fosrnet_loss
from salrank.fosrnet.train import Trainer, _build_optimizer
from salrank.metrics.peers import iou_matrix
from salrank.paper import DEFAULT_GAMMA, TABLE2_ROWS, TABLE3B

__all__ = [
    "MULTITASK_LABEL",
    "box_deltas",
    "detection_targets",
    "split_detection_targets",
    "MultiTaskTrainer",
    "run_multitask",
    "table3b_table",
]

#: how the proxy is labelled wherever its number is shown
MULTITASK_LABEL = "Detection + Ranking (proxy: detection head trained with the ranker)"


def box_deltas(proposals, targets) -> np.ndarray:
    """Offsets ``(dx, dy, dw, dh)`` (float64 ``(N, 4)``) from each proposal to its target box, both
    ``[x1, y1, x2, y2]`` pixels: centre shift over the proposal size, log size ratio."""
    p = np.asarray(proposals, np.float64).reshape(-1, 4)
    t = np.asarray(targets, np.float64).reshape(-1, 4)
    pw, ph = np.maximum(p[:, 2] - p[:, 0], 1e-6), np.maximum(p[:, 3] - p[:, 1], 1e-6)
    tw, th = np.maximum(t[:, 2] - t[:, 0], 1e-6), np.maximum(t[:, 3] - t[:, 1], 1e-6)
    dx = ((t[:, 0] + t[:, 2]) - (p[:, 0] + p[:, 2])) / 2 / pw
    dy = ((t[:, 1] + t[:, 3]) - (p[:, 1] + p[:, 3])) / 2 / ph
    return np.stack([dx, dy, np.log(tw / pw), np.log(th / ph)], axis=1)


def detection_targets(proposals, ref_boxes, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Objectness (float64 ``(N,)``, 1 = IoU with some reference box >= ``iou_threshold``) and box
    offsets to the best-IoU reference box (``(N, 4)``, :func:`box_deltas`; zeros without a reference)
    of one image's proposals."""
    p = np.asarray(proposals, np.float64).reshape(-1, 4)
    r = np.asarray(ref_boxes, np.float64).reshape(-1, 4)
    if len(p) == 0 or len(r) == 0:
        return np.zeros(len(p)), np.zeros((len(p), 4))
    iou = iou_matrix(r, p)  # (R, N)
    best = iou.argmax(axis=0)
    objectness = (iou[best, np.arange(len(p))] >= iou_threshold).astype(np.float64)
    return objectness, box_deltas(p, r[best])


def split_detection_targets(split, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detection_targets` of every proposal of a :class:`~salrank.fosrnet.data.RankingSplit`,
    concatenated in the split's proposal order; the split needs reference boxes."""
    if split.ref_boxes is None:
        raise ValueError(f"split {split.name!r} has no reference boxes: the detection task has no targets "
                         "(on SALICON, put COCO's annotations/instances_train2014.json and "
                         "instances_val2014.json under SALRANK_DATA)")
    store = split.features
    objs, deltas = [], []
    for i, (s, e) in enumerate(zip(store.offsets[:-1], store.offsets[1:], strict=True)):
        o, d = detection_targets(store.arrays["boxes"][s:e], split.ref_boxes[i], iou_threshold)
        objs.append(o)
        deltas.append(d)
    return np.concatenate(objs) if objs else np.zeros(0), np.concatenate(deltas) if deltas else np.zeros((0, 4))


class MultiTaskTrainer(Trainer):
    """:class:`~salrank.fosrnet.train.Trainer` whose loss adds a detection task on the ranking
    transformer's tokens (module docstring). Checkpoints hold the ranking model only (the
    detection head is dropped at test time), so they load and test like any FOSRNet checkpoint.
    Needs a head with a ``trunk`` and a ``classifier`` (``vit``) and a train split with reference
    boxes; ``detection_weight = 0`` trains exactly the ranking-only model."""

    def __init__(self, *args, detection_weight: float = 1.0, iou_threshold: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        head = self.model.head
        if self.model.output_kind != "classes" or not (hasattr(head, "trunk") and hasattr(head, "classifier")):
            raise ValueError(f"MultiTaskTrainer: head {self.model.config.head_name!r} has no shared transformer trunk")
        if not (np.isfinite(detection_weight) and detection_weight >= 0):
            raise ValueError(f"detection_weight must be finite and >= 0, got {detection_weight}")
        self.detection_weight = float(detection_weight)
        objectness, deltas = split_detection_targets(self.train_split, iou_threshold)
        self.data.tokens["det_obj"] = torch.tensor(objectness[:, None], dtype=torch.float32, device=self.device)
        self.data.tokens["det_box"] = torch.tensor(deltas, dtype=torch.float32, device=self.device)
        width = head.classifier[-1].in_features
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed + 1)
            self.detection = nn.Linear(width, 5).to(self.device)  # objectness logit + 4 box offsets
        self.optimizer, self.scheduler = _build_optimizer(nn.ModuleList([self.model, self.detection]), self.config)

    def joint_loss(self, feats, mask, targets) -> dict[str, torch.Tensor]:
        """``{"rank", "detection", "total"}`` of one batch of sequences (features (B, k, ...))."""
        model, cfg = self.model, self.config
        tokens = model.head.trunk(model.embed(feats), mask)
        rank = fosrnet_loss(model.head.classifier(tokens), targets, mask, alpha=cfg.alpha, margin=cfg.margin)
        out = self.detection(tokens)
        valid = ~mask
        objectness = feats["det_obj"][..., 0]
        det = F.binary_cross_entropy_with_logits(out[..., 0][valid], objectness[valid])
        positive = valid & (objectness > 0.5)
        if positive.any():
            det = det + F.smooth_l1_loss(out[..., 1:][positive], feats["det_box"][positive])
        return {"rank": rank, "detection": det, "total": rank + self.detection_weight * det}

    def batch_loss(self, feats, mask, targets) -> torch.Tensor:
        """The joint loss (eq. 11 + ``detection_weight`` x detection) of one batch."""
        return self.joint_loss(feats, mask, targets)["total"]

    def train_epoch(self) -> float:
        """The base trainer's epoch (same shuffling, same steps) on the joint loss."""
        self.detection.train()
        return super().train_epoch()


def run_multitask(settings: Settings | None = None, *, setup: ExperimentSetup | None = None, seed: int = 0,
                  gamma: float = DEFAULT_GAMMA, detection_weight: float = 1.0, iou_threshold: float = 0.5,
                  progress: bool = False) -> dict:
    """Train the full model (Table II row 7) with the detection task (:class:`MultiTaskTrainer`) on
    ``setup``'s splits and test its ranking; cached under ``settings.cache_dir / "experiments"``.

    Returns ``{"metrics", "history", "summary", "detection_weight", "iou_threshold", "cached"}``;
    ``metrics`` as :func:`salrank.fosrnet.evaluate.evaluate_ranks`. The single-task counterpart is
    ``run_experiment(Experiment(..., model=TABLE2_ROWS[7], gamma=gamma, seed=seed))``.
    """
    import json

    from salrank.fosrnet.evaluate import evaluate_model, evaluate_ranks, headline_metrics
    from salrank.fosrnet.train import load_checkpoint
    from salrank.io import atomic_write_json
    from salrank.metrics import OFFICIAL_GROUP

    settings = settings or get_settings()
    setup = setup or profile_setup(settings)
    exp = Experiment("detection + ranking (multi-task proxy)", model=TABLE2_ROWS[7], gamma=gamma, seed=seed)
    key = f"{experiment_key(exp, setup, settings)}-multitask-w{detection_weight:g}-iou{iou_threshold:g}"
    directory = Path(settings.cache_dir) / "experiments" / key
    if (directory / "result.json").is_file():
        return {**json.loads((directory / "result.json").read_text()), "cached": True}
    log = None
    if progress:
        from tqdm.auto import tqdm

        log = tqdm.write
    detector = setup.detector
    with _torch_threads(setup.threads):
        train, val, test = (_split(setup, settings, role, detector, gamma, exp.beta, progress, log) for role in range(3))
        t0 = time.perf_counter()
        trainer = MultiTaskTrainer(
            exp.model_config(train.features.appearance_dim, setup.head_kwargs, setup.normalize), _train_config(exp, setup),
            train, val, directory / "run", progress=progress, device=setup.device, log=log,
            feature_meta={**train.features.meta, "detector": detector, "gamma": gamma, "beta": exp.beta},
            detection_weight=detection_weight, iou_threshold=iou_threshold,
        )
        summary = trainer.fit(resume=False)
        model, _ = load_checkpoint(trainer.best_path, device=setup.device)
        pred = model.predict_ranks(test.images(), max_sequences=8192) if len(test) else []
        acb = evaluate_ranks(pred, test, setup.nan_policy, protocol="acb")
        official = evaluate_model(model, test, protocol="official") if model.config.k == OFFICIAL_GROUP else None
        metrics = headline_metrics(acb, official)  # the official protocol's beside the paper's numbers
    out = {
        "metrics": metrics,
        "history": summary.pop("history"),
        "summary": {**summary, "train_s": time.perf_counter() - t0, "detector": detector},
        "detection_weight": detection_weight,
        "iou_threshold": iou_threshold,
    }
    atomic_write_json(directory / "result.json", out, indent=1, default=str)
    return {**out, "cached": False}


def table3b_table(single: dict, joint: dict) -> pd.DataFrame:
    """Table III-B laid out with the paper's numbers (:data:`salrank.paper.TABLE3B`) beside ours.

    ``single``/``joint``: test metrics (``srcc``, ``f1``) of the ranking-only model and of the
    multi-task proxy. Rows: the two settings; columns: SRCC/F1 of PPA and FOSRNet as printed, ours.
    """
    rows = {}
    for setting, ours in (("Detection + Ranking", joint), ("Detection -> Ranking", single)):
        row = {}
        for model, label in (("PPA", "PPA, paper"), ("Ours", "FOSRNet, paper")):
            srcc, f1 = TABLE3B[model][setting]
            row.update({f"SRCC ({label})": srcc, f"F1 ({label})": f1})
        row.update({"SRCC (this run)": float(ours["srcc"]), "F1 (this run)": float(ours["f1"])})
        rows[setting] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")
