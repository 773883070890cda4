"""Experiment definitions: :class:`Experiment` (a FOSRNet variant), :class:`ExperimentSetup` (on what it
runs), :func:`profile_setup`, :func:`describe_setup` and the cache key :func:`experiment_key` (what it
covers: :mod:`salrank.analysis.experiments`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from salrank.config import Settings, get_settings
from salrank.fosrnet.features import FeatureConfig
from salrank.fosrnet.model import FOSRNetConfig
from salrank.fosrnet.train import TrainConfig
from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA
from salrank.profiles import Profile, get_profile

#: bump when a change of salrank.analysis.experiments changes results (invalidates the experiment cache)
EXPERIMENT_VERSION = 2

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


# --- cache keys --------------------------------------------------------------------------------
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
