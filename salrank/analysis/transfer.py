"""Apply an experiment's trained FOSRNet to images or proposals it was not tested on.

Two uses in the book: ranking the real SALICON examples' annotated boxes with the model trained
on SynthSal (out of domain, Fig. 10), and the paper's reading of Table VI, where the ranker is
trained once and then fed the offline proposals of other detectors.

:func:`apply_experiment` prepares ``scene_set`` with the proposals of each given source exactly as
:func:`salrank.analysis.experiments.run_experiment` prepares its test split (same feature extractors,
feature settings, ``top_n``, proposal seed; RA-SRGT labels with the experiment's ``gamma`` and
``beta``; features cached), runs the experiment's best checkpoint and evaluates it
(:func:`salrank.fosrnet.evaluate.evaluate_ranks`). With the experiment's own source and test images it
reproduces the experiment's test predictions. Boxes are ``[x1, y1, x2, y2]`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from salrank.analysis.qualitative import ImageRanking

__all__ = ["AppliedRanking", "apply_experiment", "experiment_rankings"]


@dataclass
class AppliedRanking:
    """The result of one proposal source: ``rankings`` (one :class:`ImageRanking` per image, in
    the images' stem order), ``metrics`` (:func:`salrank.fosrnet.evaluate.evaluate_ranks`), ``detector``
    (the proposal source), ``dataset``/``split`` (the scene set's)."""

    detector: str
    dataset: str
    split: str
    rankings: list[ImageRanking]
    metrics: dict


def experiment_rankings(result, scene_set=None, settings=None) -> list[ImageRanking]:
    """The test predictions of an :class:`~salrank.analysis.experiments.ExperimentResult` as
    :class:`ImageRanking` objects (image sizes from ``scene_set``, default: the result's test
    split via :func:`salrank.analysis.experiments.open_scene_set`)."""
    if scene_set is None:
        from salrank.analysis.experiments import open_scene_set

        scene_set = open_scene_set(result.dataset, result.split, settings)
    out = []
    for i, stem in enumerate(result.stems):
        if stem not in scene_set.fixations:
            raise KeyError(f"{scene_set.name}/{scene_set.split} has no image {stem!r} of the experiment's test set")
        fx = scene_set.fixations[stem]
        out.append(ImageRanking(stem, result.boxes[i], result.pred_ranks[i], result.gt_scores[i],
                                result.gt_ranks[i], (fx.height, fx.width)))
    return out


def apply_experiment(result, scene_set, detectors: Sequence[str] = ("true",), *, settings=None, setup=None,
                     limit: int | None = None, progress: bool = False, log=None) -> dict[str, AppliedRanking]:
    """Rank ``scene_set``'s images (its first ``limit``) with ``result``'s trained model, once per
    proposal source in ``detectors`` (see :func:`salrank.fosrnet.data.dataset_proposals`;
    ``"true"`` = the scene set's own boxes). ``setup``: the :class:`~salrank.analysis.experiments.ExperimentSetup`
    the experiment ran on (default :func:`~salrank.analysis.experiments.profile_setup`); its extractors and
    feature settings are used; ``log`` (e.g. ``print``) receives the extractors' notes (random
    weights). Returns ``{detector: AppliedRanking}``."""
    from salrank.analysis.experiments import experiment_key, feature_networks, profile_setup
    from salrank.config import get_settings
    from salrank.fosrnet.data import prepare_split
    from salrank.fosrnet.evaluate import evaluate_ranks

    settings = settings or get_settings()
    setup = setup or profile_setup(settings)
    if experiment_key(result.experiment, setup, settings) != result.key:
        raise ValueError(f"experiment {result.experiment.name!r} was not run on this setup "
                         "(pass the setup it ran on)")
    detectors = [str(d) for d in detectors]
    if not detectors:
        raise ValueError("apply_experiment: no proposal source given")
    exp = result.experiment
    unisal, backbone = feature_networks(setup, settings, log)
    model = result.load_model(device=setup.device)
    out = {}
    for det in detectors:
        split = prepare_split(scene_set, unisal=unisal, backbone=backbone, detector=det, config=setup.features,
                              gamma=exp.gamma, beta=exp.beta, top_n=setup.top_n, seed=setup.proposal_seed,
                              limit=limit, progress=progress, proposals_dir=settings.proposals_dir)
        pred = model.predict_ranks(split.images(), max_sequences=8192) if len(split) else []
        rankings = []
        for i, stem in enumerate(split.features.stems):
            fx = scene_set.fixations[stem]
            rankings.append(ImageRanking(stem, split.features.image(i)["boxes"], pred[i], split.gt_scores[i],
                                         split.gt_ranks[i], (fx.height, fx.width)))
        out[det] = AppliedRanking(det, scene_set.name, scene_set.split, rankings,
                                  evaluate_ranks(pred, split, setup.nan_policy))
    return out
