"""Named FOSRNet training experiments (the paper's ablations), cached on disk, as result tables.

An :class:`Experiment` is one trained-and-tested FOSRNet variant: model switches or head
(Table II, Table III-C, "Ours (Reg.)"), the RA-SRGT ``gamma``/``beta`` of the labels, the
proposal source (Table VI), shuffled training labels (Table III-A), training overrides and a
seed. An :class:`ExperimentSetup` says on what it runs (datasets, subset sizes, backbones,
features, optimiser preset); :func:`profile_setup` builds it from a :class:`salrank.profiles.Profile`
(the ``sample`` and ``full`` profiles: see :mod:`salrank.profiles`).

On a 2-core CPU a sample experiment trains in 2-3 s (FC, GCN) or 5-9 s (ViT, Reg.) once the
features are cached; the first experiment of a fresh cache also generates SynthSal (about 15 s) and
extracts the features of the 300 images (about 30-45 s).

Feature standardisation (``FOSRNetConfig.normalize``, a salrank addition) follows the profile: on
for ``sample``, off for ``full``; an experiment may override it.

:func:`run_experiment` trains on train (early stopping on val SRCC), evaluates the best
checkpoint on test and caches everything under ``cache_dir("experiments", <key>)``: the
checkpoints (``run/best.pt``, ``run/last.pt``; an interrupted run resumes), ``result.json``
(experiment, setup, test metrics, history) and ``predictions.npz`` (per test image: stem, proposal
boxes ``[x1, y1, x2, y2]`` pixels, predicted ranks 1..n, RA-SRGT scores and ranks, 0 = no
fixation). The key hashes everything that changes the result: the experiment without its
``name`` (a label only), with the model overrides resolved to the full configuration (so
``{"head": "vit"}`` and ``{}`` share a run), the setup without its device, and the identity of the
weights used (:func:`salrank.models.backbones.weights_identity`). Features are cached separately
(:func:`salrank.fosrnet.features.extract_features`) and shared by all experiments with the same
proposals; labels are recomputed per ``gamma``/``beta``.
:func:`run_experiments` runs a list and returns one table row per experiment.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from salrank.config import Settings, get_settings
from salrank.fosrnet.data import RankingSplit
from salrank.fosrnet.features import FeatureConfig
from salrank.fosrnet.model import FOSRNetConfig
from salrank.fosrnet.train import TrainConfig
from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA
from salrank.profiles import Profile, get_profile

__all__ = [
    "EXPERIMENT_VERSION",
    "METRIC_COLUMNS",
    "Experiment",
    "ExperimentResult",
    "ExperimentSetup",
    "describe_setup",
    "experiment_key",
    "feature_networks",
    "open_scene_set",
    "profile_setup",
    "run_experiment",
    "run_experiments",
    "shuffle_gt_within_images",
]

#: bump when a change of this module changes results (invalidates the experiment cache)
EXPERIMENT_VERSION = 1

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

_MODEL_KEYS = frozenset(f.name for f in fields(FOSRNetConfig)) - {"appearance_dim"}
_TRAIN_KEYS = frozenset(f.name for f in fields(TrainConfig)) - {"preset", "seed"}


# --- experiments -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """One FOSRNet variant to train and test.

    ``name``: the row label in result tables (not part of the cache key). ``model``: overrides of
    :class:`~salrank.fosrnet.model.FOSRNetConfig` fields (e.g. ``{"head": "gcn"}`` or a
    :data:`salrank.paper.TABLE2_ROWS` entry, or the salrank additions ``normalize``, ``use_geometry``);
    ``appearance_dim`` comes from the backbone and ``normalize`` defaults to the setup's. ``gamma``/``beta``: RA-SRGT parameters of the labels (train, val and test).
    ``detector``: proposal source (:func:`salrank.fosrnet.data.dataset_proposals`; ``None`` = the
    setup's). ``shuffle_gt``: train (and validate) on GT scores permuted within each image, seeded
    by ``seed``; the test labels stay real (Table III-A). ``train``: overrides of
    :class:`~salrank.fosrnet.train.TrainConfig` on top of the setup's. ``seed``: training seed.
    """

    name: str
    model: Mapping = field(default_factory=dict)
    gamma: float = DEFAULT_GAMMA
    beta: float = DEFAULT_BETA
    detector: str | None = None
    shuffle_gt: bool = False
    train: Mapping = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        from salrank.fosrnet.heads import list_heads

        where = f"Experiment {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Experiment.name: a non-empty string is required")
        for attr in ("model", "train"):
            value = getattr(self, attr)
            if not isinstance(value, Mapping):
                raise TypeError(f"{where}: {attr} must be a mapping, got {type(value).__name__}")
            object.__setattr__(self, attr, dict(value))
        unknown = sorted(set(self.model) - _MODEL_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown model option(s) {unknown}; known: {sorted(_MODEL_KEYS)}")
        unknown = sorted(set(self.train) - _TRAIN_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown train option(s) {unknown}; known: {sorted(_TRAIN_KEYS)}")
        if "head" in self.model and self.model["head"] not in list_heads():
            raise ValueError(f"{where}: unknown head {self.model['head']!r}; known: {list_heads()}")
        try:
            config = self.model_config(appearance_dim=8)
            _check_head(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not (np.isfinite(self.gamma) and self.gamma >= 0 and np.isfinite(self.beta)):
            raise ValueError(
                f"{where}: gamma must be finite and >= 0 and beta finite, got {self.gamma}, {self.beta}"
            )
        if self.detector is not None and not isinstance(self.detector, str | os.PathLike):
            raise TypeError(f"{where}: detector must be a name, a path or None")
        if isinstance(self.detector, os.PathLike):
            object.__setattr__(self, "detector", str(self.detector))
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "beta", float(self.beta))
        object.__setattr__(self, "seed", int(self.seed))

    __hash__ = None  # mutable-looking mapping fields: compare with ==, key with experiment_key()

    def model_config(
        self, appearance_dim: int, head_kwargs: Mapping[str, Mapping] | None = None, normalize: bool = False
    ) -> FOSRNetConfig:
        """The full :class:`FOSRNetConfig` for a backbone of ``appearance_dim``.

        ``head_kwargs``: per head name, default constructor options (a setup's); the experiment's
        own ``head_kwargs`` override them. ``normalize``: the default of the feature
        standardisation (a setup's); the experiment's own ``normalize`` wins.
        """
        config = FOSRNetConfig(**{"normalize": normalize, **self.model}, appearance_dim=appearance_dim)
        defaults = dict((head_kwargs or {}).get(config.head_name, {}))
        return replace(config, head_kwargs={**defaults, **config.head_kwargs})


def _check_head(config: FOSRNetConfig) -> None:
    """Build the head on the meta device (no memory): unknown head options raise ``TypeError``."""
    import torch

    from salrank.fosrnet.heads import create_head

    with torch.device("meta"):
        create_head(
            config.head_name,
            in_dim=config.in_dim,
            k=config.k,
            num_classes=config.num_classes,
            **config.head_kwargs,
        )


# --- setups ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentSetup:
    """On what experiments run (see the module table).

    ``splits``: dataset splits for (train, val, test); ``limits``: first N images of each (``None``
    = all). ``dataset_root``: a SynthSal folder (:func:`salrank.data.synthsal.generate_dataset`)
    instead of the profile's sample. ``pretrained``: the feature networks' weights, ``True``
    (required), ``False`` (random, seeded 0) or ``"auto"`` (the files present, else random;
    :func:`salrank.models.backbones.feature_extractors`). ``normalize``: the default of
    ``FOSRNetConfig.normalize`` (feature standardisation, a salrank addition). ``preset`` and
    ``train``: the :func:`salrank.fosrnet.train.train_config` preset and overrides. ``head_kwargs``: head
    name -> default constructor options (:mod:`salrank.fosrnet.heads`; an experiment's own ``head_kwargs``
    win). ``threads``: torch CPU threads while an experiment runs (``None``: unchanged). ``device``
    and ``threads`` are not part of the cache key.
    """

    profile: str
    dataset: str
    splits: tuple[str, str, str] = ("train", "val", "test")
    limits: tuple[int | None, int | None, int | None] = (None, None, None)
    dataset_root: str | None = None
    detector: str = "oracle"
    top_n: int = 10
    proposal_seed: int = 0
    backbone: str = "resnet18"
    pretrained: bool | str = "auto"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    head_kwargs: Mapping = field(default_factory=dict)
    preset: str = "fast"
    train: Mapping = field(default_factory=dict)
    normalize: bool = False
    nan_policy: str = "exclude"
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self):
        from salrank.data.scenes import DATASETS
        from salrank.fosrnet.train import PRESETS
        from salrank.metrics.ranking import NAN_POLICIES
        from salrank.models.backbones import BACKBONES, PRETRAINED

        if self.dataset not in DATASETS:
            raise ValueError(f"ExperimentSetup.dataset: unknown {self.dataset!r}; expected one of {DATASETS}")
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"ExperimentSetup.backbone: unknown {self.backbone!r}; expected one of {sorted(BACKBONES)}"
            )
        if not any(self.pretrained is p or self.pretrained == p == "auto" for p in PRETRAINED):
            raise ValueError(f"ExperimentSetup.pretrained: True, False or 'auto', got {self.pretrained!r}")
        if self.preset not in PRESETS:
            raise ValueError(
                f"ExperimentSetup.preset: unknown {self.preset!r}; expected one of {sorted(PRESETS)}"
            )
        if self.nan_policy not in NAN_POLICIES:
            raise ValueError(
                f"ExperimentSetup.nan_policy: expected one of {NAN_POLICIES}, got {self.nan_policy!r}"
            )
        if len(self.splits) != 3 or len(self.limits) != 3:
            raise ValueError("ExperimentSetup: splits and limits need 3 entries (train, val, test)")
        unknown = sorted(set(self.train) - _TRAIN_KEYS)
        if unknown:
            raise ValueError(
                f"ExperimentSetup.train: unknown option(s) {unknown}; known: {sorted(_TRAIN_KEYS)}"
            )
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "limits", tuple(None if n is None else int(n) for n in self.limits))
        object.__setattr__(self, "train", dict(self.train))
        object.__setattr__(self, "head_kwargs", {str(k): dict(v) for k, v in self.head_kwargs.items()})
        if self.dataset_root is not None:
            object.__setattr__(self, "dataset_root", str(Path(self.dataset_root).expanduser().resolve()))

    __hash__ = None

    def spec(self) -> dict:
        """The JSON-able description that enters the cache key (everything but ``device``)."""
        out = asdict(self)
        out.pop("device")
        out.pop("threads")
        return out


def profile_setup(settings: Settings | None = None, profile: Profile | None = None, **overrides) -> ExperimentSetup:
    """The :class:`ExperimentSetup` of a :class:`~salrank.profiles.Profile` (default: that of
    ``settings.profile``), on ``settings``' device, with field overrides. A ``dataset`` override
    brings its own proposal source (:meth:`~salrank.profiles.Profile.detector_for`) unless
    ``detector`` is given too."""
    settings = settings or get_settings()
    p = profile or get_profile(settings.profile)
    known = {f.name for f in fields(ExperimentSetup)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"profile_setup: unknown options {unknown}; known: {sorted(known)}")
    dataset = overrides.get("dataset", p.dataset)
    base = ExperimentSetup(
        profile=p.name,
        dataset=dataset,
        splits=p.splits,
        limits=p.limits,
        detector=p.detector_for(dataset),
        backbone=p.backbone,
        pretrained=p.pretrained,
        features=p.features,
        head_kwargs=p.head_kwargs,
        preset=p.preset,
        train={} if p.epochs is None else {"epochs": p.epochs},
        normalize=p.normalize,
        device=str(settings.torch_device()),
        threads=p.threads,
    )
    if settings.limit is not None and not p.sample_result:  # SALRANK_LIMIT / salrank reproduce --limit
        base = replace(base, limits=(settings.limit,) * 3)
    if settings.epochs is not None and not p.sample_result:  # SALRANK_EPOCHS / salrank reproduce --epochs
        base = replace(base, train={"epochs": settings.epochs})
    return replace(base, **overrides)


# --- data and extractors -----------------------------------------------------------------------
def open_scene_set(
    dataset: str,
    split: str,
    settings: Settings | None = None,
    *,
    synthsal_root: str | os.PathLike | None = None,
):
    """A :class:`~salrank.data.scenes.SceneSet`: :func:`~salrank.data.scenes.open_dataset`, or one split of
    the SynthSal folder ``synthsal_root``."""
    from salrank.data.scenes import SceneSet, open_dataset

    if dataset == "synthsal" and synthsal_root is not None:
        from salrank.data.synthsal import load_synthsal

        part = load_synthsal(synthsal_root, split, cache=False)
        return SceneSet(
            f"synthsal-{part.root.name}", split, part.fixations, part.image_paths, part.boxes, part.salience
        )
    return open_dataset(dataset, split, settings)


def _weights_identity(setup: ExperimentSetup, settings: Settings) -> dict:
    """Which weights ``setup``'s feature networks would have (:meth:`WeightsIdentity.to_dict`)."""
    from salrank.models.backbones import weights_identity

    return weights_identity(setup.pretrained, 0, setup.backbone, settings.weights_dir).to_dict()


def describe_setup(setup: ExperimentSetup, settings: Settings | None = None) -> dict:
    """Keyword arguments for :func:`salrank.viz.report.banner` (``data``, ``weights``, ``extra``) saying
    what ``setup`` runs on: data and subsets, weights actually used, proposals, features, training."""
    settings = settings or get_settings()
    names = "splits (train, val, test): " + ", ".join(
        f"`{split}`" + (f" (first {n} images)" if n is not None else "")
        for split, n in zip(setup.splits, setup.limits, strict=True)
    )
    if setup.dataset == "synthsal":
        where = (
            f"the SynthSal folder `{setup.dataset_root}`"
            if setup.dataset_root
            else "the sample's SynthSal scenes"
        )
        data = f"{where}; {names}"
    elif setup.dataset == "salicon":
        data = f"SALICON at `{settings.data_root}` (the paper's splits); {names}"
    else:
        data = f"{setup.dataset}; {names}"
    from salrank.models.backbones import weights_identity
    from salrank.weights import WeightsNotFoundError

    try:
        identity = weights_identity(setup.pretrained, 0, setup.backbone, settings.weights_dir)
        weights = identity.label
        if identity.random and setup.pretrained == "auto":
            weights += " (no pretrained file found for the random ones)"
    except WeightsNotFoundError as exc:
        weights = f"MISSING ({str(exc).splitlines()[0]}; see `salrank weights`)"
    cfg = _train_config(Experiment("setup"), setup)
    f = setup.features
    feats = (
        f"appearance from crops of {f.crop_size} px"
        if f.mode == "crop"
        else "appearance by ROIAlign on the CNN map"
        + (f" of a {f.roi_image_size[0]} x {f.roi_image_size[1]} image" if f.roi_image_size else "")
    )
    feats += ", UNISAL input " + (
        "UNISAL's default size"
        if f.unisal_network_size is None
        else f"{f.unisal_network_size[0]} x {f.unisal_network_size[1]}"
    )
    extra = [
        f"**Proposals:** `{setup.detector}` (at most {setup.top_n} per image)",
        f"**Features:** {feats}",
        f"**Training:** preset `{setup.preset}` ({cfg.optimizer}, {cfg.batch_size} sequences per step), "
        f"up to {cfg.epochs} epochs, best epoch by validation SRCC",
    ]
    if setup.normalize:
        extra.append("**Feature standardisation:** on (a salrank addition; the paper's model has none)")
    if setup.head_kwargs:
        extra.append(
            "**Heads narrowed for speed:** "
            + "; ".join(
                f"{h}: " + ", ".join(f"{k} {v}" for k, v in kw.items()) for h, kw in setup.head_kwargs.items()
            )
        )
    return {"data": data, "weights": weights, "extra": extra}


def shuffle_gt_within_images(split: RankingSplit, seed: int, stream: int = 0) -> RankingSplit:
    """``split`` with each image's GT scores and ranks permuted together among its proposals.

    The permutation of image ``i`` comes from ``SeedSequence([seed, stream, i])``: deterministic,
    independent of the other images; ``stream`` separates e.g. train from val. Features and the
    reference boxes are unchanged.
    """
    scores, ranks = [], []
    for i, (s, r) in enumerate(zip(split.gt_scores, split.gt_ranks, strict=True)):
        perm = np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), i])).permutation(len(s))
        scores.append(np.asarray(s)[perm])
        ranks.append(np.asarray(r)[perm])
    return RankingSplit(split.features, scores, ranks, split.ref_boxes, split.ref_ranks, split.name)


