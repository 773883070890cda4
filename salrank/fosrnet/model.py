"""FOSRNet (paper Sec. III-C): per-proposal features -> ranking head -> ECS -> ACB ranks.

Feature extraction happens elsewhere; this module starts from per-proposal tensors:

=============  ============  =================================================================
key            shape         meaning
=============  ============  =================================================================
``local``      (..., 192)    UNISAL decoder feature ROI-aligned on the box, average pooled
``global``     (..., 192)    same on the box enlarged 1.5x about its centre
``appearance`` (..., D_r)    PSE appearance feature (2048 for ResNet101, 512 for ResNet18)
``centers``    (..., 2)      box centre ``(x, y)`` divided by the image ``(width, height)``
``geometry``   (..., 3)      ``pe_input="corners"`` only: ``sqrt(area / image area)``, box width /
                             image width, box height / image height
``boxes``      (n, 4)        optional, ``predict_ranks`` only: ``[x1, y1, x2, y2]`` pixels,
                             the ACB geometry (without it the normalised centres are used)
``mask``       (B, k)        bool, True = dummy slot (forward only; optional)
=============  ============  =================================================================

The embedding F_p = concat(local, global, PE(centers), appearance) (576 + D_r dims with every
part on), where PE is a learnable 1x1 convolution on the centre coordinates, implemented as
the equivalent ``nn.Linear(2 -> 192)``. With ``pe_input="corners"`` it sees the normalised
top-left and bottom-right corners ``(x1, y1, x2, y2)`` instead (``nn.Linear(4 -> 192)``; the
paper's Sec. III-C2 prints ``pos`` as 192x2x2; the project's reading is a 1x1 convolution over
the two corners' coordinates, giving 192 channels like the centre variant).
:meth:`FOSRNetConfig.official` is the released network instead (see :mod:`salrank.fosrnet.heads`).
Switches drop parts for the Table II ablation: ``use_pse`` (appearance), ``use_local``, ``use_global``, ``use_pe``, ``use_transformer``
(False -> the ``fc`` head), ``use_hungarian`` (False -> per-proposal argmax at inference).

Two salrank additions, both off in the paper's model (the defaults):

* **Feature standardisation** (``normalize``): every dimension of ``local``, ``global`` and
  ``appearance`` is shifted and scaled by the training set's mean and standard deviation
  (:meth:`FOSRNet.set_normalization`; buffers saved with the weights). Pretrained and random
  backbones give features of very different scales (a random UNISAL's ``f_u`` has a standard
  deviation near 0.03, a random ResNet's pooled output near 0.5); without it the small ones
  barely reach the head.
* **Box geometry** (``use_geometry``): the ``geometry`` feature (``sqrt(box area / image area)``,
  box width / image width, box height / image height; :func:`salrank.fosrnet.features.box_geometry`),
  embedded by a learnable ``Linear(3 -> geometry_dim)`` and appended to F_p. The paper's PE sees
  box centres only, and the crop-mode appearance feature is resized to a fixed size, so box size
  is otherwise only implicit; RA-SRGT explicitly rewards size (eq. 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import Tensor, nn

from salrank.fosrnet.acb import circulative_sequences_batched, rank_sequences_batched
from salrank.fosrnet.ecs import COSTS
from salrank.fosrnet.features import GEOMETRY_DIM
from salrank.fosrnet.heads import create_head
from salrank.paper import TABLE2_ROWS

#: The features standardised when ``FOSRNetConfig.normalize`` is on.
NORMALIZED_KEYS = ("local", "global", "appearance")

#: What the position embedding sees: the normalised box centre ``(x, y)`` (2 numbers), or the
#: normalised top-left and bottom-right corners ``(x1, y1, x2, y2)`` (Sec. III-C2's ``pos``).
PE_INPUTS = ("center", "corners")


@dataclass(frozen=True)
class FOSRNetConfig:
    """FOSRNet hyper-parameters, ablation switches and the two salrank additions ``normalize`` and
    ``use_geometry`` (module doc); defaults = the paper's full model."""

    unisal_dim: int = 192
    appearance_dim: int = 2048
    pe_dim: int = 192
    k: int = 5
    num_classes: int = 5
    head: str = "vit"
    head_kwargs: dict = field(default_factory=dict)
    pe_input: str = "center"
    use_pse: bool = True
    use_local: bool = True
    use_global: bool = True
    use_pe: bool = True
    use_transformer: bool = True
    use_hungarian: bool = True
    cost: str = "log-softmax"
    # salrank additions (module doc), off in the paper's model
    normalize: bool = False
    use_geometry: bool = False
    geometry_dim: int = 64

    def __post_init__(self):
        if self.pe_input not in PE_INPUTS:
            raise ValueError(f"FOSRNetConfig.pe_input: unknown {self.pe_input!r}; expected one of {PE_INPUTS}")
        if self.cost not in COSTS:
            raise ValueError(f"FOSRNetConfig.cost: unknown {self.cost!r}; expected one of {COSTS}")
        if self.use_geometry and self.geometry_dim < 1:
            raise ValueError(f"FOSRNetConfig.geometry_dim: must be >= 1, got {self.geometry_dim}")
        if not any((self.use_pse, self.use_local, self.use_global, self.use_pe)):
            raise ValueError("FOSRNetConfig: at least one of use_pse/use_local/use_global/use_pe must be True")

    @property
    def head_name(self) -> str:
        """The head actually built: ``head``, or ``"fc"`` when ``use_transformer`` is False."""
        return self.head if self.use_transformer else "fc"

    @property
    def in_dim(self) -> int:
        """Width of F_p for the enabled parts."""
        return (self.unisal_dim * (int(self.use_local) + int(self.use_global))
                + self.pe_dim * int(self.use_pe) + self.appearance_dim * int(self.use_pse)
                + self.geometry_dim * int(self.use_geometry))

    @property
    def required_keys(self) -> tuple[str, ...]:
        keys = [("local", self.use_local), ("global", self.use_global), ("centers", self.use_pe),
                ("geometry", self.use_geometry or (self.use_pe and self.pe_input == "corners")),
                ("appearance", self.use_pse)]
        return tuple(name for name, on in keys if on)

    @classmethod
    def official(cls, **kw) -> FOSRNetConfig:
        """The released network: the ``official`` head (12 blocks, see
        :mod:`salrank.fosrnet.heads`) on concat(local 192, global 192, appearance 2048), no
        position embedding, ECS cost ``exp(-logits)``, 5 proposals per sequence, 5 classes, no
        feature standardisation. Loads the authors' checkpoints with
        :meth:`FOSRNet.load_official_state_dict`."""
        base = dict(unisal_dim=192, appearance_dim=2048, k=5, num_classes=5, head="official",
                    use_pse=True, use_local=True, use_global=True, use_pe=False, use_transformer=True,
                    use_hungarian=True, cost="exp-neg-logit")
        return cls(**{**base, **kw})

    @classmethod
    def table2(cls, row: int, **kw) -> FOSRNetConfig:
        """The configuration of Table II row ``row`` (1-7, :data:`salrank.paper.TABLE2_ROWS`), with further
        overrides."""
        if row not in TABLE2_ROWS:
            raise ValueError(f"row: expected one of {sorted(TABLE2_ROWS)}, got {row}")
        return cls(**{**TABLE2_ROWS[row], **kw})


