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

Modules: :mod:`~salrank.analysis.experiments.definitions` (experiments, setups, :func:`profile_setup`,
cache keys), :mod:`~salrank.analysis.experiments.prepare` (scene sets, feature networks, prepared
splits) and :mod:`~salrank.analysis.experiments.runner` (training, caching and results); every public
name is importable from :mod:`salrank.analysis.experiments`.
"""

from __future__ import annotations

from salrank.analysis.experiments.definitions import (
    EXPERIMENT_VERSION,
    Experiment,
    ExperimentSetup,
    describe_setup,
    experiment_key,
    profile_setup,
)
from salrank.analysis.experiments.prepare import feature_networks, open_scene_set, shuffle_gt_within_images
from salrank.analysis.experiments.runner import (
    METRIC_COLUMNS,
    ExperimentResult,
    protocol_label,
    run_experiment,
    run_experiments,
)

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
    "protocol_label",
    "run_experiment",
    "run_experiments",
    "shuffle_gt_within_images",
]