# --- keys and results --------------------------------------------------------------------------
def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def _experiment_spec(exp: Experiment, setup: ExperimentSetup) -> dict:
    from salrank.models.backbones import BACKBONES

    dim = BACKBONES[setup.backbone][1]
    return {
        "model": asdict(exp.model_config(dim, setup.head_kwargs, setup.normalize)),
        "gamma": exp.gamma,
        "beta": exp.beta,
        "detector": exp.detector or setup.detector,
        "shuffle_gt": exp.shuffle_gt,
        "train": asdict(_train_config(exp, setup)),
    }


def _train_config(exp: Experiment, setup: ExperimentSetup):
    from salrank.fosrnet.train import train_config

    return train_config(setup.preset, **{**setup.train, **exp.train, "seed": exp.seed})


def experiment_key(exp: Experiment, setup: ExperimentSetup, settings: Settings | None = None) -> str:
    """The cache key (16 hex digits) of ``exp`` on ``setup`` (module doc: what it covers)."""
    settings = settings or get_settings()
    blob = {
        "version": EXPERIMENT_VERSION,
        "experiment": _experiment_spec(exp, setup),
        "setup": setup.spec(),
        "weights": _weights_identity(setup, settings),
        "data_root": str(settings.data_root) if setup.dataset == "salicon" else None,
    }
    return hashlib.sha1(_canonical(blob).encode()).hexdigest()[:16]


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns (and caches).

    ``metrics``: test metrics under the ``acb`` protocol (:func:`salrank.fosrnet.evaluate.evaluate_ranks`,
    ``metrics["protocol"]``), with the ``official`` protocol's in ``metrics["official"]``; ``history``: one dict per
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
        row.update({k: self.metrics.get(k, float("nan")) for k in METRIC_COLUMNS})
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


