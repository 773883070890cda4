"""Ranking objects with eye-fixation-prediction (EFP) models: the paper's Fig. 9.

An EFP model gives a saliency map per image; eq. 12 (:func:`salrank.gt.efp_ranks`) turns the
map and the image's object boxes into ranks for a binarisation weight ``lambda``; these are
compared per image with the RA-SRGT ranks (eq. 4-5) at a GT threshold ``gamma`` (SRCC and macro
F1, :func:`salrank.metrics.ranking.evaluate`) and averaged over images, over a grid of ``lambda``.

Maps are passed as mappings ``{image stem: (H, W) map}`` (any value scale; colour maps are
greyed); these can be lazy (:class:`LazyMaps`), so a whole split never has to sit in memory:

* :func:`load_map_folder`: a folder of PNG/JPG maps named by image stem (a user's EFP model);
  :func:`save_map_folder` writes one (8-bit PNGs);
* :func:`unisal_maps`: UNISAL (the PSM) predictions; :func:`load_unisal_or_random` loads the
  official weights or falls back to a seeded random initialisation with a note;
* :func:`centre_bias_maps`: a centred Gaussian (:func:`centre_bias_map`), the classic baseline;
* :func:`fixation_maps`: the fixation map itself (the same fixations the GT comes from).

:func:`efp_curves` computes the curves of one model; :func:`compare_efp_models` those of several;
:func:`best_lambda` picks each model's best ``lambda`` (the paper's "dynamic binary thresholds
searching").

Comparison protocol (``protocol``), named as on the FOSRNet pages:

* ``"acb"`` (default; the old name ``"ranks"`` is an alias): salrank's protocol over all n objects
  of an image, eq. 5 ties kept. The eq. 5 ranks are the classes (1 = most salient, ..., 0 = not
  salient), encoded for both sides as ``K + 1 - rank`` for rank > 0 and 0 for rank 0 (``K`` =
  boxes in the image), so that higher = more salient for SRCC while the classes of the two sides
  coincide for F1; with ``nan_policy="exclude"`` images whose GT is constant are left out of the
  SRCC mean and counted (``n_constant_gt``).
* ``"classes"``: every box gets a distinct class by its position in ascending score, ties by the
  lower index (:func:`salrank.gt.class_labels` with ``group_size=None``), salrank's earlier FOSRNet
  evaluation.

The paper's own FOSRNet numbers quoted with Fig. 9 (:data:`salrank.paper.FIG9_OURS_SRCC`) come from the authors'
evaluation unit (groups of 5 proposals, 5 classes, NaN counted as 0), the ``official`` protocol of
the FOSRNet pages; an ``acb`` curve is put beside them for orientation only (conventions:
``book/conventions.md``).
Conventions: boxes ``[x1, y1, x2, y2]`` pixels of the original image, ``image_size = (height,
width)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from salrank.gt import DEFAULT_BETA, class_labels, efp_ranks, rank_objects
from salrank.gt.efp import efp_threshold, grey
from salrank.metrics.ranking import NAN_POLICIES, evaluate
from salrank.paper import GAMMAS

__all__ = [
    "DEFAULT_LAMS",
    "MAP_SUFFIXES",
    "PROTOCOLS",
    "LazyMaps",
    "centre_bias_map",
    "centre_bias_maps",
    "fixation_maps",
    "unisal_maps",
    "load_unisal_or_random",
    "read_map",
    "load_map_folder",
    "save_map_folder",
    "efp_binary_map",
    "efp_curves",
    "compare_efp_models",
    "best_lambda",
]

DEFAULT_LAMS = tuple(np.round(np.arange(0.1, 1.0001, 0.1), 2))
"""The binarisation weights (eq. 12's lambda) swept: 0.1, 0.2, ..., 1.0 (the figure's x axis)."""

MAP_SUFFIXES = (".png", ".jpg", ".jpeg")

PROTOCOLS = ("acb", "classes")
_PROTOCOL_ALIASES = {"ranks": "acb"}



class LazyMaps(Mapping):
    """A read-only ``{stem: map}`` whose maps are computed on access by ``compute(stem)``.

    ``cache=True`` keeps every computed map (for small sets shown several times); otherwise each
    access recomputes, so iterating over a large split holds one map at a time.
    """

    def __init__(self, stems: Iterable[str], compute: Callable[[str], np.ndarray], *, cache: bool = False):
        self._stems = list(dict.fromkeys(str(s) for s in stems))
        self._members = set(self._stems)
        self._compute = compute
        self._cache: dict[str, np.ndarray] | None = {} if cache else None

    def __getitem__(self, stem: str) -> np.ndarray:
        if stem not in self._members:
            raise KeyError(stem)
        if self._cache is not None and stem in self._cache:
            return self._cache[stem]
        value = self._compute(stem)
        if self._cache is not None:
            self._cache[stem] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._stems)

    def __len__(self) -> int:
        return len(self._stems)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} maps, cache={self._cache is not None})"


# ----------------------------------------------------------------------------- map sources


def centre_bias_map(image_size: Sequence[int], sigma_frac: float = 0.25) -> np.ndarray:
    """A centred Gaussian ``(height, width)`` float64 map with maximum 1 (the centre-bias baseline).

    Pixel ``(r, c)`` has its centre at ``(x, y) = (c + 0.5, r + 0.5)``; the Gaussian is centred at
    ``(width / 2, height / 2)`` with standard deviations ``sigma_frac * width`` (x) and
    ``sigma_frac * height`` (y), then divided by its maximum.
    """
    if len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    height, width = (int(v) for v in image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    if not (np.isfinite(sigma_frac) and sigma_frac > 0):
        raise ValueError(f"sigma_frac must be > 0, got {sigma_frac!r}")
    y = (np.arange(height) + 0.5 - height / 2) / (sigma_frac * height)
    x = (np.arange(width) + 0.5 - width / 2) / (sigma_frac * width)
    out = np.exp(-0.5 * y[:, None] ** 2) * np.exp(-0.5 * x[None, :] ** 2)
    return out / out.max()


def _stems_of(scene_set, stems: Sequence[str] | None) -> list[str]:
    if stems is None:
        return list(scene_set.stems)
    unknown = [s for s in stems if s not in scene_set.fixations]
    if unknown:
        raise KeyError(f"{scene_set.name}/{scene_set.split}: unknown image(s) {unknown[:5]}")
    return list(stems)


def centre_bias_maps(scene_set, sigma_frac: float = 0.25, stems: Sequence[str] | None = None) -> LazyMaps:
    """:func:`centre_bias_map` at each image's size, for the images of a ``SceneSet``."""
    return LazyMaps(_stems_of(scene_set, stems),
                    lambda s: centre_bias_map(scene_set.fixations[s].image_size, sigma_frac))


