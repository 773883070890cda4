"""SynthSal's simulated observers: fixation points from the observer model of :mod:`salrank.data.synthsal`
(object, centre-bias and noise components)."""

from __future__ import annotations

import numpy as np

from salrank.data.salicon import Fixations
from salrank.data.synthsal.config import SynthSalConfig


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
