"""``salrank features``: per-proposal FOSRNet features (UNISAL ROI + appearance) of images, to one ``.npz``.

The boxes of each image come from ``--proposals`` (a results file of ``salrank proposals``; an
image without an entry gets no boxes) or, for ``--sample``, the sample's reference boxes. The
output is a :class:`salrank.fosrnet.features.FeatureStore` (``FeatureStore.load_npz``), images
in sorted-stem order. The images go through in batches of ``--batch-size``, decoded by
``--workers`` DataLoader processes; ``--amp`` autocasts the networks (``auto``: bf16/fp16 on CUDA,
float32 on the CPU). Under ``torchrun --nproc_per_node N -m salrank features ...`` the images are
sharded across the ranks (runs of ``--batch-size`` sorted stems) and rank 0 merges the parts
into the same ``--out`` file, byte for byte (:mod:`salrank.distributed`).

Example::

    salrank features --images images/ --proposals proposals.json --out features.npz --workers 4
"""

from __future__ import annotations

from pathlib import Path

from salrank.commands import CommandError, check_output_file


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="per-proposal FOSRNet features of images, to one .npz file",
                              description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", type=Path, metavar="DIR", help="folder of images (id = file stem)")
    src.add_argument("--sample", choices=("salicon", "synthsal"), help="an embedded sample (reference boxes)")
    p.add_argument("--split", choices=("train", "val", "test", "all"), default="all", help="SynthSal split")
    p.add_argument("--proposals", type=Path, metavar="FILE", help="boxes: a salrank proposals results file")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="output .npz")
    p.add_argument("--backbone", choices=("resnet18", "resnet101"), default="resnet101",
                   help="appearance CNN (default resnet101)")
    p.add_argument("--mode", choices=("crop", "roi"), default="crop", help="appearance feature mode")
    p.add_argument("--crop-size", type=int, default=224, help="crop side in pixels (crop mode)")
    p.add_argument("--no-pretrained", action="store_true", help="random weights (smoke tests)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights (default 0)")
    p.add_argument("--device", default=None, help="default: SALRANK_DEVICE; under torchrun cuda:LOCAL_RANK")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images per batch (and crops per CNN forward); under torchrun the unit of the split")
    p.add_argument("--workers", type=int, default=0, help="DataLoader processes decoding images (default 0)")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="off",
                   help="autocast of the networks (default off: float32; auto: bf16/fp16 on CUDA only)")
    p.set_defaults(func=run)


def _boxes(args, stems, reference):
    """``{stem: (boxes, scores or None)}`` from ``--proposals`` or the sample's ``reference`` boxes."""
    import numpy as np

    if args.proposals is not None:
        from salrank.proposals.generate import read_proposals

        try:
            dets = read_proposals(args.proposals, image_ids=stems)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        return {s: (d.boxes, d.scores) for s, d in dets.items()}
    return {s: (np.asarray(reference.get(s, np.zeros((0, 4))), np.float64).reshape(-1, 4), None) for s in stems}


def run(args) -> int:
    from dataclasses import asdict

    from salrank.distributed import current, rank_device, run_sharded
    from salrank.errors import check_int
    from salrank.fosrnet.features import (
        FeatureConfig,
        FeatureStore,
        ImageProposals,
        _amp_name,
        features_of_images,
    )
    from salrank.models.backbones import feature_extractors
    from salrank.profiles import get_profile

    check_int("batch_size", args.batch_size, 1)
    check_int("workers", args.workers, 0)
    check_int("seed", args.seed, 0)
    check_output_file(args.out)
    try:
        config = FeatureConfig(mode=args.mode, crop_size=args.crop_size)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    reference = None
    if args.images is not None:
        from salrank.proposals import images_in_dir

        if args.proposals is None:
            raise CommandError("--images needs --proposals FILE (the boxes)")
        try:
            images = images_in_dir(args.images)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    else:
        from salrank.commands.proposals import _sample_images

        images, reference = _sample_images(args.sample, args.split, progress=False)
        if reference is None and args.proposals is None:
            raise CommandError(f"the {args.sample} sample has no reference boxes here; give --proposals")
    stems = sorted(images)
    boxes = _boxes(args, stems, reference)
    pretrained = False if args.no_pretrained else get_profile().pretrained
    unisal, cnn, identity = feature_extractors(pretrained, args.seed, args.backbone, rank_device(args.device),
                                               log=print if current().is_main else None)
    amp = _amp_name(args.amp, next(cnn.parameters()).device)
    meta = {"backbone": cnn.name, "weights": identity.to_dict(), "config": asdict(config), "amp": amp,
            "boxes": str(args.proposals) if args.proposals is not None else f"{args.sample} reference boxes"}

    def write(keys, path):
        items = [ImageProposals(k, images[k], *boxes[k]) for k in keys]
        feats = features_of_images(items, unisal, cnn, config, args.batch_size, num_workers=args.workers,
                                   amp=amp)
        sizes = [f.pop("image_size") for f in feats]
        FeatureStore.from_images(feats, keys, sizes, meta, cnn.dim).save_npz(path)

    def merge(parts, out):
        stores = [FeatureStore.load_npz(p) for p in parts]
        by_stem = {s: (store, i) for store in stores for i, s in enumerate(store.stems)}
        order = sorted(by_stem)
        FeatureStore.from_images([by_stem[s][0].image(by_stem[s][1]) for s in order], order,
                                 [by_stem[s][0].image_sizes[by_stem[s][1]] for s in order], meta,
                                 cnn.dim).save_npz(out)

    if run_sharded(args.out, stems, write, merge, chunk=args.batch_size):
        store = FeatureStore.load_npz(args.out)
        print(f"wrote the features of {store.n_proposals} proposals in {len(store)} image(s) to {args.out}")
    return 0
