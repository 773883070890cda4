"""SynthSal: deterministic synthetic scenes with planted object salience and simulated observers.

The book, the tests and the ``sample`` profile run on this data without any download. Each
scene is a textured background with 3 to 10 objects; every object has a *latent salience*
and simulated observers look at objects in proportion to it, so every ground-truth method
of the paper can be checked against a known answer.

Scene model (all in pixels of the ``height x width`` image, points ``(x, y)`` 0-based):

* **Background**: a base colour plus smoothed noise (random low-resolution noise upsampled
  bicubically) and, in half of the scenes, sinusoidal stripes at a random angle.
* **Objects**: shape in :data:`SHAPES` (ellipse, rectangle, triangle, regular polygon,
  star), random size (``sqrt(area / image area)`` uniform in ``config.size_range``), aspect
  ratio, rotation, position (the whole shape lies inside the image), colour, *contrast*
  (the fill colour is ``local background + contrast * (random colour - local background)``)
  and texture (flat, stripes, checker or noise).
* **Occlusion**: objects are painted in order, later ones on top (painter's algorithm).
  An object's *visible mask* is what remains of it; a placement is rejected (and redrawn)
  when it would leave any earlier object with less than ``config.min_visible_fraction`` of
  its own area visible, so no object is hidden. Boxes are the tight ``[x1, y1, x2, y2]`` of
  the visible mask, with exclusive right/bottom edges (``x2 = last column + 1``), so the
  half-open test ``x1 <= x < x2`` holds for every visible pixel. A visible mask may be
  split in parts by an occluder; the box covers all parts. A crowded scene may end with
  fewer objects than drawn (never fewer than ``config.objects[0]``).
* **Latent salience** of object ``k`` (in ``[0, 1]``)::

      s_k = w_contrast * C_k + w_size * S_k + w_centre * D_k + w_random * R_k

  with ``C_k = min(1, |mean RGB of its visible pixels - mean RGB of the surrounding ring|
  / contrast_scale)`` (the ring: the visible box enlarged 1.5x about its centre, minus the
  object's visible pixels), ``S_k = min(1, sqrt(visible area / image area) / size_scale)``,
  ``D_k = 1 - |centroid - image centre| / |corner - image centre|`` and ``R_k ~ U(0, 1)``.
  Weights, scales and the features are stored per object.

Observer model (per image; ``n_observers`` and the number of points drawn uniformly from
``config.observers`` and ``config.points_per_image``): every point belongs to one observer
(each observer gets at least one point, the rest split by Dirichlet weights) and comes from
a mixture of

* an **object** component (weight ``p_object``): the object is chosen with probability
  proportional to ``s_k ** salience_exponent * g_ok``, where ``g_ok`` is a per-observer
  Gamma factor with mean 1 and coefficient of variation ``observer_variability``; the point
  is a uniform pixel of the visible mask plus Gaussian jitter (``jitter_px``);
* a **centre-bias** component (weight ``p_centre``): Gaussian around the image centre with
  standard deviations ``centre_sigma * (width, height)``, truncated to the image;
* a **noise** component (weight ``p_noise``): uniform over the image.

Points are rounded to integer pixels inside the image, which is exactly what the SALICON
2015 JSON format stores, so the dataset round-trips through :func:`load_salicon`.

Colours are compared in RGB (0-255), not in a perceptual space.

Files: :func:`generate_dataset` writes a dataset directory (images, SALICON 2015 JSON
fixations, COCO-style objects with the planted salience, a manifest), :func:`load_synthsal`
reads one split back and :func:`sample_synthsal` makes the sample-profile dataset in the
cache. :func:`oracle_detections` is a noisy "detector" built from the true boxes.

Randomness: scene ``index`` of ``split`` uses ``SeedSequence(seed, spawn_key=(crc32(split),
index))`` (see :func:`scene_seed`), so a scene never depends on how many scenes are made.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from salrank.data.salicon import Fixations, load_salicon, save_salicon_json
from salrank.io import atomic_write_bytes, atomic_write_json

__all__ = [
    "FORMAT_VERSION",
    "SALICON_LIKE",
    "SALICON_SPLITS",
    "SAMPLE_SPLITS",
    "SHAPES",
    "SPLITS",
    "TEXTURES",
    "Scene",
    "SynthSalConfig",
    "SynthSalDataset",
    "SynthSalSplit",
    "generate_dataset",
    "generate_scene",
    "load_synthsal",
    "oracle_detections",
    "oracle_for_dataset",
    "sample_synthsal",
    "scene_seed",
    "scene_stem",
]

#: Bumped whenever the generator's output changes for the same configuration.
FORMAT_VERSION = 1
SHAPES = ("ellipse", "rectangle", "triangle", "polygon", "star")
TEXTURES = ("flat", "stripes", "checker", "noise")
SPLITS = ("train", "val", "test")
#: Sample profile: small and quick.
SAMPLE_SPLITS = {"train": 400, "val": 100, "test": 100}
#: The paper's SALICON split sizes (train 10,000; SALICON val divided into 1,200 + 3,800).
SALICON_SPLITS = {"train": 10_000, "val": 1_200, "test": 3_800}
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
_MANIFEST = "manifest.json"
_JPEG_QUALITY = 92
_MAX_ATTEMPTS = 300  # placements tried per scene before settling for fewer objects (>= the minimum)
_MIN_OBJECT_PX = 200  # smallest object area before occlusion
_IN_PROGRESS = "generating.json"


@dataclass(frozen=True)
class SynthSalConfig:
    """Parameters of the scene and observer models (see the module docstring).

    Sizes are pixels; ``size_range`` is ``sqrt(object area / image area)`` before occlusion;
    ``(lo, hi)`` integer ranges are inclusive.
    """

    height: int = 480
    width: int = 640
    objects: tuple[int, int] = (3, 10)
    shapes: tuple[str, ...] = SHAPES
    size_range: tuple[float, float] = (0.07, 0.32)
    min_visible_fraction: float = 0.5
    # latent salience
    w_contrast: float = 0.45
    w_size: float = 0.25
    w_centre: float = 0.2
    w_random: float = 0.1
    contrast_scale: float = 200.0
    size_scale: float = 0.35
    # observers
    observers: tuple[int, int] = (20, 60)
    points_per_image: tuple[int, int] = (600, 1500)
    p_object: float = 0.7
    p_centre: float = 0.2
    p_noise: float = 0.1
    salience_exponent: float = 3.0
    observer_variability: float = 0.3
    jitter_px: float = 4.0
    centre_sigma: float = 0.2

    def __post_init__(self) -> None:
        if self.height < 32 or self.width < 32:
            raise ValueError(f"SynthSalConfig: image size must be at least 32x32, got {self.height}x{self.width}")
        for name in ("objects", "observers", "points_per_image"):
            lo, hi = getattr(self, name)
            if not (1 <= lo <= hi):
                raise ValueError(f"SynthSalConfig.{name} must be 1 <= lo <= hi, got {(lo, hi)}")
        if self.points_per_image[0] < self.observers[1]:
            raise ValueError("SynthSalConfig: points_per_image[0] must be >= observers[1] (>= 1 point each)")
        lo, hi = self.size_range
        if not (0 < lo <= hi < 0.9):
            raise ValueError(f"SynthSalConfig.size_range must satisfy 0 < lo <= hi < 0.9, got {(lo, hi)}")
        unknown = set(self.shapes) - set(SHAPES)
        if not self.shapes or unknown:
            raise ValueError(f"SynthSalConfig.shapes: unknown {sorted(unknown)}; choose from {SHAPES}")
        mix = (self.p_object, self.p_centre, self.p_noise)
        if min(mix) < 0 or sum(mix) <= 0:
            raise ValueError(f"SynthSalConfig: mixture weights must be >= 0 with a positive sum, got {mix}")
        if not (0 < self.min_visible_fraction <= 1):
            raise ValueError("SynthSalConfig.min_visible_fraction must be in (0, 1]")

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)


#: SALICON-like observer counts and points per image (the public SALICON examples have
#: 55-67 workers and 5,900-8,500 points per image).
SALICON_LIKE = SynthSalConfig(observers=(50, 70), points_per_image=(8000, 10000))


@dataclass
class Scene:
    """One generated scene.

    ``image`` (H, W, 3) uint8 RGB; ``label_map`` (H, W) int16, index of the visible object
    or -1 for background; ``boxes`` (K, 4) float64 ``[x1, y1, x2, y2]`` of the visible masks
    (exclusive right/bottom); ``salience`` (K,) latent salience in [0, 1]; ``objects`` one
    dict of attributes per object (shape, colour, features, ...); ``fixations`` the
    simulated observers' points; ``background`` the background's description.
    """

    image: np.ndarray
    label_map: np.ndarray
    boxes: np.ndarray
    salience: np.ndarray
    objects: list[dict]
    fixations: Fixations
    background: dict = field(default_factory=dict)


def scene_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed sequence of scene ``index`` of ``split`` (independent of the dataset size)."""
    if index < 0:
        raise ValueError(f"scene index must be >= 0, got {index}")
    return np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(split.encode()), int(index)))