class FOSRNet(nn.Module):
    """Per-proposal features -> F_p -> ranking head. See the module doc for inputs."""

    def __init__(self, config: FOSRNetConfig | None = None):
        super().__init__()
        self.config = config or FOSRNetConfig()
        c = self.config
        self.pe = nn.Linear(2 if c.pe_input == "center" else 4, c.pe_dim) if c.use_pe else None
        self.geometry = nn.Linear(GEOMETRY_DIM, c.geometry_dim) if c.use_geometry else None
        if c.normalize:
            dims = {"local": c.unisal_dim, "global": c.unisal_dim, "appearance": c.appearance_dim}
            for key, dim in dims.items():
                self.register_buffer(f"mean_{key}", torch.zeros(dim))
                self.register_buffer(f"std_{key}", torch.ones(dim))
        self.head = create_head(c.head_name, in_dim=c.in_dim, k=c.k, num_classes=c.num_classes, **c.head_kwargs)

    @property
    def output_kind(self) -> str:
        """``"classes"`` ((B, k, C) logits) or ``"score"`` ((B, k) scores)."""
        return getattr(self.head, "output_kind", "classes")

    def _get(self, features: Mapping, key: str, dim: int | None, where: str) -> Tensor:
        if key not in features or features[key] is None:
            raise KeyError(f"{where}: missing feature {key!r} (needed: {', '.join(self.config.required_keys)})")
        x = features[key]
        device = next(self.parameters()).device
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32, device=device)
        if dim is not None and x.ndim == 1 and x.numel() == 0:
            x = x.reshape(0, dim)  # an image without proposals
        if dim is not None and x.shape[-1] != dim:
            raise ValueError(f"{where}: feature {key!r} has last dimension {x.shape[-1]}, expected {dim}")
        return x

    @torch.no_grad()
    def set_normalization(self, arrays: Mapping[str, np.ndarray], eps: float = 1e-6) -> None:
        """Set the standardisation (``normalize``) from (N, D) training arrays of ``local`` / ``global`` /
        ``appearance`` (missing or empty ones keep mean 0, std 1)."""
        if not self.config.normalize:
            raise ValueError("set_normalization: this FOSRNet has normalize=False")
        for key in NORMALIZED_KEYS:
            if key not in arrays:
                continue
            x = torch.as_tensor(np.asarray(arrays[key], np.float64))
            if len(x) == 0:
                continue
            getattr(self, f"mean_{key}").copy_(x.mean(0).float())
            getattr(self, f"std_{key}").copy_(x.std(0, unbiased=False).clamp(min=eps).float())

    def _feature(self, features: Mapping, key: str, dim: int, where: str) -> Tensor:
        x = self._get(features, key, dim, where)
        if self.config.normalize:
            x = (x - getattr(self, f"mean_{key}")) / getattr(self, f"std_{key}")
        return x

    def embed(self, features: Mapping, where: str = "features") -> Tensor:
        """F_p of every proposal: (..., in_dim) from the enabled parts (see module doc)."""
        c = self.config
        parts = []
        if c.use_local:
            parts.append(self._feature(features, "local", c.unisal_dim, where))
        if c.use_global:
            parts.append(self._feature(features, "global", c.unisal_dim, where))
        if c.use_pe:
            centers = self._get(features, "centers", 2, where)
            if c.pe_input == "corners":
                half = self._get(features, "geometry", None, where)[..., 1:3] / 2.0  # (w/W, h/H) / 2
                centers = torch.cat([centers - half, centers + half], dim=-1)
            parts.append(self.pe(centers))
        if c.use_pse:
            parts.append(self._feature(features, "appearance", c.appearance_dim, where))
        if c.use_geometry:
            parts.append(self.geometry(self._get(features, "geometry", GEOMETRY_DIM, where)))
        lead = {tuple(p.shape[:-1]) for p in parts}
        if len(lead) != 1:
            raise ValueError(f"{where}: features disagree on leading shape: {sorted(lead)}")
        return torch.cat(parts, dim=-1)

    def forward(self, features: Mapping, mask: Tensor | None = None) -> Tensor:
        """Head output for a batch of sequences: features (B, k, ...) -> (B, k, C) logits or (B, k).

        ``mask`` (B, k) True = dummy (may also be given as ``features["mask"]``).
        """
        if mask is None:
            mask = features.get("mask")
        x = self.embed(features)
        if x.ndim != 3:
            raise ValueError(f"features: expected (B, k, C) tensors, got leading shape {tuple(x.shape[:-1])}")
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool, device=x.device)
        return self.head(x, mask)

    def load_official_state_dict(self, state_dict) -> FOSRNet:
        """Load a state dict saved from the authors' ``VisionTransformer`` (see
        :meth:`salrank.fosrnet.heads.OfficialHead.load_official_state_dict`); needs a model built
        from :meth:`FOSRNetConfig.official` (or the ``official`` head on the same 2432-d input).
        Returns ``self``."""
        if not hasattr(self.head, "load_official_state_dict"):
            raise TypeError(f"load_official_state_dict: needs the 'official' head, this model has "
                            f"{self.config.head_name!r} (use FOSRNetConfig.official())")
        if self.pe is not None:
            raise TypeError("load_official_state_dict: the released network has no position embedding "
                            "(use FOSRNetConfig.official(), use_pe=False)")
        self.head.load_official_state_dict(state_dict)
        return self

    def _image_geometry(self, features: Mapping, i: int, n: int) -> np.ndarray:
        for key in ("boxes", "centers"):
            if features.get(key) is not None:
                g = features[key]
                g = np.asarray(g.detach().cpu() if isinstance(g, Tensor) else g, dtype=np.float64)
                if len(g) != n:
                    raise ValueError(f"image {i}: {key!r} has {len(g)} rows, features have {n}")
                return g
        raise KeyError(f"image {i}: predict_ranks needs 'boxes' or 'centers' for the ACB order")

    @torch.no_grad()
    def predict_ranks(self, images: Mapping | Sequence[Mapping], max_sequences: int | None = None):
        """Final ranks (1 = most salient .. n) of every image's proposals.

        ``images``: one per-image feature dict with (n, ...) arrays (see module doc), or a list of
        them. All ACB sequences of all images go through the head in one forward (or in chunks of
        ``max_sequences``), then batched ECS (or argmax without ``use_hungarian``; score order for
        the ``reg`` head) and ACB vote aggregation. Returns an (n,) int64 array per image (a list
        for a list input); n = 0 gives an empty array.
        """
        single = isinstance(images, Mapping)
        items = [images] if single else list(images)
        tokens, geometry = [], []
        for i, feats in enumerate(items):
            if not isinstance(feats, Mapping):
                raise TypeError(f"image {i}: expected a dict of per-proposal features, got {type(feats).__name__}")
            x = self.embed(feats, where=f"image {i}")
            if x.ndim != 2:
                raise ValueError(f"image {i}: expected (n, C) features, got leading shape {tuple(x.shape[:-1])}")
            tokens.append(x)
            geometry.append(self._image_geometry(feats, i, len(x)))
        batch = circulative_sequences_batched(geometry, self.config.k)
        was_training = self.training
        self.eval()
        try:
            all_tokens = torch.cat(tokens) if tokens else torch.zeros(0, self.config.in_dim)
            _, ranks = rank_sequences_batched(
                self.head, all_tokens, batch, cost=self.config.cost,
                use_hungarian=self.config.use_hungarian, max_sequences=max_sequences,
            )
        finally:
            self.train(was_training)
        per_image = batch.split(ranks)
        return per_image[0] if single else per_image


def create_fosrnet(config: FOSRNetConfig | None = None, **kw) -> FOSRNet:
    """Build FOSRNet from a config and/or keyword overrides of :class:`FOSRNetConfig` fields."""
    known = {f.name for f in fields(FOSRNetConfig)}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise TypeError(f"create_fosrnet: unknown options {unknown}; known: {sorted(known)}")
    config = replace(config, **kw) if config is not None else FOSRNetConfig(**kw)
    return FOSRNet(config)


__all__ = ["NORMALIZED_KEYS", "PE_INPUTS", "FOSRNet", "FOSRNetConfig", "create_fosrnet"]
