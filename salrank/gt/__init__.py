"""Ground-truth saliency ranking orders from fixations (paper Sec. III-B; ``book/conventions.md``).

Conventions: points ``(x, y)`` 0-based pixels; boxes ``[x1, y1, x2, y2]`` pixels;
``image_size = (height, width)``; a point is in a box when ``x1 <= x < x2`` and
``y1 <= y < y2``; rank 1 = most salient, ties by the lower box index, 0 = not salient.

* :func:`rank_objects`: scores and ranks of one image's boxes (RA-SRGT and the eq. 1-3 baselines);
* :func:`relabel_dataset`: a whole dataset as a tidy, cached table (ranks and class labels);
* :func:`discrepancy_offsets`: eq. 13 sweeps over gamma and beta (Fig. 11-B/C);
* :func:`efp_ranks`: ranks from an eye-fixation-prediction saliency map (eq. 12, Fig. 9);
* :func:`class_labels`: the official code's labels within a 5-proposal group;
* :func:`count_points_in_boxes`: exact fast half-open counting (its speed: :mod:`salrank.bench.gt`);
* :func:`method_rankings`, :func:`rank_agreement`, :func:`offset_sweeps`: method comparisons and
  parameter sweeps over scene sets (:mod:`salrank.gt.sweeps`, used by the book pages).
"""

from __future__ import annotations

from salrank.gt.counting import count_points_in_boxes, count_points_in_boxes_batch, count_points_in_boxes_loop
from salrank.gt.dataset import COLUMNS, DatasetCounts, count_dataset, relabel_dataset
from salrank.gt.discrepancy import DEFAULT_GRID, discrepancy_offsets, offsets_from_counts
from salrank.gt.efp import efp_ranks
from salrank.gt.ranking import GROUP_SIZE, class_labels, grouped_ranks_from_scores, ranks_from_scores
from salrank.gt.scores import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    DEFAULT_SIGMA,
    DEFAULT_THRESHOLD,
    METHODS,
    rank_objects,
    score_objects,
)
from salrank.gt.sweeps import (
    OFFSET_RANGES,
    SALIENCE,
    agreement_summary,
    gamma_sensitivity,
    image_rank_table,
    method_rankings,
    offset_range_summary,
    offset_sweeps,
    rank_agreement,
    salience_order,
    scenes_with_boxes,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_BETA",
    "DEFAULT_GAMMA",
    "DEFAULT_GRID",
    "DEFAULT_SIGMA",
    "DEFAULT_THRESHOLD",
    "GROUP_SIZE",
    "METHODS",
    "OFFSET_RANGES",
    "SALIENCE",
    "DatasetCounts",
    "agreement_summary",
    "class_labels",
    "count_dataset",
    "count_points_in_boxes",
    "count_points_in_boxes_batch",
    "count_points_in_boxes_loop",
    "discrepancy_offsets",
    "efp_ranks",
    "gamma_sensitivity",
    "grouped_ranks_from_scores",
    "image_rank_table",
    "method_rankings",
    "offset_range_summary",
    "offset_sweeps",
    "offsets_from_counts",
    "rank_agreement",
    "rank_objects",
    "ranks_from_scores",
    "relabel_dataset",
    "salience_order",
    "scenes_with_boxes",
    "score_objects",
]