def scene_stem(split: str, index: int) -> str:
    """File stem of scene ``index`` of ``split``, e.g. ``synthsal_train_000007``."""
    return f"synthsal_{split}_{index:06d}"


def _image_id(split: str, index: int) -> int:
    return _SPLIT_CODE[split] * 10_000_000 + index + 1


# --------------------------------------------------------------------------------------------
# scene generation
# --------------------------------------------------------------------------------------------


def _smooth_noise_u8(rng: np.random.Generator, height: int, width: int, cell: int, channels: int) -> np.ndarray:
    """Noise in 0..255 smoothed at ``cell`` pixels (bicubic upsampling), (H, W, channels) uint8."""
    lh, lw = max(2, height // cell + 2), max(2, width // cell + 2)
    low = rng.integers(0, 256, size=(lh, lw, channels), dtype=np.uint8)
    img = Image.fromarray(low if channels == 3 else low[..., 0]).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img).reshape(height, width, channels)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int, channels: int) -> np.ndarray:
    """Noise in [-1, 1] smoothed at ``cell`` pixels, (H, W, channels) float32."""
    return _smooth_noise_u8(rng, height, width, cell, channels).astype(np.float32) * (1 / 127.5) - 1.0


def _stripes(height: int, width: int, angle: float, period: float) -> np.ndarray:
    """``sin`` of a plane wave of ``period`` pixels at ``angle`` radians, (H, W) float32."""
    k = 2 * math.pi / period
    phase = (np.arange(width, dtype=np.float32) * np.float32(k * math.cos(angle)))[None, :] + (
        np.arange(height, dtype=np.float32) * np.float32(k * math.sin(angle))
    )[:, None]
    return np.sin(phase)


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, dict]:
    """Base colour + smoothed noise (+ stripes in half of the scenes), (H, W, 3) uint8.

    The noise is ``amplitude * u`` with ``u`` in [-1, 1] drawn on a grid of ``cell`` pixels and
    upsampled bicubically (applied to the low-resolution colours, which is the same up to rounding).
    """
    base = rng.uniform(40, 215, size=3)
    cell = int(rng.integers(16, 97))
    amp = float(rng.uniform(15, 45))
    lh, lw = height // cell + 2, width // cell + 2
    low = base + amp * rng.uniform(-1.0, 1.0, size=(lh, lw, 3))
    low = np.clip(np.rint(low), 0, 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC))
    info = {"base_colour": [round(float(c), 2) for c in base], "noise_cell_px": cell, "noise_amplitude": amp}
    if rng.random() < 0.5:
        angle = float(rng.uniform(0, math.pi))
        period = float(rng.uniform(12, 60))
        s_amp = float(rng.uniform(8, 25))
        stripes = np.rint(np.float32(s_amp) * _stripes(height, width, angle, period)).astype(np.int16)
        img = np.clip(img.astype(np.int16) + stripes[..., None], 0, 255).astype(np.uint8)
        info.update(stripes_angle=angle, stripes_period_px=period, stripes_amplitude=s_amp)
    else:
        img = img.copy()  # writable
    return img, info