def fixation_maps(scene_set, sigma: float = 19.0, stems: Sequence[str] | None = None) -> LazyMaps:
    """The fixation maps (:func:`salrank.data.fixation_map`, Gaussian ``sigma`` pixels) of a ``SceneSet``.

    They come from the very fixations the RA-SRGT ranks are computed from, so they show how well
    eq. 12 can do with a perfect map (a practical ceiling, not a bound: eq. 12 and eq. 4 still
    score boxes differently).
    """
    from salrank.data import fixation_map

    return LazyMaps(_stems_of(scene_set, stems), lambda s: fixation_map(scene_set.fixations[s], sigma))


def unisal_maps(model, scene_set, stems: Sequence[str] | None = None, *, cache: bool = False) -> LazyMaps:
    """UNISAL's predicted maps (probability, at the image's own size) for a ``SceneSet``'s images.

    ``model``: a :class:`salrank.models.unisal.UNISAL` (:func:`load_unisal_or_random`). Maps are
    predicted one image at a time when first accessed (``cache=True`` keeps them).
    """
    return LazyMaps(_stems_of(scene_set, stems), lambda s: model.predict(scene_set.image(s)).probability,
                    cache=cache)


def load_unisal_or_random(weights=None, device=None, seed: int = 0, *, pretrained: bool = True):
    """UNISAL with the official weights, or a seeded random initialisation when they are absent.

    ``weights``: a weight file or a folder holding it (``None``: the usual places, see
    :mod:`salrank.weights`); ``pretrained=False`` skips the attempt. Returns ``(model, note)``:
    ``note`` is ``None`` when the official weights were loaded, else a sentence saying the maps
    come from random weights (and why), to be shown next to the results. The model's ``weights``
    attribute is its :class:`~salrank.models.backbones.NetworkWeights`.
    """
    from salrank.models.backbones import load_psm
    from salrank.weights import WeightsNotFoundError

    reason = "pretrained=False was asked for"
    if pretrained:
        try:
            return load_psm(True, weights, device=device), None
        except WeightsNotFoundError as exc:
            reason = f"the official weights were not found ({str(exc).splitlines()[0]})"
    model = load_psm(False, device=device, seed=seed)
    note = (f"UNISAL runs with **random weights** ({model.weights.label}) because {reason}: its maps are not "
            "predictions of fixations, and its curves only show that the pipeline runs.")
    return model, note


