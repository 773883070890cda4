"""Training FOSRNet on cached features (paper Sec. IV-B), resumable and deterministic.

Samples: every ACB sequence (:func:`salrank.fosrnet.acb.circulative_sequences`, k = 5) of every training
image; targets: the GT classes within each sequence (:func:`salrank.fosrnet.losses.sequence_class_targets`
of the RA-SRGT scores; dummy slots ignored). Loss: :func:`salrank.fosrnet.losses.fosrnet_loss` (CE +
alpha * margin ranking), or :func:`salrank.fosrnet.losses.regression_loss` on ``class / (k - 1)`` for the
``reg`` head. Backbones are frozen: only FOSRNet (PE + head) trains.

Presets (:data:`PRESETS`, any field can be overridden):

* ``paper``: SGD momentum 0.9, weight decay 1e-4, lr 1e-3 x 0.1 every 10 epochs, one sequence per
  step (the official code's "batch size 5" = one 5-proposal sequence), early stopping on val SRCC.
* ``fast``: 256 sequences per step, AdamW (lr 1e-3, weight decay 1e-2), cosine schedule.

Determinism: the model is initialised from ``seed``; at the start of epoch ``e`` the global torch
RNG (dropout) and the shuffling generator are seeded from ``(seed, e)``, so an epoch depends only
on the weights and optimiser state at its start. A checkpoint (``last.pt``: model, optimiser,
scheduler, RNG states, epoch, best metric, history, configs) is written atomically after every
epoch and ``best.pt`` when validation SRCC improves; ``fit(resume=True)`` continues from
``last.pt`` and gives the same weights and log as an uninterrupted run (same machine, same
thread count). The log ``metrics.jsonl`` has one JSON line per epoch: epoch, train_loss, val_srcc,
val_f1, lr, time_s.
"""

from __future__ import annotations

import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from salrank.errors import UserFacingError, check_int, check_number
from salrank.fosrnet.acb import circulative_sequences_batched
from salrank.fosrnet.losses import (
    DEFAULT_ALPHA,
    IGNORE_INDEX,
    fosrnet_loss,
    regression_loss,
    sequence_class_targets,
)
from salrank.fosrnet.model import FOSRNet, FOSRNetConfig
from salrank.io import atomic_output, atomic_write_text

__all__ = [
    "GROUPINGS",
    "PRESETS",
    "CheckpointError",
    "CheckpointNotFoundError",
    "SequenceDataset",
    "TrainConfig",
    "TrainingDivergedError",
    "Trainer",
    "epoch_seed",
    "load_checkpoint",
    "read_checkpoint",
    "train_config",
]

TOKEN_KEYS = ("local", "global", "appearance", "centers", "geometry")

