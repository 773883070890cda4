"""The benchmark suite (salrank.bench, ``salrank bench``): timing, random inputs, record schema,
ratios, targets, records, CLI.

Timings are injected (fake benchmarks with known samples), so nothing here depends on the speed of
the machine; the real measurements run only at tiny sizes (fixation loading, ACB, head, training).
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

import salrank.bench
from salrank import paper
from salrank.bench import records as rec
from salrank.bench.core import (
    BenchConfig,
    Benchmark,
    Measurement,
    StageClock,
    random_boxes,
    random_features,
    random_ranking_split,
    resolve_amp,
    stopwatch,
    summarize,
    time_calls,
)
from salrank.bench.records import SCHEMA, format_summary, load_records
from salrank.bench.stages import STAGE_LABELS, bench_acb, bench_head, bench_training, forward_flops
from salrank.bench.suite import BENCHMARKS, run_suite
from salrank.bench.targets import TARGETS, Ratio, compute_ratios, evaluate_targets
from salrank.cli import main

REPO = Path(__file__).resolve().parents[1]


# --- summaries -------------------------------------------------------------------------------------
def test_summarize_hand_computed():
    s = summarize([4.0, 1.0, 100.0, 3.0, 2.0])
    assert s == {"median": 3.0, "q1": 2.0, "q3": 4.0, "iqr": 2.0, "min": 1.0, "max": 100.0}
    assert summarize([5.0]) == {"median": 5.0, "q1": 5.0, "q3": 5.0, "iqr": 0.0, "min": 5.0, "max": 5.0}
    assert summarize([1.0, 2.0])["median"] == 1.5


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError, match="summarize"):
        summarize(bad)


def test_measurement_validation_and_entry():
    with pytest.raises(ValueError, match="better"):
        Measurement("x", "m", "s", [1.0], better="faster")
    with pytest.raises(ValueError, match="no samples"):
        Measurement("x", "m", "s", [])
    m = Measurement("x", "m", "images/s", np.array([3.0, 1.0, 2.0, 4.0]), details={"n": 1})
    entry = m.to_dict("b")
    assert entry["median"] == 2.5 and entry["repeats"] == 4 and entry["samples"] == [3.0, 1.0, 2.0, 4.0]
    assert entry["spread"] == {"q1": 1.75, "q3": 3.25, "iqr": 1.5, "min": 1.0, "max": 4.0}
    assert entry["benchmark"] == "b" and entry["details"] == {"n": 1}
    assert all(type(v) is float for v in entry["samples"])  # JSON-able, not NumPy scalars


# --- timing ----------------------------------------------------------------------------------------
def test_stopwatch_measures_wall_and_cpu_and_syncs_around_the_block():
    events = []
    with stopwatch(lambda: events.append("sync")) as t:
        events.append("work")
        time.sleep(0.05)  # wall time passes, CPU time hardly
    assert events == ["sync", "work", "sync"]
    assert t.wall >= 0.05 and 0 <= t.cpu < t.wall


def test_time_calls_alternates_and_warms_up():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    secs = time_calls(fns, 3, warmup=2)
    assert order == ["a", "b"] * 5  # 2 warm-up rounds, then 3 timed rounds, alternating
    assert list(secs) == ["a", "b"] and all(len(v) == 3 and min(v) >= 0 for v in secs.values())
    slow = time_calls({"sleep": lambda: time.sleep(0.02)}, 2, warmup=0)["sleep"]
    assert min(slow) >= 0.02
    cpu = time_calls({"sleep": lambda: time.sleep(0.02)}, 1, warmup=0, clock="cpu")["sleep"]
    assert cpu[0] < 0.02  # sleeping takes no CPU time
    with pytest.raises(ValueError, match="clock"):
        time_calls(fns, 1, clock="gpu")
    with pytest.raises(ValueError, match="repeats"):
        time_calls(fns, 0)


# --- random inputs ---------------------------------------------------------------------------------
def test_random_boxes_lie_inside_the_image():
    boxes = random_boxes(np.random.default_rng(0), 500, (100, 400))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert boxes.shape == (500, 4) and (boxes[:, :2] >= 0).all()
    assert (boxes[:, 2] <= 400).all() and (boxes[:, 3] <= 100).all()
    assert (w >= 32).all() and (w <= 320).all() and (h >= 32).all() and (h <= 100).all()


def test_random_features_are_consistent_with_their_boxes():
    from salrank.fosrnet.features import FIELDS

    f = random_features(np.random.default_rng(1), 6, appearance_dim=16, image_size=(480, 640))
    assert set(f) == set(FIELDS) and all(v.dtype == np.float32 for v in f.values())
    assert f["local"].shape == f["global"].shape == (6, 192) and f["appearance"].shape == (6, 16)
    b = f["boxes"].astype(np.float64)
    centres = (b[:, :2] + b[:, 2:]) / 2 / [640, 480]
    assert np.allclose(f["centers"], centres, atol=1e-6)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    assert np.allclose(f["geometry"][:, 0], np.sqrt(area / (640 * 480)), atol=1e-6)
    again = random_features(np.random.default_rng(1), 6, appearance_dim=16)
    assert all(np.array_equal(f[k], again[k]) for k in f)  # the seed decides


# --- injected timings ------------------------------------------------------------------------------
def _fake_benchmarks(calls: list | None = None) -> dict[str, Benchmark]:
    def gt(cfg):
        if calls is not None:
            calls.append(cfg)
        return [Measurement("fast", "fast", "s/image", [0.1, 0.2, 0.1], "lower"),
                Measurement("loop", "loop", "s/image", [10.0, 12.0, 11.0], "lower"),
                Measurement("salicon_15k", "15k", "s", [9.0, 10.0, 9.5], "lower")]

    def acb(cfg):
        return [Measurement("acb.loop", "loop", "s", [1.0, 1.2, 0.9], "lower"),  # prefixed names are kept
                Measurement("acb.batched", "batched", "s", [0.1, 0.3, 0.2], "lower", {"n": 20})]

    def broken(cfg):
        cfg.note("about to fail")
        raise RuntimeError("no such backend")

    return {"gt_relabel": Benchmark("gt_relabel", "fake GT", gt), "acb": Benchmark("acb", "fake ACB", acb),
            "broken": Benchmark("broken", "always fails", broken)}


def test_ratios_and_targets_from_injected_timings():
    calls: list = []
    record = run_suite(quick=True, device="cpu", progress=False, benchmarks=_fake_benchmarks(calls), repeats=3)
    assert calls and calls[0].quick and calls[0].repeats == 3 and calls[0].device == "cpu"
    ratios = {r["name"]: r for r in record["ratios"]}
    gt = ratios["gt_relabel.speedup"]
    assert gt["value"] == pytest.approx(11.0 / 0.1)  # ratio of the medians
    assert gt["spread"]["min"] == pytest.approx(60.0)  # per repeat: 100, 60, 110
    assert gt["spread"]["max"] == pytest.approx(110.0)
    assert gt["spread"]["median"] == pytest.approx(100.0)
    assert gt["best"] == pytest.approx(10.0 / 0.1)  # fastest loop / fastest fast path
    assert ratios["acb.speedup"]["value"] == pytest.approx(1.0 / 0.2)
    assert set(ratios) == {"gt_relabel.speedup", "acb.speedup"}  # only ratios whose sides ran

    targets = {t["name"]: t for t in record["targets"]}
    assert targets["gt_relabel_speedup"]["status"] == "pass" and targets["gt_relabel_speedup"]["passed"] is True
    assert targets["gt_relabel_15k"]["value"] == pytest.approx(9.5)
    assert targets["gt_relabel_15k"]["status"] == "pass"
    assert targets["acb_speedup"]["status"] == "pass"  # 5.0 >= 5: the boundary passes
    assert targets["head_flop_ratio"]["status"] == "not run" and targets["head_flop_ratio"]["passed"] is None
    assert targets["end_to_end_gpu"]["status"] == "n/a"

    broken = record["benchmarks"]["broken"]
    assert broken["error"] == "RuntimeError: no such backend" and broken["notes"] == ["about to fail"]
    assert "error" not in record["benchmarks"]["acb"]


def test_record_schema_and_json_round_trip():
    record = run_suite(quick=True, device="cpu", only="acb,gt_relabel", progress=False,
                       benchmarks=_fake_benchmarks())
    assert set(record) == {"meta", "results", "ratios", "targets", "benchmarks", "memory"}
    meta = record["meta"]
    assert meta["schema"] == SCHEMA and meta["quick"] is True and meta["device"] == "cpu"
    assert meta["benchmarks"] == ["gt_relabel", "acb"]  # suite order, not the order asked
    assert meta["repeats"] == 3 and meta["amp"] is None
    assert meta["versions"]["torch"] and meta["versions"]["salrank"]
    assert "cpu_count" in meta["hardware"]
    datetime.fromisoformat(meta["date"])
    for r in record["results"]:
        assert set(r) == {"name", "benchmark", "metric", "unit", "better", "median", "spread", "repeats",
                          "samples", "details"}
        assert r["name"].startswith(r["benchmark"] + ".")
        assert set(r["spread"]) == {"q1", "q3", "iqr", "min", "max"}
        assert r["spread"]["min"] <= r["median"] <= r["spread"]["max"]
    assert [r["name"] for r in record["results"]] == [
        "gt_relabel.fast", "gt_relabel.loop", "gt_relabel.salicon_15k", "acb.loop", "acb.batched"]
    for t in record["targets"]:
        assert t["status"] in ("pass", "fail", "not run", "n/a")
    assert record["memory"]["peak_rss_mib"] > 0
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_evaluate_targets_logic():
    results = [{"name": "gt_relabel.salicon_15k", "median": 10.0},
               {"name": "end_to_end.images_per_s", "median": 1500.0},
               {"name": "training.fast_epoch_10k", "median": 599.0}]
    ratios = [{"name": "gt_relabel.speedup", "value": 29.9}, {"name": "head.flop_ratio", "value": float("nan")},
              {"name": "acb.speedup", "value": 5.0}]
    cpu = {t["name"]: t for t in evaluate_targets(results, ratios, "cpu")}
    assert cpu["gt_relabel_speedup"]["status"] == "fail"  # 29.9 < 30
    assert cpu["gt_relabel_15k"]["status"] == "fail"  # 10 s is not < 10 s
    assert cpu["head_flop_ratio"]["status"] == "fail"  # NaN never passes
    assert cpu["acb_speedup"]["status"] == "pass"
    assert cpu["train_fast_epoch"]["status"] == "pass"
    assert cpu["end_to_end_gpu"]["status"] == "n/a" and cpu["end_to_end_gpu"]["value"] == 1500.0
    cuda = {t["name"]: t for t in evaluate_targets(results, ratios, "cuda:0")}
    assert cuda["end_to_end_gpu"]["status"] == "pass" and cuda["end_to_end_gpu"]["passed"] is True
    slow = evaluate_targets([{"name": "end_to_end.images_per_s", "median": 999.9}], [], "cuda")
    assert {t["name"]: t["status"] for t in slow}["end_to_end_gpu"] == "fail"


def test_compute_ratios_without_paired_samples():
    results = [{"name": "a", "median": 6.0, "better": "higher", "samples": None,
                "spread": {"min": 5.0, "max": 8.0}},
               {"name": "b", "median": 2.0, "better": "higher", "samples": [1.0, 2.0, 4.0],
                "spread": {"min": 1.0, "max": 4.0}}]
    [r] = compute_ratios(results, [Ratio("a_vs_b", "a", "b", "test")])
    assert r["value"] == 3.0 and r["spread"] is None and r["best"] == 2.0  # best rates: 8 / 4


def test_bad_names_and_repeats_rejected():
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) 'nope'; known: gt_relabel"):
        run_suite(only=["nope", "acb"], progress=False)
    with pytest.raises(ValueError, match="no benchmark named"):
        run_suite(only=" , ", progress=False)
    with pytest.raises(ValueError, match="repeats"):
        run_suite(only="acb", repeats=0, progress=False, benchmarks=_fake_benchmarks())


def test_cli_rejects_bad_name(capsys):
    assert main(["bench", "--only", "gt_relabel,warp_drive", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "salrank bench: error: unknown benchmark(s) 'warp_drive'" in err and "end_to_end" in err


def test_cli_only_cheap_benchmark_writes_valid_json(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    code = main(["bench", "--quick", "--only", "fixation_load", "--repeats", "1", "--json", str(out),
                 "--no-progress"])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["meta"]["benchmarks"] == ["fixation_load"] and record["meta"]["repeats"] == 1
    names = {r["name"]: r for r in record["results"]}
    assert set(names) == {"fixation_load.parse", "fixation_load.cached"}
    assert names["fixation_load.parse"]["details"]["n_images"] == 50
    [ratio] = record["ratios"]
    assert ratio["value"] == pytest.approx(names["fixation_load.parse"]["median"]
                                           / names["fixation_load.cached"]["median"])
    printed = capsys.readouterr().out
    assert "fixation_load.parse" in printed and "NOT RUN" in printed and "N/A" in printed
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_cli_list(capsys):
    assert main(["bench", "--list"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in BENCHMARKS) and "CUDA only" in printed


def test_format_summary_shows_targets_and_failures():
    record = run_suite(quick=True, progress=False, benchmarks=_fake_benchmarks())
    text = format_summary(record)
    assert "gt_relabel.loop" in text and "PASS" in text and "NOT RUN" in text and "N/A" in text
    assert "broken: FAILED: RuntimeError: no such backend" in text


# --- pieces of the real benchmarks -----------------------------------------------------------------
def test_resolve_amp():
    assert resolve_amp("auto", "cpu") is None
    assert resolve_amp(None, "cpu") is None and resolve_amp("off", "cuda") is None
    assert resolve_amp("bf16", "cpu") == "bf16" and resolve_amp("float16", "cpu") == "fp16"
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("fp8", "cpu")


def test_stage_proxy_times_calls_and_returns_float32_under_autocast():
    cfg = BenchConfig(amp="bf16", device="cpu")
    conv = torch.nn.Conv2d(3, 4, 3).eval()
    clock = StageClock()
    proxy = clock.wrap(conv, "cnn", ["__call__"], context=cfg.autocast, float_outputs=True)
    out = proxy(torch.randn(1, 3, 8, 8))
    assert out.dtype == torch.float32 and out.shape == (1, 4, 6, 6)
    assert clock.seconds["cnn"] > 0
    with cfg.autocast():
        assert conv(torch.randn(1, 3, 8, 8)).dtype == torch.bfloat16  # what the proxy converts
    assert proxy.out_channels == 4 and proxy.eval() is proxy  # attributes pass through
    untimed = clock.wrap(conv, "other", ["forward"])
    with pytest.raises(TypeError, match="other"):
        untimed(torch.randn(1, 3, 8, 8))
    clock.reset()
    assert dict(clock.seconds) == {}


def test_acb_benchmark_compares_loop_and_batched_ranks():
    cfg = BenchConfig(repeats=1)
    [loop, batched] = bench_acb(cfg, n=7, head="fc", in_dim=8)
    assert loop.name == "loop" and batched.name == "batched" and loop.repeats == batched.repeats == 5
    assert loop.details["same_ranks"] is True and loop.details["sequences"] == 7 and not cfg.notes
    assert loop.better == batched.better == "lower" and min(loop.samples) > 0


def test_acb_benchmark_notes_different_ranks(monkeypatch):
    import salrank.fosrnet.acb as acb

    real = acb.rank_sequences_batched

    def reversed_ranks(*args, **kwargs):
        votes, ranks = real(*args, **kwargs)
        return votes, ranks[::-1].copy()

    monkeypatch.setattr(acb, "rank_sequences_batched", reversed_ranks)
    cfg = BenchConfig(repeats=1)
    [loop, _] = bench_acb(cfg, n=7, head="fc", in_dim=8)
    assert loop.details["same_ranks"] is False and cfg.notes == ["the batched ACB ranks differ from the loop's"]


def test_forward_flops_of_a_linear_layer_by_hand():
    layer = torch.nn.Linear(7, 3).eval()
    assert forward_flops(layer, torch.zeros(4, 2, 7)) == 2 * 8 * 7 * 3  # a multiply-add per weight and row
    assert not layer.training  # its mode is restored


def test_head_benchmark_counts_the_flops_of_a_tiny_model_by_hand():
    cfg = BenchConfig(repeats=1)
    model, matmul, ranks = bench_head(cfg, head="fc", appearance_dim=8, n_sequences=4, n_images=2)
    d = model.details
    in_dim = 192 + 192 + 192 + 8  # local + global + PE(centres) + appearance
    rows = 4 * 5  # sequences x k
    # PE Linear(2 -> 192), then the fc head Linear(in_dim -> 384) and Linear(384 -> 5)
    assert d["in_dim"] == in_dim and d["model_flops"] == 2 * rows * (2 * 192 + in_dim * 384 + 384 * 5)
    assert matmul.details["matmul_gflop"] == pytest.approx(2 * rows * in_dim * 384 / 1e9)
    assert model.repeats == matmul.repeats == ranks.repeats == 3
    # the samples are FLOP rates: FLOPs / seconds, so FLOPs / rate is a positive time
    assert all(r > 0 and math.isfinite(d["model_flops"] / r) for r in model.samples)
    assert ranks.details == {"images": 2, "proposals_per_image": 10}


def test_training_benchmark_scales_a_small_epoch_to_salicon(torch_one_thread):
    cfg = BenchConfig(repeats=1)
    fast, paper_steps = bench_training(cfg, n_images=2, n_paper=1, appearance_dim=8)
    d = fast.details
    assert d["images_timed"] == 2 and d["sequences_timed"] == 20 and d["measured"] is False
    assert d["steps_per_epoch_10k"] == math.ceil(10_000 * 10 / d["batch_size"])
    assert fast.unit == "s" and fast.better == "lower" and fast.samples[0] > 0
    assert paper_steps.details["steps_timed"] == 10 and paper_steps.samples[0] > 0


def test_random_ranking_split_shapes():
    split = random_ranking_split(3, n_proposals=6, appearance_dim=8, seed=1)
    assert len(split) == 3 and split.features.n_proposals == 18
    assert split.features.arrays["appearance"].shape == (18, 8)
    boxes = split.features.arrays["boxes"]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 2] <= 640).all() and (boxes[:, 3] <= 480).all()
    assert all(sorted(r) == list(range(1, 7)) for r in split.gt_ranks)
    assert all(np.array_equal(r, np.argsort(np.argsort(-s, kind="stable")) + 1)
               for r, s in zip(split.gt_ranks, split.gt_scores, strict=True))


# --- records ---------------------------------------------------------------------------------------
def test_load_records_skips_other_json_and_names_bad_files(tmp_path):
    record = run_suite(quick=True, progress=False, benchmarks=_fake_benchmarks())
    (tmp_path / "run.json").write_text(json.dumps(record))
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    assert list(load_records(tmp_path)) == ["run"]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_records(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing")


def test_committed_records_are_complete():
    folder = REPO / "benchmarks"
    if not folder.is_dir():
        pytest.skip("no benchmarks/ folder in this checkout")
    records = load_records(folder)
    assert "cpu-quick" in records
    for name, record in records.items():
        assert {t["name"] for t in record["targets"]} == {t.name for t in TARGETS}, name
        assert not any(i.get("error") for i in record["benchmarks"].values()), name
        assert {r["benchmark"] for r in record["results"]} == set(record["meta"]["benchmarks"]), name
        # the ratios and target verdicts follow from the stored figures
        assert compute_ratios(record["results"]) == record["ratios"], name
        assert evaluate_targets(record["results"], record["ratios"], record["meta"]["device"]) == record["targets"]


def test_load_records_finds_the_checkout_records_from_anywhere(tmp_path, monkeypatch):
    if not (REPO / "benchmarks" / "cpu-quick.json").is_file():
        pytest.skip("no benchmarks/ folder in this checkout")
    monkeypatch.chdir(tmp_path)  # neither ./benchmarks nor ../benchmarks
    assert "cpu-quick" in load_records()


# --- the Table IV page's tables --------------------------------------------------------------------
def _fake_end_to_end(cfg):
    shares = {"detector": 0.2, "unisal": 0.1, "resnet": 0.6, "head_acb": 0.05, "other": 0.05}
    out = [Measurement("images_per_s", "e2e", "images/s", [2.0, 4.0, 3.0], details={"stage_share": shares})]
    out += [Measurement(f"{s}_ms", s, "ms/image", [1000 / 3 * share] * 3, "lower") for s, share in shares.items()]
    return out


def test_table4_frames_from_a_record():
    fakes = {"end_to_end": Benchmark("end_to_end", "fake", _fake_end_to_end), **_fake_benchmarks()}
    records = {"run": run_suite(quick=True, progress=False, benchmarks=fakes)}
    t4 = rec.table4_frame(records)
    assert list(t4.index) == ["SRCC", "F1", "FPS", "Platform"]
    assert t4.loc["FPS", "Ours (paper)"] == paper.TABLE4A["Ours"]["FPS"] and t4.loc["SRCC", "ASSR (paper)"] == 0.714
    assert t4.loc["FPS", "salrank: run"] == 3.0 and t4.loc["SRCC", "salrank: run"] is None
    assert t4.loc["Platform", "salrank: run"].endswith("quick")

    stages = rec.stage_frame(records).set_index("stage")
    whole = stages.loc["whole pipeline"]
    assert whole["FPS"] == 3.0 and whole["ms/image"] == pytest.approx(1000 / 3) and whole["paper FPS"] == paper.PIPELINE_FPS
    resnet = stages.loc[STAGE_LABELS["resnet"]]
    assert resnet["share"] == 0.6 and resnet["ms/image"] == pytest.approx(200.0) and resnet["FPS"] == pytest.approx(5.0)
    assert "EfficientDet-D0 alone (detectors benchmark)" not in stages.index  # no detectors benchmark ran

    targets = rec.targets_frame(records)["run"]
    assert targets["RA-SRGT relabel >= 30x the per-point loop"] == "PASS (110)"
    assert targets[TARGETS[-1].description] == "n/a"
    assert targets["head FLOP rate >= 40% of the matmul rate"] == "not run"
    assert rec.ratios_frame(records).loc["ACB at n = 20: batched vs loop", "run"] == pytest.approx(5.0)
    runs = rec.runs_frame(records)
    assert runs.loc[0, "record"] == "run" and runs.loc[0, "device"] == "cpu"


def test_public_surface():
    assert salrank.bench.run_suite is run_suite and salrank.bench.BENCHMARKS is BENCHMARKS
    assert salrank.bench.TARGETS is TARGETS and salrank.bench.format_summary is format_summary
    assert salrank.bench.load_records is load_records
    assert list(BENCHMARKS) == ["gt_relabel", "fixation_load", "detectors", "unisal", "features", "head", "acb",
                                "end_to_end", "training", "flop_bound", "host_overhead"]
    assert all(b.name == name and callable(b.run) for name, b in BENCHMARKS.items())


def test_detectors_benchmark_skips_a_failing_backend_and_fails_when_none_runs(monkeypatch):
    import salrank.bench.detectors as det
    from salrank.bench.stages import bench_detectors

    def fake(name, batch_size, repeats, **kw):
        if name.startswith("ssdlite"):
            raise RuntimeError("no weights")
        return {"images_per_s_samples": [float(i + 1) for i in range(repeats)], "image_size": (480, 640)}

    monkeypatch.setattr(det, "benchmark_detector", fake)
    cfg = BenchConfig(repeats=2)
    [m] = bench_detectors(cfg)
    assert m.name == "efficientdet_d0" and m.samples == [1.0, 2.0, 3.0, 4.0]  # 2 x repeats samples
    assert m.details == {"batch_size": 1, "image_size": [480, 640]}
    assert cfg.notes == ["ssdlite320_mobilenet_v3_large: failed (RuntimeError: no weights)"]

    monkeypatch.setattr(det, "benchmark_detector", lambda name, **kw: fake("ssdlite", **kw))
    with pytest.raises(RuntimeError, match="no detector could be timed"):
        bench_detectors(BenchConfig(repeats=1))
