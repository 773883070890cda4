"""``salrank train``: train FOSRNet on cached features of a dataset (resumable).

Defaults follow the profile (``SALRANK_PROFILE``, :mod:`salrank.profiles`):

* ``sample``: SynthSal + the noisy oracle proposals + ResNet18 appearance features; UNISAL and
  ResNet18 load their pretrained weights when present, else run with seeded random weights (the
  output says so); features standardised (a salrank addition);
* ``full``: SALICON (``SALRANK_DATA``) + EfficientDet-D0 proposals from
  ``$SALRANK_DATA/proposals/efficientdet_d0_<train|val>.json`` + ResNet101 + the UNISAL weights
  (missing weights are an error); no standardisation (the paper's model).

Examples::

    salrank train --dataset synthsal --preset fast --head vit --epochs 20 --out runs/vit
    salrank train --out runs/vit --resume
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from salrank.commands import CommandError, check_output_dir
from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA

DATASETS = ("synthsal", "salicon", "salicon-examples")


def add_data_arguments(p) -> None:
    """Arguments shared by ``train`` and ``eval``: data, proposals, feature extractors."""
    g = p.add_argument_group("data and features")
    g.add_argument("--dataset", choices=DATASETS, default=None,
                   help="dataset (default: synthsal in the sample profile, salicon in the full one)")
    g.add_argument("--synthsal-root", type=Path, default=None,
                   help="a SynthSal dataset folder (generate_dataset); default: the sample profile's")
    g.add_argument("--detector", default=None,
                   help="proposals: 'oracle' (SynthSal), 'true' (reference boxes), a detector name "
                        "($SALRANK_DATA/proposals/<name>_<split>.json) or a .json file "
                        "(default: oracle for synthsal, efficientdet_d0 otherwise)")
    g.add_argument("--top-n", type=int, default=10, help="proposals kept per image (default 10)")
    g.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, help=f"RA-SRGT gamma (default {DEFAULT_GAMMA})")
    g.add_argument("--beta", type=float, default=DEFAULT_BETA, help=f"RA-SRGT beta (default {DEFAULT_BETA})")
    g.add_argument("--backbone", choices=("resnet18", "resnet101"), default=None,
                   help="appearance CNN (default: resnet18 sample, resnet101 full)")
    g.add_argument("--mode", choices=("crop", "roi"), default="crop", help="appearance feature mode")
    g.add_argument("--crop-size", type=int, default=224, help="crop side in pixels (crop mode)")
    g.add_argument("--unisal-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="UNISAL input size (multiples of 32; default: UNISAL's rule, 288 384 for 4:3)")
    g.add_argument("--pretrained", choices=("auto", "yes", "no"), default=None,
                   help="feature extractor weights: auto = pretrained if present else random "
                        "(default: auto sample, yes full)")
    g.add_argument("--limit", type=int, default=None, help="use only the first N images of each split")
    g.add_argument("--device", default=None, help="cpu, cuda, ... (default: SALRANK_DEVICE)")
    g.add_argument("--no-cache", action="store_true", help="do not cache the features")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers) -> None:
    from salrank.fosrnet.heads import list_heads
    from salrank.fosrnet.train import PRESETS

    p = subparsers.add_parser("train", help="train FOSRNet on cached features (resumable)",
                              description=__doc__.split("\n\n")[0])
    add_data_arguments(p)
    t = p.add_argument_group("training")
    t.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="optimiser preset (default fast)")
    t.add_argument("--head", choices=list_heads(), default="vit", help="ranking head (default vit)")
    t.add_argument("--table2-row", type=int, choices=range(1, 8), default=None,
                   help="a Table II ablation row (switches parts of the model off)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None, help="sequences per step")
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--alpha", type=float, default=None, help="weight of the margin-ranking loss")
    t.add_argument("--patience", type=int, default=None, help="early-stopping patience (epochs)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="standardise the features, a salrank addition (FOSRNetConfig.normalize; "
                        "default: on in the sample profile, off in the full one)")
    t.add_argument("--geometry", action="store_true",
                   help="also feed box size, a salrank addition (FOSRNetConfig.use_geometry)")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.set_defaults(func=run)


#: ``--pretrained`` -> the ``pretrained`` of :func:`salrank.models.backbones.feature_extractors`
PRETRAINED = {"auto": "auto", "yes": True, "no": False}


def check_data_arguments(args) -> None:
    """Fail at once, naming the option and its range, on a bad number among the data arguments."""
    from salrank.errors import check_int
    from salrank.gt.scores import check_options

    check_int("top_n", args.top_n, 1)
    check_options("ra-srgt", args.gamma, args.beta)
    check_int("crop_size", args.crop_size, 32)
    if args.limit is not None:
        check_int("limit", args.limit, 1)
    if args.unisal_size is not None:
        for value in args.unisal_size:
            check_int("unisal_size", value, 32)
            if value % 32:
                raise CommandError(f"--unisal-size must be multiples of 32, got {args.unisal_size}")


def resolve_defaults(args, settings) -> None:
    """Fill the profile's defaults (:func:`salrank.profiles.get_profile`) into ``args``; ``args.pretrained``
    becomes ``True``, ``False`` or ``"auto"``."""
    from salrank.profiles import get_profile

    profile = get_profile(settings.profile)
    args.dataset = args.dataset or profile.dataset
    args.detector = args.detector or profile.detector_for(args.dataset)
    args.backbone = args.backbone or profile.backbone
    args.pretrained = profile.pretrained if args.pretrained is None else PRETRAINED.get(args.pretrained, args.pretrained)
    if getattr(args, "normalize", False) is None:
        args.normalize = profile.normalize


def load_extractors(args, settings, log=print, pretrained=None, seed: int = 0):
    """(unisal, backbone) per ``args.pretrained`` (or ``pretrained``) from
    :func:`salrank.models.backbones.feature_extractors`; says which weights through ``log``."""
    from salrank.models.backbones import feature_extractors
    from salrank.weights import WeightsNotFoundError

    try:
        psm, cnn, identity = feature_extractors(args.pretrained if pretrained is None else pretrained, seed,
                                                args.backbone, args.device, weights_dir=settings.weights_dir, log=log)
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None
    log(f"feature networks: {identity.label}")
    return psm, cnn


def open_scene_set(args, split: str, settings):
    from salrank.analysis.experiments import open_scene_set as open_set

    try:
        return open_set(args.dataset, split, settings, synthsal_root=args.synthsal_root)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def build_split(args, split: str, unisal, backbone, settings, config=None, log=print):
    """A :class:`~salrank.fosrnet.data.RankingSplit` of ``split`` from the arguments."""
    from salrank.fosrnet.data import prepare_split
    from salrank.fosrnet.features import FeatureConfig

    scene_set = open_scene_set(args, split, settings)
    if config is None:
        config = FeatureConfig(mode=args.mode, crop_size=args.crop_size,
                               unisal_network_size=tuple(args.unisal_size) if args.unisal_size else None)
    try:
        data = prepare_split(scene_set, unisal=unisal, backbone=backbone, detector=args.detector, config=config,
                             gamma=args.gamma, beta=args.beta, top_n=args.top_n, limit=args.limit,
                             cache=False if args.no_cache else settings.cache_dir / "features",
                             progress=not args.no_progress,
                             proposals_dir=settings.proposals_dir)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise CommandError(f"{args.dataset}/{split}: {exc}") from None
    log(f"{args.dataset}/{split}: {len(data)} images, {data.features.n_proposals} proposals ({args.detector})")
    return data


def run(args) -> int:
    from salrank.config import get_settings
    from salrank.fosrnet.model import FOSRNetConfig
    from salrank.fosrnet.train import Trainer, train_config

    check_data_arguments(args)
    check_output_dir(args.out)
    config = train_config(args.preset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          alpha=args.alpha, patience=args.patience, seed=args.seed)  # InvalidOptionError: exit 2
    settings = get_settings()
    resolve_defaults(args, settings)
    psm, cnn = load_extractors(args, settings)
    train = build_split(args, "train", psm, cnn, settings)
    val_split = "all" if args.dataset == "salicon-examples" else "val"
    val = build_split(args, val_split, psm, cnn, settings) if val_split != "all" else None
    base = FOSRNetConfig.table2(args.table2_row) if args.table2_row else FOSRNetConfig()
    from dataclasses import replace

    model_config = replace(base, appearance_dim=cnn.dim, head=args.head, normalize=args.normalize,
                           use_geometry=args.geometry)
    meta = {**train.features.meta, "dataset_name": args.dataset, "detector": args.detector, "top_n": args.top_n,
            "gamma": args.gamma, "beta": args.beta}
    trainer = Trainer(model_config, config, train, val, args.out, feature_meta=meta, progress=not args.no_progress,
                      device=args.device)
    try:
        summary = trainer.fit(resume=args.resume)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    summary.pop("history")
    print(json.dumps(summary))
    return 0
