"""Two project additions to FOSRNet's input side, both optional and off in the paper's model.

* **Feature standardisation** (``normalize``): every cached feature dimension of ``local``,
  ``global`` and ``appearance`` is shifted and scaled by the training set's mean and standard
  deviation (buffers saved with the weights). Pretrained and random backbones give features of
  very different scales (a random UNISAL's ``f_u`` has a standard deviation near 0.03, a random
  ResNet's pooled output near 0.5); without it the small ones barely reach the head.
* **Box geometry** (``use_geometry``): ``geometry`` = (``sqrt(box area / image area)``, box width
  / image width, box height / image height), cached with the features, embedded by a learnable
  ``Linear(3 -> geometry_dim)`` and appended to F_p. The paper's PE sees box centres only, and
  the crop-mode appearance feature is resized to a fixed size, so box size is otherwise only
  implicit; RA-SRGT explicitly rewards size (eq. 4).

:class:`ExtendedFOSRNet` is a :class:`~salrank.fosrnet.model.FOSRNet` whose :meth:`embed` applies both;
``predict_ranks`` and ``forward`` work unchanged. With both switches off it equals FOSRNet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from salrank.fosrnet.features import GEOMETRY_DIM, box_geometry
from salrank.fosrnet.heads import create_head
from salrank.fosrnet.model import FOSRNet, FOSRNetConfig

__all__ = ["GEOMETRY_DIM", "NORMALIZED_KEYS", "ExtensionConfig", "ExtendedFOSRNet", "box_geometry", "build_ranker"]

NORMALIZED_KEYS = ("local", "global", "appearance")


@dataclass(frozen=True)
class ExtensionConfig:
    """The additions (module doc); defaults = off (the paper's FOSRNet)."""

    normalize: bool = False
    use_geometry: bool = False
    geometry_dim: int = 64


class ExtendedFOSRNet(FOSRNet):
    """FOSRNet with feature standardisation and/or a box-geometry embedding (module doc)."""

    def __init__(self, config: FOSRNetConfig | None = None, extension: ExtensionConfig | None = None):
        super().__init__(config)
        self.extension = extension or ExtensionConfig()
        c, e = self.config, self.extension
        dims = {"local": c.unisal_dim, "global": c.unisal_dim, "appearance": c.appearance_dim}
        for key, dim in dims.items():
            self.register_buffer(f"mean_{key}", torch.zeros(dim))
            self.register_buffer(f"std_{key}", torch.ones(dim))
        self.geometry = nn.Linear(GEOMETRY_DIM, e.geometry_dim) if e.use_geometry else None
        if e.use_geometry:
            self.head = create_head(c.head_name, in_dim=c.in_dim + e.geometry_dim, k=c.k,
                                    num_classes=c.num_classes, **c.head_kwargs)

    @property
    def in_dim(self) -> int:
        return self.config.in_dim + (self.extension.geometry_dim if self.extension.use_geometry else 0)

    @torch.no_grad()
    def set_normalization(self, arrays: Mapping[str, np.ndarray], eps: float = 1e-6) -> None:
        """Set the standardisation buffers from (N, D) training arrays of ``local``/``global``/``appearance``."""
        for key in NORMALIZED_KEYS:
            if key not in arrays:
                continue
            x = torch.as_tensor(np.asarray(arrays[key], np.float64))
            if len(x) == 0:
                continue
            getattr(self, f"mean_{key}").copy_(x.mean(0).float())
            getattr(self, f"std_{key}").copy_(x.std(0, unbiased=False).clamp(min=eps).float())

    def embed(self, features: Mapping, where: str = "features") -> torch.Tensor:
        feats = dict(features)
        if self.extension.normalize:
            for key in NORMALIZED_KEYS:
                if feats.get(key) is not None:
                    x = self._get(feats, key, None, where)
                    feats[key] = (x - getattr(self, f"mean_{key}")) / getattr(self, f"std_{key}")
        x = super().embed(feats, where)
        if self.geometry is not None:
            g = self._get(feats, "geometry", GEOMETRY_DIM, where)
            x = torch.cat([x, self.geometry(g)], dim=-1)
        return x


def build_ranker(config: FOSRNetConfig, extension: ExtensionConfig | None = None) -> FOSRNet:
    """A plain :class:`FOSRNet` when no addition is on, else an :class:`ExtendedFOSRNet`."""
    if extension is None or not (extension.normalize or extension.use_geometry):
        return FOSRNet(config)
    return ExtendedFOSRNet(config, extension)
