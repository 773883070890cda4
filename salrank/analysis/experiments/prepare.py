"""The data of experiments: scene sets (:func:`open_scene_set`), the feature networks kept in memory
(:func:`feature_networks`), prepared and memoised ranking splits, shuffled GT (Table III-A)."""

from __future__ import annotations

import os

import numpy as np

from salrank.analysis.experiments.definitions import ExperimentSetup, _canonical, _weights_identity
from salrank.config import Settings, get_settings
from salrank.fosrnet.data import RankingSplit

_EXTRACTORS: dict[str, tuple] = {}
_SPLITS: dict[str, RankingSplit] = {}
_MAX_SPLITS = 24


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


