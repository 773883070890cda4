"""salrank.distributed: the deterministic split, part/merge, and 2-rank torchrun runs on gloo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salrank.distributed import Dist, current, part_path, run_sharded, shard
from salrank.proposals.generate import merge_proposal_parts


@given(st.lists(st.text(alphabet="abcdef0123", min_size=1, max_size=6), unique=True, max_size=40),
       st.integers(1, 7))
def test_shard_partitions_sorted_ids(keys, world):
    parts = [shard(keys, r, world) for r in range(world)]
    assert sorted(k for p in parts for k in p) == sorted(keys)  # each id exactly once
    assert all(p == sorted(p) for p in parts)
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)  # balanced, first ranks get more
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    # the split depends on the ids only, not their order
    assert [shard(list(reversed(keys)), r, world) for r in range(world)] == parts


@given(st.integers(0, 30), st.integers(1, 5), st.integers(1, 4))
def test_shard_in_chunks_keeps_the_single_process_batches(n, world, chunk):
    keys = [f"k{i:02d}" for i in range(n)]
    runs = [keys[i : i + chunk] for i in range(0, n, chunk)]
    rechunked = []
    for r in range(world):
        mine = shard(keys, r, world, chunk)
        rechunked += [mine[i : i + chunk] for i in range(0, len(mine), chunk)]
    assert sorted(rechunked) == runs


def test_shard_by_hand_and_bad_inputs():
    assert shard(["d", "a", "c", "b", "e"], 0, 2) == ["a", "c", "e"]
    assert shard(["d", "a", "c", "b", "e"], 1, 2) == ["b", "d"]
    assert shard(["a"], 2, 3) == []
    assert shard(list("abcdefg"), 1, 2, chunk=3) == ["d", "e", "f"]
    with pytest.raises(ValueError, match="chunk"):
        shard(["a"], 0, 1, chunk=0)
    with pytest.raises(ValueError, match="duplicate"):
        shard(["a", "a"], 0, 1)
    with pytest.raises(ValueError):
        shard(["a"], 2, 2)


def test_current_reads_the_torchrun_environment(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert current() == Dist(0, 1, 0) and not current().sharded
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert current() == Dist(3, 4, 1) and current().sharded and not current().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4"):
        current()


def test_part_path():
    assert part_path(Path("/x/out.json"), 1, 4) == Path("/x/out.json.part1-of-4")


def _write_lines(keys, path):
    path.write_text("".join(f"{k}\n" for k in keys))


def _merge_lines(parts, out):
    out.write_text("".join(sorted(line for p in parts for line in p.read_text().splitlines(keepends=True))))


def test_run_sharded_single_process_writes_all_sorted(tmp_path):
    out = tmp_path / "o.txt"
    assert run_sharded(out, ["b", "a", "c"], _write_lines, _merge_lines, ctx=Dist())
    assert out.read_text() == "a\nb\nc\n"


def test_merge_proposal_parts_matches_one_file_and_refuses_overlap(tmp_path):
    recs = [{"image_id": s, "bbox": [1.0, 2.5, 3.0, 4.0], "score": sc, "category_id": 1}
            for s, sc in (("a", 0.9), ("a", 0.5), ("b", 0.7), ("c", 0.1))]
    (tmp_path / "p0").write_text(json.dumps([r for r in recs if r["image_id"] in "ac"]))
    (tmp_path / "p1").write_text(json.dumps([r for r in recs if r["image_id"] == "b"]))
    merge_proposal_parts([tmp_path / "p0", tmp_path / "p1"], tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text() == json.dumps(recs, separators=(",", ":"))
    with pytest.raises(ValueError, match="two parts"):
        merge_proposal_parts([tmp_path / "p0", tmp_path / "p0"], tmp_path / "bad.json")


# --- real torchrun jobs: 2 ranks on gloo ------------------------------------------------------------
def _torchrun(args, cwd, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    if nproc == 1:
        cmd = [sys.executable, "-m", "salrank", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "salrank", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_torchrun_proposals_byte_identical_and_resumable(tmp_path):
    args = ["proposals", "--detector", "oracle", "--sample", "salicon", "--quiet", "--seed", "3", "--batch-size", "2"]
    _torchrun([*args, "--out", "single.json"], tmp_path, nproc=1)
    # a part left by an interrupted sharded run is reused, not recomputed
    single = json.loads((tmp_path / "single.json").read_text())
    stems = sorted({r["image_id"] for r in single})
    kept = [r for r in single if r["image_id"] in shard(stems, 1, 2, chunk=2)]
    (tmp_path / "sharded.json.part1-of-2").write_text(json.dumps(kept, separators=(",", ":")))
    proc = _torchrun([*args, "--out", "sharded.json"], tmp_path)
    assert (tmp_path / "sharded.json").read_bytes() == (tmp_path / "single.json").read_bytes()
    assert proc.stdout.count("wrote proposals") == 1  # rank 0 only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded.json", "single.json"]  # parts removed


@pytest.mark.slow
def test_torchrun_rank_byte_identical(tmp_path):
    images = sorted((Path(__file__).resolve().parents[1] / "salrank/sample_data/salicon_examples/images").glob("*.jpg"))
    images = [shutil.copy(p, tmp_path / p.name) for p in images[:3]]
    args = ["rank", *map(str, reversed(images)), "--no-pretrained", "--backbone", "resnet18", "--device", "cpu",
            "--batch-size", "1"]  # rank 0 ranks 2 images, rank 1 one
    _torchrun([*args, "--out", "single.json"], tmp_path, nproc=1)
    _torchrun([*args, "--workers", "1", "--out", "sharded.json"], tmp_path)  # images read by a DataLoader worker
    assert (tmp_path / "sharded.json").read_bytes() == (tmp_path / "single.json").read_bytes()
    names = [e["image"] for e in json.loads((tmp_path / "single.json").read_text())["images"]]
    assert names == [Path(p).name for p in reversed(images)]  # the command line's order


@pytest.mark.slow
def test_torchrun_features_byte_identical(tmp_path):
    from salrank.fosrnet.features import FeatureStore

    args = ["features", "--sample", "salicon", "--no-pretrained", "--backbone", "resnet18", "--crop-size", "64",
            "--device", "cpu", "--batch-size", "2"]
    _torchrun([*args, "--out", "single.npz"], tmp_path, nproc=1)
    proc = _torchrun([*args, "--workers", "1", "--out", "sharded.npz"], tmp_path)
    assert (tmp_path / "sharded.npz").read_bytes() == (tmp_path / "single.npz").read_bytes()
    assert proc.stdout.count("wrote the features") == 1  # rank 0 only
    store = FeatureStore.load_npz(tmp_path / "sharded.npz")
    assert store.stems == sorted(store.stems) and len(store) == 10 and store.n_proposals > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded.npz", "single.npz"]  # parts removed
