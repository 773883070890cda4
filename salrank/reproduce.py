"""The whole paper on the full profile in one resumable run (``salrank reproduce``).

Stages, in order (:data:`STAGES`), each cached and skipped when done:

=============  ===============================================================================
``proposals``  EfficientDet-D0 proposals of every SALICON train and val image (with ``limit``: of
               the first N images of each split, those the experiments and pages use), written
               where the full profile reads them
               (``$SALRANK_DATA/proposals/efficientdet_d0_{train,val}.json``,
               :func:`salrank.proposals.generate_proposals`, resumable per batch)
``features``   UNISAL + ResNet101 features of the experiments' train/val/test images
               (:func:`salrank.fosrnet.data.prepare_split`, cached under ``$SALRANK_CACHE/features``)
``gt``         RA-SRGT scores and ranks of the proposals at the paper's gamma/beta, one JSON per
               split in the run folder
``train``      the pages that train FOSRNet experiments (Tables II, III-A, III-C, VI, "Ours (Reg.)",
               Figs. 10 and 14), executed with papermill: every experiment they need is trained and
               cached (:func:`salrank.analysis.experiments.run_experiment`; an interrupted
               experiment resumes from its last epoch)
``evaluate``   every other page of the book, executed with papermill
``book``       the Jupyter Book built from the executed pages with ``--warningiserror``
=============  ===============================================================================

A run is identified by its data and weights folders, ``limit`` and ``epochs``
(:func:`run_folder`); its record ``stages.json`` holds each finished stage's wall time. Pages are
executed to a temporary file renamed when complete, so a killed run resumes at the first
unfinished page. ``limit`` (``SALRANK_LIMIT``) keeps the first N images of each split in the
experiments and caps the pages' own image counts and timing repeats; ``epochs``
(``SALRANK_EPOCHS``) caps training. Both reach the pages through the environment
(:mod:`salrank.config`) and papermill parameters, never by editing the notebooks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from salrank.config import Settings, get_settings
from salrank.errors import UserFacingError
from salrank.io import atomic_write_json

__all__ = [
    "STAGES",
    "TRAIN_PAGES",
    "REPO_NOTEBOOKS",
    "ReproduceBusyError",
    "ReproduceRun",
    "StageResult",
    "run_folder",
    "page_parameters",
    "book_pages",
    "reproduce",
    "timing_table",
]

STAGES = ("proposals", "features", "gt", "train", "evaluate", "book")
#: pages that train experiments (run in the ``train`` stage; the others run in ``evaluate``)
TRAIN_PAGES = ("table2", "table3a", "table3c", "reg_vs_cls", "table6", "fig10", "fig14")
#: the notebooks and book of a source checkout (salrank reproduce runs from one)
REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_NOTEBOOKS = REPO_ROOT / "notebooks"
DETECTOR = "efficientdet_d0"
_VERSION = 1


class ReproduceBusyError(UserFacingError, RuntimeError):
    """Another ``salrank reproduce`` holds the run folder."""


@dataclass
class StageResult:
    """One stage of a run: ``status`` ``"ran"``/``"cached"``; ``seconds``: wall time when it ran."""

    stage: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class ReproduceRun:
    """What :func:`reproduce` did: the run folder, the stages and where the book is."""

    folder: Path
    stages: list[StageResult] = field(default_factory=list)
    book_html: Path | None = None


def run_folder(settings: Settings) -> Path:
    """``$SALRANK_CACHE/reproduce/<key>``: the record of the run on these data, weights, limit, epochs."""
    ident = json.dumps([_VERSION, str(settings.data_root), str(settings.weights_dir), settings.limit,
                        settings.epochs])
    key = hashlib.sha1(ident.encode()).hexdigest()[:12]
    path = settings.cache_dir / "reproduce" / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def book_pages(book_dir: Path | None = None) -> list[str]:
    """Notebook names in the book's table of contents, in order."""
    import yaml

    toc = yaml.safe_load(((book_dir or REPO_ROOT / "book") / "_toc.yml").read_text())
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                out.append(f.split("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return out


def page_parameters(name: str, settings: Settings) -> dict:
    """papermill parameters of page ``name`` in a reproduce run: the full profile, the Fig. 9 map
    folders of the data root, and (with ``settings.limit``) capped image counts and repeats."""
    params: dict = {"profile": "full"}
    if name == "fig9" and settings.data_root is not None:
        maps = settings.data_root / "saliency_maps"
        if maps.is_dir():
            params["map_dirs"] = {p.name: str(p) for p in sorted(maps.iterdir()) if p.is_dir()}
    n = settings.limit
    if n is not None:
        params.update({
            "fig9": {"n_images_full": n},
            "fig11b": {"n_images": n},
            "fig12": {"n_images": n},
            "gt_explorer": {"max_images": n},
            "table1": {"max_images": n},
            "table4": {"live_repeats": 1},
            "table4b": {"repeats": 1, "warmup": 0},
        }.get(name, {}))
    return params


def _load_record(folder: Path) -> dict:
    try:
        return json.loads((folder / "stages.json").read_text())
    except (OSError, ValueError):
        return {}


def _scenes(settings: Settings, split: str):
    from salrank.data.scenes import open_dataset

    return open_dataset("salicon", split, settings)


# --- stages ------------------------------------------------------------------------------------
def _stage_proposals(settings: Settings, folder: Path, progress: bool, log) -> str:
    from salrank.proposals import create_detector, generate_proposals
    from salrank.proposals.generate import read_proposals

    detector = None
    done = []
    for source, splits in (("train", ("train",)), ("val", ("val", "test"))):
        images = {}
        for split in splits:
            ss = _scenes(settings, split)
            stems = ss.stems if settings.limit is None else ss.stems[: settings.limit]  # as prepare_split
            images.update({s: ss.images[s] for s in stems})
        out = settings.data_root / "proposals" / f"{DETECTOR}_{source}.json"
        if out.is_file():
            have = read_proposals(out)
            if set(images) <= set(have):
                done.append(f"{source}: {len(images)} images (cached)")
                continue
        detector = detector or create_detector(DETECTOR, pretrained=True, device=settings.torch_device())
        generate_proposals(detector, images, out, progress=progress)
        done.append(f"{source}: {len(images)} images")
    return "; ".join(done)


def _splits(settings: Settings, progress: bool, log, gamma: float, beta: float):
    """The profile's (train, val, test) splits, prepared exactly as the pages' experiments prepare
    them (:func:`salrank.analysis.experiments.profile_setup`), so the features cache is shared."""
    from salrank.analysis.experiments import profile_setup
    from salrank.analysis.experiments.prepare import _split

    setup = profile_setup(settings)
    for role, split in enumerate(setup.splits):
        yield split, _split(setup, settings, role, setup.detector, gamma, beta, progress, log)


def _stage_features(settings: Settings, folder: Path, progress: bool, log) -> str:
    from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA

    return "; ".join(f"{split}: {len(data.features.stems)} images"
                     for split, data in _splits(settings, progress, log, DEFAULT_GAMMA, DEFAULT_BETA))


def _stage_gt(settings: Settings, folder: Path, progress: bool, log) -> str:
    from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA

    parts = []
    for split, data in _splits(settings, False, log, DEFAULT_GAMMA, DEFAULT_BETA):
        store = data.features
        records = {
            stem: {"boxes": store.image(i)["boxes"].tolist(), "scores": data.gt_scores[i].tolist(),
                   "ranks": data.gt_ranks[i].astype(int).tolist()}
            for i, stem in enumerate(store.stems)
        }
        atomic_write_json(folder / f"gt_{split}.json",
                          {"gamma": DEFAULT_GAMMA, "beta": DEFAULT_BETA, "detector": DETECTOR,
                           "conventions": "boxes [x1, y1, x2, y2] pixels; rank 1 = most salient, 0 = not salient",
                           "images": records})
        parts.append(f"{split}: {len(records)} images")
    return "; ".join(parts)


def _execute_page(name: str, settings: Settings, executed: Path, notebooks: Path) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``executed/<name>.ipynb`` (atomically; kept if there)."""
    import papermill

    out = executed / f"{name}.ipynb"
    if out.is_file():
        return out
    for stale in executed.glob(f".{name}.*.tmp.ipynb"):  # left by a killed run (the run folder is locked)
        stale.unlink(missing_ok=True)
    tmp = executed / f".{name}.{os.getpid()}.tmp.ipynb"
    try:
        papermill.execute_notebook(str(notebooks / f"{name}.ipynb"), str(tmp),
                                   parameters=page_parameters(name, settings), kernel_name="python3",
                                   cwd=str(notebooks), progress_bar=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _pages_stage(which: Callable[[str], bool]):
    def stage(settings: Settings, folder: Path, progress: bool, log, notebooks: Path) -> str:
        from tqdm.auto import tqdm

        executed = folder / "executed"
        executed.mkdir(exist_ok=True)
        pages = [p for p in book_pages(notebooks.parent / "book") if which(p)]
        bar = tqdm(pages, desc="pages", unit="page", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            t = time.perf_counter()
            fresh = not (executed / f"{name}.ipynb").is_file()
            _execute_page(name, settings, executed, notebooks)
            if fresh:
                _record_page(folder, name, time.perf_counter() - t)
        return f"{len(pages)} pages: " + ", ".join(pages)

    return stage


def _record_page(folder: Path, name: str, seconds: float) -> None:
    record = _load_record(folder)
    record.setdefault("pages", {})[name] = round(seconds, 2)
    atomic_write_json(folder / "stages.json", record, indent=1)


def _stage_book(settings: Settings, folder: Path, progress: bool, log, notebooks: Path, out: Path) -> str:
    """Build the book from the executed pages (execution off, ``--warningiserror``) in ``out``."""
    import yaml

    repo = notebooks.parent
    executed = folder / "executed"
    build = out / "src"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    config = yaml.safe_load((repo / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # executed by the train/evaluate stages
    (build / "_config.yml").write_text(yaml.safe_dump(config))
    book = build / "book"
    shutil.copytree(repo / "book", book, symlinks=True, ignore=shutil.ignore_patterns("_build", "notebooks"))
    (book / "notebooks").mkdir()
    for name in book_pages(repo / "book"):
        page = executed / f"{name}.ipynb"
        if not page.is_file():
            raise FileNotFoundError(f"page {name} was not executed: run the train and evaluate stages first")
        shutil.copy(page, book / "notebooks" / f"{name}.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book), "--warningiserror", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=build)
    if proc.returncode != 0:
        raise RuntimeError("jupyter-book build failed:\n" + proc.stdout[-4000:] + proc.stderr[-4000:])
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.copytree(build / "_build" / "html", html)
    return f"HTML at {html / 'index.html'}"


# --- driver -------------------------------------------------------------------------------------
def reproduce(
    stages: Sequence[str] = STAGES,
    *,
    settings: Settings | None = None,
    out: str | os.PathLike = "_build/reproduce",
    notebooks: str | os.PathLike | None = None,
    force: Sequence[str] = (),
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> ReproduceRun:
    """Run ``stages`` (in :data:`STAGES` order) on the full profile; finished stages are skipped
    unless named in ``force``. ``settings`` must be the full profile with data and weights folders;
    it is exported (``SALRANK_PROFILE``, ``SALRANK_DATA``, ..., ``SALRANK_LIMIT``/``SALRANK_EPOCHS``)
    for the pages' kernels while the run lasts; the environment is restored afterwards.
    ``out``: where the book's HTML goes (``out/html``). Returns what ran and the timings."""
    settings = settings or get_settings()
    log = log or (lambda *_: None)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {', '.join(STAGES)}")
    from salrank.profiles import get_profile

    if get_profile(settings.profile).sample_result:
        raise ValueError("salrank reproduce runs the full profile: set SALRANK_PROFILE=full")
    for what, path in (("SALRANK_DATA", settings.data_root), ("SALRANK_WEIGHTS", settings.weights_dir)):
        if path is None or not Path(path).is_dir():
            raise FileNotFoundError(f"{what} must name an existing folder (got {path})")
    notebooks = Path(notebooks) if notebooks else REPO_NOTEBOOKS
    if not notebooks.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {notebooks}: run from a salrank source checkout")
    env: dict[str, str | None] = {
        "SALRANK_PROFILE": "full", "SALRANK_DATA": str(settings.data_root),
        "SALRANK_WEIGHTS": str(settings.weights_dir), "SALRANK_CACHE": str(settings.cache_dir),
        "SALRANK_DEVICE": settings.device,
        "SALRANK_LIMIT": None if settings.limit is None else str(settings.limit),
        "SALRANK_EPOCHS": None if settings.epochs is None else str(settings.epochs),
    }
    folder = run_folder(settings)
    with _environment(env), _locked(folder):  # the pages' kernels inherit the environment
        return _run_stages(stages, settings, folder, Path(out).expanduser().resolve(), notebooks, force,
                           progress, log)


def _set_environ(values: dict[str, str | None]) -> None:
    """Set these environment variables (``None``: unset)."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextmanager
def _environment(values: dict[str, str | None]):
    """Set (``None``: unset) these environment variables for the duration, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(saved)


@contextmanager
def _locked(folder: Path):
    """Hold ``folder/.lock`` (an exclusive ``flock``, released when the process ends, even when
    killed) so that two runs never share a run folder."""
    import fcntl

    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ReproduceBusyError(f"another salrank reproduce is running on {folder}; wait for it or stop it") from None
        yield


def _run_stages(stages, settings: Settings, folder: Path, out: Path, notebooks: Path, force, progress,
                log) -> ReproduceRun:
    impl = {
        "proposals": _stage_proposals,
        "features": _stage_features,
        "gt": _stage_gt,
        "train": lambda *a: _pages_stage(lambda p: p in TRAIN_PAGES)(*a, notebooks),
        "evaluate": lambda *a: _pages_stage(lambda p: p not in TRAIN_PAGES)(*a, notebooks),
        "book": lambda *a: _stage_book(*a, notebooks, out),
    }
    run = ReproduceRun(folder)
    for stage in [s for s in STAGES if s in stages]:
        record = _load_record(folder)
        done = record.get("stages", {}).get(stage)
        if done and stage not in force:
            run.stages.append(StageResult(stage, "cached", float(done["seconds"]), done.get("detail", "")))
            log(f"[{stage}] done before ({done['seconds']:.1f} s): skipped")
            continue
        if stage in force and stage in ("train", "evaluate"):
            pages = [p for p in book_pages(notebooks.parent / "book") if (p in TRAIN_PAGES) == (stage == "train")]
            for p in pages:
                (folder / "executed" / f"{p}.ipynb").unlink(missing_ok=True)
        log(f"[{stage}] running")
        t = time.perf_counter()
        detail = impl[stage](settings, folder, progress, log)
        seconds = time.perf_counter() - t
        record = _load_record(folder)
        record.setdefault("stages", {})[stage] = {"seconds": round(seconds, 2), "detail": detail,
                                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        record["settings"] = {"data": str(settings.data_root), "weights": str(settings.weights_dir),
                              "limit": settings.limit, "epochs": settings.epochs, "device": settings.device}
        atomic_write_json(folder / "stages.json", record, indent=1)
        run.stages.append(StageResult(stage, "ran", seconds, detail))
        if stage == "book":
            run.book_html = out / "html" / "index.html"
    return run


def timing_table(run: ReproduceRun) -> str:
    """The stage timing table as plain text (stage, status, seconds, detail)."""
    rows = [("stage", "status", "seconds", "detail")]
    rows += [(s.stage, s.status, f"{s.seconds:.1f}", s.detail[:70]) for s in run.stages]
    rows.append(("total", "", f"{sum(s.seconds for s in run.stages):.1f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
