"""What every benchmark shares: figures (:class:`Measurement`), run settings (:class:`BenchConfig`),
the benchmark type (:class:`Benchmark`), the one timing helper (:func:`stopwatch`, :func:`time_calls`, :class:`StageClock` built on them) and
the one generator of random inputs (:func:`random_images`, :func:`random_boxes`,
:func:`random_features`, :func:`random_ranking_split`).

Times are seconds: wall clock (:func:`time.perf_counter`) and, where asked, CPU time of this process
(:func:`time.process_time`, steadier on a shared machine). On CUDA the device is synchronised
before a timed block starts and before it stops (``sync``). Boxes are ``[x1, y1, x2, y2]`` pixels;
image sizes ``(height, width)``.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PROPOSALS_PER_IMAGE",
    "BenchConfig",
    "Benchmark",
    "Measurement",
    "StageClock",
    "Timing",
    "device_sync",
    "random_boxes",
    "random_features",
    "random_images",
    "random_ranking_split",
    "resolve_amp",
    "stopwatch",
    "summarize",
    "time_calls",
]

PROPOSALS_PER_IMAGE = 10  # the paper's filtering keeps at most 10 proposals
UNISAL_DIM = 192  # width of UNISAL's local and global features f_u


# --- figures ---------------------------------------------------------------------------------------
def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median and spread of ``samples``: ``median``, ``q1``, ``q3``, ``iqr`` (linear percentiles),
    ``min``, ``max``.

    >>> summarize([1.0, 2.0, 3.0, 4.0, 100.0])["median"]
    3.0
    """
    x = np.asarray(list(samples), dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize: no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"summarize: non-finite samples {x.tolist()}")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(x.min()), "max": float(x.max())}


@dataclass
class Measurement:
    """One figure of a benchmark: ``samples`` (one per timed run) in ``unit``.

    ``name`` is ``<benchmark>.<figure>`` (the benchmark part is added by
    :func:`~salrank.bench.suite.run_suite` when missing); ``better`` says which direction is faster.
    """

    name: str
    metric: str
    unit: str
    samples: Sequence[float]
    better: str = "higher"
    details: dict = field(default_factory=dict)
    summary: dict = field(init=False, repr=False)  # summarize(samples)

    def __post_init__(self):
        if self.better not in ("higher", "lower"):
            raise ValueError(f"Measurement {self.name}: better must be 'higher' or 'lower', got {self.better!r}")
        self.samples = [float(s) for s in self.samples]
        self.summary = summarize(self.samples)

    @property
    def repeats(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return self.summary["median"]

    def to_dict(self, benchmark: str) -> dict:
        """The record entry of this figure (see :mod:`salrank.bench.suite`)."""
        spread = {k: self.summary[k] for k in ("q1", "q3", "iqr", "min", "max")}
        return {"name": self.name, "benchmark": benchmark, "metric": self.metric, "unit": self.unit,
                "better": self.better, "median": self.median, "spread": spread, "repeats": self.repeats,
                "samples": self.samples, "details": self.details}


# --- configuration ---------------------------------------------------------------------------------
def resolve_amp(amp: str | None, device) -> str | None:
    """The autocast dtype name (``"bf16"``, ``"fp16"``) or ``None`` for ``amp`` on ``device``.

    ``"auto"``: on CUDA bfloat16 where the GPU supports it, else float16; elsewhere off.
    ``None``/``"off"``: off. ``"bf16"``/``"fp16"``: that dtype (also on the CPU, where it is slow but
    exercises the same code paths).
    """
    import torch

    name = "off" if amp is None else str(amp).lower()
    if name in ("off", "none", "false", "no", "0"):
        return None
    dev = torch.device(device)
    if name == "auto":
        if dev.type != "cuda":
            return None
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name in ("bf16", "bfloat16"):
        return "bf16"
    if name in ("fp16", "float16", "half"):
        return "fp16"
    raise ValueError(f"amp: expected auto, off, bf16 or fp16, got {amp!r}")


@dataclass(frozen=True)
class BenchConfig:
    """How a benchmark runs: ``quick`` sizes, ``device``, ``repeats`` per figure, ``amp`` dtype name
    (see :func:`resolve_amp`), ``seed``. ``notes`` collects remarks of the running benchmark;
    ``shared`` holds models built once per suite run (:meth:`model`)."""

    quick: bool = True
    device: str = "cpu"
    repeats: int = 3
    amp: str | None = None
    seed: int = 0
    notes: list = field(default_factory=list, compare=False)
    shared: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def torch_device(self):
        import torch

        return torch.device(self.device)

    @property
    def cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    @property
    def amp_dtype(self):
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[self.amp]

    def pick(self, cpu: tuple, cuda: tuple | None = None):
        """``(quick, full)`` value of ``cpu``, or of ``cuda`` on a CUDA device when given."""
        quick, full = cuda if (self.cuda and cuda is not None) else cpu
        return quick if self.quick else full

    def autocast(self, enabled: bool = True):
        """``torch.autocast`` on this device with the AMP dtype (a no-op without AMP)."""
        import torch

        if self.amp is None or not enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.torch_device.type, dtype=self.amp_dtype)

    def no_autocast(self):
        """Autocast switched off (for float32-only steps run inside an autocast region)."""
        import torch

        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.torch_device.type, enabled=False)

    def sync(self) -> None:
        """Wait for the device (see :func:`device_sync`)."""
        device_sync(self.device)()

    def samples(self, factor: int = 1) -> int:
        """Timed runs of a figure: ``repeats`` times ``factor`` (cheap figures take more, so that
        their median resists the bursts of load of a shared machine)."""
        return self.repeats * max(1, int(factor))

    def note(self, text: str) -> None:
        self.notes.append(str(text))

    def model(self, key: str, build: Callable[[], object]):
        """The model ``key`` built once per suite run (frozen feature extractors are shared)."""
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: ``run(config)`` returns its :class:`Measurement` list."""

    name: str
    description: str
    run: Callable[[BenchConfig], list[Measurement]]


# --- timing ----------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds a block took: ``wall`` (:func:`time.perf_counter`) and ``cpu`` (:func:`time.process_time`,
    this process's CPU time over all its threads)."""

    wall: float = float("nan")
    cpu: float = float("nan")


