"""Alternative proposal sets (SAM / SegGPT mask-derived boxes, paper Tables VII-VIII) against the
reference detector's proposals: how they cover it, and what RA-SRGT relabelling makes of them.

Proposal sets are ``{image stem: (N, 4) [x1, y1, x2, y2]}`` pixel boxes in descending score
order (e.g. from :func:`salrank.proposals.read_proposals`; the SAM/SegGPT files are produced
elsewhere in the COCO detection-results format). Coverage itself is
:func:`salrank.proposals.coverage_rate`; this module adds per-set counts
(:func:`proposal_summary`) and the GT relabelling statistics (:func:`relabel_comparison`):
each set is relabelled with RA-SRGT from the same fixations, its boxes are matched one-to-one to
the reference boxes (Hungarian assignment on IoU, :func:`scipy.optimize.linear_sum_assignment`,
a pair counts when IoU >= ``iou_threshold``) and the GT ranks of matched pairs are compared.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from salrank import paper
from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA, rank_objects

__all__ = ["paper_table7", "paper_table8", "proposal_summary", "match_one_to_one", "relabel_comparison"]


def paper_table7() -> pd.DataFrame:
    """Table VII (:data:`salrank.paper.TABLE7`): FOSRNet fed with segmentation proposals (SAM, SegGPT: boxes with the
    background blacked out) vs object proposals (EfficientDet). Rows SRCC, F1, FPS."""
    return pd.DataFrame({method: list(values) for method, values in paper.TABLE7.items()},
                        index=pd.Index(["SRCC", "F1", "FPS"], name="metric"))


def paper_table8() -> pd.DataFrame:
    """Table VIII (:data:`salrank.paper.TABLE8`): proposals from SAM/SegGPT masks (mask -> box) vs EfficientDet's
    boxes. Columns AP, AP50 (proposal quality, %), SRCC, F1, FPS."""
    return pd.DataFrame.from_dict({name: list(values) for name, values in paper.TABLE8.items()}, orient="index",
                                  columns=["AP", "AP50", "SRCC", "F1", "FPS"]).rename_axis("proposals")


def _boxes(b, what: str) -> np.ndarray:
    arr = np.asarray(getattr(b, "boxes", b), dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4), got {arr.shape}")
    return arr


def proposal_summary(proposals: Mapping) -> dict:
    """Counts of one proposal set ``{stem: boxes or Detections}``: images, images without
    proposals, proposals per image (mean, min, max)."""
    n = np.array([len(_boxes(b, f"image {s!r}")) for s, b in proposals.items()], dtype=np.int64)
    return {
        "images": int(n.size),
        "images without proposals": int((n == 0).sum()),
        "proposals/image (mean)": float(n.mean()) if n.size else float("nan"),
        "proposals/image (min)": int(n.min()) if n.size else 0,
        "proposals/image (max)": int(n.max()) if n.size else 0,
    }


def match_one_to_one(boxes_a, boxes_b, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one matching of two box sets maximising total IoU (Hungarian); returns the pairs
    ``(i, j)`` with IoU >= ``iou_threshold``, sorted by ``i``."""
    import torch
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_iou

    a, b = _boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b")
    if len(a) == 0 or len(b) == 0:
        return []
    iou = box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    rows, cols = linear_sum_assignment(-iou)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if iou[i, j] >= iou_threshold - 1e-9]


def relabel_comparison(fixations: Mapping, proposal_sets: Mapping[str, Mapping], reference: str, *,
                       iou_threshold: float = 0.5, top_k: int | None = 5, gamma: float = DEFAULT_GAMMA,
                       beta: float = DEFAULT_BETA) -> pd.DataFrame:
    """RA-SRGT relabelling of each proposal set vs the ``reference`` set, one row per set.

    ``fixations``: ``{stem: Fixations}`` (``points`` ``(N, 2)`` ``(x, y)``, ``height``,
    ``width``); images are those of the reference set that have fixations. ``top_k``: only the
    first ``top_k`` proposals of each image are relabelled (FOSRNet's 5; ``None`` = all).
    Columns: ``proposals``, ``images``, ``boxes/image``, ``salient share`` (rank > 0),
    ``reference matched`` (share of reference boxes with a partner at IoU >= threshold),
    ``same rank`` (share of matched pairs with equal GT rank), ``rank SRCC`` (mean per-image
    Spearman rho of the matched pairs' GT ranks, images with >= 2 pairs and non-constant ranks),
    ``same top-1`` (share of images whose reference rank-1 box is matched to the set's rank-1 box).
    """
    from salrank.metrics.ranking import image_srcc, ranks_to_scores

    if reference not in proposal_sets:
        raise ValueError(f"reference {reference!r} is not one of the proposal sets {list(proposal_sets)}")
    stems = [s for s in sorted(proposal_sets[reference]) if s in fixations]
    if not stems:
        raise ValueError("no image of the reference proposals has fixations")

    def ranks_of(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for stem in stems:
            boxes = _boxes(proposal_sets[name].get(stem, np.zeros((0, 4))), f"{name}, image {stem!r}")
            boxes = boxes if top_k is None else boxes[:top_k]
            fx = fixations[stem]
            _, ranks = rank_objects(fx.points, boxes, (fx.height, fx.width), gamma=gamma, beta=beta)
            out[stem] = (boxes, ranks)
        return out

    ref = ranks_of(reference)
    rows = []
    for name in proposal_sets:
        other = ref if name == reference else ranks_of(name)
        n_boxes = n_salient = n_ref = n_matched = n_same = 0
        srccs, top1 = [], []
        for stem in stems:
            rb, rr = ref[stem]
            ob, orank = other[stem]
            n_boxes += len(ob)
            n_salient += int((orank > 0).sum())
            n_ref += len(rb)
            pairs = match_one_to_one(rb, ob, iou_threshold)
            n_matched += len(pairs)
            if pairs:
                i, j = (np.array(p) for p in zip(*pairs, strict=True))
                n_same += int((rr[i] == orank[j]).sum())
                if len(pairs) >= 2:
                    rho = image_srcc(ranks_to_scores(orank[j]), ranks_to_scores(rr[i]))
                    if not np.isnan(rho):
                        srccs.append(rho)
            if (rr == 1).any():
                first = int(np.flatnonzero(rr == 1)[0])
                partner = dict(pairs).get(first)
                top1.append(partner is not None and orank[partner] == 1)
        rows.append({
            "proposals": name,
            "images": len(stems),
            "boxes/image": n_boxes / len(stems),
            "salient share": n_salient / n_boxes if n_boxes else float("nan"),
            "reference matched": n_matched / n_ref if n_ref else float("nan"),
            "same rank": n_same / n_matched if n_matched else float("nan"),
            "rank SRCC": float(np.mean(srccs)) if srccs else float("nan"),
            "same top-1": float(np.mean(top1)) if top1 else float("nan"),
        })
    table = pd.DataFrame(rows)
    table.attrs.update({"reference": reference, "iou_threshold": iou_threshold, "top_k": top_k,
                        "gamma": gamma, "beta": beta})
    return table
