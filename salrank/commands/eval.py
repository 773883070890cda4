"""``salrank eval``: evaluate a trained FOSRNet checkpoint on a dataset split.

The features are rebuilt (or read from the cache) exactly as the checkpoint's training run made
them: same backbone, mode, UNISAL input size, and the same seeded random weights when training
used random feature extractors. ``--protocol`` (printed with the metrics):

* ``official`` (default, comparable with the paper): the authors' unit, each image's first 5
  proposals as one group with 5 classes; SRCC, PLCC, RMSE, macro F1, acc_first/second/third,
  NaN counted as 0 (:func:`salrank.metrics.official_protocol`);
* ``acb``: salrank's extension over all proposals (ACB ranks, eq. 5 ties kept, constant-GT
  images excluded and counted): SRCC, macro F1, PLCC, RMSE, top-1/2/3 accuracy, and box-level
  SA-SOR against the reference boxes when the dataset has them.

Example::

    salrank eval --checkpoint runs/vit/best.pt --dataset synthsal --split test --json test.json
"""

from __future__ import annotations

import json
from pathlib import Path

from salrank.commands import CommandError
from salrank.commands.train import add_data_arguments, build_split, load_extractors, resolve_defaults


def register(subparsers) -> None:
    from salrank.fosrnet.evaluate import PROTOCOLS
    from salrank.metrics.ranking import NAN_POLICIES

    p = subparsers.add_parser("eval", help="evaluate a FOSRNet checkpoint on a dataset split",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from salrank train")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="official",
                   help="official (default): the authors' 5-proposal groups; acb: salrank's ACB over all proposals")
    p.add_argument("--nan-policy", choices=NAN_POLICIES, default=None,
                   help="acb only: images with constant GT excluded (default) or counted as 0")
    p.add_argument("--json", type=Path, default=None, help="write the metrics here (JSON)")
    add_data_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.commands import check_output_file
    from salrank.commands.train import check_data_arguments
    from salrank.config import get_settings
    from salrank.fosrnet.evaluate import evaluate_model
    from salrank.fosrnet.features import FeatureConfig
    from salrank.fosrnet.train import load_checkpoint
    from salrank.io import atomic_write_json
    from salrank.models.backbones import WeightsIdentity

    check_data_arguments(args)
    if args.json is not None:
        check_output_file(args.json, "--json")
    model, ckpt = load_checkpoint(args.checkpoint)  # CheckpointError: one line naming the file
    meta = ckpt.get("feature_meta") or {}
    settings = get_settings()
    # the checkpoint decides how features are made; the command line may only fill what it lacks
    args.dataset = args.dataset or meta.get("dataset_name")
    args.detector = args.detector or meta.get("detector")
    args.backbone = meta.get("backbone", args.backbone)
    resolve_defaults(args, settings)
    options = {}
    if meta.get("weights"):
        trained_on = WeightsIdentity.from_dict(meta["weights"])
        if trained_on.random:
            print(f"note: the checkpoint was trained on RANDOM-weight feature extractors ({trained_on.label}); "
                  "rebuilding them")
            options = trained_on.rebuild_options()
    psm, cnn = load_extractors(args, settings, **options)
    if cnn.dim != model.config.appearance_dim:
        raise CommandError(f"the checkpoint expects {model.config.appearance_dim}-d appearance features, "
                           f"{args.backbone} gives {cnn.dim}")
    config = FeatureConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in meta.get("config", {}).items()})
    for key in ("top_n", "gamma", "beta"):
        if key in meta:
            setattr(args, key, meta[key])
    data = build_split(args, args.split, psm, cnn, settings, config=config)
    if args.protocol == "official" and args.nan_policy not in (None, "zero"):
        raise CommandError("--nan-policy applies to --protocol acb (the official protocol counts NaN as 0)")
    metrics = evaluate_model(model, data, nan_policy=args.nan_policy, protocol=args.protocol)
    print(f"protocol: {args.protocol}")
    metrics.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split, detector=args.detector,
                   weights=WeightsIdentity(psm.weights, cnn.weights).label, backbone=cnn.name)
    print(json.dumps(metrics, indent=1))
    if args.json is not None:
        atomic_write_json(args.json, metrics, indent=1)
    return 0