# ----------------------------------------------------------------------------- map folders


def read_map(path: str | os.PathLike) -> np.ndarray:
    """One saliency map file as a ``(H, W)`` float64 grey map in ``[0, 1]``.

    8-bit images are divided by 255 (colour maps are greyed with ITU-R 601 luma), 16-bit by
    65535; 32-bit integer or float images keep their values. Raises ``FileNotFoundError`` or
    ``ValueError`` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16"):
                return np.asarray(im, dtype=np.float64) / 65535.0
            if mode in ("I", "F"):
                return grey(np.asarray(im, dtype=np.float64))
            if mode == "L":
                return np.asarray(im, dtype=np.float64) / 255.0
            return grey(np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0)
    except FileNotFoundError:
        raise FileNotFoundError(f"saliency map not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_map_folder(directory: str | os.PathLike, *, validate: bool = True) -> LazyMaps:
    """The saliency maps in ``directory`` (files ``<image stem>.png/.jpg/.jpeg``, not recursive)
    as a lazy ``{stem: map}`` (:func:`read_map` on access), sorted by stem.

    ``validate``: open every file's header now, so that a file that is not an image fails here
    (``ValueError`` naming it) rather than in the middle of a sweep. Raises ``FileNotFoundError``
    for a missing folder, ``ValueError`` for a folder without maps or two files with one stem.
    """
    from PIL import Image, UnidentifiedImageError

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"saliency map folder not found: {directory}")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not (path.is_file() and path.suffix.lower() in MAP_SUFFIXES):
            continue
        if path.stem in found:
            raise ValueError(f"{directory}: two maps share the image stem {path.stem!r}: "
                             f"{found[path.stem].name} and {path.name}")
        if validate:
            try:
                with Image.open(path) as im:
                    im.verify()
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                raise ValueError(f"{path}: not a readable image ({exc})") from None
        found[path.stem] = path
    if not found:
        raise ValueError(f"no saliency maps ({', '.join(MAP_SUFFIXES)}) in {directory}")
    return LazyMaps(sorted(found), lambda s: read_map(found[s]))


def save_map_folder(maps: Mapping[str, np.ndarray], directory: str | os.PathLike) -> Path:
    """Write ``{stem: map}`` as 8-bit grey PNGs ``<directory>/<stem>.png`` (each written atomically).

    Each map is greyed and scaled by its maximum (``round(255 * m / max)``; an all-zero map stays
    0), the convention of saved saliency maps; eq. 12 is unaffected by the scale. Negative or
    non-finite values raise ``ValueError`` naming the stem. Returns the folder.
    """
    from PIL import Image

    from salrank.io import atomic_output

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, value in maps.items():
        if not stem or Path(stem).name != stem:
            raise ValueError(f"map key {stem!r} is not a plain file stem")
        try:
            m = grey(value)
        except ValueError as exc:
            raise ValueError(f"map {stem!r}: {exc}") from None
        if (m < 0).any():
            raise ValueError(f"map {stem!r}: negative values")
        top = m.max()
        scaled = np.zeros(m.shape, np.uint8) if top <= 0 else np.round(m / top * 255).astype(np.uint8)
        with atomic_output(directory / f"{stem}.png") as f:
            Image.fromarray(scaled, mode="L").save(f, format="PNG")
    return directory


# ----------------------------------------------------------------------------- curves


def _resized(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if m.shape == tuple(size):
        return m
    from PIL import Image

    height, width = size
    return np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR),
                      dtype=np.float64)


def efp_binary_map(saliency_map, boxes, lam: float = 1.0, normalise: str = "area") -> tuple[np.ndarray, float]:
    """The binarised map eq. 12 counts white pixels in (for figures): ``(white, T)`` with ``white`` a
    ``(H, W)`` bool array (grey map ``> T``) and ``T`` the threshold; same arguments as
    :func:`salrank.gt.efp_ranks`."""
    from salrank.gt.inputs import as_boxes, box_areas, clip_boxes
    from salrank.gt.scores import box_pixel_bounds

    if not (np.isfinite(lam) and 0 < lam <= 1):
        raise ValueError(f"lam must be in (0, 1], got {lam!r}")
    if normalise not in ("area", "sqrt-area"):
        raise ValueError(f"normalise must be 'area' or 'sqrt-area', got {normalise!r}")
    gmap = grey(saliency_map)
    bxs = clip_boxes(as_boxes(boxes), gmap.shape)
    threshold = efp_threshold(gmap, box_pixel_bounds(bxs, gmap.shape), box_areas(bxs), lam, normalise)
    return gmap > threshold, threshold


def _values(scores: np.ndarray, ranks: np.ndarray, protocol: str) -> np.ndarray:
    if protocol == "classes":
        return class_labels(scores, group_size=None) if len(scores) else np.zeros(0, np.int64)
    k = len(ranks)
    return np.where(ranks > 0, k + 1 - ranks, 0)


def efp_curves(
    maps: Mapping[str, np.ndarray],
    scene_set,
    gammas: Sequence[float] = GAMMAS,
    lams: Sequence[float] = DEFAULT_LAMS,
    *,
    model: str = "model",
    beta: float = DEFAULT_BETA,
    stems: Sequence[str] | None = None,
    protocol: str = "acb",
    nan_policy: str = "exclude",
    normalise: str = "area",
    missing: str = "error",
    progress: bool = False,
) -> pd.DataFrame:
    """SRCC and F1 of eq. 12 rankings from ``maps`` against RA-SRGT, per ``gamma`` and ``lambda``.

    Args:
        maps: ``{image stem: (H, W) or (H, W, 3) saliency map}``; a map whose size differs from
            the image's is resized bilinearly to it (boxes are in original-image pixels).
        scene_set: a :class:`salrank.data.scenes.SceneSet` (fixations, boxes).
        gammas: RA-SRGT GT thresholds (eq. 4; ``beta`` fixed).
        lams: eq. 12 weights in ``(0, 1]`` (threshold = mean of the box means / lambda).
        model: the name put in the ``model`` column.
        stems: the images (default: every image of ``scene_set`` with at least one box).
        protocol: ``"acb"`` (alias ``"ranks"``) or ``"classes"`` (see the module docstring).
        nan_policy: :func:`salrank.metrics.ranking.evaluate`'s (``"exclude"``: images whose GT is
            constant are left out of the SRCC mean and counted).
        normalise: eq. 12's box mean, ``"area"`` (the text) or ``"sqrt-area"`` (the formula).
        missing: ``"error"`` (a stem without a map raises ``KeyError``) or ``"skip"``.

    Returns:
        one row per (gamma, lambda): ``model, gamma, lambda, srcc, f1, n_images, n_constant_gt``
        (means over images; ``n_constant_gt`` images are not in the SRCC mean under "exclude").
    """
    from tqdm.auto import tqdm

    protocol = _PROTOCOL_ALIASES.get(protocol, protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS} (or {tuple(_PROTOCOL_ALIASES)}), got {protocol!r}")
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    gammas = [float(g) for g in gammas]
    lams = [float(v) for v in lams]
    if not gammas or not lams:
        raise ValueError("gammas and lams must not be empty")
    bad = [v for v in lams if not 0 < v <= 1]
    if bad:
        raise ValueError(f"lams must be in (0, 1], got {bad}")
    if stems is None:
        stems = [s for s in scene_set.stems if len(scene_set.boxes_of(s))]
    else:
        stems = _stems_of(scene_set, stems)
    preds: dict[float, list[np.ndarray]] = {v: [] for v in lams}
    gts: dict[float, list[np.ndarray]] = {g: [] for g in gammas}
    for stem in tqdm(stems, desc=f"EFP {model}", unit="img", disable=not progress):
        if stem not in maps:
            if missing == "skip":
                continue
            raise KeyError(f"model {model!r}: no saliency map for image {stem!r}")
        fx = scene_set.fixations[stem]
        size = fx.image_size
        boxes = scene_set.boxes_of(stem)
        try:
            smap = _resized(grey(maps[stem]), size)
        except ValueError as exc:
            raise ValueError(f"model {model!r}, image {stem!r}: {exc}") from None
        for gamma in gammas:
            scores, ranks = rank_objects(fx.points, boxes, size, "ra-srgt", gamma=gamma, beta=beta)
            gts[gamma].append(_values(scores, ranks, protocol))
        for lam in lams:
            scores, ranks = efp_ranks(smap, boxes, lam, normalise=normalise)
            preds[lam].append(_values(scores, ranks, protocol))
    if not gts[gammas[0]]:
        raise ValueError(f"model {model!r}: no image of {scene_set.name}/{scene_set.split} has both boxes and a map")
    rows = []
    for gamma in gammas:
        for lam in lams:
            res = evaluate(preds[lam], gts[gamma], nan_policy=nan_policy)
            rows.append({"model": model, "gamma": gamma, "lambda": lam, "srcc": res["srcc"], "f1": res["f1"],
                         "n_images": res["n_images"], "n_constant_gt": res["n_constant_gt"]})
    return pd.DataFrame(rows, columns=["model", "gamma", "lambda", "srcc", "f1", "n_images", "n_constant_gt"])


def compare_efp_models(models: Mapping[str, Mapping[str, np.ndarray]], scene_set, **kwargs) -> pd.DataFrame:
    """:func:`efp_curves` for each ``{model name: maps}``, concatenated, with a ``dataset`` column
    (``"<name>/<split>"``) first. Keyword arguments go to :func:`efp_curves`."""
    if not models:
        raise ValueError("no models given")
    frames = [efp_curves(maps, scene_set, model=name, **kwargs) for name, maps in models.items()]
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dataset", f"{scene_set.name}/{scene_set.split}")
    return out


def best_lambda(curves: pd.DataFrame, metric: str = "srcc") -> pd.DataFrame:
    """For each (dataset, model, gamma) of :func:`efp_curves` output, the row with the best
    ``metric`` (``"srcc"`` or ``"f1"``; ties: the smallest lambda), i.e. the paper's choice of the
    best binarisation threshold per compared method."""
    if metric not in ("srcc", "f1"):
        raise ValueError(f"metric must be 'srcc' or 'f1', got {metric!r}")
    keys = [k for k in ("dataset", "model", "gamma") if k in curves.columns]
    ordered = curves.sort_values([*keys, metric, "lambda"], ascending=[True] * len(keys) + [False, True],
                                 na_position="last")
    return ordered.groupby(keys, sort=False).head(1).sort_values(keys).reset_index(drop=True)
