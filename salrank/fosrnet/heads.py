"""Ranking heads over the k proposals of one sequence, selectable by name.

Every head maps ``x`` (B, k, in_dim) per-proposal features and an optional key-padding
``mask``      (B, k) bool (True = dummy slot) to (B, k, num_classes) class logits, or to (B, k)
scores for the regression head (``head.output_kind`` says which). Dummy slots never influence
the outputs of valid slots (their own outputs are meaningless and must be discarded).

============  ==============================================================================
name          what
============  ==============================================================================
``vit``       the paper's head: Linear(in -> 384) + ReLU + Dropout, 4 pre-norm transformer
              encoder blocks (width 384, 8 heads, MLP ratio 4, GELU) + LayerNorm, then
              Dropout(0.5) + Linear(384 -> num_classes) per token. No token position embedding
              (as in the official code): the encoder is permutation-equivariant over proposals.
``fc``        two FC layers per proposal, no interaction (Table II rows 1-5, "without TEB").
``gcn``       a small relational GCN over the k proposals (Table III-C): see :class:`GCNHead`.
``reg``       the ``vit`` trunk with one score per proposal ("Ours (Reg.)"); higher = more salient.
``official``  the released network (the authors' ``VisionTransformer``): ReLU + Dropout + Linear
              (in -> 384) on the raw features, 12 pre-norm blocks (LayerNorm eps 1e-6, no inner
              dropout), Dropout(0.5) + Linear(384 -> num_classes); loads their checkpoints
              (:meth:`OfficialHead.load_official_state_dict`).
============  ==============================================================================

>>> head = create_head("fc", in_dim=8)
>>> sorted(list_heads())
['fc', 'gcn', 'official', 'reg', 'vit']
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_head(name: str) -> Callable:
    """Class/function decorator adding a head factory ``f(in_dim, k, num_classes, **kw)`` under ``name``."""

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"head {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def list_heads() -> list[str]:
    """Names accepted by :func:`create_head`, sorted."""
    return sorted(_REGISTRY)


def create_head(name: str, in_dim: int, k: int = 5, num_classes: int = 5, **kw) -> nn.Module:
    """Build the head registered as ``name`` (see module table); ``kw`` go to its constructor."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown head {name!r}; known heads: {', '.join(list_heads())}")
    if in_dim < 1 or k < 1 or num_classes < 1:
        raise ValueError(f"in_dim, k, num_classes must be >= 1, got {in_dim}, {k}, {num_classes}")
    return _REGISTRY[name](in_dim=in_dim, k=k, num_classes=num_classes, **kw)


