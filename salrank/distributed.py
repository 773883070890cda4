"""Scale-out with ``torch.distributed``: shard a command's images across ranks, merge on rank 0.

Under ``torchrun --nproc_per_node N -m salrank proposals|features|rank ...`` the environment holds
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`run_sharded` then

1. splits the image ids deterministically: sorted by stem, rank ``r`` of ``W`` takes every
   ``W``-th one starting at ``r`` (:func:`shard`), so the split depends only on the ids;
2. has each rank write its own part ``OUT.part<r>-of-<W>`` (atomically, through :mod:`salrank.io`;
   a part already on disk is kept, so a rerun resumes per part);
3. waits for all ranks (a barrier of the process group: ``nccl`` on CUDA, ``gloo`` on CPU) and
   has rank 0 merge the parts into ``OUT`` -- the same bytes a single process writes -- and
   remove them.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) the command runs as one process, unchanged.
Each rank picks the GPU ``cuda:<LOCAL_RANK>`` when CUDA is available and no device is given
(:func:`rank_device`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Dist", "current", "init", "shard", "part_path", "rank_device", "run_sharded"]


@dataclass(frozen=True)
class Dist:
    """This process's place: ``rank`` in ``0..world_size-1``; ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world_size > 1


def current() -> Dist:
    """The :class:`Dist` of this process from the ``torchrun`` environment (single process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"bad torch.distributed environment: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad torch.distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return Dist(rank, world, local)


def init(backend: str | None = None) -> Dist:
    """:func:`current`, and the default process group initialised when sharded (idempotent).

    ``backend``: ``None`` = ``nccl`` when CUDA is available, else ``gloo``.
    """
    ctx = current()
    if ctx.sharded:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            if backend is None:
                backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(ctx.local_rank)
            dist.init_process_group(backend=backend)
    return ctx


def _barrier(ctx: Dist) -> None:
    if ctx.sharded:
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            import torch

            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def shard(keys: Sequence[str], rank: int, world_size: int, chunk: int = 1) -> list[str]:
    """The ids of rank ``rank`` of ``world_size``: the sorted ids cut into runs of ``chunk``, run
    ``i`` to rank ``i % world_size`` (``chunk=1``: ``sorted(keys)[rank::world_size]``).

    Every id goes to exactly one rank; duplicates are refused (an id names one output entry). Cut
    a rank's ids into runs of ``chunk`` again and you get exactly the runs of a single process, so
    a command that works in batches of ``chunk`` sees the same batches however many ranks run it.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard: rank {rank} of world size {world_size}")
    if chunk < 1:
        raise ValueError(f"shard: chunk must be >= 1, got {chunk}")
    ordered = sorted(str(k) for k in keys)
    if len(set(ordered)) != len(ordered):
        raise ValueError("shard: duplicate image ids (the file stem is the id)")
    runs = [ordered[i : i + chunk] for i in range(0, len(ordered), chunk)]
    return [k for run in runs[rank::world_size] for k in run]


def part_path(out: str | os.PathLike, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` writes its part of ``out``: ``OUT.part<rank>-of-<world_size>``."""
    out = Path(out)
    return out.with_name(f"{out.name}.part{rank}-of-{world_size}")


def rank_device(device: str | None, ctx: Dist | None = None) -> str | None:
    """``device`` if given; else ``cuda:<LOCAL_RANK>`` for a sharded run with CUDA; else ``None``."""
    ctx = ctx or current()
    if device is None and ctx.sharded:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{ctx.local_rank % torch.cuda.device_count()}"
    return device


def run_sharded(
    out: str | os.PathLike,
    keys: Sequence[str],
    write: Callable[[list[str], Path], object],
    merge: Callable[[list[Path], Path], object],
    ctx: Dist | None = None,
    chunk: int = 1,
) -> bool:
    """Write ``out`` for ``keys``, sharded across the ranks of a ``torchrun`` job.

    ``write(keys, path)`` writes the output of some ids to ``path`` (atomically); ``merge(parts,
    out)`` combines the parts (in rank order) into ``out``, byte-identical to ``write(all keys,
    out)``. Single process: ``write(sorted keys, out)``. ``chunk``: see :func:`shard`. Returns ``True`` on the process that
    wrote ``out`` (rank 0, or the single process).
    """
    ctx = ctx or init()
    out = Path(out)
    if not ctx.sharded:
        write(sorted(str(k) for k in keys), out)
        return True
    mine = shard(keys, ctx.rank, ctx.world_size, chunk)
    part = part_path(out, ctx.rank, ctx.world_size)
    if not part.is_file():  # a part on disk is complete (written atomically): resume
        write(mine, part)
    _barrier(ctx)
    if ctx.is_main:
        parts = [part_path(out, r, ctx.world_size) for r in range(ctx.world_size)]
        merge(parts, out)
        for p in parts:
            p.unlink(missing_ok=True)
    _barrier(ctx)
    return ctx.is_main
