"""SynthSal split sizes and :class:`SynthSalConfig`, the parameters of the scene and observer models
(described in :mod:`salrank.data.synthsal`)."""

from __future__ import annotations

from dataclasses import dataclass

#: Bumped whenever the generator's output changes for the same configuration.
FORMAT_VERSION = 1
SHAPES = ("ellipse", "rectangle", "triangle", "polygon", "star")
TEXTURES = ("flat", "stripes", "checker", "noise")
SPLITS = ("train", "val", "test")
#: Sample profile: small and quick.
SAMPLE_SPLITS = {"train": 400, "val": 100, "test": 100}
#: The paper's SALICON split sizes (train 10,000; SALICON val divided into 1,200 + 3,800).
SALICON_SPLITS = {"train": 10_000, "val": 1_200, "test": 3_800}


@dataclass(frozen=True)
class SynthSalConfig:
    """Parameters of the scene and observer models (see :mod:`salrank.data.synthsal`).

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
