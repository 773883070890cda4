"""SynthSal scene generation: background, objects with occlusion, latent salience (the scene model of
:mod:`salrank.data.synthsal`); :func:`generate_scene` adds the simulated observers'
(:mod:`salrank.data.synthsal.observers`) fixations."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from salrank.data.salicon import Fixations
from salrank.data.synthsal.config import TEXTURES, SynthSalConfig
from salrank.data.synthsal.observers import _simulate_observers

_MAX_ATTEMPTS = 300  # placements tried per scene before settling for fewer objects (>= the minimum)
_MIN_OBJECT_PX = 200  # smallest object area before occlusion


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
