"""Which images, fixations and object boxes a profile means: one entry point for notebooks and CLI.

:func:`open_dataset` returns a :class:`SceneSet` (a split of images, their fixations and
reference object boxes) for one of the named datasets:

* ``salicon-examples``: the ten real SALICON images shipped with salrank (real fixations; boxes
  annotated by the project); one split, ``all``.
* ``synthsal``: the sample-profile SynthSal scenes (splits ``train``/``val``/``test``; boxes are
  the planted objects, ``salience`` their latent salience), generated into the cache on first use.
* ``salicon``: SALICON under ``SALRANK_DATA`` (splits ``train``/``val``/``test`` by the paper's
  rule, see :func:`salrank.data.paper_splits`). Boxes: with a ``detector``, its proposals from
  ``$SALRANK_DATA/proposals/<detector>_<split>.json`` when present (``salrank proposals``);
  without, the COCO 2014 instance boxes of the images (the reference objects, e.g. the detection
  targets of Table III-B) from ``$SALRANK_DATA/annotations/instances_{train,val}2014.json`` when
  present (COCO's own file; crowd boxes left out; an image it does not list has no boxes).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from salrank.config import Settings, get_settings
from salrank.data import Fixations, load_image, load_salicon

DATASETS = ("salicon-examples", "synthsal", "salicon")


@dataclass
class SceneSet:
    """A split of images with fixations and reference boxes, keyed by image file stem.

    ``boxes[stem]`` is ``(K, 4)`` float64 ``[x1, y1, x2, y2]`` in pixels (empty ``(0, 4)`` when the
    image has none); ``salience`` holds planted salience for synthetic scenes, else ``None``.
    """

    name: str
    split: str
    fixations: dict[str, Fixations]
    images: dict[str, Path]
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    salience: dict[str, np.ndarray] | None = None

    @property
    def stems(self) -> list[str]:
        """Image stems in a stable (sorted) order."""
        return sorted(self.fixations)

    def __len__(self) -> int:
        return len(self.fixations)

    def image(self, stem: str):
        """The RGB :class:`PIL.Image.Image` of ``stem``."""
        return load_image(self.images[stem])

    def boxes_of(self, stem: str) -> np.ndarray:
        return self.boxes.get(stem, np.zeros((0, 4)))

    def subset(self, stems: list[str]) -> SceneSet:
        """The same set restricted to ``stems`` (in that order)."""
        pick = {s: i for i, s in enumerate(stems)}
        return SceneSet(
            name=self.name,
            split=self.split,
            fixations={s: self.fixations[s] for s in pick},
            images={s: self.images[s] for s in pick if s in self.images},
            boxes={s: self.boxes[s] for s in pick if s in self.boxes},
            salience=None if self.salience is None else {s: self.salience[s] for s in pick},
        )


def open_dataset(
    name: str, split: str = "all", settings: Settings | None = None, *, detector: str | None = None
) -> SceneSet:
    """Open a named dataset split (see the module docstring)."""
    settings = settings or get_settings()
    if name == "salicon-examples":
        return _salicon_examples(split)
    if name == "synthsal":
        return _synthsal(split, settings)
    if name == "salicon":
        return _salicon(split, settings, detector)
    raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")


def _salicon_examples(split: str) -> SceneSet:
    from salrank.data.sample import load_salicon_example_boxes, load_salicon_examples, salicon_example_images

    if split != "all":
        raise ValueError("salicon-examples has a single split, 'all'")
    fixations = load_salicon_examples()
    return SceneSet(
        name="salicon-examples",
        split="all",
        fixations=fixations,
        images=salicon_example_images(),
        boxes=load_salicon_example_boxes(),
    )


def _synthsal(split: str, settings: Settings) -> SceneSet:
    from salrank.data.synthsal import sample_synthsal

    dataset = sample_synthsal(settings, progress=False)
    part = dataset.load(split, cache=str(settings.cache_dir / "salicon"))
    return SceneSet(
        name="synthsal",
        split=split,
        fixations=part.fixations,
        images=part.image_paths,
        boxes=part.boxes,
        salience=part.salience,
    )


def _salicon(split: str, settings: Settings, detector: str | None) -> SceneSet:
    from salrank.data import SplitSizeWarning, paper_splits

    root = settings.data_root
    if root is None:
        raise FileNotFoundError("the full SALICON data needs SALRANK_DATA (or data_root=) to point at it")
    if split not in ("train", "val", "test"):
        raise ValueError(f"SALICON splits are train, val and test, not {split!r}")
    source = "train" if split == "train" else "val"
    fixations = load_salicon(_salicon_fixations_path(root, source), cache=str(settings.cache_dir / "salicon"))
    if split != "train":
        with warnings.catch_warnings():  # only val is divided here; train is checked elsewhere
            warnings.simplefilter("ignore", SplitSizeWarning)
            keep = paper_splits([], fixations, n_val=salicon_val_count(len(fixations)))[split]
        fixations = {s: fixations[s] for s in keep}
    image_dir = root / "images" / source
    images = {s: image_dir / (fixations[s].file_name or f"{s}.jpg") for s in fixations}
    boxes: dict[str, np.ndarray] = {}
    instances = coco_instances_path(root, source)
    if not detector and instances.is_file():
        found = _instance_boxes(str(instances), *_file_key(instances))
        boxes = {s: found.get(s, np.zeros((0, 4))) for s in fixations}
    if detector:
        proposals = settings.proposals_dir / f"{detector}_{source}.json"
        if proposals.is_file():
            from salrank.proposals.generate import read_proposals

            boxes = {s: d.boxes for s, d in read_proposals(proposals, image_ids=list(fixations)).items()}
    return SceneSet(name="salicon", split=split, fixations=fixations, images=images, boxes=boxes)


def coco_instances_path(root: Path, source: str) -> Path:
    """Where the full profile looks for COCO's instance annotations of SALICON's ``source``
    (``"train"``/``"val"``) images: ``root/annotations/instances_<source>2014.json``."""
    return Path(root) / "annotations" / f"instances_{source}2014.json"


def _file_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=2)
def _instance_boxes(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    """Non-crowd boxes of a COCO instances file, parsed once per file version (COCO's train file
    is 0.3 GB)."""
    from salrank.data.sample import load_coco_boxes

    return load_coco_boxes(path, skip_crowd=True)


def salicon_val_count(n_val_images: int) -> int:
    """How many of the sorted SALICON val images form the paper's val split: 1,200 of the full
    5,000 (the rest is test); a smaller val set (a subset, a rehearsal tree) is divided in the
    same 1,200 : 3,800 proportion, keeping at least one image on each side when it has two."""
    from salrank.data.splits import SALICON_VAL_SIZE
    from salrank.paper import VAL_SIZE

    if n_val_images >= SALICON_VAL_SIZE:
        return VAL_SIZE
    k = round(n_val_images * VAL_SIZE / SALICON_VAL_SIZE)
    return min(max(k, 1), n_val_images - 1) if n_val_images >= 2 else n_val_images


def _salicon_fixations_path(root: Path, source: str) -> Path:
    for candidate in (
        root / "fixations" / f"fixations_{source}2014.json",
        root / f"fixations_{source}2014.json",
        root / "fixations" / source,
    ):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"no SALICON {source} fixations under {root}: expected fixations/fixations_{source}2014.json "
        f"(2015 JSON) or fixations/{source}/*.mat (2017)"
    )


def profile_datasets(settings: Settings | None = None) -> list[str]:
    """The datasets a profile's pages run on (:attr:`salrank.profiles.Profile.datasets`): the sample's two,
    or SALICON."""
    from salrank.profiles import get_profile

    settings = settings or get_settings()
    return list(get_profile(settings.profile).datasets)


def summary_table(scene_sets) -> pd.DataFrame:
    """One row per :class:`SceneSet`: images, mean points/observers/boxes per image, image sizes."""
    rows = []
    for ss in scene_sets:
        fx = list(ss.fixations.values())
        sizes = sorted({f"{f.width}x{f.height}" for f in fx})
        rows.append(
            {
                "dataset": ss.name,
                "split": ss.split,
                "images": len(ss),
                "points / image": float(np.mean([len(f) for f in fx])) if fx else 0.0,
                "observers / image": float(np.mean([f.n_observers for f in fx])) if fx else 0.0,
                "boxes / image": float(np.mean([len(ss.boxes_of(s)) for s in ss.fixations])) if fx else 0.0,
                "image sizes (w x h)": ", ".join(sizes[:3]) + (" ..." if len(sizes) > 3 else ""),
            }
        )
    return pd.DataFrame(rows)