def _shape_polygon(shape: str, rng: np.random.Generator, w: float, h: float, angle: float) -> np.ndarray:
    """Vertices (centred at 0) of a polygonal shape of bounding size ~ w x h, rotated."""
    if shape == "rectangle":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    elif shape == "triangle":
        a = rng.uniform(-0.6, 0.6)
        pts = np.array([[a, -1], [1, 1], [-1, 1]], dtype=float)
    elif shape == "polygon":
        n = int(rng.integers(5, 9))
        t = np.arange(n) * 2 * math.pi / n
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    else:  # star
        n = int(rng.integers(5, 8))
        t = np.arange(2 * n) * math.pi / n
        r = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.4, 0.6))
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    pts = pts * [w / 2, h / 2]
    c, s = math.cos(angle), math.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]])
    return pts


def _shape_mask(shape: str, rng: np.random.Generator, w: float, h: float) -> tuple[np.ndarray, dict]:
    """Boolean mask of a shape in its own tight-ish crop, plus its geometry."""
    angle = float(rng.uniform(0, math.pi)) if shape != "ellipse" or rng.random() < 0.5 else 0.0
    if shape == "ellipse":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t) * w / 2, np.sin(t) * h / 2], 1)
        c, s = math.cos(angle), math.sin(angle)
        pts = pts @ np.array([[c, s], [-s, c]])
    else:
        pts = _shape_polygon(shape, rng, w, h, angle)
    pts = pts - pts.min(0)
    cw, ch = int(math.ceil(pts[:, 0].max())) + 1, int(math.ceil(pts[:, 1].max())) + 1
    canvas = Image.new("1", (cw, ch), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in pts], fill=1)
    return np.asarray(canvas, dtype=bool), {"angle": angle}


def _texture(rng: np.random.Generator, kind: str, h: int, w: int) -> tuple[np.ndarray, dict]:
    """Zero-mean texture pattern in [-1, 1], (h, w, 1) float32."""
    if kind == "flat":
        return np.zeros((h, w, 1), np.float32), {}
    if kind == "noise":
        cell = int(rng.integers(3, 12))
        return _smooth_noise(rng, h, w, cell, 1), {"cell_px": cell}
    period = float(rng.uniform(6, 24))
    if kind == "stripes":
        angle = float(rng.uniform(0, math.pi))
        return np.sign(_stripes(h, w, angle, period))[..., None], {"period_px": period, "angle": angle}
    pat = np.sign(_stripes(h, w, 0.0, period) * _stripes(h, w, math.pi / 2, period))
    return pat[..., None], {"period_px": period}


def _as_generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def generate_scene(seed: int | np.random.SeedSequence | np.random.Generator, config: SynthSalConfig | None = None,
                   *, image_id: int | None = None, file_name: str | None = None) -> Scene:
    """Generate one scene (image, objects, latent salience, fixations) from ``seed``.

    Deterministic: the same seed and config give identical arrays. ``image_id`` and
    ``file_name`` are copied into the returned :class:`Fixations`.
    """
    cfg = config or SynthSalConfig()
    rng = _as_generator(seed)
    H, W = cfg.height, cfg.width
    area_img = H * W
    canvas, background = _background(rng, H, W)
    label = np.full((H, W), -1, dtype=np.int16)
    n_target = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    full_area: list[int] = []
    visible = np.zeros(0, dtype=np.int64)
    objects: list[dict] = []
    scale = 1.0
    attempts = 0
    while len(objects) < n_target:
        attempts += 1
        if attempts % 25 == 0:  # crowded scene: make later objects smaller, down to 40%
            scale = max(0.4, scale * 0.8)
        if attempts > _MAX_ATTEMPTS and len(objects) >= cfg.objects[0]:
            break  # give up on the remaining objects rather than loop for ever
        if attempts > 20 * _MAX_ATTEMPTS:
            raise RuntimeError(
                f"SynthSal: could not place {cfg.objects[0]} objects in a {H}x{W} image; lower "
                "objects[0] or min_visible_fraction, or enlarge the image or size_range"
            )
        k = len(objects)
        shape = cfg.shapes[int(rng.integers(len(cfg.shapes)))]
        rel = float(rng.uniform(*cfg.size_range)) * scale
        aspect = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))
        side = rel * math.sqrt(area_img)
        w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        mask, geom = _shape_mask(shape, rng, min(w, W - 2), min(h, H - 2))
        mh, mw = mask.shape
        mask_area = int(mask.sum())
        if mh >= H or mw >= W or mask_area < _MIN_OBJECT_PX:
            continue
        y0, x0 = int(rng.integers(0, H - mh + 1)), int(rng.integers(0, W - mw + 1))
        sl = (slice(y0, y0 + mh), slice(x0, x0 + mw))
        under = label[sl][mask]
        hidden = np.bincount(under[under >= 0], minlength=k)[:k]
        if k and np.any((visible - hidden) < cfg.min_visible_fraction * np.asarray(full_area)):
            continue
        # colour with a chosen contrast against the local background
        local_bg = _colour_sum(canvas[sl], mask) / mask_area  # what it covers: background, earlier objects
        target = rng.uniform(0, 255, size=3)
        contrast = float(rng.uniform(0.1, 1.0))
        colour = local_bg + contrast * (target - local_bg)
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        amp = float(rng.uniform(8, 35)) if texture != "flat" else 0.0
        pat, tex_info = _texture(rng, texture, mh, mw)
        patch = colour[None, None, :].astype(np.float32) + amp * pat
        canvas[sl][mask] = np.clip(np.rint(patch[mask]), 0, 255).astype(np.uint8)
        label[sl][mask] = k
        visible = np.append(visible - hidden, mask_area)
        full_area.append(mask_area)
        objects.append({
            "shape": shape,
            "colour": [round(float(c), 2) for c in colour],
            "contrast_setting": contrast,
            "texture": texture,
            "texture_amplitude": amp,
            "texture_params": tex_info,
            "geometry": {"x0": x0, "y0": y0, "width": mw, "height": mh, **geom},
            "depth": k,
            "full_area": mask_area,
        })
    image = canvas
    boxes, salience = _measure_objects(image, label, objects, cfg, rng)
    fixations = _simulate_observers(rng, label, boxes, salience, cfg, image_id=image_id, file_name=file_name)
    return Scene(image=image, label_map=label, boxes=boxes, salience=salience, objects=objects,
                 fixations=fixations, background=background)


