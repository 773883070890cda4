"""Neural networks. :mod:`salrank.models.unisal`: UNISAL, the saliency network (PSM) of FOSRNet."""

from salrank.models.unisal import UNISAL, SaliencyMap, load_unisal

__all__ = ["UNISAL", "SaliencyMap", "load_unisal"]
