"""Neural networks: :mod:`salrank.models.unisal` (UNISAL, the saliency network (PSM) of FOSRNet) and
:mod:`salrank.models.backbones` (the appearance CNNs and :func:`~salrank.models.backbones.feature_extractors`,
the one pretrained-or-random decision for FOSRNet's feature networks)."""

from salrank.models.backbones import WeightsIdentity, feature_extractors
from salrank.models.unisal import UNISAL, SaliencyMap, load_unisal

__all__ = ["UNISAL", "SaliencyMap", "WeightsIdentity", "feature_extractors", "load_unisal"]
