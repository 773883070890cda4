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

Modules: :mod:`~salrank.data.synthsal.config` (split sizes and :class:`SynthSalConfig`),
:mod:`~salrank.data.synthsal.scene` (background, objects, occlusion, latent salience),
:mod:`~salrank.data.synthsal.observers` (simulated fixations), :mod:`~salrank.data.synthsal.dataset`
(the resumable dataset writer and its loader) and :mod:`~salrank.data.synthsal.oracle` (the noisy
oracle detector); every public name is importable from :mod:`salrank.data.synthsal`.

Randomness: scene ``index`` of ``split`` uses ``SeedSequence(seed, spawn_key=(crc32(split),
index))`` (see :func:`scene_seed`), so a scene never depends on how many scenes are made.
"""

from __future__ import annotations

from salrank.data.synthsal.config import (
    FORMAT_VERSION,
    SALICON_LIKE,
    SALICON_SPLITS,
    SAMPLE_SPLITS,
    SHAPES,
    SPLITS,
    TEXTURES,
    SynthSalConfig,
)
from salrank.data.synthsal.dataset import (
    SynthSalDataset,
    SynthSalSplit,
    generate_dataset,
    load_synthsal,
    sample_synthsal,
    scene_stem,
)
from salrank.data.synthsal.oracle import oracle_detections, oracle_for_dataset
from salrank.data.synthsal.scene import Scene, generate_scene, scene_seed

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