def _no_sync() -> None:
    return None


def device_sync(device) -> Callable[[], None]:
    """A function that waits for ``device``'s queued work: ``torch.cuda.synchronize`` on CUDA,
    nothing elsewhere (CPU work is done when the call returns)."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return _no_sync
    return lambda: torch.cuda.synchronize(dev)


@contextlib.contextmanager
def stopwatch(sync: Callable[[], None] | None = None) -> Iterator[Timing]:
    """Time the ``with`` block; the yielded :class:`Timing` is filled when the block ends.

    ``sync`` (e.g. :meth:`BenchConfig.sync`) runs before the clock starts and before it stops, so
    that queued device work is inside the timed span and nothing earlier is.

    >>> with stopwatch() as t:
    ...     _ = sum(range(1000))
    >>> t.wall >= 0 and t.cpu >= 0
    True
    """
    sync = sync or _no_sync
    timing = Timing()
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    yield timing
    sync()
    timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu


def time_calls(fns: Mapping[str, Callable[[], object]], repeats: int, *, warmup: int = 1,
               sync: Callable[[], None] | None = None, clock: str = "wall") -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` samples each after ``warmup`` untimed rounds.

    The functions alternate within each repeat, so that load from other processes affects them
    alike (a ratio of two of them is then fair even on a busy machine). ``clock``: ``"wall"`` or
    ``"cpu"`` (see :class:`Timing`); ``sync``: see :func:`stopwatch`.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with stopwatch(sync) as t:
                fn()
            out[name].append(getattr(t, clock))
    return out


def _to_float32(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float32(o) for o in out)
    return out


class _StageProxy:
    """Stands in for a model: the listed methods are timed (and run in ``context``); anything else is
    passed through to the model."""

    def __init__(self, target, clock: StageClock, stage: str, methods: Iterable[str],
                 context: Callable[[], contextlib.AbstractContextManager], float_outputs: bool):
        self._target = target
        self._clock = clock
        self._stage = stage
        self._context = context
        self._float = float_outputs
        self._methods = frozenset(methods)
        for name in self._methods - {"__call__"}:
            setattr(self, name, self._timed(getattr(target, name)))

    def _timed(self, fn):
        def call(*args, **kwargs):
            with self._context(), stopwatch(self._clock.sync) as t:
                out = fn(*args, **kwargs)
                if self._float:
                    out = _to_float32(out)
            self._clock.seconds[self._stage] += t.wall
            return out

        return call

    def __call__(self, *args, **kwargs):
        if "__call__" not in self._methods:
            raise TypeError(f"the {self._stage} stage is not timed as a call")
        return self._timed(self._target)(*args, **kwargs)

    def eval(self):
        self._target.eval()
        return self

    def __getattr__(self, name):
        return getattr(self._target, name)


class StageClock:
    """Wall-clock seconds spent per named stage, accumulated by proxies (:meth:`wrap`) around models.

    ``sync`` is called before and after each timed call (``torch.cuda.synchronize`` on CUDA).
    """

    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)
        self.sync = sync or _no_sync

    def reset(self) -> None:
        self.seconds.clear()

    def wrap(self, target, stage: str, methods: Iterable[str], *,
             context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             float_outputs: bool = False):
        """A proxy of ``target`` whose ``methods`` (``"__call__"`` for calls) add to ``stage``;
        they run inside ``context()`` and, with ``float_outputs``, return float32 tensors."""
        return _StageProxy(target, self, stage, methods, context, float_outputs)


# --- random inputs ---------------------------------------------------------------------------------
def random_images(rng: np.random.Generator, n: int, image_size: tuple[int, int] = (480, 640)) -> list[np.ndarray]:
    """``n`` random RGB uint8 images of ``image_size`` ``(height, width)``."""
    h, w = (int(s) for s in image_size)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(n)]


def random_boxes(rng: np.random.Generator, n: int, image_size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """``n`` random ``[x1, y1, x2, y2]`` pixel boxes (float64) of 32..320 px sides inside an image of
    ``image_size`` ``(height, width)`` (at least 32 x 32)."""
    h, w = image_size
    wh = rng.uniform(32, [min(320, w), min(320, h)], size=(n, 2))
    xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([w, h]) - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def random_features(rng: np.random.Generator, n: int, appearance_dim: int = 2048,
                    image_size: tuple[int, int] = (480, 640)) -> dict[str, np.ndarray]:
    """Random cached features of ``n`` proposals of one ``image_size`` image, float32, with every
    field of :data:`salrank.fosrnet.features.FIELDS`: ``local``/``global`` (n, 192) and
    ``appearance`` (n, ``appearance_dim``) standard normal, ``boxes`` from :func:`random_boxes` and
    their ``centers`` and ``geometry`` as the feature extractor computes them, ``scores`` in [0, 1)."""
    from salrank.fosrnet.features import box_centers, box_geometry

    boxes = random_boxes(rng, n, image_size)
    return {"local": rng.standard_normal((n, UNISAL_DIM), dtype=np.float32),
            "global": rng.standard_normal((n, UNISAL_DIM), dtype=np.float32),
            "appearance": rng.standard_normal((n, appearance_dim), dtype=np.float32),
            "centers": box_centers(boxes, image_size).astype(np.float32),
            "boxes": boxes.astype(np.float32),
            "scores": rng.random(n, dtype=np.float32),
            "geometry": box_geometry(boxes, image_size)}


def random_ranking_split(n_images: int, n_proposals: int = PROPOSALS_PER_IMAGE, appearance_dim: int = 2048,
                         seed: int = 0):
    """A :class:`~salrank.fosrnet.data.RankingSplit` of :func:`random_features` (640 x 480 images,
    ``n_proposals`` each) with random RA-SRGT-like scores and their ranks: training-speed input."""
    from salrank.fosrnet.data import RankingSplit
    from salrank.fosrnet.features import FeatureStore
    from salrank.gt.ranking import ranks_from_scores

    rng = np.random.default_rng(seed)
    size = (480, 640)
    per_image = [random_features(rng, n_proposals, appearance_dim, size) for _ in range(n_images)]
    store = FeatureStore.from_images(per_image, [f"bench_{i:06d}" for i in range(n_images)], [size] * n_images,
                                     appearance_dim=appearance_dim)
    scores = [rng.random(n_proposals) for _ in range(n_images)]
    return RankingSplit(store, scores, [ranks_from_scores(s) for s in scores], name="bench_random")