def _colour_sum(pixels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Sum of the RGB values of ``pixels`` (h, w, 3) uint8 where ``mask``; exact float64 (3,)."""
    flat = pixels.reshape(-1, 3).astype(np.float64)
    weights = np.ones(flat.shape[0]) if mask is None else mask.reshape(-1).astype(np.float64)
    return weights @ flat  # integer-valued sums < 2**53: exact whatever the summation order


def _measure_objects(image: np.ndarray, label: np.ndarray, objects: list[dict], cfg: SynthSalConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Visible boxes and latent salience; fills each object's features in place."""
    H, W = label.shape
    K = len(objects)
    boxes = np.zeros((K, 4), dtype=np.float64)
    salience = np.zeros(K, dtype=np.float64)
    centre = np.array([(W - 1) / 2, (H - 1) / 2])
    max_dist = float(np.hypot(*centre))
    for k, obj in enumerate(objects):
        g = obj["geometry"]
        x0, y0 = g["x0"], g["y0"]
        sl = (slice(y0, y0 + g["height"]), slice(x0, x0 + g["width"]))
        vis = label[sl] == k
        cols, rows = vis.sum(0), vis.sum(1)
        area = int(cols.sum())
        xs, ys = np.flatnonzero(cols), np.flatnonzero(rows)
        x1, x2, y1, y2 = x0 + xs[0], x0 + xs[-1] + 1, y0 + ys[0], y0 + ys[-1] + 1
        boxes[k] = (x1, y1, x2, y2)
        centroid = np.array([x0 + cols @ np.arange(cols.size) / area, y0 + rows @ np.arange(rows.size) / area])
        # local background: the visible box enlarged 1.5x about its centre, minus the object
        bw, bh = x2 - x1, y2 - y1
        ex1, ey1 = max(0, int(x1 - bw / 4)), max(0, int(y1 - bh / 4))
        ex2, ey2 = min(W, int(math.ceil(x2 + bw / 4))), min(H, int(math.ceil(y2 + bh / 4)))
        obj_sum = _colour_sum(image[sl], vis)
        ring_sum = _colour_sum(image[ey1:ey2, ex1:ex2]) - obj_sum
        ring_n = (ey2 - ey1) * (ex2 - ex1) - area
        ring_colour = ring_sum / max(ring_n, 1)
        contrast = min(1.0, float(np.linalg.norm(obj_sum / area - ring_colour)) / cfg.contrast_scale)
        size = min(1.0, math.sqrt(area / (H * W)) / cfg.size_scale)
        centrality = 1.0 - float(np.linalg.norm(centroid - centre)) / max_dist
        random_term = float(rng.random())
        s = cfg.w_contrast * contrast + cfg.w_size * size + cfg.w_centre * centrality + cfg.w_random * random_term
        salience[k] = s
        obj.update(
            visible_area=area,
            visible_fraction=area / obj["full_area"],
            features={"colour_contrast": contrast, "relative_size": size, "centrality": centrality,
                      "random": random_term},
            salience=float(s),
        )
    return boxes, salience


def _truncated_normal_points(rng: np.random.Generator, n: int, mean: np.ndarray, sd: np.ndarray,
                             upper: np.ndarray) -> np.ndarray:
    out = np.empty((n, 2))
    todo = np.arange(n)
    while todo.size:
        p = rng.normal(mean, sd, size=(todo.size, 2))
        ok = np.all((p >= -0.5) & (p <= upper + 0.5), axis=1)
        out[todo[ok]] = p[ok]
        todo = todo[~ok]
    return out


def _simulate_observers(rng: np.random.Generator, label: np.ndarray, boxes: np.ndarray, salience: np.ndarray,
                        cfg: SynthSalConfig, *, image_id: int | None, file_name: str | None) -> Fixations:
    H, W = label.shape
    K = len(salience)
    n_obs = int(rng.integers(cfg.observers[0], cfg.observers[1] + 1))
    n_pts = int(rng.integers(cfg.points_per_image[0], cfg.points_per_image[1] + 1))
    counts = 1 + rng.multinomial(n_pts - n_obs, rng.dirichlet(np.full(n_obs, 5.0)))
    observer = np.repeat(np.arange(n_obs, dtype=np.int64), counts)
    # per-observer object preferences, then the mixture component of each point
    cv = cfg.observer_variability
    if cv > 0:
        gamma = rng.gamma(1.0 / cv**2, cv**2, size=(n_obs, K))
    else:
        gamma = np.ones((n_obs, K))
    pref = np.power(np.maximum(salience, 1e-9), cfg.salience_exponent)[None, :] * gamma
    pref /= pref.sum(1, keepdims=True)
    mix = np.array([cfg.p_object, cfg.p_centre, cfg.p_noise], dtype=float)
    mix /= mix.sum()
    probs = np.concatenate([mix[0] * pref, np.broadcast_to(mix[1:], (n_obs, 2))], axis=1)
    cum = np.cumsum(probs, axis=1)
    u = rng.random(n_pts)
    comp = np.minimum((cum[observer] < u[:, None] * cum[observer, -1:]).sum(1), K + 1)
    pts = np.empty((n_pts, 2))
    # object points: uniform in the visible mask (rejection within the box), plus jitter
    on_obj = np.flatnonzero(comp < K)
    todo = on_obj
    while todo.size:
        k = comp[todo]
        bx = boxes[k]
        x = np.floor(bx[:, 0] + rng.random(todo.size) * (bx[:, 2] - bx[:, 0])).astype(np.int64)
        y = np.floor(bx[:, 1] + rng.random(todo.size) * (bx[:, 3] - bx[:, 1])).astype(np.int64)
        ok = label[y, x] == k
        pts[todo[ok], 0], pts[todo[ok], 1] = x[ok], y[ok]
        todo = todo[~ok]
    if cfg.jitter_px > 0 and on_obj.size:
        pts[on_obj] += rng.normal(0.0, cfg.jitter_px, size=(on_obj.size, 2))
    size = np.array([W - 1, H - 1], dtype=float)
    centre_idx = np.flatnonzero(comp == K)
    pts[centre_idx] = _truncated_normal_points(rng, centre_idx.size, size / 2,
                                               cfg.centre_sigma * np.array([W, H], float), size)
    noise_idx = np.flatnonzero(comp == K + 1)
    pts[noise_idx] = rng.random((noise_idx.size, 2)) * (size + 1) - 0.5
    pts = np.clip(np.rint(pts), 0, size)
    return Fixations(points=pts, observer=observer, height=H, width=W, image_id=image_id, file_name=file_name)


# --------------------------------------------------------------------------------------------
# datasets on disk
# --------------------------------------------------------------------------------------------
#
# Layout of a dataset directory:
#
#   images/{split}/synthsal_{split}_{index:06d}.jpg   (absent with write_images=False)
#   fixations_{split}.json     SALICON 2015 JSON, written by save_salicon_json
#   objects_{split}.json       COCO-style objects: bbox [x, y, w, h] + salience, shape, colour, ...
#   generating.json            the spec being generated (present only while incomplete)
#   manifest.json              the spec + config hash, written last: its presence = complete


def _dataset_spec(splits: Mapping[str, int], seed: int, config: SynthSalConfig, write_images: bool,
                  image_format: str) -> dict:
    for name, n in splits.items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        if int(n) < 0:
            raise ValueError(f"n_{name} must be >= 0, got {n}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    spec = {
        "generator": "salrank.data.synthsal",
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "splits": {name: int(splits[name]) for name in SPLITS if name in splits},
        "config": asdict(config),
        "write_images": bool(write_images),
        "image_format": image_format if write_images else None,
        "jpeg_quality": _JPEG_QUALITY if write_images and image_format == "jpg" else None,
    }
    spec = json.loads(json.dumps(spec))  # tuples -> lists, as read back from disk
    spec["config_hash"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return spec


def _read_json(path: Path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _encode_image(image: np.ndarray, image_format: str) -> bytes:
    import io

    buf = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(image).save(buf, format="JPEG", quality=_JPEG_QUALITY)
    else:
        Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _object_records(scene: Scene, image_id: int) -> list[dict]:
    """COCO-style annotations of a scene's objects (ids are filled in by the caller)."""
    from pycocotools import mask as mask_utils

    label_t = np.ascontiguousarray(scene.label_map.T)  # (W, H): its masks' transposes are Fortran-ordered
    records = []
    for k, (obj, box) in enumerate(zip(scene.objects, scene.boxes, strict=True)):
        x1, y1, x2, y2 = (int(v) for v in box)
        rle = mask_utils.encode((label_t == k).view(np.uint8).T)
        rec = {
            "image_id": image_id,
            "category_id": 1,
            "index": k,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": obj["visible_area"],
            "iscrowd": 0,
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "salience": obj["salience"],
        }
        rec.update({key: value for key, value in obj.items() if key not in rec and key != "visible_area"})
        records.append(rec)
    return records


def _make_scene(job: tuple) -> tuple[str, Fixations, dict, list[dict]]:
    """Generate scene ``index`` of ``split`` and write its image; runs in worker processes too."""
    split, index, seed, config, image_path, image_format, skip_existing = job
    stem = scene_stem(split, index)
    image_id = _image_id(split, index)
    ext = image_format or "jpg"
    scene = generate_scene(scene_seed(seed, split, index), config, image_id=image_id, file_name=f"{stem}.{ext}")
    if image_path is not None and not (skip_existing and Path(image_path).is_file()):
        atomic_write_bytes(Path(image_path), _encode_image(scene.image, image_format))
    image = {"id": image_id, "file_name": f"{stem}.{ext}", "stem": stem, "height": config.height,
             "width": config.width, "n_objects": len(scene.objects), "background": scene.background}
    return stem, scene.fixations, image, _object_records(scene, image_id)


def _remove_outputs(root: Path) -> None:
    """Delete what a previous (different or unfinished) generation left; only our own file names."""
    for name in [_MANIFEST, *(f"{kind}_{s}.json" for kind in ("fixations", "objects") for s in SPLITS)]:
        (root / name).unlink(missing_ok=True)
    for split in SPLITS:
        folder = root / "images" / split
        if folder.is_dir():
            for path in folder.glob(f"synthsal_{split}_*"):
                path.unlink()


@dataclass(frozen=True)
class SynthSalDataset:
    """A complete SynthSal dataset on disk (see :func:`generate_dataset`)."""

    root: Path
    manifest: dict

    @property
    def config(self) -> SynthSalConfig:
        """The scene/observer model it was generated with."""
        raw = dict(self.manifest["config"])
        for key, value in raw.items():
            if isinstance(value, list):
                raw[key] = tuple(value)
        return SynthSalConfig(**raw)

    @property
    def config_hash(self) -> str:
        return self.manifest["config_hash"]

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def splits(self) -> dict[str, int]:
        """Number of images per split."""
        return dict(self.manifest["splits"])

    @property
    def has_images(self) -> bool:
        return bool(self.manifest["write_images"])

    def fixations_path(self, split: str) -> Path:
        """The split's SALICON 2015 JSON."""
        return self.root / f"fixations_{split}.json"

    def objects_path(self, split: str) -> Path:
        """The split's COCO-style object annotations."""
        return self.root / f"objects_{split}.json"

    def load(self, split: str, **kwargs) -> SynthSalSplit:
        """:func:`load_synthsal` of one split."""
        return load_synthsal(self.root, split, **kwargs)


@dataclass
class SynthSalSplit:
    """One split of a SynthSal dataset, keyed by image file stem (in file order).

    ``boxes[stem]``: (K, 4) float64 ``[x1, y1, x2, y2]`` of the visible masks, exclusive
    right/bottom edges; ``salience[stem]``: (K,) float64 planted salience; ``objects[stem]``:
    the K annotation records (shape, colour, features, RLE ``segmentation`` of the visible
    mask, ...); ``image_paths`` is empty for datasets generated without images.
    """

    name: str
    root: Path
    image_size: tuple[int, int]
    fixations: dict[str, Fixations]
    boxes: dict[str, np.ndarray]
    salience: dict[str, np.ndarray]
    objects: dict[str, list[dict]]
    image_ids: dict[str, int]
    image_paths: dict[str, Path]

    @property
    def stems(self) -> list[str]:
        return list(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)

    def masks(self, stem: str) -> np.ndarray:
        """(K, H, W) bool visible masks of the objects of ``stem`` (decoded from COCO RLE)."""
        from pycocotools import mask as mask_utils

        objs = self.objects[stem]
        if not objs:
            return np.zeros((0, *self.image_size), dtype=bool)
        rles = [{"size": o["segmentation"]["size"], "counts": o["segmentation"]["counts"].encode()} for o in objs]
        with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = mask_utils.decode(rles)
        return np.moveaxis(decoded, -1, 0).astype(bool)


def generate_dataset(
    out_dir: str | os.PathLike,
    n_train: int = SAMPLE_SPLITS["train"],
    n_val: int = SAMPLE_SPLITS["val"],
    n_test: int = SAMPLE_SPLITS["test"],
    seed: int = 0,
    config: SynthSalConfig | None = None,
    *,
    write_images: bool = True,
    image_format: str = "jpg",
    overwrite: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> SynthSalDataset:
    """Generate (or reuse) a SynthSal dataset in ``out_dir``; idempotent and resumable.

    Writes ``images/{split}/<stem>.jpg`` (or ``.png``; none when ``write_images=False``, for
    fast scale runs: the fixations and objects are identical either way),
    ``fixations_{split}.json`` (SALICON 2015 JSON via :func:`save_salicon_json`),
    ``objects_{split}.json`` (COCO-style, see :class:`SynthSalSplit`) and, last,
    ``manifest.json`` holding the spec and its ``config_hash``.

    * A complete dataset with the same spec is reused without writing anything.
    * A complete dataset with another spec raises :class:`FileExistsError` unless
      ``overwrite=True``.
    * An unfinished one (no manifest) generated with the same spec is resumed: finished splits
      and already written images are kept. Anything else found there is regenerated.

    Every file is written atomically. Scene ``i`` of a split depends only on ``(seed, split,
    i)`` and ``config``, never on the split sizes; ``workers > 1`` generates in that many
    processes with identical output. Stems are ``synthsal_{split}_{i:06d}`` and image ids
    ``{1, 2, 3}e7 + i + 1`` for train/val/test.
    """
    cfg = config or SynthSalConfig()
    root = Path(out_dir).expanduser()
    spec = _dataset_spec({"train": n_train, "val": n_val, "test": n_test}, seed, cfg, write_images, image_format)
    manifest_path = root / _MANIFEST
    replacing = manifest_path.is_file()
    if replacing:
        existing = _read_json(manifest_path)
        if existing.get("config_hash") == spec["config_hash"]:
            return SynthSalDataset(root, existing)
        if not overwrite:
            raise FileExistsError(
                f"{root} holds a SynthSal dataset with config hash {existing.get('config_hash')!r}, "
                f"not {spec['config_hash']!r}; pass overwrite=True or choose another directory"
            )
    root.mkdir(parents=True, exist_ok=True)
    marker = root / _IN_PROGRESS
    resume = not replacing and marker.is_file() and _read_json(marker).get("config_hash") == spec["config_hash"]
    if not resume:
        _remove_outputs(root)
        atomic_write_json(marker, spec)
    for split, n in spec["splits"].items():
        fix_path, obj_path = root / f"fixations_{split}.json", root / f"objects_{split}.json"
        if resume and fix_path.is_file() and obj_path.is_file():
            continue  # finished before the interruption
        image_dir = root / "images" / split
        jobs = (
            (split, i, spec["seed"], cfg,
             image_dir / f"{scene_stem(split, i)}.{image_format}" if write_images else None,
             image_format if write_images else None, resume)
            for i in range(n)
        )
        fixations: dict[str, Fixations] = {}
        images, annotations = [], []
        for stem, fx, image, records in tqdm(_run_jobs(_make_scene, jobs, workers), total=n,
                                            desc=f"SynthSal {split}", unit="scene", disable=not progress):
            fixations[stem] = fx
            images.append(image)
            for rec in records:
                annotations.append({"id": len(annotations) + 1, **rec})
        objects = {
            "info": {"description": f"SynthSal objects, split {split}", "config_hash": spec["config_hash"],
                     "seed": spec["seed"], "split": split, "format_version": FORMAT_VERSION},
            "categories": [{"id": 1, "name": "object", "supercategory": "object"}],
            "images": images,
            "annotations": annotations,
        }
        atomic_write_json(obj_path, objects)
        save_salicon_json(fix_path, fixations)
    atomic_write_json(manifest_path, spec)
    marker.unlink(missing_ok=True)
    return SynthSalDataset(root, spec)


def _run_jobs(fn, jobs, workers: int) -> Iterator:
    if workers <= 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, jobs, chunksize=8)


def load_synthsal(root: str | os.PathLike, split: str, *, cache: bool | str | os.PathLike = True,
                  progress: bool = False) -> SynthSalSplit:
    """Read one split of a complete SynthSal dataset.

    Fixations come from :func:`load_salicon` (``cache`` and ``progress`` are passed on);
    boxes are converted from COCO ``[x, y, w, h]`` to ``[x1, y1, x2, y2]`` float64.

    Raises:
        FileNotFoundError: ``root`` has no ``manifest.json`` (missing or unfinished dataset).
        ValueError: ``split`` is not in the dataset, or ``objects_{split}.json`` is malformed.
    """
    root = Path(root).expanduser()
    manifest_path = root / _MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{root}: no {_MANIFEST}; not a complete SynthSal dataset (run generate_dataset)")
    manifest = _read_json(manifest_path)
    if split not in manifest.get("splits", {}):
        raise ValueError(f"{root}: no split {split!r}; it has {sorted(manifest.get('splits', {}))}")
    image_size = (int(manifest["config"]["height"]), int(manifest["config"]["width"]))
    fixations = load_salicon(root / f"fixations_{split}.json", cache=cache, progress=progress)
    obj_path = root / f"objects_{split}.json"
    data = _read_json(obj_path)
    try:
        stems = {img["id"]: img["stem"] for img in data["images"]}
        per_image: dict[str, list[dict]] = {stem: [] for stem in stems.values()}
        for i, ann in enumerate(data["annotations"]):
            if ann["image_id"] not in stems:
                raise ValueError(f"{obj_path}: annotations[{i}].image_id {ann['image_id']!r} is not in images[]")
            per_image[stems[ann["image_id"]]].append(ann)
        boxes, salience = {}, {}
        for stem, anns in per_image.items():
            anns.sort(key=lambda a: a["index"])
            xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            boxes[stem] = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            salience[stem] = np.array([a["salience"] for a in anns], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{obj_path}: malformed SynthSal objects file (missing or bad field {exc})") from None
    missing = set(per_image) - set(fixations)
    if missing:
        raise ValueError(f"{root}: {len(missing)} image(s) of objects_{split}.json have no fixations, "
                         f"e.g. {sorted(missing)[0]}")
    image_paths = {}
    if manifest.get("write_images"):
        image_paths = {img["stem"]: root / "images" / split / img["file_name"] for img in data["images"]}
    return SynthSalSplit(
        name=split, root=root, image_size=image_size,
        fixations={stem: fixations[stem] for stem in per_image},
        boxes=boxes, salience=salience, objects=per_image,
        image_ids={stem: image_id for image_id, stem in stems.items()},
        image_paths=image_paths,
    )


def _check_complete(root: Path, spec: dict) -> bool:
    """Raise ``ValueError`` unless ``root`` holds the complete dataset of ``spec``: the manifest,
    both JSON files of every split (parsed, with one entry per scene) and every image file (non-empty)."""
    manifest = _read_json(root / _MANIFEST)
    if manifest != spec:
        return False  # another dataset: generate_dataset decides
    for split, n in spec["splits"].items():
        objects = _read_json(root / f"objects_{split}.json")
        fixations = _read_json(root / f"fixations_{split}.json")
        if not isinstance(objects, dict) or len(objects.get("images", [])) != n or not fixations:
            raise ValueError(f"split {split}: {n} scenes expected")
        if spec.get("write_images"):
            for image in objects["images"]:
                path = root / "images" / split / image["file_name"]
                if not path.is_file() or path.stat().st_size == 0:
                    raise ValueError(f"missing or empty image {path}")
    return True


def sample_synthsal(settings=None, *, progress: bool = True) -> SynthSalDataset:
    """The sample-profile dataset (400/100/100 scenes, seed 0, default config, JPEG images).

    Generated on first use (about 15 s on one CPU core, 40 MB) under
    ``salrank.config.cache_dir("synthsal", <config hash>)`` and reused afterwards.
    ``settings``: a :class:`salrank.config.Settings` (default: from the environment).
    """
    from salrank.config import cache_dir

    cfg = SynthSalConfig()
    spec = _dataset_spec(SAMPLE_SPLITS, 0, cfg, True, "jpg")
    root = cache_dir("synthsal", spec["config_hash"], settings=settings)
    from salrank.cache import read_cache_entry

    # a damaged sample loses its manifest (with a warning), so generate_dataset makes it afresh
    read_cache_entry(root / _MANIFEST, lambda _: _check_complete(root, spec), what="SynthSal sample cache")
    return generate_dataset(root, **{f"n_{k}": v for k, v in SAMPLE_SPLITS.items()}, seed=0, config=cfg,
                            progress=progress)


# --------------------------------------------------------------------------------------------
# noisy oracle detector
# --------------------------------------------------------------------------------------------


def oracle_detections(
    true_boxes,
    image_size: tuple[int, int],
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    *,
    jitter: float = 0.1,
    miss_rate: float = 0.1,
    false_positives: float = 1.0,
    tp_score: tuple[float, float] = (8.0, 2.0),
    fp_score: tuple[float, float] = (2.0, 5.0),
    fp_size: tuple[float, float] = (0.05, 0.5),
    return_source: bool = False,
):
    """A simulated detector: the true boxes, jittered, with misses and false positives.

    Args:
        true_boxes: (K, 4) ``[x1, y1, x2, y2]`` pixels inside the image, ``x2 > x1``, ``y2 > y1``.
        image_size: ``(height, width)``.
        seed: int, SeedSequence or Generator; the output is a deterministic function of it.
        jitter: each edge moves by ``U(-jitter, jitter)`` times the box's width (x edges) or
            height (y edges); then clipped to the image. In ``[0, 0.5)`` so boxes stay valid.
        miss_rate: probability that a true box is not detected.
        false_positives: mean (Poisson) number of random boxes per image; their width and
            height are ``U(*fp_size)`` times the image's, placed uniformly inside the image.
        tp_score, fp_score: Beta ``(a, b)`` of the scores of true and false detections (the
            defaults have means 0.8 and 0.29).
        return_source: also return ``source`` (M,) int64: the index of the true box each
            detection comes from, -1 for false positives.

    Returns:
        ``boxes`` (M, 4) float64 ``[x1, y1, x2, y2]``, ``scores`` (M,) in (0, 1] sorted
        descending (ties keep true boxes first, in index order), ``labels`` (M,) int64, all 1
        (class-agnostic "object"), and ``source`` if asked.
    """
    boxes = np.asarray(true_boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"true_boxes must have shape (K, 4), got {boxes.shape}")
    H, W = (int(v) for v in image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive (height, width), got {image_size}")
    if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
        raise ValueError("true_boxes must satisfy x2 > x1 and y2 > y1")
    if not 0 <= jitter < 0.5:
        raise ValueError(f"jitter must be in [0, 0.5), got {jitter}")
    if not 0 <= miss_rate <= 1:
        raise ValueError(f"miss_rate must be in [0, 1], got {miss_rate}")
    if false_positives < 0:
        raise ValueError(f"false_positives must be >= 0, got {false_positives}")
    lo, hi = fp_size
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"fp_size must satisfy 0 < lo <= hi <= 1, got {fp_size}")
    rng = _as_generator(seed)
    K = boxes.shape[0]
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    moved = boxes + rng.uniform(-jitter, jitter, size=(K, 4)) * wh
    moved = np.clip(moved, 0, [W, H, W, H])
    hit = rng.random(K) >= miss_rate
    tp_scores = rng.beta(*tp_score, size=K)
    n_fp = int(rng.poisson(false_positives))
    size = rng.uniform(lo, hi, size=(n_fp, 2)) * [W, H]
    corner = rng.random((n_fp, 2)) * ([W, H] - size)
    fp_boxes = np.concatenate([corner, corner + size], axis=1)
    fp_scores = rng.beta(*fp_score, size=n_fp)
    out_boxes = np.concatenate([moved[hit], fp_boxes]).reshape(-1, 4)
    scores = np.clip(np.concatenate([tp_scores[hit], fp_scores]), 1e-6, 1.0)
    source = np.concatenate([np.flatnonzero(hit), np.full(n_fp, -1)]).astype(np.int64)
    order = np.argsort(-scores, kind="stable")
    result = (out_boxes[order], scores[order], np.ones(order.size, dtype=np.int64))
    return (*result, source[order]) if return_source else result


def oracle_for_dataset(
    data: SynthSalSplit | Mapping[str, np.ndarray],
    *,
    image_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None = None,
    seed: int = 0,
    **oracle_kwargs,
) -> list[dict]:
    """:func:`oracle_detections` for every image, as COCO detection-results records.

    ``data``: a :class:`SynthSalSplit` or ``{stem: (K, 4) boxes}`` (then ``image_size``, one
    ``(height, width)`` or one per stem, is required). Image ``stem`` uses the seed
    ``SeedSequence(seed, spawn_key=(crc32(stem),))``, so its detections do not depend on the
    other images. Returns ``[{"image_id": stem, "bbox": [x, y, w, h], "score": s,
    "category_id": 1}, ...]`` in image order, each image's records by descending score.
    """
    if isinstance(data, SynthSalSplit):
        boxes, image_size = data.boxes, image_size or data.image_size
    else:
        boxes = data
    if image_size is None:
        raise ValueError("oracle_for_dataset: image_size is required when data is a mapping of boxes")
    records = []
    for stem, true_boxes in boxes.items():
        size = image_size[stem] if isinstance(image_size, Mapping) else image_size
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(stem.encode()),)))
        det, scores, labels = oracle_detections(true_boxes, size, rng, **oracle_kwargs)
        for box, score, label in zip(det, scores, labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append({"image_id": stem, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score),
                            "category_id": int(label)})
    return records