def _check_input(x: Tensor, mask: Tensor | None, in_dim: int) -> Tensor:
    """Validate shapes; return a (B, k) bool mask (all False when None)."""
    if x.ndim != 3 or x.shape[-1] != in_dim:
        raise ValueError(f"x: expected (B, k, {in_dim}), got {tuple(x.shape)}")
    if mask is None:
        return torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask: expected {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    return mask.to(torch.bool)


def _attention_mask(mask: Tensor) -> Tensor:
    """Key-padding mask safe for attention: a fully dummy sequence attends to itself (no NaN)."""
    return mask & ~mask.all(dim=1, keepdim=True)


EMBED_ORDERS = ("linear-first", "relu-first")
"""Input embedding of :class:`TransformerTrunk`: Linear + ReLU + Dropout, or the released
network's ReLU + Dropout + Linear (applied to the raw concatenated features)."""


class TransformerTrunk(nn.Module):
    """Input embedding to ``width`` (``embed_order``: Linear + ReLU + Dropout, or ReLU + Dropout +
    Linear), then ``depth`` pre-norm encoder blocks (qkv bias, GELU MLP) + LayerNorm; every
    LayerNorm uses ``norm_eps``."""

    def __init__(
        self,
        in_dim: int,
        width: int = 384,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        embed_dropout: float = 0.1,
        dropout: float = 0.1,
        embed_order: str = "linear-first",
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        if embed_order not in EMBED_ORDERS:
            raise ValueError(f"embed_order: unknown {embed_order!r}; expected one of {EMBED_ORDERS}")
        self.in_dim = in_dim
        if embed_order == "linear-first":
            self.embed = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(inplace=True), nn.Dropout(embed_dropout))
        else:
            self.embed = nn.Sequential(nn.ReLU(), nn.Dropout(embed_dropout), nn.Linear(in_dim, width))
        layer = nn.TransformerEncoderLayer(
            width,
            num_heads,
            dim_feedforward=int(width * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            layer_norm_eps=norm_eps,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width, eps=norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = _check_input(x, mask, self.in_dim)
        h = self.embed(x)
        h = self.encoder(h, src_key_padding_mask=_attention_mask(mask))
        return self.norm(h)


@register_head("vit")
class ViTHead(nn.Module):
    """The paper's transformer head (see module table). Output (B, k, num_classes) logits."""

    output_kind = "classes"

    def __init__(
        self,
        in_dim: int,
        k: int = 5,
        num_classes: int = 5,
        width: int = 384,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        embed_dropout: float = 0.1,
        dropout: float = 0.1,
        head_dropout: float = 0.5,
        embed_order: str = "linear-first",
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.k, self.num_classes = k, num_classes
        self.trunk = TransformerTrunk(in_dim, width, depth, num_heads, mlp_ratio, embed_dropout, dropout,
                                      embed_order, norm_eps)
        self.classifier = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(width, num_classes))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.classifier(self.trunk(x, mask))


def official_key_map(depth: int = 12) -> dict[str, str | None]:
    """Parameter names of the authors' released ``VisionTransformer`` -> names in
    :class:`OfficialHead` (``None``: parameters their class creates but never uses in its forward:
    patch embedding, class token, position embedding, the 1000-way ``head``)."""
    out: dict[str, str | None] = {name: None for name in (
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "head.weight", "head.bias")}
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"trunk.encoder.layers.{i}."
        for a, b in (("norm1", "norm1"), ("norm2", "norm2"), ("attn.proj", "self_attn.out_proj"),
                     ("mlp.fc1", "linear1"), ("mlp.fc2", "linear2")):
            out[f"{src}{a}.weight"] = f"{dst}{b}.weight"
            out[f"{src}{a}.bias"] = f"{dst}{b}.bias"
        out[f"{src}attn.qkv.weight"] = f"{dst}self_attn.in_proj_weight"
        out[f"{src}attn.qkv.bias"] = f"{dst}self_attn.in_proj_bias"
    out.update({"norm.weight": "trunk.norm.weight", "norm.bias": "trunk.norm.bias",
                "linear.2.weight": "trunk.embed.2.weight", "linear.2.bias": "trunk.embed.2.bias",
                "classifier.1.weight": "classifier.1.weight", "classifier.1.bias": "classifier.1.bias"})
    return out


@register_head("official")
class OfficialHead(ViTHead):
    """The released network's head (the authors' ``VisionTransformer``): ReLU + Dropout(0.5) +
    Linear(in -> 384) on the raw features, 12 pre-norm blocks (8 heads, qkv bias, MLP ratio 4,
    GELU, LayerNorm eps 1e-6, no dropout inside), LayerNorm, Dropout(0.5) + Linear(384 -> C).
    No position embedding. :meth:`load_official_state_dict` reads their checkpoints."""

    def __init__(self, in_dim: int, k: int = 5, num_classes: int = 5, width: int = 384, depth: int = 12,
                 num_heads: int = 8, mlp_ratio: float = 4.0, embed_dropout: float = 0.5,
                 dropout: float = 0.0, head_dropout: float = 0.5):
        super().__init__(in_dim, k, num_classes, width, depth, num_heads, mlp_ratio, embed_dropout, dropout,
                         head_dropout, embed_order="relu-first", norm_eps=1e-6)
        self.depth = depth

    def load_official_state_dict(self, state_dict) -> None:
        """Load a state dict saved from the authors' ``VisionTransformer`` (same depth and widths).

        Every key of :func:`official_key_map` must be present and no other; the used tensors must
        match this head's shapes. Raises ``KeyError`` naming a missing or unexpected key and
        ``ValueError`` naming a key of the wrong shape.
        """
        key_map = official_key_map(self.depth)
        given = {k.removeprefix("module."): v for k, v in state_dict.items()}  # DataParallel checkpoints
        missing = [k for k in key_map if k not in given]
        if missing:
            raise KeyError(f"official state dict: missing key {missing[0]!r}"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        unexpected = [k for k in given if k not in key_map]
        if unexpected:
            raise KeyError(f"official state dict: unexpected key {unexpected[0]!r}"
                           + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
        own = self.state_dict()
        mapped = {}
        for src, dst in key_map.items():
            if dst is None:
                continue
            value = torch.as_tensor(given[src])
            if tuple(value.shape) != tuple(own[dst].shape):
                raise ValueError(f"official state dict: key {src!r} has shape {tuple(value.shape)}, "
                                 f"expected {tuple(own[dst].shape)}")
            mapped[dst] = value
        self.load_state_dict(mapped, strict=True)


@register_head("reg")
class RegressionHead(nn.Module):
    """The ``vit`` trunk with Dropout + Linear(width -> 1): (B, k) scores, higher = more salient.

    ``num_classes`` is accepted for a uniform factory signature and ignored.
    """

    output_kind = "score"

    def __init__(self, in_dim: int, k: int = 5, num_classes: int = 5, width: int = 384, depth: int = 4,
                 num_heads: int = 8, mlp_ratio: float = 4.0, embed_dropout: float = 0.1,
                 dropout: float = 0.1, head_dropout: float = 0.5):
        super().__init__()
        self.k = k
        self.trunk = TransformerTrunk(in_dim, width, depth, num_heads, mlp_ratio, embed_dropout, dropout)
        self.regressor = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(width, 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.regressor(self.trunk(x, mask)).squeeze(-1)


@register_head("fc")
class FCHead(nn.Module):
    """Two FC layers per proposal (Linear + ReLU + Dropout + Linear); proposals do not interact."""

    output_kind = "classes"

    def __init__(self, in_dim: int, k: int = 5, num_classes: int = 5, hidden: int = 384, dropout: float = 0.5):
        super().__init__()
        self.in_dim, self.k, self.num_classes = in_dim, k, num_classes
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_input(x, mask, self.in_dim)
        return self.net(x)


@register_head("gcn")
class GCNHead(nn.Module):
    """A small relational GCN over the proposals of a sequence.

    Nodes: Linear(in -> hidden) + ReLU embeddings of the k proposals. Each of ``layers`` graph
    layers computes an adjacency from the current node features and updates
    ``h <- h + ReLU(LayerNorm(A @ W h))`` (residual). Adjacency (``adjacency=``):

    * ``"learned"`` (default): ``A = row_softmax(theta(h) phi(h)^T / sqrt(d))`` with learned
      linear projections theta, phi (a non-local / Rs-GCN style relation graph);
    * ``"cosine"``: ``A = row_normalise(relu(cos(h_i, h_j)))`` (feature similarity, no extra
      parameters; self-loops have weight 1).

    Edges into dummy nodes are removed (dummy columns masked), so dummies never affect valid nodes.
    Output: Dropout + Linear(hidden -> num_classes) per node.
    """

    output_kind = "classes"
    ADJACENCIES = ("learned", "cosine")

    def __init__(self, in_dim: int, k: int = 5, num_classes: int = 5, hidden: int = 384, layers: int = 2,
                 adjacency: str = "learned", dropout: float = 0.5):
        super().__init__()
        if adjacency not in self.ADJACENCIES:
            raise ValueError(f"adjacency: unknown {adjacency!r}; expected one of {self.ADJACENCIES}")
        self.in_dim, self.k, self.num_classes, self.adjacency = in_dim, k, num_classes, adjacency
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True))
        self.weights = nn.ModuleList([nn.Linear(hidden, hidden, bias=False) for _ in range(layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(layers)])
        if adjacency == "learned":
            self.theta = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
            # no key bias: it would add a per-row constant that the softmax cancels
            self.phi = nn.ModuleList([nn.Linear(hidden, hidden, bias=False) for _ in range(layers)])
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def _adjacency(self, h: Tensor, key_mask: Tensor, layer: int) -> Tensor:
        if self.adjacency == "learned":
            q, kk = self.theta[layer](h), self.phi[layer](h)
            logits = q @ kk.transpose(1, 2) / q.shape[-1] ** 0.5
            return logits.masked_fill(key_mask[:, None, :], float("-inf")).softmax(dim=-1)
        hn = nn.functional.normalize(h, dim=-1)
        sim = (hn @ hn.transpose(1, 2)).clamp(min=0.0)
        sim = sim.masked_fill(key_mask[:, None, :], 0.0)
        eye = torch.eye(h.shape[1], dtype=h.dtype, device=h.device)
        sim = torch.maximum(sim, eye)  # keep self-loops so no row is empty
        return sim / sim.sum(dim=-1, keepdim=True)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = _check_input(x, mask, self.in_dim)
        key_mask = _attention_mask(mask)
        h = self.embed(x)
        for i, (w, norm) in enumerate(zip(self.weights, self.norms, strict=True)):
            a = self._adjacency(h, key_mask, i)
            h = h + torch.relu(norm(a @ w(h)))
        return self.classifier(h)
