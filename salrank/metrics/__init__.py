"""Saliency-ranking metrics.

* :mod:`~salrank.metrics.ranking`: the paper's per-image protocol over the proposals of an image
  (SRCC, macro F1, PLCC, RMSE, top-k accuracy, the NaN policy);
* :mod:`~salrank.metrics.official`: the authors' protocol (``official``): each image's group of
  its first 5 proposals, 5 classes, :func:`official_protocol`;
* :mod:`~salrank.metrics.peers`: the instance-mask metrics of the peer papers (SOR, MAE, rank
  maps) and a box-level SA-SOR.

Values compared are *saliency values* (higher = more salient); convert ranks (1 = most salient,
0 = not salient) with :func:`ranks_to_scores`.
"""

from salrank.metrics.official import (
    OFFICIAL_GROUP,
    official_from_classes,
    official_group_metrics,
    official_gt_classes,
    official_pred_classes,
    official_protocol,
)
from salrank.metrics.peers import (
    ASSR_LEVELS,
    PAINTINGS,
    SOR_VARIANTS,
    image_mae,
    image_sor,
    load_rank_map,
    mean_mae,
    mean_sor,
    object_values,
    paint_rank_map,
)
from salrank.metrics.ranking import (
    NAN_POLICIES,
    evaluate,
    image_f1,
    image_plcc,
    image_rmse,
    image_sa_sor,
    image_srcc,
    image_topk_accuracy,
    match_boxes,
    mean_sa_sor,
    per_image_metrics,
    ranks_to_scores,
)

__all__ = [
    "ASSR_LEVELS",
    "NAN_POLICIES",
    "OFFICIAL_GROUP",
    "PAINTINGS",
    "SOR_VARIANTS",
    "evaluate",
    "image_f1",
    "image_mae",
    "image_plcc",
    "image_rmse",
    "image_sa_sor",
    "image_sor",
    "image_srcc",
    "image_topk_accuracy",
    "load_rank_map",
    "match_boxes",
    "mean_mae",
    "mean_sa_sor",
    "mean_sor",
    "object_values",
    "official_from_classes",
    "official_group_metrics",
    "official_gt_classes",
    "official_pred_classes",
    "official_protocol",
    "paint_rank_map",
    "per_image_metrics",
    "ranks_to_scores",
]
