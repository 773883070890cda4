"""FOSRNet (paper Sec. III-C): features -> ranking head -> ECS -> ACB, its training and evaluation.

=================  ===========================================================================
module             what
=================  ===========================================================================
``features``       Part 2 inputs: UNISAL ROI features (local, 1.5x global) and appearance features
``data``           a split ready for training: proposals, cached features, RA-SRGT labels
``heads``          the ranking heads (``vit``, ``fc``, ``gcn``, ``reg``), from a registry
``ecs``            exclusive classification: distinct classes by a Hungarian assignment
``acb``            adaptive circulative bagging: sequences of 5 and the aggregation of their classes
``model``          :class:`FOSRNet` and :class:`FOSRNetConfig` (the Table II switches)
``losses``         eq. 11: cross-entropy + margin ranking; per-sequence class targets
``train``          the resumable :class:`~salrank.fosrnet.train.Trainer` and its presets
``evaluate``       a trained model on a prepared split
``pipeline``       end-to-end ranking of new images (detector -> features -> FOSRNet)
=================  ===========================================================================
"""

from salrank.fosrnet.model import FOSRNet, FOSRNetConfig, create_fosrnet

__all__ = ["FOSRNet", "FOSRNetConfig", "create_fosrnet"]
