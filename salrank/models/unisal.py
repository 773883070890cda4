"""UNISAL (Droste et al., ECCV 2020): the saliency network that FOSRNet uses as its PSM.

The module tree reproduces, name for name and shape for shape, the official checkpoint
``training_runs/pretrained_unisal/weights_best.pth`` of github.com/rdroste/unisal (835 state-dict
entries, sources DHF1K, Hollywood, UCFSports and SALICON), so that file loads with
``strict=True`` (see ``book/conventions.md``, conv-unisal). Still images run the SALICON path: MobileNetV2
backbone, 16 learned Gaussian prior maps, the decoder (whose 192-channel stride-8 output is
``f_u``, the feature FOSRNet pools), per-domain adaptation, a 41x41 smoothing and a
log-softmax over all pixels. The recurrent part (``rnn``, ``post_rnn``) runs only for
sequences of more than one frame.

Entry points:

* :func:`load_unisal` -> an eval-mode :class:`UNISAL` (official weights or random init);
* :meth:`UNISAL.predict` -> :class:`SaliencyMap` per image, at the image's own size;
* :meth:`UNISAL.features` / :meth:`UNISAL.features_per_image` -> ``f_u``;
* :func:`preprocess`, :func:`network_size_for`, :func:`boxes_to_feature_coords`,
  :func:`roi_boxes` for feature extractors built on ``f_u``.

Conventions: ``image_size`` and ``network_size`` are ``(height, width)`` in pixels; boxes are
``[x1, y1, x2, y2]`` in continuous pixel coordinates of the original image (pixel ``i`` covers
``[i, i + 1)``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

__all__ = [
    "SOURCES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SALICON_NETWORK_SIZE",
    "FEATURE_STRIDE",
    "FEATURE_CHANNELS",
    "WEIGHTS_NAME",
    "DomainBatchNorm2d",
    "InvertedResidual",
    "MobileNetV2Backbone",
    "ConvGRUCell",
    "ConvGRU",
    "UNISAL",
    "SaliencyMap",
    "PreprocessedImage",
    "load_unisal",
    "to_rgb_image",
    "network_size_for",
    "preprocess",
    "gaussian_prior_maps",
    "initial_gaussians",
    "initial_smoothing_kernel",
    "boxes_to_feature_coords",
    "feature_scale",
    "roi_boxes",
]

SOURCES: tuple[str, ...] = ("DHF1K", "Hollywood", "UCFSports", "SALICON")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SALICON_NETWORK_SIZE = (288, 384)
FEATURE_STRIDE = 8  # f_u is at 1/8 of the network input size
FEATURE_CHANNELS = 192
N_GAUSSIANS = 16
GAUSSIAN_SCALING = 6.0
SMOOTHING_KSIZE = 41
WEIGHTS_NAME = "unisal.salicon"

# Official size rule: H = 32 n1, W = 32 n2, n1, n2 in 7..13, 100 <= n1 n2 <= 120.
_SIZE_UNIT = 32
_SIZE_CANDIDATES: tuple[tuple[int, int], ...] = tuple(
    (n1, n2) for n1 in range(7, 14) for n2 in range(7, 14) if 100 <= n1 * n2 <= 120
)

ImageLike = Image.Image | np.ndarray | str | os.PathLike
NormFactory = Callable[[int], nn.Module]


# --- building blocks -----------------------------------------------------------------------------
class DomainBatchNorm2d(nn.Module):
    """One ``BatchNorm2d`` per source (children ``bn_<source>``); applies the current ``source``."""

    def __init__(
        self, num_features: int, sources: Sequence[str] = SOURCES, momenta: Sequence[float] | None = None
    ):
        super().__init__()
        self.sources = tuple(sources)
        momenta = tuple(momenta) if momenta is not None else (0.1,) * len(self.sources)
        if len(momenta) != len(self.sources):
            raise ValueError("one momentum per source expected")
        for src, momentum in zip(self.sources, momenta, strict=True):
            self.add_module(f"bn_{src}", nn.BatchNorm2d(num_features, momentum=momentum))
        self.source = self.sources[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._modules[f"bn_{self.source}"](x)

    def extra_repr(self) -> str:
        return f"source={self.source!r}"


def _plain_bn(momentum: float = 0.1) -> NormFactory:
    return lambda channels: nn.BatchNorm2d(channels, momentum=momentum)


def _depthwise_3x3(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)


def _pointwise(in_ch: int, out_ch: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=bias)


def _init_mobilenet_(module: nn.Module) -> None:
    """MobileNetV2's initialisation: conv ~ N(0, 2 / (k*k*out)), BN = identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class InvertedResidual(nn.Module):
    """MobileNetV2 block (children ``conv.<i>``), depthwise convolution always at stride 1.

    ``subsample_output`` marks the blocks that MobileNetV2 runs at stride 2: UNISAL computes them
    at full resolution and the backbone subsamples their output with ``x[..., ::2, ::2]``. The
    residual is added only for non-subsampling blocks with ``in_ch == out_ch``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expand_ratio: float,
        subsample_output: bool = False,
        norm: NormFactory | None = None,
    ):
        super().__init__()
        norm = norm or _plain_bn()
        hidden = round(in_ch * expand_ratio)
        if expand_ratio == 1:
            layers = [
                _depthwise_3x3(hidden), norm(hidden), nn.ReLU6(inplace=True),
                _pointwise(hidden, out_ch), norm(out_ch),
            ]  # fmt: skip
        else:
            layers = [
                _pointwise(in_ch, hidden), norm(hidden), nn.ReLU6(inplace=True),
                _depthwise_3x3(hidden), norm(hidden), nn.ReLU6(inplace=True),
                _pointwise(hidden, out_ch), norm(out_ch),
            ]  # fmt: skip
        self.conv = nn.Sequential(*layers)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.subsample_output = subsample_output
        self.use_residual = not subsample_output and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


# (in, out, expand ratio, subsampled) for features.1 .. features.17
_MOBILENET_V2_BLOCKS: tuple[tuple[int, int, int, bool], ...] = (
    (32, 16, 1, False),
    (16, 24, 6, True), (24, 24, 6, False),
    (24, 32, 6, True), (32, 32, 6, False), (32, 32, 6, False),
    (32, 64, 6, True), (64, 64, 6, False), (64, 64, 6, False), (64, 64, 6, False),
    (64, 96, 6, False), (96, 96, 6, False), (96, 96, 6, False),
    (96, 160, 6, True), (160, 160, 6, False), (160, 160, 6, False),
    (160, 320, 6, False),
)  # fmt: skip


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 (width 1.0) as UNISAL uses it: returns ``(x, f2, f4)``.

    ``x``: 1280 channels at stride 32; ``f2``: features.14 before subsampling (160 ch, stride 16);
    ``f4``: features.7 before subsampling (64 ch, stride 8).
    """

    TAP_STRIDE_8 = 7
    TAP_STRIDE_16 = 14
    out_channels = 1280

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        ]
        layers += [InvertedResidual(i, o, t, s) for i, o, t, s in _MOBILENET_V2_BLOCKS]
        layers.append(nn.Sequential(_pointwise(320, 1280), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        _init_mobilenet_(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f2 = f4 = None
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx == self.TAP_STRIDE_8:
                f4 = x
            elif idx == self.TAP_STRIDE_16:
                f2 = x
            if getattr(layer, "subsample_output", False):
                x = x[..., ::2, ::2]
        return x, f2, f4


def _separable_conv(channels: int, norm: NormFactory) -> nn.Sequential:
    """MobileNet-style 3x3 convolution of the GRU: depthwise, BN, ReLU6, pointwise (no biases)."""
    return nn.Sequential(
        OrderedDict(
            conv_dw=_depthwise_3x3(channels),
            sep_bn=norm(channels),
            sep_relu=nn.ReLU6(),
            conv_sep=_pointwise(channels, channels),
        )
    )


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell with normalised gate inputs and recurrent (variational) dropout.

    r = sigmoid(a_r_x N(W_r x) + a_r_h N(U_r h) + b_r), z likewise,
    n = tanh(a_h_x N(W x) + r * a_h_h N(U h) + b_h), h' = (1 - z) h + z n.
    In training, ``h`` is multiplied per channel by the rows of ``drop_mask_1`` (one row for each
    of U_r, U_z, U), resampled at the start of every sequence.
    """

    def __init__(self, channels: int = 256, norm: NormFactory | None = None, recurrent_drop: float = 0.2):
        super().__init__()
        norm = norm or _plain_bn()
        self.channels = channels
        self.recurrent_drop = recurrent_drop
        for name in ("b_r", "b_z", "b_h"):
            setattr(self, name, nn.Parameter(torch.zeros(channels, 1, 1)))
        for name in ("a_r_x", "a_r_h", "a_z_x", "a_z_h", "a_h_x", "a_h_h"):
            setattr(self, name, nn.Parameter(torch.ones(channels, 1, 1)))
        self.register_buffer("drop_mask_1", torch.ones(3, channels))
        for name in ("norm_r_x", "norm_r_h", "norm_z_x", "norm_z_h", "norm_out_x", "norm_out_h"):
            setattr(self, name, norm(channels))
        for name in ("w_r", "u_r", "w_z", "u_z", "w", "u"):
            setattr(self, name, _separable_conv(channels, norm))

    @torch.no_grad()
    def resample_drop_mask(self) -> None:
        p = self.recurrent_drop
        keep = torch.full_like(self.drop_mask_1, 1.0 - p)
        self.drop_mask_1.copy_(torch.bernoulli(keep) / (1.0 - p))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.channels, *x.shape[-2:])
        if self.training and self.recurrent_drop > 0:
            h_r, h_z, h_n = (h * self.drop_mask_1[i].view(1, -1, 1, 1) for i in range(3))
        else:
            h_r = h_z = h_n = h
        r = torch.sigmoid(
            self.norm_r_x(self.w_r(x)) * self.a_r_x + self.norm_r_h(self.u_r(h_r)) * self.a_r_h + self.b_r
        )
        z = torch.sigmoid(
            self.norm_z_x(self.w_z(x)) * self.a_z_x + self.norm_z_h(self.u_z(h_z)) * self.a_z_h + self.b_z
        )
        n = torch.tanh(
            self.norm_out_x(self.w(x)) * self.a_h_x
            + r * (self.norm_out_h(self.u(h_n)) * self.a_h_h)
            + self.b_h
        )
        return (1 - z) * h + z * n


class ConvGRU(nn.Module):
    """Single-layer convolutional GRU over ``[B, T, C, H, W]`` (child ``cell_list.0``)."""

    def __init__(self, channels: int = 256, norm: NormFactory | None = None):
        super().__init__()
        self.cell_list = nn.ModuleList([ConvGRUCell(channels, norm)])

    def forward(
        self, seq: torch.Tensor, hidden: list[torch.Tensor | None] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden = list(hidden) if hidden else [None] * len(self.cell_list)
        if self.training:
            for cell in self.cell_list:
                cell.resample_drop_mask()
        outputs = []
        for x in torch.unbind(seq, dim=1):
            for idx, cell in enumerate(self.cell_list):
                x = hidden[idx] = cell(x, hidden[idx])
            outputs.append(x)
        return torch.stack(outputs, dim=1), hidden


# --- Gaussian priors and smoothing ---------------------------------------------------------------
def gaussian_prior_maps(
    params: torch.Tensor, height: int, width: int, scaling: float = GAUSSIAN_SCALING
) -> torch.Tensor:
    """Prior maps ``[G, height, width]`` from ``params[G, (y, x), (mu, log_std)]``.

    map_g(y, x) = scaling * exp(-((y - mu_y) / e^{ls_y})^2 / 2) * exp(-((x - mu_x) / e^{ls_x})^2 / 2),
    with y = linspace(0, 1, height) and x = linspace(0, 1, width).
    """
    ys = torch.linspace(0, 1, height, dtype=params.dtype, device=params.device)
    xs = torch.linspace(0, 1, width, dtype=params.dtype, device=params.device)
    gy = torch.exp(-0.5 * ((ys[None, :] - params[:, 0, :1]) / torch.exp(params[:, 0, 1:])) ** 2)
    gx = torch.exp(-0.5 * ((xs[None, :] - params[:, 1, :1]) / torch.exp(params[:, 1, 1:])) ** 2)
    return scaling * gy[:, :, None] * gx[:, None, :]


def initial_gaussians() -> torch.Tensor:
    """The official initial prior parameters ``[16, 2, 2]`` = [gaussian, (y, x), (mu, log_std)]."""
    mus = list(product((0.25, 0.5, 0.75), repeat=2))
    mus += [(0.5, 0.25), (0.5, 0.5), (0.5, 0.75), (0.25, 0.5), (0.5, 0.5), (0.75, 0.5), (0.5, 0.5)]
    log_stds = [(-1.5, -1.5)] * 9 + [(0.0, -1.5)] * 3 + [(-1.5, 0.0)] * 3 + [(0.0, 0.0)]
    return torch.tensor([[[my, sy], [mx, sx]] for (my, mx), (sy, sx) in zip(mus, log_stds, strict=True)])


def initial_smoothing_kernel(ksize: int = SMOOTHING_KSIZE) -> torch.Tensor:
    """The official initial smoothing kernel ``[1, 1, k, k]``: a Gaussian (mu 0.5, std e^-2 in
    [0, 1] coordinates) normalised to sum 1."""
    kernel = gaussian_prior_maps(torch.tensor([[[0.5, -2.0], [0.5, -2.0]]]), ksize, ksize)
    return (kernel / kernel.sum()).unsqueeze(0)


def _polyphase_kernels(kernel: torch.Tensor, factor: int) -> tuple[torch.Tensor, int]:
    """Rewrite "nearest x``factor`` upsampling, replicate pad k//2, k x k conv" as one convolution
    of the coarse map (replicate pad ``cpad``) with ``factor**2`` output phases + pixel shuffle.

    Returns the phase kernels ``[factor**2, 1, taps, taps]`` and ``cpad``.
    """
    k = kernel.shape[-1]
    half = k // 2
    cpad = -(-half // factor)
    offsets = torch.arange(factor)[:, None] + torch.arange(k)[None, :] - half  # [phase, tap]
    coarse = torch.div(offsets, factor, rounding_mode="floor") + cpad
    taps = int(coarse.max()) + 1
    select = F.one_hot(coarse, taps).to(kernel)  # [phase, tap, coarse index]
    rows = torch.matmul(select.transpose(1, 2), kernel.reshape(k, k))  # [phase p, coarse d, tap v]
    phases = torch.matmul(rows[:, None], select[None])  # [p, q, d, e] = sum_v rows[p, d, v] select[q, v, e]
    return phases.reshape(factor * factor, 1, taps, taps), cpad


# --- the model -----------------------------------------------------------------------------------
class UNISAL(nn.Module):
    """UNISAL with the official module names (see the module docstring).

    ``fast_smoothing`` computes step 9 of the forward pass (nearest upsampling, replicate pad,
    41x41 smoothing) as one small polyphase convolution of the coarse map, which is the same
    linear map (equal up to float rounding) at a fraction of the cost; ``False`` runs it literally.
    """

    def __init__(self, fast_smoothing: bool = True):
        super().__init__()
        self.sources = SOURCES
        self.fast_smoothing = fast_smoothing
        self._source = "SALICON"

        for src in self.sources:
            setattr(self, f"coarse_gaussians_{src.lower()}", nn.Parameter(initial_gaussians()))

        self.cnn = MobileNetV2Backbone()
        in_post_cnn = MobileNetV2Backbone.out_channels + N_GAUSSIANS
        self.post_cnn = nn.Sequential(
            OrderedDict(inv_res=InvertedResidual(in_post_cnn, 256, 1, norm=_plain_bn(0.01)))
        )
        self.rnn = ConvGRU(256, norm=self._domain_bn)
        self.post_rnn = self._conv_1x1_bn(256, 256)
        self.upsampling_1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.skip_2x = self._skip_connection(160, 128)
        self.upsampling_2 = nn.Sequential(
            OrderedDict(
                inv_res=self._decoder_block(256 + 128, 128),
                us2=nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            )
        )
        self.skip_4x = self._skip_connection(64, 64)
        self.post_upsampling_2 = nn.Sequential(OrderedDict(inv_res=self._decoder_block(128 + 64, 64)))
        for src in self.sources:
            setattr(self, f"adaptation_{src.lower()}", nn.Sequential(nn.Conv2d(64, 1, 1, bias=True)))
            smoothing = nn.Conv2d(1, 1, SMOOTHING_KSIZE, padding=0, bias=False)
            with torch.no_grad():
                smoothing.weight.copy_(initial_smoothing_kernel())
            setattr(self, f"smoothing_{src.lower()}", smoothing)

    # construction helpers
    def _domain_bn(self, channels: int) -> DomainBatchNorm2d:
        momenta = [0.1 if src == "SALICON" else 0.01 for src in self.sources]
        return DomainBatchNorm2d(channels, self.sources, momenta)

    def _conv_1x1_bn(self, in_ch: int, out_ch: int) -> nn.Sequential:
        return nn.Sequential(_pointwise(in_ch, out_ch), self._domain_bn(out_ch), nn.ReLU6(inplace=True))

    def _skip_connection(self, in_ch: int, out_ch: int) -> nn.Sequential:
        hidden = 2 * in_ch
        return nn.Sequential(
            OrderedDict(
                expansion=self._conv_1x1_bn(in_ch, hidden),
                dropout=nn.Dropout2d(0.6),
                reduction=nn.Sequential(_pointwise(hidden, out_ch, bias=True), self._domain_bn(out_ch)),
            )
        )

    def _decoder_block(self, in_ch: int, out_ch: int) -> InvertedResidual:
        block = InvertedResidual(in_ch, out_ch, 2, norm=self._domain_bn)
        _init_mobilenet_(block)
        return block

    # domain selection
    @property
    def source(self) -> str:
        """The source whose domain-specific modules run (``SALICON`` for still images)."""
        return self._source

    def set_source(self, source: str) -> None:
        if source not in self.sources:
            raise ValueError(f"unknown source {source!r}; expected one of {self.sources}")
        for module in self.modules():
            if isinstance(module, DomainBatchNorm2d):
                module.source = source
        self._source = source

    def _domain(self, prefix: str, source: str) -> nn.Module | torch.Tensor:
        return getattr(self, f"{prefix}_{source.lower()}")

    # forward pass, in stages
    def encode(self, images: torch.Tensor, source: str = "SALICON") -> tuple[torch.Tensor, ...]:
        """``[N, 3, H, W]`` normalised images -> (coarse 256 x H/32 x W/32, skip 128 x H/16 x W/16,
        skip 64 x H/8 x W/8)."""
        self.set_source(source)
        x, f2, f4 = self.cnn(images)
        skip2, skip4 = self.skip_2x(f2), self.skip_4x(f4)
        priors = gaussian_prior_maps(self._domain("coarse_gaussians", source), *x.shape[-2:])
        x = torch.cat((x, priors.unsqueeze(0).expand(x.shape[0], -1, -1, -1)), dim=1)
        return self.post_cnn(x), skip2, skip4

    def decode(self, coarse: torch.Tensor, skip2: torch.Tensor, skip4: torch.Tensor) -> torch.Tensor:
        """Decoder up to ``f_u`` (192 x H/8 x W/8)."""
        x = torch.cat((self.upsampling_1(coarse), skip2), dim=1)
        return torch.cat((self.upsampling_2(x), skip4), dim=1)

    def saliency_logits(
        self, f_u: torch.Tensor, input_size: Sequence[int], source: str = "SALICON"
    ) -> torch.Tensor:
        """``f_u`` -> smoothed saliency logits ``[N, 1, H, W]`` at the network input size."""
        self.set_source(source)
        x = self._domain("adaptation", source)(self.post_upsampling_2(f_u))
        smoothing: nn.Conv2d = self._domain("smoothing", source)
        height, width = (int(s) for s in input_size)
        factor = height // x.shape[-2]
        half = smoothing.kernel_size[0] // 2
        fast = (
            self.fast_smoothing
            and factor > 0
            and factor & (factor - 1) == 0
            and (height, width) == (factor * x.shape[-2], factor * x.shape[-1])
        )
        if fast:
            phases, cpad = _polyphase_kernels(smoothing.weight, factor)
            if phases.shape[-1] == 2 * cpad + 1:
                x = F.conv2d(F.pad(x, [cpad] * 4, mode="replicate"), phases)
                return F.pixel_shuffle(x, factor)
        x = F.interpolate(x, size=(height, width), mode="nearest")
        return smoothing(F.pad(x, [half] * 4, mode="replicate"))

    def forward_features(self, images: torch.Tensor, source: str = "SALICON") -> torch.Tensor:
        """``[N, 3, H, W]`` normalised images -> ``f_u`` ``[N, 192, H/8, W/8]`` (still images)."""
        return self.decode(*self.encode(images, source))

    def forward(
        self,
        x: torch.Tensor,
        target_size: Sequence[int] | None = None,
        source: str = "SALICON",
        h0: list[torch.Tensor | None] | None = None,
        return_hidden: bool = False,
        static: bool | None = None,
    ):
        """Official forward pass: ``x`` ``[B, T, 3, H, W]`` (or ``[B, 3, H, W]``) -> log-probabilities
        ``[B, T, 1, Ht, Wt]`` (log-softmax over all pixels of each frame; ``target_size`` defaults to
        ``(H, W)``). The GRU runs unless the input is static (``T == 1`` by default)."""
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"expected [B, T, 3, H, W] or [B, 3, H, W], got {tuple(x.shape)}")
        input_size = tuple(x.shape[-2:])
        target_size = tuple(target_size) if target_size is not None else input_size
        static = x.shape[1] == 1 if static is None else static

        encoded = [self.encode(frame, source) for frame in torch.unbind(x, dim=1)]
        coarse = torch.stack([e[0] for e in encoded], dim=1)
        hidden = None
        if not static:
            rnn_out, hidden = self.rnn(coarse, h0)
            coarse = coarse + torch.stack([self.post_rnn(f) for f in torch.unbind(rnn_out, dim=1)], dim=1)
        outputs = []
        for t, (_, skip2, skip4) in enumerate(encoded):
            logits = self.saliency_logits(self.decode(coarse[:, t], skip2, skip4), input_size, source)
            logits = F.interpolate(logits, size=target_size, mode="bilinear", align_corners=False)
            outputs.append(_log_softmax_2d(logits))
        out = torch.stack(outputs, dim=1)
        return (out, hidden) if return_hidden else out

    # still-image inference on images
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        *,
        source: str = "SALICON",
        batch_size: int = 8,
        network_size: Sequence[int] | None = None,
    ) -> SaliencyMap | list[SaliencyMap]:
        """Saliency maps at each original image size.

        ``images``: one image or a list (PIL, ``HxWx3``/``HxW`` uint8 arrays, file paths).
        Images with the same network size (:func:`network_size_for`, or ``network_size`` for all)
        run together in batches of ``batch_size``. Runs in eval mode without gradients (the
        module's mode is restored afterwards). Returns one :class:`SaliencyMap` or a list.
        """
        single, rgb = _as_image_list(images)
        results: list[SaliencyMap | None] = [None] * len(rgb)
        for idx, batch in self._batches(rgb, network_size, batch_size):
            with _eval_no_grad(self):
                logits = self.saliency_logits(
                    self.forward_features(batch.to(self.device), source), batch.shape[-2:], source
                )
            for i, logit in zip(idx, logits, strict=True):
                results[i] = _to_saliency_map(logit, (rgb[i].height, rgb[i].width), tuple(batch.shape[-2:]))
        return results[0] if single else results

    def features(
        self,
        images: ImageLike | Sequence[ImageLike],
        *,
        source: str = "SALICON",
        batch_size: int = 8,
        network_size: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """``f_u`` ``[N, 192, H/8, W/8]`` for images that share one network size (e.g. 192 x 36 x 48
        for SALICON's 480 x 640 images). Pass ``network_size`` to force one size, or use
        :meth:`features_per_image` for mixed sizes. Eval mode, no gradients."""
        single, rgb = _as_image_list(images)
        sizes = {
            tuple(network_size) if network_size else network_size_for((im.height, im.width)) for im in rgb
        }
        if len(sizes) > 1:
            raise ValueError(
                f"images map to different network sizes {sorted(sizes)}; pass network_size=... "
                "or use features_per_image()"
            )
        maps = self.features_per_image(rgb, source=source, batch_size=batch_size, network_size=network_size)
        return torch.stack(maps)

    def features_per_image(
        self,
        images: ImageLike | Sequence[ImageLike],
        *,
        source: str = "SALICON",
        batch_size: int = 8,
        network_size: Sequence[int] | None = None,
    ) -> list[torch.Tensor]:
        """One ``f_u`` ``[192, H/8, W/8]`` per image, each at its own network size."""
        _, rgb = _as_image_list(images)
        out: list[torch.Tensor | None] = [None] * len(rgb)
        for idx, batch in self._batches(rgb, network_size, batch_size):
            with _eval_no_grad(self):
                f_u = self.forward_features(batch.to(self.device), source)
            for i, f in zip(idx, f_u, strict=True):
                out[i] = f
        return out

    def _batches(self, rgb: list[Image.Image], network_size: Sequence[int] | None, batch_size: int):
        """Yield (indices, normalised batch) grouped by network size, in input order per group."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(rgb):
            size = (
                _check_network_size(network_size) if network_size else network_size_for((im.height, im.width))
            )
            groups.setdefault(size, []).append(i)
        for size, members in groups.items():
            for start in range(0, len(members), batch_size):
                idx = members[start : start + batch_size]
                yield idx, torch.stack([preprocess(rgb[i], size).tensor for i in idx])


# --- inference helpers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SaliencyMap:
    """A predicted saliency map at the original image size ``(height, width)``.

    ``probability``: float32, sums to 1 (exp of the log-softmax output);
    ``saliency_uint8``: the official saved map, ``(p / p.max() * 255).astype(uint8)``, max 255;
    ``network_size``: the network input size used.
    """

    probability: np.ndarray
    saliency_uint8: np.ndarray
    network_size: tuple[int, int]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.probability.shape)


@dataclass(frozen=True)
class PreprocessedImage:
    """Network input ``tensor`` ``[3, H, W]`` (ImageNet-normalised), with the original
    ``image_size`` and the ``network_size`` ``(H, W)``, both ``(height, width)``."""

    tensor: torch.Tensor
    image_size: tuple[int, int]
    network_size: tuple[int, int]


def _log_softmax_2d(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(-2).log_softmax(-1).view_as(x)


def _to_saliency_map(
    logit: torch.Tensor, image_size: tuple[int, int], network_size: tuple[int, int]
) -> SaliencyMap:
    resized = F.interpolate(logit[None].float(), size=image_size, mode="bilinear", align_corners=False)
    log_p = _log_softmax_2d(resized)[0, 0].cpu().double().numpy()
    p = np.exp(log_p)
    uint8 = (p / p.max() * 255).astype(np.uint8)
    return SaliencyMap(
        probability=(p / p.sum()).astype(np.float32), saliency_uint8=uint8, network_size=network_size
    )


@contextmanager
def _eval_no_grad(module: nn.Module):
    """Module in eval mode under ``torch.no_grad``; the previous mode is restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def to_rgb_image(image: ImageLike) -> Image.Image:
    """An RGB PIL image from a PIL image (any mode), a uint8 array ``HxW``, ``HxWx1``, ``HxWx3`` or
    ``HxWx4`` (alpha dropped), or an image file path. Grayscale is replicated to three channels."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        with Image.open(path) as im:
            return im.convert("RGB")
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 (0-255), got dtype {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(image), mode="L").convert("RGB")
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return Image.fromarray(np.ascontiguousarray(image[:, :, :3]), mode="RGB")
        raise ValueError(f"expected an HxW or HxWx{{1,3,4}} image array, got shape {image.shape}")
    raise TypeError(f"expected a PIL image, a uint8 array or a path, got {type(image).__name__}")


def _as_image_list(images) -> tuple[bool, list[Image.Image]]:
    single = isinstance(images, (Image.Image, np.ndarray, str, os.PathLike))
    items = [images] if single else list(images)
    if not items:
        raise ValueError("no images given")
    return single, [to_rgb_image(im) for im in items]


def _check_network_size(size: Sequence[int]) -> tuple[int, int]:
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0 or h % _SIZE_UNIT or w % _SIZE_UNIT:
        raise ValueError(f"network_size must be positive multiples of {_SIZE_UNIT}, got {tuple(size)}")
    return h, w


def network_size_for(image_size: Sequence[int]) -> tuple[int, int]:
    """The official network input size ``(H, W)`` for an image of ``(height, width)``.

    ``H = 32 n1``, ``W = 32 n2`` with ``n1, n2`` in 7..13 and ``100 <= n1 n2 <= 120``, choosing the
    pair whose aspect ratio ``n1 / n2`` is closest to ``height / width`` (largest min/max ratio;
    ties go to the first pair in ``(n1, n2)`` order). 4:3 images -> ``(288, 384)``.
    """
    height, width = (float(s) for s in image_size)
    if not (height > 0 and width > 0):
        raise ValueError(f"image_size must be positive (height, width), got {tuple(image_size)}")
    aspect = height / width
    best = max(_SIZE_CANDIDATES, key=lambda n: min(aspect, n[0] / n[1]) / max(aspect, n[0] / n[1]))
    return best[0] * _SIZE_UNIT, best[1] * _SIZE_UNIT


_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def preprocess(image: ImageLike, network_size: Sequence[int] | None = None) -> PreprocessedImage:
    """RGB, LANCZOS resize to ``network_size`` (default :func:`network_size_for`), scale to [0, 1],
    ImageNet normalisation -> :class:`PreprocessedImage`."""
    rgb = to_rgb_image(image)
    image_size = (rgb.height, rgb.width)
    size = _check_network_size(network_size) if network_size else network_size_for(image_size)
    resized = rgb.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    tensor = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return PreprocessedImage(tensor=(tensor - _MEAN) / _STD, image_size=image_size, network_size=size)


# --- boxes on f_u --------------------------------------------------------------------------------
def feature_scale(
    image_size: Sequence[int], network_size: Sequence[int], stride: int = FEATURE_STRIDE
) -> tuple[float, float]:
    """``(scale_y, scale_x)`` from original-image pixels to ``f_u`` cells: ``network / stride / image``.

    Equal for images whose aspect ratio the network size keeps (SALICON 480 x 640 -> 0.075), in
    which case it is ``roi_align``'s ``spatial_scale`` for original-image boxes.
    """
    (ih, iw), (nh, nw) = image_size, network_size
    return nh / stride / ih, nw / stride / iw


def boxes_to_feature_coords(
    boxes, image_size: Sequence[int], network_size: Sequence[int], stride: int = FEATURE_STRIDE
) -> torch.Tensor:
    """Original-image boxes ``[K, 4]`` ``[x1, y1, x2, y2]`` -> the same boxes in ``f_u`` cells.

    Pixel model: continuous coordinates, pixel/cell ``i`` covers ``[i, i + 1)``, the image edge is
    0. Use the result with ``torchvision.ops.roi_align(f_u, rois, ..., spatial_scale=1.0,
    aligned=True)`` (aligned=True samples at cell centres ``i + 0.5``).
    """
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    sy, sx = feature_scale(image_size, network_size, stride)
    return b * b.new_tensor([sx, sy, sx, sy])


def roi_boxes(
    boxes_per_image: Sequence, image_sizes: Sequence[Sequence[int]], network_sizes: Sequence[Sequence[int]]
) -> torch.Tensor:
    """``roi_align`` input ``[K, 5]`` = (batch index, x1, y1, x2, y2) in ``f_u`` cells for a batch
    of feature maps (see :func:`boxes_to_feature_coords` for the convention)."""
    if not (len(boxes_per_image) == len(image_sizes) == len(network_sizes)):
        raise ValueError("boxes_per_image, image_sizes and network_sizes must have the same length")
    rows = []
    for i, (boxes, isize, nsize) in enumerate(zip(boxes_per_image, image_sizes, network_sizes, strict=True)):
        fb = boxes_to_feature_coords(boxes, isize, nsize)
        rows.append(torch.cat([fb.new_full((fb.shape[0], 1), float(i)), fb], dim=1))
    return torch.cat(rows) if rows else torch.zeros(0, 5)


# --- loading -------------------------------------------------------------------------------------
def load_unisal(
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    *,
    fast_smoothing: bool = True,
) -> UNISAL:
    """An eval-mode :class:`UNISAL` on ``device`` (default: the ``SALRANK_DEVICE`` setting).

    ``pretrained=True`` loads the official checkpoint strictly through
    ``salrank.weights.load_state_dict("unisal.salicon", path=weights)`` (``weights``: a file or a
    folder holding ``unisal_weights_best.pth``); offline without the file this raises
    :class:`salrank.weights.WeightsNotFoundError` saying where to put it. ``pretrained=False``
    keeps the random initialisation and never touches files or the network.
    """
    model = UNISAL(fast_smoothing=fast_smoothing)
    if pretrained:
        from salrank.weights import load_into, load_state_dict

        state = load_state_dict(WEIGHTS_NAME, path=weights)
        load_into(model, WEIGHTS_NAME, weights, state=state)
    elif weights is not None:
        raise ValueError("weights were given but pretrained=False; drop one of them")
    if device is None:
        from salrank.config import get_settings

        device = get_settings().torch_device()
    return model.to(device).eval()
