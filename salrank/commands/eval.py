"""``salrank eval``: evaluate a trained FOSRNet checkpoint on a dataset split.

The features are rebuilt (or read from the cache) exactly as the checkpoint's training run made
them: same backbone, mode, UNISAL input size, and the same seeded random weights when training
used random feature extractors. Metrics (per-image means): SRCC, macro F1, PLCC, RMSE, top-1/2/3
accuracy, and box-level SA-SOR against the reference boxes when the dataset has them.

Example::

    salrank eval --checkpoint runs/vit/best.pt --dataset synthsal --split test --json test.json
"""

from __future__ import annotations

import json
from pathlib import Path

from salrank.commands import CommandError
from salrank.commands.train import add_data_arguments, build_split, load_extractors, resolve_defaults


def register(subparsers) -> None:
    from salrank.metrics.ranking import NAN_POLICIES

    p = subparsers.add_parser("eval", help="evaluate a FOSRNet checkpoint on a dataset split",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from salrank train")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--nan-policy", choices=NAN_POLICIES, default="exclude",
                   help="images with constant GT: exclude (default) or count as 0 (official test.py)")
    p.add_argument("--json", type=Path, default=None, help="write the metrics here (JSON)")
    add_data_arguments(p)
    p.set_defaults(func=run)


def _seed(weights_id) -> int:
    from salrank.fosrnet.pipeline import _weights_seed

    return _weights_seed(weights_id) or 0


def run(args) -> int:
    from salrank.commands import check_output_file
    from salrank.commands.train import check_data_arguments
    from salrank.config import get_settings
    from salrank.fosrnet.evaluate import evaluate_model
    from salrank.fosrnet.features import FeatureConfig
    from salrank.fosrnet.train import load_checkpoint
    from salrank.io import atomic_write_json

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
    random_psm = str(meta.get("unisal_weights", "")).startswith("random-seed")
    random_cnn = str(meta.get("backbone_weights", "")).startswith("random-seed")
    if random_psm or random_cnn:
        print("note: the checkpoint was trained on RANDOM-weight feature extractors; rebuilding them")
    psm, cnn = load_extractors(args, pretrained="no" if random_psm and random_cnn else args.pretrained,
                               unisal_seed=_seed(meta.get("unisal_weights")),
                               backbone_seed=_seed(meta.get("backbone_weights")))
    if cnn.dim != model.config.appearance_dim:
        raise CommandError(f"the checkpoint expects {model.config.appearance_dim}-d appearance features, "
                           f"{args.backbone} gives {cnn.dim}")
    config = FeatureConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in meta.get("config", {}).items()})
    for key in ("top_n", "gamma", "beta"):
        if key in meta:
            setattr(args, key, meta[key])
    data = build_split(args, args.split, psm, cnn, settings, config=config)
    metrics = evaluate_model(model, data, nan_policy=args.nan_policy)
    metrics.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split, detector=args.detector,
                   unisal_weights=psm.weights_id, backbone=f"{cnn.name} ({cnn.weights_id})")
    print(json.dumps(metrics, indent=1))
    if args.json is not None:
        atomic_write_json(args.json, metrics, indent=1)
    return 0
