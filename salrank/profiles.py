"""The two run profiles, ``sample`` and ``full``, each one frozen :class:`Profile`.

A profile says on what data, with which networks and for how long the pages and commands run.
It is resolved once at the top (a page's parameters cell or a command, from
:attr:`salrank.config.Settings.profile`, i.e. ``SALRANK_PROFILE``) with :func:`get_profile`; the
lower layers receive concrete objects built from it (an
:class:`~salrank.analysis.experiments.ExperimentSetup`, the feature networks, a training config)
and never branch on the profile's name.

============== ============================================ ==========================================
field          ``sample``                                   ``full``
============== ============================================ ==========================================
data           SynthSal train/val/test, first 150/50/100    SALICON train/val/test (the paper's
               (pages also show the 10 real SALICON         splits, :mod:`salrank.data.splits`)
               examples)
proposals      the noisy SynthSal oracle                    EfficientDet-D0
weights        pretrained if the files are present, else    pretrained (required)
               seeded random weights
appearance     ResNet18, ROIAlign on a 240 x 320 image;     ResNet101 crops of 224 px; UNISAL at
               UNISAL at 192 x 256 (fast on a CPU)          its own size (288 x 384 for 4:3)
heads          narrowed: ViT/Reg. width 128, 2 blocks, 4    the paper's (ViT: width 384, 4 blocks,
               heads; FC/GCN hidden 128                     8 heads)
training       ``fast`` preset, 12 epochs, 1 CPU thread     ``paper`` preset (early stopping)
features       standardised (a salrank addition: random     as extracted (the paper's model has no
               backbones give features of tiny scale)       standardisation)
============== ============================================ ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from salrank.fosrnet.features import FeatureConfig

__all__ = ["FULL", "PROFILES", "SAMPLE", "Profile", "get_profile"]


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType({k: MappingProxyType(dict(v)) if isinstance(v, Mapping) else v for k, v in d.items()})


@dataclass(frozen=True)
class Profile:
    """What a profile runs on (module table).

    ``datasets``: the scene sets the data pages show; ``dataset``, ``splits`` and ``limits``
    (first N images of train, val, test; ``None`` = all): what FOSRNet trains and is tested on.
    ``detector``: the proposal source (:func:`salrank.fosrnet.data.dataset_proposals`).
    ``pretrained``: the feature networks' weights, ``True`` (required), ``False`` (seeded random)
    or ``"auto"`` (:func:`salrank.models.backbones.feature_extractors`). ``backbone``: the
    appearance CNN; ``features``: how features are extracted. ``head_kwargs``: head name ->
    constructor options overriding the paper's sizes (empty = the paper's heads). ``preset`` /
    ``epochs``: the training preset of :mod:`salrank.fosrnet.train` (``epochs`` ``None`` = the
    preset's). ``normalize``: feature standardisation, a salrank addition
    (:class:`~salrank.fosrnet.model.FOSRNetConfig`). ``threads``: torch CPU threads while
    training (``None`` = unchanged). ``n_seeds``: training seeds per design point on the pages.
    ``sample_result``: label the numbers as sample results, never the paper's.
    """

    name: str
    datasets: tuple[str, ...]
    dataset: str
    limits: tuple[int | None, int | None, int | None]
    detector: str
    pretrained: bool | str
    backbone: str
    features: FeatureConfig
    head_kwargs: Mapping = field(default_factory=dict)
    preset: str = "paper"
    epochs: int | None = None
    normalize: bool = False
    threads: int | None = None
    n_seeds: int = 1
    sample_result: bool = False
    splits: tuple[str, str, str] = ("train", "val", "test")

    def __post_init__(self):
        object.__setattr__(self, "head_kwargs", _frozen(self.head_kwargs))

    def detector_for(self, dataset: str) -> str:
        """The proposal source for ``dataset``: the SynthSal oracle for SynthSal, else this profile's
        detector when it is a real one, else EfficientDet-D0."""
        if dataset == "synthsal":
            return "oracle"
        return self.detector if self.detector != "oracle" else "efficientdet_d0"


#: The sample profile: runs in minutes on a CPU without any download (module table).
SAMPLE = Profile(
    name="sample",
    datasets=("salicon-examples", "synthsal"),
    dataset="synthsal",
    limits=(150, 50, 100),
    detector="oracle",
    pretrained="auto",
    backbone="resnet18",
    features=FeatureConfig(mode="roi", unisal_network_size=(192, 256), roi_image_size=(240, 320)),
    head_kwargs={
        "vit": {"width": 128, "depth": 2, "num_heads": 4},
        "reg": {"width": 128, "depth": 2, "num_heads": 4},
        "fc": {"hidden": 128},
        "gcn": {"hidden": 128},
    },
    preset="fast",
    epochs=12,
    normalize=True,
    threads=1,
    sample_result=True,
)

#: The full profile: the paper's data, networks and training (module table).
FULL = Profile(
    name="full",
    datasets=("salicon",),
    dataset="salicon",
    limits=(None, None, None),
    detector="efficientdet_d0",
    pretrained=True,
    backbone="resnet101",
    features=FeatureConfig(),
    preset="paper",
    normalize=False,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SAMPLE, FULL)}


def get_profile(name: str | None = None) -> Profile:
    """The :class:`Profile` called ``name`` (``None``: the ``SALRANK_PROFILE`` setting, default ``sample``)."""
    if name is None:
        from salrank.config import get_settings

        name = get_settings().profile
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {tuple(PROFILES)}") from None