# --- running -----------------------------------------------------------------------------------
_EXTRACTORS: dict[str, tuple] = {}
_SPLITS: dict[str, RankingSplit] = {}
_MAX_SPLITS = 24


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


def feature_networks(setup: ExperimentSetup, settings: Settings | None = None, log=None) -> tuple:
    """``(unisal, appearance)`` of ``setup`` (:func:`salrank.models.backbones.feature_extractors`, seed 0),
    kept in memory for the next call with the same networks; ``log`` receives the random-weights notes."""
    from salrank.models.backbones import feature_extractors

    settings = settings or get_settings()
    ident = _canonical([setup.backbone, setup.device, _weights_identity(setup, settings)])
    if ident not in _EXTRACTORS:
        _EXTRACTORS.clear()
        unisal, cnn, _ = feature_extractors(setup.pretrained, 0, setup.backbone, setup.device,
                                            weights_dir=settings.weights_dir, log=log)
        _EXTRACTORS[ident] = (unisal, cnn)
    return _EXTRACTORS[ident]


def _split(
    setup: ExperimentSetup,
    settings: Settings,
    role: int,
    detector: str,
    gamma: float,
    beta: float,
    progress: bool,
    log,
) -> RankingSplit:
    from salrank.fosrnet.data import prepare_split

    ident = _canonical(
        [
            setup.spec(),
            _weights_identity(setup, settings),
            str(settings.data_root),
            str(settings.cache_dir),
            role,
            detector,
            gamma,
            beta,
        ]
    )
    if ident in _SPLITS:
        return _SPLITS[ident]
    unisal, backbone = feature_networks(setup, settings, log)
    scenes = open_scene_set(setup.dataset, setup.splits[role], settings, synthsal_root=setup.dataset_root)
    data = prepare_split(
        scenes,
        unisal=unisal,
        backbone=backbone,
        detector=detector,
        config=setup.features,
        gamma=gamma,
        beta=beta,
        top_n=setup.top_n,
        seed=setup.proposal_seed,
        limit=setup.limits[role],
        cache=settings.cache_dir / "features",
        progress=progress,
        proposals_dir=settings.proposals_dir,
    )
    if len(_SPLITS) >= _MAX_SPLITS:
        _SPLITS.pop(next(iter(_SPLITS)))
    _SPLITS[ident] = data
    return data


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
    from salrank.fosrnet.evaluate import evaluate_model, evaluate_ranks
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
        metrics = evaluate_ranks(pred, test, setup.nan_policy, protocol="acb")  # records "protocol"
        if model.config.k == OFFICIAL_GROUP:  # the authors' unit on the same test images
            metrics["official"] = evaluate_model(model, test, protocol="official")
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


def run_experiments(
    exps: Sequence[Experiment],
    settings: Settings | None = None,
    *,
    setup: ExperimentSetup | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`run_experiment` for each of ``exps`` (names must differ); one row per experiment.

    Columns: experiment, head, gamma, beta, detector, shuffle_gt, seed, the test metrics
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
            *METRIC_COLUMNS,
            "best_epoch",
            "epochs",
            "train_s",
            "cached",
            "key",
        ],
    )