GROUPINGS = ("acb", "official")
"""Training sequences: every ACB sequence of every image, or each image's first k proposals."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (see :data:`PRESETS`). ``batch_size`` = sequences per step;
    ``patience`` = epochs without a better val SRCC before stopping (``None``: never);
    ``groups`` = the training sequences (:data:`GROUPINGS`: ``"acb"`` every ACB sequence,
    ``"official"`` the authors' fixed group of each image's first k proposals)."""

    preset: str = "fast"
    epochs: int = 30
    batch_size: int = 256
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    step_size: int = 10
    step_gamma: float = 0.1
    alpha: float = DEFAULT_ALPHA
    margin: float = 0.0
    patience: int | None = 10
    seed: int = 0
    deterministic: bool = True
    groups: str = "acb"

    def __post_init__(self):
        if self.groups not in GROUPINGS:
            raise ValueError(f"TrainConfig.groups: unknown {self.groups!r}; expected one of {GROUPINGS}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"TrainConfig.optimizer: 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("step", "cosine", "constant"):
            raise ValueError(f"TrainConfig.schedule: 'step', 'cosine' or 'constant', got {self.schedule!r}")
        for name in ("epochs", "batch_size", "step_size"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        if self.patience is not None:
            check_int("patience", self.patience, 0)
        check_number("lr", self.lr, 0.0, low_open=True)
        check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_number("step_gamma", self.step_gamma, 0.0, 1.0, low_open=True)
        for name in ("weight_decay", "alpha", "margin"):
            check_number(name, getattr(self, name), 0.0)


PRESETS: dict[str, dict] = {
    "paper": dict(preset="paper", epochs=2000, batch_size=1, optimizer="sgd", lr=1e-3, momentum=0.9,
                  weight_decay=1e-4, schedule="step", step_size=10, step_gamma=0.1, patience=10),
    "fast": dict(preset="fast", epochs=30, batch_size=256, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
                 schedule="cosine", patience=10),
}


def train_config(preset: str = "fast", **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of ``preset`` with ``overrides`` (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"train_config: unknown options {sorted(unknown)}")
    return TrainConfig(**{**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from ``(seed, epoch)`` (numpy ``SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _first_k_groups(offsets, k: int) -> np.ndarray:
    """(I, k) global indices of each image's first ``k`` proposals, -1 padding for short images."""
    counts = np.diff(np.asarray(offsets, np.int64))
    slots = np.arange(k)[None, :]
    return np.where(slots < counts[:, None], np.asarray(offsets[:-1], np.int64)[:, None] + slots, -1)


class SequenceDataset:
    """All training sequences of a split with their targets, over in-memory token tensors.

    ``tokens``: field -> (N, ...) float32 tensors over the concatenated proposals; ``sequences``
    (S, k) int64 global indices (-1 = dummy); ``targets`` (S, k) int64 classes (``IGNORE_INDEX``
    for dummies). ``groups`` (:data:`GROUPINGS`): ``"acb"`` = every ACB sequence of every image;
    ``"official"`` = the authors' training unit, each image's first k proposals as one sequence.
    Equal GT scores are ordered by the proposal's index in its image under ``ties``
    (:func:`salrank.fosrnet.losses.sequence_class_targets`; default the authors' rule), so a
    pair of tied proposals has the same order in every sequence it appears in.
    """

    def __init__(self, features, gt_scores, k: int = 5, device=None, groups: str = "acb",
                 ties: str = "official"):
        if groups not in GROUPINGS:
            raise ValueError(f"groups: unknown {groups!r}; expected one of {GROUPINGS}")
        self.k = k
        arrays = features.arrays
        self.tokens = {key: torch.tensor(np.asarray(arrays[key], np.float32), device=device)
                       for key in TOKEN_KEYS if key in arrays}
        if groups == "acb":
            boxes = [np.asarray(features.arrays["boxes"][s:e], np.float64)
                     for s, e in zip(features.offsets[:-1], features.offsets[1:], strict=True)]
            sequences = circulative_sequences_batched(boxes, k).sequences
        else:
            sequences = _first_k_groups(features.offsets, k)
        self.sequences = torch.as_tensor(sequences)
        n_proposals = int(features.offsets[-1]) if len(features.offsets) else 0
        flat = np.concatenate([np.asarray(s, np.float64) for s in gt_scores]) if len(gt_scores) else np.zeros(0)
        if len(flat) != n_proposals:
            raise ValueError(f"{len(flat)} GT scores for {n_proposals} proposals")
        mask = sequences < 0
        seq_scores = np.where(mask, 0.0, flat[np.maximum(sequences, 0)]) if len(flat) else \
            np.zeros(sequences.shape)
        # global indices grow with the index within an image: one tie order per image
        self.targets = sequence_class_targets(seq_scores, mask, tie_key=np.maximum(sequences, 0), ties=ties) \
            if len(mask) else torch.zeros((0, k), dtype=torch.long)
        self.device = device

    def __len__(self) -> int:
        return len(self.sequences)

    def batch(self, index: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(features (B, k, ...), mask (B, k), targets (B, k)) of sequences ``index``; dummies are zeros."""
        seq = self.sequences[index]
        mask = seq < 0
        safe = seq.clamp(min=0)
        feats = {key: t[safe].masked_fill(mask[..., None].to(t.device), 0.0) for key, t in self.tokens.items()}
        return feats, mask, self.targets[index]


def _compute_loss(model: FOSRNet, feats, mask, targets, cfg: TrainConfig) -> torch.Tensor:
    out = model(feats, mask)
    if model.output_kind == "score":
        valid = targets != IGNORE_INDEX
        t = torch.where(valid, targets, torch.zeros_like(targets)).to(out.dtype) / max(model.config.k - 1, 1)
        return regression_loss(out, t, mask | ~valid, alpha=cfg.alpha, margin=cfg.margin)
    return fosrnet_loss(out, targets, mask, alpha=cfg.alpha, margin=cfg.margin)


def _build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.step_gamma)
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


@contextmanager
def _deterministic(on: bool):
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if on:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_output(path, "wb") as f:
        torch.save(obj, f)


def _rng_state() -> dict:
    """The RNG states as tensors and plain Python values (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                      float(cached)],
            "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))


class CheckpointError(UserFacingError, ValueError):
    """A checkpoint file is missing, damaged, not a salrank checkpoint, or would need to run code
    to load; the message names the file."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the checkpoint path."""


class TrainingDivergedError(UserFacingError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch, the step and what to
    change (a lower ``lr``, ``normalize=True`` for features of a large scale)."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict in ``path``, loaded with ``torch.load(weights_only=True)``: tensors and
    plain Python data only, so a file whose pickle would build other objects (and could run
    code) is refused without running anything.

    Raises:
        CheckpointError: missing, truncated or foreign file, or one that needs more than plain data.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(f"{path}: refused: loading it needs Python objects beyond tensors and plain "
                                  "data (its pickle could run code); salrank checkpoints never do") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({str(exc).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or another format: {first})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{path}: not a salrank training checkpoint (no 'model' and 'model_config')")
    return ckpt


def load_checkpoint(path: str | os.PathLike, device=None) -> tuple[FOSRNet, dict]:
    """A model (eval mode) and the checkpoint dict (configs, history, ``feature_meta``) from ``path``,
    read safely (:func:`read_checkpoint`). Raises :class:`CheckpointError`."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    try:
        model = FOSRNet(FOSRNetConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: the checkpoint does not fit this version's model ({first})") from None
    if device is not None:
        model.to(device)
    return model.eval(), ckpt


class Trainer:
    """Train a FOSRNet on a :class:`~salrank.fosrnet.data.RankingSplit`, validating on another.

    ``out_dir`` receives ``last.pt``, ``best.pt`` and ``metrics.jsonl``; ``feature_meta`` (how the
    features were made) is stored in the checkpoints for ``salrank eval`` and ``salrank rank``.
    """

    def __init__(self, model_config: FOSRNetConfig, config: TrainConfig, train, val=None,
                 out_dir: str | os.PathLike = "runs/fosrnet", feature_meta: dict | None = None,
                 progress: bool = True, device=None, log=print):
        self.model_config = model_config
        self.config = config
        self.train_split = train
        self.val_split = val
        self.out_dir = Path(out_dir)
        self.feature_meta = dict(feature_meta or train.features.meta)
        self.progress = progress
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.log = log or (lambda *_: None)
        self.data = SequenceDataset(train.features, train.gt_scores, model_config.k, self.device,
                                    groups=config.groups)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = FOSRNet(model_config)
        if model_config.normalize:
            self.model.set_normalization(train.features.arrays)
        self.model.to(self.device)
        self.optimizer, self.scheduler = _build_optimizer(self.model, config)
        self.epoch = 0
        self.best_metric = -float("inf")
        self.best_epoch = 0
        self.bad_epochs = 0
        self.history: list[dict] = []

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def _checkpoint(self, with_optimizer: bool = True) -> dict:
        ckpt = {
            "model": self.model.state_dict(),
            "model_config": asdict(self.model_config),
            "train_config": asdict(self.config),
            "feature_meta": self.feature_meta,
            "epoch": self.epoch,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
        }
        if with_optimizer:
            ckpt.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                        rng=_rng_state())
        return ckpt

    def resume(self) -> bool:
        """Load ``last.pt`` if present (returns whether it did); the configs must match."""
        if not self.last_path.is_file():
            return False
        ckpt = read_checkpoint(self.last_path)
        if ckpt["model_config"] != asdict(self.model_config):
            raise ValueError(f"{self.last_path}: the checkpoint's model configuration differs from this run's")
        saved = {k: v for k, v in ckpt["train_config"].items() if k != "epochs"}
        if saved != {k: v for k, v in asdict(self.config).items() if k != "epochs"}:
            raise ValueError(f"{self.last_path}: the checkpoint's training configuration differs from this run's")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        self.epoch = int(ckpt["epoch"])
        self.best_metric = float(ckpt["best_metric"])
        self.best_epoch = int(ckpt["best_epoch"])
        self.bad_epochs = int(ckpt["bad_epochs"])
        self.history = list(ckpt["history"])
        return True

    def batch_loss(self, feats, mask, targets) -> torch.Tensor:
        """The training loss of one batch of sequences (eq. 11, or the regression loss); a
        subclass with more terms overrides this (:class:`salrank.analysis.multitask.MultiTaskTrainer`)."""
        return _compute_loss(self.model, feats, mask, targets, self.config)

    def train_epoch(self) -> float:
        """One pass over all sequences (shuffled with the epoch's seed); returns the mean loss."""
        cfg = self.config
        seed = epoch_seed(cfg.seed, self.epoch + 1)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.data), generator=gen)
        self.model.train()
        total, count = 0.0, 0
        from tqdm.auto import tqdm

        steps = range(0, len(order), cfg.batch_size)
        for start in tqdm(steps, desc=f"epoch {self.epoch + 1}", unit="step", disable=not self.progress,
                          leave=False):
            index = order[start : start + cfg.batch_size]
            feats, mask, targets = self.data.batch(index)
            loss = self.batch_loss(feats, mask.to(self.device), targets.to(self.device))
            if not torch.isfinite(loss.detach()):
                scale = max(float(t.detach().abs().max()) for t in feats.values()) if feats else float("nan")
                raise TrainingDivergedError(
                    f"training diverged: loss {float(loss.detach())} at epoch {self.epoch + 1}, step "
                    f"{start // cfg.batch_size + 1} (largest input feature {scale:.3g}); lower lr "
                    f"(now {self.optimizer.param_groups[0]['lr']:g}) or set normalize=True when the "
                    "features' scale is large (random backbones)")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        return total / max(count, 1)

    def validate(self) -> dict:
        from salrank.fosrnet.evaluate import evaluate_model

        if self.val_split is None or len(self.val_split) == 0:
            return {}
        return evaluate_model(self.model, self.val_split)

    def fit(self, resume: bool = False) -> dict:
        """Train up to ``config.epochs`` epochs (early stopping on val SRCC); returns a summary."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.resume():
            self.log(f"resumed from {self.last_path} after epoch {self.epoch}")
        cfg = self.config
        with _deterministic(cfg.deterministic), torch.random.fork_rng(devices=[]):
            while self.epoch < cfg.epochs:
                if cfg.patience is not None and self.bad_epochs >= cfg.patience:
                    break
                t0 = time.perf_counter()
                lr = float(self.optimizer.param_groups[0]["lr"])
                loss = self.train_epoch()
                self.scheduler.step()
                self.epoch += 1
                val = self.validate()
                row = {"epoch": self.epoch, "train_loss": loss, "val_srcc": val.get("srcc", float("nan")),
                       "val_f1": val.get("f1", float("nan")), "lr": lr, "time_s": time.perf_counter() - t0}
                self.history.append(row)
                metric = row["val_srcc"] if val else -loss
                improved = bool(np.isfinite(metric) and metric > self.best_metric)
                if improved:
                    self.best_metric, self.best_epoch, self.bad_epochs = float(metric), self.epoch, 0
                    _atomic_torch_save(self._checkpoint(with_optimizer=False), self.best_path)
                else:
                    self.bad_epochs += 1
                _atomic_torch_save(self._checkpoint(), self.last_path)
                atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in self.history))
                self.log(f"epoch {self.epoch}: loss {loss:.4f}  val SRCC {row['val_srcc']:.4f}  "
                         f"F1 {row['val_f1']:.4f}  lr {lr:.2e}  {row['time_s']:.1f}s" + ("  *" if improved else ""))
        if not self.best_path.is_file():  # e.g. NaN metrics throughout: keep the last weights
            _atomic_torch_save(self._checkpoint(with_optimizer=False), self.best_path)
        return {"epochs": self.epoch, "best_epoch": self.best_epoch, "best_val_srcc": self.best_metric,
                "history": self.history, "out_dir": str(self.out_dir)}
